//! Spawn stacks (`--stacks`, issue 18): where a parent was when it forked a
//! child that became a finding. The kernel keeps, with each new child, the
//! forking thread's registers and the top of its user stack
//! (`kernel::stacks`); this module turns one such capture into frames
//! against the still-running parent: unwound with the modules' CFI
//! (`unwind`), named with their symbols and debug information
//! (`symbolize`).
//!
//! Work is bounded: at most [`MAX_FRAMES`] frames, reads only within the
//! captured bytes, no panic on any bytes or maps. Kept between calls, per
//! file (so across processes and pids): each module's unwind sections, and
//! blazesym's parsed symbols; both start again past a bound.

mod maps;
mod symbolize;
mod unwind;

// They stop and read live processes' registers by ptrace, as x86_64 has them.
#[cfg(all(test, target_arch = "x86_64"))]
mod tests;

use std::io;

use thiserror::Error;
use zombie_trace_common::SpawnStack;

use crate::model::report::Frame;

/// Frames kept per stack; a spawn site is in the top few.
pub const MAX_FRAMES: usize = 64;

/// The user registers unwinding starts from: x86_64's `rip`, `rsp`, `rbp`;
/// aarch64's `pc`, `sp`, `x29`, and `x30` (`link`, where a function that
/// calls nothing keeps its return address; x86_64 has none). `bp` 0 when
/// unknown: CFI does not need it, frame pointers do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserRegs {
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
    pub link: u64,
}

#[derive(Debug, Error)]
pub enum StackError {
    #[error("the parent (pid {pid}) cannot be read: its memory map is gone with it")]
    ParentGone {
        pid: u32,
        #[source]
        source: io::Error,
    },
}

/// Unwinds and names spawn stacks; keep one for a session, for its caches.
#[derive(Default)]
pub struct Symbolizer {
    modules: unwind::ModuleCache,
    names: symbolize::Names,
}

impl Symbolizer {
    /// The frames of `capture` (from `kernel::stacks`), against its parent.
    pub fn resolve(&mut self, capture: &SpawnStack) -> Result<Vec<Frame>, StackError> {
        let len = (capture.len as usize).min(capture.stack.len());
        let regs = UserRegs {
            ip: capture.ip,
            sp: capture.sp,
            bp: capture.bp,
            link: if cfg!(target_arch = "aarch64") {
                capture.link
            } else {
                0
            },
        };
        let stack = &capture.stack[..len];
        let mut frames = self.spawn_stack(capture.parent_tgid, regs, stack, capture.sp)?;
        // x86_64 glibc's `vfork` pops its return address into `rdi` before
        // the system call (its CFI says so, and the unwinder follows only
        // `rip`, `rsp` and `rbp`): the walk stops there, and goes on from
        // that address, with the stack as the caller left it. Python's
        // `subprocess` forks this way. (aarch64's keeps it in `x30`, which
        // the unwinder follows.)
        let in_vfork = |f: &Frame| f.symbol.as_deref().is_some_and(|s| s.ends_with("vfork"));
        if cfg!(target_arch = "x86_64")
            && let [only] = frames.as_slice()
            && in_vfork(only)
            && capture.link != 0
        {
            let caller = UserRegs {
                ip: capture.link,
                ..regs
            };
            frames.extend(self.spawn_stack(capture.parent_tgid, caller, stack, capture.sp)?);
        }
        Ok(frames)
    }

    /// The frames of a stack of process `pid`: `regs` where it stopped,
    /// `stack` the bytes of its stack from address `stack_base_sp` up.
    /// `pid` must still run the program it ran then: its maps and files
    /// are read now.
    pub fn spawn_stack(
        &mut self,
        pid: u32,
        regs: UserRegs,
        stack: &[u8],
        stack_base_sp: u64,
    ) -> Result<Vec<Frame>, StackError> {
        let maps = maps::read(pid).map_err(|source| StackError::ParentGone { pid, source })?;
        let addresses = unwind::unwind(
            &mut self.modules,
            pid,
            &maps,
            regs,
            stack,
            stack_base_sp,
            MAX_FRAMES,
        );
        // A return address is just past its call: the call is what to name.
        let lookups: Vec<u64> = addresses.iter().map(|a| a.address_for_lookup()).collect();
        let names = self.names.lookup(pid, &maps, &lookups);
        Ok(addresses
            .iter()
            .zip(&lookups)
            .zip(names)
            .map(|((address, &lookup), name)| {
                let address = address.address();
                Frame {
                    address,
                    symbol: name.symbol,
                    offset: name.offset.map(|o| o + (address - lookup)),
                    file: name.file,
                    line: name.line,
                    module: maps
                        .iter()
                        .find(|m| (m.start..m.end).contains(&address))
                        .map(|m| m.path.display().to_string()),
                }
            })
            .collect())
    }
}
