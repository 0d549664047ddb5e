//! `/proc/PID/status`: the signal masks and the namespaced pid, in a file
//! whose `Name:` line the process chooses.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zombie_trace::{
    model::process::Sigchld,
    proc::parse::{parse_ns_pid, parse_sigchld},
};

/// The kernel's own lines come after `Name:`, so they are the last.
const REAL: &[u8] = b"\nNSpid:\t4242\t7\nSigBlk:\t0000000000000000\n\
SigIgn:\t0000000000000000\nSigCgt:\t0000000000010000\n";

fuzz_target!(|bytes: &[u8]| {
    parse_sigchld(bytes);
    parse_ns_pid(bytes);
    // Whatever comes before them cannot change what they say.
    let status = [bytes, REAL].concat();
    assert_eq!(parse_ns_pid(&status), Some(7));
    assert_eq!(
        parse_sigchld(&status),
        Some(Sigchld {
            ignored: false,
            caught: true,
            blocked: false,
        })
    );
});
