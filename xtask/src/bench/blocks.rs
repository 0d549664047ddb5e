//! Short bracketed blocks, for a slowdown of a percent or two on a machine
//! whose speed wanders by more. Here a loop of 500 children of fork + exec
//! takes about 8% more or less than the one before it, and the wandering
//! is there at every time scale: runs ten times longer differ by almost as
//! much, so longer runs do not average it out. More runs do: many short
//! blocks, each under a freshly started tracer and between two blocks
//! without one, every loop after the same idle pause, the tracers taking
//! turns; each block's slowdown is against the mean of its two
//! neighbours, and the median of many such slowdowns comes with a
//! bootstrap interval saying how well it is known.

use std::time::Duration;

use anyhow::Result;

use super::page::median;

/// Children of fork + exec per block: about 0.4 s here.
pub(super) const CHILDREN: u64 = 500;

/// How long a block waits before its loop: after its tracer attached,
/// since loading programs flushes caches and TLBs, which a tracer left
/// running has long paid; without a tracer too, since here a loop that
/// follows an idle pause runs about 2% slower than one that follows
/// another loop (blocks after a pause of 500 ms against blocks after
/// none, no tracer in either: +2.1%, 95% interval +0.5 to +4.4, over 120).
pub(super) const SETTLE: Duration = Duration::from_millis(250);

/// Resamples of the bootstrap.
const RESAMPLES: usize = 2000;

/// `count` blocks under each of `tracers`, each between two blocks without
/// a tracer: `run(None)` times a block without one, `run(Some(t))` one
/// under `t`, both in seconds. Every cycle starts one tracer further
/// along. Returns each tracer's block with its slowdown in percent.
pub(super) fn interleave<T: Copy>(
    tracers: &[T],
    count: usize,
    mut run: impl FnMut(Option<T>) -> Result<f64>,
) -> Result<Vec<(T, f64)>> {
    let mut before = run(None)?;
    let mut slowdowns = Vec::with_capacity(tracers.len() * count);
    for cycle in 0..count {
        for i in 0..tracers.len() {
            let tracer = tracers[(cycle + i) % tracers.len()];
            let under = run(Some(tracer))?;
            let after = run(None)?;
            slowdowns.push((tracer, (under / ((before + after) / 2.0) - 1.0) * 100.0));
            before = after;
        }
    }
    Ok(slowdowns)
}

/// A 95% interval for the median of `values`: the 2.5th and 97.5th
/// percentiles of the medians of resamples drawn with replacement. The
/// draws are seeded: the same figures give the same interval.
pub(super) fn median_interval(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    // splitmix64: plenty for picking indices, and no dependency.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut index = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % values.len() as u64) as usize
    };
    let mut medians: Vec<f64> = (0..RESAMPLES)
        .filter_map(|_| median((0..values.len()).map(|_| values[index()]).collect()))
        .collect();
    medians.sort_by(f64::total_cmp);
    Some((
        medians[RESAMPLES * 25 / 1000],
        medians[RESAMPLES * 975 / 1000 - 1],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_block_is_against_its_two_neighbours_and_the_tracers_take_turns() {
        // Without a tracer the machine slows by 0.1 s per block; each
        // tracer adds its own share on top.
        let mut clock = 0.0;
        let mut order = Vec::new();
        let blocks = interleave(&['a', 'b'], 2, |tracer| {
            clock += 0.1;
            order.push(tracer);
            Ok(1.0 + clock + if tracer == Some('a') { 0.13 } else { 0.0 })
        })
        .unwrap();
        assert_eq!(
            order,
            [
                None,
                Some('a'),
                None,
                Some('b'),
                None,
                Some('b'),
                None,
                Some('a'),
                None
            ]
        );
        let tracers: Vec<char> = blocks.iter().map(|(t, _)| *t).collect();
        assert_eq!(tracers, ['a', 'b', 'b', 'a']);
        // The drift cancels: `a` adds 0.13 s to a 1.2 s baseline, `b` nothing.
        assert!((blocks[0].1 - 0.13 / 1.2 * 100.0).abs() < 1e-9);
        assert!(blocks[1].1.abs() < 1e-9 && blocks[2].1.abs() < 1e-9);
    }

    #[test]
    fn the_interval_holds_the_median_and_narrows_with_more_blocks() {
        assert_eq!(median_interval(&[]), None);
        assert_eq!(median_interval(&[1.5]), Some((1.5, 1.5)));
        let noisy = |n: usize| -> Vec<f64> {
            (0..n)
                .map(|i| 1.0 + ((i * 37 % 101) as f64 - 50.0) / 10.0)
                .collect()
        };
        let (few, many) = (noisy(40), noisy(400));
        let (lo, hi) = median_interval(&few).unwrap();
        let m = median(few.clone()).unwrap();
        assert!(lo <= m && m <= hi && lo < hi);
        let (lo_many, hi_many) = median_interval(&many).unwrap();
        assert!(hi_many - lo_many < hi - lo);
        // Seeded: the same figures, the same interval.
        assert_eq!(median_interval(&few), Some((lo, hi)));
    }
}
