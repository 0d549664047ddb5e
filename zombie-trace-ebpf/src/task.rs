//! Reads of kernel memory at runtime-supplied offsets.
//!
//! Two ways, chosen at load time (`DIRECT_READS`). Direct loads, where the
//! kernel allows them: every pointer the programs start from is typed by
//! BTF (a BTF tracepoint's argument, `bpf_get_current_task_btf`), the
//! offsets are constants to the verifier (a read-only global), so it checks
//! each load against the kernel's types, and a bad pointer reads as zero
//! instead of faulting. A load costs an instruction where
//! `bpf_probe_read_kernel` costs a helper call, some 25 ns. Where the
//! verifier refuses them (older kernels), the loader sets the helper way.

use aya_ebpf::helpers::{
    bpf_get_current_task, bpf_get_current_task_btf, bpf_probe_read_kernel,
    bpf_probe_read_kernel_buf,
};
use zombie_trace_common::{COMM_LEN, Offsets};

/// An opaque kernel pointer (`task_struct`, `signal_struct`, ...).
pub type KPtr = *const u8;

/// Set to 1 by the loader where the verifier takes direct loads.
#[unsafe(no_mangle)]
static DIRECT_READS: u32 = 0;

#[inline(always)]
fn direct() -> bool {
    crate::is_set(&DIRECT_READS)
}

/// Reads a `T` at `base + off`. Neither way faults: a bad pointer is an
/// error with the helper, a zero with a direct load.
#[inline(always)]
pub fn read<T>(base: KPtr, off: u32) -> Result<T, i32> {
    let at = base.wrapping_add(off as usize) as *const T;
    if direct() {
        // SAFETY: the verifier checks the load against the kernel's BTF
        // and turns a fault into a zero; `T` is a plain integer or pointer.
        return Ok(unsafe { core::ptr::read_volatile(at) });
    }
    // SAFETY: the helper validates the address; `T` is as above.
    unsafe { bpf_probe_read_kernel(at) }
}

/// Reads a `T` at `base + off` through the helper in either mode: for a
/// pointer the verifier cannot type, such as a task found from the
/// `list_head` inside it.
#[inline(always)]
pub fn read_untyped<T>(base: KPtr, off: u32) -> Result<T, i32> {
    // SAFETY: the helper validates the address; `T` is a plain integer or
    // pointer.
    unsafe { bpf_probe_read_kernel(base.wrapping_add(off as usize) as *const T) }
}

/// `read_comm` through the helper in either mode (see `read_untyped`).
#[inline(always)]
pub fn read_comm_untyped(task: KPtr, off: u32) -> [u8; COMM_LEN] {
    let mut comm = [0u8; COMM_LEN];
    // SAFETY: as in `read_untyped`; on failure the name stays empty.
    let _ = unsafe { bpf_probe_read_kernel_buf(task.wrapping_add(off as usize), &mut comm) };
    comm
}

#[inline(always)]
pub fn read_comm(task: KPtr, off: u32) -> [u8; COMM_LEN] {
    let mut comm = [0u8; COMM_LEN];
    if direct() {
        // Two loads inside the `char[16]`, as the verifier allows.
        let low: u64 = read(task, off).unwrap_or(0);
        let high: u64 = read(task, off.wrapping_add(8)).unwrap_or(0);
        comm[..8].copy_from_slice(&low.to_ne_bytes());
        comm[8..].copy_from_slice(&high.to_ne_bytes());
        return comm;
    }
    // SAFETY: as in `read`; on failure the name stays empty.
    let _ = unsafe { bpf_probe_read_kernel_buf(task.wrapping_add(off as usize), &mut comm) };
    comm
}

/// The current task, typed by BTF for direct loads.
#[inline(always)]
pub fn current() -> KPtr {
    // SAFETY: helpers without memory arguments; the pointer is only read
    // through `read`.
    unsafe {
        if direct() {
            bpf_get_current_task_btf() as KPtr
        } else {
            bpf_get_current_task() as KPtr
        }
    }
}

/// `task->pid` and `task->tgid`. With the helper, one read of both where
/// they are adjacent (in every kernel so far; a little-endian pair, as the
/// bpfel target is): programs that run for every process save a call.
/// Direct loads must each stay within one field.
#[inline(always)]
pub fn pid_tgid(task: KPtr, o: &Offsets) -> Result<(u32, u32), i32> {
    if !direct() && o.task_tgid == o.task_pid.wrapping_add(4) {
        let both: u64 = read(task, o.task_pid)?;
        Ok((both as u32, (both >> 32) as u32))
    } else {
        Ok((read(task, o.task_pid)?, read(task, o.task_tgid)?))
    }
}
