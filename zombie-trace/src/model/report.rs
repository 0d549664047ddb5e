//! What zombie-trace tells the operator: one type per kind of output line.
//! Filled in by the session from the engine's findings and `/proc`,
//! rendered by `output`. Plain data, no I/O.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, SystemTime},
};

use crate::model::{
    diagnosis::Diagnosis,
    event::{Comm, Command, ExitStatus, ParentName},
    process::{Placement, ProcessInfo, WaitStats},
};

/// A child left unreaped past the threshold (or found at start-up).
#[derive(Clone, Debug, PartialEq)]
pub struct Zombie {
    pub ts: SystemTime,
    pub pid: u32,
    pub comm: Comm,
    /// `None` when the exit was not seen (a pre-existing zombie).
    pub status: Option<ExitStatus>,
    /// Time since the process died; `None` when unknown.
    pub age_ns: Option<u64>,
    pub preexisting: bool,
    /// Parent at exit, when the exit was seen.
    pub ppid_at_exit: Option<u32>,
    /// The parent now (it may have been reparented).
    pub ppid: u32,
    /// The parent that forked it, when another has it now: it was adopted
    /// alive (its parent died first) or as a zombie.
    pub original_parent: Option<ParentName>,
    pub parent: Option<ProcessInfo>,
    /// The child's own placement (read while it is a zombie).
    pub placement: Placement,
    /// `None` when wait calls are not traced (no tracefs, or `ps`).
    pub parent_waits: Option<WaitStats>,
    /// Why it is not reaped (`output` says it in a sentence).
    pub diagnosis: Diagnosis,
    /// What it ran, when its exec (or its parent's) was seen.
    pub command: Option<Arc<Command>>,
    /// Where its parent forked it (`--stacks`), when captured.
    pub spawn_stack: Option<Vec<Frame>>,
}

/// One frame of a spawn stack (`--stacks`), innermost first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    /// The instruction pointer (first frame) or a return address.
    pub address: u64,
    pub symbol: Option<String>,
    /// `address` less the symbol's start.
    pub offset: Option<u64>,
    pub file: Option<String>,
    pub line: Option<u32>,
    /// The mapped file `address` is in.
    pub module: Option<String>,
}

impl std::fmt::Display for Frame {
    /// `symbol+0xoff (file:line)`, or what of it is known, as the text
    /// report shows a frame.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.symbol, self.offset) {
            (Some(symbol), Some(offset)) => write!(f, "{symbol}+{offset:#x}")?,
            (Some(symbol), None) => write!(f, "{symbol}")?,
            (None, _) => write!(f, "{:#x}", self.address)?,
        }
        match (&self.file, self.line, &self.module) {
            (Some(file), Some(line), _) => write!(f, " ({file}:{line})"),
            (Some(file), None, _) => write!(f, " ({file})"),
            (None, _, Some(module)) => {
                let name = module.rsplit('/').next().unwrap_or(module);
                write!(f, " ({name})")
            }
            (None, _, None) => Ok(()),
        }
    }
}

/// Who released a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReaperKind {
    /// Its parent collected it with `wait`.
    Parent,
    /// The kernel, at exit, because the parent ignores SIGCHLD.
    Kernel,
    /// Init (pid 1) after the parent died.
    Init,
    /// Another adoptive parent: a subreaper, or the init of a pid namespace.
    Subreaper,
    /// The exit was not seen, so the original parent is unknown.
    Unknown,
}

impl ReaperKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Parent => "parent",
            Self::Kernel => "kernel",
            Self::Init => "init",
            Self::Subreaper => "subreaper",
            Self::Unknown => "unknown",
        }
    }
}

/// A process was reaped (the engine's conclusion from the kernel's release
/// record, a wait call that collected it, or `/proc`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reaped {
    pub pid: u32,
    pub comm: Comm,
    /// When (boot ns); `None` when only `/proc` saw it go.
    pub ts_ns: Option<u64>,
    /// `None` when the reap record was lost and only `/proc` saw it go.
    pub reaper_pid: Option<u32>,
    pub reaper_comm: Option<Comm>,
    pub reaper_kind: ReaperKind,
    /// Exit to reap, when both were seen.
    pub zombie_ns: Option<u64>,
    /// It had been reported as a zombie.
    pub was_reported: bool,
    pub preexisting: bool,
}

/// A process died (`--events`).
#[derive(Clone, Debug, PartialEq)]
pub struct Exited {
    pub ts: SystemTime,
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub comm: Comm,
    pub parent_comm: Comm,
    pub status: ExitStatus,
    /// The kernel will reap it at once (parent ignores SIGCHLD).
    pub auto_reap: bool,
    pub command: Option<Arc<Command>>,
}

/// Records the kernel could not hand over.
#[derive(Clone, Debug, PartialEq)]
pub struct Lost {
    pub ts: SystemTime,
    /// Since the last `lost` line.
    pub count: u64,
    pub total: u64,
}

/// Everything is attached and the start-up scan is done.
#[derive(Clone, Debug, PartialEq)]
pub struct Ready {
    pub ts: SystemTime,
    pub version: &'static str,
    pub threshold_ms: u64,
    pub kernel: String,
    pub pid: u32,
    /// Zombies that already existed.
    pub preexisting: usize,
    /// Whether `wait` calls are traced (needs tracefs).
    pub wait_tracing: bool,
    /// How, when they are.
    pub wait_hooks: Option<WaitHooks>,
    pub startup: Startup,
}

/// How the wait calls are traced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitHooks {
    /// fexit on the kernel functions behind the wait syscalls: nothing
    /// else pays.
    Trampolines,
    /// The syscall tracepoints, where the kernel refuses trampolines:
    /// every syscall of every process takes the kernel's slow path.
    Tracepoints,
}

impl WaitHooks {
    pub fn name(self) -> &'static str {
        match self {
            WaitHooks::Trampolines => "trampolines",
            WaitHooks::Tracepoints => "tracepoints",
        }
    }
}

/// Where the time from start to `ready` went.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Startup {
    /// Reading and indexing the kernel's BTF.
    pub btf: Duration,
    /// Making the maps and loading the programs (the verifier's work).
    pub load: Duration,
    pub attach: Duration,
    /// The `/proc` scan for zombies already there.
    pub scan: Duration,
}

/// Zombies still outstanding under one parent.
#[derive(Clone, Debug, PartialEq)]
pub struct ParentGroup {
    pub ppid: u32,
    pub parent_comm: Vec<u8>,
    pub zombies: Vec<u32>,
    /// The same zombies by their command's name, most first.
    pub by_command: Vec<(Vec<u8>, u64)>,
    /// Age of the oldest, when known.
    pub oldest_ns: Option<u64>,
    /// Some were zombies already when tracing began (their age is not
    /// known, but is more than tracing's).
    pub preexisting: bool,
}

impl ParentGroup {
    /// `by_command` of zombies whose commands' names are `names`: counted
    /// once, then sorted once (a parent may hold thousands).
    pub fn count_commands<'a>(names: impl IntoIterator<Item = &'a [u8]>) -> Vec<(Vec<u8>, u64)> {
        let mut counts: HashMap<&[u8], u64> = HashMap::new();
        for name in names {
            *counts.entry(name).or_default() += 1;
        }
        let mut rows: Vec<(Vec<u8>, u64)> = counts
            .into_iter()
            .map(|(name, n)| (name.to_vec(), n))
            .collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        rows
    }
}

/// Exit-to-reap times: how many, and quantiles from a log2 histogram (each
/// at most 2x above the truth, never above the maximum).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    pub count: u64,
    pub p50_ns: Option<u64>,
    pub p99_ns: Option<u64>,
    pub max_ns: Option<u64>,
}

/// A parent that holds or has held zombies.
#[derive(Clone, Debug, PartialEq)]
pub struct ParentRow {
    pub ppid: u32,
    pub comm: Vec<u8>,
    pub cmdline: Vec<Vec<u8>>,
    pub zombies_now: u64,
    pub zombies_ever: u64,
    /// Zombies ever per minute of its life while traced.
    pub leak_per_min: f64,
    /// Age of its oldest zombie now, when known.
    pub oldest_ns: Option<u64>,
    /// How long the children it reaped had been zombies.
    pub reaps: Latency,
    /// Its zombies by their command's name, most now (then ever) first.
    pub by_command: Vec<CommandRow>,
}

/// A parent's zombies of one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandRow {
    /// The name of the program (see `Command::name`), else the child's
    /// own name.
    pub command: Vec<u8>,
    pub zombies_now: u64,
    pub zombies_ever: u64,
}

/// Totals so far: every `--summary-interval`, and last on a clean stop.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub ts: SystemTime,
    /// The last one, on a clean stop.
    pub last: bool,
    pub duration_ns: u64,
    pub exits: u64,
    pub reaps: u64,
    pub zombies: u64,
    pub preexisting: u64,
    pub lost: u64,
    pub outstanding: Vec<ParentGroup>,
    pub parents: Vec<ParentRow>,
    pub reap_latency: Latency,
    /// By the reaper's name, busiest first.
    pub reap_latency_by_comm: Vec<(Vec<u8>, Latency)>,
}

/// The last line of `zombie-trace ps`: the zombies that exist now, by
/// parent.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub ts: SystemTime,
    pub zombies: usize,
    pub by_parent: Vec<ParentGroup>,
    /// Run as root: every parent's details could be read.
    pub full_detail: bool,
}

/// One line of output.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    Ready(Ready),
    Zombie(Box<Zombie>),
    /// At `ts` (wall clock).
    Reaped {
        ts: SystemTime,
        reaped: Reaped,
    },
    Exited(Exited),
    Lost(Lost),
    Summary(Summary),
    Snapshot(Snapshot),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_counted_most_first_then_by_name() {
        let names: [&[u8]; 6] = [b"ssh", b"git", b"git", b"convert", b"git", b"ssh"];
        assert_eq!(
            ParentGroup::count_commands(names),
            [
                (b"git".to_vec(), 3),
                (b"ssh".to_vec(), 2),
                (b"convert".to_vec(), 1)
            ]
        );
        assert!(ParentGroup::count_commands([]).is_empty());
    }
}
