//! `--stacks`: the program that keeps, with each new child, where its
//! parent was when it forked (zombie-trace-ebpf/src/stacks.rs), and the
//! look-up of one child's capture. An object of its own, loaded only when
//! asked for: it needs a newer kernel than the rest.

use std::{
    io, mem,
    os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Map, MapData},
    programs::BtfTracePoint,
};
use thiserror::Error;
use zombie_trace_common::{Offsets, SpawnStack};

use crate::kernel::{
    btf::{Btf as KernelBtf, Kind},
    load::{kernel_release, parse_kernel_version},
};

/// The program, built by build.rs (empty when the build skipped it).
static PROGRAM: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/zombie-trace-stacks"));

/// Linux 5.15: `bpf_task_pt_regs` (task storage for tracing programs is
/// 5.11).
const MIN_KERNEL: (u32, u32) = (5, 15);

const HOOK: &str = "sched_process_fork";
const MAP: &str = "SPAWN_STACKS";

#[derive(Debug, Error)]
pub enum StacksLoadError {
    #[error(
        "this zombie-trace binary was built without its eBPF programs: --stacks cannot work (see `./x.sh build`)"
    )]
    NotBuilt,
    #[error(
        "--stacks needs Linux {}.{} or newer (task storage, bpf_task_pt_regs); this kernel is {release}: run without --stacks",
        MIN_KERNEL.0,
        MIN_KERNEL.1
    )]
    KernelTooOld { release: String },
    #[error(
        "the kernel's BTF has no sched_process_fork tracepoint for --stacks: report this whole message"
    )]
    NoTracepoint,
    #[error("loading or attaching the --stacks program failed (the kernel's reason follows)")]
    Load(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The attached program and its task storage; dropping it detaches both.
pub struct SpawnStacks {
    storage: MapData,
    _ebpf: Ebpf,
}

impl std::fmt::Debug for SpawnStacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpawnStacks").finish_non_exhaustive()
    }
}

/// What aya needs of the kernel's BTF to attach the program: taken from
/// the main loader's reading of it, not read again.
pub fn attach_btf(kernel: &KernelBtf<'_>) -> Result<aya::Btf, StacksLoadError> {
    kernel
        .aya_btf(&[("btf_trace_sched_process_fork", Kind::Typedef)])
        .map_err(|_| StacksLoadError::NoTracepoint)
}

/// Loads and attaches the fork program; `offsets` as the main programs got
/// them, `btf` from [`attach_btf`]. Direct kernel reads first, then the
/// helper (as the main loader).
pub fn load(offsets: &Offsets, btf: &aya::Btf) -> Result<SpawnStacks, StacksLoadError> {
    if PROGRAM.is_empty() {
        return Err(StacksLoadError::NotBuilt);
    }
    let release = kernel_release();
    if parse_kernel_version(&release).is_some_and(|v| v < MIN_KERNEL) {
        return Err(StacksLoadError::KernelTooOld { release });
    }
    load_with(offsets, btf, true).or_else(|e| {
        log::debug!("--stacks: direct kernel reads refused, with the helper then: {e}");
        load_with(offsets, btf, false)
    })
}

fn load_with(
    offsets: &Offsets,
    btf: &aya::Btf,
    direct_reads: bool,
) -> Result<SpawnStacks, StacksLoadError> {
    let boxed = |e: Box<dyn std::error::Error + Send + Sync>| StacksLoadError::Load(e);
    let mut ebpf = EbpfLoader::new()
        .override_global("OFFSETS", offsets, true)
        .override_global("DIRECT_READS", &u32::from(direct_reads), true)
        // aya has no type for task storage; it is read by hand (`lookup`).
        .allow_unsupported_maps()
        .load(PROGRAM)
        .map_err(|e| boxed(e.into()))?;
    let program: &mut BtfTracePoint = ebpf
        .program_mut(HOOK)
        .ok_or_else(|| boxed(format!("the object lacks {HOOK}").into()))?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| boxed(e.into()))?;
    program.load(HOOK, btf).map_err(|e| boxed(e.into()))?;
    program.attach().map_err(|e| boxed(e.into()))?;
    let storage = match ebpf.take_map(MAP) {
        Some(Map::Unsupported(map)) => map,
        _ => return Err(boxed(format!("the object lacks the {MAP} map").into())),
    };
    Ok(SpawnStacks {
        storage,
        _ebpf: ebpf,
    })
}

impl SpawnStacks {
    /// The capture kept with process `pid`, if it is still there (a zombie
    /// is: its task lives until reaped) and is that of the process that
    /// started at `start_ns` (its `start_boottime`; a recycled pid's is
    /// not). `None` for a process forked before the program was attached,
    /// by a kernel thread, or whose capture the kernel could not allocate.
    pub fn lookup(&self, pid: u32, start_ns: u64) -> io::Result<Option<Box<SpawnStack>>> {
        Ok(self
            .lookup_any(pid)?
            .filter(|capture| capture.start_ns == start_ns))
    }

    /// The capture kept with whatever process `pid` now is.
    fn lookup_any(&self, pid: u32) -> io::Result<Option<Box<SpawnStack>>> {
        let pidfd = match pidfd_open(pid) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
            Err(e) => return Err(e),
        };
        let key: i32 = pidfd.as_raw_fd();
        // 4 KiB: on the heap.
        let mut value: Box<mem::MaybeUninit<SpawnStack>> = Box::new_uninit();
        let mut attr = MapElemAttr {
            map_fd: self.storage.fd().as_fd().as_raw_fd() as u32,
            _pad: 0,
            key: (&raw const key) as u64,
            value: value.as_mut_ptr() as u64,
            flags: 0,
        };
        // SAFETY: BPF_MAP_LOOKUP_ELEM reads an `int` at `key` and writes
        // the map's value size (that of `SpawnStack`, its BTF type) at
        // `value`; `attr` is the start of `union bpf_attr` for this command
        // and its size is passed.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_LOOKUP_ELEM,
                &raw mut attr,
                mem::size_of::<MapElemAttr>(),
            )
        };
        if ret != 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOENT | libc::ESRCH) => Ok(None),
                _ => Err(e),
            };
        }
        // SAFETY: the kernel wrote the whole value; `SpawnStack` is plain
        // integers, valid for any bits.
        Ok(Some(unsafe { value.assume_init() }))
    }
}

const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;

/// The part of `union bpf_attr` that map element commands use.
#[repr(C)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// A pidfd of `pid`; a zombie has one too (the key of task storage).
fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags, and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
