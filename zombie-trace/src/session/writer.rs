//! Lines to stdout or to the `--output` file, each from a thread of its
//! own, so that a reader that stops reading (a paused `less`, a stuck pipe,
//! a slow disk) never stalls the tracer: kernel records keep being read and
//! paired, and Ctrl-C still stops it.

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    os::unix::fs::OpenOptionsExt as _,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
        mpsc::{self, Receiver, Sender},
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use thiserror::Error;

/// Output waiting for a reader beyond this is dropped (and said once on
/// stderr) rather than held: memory stays bounded.
const MAX_QUEUED_BYTES: usize = 64 << 20;
/// How long the last lines may take to leave at the end.
const FINISH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Error)]
pub enum WriteError {
    /// The reader went away (`zombie-trace | head`): a way to stop.
    #[error("stdout was closed")]
    Closed,
    #[error("cannot write to {0}: {1}")]
    Io(String, io::Error),
}

enum Message {
    Lines(Vec<u8>),
    /// Open the file again by its name (after logrotate moved it).
    Reopen,
}

pub struct Writer {
    name: String,
    tx: Option<Sender<Message>>,
    thread: Option<JoinHandle<io::Result<()>>>,
    queued: Arc<AtomicUsize>,
    dropped: u64,
}

impl Writer {
    pub fn stdout() -> Self {
        Self::spawn("stdout".to_owned(), |rx, queued| {
            let mut out = io::stdout().lock();
            for message in rx {
                if let Message::Lines(buf) = message {
                    out.write_all(&buf)?;
                    out.flush()?;
                    queued.fetch_sub(buf.len(), Ordering::Relaxed);
                }
            }
            Ok(())
        })
    }

    /// Appends to the file at `path`, created if needed (mode 0640: what it
    /// says about other users' processes is not for everyone).
    pub fn file(path: &Path) -> io::Result<Self> {
        let name = path.display().to_string();
        let mut file = open_append(path)?;
        let path = path.to_path_buf();
        Ok(Self::spawn(name, move |rx, queued| {
            for message in rx {
                match message {
                    Message::Lines(buf) => {
                        file.write_all(&buf)?;
                        queued.fetch_sub(buf.len(), Ordering::Relaxed);
                    }
                    Message::Reopen => reopen(&path, &mut file),
                }
            }
            // Best effort: /dev/null, a FIFO or a pipe cannot sync.
            let _ = file.sync_data();
            Ok(())
        }))
    }

    fn spawn(
        name: String,
        body: impl FnOnce(Receiver<Message>, &AtomicUsize) -> io::Result<()> + Send + 'static,
    ) -> Self {
        let (tx, rx) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&queued);
        let thread = thread::Builder::new()
            .name(format!("writer {name}"))
            .spawn(move || body(rx, &counter));
        // Without a thread nothing can be written: `write` says so.
        let (tx, thread) = match thread {
            Ok(thread) => (Some(tx), Some(thread)),
            Err(_) => (None, None),
        };
        Self {
            name,
            tx,
            thread,
            queued,
            dropped: 0,
        }
    }

    /// Queues `buf` (whole lines). An error means the tracer should stop:
    /// the reader is gone, or the writes fail.
    pub fn write(&mut self, buf: Vec<u8>) -> Result<(), WriteError> {
        if buf.is_empty() {
            return Ok(());
        }
        if self.queued.load(Ordering::Relaxed) + buf.len() > MAX_QUEUED_BYTES {
            self.dropped += 1;
            if self.dropped == 1 {
                log::warn!(
                    "{} is not keeping up: output is being dropped until it catches up",
                    self.name
                );
            }
            return Ok(());
        }
        self.queued.fetch_add(buf.len(), Ordering::Relaxed);
        self.send(Message::Lines(buf))
    }

    /// Opens the file again by its name, in order with the lines.
    pub fn reopen(&mut self) -> Result<(), WriteError> {
        self.send(Message::Reopen)
    }

    fn send(&mut self, message: Message) -> Result<(), WriteError> {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(message).is_ok());
        if sent { Ok(()) } else { Err(self.failure()) }
    }

    /// Lets the queued lines out, waiting at most a few seconds for a slow
    /// reader.
    pub fn finish(mut self) -> Result<(), WriteError> {
        drop(self.tx.take());
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let deadline = Instant::now() + FINISH_TIMEOUT;
        while !thread.is_finished() {
            if Instant::now() >= deadline {
                log::warn!(
                    "{} is not being read: exiting without its last lines",
                    self.name
                );
                return Ok(());
            }
            thread::sleep(Duration::from_millis(10));
        }
        self.outcome(thread.join())
    }

    /// Why the writer thread stopped.
    fn failure(&mut self) -> WriteError {
        self.tx = None;
        match self.thread.take() {
            Some(thread) => match self.outcome(thread.join()) {
                Err(e) => e,
                Ok(()) => WriteError::Closed,
            },
            None => WriteError::Io(self.name.clone(), io::Error::other("no writer thread")),
        }
    }

    fn outcome(&self, joined: thread::Result<io::Result<()>>) -> Result<(), WriteError> {
        match joined {
            Ok(Ok(())) => Ok(()),
            // Only a closed stdout is a way to stop; a file's reader going
            // away is an error to report.
            Ok(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe && self.name == "stdout" => {
                Err(WriteError::Closed)
            }
            Ok(Err(e)) => Err(WriteError::Io(self.name.clone(), e)),
            Err(_) => Err(WriteError::Io(
                self.name.clone(),
                io::Error::other("the writer thread panicked"),
            )),
        }
    }
}

/// Whether whoever read standard output has gone: a pipe whose reader
/// closed it (`zombie-trace | head -1`), a socket whose peer did, a
/// terminal that hung up. `poll` says so without a write, so a tracer with
/// nothing to say for hours still notices at once.
pub fn stdout_reader_gone() -> bool {
    let mut fd = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: 0,
        revents: 0,
    };
    // SAFETY: one pollfd, valid for the call; a zero timeout never blocks.
    let ready = unsafe { libc::poll(&raw mut fd, 1, 0) };
    ready > 0 && fd.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

fn open_append(path: &Path) -> io::Result<File> {
    // Not through a symlink: root writing where a planted link points.
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// After logrotate: the old name now holds a new (or no) file. On failure
/// the old file stays in use, and stderr says why.
fn reopen(path: &Path, file: &mut File) {
    match open_append(path) {
        Ok(new) => *file = new,
        Err(e) => log::warn!(
            "cannot reopen {} ({e}): still writing to the file it was",
            path.display()
        ),
    }
}
