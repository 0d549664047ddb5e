//! `cargo xtask bench`: what tracing costs, measured against the tools
//! people use today (exitsnoop, a bpftrace one-liner) in the same run, on
//! the same workloads. Tracers alternate run by run (none, default,
//! `--events`, exitsnoop, bpftrace, then again), so that a machine that
//! drifts during the run drifts for all of them.

use std::{
    fs,
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{build, is_root, run_cmd, which, workspace_root};

/// The anchors' packages.
const ANCHORS: [(&str, &str); 2] = [("exitsnoop", "libbpf-tools"), ("bpftrace", "bpftrace")];

/// bpftrace's line per exit, as cheap as it gets.
const BPFTRACE_PROGRAM: &str =
    "tracepoint:sched:sched_process_exit { printf(\"%s %d\\n\", comm, pid); }";

/// How long the reader is stopped in the stalled-reader workload, and
/// after how long of the storm.
const STALL: Duration = Duration::from_secs(2);
const STALL_AFTER: Duration = Duration::from_secs(1);
/// How long exitsnoop and bpftrace are given to start.
const ANCHOR_SETTLE: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tracer {
    None,
    Default,
    Events,
    Exitsnoop,
    Bpftrace,
}

impl Tracer {
    const ALL: [Tracer; 5] = [
        Tracer::None,
        Tracer::Default,
        Tracer::Events,
        Tracer::Exitsnoop,
        Tracer::Bpftrace,
    ];

    fn name(self) -> &'static str {
        match self {
            Tracer::None => "no tracer",
            Tracer::Default => "zombie-trace (default)",
            Tracer::Events => "zombie-trace --events --format json",
            Tracer::Exitsnoop => "exitsnoop (libbpf-tools)",
            Tracer::Bpftrace => "bpftrace one-liner",
        }
    }

    fn command(self, zombie_trace: &Path) -> Option<Command> {
        let mut cmd = match self {
            Tracer::None => return None,
            Tracer::Default => Command::new(zombie_trace),
            Tracer::Events => Command::new(zombie_trace),
            Tracer::Exitsnoop => Command::new("exitsnoop"),
            Tracer::Bpftrace => Command::new("bpftrace"),
        };
        match self {
            Tracer::Default => cmd.args(["--format", "json"]),
            Tracer::Events => cmd.args(["--events", "--format", "json"]),
            Tracer::Bpftrace => cmd.args(["-e", BPFTRACE_PROGRAM]),
            _ => &mut cmd,
        };
        Some(cmd)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    /// One loop of fork, `_exit`, `waitpid`.
    Serial,
    /// One such loop per core.
    Parallel,
    /// The parallel storm with the tracer stopped (SIGSTOP) for a while.
    Stalled,
}

impl Workload {
    const ALL: [Workload; 3] = [Workload::Serial, Workload::Parallel, Workload::Stalled];

    fn name(self) -> &'static str {
        match self {
            Workload::Serial => "serial storm",
            Workload::Parallel => "parallel storm",
            Workload::Stalled => "parallel storm, reader stopped for 2 s",
        }
    }

    fn loops(self, cores: u64) -> u64 {
        match self {
            Workload::Serial => 1,
            Workload::Parallel | Workload::Stalled => cores,
        }
    }
}

/// One run of one workload under one tracer.
#[derive(Clone, Debug, Default)]
struct Run {
    wall_s: f64,
    /// The tracer's user + system CPU during the workload.
    cpu_s: Option<f64>,
    /// The workload's children the tracer saw exit.
    seen: Option<u64>,
    /// The records the tracer said it lost.
    lost: Option<u64>,
    /// `VmHWM`: for zombie-trace, its start-up (parsing the kernel's BTF).
    peak_rss_kb: Option<u64>,
    /// `VmRSS` after the workload.
    end_rss_kb: Option<u64>,
}

pub fn bench(rounds: usize, children: u64) -> Result<()> {
    if !is_root() {
        bail!("the benchmark loads eBPF programs: run it as root (sudo -E cargo xtask bench)");
    }
    if rounds == 0 || children == 0 {
        bail!("--rounds and --children must be at least 1");
    }
    build::build(true)?;
    install_anchors()?;
    let root = workspace_root();
    let dir = root.join("target/xtask/bench");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let storm = crate::soak::build_storm()?;
    let zombie_trace = root.join("target/release/zombie-trace");
    let cores = thread::available_parallelism().map_or(1, |n| n.get() as u64);

    let mut runs: Vec<(Workload, Tracer, Run)> = Vec::new();
    for round in 1..=rounds {
        for workload in Workload::ALL {
            for tracer in Tracer::ALL {
                let run = run_once(
                    tracer,
                    workload,
                    &zombie_trace,
                    &storm,
                    &dir,
                    children,
                    cores,
                )
                .with_context(|| format!("{} under {}", workload.name(), tracer.name()))?;
                println!(
                    "round {round}/{rounds}  {:<40} {:<36} wall {:.2} s  cpu {}  seen {}  lost {}",
                    workload.name(),
                    tracer.name(),
                    run.wall_s,
                    run.cpu_s.map_or("-".into(), |c| format!("{c:.2} s")),
                    show(run.seen),
                    show(run.lost),
                );
                runs.push((workload, tracer, run));
            }
        }
    }
    let report = report(&runs, children, cores, rounds);
    let out = dir.join("results.md");
    fs::write(&out, &report).with_context(|| format!("writing {}", out.display()))?;
    println!("\n{report}\n(also in {})", out.display());
    Ok(())
}

fn show(n: Option<u64>) -> String {
    n.map_or_else(|| "-".to_owned(), |n| n.to_string())
}

fn install_anchors() -> Result<()> {
    let missing: Vec<&str> = ANCHORS
        .iter()
        .filter(|(program, _)| which(program).is_none())
        .map(|&(_, package)| package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    run_cmd(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing),
        "install the comparison tools by hand (apt-get install libbpf-tools bpftrace)",
    )
}

fn run_once(
    tracer: Tracer,
    workload: Workload,
    zombie_trace: &Path,
    storm: &Path,
    dir: &Path,
    children: u64,
    cores: u64,
) -> Result<Run> {
    let out = dir.join("tracer.out");
    let err = dir.join("tracer.err");
    let mut child = match tracer.command(zombie_trace) {
        Some(mut cmd) => Some(
            cmd.stdin(Stdio::null())
                .stdout(fs::File::create(&out)?)
                .stderr(fs::File::create(&err)?)
                .spawn()
                .with_context(|| format!("starting {}", tracer.name()))?,
        ),
        None => None,
    };
    let result = measure(
        tracer,
        child.as_mut(),
        workload,
        storm,
        &out,
        children,
        cores,
    );
    if let Some(child) = child.as_mut() {
        stop(child);
    }
    let mut run = result?;
    if child.is_some() {
        let out = fs::read_to_string(&out).unwrap_or_default();
        let err = fs::read_to_string(&err).unwrap_or_default();
        let loops = workload.loops(cores);
        (run.seen, run.lost) = count(tracer, &out, &err, loops);
    }
    Ok(run)
}

fn measure(
    tracer: Tracer,
    child: Option<&mut Child>,
    workload: Workload,
    storm: &Path,
    out: &Path,
    children: u64,
    cores: u64,
) -> Result<Run> {
    let pid = match child {
        Some(child) => {
            wait_ready(
                child,
                out,
                matches!(tracer, Tracer::Exitsnoop | Tracer::Bpftrace),
            )?;
            Some(child.id())
        }
        None => None,
    };
    let cpu_before = pid.map(cpu_ticks).transpose()?;
    let started = Instant::now();
    let shares = vec![children; workload.loops(cores) as usize];
    let mut storms = crate::soak::start_storms(storm, &shares)?;
    // The storms are timed on their own thread while this one stalls the
    // reader.
    let wall_s = thread::scope(|scope| {
        let timer = scope.spawn(|| -> Result<f64> {
            for storm in &mut storms {
                let status = storm.wait()?;
                if !status.success() {
                    bail!("a storm failed: {status}");
                }
            }
            Ok(started.elapsed().as_secs_f64())
        });
        if let (Workload::Stalled, Some(pid)) = (workload, pid) {
            thread::sleep(STALL_AFTER);
            signal(pid, libc::SIGSTOP);
            thread::sleep(STALL);
            signal(pid, libc::SIGCONT);
        }
        timer
            .join()
            .unwrap_or_else(|_| bail!("the storm timer panicked"))
    })?;
    // What is still in the tracer's buffers is work the storm caused.
    if pid.is_some() {
        thread::sleep(Duration::from_secs(1));
    }
    let cpu_after = pid.map(cpu_ticks).transpose()?;
    let ticks = clock_ticks() as f64;
    Ok(Run {
        wall_s,
        cpu_s: cpu_before
            .zip(cpu_after)
            .map(|(a, b)| b.saturating_sub(a) as f64 / ticks),
        peak_rss_kb: pid.and_then(|pid| memory_kb(pid, "VmHWM:")),
        end_rss_kb: pid.and_then(|pid| memory_kb(pid, "VmRSS:")),
        ..Run::default()
    })
}

/// zombie-trace is ready once it printed its `ready` line. The anchors
/// print nothing telling into a file (stdio buffers it): they get a fixed
/// time to compile and attach, generous for both.
fn wait_ready(tracer: &mut Child, out: &Path, anchor: bool) -> Result<()> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    let ready = || {
        if anchor {
            started.elapsed() >= ANCHOR_SETTLE
        } else {
            fs::metadata(out).map_or(0, |m| m.len()) > 0
        }
    };
    while !ready() {
        if let Some(status) = tracer.try_wait()? {
            bail!("it exited ({status}) before it was ready");
        }
        if Instant::now() > deadline {
            bail!("it was not ready within a minute");
        }
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_millis(500));
    Ok(())
}

/// SIGINT (each prints its summary or its lost count), then SIGKILL if it
/// lingers.
fn stop(child: &mut Child) {
    signal(child.id(), libc::SIGINT);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn signal(pid: u32, signal: i32) {
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(pid as i32, signal) };
}

/// The workload's children each tracer saw exit, and the records it said
/// it lost. Every child of the storm is named `storm`, as is each loop
/// itself.
fn count(tracer: Tracer, out: &str, err: &str, loops: u64) -> (Option<u64>, Option<u64>) {
    let summary = out
        .lines()
        .rev()
        .find(|l| l.contains("\"type\":\"summary\""));
    let lost_said = |text: &str| -> u64 {
        text.lines()
            .filter_map(|l| {
                let rest = &l[l.find("Lost ")? + 5..];
                rest.split_whitespace().next()?.parse::<u64>().ok()
            })
            .sum()
    };
    match tracer {
        Tracer::None => (None, None),
        Tracer::Default => (
            summary.and_then(|s| number_after(s, "{\"comm\":\"storm\",\"count\":")),
            summary.and_then(|s| number_after(s, "\"lost\":")),
        ),
        Tracer::Events => (
            Some(
                (out.lines()
                    .filter(|l| l.contains("\"type\":\"exit\"") && l.contains("\"comm\":\"storm\""))
                    .count() as u64)
                    .saturating_sub(loops),
            ),
            summary.and_then(|s| number_after(s, "\"lost\":")),
        ),
        Tracer::Exitsnoop | Tracer::Bpftrace => (
            Some(
                (out.lines().filter(|l| l.starts_with("storm ")).count() as u64)
                    .saturating_sub(loops),
            ),
            Some(lost_said(out) + lost_said(err)),
        ),
    }
}

fn number_after(text: &str, key: &str) -> Option<u64> {
    let rest = &text[text.find(key)? + key.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat: did the tracer exit?"))?;
    // Fields after the `(comm)`, which may hold spaces: utime is the 14th
    // field overall, the 12th after it.
    let after = &stat[stat.rfind(')').context("odd /proc/PID/stat")? + 1..];
    let fields: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    Ok(fields.iter().sum())
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no memory preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).unwrap_or(100).max(1)
}

fn memory_kb(pid: u32, field: &str) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn spread(values: &[f64]) -> (f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

/// The tables: per workload, per tracer, medians and spreads.
fn report(runs: &[(Workload, Tracer, Run)], children: u64, cores: u64, rounds: usize) -> String {
    let mut md = String::new();
    for workload in Workload::ALL {
        let expected = children * workload.loops(cores);
        let of = |tracer: Tracer| -> Vec<&Run> {
            runs.iter()
                .filter(|(w, t, _)| *w == workload && *t == tracer)
                .map(|(_, _, r)| r)
                .collect()
        };
        let baseline = median(of(Tracer::None).iter().map(|r| r.wall_s).collect());
        md.push_str(&format!(
            "### {} ({} loop{} of {children} children, {expected} in all; {rounds} rounds)\n\n",
            workload.name(),
            workload.loops(cores),
            if workload.loops(cores) == 1 { "" } else { "s" },
        ));
        md.push_str(
            "| tracer | wall time, median (min–max) | slowdown | tracer CPU per 100k exits, median (min–max) | records lost (said) | children not seen | RSS at end (peak) |\n\
             |---|---|---|---|---|---|---|\n",
        );
        for tracer in Tracer::ALL {
            let runs = of(tracer);
            let walls: Vec<f64> = runs.iter().map(|r| r.wall_s).collect();
            let (lo, hi) = spread(&walls);
            let per_100k = |cpu: f64| cpu * 1000.0 * 100_000.0 / expected as f64;
            let cpus: Vec<f64> = runs.iter().filter_map(|r| r.cpu_s).map(per_100k).collect();
            let cpu = if cpus.is_empty() {
                "–".to_owned()
            } else {
                let (clo, chi) = spread(&cpus);
                format!("{:.0} ms ({clo:.0}–{chi:.0})", median(cpus.clone()))
            };
            let sum = |f: fn(&Run) -> Option<u64>| -> String {
                let values: Vec<u64> = runs.iter().filter_map(|r| f(r)).collect();
                if values.is_empty() {
                    "–".to_owned()
                } else {
                    values
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            };
            let seen: Vec<String> = runs
                .iter()
                .filter_map(|r| r.seen)
                .map(|s| expected.saturating_sub(s).to_string())
                .collect();
            let not_seen = if seen.is_empty() {
                "–".to_owned()
            } else {
                seen.join(", ")
            };
            let mb = |kb: Option<u64>| {
                kb.map_or("–".to_owned(), |kb| {
                    format!("{:.1} MB", kb as f64 / 1024.0)
                })
            };
            let rss = if runs.iter().any(|r| r.end_rss_kb.is_some()) {
                format!(
                    "{} ({})",
                    mb(runs.iter().filter_map(|r| r.end_rss_kb).max()),
                    mb(runs.iter().filter_map(|r| r.peak_rss_kb).max())
                )
            } else {
                "–".to_owned()
            };
            md.push_str(&format!(
                "| {} | {:.2} s ({lo:.2}–{hi:.2}) | {:.3} | {cpu} | {} | {not_seen} | {} |\n",
                tracer.name(),
                median(walls.clone()),
                median(walls) / baseline,
                sum(|r| r.lost),
                rss,
            ));
        }
        md.push('\n');
    }
    md
}
