//! `cargo xtask dist [--check]`: what an operator installs, built into
//! `target/dist/` as root or not, for hosts that never see the source,
//! for x86_64 and for arm64 (cross-built here):
//! - `zombie-trace-VERSION-ARCH-linux.tar.gz` (`x86_64`, `aarch64`): the
//!   static (musl) binary, the kernel programs embedded, with its man
//!   pages, completions and systemd files;
//! - `zombie-trace_VERSION-1_ARCH.deb` (`amd64`, `arm64`): the same,
//!   installed where Debian puts them, with the service enabled
//!   (`dist/deb.rs`);
//! - `zombie-trace-VERSION-ARCH-oci.tar`: an OCI image of the binary
//!   alone, for `podman load`/`docker load` (`dist/oci.rs`);
//!
//! each with a `.sha256` file `sha256sum -c` reads. The arm64 binary runs
//! here under qemu's user mode for its `--version` (static, programs
//! embedded), man pages and completions. `--check` then proves each file
//! where nothing was built (`dist/check.rs`, as root), the arm64 binary in
//! an emulated arm64 guest.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::{is_root, output_of, run_cmd, setup, target_dir, workspace_root};

pub mod check;
mod deb;
mod oci;

#[derive(clap::Args)]
pub struct Options {
    /// Then prove every artifact on clean machines (as root): the static
    /// binary in the 5.10 guest of `cargo xtask vmtest` (busybox, no libc),
    /// the package in a Debian 12 guest under systemd, the image under
    /// podman on this machine.
    #[arg(long)]
    pub check: bool,
    /// Check what target/dist/ holds, without building it again (`cargo
    /// xtask test` built it as the user, then checks it through sudo).
    #[arg(long, hide = true, requires = "check")]
    pub no_build: bool,
}

/// What `dist` made for one architecture, and what it made them from.
pub struct Artifacts {
    pub arch: &'static Arch,
    pub version: String,
    /// The stripped static binary.
    pub binary: PathBuf,
    pub tarball: PathBuf,
    pub deb: PathBuf,
    pub image: PathBuf,
}

impl Artifacts {
    /// Where [`build`] put `arch`'s.
    fn built(arch: &'static Arch) -> Result<Artifacts> {
        let out = target_dir().join("dist");
        let binary = stage_of(&out, arch).join("zombie-trace");
        let version = version(&binary, arch).context("run `cargo xtask dist` first")?;
        let artifacts = Artifacts {
            tarball: out.join(tarball_name(&version, arch) + ".tar.gz"),
            deb: out.join(deb::file_name(&version, arch)),
            image: out.join(oci::file_name(&version, arch)),
            arch,
            version,
            binary,
        };
        for file in [&artifacts.tarball, &artifacts.deb, &artifacts.image] {
            if !file.is_file() {
                bail!("{} is missing: run `cargo xtask dist`", file.display());
            }
        }
        Ok(artifacts)
    }
}

fn tarball_name(version: &str, arch: &Arch) -> String {
    format!("zombie-trace-{version}-{}-linux", arch.name)
}

/// An architecture built for, under each packaging's name for it.
pub struct Arch {
    /// In file names (`uname -m`).
    pub name: &'static str,
    /// Debian's name.
    pub deb: &'static str,
    /// The OCI image config's name (Go's GOARCH).
    pub oci: &'static str,
    /// Rust's target for the static binary.
    pub target: &'static str,
    /// Its binutils' prefix (`strip`), empty for this machine's.
    pub tools: &'static str,
    /// What runs its binaries here (qemu's user mode), if not itself.
    pub runner: Option<&'static str>,
}

/// This machine's: the tests, the checks and the benches use it.
pub const NATIVE: Arch = Arch {
    name: "x86_64",
    deb: "amd64",
    oci: "amd64",
    target: setup::STATIC_TARGET,
    tools: "",
    runner: None,
};

pub const ARM64: Arch = Arch {
    name: "aarch64",
    deb: "arm64",
    oci: "arm64",
    target: setup::ARM64_TARGET,
    tools: "aarch64-linux-gnu-",
    runner: Some("qemu-aarch64"),
};

impl Arch {
    /// `binary ARGS`, run here.
    fn command(&self, binary: &Path) -> Command {
        match self.runner {
            Some(runner) => {
                let mut cmd = Command::new(runner);
                cmd.arg(binary);
                cmd
            }
            None => Command::new(binary),
        }
    }
}

/// Where an architecture's files are put together.
fn stage_of(out: &Path, arch: &Arch) -> PathBuf {
    if arch.runner.is_none() {
        out.join("stage")
    } else {
        out.join(format!("stage-{}", arch.name))
    }
}

pub fn dist(options: &Options) -> Result<()> {
    if options.check && !is_root() {
        bail!(
            "the checks load eBPF programs and debootstrap a guest: run `cargo xtask dist` as \
             yourself, then `sudo cargo xtask dist --check --no-build`"
        );
    }
    setup::setup(if options.check {
        setup::Need::Test
    } else {
        setup::Need::Dist
    })?;
    let all = if options.no_build {
        vec![Artifacts::built(&NATIVE)?, Artifacts::built(&ARM64)?]
    } else {
        let mut all = vec![build()?];
        all.push(build_for(&ARM64)?);
        all
    };
    println!();
    for artifacts in &all {
        println!("{}:", artifacts.arch.name);
        for artifact in [&artifacts.tarball, &artifacts.deb, &artifacts.image] {
            let size = fs::metadata(artifact)?.len();
            println!(
                "{}  {:.1} MiB",
                artifact.display(),
                size as f64 / (1 << 20) as f64
            );
        }
    }
    if let (true, [native, arm64]) = (options.check, all.as_slice()) {
        check::all(native, arm64, !options.no_build)?;
    }
    Ok(())
}

/// Builds this machine's static binary and the three artifacts from it.
pub fn build() -> Result<Artifacts> {
    build_for(&NATIVE)
}

/// Builds `arch`'s static binary and the three artifacts from it.
fn build_for(arch: &'static Arch) -> Result<Artifacts> {
    let root = workspace_root();
    let out = target_dir().join("dist");
    let stage = stage_of(&out, arch);
    if stage.exists() {
        fs::remove_dir_all(&stage).with_context(|| {
            format!(
                "clearing {} (left by root's `dist --check`? remove {} as root)",
                stage.display(),
                out.display()
            )
        })?;
    }
    fs::create_dir_all(&stage).with_context(|| format!("creating {}", stage.display()))?;

    let binary = static_binary(&stage, arch)?;
    let version = version(&binary, arch)?;
    let epoch = source_date_epoch(&root);
    let docs = Docs::generate(arch, &binary, &stage.join("docs"))?;

    let from = From {
        arch,
        root: &root,
        out: &out,
        stage: &stage,
        binary: &binary,
        docs: &docs,
        version: &version,
        epoch,
    };
    let tarball = tarball(&from)?;
    let deb = deb::build(&from)?;
    let image = oci::build(&from)?;
    for artifact in [&tarball, &deb, &image] {
        write_sum(artifact)?;
    }
    Ok(Artifacts {
        arch,
        version,
        binary,
        tarball,
        deb,
        image,
    })
}

/// `cargo build --release --target TARGET` (e.g. `x86_64-unknown-linux-musl`),
/// stripped: a file that runs on any Linux of its architecture, whatever
/// its libc. aya-build builds the kernel programs for the same
/// architecture (`bpf_target_arch`).
fn static_binary(stage: &Path, arch: &Arch) -> Result<PathBuf> {
    println!("==> building the static binary ({})", arch.target);
    run_cmd(
        Command::new("cargo")
            .args(["build", "--release", "-p", "zombie-trace", "--target"])
            .arg(arch.target)
            // AYA_BUILD_SKIP=1 would embed an empty object.
            .env_remove("AYA_BUILD_SKIP")
            .env("ZOMBIE_TRACE_BUILT_BY", "cargo xtask dist"),
        "fix the compile error above (`cargo xtask setup` installs the musl targets and the \
         arm64 cross linker)",
    )?;
    let built = target_dir().join(arch.target).join("release/zombie-trace");
    let stripped = stage.join("zombie-trace");
    run_cmd(
        Command::new(format!("{}strip", arch.tools))
            .arg("--strip-all")
            .arg("-o")
            .arg(&stripped)
            .arg(&built),
        "strip is binutils' (installed with gcc, and with gcc-aarch64-linux-gnu for arm64)",
    )?;
    // What the binary says of itself: what an operator will read.
    let said = output_of(arch.command(&stripped).arg("--version"))
        .with_context(|| format!("`{} --version` failed", stripped.display()))?;
    if !said.contains("linked: statically linked") {
        bail!("{} is not statically linked:\n{said}", stripped.display());
    }
    if !said.contains("eBPF programs by ") {
        bail!(
            "{} was built without the kernel programs (is bpf-linker in PATH? run `cargo xtask \
             setup`):\n{said}",
            stripped.display()
        );
    }
    Ok(stripped)
}

/// The version the binary reports (`zombie-trace 0.1.0`).
fn version(binary: &Path, arch: &Arch) -> Result<String> {
    let said = output_of(arch.command(binary).arg("-V"))
        .with_context(|| format!("`{} -V` failed", binary.display()))?;
    said.split_whitespace()
        .nth(1)
        .map(str::to_owned)
        .with_context(|| format!("`{} -V` said {said:?}", binary.display()))
}

/// Timestamps in the archives: the commit's, so that two builds of one
/// commit give the same files.
fn source_date_epoch(root: &Path) -> u64 {
    output_of(
        Command::new("git")
            .args(["log", "-1", "--format=%ct"])
            .current_dir(root),
    )
    .and_then(|t| t.trim().parse().ok())
    .unwrap_or(0)
}

/// Man pages and completion scripts, generated by the binary from its own
/// command-line definition.
pub struct Docs {
    /// `zombie-trace.8`, `zombie-trace-ps.8`, ...
    pub man_pages: Vec<PathBuf>,
    pub bash: PathBuf,
    pub zsh: PathBuf,
    pub fish: PathBuf,
}

impl Docs {
    fn generate(arch: &Arch, binary: &Path, dir: &Path) -> Result<Docs> {
        let man = dir.join("man");
        fs::create_dir_all(&man)?;
        run_cmd(
            arch.command(binary).arg("man-pages").arg(&man),
            "the binary could not write its man pages",
        )?;
        let mut man_pages: Vec<PathBuf> = fs::read_dir(&man)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        man_pages.sort();
        let completion = |shell: &str, name: &str| -> Result<PathBuf> {
            let script = output_of(arch.command(binary).args(["completions", shell]))
                .with_context(|| format!("`zombie-trace completions {shell}` failed"))?;
            let path = dir.join(name);
            fs::write(&path, script)?;
            Ok(path)
        };
        Ok(Docs {
            man_pages,
            bash: completion("bash", "zombie-trace.bash")?,
            zsh: completion("zsh", "_zombie-trace")?,
            fish: completion("fish", "zombie-trace.fish")?,
        })
    }
}

/// The systemd files, kept in deploy/systemd/ (the tarball and the package
/// ship the same ones).
pub const SYSTEMD_UNIT: &str = "deploy/systemd/zombie-trace.service";
pub const SYSTEMD_DEFAULT: &str = "deploy/systemd/zombie-trace.default";
pub const LOGROTATE: &str = "deploy/systemd/zombie-trace.logrotate";

/// What each artifact is made from, and where.
pub struct From<'a> {
    pub arch: &'a Arch,
    /// The workspace.
    pub root: &'a Path,
    /// Where the artifacts go.
    pub out: &'a Path,
    /// A scratch folder.
    pub stage: &'a Path,
    pub binary: &'a Path,
    pub docs: &'a Docs,
    pub version: &'a str,
    /// Every file's timestamp.
    pub epoch: u64,
}

/// The tarball: one folder with the binary at its top.
fn tarball(from: &From) -> Result<PathBuf> {
    let name = tarball_name(from.version, from.arch);
    let dir = from.stage.join(&name);
    let copy = |file: &Path, to: &str| -> Result<()> {
        let to = dir.join(to);
        fs::create_dir_all(to.parent().unwrap_or(&dir))?;
        fs::copy(file, &to).with_context(|| format!("copying {}", file.display()))?;
        Ok(())
    };
    copy(from.binary, "zombie-trace")?;
    copy(&from.root.join("README.md"), "README.md")?;
    for page in &from.docs.man_pages {
        let file = page.file_name().context("a man page without a name")?;
        copy(page, &format!("man/{}", file.to_string_lossy()))?;
    }
    copy(&from.docs.bash, "completions/zombie-trace.bash")?;
    copy(&from.docs.zsh, "completions/_zombie-trace")?;
    copy(&from.docs.fish, "completions/zombie-trace.fish")?;
    for file in [SYSTEMD_UNIT, SYSTEMD_DEFAULT, LOGROTATE] {
        let path = Path::new(file);
        let base = path.file_name().context("a file without a name")?;
        copy(
            &from.root.join(path),
            &format!("systemd/{}", base.to_string_lossy()),
        )?;
    }
    let tarball = from.out.join(format!("{name}.tar.gz"));
    tar(from.stage, &[&name], &tarball, from.epoch, true)?;
    Ok(tarball)
}

/// A reproducible tar (gzipped or not) of `entries` under `dir`: sorted,
/// owned by root, dated `epoch`.
pub fn tar(dir: &Path, entries: &[&str], to: &Path, epoch: u64, gzip: bool) -> Result<()> {
    let mut cmd = Command::new("tar");
    cmd.args([
        "--sort=name",
        "--owner=0",
        "--group=0",
        "--numeric-owner",
        "--format=gnu",
        // The same modes whatever the umask of whoever built.
        "--mode=u=rwX,go=rX",
    ])
    .arg(format!("--mtime=@{epoch}"))
    .arg("-C")
    .arg(dir)
    .arg("-cf")
    .arg(to);
    if gzip {
        cmd.arg("--use-compress-program=gzip -9n");
    }
    cmd.args(entries);
    run_cmd(&mut cmd, "GNU tar and gzip are needed")
}

/// `gzip -9n` of `file` (no name or time in the header) into `dir`, as
/// `NAME.gz`.
pub fn gzipped(file: &Path, dir: &Path) -> Result<PathBuf> {
    let name = file.file_name().context("a file without a name")?;
    let to = dir.join(format!("{}.gz", name.to_string_lossy()));
    let status = Command::new("gzip")
        .args(["-9n", "-c"])
        .arg(file)
        .stdout(fs::File::create(&to)?)
        .status()
        .context("running gzip")?;
    if !status.success() {
        bail!("gzip {} failed", file.display());
    }
    Ok(to)
}

/// The file's SHA-256, as hex.
pub fn sha256(path: &Path) -> Result<String> {
    let out = output_of(Command::new("sha256sum").arg(path))
        .with_context(|| format!("sha256sum {}", path.display()))?;
    out.split_whitespace()
        .next()
        .filter(|h| h.len() == 64)
        .map(str::to_owned)
        .with_context(|| format!("sha256sum said {out:?}"))
}

/// `FILE.sha256` beside `FILE`, in the form `sha256sum -c` reads.
fn write_sum(path: &Path) -> Result<()> {
    let name = path
        .file_name()
        .context("an artifact without a name")?
        .to_string_lossy();
    let sum = path.with_file_name(format!("{name}.sha256"));
    fs::write(&sum, format!("{}  {name}\n", sha256(path)?))
        .with_context(|| format!("writing {}", sum.display()))
}
