//! `cargo xtask dist --check`: each artifact proven where nothing was
//! built, as an operator would use it:
//! - the static binary, alone with busybox in the 5.10 guest of `cargo
//!   xtask vmtest` (no C library there), runs the matrix's scenarios;
//! - the Debian package in a clean Debian 12 guest under systemd
//!   (`check-deb.sh` says what is checked there);
//! - the OCI image under podman on this machine, run as the README says,
//!   reports a zombie made here.

use std::{fs, path::PathBuf, process::Command};

use anyhow::{Context as _, Result, bail};

use super::{Artifacts, oci};
use crate::{guest, is_root, output_of, workspace_root};

/// `podman run`'s arguments in the README ("Install"), before the image.
pub const IMAGE_RUN: [&str; 10] = [
    "run",
    "--rm",
    "--pid=host",
    "--cap-drop=all",
    "--cap-add=BPF,PERFMON,SYS_PTRACE,DAC_READ_SEARCH",
    "--security-opt=seccomp=unconfined",
    "--security-opt=no-new-privileges",
    "--read-only",
    "--volume=/sys/kernel/tracing:/sys/kernel/tracing:ro",
    "--volume=/sys/fs/cgroup:/sys/fs/cgroup:ro",
];

pub fn all(artifacts: &Artifacts) -> Result<()> {
    if !is_root() {
        bail!(
            "the checks load eBPF programs and boot guests: run `cargo xtask dist --check` as root"
        );
    }
    let work = workspace_root().join("target/dist/check");
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    println!("\n==> the OCI image under podman");
    let image = image(artifacts).context("the OCI image failed its check")?;
    println!("image: {image}");
    Ok(())
}

/// Runs the image as the README says, with [`guest::TRACER_ARGS`].
fn image(artifacts: &Artifacts) -> Result<String> {
    let image = Image::load(artifacts)?;
    let mut run = image.run();
    run.args(guest::TRACER_ARGS);
    let shown = crate::show(&run);
    println!("$ {shown}");
    guest::packaged(run).with_context(|| format!("`{shown}`"))
}

/// The image, loaded into podman's store until dropped.
pub struct Image {
    name: String,
    conf: PathBuf,
}

impl Image {
    pub fn load(artifacts: &Artifacts) -> Result<Image> {
        // This machine's podman needs runc (crun refuses its hybrid
        // cgroups) and no default ulimits (root here cannot raise them):
        // not the README's business.
        let conf = workspace_root().join("target/dist/containers.conf");
        fs::write(&conf, "[containers]\ndefault_ulimits = []\n")?;
        let image = Image {
            name: format!("{}:{}", oci::NAME, artifacts.version),
            conf,
        };
        let loaded = output_of(image.podman().arg("load").arg("-i").arg(&artifacts.image))
            .with_context(|| format!("podman load -i {}", artifacts.image.display()))?;
        if !loaded.contains(&image.name) {
            bail!(
                "podman load did not name the image {}: {loaded}",
                image.name
            );
        }
        Ok(image)
    }

    /// `podman run` as in the README, up to the tracer's arguments.
    pub fn run(&self) -> Command {
        let mut cmd = self.podman();
        cmd.args(IMAGE_RUN).arg(&self.name);
        cmd
    }

    fn podman(&self) -> Command {
        let mut cmd = Command::new("podman");
        cmd.env("CONTAINERS_CONF", &self.conf)
            .args(["--runtime", "runc"]);
        cmd
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = self.podman().args(["rmi", "--force", &self.name]).output();
    }
}
