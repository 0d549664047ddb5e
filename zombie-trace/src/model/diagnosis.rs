//! Why a zombie is not reaped: a cause from a closed set, with the facts
//! that support it. `crate::diagnosis` decides it from what is known;
//! `output` says it in a sentence and gives its code to scripts.

use crate::model::{
    event::{ParentName, WaitSyscall},
    process::{Handler, RecentWait, WaitNow},
};

/// Since when a child has been a zombie, as far as is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    /// Its exit was seen.
    Exit,
    /// It was a zombie already when tracing began.
    TracingBegan,
}

/// Why a child is not reaped, and the facts that say so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// Its parent is gone: init or a subreaper adopts it.
    ParentGone,
    /// Adopted by pid 1, which has not reaped it.
    InitDoesNotReap,
    /// The parent is PID 1 of its own pid namespace (a container's), an
    /// application rather than an init: it reaps only what it waits for,
    /// never the orphans handed to it.
    ContainerInitDoesNotReap {
        /// The container's name, else its short id, when known.
        container: Option<String>,
        /// The parent that forked the child, when the child was adopted.
        adopted_from: Option<ParentName>,
    },
    /// The parent is stopped (by SIGSTOP, or by its tracer).
    ParentStopped { by_tracer: bool },
    /// The parent's main thread exited; the others must reap.
    ParentMainThreadExited { threads_left: u32 },
    /// The parent is exiting itself.
    ParentExiting,
    /// Blocked in a wait call that names this child (or any child), whose
    /// options leave it out.
    WaitOptionsExclude { syscall: WaitSyscall },
    /// Blocked now in wait calls for other children (one a thread).
    BlockedOnOtherChildren { calls: Vec<WaitNow> },
    /// No wait call is in progress, and the finished ones are not traced.
    WaitsNotTraced,
    /// No wait call since tracing began.
    NeverWaited { handler: Handler },
    /// Its wait calls all came before `since`.
    NoWaitSince {
        since: Since,
        calls: u64,
        /// How long before `since` the last one was.
        gap_ns: u64,
        handler: Handler,
    },
    /// The targets asked for since the child died (since tracing began
    /// when that is unknown) are all others.
    WaitsForOtherChildren {
        since: Option<Since>,
        /// Newest first.
        targets: Vec<RecentWait>,
        last_ago_ns: u64,
        /// No target asked for since can have been pushed out of the list.
        whole: bool,
    },
    /// Reaps some children, not this one: one wait per SIGCHLD.
    OneWaitPerSigchld { reaped: u64 },
    /// Polls with `WNOHANG` that collect nothing.
    PollsFindNothing { empty: u64, last_ago_ns: u64 },
    /// Its wait calls fail.
    WaitCallsFail { errors: u64 },
    /// Only peeks at children (`WNOWAIT`).
    OnlyPeeks,
    /// Calls wait without collecting this child, for no reason seen.
    WaitedWithoutCollecting { calls: u64 },
}

impl Cause {
    /// The stable code of the JSON `cause` field.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ParentGone => "parent_gone",
            Self::InitDoesNotReap => "init_does_not_reap",
            Self::ContainerInitDoesNotReap { .. } => "container_init_does_not_reap",
            Self::ParentStopped { by_tracer: false } => "parent_stopped",
            Self::ParentStopped { by_tracer: true } => "parent_stopped_by_tracer",
            Self::ParentMainThreadExited { .. } => "parent_main_thread_exited",
            Self::ParentExiting => "parent_exiting",
            Self::WaitOptionsExclude { .. } => "wait_options_exclude_child",
            Self::BlockedOnOtherChildren { .. } => "blocked_on_other_children",
            Self::WaitsNotTraced => "waits_not_traced",
            Self::NeverWaited { .. } => "never_waited",
            Self::NoWaitSince { .. } => "no_wait_since_exit",
            Self::WaitsForOtherChildren { .. } => "waits_for_other_children",
            Self::OneWaitPerSigchld { .. } => "one_wait_per_sigchld",
            Self::PollsFindNothing { .. } => "polls_find_nothing",
            Self::WaitCallsFail { .. } => "wait_calls_fail",
            Self::OnlyPeeks => "only_peeks",
            Self::WaitedWithoutCollecting { .. } => "waited_without_collecting",
        }
    }
}

/// Why a child is not reaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnosis {
    pub cause: Cause,
    /// The parent blocks SIGCHLD as well.
    pub sigchld_blocked: bool,
    /// When the child exited is unknown: its exit was not seen and it was
    /// not a zombie when tracing began (a lost record).
    pub exit_unknown: bool,
}
