//! JSON lines for scripts: one object per line, with `"type"` and `"ts"`
//! (see README.md, Output contract); names are the real bytes, lossy UTF-8
//! at worst.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use serde::Serialize;

use super::{
    last_wait_ms_ago, lossy, ms, parent_name, sentence::sentence, signal_name, since_epoch,
    status_fields, target_id, target_kind, target_name, target_rows,
};
use crate::{
    model::{
        event::Command,
        process::{TargetState, WaitNow},
        report::{Frame, Latency, Line, ParentGroup, WaitHooks, Zombie},
    },
    proc::parse::state_name,
};

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[expect(
    clippy::large_enum_variant,
    reason = "one value per line, serialized at once and dropped"
)]
enum JsonLine<'a> {
    Ready {
        ts: String,
        version: &'a str,
        threshold_ms: u64,
        kernel: &'a str,
        pid: u32,
        preexisting: usize,
        wait_tracing: bool,
        wait_hooks: Option<&'static str>,
        startup: JsonStartup,
    },
    Zombie {
        ts: String,
        pid: u32,
        comm: String,
        ppid: u32,
        parent_comm: Option<String>,
        #[serde(flatten)]
        command: JsonCommand,
        spawn_stack: Option<Vec<JsonFrame<'a>>>,
        age_ms: Option<u64>,
        exit_code: Option<u8>,
        signal: Option<u8>,
        signal_name: Option<&'static str>,
        core_dumped: bool,
        preexisting: bool,
        ppid_at_exit: Option<u32>,
        parent_cmdline: Option<Vec<String>>,
        parent_state: Option<String>,
        parent_state_name: Option<&'static str>,
        parent_wchan: Option<&'a str>,
        parent_syscall: Option<&'a str>,
        parent_sigchld: Option<String>,
        parent_sigchld_handler: Option<&'static str>,
        parent_sigchld_blocked: Option<bool>,
        parent_threads: Option<u32>,
        cgroup: Option<&'a str>,
        ns_pid: Option<u32>,
        container_id: Option<&'a str>,
        container_name: Option<&'a str>,
        pod_name: Option<&'a str>,
        pod_namespace: Option<&'a str>,
        reparented: Option<bool>,
        original_ppid: Option<u32>,
        original_parent_comm: Option<String>,
        parent_cgroup: Option<&'a str>,
        parent_ns_pid: Option<u32>,
        parent_container_id: Option<&'a str>,
        parent_container_name: Option<&'a str>,
        parent_pod_name: Option<&'a str>,
        parent_pod_namespace: Option<&'a str>,
        parent_wait_calls: Option<u64>,
        parent_wait_reaped: Option<u64>,
        parent_wait_empty: Option<u64>,
        parent_wait_errors: Option<u64>,
        parent_last_wait_ms_ago: Option<u64>,
        parent_wait_targets: Option<Vec<String>>,
        parent_wait_target_list: Option<Vec<JsonWaitTarget>>,
        diagnosis: String,
        cause: &'static str,
    },
    Reap {
        ts: String,
        pid: u32,
        comm: String,
        reaper_pid: Option<u32>,
        reaper_comm: Option<String>,
        reaper: &'static str,
        zombie_ms: Option<u64>,
        reported: bool,
        preexisting: bool,
    },
    Exit {
        ts: String,
        pid: u32,
        tid: u32,
        ppid: u32,
        comm: String,
        parent_comm: String,
        exit_code: Option<u8>,
        signal: Option<u8>,
        signal_name: Option<&'static str>,
        core_dumped: bool,
        auto_reap: bool,
        #[serde(flatten)]
        command: JsonCommand,
    },
    Lost {
        ts: String,
        count: u64,
        total: u64,
    },
    Summary {
        ts: String,
        duration_ms: u64,
        exits: u64,
        reaps: u64,
        zombies: u64,
        preexisting: u64,
        lost: u64,
        outstanding: Vec<JsonGroup<'a>>,
        #[serde(rename = "final")]
        last: bool,
        parents: Vec<JsonParent>,
        reap_latency: JsonLatency,
        reap_latency_by_comm: Vec<JsonCommLatency>,
    },
    #[serde(rename = "ps")]
    Snapshot {
        ts: String,
        zombies: usize,
        by_parent: Vec<JsonGroup<'a>>,
        full_detail: bool,
    },
}

/// One of `parent_wait_target_list`: a wait call in progress now, or a
/// target recent calls asked for.
#[derive(Serialize)]
struct JsonWaitTarget {
    /// `any`, `pid`, `pgid` or `pidfd`.
    kind: &'static str,
    /// The pid, group or descriptor as the caller wrote it (`null` for any).
    id: Option<i32>,
    in_progress: bool,
    /// 0 for a call in progress.
    ms_ago: Option<u64>,
    /// The thread in the call, its syscall and whether it sleeps there (no
    /// `WNOHANG`): calls in progress only.
    tid: Option<u32>,
    syscall: Option<&'static str>,
    blocking: Option<bool>,
    /// The host pid of the child it names, and what that is now, when
    /// known.
    pid: Option<u32>,
    state: Option<&'static str>,
}

/// What a child ran (`null`s when its exec was not seen).
#[derive(Serialize)]
struct JsonCommand {
    exe: Option<String>,
    cmdline: Option<Vec<String>>,
    /// Its argument strings were longer than the bytes kept: the last one
    /// in `cmdline` is cut short.
    cmdline_truncated: Option<bool>,
    /// Bytes of argument strings it had, NULs included.
    cmdline_bytes: Option<u32>,
    /// It never exec'd: this is the program of the parent that forked it.
    cmdline_inherited: Option<bool>,
    /// The exact bytes, base64, where the text above is lossy (they are
    /// not UTF-8).
    exe_b64: Option<String>,
    cmdline_b64: Option<Vec<String>>,
}

fn json_command(c: Option<&Command>) -> JsonCommand {
    let lossless = |bytes: &[u8]| std::str::from_utf8(bytes).is_ok();
    let b64 = |bytes: &[u8]| BASE64.encode(bytes);
    JsonCommand {
        exe: c.map(|c| lossy(&c.exe)),
        cmdline: c.map(|c| c.args().map(lossy).collect()),
        cmdline_truncated: c.map(|c| c.truncated),
        cmdline_bytes: c.map(|c| c.argv_bytes),
        cmdline_inherited: c.map(|c| c.inherited),
        exe_b64: c.filter(|c| !lossless(&c.exe)).map(|c| b64(&c.exe)),
        cmdline_b64: c
            .filter(|c| !c.args().all(lossless))
            .map(|c| c.args().map(b64).collect()),
    }
}

/// A frame of `spawn_stack`, innermost first.
#[derive(Serialize)]
struct JsonFrame<'a> {
    /// Hex, as debuggers and `addr2line` take it.
    address: String,
    symbol: Option<&'a str>,
    /// Into `symbol`, hex.
    offset: Option<String>,
    file: Option<&'a str>,
    line: Option<u32>,
    module: Option<&'a str>,
}

fn json_frame(f: &Frame) -> JsonFrame<'_> {
    JsonFrame {
        address: format!("{:#x}", f.address),
        symbol: f.symbol.as_deref(),
        offset: f.offset.map(|o| format!("{o:#x}")),
        file: f.file.as_deref(),
        line: f.line,
        module: f.module.as_deref(),
    }
}

#[derive(Serialize)]
struct JsonCommandRow {
    command: String,
    zombies_now: u64,
    zombies_ever: u64,
}

#[derive(Serialize)]
struct JsonParent {
    ppid: u32,
    parent_comm: String,
    parent_cmdline: Vec<String>,
    zombies_now: u64,
    zombies_ever: u64,
    leak_per_min: f64,
    oldest_ms: Option<u64>,
    reaps: JsonLatency,
    /// Its zombies by their command's name, most now first.
    by_command: Vec<JsonCommandRow>,
}

/// Latencies in ms with µs precision: reaps are often well under 1 ms.
#[derive(Serialize)]
struct JsonLatency {
    count: u64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    max_ms: Option<f64>,
}

#[derive(Serialize)]
struct JsonCommLatency {
    comm: String,
    #[serde(flatten)]
    latency: JsonLatency,
}

fn json_latency(l: &Latency) -> JsonLatency {
    let ms = |ns: Option<u64>| ns.map(|ns| (ns / 1_000) as f64 / 1_000.0);
    JsonLatency {
        count: l.count,
        p50_ms: ms(l.p50_ns),
        p99_ms: ms(l.p99_ns),
        max_ms: ms(l.max_ns),
    }
}

#[derive(Serialize)]
struct JsonGroup<'a> {
    ppid: u32,
    parent_comm: String,
    zombies: &'a [u32],
    oldest_ms: Option<u64>,
}

fn json_groups(groups: &[ParentGroup]) -> Vec<JsonGroup<'_>> {
    groups
        .iter()
        .map(|g| JsonGroup {
            ppid: g.ppid,
            parent_comm: lossy(&g.parent_comm),
            zombies: &g.zombies,
            oldest_ms: g.oldest_ns.map(ms),
        })
        .collect()
}

fn json_ts(ts: SystemTime) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + since_epoch(ts)).to_string()
}

/// A line with the node it comes from, so that lines of many nodes mix.
#[derive(Serialize)]
struct OnNode<'a> {
    #[serde(flatten)]
    line: JsonLine<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<&'a str>,
}

/// Where start-up went, in milliseconds (to the microsecond).
#[derive(Serialize)]
struct JsonStartup {
    btf_ms: f64,
    load_ms: f64,
    attach_ms: f64,
    scan_ms: f64,
}

fn fractional_ms(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

pub(super) fn line(line: &Line, boot_now_ns: Option<u64>, node: Option<&str>) -> String {
    let value = match line {
        Line::Ready(r) => JsonLine::Ready {
            ts: json_ts(r.ts),
            version: r.version,
            threshold_ms: r.threshold_ms,
            kernel: &r.kernel,
            pid: r.pid,
            preexisting: r.preexisting,
            wait_tracing: r.wait_tracing,
            wait_hooks: r.wait_hooks.map(WaitHooks::name),
            startup: JsonStartup {
                btf_ms: fractional_ms(r.startup.btf),
                load_ms: fractional_ms(r.startup.load),
                attach_ms: fractional_ms(r.startup.attach),
                scan_ms: fractional_ms(r.startup.scan),
            },
        },
        Line::Zombie(z) => json_zombie(z, boot_now_ns),
        Line::Reaped { ts, reaped: r } => JsonLine::Reap {
            ts: json_ts(*ts),
            pid: r.pid,
            comm: r.comm.to_string_lossy(),
            reaper_pid: r.reaper_pid,
            reaper_comm: r.reaper_comm.map(|c| c.to_string_lossy()),
            reaper: r.reaper_kind.name(),
            zombie_ms: r.zombie_ns.map(ms),
            reported: r.was_reported,
            preexisting: r.preexisting,
        },
        Line::Exited(e) => {
            let (exit_code, signal, core_dumped) = status_fields(Some(e.status));
            JsonLine::Exit {
                ts: json_ts(e.ts),
                pid: e.pid,
                tid: e.tid,
                ppid: e.ppid,
                comm: e.comm.to_string_lossy(),
                parent_comm: e.parent_comm.to_string_lossy(),
                exit_code,
                signal,
                signal_name: signal.and_then(signal_name),
                core_dumped,
                auto_reap: e.auto_reap,
                command: json_command(e.command.as_deref()),
            }
        }
        Line::Lost(l) => JsonLine::Lost {
            ts: json_ts(l.ts),
            count: l.count,
            total: l.total,
        },
        Line::Summary(s) => JsonLine::Summary {
            ts: json_ts(s.ts),
            duration_ms: ms(s.duration_ns),
            exits: s.exits,
            reaps: s.reaps,
            zombies: s.zombies,
            preexisting: s.preexisting,
            lost: s.lost,
            outstanding: json_groups(&s.outstanding),
            last: s.last,
            parents: s
                .parents
                .iter()
                .map(|p| JsonParent {
                    ppid: p.ppid,
                    parent_comm: lossy(&p.comm),
                    parent_cmdline: p.cmdline.iter().map(|a| lossy(a)).collect(),
                    zombies_now: p.zombies_now,
                    zombies_ever: p.zombies_ever,
                    // Two decimals are plenty, and keep the line short.
                    leak_per_min: (p.leak_per_min * 100.0).round() / 100.0,
                    oldest_ms: p.oldest_ns.map(ms),
                    reaps: json_latency(&p.reaps),
                    by_command: p
                        .by_command
                        .iter()
                        .map(|r| JsonCommandRow {
                            command: lossy(&r.command),
                            zombies_now: r.zombies_now,
                            zombies_ever: r.zombies_ever,
                        })
                        .collect(),
                })
                .collect(),
            reap_latency: json_latency(&s.reap_latency),
            reap_latency_by_comm: s
                .reap_latency_by_comm
                .iter()
                .map(|(comm, l)| JsonCommLatency {
                    comm: lossy(comm),
                    latency: json_latency(l),
                })
                .collect(),
        },
        Line::Snapshot(s) => JsonLine::Snapshot {
            ts: json_ts(s.ts),
            zombies: s.zombies,
            by_parent: json_groups(&s.by_parent),
            full_detail: s.full_detail,
        },
    };
    // Plain data with string keys: serialization cannot fail.
    serde_json::to_string(&OnNode { line: value, node }).expect("JSON lines serialize")
}

fn json_zombie(z: &Zombie, boot_now_ns: Option<u64>) -> JsonLine<'_> {
    let (exit_code, signal, core_dumped) = status_fields(z.status);
    let p = z.parent.as_ref();
    let waits = p.and(z.parent_waits.as_ref());
    JsonLine::Zombie {
        ts: json_ts(z.ts),
        pid: z.pid,
        comm: z.comm.to_string_lossy(),
        ppid: z.ppid,
        parent_comm: p.map(|p| lossy(&p.comm)),
        command: json_command(z.command.as_deref()),
        spawn_stack: z
            .spawn_stack
            .as_ref()
            .map(|frames| frames.iter().map(json_frame).collect()),
        age_ms: z.age_ns.map(ms),
        exit_code,
        signal,
        signal_name: signal.and_then(signal_name),
        core_dumped,
        preexisting: z.preexisting,
        ppid_at_exit: z.ppid_at_exit,
        parent_cmdline: p.map(|p| p.cmdline.iter().map(|a| lossy(a)).collect()),
        parent_state: p.map(|p| p.state.to_string()),
        parent_state_name: p.map(|p| state_name(p.state)),
        parent_wchan: p.and_then(|p| p.wchan.as_deref()),
        parent_syscall: p.and_then(|p| p.syscall.as_deref()),
        parent_sigchld: p.and_then(|p| p.sigchld).map(|s| s.describe()),
        parent_sigchld_handler: p.and_then(|p| p.sigchld).map(|s| s.handler().name()),
        parent_sigchld_blocked: p.and_then(|p| p.sigchld).map(|s| s.blocked),
        parent_threads: p.map(|p| p.threads),
        cgroup: z.placement.cgroup.as_deref(),
        ns_pid: z.placement.ns_pid,
        container_id: z.placement.container_id.as_deref(),
        container_name: z.placement.names.name.as_deref(),
        pod_name: z.placement.names.pod_name.as_deref(),
        pod_namespace: z.placement.names.pod_namespace.as_deref(),
        // Unknown without the exit: it may have been adopted before.
        reparented: if z.original_parent.is_some() {
            Some(true)
        } else {
            z.ppid_at_exit.map(|_| false)
        },
        original_ppid: z.original_parent.map(|p| p.pid),
        original_parent_comm: z.original_parent.map(|p| p.comm.to_string_lossy()),
        parent_cgroup: p.and_then(|p| p.placement.cgroup.as_deref()),
        parent_ns_pid: p.and_then(|p| p.placement.ns_pid),
        parent_container_id: p.and_then(|p| p.placement.container_id.as_deref()),
        parent_container_name: p.and_then(|p| p.placement.names.name.as_deref()),
        parent_pod_name: p.and_then(|p| p.placement.names.pod_name.as_deref()),
        parent_pod_namespace: p.and_then(|p| p.placement.names.pod_namespace.as_deref()),
        parent_wait_calls: waits.map(|w| w.calls),
        parent_wait_reaped: waits.map(|w| w.reaped),
        parent_wait_empty: waits.map(|w| w.empty),
        parent_wait_errors: waits.map(|w| w.errors),
        parent_last_wait_ms_ago: waits.and_then(|w| last_wait_ms_ago(w, boot_now_ns)),
        parent_wait_targets: p.zip(waits).map(|(p, w)| {
            let mut names: Vec<String> = Vec::new();
            for row in target_rows(p, w) {
                let name = target_name(&row.target);
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            names
        }),
        parent_wait_target_list: p.zip(waits).map(|(p, w)| {
            target_rows(p, w)
                .iter()
                .map(|row| JsonWaitTarget {
                    kind: target_kind(&row.target),
                    id: target_id(&row.target),
                    in_progress: row.now.is_some(),
                    ms_ago: match row.now {
                        Some(_) => Some(0),
                        None => row
                            .last_ns
                            .zip(boot_now_ns)
                            .map(|(last, now)| ms(now.saturating_sub(last))),
                    },
                    tid: row.now.map(|w| w.tid),
                    syscall: row.now.map(|w| w.syscall.name()),
                    blocking: row.now.map(WaitNow::blocks),
                    pid: row.pid,
                    state: row.state.map(TargetState::name),
                })
                .collect()
        }),
        diagnosis: sentence(&z.diagnosis, &parent_name(z)),
        cause: z.diagnosis.cause.code(),
    }
}
