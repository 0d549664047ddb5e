//! `cargo xtask soak`: memory stays flat. Builds the tracer, starts it in
//! its default mode, runs a storm of short-lived, properly reaped children
//! (`tests/scenarios/storm.c`, one loop per core by default) and samples
//! the tracer's resident memory from `/proc` while it works. Prints the
//! figures that BENCHMARKS.md records.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{build, root_command, run_cmd, workspace_root};

pub fn soak(children: u64, parallel: u64) -> Result<()> {
    build::build(true)?;
    let storm = build_storm()?;
    let soak = run(&storm, children, parallel)?;
    println!("\n{}", soak.text);
    Ok(())
}

/// What a soak found.
pub struct Soak {
    /// The tracer's RSS at its highest, over its RSS once ready.
    pub growth_kb: u64,
    /// The figures as BENCHMARKS.md shows them.
    pub text: String,
}

/// Runs the soak with a built tracer and storm helper.
pub fn run(storm: &Path, children: u64, parallel: u64) -> Result<Soak> {
    if parallel == 0 || children < parallel {
        bail!("--children must be at least --parallel, and --parallel at least 1");
    }
    let root = workspace_root();
    let out = root.join("target/xtask/soak.jsonl");
    let mut tracer = root_command(root.join("target/release/zombie-trace"))?
        .args(["--format", "json"])
        .stdout(fs::File::create(&out).with_context(|| format!("creating {}", out.display()))?)
        .spawn()
        .context("starting the tracer")?;
    let result = measure(&mut tracer, storm, &out, children, parallel);
    // SIGINT: the tracer prints its summary and detaches.
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(tracer.id() as i32, libc::SIGINT) };
    let _ = tracer.wait();
    let figures = result?;
    let summary = fs::read_to_string(&out)
        .unwrap_or_default()
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    let timeline: Vec<String> = figures
        .timeline
        .iter()
        .map(|(t, kb)| format!("{}s:{kb}", t.as_secs()))
        .collect();
    let text = format!(
        "children            {children} ({parallel} loops of fork, _exit, waitpid)\n\
         storm wall time     {:.1} s ({:.0} children/s)\n\
         tracer RSS at ready {} kB\n\
         tracer RSS max      {} kB\n\
         tracer RSS at end   {} kB\n\
         growth              {} kB\n\
         RSS (kB) over time  {}\n\
         tracer summary      {summary}",
        figures.wall.as_secs_f64(),
        children as f64 / figures.wall.as_secs_f64(),
        figures.start_kb,
        figures.max_kb,
        figures.end_kb,
        figures.growth_kb(),
        timeline.join(" "),
    );
    Ok(Soak {
        growth_kb: figures.growth_kb(),
        text,
    })
}

/// Compiles the storm helper (`tests/scenarios/storm.c`: a loop of fork,
/// `_exit`, `waitpid`) into `target/xtask/storm`.
pub fn build_storm() -> Result<PathBuf> {
    let root = workspace_root();
    let dir = root.join("target/xtask");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let storm = dir.join("storm");
    run_cmd(
        Command::new("cc")
            .args(["-O2", "-o"])
            .arg(&storm)
            .arg(root.join("tests/scenarios/storm.c")),
        "install gcc (`cargo xtask setup` does)",
    )?;
    Ok(storm)
}

/// One storm loop per share, of that many children.
pub fn start_storms(storm: &Path, shares: &[u64]) -> Result<Vec<Child>> {
    shares
        .iter()
        .map(|share| {
            Command::new(storm)
                .arg(share.to_string())
                .stdout(Stdio::null())
                .spawn()
                .context("starting the storm")
        })
        .collect()
}

struct Figures {
    wall: Duration,
    start_kb: u64,
    max_kb: u64,
    end_kb: u64,
    /// RSS every 5 s of the storm: flat, or growing?
    timeline: Vec<(Duration, u64)>,
}

impl Figures {
    fn growth_kb(&self) -> u64 {
        self.max_kb.saturating_sub(self.start_kb)
    }
}

fn measure(
    tracer: &mut Child,
    storm: &Path,
    out: &Path,
    children: u64,
    parallel: u64,
) -> Result<Figures> {
    wait_ready(tracer, || first_line_out(out))?;
    // The tracer may be sudo's child: find the real one by name.
    let pid = tracer_pid(tracer.id())?;
    let start_kb = rss_kb(pid)?;
    let started = Instant::now();
    let shares: Vec<u64> = (0..parallel)
        .map(|i| children / parallel + u64::from(i < children % parallel))
        .collect();
    let mut storms = start_storms(storm, &shares)?;
    let mut max_kb = start_kb;
    let mut timeline = Vec::new();
    let mut next_sample = started;
    while !storms.is_empty() {
        let rss = rss_kb(pid)?;
        max_kb = max_kb.max(rss);
        if Instant::now() >= next_sample {
            timeline.push((started.elapsed(), rss));
            next_sample += Duration::from_secs(5);
        }
        let mut running = Vec::new();
        for mut storm in storms {
            match storm.try_wait()? {
                Some(status) if !status.success() => bail!("a storm failed: {status}"),
                Some(_) => {}
                None => running.push(storm),
            }
        }
        storms = running;
        thread::sleep(Duration::from_millis(200));
    }
    let wall = started.elapsed();
    thread::sleep(Duration::from_secs(2));
    let end_kb = rss_kb(pid)?;
    Ok(Figures {
        wall,
        start_kb,
        max_kb: max_kb.max(end_kb),
        end_kb,
        timeline,
    })
}

/// `pid` itself if it is the tracer, else its child (under sudo).
fn tracer_pid(pid: u32) -> Result<u32> {
    let comm = |p: u32| fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
    if comm(pid).trim() == "zombie-trace" {
        return Ok(pid);
    }
    let children = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .context("finding the tracer under sudo")?;
    children
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .find(|&c| comm(c).trim() == "zombie-trace")
        .context("no zombie-trace process under sudo")
}

fn rss_kb(pid: u32) -> Result<u64> {
    memory_kb(pid, "VmRSS:")
        .with_context(|| format!("no VmRSS in /proc/{pid}/status: did the tracer exit?"))
}

/// A `kB` line of `/proc/PID/status` (`VmRSS:`, `VmHWM:`).
pub fn memory_kb(pid: u32, field: &str) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// zombie-trace is ready once its first line (`ready`) is out.
pub fn first_line_out(out: &Path) -> bool {
    fs::metadata(out).map_or(0, |m| m.len()) > 0
}

/// Waits until `ready` says so, or at most a minute, failing if the tracer
/// exits first; then lets it settle for half a second.
pub fn wait_ready(tracer: &mut Child, ready: impl Fn() -> bool) -> Result<()> {
    wait_until(tracer, ready, Duration::from_millis(50))?;
    thread::sleep(Duration::from_millis(500));
    Ok(())
}

/// Asks `ready` every `poll` until it says so, or at most a minute,
/// failing if the tracer exits first.
pub fn wait_until(tracer: &mut Child, ready: impl Fn() -> bool, poll: Duration) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        if let Some(status) = tracer.try_wait()? {
            bail!("the tracer exited ({status}) before it was ready");
        }
        if Instant::now() > deadline {
            bail!("the tracer was not ready within a minute");
        }
        thread::sleep(poll);
    }
    Ok(())
}
