//! Renders `report` lines: aligned text for people, JSON lines for scripts.
//!
//! Every line is exactly one line (the text summary excepted), whatever the
//! bytes inside: names and arguments come from the processes themselves, so
//! in text every control character is shown as a visible escape, and in
//! JSON serde_json escapes them.

use std::{
    fmt::Write as _,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::Serialize;

use crate::{
    event::{Comm, ExitStatus, WaitTarget},
    flood::{Flood, Kind},
    procfile::state_name,
    report::{
        Exited, Latency, Line, Lost, ParentGroup, Placement, ProcessInfo, Ready, Reaped,
        RecentWait, Sigchld, Snapshot, Summary, TargetState, WaitNow, WaitStats, Zombie,
    },
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug)]
pub struct Encoder {
    format: Format,
}

impl Encoder {
    pub fn new(format: Format) -> Self {
        Self { format }
    }

    /// One line, `\n`-terminated; the parent's last wait is aged against
    /// the boot-time clock now.
    pub fn encode(&self, line: &Line) -> String {
        self.encode_at(line, Some(crate::clock::boot_ns()))
    }

    /// As [`Encoder::encode`], with the `CLOCK_BOOTTIME` reading to age
    /// `WaitStats::last_ns` against (`None`: leave the age out).
    pub fn encode_at(&self, line: &Line, boot_now_ns: Option<u64>) -> String {
        let mut out = match self.format {
            Format::Json => json(line, boot_now_ns),
            Format::Text => text(line, boot_now_ns),
        };
        out.push('\n');
        out
    }

    /// A zombie line in a flood gate's brief form (see [`Shown::Brief`]):
    /// text only, JSON always has the whole line.
    pub fn encode_brief(&self, z: &Zombie, diagnosis: bool) -> String {
        let mut out = format!(
            "{} {:<7} {}",
            text_ts(z.ts),
            "ZOMBIE",
            brief_zombie_text(z, diagnosis)
        );
        out.push('\n');
        out
    }

    /// The line that sums up the reports a flood gate held back (text).
    pub fn encode_flood(&self, flood: &Flood, ts: SystemTime, boot_now_ns: u64) -> String {
        let kind = match flood.kind {
            Kind::Zombies => "ZOMBIES",
            Kind::Reaps => "REAPS",
        };
        let mut out = format!(
            "{} {kind:<7} {}",
            text_ts(ts),
            flood_text(flood, boot_now_ns)
        );
        out.push('\n');
        out
    }
}

/// The one sentence on why zombie `z` is not reaped, for
/// `Zombie::diagnosis`, from what is known of it and its parent (its
/// `diagnosis` is not read). `now_ns` is when the facts were read and
/// `tracing_since_ns` when tracing began (boot ns). It reasons only from
/// what is known: without the child's exit time it makes no claim about
/// what the parent did since, and a wait call in progress is named with
/// what it waits for.
///
/// The parent's name goes in raw (lossy UTF-8); the text encoder escapes
/// the whole sentence.
pub fn diagnose(z: &Zombie, now_ns: u64, tracing_since_ns: u64) -> String {
    let Some(parent) = z.parent.as_ref() else {
        return "the parent is gone: init or a subreaper adopts the child and should reap it"
            .to_owned();
    };
    let name = String::from_utf8_lossy(&parent.comm);
    if parent.pid == 1 {
        return format!(
            "adopted by init (pid 1, {name}) after its parent exited without reaping: init \
             should reap it; if it stays, this pid 1 does not reap orphans (in a container, \
             run an init such as tini or `docker run --init`)"
        );
    }
    match parent.state {
        'T' => {
            return format!(
                "parent {name} is stopped (SIGSTOP/ptrace): it cannot reap until it is continued"
            );
        }
        't' => {
            return format!(
                "parent {name} is stopped by its tracer (ptrace): it cannot reap until resumed"
            );
        }
        'Z' | 'X' if parent.threads > 1 => {
            return format!(
                "the main thread of parent {name} has exited: one of its {} remaining threads must reap",
                parent.threads - 1
            );
        }
        'Z' | 'X' => {
            return format!(
                "parent {name} is exiting: init or a subreaper adopts the child and should reap it"
            );
        }
        _ => {}
    }
    let sigchld = parent.sigchld.unwrap_or(Sigchld {
        ignored: false,
        caught: false,
        blocked: false,
    });
    let blocked = if sigchld.blocked {
        ", and SIGCHLD is blocked"
    } else {
        ""
    };
    // This child's pid as the parent names it: the host's, or, for a parent
    // in a pid namespace of its own, the child's innermost one.
    let own_pid = if parent.placement.ns_pid.is_none() {
        i32::try_from(z.pid).ok()
    } else {
        z.placement.ns_pid.and_then(|p| i32::try_from(p).ok())
    };
    // Whether a call for `target` names this child.
    let names_this =
        |target: &WaitTarget| matches!(target, WaitTarget::Pid(p) if Some(*p) == own_pid);

    let blocking: Vec<&WaitNow> = parent.waits_now.iter().filter(|w| w.blocks()).collect();
    if !blocking.is_empty() {
        // A call for any child, or for this one, that still blocks: its
        // options leave this child out. Groups and pidfds whose pid is not
        // known are described as they are.
        let collects_this = |w: &&WaitNow| match (w.target, w.child) {
            (_, Some(child)) => child == z.pid,
            (target, None) => matches!(target, WaitTarget::Any) || names_this(&target),
        };
        if blocking.iter().any(collects_this) {
            let call = blocking[0].syscall.name();
            return format!(
                "parent {name} is blocked in {call}() yet has not collected this child: check its \
                 wait options (WEXITED; __WALL for children that do not signal SIGCHLD){blocked}"
            );
        }
        let threads = blocking.len() > 1;
        let calls: Vec<String> = blocking.iter().map(|w| call_text(w, threads)).collect();
        let until = match blocking[..] {
            [w] => match (w.target, w.child) {
                (WaitTarget::Pid(p), _) => format!("this one will wait until {p} exits"),
                (WaitTarget::Pidfd(_), Some(child)) => {
                    format!("this one will wait until {child} exits")
                }
                (WaitTarget::Pgid(_), _) => {
                    "this child may be in another group, and will wait until that call returns"
                        .to_owned()
                }
                _ => "this one will wait until that call returns".to_owned(),
            },
            _ => "this one will wait until one of them returns".to_owned(),
        };
        return format!(
            "parent {name} is blocked in {}; {until}{blocked}",
            calls.join(", and in ")
        );
    }

    let Some(waits) = z.parent_waits.as_ref() else {
        return format!(
            "parent {name} has not reaped this child{blocked} \
             (wait calls are not traced: see its state and syscall)"
        );
    };
    if waits.calls == 0 {
        return if sigchld.ignored {
            format!(
                "parent {name} ignores SIGCHLD, yet this child was not reaped at exit (it \
                 exited first, or signals another way) and wait() was not called since tracing \
                 began: it must reap it with waitpid{blocked}"
            )
        } else if sigchld.caught {
            format!(
                "parent {name} catches SIGCHLD but has not called wait() since tracing began: \
                 its handler must reap (waitpid(-1, WNOHANG) in a loop){blocked}"
            )
        } else {
            format!(
                "parent {name} has not called wait() since tracing began: it must reap its \
                 children (waitpid, or SIGCHLD set to SIG_IGN){blocked}"
            )
        };
    }
    let last_ns = waits.last_ns.unwrap_or(now_ns);
    let last_ago = human_ms(ms(now_ns.saturating_sub(last_ns)));
    // Since when the child has been a zombie, as far as is known.
    let exited = match (z.age_ns, z.preexisting) {
        (Some(age), _) => Some((now_ns.saturating_sub(age), "since this child exited")),
        (None, true) => Some((
            tracing_since_ns,
            "since tracing began (this child was already a zombie)",
        )),
        (None, false) => None,
    };
    let unknown = if exited.is_none() {
        " (when this child exited is unknown: its exit was not seen)"
    } else {
        ""
    };
    if let Some((exited_ns, _)) = exited
        && last_ns < exited_ns
    {
        let fix = if sigchld.caught {
            "its SIGCHLD handler must reap (waitpid(-1, WNOHANG) in a loop)"
        } else {
            "it must reap its children (waitpid, or SIGCHLD set to SIG_IGN)"
        };
        let since = if z.age_ns.is_some() {
            "this child exited"
        } else {
            "tracing began (this child was already a zombie)"
        };
        return format!(
            "parent {name} has not called wait() since {since} (its last of {} wait calls was {} \
             before): {fix}{blocked}",
            waits.calls,
            human_ms(ms(exited_ns.saturating_sub(last_ns)))
        );
    }
    // The targets asked for since the child died (since tracing began when
    // that is unknown): none for any child, none for this one?
    let since_ns = exited.map_or(0, |(ns, _)| ns);
    let asked: Vec<&RecentWait> = waits
        .targets
        .iter()
        .filter(|t| t.last_ns >= since_ns)
        .collect();
    if !asked.is_empty()
        && asked
            .iter()
            .all(|t| !matches!(t.target, WaitTarget::Any) && !names_this(&t.target))
    {
        let list = asked
            .iter()
            .map(|t| recent_text(t))
            .collect::<Vec<_>>()
            .join(", ");
        // A group or a pidfd may hold this child: no claim about it then.
        let not_this = if asked.iter().all(|t| matches!(t.target, WaitTarget::Pid(_))) {
            "not for this child"
        } else {
            "never for any child: this one may be in none of them"
        };
        let whole = waits.all_targets_since(since_ns);
        return match (exited, whole) {
            (Some((_, since)), true) => format!(
                "{since}, parent {name} has waited only for {list} (last {last_ago} ago), \
                 {not_this}{blocked}"
            ),
            (None, true) => format!(
                "parent {name} has waited only for {list} since tracing began (last {last_ago} \
                 ago), {not_this}{unknown}{blocked}"
            ),
            (_, false) => format!(
                "parent {name}'s most recent wait calls (last {last_ago} ago) were for {list}, \
                 {not_this}{unknown}{blocked}"
            ),
        };
    }
    if waits.reaped > 0 {
        return format!(
            "parent {name} reaps some children ({} so far) but not this one: one wait per \
             SIGCHLD misses children that exit together (loop on waitpid(-1, WNOHANG)){unknown}{blocked}",
            waits.reaped
        );
    }
    if waits.empty > 0 {
        return format!(
            "parent {name} polls with WNOHANG ({} empty polls, the last {last_ago} ago) but has \
             collected nothing, not even this child{unknown}{blocked}",
            waits.empty
        );
    }
    if waits.errors > 0 {
        return format!(
            "parent {name}'s wait calls fail ({} errors, e.g. ECHILD or EINTR) and collect \
             nothing{unknown}{blocked}",
            waits.errors
        );
    }
    if waits.peeks > 0 {
        return format!(
            "parent {name} only peeks at its children (WNOWAIT) and never collects them{unknown}{blocked}"
        );
    }
    format!(
        "parent {name} called wait() {} times but has not collected this child{unknown}{blocked}",
        waits.calls
    )
}

/// `wait4 for pid 123, a live child (thread 456)`.
fn call_text(w: &WaitNow, with_thread: bool) -> String {
    let mut out = format!("{} for {}", w.syscall.name(), target_text(&w.target));
    if let (WaitTarget::Pidfd(_), Some(child)) = (w.target, w.child) {
        let _ = write!(out, " (pid {child})");
    }
    out.push_str(match w.state {
        Some(TargetState::LiveChild) => ", a live child",
        Some(TargetState::ZombieChild) => ", a child that has exited too",
        Some(TargetState::NotAChild) => ", which is not its child",
        Some(TargetState::Gone) => ", which no longer exists",
        None => "",
    });
    if with_thread {
        let _ = write!(out, " (thread {})", w.tid);
    }
    out
}

/// `pid 77`, `process group 5`, `any child`.
fn target_text(target: &WaitTarget) -> String {
    match target {
        WaitTarget::Any => "any child".to_owned(),
        WaitTarget::Pid(n) => format!("pid {n}"),
        WaitTarget::Pgid(0) => "its own process group".to_owned(),
        WaitTarget::Pgid(n) => format!("process group {n}"),
        WaitTarget::Pidfd(n) => format!("pidfd {n}"),
    }
}

/// `pid 77 (no longer exists)`.
fn recent_text(t: &RecentWait) -> String {
    let mut out = target_text(&t.target);
    if let Some(state) = t.state
        && state != TargetState::LiveChild
    {
        out.push_str(match state {
            TargetState::ZombieChild => " (a zombie too)",
            TargetState::NotAChild => " (not its child now)",
            _ => " (no longer exists)",
        });
    }
    out
}

/// A target of the parent's wait calls, as the output lists them.
struct TargetRow<'a> {
    target: WaitTarget,
    /// The call in progress, for one.
    now: Option<&'a WaitNow>,
    /// When it was last asked for, for a recent one.
    last_ns: Option<u64>,
    /// The host pid of the child it names, when known.
    pid: Option<u32>,
    state: Option<TargetState>,
}

/// What the parent waits for now (a thread each), then what it waited for
/// most recently (newest first).
fn target_rows<'a>(p: &'a ProcessInfo, w: &WaitStats) -> Vec<TargetRow<'a>> {
    let now = p.waits_now.iter().map(|call| TargetRow {
        target: call.target,
        now: Some(call),
        last_ns: None,
        pid: call.child,
        state: call.state,
    });
    let recent = w.targets.iter().map(|t| TargetRow {
        target: t.target,
        now: None,
        last_ns: Some(t.last_ns),
        // A state is read only where the pid is the host's.
        pid: match t.target {
            WaitTarget::Pid(n) if t.state.is_some() => u32::try_from(n).ok(),
            _ => None,
        },
        state: t.state,
    });
    now.chain(recent).collect()
}

fn target_kind(target: &WaitTarget) -> &'static str {
    match target {
        WaitTarget::Any => "any",
        WaitTarget::Pid(_) => "pid",
        WaitTarget::Pgid(_) => "pgid",
        WaitTarget::Pidfd(_) => "pidfd",
    }
}

fn target_id(target: &WaitTarget) -> Option<i32> {
    match *target {
        WaitTarget::Any => None,
        WaitTarget::Pid(n) | WaitTarget::Pgid(n) | WaitTarget::Pidfd(n) => Some(n),
    }
}

/// `"any"`, `"pid N"`, ...: the strings of `parent_wait_targets`.
fn target_name(target: &WaitTarget) -> String {
    match target {
        WaitTarget::Any => "any".to_owned(),
        WaitTarget::Pid(n) => format!("pid {n}"),
        WaitTarget::Pgid(n) => format!("pgid {n}"),
        WaitTarget::Pidfd(n) => format!("pidfd {n}"),
    }
}

fn ms(ns: u64) -> u64 {
    ns / 1_000_000
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `humantime`'s RFC 3339 covers 1970 to 9999 and panics outside it; a
/// clock that far off is clamped.
fn since_epoch(ts: SystemTime) -> Duration {
    const END_OF_9999: Duration = Duration::new(253_402_300_799, 999_000_000);
    ts.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .min(END_OF_9999)
}

/// `(exit_code, signal, core_dumped)`.
fn status_fields(status: Option<ExitStatus>) -> (Option<u8>, Option<u8>, bool) {
    match status {
        Some(ExitStatus::Exited(code)) => (Some(code), None, false),
        Some(ExitStatus::Killed {
            signal,
            core_dumped,
        }) => (None, Some(signal), core_dumped),
        None => (None, None, false),
    }
}

fn last_wait_ms_ago(waits: &WaitStats, boot_now_ns: Option<u64>) -> Option<u64> {
    Some(ms(boot_now_ns?.saturating_sub(waits.last_ns?)))
}

// ---- JSON -------------------------------------------------------------

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
    },
    Zombie {
        ts: String,
        pid: u32,
        comm: String,
        ppid: u32,
        parent_comm: Option<String>,
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
        parent_threads: Option<u32>,
        cgroup: Option<&'a str>,
        ns_pid: Option<u32>,
        container_id: Option<&'a str>,
        parent_cgroup: Option<&'a str>,
        parent_ns_pid: Option<u32>,
        parent_container_id: Option<&'a str>,
        parent_wait_calls: Option<u64>,
        parent_wait_reaped: Option<u64>,
        parent_wait_empty: Option<u64>,
        parent_wait_errors: Option<u64>,
        parent_last_wait_ms_ago: Option<u64>,
        parent_wait_targets: Option<Vec<String>>,
        parent_wait_target_list: Option<Vec<JsonWaitTarget>>,
        diagnosis: &'a str,
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

fn json(line: &Line, boot_now_ns: Option<u64>) -> String {
    let value = match line {
        Line::Ready(r) => JsonLine::Ready {
            ts: json_ts(r.ts),
            version: r.version,
            threshold_ms: r.threshold_ms,
            kernel: &r.kernel,
            pid: r.pid,
            preexisting: r.preexisting,
            wait_tracing: r.wait_tracing,
        },
        Line::Zombie(z) => json_zombie(z, boot_now_ns),
        Line::Reaped(r) => JsonLine::Reap {
            ts: json_ts(r.ts),
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
    serde_json::to_string(&value).expect("JSON lines serialize")
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
        parent_threads: p.map(|p| p.threads),
        cgroup: z.placement.cgroup.as_deref(),
        ns_pid: z.placement.ns_pid,
        container_id: z.placement.container_id.as_deref(),
        parent_cgroup: p.and_then(|p| p.placement.cgroup.as_deref()),
        parent_ns_pid: p.and_then(|p| p.placement.ns_pid),
        parent_container_id: p.and_then(|p| p.placement.container_id.as_deref()),
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
        diagnosis: &z.diagnosis,
    }
}

// ---- Text -------------------------------------------------------------

/// Arguments shown in text beyond this many characters are cut.
const CMDLINE_MAX_CHARS: usize = 256;
/// Pids listed per parent in the text summary.
const SUMMARY_MAX_PIDS: usize = 20;
/// `HH:MM:SS.mmm KIND    `: where the text summary's group lines start.
const INDENT: &str = "                     ";
/// Rows of the per-parent table in a text summary (JSON has them all).
const SUMMARY_MAX_PARENTS: usize = 20;
/// Reaper names in a text summary.
const SUMMARY_MAX_COMMS: usize = 5;

/// Untrusted bytes made safe and visible for a terminal: no control
/// character (C0, DEL, C1) or invisible direction/line-separator character
/// survives, invalid UTF-8 shows as `\xNN`, and `\` itself is doubled so
/// the escapes are unambiguous.
pub fn escape_text(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '\x1b' => out.push_str("\\e"),
                c if u32::from(c) < 0x20 || c == '\x7f' => {
                    let _ = write!(out, "\\x{:02x}", u32::from(c));
                }
                c if c.is_control() || is_invisible_format(c) => {
                    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Characters that reorder or hide text (Trojan Source) or break lines in
/// some terminals.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}'
            | '\u{feff}'
    )
}

/// An escaped word, in double quotes when it would otherwise not read as
/// one word (empty, spaces, quotes, brackets, our `|` separator).
fn word(bytes: &[u8]) -> String {
    let escaped = escape_text(bytes);
    let plain = !escaped.is_empty()
        && !escaped
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '[' | ']' | '|'));
    if plain {
        escaped
    } else {
        format!("\"{}\"", escaped.replace('"', "\\\""))
    }
}

fn cmdline_text(args: &[Vec<u8>]) -> String {
    let mut joined = String::new();
    for arg in args {
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(&word(arg));
        if joined.chars().count() > CMDLINE_MAX_CHARS {
            let mut cut: String = joined.chars().take(CMDLINE_MAX_CHARS).collect();
            cut.push_str("...");
            return cut;
        }
    }
    joined
}

/// `850ms`, `5.0s`, `2m03s`, `1h02m`, `3d04h`.
fn human_ms(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms}ms"),
        1..60 => format!("{s}.{}s", ms % 1000 / 100),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// `SIGKILL` for the common signals (this architecture's numbers).
fn signal_name(signal: u8) -> Option<&'static str> {
    Some(match i32::from(signal) {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGCONT => "SIGCONT",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGTSTP => "SIGTSTP",
        libc::SIGTTIN => "SIGTTIN",
        libc::SIGTTOU => "SIGTTOU",
        libc::SIGURG => "SIGURG",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGVTALRM => "SIGVTALRM",
        libc::SIGPROF => "SIGPROF",
        libc::SIGWINCH => "SIGWINCH",
        libc::SIGIO => "SIGIO",
        libc::SIGSYS => "SIGSYS",
        _ => return None,
    })
}

/// `exit=N`, `killed=SIGKILL`, `signal=N`, with ` (core)`.
fn status_text(status: ExitStatus) -> String {
    match status {
        ExitStatus::Exited(code) => format!("exit={code}"),
        ExitStatus::Killed {
            signal,
            core_dumped,
        } => {
            let core = if core_dumped { " (core)" } else { "" };
            match signal_name(signal) {
                Some(name) => format!("killed={name}{core}"),
                None => format!("signal={signal}{core}"),
            }
        }
    }
}

fn comm_text(comm: &Comm) -> String {
    word(comm.as_bytes())
}

/// `HH:MM:SS.mmm` in UTC, fixed width.
fn text_ts(ts: SystemTime) -> String {
    let d = since_epoch(ts);
    let s = d.as_secs() % 86400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        d.subsec_millis()
    )
}

fn text(line: &Line, boot_now_ns: Option<u64>) -> String {
    let (ts, kind, body) = match line {
        Line::Ready(r) => (r.ts, "READY", ready_text(r)),
        Line::Zombie(z) => (z.ts, "ZOMBIE", zombie_text(z, boot_now_ns)),
        Line::Reaped(r) => (r.ts, "REAP", reap_text(r)),
        Line::Exited(e) => (e.ts, "EXIT", exit_text(e)),
        Line::Lost(l) => (l.ts, "LOST", lost_text(l)),
        Line::Summary(s) => (s.ts, "SUMMARY", summary_text(s)),
        Line::Snapshot(s) => (s.ts, "PS", snapshot_text(s)),
    };
    format!("{} {kind:<7} {body}", text_ts(ts))
}

fn ready_text(r: &Ready) -> String {
    format!(
        "zombie-trace {} pid={} kernel={} threshold={} preexisting={} wait-tracing={}",
        word(r.version.as_bytes()),
        r.pid,
        word(r.kernel.as_bytes()),
        human_ms(r.threshold_ms),
        r.preexisting,
        if r.wait_tracing { "on" } else { "off" },
    )
}

/// The child's half of a zombie line.
fn child_text(z: &Zombie) -> String {
    let mut out = format!("pid={} comm={}", z.pid, comm_text(&z.comm));
    if let Some(status) = z.status {
        let _ = write!(out, " {}", status_text(status));
    }
    match z.age_ns {
        Some(age) => {
            let _ = write!(out, " age={}", human_ms(ms(age)));
        }
        None => out.push_str(" age=?"),
    }
    if z.preexisting {
        out.push_str(" preexisting");
    }
    out.push_str(&placement_text(&z.placement));
    if let Some(old) = z.ppid_at_exit.filter(|&old| old != z.ppid) {
        let _ = write!(out, " reparented-from={old}");
    }
    out
}

/// A zombie line whose parent's details are on the line above it (a flood
/// gate's brief form); its diagnosis only if it says something else.
fn brief_zombie_text(z: &Zombie, diagnosis: bool) -> String {
    let mut out = child_text(z);
    match &z.parent {
        Some(p) => {
            let _ = write!(out, " | parent {} {} (as above)", z.ppid, word(&p.comm));
        }
        None => {
            let _ = write!(out, " | parent {} gone", z.ppid);
        }
    }
    if diagnosis && !z.diagnosis.is_empty() {
        let _ = write!(out, " | {}", escape_text(z.diagnosis.as_bytes()));
    }
    out
}

/// `parent 1234 leaker: 1997 more zombies in 1.0s, pids 30001..32000,
/// oldest 5.1s (each has a line in JSON)`, or for reaps `reaped-by 1234
/// leaker: 1997 more reaps of reported zombies in 1.0s, ..., longest
/// zombie-for 8.2s (...)`.
fn flood_text(f: &Flood, boot_now_ns: u64) -> String {
    let plural = if f.count == 1 { "" } else { "s" };
    let (who, what) = match f.kind {
        Kind::Zombies => ("parent", format!("zombie{plural}")),
        Kind::Reaps => ("reaped-by", format!("reap{plural} of reported zombies")),
    };
    let mut out = format!(
        "{who} {} {}: {} more {what} in {}",
        f.pid,
        word(&f.comm),
        f.count,
        human_ms(ms(f.window_ns))
    );
    if f.min_pid == f.max_pid {
        let _ = write!(out, ", pid {}", f.min_pid);
    } else {
        let _ = write!(out, ", pids {}..{}", f.min_pid, f.max_pid);
    }
    if let Some(age) = f.oldest_age_ns(boot_now_ns) {
        let _ = write!(out, ", oldest {}", human_ms(ms(age)));
    }
    if let Some(longest) = f.longest_zombie_ns {
        let _ = write!(out, ", longest zombie-for {}", human_ms(ms(longest)));
    }
    out.push_str(" (each has a line in JSON)");
    out
}

fn zombie_text(z: &Zombie, boot_now_ns: Option<u64>) -> String {
    let mut out = child_text(z);
    match &z.parent {
        Some(p) => {
            let _ = write!(out, " | parent {} {}", z.ppid, word(&p.comm));
            if !p.cmdline.is_empty() {
                let _ = write!(out, " cmd=[{}]", cmdline_text(&p.cmdline));
            }
            let _ = write!(
                out,
                " state={}({})",
                word(p.state.to_string().as_bytes()),
                state_name(p.state)
            );
            if let Some(wchan) = &p.wchan {
                let _ = write!(out, " in={}", word(wchan.as_bytes()));
            }
            if let Some(syscall) = &p.syscall {
                let _ = write!(out, " syscall={}", word(syscall.as_bytes()));
            }
            if let Some(sigchld) = p.sigchld {
                let _ = write!(out, " sigchld={}", sigchld.describe());
            }
            let _ = write!(out, " threads={}", p.threads);
            out.push_str(&placement_text(&p.placement));
            match &z.parent_waits {
                Some(waits) => out.push_str(&waits_text(p, waits, boot_now_ns)),
                None => out.push_str(" waits=?"),
            }
        }
        None => {
            let _ = write!(out, " | parent {} gone", z.ppid);
        }
    }
    if !z.diagnosis.is_empty() {
        let _ = write!(out, " | {}", escape_text(z.diagnosis.as_bytes()));
    }
    out
}

/// ` cgroup=... ns-pid=N container=ID`, leaving out what is unknown or the
/// host's own.
fn placement_text(p: &Placement) -> String {
    let mut out = String::new();
    if let Some(cgroup) = p.cgroup.as_deref().filter(|c| *c != "/") {
        let _ = write!(out, " cgroup={}", word(cgroup.as_bytes()));
    }
    if let Some(ns_pid) = p.ns_pid {
        let _ = write!(out, " ns-pid={ns_pid}");
    }
    if let Some(id) = &p.container_id {
        let _ = write!(out, " container={}", word(id.as_bytes()));
    }
    out
}

fn waits_text(p: &ProcessInfo, w: &WaitStats, boot_now_ns: Option<u64>) -> String {
    let mut out = format!(" waits={}", w.calls);
    if w.calls > 0 {
        let _ = write!(
            out,
            " reaped={} empty={} errors={}",
            w.reaped, w.empty, w.errors
        );
        if let Some(ago) = last_wait_ms_ago(w, boot_now_ns) {
            let _ = write!(out, " last-wait={}-ago", human_ms(ago));
        }
    }
    let rows = target_rows(p, w);
    if !rows.is_empty() {
        // `pid:123(now,live-child)`, `pid:99(3.1s-ago,gone)`, `any(5.0s-ago)`.
        let targets: Vec<String> = rows
            .iter()
            .map(|row| {
                let mut notes = Vec::new();
                match (row.now, row.last_ns.zip(boot_now_ns)) {
                    (Some(call), _) if call.blocks() => notes.push("now".to_owned()),
                    (Some(_), _) => notes.push("now,nohang".to_owned()),
                    (None, Some((last, now))) => {
                        notes.push(format!("{}-ago", human_ms(ms(now.saturating_sub(last)))));
                    }
                    (None, None) => {}
                }
                if let Some(state) = row.state {
                    notes.push(state.name().replace('_', "-"));
                }
                let name = target_name(&row.target).replace(' ', ":");
                if notes.is_empty() {
                    name
                } else {
                    format!("{name}({})", notes.join(","))
                }
            })
            .collect();
        let _ = write!(out, " targets={}", targets.join(","));
    }
    out
}

fn reap_text(r: &Reaped) -> String {
    let mut out = format!("pid={} comm={} reaped-by=", r.pid, comm_text(&r.comm));
    match r.reaper_pid {
        Some(pid) => {
            let _ = write!(out, "{pid}");
        }
        None => out.push('?'),
    }
    if let Some(comm) = &r.reaper_comm {
        let _ = write!(out, " {}", comm_text(comm));
    }
    let _ = write!(out, " ({})", r.reaper_kind.name());
    if let Some(ns) = r.zombie_ns {
        let _ = write!(out, " zombie-for={}", human_ms(ms(ns)));
    }
    if r.was_reported {
        out.push_str(" was-reported");
    }
    if r.preexisting {
        out.push_str(" preexisting");
    }
    out
}

fn exit_text(e: &Exited) -> String {
    let mut out = format!("pid={}", e.pid);
    if e.tid != e.pid {
        let _ = write!(out, " tid={}", e.tid);
    }
    let _ = write!(
        out,
        " comm={} {} | parent {} {}",
        comm_text(&e.comm),
        status_text(e.status),
        e.ppid,
        comm_text(&e.parent_comm)
    );
    if e.auto_reap {
        out.push_str(" auto-reap (parent ignores SIGCHLD)");
    }
    out
}

fn lost_text(l: &Lost) -> String {
    format!(
        "count={} total={}: the kernel dropped records, some exits or reaps were not seen",
        l.count, l.total
    )
}

fn summary_text(s: &Summary) -> String {
    let mut out = format!(
        "duration={} exits={} reaps={} zombies={} preexisting={} lost={} outstanding={}",
        human_ms(ms(s.duration_ns)),
        s.exits,
        s.reaps,
        s.zombies,
        s.preexisting,
        s.lost,
        s.outstanding.iter().map(|g| g.zombies.len()).sum::<usize>(),
    );
    for group in &s.outstanding {
        out.push('\n');
        out.push_str(INDENT);
        out.push_str(&group_text(group));
    }
    for p in s.parents.iter().take(SUMMARY_MAX_PARENTS) {
        out.push('\n');
        out.push_str(INDENT);
        let _ = write!(
            out,
            "parent {} {}: now={} ever={} rate={:.2}/min",
            p.ppid,
            word(&p.comm),
            p.zombies_now,
            p.zombies_ever,
            p.leak_per_min
        );
        if let Some(oldest) = p.oldest_ns {
            let _ = write!(out, " oldest={}", human_ms(ms(oldest)));
        }
        if p.reaps.count > 0 {
            let _ = write!(out, " reaps: {}", latency_text(&p.reaps));
        }
        if !p.cmdline.is_empty() {
            let _ = write!(out, " cmd=[{}]", cmdline_text(&p.cmdline));
        }
    }
    if s.parents.len() > SUMMARY_MAX_PARENTS {
        out.push('\n');
        out.push_str(INDENT);
        let _ = write!(
            out,
            "(+{} more parents)",
            s.parents.len() - SUMMARY_MAX_PARENTS
        );
    }
    if s.reap_latency.count > 0 {
        out.push('\n');
        out.push_str(INDENT);
        let _ = write!(out, "reap latency: {}", latency_text(&s.reap_latency));
        let by_comm: Vec<String> = s
            .reap_latency_by_comm
            .iter()
            .take(SUMMARY_MAX_COMMS)
            .map(|(comm, l)| format!("{} {}", word(comm), latency_text(l)))
            .collect();
        out.push('\n');
        out.push_str(INDENT);
        let _ = write!(out, "by reaper: {}", by_comm.join("; "));
    }
    out
}

/// `n=12 p50=262us p99=16ms max=5.9s`
fn latency_text(l: &Latency) -> String {
    let d = |ns: Option<u64>| ns.map_or_else(|| "?".to_owned(), human_ns);
    format!(
        "n={} p50={} p99={} max={}",
        l.count,
        d(l.p50_ns),
        d(l.p99_ns),
        d(l.max_ns)
    )
}

fn human_ns(ns: u64) -> String {
    if ns < 1_000_000 {
        format!("{}us", ns / 1_000)
    } else {
        human_ms(ms(ns))
    }
}

fn snapshot_text(s: &Snapshot) -> String {
    let mut out = format!(
        "zombies={} parents={} detail={}",
        s.zombies,
        s.by_parent.len(),
        if s.full_detail {
            "full"
        } else {
            "partial (not root)"
        }
    );
    for group in &s.by_parent {
        out.push('\n');
        out.push_str(INDENT);
        out.push_str(&group_text(group));
    }
    out
}

fn group_text(g: &ParentGroup) -> String {
    let n = g.zombies.len();
    let mut out = format!(
        "parent {} {}: {n} zombie{}",
        g.ppid,
        word(&g.parent_comm),
        if n == 1 { "" } else { "s" }
    );
    if let Some(oldest) = g.oldest_ns {
        let _ = write!(out, ", oldest {}", human_ms(ms(oldest)));
    }
    let pids: Vec<String> = g
        .zombies
        .iter()
        .take(SUMMARY_MAX_PIDS)
        .map(u32::to_string)
        .collect();
    let _ = write!(out, ": {}", pids.join(" "));
    if n > SUMMARY_MAX_PIDS {
        let _ = write!(out, " (+{} more)", n - SUMMARY_MAX_PIDS);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;
    use crate::event::{WNOHANG, WaitSyscall};
    use crate::report::ParentRow;
    use crate::report::ReaperKind;

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

    fn zombie(comm: &[u8], parent: Option<ProcessInfo>) -> Zombie {
        Zombie {
            ts: ts(),
            pid: 4242,
            comm: Comm::new(comm),
            status: Some(ExitStatus::Exited(0)),
            age_ns: Some(5_000_000_000),
            preexisting: false,
            ppid_at_exit: Some(4200),
            ppid: 4200,
            parent,
            placement: Placement::default(),
            parent_waits: Some(WaitStats::default()),
            diagnosis: "parent python3 has not called wait()".to_owned(),
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
        };
        let z = Zombie {
            placement: Placement {
                cgroup: Some("/system.slice/docker-x.scope".into()),
                ns_pid: Some(7),
                container_id: Some(id),
            },
            ..zombie(b"worker", Some(p))
        };
        let line = Line::Zombie(Box::new(z));
        let map = json_of(&line);
        assert_eq!(map["cgroup"], "/system.slice/docker-x.scope");
        assert_eq!(
            (map["ns_pid"].clone(), map["parent_ns_pid"].clone()),
            (7.into(), 1.into())
        );
        assert_eq!(map["container_id"], "0123456789ab");
        assert_eq!(map["parent_container_id"], "0123456789ab");
        let text = Encoder::new(Format::Text).encode(&line);
        assert!(
            text.contains(" cgroup=/system.slice/docker-x.scope ns-pid=7 container=0123456789ab"),
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
            }),
            Line::Zombie(Box::new({
                let mut z = zombie(comm, Some(p.clone()));
                z.diagnosis = diagnose(&z, 10_000_000_000, 0);
                z
            })),
            Line::Zombie(Box::new(zombie(comm, None))),
            Line::Reaped(Reaped {
                ts: ts(),
                pid: 4242,
                comm: Comm::new(comm),
                reaper_pid: Some(4200),
                reaper_comm: Some(Comm::new(comm)),
                reaper_kind: ReaperKind::Parent,
                zombie_ns: Some(5_200_000_000),
                was_reported: true,
                preexisting: false,
            }),
            Line::Exited(Exited {
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
                    ppid: 4200,
                    parent_comm: comm.to_vec(),
                    zombies: vec![4242, 4243],
                    oldest_ns: Some(5_000_000_000),
                }],
                parents: vec![ParentRow {
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
                    ppid: 4200,
                    parent_comm: comm.to_vec(),
                    zombies: vec![4242],
                    oldest_ns: None,
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
                ppid: 4200,
                parent_comm: b"make".to_vec(),
                zombies: vec![4242, 4243],
                oldest_ns: None,
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

    const ZOMBIE_KEYS: &[&str] = &[
        "type",
        "ts",
        "pid",
        "comm",
        "ppid",
        "parent_comm",
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
        "parent_threads",
        "cgroup",
        "ns_pid",
        "container_id",
        "parent_cgroup",
        "parent_ns_pid",
        "parent_container_id",
        "parent_wait_calls",
        "parent_wait_reaped",
        "parent_wait_empty",
        "parent_wait_errors",
        "parent_last_wait_ms_ago",
        "parent_wait_targets",
        "parent_wait_target_list",
        "diagnosis",
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
                "wait_tracing"
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
        assert_eq!(keys(&map), set(ZOMBIE_KEYS));
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
            ..zombie(b"x", None)
        };
        let map = json_of(&Line::Zombie(Box::new(z)));
        assert_eq!(keys(&map), set(ZOMBIE_KEYS));
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

        let unknown = Line::Reaped(Reaped {
            ts: ts(),
            pid: 1,
            comm: Comm::new(b"x"),
            reaper_pid: None,
            reaper_comm: None,
            reaper_kind: ReaperKind::Unknown,
            zombie_ns: None,
            was_reported: false,
            preexisting: true,
        });
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
                "auto_reap"
            ])
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
             preexisting=2 wait-tracing=on\n"
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
             parent python3 has not called wait()\n"
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
            parent_waits: Some(WaitStats {
                calls: 3,
                reaped: 0,
                empty: 3,
                errors: 0,
                peeks: 0,
                last_ns: Some(8_000_000_000),
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
                "killed=SIGABRT (core) age=? preexisting reparented-from=4100 | parent 4200 \
                 \"my app\" cmd=[sh -c \"sleep 1\"]"
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
                ppid: 7,
                parent_comm: b"p".to_vec(),
                zombies: (100..125).collect(),
                oldest_ns: None,
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

    fn recent(target: WaitTarget, last_ns: u64, state: Option<TargetState>) -> RecentWait {
        RecentWait {
            target,
            last_ns,
            state,
        }
    }

    /// Thread `tid` blocked in `wait4` for `target`, whose host pid is
    /// `child`, a live child.
    fn waiting(tid: u32, target: WaitTarget, child: Option<u32>) -> WaitNow {
        WaitNow {
            tid,
            syscall: WaitSyscall::Wait4,
            target,
            options: 0,
            child,
            state: child.map(|_| TargetState::LiveChild),
        }
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

    fn waits(calls: u64, last_ns: u64, targets: Vec<RecentWait>) -> WaitStats {
        WaitStats {
            calls,
            last_ns: Some(last_ns),
            targets,
            ..WaitStats::default()
        }
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
        let z = Zombie {
            diagnosis: d(&hostile),
            ..zombie(b"x", Some(hostile))
        };
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
            diagnosis(&catcher, Some(earlier), Some(5 * SEC))
                .contains("its SIGCHLD handler must reap")
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
        let many = waits(
            40,
            NOW - SEC,
            (0..8)
                .map(|i| recent(WaitTarget::Pid(200 + i), NOW - SEC - i as u64, None))
                .collect(),
        );
        assert!(d(many, Some(5 * SEC)).starts_with(
            "parent python3's most recent wait calls (last 1.0s ago) were for pid 200"
        ));
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
        assert!(
            any(|w| w.empty = 2).contains("polls with WNOHANG (2 empty polls, the last 1.0s ago)")
        );
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
}
