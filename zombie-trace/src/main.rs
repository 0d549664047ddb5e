use std::{
    io::Write as _,
    process::ExitCode,
    sync::atomic::{AtomicBool, Ordering},
};

use anyhow::Context as _;
use clap::Parser as _;
use zombie_trace::{
    cli::{self, Cli, Command},
    containers::Selector,
    filter::Filters,
    proc, ps, session,
};

/// Whether descriptor 1 was closed when the process started (`>&-`).
/// Rust's runtime opens /dev/null on a closed standard descriptor before
/// `main` runs, so it is looked at earlier, from a constructor that the C
/// runtime calls first.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

#[used]
#[unsafe(link_section = ".init_array")]
static CHECK_STDOUT: extern "C" fn() = {
    extern "C" fn check_stdout() {
        // SAFETY: fcntl(F_GETFD) reads a descriptor's flags and has no
        // preconditions; it fails with EBADF on a closed one.
        if unsafe { libc::fcntl(1, libc::F_GETFD) } == -1 {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
        }
    }
    check_stdout
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Messages for the operator, on stderr: `zombie-trace: warning: ...`.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format(|buf, record| {
            let level = match record.level() {
                log::Level::Warn => "warning".to_owned(),
                level => level.as_str().to_lowercase(),
            };
            writeln!(buf, "zombie-trace: {level}: {}", record.args())
        })
        .init();
    let stdout_closed = STDOUT_CLOSED.load(Ordering::Relaxed);
    // Only tracing with --output has somewhere else to write.
    if stdout_closed && (cli.command.is_some() || cli.output.is_none()) {
        let or_output = if cli.command.is_none() {
            ", or write JSON lines to a file with --output FILE"
        } else {
            ""
        };
        eprintln!(
            "zombie-trace: error: standard output is closed (started with `>&-`?), so what it \
             finds would go nowhere: give it one (`> FILE`, or `| less`){or_output}"
        );
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Some(Command::Ps {
            format,
            runtime_root,
        }) => ps::run(format.into(), &runtime_root),
        Some(Command::Completions { shell }) => {
            cli::completions(shell, &mut std::io::stdout());
            Ok(())
        }
        Some(Command::ManPages { dir }) => cli::man_pages(&dir)
            .with_context(|| format!("cannot write the man pages into {}", dir.display())),
        None => {
            let filters = Filters::new(cli.pid, cli.ppid, cli.comm, cli.cgroup.as_deref())
                .map_err(|e| e.to_string())
                .and_then(|filters| {
                    Selector::new(cli.container, cli.pod, cli.namespace)
                        .map(|containers| filters.with_containers(containers))
                        .map_err(|e| e.to_string())
                });
            let filters = match filters {
                Ok(filters) => filters,
                Err(e) => {
                    eprintln!("zombie-trace: error: {e}");
                    return ExitCode::from(2);
                }
            };
            for (flag, pid) in filters.absent_pids() {
                log::warn!(
                    "{flag} {pid}: no such process now; only a process given this pid later \
                     will be traced"
                );
            }
            let options = session::Options {
                filters,
                threshold: cli.threshold,
                format: cli.format.into(),
                stdout: !stdout_closed,
                events: cli.events,
                stacks: cli.stacks,
                duration: cli.duration,
                output: cli.output,
                summary_interval: cli.summary_interval,
                metrics: cli.metrics,
                runtime_root: cli.runtime_root,
                node: cli
                    .node_name
                    .or_else(proc::host_name)
                    .unwrap_or_else(|| "unknown".to_owned())
                    .into(),
            };
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|runtime| runtime.block_on(session::run(options)))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zombie-trace: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
