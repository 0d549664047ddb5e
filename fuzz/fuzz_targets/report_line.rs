//! Output lines about processes with hostile names and arguments, as
//! `/proc` and the kernel hand them over (control bytes, terminal escapes,
//! newlines, invalid UTF-8, direction overrides). Text: one line (or as
//! many as with plain names, for a summary), and no character that a
//! terminal would act on. JSON: one line, valid, and every name exact (as
//! lossy UTF-8 where it is not text).

#![no_main]

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};

use libfuzzer_sys::{
    arbitrary::{Result, Unstructured},
    fuzz_target,
};
use serde_json::{Value, json};
use zombie_trace::{
    diagnosis::{Facts, diagnose},
    model::{
        diagnosis::{Cause, Diagnosis},
        event::{Comm, Command, ExitStatus, ParentName, WaitSyscall, WaitTarget},
        process::{
            ContainerNames, Placement, ProcessInfo, RecentWait, Sigchld, TargetState, WaitNow,
            WaitStats,
        },
        report::{
            CommandRow, Exited, Frame, Latency, Line, ParentGroup, ParentRow, Reaped, ReaperKind,
            Snapshot, Summary, Zombie,
        },
    },
    output::{
        Encoder, Format,
        flood::{Flood, Kind},
    },
    proc::parse::{container_id, parse_cgroup, parse_syscall, parse_wchan, split_cmdline},
};

fuzz_target!(|bytes: &[u8]| {
    let _ = run(&mut Unstructured::new(bytes));
});

/// A line's command fields: the exact bytes, as text where they are
/// UTF-8 and in base64 where not.
fn check_command(v: &Value, command: Option<&Command>) {
    let Some(c) = command else {
        assert_eq!(v["cmdline"], Value::Null);
        return;
    };
    let exact = |text: &Value, b64: &Value| -> Vec<u8> {
        match b64.as_str() {
            Some(b64) => BASE64.decode(b64).unwrap(),
            None => text.as_str().unwrap().as_bytes().to_vec(),
        }
    };
    assert_eq!(exact(&v["exe"], &v["exe_b64"]), c.exe);
    let args: Vec<&[u8]> = c.args().collect();
    let texts = v["cmdline"].as_array().unwrap();
    assert_eq!(texts.len(), args.len());
    for (i, arg) in args.iter().enumerate() {
        assert_eq!(exact(&texts[i], &v["cmdline_b64"][i]), *arg);
    }
}

fn run(u: &mut Unstructured) -> Result<()> {
    let ts = SystemTime::UNIX_EPOCH + Duration::from_millis(u.arbitrary()?);
    let boot_now_ns = u.arbitrary()?;
    let comm = Comm::new(field(u, 16)?);
    let parent_comm = field(u, 64)?.to_vec();
    let cmdline = split_cmdline(field(u, 4096)?);
    let cgroup = parse_cgroup(field(u, 512)?);
    let mut waits = WaitStats {
        calls: u.arbitrary()?,
        last_ns: u.arbitrary()?,
        ..WaitStats::default()
    };
    let states = [
        None,
        Some(TargetState::LiveChild),
        Some(TargetState::ZombieChild),
        Some(TargetState::NotAChild),
        Some(TargetState::Gone),
    ];
    for _ in 0..u.int_in_range(0..=3)? {
        if let Some(target) = WaitTarget::from_idtype(u.int_in_range(0..=3)?, u.arbitrary()?) {
            waits.targets.push(RecentWait {
                target,
                last_ns: u.arbitrary()?,
                state: *u.choose(&states)?,
            });
        }
    }
    let mut waits_now = Vec::new();
    for _ in 0..u.int_in_range(0..=2)? {
        if let Some(target) = WaitTarget::from_idtype(u.int_in_range(0..=3)?, u.arbitrary()?) {
            waits_now.push(WaitNow {
                tid: u.arbitrary()?,
                syscall: *u.choose(&[WaitSyscall::Wait4, WaitSyscall::Waitid])?,
                target,
                options: u.arbitrary()?,
                child: u.arbitrary()?,
                state: *u.choose(&states)?,
            });
        }
    }
    let parent = ProcessInfo {
        pid: u.arbitrary()?,
        comm: parent_comm.clone(),
        cmdline: cmdline.clone(),
        state: u.arbitrary()?,
        wchan: parse_wchan(field(u, 64)?),
        syscall: parse_syscall(field(u, 64)?),
        waits_now,
        sigchld: Some(Sigchld {
            ignored: u.arbitrary()?,
            caught: u.arbitrary()?,
            blocked: u.arbitrary()?,
        }),
        ppid: u.arbitrary()?,
        threads: u.arbitrary()?,
        start_ticks: u.arbitrary()?,
        placement: Placement {
            container_id: cgroup.as_deref().and_then(container_id),
            cgroup: cgroup.clone(),
            ns_pid: u.arbitrary()?,
            names: names(u)?,
        },
    };
    // What the kernel kept of the child's exec: any bytes at all.
    let command = if u.arbitrary()? {
        let exe = field(u, 128)?.to_vec();
        let argv = field(u, 256)?;
        Some(Arc::new(Command::new(&exe, argv, u.arbitrary()?)))
    } else {
        None
    };
    let pid = u.arbitrary()?;
    let status = ExitStatus::from_wait_status(u.arbitrary()?);
    let mut zombie = Zombie {
        ts,
        pid,
        comm,
        status: Some(status),
        age_ns: u.arbitrary()?,
        preexisting: u.arbitrary()?,
        ppid_at_exit: u.arbitrary()?,
        original_parent: u.arbitrary::<bool>()?.then_some(ParentName {
            pid: u.arbitrary()?,
            comm: Comm::new(field(u, 16)?),
        }),
        ppid: parent.pid,
        diagnosis: Diagnosis {
            cause: Cause::ParentGone,
            sigchld_blocked: false,
            exit_unknown: false,
        },
        parent: Some(parent),
        placement: Placement {
            container_id: cgroup.as_deref().and_then(container_id),
            cgroup,
            ns_pid: u.arbitrary()?,
            names: names(u)?,
        },
        parent_waits: u.arbitrary::<bool>()?.then_some(waits),
        command: command.clone(),
        // Symbol and file names come from the parent's binaries.
        spawn_stack: Some(vec![Frame {
            address: u.arbitrary()?,
            symbol: Some(String::from_utf8_lossy(field(u, 64)?).into_owned()),
            offset: u.arbitrary()?,
            file: Some(String::from_utf8_lossy(field(u, 64)?).into_owned()),
            line: u.arbitrary()?,
            module: Some(String::from_utf8_lossy(field(u, 64)?).into_owned()),
        }]),
    };
    zombie.diagnosis = diagnose(&Facts::of(&zombie), u.arbitrary()?, u.arbitrary()?);
    // A flood's brief lines, and its sums, name the parent too.
    let brief = Encoder::new(Format::Text).encode_brief(&zombie, u.arbitrary()?);
    check_text_line(&brief);
    let flood = Flood {
        kind: *u.choose(&[Kind::Zombies, Kind::Reaps])?,
        pid: u.arbitrary()?,
        comm: parent_comm.clone(),
        count: u.arbitrary()?,
        min_pid: u.arbitrary()?,
        max_pid: u.arbitrary()?,
        oldest_exit_ns: u.arbitrary()?,
        longest_zombie_ns: u.arbitrary()?,
        window_ns: u.arbitrary()?,
    };
    check_text_line(&Encoder::new(Format::Text).encode_flood(&flood, ts, u.arbitrary()?));
    let reaper_comm = Comm::new(field(u, 16)?);
    let reaped = Reaped {
        pid,
        ts_ns: u.arbitrary()?,
        comm,
        reaper_pid: u.arbitrary()?,
        reaper_comm: Some(reaper_comm),
        reaper_kind: *u.choose(&[
            ReaperKind::Parent,
            ReaperKind::Kernel,
            ReaperKind::Init,
            ReaperKind::Subreaper,
            ReaperKind::Unknown,
        ])?,
        zombie_ns: u.arbitrary()?,
        was_reported: true,
        preexisting: false,
    };
    let exited = Exited {
        ts,
        pid,
        tid: u.arbitrary()?,
        ppid: u.arbitrary()?,
        comm,
        parent_comm: Comm::new(&parent_comm),
        status,
        auto_reap: u.arbitrary()?,
        command: command.clone(),
    };

    let lossy = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let args: Vec<String> = cmdline.iter().map(|a| lossy(a)).collect();
    let zombie_line = Line::Zombie(Box::new(zombie));
    check_text(&zombie_line, boot_now_ns);
    let v = check_json(&zombie_line, boot_now_ns);
    assert_eq!(v["comm"], json!(lossy(comm.as_bytes())));
    assert_eq!(v["parent_comm"], json!(lossy(&parent_comm)));
    assert_eq!(v["parent_cmdline"], json!(args));
    check_command(&v, command.as_deref());

    let reaped_line = Line::Reaped { ts, reaped };
    check_text(&reaped_line, boot_now_ns);
    let v = check_json(&reaped_line, boot_now_ns);
    assert_eq!(v["reaper_comm"], json!(lossy(reaper_comm.as_bytes())));

    let exited_line = Line::Exited(exited);
    check_text(&exited_line, boot_now_ns);
    let v = check_json(&exited_line, boot_now_ns);
    assert_eq!(
        v["parent_comm"],
        json!(lossy(Comm::new(&parent_comm).as_bytes()))
    );
    check_command(&v, command.as_deref());

    // The summary and `ps` take several lines: hostile names add none.
    let latency = Latency {
        count: u.arbitrary()?,
        p50_ns: u.arbitrary()?,
        p99_ns: u.arbitrary()?,
        max_ns: u.arbitrary()?,
    };
    let zombies: Vec<u32> = u.arbitrary()?;
    let lines = |comm: &[u8], args: &[Vec<u8>]| {
        let group = ParentGroup {
            ppid: 7,
            parent_comm: comm.to_vec(),
            zombies: zombies.clone(),
            oldest_ns: latency.max_ns,
            preexisting: false,
            by_command: vec![(comm.to_vec(), latency.count)],
        };
        let summary = Line::Summary(Summary {
            ts,
            last: true,
            duration_ns: latency.count,
            exits: latency.count,
            reaps: 0,
            zombies: 1,
            preexisting: 0,
            lost: 0,
            outstanding: vec![group.clone()],
            parents: vec![ParentRow {
                ppid: 7,
                comm: comm.to_vec(),
                cmdline: args.to_vec(),
                zombies_now: 1,
                zombies_ever: latency.count,
                leak_per_min: 1.5,
                oldest_ns: latency.max_ns,
                reaps: latency,
                by_command: vec![CommandRow {
                    command: comm.to_vec(),
                    zombies_now: 1,
                    zombies_ever: latency.count,
                }],
            }],
            reap_latency: latency,
            reap_latency_by_comm: vec![(comm.to_vec(), latency)],
        });
        let snapshot = Line::Snapshot(Snapshot {
            ts,
            zombies: zombies.len(),
            by_parent: vec![group],
            full_detail: true,
        });
        [summary, snapshot]
    };
    let plain = lines(b"x", &[b"x".to_vec()]);
    for (hostile, plain) in lines(&parent_comm, &cmdline).iter().zip(&plain) {
        let text = check_text(hostile, boot_now_ns);
        let plain = Encoder::new(Format::Text).encode_at(plain, boot_now_ns);
        assert_eq!(text.lines().count(), plain.lines().count(), "{text}");
        check_json(hostile, boot_now_ns);
    }
    Ok(())
}

/// Up to `max` bytes of the input, as a file or a name would hold them.
/// Names a runtime's files give: any bytes, as the runtime took them.
fn names(u: &mut Unstructured) -> Result<ContainerNames> {
    let mut name = || -> Result<Option<String>> {
        u.arbitrary::<bool>()?
            .then(|| field(u, 300).map(|b| String::from_utf8_lossy(b).into_owned()))
            .transpose()
    };
    Ok(ContainerNames {
        name: name()?,
        pod_name: name()?,
        pod_namespace: name()?,
    })
}

fn field<'a>(u: &mut Unstructured<'a>, max: usize) -> Result<&'a [u8]> {
    let len = u.int_in_range(0..=max)?;
    u.bytes(len.min(u.len()))
}

/// No character a terminal acts on; a line break only where the encoder
/// puts one (between a summary's lines). Returns the text.
fn check_text(line: &Line, boot_now_ns: Option<u64>) -> String {
    let text = Encoder::new(Format::Text).encode_at(line, boot_now_ns);
    let single = !matches!(line, Line::Summary(_) | Line::Snapshot(_));
    if single {
        check_text_line(&text);
    } else {
        check_chars(text.strip_suffix('\n').expect("a line ends with a newline"));
    }
    text
}

/// One line, with no character a terminal acts on.
fn check_text_line(text: &str) {
    let body = text.strip_suffix('\n').expect("a line ends with a newline");
    assert!(!body.contains('\n'), "{body:?}");
    check_chars(body);
}

fn check_chars(body: &str) {
    for c in body.chars().filter(|&c| c != '\n') {
        // Control characters (C0, DEL, C1), and those that reorder text
        // (Trojan Source) or end a line in some terminals.
        let hidden = matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        );
        assert!(!c.is_control() && !hidden, "{c:?} in {body:?}");
    }
}

fn check_json(line: &Line, boot_now_ns: Option<u64>) -> Value {
    let text = Encoder::new(Format::Json).encode_at(line, boot_now_ns);
    let body = text.strip_suffix('\n').expect("a line ends with a newline");
    assert!(!body.contains('\n'), "{body:?}");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"))
}
