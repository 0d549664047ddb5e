//! Unwinding a captured stack with the call frame information (`.eh_frame`)
//! of the modules mapped in the process, by framehop; where a module has
//! none for an address, framehop follows frame pointers.
//!
//! glibc, like most of a distribution's libraries, is built without frame
//! pointers but always with `.eh_frame` (C++ exceptions and `backtrace()`
//! need it): CFI gets through `fork` to the caller where the kernel's
//! frame-pointer walk stops.

use std::{
    collections::HashMap,
    fs::File,
    ops::Range,
    path::{Path, PathBuf},
    sync::Arc,
};

#[cfg(target_arch = "aarch64")]
use framehop::aarch64::{
    CacheAarch64 as Cache, PtrAuthMask, UnwindRegsAarch64, UnwinderAarch64 as ArchUnwinder,
};
#[cfg(not(target_arch = "aarch64"))]
use framehop::x86_64::{CacheX86_64 as Cache, UnwindRegsX86_64, UnwinderX86_64 as ArchUnwinder};
use framehop::{ExplicitModuleSectionInfo, FrameAddress, Module, Unwinder as _};
use object::{Object as _, ObjectSection as _, ObjectSegment as _, ReadCache};

use super::{UserRegs, maps::Mapping};

const PAGE: u64 = 4096;
/// Modules whose sections are kept; past it the cache starts again.
const MAX_MODULES: usize = 256;
/// A section larger than this is not read (an `.eh_frame` of 64 MiB is
/// already a very large program's).
const MAX_SECTION: u64 = 64 << 20;

/// A file, as `/proc/PID/maps` names it: the same file in two processes
/// (or two pids' lifetimes) has the same key, a replaced one another.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct FileKey {
    dev: String,
    inode: u64,
    path: PathBuf,
}

/// What framehop needs of one ELF file, read once.
struct Sections {
    eh_frame: Option<(Range<u64>, Arc<[u8]>)>,
    eh_frame_hdr: Option<(Range<u64>, Arc<[u8]>)>,
    text: Option<Range<u64>>,
    got: Option<Range<u64>>,
    /// `PT_LOAD` segments: file range, and the address it is linked at.
    loads: Vec<(Range<u64>, u64)>,
}

/// The sections of the files seen, by file.
#[derive(Default)]
pub struct ModuleCache {
    files: HashMap<FileKey, Option<Arc<Sections>>>,
}

impl ModuleCache {
    /// `pid`'s modules, as framehop wants them.
    fn modules(&mut self, pid: u32, maps: &[Mapping]) -> Vec<Module<Arc<[u8]>>> {
        if self.files.len() > MAX_MODULES {
            self.files.clear();
        }
        let mut modules = Vec::new();
        // Consecutive lines of one file make one module.
        let mut at = 0;
        while at < maps.len() {
            let first = &maps[at];
            let mut end = at + 1;
            while end < maps.len() && maps[end].inode == first.inode && maps[end].dev == first.dev {
                end += 1;
            }
            let lines = &maps[at..end];
            at = end;
            let key = FileKey {
                dev: first.dev.clone(),
                inode: first.inode,
                path: first.path.clone(),
            };
            let sections = self
                .files
                .entry(key)
                .or_insert_with(|| read_sections(pid, first).map(Arc::new))
                .clone();
            if let Some(sections) = sections
                && let Some(module) = module(first, lines, &sections)
            {
                modules.push(module);
            }
        }
        modules
    }
}

/// The module of a file mapped by `lines` (the first at the lowest
/// offset), if where it is loaded can be told.
fn module(first: &Mapping, lines: &[Mapping], s: &Sections) -> Option<Module<Arc<[u8]>>> {
    let lowest = lines.iter().min_by_key(|m| m.offset)?;
    // The load bias: the address a mapped file offset is at, less the one
    // it is linked at.
    // A mapping starts at the page its segment's first byte is in.
    let (file, vaddr) = s
        .loads
        .iter()
        .find(|(file, _)| file.start & !(PAGE - 1) <= lowest.offset && lowest.offset < file.end)?;
    let bias = lowest
        .start
        .wrapping_sub(lowest.offset)
        .wrapping_add(file.start)
        .wrapping_sub(*vaddr);
    let start = lines.iter().map(|m| m.start).min()?;
    let end = lines.iter().map(|m| m.end).max()?;
    let info = ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma: s.text.clone(),
        got_svma: s.got.clone(),
        eh_frame_svma: s.eh_frame.as_ref().map(|(r, _)| r.clone()),
        eh_frame: s.eh_frame.as_ref().map(|(_, d)| d.clone()),
        eh_frame_hdr_svma: s.eh_frame_hdr.as_ref().map(|(r, _)| r.clone()),
        eh_frame_hdr: s.eh_frame_hdr.as_ref().map(|(_, d)| d.clone()),
        ..Default::default()
    };
    Some(Module::new(
        first.path.display().to_string(),
        start..end,
        bias,
        info,
    ))
}

/// Opens a mapped file: by `/proc/PID/map_files` (the very file mapped, even
/// deleted or in another mount namespace; needs CAP_SYS_ADMIN), else by
/// the path under the process's root.
pub fn open(pid: u32, mapping: &Mapping) -> Option<File> {
    let by_range = format!(
        "/proc/{pid}/map_files/{:x}-{:x}",
        mapping.start, mapping.end
    );
    File::open(by_range).ok().or_else(|| {
        let relative = mapping.path.strip_prefix("/").unwrap_or(&mapping.path);
        File::open(Path::new(&format!("/proc/{pid}/root")).join(relative)).ok()
    })
}

/// The unwind sections and load segments of a mapped ELF file; `None` if
/// it cannot be read or is not ELF. Only the headers and these sections
/// are read, not the whole file.
fn read_sections(pid: u32, mapping: &Mapping) -> Option<Sections> {
    let cache = ReadCache::new(open(pid, mapping)?);
    let elf = object::File::parse(&cache).ok()?;
    let section = |name: &str| {
        let s = elf.section_by_name(name)?;
        let range = s.address()..s.address().checked_add(s.size())?;
        if s.size() > MAX_SECTION {
            return None;
        }
        let data: Arc<[u8]> = Arc::from(s.data().ok()?);
        Some((range, data))
    };
    let range = |name: &str| {
        let s = elf.section_by_name(name)?;
        Some(s.address()..s.address().checked_add(s.size())?)
    };
    let loads = elf
        .segments()
        .filter_map(|seg| {
            let (offset, size) = seg.file_range();
            Some((offset..offset.checked_add(size)?, seg.address()))
        })
        .collect();
    Some(Sections {
        eh_frame: section(".eh_frame"),
        eh_frame_hdr: section(".eh_frame_hdr"),
        text: range(".text"),
        got: range(".got"),
        loads,
    })
}

/// The frames of a stack: the instruction pointer, then return addresses,
/// at most `max` of them. Stops where the unwinder does, at the end of the
/// captured bytes, or at the first address it cannot unwind past.
pub fn unwind(
    cache: &mut ModuleCache,
    pid: u32,
    maps: &[Mapping],
    regs: UserRegs,
    stack: &[u8],
    stack_base: u64,
    max: usize,
) -> Vec<FrameAddress> {
    let mut unwinder = ArchUnwinder::new();
    for module in cache.modules(pid, maps) {
        unwinder.add_module(module);
    }
    let mut rules = Cache::new();
    let mut read_stack = |address: u64| {
        let at = usize::try_from(address.checked_sub(stack_base).ok_or(())?).map_err(drop)?;
        let bytes = stack.get(at..at.checked_add(8).ok_or(())?).ok_or(())?;
        Ok(u64::from_le_bytes(bytes.try_into().map_err(drop)?))
    };
    let mut frames = Vec::new();
    let mut iter =
        unwinder.iter_frames(regs.ip, start_regs(regs, maps), &mut rules, &mut read_stack);
    while frames.len() < max {
        match iter.next() {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => break,
            Err(e) => {
                log::debug!("spawn stack of {pid}: unwinding stopped: {e}");
                break;
            }
        }
    }
    frames
}

#[cfg(not(target_arch = "aarch64"))]
fn start_regs(regs: UserRegs, _maps: &[Mapping]) -> UnwindRegsX86_64 {
    UnwindRegsX86_64::new(regs.ip, regs.sp, regs.bp)
}

/// Return addresses may carry a pointer authentication code in their top
/// bits (Debian builds arm64 code with branch protection): stripped down
/// to the highest address mapped.
#[cfg(target_arch = "aarch64")]
fn start_regs(regs: UserRegs, maps: &[Mapping]) -> UnwindRegsAarch64 {
    let highest = maps.iter().map(|m| m.end).max().unwrap_or(u64::MAX);
    UnwindRegsAarch64::new_with_ptr_auth_mask(
        PtrAuthMask::from_max_known_address(highest),
        regs.link,
        regs.sp,
        regs.bp,
    )
}
