//! Developer tasks for zombie-trace: `cargo xtask <command>` (or `./x.sh`,
//! which first installs rustup and the pinned toolchain on a fresh machine).

mod bench;
mod build;
mod debguest;
mod deploy;
mod dist;
mod fuzz;
mod guest;
mod plot;
mod run;
mod setup;
mod soak;
mod tax;
mod test;
mod vmtest;

use std::{
    env,
    ffi::OsStr,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "zombie-trace developer tasks (Debian/Ubuntu; needs root or sudo)"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what building and testing need (apt packages, the eBPF
    /// toolchain, bpf-linker, the musl target, cargo-fuzz); fast when
    /// everything is there. `build`, `run` and `dist` install only what
    /// building needs.
    Setup,
    /// Set up, then build the tracer (release unless --debug).
    Build {
        /// Build the debug profile instead of release.
        #[arg(long)]
        debug: bool,
    },
    /// Set up, build (release), then run the tracer as root with ARGS.
    Run {
        /// Arguments for zombie-trace (put them after `--`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Check deploy/ without a cluster: the Prometheus rules (promtool's
    /// check and unit tests), the Kubernetes manifests (their API schemas)
    /// and the Grafana dashboard (its queries name known metrics only).
    DeployCheck,
    /// Build what an operator installs into target/dist/ (as root or not):
    /// the static binary's tarball, the Debian package and the OCI image,
    /// each with a .sha256 file; --check also proves each one on a clean
    /// machine (as root).
    Dist(dist::Options),
    /// Set up, then run fmt, clippy, the whole test suite (as root), a
    /// minute of each fuzz target, the scenarios on Linux 5.10 under qemu,
    /// and `dist --check`.
    Test,
    /// Cost against exitsnoop and bpftrace: each workload under no tracer,
    /// zombie-trace (default and --events), exitsnoop and bpftrace, each
    /// tracer's run between two runs without one; then the kernel's own
    /// accounting, the memory soak, the userspace micro-benchmark and a
    /// flood of zombies of one parent, the release files' sizes and
    /// start-up times, and an exec-heavy workload beside exitsnoop and
    /// execsnoop. Writes BENCHMARKS.md and its figure (as root, about
    /// 50 minutes).
    Bench(bench::Options),
    /// The kernel matrix: the release binary's end-to-end scenarios on
    /// Debian's 5.10, 6.1 and 6.12 cloud kernels, each booted under qemu
    /// (software emulation), on Debian's 6.1 arm64 cloud kernel on an
    /// emulated arm64 machine (the tracer cross-built static), and on the
    /// host's kernel (as root; kernels and qemu are fetched once into
    /// /var/cache/zombie-trace-vmtest).
    /// With every kernel, the table also goes into README.md, and what the
    /// tracer adds to an unrelated syscall on each into BENCHMARKS.md.
    Vmtest {
        /// Only these kernels (5.10, 6.1, 6.12, 6.1-arm64, host); repeat
        /// the flag for several. Default: all.
        #[arg(long = "kernel")]
        kernels: Vec<String>,
        /// Use the release binaries as they are (`cargo xtask test` built
        /// them).
        #[arg(long, hide = true)]
        no_build: bool,
    },
    /// Fuzz every parser of bytes from outside the tracer (ring-buffer
    /// records, kernel maps, /proc files, the command line, output of
    /// hostile names), each target for a while, from the corpus kept in
    /// fuzz/corpus/ (libFuzzer with AddressSanitizer; built with the eBPF
    /// nightly).
    Fuzz(fuzz::Options),
    /// Boot a clean Debian 12 guest (systemd, ext4 root) under qemu, put
    /// files on its disk and run a shell script there as root, booting
    /// again while it prints `DEBGUEST REBOOT` (see debguest.rs).
    #[command(hide = true)]
    Debguest {
        /// HOST_FILE:GUEST_PATH, a file to put on the guest's disk; repeat
        /// the flag for several.
        #[arg(long)]
        payload: Vec<String>,
        /// The shell script to run in the guest.
        #[arg(long)]
        script: PathBuf,
    },
    /// Inside a guest of `vmtest`: run the scenarios against this tracer.
    #[command(hide = true)]
    Guest { zombie_trace: PathBuf },
    /// Memory soak: the tracer's resident memory while a storm of properly
    /// reaped children runs (figures for BENCHMARKS.md).
    Soak {
        /// How many children in all.
        #[arg(long, default_value_t = 1_000_000)]
        children: u64,
        /// How many fork loops at once (default: one per core).
        #[arg(long)]
        parallel: Option<u64>,
    },
}

fn main() {
    if let Err(err) = real_main() {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    // In a guest there is no workspace and no cargo.
    if !matches!(cli.command, Cmd::Guest { .. }) {
        let root = workspace_root();
        env::set_current_dir(&root)
            .with_context(|| format!("cannot enter the workspace {}", root.display()))?;
        add_cargo_bin_to_path()?;
    }
    match cli.command {
        Cmd::Setup => setup::setup(setup::Need::Test),
        Cmd::Build { debug } => build::build(!debug),
        Cmd::Run { args } => run::run(&args),
        Cmd::DeployCheck => deploy::check(),
        Cmd::Dist(options) => dist::dist(&options),
        Cmd::Test => test::test(),
        Cmd::Bench(options) => bench::bench(&options),
        Cmd::Vmtest { kernels, no_build } => vmtest::vmtest(&kernels, !no_build),
        Cmd::Fuzz(options) => fuzz::fuzz(&options),
        Cmd::Debguest { payload, script } => debguest::debguest(&payload, &script),
        Cmd::Guest { zombie_trace } => guest::guest(&zombie_trace),
        Cmd::Soak { children, parallel } => {
            soak::soak(children, parallel.unwrap_or_else(|| cores() as u64))
        }
    }
}

/// This machine's cores (1 if unknown).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The host's target triple (`x86_64-unknown-linux-gnu`), from rustc.
pub fn host_triple() -> Result<String> {
    let version = output_of(Command::new("rustc").arg("-vV"))
        .context("`rustc -vV` failed: run ./x.sh, which installs the toolchain")?;
    version
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("`rustc -vV` printed no host line")
}

/// The workspace root (xtask's parent folder).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// Where cargo builds: `$CARGO_TARGET_DIR`, else the workspace's target/.
pub fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Where `cargo install` puts binaries (bpf-linker): `$CARGO_HOME/bin`.
pub fn cargo_bin_dir() -> PathBuf {
    match env::var_os("CARGO_HOME") {
        Some(home) if !home.is_empty() => PathBuf::from(home).join("bin"),
        _ => {
            PathBuf::from(env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cargo/bin")
        }
    }
}

/// Puts `~/.cargo/bin` first in PATH, for this process and its children, so
/// that a freshly installed bpf-linker is found by the loader's build.rs.
fn add_cargo_bin_to_path() -> Result<()> {
    let bin = cargo_bin_dir();
    let old = env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = env::split_paths(&old).collect();
    if dirs.contains(&bin) {
        return Ok(());
    }
    dirs.insert(0, bin);
    let new = env::join_paths(dirs).context("PATH holds a folder name with a ':' in it")?;
    // SAFETY: called once at start-up, before any other thread exists.
    unsafe { env::set_var("PATH", new) };
    Ok(())
}

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|uids| uids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Finds `program` in PATH (and in the sbin folders, which a normal user's
/// PATH may lack).
pub fn which(program: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// A command that runs as root: directly when we are root, else via sudo.
pub fn root_command(program: impl AsRef<OsStr>) -> Result<Command> {
    if is_root() {
        return Ok(Command::new(program));
    }
    if which("sudo").is_none() {
        bail!(
            "`{}` must run as root and sudo is not installed: run this command as root",
            program.as_ref().to_string_lossy()
        );
    }
    let mut cmd = Command::new("sudo");
    cmd.arg("--").arg(program);
    Ok(cmd)
}

/// Shows a command the way a shell user would type it.
pub fn show(cmd: &Command) -> String {
    let mut words = Vec::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            words.push(format!(
                "{}={}",
                key.to_string_lossy(),
                value.to_string_lossy()
            ));
        }
    }
    words.push(cmd.get_program().to_string_lossy().into_owned());
    words.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    words.join(" ")
}

/// Runs `cmd` with inherited stdio; on failure the error says what failed
/// and `hint` says what to do about it.
pub fn run_cmd(cmd: &mut Command, hint: &str) -> Result<()> {
    let shown = show(cmd);
    println!("$ {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{shown}`: {hint}"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status}): {hint}");
    }
    Ok(())
}

/// Runs `cmd` quietly and returns its stdout, or None if it could not start
/// or failed (used for "is it there?" checks).
pub fn output_of(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(std::process::Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}
