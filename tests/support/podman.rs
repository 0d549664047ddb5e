//! Containers for the tests, with podman as it works on the test machines,
//! from images built here (no registry is reachable).

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
};

pub const BUSYBOX_IMAGE: &str = "localhost/zt-busybox:test";

pub fn work_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path)
            .chain(["/usr/sbin".into(), "/sbin".into()])
            .any(|dir| dir.join(program).is_file())
    })
}

/// Whether to run: false (with a message) only for a user without root and
/// without the tools; with root, missing tools are an error.
pub fn should_run(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !on_path(t)).collect();
    match (missing.is_empty(), is_root()) {
        (false, false) => {
            eprintln!(
                "skipped: {} not installed and not root (run `cargo xtask setup`, then the test \
                 as root)",
                missing.join(", ")
            );
            false
        }
        (false, true) => panic!(
            "{} not installed: run `cargo xtask setup` (it installs podman, runc, prometheus, \
             busybox-static)",
            missing.join(", ")
        ),
        (true, false) => panic!("these tests load eBPF programs and need root"),
        (true, true) => true,
    }
}

/// podman as it works here: runc (crun refuses hybrid cgroups) and no
/// default ulimits (raising them needs CAP_SYS_RESOURCE in some sandboxes).
pub fn podman() -> Command {
    static CONF: OnceLock<PathBuf> = OnceLock::new();
    let conf = CONF.get_or_init(|| {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fleet-containers.conf");
        fs::write(&path, "[containers]\ndefault_ulimits = []\n").unwrap();
        path
    });
    let mut cmd = Command::new("podman");
    cmd.env("CONTAINERS_CONF", conf).args(["--runtime", "runc"]);
    cmd
}

/// Runs `cmd`; its stdout, or a panic with its stderr.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What podman made, and the processes started: all removed on drop, so a
/// failing assertion leaves nothing running.
#[derive(Default)]
pub struct Cleanup {
    pub containers: Vec<String>,
    pub pods: Vec<String>,
    pub children: Vec<Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for pod in &self.pods {
            remove(&["pod", "rm", "-f", "-t", "0", pod]);
        }
        for container in &self.containers {
            remove(&["rm", "-f", "-t", "0", container]);
        }
    }
}

/// `podman ARGS`, quietly, whether or not there was anything to remove.
pub fn remove(args: &[&str]) {
    let _ = podman()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// `tar -C rootfs -c . | podman import [changes] - image`.
pub fn import(rootfs: &Path, image: &str, changes: &[&str]) {
    let mut tar = Command::new("tar")
        .arg("-C")
        .arg(rootfs)
        .args(["-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting tar");
    let mut cmd = podman();
    cmd.arg("import");
    for change in changes {
        cmd.args(["--change", change]);
    }
    cmd.args(["-", image])
        .stdin(tar.stdout.take().unwrap())
        .stdout(Stdio::null());
    run(&mut cmd);
    assert!(tar.wait().unwrap().success(), "tar of {}", rootfs.display());
}

/// busybox-static as an image (sh, sleep), made once per test binary.
pub fn busybox_image() {
    static MADE: OnceLock<()> = OnceLock::new();
    MADE.get_or_init(make_busybox_image);
}

fn make_busybox_image() {
    let rootfs = work_dir("busybox-image").join("rootfs");
    fs::create_dir_all(rootfs.join("bin")).unwrap();
    fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
        .expect("copying /bin/busybox (install busybox-static)");
    for applet in ["sh", "sleep"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    import(&rootfs, BUSYBOX_IMAGE, &[]);
}
