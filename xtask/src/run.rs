//! `cargo xtask run [-- ARGS]`: build (release), then replace this process
//! with the tracer, as root: same stdio, its exit code is ours.

use std::{os::unix::process::CommandExt as _, process::Command};

use anyhow::{Result, bail};

use crate::{build, is_root, root_command, show, target_dir};

pub fn run(args: &[String]) -> Result<()> {
    build::build(true)?;
    let tracer = target_dir().join("release/zombie-trace");
    if !tracer.is_file() {
        bail!(
            "{} is missing after the build: run `cargo build --release -p zombie-trace` and look at its output",
            tracer.display()
        );
    }
    let mut cmd: Command = if is_root() {
        Command::new(&tracer)
    } else {
        // The tracer loads eBPF programs: it needs root.
        root_command(&tracer)?
    };
    cmd.args(args);
    eprintln!("$ {}", show(&cmd));
    let err = cmd.exec();
    bail!("cannot run {}: {err}", show(&cmd))
}
