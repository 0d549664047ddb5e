//! `sched_process_exit`: the death of a whole process.

use core::ffi::c_void;

use aya_ebpf::{
    bindings::BPF_ANY,
    helpers::{bpf_ktime_get_boot_ns, bpf_loop},
    macros::{btf_tracepoint, map},
    maps::LruHashMap,
    programs::BtfTracePointContext,
};
use aya_log_ebpf::error;
use zombie_trace_common::{
    COMM_LEN, COUNTER_EXITS, COUNTER_HANDED_FULL, COUNTER_KERNEL_REAPS, COUNTER_LOST_EXIT,
    COUNTER_PENDING_FULL, COUNTER_READ_ERRORS, EXIT_IN_PID_NS, EXIT_LEADER_WENT_FIRST,
    EXIT_NOT_SIGCHLD, EXIT_PARENT_CGROUPS, EXIT_PARENT_IGNORES_SIGCHLD, EXIT_PTRACED, ExitRecord,
    KIND_EXIT, ORPHANS_MAX, ORPHANS_PER_EXIT, Orphan,
};

use crate::{
    command, count,
    filter::{filter, wants_current_cgroup, wants_parent, wants_process},
    offsets,
    pairing::{self, HANDED, Held},
    task::{KPtr, pid_tgid, read, read_comm, read_comm_untyped, read_untyped},
    wait,
};

const SIGCHLD: u32 = 17;
const SIG_IGN: u64 = 1;
const SA_NOCLDWAIT: u64 = 2;
/// `signal_struct.flags`: the group is exiting; every thread's status is
/// `group_exit_code` (unchanged since Linux 2.6).
const SIGNAL_GROUP_EXIT: u32 = 0x4;

/// Live children of threads that died, by tgid, with the process they had
/// as parent (sized by the loader; read by userspace): once adopted, their `real_parent` no longer says who forked them
/// (`(job &)` in a container's shell leaves `job` to the container's PID 1).
#[map]
static ORPHANS: LruHashMap<u32, Orphan> = LruHashMap::with_max_entries(ORPHANS_MAX, 0);

/// Where the kernel has `bpf_loop` (5.17+): the verifier checks the
/// orphan walk's step once, not once per child (a bounded loop's every
/// turn is verified again, which made this program most of start-up).
#[btf_tracepoint(function = "sched_process_exit")]
pub fn sched_process_exit(ctx: BtfTracePointContext) -> i32 {
    exit::<true>(&ctx)
}

/// The same, with the orphan walk a bounded loop, for older kernels (a
/// program that names `bpf_loop` does not load there at all).
#[btf_tracepoint(function = "sched_process_exit")]
pub fn sched_process_exit_bounded(ctx: BtfTracePointContext) -> i32 {
    exit::<false>(&ctx)
}

/// `LOOP_HELPER`: the kernel has `bpf_loop`. A const generic, not a
/// runtime argument: each program gets its own copy, and the one for older
/// kernels names no `bpf_loop` at all.
#[inline(always)]
fn exit<const LOOP_HELPER: bool>(ctx: &BtfTracePointContext) -> i32 {
    let task: KPtr = ctx.arg(0);
    if let Err(err) = try_exit::<LOOP_HELPER>(task) {
        count(COUNTER_READ_ERRORS);
        error!(ctx, "sched_process_exit: kernel read failed ({})", err);
    }
    0
}

/// `EXIT_*` flags from the leader and its parent.
fn parent_flags(leader: KPtr, parent: KPtr) -> Result<u32, i32> {
    let o = offsets();
    // The test do_notify_parent() makes to reap a child at once.
    let sighand: KPtr = read(parent, o.task_sighand)?;
    let action = sighand
        .wrapping_add(o.sighand_action as usize)
        .wrapping_add(((SIGCHLD - 1) * o.k_sigaction_size) as usize);
    let handler: u64 = read(action, o.sigaction_handler)?;
    let sa_flags: u64 = read(action, o.sigaction_flags)?;
    let exit_signal: i32 = read(leader, o.task_exit_signal)?;
    let ptrace: u32 = read(leader, o.task_ptrace)?;
    let mut flags = 0;
    if handler == SIG_IGN || sa_flags & SA_NOCLDWAIT != 0 {
        flags |= EXIT_PARENT_IGNORES_SIGCHLD;
    }
    if ptrace != 0 {
        flags |= EXIT_PTRACED;
    }
    if exit_signal != SIGCHLD as i32 {
        flags |= EXIT_NOT_SIGCHLD;
    }
    Ok(flags)
}

fn try_exit<const LOOP_HELPER: bool>(task: KPtr) -> Result<(), i32> {
    let o = offsets();
    // Each thread's own children, before its exit hands them on: a child's
    // parent is the thread that forked it, and when a whole group dies at
    // once each thread's children go to the reaper at that thread's exit.
    // Before any filter too: the children may be traced when their parent
    // is not. Best effort: a child released meanwhile ends the walk.
    let _ = note_orphans::<LOOP_HELPER>(task);
    // `live` was decremented before this tracepoint: 0 means this thread is
    // the last one, the group is dead and its leader becomes reapable. (The
    // `group_dead` argument only exists since 6.16.) Two threads dying at once
    // may both see 0; userspace drops the duplicate.
    let signal: KPtr = read(task, o.task_signal)?;
    let live: i32 = read(signal, o.signal_live)?;
    if live != 0 {
        return Ok(());
    }
    // This runs in the exiting task: its cgroup is the current one.
    let f = filter();
    if !wants_current_cgroup(f) {
        return Ok(());
    }
    let leader: KPtr = read(task, o.task_group_leader)?;
    let (tid, tgid) = pid_tgid(task, o)?;
    let comm = read_comm(leader, o.task_comm);
    if !wants_process(f, tgid, &comm) {
        return Ok(());
    }
    let start_ns: u64 = read(leader, o.task_start_boottime)?;
    // What wait_task_zombie() will hand the parent.
    let signal_flags: u32 = read(signal, o.signal_flags)?;
    let status: u32 = if signal_flags & SIGNAL_GROUP_EXIT != 0 {
        read(signal, o.signal_group_exit_code)?
    } else {
        read(leader, o.task_exit_code)?
    };

    let parent: KPtr = read(leader, o.task_real_parent)?;
    // The rest only qualifies the record: a failed read must not lose the
    // exit (the parent may be exiting too, its sighand already gone).
    let ppid: u32 = read(parent, o.task_tgid).unwrap_or(0);
    if !wants_parent(f, ppid) {
        return Ok(());
    }
    let mut flags = match parent_flags(leader, parent) {
        Ok(flags) => flags,
        Err(_) => {
            count(COUNTER_READ_ERRORS);
            0
        }
    };
    if tid != tgid {
        flags |= EXIT_LEADER_WENT_FIRST;
    }
    // Userspace then asks /proc for its pid in its own namespace; for the
    // rest (most processes), it need not.
    let ns_level =
        read::<KPtr>(leader, o.task_thread_pid).and_then(|pid| read::<u32>(pid, o.pid_level));
    if ns_level != Ok(0) {
        flags |= EXIT_IN_PID_NS;
    }
    // Then its cgroup path is its parent's, which userspace reads anyway;
    // a zombie's own shows `/` on cgroup v1. Compared, never followed.
    if o.task_cgroups != 0 {
        let own = read::<u64>(leader, o.task_cgroups);
        let parents = read::<u64>(parent, o.task_cgroups);
        if let (Ok(own), Ok(parents)) = (own, parents)
            && own != 0
            && own == parents
        {
            flags |= EXIT_PARENT_CGROUPS;
        }
    }

    let record = ExitRecord {
        kind: KIND_EXIT,
        tgid,
        tid,
        ppid,
        start_ns,
        // SAFETY: a helper without arguments.
        ts_ns: unsafe { bpf_ktime_get_boot_ns() },
        status,
        flags,
        comm,
        parent_comm: read_comm(parent, o.task_comm),
    };
    if crate::streaming() {
        command::send_exit(&record, COUNTER_LOST_EXIT);
        return Ok(());
    }
    if record.auto_reaped() {
        // Released right after this tracepoint: never a zombie.
        count(COUNTER_EXITS);
        count(COUNTER_KERNEL_REAPS);
    } else {
        match pairing::hold(&record) {
            Held::Yes => count(COUNTER_EXITS),
            Held::Duplicate => return Ok(()),
            Held::Full => {
                count(COUNTER_EXITS);
                count(COUNTER_PENDING_FULL);
                if HANDED.insert(&tgid, &0, BPF_ANY.into()).is_err() {
                    count(COUNTER_HANDED_FULL);
                }
                command::send_exit(&record, COUNTER_LOST_EXIT);
            }
        }
    }
    // Its pid may be reused: its wait history ends here.
    wait::forget(tgid);
    Ok(())
}

/// Remembers the live children of `task` (a thread): the kernel hands them
/// to another parent right after this tracepoint (to another thread of the
/// process, while one lives). Zombie children need nothing: their exit
/// record already named this parent.
#[inline(always)]
fn note_orphans<const LOOP_HELPER: bool>(task: KPtr) -> Result<(), i32> {
    let o = offsets();
    let head = task.wrapping_add(o.task_children as usize);
    let first: KPtr = read(task, o.task_children)?;
    // Most exiting tasks have no children: one load and a compare.
    if first == head || first.is_null() {
        return Ok(());
    }
    let tgid: u32 = read(task, o.task_tgid)?;
    let mut walk = Walk {
        task: task as u64,
        node: first as u64,
        tgid,
        named: 0,
        parent_comm: [0; COMM_LEN],
    };
    if LOOP_HELPER {
        // SAFETY: the callback only touches `walk`, which outlives the call.
        unsafe {
            bpf_loop(
                ORPHANS_PER_EXIT,
                walk_step as *const () as *mut c_void,
                (&raw mut walk).cast(),
                0,
            )
        };
    } else {
        walk_bounded(&mut walk);
    }
    Ok(())
}

/// Where a walk through a task's children is.
#[repr(C)]
struct Walk {
    /// The exiting thread.
    task: u64,
    /// The node of its child list to look at next.
    node: u64,
    tgid: u32,
    /// 1 once `parent_comm` is read (only when a child needs it).
    named: u32,
    parent_comm: [u8; COMM_LEN],
}

/// `bpf_loop`'s callback: 0 to go on, 1 to stop.
unsafe extern "C" fn walk_step(_index: u64, walk: *mut c_void) -> i64 {
    // SAFETY: `note_orphans` passes its `Walk`.
    let walk = unsafe { &mut *walk.cast::<Walk>() };
    if step(walk) { 0 } else { 1 }
}

/// The walk on kernels without `bpf_loop`. A function of its own: its
/// loop and helper calls, inlined, leave the verifier a program it
/// refuses (direct loads need pointers it can type; these are reached
/// through `list_head`s, and read through the helper).
#[inline(never)]
fn walk_bounded(walk: &mut Walk) {
    let mut i = 0;
    while i < ORPHANS_PER_EXIT && step(walk) {
        i += 1;
    }
}

/// Notes the child at `walk.node`, if it is alive, and moves on to the
/// next; false at the end of the list or on a failed read.
#[inline(always)]
fn step(walk: &mut Walk) -> bool {
    let o = offsets();
    let task = walk.task as KPtr;
    let node = walk.node as KPtr;
    if node == task.wrapping_add(o.task_children as usize) || node.is_null() {
        return false;
    }
    // Each child is linked through its `sibling`.
    let child = node.wrapping_sub(o.task_sibling as usize);
    let Ok(exit_state) = read_untyped::<u32>(child, o.task_exit_state) else {
        return false;
    };
    if exit_state == 0 {
        let (Ok(child_tgid), Ok(start_ns)) = (
            read_untyped::<u32>(child, o.task_tgid),
            read_untyped::<u64>(child, o.task_start_boottime),
        ) else {
            return false;
        };
        // SAFETY: a copy is taken at once; a concurrent update of the
        // entry is harmless.
        let known = unsafe { ORPHANS.get(&child_tgid) }.is_some_and(|o| o.start_ns == start_ns);
        // Only the first parent: after a second adoption, the one that
        // forked it still counts.
        if !known {
            if walk.named == 0 {
                // The process's name: its leader's, not this thread's.
                walk.parent_comm = read_untyped::<KPtr>(task, o.task_group_leader)
                    .map_or([0; COMM_LEN], |leader| {
                        read_comm_untyped(leader, o.task_comm)
                    });
                walk.named = 1;
            }
            let orphan = Orphan {
                start_ns,
                ppid: walk.tgid,
                _pad: 0,
                parent_comm: walk.parent_comm,
            };
            let _ = ORPHANS.insert(&child_tgid, &orphan, BPF_ANY.into());
        }
    }
    let Ok(next) = read_untyped::<KPtr>(node, 0) else {
        return false;
    };
    walk.node = next as u64;
    true
}
