//! Wait facts and zombies as the unit tests of the diagnosis, the
//! encoders, the metrics and the reporter build them.

use std::time::{Duration, UNIX_EPOCH};

use super::{
    diagnosis::{Cause, Diagnosis},
    event::{Comm, ExitStatus, WaitSyscall, WaitTarget},
    process::{Handler, Placement, ProcessInfo, RecentWait, TargetState, WaitNow, WaitStats},
    report::Zombie,
};

/// Zombie 4242 named `comm`, a child of 4200 (`parent`), that never waited.
pub fn zombie(comm: &[u8], parent: Option<ProcessInfo>) -> Zombie {
    Zombie {
        command: None,
        spawn_stack: None,
        ts: UNIX_EPOCH + Duration::from_millis(1_700_000_054_123),
        pid: 4242,
        comm: Comm::new(comm),
        status: Some(ExitStatus::Exited(0)),
        age_ns: Some(5_000_000_000),
        preexisting: false,
        ppid_at_exit: Some(4200),
        original_parent: None,
        ppid: 4200,
        parent,
        placement: Placement::default(),
        parent_waits: Some(WaitStats::default()),
        diagnosis: Diagnosis {
            cause: Cause::NeverWaited {
                handler: Handler::Default,
            },
            sigchld_blocked: false,
            exit_unknown: false,
        },
    }
}

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
