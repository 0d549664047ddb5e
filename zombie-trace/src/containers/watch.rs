//! Container cgroups below a cgroup v2 mount, now and as they appear:
//! inotify on every cgroup that is not a container's, since a runtime may
//! make a container's anywhere (below a slice, a pod, a pod's QoS class).

use std::{
    collections::HashMap,
    ffi::CString,
    fs, io,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::{ffi::OsStrExt, fs::MetadataExt},
    },
    path::{Path, PathBuf},
};

use thiserror::Error;
use tokio::io::{Interest, unix::AsyncFd};

use crate::proc::container::segment_id;

/// Cgroup levels below the mount looked into: systemd's and Kubernetes'
/// deepest layouts are well within.
const MAX_DEPTH: usize = 16;
/// inotify watches held at most (each costs the kernel about 1 KiB).
const MAX_WATCHES: usize = 16 * 1024;
/// What changes a cgroup's children: created, or renamed into it.
const MASK: u32 = libc::IN_CREATE | libc::IN_MOVED_TO | libc::IN_ONLYDIR;

/// A container's cgroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerCgroup {
    /// The cgroup's directory.
    pub path: PathBuf,
    /// The cgroup below the mount, starting with '/'.
    pub rel: String,
    /// The cgroup's id as the kernel's `bpf_get_current_cgroup_id` gives
    /// it: the directory's inode number.
    pub inode: u64,
    /// The container's id (64 hex).
    pub id: String,
}

#[derive(Debug, Error)]
pub enum WatchError {
    #[error(
        "cannot start watching for new cgroups (inotify): {0}; if it says too many open files, raise fs.inotify.max_user_instances (sysctl)"
    )]
    Init(#[source] io::Error),
    #[error(
        "cannot watch {} for new cgroups: {source}; if it says no space left, raise fs.inotify.max_user_watches (sysctl)",
        path.display()
    )]
    Watch { path: PathBuf, source: io::Error },
}

/// Container cgroups below a cgroup v2 mount (e.g. `/sys/fs/cgroup` or
/// `/sys/fs/cgroup/unified`), now and as they appear.
pub struct CgroupWatch {
    mount: PathBuf,
    inotify: AsyncFd<OwnedFd>,
    /// Watched directories by watch descriptor.
    watches: HashMap<i32, PathBuf>,
    /// A cgroup could not be watched (said once): containers below it are
    /// found by rescans only.
    short_said: bool,
}

impl CgroupWatch {
    /// Starts watching `mount`; the first [`CgroupWatch::scan`] watches
    /// every cgroup below it that is not a container's (a container's own
    /// sub-cgroups do not matter). Needs a tokio runtime with I/O enabled.
    pub fn new(mount: &Path) -> Result<Self, WatchError> {
        // Registering without a runtime would panic.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(WatchError::Init(io::Error::other("not in a tokio runtime")));
        }
        // SAFETY: no pointers; the flags are valid.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(WatchError::Init(io::Error::last_os_error()));
        }
        // SAFETY: a descriptor the call just opened, owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: the AsyncFd owns the descriptor, so it stays open and the
        // same for as long as the AsyncFd.
        let inotify = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| WatchError::Init(e.into()))?;
        let mut watch = Self {
            mount: mount.to_owned(),
            inotify,
            watches: HashMap::new(),
            short_said: false,
        };
        watch.add(mount).map_err(|source| WatchError::Watch {
            path: mount.to_owned(),
            source,
        })?;
        Ok(watch)
    }

    /// Every container cgroup there now (a full walk, which also watches
    /// the cgroups made since).
    pub fn scan(&mut self) -> Vec<ContainerCgroup> {
        let mut found = Vec::new();
        let mount = self.mount.clone();
        self.walk(&mount, None, 0, &mut found);
        found
    }

    /// Waits until cgroups are made, and returns the container cgroups
    /// among them and below them (children may be made before their new
    /// parent is watched). Cancel-safe: events are only read once
    /// readable, and then handled without waiting again. A cgroup may be
    /// returned again (after a queue overflow, everything is).
    pub async fn appeared(&mut self) -> Vec<ContainerCgroup> {
        loop {
            let Ok(mut ready) = self.inotify.readable().await else {
                // The descriptor is broken for good: new containers are
                // found by the session's rescans alone; do not spin.
                std::future::pending::<()>().await;
                return Vec::new();
            };
            let mut buf = [0u8; 16 * 1024];
            let read = ready.try_io(|fd| {
                // SAFETY: `buf` is writable for its whole length, which is
                // what the call may write.
                let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                usize::try_from(n).map_err(|_| io::Error::last_os_error())
            });
            let len = match read {
                Ok(Ok(len)) => len,
                // Not ready after all, or interrupted: wait again.
                Ok(Err(_)) | Err(_) => continue,
            };
            let found = self.handle(buf.get(..len).unwrap_or_default());
            if !found.is_empty() {
                return found;
            }
        }
    }

    /// The container cgroups that the events in `bytes` tell of.
    fn handle(&mut self, bytes: &[u8]) -> Vec<ContainerCgroup> {
        let mut found = Vec::new();
        for event in events(bytes) {
            if event.mask & libc::IN_Q_OVERFLOW != 0 {
                return self.scan();
            }
            if event.mask & libc::IN_IGNORED != 0 {
                self.watches.remove(&event.wd);
                continue;
            }
            if event.mask & libc::IN_ISDIR == 0 || event.name.is_empty() {
                continue;
            }
            let Some(parent) = self.watches.get(&event.wd).cloned() else {
                continue;
            };
            let Some(depth) = depth(&self.mount, &parent) else {
                continue;
            };
            let name = std::ffi::OsStr::from_bytes(event.name);
            let parent_name = parent.file_name().and_then(|n| n.to_str());
            self.visit(&parent.join(name), parent_name, depth + 1, &mut found);
        }
        found
    }

    /// Walks the cgroups below `dir` (depth `depth` below the mount,
    /// already watched or the mount itself), watching each that is no
    /// container's and collecting those that are.
    fn walk(
        &mut self,
        dir: &Path,
        name: Option<&str>,
        depth: usize,
        found: &mut Vec<ContainerCgroup>,
    ) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        let children: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        for child in children {
            self.visit(&child, name, depth + 1, found);
        }
    }

    /// Cgroup `dir` (below one named `parent`): a container's, or one to
    /// watch and walk.
    fn visit(
        &mut self,
        dir: &Path,
        parent: Option<&str>,
        depth: usize,
        found: &mut Vec<ContainerCgroup>,
    ) {
        let Some(name) = dir.file_name().and_then(|n| n.to_str()) else {
            return;
        };
        // A cgroup delegated to a user (rootless containers,
        // `user@UID.service`) is named as that user likes: none is taken
        // for a container, or watched, so that no user can pass a cgroup
        // off as another's container or use up the watches. The container
        // runtimes that run as root make root's cgroups.
        let Ok(meta) = fs::symlink_metadata(dir) else {
            return;
        };
        if meta.uid() != 0 {
            return;
        }
        if let Some(id) = segment_id(parent, name) {
            found.extend(self.container(dir, &meta, id));
            return;
        }
        if depth >= MAX_DEPTH {
            return;
        }
        // Watched before it is listed: a child made in between is then
        // seen either way.
        let watched = if self.watches.len() < MAX_WATCHES {
            self.add(dir)
        } else {
            Err(io::Error::other(format!(
                "{MAX_WATCHES} cgroups are watched already"
            )))
        };
        match watched {
            Ok(()) => {
                let name = name.to_owned();
                self.walk(dir, Some(&name), depth, found);
            }
            Err(e) if !self.short_said => {
                self.short_said = true;
                log::warn!(
                    "cannot watch {} for new containers ({e}): those started below it are \
                     found within 5 s (if it says no space left, raise \
                     fs.inotify.max_user_watches with sysctl)",
                    dir.display()
                );
            }
            Err(_) => {}
        }
    }

    fn container(&self, dir: &Path, meta: &fs::Metadata, id: &str) -> Option<ContainerCgroup> {
        let rel = dir.strip_prefix(&self.mount).ok()?.to_str()?;
        Some(ContainerCgroup {
            path: dir.to_owned(),
            rel: format!("/{rel}"),
            inode: meta.ino(),
            id: id.to_owned(),
        })
    }

    fn add(&mut self, dir: &Path) -> io::Result<()> {
        let path = CString::new(dir.as_os_str().as_bytes())?;
        // SAFETY: the inotify descriptor is open and `path` NUL-terminated,
        // both valid for the call.
        let wd = unsafe {
            libc::inotify_add_watch(self.inotify.get_ref().as_raw_fd(), path.as_ptr(), MASK)
        };
        if wd < 0 {
            return Err(io::Error::last_os_error());
        }
        self.watches.insert(wd, dir.to_owned());
        Ok(())
    }
}

/// How many levels `dir` is below `mount`.
fn depth(mount: &Path, dir: &Path) -> Option<usize> {
    Some(dir.strip_prefix(mount).ok()?.components().count())
}

/// One inotify event, as read.
struct Event<'a> {
    wd: i32,
    mask: u32,
    /// The child's name, without the NUL padding.
    name: &'a [u8],
}

/// The events in what one read of an inotify descriptor returned
/// (`struct inotify_event`: wd, mask, cookie, len, then `len` bytes of
/// NUL-padded name); a truncated last one is dropped.
fn events(mut bytes: &[u8]) -> impl Iterator<Item = Event<'_>> {
    std::iter::from_fn(move || {
        let field = |at: usize| -> Option<[u8; 4]> { bytes.get(at..at + 4)?.try_into().ok() };
        let wd = i32::from_ne_bytes(field(0)?);
        let mask = u32::from_ne_bytes(field(4)?);
        let len = usize::try_from(u32::from_ne_bytes(field(12)?)).ok()?;
        let name = bytes.get(16..16usize.checked_add(len)?)?;
        bytes = &bytes[16 + len..];
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        Some(Event {
            wd,
            mask,
            name: &name[..end],
        })
    })
}

#[cfg(test)]
mod tests;
