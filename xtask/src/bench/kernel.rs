//! What each tracer's kernel programs cost per child, as the kernel itself
//! accounts it (`kernel.bpf_stats_enabled`): the run time and runs of every
//! program the tracer loaded, over one serial storm (and, for the exec
//! workload, over one exec loop: `exec.rs`). Unlike wall time on a
//! shared machine, this does not drift from run to run. And what a tracer
//! adds to every syscall of every process, traced or not.

use std::{collections::HashSet, fs, path::Path, process::Command};

use anyhow::{Context as _, Result, bail};

use super::{Tracer, reap_storm, start, stop, wait_ready};
use crate::{output_of, soak, tax::getppid_ns, which};

const STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// One program of a tracer.
pub struct Program {
    pub name: String,
    pub ns_per_run: f64,
    pub runs: u64,
}

pub struct KernelCost {
    pub tracer: Tracer,
    pub programs: Vec<Program>,
    /// All its programs' run time over the storm's children.
    pub ns_per_child: f64,
    /// A `getppid` while the tracer runs, and without it (the mean of just
    /// before it started and just after it stopped), in ns.
    pub syscall_ns: f64,
    pub syscall_ns_without: f64,
}

/// One serial storm of `children` under each of `tracers`, with the
/// kernel's per-program statistics on (and put back as they were).
pub fn measure(
    tracers: &[Tracer],
    zombie_trace: &Path,
    storm: &Path,
    dir: &Path,
    children: u64,
) -> Result<Vec<KernelCost>> {
    with_stats(|| {
        tracers
            .iter()
            .map(|&tracer| {
                one(tracer, zombie_trace, storm, dir, children)
                    .with_context(|| format!("kernel cost under {}", tracer.name()))
            })
            .collect()
    })
}

/// Runs `f` with the kernel's per-program statistics on, and puts them
/// back as they were.
pub fn with_stats<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    if which("bpftool").is_none() {
        bail!("bpftool is missing: install it (apt-get install bpftool; `cargo xtask setup` does)");
    }
    let old = fs::read_to_string(STATS).with_context(|| format!("reading {STATS}"))?;
    fs::write(STATS, "1").with_context(|| format!("turning on {STATS}"))?;
    let result = f();
    let _ = fs::write(STATS, old.trim());
    result
}

/// The ids of the programs loaded now: those of a tracer started after
/// are the others.
pub fn loaded() -> Result<HashSet<u32>> {
    Ok(programs()?.iter().map(|p| p.id).collect())
}

/// The programs loaded since `before` that ran, with their statistics.
pub fn ran_since(before: &HashSet<u32>) -> Result<Vec<Program>> {
    Ok(programs()?
        .into_iter()
        .filter(|p| !before.contains(&p.id) && p.runs > 0)
        .map(|p| Program {
            ns_per_run: p.run_time_ns as f64 / p.runs as f64,
            name: p.name,
            runs: p.runs,
        })
        .collect())
}

/// All `programs`' run time, in ns.
pub fn total_ns(programs: &[Program]) -> f64 {
    programs.iter().map(|p| p.ns_per_run * p.runs as f64).sum()
}

fn one(
    tracer: Tracer,
    zombie_trace: &Path,
    storm: &Path,
    dir: &Path,
    children: u64,
) -> Result<KernelCost> {
    let before = loaded()?;
    let without = getppid_ns();
    let out = dir.join("tracer.out");
    let mut child = start(tracer, zombie_trace, dir)?.context("a tracer to measure")?;
    let result = (|| {
        wait_ready(
            &mut child,
            &out,
            matches!(tracer, Tracer::Exitsnoop | Tracer::Bpftrace),
        )?;
        let storms = soak::start_storms(storm, &[children])?;
        for storm in &storms {
            reap_storm(storm)?;
        }
        anyhow::Ok((ran_since(&before)?, getppid_ns()))
    })();
    stop(&mut child);
    let without = (without + getppid_ns()) / 2.0;
    let (programs, syscall_ns) = result?;
    Ok(KernelCost {
        tracer,
        ns_per_child: total_ns(&programs) / children as f64,
        programs,
        syscall_ns,
        syscall_ns_without: without,
    })
}

#[derive(Debug, PartialEq, Eq)]
struct Loaded {
    id: u32,
    name: String,
    run_time_ns: u64,
    runs: u64,
}

fn programs() -> Result<Vec<Loaded>> {
    let text = output_of(Command::new("bpftool").args(["prog", "show"]))
        .context("`bpftool prog show` failed")?;
    Ok(text.lines().filter_map(parse).collect())
}

/// `ID: TYPE  name NAME  tag T  gpl run_time_ns N run_cnt M` (the two
/// counts only once the program has run with statistics on).
fn parse(line: &str) -> Option<Loaded> {
    let (id, rest) = line.split_once(':')?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    let after = |key: &str| {
        let at = words.iter().position(|w| *w == key)?;
        words.get(at + 1).copied()
    };
    let number = |key: &str| after(key).and_then(|v| v.parse().ok()).unwrap_or(0);
    Some(Loaded {
        id: id.trim().parse().ok()?,
        name: after("name")?.to_owned(),
        run_time_ns: number("run_time_ns"),
        runs: number("run_cnt"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bpftool_lines() {
        assert_eq!(
            parse(
                "14595: tracing  name sched_process_exit  tag 4056c72aa3e108db  gpl run_time_ns 81294318 run_cnt 50002"
            ),
            Some(Loaded {
                id: 14595,
                name: "sched_process_exit".to_owned(),
                run_time_ns: 81_294_318,
                runs: 50_002,
            })
        );
        assert_eq!(
            parse("7: tracepoint  name sys_exit_wait4  tag 50a936c35155be94  gpl"),
            Some(Loaded {
                id: 7,
                name: "sys_exit_wait4".to_owned(),
                run_time_ns: 0,
                runs: 0,
            })
        );
        // The lines under each program, and odd ones.
        assert_eq!(parse("\tloaded_at 2026-11-25T11:34:59+0000  uid 0"), None);
        assert_eq!(
            parse("\txlated 1184B  jited 708B  memlock 4096B  map_ids 3,4"),
            None
        );
        assert_eq!(parse(""), None);
        assert_eq!(parse("x: name"), None);
    }
}
