//! `sched_process_exec`: a process replaced its program. The wait calls of
//! the old program say nothing about the new one (`sh -c 'job & exec prog'`
//! hands the shell's children to a program that never heard of them).

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_boot_ns},
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use zombie_trace_common::{COUNTER_LOST_EXEC, ExecRecord, KIND_EXEC};

use crate::{
    filter::{filter, wants_parent},
    send, wait,
};

#[btf_tracepoint(function = "sched_process_exec")]
pub fn sched_process_exec(_ctx: BtfTracePointContext) -> i32 {
    // The tracepoint runs in the task that called execve.
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
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
