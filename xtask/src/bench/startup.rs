//! Start-up against the anchors: zombie-trace from `exec` to its ready
//! line, with the parts its ready line gives; exitsnoop and bpftrace from
//! `exec` to their first line about an exit, while children exit every
//! few milliseconds. And the CPU each used until then.

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use super::{
    page::{median, with_spread},
    signal, stop,
};

/// The longest a start may take before the bench gives up on it.
const WITHIN: Duration = Duration::from_secs(60);
/// How often a child exits while an anchor starts: its first event comes
/// at most this late (and the time to spawn `/bin/true`).
pub const POKE_EVERY: Duration = Duration::from_millis(5);
/// The ready line's `startup` object: each part's key and its column.
const PARTS: [(&str, &str); 4] = [
    ("btf_ms", "BTF"),
    ("load_ms", "load"),
    ("attach_ms", "attach"),
    ("scan_ms", "scan"),
];

/// What ends a start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// zombie-trace's JSON ready line.
    Ready,
    /// An anchor's first line about an exit of a `/bin/true` (its first
    /// word is the command's name in both anchors' output).
    FirstExit,
}

/// One start.
#[derive(Clone, Debug, PartialEq)]
pub struct Start {
    pub wall_ms: f64,
    /// The started process's CPU in all: starting, up to that line, and
    /// stopping at once after it.
    pub cpu_ms: Option<f64>,
    /// The ready line's parts, in the order of [`PARTS`].
    pub parts: Option<[f64; 4]>,
}

/// From spawning `cmd` to the line `until` waits for; then it is stopped,
/// and with `cpu` its CPU counted (not when it only starts the tracer, as
/// podman does).
pub fn start_up(mut cmd: Command, until: Until, cpu: bool) -> Result<Start> {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("spawning")?;
    let stdout = child.stdout.take().context("its stdout")?;
    let done = AtomicBool::new(false);
    let start = thread::scope(|scope| -> Result<Start> {
        let poker = (until == Until::FirstExit).then(|| scope.spawn(|| poke(&done)));
        let mut found = None;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
            let parts = match until {
                Until::Ready if line.contains(r#""type":"ready""#) => parts(&line)?,
                Until::FirstExit if line.split_whitespace().next() == Some("true") => None,
                _ if started.elapsed() > WITHIN => break,
                _ => continue,
            };
            found = Some(Start {
                wall_ms,
                cpu_ms: None,
                parts,
            });
            break;
        }
        done.store(true, Ordering::Relaxed);
        if let Some(poker) = poker {
            poker
                .join()
                .unwrap_or_else(|_| bail!("the child spawner panicked"))?;
        }
        found.with_context(|| match until {
            Until::Ready => "no ready line",
            Until::FirstExit => "no line about an exit",
        })
    });
    let cpu_ms = stop_counting(&mut child);
    start.map(|start| Start {
        cpu_ms: cpu.then_some(cpu_ms).flatten(),
        ..start
    })
}

/// Stops `child` as [`stop`] does, and says how much CPU it used in all,
/// in ms: every thread's, those that ended before too (zombie-trace
/// verifies its programs on threads of their own), which a live count of
/// its threads would miss.
fn stop_counting(child: &mut Child) -> Option<f64> {
    signal(child.id(), libc::SIGINT);
    let pid = child.id() as libc::pid_t;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut status = 0;
    // SAFETY: all-zero is a valid rusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers; `pid` is our child, not yet reaped.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if reaped == pid {
            let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
            return Some(ms(usage.ru_utime) + ms(usage.ru_stime));
        }
        if reaped < 0 {
            return None;
        }
        if Instant::now() > deadline {
            stop(child);
            return None;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// A short-lived child every [`POKE_EVERY`] until `done`.
fn poke(done: &AtomicBool) -> Result<()> {
    while !done.load(Ordering::Relaxed) {
        Command::new("/bin/true")
            .status()
            .context("running /bin/true")?;
        thread::sleep(POKE_EVERY);
    }
    Ok(())
}

/// The ready line's `startup` parts; none from a tracer that does not
/// give them yet.
fn parts(ready: &str) -> Result<Option<[f64; 4]>> {
    let line: serde_json::Value =
        serde_json::from_str(ready).with_context(|| format!("the ready line {ready}"))?;
    let Some(startup) = line.get("startup") else {
        return Ok(None);
    };
    let mut parts = [0.0; 4];
    for (part, (key, _)) in parts.iter_mut().zip(PARTS) {
        *part = startup
            .get(key)
            .and_then(serde_json::Value::as_f64)
            .with_context(|| format!("the ready line's startup has no number {key}: {ready}"))?;
    }
    Ok(Some(parts))
}

/// The table of each way's starts: time to ready or first event (median,
/// range), CPU and the parts (medians), "–" where none.
pub fn table(rows: &[(&str, Vec<Start>)]) -> String {
    let mut table = String::from("| how | exec → ready / first event | CPU |");
    for (_, column) in PARTS {
        table.push_str(&format!(" {column} |"));
    }
    table.push_str("\n|---|---|---|---|---|---|---|\n");
    let show = |values: Vec<f64>, digits: usize| {
        median(values).map_or_else(|| "–".to_owned(), |m| format!("{m:.digits$} ms"))
    };
    for (name, starts) in rows {
        let wall: Vec<f64> = starts.iter().map(|s| s.wall_ms).collect();
        table.push_str(&format!(
            "| {name} | {} | {} |",
            with_spread(&wall, "ms", 0),
            show(starts.iter().filter_map(|s| s.cpu_ms).collect(), 0)
        ));
        for i in 0..PARTS.len() {
            let part = starts.iter().filter_map(|s| s.parts.map(|p| p[i]));
            table.push_str(&format!(" {} |", show(part.collect(), 1)));
        }
        table.push('\n');
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_line_gives_its_parts_or_none() {
        let ready = r#"{"type":"ready","pid":7,"startup":{"btf_ms":12.5,"load_ms":30,"attach_ms":4.25,"scan_ms":1.0},"node":"vm"}"#;
        assert_eq!(parts(ready).unwrap(), Some([12.5, 30.0, 4.25, 1.0]));
        assert_eq!(parts(r#"{"type":"ready","pid":7}"#).unwrap(), None);
        let short = r#"{"type":"ready","startup":{"btf_ms":12.5,"load_ms":30}}"#;
        assert!(parts(short).unwrap_err().to_string().contains("attach_ms"));
        assert!(parts("ready").is_err());
    }

    #[test]
    fn the_table_has_a_dash_where_a_part_does_not_apply() {
        let start = |wall_ms, cpu_ms, parts| Start {
            wall_ms,
            cpu_ms,
            parts,
        };
        let rows = [
            (
                "the glibc build",
                vec![
                    start(120.0, Some(30.0), Some([10.0, 50.0, 5.0, 2.0])),
                    start(100.0, Some(20.0), Some([12.0, 40.0, 4.0, 1.0])),
                    start(140.0, Some(40.0), Some([8.0, 60.0, 6.0, 3.0])),
                ],
            ),
            (
                "the image under podman",
                vec![start(800.0, None, None), start(900.0, None, None)],
            ),
            ("exitsnoop", vec![start(45.0, Some(21.0), None)]),
        ];
        assert_eq!(
            table(&rows),
            "| how | exec → ready / first event | CPU | BTF | load | attach | scan |\n\
             |---|---|---|---|---|---|---|\n\
             | the glibc build | 120 ms (100–140) | 30 ms | 10.0 ms | 50.0 ms | 5.0 ms | 2.0 ms |\n\
             | the image under podman | 850 ms (800–900) | – | – | – | – | – |\n\
             | exitsnoop | 45 ms (45–45) | 21 ms | – | – | – | – |\n"
        );
    }
}
