//! zombie-trace's kernel programs: one module per hook. They read kernel
//! structs only at offsets the loader took from the running kernel's BTF
//! (`OFFSETS`), and hand records to userspace through one ring buffer.
//!
//! Built for the host too (by `cargo clippy --workspace`, where feature
//! unification gives it std through the shared crate's `user` feature), as
//! an empty program.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
// The target has no atomic types with read-modify-write; the kernel has an
// atomic add instruction, which this intrinsic emits.
#![cfg_attr(
    target_arch = "bpf",
    feature(core_intrinsics),
    allow(internal_features)
)]

mod command;
mod exec;
mod exit;
mod filter;
mod globals;
mod pairing;
mod reap;
mod task;
mod wait;

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP, BPF_RB_RING_SIZE},
    macros::map,
    maps::{PerCpuArray, RingBuf},
};
use globals::{is_set, offsets, opaque};
use zombie_trace_common::COUNTERS_LEN;

/// Ring buffer size in bytes; the loader sets the real size at load time.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(1 << 22, 0);

/// `COUNTER_*` values, per CPU so that counting never contends.
#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTERS_LEN, 0);

/// Set to 1 by the loader for `--events`: every exit, reap, wait call and
/// exec streams to userspace. At 0, exits and reaps pair in the kernel
/// (`pairing`) and only findings cross.
#[unsafe(no_mangle)]
static STREAM: u32 = 0;

#[inline(always)]
fn streaming() -> bool {
    is_set(&STREAM)
}

/// Sends `record` to userspace, or counts it under `lost` (a
/// `COUNTER_LOST_*`) when the ring buffer has no room.
#[inline(always)]
fn send<T: 'static>(record: T, lost: u32) {
    match EVENTS.reserve::<T>(0) {
        Some(mut entry) => {
            entry.write(record);
            entry.submit(wakeup_flags());
        }
        None => count(lost),
    }
}

/// Flags for submitting a record: no wakeup of the reader, which drains on
/// a short timer anyway, unless the ring is a quarter full. A wakeup per
/// record (an interrupt to the reader's CPU) costs more than the record.
#[inline(always)]
fn wakeup_flags() -> u64 {
    let pending = EVENTS.query(BPF_RB_AVAIL_DATA.into());
    let size = EVENTS.query(BPF_RB_RING_SIZE.into());
    if pending > size / 4 {
        BPF_RB_FORCE_WAKEUP.into()
    } else {
        BPF_RB_NO_WAKEUP.into()
    }
}

#[inline(always)]
fn count(counter: u32) {
    if let Some(slot) = COUNTERS.get_ptr_mut(counter) {
        // SAFETY: per-CPU slot; programs do not migrate while running.
        unsafe { *slot += 1 };
    }
}

/// Adds `n` to a counter other CPUs may update at the same time.
///
/// # Safety
/// `counter` points into a live map value.
#[inline(always)]
unsafe fn atomic_add(counter: *mut u64, n: u64) {
    #[cfg(target_arch = "bpf")]
    // SAFETY: per the caller.
    unsafe {
        core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(
            counter, n,
        );
    }
    #[cfg(not(target_arch = "bpf"))]
    // SAFETY: per the caller.
    unsafe {
        core::sync::atomic::AtomicU64::from_ptr(counter)
            .fetch_add(n, core::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(not(target_arch = "bpf"))]
fn main() {}
