//! What the tracer reads out of the kernel's maps: a process's wait-call
//! tally (its most recent targets) and the reap-latency histograms, with
//! any values in them.

#![no_main]

use libfuzzer_sys::{
    arbitrary::{Result, Unstructured},
    fuzz_target,
};
use zombie_trace::{kernel::decode::wait_tally, stats::Log2Hist};
use zombie_trace_common::{LATENCY_BUCKETS, LatencyHist, WAIT_TARGETS, WaitTally, WaitTargetId};

fuzz_target!(|bytes: &[u8]| {
    let _ = run(&mut Unstructured::new(bytes));
});

fn run(u: &mut Unstructured) -> Result<()> {
    let mut tally = WaitTally {
        calls: u.arbitrary()?,
        reaped: u.arbitrary()?,
        empty: u.arbitrary()?,
        errors: u.arbitrary()?,
        peeks: u.arbitrary()?,
        last_ns: u.arbitrary()?,
        n_targets: u.arbitrary()?,
        _pad: 0,
        targets: [WaitTargetId::default(); WAIT_TARGETS],
    };
    for target in &mut tally.targets {
        *target = WaitTargetId {
            idtype: u.int_in_range(0..=4)?,
            id: u.arbitrary()?,
            last_ns: u.arbitrary()?,
        };
    }
    let stats = wait_tally(&tally);
    // Distinct, at most what the kernel keeps, the most recent first.
    assert!(stats.targets.len() <= WAIT_TARGETS);
    for (i, recent) in stats.targets.iter().enumerate() {
        assert!(
            !stats.targets[..i].iter().any(|r| r.target == recent.target),
            "{:?}",
            stats.targets
        );
        assert!(
            i == 0 || stats.targets[i - 1].last_ns >= recent.last_ns,
            "{:?}",
            stats.targets
        );
    }

    let a = Log2Hist::from(&hist(u)?);
    let b = Log2Hist::from(&hist(u)?);
    for h in [&a, &b] {
        check(h);
    }
    let mut merged = a.clone();
    merged.merge(&b);
    check(&merged);
    assert!(merged.count() >= a.count().max(b.count()));
    Ok(())
}

fn hist(u: &mut Unstructured) -> Result<LatencyHist> {
    let mut buckets = [0; LATENCY_BUCKETS];
    for bucket in &mut buckets {
        *bucket = u.arbitrary()?;
    }
    Ok(LatencyHist {
        buckets,
        sum_ns: u.arbitrary()?,
        max_ns: u.arbitrary()?,
    })
}

/// Quantiles come in order and never above the maximum.
fn check(h: &Log2Hist) {
    let s = h.summary();
    assert_eq!(s.count, h.count());
    match (s.p50_ns, s.p99_ns, s.max_ns) {
        (Some(p50), Some(p99), Some(max)) => {
            assert!(p50 <= p99 && p99 <= max, "{s:?}");
        }
        (None, None, None) => assert_eq!(h.count(), 0),
        _ => panic!("a summary with some quantiles missing: {s:?}"),
    }
}
