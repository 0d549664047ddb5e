//! The exec-heavy workload of `cargo xtask bench` (issue 18): one loop of
//! fork, exec of `/bin/true`, waitpid (`tests/scenarios/storm.c` given a
//! program to exec). It prices what zombie-trace captures there: in its
//! default mode the child's command line at exec, with `--stacks` the
//! parent's stack at fork; exitsnoop (a line per exit) and execsnoop (a
//! line per exec) watch the same workload as the anchors. Runs are
//! bracketed by runs without a tracer, as the storms' are; the wall-time
//! slowdown, a percent or two, comes from many short blocks (`blocks`).

use std::{
    fs,
    path::Path,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};

use super::{
    ANCHOR_SETTLE, Options, Run, blocks, bracket, cpu_ns,
    kernel::{self, Program},
    lost_said, number_after,
    page::{self, goal_table, list, median, percent_with_spread, verdict, with_spread},
    reap_storm, schedule, spawn, stop, wait_ready,
};
use crate::soak;

/// What each child execs.
const PROGRAM: &str = "/bin/true";
/// Its name once exec'd, as the anchors print it.
const PROGRAM_COMM: &str = "true";
/// The goals: the default mode's tracer CPU under exitsnoop's over this,
/// and the wall time it may add.
const CPU_FRACTION: f64 = 10.0;
const WALL_PERCENT: f64 = 2.0;

const BEGIN: &str = "<!-- exec:begin -->";
const END: &str = "<!-- exec:end -->";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Config {
    None,
    Default,
    Stacks,
    Exitsnoop,
    Execsnoop,
}

impl Config {
    const ALL: [Config; 5] = [
        Config::None,
        Config::Default,
        Config::Stacks,
        Config::Exitsnoop,
        Config::Execsnoop,
    ];

    fn name(self) -> &'static str {
        match self {
            Config::None => "no tracer",
            Config::Default => "zombie-trace --format json",
            Config::Stacks => "zombie-trace --stacks --format json",
            Config::Exitsnoop => "exitsnoop (libbpf-tools)",
            Config::Execsnoop => "execsnoop (libbpf-tools)",
        }
    }

    fn command(self, zombie_trace: &Path) -> Option<Command> {
        let args: &[&str] = match self {
            Config::None => return None,
            Config::Default => &["--format", "json"],
            Config::Stacks => &["--stacks", "--format", "json"],
            // Into a file, as in the storms: stdio gathers their lines in
            // blocks (no stdbuf), the anchors' cheapest way to print.
            Config::Exitsnoop => return Some(Command::new("exitsnoop")),
            Config::Execsnoop => return Some(Command::new("execsnoop")),
        };
        let mut cmd = Command::new(zombie_trace);
        cmd.args(args);
        Some(cmd)
    }

    fn is_anchor(self) -> bool {
        matches!(self, Config::Exitsnoop | Config::Execsnoop)
    }
}

/// The exec workload's runs and the kernel's accounting of each tracer.
pub(super) struct Exec {
    runs: Vec<(Config, Run)>,
    /// Each tracer's programs that ran over one more loop.
    kernel: Vec<(Config, Vec<Program>)>,
    children: u64,
    rounds: usize,
    /// Whether the binary has `--stacks` (else that configuration is left
    /// out).
    stacks: bool,
    /// The short blocks' slowdowns, in percent, of each of
    /// [`BLOCK_TRACERS`].
    blocks: Vec<(Config, f64)>,
}

/// The tracers of the short blocks: the default mode, whose goal it is,
/// and exitsnoop to compare; the others' whole runs say enough of them.
const BLOCK_TRACERS: [Config; 2] = [Config::Default, Config::Exitsnoop];

/// `--rounds` rounds of the loop of `--exec-children` fork + exec under
/// each tracer, bracketed; then `--exec-blocks` short blocks under each of
/// [`BLOCK_TRACERS`]; then one more loop under each tracer with the
/// kernel's per-program statistics on (their two clock reads per program
/// run would otherwise weigh on the timed runs).
pub(super) fn measure(
    zombie_trace: &Path,
    storm: &Path,
    dir: &Path,
    options: &Options,
) -> Result<Exec> {
    let &Options {
        rounds,
        exec_children: children,
        exec_blocks: block_count,
        ..
    } = options;
    let help = crate::output_of(Command::new(zombie_trace).arg("--help")).unwrap_or_default();
    let stacks = help.contains("--stacks");
    if !stacks {
        println!("exec: skipping `--stacks`: this zombie-trace's --help has no --stacks yet");
    }
    let tracers: Vec<Config> = Config::ALL[1..]
        .iter()
        .copied()
        .filter(|&c| stacks || c != Config::Stacks)
        .collect();
    let mut runs = Vec::new();
    for round in 1..=rounds {
        let mut sequence = Vec::new();
        for config in schedule(Config::None, &tracers, round) {
            let run = run_once(config, zombie_trace, storm, dir, children)
                .with_context(|| format!("the exec workload under {}", config.name()))?;
            println!(
                "exec round {round}/{rounds}  {:<36} wall {:.2} s  cpu {}  seen {}  lost {}",
                config.name(),
                run.wall_s,
                run.cpu_s
                    .map_or("-".into(), |c| format!("{:.0} ms", c * 1000.0)),
                run.seen.map_or("-".into(), |n| n.to_string()),
                run.lost.map_or("-".into(), |n| n.to_string()),
            );
            sequence.push((config, run));
        }
        bracket(&mut sequence, &Config::None);
        runs.extend(sequence);
    }
    let mut done = 0;
    let blocks = blocks::interleave(&BLOCK_TRACERS, block_count, |config| {
        let wall_s = block(config, zombie_trace, storm, dir)?;
        if config.is_some() {
            done += 1;
            if done % 50 == 0 || done == block_count * BLOCK_TRACERS.len() {
                println!(
                    "exec blocks  {done}/{} of {} children under a tracer",
                    block_count * BLOCK_TRACERS.len(),
                    blocks::CHILDREN
                );
            }
        }
        Ok(wall_s)
    })?;
    let kernel = kernel::with_stats(|| {
        tracers
            .iter()
            .map(|&config| {
                let programs = programs_under(config, zombie_trace, storm, dir, children)
                    .with_context(|| format!("kernel cost under {}", config.name()))?;
                println!(
                    "exec kernel  {:<36} {:.0} ns per exec",
                    config.name(),
                    kernel::total_ns(&programs) / children as f64
                );
                Ok((config, programs))
            })
            .collect()
    })?;
    Ok(Exec {
        runs,
        kernel,
        children,
        rounds,
        stacks,
        blocks,
    })
}

/// One short block of the loop, under `config`'s tracer (started afresh,
/// timed once attached and settled, then stopped) or without one (timed
/// after the same pause): its wall time in seconds.
fn block(config: Option<Config>, zombie_trace: &Path, storm: &Path, dir: &Path) -> Result<f64> {
    let Some(config) = config else {
        return settled_loop(storm);
    };
    let cmd = config
        .command(zombie_trace)
        .context("a tracer for the block")?;
    let mut tracer = spawn(cmd, config.name(), dir)?;
    let pid = tracer.id();
    let out = dir.join("tracer.out");
    let started = Instant::now();
    // Polled often: the wait is between blocks, not in them.
    let attached = soak::wait_until(
        &mut tracer,
        || {
            if config.is_anchor() {
                // Kernels before 5.15 attach a tracepoint without a link.
                holds_bpf_link(pid) || started.elapsed() >= ANCHOR_SETTLE
            } else {
                soak::first_line_out(&out)
            }
        },
        Duration::from_millis(2),
    );
    let timed = attached.and_then(|()| settled_loop(storm));
    stop(&mut tracer);
    timed.with_context(|| format!("a block under {}", config.name()))
}

/// A block's timed loop, after the pause every block has, with a tracer
/// or without (`blocks::SETTLE` says why): its wall time in seconds.
fn settled_loop(storm: &Path) -> Result<f64> {
    thread::sleep(blocks::SETTLE);
    time_loop(storm, blocks::CHILDREN)
}

/// Whether process `pid` holds a BPF link: libbpf's tools make one as they
/// attach their only program, and say nothing into a file until much later.
fn holds_bpf_link(pid: u32) -> bool {
    fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
        fds.flatten().any(|fd| {
            fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == "anon_inode:bpf_link")
        })
    })
}

/// The wall time of one loop of `children`, in seconds.
fn time_loop(storm: &Path, children: u64) -> Result<f64> {
    let started = Instant::now();
    reap_storm(&start_loop(storm, children)?)?;
    Ok(started.elapsed().as_secs_f64())
}

/// One loop of `children` fork + exec, its stdout dropped.
fn start_loop(storm: &Path, children: u64) -> Result<Child> {
    Command::new(storm)
        .arg(children.to_string())
        .arg(PROGRAM)
        .stdout(Stdio::null())
        .spawn()
        .context("starting the exec loop")
}

fn run_once(
    config: Config,
    zombie_trace: &Path,
    storm: &Path,
    dir: &Path,
    children: u64,
) -> Result<Run> {
    let mut tracer = config
        .command(zombie_trace)
        .map(|cmd| spawn(cmd, config.name(), dir))
        .transpose()?;
    let result = timed(config, tracer.as_mut(), storm, dir, children);
    if let Some(tracer) = tracer.as_mut() {
        stop(tracer);
    }
    let (mut run, parent) = result?;
    if tracer.is_some() {
        let read = |name: &str| fs::read_to_string(dir.join(name)).unwrap_or_default();
        (run.seen, run.lost) = tally(config, &read("tracer.out"), &read("tracer.err"), parent);
    }
    Ok(run)
}

/// Times the loop under the started `tracer`; returns the run and the
/// loop's pid (the parent of every child).
fn timed(
    config: Config,
    tracer: Option<&mut Child>,
    storm: &Path,
    dir: &Path,
    children: u64,
) -> Result<(Run, u32)> {
    let pid = match tracer {
        Some(tracer) => {
            wait_ready(tracer, &dir.join("tracer.out"), config.is_anchor())?;
            Some(tracer.id())
        }
        None => None,
    };
    let cpu_before = pid.map(cpu_ns).transpose()?;
    let started = Instant::now();
    let exec_loop = start_loop(storm, children)?;
    let workload_cpu_s = reap_storm(&exec_loop)?;
    let wall_s = started.elapsed().as_secs_f64();
    // What is still in the tracer's buffers is work the loop caused.
    if pid.is_some() {
        thread::sleep(Duration::from_secs(1));
    }
    let cpu_after = pid.map(cpu_ns).transpose()?;
    let run = Run {
        wall_s,
        workload_cpu_s,
        cpu_s: cpu_before
            .zip(cpu_after)
            .map(|(a, b)| b.saturating_sub(a) as f64 / 1e9),
        ..Run::default()
    };
    Ok((run, exec_loop.id()))
}

/// The programs `config` loaded that ran over one loop.
fn programs_under(
    config: Config,
    zombie_trace: &Path,
    storm: &Path,
    dir: &Path,
    children: u64,
) -> Result<Vec<Program>> {
    let before = kernel::loaded()?;
    let cmd = config
        .command(zombie_trace)
        .context("a tracer to measure")?;
    let mut tracer = spawn(cmd, config.name(), dir)?;
    let result = (|| {
        wait_ready(&mut tracer, &dir.join("tracer.out"), config.is_anchor())?;
        reap_storm(&start_loop(storm, children)?)?;
        kernel::ran_since(&before)
    })();
    stop(&mut tracer);
    result
}

/// The loop's children the tracer saw, and the records it said it lost.
/// zombie-trace's summary counts the reaps by the loop (`storm`, which
/// does not exec); the anchors print a line per child of `parent`:
/// `PCOMM PID PPID ...` for both.
fn tally(config: Config, out: &str, err: &str, parent: u32) -> (Option<u64>, Option<u64>) {
    match config {
        Config::None => (None, None),
        Config::Default | Config::Stacks => {
            let summary = out
                .lines()
                .rev()
                .find(|l| l.contains("\"type\":\"summary\""));
            (
                summary.and_then(|s| number_after(s, "{\"comm\":\"storm\",\"count\":")),
                summary.and_then(|s| number_after(s, "\"lost\":")),
            )
        }
        Config::Exitsnoop | Config::Execsnoop => {
            let parent = parent.to_string();
            let seen = out
                .lines()
                .filter(|line| {
                    let words: Vec<&str> = line.split_whitespace().collect();
                    words.len() > 2 && words[0] == PROGRAM_COMM && words[2] == parent
                })
                .count() as u64;
            (Some(seen), Some(lost_said(out) + lost_said(err)))
        }
    }
}

impl Exec {
    fn of(&self, config: Config) -> impl Iterator<Item = &Run> {
        self.runs
            .iter()
            .filter(move |(c, _)| *c == config)
            .map(|(_, r)| r)
    }

    fn walls(&self, config: Config) -> Vec<f64> {
        self.of(config).map(|r| r.wall_s).collect()
    }

    /// Each run's wall time over its baseline's, in percent.
    fn slowdowns(&self, config: Config) -> Vec<f64> {
        self.of(config)
            .filter_map(|r| r.slowdown())
            .map(|(wall, _)| (wall - 1.0) * 100.0)
            .collect()
    }

    /// The short blocks' slowdowns under `config`, in percent.
    fn block_slowdowns(&self, config: Config) -> Vec<f64> {
        self.blocks
            .iter()
            .filter(|(c, _)| *c == config)
            .map(|(_, s)| *s)
            .collect()
    }

    /// Their median, and it with its 95% interval: `+1.2% (+0.4 to +2.0)`.
    fn block_figure(&self, config: Config) -> Option<(f64, String)> {
        let values = self.block_slowdowns(config);
        let (lo, hi) = blocks::median_interval(&values)?;
        let m = median(values)?;
        Some((m, format!("{m:+.1}% ({lo:+.1} to {hi:+.1})")))
    }

    /// The tracer's CPU over each run, in ms.
    fn cpus(&self, config: Config) -> Vec<f64> {
        self.of(config)
            .filter_map(|r| r.cpu_s)
            .map(|s| s * 1000.0)
            .collect()
    }

    fn not_seen(&self, config: Config) -> Vec<u64> {
        self.of(config)
            .map(|r| {
                r.seen
                    .map_or(self.children, |s| self.children.saturating_sub(s))
            })
            .collect()
    }

    fn lost(&self, config: Config) -> Vec<u64> {
        self.of(config).filter_map(|r| r.lost).collect()
    }

    fn programs(&self, config: Config) -> Option<&[Program]> {
        self.kernel
            .iter()
            .find(|(c, _)| *c == config)
            .map(|(_, p)| p.as_slice())
    }

    /// All the tracer's programs' run time over the loop, per child: each
    /// child is one fork and one exec, so this is the cost of each.
    fn ns_per_child(&self, config: Config) -> Option<f64> {
        self.programs(config)
            .map(|p| kernel::total_ns(p) / self.children as f64)
    }

    /// A child's time in the loop without a tracer, in ns.
    fn child_ns(&self) -> Option<f64> {
        median(self.walls(Config::None)).map(|wall| wall * 1e9 / self.children as f64)
    }

    fn configs(&self) -> impl Iterator<Item = Config> + '_ {
        Config::ALL
            .into_iter()
            .filter(|&c| self.stacks || c != Config::Stacks)
    }

    fn goals(&self) -> String {
        let cpu = |config| median(self.cpus(config));
        let (default, exitsnoop) = (cpu(Config::Default), cpu(Config::Exitsnoop));
        let cpu_figure = match (default, exitsnoop) {
            (Some(d), Some(x)) => format!(
                "{d:.0} ms against {x:.0} ms: {:.3} of it (1/{:.0})",
                d / x.max(0.001),
                x / d.max(0.001)
            ),
            _ => "–".to_owned(),
        };
        let wall = self.block_figure(Config::Default);
        let exitsnoop_wall = self
            .block_figure(Config::Exitsnoop)
            .map_or_else(String::new, |(_, f)| format!("; exitsnoop {f}"));
        let programs = self
            .ns_per_child(Config::Default)
            .map_or_else(String::new, |ns| {
                format!("; its kernel programs {ns:.0} ns per exec")
            });
        let lost: u64 = self.lost(Config::Default).iter().sum();
        let unseen: u64 = self.not_seen(Config::Default).iter().sum();
        goal_table(vec![
            (
                format!(
                    "exec workload: default tracer CPU under 1/{CPU_FRACTION:.0} of exitsnoop's"
                ),
                cpu_figure,
                verdict(
                    default
                        .zip(exitsnoop)
                        .is_some_and(|(d, x)| d * CPU_FRACTION < x),
                ),
            ),
            (
                format!(
                    "exec workload: default slowdown ≤ {WALL_PERCENT:.0}% (wall time: median of {} short bracketed blocks, 95% interval)",
                    self.block_slowdowns(Config::Default).len()
                ),
                wall.as_ref().map_or_else(
                    || "–".to_owned(),
                    |(_, w)| format!("{w}{exitsnoop_wall}{programs}"),
                ),
                verdict(wall.is_some_and(|(w, _)| w <= WALL_PERCENT)),
            ),
            (
                "exec workload: the default mode loses nothing".to_owned(),
                format!("{lost} lost, {unseen} children not seen"),
                verdict(lost == 0 && unseen == 0 && self.of(Config::Default).next().is_some()),
            ),
        ])
    }

    /// What `--stacks` adds to the default mode, or why it is not known.
    fn stacks_cost(&self) -> String {
        if !self.stacks {
            return "`--stacks` is not measured: this zombie-trace's `--help` has no `--stacks` \
                    yet."
                .to_owned();
        }
        let figure =
            |stacks: Option<f64>, default: Option<f64>, show: &dyn Fn(f64) -> String| match (
                stacks, default,
            ) {
                (Some(s), Some(d)) => format!("{} against the default's {}", show(s), show(d)),
                _ => "–".to_owned(),
            };
        let kernel = figure(
            self.ns_per_child(Config::Stacks),
            self.ns_per_child(Config::Default),
            &|ns| format!("{ns:.0} ns"),
        );
        let extra = self
            .ns_per_child(Config::Stacks)
            .zip(self.ns_per_child(Config::Default))
            .map_or_else(String::new, |(s, d)| {
                format!(" ({:+.0} ns per fork)", s - d)
            });
        let cpu = figure(
            median(self.cpus(Config::Stacks)),
            median(self.cpus(Config::Default)),
            &|ms| format!("{ms:.0} ms"),
        );
        let wall = figure(
            median(self.slowdowns(Config::Stacks)),
            median(self.slowdowns(Config::Default)),
            &|p| format!("{p:+.1}%"),
        );
        format!(
            "What `--stacks` costs: its kernel programs {kernel} per exec and fork{extra}; \
             tracer CPU {cpu}; wall time {wall} (medians of the whole runs)."
        )
    }

    fn table(&self) -> String {
        let exitsnoop = median(self.cpus(Config::Exitsnoop));
        let child_ns = self.child_ns();
        let mut md = String::from(
            "| tracer | wall time | slowdown, whole runs | slowdown, short blocks | tracer CPU | against exitsnoop's | kernel programs per exec and per fork | of a child's time | lost (as said) | children not seen |\n\
             |---|---|---|---|---|---|---|---|---|---|\n",
        );
        for config in self.configs() {
            let ratio = match (median(self.cpus(config)), exitsnoop) {
                (Some(c), Some(x)) => format!("{:.3}×", c / x.max(0.001)),
                _ => "–".to_owned(),
            };
            let per_child = self.ns_per_child(config);
            let share = per_child.zip(child_ns).map_or_else(
                || "–".to_owned(),
                |(ns, child)| format!("{:.2}%", ns / child * 100.0),
            );
            let (lost, unseen) = if config == Config::None {
                (Vec::new(), Vec::new())
            } else {
                (self.lost(config), self.not_seen(config))
            };
            let blocks = self
                .block_figure(config)
                .map_or_else(|| "–".to_owned(), |(_, f)| f);
            md.push_str(&format!(
                "| {} | {} | {} | {blocks} | {} | {ratio} | {} | {share} | {} | {} |\n",
                config.name(),
                with_spread(&self.walls(config), "s", 2),
                percent_with_spread(&self.slowdowns(config)),
                with_spread(&self.cpus(config), "ms", 0),
                per_child.map_or_else(|| "–".to_owned(), |ns| format!("{ns:.0} ns")),
                list(&lost),
                list(&unseen),
            ));
        }
        md
    }

    fn programs_table(&self) -> String {
        let mut md = String::from("| tracer | its programs: ns per run × runs |\n|---|---|\n");
        for (config, programs) in &self.kernel {
            let each: Vec<String> = programs
                .iter()
                .map(|p| format!("`{}` {:.0} × {}", p.name, p.ns_per_run, p.runs))
                .collect();
            md.push_str(&format!("| {} | {} |\n", config.name(), each.join("<br>")));
        }
        md
    }
}

/// The exec workload's section of BENCHMARKS.md, between its markers.
/// `command` made it, on the machine `machine` describes.
pub(super) fn section(exec: &Exec, command: &str, machine: &[(&str, String)]) -> String {
    let field = |key: &str| {
        machine
            .iter()
            .find(|(k, _)| *k == key)
            .map_or("unknown", |(_, v)| v.as_str())
    };
    format!(
        "{BEGIN}
## Exec-heavy workload: fork + exec of `{PROGRAM}`

From `{command}` (as root):
{date}, kernel {kernel}, zombie-trace {build}.

`tests/scenarios/storm.c`, compiled by the bench and given `{PROGRAM}`:
one loop that forks, execs `{PROGRAM}` in the child and waits for it,
{children} times, so each child is one fork, one exec, one exit and one
reap. zombie-trace's default mode captures the child's command line at
exec; `--stacks` adds the parent's stack at fork. exitsnoop (a line per
exit) and execsnoop (a line per exec), both libbpf-tools writing to a
file, are the anchors. Every tracer's run is bracketed by two runs
without a tracer, {rounds} round{plural}, each round starting with the
next tracer; the table gives the median and, in brackets, the smallest
and largest value.

The wall time such runs give wanders by more than the 2% to be judged:
on this kind of machine a loop of {block} children takes about 8% more
or less than the one before it, and runs ten times longer differ by
almost as much. So the slowdown is judged over many short blocks
instead: {blocks} blocks of {block} children under each of the default
mode and exitsnoop, each under a tracer started afresh and between two
blocks without one, the two taking turns. Every block's loop starts
after an idle pause of {settle} ms (under a tracer, from when it has
attached): here a loop that follows a pause runs about 2% slower than
one that follows another loop, with or without a tracer, so a block
without a tracer must have the pause too. The slowdown is
the median of the blocks' slowdowns and, in brackets, its 95% interval
(bootstrap, 2000 resamples). Neighbouring blocks share the machine's
mood, so the interval is narrower than the truth: a run repeated an
hour later can land outside it.

{goals}
{stacks}

{table}
- **slowdown**: each run's or block's wall time over the mean of the two
  without a tracer around it;
- **tracer CPU**: the sum of the tracer's threads' run time
  (`/proc/PID/task/TID/schedstat`) from just before the loop until 1 s
  after it;
- **kernel programs per exec and per fork**: the run time of all the
  tracer's programs (exit, exec, fork, free, wait: whichever it loads),
  as the kernel accounts it (`kernel.bpf_stats_enabled`, `bpftool prog
  show`) over one more loop under each tracer, divided by the loop's
  children: each child is one exec and one fork, so the one sum is the
  cost of each. The programs run for every process on the machine, so
  whatever else ran meanwhile is in it too (compare the runs below with
  the children), and the accounting's own clock reads are: an upper
  bound. The share is of a child's time in the loop without a tracer;
- **children not seen**: the loop's children minus those the tool
  printed (zombie-trace: its summary's reaps by the loop).

{programs}{END}
",
        date = field("date"),
        kernel = field("kernel"),
        build = field("zombie-trace"),
        children = exec.children,
        rounds = exec.rounds,
        block = blocks::CHILDREN,
        settle = blocks::SETTLE.as_millis(),
        blocks = exec.block_slowdowns(Config::Default).len(),
        plural = if exec.rounds == 1 { "" } else { "s" },
        goals = exec.goals(),
        stacks = exec.stacks_cost(),
        table = exec.table(),
        programs = exec.programs_table(),
    )
}

/// Replaces the exec section of the page at `path` with `section`, the
/// rest as it is.
pub(super) fn rewrite(path: &Path, section: &str) -> Result<()> {
    page::rewrite(path, (BEGIN, END), section)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_counts_the_loops_children_and_what_was_lost() {
        let summary = r#"{"type":"summary","lost":3,"reap_latency_by_comm":[{"comm":"bash","count":19},{"comm":"storm","count":7998}]}"#;
        let out = format!("{{\"type\":\"ready\"}}\n{summary}\n");
        assert_eq!(tally(Config::Default, &out, "", 1), (Some(7998), Some(3)));
        assert_eq!(tally(Config::Stacks, "", "", 1), (None, None));
        // Only `true` children of the loop: not the loop, not others.
        let execsnoop = "PCOMM            PID    PPID   RET ARGS\n\
             storm            23214  23186    0 /work/target/xtask/storm 2 /bin/true\n\
             true             23215  23214    0 /bin/true\n\
             true             23216  23214    0 /bin/true\n\
             true             23300  999      0 /bin/true\n";
        assert_eq!(
            tally(
                Config::Execsnoop,
                execsnoop,
                "Lost 4 events on CPU #1!\n",
                23214
            ),
            (Some(2), Some(4))
        );
        let exitsnoop = "PCOMM            PID     PPID    TID     AGE(s)  EXIT_CODE\n\
             true             23215   23214   23215   0.00    0\n\
             storm            23214   23186   23214   0.20    0\n\
             lost 2 events on CPU #0\n";
        assert_eq!(
            tally(Config::Exitsnoop, exitsnoop, "", 23214),
            (Some(1), Some(2))
        );
        assert_eq!(tally(Config::None, exitsnoop, "", 23214), (None, None));
    }

    fn run(wall_s: f64, baseline: f64, cpu_ms: f64) -> Run {
        Run {
            wall_s,
            cpu_s: Some(cpu_ms / 1000.0),
            seen: Some(1000),
            lost: Some(0),
            baseline: Some((baseline, 1.0)),
            ..Run::default()
        }
    }

    fn program(name: &str, ns_per_run: f64, runs: u64) -> Program {
        Program {
            name: name.to_owned(),
            ns_per_run,
            runs,
        }
    }

    /// 1000 children; the default mode at `default_ms` of tracer CPU
    /// against exitsnoop's 100 ms, `wall_s` against a baseline of 1 s.
    fn exec(default_ms: f64, wall_s: f64, stacks: bool) -> Exec {
        let none = Run {
            wall_s: 1.0,
            ..Run::default()
        };
        let mut runs = vec![
            (Config::None, none.clone()),
            (Config::Default, run(wall_s, 1.0, default_ms)),
            (Config::None, none),
            (Config::Exitsnoop, run(1.01, 1.0, 100.0)),
            (Config::Execsnoop, run(1.01, 1.0, 120.0)),
        ];
        let mut kernel = vec![
            (
                Config::Default,
                vec![program("exit", 300.0, 1000), program("exec", 200.0, 1000)],
            ),
            (
                Config::Exitsnoop,
                vec![program("sched_process_exit", 400.0, 1000)],
            ),
        ];
        if stacks {
            runs.push((Config::Stacks, run(1.03, 1.0, 8.0)));
            kernel.push((Config::Stacks, vec![program("fork", 1500.0, 1000)]));
        }
        // Three blocks each: the default mode adds what its whole run does.
        let blocks = [
            (Config::Default, (wall_s - 1.0) * 100.0),
            (Config::Exitsnoop, 6.0),
        ]
        .into_iter()
        .flat_map(|block| [block; 3])
        .collect();
        Exec {
            runs,
            kernel,
            children: 1000,
            rounds: 1,
            stacks,
            blocks,
        }
    }

    fn verdicts(exec: &Exec) -> Vec<bool> {
        exec.goals()
            .lines()
            .skip(2)
            .map(|l| l.ends_with("| met |"))
            .collect()
    }

    #[test]
    fn goals_hold_under_a_tenth_of_exitsnoops_cpu_and_two_percent_wall() {
        let met = exec(5.0, 1.015, false);
        assert_eq!(verdicts(&met), [true, true, true]);
        assert!(
            met.goals()
                .contains("5 ms against 100 ms: 0.050 of it (1/20)")
        );
        assert!(met.goals().contains(
            "+1.5% (+1.5 to +1.5); exitsnoop +6.0% (+6.0 to +6.0); its kernel programs \
                     500 ns per exec"
        ));
        // A tenth exactly is not under it; 3% is over 2%.
        assert_eq!(verdicts(&exec(10.0, 1.03, false)), [false, false, true]);
        let mut lossy = exec(5.0, 1.0, false);
        lossy.runs[1].1.seen = Some(999);
        assert_eq!(verdicts(&lossy), [true, true, false]);
    }

    #[test]
    fn stacks_are_priced_against_the_default_or_said_to_be_missing() {
        assert!(
            exec(5.0, 1.01, false)
                .stacks_cost()
                .contains("not measured")
        );
        assert_eq!(
            exec(5.0, 1.01, true).stacks_cost(),
            "What `--stacks` costs: its kernel programs 1500 ns against the default's 500 ns per \
             exec and fork (+1000 ns per fork); tracer CPU 8 ms against the default's 5 ms; \
             wall time +3.0% against the default's +1.0% (medians of the whole runs)."
        );
    }

    #[test]
    fn the_section_has_its_markers_and_a_row_per_configuration_run() {
        let without = section(
            &exec(5.0, 1.01, false),
            "cargo xtask bench --only exec",
            &[],
        );
        assert!(without.starts_with(BEGIN) && without.ends_with(&format!("{END}\n")));
        assert!(!without.contains("| zombie-trace --stacks"));
        assert!(without.contains(
            "| zombie-trace --format json | 1.01 s (1.01–1.01) | +1.0% (+1.0 to +1.0) \
             | +1.0% (+1.0 to +1.0) | 5 ms (5–5) | 0.050× | 500 ns | 0.05% | 0 | 0 |"
        ));
        assert!(
            without.contains("| no tracer | 1.00 s (1.00–1.00) | – | – | – | – | – | – | – | – |")
        );
        assert!(without.contains("| exitsnoop (libbpf-tools) | `sched_process_exit` 400 × 1000 |"));
        let with = section(&exec(5.0, 1.01, true), "cargo xtask bench --only exec", &[]);
        assert!(with.contains("| zombie-trace --stacks --format json | 1.03 s"));
    }
}
