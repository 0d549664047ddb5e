//! The release files of `cargo xtask dist` in BENCHMARKS.md: how big each
//! is, and how long each way of running the tracer takes from `exec` to
//! its ready line (the probes attached, the zombies already there
//! reported): the static binary, the build `cargo build --release` makes
//! (glibc), and the image under podman, as the README runs it.

use std::{
    fs,
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};

use super::{
    page::{self, median, with_spread},
    stop,
};
use crate::dist::{self, Artifacts};

const BEGIN: &str = "<!-- release:begin -->";
const END: &str = "<!-- release:end -->";
/// Starts of each way, for the median.
const STARTS: usize = 10;
/// The longest a start may take before the bench gives up on it.
const READY_WITHIN: Duration = Duration::from_secs(60);

pub struct Release {
    sizes: Vec<(String, u64)>,
    /// Each way's name and its start-up times in seconds.
    starts: Vec<(&'static str, Vec<f64>)>,
}

pub fn measure(glibc_build: &Path) -> Result<Release> {
    let artifacts = dist::build()?;
    let mut sizes = vec![(
        "the static binary (stripped)".to_owned(),
        size(&artifacts.binary)?,
    )];
    for file in [&artifacts.tarball, &artifacts.deb, &artifacts.image] {
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        sizes.push((format!("`{name}`"), size(file)?));
    }
    let mut starts = Vec::new();
    for (name, cmd) in ways(&artifacts, glibc_build)? {
        let mut times = Vec::new();
        for _ in 0..STARTS {
            times.push(
                start_up(cmd())
                    .with_context(|| format!("starting {name}"))?
                    .as_secs_f64(),
            );
        }
        println!(
            "start-up, {name}: median {:.3} s",
            median(times.clone()).unwrap_or(0.0)
        );
        starts.push((name, times));
    }
    Ok(Release { sizes, starts })
}

type Way = (&'static str, Box<dyn Fn() -> Command>);

fn ways(artifacts: &Artifacts, glibc_build: &Path) -> Result<Vec<Way>> {
    let binary = artifacts.binary.clone();
    let glibc = glibc_build.to_path_buf();
    let image = dist::check::Image::load(artifacts)?;
    Ok(vec![
        (
            "the static binary",
            Box::new(move || {
                let mut cmd = Command::new(&binary);
                cmd.args(["--format", "json"]);
                cmd
            }),
        ),
        (
            "the glibc build",
            Box::new(move || {
                let mut cmd = Command::new(&glibc);
                cmd.args(["--format", "json"]);
                cmd
            }),
        ),
        (
            "the image under podman",
            Box::new(move || {
                let mut cmd = image.run();
                cmd.args(["--format", "json"]);
                cmd
            }),
        ),
    ])
}

fn size(path: &Path) -> Result<u64> {
    Ok(fs::metadata(path)
        .with_context(|| format!("{} is missing", path.display()))?
        .len())
}

/// From spawning `cmd` to its ready line; then it is stopped.
fn start_up(mut cmd: Command) -> Result<Duration> {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("spawning")?;
    let stdout = child.stdout.take().context("its stdout")?;
    let mut ready = None;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if line.contains(r#""type":"ready""#) {
            ready = Some(started.elapsed());
            break;
        }
        if started.elapsed() > READY_WITHIN {
            break;
        }
    }
    stop(&mut child);
    ready.context("no ready line")
}

pub fn section(release: &Release, command: &str, machine: &[(&str, String)]) -> String {
    let field = |key: &str| {
        machine
            .iter()
            .find(|(k, _)| *k == key)
            .map_or("unknown", |(_, v)| v.as_str())
    };
    let mut sizes = String::from("| file | size |\n|---|---|\n");
    for (name, bytes) in &release.sizes {
        sizes.push_str(&format!(
            "| {name} | {:.1} MiB ({bytes} bytes) |\n",
            *bytes as f64 / f64::from(1 << 20)
        ));
    }
    let mut starts = String::from("| how | exec to ready |\n|---|---|\n");
    for (name, times) in &release.starts {
        let ms: Vec<f64> = times.iter().map(|s| s * 1000.0).collect();
        starts.push_str(&format!("| {name} | {} |\n", with_spread(&ms, "ms", 0)));
    }
    format!(
        "{BEGIN}
## Release files and start-up

From `{command}` (as root): {date}, kernel {kernel}, zombie-trace {build}.

What `cargo xtask dist` builds (README, \"Install\"):

{sizes}
From `exec` to the ready line (all probes attached, the zombies already
there reported), median of {STARTS} starts of each, smallest and largest in
brackets. The image's time includes podman making and starting the
container.

{starts}{END}
",
        date = field("date"),
        kernel = field("kernel"),
        build = field("zombie-trace"),
    )
}

pub fn rewrite(path: &Path, section: &str) -> Result<()> {
    page::rewrite(path, (BEGIN, END), section)
}
