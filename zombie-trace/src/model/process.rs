//! What a process is, as `/proc` and the wait-call tallies describe it:
//! its state, the syscall and wait calls it is in, how it handles SIGCHLD,
//! where it lives, and the wait calls it made. Plain data, no I/O.

use crate::model::event::{WaitSyscall, WaitTarget};

/// How the parent handles SIGCHLD, from `/proc/PID/status`
/// (`SigIgn`/`SigBlk`/`SigCgt`, bit 16 for signal 17).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sigchld {
    pub ignored: bool,
    pub caught: bool,
    pub blocked: bool,
}

impl Sigchld {
    /// What it does with SIGCHLD, blocking aside.
    pub fn handler(self) -> Handler {
        if self.ignored {
            Handler::Ignored
        } else if self.caught {
            Handler::Caught
        } else {
            Handler::Default
        }
    }

    /// `"default"`, `"ignored"` or `"caught"`, with `"+blocked"` when blocked.
    pub fn describe(&self) -> String {
        let base = self.handler().name();
        if self.blocked {
            format!("{base}+blocked")
        } else {
            base.to_owned()
        }
    }
}

/// What a parent does with SIGCHLD (blocking aside).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handler {
    Default,
    Ignored,
    Caught,
}

impl Handler {
    pub fn name(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Ignored => "ignored",
            Self::Caught => "caught",
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
    /// The list of targets was full: older ones may have been pushed out.
    pub full: bool,
}

/// Distinct wait targets kept per caller: the most recently asked for.
pub const RECENT_TARGETS: usize = zombie_trace_common::WAIT_TARGETS;

impl WaitStats {
    /// Whether every target asked for since `since_ns` (boot ns) is in
    /// `targets`: none was pushed out by newer ones. One was only if the
    /// list was full and every kept one is at least as new.
    pub fn all_targets_since(&self, since_ns: u64) -> bool {
        !self.full || self.targets.iter().any(|t| t.last_ns < since_ns)
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
        self.options & crate::model::event::WNOHANG == 0
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
    /// What the container's runtime calls it (see [`ContainerNames`]).
    pub names: ContainerNames,
}

/// What a container runtime says of a container, read from its own files
/// on the node: all `None` when nothing is found (not in a container, or
/// an unknown runtime).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerNames {
    /// The runtime's name for it (`docker run --name`, `podman run
    /// --name`), or Kubernetes' container name when it runs in a pod.
    pub name: Option<String>,
    /// Kubernetes: the pod's name and namespace.
    pub pod_name: Option<String>,
    pub pod_namespace: Option<String>,
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
