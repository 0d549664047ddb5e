//! What a tracer adds to a syscall it does not trace, `getppid`: on the
//! host for `cargo xtask bench`, and in each guest of `cargo xtask vmtest`,
//! whose `guest` prints the figures in a line the host reads back.

use std::time::{Duration, Instant};

/// Batches of about this long, the fastest of them counting: short
/// enough that some run without an interruption even on a busy machine
/// (the others met one), long enough that the two clock reads are nothing
/// beside the calls.
const BATCH: Duration = Duration::from_millis(2);
/// What one measurement spends in all: under software emulation, where a
/// syscall is many times slower, the batches are fewer calls, not longer.
const BUDGET: Duration = Duration::from_secs(2);

/// How [`getppid_ns`] times, for the pages that show its figures.
pub fn method() -> String {
    format!(
        "the fastest of about {} batches of {} ms",
        BUDGET.as_millis() / BATCH.as_millis(),
        BATCH.as_millis()
    )
}

/// The time of a `getppid`, in ns: [`method`].
pub fn getppid_ns() -> f64 {
    let mut calls: u64 = 100;
    let mut spent = Duration::ZERO;
    let mut fastest = f64::INFINITY;
    while spent < BUDGET {
        let took = batch(calls);
        spent += took;
        if took >= BATCH / 2 {
            fastest = fastest.min(per_call(took, calls));
        } else {
            let grow = BATCH.as_secs_f64() / took.as_secs_f64().max(1e-6);
            calls = (calls as f64 * grow.clamp(2.0, 100.0)) as u64;
        }
    }
    fastest
}

fn batch(calls: u64) -> Duration {
    let started = Instant::now();
    for _ in 0..calls {
        // SAFETY: getppid takes no arguments and cannot fail.
        unsafe { libc::syscall(libc::SYS_getppid) };
    }
    started.elapsed()
}

fn per_call(took: Duration, calls: u64) -> f64 {
    took.as_nanos() as f64 / calls as f64
}

/// A `getppid` in one run: before the tracer started, while it ran, and
/// after it stopped, in ns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tax {
    pub before: f64,
    pub with: f64,
    pub after: f64,
}

/// The first word of the guest's line, after its mark: the tracer as it
/// chose to run, and forced onto the syscall tracepoints.
pub const TAX: &str = "tax";
pub const TAX_TRACEPOINTS: &str = "tax-tracepoints";
const WORD: &str = "tax getppid ";

impl Tax {
    /// `tax getppid BEFORE WITH AFTER`, in ns.
    pub fn line(&self) -> String {
        format!(
            "{WORD}{:.1} {:.1} {:.1}",
            self.before, self.with, self.after
        )
    }

    /// The figures of a [`Tax::line`].
    pub fn parse(line: &str) -> Option<Tax> {
        let numbers: Vec<f64> = line
            .trim()
            .strip_prefix(WORD)?
            .split_whitespace()
            .map(|w| w.parse().ok().filter(|n: &f64| n.is_finite() && *n > 0.0))
            .collect::<Option<_>>()?;
        let [before, with, after] = numbers[..] else {
            return None;
        };
        Some(Tax {
            before,
            with,
            after,
        })
    }

    pub fn alone(&self) -> f64 {
        (self.before + self.after) / 2.0
    }

    /// What the tracer adds, in percent of the time alone.
    pub fn added_pct(&self) -> f64 {
        (self.with / self.alone() - 1.0) * 100.0
    }

    /// The gap between the two times alone, in percent, and at least 1%:
    /// each is the fastest of its batches, and two can agree more closely
    /// than a run's jitter by chance.
    pub fn noise_pct(&self) -> f64 {
        ((self.before - self.after).abs() / self.alone() * 100.0).max(1.0)
    }

    pub fn within_noise(&self) -> bool {
        self.added_pct().abs() <= self.noise_pct()
    }

    /// `+9.1%`, or `+0.4%, within noise`.
    pub fn verdict(&self) -> String {
        let added = format!("{:+.1}%", self.added_pct());
        if self.within_noise() {
            format!("{added}, within noise")
        } else {
            added
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_reads_back() {
        let tax = Tax {
            before: 1510.04,
            with: 1650.0,
            after: 1498.5,
        };
        assert_eq!(tax.line(), "tax getppid 1510.0 1650.0 1498.5");
        let read = Tax::parse(&tax.line()).unwrap();
        assert_eq!(
            (read.before, read.with, read.after),
            (1510.0, 1650.0, 1498.5)
        );
        assert_eq!(
            Tax::parse(" tax getppid 1 2 3 "),
            Some(Tax {
                before: 1.0,
                with: 2.0,
                after: 3.0
            })
        );
        for bad in [
            "tax getppid 1 2",
            "tax getppid 1 2 3 4",
            "tax getppid 1 x 3",
            "tax getppid 1 NaN 3",
            "tax getppid 0 2 3",
            "tax read 1 2 3",
            "",
        ] {
            assert_eq!(Tax::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_gap_alone_is_the_noise() {
        let tax = |before, with, after| Tax {
            before,
            with,
            after,
        };
        let slow = tax(200.0, 230.0, 200.0);
        assert_eq!(slow.verdict(), "+15.0%");
        // Alone 190 and 210: 10% apart, so +5% is not a finding.
        assert_eq!(tax(190.0, 210.0, 210.0).verdict(), "+5.0%, within noise");
        // Alone twice the same: still 1% of jitter.
        assert_eq!(tax(200.0, 201.0, 200.0).verdict(), "+0.5%, within noise");
        assert_eq!(tax(200.0, 196.0, 200.0).verdict(), "-2.0%");
    }
}
