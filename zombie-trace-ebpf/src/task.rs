//! Reads of kernel memory at runtime-supplied offsets.

use aya_ebpf::helpers::{bpf_probe_read_kernel, bpf_probe_read_kernel_buf};
use zombie_trace_common::{COMM_LEN, Offsets};

/// An opaque kernel pointer (`task_struct`, `signal_struct`, ...).
pub type KPtr = *const u8;

/// Reads a `T` at `base + off`. `bpf_probe_read_kernel` never faults: a bad
/// pointer is an error, not a crash.
#[inline(always)]
pub fn read<T>(base: KPtr, off: u32) -> Result<T, i32> {
    // SAFETY: the helper validates the address; `T` is a plain integer or
    // pointer type.
    unsafe { bpf_probe_read_kernel(base.wrapping_add(off as usize) as *const T) }
}

#[inline(always)]
pub fn read_comm(task: KPtr, off: u32) -> [u8; COMM_LEN] {
    let mut comm = [0u8; COMM_LEN];
    // SAFETY: as in `read`; on failure the name stays empty.
    let _ = unsafe { bpf_probe_read_kernel_buf(task.wrapping_add(off as usize), &mut comm) };
    comm
}

/// `task->pid` and `task->tgid`. They are adjacent in every kernel so far:
/// then one read (of a little-endian pair, as the bpfel target is) instead
/// of two, in programs that run for every process.
#[inline(always)]
pub fn pid_tgid(task: KPtr, o: &Offsets) -> Result<(u32, u32), i32> {
    if o.task_tgid == o.task_pid.wrapping_add(4) {
        let both: u64 = read(task, o.task_pid)?;
        Ok((both as u32, (both >> 32) as u32))
    } else {
        Ok((read(task, o.task_pid)?, read(task, o.task_tgid)?))
    }
}
