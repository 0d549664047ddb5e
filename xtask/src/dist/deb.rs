//! The Debian package, assembled by hand and packed by `dpkg-deb`: the
//! static binary in /usr/sbin (it needs root), its man pages in section 8,
//! completions for bash, zsh and fish, and zombie-trace.service with its
//! defaults and logrotate files. The maintainer scripts (deploy/debian/) do
//! what debhelper's would: enable and start the service on install, stop it
//! before removal.

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result};

use super::{Arch, From, LOGROTATE, SYSTEMD_DEFAULT, SYSTEMD_UNIT, gzipped};
use crate::{output_of, run_cmd};

/// The package's revision: the packaging's own, under the upstream version.
const REVISION: &str = "1";
/// Installed as conffiles: an operator's edits survive upgrades.
const CONFFILES: [&str; 2] = ["etc/default/zombie-trace", "etc/logrotate.d/zombie-trace"];

const DESCRIPTION: &str = "\
find zombie processes as they happen, with the parent that fails to reap them
 zombie-trace watches every process exit, reap and wait call in the kernel
 (eBPF) and reports each child left unreaped longer than a threshold,
 together with its parent: who it is, what it is doing, whether it ever
 calls wait, how it handles SIGCHLD. Text for people, JSON lines for
 scripts, Prometheus metrics.
 .
 The zombie-trace service runs it for leak hunts that last days: JSON lines
 in /var/log/zombie-trace/, metrics on 127.0.0.1:9464 (see
 /etc/default/zombie-trace). Needs Linux 5.8 or newer with BTF.";

pub fn build(from: &From) -> Result<PathBuf> {
    let dir = from.stage.join("deb");
    let put = |file: &Path, to: &str, mode: u32| -> Result<()> {
        let to = dir.join(to);
        fs::create_dir_all(to.parent().unwrap_or(&dir))?;
        fs::copy(file, &to).with_context(|| format!("copying {}", file.display()))?;
        fs::set_permissions(&to, fs::Permissions::from_mode(mode))?;
        Ok(())
    };
    put(from.binary, "usr/sbin/zombie-trace", 0o755)?;
    put(
        &from.root.join(SYSTEMD_UNIT),
        "lib/systemd/system/zombie-trace.service",
        0o644,
    )?;
    put(&from.root.join(SYSTEMD_DEFAULT), CONFFILES[0], 0o644)?;
    put(&from.root.join(LOGROTATE), CONFFILES[1], 0o644)?;
    for page in &from.docs.man_pages {
        let name = page.file_name().context("a man page without a name")?;
        let to = format!("usr/share/man/man8/{}.gz", name.to_string_lossy());
        // Man pages are shipped compressed.
        put(&gzipped(page, from.stage)?, &to, 0o644)?;
    }
    put(
        &from.docs.bash,
        "usr/share/bash-completion/completions/zombie-trace",
        0o644,
    )?;
    put(
        &from.docs.zsh,
        "usr/share/zsh/vendor-completions/_zombie-trace",
        0o644,
    )?;
    put(
        &from.docs.fish,
        "usr/share/fish/vendor_completions.d/zombie-trace.fish",
        0o644,
    )?;
    let doc = dir.join("usr/share/doc/zombie-trace");
    fs::create_dir_all(&doc)?;
    fs::write(doc.join("copyright"), copyright(from.root)?)?;

    let control = dir.join("DEBIAN");
    fs::create_dir_all(&control)?;
    let md5sums = md5sums(&dir)?;
    fs::write(control.join("md5sums"), md5sums)?;
    fs::write(
        control.join("control"),
        format!(
            "Package: zombie-trace\n\
             Version: {version}-{REVISION}\n\
             Architecture: {}\n\
             Maintainer: zombie-trace developers <zombie-trace@example.invalid>\n\
             Installed-Size: {}\n\
             Section: admin\n\
             Priority: optional\n\
             Recommends: logrotate\n\
             Homepage: {}\n\
             Description: {DESCRIPTION}\n",
            from.arch.deb,
            installed_kib(&dir)?,
            homepage(from.root),
            version = from.version,
        ),
    )?;
    fs::write(
        control.join("conffiles"),
        CONFFILES.map(|f| format!("/{f}\n")).concat(),
    )?;
    for script in ["postinst", "prerm", "postrm"] {
        put(
            &from.root.join("deploy/debian").join(script),
            &format!("DEBIAN/{script}"),
            0o755,
        )?;
    }
    // Whatever this user's umask made them: folders 0755, files written
    // here 0644.
    for folder in folders(&dir)? {
        fs::set_permissions(&folder, fs::Permissions::from_mode(0o755))?;
    }
    for file in [
        doc.join("copyright"),
        control.join("md5sums"),
        control.join("control"),
        control.join("conffiles"),
    ] {
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644))?;
    }

    let deb = from.out.join(file_name(from.version, from.arch));
    run_cmd(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&dir)
            .arg(&deb)
            .env("SOURCE_DATE_EPOCH", from.epoch.to_string()),
        "dpkg-deb (package dpkg) is needed",
    )?;
    Ok(deb)
}

pub fn file_name(version: &str, arch: &Arch) -> String {
    format!("zombie-trace_{version}-{REVISION}_{}.deb", arch.deb)
}

/// Every regular file but the conffiles, as `md5sum` lists them (paths
/// relative to the root, which is what dpkg --verify reads).
fn md5sums(dir: &Path) -> Result<String> {
    let mut files: Vec<String> = Vec::new();
    walk(dir, &mut |path| {
        if path.is_file() {
            let relative = path.strip_prefix(dir).unwrap_or(path);
            let relative = relative.to_string_lossy().into_owned();
            if !relative.starts_with("DEBIAN/") && !CONFFILES.contains(&relative.as_str()) {
                files.push(relative);
            }
        }
    })?;
    files.sort();
    output_of(Command::new("md5sum").args(&files).current_dir(dir)).context("md5sum failed")
}

/// The installed size in KiB, as dpkg counts it (each file rounded up).
fn installed_kib(dir: &Path) -> Result<u64> {
    let mut kib = 0;
    walk(dir, &mut |path| {
        if !path.starts_with(dir.join("DEBIAN")) {
            kib += fs::metadata(path).map_or(1, |m| m.len().div_ceil(1024).max(1));
        }
    })?;
    Ok(kib)
}

fn folders(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut folders = vec![dir.to_path_buf()];
    walk(dir, &mut |path| {
        if path.is_dir() {
            folders.push(path.to_path_buf());
        }
    })?;
    Ok(folders)
}

/// Calls `f` on everything below `dir`, folders before what they hold.
fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) -> Result<()> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        f(&path);
        if path.is_dir() && !path.is_symlink() {
            walk(&path, f)?;
        }
    }
    Ok(())
}

/// The workspace's `repository`, else nothing better than the README.
fn homepage(root: &Path) -> String {
    fs::read_to_string(root.join("Cargo.toml"))
        .ok()
        .and_then(|toml| {
            toml.lines().find_map(|l| {
                let value = l.strip_prefix("repository = \"")?;
                value.strip_suffix('"').map(str::to_owned)
            })
        })
        .unwrap_or_else(|| "https://example.invalid/zombie-trace".to_owned())
}

/// debian/copyright in the machine-readable format, from the workspace's
/// license.
fn copyright(root: &Path) -> Result<String> {
    let toml = fs::read_to_string(root.join("Cargo.toml")).context("reading Cargo.toml")?;
    let license = toml
        .lines()
        .find_map(|l| l.strip_prefix("license = \"")?.strip_suffix('"'))
        .context("no license = \"...\" in Cargo.toml")?;
    Ok(format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: zombie-trace\n\
         \n\
         Files: *\n\
         Copyright: zombie-trace developers\n\
         License: {}\n",
        license.replace(" OR ", " or ")
    ))
}
