//! What each process runs, kept from its exec: by the time it is a zombie
//! its memory is gone, and `/proc/PID/cmdline` with it.
//!
//! A hash by tgid, not task-local storage: aya creates every map of the
//! object at load, and kernels without task storage (before 5.11, such as
//! Debian 11's 5.10) would refuse the whole object. An entry lives from the
//! process's exec to its release, as task storage would.

use aya_ebpf::{
    bindings::{BPF_ANY, BPF_F_NO_PREALLOC},
    helpers::{
        bpf_ktime_get_boot_ns, bpf_probe_read_kernel_buf, bpf_probe_read_user_buf,
        generated::bpf_probe_read_kernel_str,
    },
    macros::map,
    maps::{HashMap, PerCpuArray},
};
use zombie_trace_common::{
    ARGV_LEN, COMMANDS_MAX, COUNTER_COMMAND_FULL, Command, EXIT_HAS_COMMAND, ExitCommandRecord,
    ExitRecord,
};

use crate::{
    EVENTS, count, offsets,
    task::{KPtr, read, read_comm},
    wakeup_flags,
};

/// Commands by tgid (read by userspace for the zombies it reports).
#[map]
pub static COMMANDS: HashMap<u32, Command> =
    HashMap::with_max_entries(COMMANDS_MAX, BPF_F_NO_PREALLOC);

/// Where a command is put together before it is stored: too big for the
/// eBPF stack.
#[map]
static SCRATCH: PerCpuArray<Command> = PerCpuArray::with_max_entries(1, 0);

/// Keeps what `task`, process `tgid`, now runs: `bprm` is the exec's
/// `linux_binprm`. Runs in the task after its exec succeeded, when its
/// new argument strings are in place.
pub fn capture(task: KPtr, bprm: KPtr, tgid: u32) -> Result<(), i32> {
    let o = offsets();
    let Some(c) = SCRATCH.get_ptr_mut(0) else {
        return Ok(());
    };
    // SAFETY: this CPU's slot; programs do not migrate while running.
    let c = unsafe { &mut *c };
    c.start_ns = read(task, o.task_start_boottime)?;
    // SAFETY: a helper without arguments.
    c.exec_ns = unsafe { bpf_ktime_get_boot_ns() };
    c.comm = read_comm(task, o.task_comm);
    let filename: KPtr = read(bprm, o.bprm_filename)?;
    // SAFETY: the helper checks the address and stops at the buffer's end.
    let n = unsafe {
        bpf_probe_read_kernel_str(
            c.exe.as_mut_ptr().cast(),
            c.exe.len() as u32,
            filename.cast(),
        )
    };
    // The length counts the NUL.
    c.exe_len = if n > 0 { (n - 1) as u16 } else { 0 };
    let mm: KPtr = read(task, o.task_mm)?;
    let start: u64 = read(mm, o.mm_arg_start)?;
    let end: u64 = read(mm, o.mm_arg_end)?;
    let size = end.saturating_sub(start);
    c.argv_size = size.min(u64::from(u32::MAX)) as u32;
    let len = (size as usize).min(ARGV_LEN);
    c.argv_len = 0;
    if let Some(argv) = c.argv.get_mut(..len) {
        // SAFETY: the helper checks the user address.
        if unsafe { bpf_probe_read_user_buf(start as *const u8, argv) }.is_ok() {
            c.argv_len = len as u16;
        }
    }
    if COMMANDS.insert(&tgid, c, BPF_ANY.into()).is_err() {
        count(COUNTER_COMMAND_FULL);
    }
    Ok(())
}

/// Process `tgid`, started at `start_ns`, was released: its entry goes
/// (only its own: the pid may be another process's already).
#[inline(always)]
pub fn forget(tgid: u32, start_ns: impl FnOnce() -> Result<u64, i32>) {
    // SAFETY: the start time is copied out at once.
    let Some(kept) = (unsafe { COMMANDS.get(&tgid) }).map(|c| c.start_ns) else {
        return;
    };
    if start_ns() == Ok(kept) {
        let _ = COMMANDS.remove(&tgid);
    }
}

/// Sends an exit to userspace, with the process's command when it has
/// one; `lost` is counted when the ring buffer has no room.
#[inline(always)]
pub fn send_exit(record: &ExitRecord, lost: u32) {
    // SAFETY: read only while this program runs; a release of the process
    // cannot happen meanwhile (it is dying in this very tracepoint).
    let command = unsafe { COMMANDS.get(&record.tgid) }.filter(|c| c.start_ns == record.start_ns);
    let Some(command) = command else {
        crate::send(*record, lost);
        return;
    };
    let Some(mut entry) = EVENTS.reserve::<ExitCommandRecord>(0) else {
        count(lost);
        return;
    };
    let out = entry.as_mut_ptr();
    // SAFETY: `out` is the reserved record; both parts are written before
    // it is submitted.
    unsafe {
        (&raw mut (*out).exit).write(ExitRecord {
            flags: record.flags | EXIT_HAS_COMMAND,
            ..*record
        });
        let dst = core::slice::from_raw_parts_mut(
            (&raw mut (*out).command).cast::<u8>(),
            core::mem::size_of::<Command>(),
        );
        if bpf_probe_read_kernel_buf((command as *const Command).cast(), dst).is_err() {
            (&raw mut (*out).command.start_ns).write(0);
        }
    }
    entry.submit(wakeup_flags());
}
