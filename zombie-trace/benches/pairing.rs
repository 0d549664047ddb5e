//! The userspace path every kernel record takes with `--events` (and every
//! record of a child taken over in the default mode): decoding ring-buffer
//! bytes, then pairing exits with the waits and releases that reap them.
//! Records per second on one core: `cargo bench -p zombie-trace --bench
//! pairing` (`cargo xtask bench` runs it and records the figures).

use std::{hint::black_box, mem::size_of};

use divan::{Bencher, counter::ItemsCount};
use zombie_trace::{
    engine::{Config, Engine},
    kernel::decode::decode,
};
use zombie_trace_common::{
    COMM_LEN, ExitRecord, KIND_EXIT, KIND_REAP, KIND_WAIT, P_ALL, ReapRecord, WAIT_SYSCALL_WAIT4,
    WaitRecord,
};

fn main() {
    divan::main();
}

/// A storm like `tests/scenarios/storm.c`'s: per child an exit, the
/// parent's `wait4` that collects it, and its release.
const CHILDREN: u32 = 10_000;
const PARENT: u32 = 1_000;
const THRESHOLD_NS: u64 = 5_000_000_000;

fn comm(name: &[u8]) -> [u8; COMM_LEN] {
    let mut comm = [0; COMM_LEN];
    comm[..name.len()].copy_from_slice(name);
    comm
}

fn bytes_of<T: Copy>(record: &T) -> Vec<u8> {
    // SAFETY: the records are #[repr(C)] integers and byte arrays with no
    // padding (zombie-trace-common tests that), so every byte is initialised.
    unsafe { std::slice::from_raw_parts((record as *const T).cast::<u8>(), size_of::<T>()) }
        .to_vec()
}

fn storm() -> Vec<Vec<u8>> {
    let mut records = Vec::new();
    for i in 0..CHILDREN {
        let pid = PARENT + 1 + i;
        let start_ns = u64::from(i) * 100_000;
        let exit_ns = start_ns + 30_000;
        records.push(bytes_of(&ExitRecord {
            kind: KIND_EXIT,
            tgid: pid,
            tid: pid,
            ppid: PARENT,
            start_ns,
            ts_ns: exit_ns,
            status: 0,
            flags: 0,
            comm: comm(b"storm"),
            parent_comm: comm(b"storm"),
        }));
        records.push(bytes_of(&WaitRecord {
            kind: KIND_WAIT,
            syscall: WAIT_SYSCALL_WAIT4,
            tgid: PARENT,
            tid: PARENT,
            ts_ns: exit_ns + 20_000,
            idtype: P_ALL,
            id: -1,
            options: 0,
            pid: pid as i32,
            ret: i64::from(pid),
            status: 0,
            code: 0,
            comm: comm(b"storm"),
            pid_ns_level: 0,
            _pad: 0,
        }));
        records.push(bytes_of(&ReapRecord {
            kind: KIND_REAP,
            tgid: pid,
            start_ns,
            ts_ns: exit_ns + 25_000,
            reaper_tgid: PARENT,
            _pad: 0,
            comm: comm(b"storm"),
            reaper_comm: comm(b"storm"),
        }));
    }
    records
}

#[divan::bench]
fn decode_only(bencher: Bencher) {
    let records = storm();
    bencher
        .counter(ItemsCount::new(records.len()))
        .bench_local(|| {
            for record in &records {
                let _ = black_box(decode(black_box(record)));
            }
        });
}

fn pair(records: &[Vec<u8>]) -> Engine {
    let mut engine = Engine::new(Config::new(THRESHOLD_NS, 100));
    let mut out = Vec::new();
    for record in records {
        if let Ok(event) = decode(black_box(record)) {
            engine.on_event(&event, &mut out);
        }
        out.clear();
    }
    engine
}

#[divan::bench]
fn decode_and_pair(bencher: Bencher) {
    let records = storm();
    // What is timed must be the real work: every child paired, none left.
    let counts = pair(&records).counts();
    assert_eq!(
        (counts.exits, counts.paired_reaps, counts.zombies),
        (u64::from(CHILDREN), u64::from(CHILDREN), 0),
        "the synthetic storm no longer pairs: fix the records"
    );
    bencher
        .counter(ItemsCount::new(records.len()))
        .bench_local(|| black_box(pair(&records)));
}
