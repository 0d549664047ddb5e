//! The release files of `cargo xtask dist` in BENCHMARKS.md: how big each
//! is, and how long each way of running the tracer takes from `exec` to
//! its ready line (the probes attached, the zombies already there
//! reported): the static binary, the build `cargo build --release` makes
//! (glibc), and the image under podman, as the README runs it; beside the
//! anchors' time to their first event.

use std::{fs, path::Path, process::Command};

use anyhow::{Context as _, Result};

use super::{
    BPFTRACE_PROGRAM, Tracer, page,
    startup::{self, POKE_EVERY, Start, Until},
};
use crate::dist::{self, Artifacts};

const BEGIN: &str = "<!-- release:begin -->";
const END: &str = "<!-- release:end -->";
/// Starts of each way, for the median.
const STARTS: usize = 10;

pub struct Release {
    sizes: Vec<(String, u64)>,
    /// Each way's name and its starts.
    starts: Vec<(&'static str, Vec<Start>)>,
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
    for way in ways(&artifacts, glibc_build)? {
        let mut times = Vec::new();
        for _ in 0..STARTS {
            let start = startup::start_up((way.command)(), way.until, way.own_cpu)
                .with_context(|| format!("starting {}", way.name))?;
            println!(
                "start-up, {}: {:.0} ms, CPU {}, parts {:?}",
                way.name,
                start.wall_ms,
                start
                    .cpu_ms
                    .map_or("–".to_owned(), |ms| format!("{ms:.0} ms")),
                start.parts
            );
            times.push(start);
        }
        starts.push((way.name, times));
    }
    Ok(Release { sizes, starts })
}

struct Way {
    name: &'static str,
    until: Until,
    /// The process started is the tracer (podman only starts it).
    own_cpu: bool,
    command: Box<dyn Fn() -> Command>,
}

fn ways(artifacts: &Artifacts, glibc_build: &Path) -> Result<Vec<Way>> {
    let zombie_trace = |name, own_cpu, command: Box<dyn Fn() -> Command>| Way {
        name,
        until: Until::Ready,
        own_cpu,
        command: Box::new(move || {
            let mut cmd = command();
            cmd.args(["--format", "json"]);
            cmd
        }),
    };
    let anchor = |tracer: Tracer, command: fn() -> Command| Way {
        name: tracer.name(),
        until: Until::FirstExit,
        own_cpu: true,
        command: Box::new(command),
    };
    let binary = artifacts.binary.clone();
    let glibc = glibc_build.to_path_buf();
    let image = dist::check::Image::load(artifacts)?;
    Ok(vec![
        zombie_trace(
            "the static binary",
            true,
            Box::new(move || Command::new(&binary)),
        ),
        zombie_trace(
            "the glibc build",
            true,
            Box::new(move || Command::new(&glibc)),
        ),
        zombie_trace(
            "the image under podman",
            false,
            Box::new(move || image.run()),
        ),
        // Into a pipe exitsnoop's stdio would hold its lines back until
        // 4 KiB gathered; stdbuf execs it (same process) with lines
        // flushed, as on a terminal. bpftrace flushes each line itself.
        anchor(Tracer::Exitsnoop, || {
            let mut cmd = Command::new("stdbuf");
            cmd.args(["-oL", "exitsnoop"]);
            cmd
        }),
        anchor(Tracer::Bpftrace, || {
            let mut cmd = Command::new("bpftrace");
            cmd.args(["-e", BPFTRACE_PROGRAM]);
            cmd
        }),
    ])
}

fn size(path: &Path) -> Result<u64> {
    Ok(fs::metadata(path)
        .with_context(|| format!("{} is missing", path.display()))?
        .len())
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
    let starts = startup::table(&release.starts);
    format!(
        "{BEGIN}
## Release files and start-up

From `{command}` (as root): {date}, kernel {kernel}, zombie-trace {build}.

What `cargo xtask dist` builds (README, \"Install\"):

{sizes}
From `exec` to zombie-trace's ready line (all probes attached, the
zombies already there reported), or to the anchors' first line about an
exit: median of {STARTS} starts of each, smallest and largest in brackets.
The anchors say nothing once attached, so while each starts a `/bin/true`
exits every {poke} ms: their time includes waiting for one, up to about
{poke} ms more (exitsnoop runs under `stdbuf -oL`, or a pipe would hold
its lines back). The image's time includes podman making and starting the
container. CPU is the started process's own in all, every thread's:
starting, up to that line, and stopping right after it (podman's would
not be the tracer's). The parts are the medians of the ready line's
`startup`: BTF reading and indexing the kernel's BTF, load creating the
maps and verifying the programs, attach attaching them, scan the `/proc`
scan for the zombies already there.

{starts}{END}
",
        date = field("date"),
        kernel = field("kernel"),
        build = field("zombie-trace"),
        poke = POKE_EVERY.as_millis(),
    )
}

pub fn rewrite(path: &Path, section: &str) -> Result<()> {
    page::rewrite(path, (BEGIN, END), section)
}
