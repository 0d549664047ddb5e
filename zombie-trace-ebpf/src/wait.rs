//! `wait4`/`waitid`: whether and how a parent tries to reap.
//!
//! The arguments are kept per thread at entry and sent with the result at
//! return. Syscall tracepoints (not raw `sys_enter`) so that only these two
//! syscalls run a program.

use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task,
        bpf_ktime_get_boot_ns, bpf_probe_read_user,
    },
    macros::{map, tracepoint},
    maps::HashMap,
    programs::TracePointContext,
};
use zombie_trace_common::{
    COUNTER_LOST_WAIT, COUNTER_WAIT_UNTRACKED, KIND_WAIT, P_ALL, P_PGID, P_PID, WAIT_SYSCALL_WAIT4,
    WAIT_SYSCALL_WAITID, WaitArgs, WaitRecord,
};

use crate::{
    EVENTS, count,
    filter::{filter, wants_parent},
    offsets,
    task::{KPtr, read},
};

/// One slot per thread blocked in wait; more than this many at once are
/// counted as untracked.
#[map]
static WAIT_ARGS: HashMap<u64, WaitArgs> = HashMap::with_max_entries(16384, 0);

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

    let record = WaitRecord {
        kind: KIND_WAIT,
        syscall: args.syscall,
        tgid: (pid_tgid >> 32) as u32,
        tid: pid_tgid as u32,
        enter_ns: args.enter_ns,
        // SAFETY: a helper without arguments.
        ts_ns: unsafe { bpf_ktime_get_boot_ns() },
        idtype: args.idtype,
        id: args.id,
        options: args.options,
        pid,
        ret,
        status,
        code,
        comm: bpf_get_current_comm().unwrap_or_default(),
        pid_ns_level: pid_ns_level(),
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
