//! `sched_process_free`: a process is gone for good.
//!
//! There is no reap tracepoint. This one fires for every task once it is
//! released, after an RCU grace period; `current` is unrelated, so everything
//! comes from the task argument. Its `real_parent` is who reaped it.

use aya_ebpf::{
    helpers::bpf_ktime_get_boot_ns, macros::btf_tracepoint, programs::BtfTracePointContext,
};
use aya_log_ebpf::error;
use zombie_trace_common::{COUNTER_LOST_REAP, COUNTER_READ_ERRORS, KIND_REAP, ReapRecord};

use crate::{
    command, count,
    filter::{filter, wants_parent, wants_process},
    offsets, pairing, send,
    task::{KPtr, pid_tgid, read, read_comm},
};

#[btf_tracepoint(function = "sched_process_free")]
pub fn sched_process_free(ctx: BtfTracePointContext) -> i32 {
    let task: KPtr = ctx.arg(0);
    if let Err(err) = try_free(task) {
        count(COUNTER_READ_ERRORS);
        error!(&ctx, "sched_process_free: kernel read failed ({})", err);
    }
    0
}

fn try_free(task: KPtr) -> Result<(), i32> {
    let o = offsets();
    let (pid, tgid) = pid_tgid(task, o)?;
    // Threads other than the leader are never zombies.
    if pid != tgid {
        return Ok(());
    }
    command::forget(tgid, || read(task, o.task_start_boottime));
    // In the default mode almost every release is of a process the kernel
    // has settled already (its wait took it out of `PENDING`): two lookups,
    // which take no lock, spare it the reads below.
    if !crate::streaming() && !pairing::pending(tgid) && !pairing::handed(tgid) {
        return Ok(());
    }
    let start_ns: u64 = read(task, o.task_start_boottime)?;
    let comm = read_comm(task, o.task_comm);
    let parent: KPtr = read(task, o.task_real_parent)?;
    let reaper_tgid: u32 = read(parent, o.task_tgid)?;
    let wanted = if crate::streaming() {
        // Not by cgroup: `current` is not this task. By parent, the reaper:
        // a child reaped by an adoptive parent is then seen to go by /proc.
        let f = filter();
        wants_process(f, tgid, &comm) && wants_parent(f, reaper_tgid)
    } else {
        for_userspace(tgid, start_ns, parent, reaper_tgid)
    };
    if !wanted {
        return Ok(());
    }
    let record = ReapRecord {
        kind: KIND_REAP,
        tgid,
        start_ns,
        ts_ns: now(),
        reaper_tgid,
        _pad: 0,
        comm,
        reaper_comm: read_comm(parent, o.task_comm),
    };
    send(record, COUNTER_LOST_REAP);
    Ok(())
}

/// In the default mode: settles the reap of a child the exit program held
/// (it passed the filters then, whoever reaps it), else says whether
/// userspace tracks the process, which it then stops doing.
fn for_userspace(tgid: u32, start_ns: u64, parent: KPtr, reaper: u32) -> bool {
    let Some(exit) = pairing::take(tgid, |exit| exit.start_ns == start_ns) else {
        return pairing::unhand(tgid);
    };
    // Not an auto-reaped one: those are never held.
    let o = offsets();
    // The process's start, not the thread's: the parent may be a thread.
    let reaper_start: u64 = read::<KPtr>(parent, o.task_group_leader)
        .and_then(|leader| read(leader, o.task_start_boottime))
        .unwrap_or(0);
    let latency = now().saturating_sub(exit.ts_ns);
    pairing::reaped(
        latency,
        reaper,
        reaper_start,
        &read_comm(parent, o.task_comm),
    );
    false
}

#[inline(always)]
fn now() -> u64 {
    // SAFETY: a helper without arguments.
    unsafe { bpf_ktime_get_boot_ns() }
}
