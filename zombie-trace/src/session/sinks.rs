//! Where lines go: stdout in `--format` (text sums up floods of reports),
//! the `--output` file in JSON. Lines said before `ready` wait for it,
//! which must come first.

use std::{path::Path, sync::Arc, time::SystemTime};

use anyhow::{Context as _, Result};

use super::writer::{self, WriteError, Writer};
use crate::{
    kernel::clock,
    model::report::Line,
    output::{
        Encoder, Format,
        flood::{FloodGate, Shown},
    },
};

pub struct Sinks {
    /// `None` when stdout was closed at start, or failed while a
    /// `--output` file goes on.
    stdout: Option<Sink>,
    /// `--output FILE`: JSON lines.
    file: Option<Sink>,
    /// Lines emitted before `ready`.
    held: Option<Vec<Line>>,
}

impl Sinks {
    /// Stdout in `stdout`'s format (`None`: not written), and the
    /// `--output` file's writer.
    /// JSON lines name `node` as where they come from.
    pub fn new(stdout: Option<Format>, file: Option<Writer>, node: Arc<str>) -> Self {
        Self {
            stdout: stdout.map(|format| Sink::new(format, Writer::stdout(), Arc::clone(&node))),
            file: file.map(|writer| Sink::new(Format::Json, writer, node)),
            held: Some(Vec::new()),
        }
    }

    /// Opens the `--output` file, or says what to do about it.
    pub fn open_file(path: &Path) -> Result<Writer> {
        Writer::file(path).with_context(|| {
            let shown = path.display();
            if path
                .symlink_metadata()
                .is_ok_and(|m| m.file_type().is_symlink())
            {
                format!(
                    "--output {shown} is a symbolic link, and zombie-trace refuses to write \
                     through one: as root, it would append to whatever file the link points \
                     to, which whoever made the link chose; give the real path (`readlink -f \
                     {shown}`)"
                )
            } else {
                format!("cannot open --output {shown}: check the path and its permissions")
            }
        })
    }

    pub fn emit(&mut self, line: &Line) {
        if let Some(held) = &mut self.held {
            held.push(line.clone());
            return;
        }
        let now = clock::boot_ns();
        if let Some(stdout) = &mut self.stdout {
            stdout.emit(line, now);
        }
        if let Some(file) = &mut self.file {
            file.emit(line, now);
        }
    }

    /// `ready`, first, then what was emitted before it.
    pub fn ready(&mut self, ready: &Line) {
        let early = self.held.take().unwrap_or_default();
        self.emit(ready);
        for line in &early {
            self.emit(line);
        }
    }

    /// Sums up the floods of reports whose second is over, or all of them
    /// (`all`, when the tracer stops).
    pub fn floods(&mut self, all: bool) {
        if let Some(stdout) = &mut self.stdout {
            stdout.floods(clock::boot_ns(), all);
        }
    }

    pub fn flush(&mut self) -> Result<(), WriteError> {
        if let Some(stdout) = &mut self.stdout
            && let Err(e) = stdout.flush()
        {
            self.stdout_failed(e)?;
        }
        match &mut self.file {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }

    /// Whether stdout's reader is still there, asked without writing: a
    /// quiet tracer piped into `head -1` stops (and detaches) within a tick
    /// of its reader going, not at its next finding.
    pub fn watch_stdout(&mut self) -> Result<(), WriteError> {
        if self.stdout.is_some() && writer::stdout_reader_gone() {
            self.stdout_failed(WriteError::Closed)?;
        }
        Ok(())
    }

    /// Stdout failed: with a file to write, tracing goes on without it.
    fn stdout_failed(&mut self, e: WriteError) -> Result<(), WriteError> {
        if self.file.is_none() {
            return Err(e);
        }
        log::warn!("{e}: findings go on to the --output file only");
        self.stdout = None;
        Ok(())
    }

    /// SIGHUP: logrotate moved the `--output` file.
    pub fn reopen(&mut self) -> Result<(), WriteError> {
        match &mut self.file {
            Some(file) => file.writer.reopen(),
            None => Ok(()),
        }
    }

    pub fn finish(self) -> Result<(), WriteError> {
        let file = self.file.map_or(Ok(()), |f| f.writer.finish());
        let stdout = self.stdout.map_or(Ok(()), |s| s.writer.finish());
        file.and(stdout)
    }
}

/// One destination: its encoder, and for text, its flood gate.
struct Sink {
    encoder: Encoder,
    /// Text for people sums up floods of reports; JSON has them all.
    flood: Option<FloodGate>,
    /// Encoded lines not yet handed to the writer.
    pending: Vec<u8>,
    writer: Writer,
}

impl Sink {
    fn new(format: Format, writer: Writer, node: Arc<str>) -> Self {
        Self {
            encoder: Encoder::new(format).on_node(node),
            flood: (format == Format::Text).then(FloodGate::default),
            pending: Vec::new(),
            writer,
        }
    }

    fn emit(&mut self, line: &Line, now_ns: u64) {
        // A second that is over is summed up before the next one begins.
        self.floods(now_ns, false);
        let text = match (line, &mut self.flood) {
            (Line::Zombie(z), Some(gate)) => match gate.admit(z, now_ns) {
                Shown::Full => self.encoder.encode_at(line, Some(now_ns)),
                Shown::Brief { diagnosis } => self.encoder.encode_brief(z, diagnosis),
                Shown::Held => return,
            },
            (Line::Reaped { reaped, .. }, Some(gate)) if reaped.was_reported => {
                if !gate.admit_reap(reaped, now_ns) {
                    return;
                }
                self.encoder.encode_at(line, Some(now_ns))
            }
            _ => self.encoder.encode_at(line, Some(now_ns)),
        };
        self.pending.extend_from_slice(text.as_bytes());
    }

    /// The sums of the floods whose second is over (`all`: every one).
    fn floods(&mut self, now_ns: u64, all: bool) {
        let Some(gate) = &mut self.flood else {
            return;
        };
        let floods = if all {
            gate.all(now_ns)
        } else {
            gate.due(now_ns)
        };
        for flood in &floods {
            let text = self.encoder.encode_flood(flood, SystemTime::now(), now_ns);
            self.pending.extend_from_slice(text.as_bytes());
        }
    }

    /// Hands what was emitted to the writer, in one piece: a reader sees
    /// whole lines.
    fn flush(&mut self) -> Result<(), WriteError> {
        self.writer.write(std::mem::take(&mut self.pending))
    }
}
