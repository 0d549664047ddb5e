use std::process::ExitCode;

use clap::Parser as _;
use zombie_trace::{cli::Cli, session};

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp(None)
        .init();
    let options = session::Options {
        threshold: cli.threshold,
        format: cli.format.into(),
        events: cli.events,
    };
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(session::run(options)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zombie-trace: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
