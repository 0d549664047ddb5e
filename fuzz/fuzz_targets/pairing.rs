//! The pairing engine fed what the kernel could send it: records of every
//! kind with any field values, in any order, with losses, the clock moving
//! on, and `/proc` answering anything when asked. It must never panic
//! (overflow included: the targets are built with overflow checks) and its
//! tables must stay within their bounds.

#![no_main]

use std::mem::size_of;

use libfuzzer_sys::{
    arbitrary::{Result, Unstructured},
    fuzz_target,
};
use zombie_trace::{
    engine::{Config, Engine, Unseen, Verdict},
    kernel::decode::decode,
    model::event::Comm,
};
use zombie_trace_common::{
    ExecRecord, ExitRecord, KIND_EXEC, KIND_EXIT, KIND_REAP, KIND_WAIT, ReapRecord, WaitRecord,
};

const KINDS: [(u32, usize); 4] = [
    (KIND_EXIT, size_of::<ExitRecord>()),
    (KIND_REAP, size_of::<ReapRecord>()),
    (KIND_WAIT, size_of::<WaitRecord>()),
    (KIND_EXEC, size_of::<ExecRecord>()),
];

fuzz_target!(|bytes: &[u8]| {
    // Running out of input ends the run: not a failure.
    let _ = run(&mut Unstructured::new(bytes));
});

fn run(u: &mut Unstructured) -> Result<()> {
    let mut config = Config::new(
        u.int_in_range(1_000_000..=7 * 24 * 3_600_000_000_000)?,
        u.int_in_range(1..=1_000)?,
    );
    // Small tables, so that their limits are reached.
    config.max_pending = 8;
    config.max_wait_callers = 4;
    config.max_orphan_reaps = 4;
    config.memory_ns = u.arbitrary()?;
    let mut engine = Engine::new(config.clone());
    let mut now: u64 = u.arbitrary()?;
    let mut out = Vec::new();
    while !u.is_empty() {
        match u.int_in_range(0..=5)? {
            0 => {
                let &(kind, len) = u.choose(&KINDS)?;
                let mut record = u.bytes(len)?.to_vec();
                record[..4].copy_from_slice(&kind.to_ne_bytes());
                if let Ok(event) = decode(&record) {
                    engine.on_event(&event, &mut out);
                }
            }
            1 => {
                now = now.saturating_add(u.arbitrary::<u32>()?.into());
                for due in engine.tick(now) {
                    let verdict = verdict(u)?;
                    engine.resolve(due.id, verdict, now);
                }
            }
            2 => {
                for reported in engine.reported(now) {
                    let verdict = verdict(u)?;
                    engine.resolve(reported.id, verdict, now);
                }
            }
            3 => {
                let unseen = Unseen {
                    pid: u.arbitrary()?,
                    start_ticks: u.arbitrary()?,
                    comm: Comm::new(u.bytes(16)?),
                    ppid: u.arbitrary()?,
                    parent_comm: u.bytes(16)?.to_vec(),
                    preexisting: u.arbitrary()?,
                };
                engine.add_unseen(unseen, now);
            }
            4 => engine.on_lost(u.int_in_range(0..=u64::from(u32::MAX))?),
            _ => {
                engine.outstanding(now);
                engine.wait_stats(u.arbitrary()?);
                engine.counts();
            }
        }
        out.clear();
        assert!(engine.pending_len() <= config.max_pending);
        assert!(engine.wait_callers_len() <= config.max_wait_callers);
        assert!(engine.orphan_reaps_len() <= config.max_orphan_reaps);
    }
    Ok(())
}

fn verdict(u: &mut Unstructured) -> Result<Verdict> {
    Ok(match u.int_in_range(0..=2)? {
        0 => Verdict::Zombie {
            ppid: u.arbitrary()?,
            parent_comm: u.bytes(16)?.to_vec(),
        },
        1 => Verdict::NotYet,
        _ => Verdict::Gone,
    })
}
