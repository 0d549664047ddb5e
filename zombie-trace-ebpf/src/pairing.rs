//! Exits and reaps paired in the kernel (the default mode): a child's exit
//! waits in `PENDING` until its reap takes it out, and only what userspace
//! must see crosses the ring buffer: children still pending past the
//! threshold (userspace takes them out of `PENDING` itself), their reaps,
//! and the counters and histograms userspace reads.

use aya_ebpf::{
    bindings::{BPF_ANY, BPF_F_NO_PREALLOC, BPF_NOEXIST},
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray},
};
use zombie_trace_common::{
    COMM_LEN, COUNTER_KERNEL_REAPS, ExitRecord, HANDED_MAX, LATENCY_BY_COMM_MAX,
    LATENCY_BY_REAPER_MAX, LatencyHist, PENDING_MAX, ReaperLatency, latency_bucket,
};

use crate::{atomic_add, count};

/// Exits not yet reaped, by tgid (a pid is not reused before its process is
/// reaped; the record's `start_ns` tells a stale entry from a new process).
/// Preallocated: an insert and a delete per child, on every exit, cost a
/// third less than with allocation as used. Normally it holds only the
/// children exited in the last threshold and not yet reaped; when full,
/// exits go over the ring buffer instead, and that is counted.
#[map]
static PENDING: HashMap<u32, ExitRecord> = HashMap::with_max_entries(PENDING_MAX, 0);

/// Processes userspace tracks (taken from `PENDING`, found in `/proc`, or
/// sent when `PENDING` was full): their reaps, and the wait calls that
/// collect them, cross the ring buffer. Written by userspace; the reap
/// program removes what it sends.
#[map]
pub static HANDED: HashMap<u32, u32> = HashMap::with_max_entries(HANDED_MAX, BPF_F_NO_PREALLOC);

/// Exit-to-reap times of the children paired here, per CPU.
#[map]
static LATENCY: PerCpuArray<LatencyHist> = PerCpuArray::with_max_entries(1, 0);

/// The same, by the reaper's name (the least recently used go when full).
#[map]
static LATENCY_BY_COMM: LruHashMap<[u8; COMM_LEN], LatencyHist> =
    LruHashMap::with_max_entries(LATENCY_BY_COMM_MAX, 0);

/// The same, by the reaper's tgid.
#[map]
static LATENCY_BY_REAPER: LruHashMap<u32, ReaperLatency> =
    LruHashMap::with_max_entries(LATENCY_BY_REAPER_MAX, 0);

/// All zeros, never written: the value new histogram entries start from
/// (too big to build on the 512-byte eBPF stack).
#[map]
static ZERO: Array<ReaperLatency> = Array::with_max_entries(1, 0);

/// What became of an exit offered to `PENDING`.
pub enum Held {
    Yes,
    /// The same process is there already: two of its threads died at once
    /// and both saw the group dead.
    Duplicate,
    /// No room: the caller sends it to userspace instead.
    Full,
}

pub fn hold(record: &ExitRecord) -> Held {
    if PENDING
        .insert(&record.tgid, record, BPF_NOEXIST.into())
        .is_ok()
    {
        return Held::Yes;
    }
    // SAFETY: the start time is copied out at once.
    match unsafe { PENDING.get(&record.tgid) }.map(|old| old.start_ns) {
        Some(start) if start == record.start_ns => Held::Duplicate,
        // Another process had this pid: it was reaped (its pid went free)
        // but not yet released. It is settled.
        Some(_) => {
            if PENDING.insert(&record.tgid, record, BPF_ANY.into()).is_ok() {
                count(COUNTER_KERNEL_REAPS);
                Held::Yes
            } else {
                Held::Full
            }
        }
        None => Held::Full,
    }
}

/// Takes process `tgid` out of `PENDING` if its exit is there, `is_it`
/// says it is the process meant, and this call got it (userspace may take
/// it at the same moment).
#[inline(always)]
pub fn take(tgid: u32, is_it: impl FnOnce(&ExitRecord) -> bool) -> Option<ExitRecord> {
    // SAFETY: copied out before the entry is removed.
    let record = unsafe { PENDING.get(&tgid) }.copied()?;
    if !is_it(&record) {
        return None;
    }
    PENDING.remove(&tgid).ok()?;
    Some(record)
}

/// Whether an exit of `tgid` is held. Userspace marks a process in
/// `HANDED` before it takes it out of `PENDING`: looking here first, then
/// there, never misses one being moved.
pub fn pending(tgid: u32) -> bool {
    PENDING.get_ptr(&tgid).is_some()
}

/// Whether userspace tracks `tgid`.
pub fn handed(tgid: u32) -> bool {
    HANDED.get_ptr(&tgid).is_some()
}

/// Whether userspace tracked `tgid`, which is gone: it no longer does.
pub fn unhand(tgid: u32) -> bool {
    // A lookup takes no lock, a delete does: almost every process that
    // goes was never handed.
    handed(tgid) && HANDED.remove(&tgid).is_ok()
}

/// A child paired here was reaped `ns` after its exit by `reaper` (its
/// tgid, start time and name).
pub fn reaped(ns: u64, reaper: u32, reaper_start_ns: u64, reaper_comm: &[u8; COMM_LEN]) {
    count(COUNTER_KERNEL_REAPS);
    let bucket = latency_bucket(ns);
    if let Some(hist) = LATENCY.get_ptr_mut(0) {
        // SAFETY: this CPU's slot; programs do not migrate while running.
        unsafe {
            (*hist).buckets[bucket] += 1;
            (*hist).sum_ns += ns;
            if ns > (*hist).max_ns {
                (*hist).max_ns = ns;
            }
        }
    }
    // Never written: new entries start from it.
    let Some(zero) = ZERO.get(0) else {
        return;
    };
    if let Some(hist) = entry(&LATENCY_BY_COMM, reaper_comm, &zero.hist) {
        // SAFETY: a map value; shared between CPUs, so added atomically.
        unsafe { add(hist, bucket, ns) };
    }
    if let Some(slot) = reaper_entry(reaper, reaper_start_ns, zero) {
        // SAFETY: as above.
        unsafe { add(&raw mut (*slot).hist, bucket, ns) };
    }
}

/// The value of `key`, created from `zero` when missing.
#[inline(always)]
fn entry<K, V>(map: &LruHashMap<K, V>, key: &K, zero: &V) -> Option<*mut V> {
    if let Some(value) = map.get_ptr_mut(key) {
        return Some(value);
    }
    let _ = map.insert(key, zero, BPF_NOEXIST.into());
    map.get_ptr_mut(key)
}

/// The histogram of `reaper`, started afresh when its pid was another
/// process's.
#[inline(always)]
fn reaper_entry(reaper: u32, start_ns: u64, zero: &ReaperLatency) -> Option<*mut ReaperLatency> {
    let mut slot = entry(&LATENCY_BY_REAPER, &reaper, zero)?;
    // SAFETY: a map value. Two CPUs starting the same entry at once write
    // the same start time.
    unsafe {
        if (*slot).start_ns != start_ns {
            if (*slot).start_ns != 0 {
                let _ = LATENCY_BY_REAPER.remove(&reaper);
                slot = entry(&LATENCY_BY_REAPER, &reaper, zero)?;
            }
            (*slot).start_ns = start_ns;
        }
    }
    Some(slot)
}

/// # Safety
/// `hist` points to a live map value.
#[inline(always)]
unsafe fn add(hist: *mut LatencyHist, bucket: usize, ns: u64) {
    // SAFETY: per the caller; the kernel's atomic add keeps concurrent
    // updates from CPUs. The maximum may lose a race: it is a histogram.
    unsafe {
        atomic_add(&raw mut (*hist).buckets[bucket], 1);
        atomic_add(&raw mut (*hist).sum_ns, ns);
        if ns > (*hist).max_ns {
            (*hist).max_ns = ns;
        }
    }
}
