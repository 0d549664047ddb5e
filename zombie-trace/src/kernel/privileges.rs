//! Capabilities once the programs are attached: only what the rest of a
//! run needs stays, in every set, so that a tracer left running for days
//! as root holds as little as it can.

use caps::{CapSet, Capability, CapsHashSet};
use thiserror::Error;

/// What a run needs after attaching:
/// - `CAP_BPF`: the `bpf()` calls on the maps' descriptors (kernels with
///   unprivileged BPF disabled, the distributions' default, check it);
/// - `CAP_SYS_PTRACE` and `CAP_DAC_READ_SEARCH`: other users' `/proc/PID`
///   entries that describe a parent (`syscall`, `wchan`) are behind a
///   ptrace access check, and `syscall` is readable by its owner only.
pub const KEPT: [Capability; 3] = [
    Capability::CAP_BPF,
    Capability::CAP_SYS_PTRACE,
    Capability::CAP_DAC_READ_SEARCH,
];

#[derive(Debug, Error)]
#[error("cannot drop capabilities: {0}")]
pub struct DropError(#[from] caps::errors::CapsError);

/// Drops every capability but [`KEPT`] from this thread's sets (the tracer
/// runs on one thread), the bounding set included while `CAP_SETPCAP`
/// allows it; returns what is left.
pub fn drop_all_but_kept() -> Result<CapsHashSet, DropError> {
    let kept: CapsHashSet = KEPT.into_iter().collect();
    if caps::has_cap(None, CapSet::Effective, Capability::CAP_SETPCAP)? {
        for cap in caps::runtime::thread_all_supported() {
            if !kept.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap)?;
            }
        }
    }
    caps::clear(None, CapSet::Ambient)?;
    caps::clear(None, CapSet::Inheritable)?;
    let left: CapsHashSet = caps::read(None, CapSet::Permitted)?
        .intersection(&kept)
        .copied()
        .collect();
    // Effective first: it may never hold more than permitted.
    caps::set(None, CapSet::Effective, &left)?;
    caps::set(None, CapSet::Permitted, &left)?;
    Ok(left)
}
