//! A process's file-backed mappings, from `/proc/PID/maps`: which file each
//! code address is in, and where that file is loaded.

use std::{fs, io, path::PathBuf};

/// At most this many lines are read: a process with more mappings (some
/// allocators make thousands) still has its code in the first ones.
const MAX_LINES: usize = 65_536;

/// One line of `/proc/PID/maps` backed by a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// The file offset mapped at `start`.
    pub offset: u64,
    pub dev: String,
    pub inode: u64,
    /// As the process sees it (its mount namespace), ` (deleted)` removed.
    pub path: PathBuf,
}

pub fn read(pid: u32) -> io::Result<Vec<Mapping>> {
    let text = fs::read_to_string(format!("/proc/{pid}/maps"))?;
    Ok(parse(&text))
}

/// The file-backed lines of a maps file; lines that do not parse are
/// skipped (the kernel's format, but nothing is assumed of it).
pub fn parse(text: &str) -> Vec<Mapping> {
    text.lines().take(MAX_LINES).filter_map(line).collect()
}

fn line(line: &str) -> Option<Mapping> {
    // `start-end perms offset dev inode   path`; the path may hold spaces.
    let mut fields = line.splitn(6, ' ');
    let (start, end) = fields.next()?.split_once('-')?;
    let _perms = fields.next()?;
    let offset = fields.next()?;
    let dev = fields.next()?;
    let inode: u64 = fields.next()?.parse().ok()?;
    let path = fields.next()?.trim_start();
    if inode == 0 || !path.starts_with('/') {
        return None;
    }
    let path = path.strip_suffix(" (deleted)").unwrap_or(path);
    let start = u64::from_str_radix(start, 16).ok()?;
    let end = u64::from_str_radix(end, 16).ok()?;
    let offset = u64::from_str_radix(offset, 16).ok()?;
    (start < end).then(|| Mapping {
        start,
        end,
        offset,
        dev: dev.to_owned(),
        inode,
        path: PathBuf::from(path),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_file_mappings_only() {
        let text = "\
5639a5c00000-5639a5c01000 r-xp 00001000 fe:00 10010950                   /tmp/my prog
7fe542961000-7fe542963000 rw-p 00000000 00:00 0 
7ffd78ac8000-7ffd78ae9000 rw-p 00000000 00:00 0                          [stack]
7f0000000000-7f0000001000 r-xp 00002000 00:05 77                         /memfd:jit (deleted)
7f0000001000-7f0000002000 r-xp 00000000 fe:00 78                         /usr/lib/gone.so (deleted)
garbage
ffff-0 r-xp 00000000 fe:00 9 /backwards
";
        let maps = parse(text);
        assert_eq!(maps.len(), 3, "{maps:#?}");
        assert_eq!(maps[0].path, PathBuf::from("/tmp/my prog"));
        assert_eq!(maps[0].offset, 0x1000);
        assert_eq!(maps[1].path, PathBuf::from("/memfd:jit"));
        assert_eq!(maps[2].path, PathBuf::from("/usr/lib/gone.so"));
    }
}
