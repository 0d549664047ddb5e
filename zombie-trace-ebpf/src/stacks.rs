//! `--stacks`: where a parent was when it made each child. On
//! `sched_process_fork`, in the parent's context, the forking thread's user
//! registers and the top of its user stack are copied into task storage on
//! the child; userspace looks them up (by a pidfd of the child) only for the
//! children that become findings, and unwinds them with the modules' CFI.
//!
//! Why not `bpf_get_stack(BPF_F_USER_STACK)`: the kernel's walk follows frame
//! pointers, and glibc is built without them, so it stops inside `fork`
//! (one frame: `_Fork`) and never reaches the function that leaked.
//!
//! A program of its own (not in the main object): task storage needs Linux
//! 5.11 and `bpf_task_pt_regs` 5.15, while the main programs run on 5.8; aya
//! creates every map of an object it loads, so this map would stop the
//! main object loading on older kernels. Loaded only when asked for.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

// The main object's reads at the loader's offsets; it uses the rest of them.
#[allow(dead_code)]
#[path = "task.rs"]
mod task;

#[path = "globals.rs"]
mod globals;

use aya_ebpf::{
    bindings::{BPF_F_NO_PREALLOC, BPF_LOCAL_STORAGE_GET_F_CREATE, bpf_map_type},
    helpers::{
        bpf_get_current_pid_tgid, bpf_get_current_task_btf,
        generated::{bpf_probe_read_user, bpf_task_pt_regs, bpf_task_storage_get},
    },
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use globals::{is_set, offsets};
use zombie_trace_common::{SPAWN_STACK_BYTES, SpawnStack};

use crate::task::{KPtr, read};

/// A `BPF_MAP_TYPE_TASK_STORAGE` map: a value per task, made on demand and
/// freed by the kernel with the task. aya-ebpf has no type for it; this is
/// the BTF map definition libbpf and aya read (the shape of aya-ebpf's
/// `CgrpStorage`): the kernel wants no preallocation, 0 entries, an `int`
/// key (a pidfd, from userspace) and BTF for key and value.
#[repr(C)]
pub struct TaskStorage<T> {
    r#type: *const [i32; bpf_map_type::BPF_MAP_TYPE_TASK_STORAGE as usize],
    key: *const i32,
    value: *const T,
    max_entries: *const [i32; 0],
    map_flags: *const [i32; BPF_F_NO_PREALLOC as usize],
}

// SAFETY: the fields are never dereferenced: only their BTF types matter,
// and the loader replaces the static with the map's file descriptor.
unsafe impl<T> Sync for TaskStorage<T> {}

impl<T> TaskStorage<T> {
    const fn new() -> Self {
        TaskStorage {
            r#type: core::ptr::null(),
            key: core::ptr::null(),
            value: core::ptr::null(),
            max_entries: core::ptr::null(),
            map_flags: core::ptr::null(),
        }
    }

    /// `task`'s value, made (zeroed) if it has none; null if the kernel
    /// could not allocate it.
    #[inline(always)]
    fn get_or_create(&self, task: KPtr) -> *mut T {
        let map: *const Self = self;
        // SAFETY: `map` is this map (the loader relocates the address),
        // `task` a BTF-typed task the verifier checks; no initial value.
        unsafe {
            bpf_task_storage_get(
                map.cast_mut().cast(),
                task.cast_mut().cast(),
                core::ptr::null_mut(),
                BPF_LOCAL_STORAGE_GET_F_CREATE.into(),
            )
        }
        .cast()
    }
}

#[unsafe(link_section = ".maps")]
#[unsafe(export_name = "SPAWN_STACKS")]
static SPAWN_STACKS: TaskStorage<SpawnStack> = TaskStorage::new();

/// Where `struct pt_regs` keeps the user registers a stack is unwound
/// from, for the architecture the loader was built for (`bpf_target_arch`,
/// from aya-build): both layouts are the architectures' fixed ABI
/// (`uapi/asm/ptrace.h`).
#[cfg(bpf_target_arch = "x86_64")]
mod regs {
    /// `rip`, `rsp`, `rbp`, `rdi`.
    pub const IP: u32 = 128;
    pub const SP: u32 = 152;
    pub const BP: u32 = 32;
    pub const LINK: u32 = 112;
}

#[cfg(bpf_target_arch = "aarch64")]
mod regs {
    /// `pc`, `sp`, `x29` (the frame pointer), `x30` (the link register):
    /// `regs[31]`, then `sp`, then `pc`.
    pub const IP: u32 = 256;
    pub const SP: u32 = 248;
    pub const BP: u32 = 29 * 8;
    pub const LINK: u32 = 30 * 8;
}

#[cfg(not(any(bpf_target_arch = "x86_64", bpf_target_arch = "aarch64")))]
compile_error!(
    "--stacks knows the user registers of x86_64 and aarch64 only: add this architecture's `regs`"
);

const PAGE: u64 = 4096;

#[btf_tracepoint(function = "sched_process_fork")]
pub fn sched_process_fork(ctx: BtfTracePointContext) -> i32 {
    let child: KPtr = ctx.arg(1);
    // Nothing to report on failure: the child then has no capture, which
    // userspace says.
    let _ = try_fork(child);
    0
}

#[inline(always)]
fn try_fork(child: KPtr) -> Result<(), i32> {
    let o = offsets();
    // The tracepoint runs in the thread that called fork/clone.
    let parent_tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let child_tgid: u32 = read(child, o.task_tgid)?;
    // A new thread is no child to reap.
    if child_tgid == parent_tgid {
        return Ok(());
    }
    // SAFETY: a helper without arguments; the task it returns is typed by
    // BTF, as `bpf_task_pt_regs` requires.
    let current = unsafe { bpf_get_current_task_btf() };
    // SAFETY: as above: the verifier checks that `current` is a task.
    let pt_regs = unsafe { bpf_task_pt_regs(current.cast()) } as KPtr;
    let ip: u64 = read(pt_regs, regs::IP)?;
    let sp: u64 = read(pt_regs, regs::SP)?;
    let bp: u64 = read(pt_regs, regs::BP)?;
    let link: u64 = read(pt_regs, regs::LINK)?;
    // A kernel thread has no user stack to show.
    if sp == 0 || ip == 0 {
        return Ok(());
    }
    let start_ns: u64 = read(child, o.task_start_boottime)?;
    let capture = SPAWN_STACKS.get_or_create(child);
    if capture.is_null() {
        return Err(-12);
    }
    // SAFETY: a map value of the kernel's, valid and ours for this run; the
    // child is not running yet, so nothing else writes it.
    let capture = unsafe { &mut *capture };
    capture.start_ns = start_ns;
    capture.parent_tgid = parent_tgid;
    capture.ip = ip;
    capture.sp = sp;
    capture.bp = bp;
    capture.link = link;
    capture.len = read_stack(capture, sp);
    Ok(())
}

/// Copies the user stack from `sp` up into `capture.stack`: as much as it
/// holds, or, where the stack mapping ends before that (a read that
/// crosses its top fails as a whole), up to the end of a page: the page
/// `sp` is in and as many above as fit, fewest last. The bytes read.
#[inline(always)]
fn read_stack(capture: &mut SpawnStack, sp: u64) -> u32 {
    let full = SPAWN_STACK_BYTES as u64;
    if read_user(capture, sp, full) {
        return full as u32;
    }
    let to_page_end = PAGE - (sp & (PAGE - 1));
    let mut tried = full;
    for pages in (0..=full / PAGE).rev() {
        let size = to_page_end.wrapping_add(pages * PAGE).min(full);
        if size >= tried {
            continue;
        }
        if read_user(capture, sp, size) {
            return size as u32;
        }
        tried = size;
    }
    0
}

/// Copies `size` bytes of user memory at `sp` to the start of
/// `capture.stack`; whether they could all be read.
#[inline(always)]
fn read_user(capture: &mut SpawnStack, sp: u64, size: u64) -> bool {
    // The verifier checks the copy's bounds on the register passed: read
    // back from memory, the size cannot be recomputed past the check.
    // SAFETY: a volatile read of a local.
    let size = unsafe { core::ptr::read_volatile(&size) };
    if size == 0 || size > SPAWN_STACK_BYTES as u64 {
        return false;
    }
    // SAFETY: at most `SPAWN_STACK_BYTES`, which `stack` holds; the helper
    // checks the user address (and zero-fills on failure).
    let ret = unsafe {
        bpf_probe_read_user(
            capture.stack.as_mut_ptr().cast(),
            size as u32,
            sp as *const _,
        )
    };
    ret == 0
}

#[cfg(not(target_arch = "bpf"))]
fn main() {}
