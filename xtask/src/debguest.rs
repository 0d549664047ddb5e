//! A clean Debian 12 guest with systemd on an ext4 root, for checks that
//! need a real distribution (a .deb installed, run as a service, removed).
//! `run` puts files into it, runs a shell script there as root once the
//! boot is over, and returns the console.
//!
//! The root file system is made once, with debootstrap, into the vmtest
//! cache, Debian's 6.1 cloud kernel installed in it; so is an ext4 image of
//! it. Each run boots a sparse copy of that image under qemu's software
//! emulation, with the kernel and modules of the root file system and a
//! busybox initramfs made for the run: it loads the virtio modules (the
//! cloud kernel has them as modules), mounts the disk, puts the run's files
//! on it at the first boot and hands over to systemd. There a unit runs the
//! script, its output on the serial console, then powers off.
//!
//! The lines the host reads start with `DEBGUEST`. The script ends a boot
//! with `DEBGUEST DONE` (the run is over) or `DEBGUEST REBOOT` (the host
//! boots the same disk again, to check what a reboot keeps); the boot's
//! number, from 1, is in `$DEBGUEST_BOOT`.

use std::{
    ffi::OsString,
    fs,
    os::unix::fs::{PermissionsExt as _, symlink},
    path::{Component, Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context as _, Result, bail};

use crate::{
    is_root, run_cmd,
    vmtest::{Boot, KERNEL_TROUBLE, Machine, Tools, boot, cache_dir, pack},
    which, workspace_root,
};

/// What the host reads off the console.
pub const MARK: &str = "DEBGUEST";

/// debootstrap's `--include`: systemd as init, what a package of a
/// service touches (logrotate, kmod), tools for checks (bpftool, procps,
/// busybox's wget and nc), and the kernel, whose modules must match it.
const PACKAGES: &str = "systemd,systemd-sysv,dbus,udev,kmod,procps,logrotate,bpftool,busybox,\
                        linux-image-cloud-amd64";

/// The modules the root disk needs; the rest of the kernel is built in.
const DISK_MODULES: [&str; 2] = ["virtio_pci", "virtio_blk"];

/// Room for packages and logs; the image is sparse.
const DISK_SIZE: &str = "2G";

/// Each boot gets this long to come up, run the script and power off.
const BOOT_TIMEOUT: Duration = Duration::from_secs(600);

/// Boots of a run at most, the first included.
const MAX_BOOTS: u32 = 4;

/// The initramfs's `/init`: loads the disk's modules, mounts the disk, puts
/// the run's files there at the first boot, and hands over to systemd.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
fail() {
    echo "DEBGUEST TROUBLE initramfs: $*"
    poweroff -f
}
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /modules/order); do
    insmod "/modules/$m" || fail "insmod $m"
done
for i in 1 2 3 4 5 6 7 8 9 10; do
    [ -b /dev/vda ] && break
    sleep 1
done
mount -t ext4 /dev/vda /newroot || fail "cannot mount /dev/vda"
case " $(cat /proc/cmdline) " in
*" debguest.boot=1 "*)
    while read -r f; do
        mkdir -p "/newroot${f%/*}" && cp -p "/files$f" "/newroot$f" || fail "copying $f"
    done </files.list
    wants=/newroot/etc/systemd/system/multi-user.target.wants
    mkdir -p $wants && ln -sf /etc/systemd/system/debguest.service $wants/ ||
        fail "cannot enable debguest.service"
    ;;
esac
umount /proc /sys /dev
exec switch_root /newroot /sbin/init
"#;

/// The unit that runs the script. It waits in `run` for the boot to be
/// over rather than being part of it (a oneshot would be): the script may
/// then wait for the boot itself (`systemctl is-system-running --wait`).
const UNIT: &str = "[Unit]
Description=debguest check script
After=multi-user.target
SuccessAction=poweroff
FailureAction=poweroff

[Service]
Type=exec
ExecStart=/debguest/run
StandardOutput=tty
StandardError=inherit
TTYPath=/dev/ttyS0

[Install]
WantedBy=multi-user.target
";

/// The unit's command: the boot's state and number (the host numbers the
/// boots on the kernel's command line), the script, its exit status.
const RUN: &str = r#"#!/bin/sh
echo "DEBGUEST SYSTEM $(systemctl is-system-running --wait)"
DEBGUEST_BOOT=$(sed -n 's/.* debguest\.boot=\([0-9]*\).*/\1/p' /proc/cmdline)
export DEBGUEST_BOOT
echo "DEBGUEST BOOT $DEBGUEST_BOOT"
/debguest/check
echo "DEBGUEST EXIT $?"
"#;

/// Boots a fresh copy of the Debian 12 guest with `payload` (host file,
/// absolute guest path) on its disk and runs `script` (a shell script, run
/// as root, as `/debguest/check`) at each boot until it prints
/// `DEBGUEST DONE`. Returns the consoles of all boots; `work` keeps them
/// (`boot-N.log`), the disk and the initramfs.
pub fn run(payload: &[(PathBuf, &str)], script: &str, work: &Path) -> Result<String> {
    if !is_root() {
        bail!("the Debian guest's root file system is made with debootstrap: run as root");
    }
    let cache = cache_dir();
    let tools = Tools::fetch(&cache.join("tools"))?;
    let debian = cache.join("debian12");
    let root = root_fs(&debian)?;
    let image = base_image(&debian, &root)?;
    let (vmlinuz, modules) = kernel(&root)?;
    fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
    let initramfs = initramfs(&tools, &modules, payload, script, work)?;
    let disk = work.join("disk.img");
    run_cmd(
        Command::new("cp")
            .arg("--sparse=always")
            .arg(&image)
            .arg(&disk),
        "check the free space",
    )?;
    // The disk is thrown away after the run: the guest's syncs need not
    // reach the host's disk.
    let mut drive = OsString::from("file=");
    drive.push(&disk);
    drive.push(",format=raw,if=virtio,cache=unsafe");
    let mut consoles = String::new();
    for n in 1..=MAX_BOOTS {
        println!("==> Debian 12 guest, boot {n}");
        let log = work.join(format!("boot-{n}.log"));
        let how = Boot {
            machine: Machine::X86_64,
            append: &format!("rdinit=/init panic=-1 quiet debguest.boot={n}"),
            qemu_args: &["-drive".into(), drive.clone()],
            mark: MARK,
            timeout: BOOT_TIMEOUT,
        };
        let console = boot(&tools, &vmlinuz, &initramfs, &how, &log)?;
        consoles.push_str(&console);
        match outcome(&console) {
            Ok(Next::Done) => return Ok(consoles),
            Ok(Next::Reboot) => {}
            Err(why) => bail!("boot {n}: {why} (console in {})", log.display()),
        }
    }
    bail!("the script still asked for a reboot after {MAX_BOOTS} boots")
}

/// `cargo xtask debguest`: `run` by hand, with `HOST_FILE:GUEST_PATH`
/// payloads and a script file.
pub fn debguest(payload: &[String], script: &Path) -> Result<()> {
    let payload = payload
        .iter()
        .map(|p| {
            let (host, guest) = p
                .split_once(':')
                .with_context(|| format!("{p:?} is not HOST_FILE:GUEST_PATH"))?;
            Ok((PathBuf::from(host), guest))
        })
        .collect::<Result<Vec<_>>>()?;
    let script = fs::read_to_string(script)
        .with_context(|| format!("reading the script {}", script.display()))?;
    let work = workspace_root().join("target/xtask/debguest");
    run(&payload, &script, &work)?;
    println!("consoles in {}", work.display());
    Ok(())
}

/// The root file system, made once: debootstrap into a folder next to it,
/// renamed when complete, so that an interrupted run leaves no half cache.
fn root_fs(cache: &Path) -> Result<PathBuf> {
    let root = cache.join("root");
    if root.exists() {
        return Ok(root);
    }
    if which("debootstrap").is_none() {
        bail!("install debootstrap (cargo xtask setup installs it)");
    }
    let partial = cache.join("root.partial");
    if partial.exists() {
        unmount_under(&partial)?;
        fs::remove_dir_all(&partial).with_context(|| format!("removing {}", partial.display()))?;
    }
    fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    println!("==> debootstrap of Debian 12 into {}", root.display());
    run_cmd(
        Command::new("debootstrap")
            .arg("--variant=minbase")
            .arg(format!("--include={PACKAGES}"))
            .arg("--keyring=/usr/share/keyrings/debian-archive-keyring.gpg")
            .arg("bookworm")
            .arg(&partial)
            .arg("http://deb.debian.org/debian"),
        "fix the network (deb.debian.org must be reachable)",
    )?;
    // The packages debootstrap leaves behind are of no use in the image.
    run_cmd(
        Command::new("chroot")
            .arg(&partial)
            .args(["apt-get", "clean"]),
        "see apt-get's message above",
    )?;
    // A headless machine on a serial console: no login prompts.
    fs::write(partial.join("etc/hostname"), "debguest\n")?;
    fs::write(
        partial.join("etc/fstab"),
        "/dev/vda / ext4 errors=remount-ro 0 1\n",
    )?;
    symlink("/dev/null", partial.join("etc/systemd/system/getty.target"))?;
    fs::rename(&partial, &root)?;
    Ok(root)
}

/// Unmounts what an interrupted debootstrap left mounted under `dir`
/// (/proc, /sys, perhaps the host's /dev bound), so that removing `dir`
/// cannot reach into them.
fn unmount_under(dir: &Path) -> Result<()> {
    let mounts = fs::read_to_string("/proc/self/mounts").context("reading the mounts")?;
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect();
    points.reverse();
    for point in points {
        run_cmd(
            Command::new("umount").arg("-l").arg(point),
            "unmount it by hand",
        )?;
    }
    Ok(())
}

/// The ext4 image of `root`, made once; runs boot copies of it.
fn base_image(cache: &Path, root: &Path) -> Result<PathBuf> {
    let image = cache.join("disk.img");
    if image.exists() {
        return Ok(image);
    }
    let partial = cache.join("disk.img.partial");
    let _ = fs::remove_file(&partial);
    run_cmd(
        Command::new("mkfs.ext4")
            .args(["-q", "-L", "debguest", "-d"])
            .arg(root)
            .arg(&partial)
            .arg(DISK_SIZE),
        "mkfs.ext4 -d needs e2fsprogs 1.43 or newer",
    )?;
    fs::rename(&partial, &image)?;
    Ok(image)
}

/// The kernel installed in `root`, and the modules the disk needs, in the
/// order they load.
fn kernel(root: &Path) -> Result<(PathBuf, Vec<PathBuf>)> {
    let all = root.join("usr/lib/modules");
    let releases: Vec<OsString> = fs::read_dir(&all)
        .with_context(|| format!("listing {}", all.display()))?
        .filter_map(|e| Some(e.ok()?.file_name()))
        .collect();
    let [release] = releases.as_slice() else {
        bail!(
            "{} should hold one kernel's modules, not {releases:?}",
            all.display()
        );
    };
    let modules = all.join(release);
    let dep = fs::read_to_string(modules.join("modules.dep"))
        .with_context(|| format!("reading {}/modules.dep", modules.display()))?;
    let order = load_order(&dep, &DISK_MODULES)?;
    let mut vmlinuz = OsString::from("boot/vmlinuz-");
    vmlinuz.push(release);
    Ok((
        root.join(vmlinuz),
        order.iter().map(|m| modules.join(m)).collect(),
    ))
}

/// The modules `wanted` need, each after those it needs, from
/// `modules.dep`: each of its lines is `module: deps`, where a dependency
/// needs only those after it (modprobe loads them from the last).
fn load_order<'a>(modules_dep: &'a str, wanted: &[&str]) -> Result<Vec<&'a str>> {
    let mut order = Vec::new();
    for name in wanted {
        let file = format!("{name}.ko");
        let (module, deps) = modules_dep
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(m, _)| m.rsplit('/').next() == Some(file.as_str()))
            .with_context(|| format!("no {file} in modules.dep"))?;
        for m in deps.split_whitespace().rev().chain([module]) {
            if !order.contains(&m) {
                order.push(m);
            }
        }
    }
    Ok(order)
}

/// The run's initramfs: busybox, the disk's modules, and the files for the
/// guest's disk (the payload, the script, its unit).
fn initramfs(
    tools: &Tools,
    modules: &[PathBuf],
    payload: &[(PathBuf, &str)],
    script: &str,
    work: &Path,
) -> Result<PathBuf> {
    let stage = work.join("initramfs");
    if stage.exists() {
        fs::remove_dir_all(&stage).with_context(|| format!("clearing {}", stage.display()))?;
    }
    for dir in ["bin", "proc", "sys", "dev", "newroot", "modules", "files"] {
        fs::create_dir_all(stage.join(dir))?;
    }
    fs::copy(tools.busybox(), stage.join("bin/busybox"))?;
    let mut order = String::new();
    for module in modules {
        let name = module.file_name().context("a module without a name")?;
        fs::copy(module, stage.join("modules").join(name))
            .with_context(|| format!("copying {}", module.display()))?;
        order.push_str(&format!("{}\n", name.to_string_lossy()));
    }
    fs::write(stage.join("modules/order"), order)?;

    // Where a guest file waits in the initramfs; `/init` copies the list.
    let mut list = String::new();
    let mut place = |guest: &str| -> Result<PathBuf> {
        if !guest_path_is_plain(guest) {
            bail!("{guest:?} is not an absolute file path without `..` or newlines");
        }
        let to = stage.join("files").join(guest.trim_start_matches('/'));
        fs::create_dir_all(to.parent().unwrap_or(&stage))?;
        list.push_str(&format!("{guest}\n"));
        Ok(to)
    };
    for (host, guest) in payload {
        fs::copy(host, place(guest)?).with_context(|| format!("copying {}", host.display()))?;
    }
    for (guest, text, mode) in [
        ("/etc/systemd/system/debguest.service", UNIT, 0o644),
        ("/debguest/run", RUN, 0o755),
        ("/debguest/check", script, 0o755),
    ] {
        let to = place(guest)?;
        fs::write(&to, text)?;
        fs::set_permissions(&to, fs::Permissions::from_mode(mode))?;
    }
    fs::write(stage.join("files.list"), list)?;

    let cpio = work.join("initramfs.cpio");
    pack(tools, &stage, INIT, &cpio)?;
    Ok(cpio)
}

/// Whether `/init` can copy to `path` as it is: absolute, no `..` to leave
/// the guest's root, no newline to split its list.
fn guest_path_is_plain(path: &str) -> bool {
    let path = Path::new(path);
    path.is_absolute()
        && path.file_name().is_some()
        && !path.to_string_lossy().contains('\n')
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
}

/// What a boot asked for.
#[derive(Debug, PartialEq)]
enum Next {
    Done,
    Reboot,
}

/// Reads a boot's console: what the script asked for last, or why the
/// boot went wrong.
fn outcome(console: &str) -> Result<Next, String> {
    let mut next = None;
    let mut exit = None;
    for line in console.lines().map(|l| l.trim_end_matches('\r')) {
        let Some(rest) = line.strip_prefix(MARK) else {
            if KERNEL_TROUBLE.iter().any(|t| line.contains(t)) {
                return Err(format!("the kernel is in trouble: {}", line.trim()));
            }
            continue;
        };
        let rest = rest.trim();
        match rest.split_once(' ').map_or(rest, |(word, _)| word) {
            "DONE" => next = Some(Next::Done),
            "REBOOT" => next = Some(Next::Reboot),
            "EXIT" => exit = Some(rest),
            "TIMEOUT" | "TROUBLE" => return Err(rest.to_owned()),
            _ => {}
        }
    }
    next.ok_or_else(|| match exit {
        Some(exit) => format!("the script ended ({exit}) without {MARK} DONE or REBOOT"),
        None => "the guest stopped before the script ended".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko\n\
        kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\n\
        kernel/drivers/virtio/virtio_ring.ko:\n\
        kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko\n\
        kernel/drivers/virtio/virtio_pci_modern_dev.ko:\n";

    #[test]
    fn modules_load_after_what_they_need() {
        let order = load_order(DEP, &["virtio_pci", "virtio_blk"]).unwrap();
        let names: Vec<&str> = order
            .iter()
            .map(|m| m.rsplit('/').next().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "virtio.ko",
                "virtio_ring.ko",
                "virtio_pci_modern_dev.ko",
                "virtio_pci_legacy_dev.ko",
                "virtio_pci.ko",
                "virtio_blk.ko"
            ]
        );
        assert!(load_order(DEP, &["virtio_net"]).is_err());
    }

    #[test]
    fn the_last_request_of_a_boot_counts() {
        let console = "[    2.1] systemd[1]: booting\r\n\
            DEBGUEST SYSTEM running\r\n\
            DEBGUEST BOOT 1\r\n\
            DEBGUEST PASS installed\r\n\
            DEBGUEST REBOOT\r\n\
            DEBGUEST EXIT 0\r\n";
        assert_eq!(outcome(console), Ok(Next::Reboot));
        let done = console.replace("REBOOT", "DONE");
        assert_eq!(outcome(&done), Ok(Next::Done));
    }

    #[test]
    fn a_boot_without_a_request_or_in_trouble_fails() {
        let cases = [
            ("DEBGUEST BOOT 1\nDEBGUEST EXIT 2\n", "EXIT 2"),
            ("DEBGUEST BOOT 1\n", "stopped before"),
            (
                "DEBGUEST DONE\n[ 9.1] Kernel panic - not syncing\n",
                "panic",
            ),
            ("DEBGUEST DONE\nDEBGUEST TIMEOUT after 600 s\n", "600 s"),
            ("DEBGUEST TROUBLE initramfs: insmod x\n", "insmod"),
        ];
        for (console, why) in cases {
            let err = outcome(console).unwrap_err();
            assert!(err.contains(why), "{console:?}: {err}");
        }
        // The script's own lines may say anything.
        assert_eq!(
            outcome("DEBGUEST FAIL BUG: x\nDEBGUEST DONE\n"),
            Ok(Next::Done)
        );
    }

    #[test]
    fn guest_paths_stay_in_the_guest() {
        assert!(guest_path_is_plain("/root/zombie-trace.deb"));
        for bad in ["root/x", "/root/../../x", "/a\nb", "/"] {
            assert!(!guest_path_is_plain(bad), "{bad:?}");
        }
    }
}
