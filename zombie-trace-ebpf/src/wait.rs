//! `wait4`/`waitid`: whether and how a parent tries to reap.
//!
//! The arguments are kept per thread at entry and sent with the result at
//! return. Syscall tracepoints (not raw `sys_enter`) so that only these two
//! syscalls run a program.

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task,
        bpf_ktime_get_boot_ns, bpf_probe_read_user,
    },
    macros::{map, tracepoint},
    maps::{HashMap, LruHashMap},
    programs::TracePointContext,
};
use zombie_trace_common::{
    COUNTER_LOST_WAIT, COUNTER_WAIT_UNTRACKED, EXIT_PTRACED, KIND_WAIT, P_ALL, P_PGID, P_PID,
    WAIT_SYSCALL_WAIT4, WAIT_SYSCALL_WAITID, WAIT_TALLY_MAX, WAIT_TARGETS, WNOHANG, WNOWAIT,
    WaitArgs, WaitRecord, WaitTally, WaitTargetId, collects_exit, exit_status_word,
};

use crate::{
    EVENTS, atomic_add, count,
    filter::{filter, wants_parent},
    offsets, pairing,
    task::{KPtr, read},
};

/// One slot per thread blocked in wait; more than this many at once are
/// counted as untracked.
#[map]
static WAIT_ARGS: HashMap<u64, WaitArgs> = HashMap::with_max_entries(16384, 0);

/// The wait calls of each process (by tgid) in the default mode, where
/// they do not stream; the least recently used go when full.
#[map]
static WAIT_TALLY: LruHashMap<u32, WaitTally> = LruHashMap::with_max_entries(WAIT_TALLY_MAX, 0);

/// No status word is this (they fit in 16 bits).
const UNKNOWN_STATUS: u32 = u32::MAX;

/// Offsets in `siginfo_t` (64-bit): `si_code`, then the `_sigchld` fields.
const SI_CODE: u64 = 8;
const SI_PID: u64 = 16;
const SI_STATUS: u64 = 24;

/// Syscall tracepoint fields are 8 bytes wide whatever their C type.
#[inline(always)]
fn arg(ctx: &TracePointContext, off: u32) -> u64 {
    // SAFETY: `off` comes from this tracepoint's format file.
    unsafe { ctx.read_at::<u64>(off as usize) }.unwrap_or(0)
}

fn remember(args: WaitArgs) {
    let pid_tgid = bpf_get_current_pid_tgid();
    // Only parents whose children are traced (`--ppid`) matter.
    if !wants_parent(&filter(), (pid_tgid >> 32) as u32) {
        return;
    }
    if WAIT_ARGS.insert(&pid_tgid, &args, 0).is_err() {
        count(COUNTER_WAIT_UNTRACKED);
    }
}

#[tracepoint(category = "syscalls", name = "sys_enter_wait4")]
pub fn sys_enter_wait4(ctx: TracePointContext) -> u32 {
    let o = offsets();
    let upid = arg(&ctx, o.wait4_upid) as i32;
    let (idtype, id) = match upid {
        -1 => (P_ALL, 0),
        0 => (P_PGID, 0),
        p if p > 0 => (P_PID, p),
        p => (P_PGID, p.wrapping_neg()),
    };
    remember(WaitArgs {
        // SAFETY: a helper without arguments.
        enter_ns: unsafe { bpf_ktime_get_boot_ns() },
        syscall: WAIT_SYSCALL_WAIT4,
        idtype,
        id,
        options: arg(&ctx, o.wait4_options) as u32,
        uaddr: arg(&ctx, o.wait4_stat_addr),
    });
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_waitid")]
pub fn sys_enter_waitid(ctx: TracePointContext) -> u32 {
    let o = offsets();
    remember(WaitArgs {
        // SAFETY: a helper without arguments.
        enter_ns: unsafe { bpf_ktime_get_boot_ns() },
        syscall: WAIT_SYSCALL_WAITID,
        idtype: arg(&ctx, o.waitid_which) as u32,
        id: arg(&ctx, o.waitid_upid) as i32,
        options: arg(&ctx, o.waitid_options) as u32,
        uaddr: arg(&ctx, o.waitid_infop),
    });
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_wait4")]
pub fn sys_exit_wait4(ctx: TracePointContext) -> u32 {
    on_return(&ctx);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_waitid")]
pub fn sys_exit_waitid(ctx: TracePointContext) -> u32 {
    on_return(&ctx);
    0
}

#[inline(always)]
fn read_user_i32(addr: u64) -> Option<i32> {
    if addr == 0 {
        return None;
    }
    // SAFETY: the helper validates the user address.
    unsafe { bpf_probe_read_user(addr as *const i32) }.ok()
}

/// The current task's pid namespace level: the pid a wait reports is a
/// global pid only at level 0.
fn pid_ns_level() -> u32 {
    let o = offsets();
    // SAFETY: a helper without arguments; the pointer is only read through
    // bpf_probe_read_kernel.
    let task = unsafe { bpf_get_current_task() } as KPtr;
    read::<KPtr>(task, o.task_thread_pid)
        .and_then(|pid| read::<u32>(pid, o.pid_level))
        .unwrap_or(u32::MAX)
}

fn on_return(ctx: &TracePointContext) {
    let pid_tgid = bpf_get_current_pid_tgid();
    // SAFETY: the value is copied out before the entry is removed.
    let Some(args) = (unsafe { WAIT_ARGS.get(&pid_tgid) }).copied() else {
        return;
    };
    let _ = WAIT_ARGS.remove(&pid_tgid);
    let ret = arg(ctx, offsets().sys_exit_ret) as i64;

    // The kernel has just written the result to user memory: read it back.
    let (pid, status, code) = if args.syscall == WAIT_SYSCALL_WAIT4 {
        match read_user_i32(args.uaddr) {
            Some(status) if ret > 0 => (ret as i32, status, 1),
            _ => (if ret > 0 { ret as i32 } else { 0 }, 0, 0),
        }
    } else if ret == 0 {
        (
            read_user_i32(args.uaddr.wrapping_add(SI_PID)).unwrap_or(0),
            read_user_i32(args.uaddr.wrapping_add(SI_STATUS)).unwrap_or(0),
            read_user_i32(args.uaddr.wrapping_add(SI_CODE)).unwrap_or(0),
        )
    } else {
        (0, 0, 0)
    };

    let tgid = (pid_tgid >> 32) as u32;
    // SAFETY: a helper without arguments.
    let now = unsafe { bpf_ktime_get_boot_ns() };
    let comm = bpf_get_current_comm().unwrap_or_default();
    let pid_ns_level = pid_ns_level();
    if !crate::streaming() {
        let reaped = pid > 0
            && collects_exit(args.syscall, args.options, status, code)
            && args.options & WNOWAIT == 0;
        tally(tgid, &args, ret, pid > 0, reaped, now);
        // A pid reported to a caller in another pid namespace is not the
        // global pid the exit was held under.
        if !reaped || pid_ns_level != 0 {
            return;
        }
        let child = pid as u32;
        // A plain integer, not an Option: the verifier refuses the register
        // games the compiler plays with an Option's unset payload.
        let word = exit_status_word(args.syscall, status, code).unwrap_or(UNKNOWN_STATUS);
        let collected = pairing::take(child, |exit| {
            // A ptracer that is not the parent collects the status, but the
            // child then goes back to its parent, unreaped.
            (word == UNKNOWN_STATUS || word == exit.status)
                && (exit.ppid == tgid || exit.flags & EXIT_PTRACED == 0)
        });
        if let Some(exit) = collected {
            let latency = now.saturating_sub(exit.ts_ns);
            pairing::reaped(latency, tgid, current_start_ns(), &comm);
            return;
        }
        // Userspace times the reaps of what it tracks by the wait call.
        if !pairing::handed(child) {
            return;
        }
    }
    let record = WaitRecord {
        kind: KIND_WAIT,
        syscall: args.syscall,
        tgid,
        tid: pid_tgid as u32,
        enter_ns: args.enter_ns,
        ts_ns: now,
        idtype: args.idtype,
        id: args.id,
        options: args.options,
        pid,
        ret,
        status,
        code,
        comm,
        pid_ns_level,
        _pad: 0,
    };
    match EVENTS.reserve::<WaitRecord>(0) {
        Some(mut entry) => {
            entry.write(record);
            entry.submit(crate::wakeup_flags());
        }
        None => count(COUNTER_LOST_WAIT),
    }
}

/// The start time of the current process (its leader's).
fn current_start_ns() -> u64 {
    let o = offsets();
    // SAFETY: a helper without arguments; the pointer is only read through
    // bpf_probe_read_kernel.
    let task = unsafe { bpf_get_current_task() } as KPtr;
    read::<KPtr>(task, o.task_group_leader)
        .and_then(|leader| read::<u64>(leader, o.task_start_boottime))
        .unwrap_or(0)
}

/// Adds a returned call to its caller's tally.
#[inline(always)]
fn tally(tgid: u32, args: &WaitArgs, ret: i64, reported: bool, reaped: bool, now: u64) {
    let slot = match WAIT_TALLY.get_ptr_mut(&tgid) {
        Some(slot) => slot,
        None => {
            let _ = WAIT_TALLY.insert(&tgid, &WaitTally::default(), BPF_NOEXIST.into());
            match WAIT_TALLY.get_ptr_mut(&tgid) {
                Some(slot) => slot,
                None => return,
            }
        }
    };
    let target = WaitTargetId {
        idtype: args.idtype,
        id: args.id,
    };
    // SAFETY: a map value. Threads of one process may wait at once: the
    // counts are added atomically; the time and the target list may lose
    // a race, which only shortens a list of examples.
    unsafe {
        atomic_add(&raw mut (*slot).calls, 1);
        if ret < 0 {
            atomic_add(&raw mut (*slot).errors, 1);
        } else if reaped {
            atomic_add(&raw mut (*slot).reaped, 1);
        } else if !reported && args.options & WNOHANG != 0 {
            atomic_add(&raw mut (*slot).empty, 1);
        }
        if reported && args.options & WNOWAIT != 0 {
            atomic_add(&raw mut (*slot).peeks, 1);
        }
        if now > (*slot).last_ns {
            (*slot).last_ns = now;
        }
        let n = (*slot).n_targets as usize;
        let mut i = 0;
        while i < WAIT_TARGETS {
            if i < n && (*slot).targets[i] == target {
                return;
            }
            i += 1;
        }
        if n < WAIT_TARGETS {
            (*slot).targets[n] = target;
            (*slot).n_targets = n as u32 + 1;
        }
    }
}

/// Process `tgid` is gone, or runs another program: its calls no longer
/// describe it.
pub fn forget(tgid: u32) {
    let _ = WAIT_TALLY.remove(&tgid);
}
