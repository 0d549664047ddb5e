//! The contract between the kernel programs and the loader.
//!
//! Every record that crosses the ring buffer starts with a `u32` kind, so the
//! reader can tell them apart before it checks the length and decodes. Only
//! plain integers and fixed arrays: both sides must agree on the layout byte
//! for byte, and the `#[repr(C)]` layout is that agreement.
#![no_std]

pub const COMM_LEN: usize = 16;

/// `kind` of an [`ExitRecord`].
pub const KIND_EXIT: u32 = 1;
/// `kind` of a [`ReapRecord`].
pub const KIND_REAP: u32 = 2;
/// `kind` of a [`WaitRecord`].
pub const KIND_WAIT: u32 = 3;
/// `kind` of an [`ExecRecord`].
pub const KIND_EXEC: u32 = 4;

/// The parent ignores SIGCHLD (`SIG_IGN` or `SA_NOCLDWAIT`) when the child's
/// group dies: the kernel will reap the child itself, no zombie.
pub const EXIT_PARENT_IGNORES_SIGCHLD: u32 = 1 << 0;
/// The child is ptraced: its tracer is told first and may reap it.
pub const EXIT_PTRACED: u32 = 1 << 1;
/// The child's exit signal is not SIGCHLD (a `clone` child): the parent must
/// wait with `__WCLONE`/`__WALL`, and an ignored SIGCHLD does not reap it.
pub const EXIT_NOT_SIGCHLD: u32 = 1 << 2;
/// The leader thread died before the group (e.g. `pthread_exit` in main):
/// the zombie clock starts now, at group death, not at the leader's exit.
pub const EXIT_LEADER_WENT_FIRST: u32 = 1 << 3;

/// A process (thread group) died: the last live thread passed
/// `sched_process_exit`. Identity is the leader's, since that is the task its
/// parent must reap.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitRecord {
    pub kind: u32,
    /// Global pid of the thread-group leader (the process id).
    pub tgid: u32,
    /// The thread whose exit ended the group.
    pub tid: u32,
    /// `real_parent`'s tgid at exit (not `parent`, which is the ptracer).
    pub ppid: u32,
    /// The leader's `start_boottime`, ns: with `tgid`, the identity of the
    /// process (a recycled pid has a different start time).
    pub start_ns: u64,
    /// `bpf_ktime_get_boot_ns()` at group death.
    pub ts_ns: u64,
    /// The status `wait` would hand the parent: `(code << 8) | signal`,
    /// `0x80` for a core dump.
    pub status: u32,
    /// `EXIT_*` flags.
    pub flags: u32,
    pub comm: [u8; COMM_LEN],
    pub parent_comm: [u8; COMM_LEN],
}

/// A process left the kernel's task list for good (`sched_process_free` of a
/// thread-group leader).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReapRecord {
    pub kind: u32,
    pub tgid: u32,
    pub start_ns: u64,
    /// `bpf_ktime_get_boot_ns()` when the task was freed (after an RCU grace
    /// period, so a few ms after `release_task`).
    pub ts_ns: u64,
    /// `real_parent`'s tgid when it was released: the process that reaped it
    /// (its parent, a subreaper or init) or, when the parent ignored SIGCHLD,
    /// the parent on whose behalf the kernel did.
    pub reaper_tgid: u32,
    pub _pad: u32,
    pub comm: [u8; COMM_LEN],
    pub reaper_comm: [u8; COMM_LEN],
}

pub const WAIT_SYSCALL_WAIT4: u32 = 1;
pub const WAIT_SYSCALL_WAITID: u32 = 2;

/// `idtype` values of `waitid(2)`; `wait4`'s `pid` argument is mapped onto
/// them (`-1` is `P_ALL`, `> 0` is `P_PID`, `0` and `< -1` are `P_PGID`).
pub const P_ALL: u32 = 0;
pub const P_PID: u32 = 1;
pub const P_PGID: u32 = 2;
pub const P_PIDFD: u32 = 3;

/// A `wait4` or `waitid` call returned.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitRecord {
    pub kind: u32,
    /// `WAIT_SYSCALL_*`.
    pub syscall: u32,
    /// The caller's process and thread.
    pub tgid: u32,
    pub tid: u32,
    pub enter_ns: u64,
    pub ts_ns: u64,
    /// What it waited for: `P_*` and the id (pid, pgid or pidfd).
    pub idtype: u32,
    pub id: i32,
    pub options: u32,
    /// The pid the call reported, in the caller's pid namespace (0: none).
    pub pid: i32,
    /// The syscall's return value (`-errno` on failure).
    pub ret: i64,
    /// `wait4`: the status word; `waitid`: `si_status`.
    pub status: i32,
    /// `waitid`: `si_code` (`CLD_*`); `wait4`: 1 when `status` could be
    /// read, 0 when not (a NULL status pointer, or nothing reported).
    pub code: i32,
    pub comm: [u8; COMM_LEN],
    /// The caller's pid namespace level (0: the initial namespace, where
    /// `pid` is the global pid; `u32::MAX`: unknown).
    pub pid_ns_level: u32,
    pub _pad: u32,
}

/// A process replaced its program (`execve`): what the old program did,
/// such as its wait calls, no longer describes it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecRecord {
    pub kind: u32,
    pub tgid: u32,
    pub ts_ns: u64,
}

/// A wait call in progress, kept per thread (key: `pid_tgid`) from entry to
/// return in the `WAIT_ARGS` map. Userspace reads it to tell which parents
/// are blocked in wait right now, and for whom.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WaitArgs {
    pub enter_ns: u64,
    /// `WAIT_SYSCALL_*`.
    pub syscall: u32,
    /// `P_*` and the id, as in [`WaitRecord`].
    pub idtype: u32,
    pub id: i32,
    pub options: u32,
    /// `wait4`'s `stat_addr` or `waitid`'s `infop` (user memory).
    pub uaddr: u64,
}

/// Per-CPU counters the programs keep (indices into the `COUNTERS` map).
pub const COUNTER_LOST_EXIT: u32 = 0;
pub const COUNTER_LOST_REAP: u32 = 1;
pub const COUNTER_LOST_WAIT: u32 = 2;
/// A `wait` call could not be tracked: too many threads blocked in wait.
pub const COUNTER_WAIT_UNTRACKED: u32 = 3;
/// A kernel read failed (a field offset the running kernel does not honour).
pub const COUNTER_READ_ERRORS: u32 = 4;
pub const COUNTER_LOST_EXEC: u32 = 5;
pub const COUNTERS_LEN: u32 = 6;

/// Where the fields the programs read live in the running kernel, taken from
/// its BTF and tracefs at start-up (Rust eBPF has no CO-RE relocations, so
/// offsets compiled in would be those of the build machine's kernel).
/// Handed over as a load-time global; all in bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offsets {
    pub task_pid: u32,
    pub task_tgid: u32,
    pub task_real_parent: u32,
    pub task_group_leader: u32,
    pub task_start_boottime: u32,
    pub task_exit_code: u32,
    pub task_exit_signal: u32,
    pub task_ptrace: u32,
    pub task_comm: u32,
    pub task_signal: u32,
    pub task_sighand: u32,
    /// `task_struct.thread_pid` (a `struct pid *`) and `pid.level`.
    pub task_thread_pid: u32,
    pub pid_level: u32,
    pub signal_live: u32,
    pub signal_flags: u32,
    pub signal_group_exit_code: u32,
    pub sighand_action: u32,
    /// Size of one `struct k_sigaction` (the stride of `sighand->action[]`).
    pub k_sigaction_size: u32,
    pub sigaction_handler: u32,
    pub sigaction_flags: u32,
    /// Offsets in the `syscalls:sys_enter_wait4` record.
    pub wait4_upid: u32,
    pub wait4_stat_addr: u32,
    pub wait4_options: u32,
    /// Offsets in the `syscalls:sys_enter_waitid` record.
    pub waitid_which: u32,
    pub waitid_upid: u32,
    pub waitid_infop: u32,
    pub waitid_options: u32,
    /// Offset of `ret` in the `syscalls:sys_exit_*` records.
    pub sys_exit_ret: u32,
}

/// Most values one filter option takes (`--pid`, `--ppid`).
pub const FILTER_MAX: usize = 8;

/// What to trace, set by the loader before loading (`--pid`, `--ppid`,
/// `--comm`, `--cgroup`); all zero traces everything. Applied in the kernel
/// so that what is filtered out costs no record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Processes (tgids) to trace; the first `n_pids` count.
    pub pids: [u32; FILTER_MAX],
    /// Parents whose children to trace; the first `n_ppids` count.
    pub ppids: [u32; FILTER_MAX],
    pub n_pids: u32,
    pub n_ppids: u32,
    /// A process name, NUL-padded as the kernel keeps it (`comm_len` 0: any).
    pub comm: [u8; COMM_LEN],
    pub comm_len: u32,
    /// A cgroup v2 and its depth below the root: processes in it or below.
    pub cgroup_level: u32,
    /// Its id (the directory's inode number); 0: any.
    pub cgroup_id: u64,
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain `#[repr(C)]` integers with no padding, valid for any bits.
    unsafe impl aya::Pod for super::Offsets {}
    // SAFETY: as above; the padding-free layout is checked by the loader's tests.
    unsafe impl aya::Pod for super::WaitArgs {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Filter {}
}
