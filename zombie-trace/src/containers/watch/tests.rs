//! The event decoding, and real cgroups made and found (as root, on a
//! cgroup v2 mount).

use std::time::Duration;

use super::*;
use crate::containers::scratch::Scratch;

fn event(wd: i32, mask: u32, name: &[u8], padded: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend(wd.to_ne_bytes());
    bytes.extend(mask.to_ne_bytes());
    bytes.extend(0u32.to_ne_bytes());
    bytes.extend(u32::try_from(padded).unwrap().to_ne_bytes());
    bytes.extend(name);
    bytes.resize(bytes.len() + padded - name.len(), 0);
    bytes
}

#[test]
fn events_are_decoded_and_a_torn_one_dropped() {
    let mut bytes = event(1, libc::IN_CREATE | libc::IN_ISDIR, b"a", 16);
    bytes.extend(event(2, libc::IN_IGNORED, b"", 0));
    bytes.extend(&event(3, libc::IN_CREATE, b"torn", 16)[..20]);
    let decoded: Vec<_> = events(&bytes)
        .map(|e| (e.wd, e.mask, e.name.to_vec()))
        .collect();
    assert_eq!(
        decoded,
        [
            (1, libc::IN_CREATE | libc::IN_ISDIR, b"a".to_vec()),
            (2, libc::IN_IGNORED, Vec::new())
        ]
    );
    assert_eq!(events(&[0xff; 15]).count(), 0);
    let mut huge = event(1, 0, b"", 0);
    huge[12..16].copy_from_slice(&u32::MAX.to_ne_bytes());
    assert_eq!(events(&huge).count(), 0);
}

const POD: &str = "a22e17d3b47766d2a0488d3e5ff64296394d5b85571bb9f097221e494ec22be8";

fn id(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

/// The watch works on any directory tree (inotify is not cgroupfs' own):
/// unprivileged, in a scratch directory.
#[tokio::test]
async fn containers_are_found_now_and_as_they_appear() {
    let dir = Scratch::new("watch");
    let root = dir.path();
    let first = root.join(format!("system.slice/docker-{}.scope", id(1)));
    fs::create_dir_all(first.join("init.scope")).unwrap();
    fs::create_dir_all(root.join(format!("libpod_parent/{POD}"))).unwrap();
    fs::create_dir_all(root.join(format!("machine.slice/libpod-conmon-{}.scope", id(9)))).unwrap();
    let mut watch = CgroupWatch::new(root).unwrap();
    let found = watch.scan();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].id, id(1));
    assert_eq!(
        found[0].rel,
        format!("/system.slice/docker-{}.scope", id(1))
    );
    assert_eq!(found[0].path, first);
    assert_eq!(found[0].inode, fs::metadata(&first).unwrap().ino());

    // In a pod's cgroup, watched since it was found empty.
    let second = root.join(format!("libpod_parent/{POD}/libpod-{}", id(2)));
    fs::create_dir(&second).unwrap();
    let found = appeared(&mut watch).await;
    assert_eq!(ids(&found), [id(2)]);
    assert_eq!(
        found[0].rel,
        format!("/libpod_parent/{POD}/libpod-{}", id(2))
    );

    // A new slice made with its container inside before it was watched.
    fs::create_dir_all(root.join(format!("kubepods/burstable/pod1/{}", id(3)))).unwrap();
    assert_eq!(ids(&appeared(&mut watch).await), [id(3)]);

    // Files and conmon's cgroups are not containers.
    fs::write(root.join(id(4)), "").unwrap();
    fs::create_dir(root.join(format!("machine.slice/crio-conmon-{}.scope", id(5)))).unwrap();
    fs::create_dir(root.join(format!("machine.slice/crio-{}.scope", id(6)))).unwrap();
    assert_eq!(ids(&appeared(&mut watch).await), [id(6)]);
    assert_eq!(watch.scan().len(), 4);
}

#[test]
fn without_a_runtime_it_is_an_error_not_a_panic() {
    let dir = Scratch::new("no-runtime");
    assert!(matches!(
        CgroupWatch::new(dir.path()),
        Err(WatchError::Init(_))
    ));
}

#[tokio::test]
async fn a_missing_mount_is_an_error() {
    let dir = Scratch::new("no-mount");
    let err = CgroupWatch::new(&dir.path().join("absent")).err().unwrap();
    assert!(err.to_string().contains("absent"), "{err}");
}

/// Real cgroups, in cgroup v2's own file system: as root only.
#[tokio::test]
async fn real_cgroups() {
    // SAFETY: no arguments.
    let root_user = unsafe { libc::geteuid() } == 0;
    let Some(mount) = cgroup2_mount().filter(|_| root_user) else {
        eprintln!("skipped: needs root and a cgroup v2 mount");
        return;
    };
    let test = mount.join(format!("zt-watch-test-{}", std::process::id()));
    let parent = test.join("libpod_parent");
    let before = parent.join(format!("libpod-{}", id(7)));
    let after = parent.join(format!("libpod-{}", id(8)));
    let _cleanup = Rmdir(vec![
        after.clone(),
        before.clone(),
        parent.clone(),
        test.clone(),
    ]);
    fs::create_dir_all(&parent).unwrap();
    fs::create_dir(&before).unwrap();
    let mut watch = CgroupWatch::new(&mount).unwrap();
    let found: Vec<_> = watch
        .scan()
        .into_iter()
        .filter(|c| c.path == before)
        .collect();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, id(7));
    fs::create_dir(&after).unwrap();
    let found = loop {
        let found = appeared(&mut watch).await;
        if let Some(c) = found.into_iter().find(|c| c.path == after) {
            break c;
        }
    };
    assert_eq!(found.inode, fs::metadata(&after).unwrap().ino());
    assert_eq!(
        found.rel,
        format!(
            "/zt-watch-test-{}/libpod_parent/libpod-{}",
            std::process::id(),
            id(8)
        )
    );
}

/// Removes the cgroups made, however the test ends.
struct Rmdir(Vec<PathBuf>);

impl Drop for Rmdir {
    fn drop(&mut self) {
        for dir in &self.0 {
            let _ = fs::remove_dir(dir);
        }
    }
}

fn cgroup2_mount() -> Option<PathBuf> {
    let mounts = fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|line| {
        let mut fields = line.split(' ');
        let (path, kind) = (fields.nth(1)?, fields.next()?);
        (kind == "cgroup2").then(|| PathBuf::from(path))
    })
}

async fn appeared(watch: &mut CgroupWatch) -> Vec<ContainerCgroup> {
    tokio::time::timeout(Duration::from_secs(10), watch.appeared())
        .await
        .expect("no cgroup appeared")
}

fn ids(found: &[ContainerCgroup]) -> Vec<String> {
    found.iter().map(|c| c.id.clone()).collect()
}
