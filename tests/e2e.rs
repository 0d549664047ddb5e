//! End to end: the real binary on the real kernel, against real programs that
//! make real zombies. Needs root; run one at a time (`--test-threads=1`), as
//! `./x.sh test` does. Every scenario runs under `scenarios/subreaper.py`, so
//! whatever it orphans is reaped and no zombie outlives a test.

mod support;

use std::{
    io::{BufRead, BufReader, ErrorKind, Read, Write as _},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Arc, mpsc},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;
use support::*;
use zombie_trace::kernel::{
    btf::{Btf, BtfBytes},
    load::{COMPAT_ENV, WAIT_HOOKS_ENV},
    offsets::{VMLINUX_BTF, regs_args},
};

fn our_programs() -> usize {
    // Kernel program names are cut to 15 characters (`sched_process_e` is
    // both exit and exec); bpftool shows the full name where BTF has it.
    const NAMES: [&str; 8] = [
        "sched_process_e",
        "sched_process_f",
        "kernel_wait4",
        "kernel_waitid",
        "sys_enter_wait4",
        "sys_exit_wait4",
        "sys_enter_waiti",
        "sys_exit_waitid",
    ];
    program_names()
        .iter()
        .filter(|name| NAMES.iter().any(|n| name.starts_with(n)))
        .count()
}

/// The names of the programs loaded in the kernel.
fn program_names() -> Vec<String> {
    let out = Command::new("bpftool")
        .args(["prog", "show"])
        .output()
        .expect("bpftool prog show (install bpftool)");
    assert!(out.status.success(), "bpftool prog show failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            Some(
                l.split(" name ")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .to_owned(),
            )
        })
        .collect()
}

#[test]
fn help_teaches_and_bad_values_are_usage_errors() {
    let help = Command::new(BIN).arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for needle in ["--threshold", "--format", "--events", "Examples:", "jq"] {
        assert!(text.contains(needle), "--help lacks {needle}:\n{text}");
    }
    for bad in [
        &["--threshold", "0"][..],
        &["--threshold", "-5s"],
        &["--threshold", "soon"],
        &["--format", "xml"],
        &["--bogus"],
    ] {
        let out = Command::new(BIN).args(bad).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{bad:?} should be a usage error"
        );
        assert!(!out.stderr.is_empty(), "{bad:?} printed no explanation");
    }
}

#[test]
fn version_says_which_build_and_docs_come_from_the_command_line() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let version = format!("zombie-trace {}\n", env!("CARGO_PKG_VERSION"));
    assert!(text.starts_with(&version), "{text}");
    for needle in [
        "commit: ",
        "built:  ",
        "x86_64-unknown-linux",
        "eBPF programs by ",
        "linked: ",
    ] {
        assert!(text.contains(needle), "--version lacks {needle:?}:\n{text}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && script.contains("threshold"),
            "{shell}: {script}"
        );
    }
    let dir = podman::work_dir("man-pages");
    let out = Command::new(BIN)
        .arg("man-pages")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read_to_string(dir.join("zombie-trace.8")).unwrap();
    assert!(
        page.starts_with(".ie") || page.contains(".TH zombie-trace 8"),
        "{page}"
    );
    assert!(page.contains("threshold") && dir.join("zombie-trace-ps.8").exists());
}

/// Under systemd (`Type=notify`, the Debian package's unit): READY=1 once
/// the ready line is out, STOPPING=1 on SIGTERM.
#[test]
fn tells_systemd_when_it_is_ready_and_when_it_stops() {
    let dir = podman::work_dir("notify");
    let path = dir.join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(READY_TIMEOUT)).unwrap();
    let said = |what: &str| {
        let mut buf = [0u8; 512];
        let n = socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no {what} on $NOTIFY_SOCKET: {e}"));
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let tracer = Tracer::start_with(&[], &[("NOTIFY_SOCKET", path.to_str().unwrap())]);
    let ready = said("READY=1");
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    let (_, status) = tracer.stop();
    assert!(status.success(), "{status}");
    let stopping = said("STOPPING=1");
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
}

#[test]
fn seed_multiprocessing_child_without_join() {
    let mut tracer = Tracer::start(&["--threshold", "1s"]);
    assert_eq!(tracer.ready["wait_tracing"], true, "{}", tracer.ready);
    let mut scenario = Scenario::python("seed.py", &["3"]);
    let (parent, child) = scenario.parent_and_child();

    let zombie = tracer.wait_for("zombie report", |v| is(v, "zombie", child));
    assert_eq!(zombie["ppid"], parent, "{zombie}");
    assert_eq!(zombie["comm"], "python3", "{zombie}");
    assert_eq!(zombie["parent_comm"], "python3", "{zombie}");
    assert_eq!(zombie["exit_code"], 0, "{zombie}");
    assert_eq!(zombie["signal"], Value::Null, "{zombie}");
    assert_eq!(zombie["preexisting"], false, "{zombie}");
    let age = ms(&zombie, "age_ms");
    assert!((1000..2500).contains(&age), "age {age} ms: {zombie}");
    assert_eq!(zombie["parent_wait_calls"], 0, "{zombie}");
    assert_eq!(zombie["parent_sigchld"], "default", "{zombie}");
    assert_eq!(zombie["parent_state"], "S", "{zombie}");
    let cmdline = zombie["parent_cmdline"].as_array().expect("parent_cmdline");
    assert!(
        cmdline
            .iter()
            .any(|a| a.as_str().is_some_and(|a| a.ends_with("seed.py"))),
        "{zombie}"
    );
    assert!(zombie["diagnosis"].as_str().is_some_and(|d| !d.is_empty()));

    // At exit, multiprocessing's atexit hook joins (reaps) the child.
    let reap = tracer.wait_for("reap", |v| is(v, "reap", child));
    assert_eq!(reap["reaper_pid"], parent, "{reap}");
    assert_eq!(reap["reaper"], "parent", "{reap}");
    assert_eq!(reap["reported"], true, "{reap}");
    assert!(ms(&reap, "zombie_ms") >= 2500, "{reap}");
    scenario.finish();
    let (_, status) = tracer.stop();
    assert!(status.success());
}

#[test]
fn late_reap_reports_then_reaps_with_exit_code() {
    let mut tracer = Tracer::start(&["--threshold", "1s"]);
    let mut scenario = Scenario::python("children.py", &["late", "2"]);
    let (parent, child) = scenario.parent_and_child();
    let zombie = tracer.wait_for("zombie report", |v| is(v, "zombie", child));
    assert_eq!(
        zombie["exit_code"], 77,
        "status must be decoded, not raw: {zombie}"
    );
    assert_eq!(zombie["ppid"], parent);
    let reap = tracer.wait_for("reap", |v| is(v, "reap", child));
    assert_eq!(reap["reaper"], "parent", "{reap}");
    assert_eq!(reap["reaper_pid"], parent, "{reap}");
    let zombie_ms = ms(&reap, "zombie_ms");
    assert!(
        (1800..4000).contains(&zombie_ms),
        "zombie_ms {zombie_ms}: {reap}"
    );
    scenario.finish();
}

/// A parent inside its own pid namespace sees other pids than ours: its
/// wait calls must not pair with the wrong children.
#[test]
fn parent_in_its_own_pid_namespace() {
    let mut tracer = Tracer::start(&["--threshold", "1s"]);
    let script = scenarios().join("children.py");
    let mut scenario = Scenario::start(&[
        "unshare",
        "--pid",
        "--fork",
        "python3",
        script.to_str().unwrap(),
        "late",
        "2",
    ]);
    let (parent, child) = scenario.parent_and_child();
    assert_eq!((parent, child), (1, 2), "pids inside the namespace");
    let zombie = tracer.wait_for("zombie report", |v| {
        v["type"] == "zombie" && v["parent_cmdline"].to_string().contains("children.py")
    });
    assert_eq!(zombie["exit_code"], 77, "{zombie}");
    let pid = zombie["pid"].as_u64().unwrap();
    assert_ne!(pid, child, "reported with its global pid: {zombie}");
    assert_eq!(zombie["ns_pid"], child, "and its own: {zombie}");
    assert_eq!(zombie["parent_ns_pid"], parent, "{zombie}");
    let reap = tracer.wait_for("reap", |v| is(v, "reap", pid));
    assert_eq!(reap["reaper"], "parent", "{reap}");
    assert_eq!(reap["reaper_pid"], zombie["ppid"], "{reap}");
    scenario.finish();
}

#[test]
fn killed_child_reports_signal_not_exit_code() {
    let mut tracer = Tracer::start(&["--threshold", "500ms"]);
    let mut scenario = Scenario::python("children.py", &["killed", "1.5"]);
    let (_, child) = scenario.parent_and_child();
    let zombie = tracer.wait_for("zombie report", |v| is(v, "zombie", child));
    assert_eq!(zombie["exit_code"], Value::Null, "{zombie}");
    assert_eq!(zombie["signal"], 9, "{zombie}");
    assert_eq!(zombie["signal_name"], "SIGKILL", "{zombie}");
    scenario.finish();
}

#[test]
fn auto_reaped_children_are_never_zombies() {
    for mode in ["ignore", "nocldwait"] {
        let mut tracer = Tracer::start(&["--threshold", "300ms", "--events"]);
        let mut scenario = Scenario::python("children.py", &[mode, "1.5"]);
        let (parent, child) = scenario.parent_and_child();
        let exit = tracer.wait_for("exit event", |v| is(v, "exit", child));
        assert_eq!(exit["ppid"], parent, "{exit}");
        assert_eq!(exit["auto_reap"], true, "{mode}: {exit}");
        // The release comes an RCU grace period after the exit: lazy RCU
        // batches them for 10 s and more on a loaded machine.
        let reap = tracer.wait_for_in("reap event", Duration::from_secs(60), |v| {
            is(v, "reap", child)
        });
        assert_eq!(reap["reaper"], "kernel", "{mode}: {reap}");
        assert_eq!(reap["reported"], false, "{mode}: {reap}");
        scenario.finish();
        let (rest, _) = tracer.stop();
        assert!(
            !rest.iter().any(|v| is(v, "zombie", child)),
            "{mode}: an auto-reaped child was reported"
        );
    }
}

/// Runs `scenarios/storm.c`: `n` children, each reaped at once. Returns the
/// storm's pid.
fn run_storm(n: u32) -> u64 {
    let storm = compiled("storm");
    let mut scenario = Scenario::start(&[storm.to_str().unwrap(), &n.to_string()]);
    let parent = scenario
        .line()
        .strip_prefix("parent ")
        .and_then(|p| p.parse().ok())
        .expect("storm prints its pid");
    scenario.finish();
    parent
}

fn assert_no_reports_under(all: &[Value], parent: u64) {
    let false_reports: Vec<&Value> = all
        .iter()
        .filter(|v| v["type"] == "zombie" && (v["ppid"] == parent || v["ppid_at_exit"] == parent))
        .collect();
    assert!(false_reports.is_empty(), "false zombies: {false_reports:?}");
}

#[test]
fn storm_of_reaped_children_reports_nothing() {
    let tracer = Tracer::start(&["--threshold", "200ms"]);
    let parent = run_storm(5000);
    // Longer than the threshold, so any false report would be out.
    thread::sleep(Duration::from_millis(1500));
    let (all, status) = tracer.stop();
    assert!(status.success());
    assert_no_reports_under(&all, parent);
    let summary = all.last().expect("a summary line");
    assert_eq!(summary["type"], "summary", "{summary}");
    assert!(ms(summary, "exits") >= 5000, "{summary}");
    assert!(ms(summary, "reaps") >= 5000, "{summary}");
    assert_eq!(summary["lost"], 0, "{summary}");
}

/// The default mode pairs exits and reaps in the kernel: a storm of
/// reaped children never reaches userspace, so a tracer stopped through
/// all of it loses nothing, and still counts every child and times each
/// reap by the wait call that made it (microseconds, not the release an
/// RCU grace period later).
#[test]
fn storm_is_paired_in_the_kernel_even_with_the_reader_stopped() {
    let tracer = Tracer::start(&["--threshold", "300ms"]);
    send_signal(&tracer.child, libc::SIGSTOP);
    let parent = run_storm(40_000);
    send_signal(&tracer.child, libc::SIGCONT);
    thread::sleep(Duration::from_millis(1500));
    let (all, status) = tracer.stop();
    assert!(status.success());
    assert_no_reports_under(&all, parent);
    assert!(all.iter().all(|v| v["type"] != "lost"), "{all:?}");
    let summary = all.last().expect("a summary line");
    assert_eq!(summary["type"], "summary", "{summary}");
    assert_eq!(summary["lost"], 0, "{summary}");
    assert!(ms(summary, "exits") >= 40_000, "{summary}");
    assert!(ms(summary, "reaps") >= 40_000, "{summary}");
    let storm = summary["reap_latency_by_comm"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["comm"] == "storm"))
        .unwrap_or_else(|| panic!("no reap latency for storm: {summary}"));
    assert!(ms(storm, "count") >= 40_000, "{storm}");
    let p50 = storm["p50_ms"].as_f64().expect("a p50");
    assert!(
        p50 < 5.0,
        "reaps timed by the release, not the wait: {storm}"
    );
}

#[test]
fn ready_comes_first_while_processes_come_and_go() {
    let storm = compiled("storm");
    let mut scenario = Scenario::start(&[storm.to_str().unwrap(), "50000"]);
    scenario.line();
    for _ in 0..3 {
        // Tracer::start fails unless the first line is `ready`.
        let (all, status) = Tracer::start(&["--events"]).stop();
        assert!(status.success());
        assert!(all.iter().skip(1).all(|v| v["type"] != "ready"));
    }
}

/// A stalled reader: the ring buffer overflows (with `--events`: in the
/// default mode a storm of reaped children never reaches it). Every dropped
/// record is counted and said, and a lost reap never turns into a false
/// report.
#[test]
fn lost_records_are_counted_and_never_become_false_reports() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut tracer = Tracer::start(&[
        "--threshold",
        "300ms",
        "--events",
        "--metrics",
        &port.to_string(),
    ]);
    // The reader stopped while a storm runs on every core.
    send_signal(&tracer.child, libc::SIGSTOP);
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let storms: Vec<_> = (0..cores)
        .map(|_| thread::spawn(|| run_storm(40_000)))
        .collect();
    let parents: Vec<u64> = storms
        .into_iter()
        .map(|s| s.join().expect("a storm"))
        .collect();
    send_signal(&tracer.child, libc::SIGCONT);
    let lost = tracer.wait_for("lost line", |v| v["type"] == "lost");
    assert!(ms(&lost, "count") > 0, "{lost}");

    // Pairing goes on after the gap: a real zombie is reported and reaped.
    let mut scenario = Scenario::python("children.py", &["late", "2"]);
    let (parent, child) = scenario.parent_and_child();
    let zombie = tracer.wait_for("zombie report after the gap", |v| is(v, "zombie", child));
    assert_eq!(zombie["ppid"], parent, "{zombie}");
    let reap = tracer.wait_for("its reap", |v| is(v, "reap", child));
    assert_eq!(reap["reaper_pid"], parent, "{reap}");
    scenario.finish();
    // The metrics refresh every second.
    thread::sleep(Duration::from_millis(1500));
    let metrics = http_get(&format!("127.0.0.1:{port}"), "/metrics");

    let (all, status) = tracer.stop();
    assert!(status.success());
    for parent in parents {
        assert_no_reports_under(&all, parent);
    }
    let said: u64 = all
        .iter()
        .filter(|v| v["type"] == "lost")
        .map(|v| ms(v, "count"))
        .sum();
    let summary = all.last().expect("a summary line");
    assert_eq!(summary["type"], "summary", "{summary}");
    assert_eq!(ms(summary, "lost"), said, "{summary}");
    assert!(said > 0);
    assert!(
        metrics.contains(&format!("zombie_trace_lost_events_total {said}\n")),
        "metrics say {said} lost: {metrics}"
    );
}

/// Three zombies whose parent has become `sleep` (it execs without reaping
/// them): `(scenario, parent, children)`, once `/proc` shows all that.
fn three_zombies_under_sleep() -> (Scenario, u64, Vec<u64>) {
    let mut scenario = Scenario::python("children.py", &["never", "0.3"]);
    let mut children = Vec::new();
    let mut parent = 0;
    for _ in 0..3 {
        let (p, c) = scenario.parent_and_child();
        parent = p;
        children.push(c);
    }
    let is_zombie = |pid: &u64| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
    };
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while std::fs::read_to_string(format!("/proc/{parent}/comm"))
        .map_or(true, |c| c.trim() != "sleep")
        || !children.iter().all(is_zombie)
    {
        assert!(Instant::now() < deadline, "no three zombies under sleep");
        thread::sleep(Duration::from_millis(50));
    }
    (scenario, parent, children)
}

#[test]
fn preexisting_zombies_are_reported_at_start() {
    require_root();
    let (scenario, _, children) = three_zombies_under_sleep();
    let mut tracer = Tracer::start(&["--threshold", "1s"]);
    assert!(ms(&tracer.ready, "preexisting") >= 3, "{}", tracer.ready);
    for zombie in tracer.wait_for_each("zombie", &children) {
        assert_eq!(zombie["preexisting"], true, "{zombie}");
        assert_eq!(zombie["age_ms"], Value::Null, "{zombie}");
        assert_eq!(zombie["parent_comm"], "sleep", "{zombie}");
    }
    // The parent (now `sleep`) dies; the subreaper adopts and reaps them.
    let _ = Command::new("pkill")
        .args(["-KILL", "-P", &scenario.subreaper.to_string(), "sleep"])
        .status();
    for reap in tracer.wait_for_each("reap", &children) {
        assert_eq!(reap["preexisting"], true, "{reap}");
        assert_eq!(reap["reaper_pid"], scenario.subreaper, "{reap}");
    }
    let (rest, _) = tracer.stop();
    let summary = rest.last().expect("summary");
    assert_eq!(summary["preexisting"], 3, "{summary}");
}

#[test]
fn stopped_parent_is_diagnosed() {
    let mut tracer = Tracer::start(&["--threshold", "500ms"]);
    let mut scenario = Scenario::python("children.py", &["stopped", "30"]);
    let (parent, child) = scenario.parent_and_child();
    let zombie = tracer.wait_for("zombie report", |v| is(v, "zombie", child));
    assert_eq!(zombie["ppid"], parent, "{zombie}");
    assert_eq!(zombie["parent_state"], "T", "{zombie}");
    let diagnosis = zombie["diagnosis"].as_str().unwrap_or_default();
    assert!(diagnosis.contains("stopped"), "{zombie}");
}

/// The classic: one `waitpid` per SIGCHLD, while signals merge.
#[test]
fn handler_reaping_once_per_signal_is_diagnosed() {
    let mut tracer = Tracer::start(&["--threshold", "1s"]);
    let mut scenario = Scenario::python("children.py", &["sigchld-once", "30"]);
    let mut children = Vec::new();
    for _ in 0..4 {
        children.push(scenario.parent_and_child().1);
    }
    let mut zombies = Vec::new();
    while zombies.len() < 3 {
        let zombie = tracer.wait_for("zombie reports", |v| {
            v["type"] == "zombie" && children.iter().any(|&c| v["pid"] == c)
        });
        zombies.push(zombie);
    }
    for zombie in &zombies {
        assert_eq!(zombie["parent_sigchld"], "caught", "{zombie}");
        assert_eq!(zombie["parent_wait_reaped"], 1, "{zombie}");
        let diagnosis = zombie["diagnosis"].as_str().unwrap_or_default();
        assert!(diagnosis.contains("reaps some children"), "{zombie}");
    }
}

#[test]
fn popen_child_never_polled_is_reported() {
    let mut tracer = Tracer::start(&["--threshold", "500ms"]);
    let mut scenario = Scenario::python("children.py", &["popen", "2"]);
    let (parent, child) = scenario.parent_and_child();
    let zombie = tracer.wait_for("zombie report", |v| is(v, "zombie", child));
    assert_eq!(zombie["comm"], "true", "{zombie}");
    assert_eq!(zombie["exit_code"], 0, "{zombie}");
    assert_eq!(zombie["parent_comm"], "python3", "{zombie}");
    let reap = tracer.wait_for("reap line", |v| is(v, "reap", child));
    assert_eq!(reap["reaper_pid"], parent, "{reap}");
    scenario.finish();
}

/// `sh -c 'job & exec prog'`: the shell's background child is inherited by
/// a program that never heard of it.
#[test]
fn child_inherited_through_exec_is_reported_under_the_new_program() {
    let mut tracer = Tracer::start(&["--threshold", "500ms"]);
    let mut scenario = Scenario::start(&[
        "sh",
        "-c",
        "sleep 0.2 & echo \"parent $$ child $!\"; exec sleep 30",
    ]);
    let (parent, child) = scenario.parent_and_child();
    let zombie = tracer.wait_for("zombie report", |v| is(v, "zombie", child));
    assert_eq!(zombie["comm"], "sleep", "{zombie}");
    assert_eq!(zombie["ppid"], parent, "{zombie}");
    assert_eq!(zombie["parent_comm"], "sleep", "{zombie}");
    assert_eq!(
        zombie["parent_cmdline"],
        serde_json::json!(["sleep", "30"]),
        "{zombie}"
    );
    // Whatever the shell did before exec is not the new program's doing.
    assert_eq!(zombie["parent_wait_calls"], 0, "{zombie}");
    let diagnosis = zombie["diagnosis"].as_str().unwrap_or_default();
    assert!(diagnosis.contains("not called wait"), "{zombie}");
}

/// `ready` says how wait calls are traced and where start-up went; the
/// way can be forced, and a kernel that refuses trampolines says so when
/// they are required.
#[test]
fn ready_says_how_wait_calls_are_hooked_and_the_way_can_be_forced() {
    let before = programs_at_rest();
    let tracer = Tracer::start(&[]);
    let hooks = tracer.ready["wait_hooks"].clone();
    assert!(
        hooks == "trampolines" || hooks == "tracepoints",
        "{}",
        tracer.ready
    );
    for part in ["btf_ms", "load_ms", "attach_ms", "scan_ms"] {
        assert!(
            tracer.ready["startup"][part]
                .as_f64()
                .is_some_and(|ms| ms > 0.0),
            "{part}: {}",
            tracer.ready
        );
    }
    tracer.stop();

    let tracer = Tracer::start_with(&[], &[(WAIT_HOOKS_ENV, "tracepoints")]);
    assert_eq!(
        tracer.ready["wait_hooks"], "tracepoints",
        "{}",
        tracer.ready
    );
    tracer.stop();

    let mut child = spawn_tracer(&["--format", "json"], &[(WAIT_HOOKS_ENV, "trampolines")]);
    let ready = BufReader::new(child.stdout.take().unwrap()).lines().next();
    match ready {
        Some(Ok(line)) => {
            assert!(line.contains(r#""wait_hooks":"trampolines""#), "{line}");
            send_signal(&child, libc::SIGINT);
            child.wait().unwrap();
        }
        _ => {
            let out = child.wait_with_output().unwrap();
            assert_eq!(out.status.code(), Some(1), "{out:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("refuses fexit trampolines") && stderr.contains("unset it"),
                "{stderr}"
            );
            assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        }
    }
    assert_programs_back_to(before, "after the forced starts");
}

#[test]
fn without_privileges_one_clear_sentence() {
    require_root();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(reachable_copy_of_bin())
        .output()
        .expect("setpriv (util-linux)");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs root"), "{stderr}");
    assert!(
        stderr.contains("lacks CAP_BPF and CAP_PERFMON"),
        "names what is missing: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn without_btf_one_clear_sentence() {
    require_root();
    // A private mount namespace where /sys/kernel/btf is empty.
    let out = Command::new("unshare")
        .args([
            "--mount",
            "sh",
            "-c",
            "mount -t tmpfs none /sys/kernel/btf && exec \"$0\"",
        ])
        .arg(BIN)
        .output()
        .expect("unshare (util-linux)");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no BTF") && stderr.contains("CONFIG_DEBUG_INFO_BTF"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

/// `zombie-trace --events | less`, paused: SIGTERM must still stop it.
#[test]
fn unread_stdout_does_not_stall_a_stop() {
    let mut child = spawn_tracer(&["--events", "--format", "json"], &[]);
    let _unread = child.stdout.take();
    let stderr = collect_stderr(child.stderr.take().unwrap());
    thread::sleep(Duration::from_secs(2));
    // Far more than a pipe holds.
    run_storm(5000);
    send_signal(&child, libc::SIGTERM);
    let status = wait_timeout(&mut child, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no stop while nobody reads stdout"));
    assert!(status.success(), "{status}: {}", stderr.lock().unwrap());
}

#[test]
fn duration_stops_with_the_summary() {
    let started = Instant::now();
    let tracer = Tracer::start(&["--duration", "1500ms"]);
    let status = {
        let mut tracer = tracer;
        let status = wait_timeout(&mut tracer.child, Duration::from_secs(20))
            .unwrap_or_else(|| tracer.fail("still running after --duration"));
        while tracer.next(Duration::from_secs(2)).is_some() {}
        let last = tracer.seen.last().cloned().unwrap_or_default();
        assert_eq!(last["type"], "summary", "{last}");
        status
    };
    assert!(status.success(), "{status}");
    assert!(started.elapsed() >= Duration::from_millis(1500));
}

/// `zombie-trace ps`: the zombies of now, from /proc, as root and not.
#[test]
fn ps_lists_the_zombies_of_now_by_parent() {
    require_root();
    let (_scenario, parent, children) = three_zombies_under_sleep();
    for unprivileged in [false, true] {
        let mut cmd = if unprivileged {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(reachable_copy_of_bin());
            c
        } else {
            Command::new(BIN)
        };
        let out = cmd.args(["ps", "--format", "json"]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        for &child in &children {
            let z = lines
                .iter()
                .find(|v| is(v, "zombie", child))
                .unwrap_or_else(|| panic!("{child} not listed: {lines:?}"));
            assert_eq!(z["ppid"], parent, "{z}");
            assert_eq!(z["parent_comm"], "sleep", "{z}");
            assert_eq!(
                z["parent_wait_calls"],
                Value::Null,
                "unknown without tracing: {z}"
            );
        }
        let ps = lines.last().unwrap();
        assert_eq!(ps["type"], "ps", "{ps}");
        assert_eq!(ps["full_detail"], !unprivileged, "{ps}");
        let group = ps["by_parent"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["ppid"] == parent)
            .unwrap_or_else(|| panic!("no group for {parent}: {ps}"));
        assert_eq!(group["zombies"].as_array().unwrap().len(), 3, "{ps}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.contains("not root"), unprivileged, "{stderr}");
    }
}

/// `--output FILE` with logrotate: move the file away, SIGHUP, and the
/// lines go on in a new file by the old name.
#[test]
fn output_file_is_reopened_on_sighup() {
    let dir = podman::work_dir("output-test");
    let file = dir.join("zombies.jsonl");
    let rotated = dir.join("zombies.jsonl.1");
    let mut tracer = Tracer::start(&["--threshold", "300ms", "--output", file.to_str().unwrap()]);
    let read = |path: &Path| -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let mut first = Scenario::python("children.py", &["late", "1"]);
    let (_, before) = first.parent_and_child();
    tracer.wait_for("first zombie", |v| is(v, "zombie", before));
    first.finish();
    std::fs::rename(&file, &rotated).unwrap();
    send_signal(&tracer.child, libc::SIGHUP);
    thread::sleep(Duration::from_millis(300));
    let mut second = Scenario::python("children.py", &["late", "1"]);
    let (_, after) = second.parent_and_child();
    tracer.wait_for("second zombie", |v| is(v, "zombie", after));
    second.finish();
    let (_, status) = tracer.stop();
    assert!(status.success(), "SIGHUP must not end it: {status}");
    let old = read(&rotated);
    let new = read(&file);
    assert_eq!(
        old.first().map(|v| v["type"].clone()),
        Some("ready".into()),
        "{old:?}"
    );
    assert!(old.iter().any(|v| is(v, "zombie", before)), "{old:?}");
    assert!(!old.iter().any(|v| is(v, "zombie", after)), "{old:?}");
    assert!(new.iter().any(|v| is(v, "zombie", after)), "{new:?}");
    assert_eq!(
        new.last().map(|v| v["type"].clone()),
        Some("summary".into()),
        "{new:?}"
    );
    // Not a regular file: a clean stop all the same.
    let tracer = Tracer::start(&["--output", "/dev/null", "--duration", "1s"]);
    let (_, status) = tracer.stop();
    assert!(status.success(), "--output /dev/null: {status}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o007, 0, "not for everyone to read: {mode:o}");
}

/// A slow leaker, seen through `--summary-interval`: the right parent,
/// counts and rate.
#[test]
fn summary_interval_finds_the_leaker_and_its_rate() {
    let mut tracer = Tracer::start(&["--threshold", "200ms", "--summary-interval", "1s"]);
    let mut scenario = Scenario::python("children.py", &["leak", "0.5"]);
    let mut children = Vec::new();
    let mut parent = 0;
    for _ in 0..8 {
        let (p, c) = scenario.parent_and_child();
        parent = p;
        children.push(c);
    }
    tracer.wait_for_each("zombie", &children);
    let row = |v: &Value| -> Option<Value> {
        v["parents"]
            .as_array()?
            .iter()
            .find(|r| r["ppid"] == parent)
            .cloned()
    };
    let summary = tracer.wait_for("interval summary with all eight", |v| {
        v["type"] == "summary" && row(v).is_some_and(|r| r["zombies_ever"] == 8)
    });
    assert_eq!(summary["final"], false, "{summary}");
    let leaker = row(&summary).unwrap();
    assert_eq!(leaker["zombies_now"], 8, "{leaker}");
    assert_eq!(leaker["parent_comm"], "python3", "{leaker}");
    assert!(
        leaker["parent_cmdline"].to_string().contains("leak"),
        "{leaker}"
    );
    // Eight in about four seconds of its life: about 120 a minute.
    let rate = leaker["leak_per_min"].as_f64().unwrap();
    assert!((60.0..=140.0).contains(&rate), "rate {rate}: {leaker}");
    assert!(ms(&leaker, "oldest_ms") >= 3000, "{leaker}");
    let (rest, _) = tracer.stop();
    let last = rest.last().unwrap();
    assert_eq!(
        (last["type"].clone(), last["final"].clone()),
        ("summary".into(), true.into())
    );
}

/// `--comm` and `--ppid`: a zombie inside the filter is reported, one
/// outside is not, and filtered-out exits never reach userspace.
#[test]
fn filters_report_inside_and_not_outside() {
    let mut tracer = Tracer::start(&["--comm", "sleep", "--threshold", "300ms"]);
    let mut inside = Scenario::start(&[
        "sh",
        "-c",
        "sleep 0.2 & echo \"parent $$ child $!\"; exec sleep 3",
    ]);
    let mut outside = Scenario::python("children.py", &["late", "1.5"]);
    let (_, kept) = inside.parent_and_child();
    let (_, dropped) = outside.parent_and_child();
    tracer.wait_for("zombie named sleep", |v| is(v, "zombie", kept));
    outside.finish();
    run_storm(2000);
    let (all, _) = tracer.stop();
    assert!(
        !all.iter().any(|v| is(v, "zombie", dropped)),
        "outside --comm: {all:?}"
    );
    let summary = all.last().unwrap();
    assert!(
        ms(summary, "exits") < 100,
        "the storm got past the kernel filter: {summary}"
    );

    // --ppid: the children of one leaking parent, not another's.
    let mut leaker = Scenario::python("children.py", &["leak", "0.4"]);
    let (parent, first) = leaker.parent_and_child();
    let mut tracer = Tracer::start(&["--ppid", &parent.to_string(), "--threshold", "300ms"]);
    let mut other = Scenario::python("children.py", &["late", "1.5"]);
    let (_, dropped) = other.parent_and_child();
    let mut kept = vec![first];
    for _ in 0..3 {
        kept.push(leaker.parent_and_child().1);
    }
    for zombie in tracer.wait_for_each("zombie", &kept) {
        assert_eq!(zombie["ppid"], parent, "{zombie}");
    }
    other.finish();
    let (all, _) = tracer.stop();
    assert!(
        !all.iter().any(|v| is(v, "zombie", dropped)),
        "outside --ppid: {all:?}"
    );
}

/// The cgroup v2 root, where this machine mounts it.
fn cgroup2_root() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    mounts
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
        })
        .expect("a cgroup v2 mount")
}

/// A child that left its parent's cgroup is placed where it was, read from
/// its own `/proc` entry; one that shared its parent's cgroups has its
/// parent's (see EXIT_PARENT_CGROUPS).
#[test]
fn child_in_a_cgroup_of_its_own_is_placed_there() {
    require_root();
    let dir = cgroup2_root().join(format!("zombie-trace-own-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut tracer = Tracer::start(&["--threshold", "500ms"]);
    let mut scenario = Scenario::python("children.py", &["own-cgroup", "2", dir.to_str().unwrap()]);
    let (parent, child) = scenario.parent_and_child();
    let zombie = tracer.wait_for("zombie report", |v| is(v, "zombie", child));
    let name = dir.file_name().unwrap().to_str().unwrap().to_owned();
    assert_eq!(zombie["exit_code"], 3, "{zombie}");
    assert_eq!(zombie["cgroup"], format!("/{name}"), "{zombie}");
    let own = std::fs::read_to_string(format!("/proc/{parent}/cgroup")).unwrap();
    assert!(!own.contains(&name), "the parent stayed out: {own}");
    assert_ne!(zombie["parent_cgroup"], zombie["cgroup"], "{zombie}");
    scenario.finish();
    drop(tracer);
    let _ = std::fs::remove_dir(&dir);
}

/// `--cgroup`: only processes in that cgroup v2 (or below it).
#[test]
fn cgroup_filter_reports_inside_and_not_outside() {
    require_root();
    let dir = cgroup2_root().join(format!("zombie-trace-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut leaker = Scenario::python("children.py", &["leak", "0.4"]);
    let (parent, _) = leaker.parent_and_child();
    std::fs::write(dir.join("cgroup.procs"), parent.to_string()).unwrap();
    let mut tracer = Tracer::start(&["--cgroup", dir.to_str().unwrap(), "--threshold", "300ms"]);
    let mut other = Scenario::python("children.py", &["late", "1.5"]);
    let (_, dropped) = other.parent_and_child();
    let kept: Vec<u64> = (0..3).map(|_| leaker.parent_and_child().1).collect();
    let name = dir.file_name().unwrap().to_str().unwrap().to_owned();
    for zombie in tracer.wait_for_each("zombie", &kept) {
        assert_eq!(zombie["ppid"], parent, "{zombie}");
        assert_eq!(zombie["cgroup"], format!("/{name}"), "{zombie}");
        assert_eq!(zombie["parent_cgroup"], format!("/{name}"), "{zombie}");
    }
    other.finish();
    let (all, _) = tracer.stop();
    assert!(
        !all.iter().any(|v| is(v, "zombie", dropped)),
        "outside --cgroup: {all:?}"
    );
    drop(leaker);
    // The cgroup can go once its processes have.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::remove_dir(&dir).is_err() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
}

/// GET `path` from `addr` over plain HTTP/1.1; the whole response.
/// This machine's address towards the outside, if it has one: a UDP socket
/// "connected" anywhere takes the route's source address, sending nothing.
fn outward_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// `--metrics`: scraped over HTTP while a zombie is out, and after its reap.
#[test]
fn metrics_endpoint_is_scraped_over_http() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut tracer = Tracer::start(&["--threshold", "300ms", "--metrics", &port.to_string()]);
    let mut scenario = Scenario::python("children.py", &["late", "3"]);
    let (_, child) = scenario.parent_and_child();
    tracer.wait_for("zombie report", |v| is(v, "zombie", child));
    // The gauges follow within a second.
    thread::sleep(Duration::from_millis(1500));
    let during = http_get(&addr, "/metrics");
    assert!(during.starts_with("HTTP/1.1 200"), "{during}");
    assert!(during.contains("application/openmetrics-text"), "{during}");
    // Not in a container: the workload is the parent's name alone.
    let workload = r#"{namespace="",pod="",container="",parent_comm="python3"}"#;
    for name in [
        &format!("zombie_trace_zombies{workload} 1"),
        &format!("zombie_trace_zombies_reported_total{workload} 1"),
        &format!("zombie_trace_oldest_zombie_seconds{workload} "),
        "zombie_trace_exits_total ",
        "zombie_trace_reaps_total ",
        "zombie_trace_lost_events_total 0",
        "zombie_trace_zombie_age_seconds_bucket",
        "zombie_trace_wait_tracing 1",
        &format!(
            "zombie_trace_build_info{{version=\"{}\",commit=\"",
            env!("CARGO_PKG_VERSION")
        ),
        "# EOF",
    ] {
        assert!(during.contains(name), "{name}: {during}");
    }
    tracer.wait_for("reap", |v| is(v, "reap", child));
    scenario.finish();
    thread::sleep(Duration::from_millis(1500));
    let after = http_get(&addr, "/metrics");
    assert!(
        !after.contains(&format!("zombie_trace_zombies{workload}")),
        "{after}"
    );
    assert!(
        after.contains(&format!("zombie_trace_zombies_reported_total{workload} 1")),
        "{after}"
    );
    let count: f64 = after
        .lines()
        .find_map(|l| l.strip_prefix("zombie_trace_zombie_age_seconds_count "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no histogram count: {after}"));
    assert!(count >= 1.0, "{after}");
    assert!(http_get(&addr, "/").starts_with("HTTP/1.1 404"));
    let health = http_get(&addr, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with("ok\n"), "{health}");
    // A port alone binds loopback: the machine's own address is refused.
    match outward_address() {
        Some(ip) => {
            let outside = TcpStream::connect_timeout(
                &std::net::SocketAddr::new(ip, port),
                Duration::from_secs(2),
            );
            assert!(outside.is_err(), "metrics reachable on {ip}:{port}");
        }
        None => eprintln!("no address but loopback: the bind is checked on loopback only"),
    }
    // Reading only, and no more of a request than a scrape needs.
    let post = http(
        &addr,
        b"POST /metrics HTTP/1.1\r\nContent-Length: 4\r\nConnection: close\r\n\r\nboom",
    );
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    assert!(post.contains("allow: GET, HEAD"), "{post}");
    let huge = format!(
        "GET /metrics HTTP/1.1\r\nX-Filler: {}\r\nConnection: close\r\n\r\n",
        "x".repeat(64 * 1024)
    );
    let refused = http(&addr, huge.as_bytes());
    assert!(!refused.starts_with("HTTP/1.1 200"), "{refused}");
    assert!(http_get(&addr, "/metrics").starts_with("HTTP/1.1 200"));
    // 16 clients at a time: idle ones that hold every slot keep a 17th
    // waiting (not the tracer's descriptors), and it is served once they go.
    let idle: Vec<TcpStream> = (0..16)
        .map(|_| TcpStream::connect(&addr).unwrap_or_else(|e| panic!("{addr}: {e}")))
        .collect();
    thread::sleep(Duration::from_millis(300));
    let mut waiting = TcpStream::connect(&addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    waiting
        .write_all(b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut first = [0u8; 1];
    match waiting.read(&mut first) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("a 17th client was answered while 16 held every slot: {other:?}"),
    }
    drop(idle);
    waiting
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut response = Vec::new();
    let _ = waiting.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response);
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "the waiting client once the idle ones went: {response:?}"
    );
    tracer.stop();
}

#[test]
fn closed_stdout_is_a_clean_stop() {
    let mut tracer = Tracer::start(&["--events"]);
    // The reader goes away, as with `zombie-trace | head -1`.
    drop(std::mem::replace(&mut tracer.lines, mpsc::channel().1));
    let status = Command::new("true").status().unwrap();
    assert!(status.success());
    thread::sleep(Duration::from_millis(300));
    send_signal(&tracer.child, libc::SIGTERM);
    let status = wait_timeout(&mut tracer.child, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("did not stop once its stdout was closed"));
    assert!(status.success(), "exit status {status}");
    let stderr = tracer.stderr.lock().unwrap().clone();
    assert!(
        !stderr.contains("panicked") && !stderr.contains("error"),
        "{stderr}"
    );
}

#[test]
fn orphaned_zombie_is_reaped_by_its_subreaper() {
    let mut tracer = Tracer::start(&["--threshold", "500ms"]);
    let mut scenario = Scenario::python("children.py", &["orphan", "1.5"]);
    let (parent, child) = scenario.parent_and_child();
    let zombie = tracer.wait_for("zombie report", |v| is(v, "zombie", child));
    assert_eq!(zombie["ppid"], parent, "{zombie}");
    let reap = tracer.wait_for("reap", |v| is(v, "reap", child));
    assert_eq!(reap["reaper_pid"], scenario.subreaper, "{reap}");
    assert_eq!(reap["reaper"], "subreaper", "{reap}");
    scenario.finish();
}

#[test]
fn wait_calls_of_the_parent_are_reported() {
    wait_calls_are_reported(&[]);
}

/// The same the way of the oldest kernels: kernel memory read with the
/// helper, the arguments kept from each call's entry.
#[test]
fn wait_calls_are_reported_the_old_kernels_way() {
    wait_calls_are_reported(&[(COMPAT_ENV, "1")]);
}

fn wait_calls_are_reported(env: &[(&str, &str)]) {
    // An earlier tracer's programs linger a moment after it exits, and this
    // one is ready sooner than that.
    programs_at_rest();
    let mut tracer = Tracer::start_with(&["--threshold", "1s"], env);
    assert_eq!(
        program_names().iter().any(|n| n == "sys_enter_wait4"),
        !env.is_empty() || programs_when_running() == 7,
        "entry programs attached exactly when the arguments are kept from entry"
    );
    let mut scenario = Scenario::python("children.py", &["peek", "2"]);
    let (_, child) = scenario.parent_and_child();
    let zombie = tracer.wait_for("zombie report", |v| is(v, "zombie", child));
    assert!(
        ms(&zombie, "parent_wait_calls") >= 1,
        "WNOWAIT peek not counted: {zombie}"
    );
    assert_eq!(zombie["parent_wait_reaped"], 0, "{zombie}");
    let reap = tracer.wait_for("reap", |v| is(v, "reap", child));
    assert_eq!(reap["reaper"], "parent", "{reap}");
    scenario.finish();

    let mut scenario = Scenario::python("children.py", &["other", "2"]);
    let (_, child) = scenario.parent_and_child();
    let sleeper = scenario.line();
    let sleeper = sleeper.strip_prefix("sleeper ").unwrap();
    let zombie = tracer.wait_for("zombie report", |v| is(v, "zombie", child));
    let targets = zombie["parent_wait_targets"].to_string();
    assert!(
        targets.contains(sleeper),
        "waits for the other child: {zombie}"
    );
    assert!(
        zombie["parent_syscall"]
            .as_str()
            .is_some_and(|s| s.contains("wait")),
        "{zombie}"
    );
    let diagnosis = zombie["diagnosis"].as_str().unwrap_or_default();
    assert!(
        diagnosis.contains(&format!(
            "is blocked in wait4 for pid {sleeper}, a live child; this one will wait until \
             {sleeper} exits"
        )),
        "{zombie}"
    );
}

#[test]
fn zombie_clock_starts_when_the_last_thread_dies() {
    let threads = compiled("threads");
    let mut tracer = Tracer::start(&["--threshold", "1s"]);
    let started = Instant::now();
    let mut scenario = Scenario::start(&[threads.to_str().unwrap(), "2"]);
    let (parent, child) = scenario.parent_and_child();
    let zombie = tracer.wait_for("zombie report", |v| is(v, "zombie", child));
    // The leader went first; the process died ~2s in, reported ~1s later.
    assert!(
        started.elapsed() >= Duration::from_millis(2800),
        "reported {:?} after start: counted from the leader's exit",
        started.elapsed()
    );
    assert_eq!(zombie["ppid"], parent, "{zombie}");
    let age = ms(&zombie, "age_ms");
    assert!(
        age < 2000,
        "age {age} ms counts the leader's early exit: {zombie}"
    );
}

#[test]
fn hostile_names_stay_exact_in_json_and_escaped_in_text() {
    let mut tracer = Tracer::start(&["--threshold", "300ms"]);
    let mut scenario = Scenario::python("children.py", &["hostile", "1"]);
    let (_, child) = scenario.parent_and_child();
    let zombie = tracer.wait_for("zombie report", |v| is(v, "zombie", child));
    // The kernel keeps 15 bytes; invalid UTF-8 becomes U+FFFD.
    assert_eq!(
        zombie["comm"], "\u{1b}[31mev\nil\u{7}\u{fffd}\u{fffd}",
        "{zombie}"
    );
    scenario.finish();
    drop(tracer);

    // Text output: the same zombie, but no raw control byte on the terminal.
    let mut text = spawn_tracer(&["--threshold", "300ms"], &[]);
    let lines = line_reader(text.stdout.take().unwrap());
    let ready = lines.recv_timeout(READY_TIMEOUT).expect("a READY line");
    assert!(ready.contains("READY"), "{ready:?}");
    let mut scenario = Scenario::python("children.py", &["hostile", "1"]);
    let (_, child) = scenario.parent_and_child();
    let needle = format!("pid={child} ");
    let line = loop {
        let line = lines.recv_timeout(EVENT_TIMEOUT).expect("a ZOMBIE line");
        if line.contains("ZOMBIE") && line.contains(&needle) {
            break line;
        }
    };
    assert!(
        !line.chars().any(|c| c.is_control()),
        "control characters reached the terminal: {line:?}"
    );
    assert!(line.contains("ev\\nil"), "{line:?}");
    scenario.finish();
    send_signal(&text, libc::SIGINT);
    let status = wait_timeout(&mut text, Duration::from_secs(20)).expect("stops on SIGINT");
    assert!(status.success());
    let rest: Vec<String> =
        std::iter::from_fn(|| lines.recv_timeout(Duration::from_secs(2)).ok()).collect();
    assert!(rest.iter().any(|l| l.contains("SUMMARY")), "{rest:?}");
}

#[test]
fn stop_prints_summary_with_outstanding_zombies_and_detaches() {
    let before = programs_at_rest();
    let mut tracer = Tracer::start(&["--threshold", "300ms"]);
    assert_eq!(
        our_programs(),
        before + programs_when_running(),
        "every program attached while running"
    );
    let mut scenario = Scenario::python("children.py", &["never", "30"]);
    let mut children = Vec::new();
    let mut parent = 0;
    for _ in 0..3 {
        let (p, c) = scenario.parent_and_child();
        parent = p;
        children.push(c);
    }
    tracer.wait_for_each("zombie", &children);
    let (rest, status) = tracer.stop();
    assert!(status.success(), "exit status {status}");
    let summary = rest.last().expect("summary");
    assert_eq!(summary["type"], "summary", "{summary}");
    assert!(ms(summary, "zombies") >= 3, "{summary}");
    let group = summary["outstanding"]
        .as_array()
        .expect("outstanding")
        .iter()
        .find(|g| g["ppid"] == parent)
        .unwrap_or_else(|| panic!("parent {parent} not outstanding: {summary}"));
    let mut pids: Vec<u64> = group["zombies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    pids.sort();
    children.sort();
    assert_eq!(pids, children, "{summary}");
    assert_programs_back_to(before, "after SIGTERM");
}

/// Our programs loaded now, once those of earlier tests are freed (the
/// kernel frees a program a moment after its last descriptor closes).
/// Three on scheduler events and the two wait returns, plus the two wait
/// entries where the arguments are not read at return (older kernels, or
/// the suite run with `ZOMBIE_TRACE_COMPAT=1`, which the tracer inherits).
fn programs_when_running() -> usize {
    let bytes = BtfBytes::read(VMLINUX_BTF).expect("reading the kernel's BTF");
    let btf = Btf::parse(&bytes).expect("parsing the kernel's BTF");
    let compat = std::env::var(COMPAT_ENV).is_ok_and(|v| v == "1");
    if regs_args(&btf).is_some() && !compat {
        5
    } else {
        7
    }
}

fn programs_at_rest() -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    while our_programs() != 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    our_programs()
}

fn assert_programs_back_to(before: usize, when: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while our_programs() != before && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(our_programs(), before, "programs left in the kernel {when}");
}

/// Once attached, the tracer keeps only what the rest of a run needs, in
/// every set, and still describes a parent that is another user's.
#[test]
fn capabilities_are_dropped_once_attached() {
    let mut tracer = Tracer::start(&["--threshold", "500ms"]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", tracer.child.id()))
        .expect("the tracer's /proc status");
    let set = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .unwrap_or_else(|| panic!("no {name} in {status}"))
    };
    // CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE, CAP_BPF.
    let kept = 1 << 2 | 1 << 19 | 1 << 39;
    assert_eq!(
        [
            set("CapEff:"),
            set("CapPrm:"),
            set("CapBnd:"),
            set("CapInh:"),
            set("CapAmb:")
        ],
        [kept, kept, kept, 0, 0],
        "effective, permitted, bounding, inheritable, ambient: {status}"
    );
    // A parent running as nobody, whose child (still root's) dies at once.
    let scenario = Scenario::start(&[
        "sh",
        "-c",
        "sleep 0.2 & exec setpriv --reuid=65534 --regid=65534 --clear-groups sleep 2.5",
    ]);
    let zombie = tracer.wait_for("zombie under nobody's sleep", |v| {
        v["type"] == "zombie" && v["parent_cmdline"] == serde_json::json!(["sleep", "2.5"])
    });
    assert_eq!(zombie["parent_syscall"], "clock_nanosleep", "{zombie}");
    assert!(zombie["parent_wchan"].is_string(), "{zombie}");
    scenario.finish();
}

/// A pid used again while the kernel still holds the old process's
/// release: the tracer must not pair the new process with the old one's
/// records. `/proc/sys/kernel/ns_last_pid` makes the next fork take the pid
/// that was just reaped.
#[test]
fn reused_pid_is_never_paired_with_the_old_process() {
    // Paired in the kernel, and in userspace.
    reused_pid(&[]);
    reused_pid(&["--events"]);
}

fn reused_pid(mode: &[&str]) {
    let mut args = vec!["--threshold", "500ms"];
    args.extend_from_slice(mode);
    let mut tracer = Tracer::start(&args);
    let me = u64::from(std::process::id());
    let mut reused = None;
    for _ in 0..20 {
        let old = fork_exiting(1);
        // A zombie for a moment, then reaped well before the threshold.
        thread::sleep(Duration::from_millis(20));
        reap(old);
        std::fs::write("/proc/sys/kernel/ns_last_pid", (old - 1).to_string())
            .expect("writing ns_last_pid (as root)");
        let new = fork_exiting(2);
        if new == old {
            reused = Some(new);
            break;
        }
        // Another process took the pid first: try again.
        reap(new);
    }
    let pid = u64::from(
        reused
            .expect("the pid was never reused in 20 tries")
            .cast_unsigned(),
    );
    thread::sleep(Duration::from_millis(1500));
    let zombie = tracer.wait_for("the new process's report", |v| is(v, "zombie", pid));
    assert_eq!(
        zombie["exit_code"], 2,
        "the new process, not the old: {zombie}"
    );
    assert_eq!(zombie["ppid"], me, "{zombie}");
    reap(pid as i32);
    let reaped = tracer.wait_for("the new process's reap", |v| is(v, "reap", pid));
    assert_eq!(reaped["reaper_pid"], me, "{reaped}");
    assert!(ms(&reaped, "zombie_ms") >= 1000, "{reaped}");
    let (all, _) = tracer.stop();
    let reports: Vec<&Value> = all.iter().filter(|v| is(v, "zombie", pid)).collect();
    assert_eq!(
        reports.len(),
        1,
        "one report, of the new process: {reports:?}"
    );
}

/// Forks a child that exits at once with `status`; its pid.
fn fork_exiting(status: i32) -> i32 {
    // SAFETY: the child only calls _exit.
    match unsafe { libc::fork() } {
        -1 => panic!("fork: {}", std::io::Error::last_os_error()),
        // SAFETY: ends the child at once, running nothing of the parent's.
        0 => unsafe { libc::_exit(status) },
        pid => pid,
    }
}

fn reap(pid: i32) {
    // SAFETY: waits for a child of this process.
    let got = unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    assert_eq!(got, pid, "waitpid({pid})");
}

/// Two tracers at once: each has its own programs and maps, both see the
/// same zombie, and stopping one leaves the other working.
#[test]
fn two_tracers_work_independently() {
    let before = programs_at_rest();
    let mut first = Tracer::start(&["--threshold", "1s"]);
    let mut second = Tracer::start(&["--threshold", "1s"]);
    assert_eq!(
        our_programs(),
        before + 2 * programs_when_running(),
        "each tracer attaches its own programs"
    );
    let mut scenario = Scenario::python("children.py", &["late", "2"]);
    let (_, child) = scenario.parent_and_child();
    for tracer in [&mut first, &mut second] {
        tracer.wait_for("zombie report", |v| is(v, "zombie", child));
        tracer.wait_for("reap", |v| is(v, "reap", child));
    }
    scenario.finish();
    let (_, status) = first.stop();
    assert!(status.success(), "first tracer: exit status {status}");
    // The second tracer's programs stay.
    assert_programs_back_to(
        before + programs_when_running(),
        "after the first tracer stopped",
    );

    let mut scenario = Scenario::python("children.py", &["late", "2"]);
    let (_, child) = scenario.parent_and_child();
    second.wait_for("zombie report after the first stopped", |v| {
        is(v, "zombie", child)
    });
    second.wait_for("reap", |v| is(v, "reap", child));
    scenario.finish();
    let (_, status) = second.stop();
    assert!(status.success(), "second tracer: exit status {status}");
    assert_programs_back_to(before, "after both stopped");
}

/// Killed, or crashed the ways a Rust program does (`abort()` raises
/// SIGABRT, a trap SIGILL; a SIGSEGV sent with kill is no crash: std's
/// stack-overflow handler takes it and returns): no handler of the tracer
/// runs, and still nothing stays in the kernel.
#[test]
fn killed_or_crashed_tracer_leaves_nothing_attached() {
    // The tracers inherit the soft limit, so their crashes leave no core
    // file in the work tree; the test's own is put back at the end.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a valid struct.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut limit) }, 0);
    let no_core = libc::rlimit {
        rlim_cur: 0,
        ..limit
    };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) }, 0);
    for (signal, name) in [
        (libc::SIGKILL, "SIGKILL"),
        (libc::SIGABRT, "SIGABRT"),
        (libc::SIGILL, "SIGILL"),
    ] {
        let before = programs_at_rest();
        let mut tracer = Tracer::start(&[]);
        assert_eq!(our_programs(), before + programs_when_running(), "{name}");
        send_signal(&tracer.child, signal);
        let status = wait_timeout(&mut tracer.child, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("the tracer outlived {name}"));
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(signal),
            "{name}"
        );
        // Links and programs go with the last file descriptor.
        assert_programs_back_to(before, &format!("after {name}"));
    }
    // SAFETY: as above.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_CORE, &limit) }, 0);
}

/// Whether `/proc` shows `pid` as a zombie.
fn is_zombie(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
    })
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

/// A parent reaped 20 children by pid, leaked one, and now blocks in a wait
/// for a live child (two threads, two children, with `threads`): the report
/// names the calls in progress first, lists the pids it waited for most
/// recently (not the first ever) as gone, and says what this child waits
/// for.
fn waits_now_not_first_ever(how: &str, syscalls: &[&str]) {
    let mut tracer = Tracer::start(&["--threshold", "1s"]);
    let mode = format!("reap-then-block-{how}");
    let mut scenario = Scenario::python("children.py", &[&mode, "30"]);
    let reaped = scenario.numbers("reaped ");
    let (parent, child) = scenario.parent_and_child();
    let waiting = scenario.numbers("waiting ");
    let zombie = tracer.wait_for("zombie report", |v| is(v, "zombie", child));
    assert_eq!(zombie["ppid"], parent, "{zombie}");
    let names = strings(&zombie["parent_wait_targets"]);
    for (i, w) in waiting.iter().enumerate() {
        assert_eq!(names.get(i), Some(&&*format!("pid {w}")), "{zombie}");
    }
    let list = zombie["parent_wait_target_list"]
        .as_array()
        .unwrap_or_else(|| panic!("no parent_wait_target_list: {zombie}"));
    let (now, recent): (Vec<&Value>, Vec<&Value>) =
        list.iter().partition(|t| t["in_progress"] == true);
    assert_eq!(now.len(), waiting.len(), "{zombie}");
    for ((call, w), syscall) in now.iter().zip(&waiting).zip(syscalls) {
        assert_eq!(call["kind"], "pid", "{zombie}");
        assert_eq!(call["id"], *w, "{zombie}");
        assert_eq!(call["pid"], *w, "{zombie}");
        assert_eq!(call["state"], "live_child", "{zombie}");
        assert_eq!(call["syscall"], *syscall, "{zombie}");
        assert_eq!(call["blocking"], true, "{zombie}");
        assert_eq!(call["ms_ago"], 0, "{zombie}");
        assert!(call["tid"].as_u64().is_some(), "{zombie}");
    }
    // The last 8 it reaped, each gone now, with how long ago: not the
    // first 8 ever.
    let recent_pids: Vec<u64> = recent
        .iter()
        .map(|t| {
            assert_eq!(t["kind"], "pid", "{zombie}");
            assert_eq!(t["state"], "gone", "{zombie}");
            assert!(t["ms_ago"].as_u64().is_some(), "{zombie}");
            t["id"].as_u64().unwrap()
        })
        .collect();
    let mut last_eight = reaped[12..].to_vec();
    last_eight.reverse();
    assert_eq!(recent_pids, last_eight, "{zombie}");
    let diagnosis = zombie["diagnosis"].as_str().unwrap_or_default();
    match waiting[..] {
        [w] => assert!(
            diagnosis.ends_with(&format!(
                "is blocked in {} for pid {w}, a live child; this one will wait until {w} exits",
                syscalls[0]
            )),
            "{zombie}"
        ),
        [w1, w2] => {
            for part in [
                format!("is blocked in wait4 for pid {w1}, a live child (thread "),
                format!("and in waitid for pid {w2}, a live child (thread "),
                "; this one will wait until one of them returns".to_owned(),
            ] {
                assert!(diagnosis.contains(&part), "{part:?}: {zombie}");
            }
        }
        _ => unreachable!(),
    }
}

#[test]
fn parent_blocked_in_wait4_for_another_child_is_named() {
    waits_now_not_first_ever("wait4", &["wait4"]);
}

#[test]
fn parent_blocked_in_waitid_for_another_child_is_named() {
    waits_now_not_first_ever("waitid", &["waitid"]);
}

#[test]
fn parent_threads_blocked_for_two_children_are_both_named() {
    waits_now_not_first_ever("threads", &["wait4", "waitid"]);
}

/// A zombie whose exit record was lost is found again in `/proc`: its exit
/// time is unknown, and the diagnosis claims nothing about what its parent
/// did since; it says what the parent waited for lately.
#[test]
fn zombie_found_after_lost_records_makes_no_claim_about_its_exit() {
    let mut tracer = Tracer::start(&["--threshold", "2s", "--events"]);
    send_signal(&tracer.child, libc::SIGSTOP);
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let storms: Vec<_> = (0..cores)
        .map(|_| thread::spawn(|| run_storm(40_000)))
        .collect();
    for storm in storms {
        storm.join().expect("a storm");
    }
    // Its exit comes while the ring buffer is full: the record is lost.
    let mut scenario = Scenario::python("children.py", &["leak-then-poll", "30"]);
    let (parent, child) = scenario.parent_and_child();
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while !is_zombie(child) {
        assert!(Instant::now() < deadline, "{child} never became a zombie");
        thread::sleep(Duration::from_millis(20));
    }
    send_signal(&tracer.child, libc::SIGCONT);
    tracer.wait_for("lost line", |v| v["type"] == "lost");
    // SAFETY: kill(2) on the scenario's parent.
    unsafe { libc::kill(parent as i32, libc::SIGUSR1) };
    let polled = scenario.numbers("polled ")[0];
    let zombie = tracer.wait_for("zombie report", |v| is(v, "zombie", child));
    assert_eq!(zombie["age_ms"], Value::Null, "{zombie}");
    assert_eq!(zombie["ppid_at_exit"], Value::Null, "{zombie}");
    assert_eq!(zombie["preexisting"], false, "{zombie}");
    let diagnosis = zombie["diagnosis"].as_str().unwrap_or_default();
    assert!(!diagnosis.contains("since this child exited"), "{zombie}");
    assert!(
        diagnosis.contains(&format!(
            "has waited only for pid {polled} since tracing began"
        )),
        "{zombie}"
    );
    assert!(diagnosis.contains("exited is unknown"), "{zombie}");
    let recent = zombie["parent_wait_target_list"]
        .as_array()
        .and_then(|l| l.iter().find(|t| t["id"] == polled))
        .unwrap_or_else(|| panic!("pid {polled} not among the targets: {zombie}"));
    assert_eq!(recent["in_progress"], false, "{zombie}");
    assert_eq!(recent["state"], "live_child", "{zombie}");
    assert!(recent["ms_ago"].as_u64().is_some(), "{zombie}");
}

/// A scratch path in the test's temporary directory.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// One parent leaks 3,000 children at once: text for people gets a few
/// lines a second and a sum (the parent's details once), the JSON file one
/// line per zombie and per reap.
#[test]
fn a_flood_is_summed_up_in_text_and_whole_in_json() {
    require_root();
    let flood = compiled("flood");
    let file = scratch("flood.jsonl");
    let mut child = spawn_tracer(
        &["--threshold", "500ms", "--output", file.to_str().unwrap()],
        &[],
    );
    let lines = line_reader(child.stdout.take().unwrap());
    let stderr = collect_stderr(child.stderr.take().unwrap());
    let ready = lines.recv_timeout(READY_TIMEOUT).expect("a first line");
    assert!(ready.contains(" READY "), "{ready}");
    let mut scenario = Scenario::start(&[flood.to_str().unwrap(), "3000", "3"]);
    let parent = scenario.numbers("parent ")[0];
    assert_eq!(scenario.numbers("forked "), [3000]);
    scenario.finish();
    // The last second's sums come when it is over.
    thread::sleep(Duration::from_millis(2500));
    send_signal(&child, libc::SIGTERM);
    let status = wait_timeout(&mut child, Duration::from_secs(20)).expect("stops on SIGTERM");
    assert!(status.success(), "{status}: {}", stderr.lock().unwrap());
    let text: Vec<String> = lines.try_iter().collect();
    let shown = |kind: &str, of: &str| -> Vec<&String> {
        text.iter()
            .filter(|l| l.get(13..21) == Some(kind) && l.contains(of))
            .collect()
    };
    let sum = |lines: &[&String]| -> u64 {
        lines
            .iter()
            .map(|l| {
                let after = l.split(": ").nth(1).unwrap_or_default();
                after
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or_else(|| panic!("no count in {l:?}"))
            })
            .sum()
    };
    let zombies = shown("ZOMBIE  ", &format!("| parent {parent} "));
    let zombie_sums = shown("ZOMBIES ", &format!("parent {parent} flood: "));
    let reaps = shown("REAP    ", &format!("reaped-by={parent} "));
    let reap_sums = shown("REAPS   ", &format!("reaped-by {parent} flood: "));
    let all = text.join("\n");
    assert_eq!(zombies.len() as u64 + sum(&zombie_sums), 3000, "{all}");
    assert_eq!(reaps.len() as u64 + sum(&reap_sums), 3000, "{all}");
    assert!(!zombie_sums.is_empty() && !reap_sums.is_empty(), "{all}");
    // At most three lines a parent a second, its details on the first.
    let windows = zombie_sums.len();
    assert!(zombies.len() <= 3 * windows + 3, "{all}");
    // The parent's half of the line (the child's has its own command).
    let parent_detailed = |l: &str| l.split(" | ").nth(1).is_some_and(|p| p.contains(" cmd=["));
    let details = zombies.iter().filter(|l| parent_detailed(l)).count();
    assert!(details >= 1 && details <= windows + 1, "{all}");
    assert!(
        zombies
            .iter()
            .filter(|l| !parent_detailed(l))
            .all(|l| l.contains(&format!("| parent {parent} flood (as above)"))),
        "{all}"
    );
    assert!(text.len() < 60, "{} lines of text: {all}", text.len());
    // JSON has every one.
    let json = std::fs::read_to_string(&file).expect("the --output file");
    let values: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    let count = |kind: &str, field: &str| {
        values
            .iter()
            .filter(|v| v["type"] == kind && v[field] == parent)
            .count()
    };
    assert_eq!(count("zombie", "ppid"), 3000);
    assert_eq!(count("reap", "reaper_pid"), 3000);
}

/// Zombies that exist when the tracer starts are reported with `ready`: a
/// tracer stopped at once has reported them, and its summary agrees.
#[test]
fn preexisting_zombies_come_with_ready_and_the_summary_agrees() {
    require_root();
    let (_scenario, parent, children) = three_zombies_under_sleep();
    let tracer = Tracer::start(&["--threshold", "1h"]);
    let preexisting = ms(&tracer.ready, "preexisting");
    assert!(preexisting >= 3, "{}", tracer.ready);
    let (all, status) = tracer.stop();
    assert!(status.success());
    let reported: Vec<&Value> = all.iter().filter(|v| v["type"] == "zombie").collect();
    assert_eq!(reported.len() as u64, preexisting, "{all:?}");
    for child in &children {
        assert!(
            reported
                .iter()
                .any(|z| z["pid"] == *child && z["preexisting"] == true),
            "{child} not reported: {all:?}"
        );
    }
    let summary = all.last().expect("summary");
    assert_eq!(summary["type"], "summary", "{summary}");
    assert_eq!(ms(summary, "preexisting"), preexisting, "{summary}");
    let group = summary["outstanding"]
        .as_array()
        .and_then(|o| o.iter().find(|g| g["ppid"] == parent))
        .unwrap_or_else(|| panic!("parent {parent} not outstanding: {summary}"));
    assert_eq!(
        group["zombies"].as_array().map(Vec::len),
        Some(3),
        "{summary}"
    );
}

/// `zombie-trace | head -1` on a quiet host: once the reader is gone the
/// tracer stops and detaches, though it has nothing more to write.
#[test]
fn a_quiet_tracer_stops_when_its_reader_goes() {
    require_root();
    let before = programs_at_rest();
    // Only pid 1, which never exits: nothing more is written.
    let mut child = spawn_tracer(&["--pid", "1"], &[]);
    let stderr = collect_stderr(child.stderr.take().unwrap());
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).expect("the ready line");
    assert!(first.contains(" READY "), "{first}");
    drop(out);
    let status = wait_timeout(&mut child, Duration::from_secs(3))
        .unwrap_or_else(|| panic!("still running 3s after its reader went"));
    assert!(status.success(), "{status}");
    assert_programs_back_to(before, "after its reader went");
    let stderr = stderr.lock().unwrap().clone();
    assert!(!stderr.contains("error"), "{stderr}");
}

/// `>&-`: findings would go nowhere, and it says so; with `--output` they
/// go to the file.
#[test]
fn started_with_stdout_closed_it_says_so_unless_it_has_a_file() {
    require_root();
    let closed = |args: &[&str]| {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exec \"$0\" \"$@\" >&-", BIN])
            .args(args)
            .stdin(Stdio::null());
        cmd
    };
    // Only tracing has --output to offer.
    for (args, offers_output) in [(&["--threshold", "1s"][..], true), (&["ps"], false)] {
        let out = closed(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with("zombie-trace: error: standard output is closed")
                && stderr.contains("--output FILE") == offers_output,
            "{args:?}: {stderr}"
        );
    }
    let file = scratch("closed-stdout.jsonl");
    let mut child = closed(&["--output", file.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = collect_stderr(child.stderr.take().unwrap());
    let deadline = Instant::now() + READY_TIMEOUT;
    while !std::fs::read_to_string(&file).is_ok_and(|s| s.contains("\"type\":\"ready\"")) {
        assert!(
            Instant::now() < deadline,
            "no ready line in {}: {}",
            file.display(),
            stderr.lock().unwrap()
        );
        thread::sleep(Duration::from_millis(100));
    }
    send_signal(&child, libc::SIGTERM);
    let status = wait_timeout(&mut child, Duration::from_secs(20)).expect("stops on SIGTERM");
    assert!(status.success(), "{status}: {}", stderr.lock().unwrap());
    let written = std::fs::read_to_string(&file).unwrap();
    let last: Value = serde_json::from_str(written.lines().last().unwrap()).unwrap();
    assert_eq!(
        (&last["type"], &last["final"]),
        (&"summary".into(), &true.into())
    );
}

/// `--pid 0` is refused; a pid that is no process is traced, with a
/// warning (`zombie-trace: warning:`, as the README says).
#[test]
fn pid_filters_that_name_no_process_are_said() {
    for flag in ["--pid", "--ppid"] {
        let out = Command::new(BIN).args([flag, "0"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{flag} 0");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("0 is not a process"), "{stderr}");
    }
    // Above PID_MAX_LIMIT: never a process.
    let tracer = Tracer::start(&["--pid", "4194305", "--ppid", "1"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let warned = "zombie-trace: warning: --pid 4194305: no such process now";
    while !tracer.stderr.lock().unwrap().contains(warned) {
        assert!(
            Instant::now() < deadline,
            "{}",
            tracer.stderr.lock().unwrap()
        );
        thread::sleep(Duration::from_millis(50));
    }
    let stderr = tracer.stderr.lock().unwrap().clone();
    assert!(!stderr.contains("--ppid 1"), "{stderr}");
    let (_, status) = tracer.stop();
    assert!(status.success());
}

/// `--output` through a symbolic link is refused, saying why and what to
/// give instead.
#[test]
fn output_through_a_symlink_is_refused_with_the_reason() {
    require_root();
    let real = scratch("real.jsonl");
    let link = scratch("link.jsonl");
    std::fs::write(&real, "").unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let out = Command::new(BIN)
        .arg("--output")
        .arg(&link)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is a symbolic link") && stderr.contains("readlink -f"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&real).unwrap(), "");
}

/// Where the verifier takes direct loads of kernel memory (6.1 and newer,
/// see `cargo xtask vmtest`), the programs load that way: a change that
/// makes it refuse them falls back to the helper without a word, and every
/// exit then costs more.
#[test]
fn programs_read_kernel_memory_directly_where_they_can() {
    let release = zombie_trace::kernel::load::kernel_release();
    let recent =
        zombie_trace::kernel::load::parse_kernel_version(&release).is_some_and(|v| v >= (6, 1));
    if !recent || std::env::var(COMPAT_ENV).is_ok_and(|v| v == "1") {
        eprintln!("kernel {release}, or the old kernels' way: the helper is expected");
        return;
    }
    let tracer = Tracer::start_with(&[], &[("RUST_LOG", "debug")]);
    let stderr = Arc::clone(&tracer.stderr);
    tracer.stop();
    let stderr = stderr.lock().unwrap();
    assert!(
        !stderr.contains("direct kernel reads refused"),
        "the verifier refused the direct loads on {release}:\n{stderr}"
    );
}

/// What a child ran, kept from its exec: a Python parent runs three
/// commands and waits for two; the zombie names the third's command line,
/// and the summary counts the parent's zombies by command.
#[test]
fn zombies_name_the_command_the_child_ran() {
    let mut tracer = Tracer::start(&["--threshold", "300ms", "--summary-interval", "1s"]);
    let mut popen = Scenario::python("commands.py", &["popen", "4"]);
    let (parent, child) = popen.parent_and_child();
    let zombie = tracer.wait_for("the third command's zombie", |v| is(v, "zombie", child));
    assert_eq!(
        zombie["cmdline"],
        serde_json::json!(["echo", "leaked", "third"]),
        "{zombie}"
    );
    assert!(
        zombie["exe"].as_str().unwrap().ends_with("echo"),
        "{zombie}"
    );
    assert_eq!(zombie["cmdline_truncated"], false, "{zombie}");
    assert_eq!(zombie["cmdline_inherited"], false, "{zombie}");
    assert_eq!(zombie["cmdline_b64"], Value::Null, "{zombie}");
    let by_command = |v: &Value| -> Option<Value> {
        let row = v["parents"]
            .as_array()?
            .iter()
            .find(|r| r["ppid"] == parent)?;
        Some(row["by_command"].clone())
    };
    let summary = tracer.wait_for("a summary with the parent's commands", |v| {
        v["type"] == "summary" && by_command(v).is_some()
    });
    assert_eq!(
        by_command(&summary).unwrap(),
        serde_json::json!([{"command": "echo", "zombies_now": 1, "zombies_ever": 1}]),
        "{summary}"
    );

    // Bytes no terminal should see, bytes that are not UTF-8, 100 KB: the
    // first bytes kept, exact in base64.
    let mut hostile = Scenario::python("commands.py", &["hostile", "4"]);
    let (_, child) = hostile.parent_and_child();
    let zombie = tracer.wait_for("the hostile command's zombie", |v| is(v, "zombie", child));
    assert_eq!(zombie["exe"], "/bin/true", "{zombie}");
    assert_eq!(zombie["cmdline_truncated"], true, "{zombie}");
    assert!(ms(&zombie, "cmdline_bytes") > 100 * 1024, "{zombie}");
    let exact: Vec<Vec<u8>> = zombie["cmdline_b64"]
        .as_array()
        .unwrap_or_else(|| panic!("no cmdline_b64: {zombie}"))
        .iter()
        .map(|a| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(a.as_str().unwrap())
                .unwrap()
        })
        .collect();
    assert_eq!(exact[0], b"true");
    assert_eq!(exact[1], b"\x1b[2J\nevil\xff\xfe");
    assert!(
        exact[2].len() < 1024 && exact[2].iter().all(|&b| b == b'x'),
        "the first bytes only: {} bytes",
        exact[2].len()
    );

    // A child that never execs runs its parent's command.
    let mut fork = Scenario::python("commands.py", &["fork", "4"]);
    let (_, child) = fork.parent_and_child();
    let zombie = tracer.wait_for("the forked child's zombie", |v| is(v, "zombie", child));
    assert_eq!(zombie["cmdline_inherited"], true, "{zombie}");
    assert!(
        zombie["cmdline"].to_string().contains("commands.py"),
        "{zombie}"
    );
    popen.finish();
    hostile.finish();
    fork.finish();
    tracer.stop();
}

/// `--stacks`: a C parent built with frame pointers forks from two
/// functions and leaks only one's child: the report names that function,
/// in JSON and in text.
#[test]
fn stacks_name_the_function_that_forked_the_zombie() {
    let spawn = compiled_with("spawn", &["-g", "-fno-omit-frame-pointer"]);
    let mut tracer = Tracer::start(&["--stacks", "--threshold", "300ms"]);
    let mut scenario = Scenario::start(&[spawn.to_str().unwrap(), "4"]);
    let (_, child) = scenario.parent_and_child();
    let zombie = tracer.wait_for("the leaked child's zombie", |v| is(v, "zombie", child));
    let frames = zombie["spawn_stack"]
        .as_array()
        .unwrap_or_else(|| panic!("no spawn_stack: {zombie}"));
    let symbols: Vec<&str> = frames.iter().filter_map(|f| f["symbol"].as_str()).collect();
    let leaked = symbols.iter().position(|s| *s == "spawn_leaked");
    let main = symbols.iter().position(|s| *s == "main");
    assert!(
        leaked.is_some() && leaked < main && !symbols.contains(&"spawn_reaped"),
        "{symbols:?}: {zombie}"
    );
    let site = &frames[leaked.unwrap()];
    assert_eq!(
        site["file"].as_str().map(|f| f.ends_with("spawn.c")),
        Some(true),
        "{site}"
    );
    assert!(site["line"].as_u64().is_some(), "{site}");
    assert!(
        site["address"].as_str().unwrap().starts_with("0x"),
        "{site}"
    );
    scenario.finish();
    tracer.stop();

    // Text: the parent's own frames first, past libc's fork.
    let mut text = spawn_tracer(&["--stacks", "--threshold", "300ms"], &[]);
    let lines = line_reader(text.stdout.take().unwrap());
    let ready = lines.recv_timeout(READY_TIMEOUT).expect("a first line");
    assert!(ready.contains(" READY "), "{ready}");
    let mut scenario = Scenario::start(&[spawn.to_str().unwrap(), "4"]);
    let (_, child) = scenario.parent_and_child();
    let report = format!("ZOMBIE  pid={child} ");
    let line = std::iter::from_fn(|| lines.recv_timeout(EVENT_TIMEOUT).ok())
        .find(|l| l.contains(&report))
        .unwrap_or_else(|| panic!("no text report of {child}"));
    assert!(line.contains(" spawned-at=[spawn_leaked+"), "{line}");
    scenario.finish();
    send_signal(&text, libc::SIGTERM);
    wait_timeout(&mut text, Duration::from_secs(20)).expect("stops on SIGTERM");
}
