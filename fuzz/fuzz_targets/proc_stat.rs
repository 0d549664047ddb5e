//! `/proc/PID/stat`, whose name field the process chooses (any bytes but
//! NUL, parentheses and newlines included).

#![no_main]

use libfuzzer_sys::fuzz_target;
use zombie_trace::procfile::{parse_stat, state_name};

fuzz_target!(|bytes: &[u8]| {
    let Some(stat) = parse_stat(bytes) else {
        return;
    };
    // The name is everything between the first `(` and the last `)`: no
    // name can shift the fields after it.
    let open = bytes.iter().position(|&b| b == b'(').unwrap();
    let close = bytes.iter().rposition(|&b| b == b')').unwrap();
    assert_eq!(stat.comm, &bytes[open + 1..close]);
    assert!(stat.state.is_ascii_alphabetic(), "{:?}", stat.state);
    state_name(stat.state);
    stat.is_zombie();
});
