//! Aligned text for people: `HH:MM:SS.mmm KIND    ` then the line, every
//! untrusted byte escaped.

use std::{fmt::Write as _, time::SystemTime};

use super::{
    Flood, Kind,
    escape::{escape_text, word},
    human_ms, last_wait_ms_ago, ms, parent_name,
    sentence::sentence,
    signal_name, since_epoch, target_name, target_rows,
};
use crate::{
    model::{
        event::{Comm, Command, ExitStatus},
        process::{Placement, ProcessInfo, WaitStats},
        report::{
            Exited, Frame, Latency, Line, Lost, ParentGroup, Ready, Reaped, Snapshot, Summary,
            Zombie,
        },
    },
    proc::parse::state_name,
};

/// Arguments shown in text beyond this many characters are cut.
pub(super) const CMDLINE_MAX_CHARS: usize = 256;
/// Pids listed per parent in the text summary.
const SUMMARY_MAX_PIDS: usize = 20;
/// `HH:MM:SS.mmm KIND    `: where the text summary's group lines start.
pub(super) const INDENT: &str = "                     ";
/// Rows of the per-parent table in a text summary (JSON has them all).
const SUMMARY_MAX_PARENTS: usize = 20;
/// Frames of a spawn stack on a text line.
const SPAWN_FRAMES: usize = 3;
/// Child commands per parent in a text summary.
const SUMMARY_MAX_COMMANDS: usize = 5;
/// Reaper names in a text summary.
const SUMMARY_MAX_COMMS: usize = 5;

pub(super) fn cmdline_text<A: AsRef<[u8]>>(args: impl IntoIterator<Item = A>) -> String {
    let mut joined = String::new();
    for arg in args {
        let arg = arg.as_ref();
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

/// ` cmd=[git fetch origin]`, `...` where the kernel kept only the start,
/// and ` (parent's)` for a child that never exec'd.
fn command_text(c: &Command) -> String {
    let mut out = format!(" cmd=[{}", cmdline_text(c.args()));
    if c.truncated && !out.ends_with("...") {
        out.push_str("...");
    }
    out.push(']');
    if c.inherited {
        out.push_str(" (parent's)");
    }
    out
}

/// ` spawned-at=[spawn_leaky+0x9 (leak.c:6) < main+0x12 (leak.c:17)]`:
/// the first frames past the fork machinery (the library the stack starts
/// in, libc), where the parent's own code forked.
fn spawn_text(frames: &[Frame]) -> String {
    let first = frames.first().and_then(|f| f.module.as_deref());
    let own = frames
        .iter()
        .position(|f| f.module.as_deref() != first)
        .unwrap_or(0);
    let shown: Vec<String> = frames[own..]
        .iter()
        .take(SPAWN_FRAMES)
        .map(|f| escape_text(f.to_string().as_bytes()))
        .collect();
    format!(" spawned-at=[{}]", shown.join(" < "))
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
pub(super) fn text_ts(ts: SystemTime) -> String {
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

pub(super) fn line(line: &Line, boot_now_ns: Option<u64>) -> String {
    let (ts, kind, body) = match line {
        Line::Ready(r) => (r.ts, "READY", ready_text(r)),
        Line::Zombie(z) => (z.ts, "ZOMBIE", zombie_text(z, boot_now_ns)),
        Line::Reaped { ts, reaped } => (*ts, "REAP", reap_text(reaped)),
        Line::Exited(e) => (e.ts, "EXIT", exit_text(e)),
        Line::Lost(l) => (l.ts, "LOST", lost_text(l)),
        Line::Summary(s) => (s.ts, "SUMMARY", summary_text(s)),
        Line::Snapshot(s) => (s.ts, "PS", snapshot_text(s)),
    };
    format!("{} {kind:<7} {body}", text_ts(ts))
}

fn ready_text(r: &Ready) -> String {
    format!(
        "zombie-trace {} pid={} kernel={} threshold={} preexisting={} wait-tracing={}{}",
        word(r.version.as_bytes()),
        r.pid,
        word(r.kernel.as_bytes()),
        human_ms(r.threshold_ms),
        r.preexisting,
        if r.wait_tracing { "on" } else { "off" },
        r.wait_hooks
            .map(|h| format!(" wait-hooks={}", h.name()))
            .unwrap_or_default(),
    )
}

/// The child's half of a zombie line.
fn child_text(z: &Zombie) -> String {
    let mut out = format!("pid={} comm={}", z.pid, comm_text(&z.comm));
    if let Some(c) = &z.command {
        out.push_str(&command_text(c));
    }
    if let Some(frames) = &z.spawn_stack {
        out.push_str(&spawn_text(frames));
    }
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
    if let Some(p) = &z.original_parent {
        let _ = write!(
            out,
            " reparented-from={} original-parent={}",
            p.pid,
            comm_text(&p.comm)
        );
    }
    out
}

/// A zombie line whose parent's details are on the line above it (a flood
/// gate's brief form); its diagnosis only if it says something else.
pub(super) fn brief_zombie(z: &Zombie, diagnosis: bool) -> String {
    format!(
        "{} {:<7} {}",
        text_ts(z.ts),
        "ZOMBIE",
        brief_zombie_text(z, diagnosis)
    )
}

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
    if diagnosis {
        let said = sentence(&z.diagnosis, &parent_name(z));
        let _ = write!(out, " | {}", escape_text(said.as_bytes()));
    }
    out
}

/// `parent 1234 leaker: 1997 more zombies in 1.0s, pids 30001..32000,
/// oldest 5.1s (each has a line in JSON)`, or for reaps `reaped-by 1234
/// leaker: 1997 more reaps of reported zombies in 1.0s, ..., longest
/// zombie-for 8.2s (...)`.
pub(super) fn flood(f: &Flood, ts: SystemTime, boot_now_ns: u64) -> String {
    let kind = match f.kind {
        Kind::Zombies => "ZOMBIES",
        Kind::Reaps => "REAPS",
    };
    format!("{} {kind:<7} {}", text_ts(ts), flood_text(f, boot_now_ns))
}

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
    let said = sentence(&z.diagnosis, &parent_name(z));
    let _ = write!(out, " | {}", escape_text(said.as_bytes()));
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
    if let Some(name) = &p.names.name {
        let _ = write!(out, " container-name={}", word(name.as_bytes()));
    }
    if let Some(pod) = &p.names.pod_name {
        let ns = p.names.pod_namespace.as_deref().unwrap_or("?");
        let _ = write!(out, " pod={}", word(format!("{ns}/{pod}").as_bytes()));
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
    let _ = write!(out, " comm={}", comm_text(&e.comm));
    if let Some(c) = &e.command {
        out.push_str(&command_text(c));
    }
    let _ = write!(
        out,
        " {} | parent {} {}",
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
        if !p.by_command.is_empty() {
            let rows: Vec<String> = p
                .by_command
                .iter()
                .take(SUMMARY_MAX_COMMANDS)
                .map(|r| {
                    format!(
                        "{} now={} ever={}",
                        word(&r.command),
                        r.zombies_now,
                        r.zombies_ever
                    )
                })
                .collect();
            let more = p.by_command.len().saturating_sub(SUMMARY_MAX_COMMANDS);
            let _ = write!(out, " | by command: {}", rows.join("; "));
            if more > 0 {
                let _ = write!(out, " (+{more} more)");
            }
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
