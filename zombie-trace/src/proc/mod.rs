//! What `/proc` says about a process now: the start-up zombie scan, the
//! check that a zombie is still there before it is reported, and the
//! parent's state for the diagnosis.
//!
//! Everything read here is untrusted and racy: a process may exit, be
//! reaped, or have its pid reused between two reads, and its name and
//! arguments are whatever bytes it chose. Files are read relative to the
//! `/proc/PID` directory opened once (procfs keeps its fd), so a reused pid
//! fails the reads instead of mixing two processes. The parsers
//! ([`crate::proc::parse`]) take the raw bytes, so names stay exact and odd
//! content degrades to `None`.

use std::io::Read as _;

use procfs::process::Process;

pub mod container;
pub mod parse;

use crate::model::{
    event::{Comm, WaitTarget},
    process::{Placement, ProcessInfo, RECENT_TARGETS, TargetState, WaitNow},
    time::ticks_to_ns,
};
use parse::{
    container_id, parse_cgroup, parse_cgroup_v2, parse_ns_pid, parse_pidfd_pid, parse_sigchld,
    parse_stat, parse_syscall, parse_wait_call, parse_wchan, split_cmdline,
};

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot list /proc: {0}")]
    ListProc(#[from] procfs::ProcError),
}

/// A process in the zombie state found by [`zombies`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcZombie {
    pub pid: u32,
    pub comm: Comm,
    pub ppid: u32,
    /// `starttime` from `/proc/PID/stat`, in clock ticks since boot; see
    /// [`ns_to_ticks`].
    pub start_ticks: u64,
}

/// What a pid is now, compared with the process seen before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZombieState {
    /// Still the same process, still unreaped.
    Zombie { ppid: u32 },
    /// The same process, but alive.
    NotZombie,
    /// Reaped, or the pid now belongs to another process.
    Gone,
    /// `/proc` could not be asked (no file descriptor left, say).
    Unknown,
}

/// Every zombie process on the system. Processes that vanish or cannot be
/// read during the scan are skipped: they are not zombies any more, or the
/// engine sees them through their reap.
pub fn zombies() -> Result<Vec<ProcZombie>, ScanError> {
    Ok(procfs::process::all_processes()?
        .filter_map(Result::ok)
        .filter_map(|process| {
            let stat = parse_stat(&read(&process, "stat")?)?;
            let pid = u32::try_from(process.pid()).ok()?;
            stat.is_zombie().then(|| ProcZombie {
                pid,
                comm: Comm::new(&stat.comm),
                ppid: stat.ppid,
                start_ticks: stat.start_ticks,
            })
        })
        .collect())
}

/// Whether `pid` is still the zombie that started at `start_ticks`. When in
/// doubt the answer is not `Zombie`: a wrong "gone" costs a missed report, a
/// wrong "zombie" a false one.
pub fn zombie_state(pid: u32, start_ticks: u64) -> ZombieState {
    match open_checked(pid) {
        Ok(process) => state_of(&process, start_ticks),
        Err(state) => state,
    }
}

/// [`zombie_state`], and where the zombie lived when it still is one (as
/// [`zombie_placement`]), from one open of its `/proc` directory. Two files
/// are read only when needed, since a flood of zombies makes every read
/// count: its pid in its own pid namespace only if `in_pid_ns` (a child
/// known to be in the host's has none), and its cgroup only if
/// `parent_cgroup(ppid)` does not give it (a child known to have been in
/// its parent's cgroups has its parent's; a zombie's own shows `/` on
/// cgroup v1).
pub fn zombie_state_and_placement(
    pid: u32,
    start_ticks: u64,
    in_pid_ns: bool,
    parent_cgroup: impl FnOnce(u32) -> Option<Option<String>>,
) -> (ZombieState, Placement) {
    let process = match open_checked(pid) {
        Ok(process) => process,
        Err(state) => return (state, Placement::default()),
    };
    let state = state_of(&process, start_ticks);
    let placement = match state {
        ZombieState::Zombie { ppid } => match parent_cgroup(ppid) {
            Some(cgroup) => Placement {
                container_id: cgroup.as_deref().and_then(container_id),
                cgroup,
                ns_pid: in_pid_ns.then(|| ns_pid_of(&process)).flatten(),
                ..Placement::default()
            },
            None => zombie_placement_of(&process, in_pid_ns),
        },
        _ => Placement::default(),
    };
    (state, placement)
}

fn open_checked(pid: u32) -> Result<Process, ZombieState> {
    match i32::try_from(pid).map(Process::new) {
        Ok(Ok(process)) => Ok(process),
        Ok(Err(procfs::ProcError::NotFound(_))) | Err(_) => Err(ZombieState::Gone),
        // Out of file descriptors, say: that says nothing about the process.
        Ok(Err(_)) => Err(ZombieState::Unknown),
    }
}

fn state_of(process: &Process, start_ticks: u64) -> ZombieState {
    let Some(stat) = read(process, "stat").and_then(|bytes| parse_stat(&bytes)) else {
        return ZombieState::Gone;
    };
    if stat.start_ticks != start_ticks || stat.state == 'X' {
        ZombieState::Gone
    } else if stat.is_zombie() {
        ZombieState::Zombie { ppid: stat.ppid }
    } else {
        ZombieState::NotZombie
    }
}

/// The process as `/proc` shows it, `None` when it no longer exists. Files
/// that cannot be read (permissions, kernel config, a race with its exit)
/// leave their field empty.
pub fn process_info(pid: u32) -> Option<ProcessInfo> {
    let process = open(pid)?;
    let stat = parse_stat(&read(&process, "stat")?)?;
    let placement = placement_of(&process, true);
    Some(ProcessInfo {
        pid,
        comm: stat.comm,
        cmdline: read(&process, "cmdline")
            .map(|bytes| split_cmdline(&bytes))
            .unwrap_or_default(),
        state: stat.state,
        wchan: read(&process, "wchan").and_then(|bytes| parse_wchan(&bytes)),
        syscall: read(&process, "syscall").and_then(|bytes| parse_syscall(&bytes)),
        waits_now: waits_now(&process, pid, placement.ns_pid.is_none()),
        sigchld: read(&process, "status").and_then(|bytes| parse_sigchld(&bytes)),
        ppid: stat.ppid,
        threads: stat.threads,
        start_ticks: stat.start_ticks,
        placement,
    })
}

/// The wait calls the threads of process `pid` are in now, from each
/// thread's `syscall` file (its syscall number and arguments): this also
/// sees calls begun before the tracer. The lowest thread ids first, at most
/// [`RECENT_TARGETS`]. `host_pids`: the process is in the host's pid
/// namespace, so the pids it names are the host's.
fn waits_now(process: &Process, pid: u32, host_pids: bool) -> Vec<WaitNow> {
    let Ok(tasks) = process.tasks() else {
        return Vec::new();
    };
    let mut tids: Vec<u32> = tasks
        .filter_map(Result::ok)
        .filter_map(|task| u32::try_from(task.tid).ok())
        .collect();
    tids.sort_unstable();
    let mut calls = Vec::new();
    for tid in tids {
        let Some(call) =
            read(process, &format!("task/{tid}/syscall")).and_then(|bytes| parse_wait_call(&bytes))
        else {
            continue;
        };
        // The host pid of the one child it names, where that is known: a
        // pidfd's fdinfo gives it in the reader's (the host's) namespace.
        let child = match call.target {
            WaitTarget::Pid(p) if host_pids => u32::try_from(p).ok().filter(|&p| p > 0),
            WaitTarget::Pidfd(fd) => {
                read(process, &format!("fdinfo/{fd}")).and_then(|bytes| parse_pidfd_pid(&bytes))
            }
            _ => None,
        };
        calls.push(WaitNow {
            tid,
            syscall: call.syscall,
            target: call.target,
            options: call.options,
            child,
            state: child.map(|child| child_state(pid, child)),
        });
        if calls.len() == RECENT_TARGETS {
            break;
        }
    }
    calls
}

/// Whether a process `pid` exists now.
pub fn exists(pid: u32) -> bool {
    open(pid).is_some()
}

/// Where cgroup v2 is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified`
/// on hybrid systems), from `/proc/self/mounts`.
pub fn cgroup2_mounts() -> Vec<std::path::PathBuf> {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, dir, kind) = (f.next()?, f.next()?, f.next()?);
            (kind == "cgroup2").then(|| std::path::PathBuf::from(dir))
        })
        .collect()
}

/// This machine's host name (`uname -n`), when it has a printable one.
pub fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim_end_matches('\n');
    (!name.is_empty() && !name.chars().any(char::is_control)).then(|| name.to_owned())
}

/// The cgroup v2 path of process `pid` (`0::/path`), for `--cgroup`.
pub fn cgroup_v2(pid: u32) -> Option<String> {
    parse_cgroup_v2(&read(&open(pid)?, "cgroup")?)
}

/// The name of process `pid`, `None` when it no longer exists.
pub fn comm(pid: u32) -> Option<Vec<u8>> {
    let process = open(pid)?;
    Some(parse_stat(&read(&process, "stat")?)?.comm)
}

/// What host pid `pid` is to process `parent` now.
pub fn child_state(parent: u32, pid: u32) -> TargetState {
    let Some(process) = open(pid) else {
        return TargetState::Gone;
    };
    match read(&process, "stat").and_then(|bytes| parse_stat(&bytes)) {
        None => TargetState::Gone,
        Some(stat) if stat.ppid != parent => TargetState::NotAChild,
        Some(stat) if stat.is_zombie() => TargetState::ZombieChild,
        Some(_) => TargetState::LiveChild,
    }
}

/// Where zombie `pid` lived (cgroup, namespaced pid, container id). Once a
/// task has exited, its cgroup v1 paths read as `/`: that says nothing
/// about where it was, so `/` is left out.
pub fn zombie_placement(pid: u32) -> Placement {
    open(pid)
        .map(|p| zombie_placement_of(&p, true))
        .unwrap_or_default()
}

fn zombie_placement_of(process: &Process, in_pid_ns: bool) -> Placement {
    let mut placement = placement_of(process, in_pid_ns);
    if placement.cgroup.as_deref() == Some("/") {
        placement.cgroup = None;
    }
    placement
}

fn placement_of(process: &Process, in_pid_ns: bool) -> Placement {
    let cgroup = read(process, "cgroup").and_then(|bytes| parse_cgroup(&bytes));
    Placement {
        container_id: cgroup.as_deref().and_then(container_id),
        cgroup,
        ns_pid: in_pid_ns.then(|| ns_pid_of(process)).flatten(),
        ..Placement::default()
    }
}

fn ns_pid_of(process: &Process) -> Option<u32> {
    read(process, "status").and_then(|bytes| parse_ns_pid(&bytes))
}

/// Boot-time ns of a `/proc/PID/stat` start time (to the tick).
pub fn boot_ns_from_ticks(ticks: u64) -> u64 {
    ticks_to_ns(ticks, procfs::ticks_per_second())
}

fn open(pid: u32) -> Option<Process> {
    Process::new(i32::try_from(pid).ok()?).ok()
}

/// The whole file, in one read when it fits a page. `/proc` files say they
/// are empty, so `read_to_end` would ask their size, probe with a small
/// read, then read once more to find the end: three syscalls more per
/// file, which count when thousands of zombies are checked. A `/proc/PID`
/// file fills as much of a read as it has (a `seq_file` copies its whole
/// output, `cmdline` page after page), so a read that leaves room is the
/// end.
fn read(process: &Process, file: &str) -> Option<Vec<u8>> {
    let mut file = process.open_relative(file).ok()?;
    let mut bytes = vec![0; 4096];
    let mut len = 0;
    loop {
        match file.read(&mut bytes[len..]) {
            Ok(n) => {
                len += n;
                if n == 0 || len < bytes.len() {
                    break;
                }
                bytes.resize(len * 2, 0);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    bytes.truncate(len);
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_is_alive() {
        let me = std::process::id();
        let info = process_info(me).unwrap();
        assert_eq!(info.pid, me);
        assert!(!info.comm.is_empty());
        assert!(!info.cmdline.is_empty());
        assert!(info.sigchld.is_some());
        assert!(info.threads >= 1);
        assert_eq!(info.ppid, std::os::unix::process::parent_id());
        let start = parse_stat(&read(&open(me).unwrap(), "stat").unwrap())
            .unwrap()
            .start_ticks;
        assert_eq!(zombie_state(me, start), ZombieState::NotZombie);
        assert_eq!(zombie_state(me, start + 1), ZombieState::Gone);
        assert_eq!(zombie_state(u32::MAX, start), ZombieState::Gone);
        assert_eq!(process_info(u32::MAX), None);
    }

    #[test]
    fn finds_a_zombie() {
        let child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let found = loop {
            if let Some(z) = zombies().unwrap().into_iter().find(|z| z.pid == pid) {
                break z;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "child never became a zombie"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert_eq!(found.ppid, std::process::id());
        assert_eq!(found.comm, Comm::new(b"true"));
        assert_eq!(
            zombie_state(pid, found.start_ticks),
            ZombieState::Zombie {
                ppid: std::process::id()
            }
        );
        assert_eq!(process_info(pid).unwrap().state, 'Z');
        let mut child = child;
        child.wait().unwrap();
        assert_eq!(zombie_state(pid, found.start_ticks), ZombieState::Gone);
    }

    /// A process that goes between the reads that describe it is "gone":
    /// no error, no half-read record.
    #[test]
    fn a_process_gone_between_reads_reads_as_gone() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let process = open(pid).expect("the sleeper's /proc entry");
        assert!(read(&process, "stat").is_some());
        child.kill().unwrap();
        child.wait().unwrap();
        // The directory was opened while it lived; it is empty now.
        for file in ["stat", "status", "cmdline", "wchan", "syscall", "cgroup"] {
            assert_eq!(read(&process, file), None, "{file}");
        }
        assert!(process_info(pid).is_none());
        assert!(waits_now(&process, pid, true).is_empty());
        assert_eq!(zombie_placement(pid), Placement::default());
    }
}
