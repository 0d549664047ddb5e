use std::{io::Write as _, process::ExitCode};

use clap::Parser as _;
use zombie_trace::{
    cli::{Cli, Command},
    filter::Filters,
    ps, session,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Messages for the operator, on stderr: `zombie-trace: warning: ...`.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format(|buf, record| {
            let level = record.level().as_str().to_lowercase();
            writeln!(buf, "zombie-trace: {level}: {}", record.args())
        })
        .init();
    let result = match cli.command {
        Some(Command::Ps { format }) => ps::run(format.into()),
        None => {
            let filters = match Filters::new(cli.pid, cli.ppid, cli.comm, cli.cgroup.as_deref()) {
                Ok(filters) => filters,
                Err(e) => {
                    eprintln!("zombie-trace: error: {e}");
                    return ExitCode::from(2);
                }
            };
            let options = session::Options {
                filters,
                threshold: cli.threshold,
                format: cli.format.into(),
                events: cli.events,
                duration: cli.duration,
                output: cli.output,
                summary_interval: cli.summary_interval,
                metrics: cli.metrics,
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
