//! `wait4`/`waitid`: whether and how a parent tries to reap.
//!
//! Where the kernel allows trampolines, fexit on `kernel_wait4` and
//! `kernel_waitid`, which every wait syscall (compat ones too) calls: only
//! those calls run a program, and nothing else pays. Elsewhere the syscall
//! tracepoints (not raw `sys_enter`, so that only these two syscalls run a
//! program), which put every syscall of every process on the kernel's slow
//! path while enabled. There, where the kernel has `bpf_task_pt_regs`
//! (5.15+) and keeps syscall arguments at known places in `pt_regs`
//! (x86_64), the return program reads the arguments there and no entry
//! program is attached; elsewhere the arguments are kept per thread from
//! entry to return.
//!
//! The two ways agree but where the kernel's own state and the syscall's
//! answer differ: a child collected, then `-EFAULT` because the caller's
//! `rusage` or `siginfo` could not be written, is a reap at the trampoline
//! (as the kernel has it) and an error at the tracepoint; a `waitid` with
//! no `siginfo` at all reports its child only to the trampoline.

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task_btf,
        bpf_ktime_get_boot_ns, bpf_probe_read_user, bpf_task_pt_regs,
    },
    macros::{fexit, map, tracepoint},
    maps::{HashMap, LruHashMap},
    programs::{FExitContext, TracePointContext},
};
use zombie_trace_common::{
    COUNTER_LOST_WAIT, COUNTER_WAIT_UNTRACKED, EXIT_PTRACED, KIND_WAIT, WAIT_ARGS_MAX,
    WAIT_SYSCALL_WAIT4, WAIT_SYSCALL_WAITID, WAIT_TALLY_MAX, WAIT_TARGETS, WNOHANG, WNOWAIT,
    WaitRecord, WaitTally, WaitTargetId, collects_exit, exit_status_word, wait4_target,
    waitid_result,
};

use crate::{
    atomic_add, count,
    filter::{filter, wants_parent},
    offsets, pairing, send,
    task::{KPtr, current, read},
};

/// A wait call's arguments, as the return program needs them.
#[repr(C)]
#[derive(Clone, Copy)]
struct WaitArgs {
    /// `WAIT_SYSCALL_*`.
    syscall: u32,
    /// `P_*` and the id, as in [`WaitRecord`].
    idtype: u32,
    id: i32,
    options: u32,
    /// `wait4`'s `stat_addr` or `waitid`'s `infop` (user memory; at
    /// `kernel_waitid`'s return, the kernel's `waitid_info`).
    uaddr: u64,
}

impl WaitArgs {
    fn wait4(upid: i32, stat_addr: u64, options: u32) -> Self {
        let (idtype, id) = wait4_target(upid);
        WaitArgs {
            syscall: WAIT_SYSCALL_WAIT4,
            idtype,
            id,
            options,
            uaddr: stat_addr,
        }
    }

    fn waitid(which: u32, upid: i32, infop: u64, options: u32) -> Self {
        WaitArgs {
            syscall: WAIT_SYSCALL_WAITID,
            idtype: which,
            id: upid,
            options,
            uaddr: infop,
        }
    }
}

/// Set to 1 by the loader where the return program reads the arguments
/// from `pt_regs` (the entry programs are then not attached).
#[unsafe(no_mangle)]
static ARGS_FROM_REGS: u32 = 0;

#[inline(always)]
fn args_from_regs() -> bool {
    crate::is_set(&ARGS_FROM_REGS)
}

/// Without `pt_regs`: one slot per thread blocked in wait; more than this
/// many at once are counted as untracked.
#[map]
static WAIT_ARGS: HashMap<u64, WaitArgs> = HashMap::with_max_entries(WAIT_ARGS_MAX, 0);

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
    if !wants_parent(filter(), (pid_tgid >> 32) as u32) {
        return;
    }
    if WAIT_ARGS.insert(&pid_tgid, &args, 0).is_err() {
        count(COUNTER_WAIT_UNTRACKED);
    }
}

#[tracepoint(category = "syscalls", name = "sys_enter_wait4")]
pub fn sys_enter_wait4(ctx: TracePointContext) -> u32 {
    let o = offsets();
    remember(WaitArgs::wait4(
        arg(&ctx, o.wait4_upid) as i32,
        arg(&ctx, o.wait4_stat_addr),
        arg(&ctx, o.wait4_options) as u32,
    ));
    0
}

#[tracepoint(category = "syscalls", name = "sys_enter_waitid")]
pub fn sys_enter_waitid(ctx: TracePointContext) -> u32 {
    let o = offsets();
    remember(WaitArgs::waitid(
        arg(&ctx, o.waitid_which) as u32,
        arg(&ctx, o.waitid_upid) as i32,
        arg(&ctx, o.waitid_infop),
        arg(&ctx, o.waitid_options) as u32,
    ));
    0
}

/// The arguments of the call returning now: from `pt_regs`, or as the
/// entry program kept them.
#[inline(always)]
fn returning_call(syscall: u32, pid_tgid: u64) -> Option<WaitArgs> {
    if !args_from_regs() {
        // SAFETY: the value is copied out before the entry is removed.
        let args = unsafe { WAIT_ARGS.get(&pid_tgid) }.copied()?;
        let _ = WAIT_ARGS.remove(&pid_tgid);
        return Some(args);
    }
    if !wants_parent(filter(), (pid_tgid >> 32) as u32) {
        return None;
    }
    let o = offsets();
    // SAFETY: helpers on the current task, which the verifier types; the
    // registers are read through bpf_probe_read_kernel.
    let regs = unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as KPtr;
    let reg = |i: usize| read::<u64>(regs, o.regs_args[i]).ok();
    Some(if syscall == WAIT_SYSCALL_WAIT4 {
        WaitArgs::wait4(reg(0)? as i32, reg(1)?, reg(2)? as u32)
    } else {
        WaitArgs::waitid(reg(0)? as u32, reg(1)? as i32, reg(2)?, reg(3)? as u32)
    })
}

#[tracepoint(category = "syscalls", name = "sys_exit_wait4")]
pub fn sys_exit_wait4(ctx: TracePointContext) -> u32 {
    on_return(&ctx, WAIT_SYSCALL_WAIT4);
    0
}

#[tracepoint(category = "syscalls", name = "sys_exit_waitid")]
pub fn sys_exit_waitid(ctx: TracePointContext) -> u32 {
    on_return(&ctx, WAIT_SYSCALL_WAITID);
    0
}

/// `long kernel_wait4(pid_t upid, int __user *stat_addr, int options,
/// struct rusage *ru)`: the status is in user memory by its return.
#[fexit(function = "kernel_wait4")]
pub fn kernel_wait4(ctx: FExitContext) -> i32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    if !wants_parent(filter(), (pid_tgid >> 32) as u32) {
        return 0;
    }
    let upid: i32 = ctx.arg(0);
    let stat_addr: u64 = ctx.arg(1);
    let options: u32 = ctx.arg(2);
    let ret: i64 = ctx.arg(4);
    let args = WaitArgs::wait4(upid, stat_addr, options);
    let (pid, status, code) = wait4_result(ret, stat_addr);
    finish(pid_tgid, &args, ret, pid, status, code);
    0
}

/// `long kernel_waitid(int which, pid_t upid, struct waitid_info *infop,
/// int options, struct rusage *ru)`: `infop` is the kernel's, and the call
/// returns the pid it reports (the syscall then returns 0), 0 when it
/// reports none, or an error.
#[fexit(function = "kernel_waitid")]
pub fn kernel_waitid(ctx: FExitContext) -> i32 {
    let pid_tgid = bpf_get_current_pid_tgid();
    if !wants_parent(filter(), (pid_tgid >> 32) as u32) {
        return 0;
    }
    let which: u32 = ctx.arg(0);
    let upid: i32 = ctx.arg(1);
    let infop: u64 = ctx.arg(2);
    let options: u32 = ctx.arg(3);
    let kret: i64 = ctx.arg(5);
    let args = WaitArgs::waitid(which, upid, infop, options);
    let (ret, pid, status, code) = waitid_result(kret, || {
        let o = offsets();
        let info = infop as KPtr;
        (
            read::<i32>(info, o.waitid_info_pid).unwrap_or(0),
            read::<i32>(info, o.waitid_info_status).unwrap_or(0),
            read::<i32>(info, o.waitid_info_cause).unwrap_or(0),
        )
    });
    finish(pid_tgid, &args, ret, pid, status, code);
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

/// What a `wait4` that returned `ret` reported: the pid, the status word
/// the kernel has just written to user memory (read back), and whether
/// there is one (1) or not (0).
#[inline(always)]
fn wait4_result(ret: i64, stat_addr: u64) -> (i32, i32, i32) {
    match read_user_i32(stat_addr) {
        Some(status) if ret > 0 => (ret as i32, status, 1),
        _ => (if ret > 0 { ret as i32 } else { 0 }, 0, 0),
    }
}

/// The current task's pid namespace level: the pid a wait reports is a
/// global pid only at level 0.
fn pid_ns_level() -> u32 {
    let o = offsets();
    let task = current();
    read::<KPtr>(task, o.task_thread_pid)
        .and_then(|pid| read::<u32>(pid, o.pid_level))
        .unwrap_or(u32::MAX)
}

fn on_return(ctx: &TracePointContext, syscall: u32) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(args) = returning_call(syscall, pid_tgid) else {
        return;
    };
    let ret = arg(ctx, offsets().sys_exit_ret) as i64;
    // The kernel has just written the result to user memory: read it back.
    let (pid, status, code) = if args.syscall == WAIT_SYSCALL_WAIT4 {
        wait4_result(ret, args.uaddr)
    } else if ret == 0 {
        (
            read_user_i32(args.uaddr.wrapping_add(SI_PID)).unwrap_or(0),
            read_user_i32(args.uaddr.wrapping_add(SI_STATUS)).unwrap_or(0),
            read_user_i32(args.uaddr.wrapping_add(SI_CODE)).unwrap_or(0),
        )
    } else {
        (0, 0, 0)
    };
    finish(pid_tgid, &args, ret, pid, status, code);
}

/// A wait call of the current thread returned `ret` (as the syscall
/// returns it), reporting child `pid` (0: none) with `status` and `code`
/// (`si_code` for `waitid`; for `wait4`, 1 when it wrote a status).
#[inline(always)]
fn finish(pid_tgid: u64, args: &WaitArgs, ret: i64, pid: i32, status: i32, code: i32) {
    let tgid = (pid_tgid >> 32) as u32;
    // SAFETY: a helper without arguments.
    let now = unsafe { bpf_ktime_get_boot_ns() };
    let comm = bpf_get_current_comm().unwrap_or_default();
    let pid_ns_level = pid_ns_level();
    if !crate::streaming() {
        let reaped = pid > 0
            && collects_exit(args.syscall, args.options, status, code)
            && args.options & WNOWAIT == 0;
        let outcome = if reaped {
            REAPED
        } else if pid > 0 {
            REPORTED
        } else {
            0
        };
        tally(tgid, args, ret, outcome, now);
        // A pid reported to a caller in another pid namespace is not the
        // global pid the exit was held under.
        if !reaped || pid_ns_level != 0 {
            return;
        }
        // A plain integer, not an Option: the verifier refuses the register
        // games the compiler plays with an Option's unset payload.
        let word = exit_status_word(args.syscall, status, code).unwrap_or(UNKNOWN_STATUS);
        let child = pid as u32;
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
    send(record, COUNTER_LOST_WAIT);
}

/// The start time of the current process (its leader's).
fn current_start_ns() -> u64 {
    let o = offsets();
    let task = current();
    read::<KPtr>(task, o.task_group_leader)
        .and_then(|leader| read::<u64>(leader, o.task_start_boottime))
        .unwrap_or(0)
}

/// What a call did, for [`tally`]: it reported a child (`REPORTED`), and
/// collected it too (`REAPED`).
const REPORTED: u32 = 1;
const REAPED: u32 = 3;

/// Adds a returned call to its caller's tally. Not inlined: the verifier
/// walks the rest of the program once per way through the target loop
/// otherwise, which tripled the wait programs' load time.
#[inline(never)]
fn tally(tgid: u32, args: &WaitArgs, ret: i64, outcome: u32, now: u64) {
    let reported = outcome & REPORTED != 0;
    let reaped = outcome == REAPED;
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
        last_ns: now,
    };
    // SAFETY: a map value. Threads of one process may wait at once: the
    // counts are added atomically; the times and the target list may lose
    // a race, which only makes an example a little stale.
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
        // The same target's slot, else a free one, else the one asked for
        // least recently: what the parent waited for lately, not first.
        // Each pass writes only at its own turn's index: an index carried
        // from turn to turn has the verifier walk every value it can take.
        let targets = &raw mut (*slot).targets;
        let used = (*slot).n_targets as usize;
        let mut oldest_ns = u64::MAX;
        let mut i = 0;
        while i < WAIT_TARGETS {
            if i < used && (*targets)[i].same_target(&target) {
                (*targets)[i] = target;
                return;
            }
            // Only needed when all are used, and then over all of them.
            oldest_ns = oldest_ns.min((*targets)[i].last_ns);
            i += 1;
        }
        // Read again: the count compared above is not one the verifier
        // must then follow value by value as an index.
        let n = core::ptr::read_volatile(&raw const (*slot).n_targets) as usize;
        if n < WAIT_TARGETS {
            (*slot).n_targets = n as u32 + 1;
            (*targets)[n] = target;
            return;
        }
        i = 0;
        while i < WAIT_TARGETS {
            if (*targets)[i].last_ns == oldest_ns {
                (*targets)[i] = target;
                return;
            }
            i += 1;
        }
    }
}

/// Process `tgid` is gone, or runs another program: its calls no longer
/// describe it.
pub fn forget(tgid: u32) {
    // A lookup takes no lock, a delete does: most processes never wait.
    if WAIT_TALLY.get_ptr(&tgid).is_some() {
        let _ = WAIT_TALLY.remove(&tgid);
    }
}
