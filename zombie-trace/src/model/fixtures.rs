//! Wait facts as the unit tests of the diagnosis, the encoders and the
//! reporter build them.

use super::{
    event::{WaitSyscall, WaitTarget},
    process::{RecentWait, TargetState, WaitNow, WaitStats},
};

/// `calls` wait calls, the last at `last_ns`, that asked for `targets`.
pub fn waits(calls: u64, last_ns: u64, targets: Vec<RecentWait>) -> WaitStats {
    WaitStats {
        calls,
        last_ns: Some(last_ns),
        targets,
        ..WaitStats::default()
    }
}

pub fn recent(target: WaitTarget, last_ns: u64, state: Option<TargetState>) -> RecentWait {
    RecentWait {
        target,
        last_ns,
        state,
    }
}

/// Thread `tid` blocked in `wait4` for `target`, whose host pid is
/// `child`, a live child.
pub fn waiting(tid: u32, target: WaitTarget, child: Option<u32>) -> WaitNow {
    WaitNow {
        tid,
        syscall: WaitSyscall::Wait4,
        target,
        options: 0,
        child,
        state: child.map(|_| TargetState::LiveChild),
    }
}
