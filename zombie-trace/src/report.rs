//! What zombie-trace tells the operator: one type per kind of output line.
//! Filled in by the engine (`engine`) and `/proc` inspection (`inspect`),
//! rendered by `output`. Plain data, no I/O.

use std::time::SystemTime;

use crate::event::{Comm, ExitStatus, WaitSyscall, WaitTarget};

/// How the parent handles SIGCHLD, from `/proc/PID/status`
/// (`SigIgn`/`SigBlk`/`SigCgt`, bit 16 for signal 17).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sigchld {
    pub ignored: bool,
    pub caught: bool,
    pub blocked: bool,
}

impl Sigchld {
    /// `"default"`, `"ignored"` or `"caught"`, with `"+blocked"` when blocked.
    pub fn describe(&self) -> String {
        let base = if self.ignored {
            "ignored"
        } else if self.caught {
            "caught"
        } else {
            "default"
        };
        if self.blocked {
            format!("{base}+blocked")
        } else {
            base.to_owned()
        }
    }
}

/// The wait calls a process made since tracing began.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WaitStats {
    /// `wait4`/`waitid` calls that returned.
    pub calls: u64,
    /// Calls that collected (reaped) a child.
    pub reaped: u64,
    /// `WNOHANG` calls that found nothing to collect.
    pub empty: u64,
    /// Calls that failed (`ECHILD`, `EINTR`, ...).
    pub errors: u64,
    /// Calls that only peeked (`WNOWAIT`).
    pub peeks: u64,
    /// Boot-time ns of the last call's return.
    pub last_ns: Option<u64>,
    /// The distinct targets most recently asked for, most recent first (at
    /// most [`RECENT_TARGETS`]).
    pub targets: Vec<RecentWait>,
}

/// Distinct wait targets kept per caller: the most recently asked for.
pub const RECENT_TARGETS: usize = zombie_trace_common::WAIT_TARGETS;

impl WaitStats {
    /// Whether every target asked for since `since_ns` (boot ns) is in
    /// `targets`: none was pushed out by newer ones. One was only if the
    /// list is full and every kept one is at least as new.
    pub fn all_targets_since(&self, since_ns: u64) -> bool {
        self.targets.len() < RECENT_TARGETS || self.targets.iter().any(|t| t.last_ns < since_ns)
    }
}

/// A target the parent's finished wait calls asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecentWait {
    pub target: WaitTarget,
    /// Boot-time ns of the last call for it.
    pub last_ns: u64,
    /// For a pid, what that pid is now; `None` when unknown.
    pub state: Option<TargetState>,
}

/// What the pid a wait call names is, to its caller, when the report is
/// made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetState {
    /// Its child, still running: a call for it blocks until it exits.
    LiveChild,
    /// Its child, exited and not yet reaped.
    ZombieChild,
    /// Another process's (or the pid now belongs to one).
    NotAChild,
    /// No such process now: reaped long ago, perhaps.
    Gone,
}

impl TargetState {
    pub fn name(self) -> &'static str {
        match self {
            Self::LiveChild => "live_child",
            Self::ZombieChild => "zombie_child",
            Self::NotAChild => "not_a_child",
            Self::Gone => "gone",
        }
    }
}

/// A `wait4`/`waitid` call a thread of a process is in now, from
/// `/proc/PID/task/TID/syscall` (calls begun before tracing included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitNow {
    pub tid: u32,
    pub syscall: WaitSyscall,
    pub target: WaitTarget,
    pub options: u32,
    /// The host pid it waits for, when one child is named and its pid is
    /// known (a pid from the host's pid namespace, or a pidfd's).
    pub child: Option<u32>,
    /// What `child` is now.
    pub state: Option<TargetState>,
}

impl WaitNow {
    /// Sleeps until a child changes state (no `WNOHANG`).
    pub fn blocks(&self) -> bool {
        self.options & crate::event::WNOHANG == 0
    }
}

/// Where a process lives, for containers: all `None` when unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// Its cgroup path (cgroup v2, or the first named v1 hierarchy).
    pub cgroup: Option<String>,
    /// Its pid inside its own pid namespace, when that is not the host's.
    pub ns_pid: Option<u32>,
    /// A container runtime's id (12 hex digits) found in `cgroup`.
    pub container_id: Option<String>,
}

/// A process as `/proc` shows it now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: u32,
    pub comm: Vec<u8>,
    /// Arguments as the kernel holds them (untrusted bytes).
    pub cmdline: Vec<Vec<u8>>,
    /// The state letter from `/proc/PID/stat` (`S`, `R`, `D`, `Z`, `T`...).
    pub state: char,
    /// What it sleeps in (`/proc/PID/wchan`), when known and not `0`.
    pub wchan: Option<String>,
    /// The syscall it is in (`/proc/PID/syscall`), by name when known.
    pub syscall: Option<String>,
    /// The wait calls its threads are in now (at most
    /// [`RECENT_TARGETS`], the lowest thread ids).
    pub waits_now: Vec<WaitNow>,
    pub sigchld: Option<Sigchld>,
    pub ppid: u32,
    pub threads: u32,
    /// `starttime` in clock ticks since boot.
    pub start_ticks: u64,
    pub placement: Placement,
}

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
    pub parent: Option<ProcessInfo>,
    /// The child's own placement (read while it is a zombie).
    pub placement: Placement,
    /// `None` when wait calls are not traced (no tracefs, or `ps`).
    pub parent_waits: Option<WaitStats>,
    /// One sentence on why it is not reaped and what to look at.
    pub diagnosis: String,
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

/// A process was reaped.
#[derive(Clone, Debug, PartialEq)]
pub struct Reaped {
    pub ts: SystemTime,
    pub pid: u32,
    pub comm: Comm,
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
}

/// Zombies still outstanding under one parent.
#[derive(Clone, Debug, PartialEq)]
pub struct ParentGroup {
    pub ppid: u32,
    pub parent_comm: Vec<u8>,
    pub zombies: Vec<u32>,
    /// Age of the oldest, when known.
    pub oldest_ns: Option<u64>,
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
    Reaped(Reaped),
    Exited(Exited),
    Lost(Lost),
    Summary(Summary),
    Snapshot(Snapshot),
}
