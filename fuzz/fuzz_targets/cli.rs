//! The command line: the duration flags' values above all, and any
//! arguments at all. A value that parses is within its documented range.

#![no_main]

use std::{ffi::OsString, os::unix::ffi::OsStringExt as _, time::Duration};

use clap::Parser as _;
use libfuzzer_sys::fuzz_target;
use zombie_trace::cli::Cli;

/// The flags whose value is parsed by zombie-trace itself, not clap.
const FLAGS: [&str; 4] = [
    "--threshold",
    "--duration",
    "--summary-interval",
    "--metrics",
];

fuzz_target!(|bytes: &[u8]| {
    let Some((&mode, rest)) = bytes.split_first() else {
        return;
    };
    let mut args = vec![OsString::from("zombie-trace")];
    match FLAGS.get(usize::from(mode)) {
        Some(flag) => args.extend([OsString::from(flag), OsString::from_vec(rest.to_vec())]),
        None => args.extend(
            rest.split(|&b| b == 0)
                .map(|a| OsString::from_vec(a.to_vec())),
        ),
    }
    let Ok(cli) = Cli::try_parse_from(&args) else {
        return;
    };
    let week = Duration::from_secs(7 * 24 * 3600);
    let ten_years = Duration::from_secs(10 * 366 * 24 * 3600);
    assert!(
        (Duration::from_millis(1)..=week).contains(&cli.threshold),
        "{args:?}: {cli:?}"
    );
    if let Some(d) = cli.duration {
        assert!(!d.is_zero() && d <= ten_years, "{args:?}: {cli:?}");
    }
    if let Some(d) = cli.summary_interval {
        assert!(
            (Duration::from_secs(1)..=ten_years).contains(&d),
            "{args:?}: {cli:?}"
        );
    }
    if let Some(addr) = cli.metrics {
        assert_ne!(addr.port(), 0, "{args:?}");
    }
});
