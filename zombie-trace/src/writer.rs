//! Lines to stdout from a thread of their own, so that a reader that stops
//! reading (a paused `less`, a stuck pipe) never stalls the tracer: kernel
//! records keep being read and paired, and Ctrl-C still stops it.

use std::{
    io::{self, Write},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
        mpsc::{self, Sender},
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
    #[error("cannot write to stdout: {0}")]
    Io(io::Error),
}

pub struct Writer {
    tx: Option<Sender<Vec<u8>>>,
    thread: Option<JoinHandle<io::Result<()>>>,
    queued: Arc<AtomicUsize>,
    dropped: u64,
}

impl Writer {
    pub fn stdout() -> Self {
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let queued = Arc::new(AtomicUsize::new(0));
        let written = Arc::clone(&queued);
        let thread = thread::Builder::new().name("stdout".into()).spawn(move || {
            let mut out = io::stdout().lock();
            for buf in rx {
                out.write_all(&buf)?;
                out.flush()?;
                written.fetch_sub(buf.len(), Ordering::Relaxed);
            }
            Ok(())
        });
        match thread {
            Ok(thread) => Self {
                tx: Some(tx),
                thread: Some(thread),
                queued,
                dropped: 0,
            },
            // No thread: nothing can be written; `write` says so.
            Err(_) => Self {
                tx: None,
                thread: None,
                queued,
                dropped: 0,
            },
        }
    }

    /// Queues `buf` (whole lines) for stdout. An error means the tracer
    /// should stop: the reader is gone, or stdout failed.
    pub fn write(&mut self, buf: Vec<u8>) -> Result<(), WriteError> {
        if buf.is_empty() {
            return Ok(());
        }
        if self.queued.load(Ordering::Relaxed) + buf.len() > MAX_QUEUED_BYTES {
            self.dropped += 1;
            if self.dropped == 1 {
                log::warn!(
                    "stdout is not being read: output is being dropped until its reader catches \
                     up (redirect to a file, or read it faster)"
                );
            }
            return Ok(());
        }
        let len = buf.len();
        self.queued.fetch_add(len, Ordering::Relaxed);
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(buf).is_ok());
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
                log::warn!("stdout is not being read: exiting without its last lines");
                return Ok(());
            }
            thread::sleep(Duration::from_millis(10));
        }
        match thread.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => Err(WriteError::Closed),
            Ok(Err(e)) => Err(WriteError::Io(e)),
            Err(_) => Err(WriteError::Io(io::Error::other(
                "the stdout thread panicked",
            ))),
        }
    }

    /// Why the writer thread stopped.
    fn failure(&mut self) -> WriteError {
        self.tx = None;
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) if e.kind() != io::ErrorKind::BrokenPipe => WriteError::Io(e),
            Some(Err(_)) => WriteError::Io(io::Error::other("the stdout thread panicked")),
            None => WriteError::Io(io::Error::other("no thread to write stdout")),
            _ => WriteError::Closed,
        }
    }
}
