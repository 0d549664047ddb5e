//! `/proc/PID/cgroup`, and the container id found in its path (cgroup
//! directory names are chosen by whoever may create them).

#![no_main]

use libfuzzer_sys::fuzz_target;
use zombie_trace::proc::parse::{container_id, parse_cgroup};

fuzz_target!(|bytes: &[u8]| {
    let Some(path) = parse_cgroup(bytes) else {
        return;
    };
    // A path read, never one made up.
    assert!(String::from_utf8_lossy(bytes).contains(&path), "{path:?}");
    if let Some(id) = container_id(&path) {
        assert_eq!(id.len(), 12, "{id:?}");
        assert!(
            id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            "{id:?}"
        );
    }
});
