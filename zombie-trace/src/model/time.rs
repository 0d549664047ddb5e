//! Process start times in the kernel's two clocks: `start_boottime` in ns
//! (event records, `CLOCK_BOOTTIME`) and `/proc/PID/stat`'s `starttime` in
//! clock ticks. A process found in `/proc` is matched with its records
//! through them.

/// Ns at `hz` ticks a second for `ticks`.
pub fn ticks_to_ns(ticks: u64, hz: u64) -> u64 {
    let ns = u128::from(ticks) * 1_000_000_000 / u128::from(hz.max(1));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// The `start_ticks` of a process whose `start_boottime` is `ns` (at `hz`
/// ticks a second): the kernel's `nsec_to_clock_t`, so an event's start
/// time can be compared with `/proc/PID/stat`.
pub fn ns_to_ticks(ns: u64, hz: u64) -> u64 {
    const NS_PER_SEC: u64 = 1_000_000_000;
    let hz = hz.clamp(1, NS_PER_SEC);
    if NS_PER_SEC.is_multiple_of(hz) {
        ns / (NS_PER_SEC / hz)
    } else {
        (u128::from(ns) * u128::from(hz) / u128::from(NS_PER_SEC)) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks() {
        assert_eq!(ns_to_ticks(2_058_569_999_999, 100), 205_856);
        assert_eq!(ns_to_ticks(u64::MAX, 100), u64::MAX / 10_000_000);
        assert_eq!(ns_to_ticks(3_000_000_000, 300), 900);
        assert_eq!(ns_to_ticks(1_000_000_000, 0), 1);
        assert_eq!(ns_to_ticks(2_000_000_000, 3), 6);
        assert_eq!(ticks_to_ns(205_856, 100), 2_058_560_000_000);
        assert_eq!(ns_to_ticks(ticks_to_ns(900, 300), 300), 900);
        assert_eq!(ticks_to_ns(u64::MAX, 1), u64::MAX);
        assert_eq!(ticks_to_ns(5, 0), 5_000_000_000);
    }
}
