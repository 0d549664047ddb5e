//! `cargo xtask build [--debug]`: set up, then build the tracer. The
//! loader's build.rs compiles the eBPF programs with bpf-linker and embeds
//! them.

use std::process::Command;

use anyhow::Result;

use crate::{run_cmd, setup};

pub fn build(release: bool) -> Result<()> {
    setup::setup(setup::Need::Build)?;
    println!(
        "==> building zombie-trace ({})",
        if release { "release" } else { "debug" }
    );
    let mut cmd = Command::new("cargo");
    cmd.args(["build", "-p", "zombie-trace"]);
    if release {
        cmd.arg("--release");
    }
    // AYA_BUILD_SKIP=1 would embed an empty object instead of the programs.
    cmd.env_remove("AYA_BUILD_SKIP");
    run_cmd(
        &mut cmd,
        "fix the compile error above (an eBPF toolchain problem? run `cargo xtask setup`)",
    )
}
