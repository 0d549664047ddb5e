//! `cargo xtask setup`: installs what is missing, checking first, so that a
//! second run takes well under a second. One line per thing found/installed.
//!
//! Where LLVM 22 comes from (checked on the project's Debian 12 machines):
//! `apt-cache policy llvm-22-dev` shows `1:22.1.8-1~deb12u1` from
//! `http://deb.debian.org/debian-security bookworm-security/main`, i.e.
//! Debian's own security archive (it carries new llvm-toolchain releases for
//! the Firefox/Thunderbird ESR builds), configured by the stock
//! /etc/apt/sources.list.d/debian.sources; no apt.llvm.org entry, no extra
//! key. So on Debian we mirror that: if there is no candidate, add the
//! `$CODENAME-security` suite (signed by debian-archive-keyring, always
//! installed). If there is still none (Ubuntu, or a Debian release whose
//! security archive lacks LLVM 22), add apt.llvm.org's
//! `llvm-toolchain-$CODENAME-22` with its key.

use std::{fs, path::Path, process::Command};

use anyhow::{Context as _, Result, bail};

use crate::{cargo_bin_dir, output_of, root_command, run_cmd, which};

/// The LLVM major version of the eBPF toolchain's rustc and of bpf-linker.
const LLVM: u32 = 22;
/// Packages for building the tracer: bpf-linker's LLVM, a C linker, and
/// CA certificates for cargo.
const BUILD_PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "libpolly-22-dev",
    "libzstd-dev",
    "zlib1g-dev",
    "gcc",
    "libc6-dev",
    "ca-certificates",
];
/// And for the tests (python3, bpftool, procps; g++ for libFuzzer).
const TEST_PACKAGES: &[&str] = &[
    "python3",
    "bpftool",
    "procps",
    "g++",
    // The deployment's checks and tests/fleet.rs: containers under podman
    // with runc (catatonit is the pause process of its pods, uidmap its
    // id mapping), a real Prometheus and promtool, busybox-static for the
    // test images, a venv for kubernetes-validate, YAML for python3.
    "podman",
    "runc",
    "catatonit",
    "uidmap",
    "prometheus",
    "busybox-static",
    "python3-venv",
    "python3-yaml",
    // `cargo xtask dist --check`: the Debian 12 guest's root file system.
    "debootstrap",
];
/// The static binary's target (`cargo xtask dist`), for this machine.
pub const STATIC_TARGET: &str = "x86_64-unknown-linux-musl";
/// What `cargo xtask dist` also builds for arm64: its target, its linker
/// and binutils (`.cargo/config.toml` names the linker), and qemu's user
/// mode to run the result here.
pub const ARM64_TARGET: &str = "aarch64-unknown-linux-musl";
const DIST_PACKAGES: &[&str] = &["gcc-aarch64-linux-gnu", "qemu-user"];
const BPF_LINKER_VERSION: &str = "0.13";
const CARGO_FUZZ_VERSION: &str = "0.13";
const TRACEFS: &str = "/sys/kernel/tracing";

/// What a command needs, so that `./x.sh run` installs no test tools.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Building and running the tracer.
    Build,
    /// That, and the static binary's target (`cargo xtask dist`).
    Dist,
    /// Everything: the tests, the fuzzers, the release checks.
    Test,
}

pub fn setup(need: Need) -> Result<()> {
    let mut packages = BUILD_PACKAGES.to_vec();
    if need != Need::Build {
        packages.extend_from_slice(DIST_PACKAGES);
    }
    if need == Need::Test {
        packages.extend_from_slice(TEST_PACKAGES);
    }
    apt_packages(&packages)?;
    ebpf_toolchain()?;
    bpf_linker()?;
    if need != Need::Build {
        static_target(STATIC_TARGET)?;
        static_target(ARM64_TARGET)?;
    }
    if need == Need::Test {
        cargo_fuzz()?;
    }
    tracefs();
    Ok(())
}

fn apt_packages(packages: &[&str]) -> Result<()> {
    if which("dpkg-query").is_none() || which("apt-get").is_none() {
        bail!(
            "this setup supports Debian and Ubuntu (apt) only: on another system install \
             LLVM {LLVM} (with its development files), python3, gcc, bpftool and procps yourself, \
             then run `cargo xtask setup` again"
        );
    }
    let mut missing: Vec<String> = Vec::new();
    for &package in packages {
        if dpkg_installed(package) || (package == "bpftool" && which("bpftool").is_some()) {
            println!("apt: {package}: found");
        } else {
            missing.push(package.to_owned());
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    println!("apt: to install: {}", missing.join(" "));
    apt_update()?;
    if missing.iter().any(|p| p == "llvm-22-dev") && !has_candidate("llvm-22-dev") {
        add_llvm_source()?;
    }
    // Ubuntu has no `bpftool` package: it is in linux-tools-<kernel>.
    if missing.iter().any(|p| p == "bpftool") && !has_candidate("bpftool") {
        missing.retain(|p| p != "bpftool");
        missing.push("linux-tools-common".to_owned());
        if let Some(release) = output_of(Command::new("uname").arg("-r")) {
            let tools = format!("linux-tools-{}", release.trim());
            if has_candidate(&tools) {
                missing.push(tools);
            } else {
                println!(
                    "apt: warning: no bpftool package for this kernel ({tools}): the tests that \
                     use bpftool will fail; install bpftool by hand"
                );
            }
        }
    }
    let mut install = root_command("apt-get")?;
    install
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "--no-install-recommends"])
        .args(&missing);
    run_cmd(
        &mut install,
        "fix the apt error above (is another apt running? is the network up?), then run \
         `cargo xtask setup` again",
    )?;
    for package in missing {
        println!("apt: {package}: installed");
    }
    Ok(())
}

fn dpkg_installed(package: &str) -> bool {
    output_of(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_some_and(|status| status.trim_end().ends_with(" installed"))
}

/// Whether apt can install `package` (`Candidate:` is a version, not `(none)`).
fn has_candidate(package: &str) -> bool {
    output_of(Command::new("apt-cache").args(["policy", package])).is_some_and(|policy| {
        policy
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Candidate:"))
            .any(|c| !c.trim().is_empty() && c.trim() != "(none)")
    })
}

fn apt_update() -> Result<()> {
    run_cmd(
        root_command("apt-get")?.arg("update"),
        "fix the apt sources or the network, then run `cargo xtask setup` again",
    )
}

/// Reads a field of /etc/os-release (`ID`, `VERSION_CODENAME`, ...).
fn os_release(key: &str) -> Option<String> {
    let text = fs::read_to_string("/etc/os-release").ok()?;
    text.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix('=')?;
        Some(value.trim().trim_matches('"').to_owned()).filter(|v| !v.is_empty())
    })
}

/// Adds an apt source for LLVM 22; see the comment at the top of this file.
fn add_llvm_source() -> Result<()> {
    let id = os_release("ID").unwrap_or_default();
    let codename = os_release("UBUNTU_CODENAME")
        .or_else(|| os_release("VERSION_CODENAME"))
        .context(
            "llvm-22-dev is not available and /etc/os-release has no VERSION_CODENAME: add an \
             apt source for LLVM 22 yourself (see https://apt.llvm.org), then run `cargo xtask \
             setup` again",
        )?;
    if id == "debian" {
        let file = "/etc/apt/sources.list.d/zombie-trace-debian-security.sources";
        let entry = format!(
            "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: {codename}-security\n\
             Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        );
        println!(
            "apt: llvm-22-dev: no candidate; adding Debian's {codename}-security suite ({file})"
        );
        write_as_root(file, &entry)?;
        apt_update()?;
        if has_candidate("llvm-22-dev") {
            return Ok(());
        }
    }
    // apt.llvm.org: fetching its key needs curl and CA certificates.
    let mut fetch_tools = Vec::new();
    if which("curl").is_none() {
        fetch_tools.push("curl");
    }
    if !dpkg_installed("ca-certificates") {
        fetch_tools.push("ca-certificates");
    }
    if !fetch_tools.is_empty() {
        run_cmd(
            root_command("apt-get")?
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(["install", "-y", "--no-install-recommends"])
                .args(&fetch_tools),
            "install curl and ca-certificates, then run `cargo xtask setup` again",
        )?;
    }
    let key = "/etc/apt/keyrings/apt.llvm.org.asc";
    let file = "/etc/apt/sources.list.d/apt.llvm.org.list";
    println!(
        "apt: llvm-22-dev: no candidate; adding apt.llvm.org llvm-toolchain-{codename}-{LLVM} ({file})"
    );
    run_cmd(
        root_command("mkdir")?.args(["-p", "/etc/apt/keyrings"]),
        "create /etc/apt/keyrings as root",
    )?;
    run_cmd(
        root_command("curl")?.args([
            "-fsSL",
            "--proto",
            "=https",
            "-o",
            key,
            "https://apt.llvm.org/llvm-snapshot.gpg.key",
        ]),
        "check the network (https://apt.llvm.org must be reachable), then run `cargo xtask setup` again",
    )?;
    let entry = format!(
        "deb [signed-by={key}] https://apt.llvm.org/{codename}/ llvm-toolchain-{codename}-{LLVM} main\n"
    );
    write_as_root(file, &entry)?;
    apt_update()?;
    if !has_candidate("llvm-22-dev") {
        bail!(
            "llvm-22-dev is still not installable after adding {file}: does apt.llvm.org have \
             llvm-toolchain-{codename}-{LLVM}? Add a working LLVM {LLVM} apt source, then run \
             `cargo xtask setup` again"
        );
    }
    Ok(())
}

/// Writes a root-owned file (through `sudo tee` when we are not root).
fn write_as_root(path: &str, contents: &str) -> Result<()> {
    use std::io::Write as _;
    let mut tee = root_command("tee")?;
    let mut child = tee
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start tee to write {path}"))?;
    child
        .stdin
        .take()
        .context("tee has no stdin")?
        .write_all(contents.as_bytes())
        .with_context(|| format!("writing {path}"))?;
    let status = child.wait().context("waiting for tee")?;
    if !status.success() {
        bail!("cannot write {path} ({status}): run `cargo xtask setup` as root");
    }
    Ok(())
}

/// The eBPF toolchain, pinned in one place: `EBPF_TOOLCHAIN` in
/// zombie-trace/build.rs.
pub fn ebpf_toolchain_name() -> Result<String> {
    let path = Path::new("zombie-trace/build.rs");
    let text = fs::read_to_string(path)
        .with_context(|| format!("cannot read {} (run from the workspace)", path.display()))?;
    text.lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("const EBPF_TOOLCHAIN: &str = \"")?
                .split_once("\";")
                .map(|(name, _)| name.to_owned())
        })
        .with_context(|| {
            format!(
                "no `const EBPF_TOOLCHAIN: &str = \"...\";` line in {}: restore it (the eBPF \
                 toolchain is pinned there)",
                path.display()
            )
        })
}

fn ebpf_toolchain() -> Result<()> {
    let toolchain = ebpf_toolchain_name()?;
    let installed = output_of(Command::new("rustup").args(["toolchain", "list"])).context(
        "rustup not found: install it (./x.sh does), then run `cargo xtask setup` again",
    )?;
    let present = installed.lines().any(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|t| t.starts_with(&toolchain))
    });
    let has_src = present
        && output_of(Command::new("rustup").args([
            "component",
            "list",
            "--installed",
            "--toolchain",
            &toolchain,
        ]))
        .is_some_and(|c| c.lines().any(|l| l.trim() == "rust-src"));
    if has_src {
        println!("rust: {toolchain} with rust-src: found");
        return Ok(());
    }
    run_cmd(
        Command::new("rustup").args([
            "toolchain",
            "install",
            &toolchain,
            "--profile",
            "minimal",
            "--component",
            "rust-src",
        ]),
        "check the network (rustup must reach static.rust-lang.org), then run `cargo xtask setup` again",
    )?;
    println!("rust: {toolchain} with rust-src: installed");
    Ok(())
}

fn bpf_linker() -> Result<()> {
    match bpf_linker_status() {
        Ok(version) => {
            println!("bpf-linker: {version} (LLVM {LLVM}): found");
            return Ok(());
        }
        Err(why) => println!("bpf-linker: {why}: installing {BPF_LINKER_VERSION}.x"),
    }
    let prefix = format!("/usr/lib/llvm-{LLVM}");
    if !Path::new(&prefix).join("lib").is_dir() {
        bail!("{prefix} is missing: install llvm-{LLVM}-dev (`cargo xtask setup` does)");
    }
    let install = |locked: bool| {
        let mut cmd = Command::new("cargo");
        cmd.env("LLVM_PREFIX", &prefix).args([
            "install",
            "bpf-linker",
            "--version",
            &format!("^{BPF_LINKER_VERSION}"),
            "--no-default-features",
            "--features",
            &format!("llvm-{LLVM}"),
            "--force",
        ]);
        if locked {
            cmd.arg("--locked");
        }
        cmd
    };
    let hint = format!(
        "bpf-linker must build against /usr/lib/llvm-{LLVM} (apt: llvm-{LLVM}-dev libpolly-{LLVM}-dev \
         libzstd-dev zlib1g-dev); fix the error above, then run `cargo xtask setup` again"
    );
    if let Err(err) = run_cmd(&mut install(true), &hint) {
        println!("bpf-linker: --locked build failed ({err:#}); retrying without --locked");
        run_cmd(&mut install(false), &hint)?;
    }
    let version = bpf_linker_status().map_err(|why| {
        anyhow::anyhow!(
            "bpf-linker was installed but {why}: is {} first in PATH?",
            cargo_bin_dir().display()
        )
    })?;
    println!("bpf-linker: {version} (LLVM {LLVM}): installed");
    Ok(())
}

/// `Ok(version)` if bpf-linker is 0.13.x and not linked to another LLVM
/// major version than ours; else why not.
fn bpf_linker_status() -> Result<String, String> {
    let Some(path) = which("bpf-linker") else {
        return Err("not found".into());
    };
    let out = output_of(Command::new(&path).arg("--version"))
        .ok_or_else(|| format!("{} --version failed", path.display()))?;
    let version = out.split_whitespace().nth(1).unwrap_or("").to_owned();
    if !version.starts_with(&format!("{BPF_LINKER_VERSION}.")) {
        return Err(format!("version {version:?}, not {BPF_LINKER_VERSION}.x"));
    }
    // A dynamically linked bpf-linker names its libLLVM; it must be ours.
    if let Some(libs) = output_of(Command::new("ldd").arg(&path))
        && let Some(lib) = libs.split_whitespace().find(|w| w.starts_with("libLLVM"))
        && !lib.starts_with(&format!("libLLVM.so.{LLVM}"))
        && lib != format!("libLLVM-{LLVM}.so")
    {
        return Err(format!("linked to {lib}, not LLVM {LLVM}"));
    }
    Ok(version)
}

/// The standard library for a static binary, in the pinned toolchain
/// (rust-toolchain.toml: rustup picks it in the workspace).
fn static_target(target: &str) -> Result<()> {
    let installed = output_of(Command::new("rustup").args(["target", "list", "--installed"]))
        .context("`rustup target list` failed: run ./x.sh, which installs rustup")?;
    if installed.lines().any(|l| l.trim() == target) {
        println!("rust: target {target}: found");
        return Ok(());
    }
    run_cmd(
        Command::new("rustup").args(["target", "add", target]),
        "check the network (rustup must reach static.rust-lang.org), then run `cargo xtask setup` again",
    )?;
    println!("rust: target {target}: installed");
    Ok(())
}

/// cargo-fuzz, which builds and runs the fuzz targets (`cargo xtask fuzz`).
fn cargo_fuzz() -> Result<()> {
    let version = || {
        let out = output_of(Command::new("cargo").args(["fuzz", "--version"]))?;
        let version = out.split_whitespace().nth(1)?.to_owned();
        version
            .starts_with(&format!("{CARGO_FUZZ_VERSION}."))
            .then_some(version)
    };
    if let Some(found) = version() {
        println!("cargo-fuzz: {found}: found");
        return Ok(());
    }
    run_cmd(
        Command::new("cargo").args([
            "install",
            "cargo-fuzz",
            "--version",
            &format!("^{CARGO_FUZZ_VERSION}"),
            "--locked",
            "--force",
        ]),
        "check the network (cargo must reach crates.io), then run `cargo xtask setup` again",
    )?;
    let installed = version().with_context(|| {
        format!(
            "cargo-fuzz was installed but `cargo fuzz --version` does not say \
             {CARGO_FUZZ_VERSION}.x: is {} first in PATH?",
            cargo_bin_dir().display()
        )
    })?;
    println!("cargo-fuzz: {installed}: installed");
    Ok(())
}

/// The tracer mounts tracefs itself; mounting here only helps the tests and
/// tools like bpftool. A failure is a warning, not an error.
fn tracefs() {
    let mounted = fs::read_to_string("/proc/mounts").is_ok_and(|m| {
        m.lines().any(|l| {
            let mut f = l.split_whitespace();
            f.nth(1) == Some(TRACEFS) && f.next() == Some("tracefs")
        })
    });
    if mounted {
        println!("tracefs: mounted at {TRACEFS}: found");
        return;
    }
    let result = root_command("mount").and_then(|mut cmd| {
        run_cmd(
            cmd.args(["-t", "tracefs", "nodev", TRACEFS]),
            "mount it by hand as root (the tracer also tries at start-up)",
        )
    });
    match result {
        Ok(()) => println!("tracefs: mounted at {TRACEFS}: done"),
        Err(err) => println!("tracefs: warning: {err:#}"),
    }
}
