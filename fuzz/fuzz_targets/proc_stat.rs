//! `/proc/PID/stat`, whose name field the process chooses (any bytes but
//! NUL, parentheses and newlines included).

#![no_main]

use libfuzzer_sys::{
    arbitrary::{Result, Unstructured},
    fuzz_target,
};
use zombie_trace::proc::parse::{Stat, parse_stat, state_name};

fuzz_target!(|bytes: &[u8]| {
    if let Some(stat) = parse_stat(bytes) {
        assert!(stat.state.is_ascii_alphabetic(), "{:?}", stat.state);
        state_name(stat.state);
        stat.is_zombie();
    }
    let _ = round_trip(&mut Unstructured::new(bytes));
});

/// A line as the kernel writes it, with any name: every field comes back
/// exactly, whatever the name holds.
fn round_trip(u: &mut Unstructured) -> Result<()> {
    let len = u.int_in_range(0..=64)?;
    let comm: Vec<u8> = u.bytes(len)?.iter().copied().filter(|&b| b != 0).collect();
    let state = *u.choose(b"RSDZTtXIPKW")?;
    let pid: u32 = u.arbitrary()?;
    let ppid: u32 = u.arbitrary()?;
    let threads: u32 = u.arbitrary()?;
    let start_ticks: u64 = u.arbitrary()?;
    let line = [
        format!("{pid} (").as_bytes(),
        &comm,
        format!(
            ") {} {ppid} 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 {threads} 0 {start_ticks} \
             10000 100 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
            char::from(state)
        )
        .as_bytes(),
    ]
    .concat();
    assert_eq!(
        parse_stat(&line),
        Some(Stat {
            comm,
            state: char::from(state),
            ppid,
            threads,
            start_ticks,
        }),
        "{:?}",
        String::from_utf8_lossy(&line)
    );
    Ok(())
}
