//! A [`Diagnosis`] said in one sentence, for people (the text line, and
//! JSON's `diagnosis`). The parent's name goes in raw (lossy UTF-8); the
//! text encoder escapes the whole sentence.

use std::fmt::Write as _;

use super::{human_ms, ms};
use crate::model::{
    diagnosis::{Cause, Diagnosis, Since},
    event::WaitTarget,
    process::{Handler, RecentWait, TargetState, WaitNow},
};

/// The sentence for `d`, whose zombie's parent is called `name`.
pub fn sentence(d: &Diagnosis, name: &str) -> String {
    let blocked = if d.sigchld_blocked {
        ", and SIGCHLD is blocked"
    } else {
        ""
    };
    let unknown = if d.exit_unknown {
        " (when this child exited is unknown: its exit was not seen)"
    } else {
        ""
    };
    let ago = |ns: u64| human_ms(ms(ns));
    match &d.cause {
        Cause::ParentGone => {
            "the parent is gone: init or a subreaper adopts the child and should reap it".to_owned()
        }
        Cause::InitDoesNotReap => format!(
            "adopted by init (pid 1, {name}) after its parent exited without reaping: init \
             should reap it; if it stays, this pid 1 does not reap orphans (in a container, \
             run an init such as tini or `docker run --init`)"
        ),
        Cause::ContainerInitDoesNotReap {
            container,
            adopted_from,
        } => {
            let of = container.as_deref().map_or_else(
                || "its pid namespace".to_owned(),
                |c| format!("container {c}"),
            );
            let what = match adopted_from {
                Some(p) => format!(
                    "does not reap orphans: this child was adopted after its parent {} ({}) \
                     exited",
                    p.pid,
                    p.comm.to_string_lossy()
                ),
                None => "has not reaped this child, whose exit was not seen (adopted, or \
                         its own)"
                    .to_owned(),
            };
            format!(
                "parent {name} is PID 1 of {of} and {what}; PID 1 of a container must reap \
                 for everything in it: run an init there (docker/podman run --init, tini, \
                 dumb-init; in Kubernetes shareProcessNamespace: true); killing it restarts \
                 the container and does not fix the leak"
            )
        }
        Cause::ParentStopped { by_tracer: false } => format!(
            "parent {name} is stopped (SIGSTOP/ptrace): it cannot reap until it is continued"
        ),
        Cause::ParentStopped { by_tracer: true } => {
            format!("parent {name} is stopped by its tracer (ptrace): it cannot reap until resumed")
        }
        Cause::ParentMainThreadExited { threads_left } => format!(
            "the main thread of parent {name} has exited: one of its {threads_left} remaining threads must reap"
        ),
        Cause::ParentExiting => format!(
            "parent {name} is exiting: init or a subreaper adopts the child and should reap it"
        ),
        Cause::WaitOptionsExclude { syscall } => format!(
            "parent {name} is blocked in {}() yet has not collected this child: check its \
             wait options (WEXITED; __WALL for children that do not signal SIGCHLD){blocked}",
            syscall.name()
        ),
        Cause::BlockedOnOtherChildren { calls } => {
            let threads = calls.len() > 1;
            let texts: Vec<String> = calls.iter().map(|w| call_text(w, threads)).collect();
            let until = match &calls[..] {
                [w] => match (w.target, w.child) {
                    (WaitTarget::Pid(p), _) => format!("this one will wait until {p} exits"),
                    (WaitTarget::Pidfd(_), Some(child)) => {
                        format!("this one will wait until {child} exits")
                    }
                    (WaitTarget::Pgid(_), _) => {
                        "this child may be in another group, and will wait until that call returns"
                            .to_owned()
                    }
                    _ => "this one will wait until that call returns".to_owned(),
                },
                _ => "this one will wait until one of them returns".to_owned(),
            };
            format!(
                "parent {name} is blocked in {}; {until}{blocked}",
                texts.join(", and in ")
            )
        }
        Cause::WaitsNotTraced => format!(
            "parent {name} has not reaped this child{blocked} \
             (wait calls are not traced: see its state and syscall)"
        ),
        Cause::NeverWaited {
            handler: Handler::Ignored,
        } => format!(
            "parent {name} ignores SIGCHLD, yet this child was not reaped at exit (it \
             exited first, or signals another way) and wait() was not called since tracing \
             began: it must reap it with waitpid{blocked}"
        ),
        Cause::NeverWaited {
            handler: Handler::Caught,
        } => format!(
            "parent {name} catches SIGCHLD but has not called wait() since tracing began: \
             its handler must reap (waitpid(-1, WNOHANG) in a loop){blocked}"
        ),
        Cause::NeverWaited {
            handler: Handler::Default,
        } => format!(
            "parent {name} has not called wait() since tracing began: it must reap its \
             children (waitpid, or SIGCHLD set to SIG_IGN){blocked}"
        ),
        Cause::NoWaitSince {
            since,
            calls,
            gap_ns,
            handler,
        } => {
            let since = match since {
                Since::Exit => "this child exited",
                Since::TracingBegan => "tracing began (this child was already a zombie)",
            };
            let fix = if *handler == Handler::Caught {
                "its SIGCHLD handler must reap (waitpid(-1, WNOHANG) in a loop)"
            } else {
                "it must reap its children (waitpid, or SIGCHLD set to SIG_IGN)"
            };
            format!(
                "parent {name} has not called wait() since {since} (its last of {calls} wait \
                 calls was {} before): {fix}{blocked}",
                ago(*gap_ns)
            )
        }
        Cause::WaitsForOtherChildren {
            since,
            targets,
            last_ago_ns,
            whole,
        } => {
            let list = targets
                .iter()
                .map(recent_text)
                .collect::<Vec<_>>()
                .join(", ");
            let last = ago(*last_ago_ns);
            // A group or a pidfd may hold this child: no claim about it then.
            let not_this = if targets
                .iter()
                .all(|t| matches!(t.target, WaitTarget::Pid(_)))
            {
                "not for this child"
            } else {
                "never for any child: this one may be in none of them"
            };
            match (since, whole) {
                (Some(since), true) => {
                    let since = match since {
                        Since::Exit => "since this child exited",
                        Since::TracingBegan => {
                            "since tracing began (this child was already a zombie)"
                        }
                    };
                    format!(
                        "{since}, parent {name} has waited only for {list} (last {last} ago), \
                         {not_this}{blocked}"
                    )
                }
                (None, true) => format!(
                    "parent {name} has waited only for {list} since tracing began (last {last} \
                     ago), {not_this}{unknown}{blocked}"
                ),
                (_, false) => format!(
                    "parent {name}'s most recent wait calls (last {last} ago) were for {list}, \
                     {not_this}{unknown}{blocked}"
                ),
            }
        }
        Cause::OneWaitPerSigchld { reaped } => format!(
            "parent {name} reaps some children ({reaped} so far) but not this one: one wait per \
             SIGCHLD misses children that exit together (loop on waitpid(-1, WNOHANG)){unknown}{blocked}"
        ),
        Cause::PollsFindNothing { empty, last_ago_ns } => format!(
            "parent {name} polls with WNOHANG ({empty} empty polls, the last {} ago) but has \
             collected nothing, not even this child{unknown}{blocked}",
            ago(*last_ago_ns)
        ),
        Cause::WaitCallsFail { errors } => format!(
            "parent {name}'s wait calls fail ({errors} errors, e.g. ECHILD or EINTR) and collect \
             nothing{unknown}{blocked}"
        ),
        Cause::OnlyPeeks => format!(
            "parent {name} only peeks at its children (WNOWAIT) and never collects them{unknown}{blocked}"
        ),
        Cause::WaitedWithoutCollecting { calls } => format!(
            "parent {name} called wait() {calls} times but has not collected this child{unknown}{blocked}"
        ),
    }
}

/// `wait4 for pid 123, a live child (thread 456)`.
fn call_text(w: &WaitNow, with_thread: bool) -> String {
    let mut out = format!("{} for {}", w.syscall.name(), target_text(&w.target));
    if let (WaitTarget::Pidfd(_), Some(child)) = (w.target, w.child) {
        let _ = write!(out, " (pid {child})");
    }
    out.push_str(match w.state {
        Some(TargetState::LiveChild) => ", a live child",
        Some(TargetState::ZombieChild) => ", a child that has exited too",
        Some(TargetState::NotAChild) => ", which is not its child",
        Some(TargetState::Gone) => ", which no longer exists",
        None => "",
    });
    if with_thread {
        let _ = write!(out, " (thread {})", w.tid);
    }
    out
}

/// `pid 77`, `process group 5`, `any child`.
fn target_text(target: &WaitTarget) -> String {
    match target {
        WaitTarget::Any => "any child".to_owned(),
        WaitTarget::Pid(n) => format!("pid {n}"),
        WaitTarget::Pgid(0) => "its own process group".to_owned(),
        WaitTarget::Pgid(n) => format!("process group {n}"),
        WaitTarget::Pidfd(n) => format!("pidfd {n}"),
    }
}

/// `pid 77 (no longer exists)`.
fn recent_text(t: &RecentWait) -> String {
    let mut out = target_text(&t.target);
    if let Some(state) = t.state
        && state != TargetState::LiveChild
    {
        out.push_str(match state {
            TargetState::ZombieChild => " (a zombie too)",
            TargetState::NotAChild => " (not its child now)",
            _ => " (no longer exists)",
        });
    }
    out
}
