//! Kernel timestamps are CLOCK_BOOTTIME ns; people read wall-clock time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn read(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid pointer to a timespec; these clocks always exist.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// Now, in the clock of `bpf_ktime_get_boot_ns` and `start_boottime`.
pub fn boot_ns() -> u64 {
    read(libc::CLOCK_BOOTTIME).as_nanos() as u64
}

/// Converts boot-time stamps to wall-clock time, fixed at start-up so that
/// the order of events is kept even if the wall clock is stepped later.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// Wall-clock time at boot.
    boot: SystemTime,
}

impl Clock {
    pub fn new() -> Self {
        let since_boot = read(libc::CLOCK_BOOTTIME);
        let wall = SystemTime::now();
        Self {
            boot: wall.checked_sub(since_boot).unwrap_or(UNIX_EPOCH),
        }
    }

    pub fn wall(&self, boot_ns: u64) -> SystemTime {
        self.boot + Duration::from_nanos(boot_ns)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_time_maps_to_now() {
        let clock = Clock::new();
        let wall = clock.wall(boot_ns());
        let drift = SystemTime::now()
            .duration_since(wall)
            .unwrap_or_else(|e| e.duration());
        assert!(drift < Duration::from_secs(1), "{drift:?}");
    }
}
