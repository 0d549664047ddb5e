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
/// The process is in a pid namespace below the host's, so it has a pid of
/// its own there (or its namespace could not be read).
pub const EXIT_IN_PID_NS: u32 = 1 << 4;
/// The process was in exactly its parent's cgroups (the same `css_set`).
pub const EXIT_PARENT_CGROUPS: u32 = 1 << 5;
/// The record is an [`ExitCommandRecord`]: the process's command follows.
pub const EXIT_HAS_COMMAND: u32 = 1 << 6;

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

/// A live process whose parent died: who that parent was (`ORPHANS`, keyed
/// by the child's tgid). Read by userspace for the children it reports:
/// looking it up at every exit would cost every exit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Orphan {
    /// The child's `start_boottime`: a recycled pid is not the same child.
    pub start_ns: u64,
    pub ppid: u32,
    pub _pad: u32,
    pub parent_comm: [u8; COMM_LEN],
}

/// Orphans remembered at once, at least (the loader gives the map more
/// on machines with many CPUs, where an LRU map's per-CPU free lists
/// take their share); the least recently used go first.
pub const ORPHANS_MAX: u32 = 8192;
/// Children of one exiting process looked at for orphans.
pub const ORPHANS_PER_EXIT: u32 = 64;
/// Cgroups `--container`/`--pod`/`--namespace` may select at once.
pub const CGROUP_SET_MAX: u32 = 4096;

impl ExitRecord {
    /// See [`auto_reaped`].
    #[inline(always)]
    pub fn auto_reaped(&self) -> bool {
        auto_reaped(
            self.flags & EXIT_PARENT_IGNORES_SIGCHLD != 0,
            self.flags & EXIT_PTRACED != 0,
            self.flags & EXIT_NOT_SIGCHLD != 0,
        )
    }
}

/// The kernel releases a dead child at once (`do_notify_parent`), never a
/// zombie: its parent ignores SIGCHLD, and neither a ptracer nor a
/// non-SIGCHLD exit signal (a `clone` child) stands in the way.
#[inline(always)]
pub const fn auto_reaped(parent_ignores_sigchld: bool, ptraced: bool, not_sigchld: bool) -> bool {
    parent_ignores_sigchld && !ptraced && !not_sigchld
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

/// Bytes of a program's path kept from its `execve`.
pub const EXE_LEN: usize = 128;
/// Bytes of a process's argument strings kept from its `execve`.
pub const ARGV_LEN: usize = 256;

/// Processes whose [`Command`] is kept at once (an entry lives from exec
/// to release, so this bounds live processes, not a rate).
pub const COMMANDS_MAX: u32 = 32_768;

/// What a process runs, as its last `execve` started it: the path it was
/// given and the first [`ARGV_LEN`] bytes of its argument strings. Kept
/// from the exec until the process is released.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Command {
    /// The `start_boottime` of the process it was captured for: a lookup by
    /// pid must not hand one process's command to another.
    pub start_ns: u64,
    /// `bpf_ktime_get_boot_ns()` at the exec.
    pub exec_ns: u64,
    /// Bytes of argument strings the process had (NULs included), of which
    /// the first `argv_len` are in `argv`.
    pub argv_size: u32,
    pub argv_len: u16,
    /// Bytes of `exe`, without its NUL.
    pub exe_len: u16,
    /// The name the exec gave the process (its `comm` then).
    pub comm: [u8; COMM_LEN],
    /// The path given to `execve` (relative if it was; a script's own
    /// path, not its interpreter's).
    pub exe: [u8; EXE_LEN],
    /// NUL-separated argument strings.
    pub argv: [u8; ARGV_LEN],
}

/// An exit as it crosses the ring buffer with the process's [`Command`]
/// (when it has one): `exit.kind` is [`KIND_EXIT`] either way, and
/// [`EXIT_HAS_COMMAND`] in `exit.flags` tells them apart.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitCommandRecord {
    pub exit: ExitRecord,
    pub command: Command,
}

/// `wait` option bits (`<linux/wait.h>`).
pub const WNOHANG: u32 = 0x0000_0001;
pub const WUNTRACED: u32 = 0x0000_0002;
pub const WEXITED: u32 = 0x0000_0004;
pub const WCONTINUED: u32 = 0x0000_0008;
pub const WNOWAIT: u32 = 0x0100_0000;

/// `si_code` values for a child that exited, was killed, or dumped core.
pub const CLD_EXITED: i32 = 1;
pub const CLD_KILLED: i32 = 2;
pub const CLD_DUMPED: i32 = 3;

/// What a `wait4(upid, ...)` waits for, as `waitid`'s `P_*` and id: both
/// sides read the call's arguments (the kernel at its return, userspace in
/// `/proc/PID/task/TID/syscall` while it blocks).
#[inline(always)]
pub fn wait4_target(upid: i32) -> (u32, i32) {
    match upid {
        -1 => (P_ALL, 0),
        0 => (P_PGID, 0),
        p if p > 0 => (P_PID, p),
        p => (P_PGID, p.wrapping_neg()),
    }
}

/// A `waitid` as its syscall returns it and [`WaitRecord`] keeps it
/// (`ret`, `pid`, `status`, `code`), from what `kernel_waitid` returned:
/// the pid it reports, 0 when it reports none, or an error. `info` gives
/// its `waitid_info`'s `pid`, `status` and `cause`, read only when a child
/// was reported.
#[inline(always)]
pub fn waitid_result(kret: i64, info: impl FnOnce() -> (i32, i32, i32)) -> (i64, i32, i32, i32) {
    if kret > 0 {
        let (pid, status, cause) = info();
        (0, pid, status, cause)
    } else {
        (kret, 0, 0, 0)
    }
}

/// Whether a wait call that reported a child (`WAIT_SYSCALL_*`, with the
/// `status` and `code` of a [`WaitRecord`]) collected its exit, rather than
/// a stop or a continue. Both sides decide it here, so that they agree.
#[inline(always)]
pub fn collects_exit(syscall: u32, options: u32, status: i32, code: i32) -> bool {
    if syscall == WAIT_SYSCALL_WAITID {
        return (CLD_EXITED..=CLD_DUMPED).contains(&code);
    }
    if code == 1 {
        // WIFEXITED or WIFSIGNALED (not stopped 0x7f, not continued 0xffff).
        status & 0x7f != 0x7f && status != 0xffff
    } else {
        // No status word (a NULL pointer): only an exit can be reported,
        // unless the caller also asked for stops or continues.
        options & (WUNTRACED | WCONTINUED) == 0
    }
}

/// The status word `wait4` gives (`(code << 8) | signal`, `0x80` for a core
/// dump) of an exit a wait call collected, if it could be read.
#[inline(always)]
pub fn exit_status_word(syscall: u32, status: i32, code: i32) -> Option<u32> {
    if syscall == WAIT_SYSCALL_WAITID {
        return match code {
            CLD_EXITED => Some(((status as u32) & 0xff) << 8),
            CLD_KILLED => Some((status as u32) & 0x7f),
            CLD_DUMPED => Some(((status as u32) & 0x7f) | 0x80),
            _ => None,
        };
    }
    (code == 1).then_some(status as u32)
}

/// Sizes of the default mode's kernel maps (see the eBPF crate's
/// `pairing`): exits not yet reaped, processes userspace tracks, callers of
/// wait with a tally, reaper names and reapers with a latency histogram.
pub const PENDING_MAX: u32 = 16_384;
pub const HANDED_MAX: u32 = 65_536;
/// Wait calls in flight at once, where their arguments are kept from entry.
pub const WAIT_ARGS_MAX: u32 = 16_384;
pub const WAIT_TALLY_MAX: u32 = 4_096;
pub const LATENCY_BY_COMM_MAX: u32 = 1_024;
pub const LATENCY_BY_REAPER_MAX: u32 = 1_024;

/// Buckets of a [`LatencyHist`].
pub const LATENCY_BUCKETS: usize = 64;

/// The [`LatencyHist`] bucket of `ns`: `floor(log2(ns))`, 0 for 0. Without
/// a branch: with one per bit tested, the verifier follows each of the 64
/// outcomes through the rest of the program, which made loading the
/// programs that count reaps slow.
#[inline(always)]
pub fn latency_bucket(ns: u64) -> usize {
    let mut v = ns;
    let mut r = 0;
    for shift in [32, 16, 8, 4, 2, 1] {
        // 1 when `v` has a bit at `shift` or above, else 0 (here `v` is
        // below 2^(2 * shift), so the sum cannot carry further).
        let above = ((v >> shift) + (1 << shift) - 1) >> shift;
        let by = above * shift;
        v >>= by;
        r += by;
    }
    r as usize & (LATENCY_BUCKETS - 1)
}

/// Exit-to-reap times, counted by power of two: bucket `i` holds times in
/// `[2^i, 2^(i+1))` ns (bucket 0 also holds 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencyHist {
    pub buckets: [u64; LATENCY_BUCKETS],
    pub sum_ns: u64,
    pub max_ns: u64,
}

/// The reap latencies of the children one process reaped; `start_ns` tells
/// a reused pid from the process that had it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReaperLatency {
    pub start_ns: u64,
    pub hist: LatencyHist,
}

/// Distinct wait targets a [`WaitTally`] keeps: the most recently asked
/// for.
pub const WAIT_TARGETS: usize = 8;

/// What a wait call asked for (`P_*` and the id), and when it last did.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WaitTargetId {
    pub idtype: u32,
    pub id: i32,
    /// `bpf_ktime_get_boot_ns()` when the last call for it returned.
    pub last_ns: u64,
}

impl WaitTargetId {
    /// Whether both ask for the same children, whenever they did.
    pub fn same_target(&self, other: &Self) -> bool {
        self.idtype == other.idtype && self.id == other.id
    }
}

/// The wait calls of one process since it started its program, kept in the
/// kernel (by tgid) when records do not stream.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WaitTally {
    pub calls: u64,
    /// Calls that collected a child's exit.
    pub reaped: u64,
    /// `WNOHANG` calls that found nothing.
    pub empty: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Calls that reported a child with `WNOWAIT`.
    pub peeks: u64,
    /// `bpf_ktime_get_boot_ns()` when the last call returned.
    pub last_ns: u64,
    /// How many of `targets` are set.
    pub n_targets: u32,
    pub _pad: u32,
    /// The distinct targets most recently asked for, in no order; when all
    /// are set, a new one replaces the least recently asked for.
    pub targets: [WaitTargetId; WAIT_TARGETS],
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
/// Processes that died (whole groups, as traced), counted in the kernel.
pub const COUNTER_EXITS: u32 = 6;
/// Children whose reap was paired with their exit in the kernel (or that
/// the kernel reaped at once): they never crossed to userspace.
pub const COUNTER_KERNEL_REAPS: u32 = 7;
/// Exits sent over the ring buffer because the `PENDING` map was full.
pub const COUNTER_PENDING_FULL: u32 = 8;
/// Processes whose reaps could not be marked for userspace: `HANDED` was
/// full.
pub const COUNTER_HANDED_FULL: u32 = 9;
/// Execs whose command could not be kept (no memory for task storage).
pub const COUNTER_COMMAND_FULL: u32 = 10;
pub const COUNTERS_LEN: u32 = 11;

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
    /// `task_struct.cgroups` (its `css_set *`); zero on a kernel without
    /// cgroups.
    pub task_cgroups: u32,
    /// `task_struct.children` and `.sibling` (`list_head`s: a task's
    /// children are linked through their `sibling`).
    pub task_children: u32,
    pub task_sibling: u32,
    /// `task_struct.exit_state`: non-zero once the task is dead.
    pub task_exit_state: u32,
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
    /// Where `struct pt_regs` keeps a syscall's first four arguments, on
    /// kernels where the return program reads them there (see
    /// `zombie-trace-ebpf/src/wait.rs`); zero elsewhere.
    pub regs_args: [u32; 4],
    /// `struct waitid_info` (`pid`, `status`, `cause`): what
    /// `kernel_waitid` reports, read at its return where trampolines are
    /// allowed.
    pub waitid_info_pid: u32,
    pub waitid_info_status: u32,
    pub waitid_info_cause: u32,
    /// What the exec program reads for the command: `task_struct.mm`,
    /// `mm_struct.arg_start`/`arg_end`, `linux_binprm.filename`.
    pub task_mm: u32,
    pub mm_arg_start: u32,
    pub mm_arg_end: u32,
    pub bprm_filename: u32,
}

impl Offsets {
    /// All zeros: what the programs' `OFFSETS` global holds until the
    /// loader sets it (a `const`, as a static's initialiser must be).
    pub const UNSET: Self = Offsets {
        task_pid: 0,
        task_tgid: 0,
        task_real_parent: 0,
        task_group_leader: 0,
        task_start_boottime: 0,
        task_exit_code: 0,
        task_exit_signal: 0,
        task_ptrace: 0,
        task_comm: 0,
        task_signal: 0,
        task_sighand: 0,
        task_thread_pid: 0,
        task_cgroups: 0,
        task_children: 0,
        task_sibling: 0,
        task_exit_state: 0,
        pid_level: 0,
        signal_live: 0,
        signal_flags: 0,
        signal_group_exit_code: 0,
        sighand_action: 0,
        k_sigaction_size: 0,
        sigaction_handler: 0,
        sigaction_flags: 0,
        wait4_upid: 0,
        wait4_stat_addr: 0,
        wait4_options: 0,
        waitid_which: 0,
        waitid_upid: 0,
        waitid_infop: 0,
        waitid_options: 0,
        sys_exit_ret: 0,
        regs_args: [0; 4],
        waitid_info_pid: 0,
        waitid_info_status: 0,
        waitid_info_cause: 0,
        task_mm: 0,
        mm_arg_start: 0,
        mm_arg_end: 0,
        bprm_filename: 0,
    };
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
    /// 1: only processes in (or below) a cgroup listed in `CGROUP_SET`
    /// (`--container`, `--pod`, `--namespace`; kept current by userspace).
    pub cgroup_set: u32,
    pub _pad: u32,
}

/// Bytes of the forking thread's user stack a [`SpawnStack`] holds, from
/// `sp` up (the callers' frames: the stack grows down). 4 KiB less room
/// for this record's header and the kernel's own (`bpf_local_storage_elem`,
/// 72 bytes), so that a capture takes one 4 KiB slab object. The kernel's
/// cost per fork grows with it (allocating the capture: measured 21 us at
/// 8 KiB, 9 us at 4 KiB on Linux 6.18). Enough for C callers behind glibc's
/// `fork` (some 400 bytes to `_start`) and for an interpreter's native
/// frames (Python 3.11 running a script: 1.4 KiB to `_start`); a deeper
/// stack loses its outermost frames, not the spawn site.
pub const SPAWN_STACK_BYTES: usize = 4096 - 128;

/// What the forking thread was doing when it made a child (`--stacks`),
/// kept with the child in the kernel (task storage) until it is freed, for
/// userspace to unwind and symbolize if the child becomes a finding.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SpawnStack {
    /// The child's `start_boottime`, ns: that the capture is this child's,
    /// not a recycled pid's.
    pub start_ns: u64,
    /// The process that forked (whose memory map the addresses are in).
    pub parent_tgid: u32,
    /// How many bytes of `stack` were read, from `sp` up.
    pub len: u32,
    /// The user registers at the fork system call: instruction, stack and
    /// frame pointers.
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
    /// Where a return address may be instead of on the stack: on aarch64
    /// the link register (`x30`); on x86_64 `rdi`, where glibc's `vfork`
    /// keeps its return address across the system call (it pops it off
    /// the stack first).
    pub link: u64,
    pub stack: [u8; SPAWN_STACK_BYTES],
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain `#[repr(C)]` integers with no padding, valid for any bits.
    unsafe impl aya::Pod for super::Offsets {}
    // SAFETY: as above; the padding-free layouts are checked by the tests below.
    unsafe impl aya::Pod for super::Filter {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::ExitRecord {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Command {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::WaitTally {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Orphan {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::LatencyHist {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::ReaperLatency {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::SpawnStack {}
}

#[cfg(test)]
mod tests {
    use core::mem::size_of;

    use super::*;

    /// The records are read as plain bytes on both sides: no padding, so
    /// that no byte is left to chance.
    #[test]
    fn records_have_no_padding() {
        assert_eq!(
            size_of::<ExitRecord>(),
            4 * 4 + 2 * 8 + 2 * 4 + 2 * COMM_LEN
        );
        assert_eq!(size_of::<Orphan>(), 8 + 2 * 4 + COMM_LEN);
        assert_eq!(size_of::<Offsets>(), 43 * 4);
        assert_eq!(
            size_of::<WaitRecord>(),
            4 * 4 + 8 + 4 * 4 + 8 + 2 * 4 + COMM_LEN + 2 * 4
        );
        assert_eq!(
            size_of::<Filter>(),
            2 * FILTER_MAX * 4 + 2 * 4 + COMM_LEN + 2 * 4 + 8 + 2 * 4
        );
        assert_eq!(size_of::<WaitTally>(), 6 * 8 + 2 * 4 + WAIT_TARGETS * 16);
        assert_eq!(size_of::<LatencyHist>(), (LATENCY_BUCKETS + 2) * 8);
        assert_eq!(
            size_of::<SpawnStack>(),
            8 + 2 * 4 + 4 * 8 + SPAWN_STACK_BYTES
        );
        assert_eq!(size_of::<ReaperLatency>(), 8 + size_of::<LatencyHist>());
    }

    #[test]
    fn wait4_targets_as_waitid_names_them() {
        assert_eq!(wait4_target(-1), (P_ALL, 0));
        assert_eq!(wait4_target(0), (P_PGID, 0));
        assert_eq!(wait4_target(42), (P_PID, 42));
        assert_eq!(wait4_target(-42), (P_PGID, 42));
        assert_eq!(wait4_target(i32::MIN), (P_PGID, i32::MIN));
    }

    #[test]
    fn wait4_collects_exits_and_kills_not_stops() {
        let wait4 =
            |options, status, code| collects_exit(WAIT_SYSCALL_WAIT4, options, status, code);
        assert!(wait4(0, 3 << 8, 1), "exit 3");
        assert!(wait4(0, 9, 1), "SIGKILL");
        assert!(wait4(0, 0x80 | 11, 1), "SIGSEGV with core");
        assert!(!wait4(WUNTRACED, 0x137f, 1), "stopped by SIGSTOP");
        assert!(!wait4(WCONTINUED, 0xffff, 1), "continued");
        // No status pointer: an exit unless stops or continues were asked.
        assert!(wait4(0, 0, 0));
        assert!(!wait4(WUNTRACED, 0, 0));
        assert_eq!(
            exit_status_word(WAIT_SYSCALL_WAIT4, 3 << 8, 1),
            Some(3 << 8)
        );
        assert_eq!(exit_status_word(WAIT_SYSCALL_WAIT4, 0, 0), None);
    }

    #[test]
    fn waitid_status_becomes_the_wait4_word() {
        let waitid = |status, code| {
            (
                collects_exit(WAIT_SYSCALL_WAITID, WEXITED, status, code),
                exit_status_word(WAIT_SYSCALL_WAITID, status, code),
            )
        };
        assert_eq!(waitid(77, CLD_EXITED), (true, Some(77 << 8)));
        assert_eq!(waitid(9, CLD_KILLED), (true, Some(9)));
        assert_eq!(waitid(11, CLD_DUMPED), (true, Some(0x80 | 11)));
        // CLD_STOPPED, CLD_CONTINUED.
        assert_eq!(waitid(19, 5), (false, None));
        assert_eq!(waitid(18, 6), (false, None));
    }

    #[test]
    fn auto_reap_needs_sigchld_ignored_and_nothing_in_the_way() {
        let exit = |flags| ExitRecord {
            kind: KIND_EXIT,
            tgid: 1,
            tid: 1,
            ppid: 1,
            start_ns: 0,
            ts_ns: 0,
            status: 0,
            flags,
            comm: [0; COMM_LEN],
            parent_comm: [0; COMM_LEN],
        };
        assert!(exit(EXIT_PARENT_IGNORES_SIGCHLD).auto_reaped());
        assert!(!exit(0).auto_reaped());
        assert!(!exit(EXIT_PARENT_IGNORES_SIGCHLD | EXIT_PTRACED).auto_reaped());
        assert!(!exit(EXIT_PARENT_IGNORES_SIGCHLD | EXIT_NOT_SIGCHLD).auto_reaped());
    }

    #[test]
    fn latency_buckets_are_floor_log2() {
        assert_eq!(latency_bucket(0), 0);
        for bit in 0..64 {
            let v = 1u64 << bit;
            for n in [v, v | (v >> 1), v | 1, (v - 1) | v] {
                assert_eq!(latency_bucket(n), n.ilog2() as usize, "{n:#x}");
            }
        }
        assert_eq!(latency_bucket(u64::MAX), 63);
    }

    #[test]
    fn waitid_reports_as_its_syscall_returns() {
        let info = || (42, 3, CLD_EXITED);
        assert_eq!(waitid_result(42, info), (0, 42, 3, CLD_EXITED));
        assert_eq!(waitid_result(0, || unreachable!()), (0, 0, 0, 0));
        assert_eq!(waitid_result(-10, || unreachable!()), (-10, 0, 0, 0));
    }
}
