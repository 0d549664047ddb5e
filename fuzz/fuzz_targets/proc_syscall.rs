//! `/proc/PID/syscall` and `/proc/PID/task/TID/syscall`: the syscall a
//! thread is blocked in and its arguments.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zombie_trace::proc::parse::{parse_syscall, parse_wait_call};

fuzz_target!(|bytes: &[u8]| {
    let name = parse_syscall(bytes);
    // A line read as a wait call is one the process view names so too.
    if let Some(call) = parse_wait_call(bytes) {
        assert_eq!(name.as_deref(), Some(call.syscall.name()), "{call:?}");
    }
});
