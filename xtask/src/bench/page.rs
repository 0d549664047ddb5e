//! BENCHMARKS.md from one run's figures: the machine, the goals checked,
//! the flood, the release files, the exec workload, what is measured, the tables, the soak, the micro-benchmark
//! and the kernel programs' own accounting.

use std::{fs, path::Path};

use anyhow::{Context as _, Result, bail};

use super::{FIGURE, Run, STALL, STALL_AFTER, Tracer, Workload, kernel::KernelCost};
use crate::{plot, soak, tax};

pub(super) fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

fn spread(values: &[f64]) -> (f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

/// Which of a run's slowdowns: of its wall time, or of its workload CPU.
const WALL: fn((f64, f64)) -> f64 = |(wall, _)| wall;
const CPU: fn((f64, f64)) -> f64 = |(_, cpu)| cpu;

/// The figures of one tracer on one workload, over its rounds.
struct Summary<'a> {
    runs: Vec<&'a Run>,
    /// The workload's children in all.
    expected: u64,
}

impl<'a> Summary<'a> {
    fn of(
        runs: &'a [(Workload, Tracer, Run)],
        workload: Workload,
        tracer: Tracer,
        children: u64,
        cores: u64,
    ) -> Self {
        Summary {
            runs: runs
                .iter()
                .filter(|(w, t, _)| *w == workload && *t == tracer)
                .map(|(_, _, r)| r)
                .collect(),
            expected: children * workload.loops(cores),
        }
    }

    fn walls(&self) -> Vec<f64> {
        self.runs.iter().map(|r| r.wall_s).collect()
    }

    fn workload_cpus(&self) -> Vec<f64> {
        self.runs.iter().map(|r| r.workload_cpu_s).collect()
    }

    /// Each run's slowdown against its baseline, in percent, of the wall
    /// time or the workload CPU as `which` picks from [`Run::slowdown`].
    fn slowdowns(&self, which: fn((f64, f64)) -> f64) -> Vec<f64> {
        self.runs
            .iter()
            .filter_map(|r| r.slowdown())
            .map(|ratios| (which(ratios) - 1.0) * 100.0)
            .collect()
    }

    /// Tracer CPU per 100,000 of the workload's exits, in ms.
    fn cpu_per_100k(&self) -> Vec<f64> {
        self.runs
            .iter()
            .filter_map(|r| r.cpu_s)
            .map(|cpu| cpu * 1000.0 * 100_000.0 / self.expected as f64)
            .collect()
    }

    fn not_seen(&self) -> Vec<u64> {
        self.runs
            .iter()
            .filter_map(|r| r.seen)
            .map(|seen| self.expected.saturating_sub(seen))
            .collect()
    }

    fn lost(&self) -> Vec<u64> {
        self.runs.iter().filter_map(|r| r.lost).collect()
    }

    fn reports(&self) -> Vec<u64> {
        self.runs.iter().filter_map(|r| r.reports).collect()
    }
}

/// The figure's bars: every tracer's median CPU on every workload.
pub(super) fn bars(runs: &[(Workload, Tracer, Run)], children: u64, cores: u64) -> Vec<plot::Bar> {
    let mut bars = Vec::new();
    for workload in Workload::ALL {
        for (tool, tracer) in Tracer::ALL.into_iter().skip(1).enumerate() {
            if let Some(ms) =
                median(Summary::of(runs, workload, tracer, children, cores).cpu_per_100k())
            {
                bars.push(plot::Bar {
                    label: format!("{}: {}", workload.short_name(), tracer.name()),
                    ms,
                    tool,
                });
            }
        }
    }
    bars
}

pub(super) struct Page<'a> {
    pub command: &'a str,
    pub machine: &'a [(&'static str, String)],
    pub runs: &'a [(Workload, Tracer, Run)],
    pub children: u64,
    pub cores: u64,
    pub rounds: usize,
    pub soak: &'a soak::Soak,
    pub soak_children: u64,
    pub micro: &'a str,
    pub kernel: &'a [KernelCost],
    /// The flood's section, with its markers.
    pub flood: &'a str,
    /// The release files' section, with its markers.
    pub release: &'a str,
    /// The exec workload's section, with its markers.
    pub exec: &'a str,
    /// `cargo xtask vmtest`'s section, kept from the page as it was (see
    /// [`kept`]).
    pub vmtest: &'a str,
}

pub(super) fn list(values: &[u64]) -> String {
    if values.is_empty() {
        return "–".to_owned();
    }
    values
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn with_spread(values: &[f64], unit: &str, digits: usize) -> String {
    match median(values.to_vec()) {
        None => "–".to_owned(),
        Some(m) => {
            let (lo, hi) = spread(values);
            format!("{m:.digits$} {unit} ({lo:.digits$}–{hi:.digits$})")
        }
    }
}

/// Percentages, signed: `+1.2% (−0.4 to +3.0)`.
pub(super) fn percent_with_spread(values: &[f64]) -> String {
    match median(values.to_vec()) {
        None => "–".to_owned(),
        Some(m) => {
            let (lo, hi) = spread(values);
            format!("{m:+.1}% ({lo:+.1} to {hi:+.1})")
        }
    }
}

/// What each tracer's kernel programs cost, per program and per child.
fn kernel_table(page: &Page<'_>) -> String {
    let none = Summary::of(
        page.runs,
        Workload::Serial,
        Tracer::None,
        page.children,
        page.cores,
    );
    let child_ns = median(none.walls()).map(|wall| wall * 1e9 / page.children as f64);
    let mut md = String::from(
        "| tracer | its programs: ns per run × runs | per child | of a child's time | any process's syscall (`getppid`) |\n|---|---|---|---|---|\n",
    );
    for cost in page.kernel {
        let programs: Vec<String> = cost
            .programs
            .iter()
            .map(|p| format!("`{}` {:.0} × {}", p.name, p.ns_per_run, p.runs))
            .collect();
        let share = child_ns.map_or_else(
            || "–".to_owned(),
            |child| format!("{:.1}%", cost.ns_per_child / child * 100.0),
        );
        md.push_str(&format!(
            "| {} | {} | {:.0} ns | {share} | {:.0} ns ({:+.0} ns) |\n",
            cost.tracer.name(),
            programs.join("<br>"),
            cost.ns_per_child,
            cost.syscall_ns,
            cost.syscall_ns - cost.syscall_ns_without,
        ));
    }
    md
}

/// One table per workload.
fn tables(page: &Page<'_>) -> String {
    let mut md = String::new();
    for workload in Workload::ALL {
        let of = |tracer| Summary::of(page.runs, workload, tracer, page.children, page.cores);
        let none = of(Tracer::None);
        let loops = workload.loops(page.cores);
        md.push_str(&format!(
            "### {} ({loops} loop{} of {} children, {} exits in all)\n\n",
            workload.name(),
            if loops == 1 { "" } else { "s" },
            page.children,
            none.expected,
        ));
        md.push_str(
            "| tracer | wall time | slowdown | workload CPU | its slowdown | tracer CPU per 100k exits | lost (as said) | children not seen | false reports | RSS at end (peak) |\n\
             |---|---|---|---|---|---|---|---|---|---|\n",
        );
        for tracer in Tracer::ALL {
            let s = of(tracer);
            let mb = |kb: Option<u64>| {
                kb.map_or("–".to_owned(), |kb| {
                    format!("{:.1} MB", kb as f64 / 1024.0)
                })
            };
            let end = s.runs.iter().filter_map(|r| r.end_rss_kb).max();
            let peak = s.runs.iter().filter_map(|r| r.peak_rss_kb).max();
            let rss = if end.is_some() {
                format!("{} ({})", mb(end), mb(peak))
            } else {
                "–".to_owned()
            };
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {rss} |\n",
                tracer.name(),
                with_spread(&s.walls(), "s", 2),
                percent_with_spread(&s.slowdowns(WALL)),
                with_spread(&s.workload_cpus(), "s", 2),
                percent_with_spread(&s.slowdowns(CPU)),
                with_spread(&s.cpu_per_100k(), "ms", 0),
                list(&s.lost()),
                list(&s.not_seen()),
                list(&s.reports()),
            ));
        }
        let missed = page
            .runs
            .iter()
            .filter(|(w, _, r)| *w == workload && r.stall_missed)
            .count();
        if missed > 0 {
            md.push_str(&format!(
                "\n**In {missed} run(s) the storm ended before the reader was stopped: these \
                 figures do not show a stall. Run with more `--children`.**\n"
            ));
        }
        md.push('\n');
    }
    md
}

/// The issue's goals, each checked against this run's figures.
fn goals(page: &Page<'_>) -> String {
    let of = |workload, tracer| Summary::of(page.runs, workload, tracer, page.children, page.cores);
    let mut rows = Vec::new();
    for workload in [Workload::Serial, Workload::Parallel] {
        let name = workload.short_name();
        let cpu = |tracer| median(of(workload, tracer).cpu_per_100k());
        let (default, events, exitsnoop) = (
            cpu(Tracer::Default),
            cpu(Tracer::Events),
            cpu(Tracer::Exitsnoop),
        );
        if let (Some(d), Some(e), Some(x)) = (default, events, exitsnoop) {
            rows.push((
                format!("{name}: default tracer CPU ≤ 1/10 of exitsnoop's"),
                format!("{d:.0} ms against {x:.0} ms: 1/{:.0}", x / d.max(0.001)),
                verdict(d * 10.0 <= x),
            ));
            rows.push((
                format!("{name}: `--events` tracer CPU ≤ exitsnoop's"),
                format!("{e:.0} ms against {x:.0} ms"),
                verdict(e <= x),
            ));
        }
        let default = of(workload, Tracer::Default);
        // Each loop runs its children one after another.
        let child_ns = median(of(workload, Tracer::None).walls())
            .map(|wall| wall * 1e9 / page.children as f64);
        if let (Some(wall), Some(cpu), Some(child_ns)) = (
            median(default.slowdowns(WALL)),
            median(default.slowdowns(CPU)),
            child_ns,
        ) {
            let programs = page
                .kernel
                .iter()
                .find(|k| k.tracer == Tracer::Default)
                .map_or_else(String::new, |k| {
                    format!(
                        "; its kernel programs {:.2} µs per child, {:.1}% of a child's {:.0} µs",
                        k.ns_per_child / 1000.0,
                        k.ns_per_child / child_ns * 100.0,
                        child_ns / 1000.0
                    )
                });
            rows.push((
                format!("{name}: default slowdown ≤ 2% (wall time, median of bracketed runs)"),
                format!("{wall:+.1}% wall time; {cpu:+.1}% workload CPU{programs}"),
                verdict(wall <= 2.0),
            ));
        }
        for tracer in [Tracer::Default, Tracer::Events] {
            let s = of(workload, tracer);
            let lost: u64 = s.lost().iter().sum();
            let unseen: u64 = s.not_seen().iter().sum();
            rows.push((
                format!("{name}: {} loses nothing", tracer.name()),
                format!("{lost} lost, {unseen} children not seen"),
                verdict(lost == 0 && unseen == 0 && s.not_seen().len() == s.runs.len()),
            ));
        }
    }
    for tracer in [Tracer::Default, Tracer::Events] {
        let s = of(Workload::Stalled, tracer);
        // Each unseen child is one lost exit record at least, so a loss
        // that went unsaid shows as more unseen children than losses said.
        let accounted = s
            .runs
            .iter()
            .all(|r| matches!((r.seen, r.lost), (Some(seen), Some(lost)) if s.expected.saturating_sub(seen) <= lost));
        rows.push((
            format!(
                "stalled reader: {} counts and says every loss",
                tracer.name()
            ),
            format!(
                "lost {}; children not seen {}",
                list(&s.lost()),
                list(&s.not_seen())
            ),
            verdict(accounted),
        ));
    }
    let reports: u64 = page.runs.iter().filter_map(|(_, _, r)| r.reports).sum();
    rows.push((
        "no false zombie report, in any workload (stalled included)".to_owned(),
        format!("{reports} reports"),
        verdict(reports == 0),
    ));
    rows.push((
        format!(
            "RSS flat across a {}-exit soak (grows ≤ 1 MB)",
            page.soak_children
        ),
        format!("grew {} kB", page.soak.growth_kb),
        verdict(page.soak.growth_kb <= 1024),
    ));
    goal_table(rows)
}

pub(super) fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

/// Goals, what this run measured of each, and whether it meets it.
pub(super) fn goal_table(rows: Vec<(String, String, &str)>) -> String {
    let mut md = String::from("| goal | this run | |\n|---|---|---|\n");
    for (goal, figure, met) in rows {
        md.push_str(&format!("| {goal} | {figure} | {met} |\n"));
    }
    md
}

pub(super) fn markdown(page: &Page<'_>) -> String {
    let machine: String = page
        .machine
        .iter()
        .map(|(k, v)| format!("| {k} | {v} |\n"))
        .collect();
    format!(
        "# zombie-trace benchmarks

<!-- Written by `{command}`; run it again (as root) rather than editing. -->

Generated by `{command}` (as root). Every figure, the table of goals and the
figure below come from that one run; run the command again to regenerate
this page.

| machine | |
|---|---|
{machine}
## Goals

{goals}
{vmtest}{flood}
{release}
{exec}
## What is measured

The workload is `tests/scenarios/storm.c`, compiled by the bench: a loop of
`fork`, `_exit`, `waitpid`, so every child is reaped at once and nothing
should ever be reported. Three workloads:

- **serial storm**: one loop of {children} children;
- **parallel storm**: one loop per core ({cores});
- **stalled reader**: the parallel storm with the tracer stopped
  (`SIGSTOP`) for {stall} s, {stall_after} s into the storm, then resumed.

Each runs under no tracer, zombie-trace in its default mode
(`--format json`), zombie-trace `--events --format json`, `exitsnoop`
(libbpf-tools) and a bpftrace one-liner printing a line per
`sched_process_exit`. Every tracer's run is bracketed by two runs without
a tracer (none, A, none, B, none, ...), {rounds} round{plural}, each round
starting with the next tracer; tables give the median and, in brackets,
the smallest and largest value.

- **wall time** of the storm, and **slowdown**: each run's wall time over
  the mean of the two no-tracer runs around it, a minute apart at most.
  The machine's speed drifts by more than the cost measured here from one
  minute to the next; comparing each run with its neighbours takes most
  of that out, where comparing medians of runs minutes apart does not;
- **workload CPU**: user + system time of the storm loops and their
  children (`wait4`'s rusage), and its slowdown, bracketed the same way.
  The kernel programs run in the exiting and reaping tasks, so their cost
  lands here;
- **tracer CPU** per 100,000 exits: the sum of the tracer's threads'
  run time (`/proc/PID/task/TID/schedstat`, in ns) from just before the
  storm until 1 s after it;
- **lost (as said)**: records the tool says it lost (zombie-trace's
  summary, exitsnoop's and bpftrace's `lost` messages);
- **children not seen**: the storms' children minus the exits the tool
  printed (zombie-trace's default mode prints only findings: its summary's
  reap count for `storm` stands for them);
- **false reports**: zombie-trace's zombie reports; every child is reaped
  at once, so any is false;
- **RSS** at the end of the run and at its peak (`VmRSS`, `VmHWM`).

Every tracer writes to a file rather than `/dev/null`, so that its lines
can be counted; the file is in the page cache, the same for all.

## Tracer CPU per 100,000 exits

![tracer CPU per 100,000 exits, by tool and workload]({FIGURE})

## Figures by workload

{tables}
## In the kernel: what each tracer's programs cost per child

The kernel's own accounting of its BPF programs (`sysctl
kernel.bpf_stats_enabled=1`, read with `bpftool prog show`), over one more
serial storm of {children} children under each tracer. This is what the
programs add to the traced processes, free of the run-to-run noise of wall
time. The accounting itself adds two clock reads to every run: on a
virtual machine, where the clock is slow to read, it puts an empty
program at well over a hundred ns, so these figures are upper bounds. The share is of
a child's time in the serial storm without a tracer. The last column is
the time of a `getppid` while the tracer runs, {method},
and in brackets what it adds to the same without a tracer
(measured just before and after): no tracer traces `getppid`, so that is
what the tracer costs every process on the machine, at every syscall.

{kernel}
zombie-trace's default mode runs a program at each process's exit and
release and at each return of `wait4`/`waitid`, and pairs them in a
preallocated hash map. Its programs load kernel struct fields directly
where the verifier allows (one instruction, not a helper call each), and
its wait program reads the call's arguments from the registers saved at
the call's entry (5.15+), so no `sys_enter` tracepoint is enabled.
exitsnoop and the bpftrace one-liner send a record per exit to
userspace.

The price of the wait programs on this machine is the syscall column:
its kernel refuses fexit trampolines (`EPERM`), so zombie-trace hooks the
wait calls by their syscall tracepoints, and while any syscall
tracepoint is enabled, the kernel sends every syscall of every process
through its slow path, which checks whether that syscall is traced.
exitsnoop and the one-liner watch only scheduler events and add nothing
there. Where the kernel allows trampolines, zombie-trace traces the wait
calls by fexit on `kernel_wait4`/`kernel_waitid` instead, and adds
nothing there either: see \"The tax on unrelated syscalls, per kernel\".

## Memory: flat over {soak_children} children

zombie-trace in its default mode (`--format json` into a file) while one
storm loop per core runs {soak_children} children in all; its `VmRSS`
sampled from `/proc` every 200 ms.

```text
{soak}
```

Every structure that grows with the workload is bounded: the table of
limits is in README.md (\"How it works\").

## Userspace: decoding and pairing on one core

`cargo bench -p zombie-trace --bench pairing` (divan, one thread):
ring-buffer records of a storm (per child an exit, the `wait4` that
collects it, and its release) decoded, then paired by the engine. This is
the path of every record with `--events`; in the default mode only the
children the kernel hands over take it.

```text
{micro}
```

## Reading the figures

- In the default mode the kernel pairs each exit with the wait or release
  that reaps it and keeps the latency histograms itself; only children
  still unreaped at the threshold cross to userspace. Its tracer CPU is
  the 100 ms tick (one timerfd wakeup) and the map reads, nearly
  independent of the exit rate.
- `--events` sends every exit, wait and release through the ring buffer,
  pairs them in userspace and prints a JSON line per exit: more work per
  record than exitsnoop's one line of text.
- With the reader stopped, zombie-trace's default mode has nothing to
  lose: the kernel pairs without it. `--events` and the anchors may
  overrun their buffers, and each says so differently: compare \"lost\"
  with \"children not seen\".
- Wall times on a shared virtual machine vary by several percent from run
  to run (see the no-tracer spread). Bracketing each run takes out the
  slow drift, not the jitter of a single run: the median over the rounds,
  and the kernel's own accounting, are the steady measures.
",
        command = page.command,
        goals = goals(page),
        flood = page.flood,
        release = page.release,
        exec = page.exec,
        vmtest = page.vmtest,
        method = tax::method(),
        children = page.children,
        cores = page.cores,
        rounds = page.rounds,
        plural = if page.rounds == 1 { "" } else { "s" },
        stall = STALL.as_secs(),
        stall_after = STALL_AFTER.as_secs(),
        tables = tables(page),
        kernel = kernel_table(page),
        soak_children = page.soak_children,
        soak = page.soak.text,
        micro = page.micro,
    )
}

/// Replaces the section between `markers` of the page at `path` with
/// `section` (which holds them), the rest as it is: a part of the bench
/// run alone (`--only`), or `cargo xtask vmtest`, rewrites only its own.
pub(crate) fn rewrite(path: &Path, markers: (&str, &str), section: &str) -> Result<()> {
    let page = fs::read_to_string(path).with_context(|| {
        format!(
            "reading {}: run the whole `cargo xtask bench` to write it",
            path.display()
        )
    })?;
    let page = splice(&page, markers, section)
        .with_context(|| format!("placing the section {} in {}", markers.0, path.display()))?;
    fs::write(path, page).with_context(|| format!("writing {}", path.display()))
}

/// The section between `markers` of the page at `path`, with them and the
/// blank line after, or nothing: a section that another command writes,
/// carried into the page written afresh.
pub(super) fn kept(path: &Path, markers: (&str, &str)) -> String {
    fs::read_to_string(path)
        .ok()
        .and_then(|page| section_in(&page, markers).map(|s| format!("{s}\n\n")))
        .unwrap_or_default()
}

fn section_in<'a>(page: &'a str, (begin_marker, end_marker): (&str, &str)) -> Option<&'a str> {
    match (page.find(begin_marker), page.find(end_marker)) {
        (Some(begin), Some(end)) if begin < end => Some(&page[begin..end + end_marker.len()]),
        _ => None,
    }
}

/// `page` with `section` between the markers, or, without them, after the
/// goals and before any other section.
fn splice(page: &str, (begin_marker, end_marker): (&str, &str), section: &str) -> Result<String> {
    match (page.find(begin_marker), page.find(end_marker)) {
        (Some(begin), Some(end)) if begin < end => {
            let after = &page[end + end_marker.len()..];
            Ok(format!(
                "{}{section}{}",
                &page[..begin],
                after.strip_prefix('\n').unwrap_or(after)
            ))
        }
        (None, None) => {
            const GOALS: &str = "\n## Goals\n";
            let goals = page.find(GOALS).map(|at| at + GOALS.len()).context(
                "it has no `## Goals` section: run the whole `cargo xtask bench` to rewrite it",
            )?;
            // Before the next section, or the next part's markers.
            let next = ["\n## ", "\n<!-- "]
                .iter()
                .filter_map(|start| page[goals..].find(start))
                .min()
                .map_or(page.len(), |at| goals + at + 1);
            Ok(format!("{}{section}\n{}", &page[..next], &page[next..]))
        }
        _ => bail!(
            "its markers {begin_marker} and {end_marker} are not one of each in order: fix them by hand, or \
             run the whole `cargo xtask bench` to rewrite it"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEGIN: &str = "<!-- part:begin -->";
    const END: &str = "<!-- part:end -->";
    const MARKERS: (&str, &str) = (BEGIN, END);
    const PAGE: &str =
        "# benchmarks\n\n## Goals\n\n| goal |\n|---|\n\n## What is measured\n\nmore\n";

    #[test]
    fn the_section_goes_after_the_goals_then_replaces_itself_alone() {
        let first = format!("{BEGIN}\n## Flood\n\nfirst\n{END}\n");
        let once = splice(PAGE, MARKERS, &first).unwrap();
        assert_eq!(
            once,
            format!(
                "# benchmarks\n\n## Goals\n\n| goal |\n|---|\n\n{first}\n## What is measured\n\nmore\n"
            )
        );
        let second = format!("{BEGIN}\n## Flood\n\nsecond,\nlonger\n{END}\n");
        assert_eq!(
            splice(&once, MARKERS, &second).unwrap(),
            once.replace(&first, &second)
        );
        assert!(splice("# no goals\n", MARKERS, &first).is_err());
        // A second part goes before the first's markers, not inside them.
        const OTHER: (&str, &str) = ("<!-- other:begin -->", "<!-- other:end -->");
        let other = format!("{}\n## Other\n{}\n", OTHER.0, OTHER.1);
        let both = splice(&once, OTHER, &other).unwrap();
        assert!(both.contains(&format!("{other}\n{first}")), "{both}");
        assert_eq!(
            splice(&both, MARKERS, &second).unwrap(),
            both.replace(&first, &second)
        );
        assert!(splice(&format!("{PAGE}{END}\n{BEGIN}\n"), MARKERS, &first).is_err());
        assert_eq!(section_in(&both, MARKERS), first.strip_suffix('\n'));
        assert_eq!(section_in(PAGE, MARKERS), None);
        assert_eq!(section_in(&format!("{END}{BEGIN}"), MARKERS), None);
    }
}
