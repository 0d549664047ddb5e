//! `cargo xtask vmtest`: the same release binary on other kernels. Each
//! kernel is a Debian cloud kernel package, fetched with `apt-get download`
//! into a cache outside the repository and unpacked there (nothing is
//! installed on the host), booted under qemu's software emulation with an
//! initramfs made here: busybox, the tracer, this xtask binary (whose
//! `guest` command runs the scenarios, see `guest.rs`) and their shared
//! libraries. The arm64 kernel's guest is an emulated arm64 machine
//! (`qemu-system-aarch64 -M virt`) with arm64 busybox and the tracer and
//! xtask cross-built static for it. The host's own kernel is the last
//! column, the scenarios run there directly. The table goes to stdout, to
//! `target/xtask/vmtest/matrix.md`, and into README.md; what the tracer
//! adds to an unrelated syscall on each kernel to
//! `target/xtask/vmtest/tax.md` and into BENCHMARKS.md.

use std::{
    collections::BTreeMap,
    env,
    ffi::OsString,
    fs,
    io::Read as _,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{
    bench::page,
    build, dist,
    guest::MARK,
    is_root, output_of, run_cmd, setup, target_dir,
    tax::{TAX, TAX_TRACEPOINTS, Tax},
    workspace_root,
};

/// A kernel of the matrix: its column's label, its version, the Debian
/// suite that has it, and the machine it runs on.
struct Kernel {
    label: &'static str,
    version: &'static str,
    suite: &'static str,
    machine: Machine,
}

const KERNELS: [Kernel; 4] = [
    Kernel {
        label: "5.10",
        version: "5.10",
        suite: "bullseye",
        machine: Machine::X86_64,
    },
    Kernel {
        label: "6.1",
        version: "6.1",
        suite: "bookworm",
        machine: Machine::X86_64,
    },
    Kernel {
        label: "6.12",
        version: "6.12",
        suite: "bookworm",
        machine: Machine::X86_64,
    },
    Kernel {
        label: ARM64_KERNEL,
        version: "6.1",
        suite: "bookworm",
        machine: Machine::Arm64,
    },
];

/// The arm64 kernel's label (`--kernel`, its column).
pub const ARM64_KERNEL: &str = "6.1-arm64";

/// What a guest's kernel runs on, emulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Machine {
    X86_64,
    Arm64,
}

impl Machine {
    /// Debian's name for it.
    fn debian(self) -> &'static str {
        match self {
            Machine::X86_64 => "amd64",
            Machine::Arm64 => "arm64",
        }
    }

    fn qemu(self) -> &'static str {
        match self {
            Machine::X86_64 => "qemu-system-x86_64",
            Machine::Arm64 => "qemu-system-aarch64",
        }
    }

    /// qemu's arguments for the machine and its CPU. The arm64 one has
    /// every feature qemu emulates, its pointer authentication by qemu's
    /// own algorithm rather than the architecture's QARMA, which is several
    /// times slower to emulate: the guest only needs signing and checking
    /// to agree.
    fn qemu_args(self) -> &'static [&'static str] {
        match self {
            Machine::X86_64 => &["-cpu", "max"],
            Machine::Arm64 => &["-M", "virt", "-cpu", "max,pauth-impdef=on"],
        }
    }

    /// The serial console's name in the guest.
    fn console(self) -> &'static str {
        match self {
            Machine::X86_64 => "ttyS0",
            Machine::Arm64 => "ttyAMA0",
        }
    }
}

/// The host's kernel, the last column.
const HOST: &str = "host";

/// Guests get this long to boot, run every scenario and power off.
const GUEST_TIMEOUT: Duration = Duration::from_secs(900);

/// Lines of a guest's console that mean its kernel is in trouble.
pub(crate) const KERNEL_TROUBLE: [&str; 4] = ["Kernel panic", "BUG:", "Oops", "Call Trace:"];

fn labels() -> Vec<&'static str> {
    KERNELS.iter().map(|k| k.label).chain([HOST]).collect()
}

/// The cache of kernels and host tools, kept between runs.
pub(crate) fn cache_dir() -> PathBuf {
    env::var_os("ZOMBIE_TRACE_VMTEST_CACHE").map_or_else(
        || PathBuf::from("/var/cache/zombie-trace-vmtest"),
        PathBuf::from,
    )
}

/// One kernel's outcome: each scenario's status and detail, or why the
/// guest never got to the end.
struct Column {
    label: String,
    release: String,
    scenarios: BTreeMap<String, (String, String)>,
    /// How the tracer runs there (the guest's `how` lines).
    how: Vec<String>,
    /// A `getppid` without the tracer and with it; and with it forced onto
    /// the syscall tracepoints, where it ran by trampolines.
    tax: Option<Tax>,
    tax_tracepoints: Option<Tax>,
    trouble: Option<String>,
}

impl Column {
    fn passed(&self) -> bool {
        self.trouble.is_none()
            && !self.scenarios.is_empty()
            && self.scenarios.values().all(|(status, _)| status != "FAIL")
    }

    /// What hooks the wait calls there (`trampolines`, `tracepoints`), as
    /// the tracer said in its ready line.
    fn wait_hooks(&self) -> Option<&str> {
        self.how
            .iter()
            .find_map(|h| h.strip_prefix(WAIT_HOOKS)?.split_whitespace().next())
    }
}

/// The start of the guest's `how` line that names the wait calls' hooks.
const WAIT_HOOKS: &str = "wait calls by ";

pub fn vmtest(wanted: &[String], build_first: bool) -> Result<()> {
    if !is_root() {
        bail!("the kernel matrix loads eBPF programs on the host too: run it as root");
    }
    for label in wanted {
        if !labels().contains(&label.as_str()) {
            bail!(
                "no kernel {label:?} in the matrix: choose from {:?}",
                labels()
            );
        }
    }
    let wanted: Vec<&str> = if wanted.is_empty() {
        labels()
    } else {
        labels()
            .into_iter()
            .filter(|l| wanted.iter().any(|w| w == l))
            .collect()
    };
    if build_first {
        build::build(true)?;
    }
    let root = workspace_root();
    let zombie_trace = target_dir().join("release/zombie-trace");
    if !zombie_trace.exists() {
        bail!(
            "{} is missing: run `cargo xtask build`",
            zombie_trace.display()
        );
    }
    let xtask = env::current_exe().context("finding this xtask binary")?;
    let work = root.join("target/xtask/vmtest");
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let cache = cache_dir();

    let mut columns = Vec::new();
    let guests: Vec<&Kernel> = KERNELS
        .iter()
        .filter(|k| wanted.contains(&k.label))
        .collect();
    if !guests.is_empty() {
        let tools = Tools::fetch(&cache.join("tools"))?;
        for machine in [Machine::X86_64, Machine::Arm64] {
            let kernels: Vec<&Kernel> = guests
                .iter()
                .copied()
                .filter(|k| k.machine == machine)
                .collect();
            if kernels.is_empty() {
                continue;
            }
            let (tracer, xtask, work) = match machine {
                Machine::X86_64 => (zombie_trace.clone(), xtask.clone(), work.clone()),
                Machine::Arm64 => {
                    let (tracer, xtask) = arm64_binaries(build_first)?;
                    (tracer, xtask, work.join(machine.debian()))
                }
            };
            let busybox = tools.guest_busybox(machine)?;
            let initramfs = initramfs(&tools, &busybox, &tracer, &xtask, &work)?;
            for kernel in kernels {
                columns.push(guest(kernel, &tools, &initramfs, &work)?);
            }
        }
    }
    if wanted.contains(&HOST) {
        println!("==> the host's kernel");
        let out = Command::new(&xtask)
            .arg("guest")
            .arg(&zombie_trace)
            .stderr(Stdio::inherit())
            .output()
            .context("running the scenarios on the host")?;
        let console = String::from_utf8_lossy(&out.stdout).into_owned();
        print!("{console}");
        let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        columns.push(column(HOST, release.trim(), &console));
    }

    let table = table(&columns);
    println!("\n{table}");
    fs::write(work.join("matrix.md"), &table).context("writing matrix.md")?;
    let tax = tax_section(&columns);
    println!("\n{tax}");
    fs::write(work.join("tax.md"), &tax).context("writing tax.md")?;
    // A run of some kernels only would drop the others' figures.
    if wanted.len() == labels().len() {
        readme(&root.join("README.md"), &table)?;
        page::rewrite(&root.join("BENCHMARKS.md"), TAX_MARKERS, &tax)?;
    }
    let failed: Vec<&str> = columns
        .iter()
        .filter(|c| !c.passed())
        .map(|c| c.label.as_str())
        .collect();
    if !failed.is_empty() {
        bail!(
            "the scenarios failed on {failed:?}: see the table above and the consoles in {}",
            work.display()
        );
    }
    Ok(())
}

/// One kernel's column: its guest booted with `initramfs`.
fn guest(kernel: &Kernel, tools: &Tools, initramfs: &Path, work: &Path) -> Result<Column> {
    let (vmlinuz, release) = fetch_kernel(kernel, &cache_dir())?;
    println!("==> {} ({release}) under qemu", kernel.label);
    let log = work.join(format!("{}.log", kernel.label));
    let how = Boot {
        machine: kernel.machine,
        ..MATRIX_BOOT
    };
    let console = boot(tools, &vmlinuz, initramfs, &how, &log)?;
    Ok(column(kernel.label, &release, &console))
}

/// The tracer and this xtask, static for arm64 (cross-built: Debian's
/// cross linker, the musl target), built first when `build`.
pub fn arm64_binaries(build: bool) -> Result<(PathBuf, PathBuf)> {
    let target = setup::ARM64_TARGET;
    let mut tracer = Command::new("cargo");
    tracer
        .args([
            "build",
            "--release",
            "-p",
            "zombie-trace",
            "--target",
            target,
        ])
        .env_remove("AYA_BUILD_SKIP");
    let mut xtask = dist::check::build_static_xtask(&dist::ARM64);
    if build {
        setup::setup(setup::Need::Dist)?;
        println!("==> building the tracer and xtask for arm64 ({target})");
        for cmd in [&mut tracer, &mut xtask] {
            run_cmd(cmd, "fix the compile error above")?;
        }
    }
    let built = |path: &str, cmd: &Command| -> Result<PathBuf> {
        let path = target_dir().join(target).join(path);
        if !path.is_file() {
            bail!("{} is missing: run `{}`", path.display(), crate::show(cmd));
        }
        Ok(path)
    };
    Ok((
        built("release/zombie-trace", &tracer)?,
        built("debug/xtask", &xtask)?,
    ))
}

/// A static busybox for arm64 guests, from Debian's arm64 package in the
/// cache.
fn arm64_busybox(cache: &Path) -> Result<PathBuf> {
    let root = cache.join("tools").join(Machine::Arm64.debian());
    let busybox = root.join("bin/busybox");
    if busybox.exists() {
        return Ok(busybox);
    }
    println!("==> fetching busybox for arm64 into {}", root.display());
    let debs = root.join("debs");
    fs::create_dir_all(&debs).with_context(|| format!("creating {}", debs.display()))?;
    let apt = private_apt("bookworm", Machine::Arm64, cache)?;
    download(Some(&apt), &["busybox-static"], &debs)?;
    unpack_debs(&debs, &root)?;
    if !busybox.exists() {
        bail!("no bin/busybox in Debian's arm64 busybox-static");
    }
    Ok(busybox)
}

/// The scenarios on the kernel `label` with these binaries (`cargo xtask
/// dist --check` gives static ones: the guest then holds no C library,
/// which it checks).
pub(crate) fn scenarios_alone(
    label: &str,
    zombie_trace: &Path,
    xtask: &Path,
    work: &Path,
) -> Result<()> {
    let kernel = KERNELS
        .iter()
        .find(|k| k.label == label)
        .with_context(|| format!("no kernel {label} in the matrix"))?;
    fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
    let tools = Tools::fetch(&cache_dir().join("tools"))?;
    let busybox = tools.guest_busybox(kernel.machine)?;
    let initramfs = initramfs(&tools, &busybox, zombie_trace, xtask, work)?;
    for lib in ["lib", "lib64", "usr/lib"] {
        if work.join("initramfs").join(lib).exists() {
            bail!("the guest's initramfs holds /{lib}: a binary is not static");
        }
    }
    let column = guest(kernel, &tools, &initramfs, work)?;
    println!("{}", table(std::slice::from_ref(&column)));
    if !column.passed() {
        bail!(
            "the scenarios failed on {label}: see the table above and the console in {}",
            work.display()
        );
    }
    Ok(())
}

/// qemu and busybox, unpacked from Debian's packages into the cache rather
/// than installed: the host may hold a qemu (qemu-utils) that the
/// distribution's qemu-system would replace.
pub(crate) struct Tools {
    root: PathBuf,
}

impl Tools {
    pub(crate) fn fetch(dir: &Path) -> Result<Tools> {
        let tools = Tools {
            root: dir.join("root"),
        };
        let qemus = [Machine::X86_64, Machine::Arm64].map(|m| tools.qemu(m));
        if qemus.iter().all(|q| q.exists()) && tools.busybox().exists() {
            return Ok(tools);
        }
        println!("==> fetching qemu and busybox into {}", dir.display());
        let debs = dir.join("debs");
        fs::create_dir_all(&debs).with_context(|| format!("creating {}", debs.display()))?;
        let simulate = || {
            output_of(Command::new("apt-get").args([
                "-s",
                "install",
                "--no-install-recommends",
                "qemu-system-x86",
                "qemu-system-arm",
                "busybox-static",
            ]))
        };
        let plan = match simulate() {
            Some(plan) => plan,
            None => {
                run_cmd(
                    Command::new("apt-get").arg("update"),
                    "fix the apt sources or the network",
                )?;
                simulate().context(
                    "apt-get cannot find qemu-system-x86, qemu-system-arm and busybox-static",
                )?
            }
        };
        let packages: Vec<&str> = plan
            .lines()
            .filter_map(|l| l.strip_prefix("Inst ")?.split_whitespace().next())
            .collect();
        if !packages.is_empty() {
            download(None, &packages, &debs)?;
        }
        unpack_debs(&debs, &tools.root)?;
        // Installed on the host already: nothing of theirs was fetched.
        for (path, host) in [
            (tools.qemu(Machine::X86_64), "/usr/bin/qemu-system-x86_64"),
            (tools.qemu(Machine::Arm64), "/usr/bin/qemu-system-aarch64"),
            (tools.busybox(), "/bin/busybox"),
        ] {
            if !path.exists() && Path::new(host).exists() {
                fs::create_dir_all(path.parent().unwrap_or(Path::new("/")))?;
                fs::copy(host, &path)?;
            }
        }
        if !qemus.iter().all(|q| q.exists()) || !tools.busybox().exists() {
            bail!(
                "qemu-system-x86_64, qemu-system-aarch64 or a static busybox is missing after \
                 unpacking their packages"
            );
        }
        Ok(tools)
    }

    fn qemu(&self, machine: Machine) -> PathBuf {
        self.root.join("usr/bin").join(machine.qemu())
    }

    pub(crate) fn busybox(&self) -> PathBuf {
        self.root.join("bin/busybox")
    }

    /// The busybox a guest of `machine` runs: this one, or arm64's.
    fn guest_busybox(&self, machine: Machine) -> Result<PathBuf> {
        match machine {
            Machine::X86_64 => Ok(self.busybox()),
            Machine::Arm64 => arm64_busybox(&cache_dir()),
        }
    }

    /// qemu from the cache: its libraries and firmware are there too.
    fn qemu_command(&self, machine: Machine) -> Command {
        let mut cmd = Command::new(self.qemu(machine));
        let libs = ["usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu"].map(|d| self.root.join(d));
        cmd.env("LD_LIBRARY_PATH", env::join_paths(libs).unwrap_or_default());
        for firmware in ["usr/share/qemu", "usr/share/seabios", "usr/lib/ipxe/qemu"] {
            cmd.arg("-L").arg(self.root.join(firmware));
        }
        cmd
    }
}

/// Every package downloaded into `debs`, unpacked into `root`.
fn unpack_debs(debs: &Path, root: &Path) -> Result<()> {
    for deb in fs::read_dir(debs)? {
        let deb = deb?.path();
        if deb.extension().is_some_and(|e| e == "deb") {
            run_cmd(
                Command::new("dpkg-deb").arg("-x").arg(&deb).arg(root),
                "the download may be damaged: delete the cache and run again",
            )?;
        }
    }
    Ok(())
}

/// `apt-get download` of `packages` into `dir`, from the host's apt state
/// or from the private one in `apt_config`.
fn download(apt_config: Option<&Path>, packages: &[&str], dir: &Path) -> Result<()> {
    // apt drops to its own user to download: the folder must be its.
    let _ = Command::new("chown").arg("_apt").arg(dir).status();
    let mut cmd = Command::new("apt-get");
    cmd.arg("download").args(packages).current_dir(dir);
    if let Some(config) = apt_config {
        cmd.env("APT_CONFIG", config);
    }
    run_cmd(
        &mut cmd,
        "fix the network or the apt sources, then run again",
    )
}

/// A private apt state for `suite` and `machine`'s architecture (its
/// lists, cache and sources), so that the host's own apt is left alone;
/// updated on first use.
fn private_apt(suite: &str, machine: Machine, cache: &Path) -> Result<PathBuf> {
    let arch = machine.debian();
    let dir = match machine {
        Machine::X86_64 => cache.join("apt").join(suite),
        Machine::Arm64 => cache.join("apt").join(format!("{suite}-{arch}")),
    };
    let config = dir.join("apt.conf");
    if config.exists() {
        return Ok(config);
    }
    for sub in [
        "lists/partial",
        "archives/partial",
        "etc/apt.conf.d",
        "etc/preferences.d",
        "etc/sources.list.d",
    ] {
        fs::create_dir_all(dir.join(sub))?;
    }
    fs::write(dir.join("status"), "")?;
    let keyring = "/usr/share/keyrings/debian-archive-keyring.gpg";
    if !Path::new(keyring).exists() {
        bail!("{keyring} is missing: install debian-archive-keyring");
    }
    // The point releases' kernels are in the security suite first.
    fs::write(
        dir.join("etc/sources.list"),
        format!(
            "deb [signed-by={keyring}] http://deb.debian.org/debian {suite} main\n\
             deb [signed-by={keyring}] http://deb.debian.org/debian-security {suite}-security main\n"
        ),
    )?;
    let d = dir.display();
    // Main and Parts point away from /etc/apt, whose hooks (a container's
    // cleanup, extra index targets) are the host's business.
    fs::write(
        &config,
        format!(
            "Dir::Etc::Main \"/dev/null\";\n\
             Dir::Etc::Parts \"{d}/etc/apt.conf.d\";\n\
             Dir::Etc::SourceList \"{d}/etc/sources.list\";\n\
             Dir::Etc::SourceParts \"{d}/etc/sources.list.d\";\n\
             Dir::Etc::Preferences \"{d}/etc/preferences\";\n\
             Dir::Etc::PreferencesParts \"{d}/etc/preferences.d\";\n\
             Dir::State \"{d}\";\n\
             Dir::State::Lists \"{d}/lists\";\n\
             Dir::State::Status \"{d}/status\";\n\
             Dir::Cache \"{d}\";\n\
             Dir::Cache::Archives \"{d}/archives\";\n\
             APT::Architecture \"{arch}\";\n\
             APT::Architectures {{ \"{arch}\"; }};\n\
             Acquire::Languages \"none\";\n"
        ),
    )?;
    let updated = run_cmd(
        Command::new("apt-get")
            .arg("update")
            .env("APT_CONFIG", &config),
        "fix the network (deb.debian.org must be reachable)",
    );
    if let Err(e) = updated {
        // Next time starts afresh.
        let _ = fs::remove_file(&config);
        return Err(e);
    }
    Ok(config)
}

/// The kernel image of `kernel`, from the cache or fetched: its path and
/// release.
fn fetch_kernel(kernel: &Kernel, cache: &Path) -> Result<(PathBuf, String)> {
    let dir = cache.join("kernels").join(kernel.label);
    let vmlinuz = dir.join("vmlinuz");
    let release_file = dir.join("release");
    if let (true, Ok(release)) = (vmlinuz.exists(), fs::read_to_string(&release_file)) {
        return Ok((vmlinuz, release.trim().to_owned()));
    }
    println!(
        "==> fetching the {} kernel ({})",
        kernel.label, kernel.suite
    );
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let apt = private_apt(kernel.suite, kernel.machine, cache)?;
    let names = output_of(
        Command::new("apt-cache")
            .args(["pkgnames", "linux-image-"])
            .env("APT_CONFIG", &apt),
    )
    .unwrap_or_default();
    let prefix = format!("linux-image-{}.", kernel.version);
    let suffix = format!("-cloud-{}-unsigned", kernel.machine.debian());
    let mut images: Vec<&str> = names
        .lines()
        .filter(|n| n.starts_with(&prefix) && n.ends_with(&suffix))
        .collect();
    images.sort_by_key(|n| version_key(n));
    // The newest the mirror really serves: the lists name some it has not.
    let (package, deb) = images
        .iter()
        .rev()
        .find_map(|&package| {
            download(Some(&apt), &[package], &dir).ok()?;
            let deb = fs::read_dir(&dir)
                .ok()?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| {
                    p.extension().is_some_and(|e| e == "deb")
                        && p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with(package))
                })?;
            Some((package, deb))
        })
        .with_context(|| {
            format!(
                "no {prefix}*{suffix} could be downloaded from {} (found {images:?})",
                kernel.suite
            )
        })?;
    let release = package
        .strip_prefix("linux-image-")
        .and_then(|p| p.strip_suffix("-unsigned"))
        .unwrap_or(package)
        .to_owned();
    // Only the image: the modules are not needed (none is loaded).
    let tar = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(&deb)
        .stdout(Stdio::piped())
        .spawn()
        .context("running dpkg-deb")?;
    let unpacked = Command::new("tar")
        .args(["-x", "-C"])
        .arg(&dir)
        .arg(format!("./boot/vmlinuz-{release}"))
        .stdin(tar.stdout.context("dpkg-deb's output")?)
        .status()
        .context("running tar")?;
    if !unpacked.success() {
        bail!("no /boot/vmlinuz-{release} in {}", deb.display());
    }
    fs::rename(dir.join(format!("boot/vmlinuz-{release}")), &vmlinuz)?;
    let _ = fs::remove_dir(dir.join("boot"));
    let _ = fs::remove_file(&deb);
    fs::write(&release_file, &release)?;
    Ok((vmlinuz, release))
}

/// Orders package names by the numbers in them (`5.10.0-46` after
/// `5.10.0-9`).
fn version_key(name: &str) -> Vec<u64> {
    name.split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// The guest's `/init`: mounts what the tracer reads, runs the scenarios,
/// powers off (which ends qemu).
const INIT: &str = "#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup
/xtask guest /zombie-trace
echo \"VMTEST EXIT $?\"
poweroff -f
";

/// The initramfs a guest boots: an uncompressed newc cpio, with the
/// guest's architecture's `busybox`.
fn initramfs(
    tools: &Tools,
    busybox: &Path,
    zombie_trace: &Path,
    xtask: &Path,
    work: &Path,
) -> Result<PathBuf> {
    let stage = work.join("initramfs");
    if stage.exists() {
        fs::remove_dir_all(&stage).with_context(|| format!("clearing {}", stage.display()))?;
    }
    for dir in ["bin", "proc", "sys", "dev", "tmp"] {
        fs::create_dir_all(stage.join(dir))?;
    }
    let copy = |from: &Path, to: &str| -> Result<()> {
        let to = stage.join(to.trim_start_matches('/'));
        fs::create_dir_all(to.parent().unwrap_or(&stage))?;
        fs::copy(from, &to).with_context(|| format!("copying {}", from.display()))?;
        Ok(())
    };
    copy(busybox, "bin/busybox")?;
    copy(zombie_trace, "zombie-trace")?;
    copy(xtask, "xtask")?;
    for binary in [zombie_trace, xtask] {
        for lib in shared_libraries(binary)? {
            copy(&lib, &lib.to_string_lossy())?;
        }
    }
    let cpio = work.join("initramfs.cpio");
    pack(tools, &stage, INIT, &cpio)?;
    Ok(cpio)
}

/// `stage` packed as an initramfs, an uncompressed newc cpio at `cpio`,
/// with `init` as its `/init`.
pub(crate) fn pack(tools: &Tools, stage: &Path, init: &str, cpio: &Path) -> Result<()> {
    let path = stage.join("init");
    fs::write(&path, init)?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
    let list = Command::new(tools.busybox())
        .args(["find", "."])
        .current_dir(stage)
        .output()
        .context("listing the initramfs")?;
    let mut archive = Command::new(tools.busybox())
        .args(["cpio", "-o", "-H", "newc"])
        .current_dir(stage)
        .stdin(Stdio::piped())
        .stdout(fs::File::create(cpio)?)
        .stderr(Stdio::null())
        .spawn()
        .context("running busybox cpio")?;
    {
        use std::io::Write as _;
        let mut stdin = archive.stdin.take().context("cpio's input")?;
        stdin.write_all(&list.stdout)?;
    }
    if !archive.wait()?.success() {
        bail!("busybox cpio failed");
    }
    Ok(())
}

/// The shared libraries `binary` loads, as `ldd` resolves them here.
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .with_context(|| format!("running ldd {}", binary.display()))?;
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    if said.contains("not a dynamic executable") || said.contains("statically linked") {
        return Ok(Vec::new());
    }
    if !out.status.success() {
        bail!("ldd {} failed: {said}", binary.display());
    }
    Ok(said
        .lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with('/')))
        .map(PathBuf::from)
        .collect())
}

/// What differs between the guests `boot` starts.
pub(crate) struct Boot<'a> {
    pub(crate) machine: Machine,
    /// The kernel's command line, but for its console (the machine's).
    pub(crate) append: &'a str,
    /// qemu's arguments beyond those every guest has (a disk).
    pub(crate) qemu_args: &'a [OsString],
    /// The console's lines worth showing here start with it.
    pub(crate) mark: &'a str,
    pub(crate) timeout: Duration,
}

/// A guest of the matrix: all it needs is in the initramfs.
const MATRIX_BOOT: Boot = Boot {
    machine: Machine::X86_64,
    append: "rdinit=/init panic=-1 quiet",
    qemu_args: &[],
    mark: MARK,
    timeout: GUEST_TIMEOUT,
};

/// Boots `vmlinuz` with the initramfs; returns what its console printed
/// (also kept in `log`).
pub(crate) fn boot(
    tools: &Tools,
    vmlinuz: &Path,
    initramfs: &Path,
    how: &Boot,
    log: &Path,
) -> Result<String> {
    let mut cmd = tools.qemu_command(how.machine);
    cmd.args(how.machine.qemu_args());
    cmd.args([
        "-accel",
        "tcg",
        "-smp",
        "2",
        "-m",
        "1G",
        "-nodefaults",
        "-display",
        "none",
        "-no-reboot",
        "-nic",
        "none",
        "-serial",
        "stdio",
    ])
    .arg("-kernel")
    .arg(vmlinuz)
    .arg("-initrd")
    .arg(initramfs)
    .arg("-append")
    .arg(format!("console={} {}", how.machine.console(), how.append))
    .args(how.qemu_args)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let started = Instant::now();
    let mut qemu = cmd.spawn().context("starting qemu")?;
    let mut stdout = qemu.stdout.take().context("qemu's output")?;
    let reader = thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let timed_out = loop {
        if qemu.try_wait()?.is_some() {
            break false;
        }
        if started.elapsed() > how.timeout {
            let _ = qemu.kill();
            let _ = qemu.wait();
            break true;
        }
        thread::sleep(Duration::from_millis(200));
    };
    let mut stderr = String::new();
    if let Some(mut err) = qemu.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    let console = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
    fs::write(log, format!("{console}\n--- qemu stderr ---\n{stderr}"))
        .with_context(|| format!("writing {}", log.display()))?;
    for line in console.lines().filter(|l| l.starts_with(how.mark)) {
        println!("  {line}");
    }
    println!("  ({:.0} s)", started.elapsed().as_secs_f64());
    if timed_out {
        return Ok(format!(
            "{console}\n{} TIMEOUT after {} s\n",
            how.mark,
            how.timeout.as_secs()
        ));
    }
    Ok(console)
}

/// Reads one kernel's outcome off its console.
fn column(label: &str, release: &str, console: &str) -> Column {
    let mut scenarios = BTreeMap::new();
    let mut how = Vec::new();
    let mut tax = None;
    let mut tax_tracepoints = None;
    let mut done = false;
    let mut trouble = None;
    for line in console.lines() {
        if let Some(rest) = line.strip_prefix(MARK) {
            let mut words = rest.trim().splitn(3, ' ');
            let (name, status, detail) = (
                words.next().unwrap_or_default(),
                words.next().unwrap_or_default(),
                words.next().unwrap_or_default(),
            );
            match name {
                "DONE" => done = true,
                "TIMEOUT" => trouble = Some(format!("timed out {status} {detail}")),
                "how" => how.push(format!("{status} {detail}")),
                TAX => tax = Tax::parse(rest),
                TAX_TRACEPOINTS => {
                    tax_tracepoints = Tax::parse(&rest.trim().replacen(TAX_TRACEPOINTS, TAX, 1));
                }
                "kernel" | "EXIT" => {}
                _ => {
                    scenarios.insert(name.to_owned(), (status.to_owned(), detail.to_owned()));
                }
            }
        } else if KERNEL_TROUBLE.iter().any(|t| line.contains(t)) && trouble.is_none() {
            trouble = Some(format!("kernel: {}", line.trim()));
        } else if line.contains("verifier") || line.contains("Verifier") {
            trouble.get_or_insert_with(|| format!("verifier: {}", line.trim()));
        }
    }
    if !done && trouble.is_none() {
        trouble = Some("the guest ended before the scenarios did".to_owned());
    }
    Column {
        label: label.to_owned(),
        release: release.to_owned(),
        scenarios,
        how,
        tax,
        tax_tracepoints,
        trouble,
    }
}

/// The pass/fail table, a column per kernel.
fn table(columns: &[Column]) -> String {
    let mut names: Vec<&String> = columns.iter().flat_map(|c| c.scenarios.keys()).collect();
    names.sort();
    names.dedup();
    let mut md = String::from("| scenario |");
    for c in columns {
        md.push_str(&format!(" {} (`{}`) |", c.label, c.release));
    }
    md.push_str("\n|---|");
    md.push_str(&"---|".repeat(columns.len()));
    md.push('\n');
    for name in names {
        md.push_str(&format!("| {name} |"));
        for c in columns {
            let cell = match c.scenarios.get(name) {
                Some((status, _)) if status == "PASS" => "pass".to_owned(),
                Some((status, detail)) if status == "UNSUPPORTED" => {
                    format!("not supported, and it says so: {}", shortened(detail))
                }
                Some((status, detail)) => {
                    format!("**{}**: {}", status.to_lowercase(), shortened(detail))
                }
                None => "–".to_owned(),
            };
            md.push_str(&format!(" {} |", cell.replace('|', "\\|")));
        }
        md.push('\n');
    }
    md.push_str("| how it runs |");
    for c in columns {
        md.push_str(&format!(" {} |", c.how.join("; ")));
    }
    md.push_str("\n| a `getppid` while it runs |");
    for c in columns {
        let mut cell = c.tax.map_or_else(
            || "–".to_owned(),
            |t| {
                format!(
                    "{:.0} ns; alone {:.0} ns before, {:.0} ns after: {}",
                    t.with,
                    t.before,
                    t.after,
                    t.verdict()
                )
            },
        );
        if let Some(t) = c.tax_tracepoints {
            cell.push_str(&format!(
                "; forced onto tracepoints {:.0} ns: {}",
                t.with,
                t.verdict()
            ));
        }
        md.push_str(&format!(" {cell} |"));
    }
    md.push_str("\n| **all** |");
    for c in columns {
        let cell = match (&c.trouble, c.passed()) {
            (Some(t), _) => format!("**failed**: {}", shortened(t).replace('|', "\\|")),
            (None, true) => "pass".to_owned(),
            (None, false) => "**failed**".to_owned(),
        };
        md.push_str(&format!(" {cell} |"));
    }
    md.push('\n');
    md
}

/// A detail short enough for a table cell (the console has all of it).
fn shortened(detail: &str) -> String {
    const MAX: usize = 160;
    match detail.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &detail[..at]),
        None => detail.to_owned(),
    }
}

/// Around [`tax_section`] in BENCHMARKS.md, which `cargo xtask bench`
/// keeps when it writes the rest of the page.
pub(crate) const TAX_MARKERS: (&str, &str) = (
    "<!-- vmtest-tax:begin (written by `cargo xtask vmtest`) -->",
    "<!-- vmtest-tax:end -->",
);

/// BENCHMARKS.md's section on what the tracer adds to a syscall it does
/// not trace, a row per kernel, with its markers.
fn tax_section(columns: &[Column]) -> String {
    let mut md = format!(
        "{}
## The tax on unrelated syscalls, per kernel (`cargo xtask vmtest`)

The time of a `getppid`, which zombie-trace does not trace, in each guest
of `cargo xtask vmtest` and on the host ({method}), all in the
same run: before the tracer starts, while it runs (after its ready line)
and after it has stopped. Under qemu's software emulation a guest's
syscalls are several times slower than the host's, so its absolute times say
little: the ratio within a row, the same guest in the same run, is what
counts. The ratio is within noise when it differs from 1 by no more than
the two times alone differ from each other (and at least 1%). Where wait calls are
hooked by syscall tracepoints (`wait4`, `waitid`), the kernel sends every
syscall of every process through its slow path, which checks whether that
syscall is traced; fexit trampolines on `kernel_wait4`/`kernel_waitid`
touch only the functions they trace.

| kernel | wait calls hooked by | `getppid` alone: before, after | with the tracer | with / alone |
|---|---|---|---|---|
",
        TAX_MARKERS.0,
        method = crate::tax::method(),
    );
    for c in columns {
        let (alone, with, ratio) = c.tax.map_or_else(
            || ("–".to_owned(), "–".to_owned(), "–".to_owned()),
            |t| {
                (
                    format!("{:.0} ns, {:.0} ns", t.before, t.after),
                    format!("{:.0} ns", t.with),
                    format!("{:.2} ({})", t.with / t.alone(), t.verdict()),
                )
            },
        );
        md.push_str(&format!(
            "| {} (`{}`) | {} | {alone} | {with} | {ratio} |\n",
            c.label,
            c.release,
            c.wait_hooks().unwrap_or("–"),
        ));
        if let Some(t) = c.tax_tracepoints {
            md.push_str(&format!(
                "| {} (`{}`) | tracepoints (`ZOMBIE_TRACE_WAIT_HOOKS=tracepoints`) | {:.0} ns, {:.0} ns | {:.0} ns | {:.2} ({}) |\n",
                c.label,
                c.release,
                t.before,
                t.after,
                t.with,
                t.with / t.alone(),
                t.verdict()
            ));
        }
    }
    md.push_str(TAX_MARKERS.1);
    md.push('\n');
    md
}

const README_BEGIN: &str = "<!-- vmtest:begin (written by `cargo xtask vmtest`) -->";
const README_END: &str = "<!-- vmtest:end -->";

/// Puts the table between the markers in README.md.
fn readme(path: &Path, table: &str) -> Result<()> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let (Some(begin), Some(end)) = (text.find(README_BEGIN), text.find(README_END)) else {
        bail!("README.md lacks the vmtest markers");
    };
    let new = format!("{}{README_BEGIN}\n{table}{}", &text[..begin], &text[end..]);
    fs::write(path, new).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_kernel_package_sorts_last() {
        let mut names = [
            "linux-image-5.10.0-9-cloud-amd64-unsigned",
            "linux-image-5.10.0-46-cloud-amd64-unsigned",
            "linux-image-5.10.0-30-cloud-amd64-unsigned",
        ];
        names.sort_by_key(|n| version_key(n));
        assert_eq!(names[2], "linux-image-5.10.0-46-cloud-amd64-unsigned");
        assert_eq!(names[0], "linux-image-5.10.0-9-cloud-amd64-unsigned");
    }

    const CONSOLE: &str = "[    1.0] booting\n\
        VMTEST kernel 6.1.0-56-cloud-amd64\n\
        VMTEST ready PASS wait_tracing=true\n\
        VMTEST how 5 programs\n\
        VMTEST how wait calls by tracepoints\n\
        VMTEST storm FAIL false report: {\"type\":\"zombie\"}\n\
        VMTEST cgroup-filter UNSUPPORTED --cgroup needs Linux 5.14\n\
        VMTEST how kernel memory read by direct loads\n\
        VMTEST tax getppid 1510.0 1650.0 1498.5\n\
        VMTEST DONE 1 failed\n\
        VMTEST EXIT 1\n";

    #[test]
    fn a_console_is_read_into_scenarios() {
        let c = column("6.1", "6.1.0-56-cloud-amd64", CONSOLE);
        assert_eq!(c.scenarios.len(), 3);
        assert_eq!(c.scenarios["ready"].0, "PASS");
        assert_eq!(
            c.scenarios["storm"].1,
            "false report: {\"type\":\"zombie\"}"
        );
        assert_eq!(
            c.how,
            [
                "5 programs",
                "wait calls by tracepoints",
                "kernel memory read by direct loads"
            ]
        );
        assert_eq!(c.wait_hooks(), Some("tracepoints"));
        assert_eq!(
            c.tax,
            Some(Tax {
                before: 1510.0,
                with: 1650.0,
                after: 1498.5
            })
        );
        assert_eq!(c.tax_tracepoints, None);
        assert!(c.trouble.is_none());
        assert!(!c.passed(), "a FAIL fails the kernel");
        let both = CONSOLE.replace(
            "VMTEST DONE",
            "VMTEST tax-tracepoints getppid 1498.5 1900.0 1502.0\nVMTEST DONE",
        );
        let c = column("6.1", "x", &both);
        assert_eq!(c.tax_tracepoints.map(|t| t.with), Some(1900.0));
        assert!(table(&[c]).contains("; forced onto tracepoints 1900 ns: +26.6%"));
        let ok = CONSOLE.replace("storm FAIL", "storm PASS");
        assert!(
            column("6.1", "x", &ok).passed(),
            "unsupported is not failed"
        );
    }

    #[test]
    fn a_guest_in_trouble_fails_whatever_it_printed() {
        let cut = CONSOLE.replace("VMTEST DONE 1 failed\n", "");
        let c = column("6.1", "x", &cut.replace("storm FAIL", "storm PASS"));
        assert!(!c.passed() && c.trouble.is_some(), "no DONE line");
        for line in [
            "[ 3.2] BUG: kernel NULL pointer dereference",
            "VMTEST TIMEOUT after 900 s",
            "zombie-trace: error: ... Verifier output: ...",
        ] {
            let c = column(
                "6.1",
                "x",
                &format!("{}{line}\n", CONSOLE.replace("storm FAIL", "storm PASS")),
            );
            assert!(!c.passed(), "{line}");
        }
    }

    #[test]
    fn the_table_has_a_column_per_kernel_and_escapes_cells() {
        let a = column("6.1", "6.1.0-56-cloud-amd64", CONSOLE);
        let b = column(HOST, "6.18.4", &CONSOLE.replace("false report", "a | b"));
        let md = table(&[a, b]);
        assert!(md.starts_with(
            "| scenario | 6.1 (`6.1.0-56-cloud-amd64`) | host (`6.18.4`) |\n|---|---|---|\n"
        ));
        assert!(md.contains("| ready | pass | pass |"));
        assert!(md.contains("a \\| b"), "{md}");
        assert!(md.contains("not supported, and it says so: --cgroup needs Linux 5.14"));
        assert!(md.contains(
            "| how it runs | 5 programs; wait calls by tracepoints; kernel memory read by direct loads |"
        ));
        assert!(md.contains(
            "| a `getppid` while it runs | 1650 ns; alone 1510 ns before, 1498 ns after: +9.7% |"
        ));
        // The heading, three scenarios, how it runs, getppid, and all.
        assert_eq!(md.lines().filter(|l| l.starts_with("| ")).count(), 7);
    }

    #[test]
    fn the_tax_section_has_a_row_per_kernel_and_dashes_for_what_is_missing() {
        let old = [
            "how wait calls by tracepoints\n",
            "tax getppid 1510.0 1650.0 1498.5\n",
        ]
        .iter()
        .fold(CONSOLE.to_owned(), |console, line| {
            console.replace(&format!("VMTEST {line}"), "")
        });
        let host = CONSOLE
            .replace("by tracepoints", "by trampolines")
            .replace("1510.0 1650.0 1498.5", "60.0 60.3 60.2");
        let md = tax_section(&[
            column("6.1", "6.1.0-56-cloud-amd64", CONSOLE),
            column("5.10", "5.10.0-43-cloud-amd64", &old),
            column(HOST, "6.18.4", &host),
        ]);
        assert!(md.starts_with(&format!("{}\n## The tax", TAX_MARKERS.0)));
        assert!(md.ends_with(&format!("|\n{}\n", TAX_MARKERS.1)), "{md}");
        assert!(md.contains(
            "| 6.1 (`6.1.0-56-cloud-amd64`) | tracepoints | 1510 ns, 1498 ns | 1650 ns | 1.10 (+9.7%) |\n"
        ));
        assert!(md.contains("| 5.10 (`5.10.0-43-cloud-amd64`) | – | – | – | – |\n"));
        assert!(md.contains(
            "| host (`6.18.4`) | trampolines | 60 ns, 60 ns | 60 ns | 1.00 (+0.3%, within noise) |\n"
        ));
    }

    #[test]
    fn long_details_are_cut_on_a_character() {
        let long = "é".repeat(500);
        let short = shortened(&long);
        assert_eq!(short.chars().count(), 161);
        assert!(short.ends_with('…'));
        assert_eq!(shortened("short"), "short");
    }
}
