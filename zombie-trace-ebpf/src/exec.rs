//! `sched_process_exec`: a process replaced its program. What it now runs
//! is kept for its exit report (`command`); the wait calls of the old
//! program say nothing about the new one (`sh -c 'job & exec prog'` hands
//! the shell's children to a program that never heard of them).

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_boot_ns},
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use aya_log_ebpf::error;
use zombie_trace_common::{COUNTER_LOST_EXEC, COUNTER_READ_ERRORS, ExecRecord, KIND_EXEC};

use crate::{
    command, count,
    filter::{filter, wants_parent},
    send,
    task::KPtr,
    wait,
};

#[btf_tracepoint(function = "sched_process_exec")]
pub fn sched_process_exec(ctx: BtfTracePointContext) -> i32 {
    // The tracepoint runs in the task that called execve, the process's
    // leader by now. Every process's command is kept, whatever the
    // filters: its parent may be the one they select.
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let task: KPtr = ctx.arg(0);
    let bprm: KPtr = ctx.arg(2);
    if let Err(err) = command::capture(task, bprm, tgid) {
        count(COUNTER_READ_ERRORS);
        error!(&ctx, "sched_process_exec: kernel read failed ({})", err);
    }
    if !wants_parent(filter(), tgid) {
        return 0;
    }
    if !crate::streaming() {
        wait::forget(tgid);
        return 0;
    }
    let record = ExecRecord {
        kind: KIND_EXEC,
        tgid,
        // SAFETY: a helper without arguments.
        ts_ns: unsafe { bpf_ktime_get_boot_ns() },
    };
    send(record, COUNTER_LOST_EXEC);
    0
}
