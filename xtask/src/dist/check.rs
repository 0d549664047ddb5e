//! `cargo xtask dist --check`: each artifact proven where nothing was
//! built, as an operator would use it:
//! - the static binary, alone with busybox in the 5.10 guest of `cargo
//!   xtask vmtest` (no C library there), runs the matrix's scenarios; the
//!   arm64 one likewise in the arm64 6.1 guest;
//! - the arm64 package and image are what they say (their architecture,
//!   the binary in them);
//! - the Debian package in a clean Debian 12 guest under systemd
//!   (`check-deb.sh` says what is checked there);
//! - the OCI image under podman on this machine, run as the README says,
//!   reports a zombie made here.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use super::{ARM64, Arch, Artifacts, NATIVE, oci};
use crate::{debguest, guest, output_of, run_cmd, target_dir, vmtest};

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

/// Runs every check of this machine's `artifacts` and the `arm64` ones;
/// `build_xtask`: build the static xtasks the guests need (else `cargo
/// build -p xtask --target TARGET` built them already).
pub fn all(artifacts: &Artifacts, arm64: &Artifacts, build_xtask: bool) -> Result<()> {
    let work = target_dir().join("dist/check");
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    println!(
        "\n==> the static binary alone in the Linux {STATIC_KERNEL} guest (busybox, no C library)"
    );
    let xtask = static_xtask(&NATIVE, build_xtask)?;
    vmtest::scenarios_alone(
        STATIC_KERNEL,
        &artifacts.binary,
        &xtask,
        &work.join("static"),
    )
    .context("the static binary failed its check")?;

    println!(
        "\n==> the arm64 static binary alone in the Linux {} guest",
        vmtest::ARM64_KERNEL
    );
    let xtask = static_xtask(&ARM64, build_xtask)?;
    vmtest::scenarios_alone(
        vmtest::ARM64_KERNEL,
        &arm64.binary,
        &xtask,
        &work.join("static-arm64"),
    )
    .context("the arm64 static binary failed its check")?;
    foreign_packages(arm64, &work.join("arm64"))
        .context("the arm64 package or image failed its check")?;

    println!("\n==> the Debian package in a clean Debian 12 guest");
    deb(artifacts, &work.join("debian12")).context("the Debian package failed its check")?;

    println!("\n==> the OCI image under podman");
    let image = image(artifacts).context("the OCI image failed its check")?;
    println!("image: {image}");
    Ok(())
}

/// The matrix's oldest kernel, whose guest has busybox and nothing else.
const STATIC_KERNEL: &str = "5.10";

/// This xtask, built static too for `arch`: its `guest` command runs the
/// scenarios in the guest.
fn static_xtask(arch: &Arch, build: bool) -> Result<PathBuf> {
    if build {
        run_cmd(&mut build_static_xtask(arch), "fix the compile error above")?;
    }
    let xtask = target_dir().join(arch.target).join("debug/xtask");
    if !xtask.is_file() {
        bail!(
            "{} is missing: run `{}` first",
            xtask.display(),
            crate::show(&build_static_xtask(arch))
        );
    }
    Ok(xtask)
}

/// The command that builds the static xtask for `arch`.
pub fn build_static_xtask(arch: &Arch) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.args(["build", "-p", "xtask", "--target"])
        .arg(arch.target);
    cmd
}

/// What can be proven here of a package and an image for another
/// architecture, whose binary was proven in its guest: each says that
/// architecture, and holds that very binary.
fn foreign_packages(artifacts: &Artifacts, work: &Path) -> Result<()> {
    let arch = artifacts.arch;
    if work.exists() {
        fs::remove_dir_all(work)?;
    }
    fs::create_dir_all(work)?;
    let binary = fs::read(&artifacts.binary)?;
    let said = output_of(
        Command::new("dpkg-deb")
            .arg("--field")
            .arg(&artifacts.deb)
            .arg("Architecture"),
    )
    .context("dpkg-deb --field")?;
    if said.trim() != arch.deb {
        bail!(
            "{} says Architecture: {}",
            artifacts.deb.display(),
            said.trim()
        );
    }
    let deb_root = work.join("deb");
    run_cmd(
        Command::new("dpkg-deb")
            .arg("-x")
            .arg(&artifacts.deb)
            .arg(&deb_root),
        "dpkg-deb (package dpkg) is needed",
    )?;
    if fs::read(deb_root.join("usr/sbin/zombie-trace"))? != binary {
        bail!(
            "{} does not hold the binary proven in the guest",
            artifacts.deb.display()
        );
    }
    let layout = work.join("oci");
    fs::create_dir_all(&layout)?;
    run_cmd(
        Command::new("tar")
            .arg("-xf")
            .arg(&artifacts.image)
            .arg("-C")
            .arg(&layout),
        "GNU tar is needed",
    )?;
    let blob = |digest: &str| -> Result<Vec<u8>> {
        let hex = digest
            .strip_prefix("sha256:")
            .context("a digest that is not sha256")?;
        Ok(fs::read(layout.join("blobs/sha256").join(hex))?)
    };
    let index: serde_json::Value = serde_json::from_slice(&fs::read(layout.join("index.json"))?)?;
    let manifest: serde_json::Value = serde_json::from_slice(&blob(
        index["manifests"][0]["digest"]
            .as_str()
            .context("no manifest in index.json")?,
    )?)?;
    let config: serde_json::Value = serde_json::from_slice(&blob(
        manifest["config"]["digest"]
            .as_str()
            .context("no config in the manifest")?,
    )?)?;
    if config["architecture"] != arch.oci
        || index["manifests"][0]["platform"]["architecture"] != arch.oci
    {
        bail!(
            "{} is not an {} image: {config}",
            artifacts.image.display(),
            arch.oci
        );
    }
    let rootfs = work.join("oci-rootfs");
    fs::create_dir_all(&rootfs)?;
    let layer = blob(
        manifest["layers"][0]["digest"]
            .as_str()
            .context("no layer in the manifest")?,
    )?;
    let layer_file = work.join("layer.tar.gz");
    fs::write(&layer_file, layer)?;
    run_cmd(
        Command::new("tar")
            .arg("-xzf")
            .arg(&layer_file)
            .arg("-C")
            .arg(&rootfs),
        "GNU tar and gzip are needed",
    )?;
    if fs::read(rootfs.join(oci::ENTRYPOINT.trim_start_matches('/')))? != binary {
        bail!(
            "{} does not hold the binary proven in the guest",
            artifacts.image.display()
        );
    }
    println!(
        "{}, {}: {} package and image, with the binary proven in the guest",
        artifacts.deb.display(),
        artifacts.image.display(),
        arch.deb
    );
    Ok(())
}

/// The package in a Debian 12 guest, as `check-deb.sh` says; every check
/// it prints must pass.
fn deb(artifacts: &Artifacts, work: &Path) -> Result<()> {
    let console = debguest::run(
        &[(artifacts.deb.clone(), "/root/zombie-trace.deb")],
        include_str!("check-deb.sh"),
        work,
    )?;
    let lines: Vec<&str> = console
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| l.starts_with(debguest::MARK))
        .collect();
    let failed: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.split(' ').nth(2) == Some("FAIL"))
        .collect();
    let passed = lines.iter().filter(|l| l.contains(" PASS ")).count();
    // Each boot's own count too: a FAIL line that the console garbled
    // (systemd's messages share it) is still counted.
    let counted: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| {
            let word = l.split(' ').nth(1);
            (word == Some("REBOOT") || word == Some("DONE")) && !l.ends_with(" 0 failed")
        })
        .collect();
    if !failed.is_empty() || !counted.is_empty() {
        bail!(
            "checks failed in the guest (consoles in {}):\n{}",
            work.display(),
            [failed, counted].concat().join("\n")
        );
    }
    if passed == 0 {
        bail!(
            "no check passed in the guest: see the consoles in {}",
            work.display()
        );
    }
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
        let conf = target_dir().join("dist/containers.conf");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace_root;

    fn read(path: &str) -> String {
        fs::read_to_string(workspace_root().join(path)).unwrap()
    }

    #[test]
    fn the_readme_runs_the_image_as_it_is_checked() {
        let readme = read("README.md");
        let install = &readme
            [readme.find("## Install").unwrap()..readme.find("## Build from source").unwrap()];
        for arg in IMAGE_RUN.iter().skip(1) {
            assert!(install.contains(arg), "README's podman run lacks {arg}");
        }
        assert!(install.contains(&format!("{}:", oci::NAME)));
    }

    /// The service and the DaemonSet hold the same capabilities, but for
    /// SYS_RESOURCE, which the unit replaces with LimitMEMLOCK.
    #[test]
    fn the_unit_keeps_the_capabilities_the_daemonset_has() {
        let unit = read(crate::dist::SYSTEMD_UNIT);
        let mut in_unit: Vec<String> = unit
            .lines()
            .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
            .unwrap()
            .split_whitespace()
            .map(|c| c.trim_start_matches("CAP_").to_owned())
            .collect();
        let daemonset = read("deploy/kubernetes/daemonset.yaml");
        let added = daemonset
            .lines()
            .find_map(|l| l.trim().strip_prefix("add: ["))
            .unwrap()
            .trim_end_matches(']');
        let mut in_pod: Vec<String> = added
            .split(',')
            .map(|c| c.trim().to_owned())
            .filter(|c| c != "SYS_RESOURCE")
            .collect();
        in_unit.sort();
        in_pod.sort();
        assert_eq!(in_unit, in_pod);
        assert!(unit.contains("LimitMEMLOCK=infinity"));
        let image_caps = IMAGE_RUN
            .iter()
            .find_map(|a| a.strip_prefix("--cap-add="))
            .unwrap();
        let mut in_image: Vec<&str> = image_caps.split(',').collect();
        in_image.sort();
        assert_eq!(in_image, in_pod);
    }
}
