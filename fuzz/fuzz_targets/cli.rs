//! The command line: the duration flags' values above all, and any
//! arguments at all. A value that parses is within its documented range,
//! and filters that pass their checks fit the kernel's.

#![no_main]

use std::{ffi::OsString, os::unix::ffi::OsStringExt as _, time::Duration};

use clap::Parser as _;
use libfuzzer_sys::fuzz_target;
use zombie_trace::{cli::Cli, filter::Filters};
use zombie_trace_common::{COMM_LEN, FILTER_MAX};

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
    // The filters the kernel gets: within what its programs hold, and
    // matching what they were made from.
    let Ok(filters) = Filters::new(cli.pid, cli.ppid, cli.comm, None) else {
        return;
    };
    assert!(filters.pids.len() <= FILTER_MAX && filters.ppids.len() <= FILTER_MAX);
    let comm = filters.comm.clone().unwrap_or_default();
    assert!(comm.len() < COMM_LEN, "{comm:?}");
    filters.to_kernel();
    let pid = filters.pids.first().copied().unwrap_or(1);
    let ppid = filters.ppids.first().copied().unwrap_or(1);
    assert!(filters.matches(pid, ppid, &comm, None), "{filters:?}");
});
