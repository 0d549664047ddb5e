//! Command-line options.

use std::{
    io,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::LazyLock,
    time::Duration,
};

use clap::{CommandFactory as _, Parser, Subcommand, ValueEnum};

use crate::output::Format;

/// The longest threshold accepted: beyond a week a "zombie" is everything.
const MAX_THRESHOLD: Duration = Duration::from_secs(7 * 24 * 3600);
/// The longest `--duration`: far beyond any run, short of timer overflow.
const MAX_DURATION: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

/// `--version`: which build this is, and whether it needs a C library on
/// the host it was copied to.
static LONG_VERSION: LazyLock<String> = LazyLock::new(|| {
    let linking = if cfg!(target_feature = "crt-static") {
        "statically linked: needs no shared library"
    } else {
        "dynamically linked"
    };
    format!(
        "{}\ncommit: {}\nbuilt:  {}\nlinked: {linking}",
        env!("CARGO_PKG_VERSION"),
        env!("ZOMBIE_TRACE_COMMIT"),
        env!("ZOMBIE_TRACE_BUILD"),
    )
});

#[derive(Debug, Parser)]
#[command(
    name = "zombie-trace",
    version,
    long_version = LONG_VERSION.as_str(),
    about = "Find zombie processes as they happen, and the parent that fails to reap them.",
    long_about = "Find zombie processes as they happen, and the parent that fails to reap them.

A zombie is a child that has exited but whose parent has not collected its \
status with wait4()/waitid(). `kill -9` cannot remove it: the fix is always \
in the parent. zombie-trace watches every process exit, every reap and every \
wait call in the kernel (eBPF), and reports each child left unreaped longer \
than --threshold together with its parent: who it is, what it is doing, \
whether it ever calls wait(), and how it handles SIGCHLD. Each report also \
names the command the child ran (cmd=[...], JSON exe and cmdline), kept \
from its exec since a zombie's own /proc/PID/cmdline is empty, and the \
summary counts each parent's zombies by that command: which of its \
subprocesses it forgets to wait for. Zombies that already exist when it \
starts are reported too, marked pre-existing (their commands are unknown).

Needs root (or CAP_BPF + CAP_PERFMON) and a kernel with BTF (Linux 5.8+). \
Stop it with Ctrl-C or SIGTERM: it prints a summary and leaves nothing \
attached in the kernel.

How it runs: wait calls are traced by fexit trampolines on the kernel's \
wait functions where the kernel allows them (most distribution kernels): \
nothing else pays. Where it refuses them, by the wait syscall tracepoints, \
which put every syscall of every process on the kernel's slow path (some \
tens of ns each) while zombie-trace runs. The ready line says which \
(wait_hooks); ZOMBIE_TRACE_WAIT_HOOKS=tracepoints forces the second way, \
=trampolines refuses to start without the first.",
    after_help = "Examples:
  zombie-trace
      Report children left unreaped for more than 5 seconds.
  zombie-trace --threshold 500ms
      Be quicker to report (a busy parent may legitimately take a moment).
  zombie-trace --format json | jq 'select(.type == \"zombie\")'
      One JSON object per line, for scripts.
  zombie-trace --events --threshold 2m
      Also stream every process exit and reap, like exitsnoop.
  zombie-trace --duration 1h --format json > zombies.jsonl
      Trace for an hour, then stop with the summary.
  zombie-trace --output /var/log/zombie-trace.jsonl > /dev/null
      Run as a service: JSON lines to a file (SIGHUP reopens it for logrotate).
  zombie-trace --summary-interval 10m --duration 24h
      A day-long leak hunt: every 10 minutes, each parent's leak rate.
  zombie-trace --ppid 1234 --threshold 1s
      Only the children of process 1234 (filters are applied in the kernel).
  zombie-trace --container web --threshold 1s
      Only in container `web` (names come from the container runtime's files;
      a container's PID 1 that does not reap its orphans is said so).
  zombie-trace --namespace prod --format json --metrics 0.0.0.0:9464
      A Kubernetes node: pods of namespace `prod`; JSON lines name the node
      (--node-name, default $NODE_NAME or the host name), and the metrics
      label zombies by namespace, pod, container and parent.
  zombie-trace --metrics 9464 --output /var/log/zombie-trace.jsonl > /dev/null
      A service: metrics at http://127.0.0.1:9464/metrics (and /healthz),
      findings in a file.
  zombie-trace ps
      List the zombies that exist now, by parent (no eBPF; works without root).

Output (text): one line per finding.
  READY    all probes attached; pre-existing zombies follow at once
  ZOMBIE   a child still unreaped after --threshold, with its parent
  ZOMBIES  a flood: the rest of a parent's reports in a second, summed up
           (after the first 3; --format json has a line for each)
  REAP     a reported zombie was finally reaped (by whom, after how long)
  REAPS    the same for the rest of a reaper's reaps in a second
  EXIT     with --events: a process died
  LOST     the kernel dropped records (the reader fell behind)
  SUMMARY  on Ctrl-C/SIGTERM: totals, and zombies still outstanding per parent"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Report a child that stays unreaped longer than this (e.g. 500ms, 5s,
    /// 2m; at least 1ms, at most 7 days). Shells and servers often take a
    /// moment to reap: too low a threshold reports children that are about
    /// to be collected.
    #[arg(
        short,
        long,
        default_value = "5s",
        value_name = "DURATION",
        value_parser = parse_threshold
    )]
    pub threshold: Duration,

    /// Output format: `text` for people, `json` for one JSON object per line.
    #[arg(short, long, value_enum, default_value_t = FormatArg::Text)]
    pub format: FormatArg,

    /// Also print every process exit and every reap, not only zombies.
    /// Every kernel record then streams to the tracer; without it, exits
    /// and reaps are paired in the kernel and only findings cross, which
    /// costs far less on a busy host.
    #[arg(short, long)]
    pub events: bool,

    /// Also say where the parent forked each zombie: its user stack at the
    /// fork (`fork`, `vfork`, `clone`, `posix_spawn`), unwound with the
    /// programs' CFI and named from their symbols and debug information
    /// (text: the first frames past libc; JSON: `spawn_stack`). Native
    /// frames only: an interpreter (Python, ...) shows its own C frames,
    /// not the script's. Costs about 10 µs of kernel time per fork, and 4
    /// KiB of kernel memory per live child forked since; needs Linux 5.15.
    #[arg(long)]
    pub stacks: bool,

    /// Also append every line, as JSON, to this file (created if needed).
    /// SIGHUP reopens it, so logrotate can move it away; stdout keeps
    /// `--format`.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Only these processes (comma-separated, or repeated; at most 8).
    #[arg(short, long, value_name = "PID", value_delimiter = ',', value_parser = parse_pid)]
    pub pid: Vec<u32>,

    /// Only children of these parents (comma-separated, or repeated; at
    /// most 8).
    #[arg(
        short = 'P',
        long,
        value_name = "PID",
        value_delimiter = ',',
        value_parser = parse_pid
    )]
    pub ppid: Vec<u32>,

    /// Only processes with this name (as `ps -o comm` shows it: at most 15
    /// bytes).
    #[arg(short, long, value_name = "NAME")]
    pub comm: Option<String>,

    /// Only processes in this cgroup v2 directory or below it, e.g.
    /// /sys/fs/cgroup/system.slice/nginx.service (Linux 5.14 or newer).
    #[arg(short = 'g', long, value_name = "PATH")]
    pub cgroup: Option<PathBuf>,

    /// Only processes in this container: its name (as `docker ps` or
    /// `podman ps` shows it) or its id (12 to 64 hex digits). One started
    /// later is traced from its start (Linux 5.14 or newer).
    #[arg(long, value_name = "NAME_OR_ID")]
    pub container: Option<String>,

    /// Only processes in Kubernetes pods of this name, as the container
    /// runtime's files on this node say (no API server is asked).
    #[arg(long, value_name = "NAME")]
    pub pod: Option<String>,

    /// Only processes in Kubernetes pods of this namespace.
    #[arg(long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// Where the container runtimes' files are: their state directories
    /// (/run/containerd, /var/lib/containers, /var/lib/docker, ...) are
    /// looked up below this directory. Give /host in a pod that mounts the
    /// host's under /host.
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub runtime_root: PathBuf,

    /// This machine's name, written as `node` in every JSON line so that
    /// lines from many nodes can be mixed (default: the host name).
    #[arg(long, value_name = "NAME", env = "NODE_NAME", value_parser = parse_node_name)]
    pub node_name: Option<String>,

    /// Also print a summary this often (e.g. 10m, 1h), not only at the
    /// end: every parent that holds or has held zombies, with its leak rate
    /// and reap latencies.
    #[arg(short, long, value_name = "DURATION", value_parser = parse_interval)]
    pub summary_interval: Option<Duration>,

    /// Serve OpenMetrics (Prometheus) at http://ADDR/metrics, and
    /// /healthz (200 once attached): a port alone (9464) binds loopback;
    /// give an address (0.0.0.0:9464) to expose it.
    #[arg(short, long, value_name = "ADDR", value_parser = crate::metrics::parse_addr)]
    pub metrics: Option<SocketAddr>,

    /// Stop by itself after this long (e.g. 30s, 10m, 24h), with the summary.
    #[arg(short, long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the zombies that exist now, grouped by parent, with the same
    /// parent details and diagnosis as a live report. Reads /proc only: no
    /// eBPF, and it works without root (with less detail about other users'
    /// processes). It cannot tell when a zombie died or whether its parent
    /// calls wait: trace for that.
    Ps {
        /// Output format: `text` for people, `json` for one JSON object per
        /// line.
        #[arg(short, long, value_enum, default_value_t = FormatArg::Text)]
        format: FormatArg,

        /// Where the container runtimes' files are (see the tracer's
        /// --runtime-root).
        #[arg(long, value_name = "DIR", default_value = "/")]
        runtime_root: PathBuf,
    },
    /// Print a completion script for SHELL, e.g.
    /// `zombie-trace completions bash > /etc/bash_completion.d/zombie-trace`
    /// (the Debian package installs them for bash, zsh and fish).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (section 8) into DIR: for packagers.
    #[command(hide = true)]
    ManPages { dir: PathBuf },
}

/// Writes SHELL's completion script for this command line to `out`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn io::Write) {
    clap_complete::generate(shell, &mut Cli::command(), "zombie-trace", out);
}

/// Writes a page per command into `dir` (`zombie-trace.8`,
/// `zombie-trace-ps.8`, ...), from the same definitions as `--help`.
pub fn man_pages(dir: &Path) -> io::Result<()> {
    fn write(cmd: clap::Command, dir: &Path) -> io::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            write(sub.clone(), dir)?;
        }
        clap_mangen::Man::new(cmd)
            .section("8")
            .source(concat!("zombie-trace ", env!("CARGO_PKG_VERSION")))
            .manual("System Administration")
            .generate_to(dir)
            .map(drop)
    }
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    write(cmd, dir)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Text,
    Json,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Text => Format::Text,
            FormatArg::Json => Format::Json,
        }
    }
}

/// A process id: 1 or more (0 is the kernel's idle task, which never
/// exits and has no children to reap).
fn parse_pid(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(0) => Err("0 is not a process: give a pid of 1 or more (see `ps -e`)".into()),
        Ok(pid) => Ok(pid),
        Err(e) => Err(format!("{e}: give a process id, such as 1234")),
    }
}

/// A node's name: printable, at most 253 bytes (a DNS name's most, which
/// Kubernetes node names are).
fn parse_node_name(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("give a name, such as the Kubernetes node's (spec.nodeName)".into());
    }
    if s.len() > 253 {
        return Err("at most 253 bytes, as a DNS name".into());
    }
    if s.chars().any(char::is_control) {
        return Err("control characters are not part of a node's name".into());
    }
    Ok(s.to_owned())
}

/// A duration such as `500ms`, `5s` or `2m`: at least 1ms, at most a week.
fn parse_threshold(s: &str) -> Result<Duration, String> {
    let d = humantime_duration(s)?;
    if d < Duration::from_millis(1) {
        return Err(
            "must be at least 1ms: every child is a zombie for an instant before it is reaped"
                .into(),
        );
    }
    if d > MAX_THRESHOLD {
        return Err("must be at most 7 days".into());
    }
    Ok(d)
}

/// How long to trace: more than zero, and at most ten years.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime_duration(s)?;
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    if d > MAX_DURATION {
        return Err("must be at most 10 years".into());
    }
    Ok(d)
}

/// How often to summarise: at least a second (a summary is many lines).
fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_secs(1) {
        return Err("must be at least 1s".into());
    }
    Ok(d)
}

fn humantime_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("{e}: give a duration with a unit, such as 500ms, 5s, 2m or 1h"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn help_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_thresholds() {
        assert_eq!(parse_threshold("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_threshold("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_threshold("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_threshold(" 1h "), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_threshold("7days"), Ok(MAX_THRESHOLD));
    }

    #[test]
    fn rejects_bad_thresholds() {
        for bad in [
            "",
            "0",
            "0s",
            "5",
            "-1s",
            "abc",
            "5 parsecs",
            "8days",
            "1us",
            "99999999999999999999s",
        ] {
            assert!(parse_threshold(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn defaults() {
        let cli = Cli::try_parse_from(["zombie-trace"]).unwrap();
        assert_eq!(cli.threshold, Duration::from_secs(5));
        assert_eq!(cli.format, FormatArg::Text);
        assert!(!cli.events);
        assert_eq!(cli.duration, None);
        assert!(cli.command.is_none());
    }

    #[test]
    fn durations_and_ps() {
        let cli = Cli::try_parse_from(["zombie-trace", "--duration", "90s"]).unwrap();
        assert_eq!(cli.duration, Some(Duration::from_secs(90)));
        let cli = Cli::try_parse_from(["zombie-trace", "--summary-interval", "10m"]).unwrap();
        assert_eq!(cli.summary_interval, Some(Duration::from_secs(600)));
        assert!(parse_interval("100ms").is_err());
        let cli = Cli::try_parse_from(["zombie-trace", "--metrics", "9100"]).unwrap();
        assert_eq!(cli.metrics, Some("127.0.0.1:9100".parse().unwrap()));
        let err = Cli::try_parse_from(["zombie-trace", "--metrics", "nope"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        for bad in ["0s", "5", "11years", "soon"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        let cli = Cli::try_parse_from(["zombie-trace", "ps", "--format", "json"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Ps {
                format: FormatArg::Json,
                ..
            })
        ));
        // Tracing options do not mix with `ps`.
        let err = Cli::try_parse_from(["zombie-trace", "--events", "ps"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn pids_are_one_or_more() {
        let cli = Cli::try_parse_from(["zombie-trace", "--pid", "1,42", "--ppid", " 7"]).unwrap();
        assert_eq!((cli.pid, cli.ppid), (vec![1, 42], vec![7]));
        for bad in ["0", "-1", "x", "4294967296", ""] {
            for flag in ["--pid", "--ppid"] {
                let err = Cli::try_parse_from(["zombie-trace", flag, bad]).unwrap_err();
                assert_eq!(err.exit_code(), 2, "{flag} {bad:?}");
            }
        }
        let err = Cli::try_parse_from(["zombie-trace", "--pid", "5,0"]).unwrap_err();
        assert!(err.to_string().contains("0 is not a process"), "{err}");
    }

    #[test]
    fn containers_and_nodes() {
        let cli = Cli::try_parse_from([
            "zombie-trace",
            "--container",
            "web",
            "--pod",
            "shop-1",
            "--namespace",
            "prod",
            "--node-name",
            "node-a",
        ])
        .unwrap();
        assert_eq!(cli.container.as_deref(), Some("web"));
        assert_eq!(cli.pod.as_deref(), Some("shop-1"));
        assert_eq!(cli.namespace.as_deref(), Some("prod"));
        assert_eq!(cli.node_name.as_deref(), Some("node-a"));
        assert_eq!(cli.runtime_root, PathBuf::from("/"));
        for bad in ["", "a\nb", &"n".repeat(254)] {
            let err = Cli::try_parse_from(["zombie-trace", "--node-name", bad]).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn rejects_unknown_format_with_usage_error() {
        let err = Cli::try_parse_from(["zombie-trace", "--format", "xml"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let err = Cli::try_parse_from(["zombie-trace", "--threshold", "0"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
