//! Renders `report` lines: aligned text for people (`text`), JSON lines
//! for scripts (`json`), a diagnosis in a sentence (`sentence`), floods of
//! reports summed up for people (`flood`).
//!
//! Every line is exactly one line (the text summary excepted), whatever the
//! bytes inside: names and arguments come from the processes themselves, so
//! in text every control character is shown as a visible escape (`escape`),
//! and in JSON serde_json escapes them.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

mod escape;
pub mod flood;
mod json;
pub mod sentence;
mod text;

use crate::model::{
    event::{ExitStatus, WaitTarget},
    process::{ProcessInfo, TargetState, WaitNow, WaitStats},
    report::{Line, Zombie},
};
pub use escape::escape_text;
use flood::{Flood, Kind};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Clone, Debug)]
pub struct Encoder {
    format: Format,
    /// `--node-name`, for JSON's `node`.
    node: Option<Arc<str>>,
}

impl Encoder {
    pub fn new(format: Format) -> Self {
        Self { format, node: None }
    }

    /// JSON lines name `node` as where they come from.
    pub fn on_node(self, node: Arc<str>) -> Self {
        Self {
            node: Some(node),
            ..self
        }
    }

    /// One line, `\n`-terminated; the parent's last wait is aged against
    /// the boot-time clock now.
    pub fn encode(&self, line: &Line) -> String {
        self.encode_at(line, Some(crate::kernel::clock::boot_ns()))
    }

    /// As [`Encoder::encode`], with the `CLOCK_BOOTTIME` reading to age
    /// `WaitStats::last_ns` against (`None`: leave the age out).
    pub fn encode_at(&self, line: &Line, boot_now_ns: Option<u64>) -> String {
        let mut out = match self.format {
            Format::Json => json::line(line, boot_now_ns, self.node.as_deref()),
            Format::Text => text::line(line, boot_now_ns),
        };
        out.push('\n');
        out
    }

    /// A zombie line in a flood gate's brief form (see [`Shown::Brief`]):
    /// text only, JSON always has the whole line.
    pub fn encode_brief(&self, z: &Zombie, diagnosis: bool) -> String {
        let mut out = text::brief_zombie(z, diagnosis);
        out.push('\n');
        out
    }

    /// The line that sums up the reports a flood gate held back (text).
    pub fn encode_flood(&self, flood: &Flood, ts: SystemTime, boot_now_ns: u64) -> String {
        let mut out = text::flood(flood, ts, boot_now_ns);
        out.push('\n');
        out
    }
}

/// A target of the parent's wait calls, as the output lists them.
struct TargetRow<'a> {
    target: WaitTarget,
    /// The call in progress, for one.
    now: Option<&'a WaitNow>,
    /// When it was last asked for, for a recent one.
    last_ns: Option<u64>,
    /// The host pid of the child it names, when known.
    pid: Option<u32>,
    state: Option<TargetState>,
}

/// What the parent waits for now (a thread each), then what it waited for
/// most recently (newest first).
fn target_rows<'a>(p: &'a ProcessInfo, w: &WaitStats) -> Vec<TargetRow<'a>> {
    let now = p.waits_now.iter().map(|call| TargetRow {
        target: call.target,
        now: Some(call),
        last_ns: None,
        pid: call.child,
        state: call.state,
    });
    let recent = w.targets.iter().map(|t| TargetRow {
        target: t.target,
        now: None,
        last_ns: Some(t.last_ns),
        // A state is read only where the pid is the host's.
        pid: match t.target {
            WaitTarget::Pid(n) if t.state.is_some() => u32::try_from(n).ok(),
            _ => None,
        },
        state: t.state,
    });
    now.chain(recent).collect()
}

fn target_kind(target: &WaitTarget) -> &'static str {
    match target {
        WaitTarget::Any => "any",
        WaitTarget::Pid(_) => "pid",
        WaitTarget::Pgid(_) => "pgid",
        WaitTarget::Pidfd(_) => "pidfd",
    }
}

fn target_id(target: &WaitTarget) -> Option<i32> {
    match *target {
        WaitTarget::Any => None,
        WaitTarget::Pid(n) | WaitTarget::Pgid(n) | WaitTarget::Pidfd(n) => Some(n),
    }
}

/// `"any"`, `"pid N"`, ...: the strings of `parent_wait_targets`.
fn target_name(target: &WaitTarget) -> String {
    match target {
        WaitTarget::Any => "any".to_owned(),
        WaitTarget::Pid(n) => format!("pid {n}"),
        WaitTarget::Pgid(n) => format!("pgid {n}"),
        WaitTarget::Pidfd(n) => format!("pidfd {n}"),
    }
}

/// The zombie's parent's name, for its diagnosis (lossy UTF-8).
fn parent_name(z: &Zombie) -> String {
    z.parent
        .as_ref()
        .map(|p| lossy(&p.comm))
        .unwrap_or_default()
}

fn ms(ns: u64) -> u64 {
    ns / 1_000_000
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `humantime`'s RFC 3339 covers 1970 to 9999 and panics outside it; a
/// clock that far off is clamped.
fn since_epoch(ts: SystemTime) -> Duration {
    const END_OF_9999: Duration = Duration::new(253_402_300_799, 999_000_000);
    ts.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .min(END_OF_9999)
}

/// `(exit_code, signal, core_dumped)`.
fn status_fields(status: Option<ExitStatus>) -> (Option<u8>, Option<u8>, bool) {
    match status {
        Some(ExitStatus::Exited(code)) => (Some(code), None, false),
        Some(ExitStatus::Killed {
            signal,
            core_dumped,
        }) => (None, Some(signal), core_dumped),
        None => (None, None, false),
    }
}

fn last_wait_ms_ago(waits: &WaitStats, boot_now_ns: Option<u64>) -> Option<u64> {
    Some(ms(boot_now_ns?.saturating_sub(waits.last_ns?)))
}

/// `850ms`, `5.0s`, `2m03s`, `1h02m`, `3d04h`.
fn human_ms(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms}ms"),
        1..60 => format!("{s}.{}s", ms % 1000 / 100),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// `SIGKILL` for the common signals (this architecture's numbers).
fn signal_name(signal: u8) -> Option<&'static str> {
    Some(match i32::from(signal) {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGCONT => "SIGCONT",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGTSTP => "SIGTSTP",
        libc::SIGTTIN => "SIGTTIN",
        libc::SIGTTOU => "SIGTTOU",
        libc::SIGURG => "SIGURG",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGVTALRM => "SIGVTALRM",
        libc::SIGPROF => "SIGPROF",
        libc::SIGWINCH => "SIGWINCH",
        libc::SIGIO => "SIGIO",
        libc::SIGSYS => "SIGSYS",
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
