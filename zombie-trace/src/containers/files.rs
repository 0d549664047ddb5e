//! Reading the runtimes' files without trusting them: whoever can write
//! below a runtime's state directory must not make the tracer block, follow
//! a planted link, or hold a file of any size.

use std::{
    ffi::CString,
    fs::{self, File},
    io::Read,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::{ffi::OsStrExt, fs::MetadataExt, fs::OpenOptionsExt},
    },
    path::Path,
};

/// What tells a file's new version from the one read before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

/// Opens directory `base` (through links: state directories are often
/// links to another disk), then each of `below` in turn without following
/// a link, the last a regular file. A FIFO or device does not block the
/// open (`O_NONBLOCK`) and is refused.
pub(super) fn open_below(base: &Path, below: &[&str]) -> Option<File> {
    let (last, dirs) = below.split_last()?;
    let mut dir: OwnedFd = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(base)
        .ok()?
        .into();
    for name in dirs {
        dir = open_at(&dir, name, libc::O_DIRECTORY)?;
    }
    let file = File::from(open_at(&dir, last, libc::O_NONBLOCK)?);
    file.metadata().ok()?.is_file().then_some(file)
}

/// `name`, one plain component, opened read-only below `dir`, never
/// through a link.
fn open_at(dir: &OwnedFd, name: &str, flags: libc::c_int) -> Option<OwnedFd> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return None;
    }
    let name = CString::new(name).ok()?;
    // O_NOCTTY: a device node planted there must not become the tracer's
    // terminal.
    let flags = flags | libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY;
    // SAFETY: `dir` is an open descriptor and `name` a NUL-terminated
    // string, both valid for the call.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags) };
    // SAFETY: a descriptor the call just opened, owned by nothing else.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The whole of `file` if it holds at most `cap` bytes.
pub(super) fn read_capped(file: File, cap: usize) -> Option<Vec<u8>> {
    let limit = u64::try_from(cap).ok()?.saturating_add(1);
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes).ok()?;
    (bytes.len() <= cap).then_some(bytes)
}

/// The file read by [`open_below`], if it holds at most `cap` bytes.
pub(super) fn read_below(base: &Path, below: &[&str], cap: usize) -> Option<Vec<u8>> {
    read_capped(open_below(base, below)?, cap)
}

pub(super) fn stamp(file: &File) -> Option<Stamp> {
    Some(stamp_of(&file.metadata().ok()?))
}

/// Directory `dir`'s stamp (through links, as state directories are
/// entered): it changes as entries come and go.
pub(super) fn dir_stamp(dir: &Path) -> Option<Stamp> {
    Some(stamp_of(&fs::metadata(dir).ok()?))
}

fn stamp_of(meta: &fs::Metadata) -> Stamp {
    Stamp {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.size(),
        mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
    }
}

/// The names of at most `max` subdirectories of `dir` (links left out),
/// in no particular order.
pub(super) fn subdirs(dir: &Path, max: usize) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    // A directory of many files is not read to its end for a few names.
    entries
        .take(max.saturating_mul(16))
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            std::str::from_utf8(e.file_name().as_bytes())
                .ok()
                .map(str::to_owned)
        })
        .take(max)
        .collect()
}
