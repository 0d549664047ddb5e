//! The flood of `cargo xtask bench` (issue 13): one parent leaves N
//! children unreaped at once (`tests/scenarios/flood.c`), holds them, then
//! reaps them all. zombie-trace must report every one within the threshold
//! plus 200 ms and spend at most a second of CPU on 20,000 of them, in JSON
//! (a line per zombie and per reap) and in text (a flood summed up per
//! second). exitsnoop watches the same flood as the anchor: a line per exit,
//! knowing nothing of zombies.

use std::{
    fs,
    io::{BufRead as _, BufReader, Read as _, Seek as _, SeekFrom},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use super::{
    number_after,
    page::{self, goal_table, median, verdict, with_spread},
    stop, wait_ready,
};
use crate::{run_cmd, workspace_root};

/// zombie-trace's `--threshold`.
const THRESHOLD_S: u64 = 1;
/// How long the flood holds its zombies: long enough for every report to
/// be due and printed before the first reap.
const HOLD_S: u64 = 5;
/// The goals: how late a report may be, and the CPU for this many zombies.
const LATE_MS: i64 = 200;
const CPU_GOAL_S: f64 = 1.0;
const GOAL_CHILDREN: u64 = 20_000;
/// How long after the flood exits the tracer may take to print the reaps
/// before the run ends without them (they then show as missing).
const REAP_WAIT: Duration = Duration::from_secs(30);

/// BENCHMARKS.md's flood section lies between these, so that
/// `--only flood` can replace it alone.
const BEGIN: &str = "<!-- flood:begin -->";
const END: &str = "<!-- flood:end -->";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Config {
    Json,
    Text,
    Exitsnoop,
}

impl Config {
    const ALL: [Config; 3] = [Config::Json, Config::Text, Config::Exitsnoop];

    fn name(self) -> &'static str {
        match self {
            Config::Json => "zombie-trace --format json",
            Config::Text => "zombie-trace --format text",
            Config::Exitsnoop => "exitsnoop (libbpf-tools)",
        }
    }

    fn command(self, zombie_trace: &Path) -> Command {
        let format = match self {
            Config::Json => "json",
            Config::Text => "text",
            Config::Exitsnoop => return Command::new("exitsnoop"),
        };
        let mut cmd = Command::new(zombie_trace);
        cmd.args([
            "--threshold",
            &format!("{THRESHOLD_S}s"),
            "--format",
            format,
        ]);
        cmd
    }

    fn is_anchor(self) -> bool {
        self == Config::Exitsnoop
    }
}

/// What a run's output says of the flood, tallied line by line.
#[derive(Debug, Default, PartialEq)]
struct Tally {
    /// Zombie reports of the flood's children; for exitsnoop, their exit
    /// lines.
    zombies: u64,
    /// Reaps of reported children by the flood's parent.
    reaps: u64,
    /// Lines printed about the flood.
    lines: u64,
    /// JSON: each report's `age_ms` past the threshold.
    lateness_ms: Vec<i64>,
    /// JSON reports without an age (the child's exit time unknown).
    unknown_age: u64,
}

impl Tally {
    /// Counts `line` if it is about the children of `parent`.
    fn add(&mut self, config: Config, parent: u32, line: &str) {
        match config {
            Config::Json => self.add_json(parent, line),
            Config::Text => self.add_text(parent, line),
            Config::Exitsnoop => {
                // PCOMM PID PPID TID AGE(s) EXIT_CODE
                let words: Vec<&str> = line.split_whitespace().collect();
                if words.len() > 2 && words[0] == "flood" && words[2] == parent.to_string() {
                    self.zombies += 1;
                    self.lines += 1;
                }
            }
        }
    }

    /// The keys are found as text: a string value cannot hold `"ppid":`,
    /// which JSON escapes, and parsing every line of a 20,000-zombie flood
    /// would take CPU from the tracer while it works.
    fn add_json(&mut self, parent: u32, line: &str) {
        let is = |key: &str| number_after(line, key) == Some(u64::from(parent));
        if line.contains("\"type\":\"zombie\"") && is("\"ppid\":") {
            self.zombies += 1;
            self.lines += 1;
            match number_after(line, "\"age_ms\":") {
                Some(age) => self
                    .lateness_ms
                    .push(age as i64 - (THRESHOLD_S * 1000) as i64),
                None => self.unknown_age += 1,
            }
        } else if line.contains("\"type\":\"reap\"") && is("\"reaper_pid\":") {
            self.reaps += 1;
            self.lines += 1;
        }
    }

    /// `ZOMBIE` and `REAP` stand for one child each, `ZOMBIES` and `REAPS`
    /// for the count they give; each begins with the time.
    fn add_text(&mut self, parent: u32, line: &str) {
        let Some((kind, rest)) = line
            .split_once(' ')
            .and_then(|(_, rest)| rest.split_once(' '))
        else {
            return;
        };
        let rest = rest.trim_start();
        let summed = |prefix: String| -> Option<u64> {
            let (_, count) = rest.strip_prefix(&prefix)?.split_once(": ")?;
            count.split(' ').next()?.parse().ok()
        };
        let (zombies, reaps) = match kind {
            "ZOMBIE" if rest.contains(&format!(" | parent {parent} ")) => (1, 0),
            "ZOMBIES" => match summed(format!("parent {parent} ")) {
                Some(n) => (n, 0),
                None => return,
            },
            "REAP" if rest.contains(&format!(" reaped-by={parent} ")) => (0, 1),
            "REAPS" => match summed(format!("reaped-by {parent} ")) {
                Some(n) => (0, n),
                None => return,
            },
            _ => return,
        };
        self.zombies += zombies;
        self.reaps += reaps;
        self.lines += 1;
    }
}

/// The lines appended to a file since the last look.
struct Follow {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl Follow {
    fn new(path: &Path) -> Self {
        Follow {
            path: path.to_owned(),
            offset: 0,
            partial: Vec::new(),
        }
    }

    fn read(&mut self, mut each: impl FnMut(&str)) -> Result<()> {
        let mut file = fs::File::open(&self.path)
            .with_context(|| format!("reading {}", self.path.display()))?;
        file.seek(SeekFrom::Start(self.offset))?;
        let read = file.read_to_end(&mut self.partial)?;
        self.offset += read as u64;
        // A line still being written stays for the next look.
        let Some(last) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Ok(());
        };
        String::from_utf8_lossy(&self.partial[..last])
            .lines()
            .for_each(&mut each);
        self.partial.drain(..=last);
        Ok(())
    }
}

/// One run of the flood under one tool.
#[derive(Debug)]
struct Run {
    /// The tool's CPU from just before the flood until it had printed
    /// everything (and a second more).
    cpu_s: f64,
    /// Its CPU when the bench read the last zombie report.
    cpu_at_reports_s: Option<f64>,
    tally: Tally,
}

pub(super) struct Flood {
    runs: Vec<(Config, Run)>,
    children: u64,
    rounds: usize,
}

/// `rounds` rounds of the flood of `children` under each tool, the first
/// tool one further along each round.
pub(super) fn measure(
    zombie_trace: &Path,
    dir: &Path,
    children: u64,
    rounds: usize,
) -> Result<Flood> {
    let flood = build_flood(dir)?;
    let mut runs = Vec::new();
    for round in 1..=rounds {
        let mut order = Config::ALL;
        order.rotate_left((round - 1) % Config::ALL.len());
        for config in order {
            let run = run_once(config, zombie_trace, &flood, dir, children)
                .with_context(|| format!("the flood under {}", config.name()))?;
            let lateness = run.tally.lateness_ms.iter().max();
            println!(
                "flood round {round}/{rounds}  {:<28} cpu {:.2} s{}  zombies {}  reaps {}  lines {}{}",
                config.name(),
                run.cpu_s,
                run.cpu_at_reports_s
                    .map_or_else(String::new, |c| format!(" ({c:.2} s at the last report)")),
                run.tally.zombies,
                run.tally.reaps,
                run.tally.lines,
                lateness.map_or_else(String::new, |l| format!("  latest {l} ms late")),
            );
            runs.push((config, run));
        }
    }
    Ok(Flood {
        runs,
        children,
        rounds,
    })
}

/// Compiles `tests/scenarios/flood.c` into `dir`.
fn build_flood(dir: &Path) -> Result<PathBuf> {
    let flood = dir.join("flood");
    run_cmd(
        Command::new("cc")
            .args(["-O2", "-o"])
            .arg(&flood)
            .arg(workspace_root().join("tests/scenarios/flood.c")),
        "install gcc (`cargo xtask setup` does)",
    )?;
    Ok(flood)
}

fn run_once(
    config: Config,
    zombie_trace: &Path,
    flood: &Path,
    dir: &Path,
    children: u64,
) -> Result<Run> {
    let out = dir.join("flood.out");
    let err = dir.join("flood.err");
    let file = |path: &Path| {
        fs::File::create(path).with_context(|| format!("creating {}", path.display()))
    };
    let mut tool = config
        .command(zombie_trace)
        .stdin(Stdio::null())
        .stdout(file(&out)?)
        .stderr(file(&err)?)
        .spawn()
        .with_context(|| format!("starting {}", config.name()))?;
    let mut follow = Follow::new(&out);
    let mut tally = Tally::default();
    let result = flood_under(config, &mut tool, flood, &mut follow, &mut tally, children);
    stop(&mut tool);
    let (cpu_s, cpu_at_reports_s, parent) = result
        .with_context(|| format!("its output is in {} and {}", out.display(), err.display()))?;
    // exitsnoop's lines reach the file as it exits (stdio buffers them).
    follow.read(|line| tally.add(config, parent, line))?;
    Ok(Run {
        cpu_s,
        cpu_at_reports_s,
        tally,
    })
}

/// Runs the flood under the started `tool`, tallying its output as it
/// comes; returns its CPU over the flood, at the last zombie report, and
/// the flood's parent pid.
fn flood_under(
    config: Config,
    tool: &mut Child,
    flood: &Path,
    follow: &mut Follow,
    tally: &mut Tally,
    children: u64,
) -> Result<(f64, Option<f64>, u32)> {
    wait_ready(tool, &follow.path, config.is_anchor())?;
    let pid = tool.id();
    let before = cpu_s(pid)?;
    // PID 1 here may not reap orphans: the subreaper reaps whatever the
    // flood leaves if it fails.
    let mut subreaper = Command::new("python3")
        .arg(workspace_root().join("tests/scenarios/subreaper.py"))
        .arg(flood)
        .args([children.to_string(), HOLD_S.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the flood under tests/scenarios/subreaper.py (is python3 installed?)")?;
    let result = watch(config, &mut subreaper, follow, tally, children, || {
        Ok(cpu_s(pid)? - before)
    });
    // Waited for even after a failure: nothing here would reap it.
    let _ = subreaper.wait();
    result
}

/// Follows the flood under `subreaper` until the tool has printed all of
/// it; returns the tool's CPU then (after a second more) and at the last
/// zombie report, as `cpu` gives it, and the flood's parent pid.
fn watch(
    config: Config,
    subreaper: &mut Child,
    follow: &mut Follow,
    tally: &mut Tally,
    children: u64,
    cpu: impl Fn() -> Result<f64>,
) -> Result<(f64, Option<f64>, u32)> {
    let said = subreaper.stdout.take().context("the flood's stdout")?;
    // Kept open until the flood exits: it would die of SIGPIPE printing
    // `forked N` into a closed pipe.
    let mut said = BufReader::new(said).lines();
    let parent = said
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("parent ")?.parse::<u32>().ok())
        .context("the flood did not say its pid: run tests/scenarios/subreaper.py by hand")?;
    let mut at_reports = None;
    let mut exited: Option<Instant> = None;
    loop {
        follow.read(|line| tally.add(config, parent, line))?;
        if !config.is_anchor() && at_reports.is_none() && tally.zombies >= children {
            at_reports = Some(cpu()?);
        }
        if exited.is_none()
            && let Some(status) = subreaper.try_wait()?
        {
            let forked = format!("forked {children}");
            if !status.success() || !said.by_ref().map_while(Result::ok).any(|l| l == forked) {
                bail!(
                    "the flood of {children} children failed ({status}): lower \
                     --flood-children, or raise `ulimit -u` and kernel.pid_max"
                );
            }
            exited = Some(Instant::now());
        }
        if let Some(exited) = exited
            && (config.is_anchor() || tally.reaps >= children || exited.elapsed() > REAP_WAIT)
        {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    // What is still in the tool's buffers is work the flood caused.
    thread::sleep(Duration::from_secs(1));
    Ok((cpu()?, at_reports, parent))
}

/// A process's CPU (user + system of all its threads, ended ones too), in
/// seconds, from `/proc/PID/stat`.
fn cpu_s(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path)
        .with_context(|| format!("reading {path}: did the tracer exit?"))?;
    let ticks = stat_ticks(&stat).with_context(|| format!("odd {path}: {stat}"))?;
    // SAFETY: sysconf has no memory preconditions.
    let per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Ok(ticks as f64 / per_s.max(1) as f64)
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line, in ticks.
fn stat_ticks(stat: &str) -> Option<u64> {
    // The name, in brackets, may hold spaces and brackets of its own: the
    // fields are counted from the last `)`, after which comes field 3.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(field(14)? + field(15)?)
}

/// The smallest value at or above `p` percent of `sorted`.
fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

impl Flood {
    fn of(&self, config: Config) -> impl Iterator<Item = &Run> {
        self.runs
            .iter()
            .filter(move |(c, _)| *c == config)
            .map(|(_, r)| r)
    }

    fn cpus(&self, config: Config) -> Vec<f64> {
        self.of(config).map(|r| r.cpu_s).collect()
    }

    /// Each run's zombie reports (exitsnoop: exit lines) of the flood's
    /// children.
    fn zombies(&self, config: Config) -> Vec<u64> {
        self.of(config).map(|r| r.tally.zombies).collect()
    }

    /// The lateness of every report over the rounds, sorted.
    fn lateness_ms(&self, config: Config) -> Vec<i64> {
        let mut all: Vec<i64> = self
            .of(config)
            .flat_map(|r| r.tally.lateness_ms.iter().copied())
            .collect();
        all.sort_unstable();
        all
    }

    fn goals(&self) -> String {
        let reported = self.zombies(Config::Json);
        let all_reported = !reported.is_empty() && reported.iter().all(|&n| n == self.children);
        let unknown: u64 = self.of(Config::Json).map(|r| r.tally.unknown_age).sum();
        let late = self.lateness_ms(Config::Json);
        let latest = late.last().copied();
        let mut lateness = match (latest, percentile(&late, 99)) {
            (Some(max), Some(p99)) => {
                format!("latest {max} ms after the threshold (p99 {p99} ms)")
            }
            _ => "no report".to_owned(),
        };
        lateness.push_str(&format!(
            "; reported: {}",
            reported_text(&reported, self.children)
        ));
        if unknown > 0 {
            lateness.push_str(&format!("; {unknown} without an age"));
        }
        let cpu = |config| median(self.cpus(config));
        let (json, text) = (cpu(Config::Json), cpu(Config::Text));
        let figure = |cpu: Option<f64>| cpu.map_or_else(|| "–".to_owned(), |c| format!("{c:.2} s"));
        let cpu_verdict = if self.children != GOAL_CHILDREN {
            "not checked: the goal is for 20000"
        } else {
            verdict(json.is_some_and(|c| c <= CPU_GOAL_S) && text.is_some_and(|c| c <= CPU_GOAL_S))
        };
        goal_table(vec![
            (
                format!("every report within threshold + {LATE_MS} ms"),
                lateness,
                verdict(latest.is_some_and(|l| l <= LATE_MS) && all_reported && unknown == 0),
            ),
            (
                format!(
                    "tracer CPU ≤ {CPU_GOAL_S:.0} s for {} zombies",
                    self.children
                ),
                format!(
                    "`--format json` {}, `--format text` {} (medians)",
                    figure(json),
                    figure(text)
                ),
                cpu_verdict,
            ),
        ])
    }

    fn table(&self) -> String {
        let anchor = median(self.cpus(Config::Exitsnoop));
        let mut md = String::from(
            "| tool | tracer CPU | at the last zombie report | zombies reported | reaps reported | lines printed for the flood | report lateness p50 / p99 / max | CPU against exitsnoop's |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        for config in Config::ALL {
            let runs: Vec<&Run> = self.of(config).collect();
            let at_reports: Vec<f64> = runs.iter().filter_map(|r| r.cpu_at_reports_s).collect();
            let counts =
                |f: fn(&Tally) -> u64| -> Vec<u64> { runs.iter().map(|r| f(&r.tally)).collect() };
            let late = self.lateness_ms(config);
            let lateness = match (percentile(&late, 50), percentile(&late, 99), late.last()) {
                (Some(p50), Some(p99), Some(max)) => format!("{p50} / {p99} / {max} ms"),
                _ => "–".to_owned(),
            };
            let (zombies, reaps, ratio) = if config.is_anchor() {
                (
                    format!(
                        "– (exits printed: {})",
                        reported_text(&self.zombies(config), self.children)
                    ),
                    "–".to_owned(),
                    "(the anchor)".to_owned(),
                )
            } else {
                let ratio = median(self.cpus(config)).zip(anchor).map_or_else(
                    || "–".to_owned(),
                    |(c, a)| format!("{:.1}×", c / a.max(0.001)),
                );
                (
                    reported_text(&self.zombies(config), self.children),
                    reported_text(&counts(|t| t.reaps), self.children),
                    ratio,
                )
            };
            let lines: Vec<f64> = counts(|t| t.lines).iter().map(|&n| n as f64).collect();
            md.push_str(&format!(
                "| {} | {} | {} | {zombies} | {reaps} | {} | {lateness} | {ratio} |\n",
                config.name(),
                with_spread(&self.cpus(config), "s", 2),
                with_spread(&at_reports, "s", 2),
                with_spread(&lines, "lines", 0),
            ));
        }
        md
    }
}

/// `all N in each run`, or each run's count with what it missed.
fn reported_text(counts: &[u64], expected: u64) -> String {
    if !counts.is_empty() && counts.iter().all(|&n| n == expected) {
        return format!("all {expected} in each run");
    }
    counts
        .iter()
        .map(|&n| match expected.checked_sub(n) {
            Some(0) => n.to_string(),
            Some(missing) => format!("{n} ({missing} missing)"),
            None => format!("{n} ({} too many)", n - expected),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The flood's section of BENCHMARKS.md, between its markers. `command`
/// made it, on the machine `machine` describes.
pub(super) fn section(flood: &Flood, command: &str, machine: &[(&str, String)]) -> String {
    let field = |key: &str| {
        machine
            .iter()
            .find(|(k, _)| *k == key)
            .map_or("unknown", |(_, v)| v.as_str())
    };
    format!(
        "{BEGIN}
## Flood: {children} zombies of one parent

From `{command}` (as root):
{date}, kernel {kernel}, zombie-trace {build}.

`tests/scenarios/flood.c`, compiled by the bench, forks {children}
children that exit at once, holds them unreaped for {HOLD_S} s, then
reaps them all; it runs under `tests/scenarios/subreaper.py`, as the
end-to-end tests do. zombie-trace runs with `--threshold {THRESHOLD_S}s`,
once with `--format json` (a line per zombie and per reap) and once with
`--format text` (a few lines per parent per second, the rest summed up
in one); exitsnoop watches the same flood as the anchor: a line per
exit, nothing about zombies. {rounds} round{plural} of each, each round
starting one tool further along; the table gives the median and, in
brackets, the smallest and largest value.

{goals}
{table}
- **tracer CPU**: user + system time of the tool's process, all its
  threads, ended ones included (`/proc/PID/stat`, in ticks of 10 ms), from
  just before the flood until the flood has exited, every reap is printed
  and a second has passed; and when the bench read the last zombie report;
- **zombies reported**: the JSON `zombie` lines whose `ppid` is the
  flood's parent; in text, its `ZOMBIE` lines plus the counts of its
  `ZOMBIES` lines; **reaps reported** likewise, of `reap` lines whose
  `reaper_pid` is the parent (`REAP`, `REAPS`);
- **report lateness**: each JSON report's `age_ms`, how long the child had
  been a zombie when reported, minus the threshold; over all rounds;
- **lines printed for the flood**: those lines; for exitsnoop, its lines
  for the flood's children.
{END}
",
        children = flood.children,
        date = field("date"),
        kernel = field("kernel"),
        build = field("zombie-trace"),
        rounds = flood.rounds,
        plural = if flood.rounds == 1 { "" } else { "s" },
        goals = flood.goals(),
        table = flood.table(),
    )
}

/// Replaces the flood section of the page at `path` with `section`, the
/// rest as it is.
pub(super) fn rewrite(path: &Path, section: &str) -> Result<()> {
    page::rewrite(path, (BEGIN, END), section)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: u32 = 4242;

    fn tally(config: Config, lines: &[&str]) -> Tally {
        let mut tally = Tally::default();
        for line in lines {
            tally.add(config, PARENT, line);
        }
        tally
    }

    #[test]
    fn json_counts_the_parents_zombies_their_lateness_and_reaps() {
        let t = tally(
            Config::Json,
            &[
                r#"{"type":"ready","ts":"x","threshold_ms":1000,"pid":1}"#,
                r#"{"type":"zombie","ts":"x","pid":5000,"comm":"flood","ppid":4242,"parent_comm":"flood","age_ms":1011,"ppid_at_exit":4242}"#,
                r#"{"type":"zombie","ts":"x","pid":5001,"comm":"flood","ppid":4242,"age_ms":1250}"#,
                r#"{"type":"zombie","ts":"x","pid":5002,"comm":"flood","ppid":4242,"age_ms":null}"#,
                // Another parent's, and one whose comm mimics a key.
                r#"{"type":"zombie","ts":"x","pid":6000,"comm":"\"ppid\":4242","ppid":42420,"age_ms":9000}"#,
                r#"{"type":"reap","ts":"x","pid":5000,"comm":"flood","reaper_pid":4242,"reaper":"parent"}"#,
                r#"{"type":"reap","ts":"x","pid":6000,"comm":"flood","reaper_pid":1,"reaper":"parent"}"#,
                r#"{"type":"summary","parents":[{"ppid":4242,"zombies_ever":3}]}"#,
            ],
        );
        assert_eq!(
            t,
            Tally {
                zombies: 3,
                reaps: 1,
                lines: 4,
                lateness_ms: vec![11, 250],
                unknown_age: 1,
            }
        );
    }

    #[test]
    fn text_counts_single_lines_and_summed_ones() {
        let t = tally(
            Config::Text,
            &[
                "14:48:13.622 READY   zombie-trace 0.1.0 pid=17844 threshold=1.0s",
                "14:48:17.327 ZOMBIE  pid=17939 comm=flood exit=0 age=1.0s | parent 4242 flood cmd=[flood 20000 5] state=R(running)",
                "14:48:17.327 ZOMBIE  pid=17938 comm=flood exit=0 age=1.0s | parent 4242 flood (as above)",
                "14:48:18.262 ZOMBIE  pid=16075 comm=bash exit=0 age=1.0s | parent 1 init",
                "14:48:18.409 ZOMBIES parent 4242 flood: 9179 more zombies in 1.0s, pids 17941..27129, oldest 2.0s (each has a line in JSON)",
                "14:48:18.410 ZOMBIES parent 42420 flood: 7 more zombies in 1.0s, pids 1..7 (each has a line in JSON)",
                "14:48:23.419 REAP    pid=17938 comm=flood reaped-by=4242 flood (parent) zombie-for=7.1s was-reported",
                "14:48:18.331 REAP    pid=16075 comm=bash reaped-by=1 init (parent) zombie-for=1.1s was-reported",
                "14:48:24.524 REAPS   reaped-by 4242 flood: 9180 more reaps of reported zombies in 1.0s, pids 300..32767 (each has a line in JSON)",
                "14:48:25.724 SUMMARY duration=12.1s exits=20058 reaps=20058 zombies=20002",
                "                     parent 4242 flood: now=0 ever=9181 rate=127512.92/min",
            ],
        );
        assert_eq!(
            t,
            Tally {
                zombies: 9181,
                reaps: 9181,
                lines: 5,
                ..Tally::default()
            }
        );
    }

    #[test]
    fn exitsnoop_counts_the_parents_children() {
        let t = tally(
            Config::Exitsnoop,
            &[
                "PCOMM            PID     PPID    TID     AGE(s)  EXIT_CODE",
                "flood            5000    4242    5000    0.00    0",
                "flood            5001    4242    5001    0.00    0",
                "flood            4242    4200    4242    7.10    0",
                "python3          4200    1       4200    7.20    0",
            ],
        );
        assert_eq!((t.zombies, t.lines), (2, 2));
    }

    #[test]
    fn follow_reads_whole_lines_once() {
        let dir = std::env::temp_dir().join(format!("xtask-follow-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out");
        fs::write(&path, "one\ntw").unwrap();
        let mut follow = Follow::new(&path);
        let mut seen = Vec::new();
        follow.read(|l| seen.push(l.to_owned())).unwrap();
        assert_eq!(seen, ["one"]);
        fs::write(&path, "one\ntwo\nthree\n").unwrap();
        follow.read(|l| seen.push(l.to_owned())).unwrap();
        assert_eq!(seen, ["one", "two", "three"]);
        follow.read(|l| seen.push(l.to_owned())).unwrap();
        assert_eq!(seen.len(), 3);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stat_ticks_count_from_the_last_bracket() {
        let stat = "1234 (a) b (c) S 1 1234 1234 0 -1 4194560 500 0 0 0 17 36 0 0 20 0 1 0 1000";
        assert_eq!(stat_ticks(stat), Some(53));
        assert_eq!(stat_ticks("1234 (x) S 1"), None);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<i64> = (1..=200).collect();
        assert_eq!(percentile(&v, 50), Some(100));
        assert_eq!(percentile(&v, 99), Some(198));
        assert_eq!(percentile(&[7], 99), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }

    fn run(cpu_s: f64, zombies: u64, lateness_ms: Vec<i64>) -> Run {
        Run {
            cpu_s,
            cpu_at_reports_s: None,
            tally: Tally {
                zombies,
                reaps: zombies,
                lines: 2 * zombies,
                lateness_ms,
                unknown_age: 0,
            },
        }
    }

    fn flood(json: [(f64, u64, i64); 2], text_cpu: f64) -> Flood {
        let mut runs = Vec::new();
        for (cpu, zombies, late) in json {
            runs.push((Config::Json, run(cpu, zombies, vec![3, late])));
            runs.push((Config::Text, run(text_cpu, 20_000, vec![])));
            runs.push((Config::Exitsnoop, run(0.3, 20_000, vec![])));
        }
        Flood {
            runs,
            children: 20_000,
            rounds: 2,
        }
    }

    fn verdicts(flood: &Flood) -> Vec<String> {
        flood
            .goals()
            .lines()
            .skip(2)
            .map(|row| row.rsplit('|').nth(1).unwrap().trim().to_owned())
            .collect()
    }

    #[test]
    fn goals_are_met_within_both_bounds() {
        let f = flood([(0.8, 20_000, 120), (0.9, 20_000, 200)], 1.0);
        assert_eq!(verdicts(&f), ["met", "met"]);
        assert!(f.goals().contains("latest 200 ms"), "{}", f.goals());
        assert!(f.table().contains("| 2.8× |"), "{}", f.table());
    }

    #[test]
    fn goals_are_missed_by_a_late_or_missing_report_or_too_much_cpu() {
        let late = flood([(0.8, 20_000, 120), (0.9, 20_000, 201)], 0.5);
        assert_eq!(verdicts(&late), ["**missed**", "met"]);
        let missing = flood([(0.8, 19_999, 120), (0.9, 20_000, 100)], 0.5);
        assert_eq!(verdicts(&missing), ["**missed**", "met"]);
        assert!(missing.goals().contains("19999 (1 missing), 20000"));
        assert!(missing.table().contains("19999 (1 missing), 20000"));
        let text_cpu = flood([(0.8, 20_000, 120), (0.9, 20_000, 100)], 1.2);
        assert_eq!(verdicts(&text_cpu), ["met", "**missed**"]);
        let json_cpu = flood([(1.1, 20_000, 120), (1.3, 20_000, 100)], 0.5);
        assert_eq!(verdicts(&json_cpu), ["met", "**missed**"]);
    }
}
