//! Events as the rest of userspace sees them, decoded from the kernel's
//! records (see `decode`). Owned, validated, with kernel timestamps kept in
//! ns of `CLOCK_BOOTTIME` (the clock of both `bpf_ktime_get_boot_ns` and a
//! task's `start_boottime`).

use std::{fmt, sync::Arc};

use zombie_trace_common::{P_ALL, P_PGID, P_PID, P_PIDFD};

/// A process's identity: its global pid and its start time. A recycled pid
/// has another start time, so a stale record is never paired with the new
/// process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcKey {
    pub pid: u32,
    /// `start_boottime` in ns.
    pub start_ns: u64,
}

/// A process or thread name as the kernel keeps it: up to 16 raw bytes,
/// anything but NUL. Untrusted: whoever names a process picks these bytes.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Comm {
    bytes: [u8; 16],
    len: u8,
}

impl Comm {
    /// The bytes up to the first NUL.
    pub fn new(raw: &[u8]) -> Self {
        let end = raw
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(raw.len())
            .min(16);
        let mut bytes = [0; 16];
        bytes[..end].copy_from_slice(&raw[..end]);
        Self {
            bytes,
            len: end as u8,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Lossy UTF-8: the real bytes where they are text.
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(self.as_bytes()).into_owned()
    }
}

impl fmt::Debug for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string_lossy())
    }
}

/// What a process ran, as its exec started it (kept in the kernel from
/// the exec, since a zombie's `/proc/PID/cmdline` is empty). Untrusted
/// bytes: whoever runs a program picks its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// The path given to `execve` (relative if it was).
    pub exe: Vec<u8>,
    /// The argument strings kept, NUL-separated: the first bytes of them
    /// all, so the last may be cut short (`truncated`).
    argv: Vec<u8>,
    /// Bytes of argument strings the process had, NULs included.
    pub argv_bytes: u32,
    pub truncated: bool,
    /// It never exec'd itself: it runs the program of the parent that
    /// forked it, and this is that program's command.
    pub inherited: bool,
}

impl Command {
    /// `argv`: the first bytes of the NUL-terminated argument strings, of
    /// `argv_bytes` in all.
    pub fn new(exe: &[u8], argv: &[u8], argv_bytes: u32) -> Self {
        let truncated = (argv.len() as u64) < u64::from(argv_bytes);
        Self {
            exe: exe.to_vec(),
            argv: argv.to_vec(),
            argv_bytes,
            truncated,
            inherited: false,
        }
    }

    /// The argument strings kept (the last one cut short when
    /// `truncated`).
    pub fn args(&self) -> impl Iterator<Item = &[u8]> {
        // Each NUL ends a string; it does not start another.
        self.argv
            .split_inclusive(|&b| b == 0)
            .map(|arg| arg.strip_suffix(&[0]).unwrap_or(arg))
    }

    /// The name the summary groups by: the last part of `exe`, or of the
    /// first argument when there is no path.
    pub fn name(&self) -> &[u8] {
        let path = if self.exe.is_empty() {
            self.args().next().unwrap_or_default()
        } else {
            &self.exe
        };
        path.rsplit(|&b| b == b'/').next().unwrap_or(path)
    }
}

/// How a process ended, as `waitpid` decodes its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// `WIFEXITED`: the value passed to `exit`.
    Exited(u8),
    /// `WIFSIGNALED`: the terminating signal, and `WCOREDUMP`.
    Killed { signal: u8, core_dumped: bool },
}

impl ExitStatus {
    /// Decode a raw wait status word (`(code << 8) | signal | 0x80 core`).
    pub fn from_wait_status(status: u32) -> Self {
        let signal = (status & 0x7f) as u8;
        if signal == 0 {
            Self::Exited(((status >> 8) & 0xff) as u8)
        } else {
            Self::Killed {
                signal,
                core_dumped: status & 0x80 != 0,
            }
        }
    }
}

/// A whole process died (its last thread exited). It is now a zombie until
/// reaped, unless the kernel reaps it at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    pub key: ProcKey,
    /// The thread whose exit ended the group.
    pub tid: u32,
    /// Parent (`real_parent`) at exit.
    pub ppid: u32,
    pub ts_ns: u64,
    pub status: ExitStatus,
    pub comm: Comm,
    pub parent_comm: Comm,
    /// The parent ignores SIGCHLD: the kernel reaps this child itself.
    pub parent_ignores_sigchld: bool,
    pub ptraced: bool,
    /// Exit signal is not SIGCHLD (a `clone` child).
    pub not_sigchld: bool,
    /// The leader thread exited before the rest of its group.
    pub leader_went_first: bool,
    /// It has a pid of its own in a pid namespace below the host's (or
    /// that is not known).
    pub in_pid_ns: bool,
    /// It was in exactly its parent's cgroups.
    pub parent_cgroups: bool,
    /// What it ran, when its exec (or its parent's) was seen.
    pub command: Option<Arc<Command>>,
}

/// A parent process, as a child last knew it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParentName {
    pub pid: u32,
    pub comm: Comm,
}

impl Exit {
    /// The kernel releases it at once (see
    /// [`zombie_trace_common::auto_reaped`]).
    pub fn auto_reaped(&self) -> bool {
        zombie_trace_common::auto_reaped(
            self.parent_ignores_sigchld,
            self.ptraced,
            self.not_sigchld,
        )
    }
}

/// A process was released: it is gone from the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    pub key: ProcKey,
    pub ts_ns: u64,
    pub comm: Comm,
    /// `real_parent` when released: who reaped it (or on whose behalf the
    /// kernel did).
    pub reaper_pid: u32,
    pub reaper_comm: Comm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitSyscall {
    Wait4,
    Waitid,
}

impl WaitSyscall {
    pub fn name(self) -> &'static str {
        match self {
            Self::Wait4 => "wait4",
            Self::Waitid => "waitid",
        }
    }
}

/// Whom a wait call asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WaitTarget {
    /// Any child (`wait4(-1)`, `waitid(P_ALL)`).
    Any,
    /// One child, by pid (in the caller's pid namespace).
    Pid(i32),
    /// Any child in a process group (0: the caller's own group).
    Pgid(i32),
    /// A child by pidfd (`waitid(P_PIDFD)`).
    Pidfd(i32),
}

impl WaitTarget {
    /// What a `waitid` idtype (`P_*`) and id ask for; `None` for an idtype
    /// unknown here (the kernel refuses it too).
    pub fn from_idtype(idtype: u32, id: i32) -> Option<Self> {
        match idtype {
            P_ALL => Some(Self::Any),
            P_PID => Some(Self::Pid(id)),
            P_PGID => Some(Self::Pgid(id)),
            P_PIDFD => Some(Self::Pidfd(id)),
            _ => None,
        }
    }
}

pub use zombie_trace_common::{WCONTINUED, WEXITED, WNOHANG, WNOWAIT, WUNTRACED};

/// A `wait4`/`waitid` call that returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wait {
    pub syscall: WaitSyscall,
    /// The caller's process (tgid) and thread.
    pub pid: u32,
    pub tid: u32,
    pub comm: Comm,
    pub ts_ns: u64,
    pub target: WaitTarget,
    pub options: u32,
    /// The syscall's return value (`-errno` on failure).
    pub ret: i64,
    /// The child it reported, in the caller's pid namespace, if any.
    pub reported_pid: Option<i32>,
    /// Whether that report reaped the child (an exit or kill collected
    /// without `WNOWAIT`), rather than a peek or a stop/continue report.
    pub reaped: bool,
    /// The exit status it reported, when it reported an exit and the
    /// status could be read.
    pub status: Option<ExitStatus>,
    /// The caller is in the initial pid namespace: `reported_pid` is a
    /// global pid, comparable with the pids of exit and reap records.
    pub global_pids: bool,
}

/// A process replaced its program (`execve`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exec {
    pub pid: u32,
    pub ts_ns: u64,
}

/// Anything the kernel side sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Exit(Exit),
    Release(Release),
    Wait(Wait),
    Exec(Exec),
}
