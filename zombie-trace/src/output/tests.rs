//! The encoders, through [`Encoder`]: what every line says, in JSON and
//! in text, and that hostile bytes never escape.

use std::{collections::BTreeSet, sync::Arc};

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};

use serde_json::Value;

use super::{
    escape::{is_invisible_format, word},
    text::{CMDLINE_MAX_CHARS, INDENT, cmdline_text, text_ts},
    *,
};
use crate::{
    diagnosis::Facts,
    model::{
        diagnosis::Diagnosis,
        event::{Comm, Command, ParentName, WNOHANG, WaitSyscall},
        fixtures::{recent, waiting, waits, zombie},
        process::{ContainerNames, Placement, Sigchld},
        report::{
            Exited, Frame, Latency, Lost, ParentGroup, ParentRow, Ready, Reaped, ReaperKind,
            Snapshot, Startup, Summary, WaitHooks,
        },
    },
};

/// The diagnosis of `z`, from what it says of itself and its parent.
fn diagnosed(z: &Zombie, now_ns: u64, tracing_since_ns: u64) -> Diagnosis {
    crate::diagnosis::diagnose(&Facts::of(z), now_ns, tracing_since_ns)
}

/// The same, said.
fn diagnose(z: &Zombie, now_ns: u64, tracing_since_ns: u64) -> String {
    sentence::sentence(&diagnosed(z, now_ns, tracing_since_ns), &parent_name(z))
}

const HOSTILE: &[&[u8]] = &[
    b"\x1b[31mred\x1b[0m",
    b"a\nb\rc\td",
    b"\0nul",
    b"\xff\xfe\xc3",
    b"\x7f\x08\x07",
    b"\xc2\x85\xc2\x9b[2J",
    b"\xe2\x80\xaeevil\xe2\x80\xa8",
    b"0123456789abcdef",
    b") S 1 (",
    b"back\\slash \"quote\"",
];

fn ts() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_700_000_054_123)
}

fn parent(comm: &[u8], cmdline: Vec<Vec<u8>>) -> ProcessInfo {
    ProcessInfo {
        pid: 4200,
        comm: comm.to_vec(),
        cmdline,
        state: 'S',
        wchan: Some("hrtimer_nanosleep".to_owned()),
        syscall: Some("clock_nanosleep".to_owned()),
        waits_now: Vec::new(),
        sigchld: Some(Sigchld {
            ignored: false,
            caught: false,
            blocked: false,
        }),
        ppid: 1,
        threads: 1,
        start_ticks: 0,
        placement: Placement::default(),
    }
}

#[test]
fn placement_in_json_and_text() {
    let id = "0123456789ab".to_owned();
    let mut p = parent(b"containerd-shim", vec![]);
    p.placement = Placement {
        cgroup: Some("/system.slice/docker-x.scope".into()),
        ns_pid: Some(1),
        container_id: Some(id.clone()),
        ..Placement::default()
    };
    let names = ContainerNames {
        name: Some("web".into()),
        pod_name: Some("shop-7f9c".into()),
        pod_namespace: Some("prod".into()),
    };
    p.placement.names = names.clone();
    let z = Zombie {
        placement: Placement {
            cgroup: Some("/system.slice/docker-x.scope".into()),
            ns_pid: Some(7),
            container_id: Some(id),
            names,
        },
        original_parent: Some(ParentName {
            pid: 4100,
            comm: Comm::new(b"sh"),
        }),
        ..zombie(b"worker", Some(p))
    };
    let line = Line::Zombie(Box::new(z));
    let map = json_of(&line);
    assert_eq!(map["container_name"], "web");
    assert_eq!(map["pod_name"], "shop-7f9c");
    assert_eq!(map["pod_namespace"], "prod");
    assert_eq!(map["parent_container_name"], "web");
    assert_eq!(map["parent_pod_name"], "shop-7f9c");
    assert_eq!(map["parent_pod_namespace"], "prod");
    assert_eq!(map["reparented"], true);
    assert_eq!(map["original_ppid"], 4100);
    assert_eq!(map["original_parent_comm"], "sh");
    assert!(!map.contains_key("node"), "no --node-name, no node");
    let on_node = Encoder::new(Format::Json)
        .on_node("node-a".into())
        .encode(&line);
    let on_node: Value = serde_json::from_str(&on_node).unwrap();
    assert_eq!(
        (&on_node["type"], &on_node["node"]),
        (&"zombie".into(), &"node-a".into())
    );
    assert_eq!(map["cgroup"], "/system.slice/docker-x.scope");
    assert_eq!(
        (map["ns_pid"].clone(), map["parent_ns_pid"].clone()),
        (7.into(), 1.into())
    );
    assert_eq!(map["container_id"], "0123456789ab");
    assert_eq!(map["parent_container_id"], "0123456789ab");
    let text = Encoder::new(Format::Text).encode(&line);
    assert!(
        text.contains(
            " cgroup=/system.slice/docker-x.scope ns-pid=7 container=0123456789ab \
             container-name=web pod=prod/shop-7f9c reparented-from=4100 original-parent=sh"
        ),
        "{text}"
    );
    assert!(
        text.contains("threads=1 cgroup=/system.slice/docker-x.scope ns-pid=1"),
        "{text}"
    );
    // The host's own: nothing said.
    let plain = Encoder::new(Format::Text).encode(&Line::Zombie(Box::new(zombie(b"x", None))));
    assert!(
        !plain.contains("cgroup=") && !plain.contains("ns-pid="),
        "{plain}"
    );
}

fn all_lines(comm: &[u8], arg: &[u8]) -> Vec<Line> {
    let p = parent(comm, vec![b"python3".to_vec(), arg.to_vec()]);
    vec![
        Line::Ready(Ready {
            ts: ts(),
            version: "0.1.0",
            threshold_ms: 5000,
            kernel: String::from_utf8_lossy(arg).into_owned(),
            pid: 99,
            preexisting: 2,
            wait_tracing: true,
            wait_hooks: Some(WaitHooks::Tracepoints),
            startup: Startup {
                btf: Duration::from_micros(4_250),
                load: Duration::from_millis(60),
                attach: Duration::from_micros(800),
                scan: Duration::from_micros(1_500),
            },
        }),
        Line::Zombie(Box::new({
            let mut z = zombie(comm, Some(p.clone()));
            z.diagnosis = diagnosed(&z, 10_000_000_000, 0);
            z
        })),
        Line::Zombie(Box::new({
            let mut z = zombie(comm, None);
            z.diagnosis = diagnosed(&z, 10_000_000_000, 0);
            z
        })),
        Line::Reaped {
            ts: ts(),
            reaped: Reaped {
                ts_ns: None,
                pid: 4242,
                comm: Comm::new(comm),
                reaper_pid: Some(4200),
                reaper_comm: Some(Comm::new(comm)),
                reaper_kind: ReaperKind::Parent,
                zombie_ns: Some(5_200_000_000),
                was_reported: true,
                preexisting: false,
            },
        },
        Line::Exited(Exited {
            command: None,
            ts: ts(),
            pid: 4242,
            tid: 4243,
            ppid: 4200,
            comm: Comm::new(comm),
            parent_comm: Comm::new(comm),
            status: ExitStatus::Killed {
                signal: 9,
                core_dumped: false,
            },
            auto_reap: false,
        }),
        Line::Lost(Lost {
            ts: ts(),
            count: 3,
            total: 10,
        }),
        Line::Summary(Summary {
            ts: ts(),
            last: true,
            duration_ns: 62_000_000_000,
            exits: 10,
            reaps: 8,
            zombies: 2,
            preexisting: 0,
            lost: 0,
            outstanding: vec![ParentGroup {
                by_command: Vec::new(),
                ppid: 4200,
                parent_comm: comm.to_vec(),
                zombies: vec![4242, 4243],
                oldest_ns: Some(5_000_000_000),
                preexisting: false,
            }],
            parents: vec![ParentRow {
                by_command: Vec::new(),
                ppid: 4200,
                comm: comm.to_vec(),
                cmdline: vec![comm.to_vec(), arg.to_vec()],
                zombies_now: 2,
                zombies_ever: 3,
                leak_per_min: 1.5,
                oldest_ns: Some(5_000_000_000),
                reaps: LATENCY,
            }],
            reap_latency: LATENCY,
            reap_latency_by_comm: vec![(comm.to_vec(), LATENCY)],
        }),
        Line::Snapshot(Snapshot {
            ts: ts(),
            zombies: 1,
            by_parent: vec![ParentGroup {
                by_command: Vec::new(),
                ppid: 4200,
                parent_comm: comm.to_vec(),
                zombies: vec![4242],
                oldest_ns: None,
                preexisting: false,
            }],
            full_detail: false,
        }),
    ]
}

#[test]
fn untraced_waits_are_unknown_not_zero() {
    let p = parent(b"sleep", vec![]);
    let z = Zombie {
        parent_waits: None,
        ..zombie(b"x", Some(p))
    };
    let map = json_of(&Line::Zombie(Box::new(z.clone())));
    for key in [
        "parent_wait_calls",
        "parent_wait_reaped",
        "parent_wait_targets",
    ] {
        assert_eq!(map[key], Value::Null, "{key}");
    }
    let text = Encoder::new(Format::Text).encode(&Line::Zombie(Box::new(z)));
    assert!(text.contains(" waits=? "), "{text}");
}

#[test]
fn ps_snapshot_line() {
    let line = Line::Snapshot(Snapshot {
        ts: ts(),
        zombies: 2,
        by_parent: vec![ParentGroup {
            by_command: Vec::new(),
            ppid: 4200,
            parent_comm: b"make".to_vec(),
            zombies: vec![4242, 4243],
            oldest_ns: None,
            preexisting: false,
        }],
        full_detail: true,
    });
    let map = json_of(&line);
    assert_eq!(map["type"], "ps");
    assert_eq!(map["zombies"], 2);
    assert_eq!(map["full_detail"], true);
    assert_eq!(map["by_parent"][0]["ppid"], 4200);
    assert_eq!(
        map["by_parent"][0]["zombies"],
        serde_json::json!([4242, 4243])
    );
    let text = Encoder::new(Format::Text).encode(&line);
    assert!(
        text.contains("PS      zombies=2 parents=1 detail=full\n"),
        "{text}"
    );
    assert!(
        text.contains("parent 4200 make: 2 zombies: 4242 4243"),
        "{text}"
    );
}

const LATENCY: Latency = Latency {
    count: 12,
    p50_ns: Some(262_144),
    p99_ns: Some(16_777_216),
    max_ns: Some(5_900_000_000),
};

#[test]
fn summary_with_parents_and_latencies() {
    let line = all_lines(b"leaker", b"--slow")
        .into_iter()
        .find(|l| matches!(l, Line::Summary(_)))
        .unwrap();
    let map = json_of(&line);
    assert_eq!(map["final"], true);
    let parent = &map["parents"][0];
    assert_eq!(parent["ppid"], 4200);
    assert_eq!(parent["parent_comm"], "leaker");
    assert_eq!(
        parent["parent_cmdline"],
        serde_json::json!(["leaker", "--slow"])
    );
    assert_eq!(parent["zombies_now"], 2);
    assert_eq!(parent["zombies_ever"], 3);
    assert_eq!(parent["leak_per_min"], 1.5);
    assert_eq!(parent["oldest_ms"], 5000);
    assert_eq!(parent["reaps"]["p50_ms"], 0.262);
    assert_eq!(parent["reaps"]["p99_ms"], 16.777);
    assert_eq!(parent["reaps"]["max_ms"], 5900.0);
    assert_eq!(map["reap_latency"]["count"], 12);
    assert_eq!(map["reap_latency_by_comm"][0]["comm"], "leaker");
    assert_eq!(map["reap_latency_by_comm"][0]["p50_ms"], 0.262);
    let text = Encoder::new(Format::Text).encode(&line);
    assert!(
        text.contains("parent 4200 leaker: now=2 ever=3 rate=1.50/min oldest=5.0s reaps: n=12 p50=262us p99=16ms max=5.9s cmd=[leaker --slow]"),
        "{text}"
    );
    assert!(text.contains("reap latency: n=12 p50=262us"), "{text}");
    assert!(text.contains("by reaper: leaker n=12"), "{text}");
}

fn json_of(line: &Line) -> serde_json::Map<String, Value> {
    let out = Encoder::new(Format::Json).encode_at(line, Some(10_000_000_000));
    assert!(out.ends_with('\n'));
    assert!(!out[..out.len() - 1].contains('\n'), "{out}");
    match serde_json::from_str(&out).unwrap() {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn keys(map: &serde_json::Map<String, Value>) -> BTreeSet<&str> {
    map.keys().map(String::as_str).collect()
}

fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

/// What zombie and exit lines say of the child's command.
const COMMAND_KEYS: &[&str] = &[
    "exe",
    "cmdline",
    "cmdline_truncated",
    "cmdline_bytes",
    "cmdline_inherited",
    "exe_b64",
    "cmdline_b64",
];

const ZOMBIE_KEYS: &[&str] = &[
    "type",
    "ts",
    "pid",
    "comm",
    "ppid",
    "parent_comm",
    "spawn_stack",
    "age_ms",
    "exit_code",
    "signal",
    "signal_name",
    "core_dumped",
    "preexisting",
    "ppid_at_exit",
    "parent_cmdline",
    "parent_state",
    "parent_state_name",
    "parent_wchan",
    "parent_syscall",
    "parent_sigchld",
    "parent_sigchld_handler",
    "parent_sigchld_blocked",
    "parent_threads",
    "cgroup",
    "ns_pid",
    "container_id",
    "container_name",
    "pod_name",
    "pod_namespace",
    "reparented",
    "original_ppid",
    "original_parent_comm",
    "parent_cgroup",
    "parent_ns_pid",
    "parent_container_id",
    "parent_container_name",
    "parent_pod_name",
    "parent_pod_namespace",
    "parent_wait_calls",
    "parent_wait_reaped",
    "parent_wait_empty",
    "parent_wait_errors",
    "parent_last_wait_ms_ago",
    "parent_wait_targets",
    "parent_wait_target_list",
    "diagnosis",
    "cause",
];

#[test]
fn json_ready() {
    let map = json_of(&all_lines(b"x", b"6.8.0")[0]);
    assert_eq!(
        keys(&map),
        set(&[
            "type",
            "ts",
            "version",
            "threshold_ms",
            "kernel",
            "pid",
            "preexisting",
            "wait_tracing",
            "wait_hooks",
            "startup"
        ])
    );
    assert_eq!(map["type"], "ready");
    assert_eq!(map["ts"], "2023-11-14T22:14:14.123Z");
    assert_eq!(map["version"], "0.1.0");
    assert_eq!(map["threshold_ms"], 5000);
    assert_eq!(map["kernel"], "6.8.0");
    assert_eq!(map["pid"], 99);
    assert_eq!(map["preexisting"], 2);
    assert_eq!(map["wait_tracing"], true);
    assert_eq!(map["wait_hooks"], "tracepoints");
    assert_eq!(
        map["startup"],
        serde_json::json!({"btf_ms": 4.25, "load_ms": 60.0, "attach_ms": 0.8, "scan_ms": 1.5})
    );
}

#[test]
fn json_zombie_with_parent() {
    let p = ProcessInfo {
        waits_now: vec![waiting(4201, WaitTarget::Pid(321), Some(321))],
        ..parent(b"python3", vec![b"python3".to_vec(), b"seed.py".to_vec()])
    };
    let z = Zombie {
        parent_waits: Some(WaitStats {
            calls: 4,
            reaped: 1,
            empty: 2,
            errors: 1,
            peeks: 0,
            last_ns: Some(7_500_000_000),
            full: false,
            targets: vec![
                recent(WaitTarget::Pid(123), 7_500_000_000, Some(TargetState::Gone)),
                recent(WaitTarget::Any, 7_000_000_000, None),
                recent(WaitTarget::Pgid(5), 6_000_000_000, None),
                recent(WaitTarget::Pidfd(3), 5_000_000_000, None),
                recent(
                    WaitTarget::Pid(321),
                    4_000_000_000,
                    Some(TargetState::LiveChild),
                ),
            ],
        }),
        ..zombie(b"python3", Some(p))
    };
    let map = json_of(&Line::Zombie(Box::new(z)));
    assert_eq!(keys(&map), set(&[ZOMBIE_KEYS, COMMAND_KEYS].concat()));
    assert_eq!(map["type"], "zombie");
    assert_eq!(map["pid"], 4242);
    assert_eq!(map["comm"], "python3");
    assert_eq!(map["ppid"], 4200);
    assert_eq!(map["parent_comm"], "python3");
    assert_eq!(map["age_ms"], 5000);
    assert_eq!(map["exit_code"], 0);
    assert_eq!(map["signal"], Value::Null);
    assert_eq!(map["core_dumped"], false);
    assert_eq!(map["preexisting"], false);
    assert_eq!(map["ppid_at_exit"], 4200);
    assert_eq!(
        map["parent_cmdline"],
        serde_json::json!(["python3", "seed.py"])
    );
    assert_eq!(map["parent_state"], "S");
    assert_eq!(map["parent_state_name"], "sleeping");
    assert_eq!(map["parent_wchan"], "hrtimer_nanosleep");
    assert_eq!(map["parent_syscall"], "clock_nanosleep");
    assert_eq!(map["parent_sigchld"], "default");
    assert_eq!(map["parent_sigchld_handler"], "default");
    assert_eq!(map["parent_sigchld_blocked"], false);
    // The fixture's diagnosis, by its code and in a sentence.
    assert_eq!(map["cause"], "never_waited");
    assert!(
        map["diagnosis"]
            .as_str()
            .is_some_and(|d| d.starts_with("parent python3 has not called wait()")),
        "{map:?}"
    );
    assert_eq!(map["parent_threads"], 1);
    assert_eq!(map["parent_wait_calls"], 4);
    assert_eq!(map["parent_wait_reaped"], 1);
    assert_eq!(map["parent_wait_empty"], 2);
    assert_eq!(map["parent_wait_errors"], 1);
    assert_eq!(map["parent_last_wait_ms_ago"], 2500);
    // What it waits for now first, then what it waited for most
    // recently; each target once.
    assert_eq!(
        map["parent_wait_targets"],
        serde_json::json!(["pid 321", "pid 123", "any", "pgid 5", "pidfd 3"])
    );
    let list = map["parent_wait_target_list"].as_array().unwrap();
    assert_eq!(list.len(), 6);
    assert_eq!(
        list[0],
        serde_json::json!({"kind": "pid", "id": 321, "in_progress": true, "ms_ago": 0,
            "tid": 4201, "syscall": "wait4", "blocking": true, "pid": 321,
            "state": "live_child"})
    );
    assert_eq!(
        list[1],
        serde_json::json!({"kind": "pid", "id": 123, "in_progress": false, "ms_ago": 2500,
            "tid": null, "syscall": null, "blocking": null, "pid": 123, "state": "gone"})
    );
    assert_eq!(list[2]["kind"], "any");
    assert_eq!(list[2]["id"], Value::Null);
    assert_eq!(list[2]["ms_ago"], 3000);
    assert_eq!(
        (&list[3]["kind"], &list[3]["id"]),
        (&"pgid".into(), &5.into())
    );
    assert_eq!(list[4]["kind"], "pidfd");
    assert_eq!(list[4]["pid"], Value::Null);
    assert_eq!(list[5]["state"], "live_child");
    assert!(map["diagnosis"].is_string());
}

#[test]
fn json_zombie_preexisting_killed_parent_gone() {
    let z = Zombie {
        status: None,
        age_ns: None,
        preexisting: true,
        ppid_at_exit: None,
        original_parent: None,
        ..zombie(b"x", None)
    };
    let map = json_of(&Line::Zombie(Box::new(z)));
    assert_eq!(keys(&map), set(&[ZOMBIE_KEYS, COMMAND_KEYS].concat()));
    for key in ["age_ms", "exit_code", "signal", "ppid_at_exit"] {
        assert_eq!(map[key], Value::Null, "{key}");
    }
    for key in ZOMBIE_KEYS.iter().filter(|k| k.starts_with("parent_")) {
        assert_eq!(map[*key], Value::Null, "{key}");
    }
    assert_eq!(map["preexisting"], true);
    assert_eq!(map["core_dumped"], false);

    let killed = Zombie {
        status: Some(ExitStatus::Killed {
            signal: 11,
            core_dumped: true,
        }),
        ..zombie(b"x", None)
    };
    let map = json_of(&Line::Zombie(Box::new(killed)));
    assert_eq!(map["exit_code"], Value::Null);
    assert_eq!(map["signal"], 11);
    assert_eq!(map["core_dumped"], true);
}

#[test]
fn json_zombie_no_clock_no_last_wait() {
    let z = Zombie {
        parent_waits: Some(WaitStats {
            calls: 1,
            last_ns: Some(1),
            ..WaitStats::default()
        }),
        ..zombie(b"x", Some(parent(b"p", vec![])))
    };
    let out = Encoder::new(Format::Json).encode_at(&Line::Zombie(Box::new(z)), None);
    let map: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(map["parent_last_wait_ms_ago"], Value::Null);
    assert_eq!(map["parent_cmdline"], serde_json::json!([]));
}

#[test]
fn json_reap() {
    let lines = all_lines(b"x", b"y");
    let map = json_of(&lines[3]);
    assert_eq!(
        keys(&map),
        set(&[
            "type",
            "ts",
            "pid",
            "comm",
            "reaper_pid",
            "reaper_comm",
            "reaper",
            "zombie_ms",
            "reported",
            "preexisting"
        ])
    );
    assert_eq!(map["type"], "reap");
    assert_eq!(map["reaper_pid"], 4200);
    assert_eq!(map["reaper_comm"], "x");
    assert_eq!(map["reaper"], "parent");
    assert_eq!(map["zombie_ms"], 5200);
    assert_eq!(map["reported"], true);
    assert_eq!(map["preexisting"], false);

    let unknown = Line::Reaped {
        ts: ts(),
        reaped: Reaped {
            ts_ns: None,
            pid: 1,
            comm: Comm::new(b"x"),
            reaper_pid: None,
            reaper_comm: None,
            reaper_kind: ReaperKind::Unknown,
            zombie_ns: None,
            was_reported: false,
            preexisting: true,
        },
    };
    let map = json_of(&unknown);
    assert_eq!(map["reaper_pid"], Value::Null);
    assert_eq!(map["reaper_comm"], Value::Null);
    assert_eq!(map["zombie_ms"], Value::Null);
    assert_eq!(map["reaper"], "unknown");
}

#[test]
fn json_exit_lost_summary() {
    let lines = all_lines(b"x", b"y");
    let exit = json_of(&lines[4]);
    assert_eq!(
        keys(&exit),
        set(&[
            "type",
            "ts",
            "pid",
            "tid",
            "ppid",
            "comm",
            "parent_comm",
            "exit_code",
            "signal",
            "signal_name",
            "core_dumped",
            "auto_reap",
        ])
        .union(&set(COMMAND_KEYS))
        .copied()
        .collect()
    );
    assert_eq!(exit["type"], "exit");
    assert_eq!(exit["tid"], 4243);
    assert_eq!(exit["exit_code"], Value::Null);
    assert_eq!(exit["signal"], 9);
    assert_eq!(exit["signal_name"], "SIGKILL");
    assert_eq!(exit["auto_reap"], false);

    let lost = json_of(&lines[5]);
    assert_eq!(keys(&lost), set(&["type", "ts", "count", "total"]));
    assert_eq!(lost["type"], "lost");
    assert_eq!(
        (lost["count"].as_u64(), lost["total"].as_u64()),
        (Some(3), Some(10))
    );

    let summary = json_of(&lines[6]);
    assert_eq!(
        keys(&summary),
        set(&[
            "type",
            "ts",
            "duration_ms",
            "exits",
            "reaps",
            "zombies",
            "preexisting",
            "lost",
            "outstanding",
            "final",
            "parents",
            "reap_latency",
            "reap_latency_by_comm"
        ])
    );
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["duration_ms"], 62_000);
    assert_eq!(
        summary["outstanding"],
        serde_json::json!([
            {"ppid": 4200, "parent_comm": "x", "zombies": [4242, 4243], "oldest_ms": 5000}
        ])
    );
}

#[test]
fn json_hostile_strings_stay_one_line_and_exact() {
    let long = vec![b'a'; 4096];
    for bad in HOSTILE.iter().copied().chain([&long[..]]) {
        for line in all_lines(bad, bad) {
            let map = json_of(&line);
            if let Some(comm) = map.get("comm") {
                assert_eq!(comm, &Value::from(Comm::new(bad).to_string_lossy()));
            }
            if let Some(Value::Array(args)) = map.get("parent_cmdline") {
                assert_eq!(args[1], Value::from(String::from_utf8_lossy(bad)));
            }
        }
    }
}

/// humantime formats 1970 to 9999 and panics outside it: a clock that
/// far off is clamped. (Past 9999 was found by the `report_line` fuzz
/// target: the formatter failed and `to_string` panicked.)
#[test]
fn json_ts_outside_1970_to_9999_is_clamped() {
    for (ts, json, text) in [
        (
            UNIX_EPOCH - Duration::from_secs(5),
            "1970-01-01T00:00:00.000Z",
            "00:00:00.000 LOST",
        ),
        (
            UNIX_EPOCH + Duration::from_secs(300_000_000_000),
            "9999-12-31T23:59:59.999Z",
            "23:59:59.999 LOST",
        ),
    ] {
        let line = Line::Lost(Lost {
            ts,
            count: 1,
            total: 1,
        });
        assert_eq!(json_of(&line)["ts"], json);
        let out = Encoder::new(Format::Text).encode(&line);
        assert!(out.starts_with(text), "{out}");
    }
}

fn assert_safe_text(out: &str) {
    assert!(out.ends_with('\n'), "{out:?}");
    for c in out[..out.len() - 1].chars() {
        assert!(
            c != '\n' && !c.is_control() && !is_invisible_format(c),
            "{c:?} in {out:?}"
        );
    }
}

#[test]
fn text_hostile_inputs_are_escaped() {
    let long = [b"\x1b[2J".repeat(1024), b"\n".repeat(100)].concat();
    for bad in HOSTILE.iter().copied().chain([&long[..]]) {
        for line in all_lines(bad, bad) {
            let out = Encoder::new(Format::Text).encode_at(&line, Some(10_000_000_000));
            if matches!(line, Line::Summary(_) | Line::Snapshot(_)) {
                for part in out.split_inclusive('\n') {
                    let part = if part.ends_with('\n') {
                        part.to_owned()
                    } else {
                        format!("{part}\n")
                    };
                    assert_safe_text(&part);
                }
            } else {
                assert_safe_text(&out);
            }
        }
    }
}

#[test]
fn text_lines() {
    let text = |line: &Line| Encoder::new(Format::Text).encode_at(line, Some(10_000_000_000));
    let lines = all_lines(b"python3", b"seed.py");
    assert_eq!(
        text(&lines[0]),
        "22:14:14.123 READY   zombie-trace 0.1.0 pid=99 kernel=seed.py threshold=5.0s \
         preexisting=2 wait-tracing=on wait-hooks=tracepoints\n"
    );
    assert_eq!(
        text(&lines[1]),
        "22:14:14.123 ZOMBIE  pid=4242 comm=python3 exit=0 age=5.0s | parent 4200 python3 \
         cmd=[python3 seed.py] state=S(sleeping) in=hrtimer_nanosleep \
         syscall=clock_nanosleep sigchld=default threads=1 waits=0 | parent python3 has \
         not called wait() since tracing began: it must reap its children (waitpid, or \
         SIGCHLD set to SIG_IGN)\n"
    );
    assert_eq!(
        text(&lines[2]),
        "22:14:14.123 ZOMBIE  pid=4242 comm=python3 exit=0 age=5.0s | parent 4200 gone | \
         the parent is gone: init or a subreaper adopts the child and should reap it\n"
    );
    assert_eq!(
        text(&lines[3]),
        "22:14:14.123 REAP    pid=4242 comm=python3 reaped-by=4200 python3 (parent) \
         zombie-for=5.2s was-reported\n"
    );
    assert_eq!(
        text(&lines[4]),
        "22:14:14.123 EXIT    pid=4242 tid=4243 comm=python3 killed=SIGKILL | parent 4200 \
         python3\n"
    );
    assert_eq!(
        text(&lines[5]),
        "22:14:14.123 LOST    count=3 total=10: the kernel dropped records, some exits or \
         reaps were not seen\n"
    );
    assert_eq!(
        text(&lines[6]),
        [
            "22:14:14.123 SUMMARY duration=1m02s exits=10 reaps=8 zombies=2 preexisting=0 \
             lost=0 outstanding=2\n",
            INDENT,
            "parent 4200 python3: 2 zombies, oldest 5.0s: 4242 4243\n",
            INDENT,
            "parent 4200 python3: now=2 ever=3 rate=1.50/min oldest=5.0s reaps: n=12 \
             p50=262us p99=16ms max=5.9s cmd=[python3 seed.py]\n",
            INDENT,
            "reap latency: n=12 p50=262us p99=16ms max=5.9s\n",
            INDENT,
            "by reaper: python3 n=12 p50=262us p99=16ms max=5.9s\n",
        ]
        .concat()
    );
}

#[test]
fn text_zombie_details() {
    let mut p = parent(
        b"my app",
        vec![b"sh".to_vec(), b"-c".to_vec(), b"sleep 1".to_vec()],
    );
    p.sigchld = Some(Sigchld {
        ignored: false,
        caught: true,
        blocked: true,
    });
    let z = Zombie {
        status: Some(ExitStatus::Killed {
            signal: 6,
            core_dumped: true,
        }),
        age_ns: None,
        preexisting: true,
        ppid_at_exit: Some(4100),
        original_parent: Some(ParentName {
            pid: 4100,
            comm: Comm::new(b"old sh"),
        }),
        parent_waits: Some(WaitStats {
            calls: 3,
            reaped: 0,
            empty: 3,
            errors: 0,
            peeks: 0,
            last_ns: Some(8_000_000_000),
            full: false,
            targets: vec![
                recent(WaitTarget::Any, 8_000_000_000, None),
                recent(WaitTarget::Pid(7), 6_500_000_000, Some(TargetState::Gone)),
            ],
        }),
        ..zombie(b"w", Some(p))
    };
    let out =
        Encoder::new(Format::Text).encode_at(&Line::Zombie(Box::new(z)), Some(10_000_000_000));
    assert!(
        out.contains(
            "killed=SIGABRT (core) age=? preexisting reparented-from=4100 \
             original-parent=\"old sh\" | parent 4200 \"my app\" cmd=[sh -c \"sleep 1\"]"
        ),
        "{out}"
    );
    assert!(out.contains("sigchld=caught+blocked"), "{out}");
    assert!(
        out.contains(
            "waits=3 reaped=0 empty=3 errors=0 last-wait=2.0s-ago \
             targets=any(2.0s-ago),pid:7(3.5s-ago,gone)"
        ),
        "{out}"
    );
    let other = Encoder::new(Format::Text).encode(&Line::Exited(Exited {
        command: None,
        ts: ts(),
        pid: 5,
        tid: 5,
        ppid: 1,
        comm: Comm::new(b"x"),
        parent_comm: Comm::new(b"init"),
        status: ExitStatus::Killed {
            signal: 63,
            core_dumped: false,
        },
        auto_reap: true,
    }));
    assert!(
        other.ends_with(
            "EXIT    pid=5 comm=x signal=63 | parent 1 init auto-reap (parent ignores SIGCHLD)\n"
        ),
        "{other}"
    );
}

#[test]
fn escape() {
    assert_eq!(escape_text(b""), "");
    assert_eq!(escape_text(b"python3"), "python3");
    assert_eq!(escape_text(b"\x1b[31mred"), "\\e[31mred");
    assert_eq!(escape_text(b"a\nb\tc\rd"), "a\\nb\\tc\\rd");
    assert_eq!(escape_text(b"\0\x01\x7f"), "\\x00\\x01\\x7f");
    assert_eq!(escape_text(b"\xff\xc3("), "\\xff\\xc3(");
    assert_eq!(escape_text(b"\xc2\x9b2J"), "\\u{9b}2J");
    assert_eq!(
        escape_text("\u{202e}gpj.exe".as_bytes()),
        "\\u{202e}gpj.exe"
    );
    assert_eq!(
        escape_text("caf\u{e9} \u{1f9df}".as_bytes()),
        "caf\u{e9} \u{1f9df}"
    );
    assert_eq!(escape_text(b"a\\nb"), "a\\\\nb");
    assert_eq!(escape_text(b"0123456789abcdef"), "0123456789abcdef");
    let all: Vec<u8> = (0..=255).collect();
    let escaped = escape_text(&all);
    assert!(escaped.chars().all(|c| !c.is_control()), "{escaped}");
    assert!(escaped.is_ascii());
}

#[test]
fn words_and_cmdlines() {
    assert_eq!(word(b"plain"), "plain");
    assert_eq!(word(b""), "\"\"");
    assert_eq!(word(b"a b"), "\"a b\"");
    assert_eq!(word(b"say \"hi\""), "\"say \\\"hi\\\"\"");
    assert_eq!(word(b"it's"), "\"it's\"");
    assert_eq!(word(b"a|b"), "\"a|b\"");
    assert_eq!(word(b"x\ny"), "x\\ny");
    assert_eq!(
        cmdline_text(&[b"python3".to_vec(), b"".to_vec(), b"a b".to_vec()]),
        "python3 \"\" \"a b\""
    );
    let long = cmdline_text(&[vec![b'a'; 4096]]);
    assert_eq!(long.len(), CMDLINE_MAX_CHARS + 3);
    assert!(long.ends_with("a..."));
    let escapes = cmdline_text(&[vec![0x1b; 4096]]);
    assert_eq!(escapes.chars().count(), CMDLINE_MAX_CHARS + 3);
    assert!(escapes.starts_with("\\e\\e"));
}

#[test]
fn durations() {
    assert_eq!(human_ms(0), "0ms");
    assert_eq!(human_ms(850), "850ms");
    assert_eq!(human_ms(5000), "5.0s");
    assert_eq!(human_ms(59_999), "59.9s");
    assert_eq!(human_ms(123_000), "2m03s");
    assert_eq!(human_ms(3_720_000), "1h02m");
    assert_eq!(human_ms(2 * 86_400_000 + 3_600_000), "2d01h");
    assert!(!human_ms(u64::MAX).is_empty());
}

#[test]
fn text_timestamp() {
    assert_eq!(text_ts(ts()), "22:14:14.123");
    assert_eq!(text_ts(UNIX_EPOCH), "00:00:00.000");
}

#[test]
fn summary_caps_pids() {
    let s = Summary {
        ts: ts(),
        last: false,
        duration_ns: 0,
        exits: 0,
        reaps: 0,
        zombies: 25,
        preexisting: 0,
        lost: 0,
        outstanding: vec![ParentGroup {
            by_command: Vec::new(),
            ppid: 7,
            parent_comm: b"p".to_vec(),
            zombies: (100..125).collect(),
            oldest_ns: None,
            preexisting: false,
        }],
        parents: Vec::new(),
        reap_latency: Latency::default(),
        reap_latency_by_comm: Vec::new(),
    };
    let out = Encoder::new(Format::Text).encode(&Line::Summary(s.clone()));
    assert!(out.ends_with("parent 7 p: 25 zombies: 100 101 102 103 104 105 106 107 108 109 110 111 112 113 114 115 116 117 118 119 (+5 more)\n"), "{out}");
    let map = json_of(&Line::Summary(s));
    assert_eq!(
        map["outstanding"][0]["zombies"].as_array().unwrap().len(),
        25
    );
    assert_eq!(map["outstanding"][0]["oldest_ms"], Value::Null);
}

const SEC: u64 = 1_000_000_000;
/// Reports are made at 100 s (boot time); tracing began at 10 s.
const NOW: u64 = 100 * SEC;
const SINCE: u64 = 10 * SEC;

/// The diagnosis of child 4242 of `p`, dead for `age` (unknown: `None`).
fn diagnosis(p: &ProcessInfo, waits: Option<WaitStats>, age: Option<u64>) -> String {
    let z = Zombie {
        age_ns: age,
        parent_waits: waits,
        ..zombie(b"x", Some(p.clone()))
    };
    diagnose(&z, NOW, SINCE)
}

#[test]
fn diagnoses_of_the_parent_itself() {
    let p = parent(b"python3", vec![]);
    let none = Some(WaitStats::default());
    let d = |p: &ProcessInfo| diagnosis(p, none.clone(), Some(5 * SEC));
    assert_eq!(
        d(&p),
        "parent python3 has not called wait() since tracing began: it must reap its \
         children (waitpid, or SIGCHLD set to SIG_IGN)"
    );
    let orphan = Zombie {
        parent: None,
        ..zombie(b"x", None)
    };
    assert!(diagnose(&orphan, NOW, SINCE).starts_with("the parent is gone"));
    let with = |f: fn(&mut ProcessInfo)| {
        let mut q = p.clone();
        f(&mut q);
        d(&q)
    };
    assert!(with(|q| q.pid = 1).starts_with("adopted by init (pid 1, python3)"));
    assert!(with(|q| q.state = 'T').contains("stopped (SIGSTOP/ptrace)"));
    assert!(with(|q| q.state = 't').contains("tracer"));
    assert!(
        with(|q| {
            q.state = 'Z';
            q.threads = 3;
        })
        .contains("2 remaining threads")
    );
    let text = with(|q| {
        q.sigchld = Some(Sigchld {
            ignored: false,
            caught: true,
            blocked: true,
        });
    });
    assert!(
        text.contains("catches SIGCHLD") && text.ends_with("SIGCHLD is blocked"),
        "{text}"
    );
    assert!(with(|q| q.sigchld.as_mut().unwrap().ignored = true).contains("ignores SIGCHLD"));
    // Not traced (`ps`, or no tracefs): no claim about wait calls.
    let untraced = diagnosis(&p, None, None);
    assert!(untraced.contains("not traced"), "{untraced}");

    let hostile = parent(b"\x1b]0;pwned\x07\n", vec![]);
    let mut z = zombie(b"x", Some(hostile));
    z.diagnosis = diagnosed(&z, NOW, SINCE);
    assert_safe_text(&Encoder::new(Format::Text).encode(&Line::Zombie(Box::new(z))));
}

/// What the parent's threads are blocked in now says why, whatever the
/// tracing: this child waits for the calls in progress to return.
#[test]
fn diagnoses_of_wait_calls_in_progress() {
    let p = parent(b"python3", vec![]);
    let blocked_in = |calls: Vec<WaitNow>, waits: Option<WaitStats>| {
        let q = ProcessInfo {
            waits_now: calls,
            ..p.clone()
        };
        diagnosis(&q, waits, Some(5 * SEC))
    };
    // Stale targets of earlier calls do not matter: the call now does.
    let stale = waits(
        21,
        NOW - 3 * SEC,
        (100..108)
            .map(|pid| recent(WaitTarget::Pid(pid), NOW - 3 * SEC, Some(TargetState::Gone)))
            .collect(),
    );
    let one = vec![waiting(4200, WaitTarget::Pid(77), Some(77))];
    assert_eq!(
        blocked_in(one.clone(), Some(stale.clone())),
        "parent python3 is blocked in wait4 for pid 77, a live child; this one will wait \
         until 77 exits"
    );
    assert_eq!(blocked_in(one.clone(), None), blocked_in(one, Some(stale)));
    let waitid = WaitNow {
        syscall: WaitSyscall::Waitid,
        ..waiting(4201, WaitTarget::Pid(78), Some(78))
    };
    assert_eq!(
        blocked_in(
            vec![waiting(4200, WaitTarget::Pid(77), Some(77)), waitid],
            None
        ),
        "parent python3 is blocked in wait4 for pid 77, a live child (thread 4200), and \
         in waitid for pid 78, a live child (thread 4201); this one will wait until one of \
         them returns"
    );
    // A pidfd's pid, read from its fdinfo.
    assert_eq!(
        blocked_in(vec![waiting(4200, WaitTarget::Pidfd(5), Some(90))], None),
        "parent python3 is blocked in wait4 for pidfd 5 (pid 90), a live child; this one \
         will wait until 90 exits"
    );
    assert!(
        blocked_in(vec![waiting(4200, WaitTarget::Pgid(9), None)], None)
            .contains("for process group 9; this child may be in another group")
    );
    // A call that could collect this child yet blocks: its options.
    for call in [
        waiting(4200, WaitTarget::Any, None),
        waiting(4200, WaitTarget::Pid(4242), Some(4242)),
        waiting(4200, WaitTarget::Pidfd(3), Some(4242)),
    ] {
        let text = blocked_in(vec![call], None);
        assert!(
            text.starts_with("parent python3 is blocked in wait4() yet has not collected"),
            "{text}"
        );
    }
    // A WNOHANG call caught in flight blocks nothing.
    let polling = WaitNow {
        options: WNOHANG,
        ..waiting(4200, WaitTarget::Pid(77), Some(77))
    };
    assert!(blocked_in(vec![polling], None).contains("not traced"));
    // In a pid namespace, the parent names this child by its pid there.
    let contained = ProcessInfo {
        placement: Placement {
            ns_pid: Some(12),
            ..Placement::default()
        },
        waits_now: vec![waiting(4200, WaitTarget::Pid(7), None)],
        ..p.clone()
    };
    let z = Zombie {
        placement: Placement {
            ns_pid: Some(7),
            ..Placement::default()
        },
        ..zombie(b"x", Some(contained))
    };
    assert!(diagnose(&z, NOW, SINCE).contains("blocked in wait4() yet"));
}

/// Finished calls: what was asked for since the child died, when that
/// is known, and only what is known when it is not.
#[test]
fn diagnoses_of_wait_calls_made() {
    let p = parent(b"python3", vec![]);
    let exited = NOW - 5 * SEC;
    let d = |w: WaitStats, age| diagnosis(&p, Some(w), age);
    // Every call came before this child died.
    let earlier = waits(3, exited - 2_500_000_000, vec![]);
    assert_eq!(
        d(
            WaitStats {
                empty: 3,
                ..earlier.clone()
            },
            Some(5 * SEC)
        ),
        "parent python3 has not called wait() since this child exited (its last of 3 wait \
         calls was 2.5s before): it must reap its children (waitpid, or SIGCHLD set to \
         SIG_IGN)"
    );
    let catcher = ProcessInfo {
        sigchld: Some(Sigchld {
            ignored: false,
            caught: true,
            blocked: false,
        }),
        ..p.clone()
    };
    assert!(
        diagnosis(&catcher, Some(earlier), Some(5 * SEC)).contains("its SIGCHLD handler must reap")
    );
    // Since it died, only for other pids (the first ever no longer count).
    let others = waits(
        30,
        NOW - SEC,
        vec![
            recent(
                WaitTarget::Pid(123),
                NOW - SEC,
                Some(TargetState::LiveChild),
            ),
            recent(WaitTarget::Pid(124), NOW - 2 * SEC, Some(TargetState::Gone)),
            recent(WaitTarget::Any, exited - SEC, None),
        ],
    );
    assert_eq!(
        d(others.clone(), Some(5 * SEC)),
        "since this child exited, parent python3 has waited only for pid 123, pid 124 (no \
         longer exists) (last 1.0s ago), not for this child"
    );
    // Before tracing began (found at start): since tracing began.
    let z = Zombie {
        age_ns: None,
        preexisting: true,
        parent_waits: Some(waits(
            2,
            NOW - SEC,
            vec![recent(WaitTarget::Pid(123), NOW - SEC, None)],
        )),
        ..zombie(b"x", Some(p.clone()))
    };
    assert!(
        diagnose(&z, NOW, SINCE).starts_with(
            "since tracing began (this child was already a zombie), parent python3 has \
             waited only for pid 123"
        ),
        "{}",
        diagnose(&z, NOW, SINCE)
    );
    // Calls made between attaching and the start of tracing proper.
    let z = Zombie {
        age_ns: None,
        preexisting: true,
        parent_waits: Some(waits(1, SINCE - 5_000_000, vec![])),
        ..zombie(b"x", Some(p.clone()))
    };
    assert!(
        diagnose(&z, NOW, SINCE).starts_with(
            "parent python3 has not called wait() since tracing began (this child was \
             already a zombie) (its last of 1 wait calls was 5ms before)"
        ),
        "{}",
        diagnose(&z, NOW, SINCE)
    );
    // Unknown exit time (its record was lost): no "since it exited".
    let unknown = d(others.clone(), None);
    assert_eq!(
        unknown,
        "parent python3 called wait() 30 times but has not collected this child (when this \
         child exited is unknown: its exit was not seen)"
    );
    let lately = waits(
        5,
        NOW - SEC,
        vec![recent(
            WaitTarget::Pid(123),
            NOW - SEC,
            Some(TargetState::LiveChild),
        )],
    );
    assert_eq!(
        d(lately, None),
        "parent python3 has waited only for pid 123 since tracing began (last 1.0s ago), not \
         for this child (when this child exited is unknown: its exit was not seen)"
    );
    // Eight distinct pids since it died: others may have been pushed
    // out, so no "only".
    let many = WaitStats {
        full: true,
        ..waits(
            40,
            NOW - SEC,
            (0..8)
                .map(|i| recent(WaitTarget::Pid(200 + i), NOW - SEC - i as u64, None))
                .collect(),
        )
    };
    assert!(
        d(many, Some(5 * SEC)).starts_with(
            "parent python3's most recent wait calls (last 1.0s ago) were for pid 200"
        )
    );
    // A group may hold this child: no claim that it was left out.
    let group = waits(
        2,
        NOW - SEC,
        vec![recent(WaitTarget::Pgid(5), NOW - SEC, None)],
    );
    assert!(d(group, Some(5 * SEC)).ends_with(
        "only for process group 5 (last 1.0s ago), never for any child: this one may \
             be in none of them"
    ));
    // Calls for any child since it died: what they achieved.
    let any = |f: fn(&mut WaitStats)| {
        let mut w = waits(2, NOW - SEC, vec![recent(WaitTarget::Any, NOW - SEC, None)]);
        f(&mut w);
        d(w, Some(5 * SEC))
    };
    assert!(any(|w| w.reaped = 1).contains("reaps some children (1 so far)"));
    assert!(any(|w| w.empty = 2).contains("polls with WNOHANG (2 empty polls, the last 1.0s ago)"));
    assert!(any(|w| w.errors = 2).contains("fail (2 errors"));
    assert!(any(|w| w.peeks = 2).contains("WNOWAIT"));
    assert!(any(|_| ()).contains("called wait() 2 times"));
    // This child's own pid asked for: no "only for others".
    let own = waits(
        1,
        NOW - SEC,
        vec![recent(WaitTarget::Pid(4242), NOW - SEC, None)],
    );
    assert!(!d(own, Some(5 * SEC)).contains("only"));
}

#[test]
fn signal_names() {
    assert_eq!(signal_name(9), Some("SIGKILL"));
    assert_eq!(signal_name(libc::SIGTERM as u8), Some("SIGTERM"));
    assert_eq!(signal_name(0), None);
    assert_eq!(signal_name(200), None);
}

/// A child's command: whatever bytes its argv holds, one escaped line in
/// text, the exact bytes in JSON (base64 where they are not UTF-8).
#[test]
fn hostile_commands_stay_one_line_and_exact_in_json() {
    let mut argv = b"evil\n\x1b[2J\0\xff\xfe tail\0".to_vec();
    argv.extend_from_slice(&[b'a'; 200]);
    // 100 KB of arguments, of which the kernel kept the first bytes.
    let command = Command::new(b"/tmp/\x07bin\xff", &argv, 100 * 1024);
    let args: Vec<&[u8]> = command.args().collect();
    assert_eq!(args.len(), 3);
    assert_eq!(args[0], b"evil\n\x1b[2J");
    assert!(command.truncated);
    let z = Zombie {
        command: Some(Arc::new(command.clone())),
        ..zombie(b"evil", None)
    };
    let line = Line::Zombie(Box::new(z));
    let text = Encoder::new(Format::Text).encode(&line);
    assert_eq!(text.matches('\n').count(), 1, "{text:?}");
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{text:?}"
    );
    assert!(text.contains(" cmd=["), "{text:?}");
    let map = json_of(&line);
    assert_eq!(map["cmdline"][0], "evil\n\u{1b}[2J");
    assert_eq!(map["cmdline_truncated"], true);
    assert_eq!(map["cmdline_bytes"], 100 * 1024);
    assert_eq!(map["cmdline_inherited"], false);
    let b64 = |v: &Value| BASE64.decode(v.as_str().unwrap()).unwrap();
    assert_eq!(b64(&map["exe_b64"]), b"/tmp/\x07bin\xff");
    let exact: Vec<Vec<u8>> = map["cmdline_b64"]
        .as_array()
        .unwrap()
        .iter()
        .map(b64)
        .collect();
    assert_eq!(exact, args);

    // Text and nothing lossy: no base64.
    let plain = Command::new(b"/usr/bin/git", b"git\0fetch\0\0", 11);
    assert_eq!(
        plain.args().collect::<Vec<_>>(),
        [&b"git"[..], b"fetch", b""]
    );
    assert!(!plain.truncated);
    assert_eq!(plain.name(), b"git");
    let z = Zombie {
        command: Some(Arc::new(plain)),
        ..zombie(b"git", None)
    };
    let map = json_of(&Line::Zombie(Box::new(z)));
    assert_eq!(map["exe"], "/usr/bin/git");
    assert_eq!(map["cmdline"], serde_json::json!(["git", "fetch", ""]));
    assert_eq!(map["exe_b64"], Value::Null);
    assert_eq!(map["cmdline_b64"], Value::Null);
    // None kept: no arguments at all.
    assert_eq!(Command::new(b"", b"", 0).args().count(), 0);
}

/// `--stacks`: text shows the first frames past libc's fork, escaped;
/// JSON has every frame, addresses in hex.
#[test]
fn spawn_stacks_show_the_parents_own_frames() {
    let frame = |symbol: &str, line: Option<u32>, module: &str| Frame {
        address: 0x7f00_0000_1234,
        symbol: Some(symbol.to_owned()),
        offset: Some(0x23),
        file: line.map(|_| "leak.c".to_owned()),
        line,
        module: Some(module.to_owned()),
    };
    let libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
    let z = Zombie {
        spawn_stack: Some(vec![
            frame("__GI__Fork", None, libc),
            frame("__libc_fork", None, libc),
            frame("spawn_leaky", Some(6), "/tmp/leak"),
            frame("main\x1b[2J", Some(17), "/tmp/leak"),
        ]),
        ..zombie(b"leak", None)
    };
    let line = Line::Zombie(Box::new(z));
    let text = Encoder::new(Format::Text).encode(&line);
    assert!(
        text.contains(" spawned-at=[spawn_leaky+0x23 (leak.c:6) < main\\e[2J+0x23 (leak.c:17)]"),
        "{text}"
    );
    assert!(!text.contains('\x1b'), "{text:?}");
    let map = json_of(&line);
    let frames = map["spawn_stack"].as_array().unwrap();
    assert_eq!(frames.len(), 4);
    assert_eq!(
        frames[2],
        serde_json::json!({"address": "0x7f0000001234", "symbol": "spawn_leaky", "offset": "0x23",
            "file": "leak.c", "line": 6, "module": "/tmp/leak"})
    );
    assert_eq!(frames[3]["symbol"], "main\u{1b}[2J");
}
