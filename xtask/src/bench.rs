//! `cargo xtask bench`: what tracing costs, measured against the tools
//! people use today (exitsnoop, a bpftrace one-liner) in the same run, on
//! the same workloads. Each tracer's run is bracketed by runs without a
//! tracer (none, default, none, `--events`, none, exitsnoop, none,
//! bpftrace, none; each round starting one tracer further along), and its
//! slowdown is against the mean of the two around it: a machine whose
//! speed drifts by several percent from minute to minute then drifts for
//! the run and its baseline alike. Then the kernel's own accounting, the
//! memory soak, the userspace micro-benchmark, the flood of zombies of
//! one parent and the exec-heavy workload; everything lands in
//! BENCHMARKS.md, with the figure `plot` draws.

use std::{
    fs,
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{
    build, cores, is_root, output_of, plot, run_cmd, soak, target_dir, vmtest, which,
    workspace_root,
};

mod blocks;
mod exec;
mod flood;
mod kernel;
pub(crate) mod page;
mod release;
mod startup;

/// The anchors' packages, and bpftool for the kernel's accounting.
const ANCHORS: [(&str, &str); 4] = [
    ("exitsnoop", "libbpf-tools"),
    ("execsnoop", "libbpf-tools"),
    ("bpftrace", "bpftrace"),
    ("bpftool", "bpftool"),
];

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

    fn short_name(self) -> &'static str {
        match self {
            Workload::Serial => "serial",
            Workload::Parallel => "parallel",
            Workload::Stalled => "stalled",
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
    /// The workload's own CPU (user + system of the storms and their
    /// children), which is where the kernel programs' cost lands.
    workload_cpu_s: f64,
    /// The tracer's CPU during the workload.
    cpu_s: Option<f64>,
    /// The workload's children the tracer saw exit.
    seen: Option<u64>,
    /// The records the tracer said it lost.
    lost: Option<u64>,
    /// zombie-trace's zombie reports: the storms' children are all reaped
    /// at once, so any is false.
    reports: Option<u64>,
    /// `VmHWM`: for zombie-trace, its start-up (parsing the kernel's BTF).
    peak_rss_kb: Option<u64>,
    /// `VmRSS` after the workload.
    end_rss_kb: Option<u64>,
    /// The stalled workload's storm ended before the reader was stopped.
    stall_missed: bool,
    /// For a tracer's run: the mean of the no-tracer runs just before and
    /// after it, wall time and workload CPU.
    baseline: Option<(f64, f64)>,
}

impl Run {
    /// Wall time and workload CPU over the baseline's.
    fn slowdown(&self) -> Option<(f64, f64)> {
        let (wall, cpu) = self.baseline?;
        Some((self.wall_s / wall, self.workload_cpu_s / cpu))
    }
}

/// What `cargo xtask bench` was asked to do.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Rounds of every tracer on every workload (wall times on a shared
    /// machine drift: fewer rounds make noisier medians).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Children per fork loop.
    #[arg(long, default_value_t = 100_000)]
    pub children: u64,
    /// Children of the memory soak that follows.
    #[arg(long, default_value_t = 1_000_000)]
    pub soak_children: u64,
    /// Zombies of the one parent of the flood, the last workload.
    #[arg(long, default_value_t = 20_000)]
    pub flood_children: u64,
    /// Children of the exec-heavy workload (fork + exec of `/bin/true`).
    #[arg(long, default_value_t = 8_000)]
    pub exec_children: u64,
    /// Short bracketed blocks of the exec workload under each of the
    /// default mode and exitsnoop, for its wall-time slowdown.
    #[arg(long, default_value_t = 400)]
    pub exec_blocks: usize,
    /// Run only this part (its rounds are --rounds) and rewrite only its
    /// section of BENCHMARKS.md.
    #[arg(long, value_enum)]
    pub only: Option<Only>,
}

/// A part of the benchmark that runs alone and rewrites only its section
/// of BENCHMARKS.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Only {
    /// Zombies of one parent (`--flood-children`).
    Flood,
    /// The release files of `cargo xtask dist`: their sizes, and each way's
    /// time from exec to ready beside exitsnoop's and bpftrace's to their
    /// first event.
    Release,
    /// The exec-heavy workload (`--exec-children`): what capturing at exec
    /// and at fork costs, beside exitsnoop and execsnoop.
    Exec,
}

pub fn bench(options: &Options) -> Result<()> {
    if !is_root() {
        bail!("the benchmark loads eBPF programs: run it as root (sudo -E cargo xtask bench)");
    }
    let &Options {
        rounds,
        children,
        soak_children,
        flood_children,
        exec_children,
        exec_blocks,
        only,
    } = options;
    let cores = cores() as u64;
    if rounds == 0
        || children == 0
        || flood_children == 0
        || exec_children == 0
        || exec_blocks == 0
        || soak_children < cores
    {
        bail!(
            "--rounds, --children, --flood-children, --exec-children and --exec-blocks must be \
             at least 1, --soak-children at least {cores}"
        );
    }
    build::build(true)?;
    install_anchors()?;
    let root = workspace_root();
    let dir = target_dir().join("xtask/bench");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let zombie_trace = target_dir().join("release/zombie-trace");
    let machine = machine();
    let out = root.join("BENCHMARKS.md");
    if only == Some(Only::Flood) {
        let command = format!(
            "cargo xtask bench --only flood --rounds {rounds} --flood-children {flood_children}"
        );
        let flood = flood::measure(&zombie_trace, &dir, flood_children, rounds)?;
        let section = flood::section(&flood, &command, &machine);
        flood::rewrite(&out, &section)?;
        println!("\n{section}\n(written to {})", out.display());
        return Ok(());
    }
    if only == Some(Only::Release) {
        let command = "cargo xtask bench --only release";
        let release = release::measure(&zombie_trace)?;
        let section = release::section(&release, command, &machine);
        release::rewrite(&out, &section)?;
        println!("\n{section}\n(written to {})", out.display());
        return Ok(());
    }
    let storm = soak::build_storm()?;
    if only == Some(Only::Exec) {
        let command = format!(
            "cargo xtask bench --only exec --rounds {rounds} --exec-children {exec_children} \
             --exec-blocks {exec_blocks}"
        );
        let exec = exec::measure(&zombie_trace, &storm, &dir, options)?;
        let section = exec::section(&exec, &command, &machine);
        exec::rewrite(&out, &section)?;
        println!("\n{section}\n(written to {})", out.display());
        return Ok(());
    }

    let mut runs: Vec<(Workload, Tracer, Run)> = Vec::new();
    for round in 1..=rounds {
        for workload in Workload::ALL {
            let mut sequence = Vec::new();
            for tracer in schedule(Tracer::None, &Tracer::ALL[1..], round) {
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
                    run.cpu_s
                        .map_or("-".into(), |c| format!("{:.0} ms", c * 1000.0)),
                    show(run.seen),
                    show(run.lost),
                );
                sequence.push((tracer, run));
            }
            bracket(&mut sequence, &Tracer::None);
            runs.extend(sequence.into_iter().map(|(t, r)| (workload, t, r)));
        }
    }
    println!("\nkernel programs' own accounting, one serial storm each");
    let kernel = kernel::measure(
        &[
            Tracer::Default,
            Tracer::Events,
            Tracer::Exitsnoop,
            Tracer::Bpftrace,
        ],
        &zombie_trace,
        &storm,
        &dir,
        children,
    )?;
    println!("\nsoak: {soak_children} children under zombie-trace");
    let soak = soak::run(&storm, soak_children, cores)?;
    println!("{}", soak.text);
    let micro = micro_bench()?;
    println!("\nflood: {flood_children} zombies of one parent");
    let flood = flood::measure(&zombie_trace, &dir, flood_children, rounds)?;
    println!("\nrelease: the files of `cargo xtask dist`, and start-up");
    let release = release::measure(&zombie_trace)?;
    println!("\nexec: {exec_children} children of fork + exec");
    let exec = exec::measure(&zombie_trace, &storm, &dir, options)?;

    let command = format!(
        "cargo xtask bench --rounds {rounds} --children {children} --soak-children {soak_children} \
         --flood-children {flood_children} --exec-children {exec_children} --exec-blocks {exec_blocks}"
    );
    let figure = root.join(FIGURE);
    plot::cpu_per_100k(&figure, &page::bars(&runs, children, cores))?;
    let md = page::markdown(&page::Page {
        command: &command,
        machine: &machine,
        runs: &runs,
        children,
        cores,
        rounds,
        soak: &soak,
        soak_children,
        micro: &micro,
        kernel: &kernel,
        flood: &flood::section(&flood, &command, &machine),
        release: &release::section(&release, &command, &machine),
        exec: &exec::section(&exec, &command, &machine),
        vmtest: &page::kept(&out, vmtest::TAX_MARKERS),
    });
    fs::write(&out, &md).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "\n{md}\n(written to {} and {})",
        out.display(),
        figure.display()
    );
    Ok(())
}

/// The `tracers` of round `round` (from 1), each between two runs without
/// a tracer (`none`), the first one further along each round.
fn schedule<T: Copy>(none: T, tracers: &[T], round: usize) -> Vec<T> {
    (0..tracers.len())
        .flat_map(|i| [none, tracers[(i + round - 1) % tracers.len()]])
        .chain([none])
        .collect()
}

/// Gives each tracer's run in `sequence` (as [`schedule`] ordered it) the
/// mean of the runs without a tracer (`none`) on either side as its
/// baseline.
fn bracket<T: PartialEq>(sequence: &mut [(T, Run)], none: &T) {
    for i in 1..sequence.len().saturating_sub(1) {
        let (before, after) = (&sequence[i - 1], &sequence[i + 1]);
        if sequence[i].0 != *none && before.0 == *none && after.0 == *none {
            let mean = |f: fn(&Run) -> f64| (f(&before.1) + f(&after.1)) / 2.0;
            sequence[i].1.baseline = Some((mean(|r| r.wall_s), mean(|r| r.workload_cpu_s)));
        }
    }
}

/// The figure, beside BENCHMARKS.md.
const FIGURE: &str = "BENCHMARKS-cpu.svg";

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
        "install the comparison tools by hand (apt-get install libbpf-tools bpftrace bpftool)",
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
    let mut child = start(tracer, zombie_trace, dir)?;
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
        (run.seen, run.lost, run.reports) = count(tracer, &out, &err, loops);
    }
    Ok(run)
}

/// Starts `tracer` (none for [`Tracer::None`]) as [`spawn`] does.
fn start(tracer: Tracer, zombie_trace: &Path, dir: &Path) -> Result<Option<Child>> {
    tracer
        .command(zombie_trace)
        .map(|cmd| spawn(cmd, tracer.name(), dir))
        .transpose()
}

/// Starts the tracer `cmd` (`name`), its stdout and stderr into
/// `tracer.out` and `tracer.err` in `dir`.
fn spawn(mut cmd: Command, name: &str, dir: &Path) -> Result<Child> {
    let file = |name: &str| {
        let path = dir.join(name);
        fs::File::create(&path).with_context(|| format!("creating {}", path.display()))
    };
    cmd.stdin(Stdio::null())
        .stdout(file("tracer.out")?)
        .stderr(file("tracer.err")?)
        .spawn()
        .with_context(|| format!("starting {name}"))
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
    let cpu_before = pid.map(cpu_ns).transpose()?;
    let started = Instant::now();
    let shares = vec![children; workload.loops(cores) as usize];
    let storms = soak::start_storms(storm, &shares)?;
    // The storms are timed on their own thread while this one stalls the
    // reader.
    let mut stall_missed = false;
    let (wall_s, workload_cpu_s) = thread::scope(|scope| {
        let timer = scope.spawn(|| -> Result<(f64, f64)> {
            let mut cpu_s = 0.0;
            for storm in &storms {
                cpu_s += reap_storm(storm)?;
            }
            Ok((started.elapsed().as_secs_f64(), cpu_s))
        });
        if let (Workload::Stalled, Some(pid)) = (workload, pid) {
            thread::sleep(STALL_AFTER);
            stall_missed = timer.is_finished();
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
    let cpu_after = pid.map(cpu_ns).transpose()?;
    Ok(Run {
        wall_s,
        workload_cpu_s,
        cpu_s: cpu_before
            .zip(cpu_after)
            .map(|(a, b)| b.saturating_sub(a) as f64 / 1e9),
        peak_rss_kb: pid.and_then(|pid| soak::memory_kb(pid, "VmHWM:")),
        end_rss_kb: pid.and_then(|pid| soak::memory_kb(pid, "VmRSS:")),
        stall_missed,
        ..Run::default()
    })
}

/// Waits for one storm loop; returns the CPU it and its children used.
fn reap_storm(storm: &Child) -> Result<f64> {
    let mut status = 0;
    // SAFETY: all-zero is a valid rusage, which wait4 fills.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live locals. The kernel adds the
    // children the storm reaped to its own usage: the workload in all.
    let pid = unsafe { libc::wait4(storm.id() as i32, &mut status, 0, &mut usage) };
    if pid < 0 {
        bail!("waiting for a storm: {}", std::io::Error::last_os_error());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("a storm failed (wait status {status:#x})");
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

/// zombie-trace is ready once it printed its `ready` line. The anchors
/// print nothing telling into a file (stdio buffers it): they get a fixed
/// time to compile and attach, generous for both.
fn wait_ready(tracer: &mut Child, out: &Path, anchor: bool) -> Result<()> {
    let started = Instant::now();
    soak::wait_ready(tracer, || {
        if anchor {
            started.elapsed() >= ANCHOR_SETTLE
        } else {
            soak::first_line_out(out)
        }
    })
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
        // Short: the exec workload's blocks stop a tracer every second.
        thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn signal(pid: u32, signal: i32) {
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(pid as i32, signal) };
}

/// The workload's children each tracer saw exit, the records it said it
/// lost, and (zombie-trace) its zombie reports. Every child of the storm
/// is named `storm`, as is each loop itself.
fn count(
    tracer: Tracer,
    out: &str,
    err: &str,
    loops: u64,
) -> (Option<u64>, Option<u64>, Option<u64>) {
    let summary = out
        .lines()
        .rev()
        .find(|l| l.contains("\"type\":\"summary\""));
    let reports = || {
        Some(
            out.lines()
                .filter(|l| l.contains("\"type\":\"zombie\""))
                .count() as u64,
        )
    };
    match tracer {
        Tracer::None => (None, None, None),
        Tracer::Default => (
            summary.and_then(|s| number_after(s, "{\"comm\":\"storm\",\"count\":")),
            summary.and_then(|s| number_after(s, "\"lost\":")),
            reports(),
        ),
        Tracer::Events => (
            Some(
                (out.lines()
                    .filter(|l| l.contains("\"type\":\"exit\"") && l.contains("\"comm\":\"storm\""))
                    .count() as u64)
                    .saturating_sub(loops),
            ),
            summary.and_then(|s| number_after(s, "\"lost\":")),
            reports(),
        ),
        Tracer::Exitsnoop | Tracer::Bpftrace => (
            Some(
                (out.lines().filter(|l| l.starts_with("storm ")).count() as u64)
                    .saturating_sub(loops),
            ),
            Some(lost_said(out) + lost_said(err)),
            None,
        ),
    }
}

/// The anchors' own words: exitsnoop's "lost N events on CPU #C",
/// bpftrace's "Lost N events".
fn lost_said(text: &str) -> u64 {
    text.lines()
        .filter_map(|line| {
            let at = line.to_ascii_lowercase().find("lost ")?;
            line[at + 5..]
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

fn number_after(text: &str, key: &str) -> Option<u64> {
    let rest = &text[text.find(key)? + key.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The tracer's CPU time in ns: the sum of its threads' time on a CPU
/// (`/proc/PID/task/TID/schedstat`, in ns; `/proc/PID/stat` counts in
/// 10 ms ticks, too coarse for a tracer that does little). The tracers
/// measured keep their threads for the whole run.
fn cpu_ns(pid: u32) -> Result<u64> {
    let tasks = format!("/proc/{pid}/task");
    let mut total = 0;
    for task in
        fs::read_dir(&tasks).with_context(|| format!("reading {tasks}: did the tracer exit?"))?
    {
        let path = task?.path().join("schedstat");
        let Ok(stat) = fs::read_to_string(&path) else {
            continue;
        };
        total += stat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .with_context(|| {
                format!(
                    "odd {}: is the kernel built without schedstats?",
                    path.display()
                )
            })?;
    }
    Ok(total)
}

/// Runs the divan micro-benchmark of decoding and pairing (one thread) and
/// returns its table.
fn micro_bench() -> Result<String> {
    println!("\n$ cargo bench -p zombie-trace --bench pairing");
    let out = Command::new(env!("CARGO"))
        .args(["bench", "-p", "zombie-trace", "--bench", "pairing"])
        .env("DIVAN_THREADS", "1")
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo bench")?;
    if !out.status.success() {
        bail!(
            "the micro-benchmark failed ({}): run `cargo bench -p zombie-trace --bench pairing` to see why",
            out.status
        );
    }
    let table = String::from_utf8_lossy(&out.stdout).trim_end().to_owned();
    println!("{table}");
    Ok(table)
}

/// What describes the machine: CPU, cores, memory, kernel, distribution,
/// virtualisation, and the anchors' versions.
fn machine() -> Vec<(&'static str, String)> {
    let read = |path: &str| fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let field = |text: &str, key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| {
                v.trim_start_matches([' ', '\t', ':', '='])
                    .trim_matches('"')
                    .to_owned()
            })
            .unwrap_or_else(|| "unknown".to_owned())
    };
    let cores = cores();
    let mem_gib = field(&read("/proc/meminfo"), "MemTotal")
        .split_whitespace()
        .next()
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or_else(
            || "unknown".to_owned(),
            |kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0),
        );
    let virt = output_of(Command::new("systemd-detect-virt").arg("--vm"))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| {
            if cpuinfo.contains(" hypervisor") {
                "a virtual machine".to_owned()
            } else {
                "none found".to_owned()
            }
        });
    let version = |cmd: &mut Command| {
        output_of(cmd).map_or_else(|| "unknown".to_owned(), |v| v.trim().to_owned())
    };
    let git = |args: &[&str]| output_of(Command::new("git").args(args)).unwrap_or_default();
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).trim().to_owned();
    let dirty = if git(&["status", "--porcelain", "--untracked-files=no"])
        .trim()
        .is_empty()
    {
        ""
    } else {
        " with uncommitted changes"
    };
    vec![
        (
            "CPU",
            format!("{}, {cores} cores", field(&cpuinfo, "model name")),
        ),
        ("memory", mem_gib),
        (
            "kernel",
            read("/proc/sys/kernel/osrelease").trim().to_owned(),
        ),
        ("system", field(&read("/etc/os-release"), "PRETTY_NAME")),
        ("virtualisation", virt),
        (
            "zombie-trace",
            format!("commit {commit}{dirty}, release build"),
        ),
        (
            "exitsnoop",
            format!(
                "libbpf-tools {}",
                version(Command::new("dpkg-query").args([
                    "-W",
                    "-f",
                    "${Version}",
                    "libbpf-tools"
                ]))
            ),
        ),
        (
            "bpftrace",
            version(Command::new("bpftrace").arg("--version")),
        ),
        (
            "date",
            version(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tracer_runs_between_two_runs_without_one() {
        for round in 1..=6 {
            let order = schedule(Tracer::None, &Tracer::ALL[1..], round);
            assert_eq!(order.len(), 2 * Tracer::ALL.len() - 1);
            for (i, tracer) in order.iter().enumerate() {
                assert_eq!(
                    *tracer == Tracer::None,
                    i % 2 == 0,
                    "round {round}: {order:?}"
                );
            }
            let mut tracers: Vec<_> = order.iter().skip(1).step_by(2).collect();
            assert_eq!(
                *tracers[0],
                Tracer::ALL[1 + (round - 1) % 4],
                "round {round}"
            );
            tracers.sort_by_key(|t| Tracer::ALL.iter().position(|a| a == *t));
            assert_eq!(tracers, Tracer::ALL[1..].iter().collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_run_is_measured_against_the_runs_around_it() {
        let run = |wall_s, workload_cpu_s| Run {
            wall_s,
            workload_cpu_s,
            ..Run::default()
        };
        let mut sequence: Vec<(Tracer, Run)> = schedule(Tracer::None, &Tracer::ALL[1..], 1)
            .into_iter()
            .zip([10.0, 10.5, 11.0, 12.1, 12.0, 13.0, 12.0, 12.0, 12.0])
            .map(|(t, wall)| (t, run(wall, wall * 2.0)))
            .collect();
        bracket(&mut sequence, &Tracer::None);
        let slowdowns: Vec<_> = sequence.iter().map(|(_, r)| r.slowdown()).collect();
        assert_eq!(slowdowns[0], None);
        assert_eq!(slowdowns[2], None);
        assert_eq!(slowdowns[1], Some((1.0, 1.0)));
        let (wall, cpu) = slowdowns[3].unwrap();
        assert!((wall - 12.1 / 11.5).abs() < 1e-9 && (cpu - wall).abs() < 1e-9);
        assert_eq!(slowdowns[7], Some((1.0, 1.0)));
    }
}
