//! Why a zombie is not reaped, from what is known of it and its parent:
//! pure, typed facts in, a typed [`Diagnosis`] out (`output` says it). It
//! reasons only from what is known: without the child's exit time it makes
//! no claim about what the parent did since, and a wait call in progress is
//! named with what it waits for.

use crate::model::{
    diagnosis::{Cause, Diagnosis, Since},
    event::{ParentName, WaitTarget},
    process::{Handler, Placement, ProcessInfo, RecentWait, Sigchld, WaitNow, WaitStats},
    report::Zombie,
};

/// What is known of a zombie when it is diagnosed.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    pub pid: u32,
    pub placement: &'a Placement,
    /// Since its exit, when its exit was seen.
    pub age_ns: Option<u64>,
    /// It was a zombie already when tracing began.
    pub preexisting: bool,
    /// The parent that forked it, when another has it now.
    pub original_parent: Option<ParentName>,
    /// `None` when the parent is gone.
    pub parent: Option<&'a ProcessInfo>,
    /// `None` when wait calls are not traced.
    pub parent_waits: Option<&'a WaitStats>,
}

impl<'a> Facts<'a> {
    /// What zombie `z` says of itself and its parent (its own diagnosis
    /// aside).
    pub fn of(z: &'a Zombie) -> Self {
        Self {
            pid: z.pid,
            placement: &z.placement,
            age_ns: z.age_ns,
            preexisting: z.preexisting,
            original_parent: z.original_parent,
            parent: z.parent.as_ref(),
            parent_waits: z.parent_waits.as_ref(),
        }
    }
}

/// Why `child` is not reaped; `now_ns` is when the facts were read and
/// `tracing_since_ns` when tracing began (boot ns).
pub fn diagnose(child: &Facts<'_>, now_ns: u64, tracing_since_ns: u64) -> Diagnosis {
    let (cause, sigchld) = match child.parent {
        None => (Cause::ParentGone, None),
        Some(parent) => (
            cause(child, parent, now_ns, tracing_since_ns),
            parent.sigchld,
        ),
    };
    let says_blocked = !matches!(
        cause,
        Cause::ParentGone
            | Cause::InitDoesNotReap
            | Cause::ContainerInitDoesNotReap { .. }
            | Cause::ParentStopped { .. }
            | Cause::ParentMainThreadExited { .. }
            | Cause::ParentExiting
    );
    Diagnosis {
        sigchld_blocked: says_blocked && sigchld.is_some_and(|s| s.blocked),
        exit_unknown: child.age_ns.is_none() && !child.preexisting && child.parent_waits.is_some(),
        cause,
    }
}

fn cause(child: &Facts<'_>, parent: &ProcessInfo, now_ns: u64, tracing_since_ns: u64) -> Cause {
    if parent.pid == 1 {
        return Cause::InitDoesNotReap;
    }
    let cause = parent_cause(child, parent, now_ns, tracing_since_ns);
    // A container's PID 1 that does not wait for an orphan handed to it:
    // whatever its wait calls are for, the fix is an init in front of it.
    // Not for a child it forked itself (behind an init it would still leak
    // it), unless that is unknown (its exit was not seen); and one that
    // polls, peeks or fails keeps that diagnosis (a real init that
    // misbehaves).
    let not_for_this_child = matches!(
        cause,
        Cause::BlockedOnOtherChildren { .. }
            | Cause::WaitsNotTraced
            | Cause::NeverWaited { .. }
            | Cause::NoWaitSince { .. }
            | Cause::WaitsForOtherChildren { .. }
    );
    let maybe_adopted = child.original_parent.is_some() || child.age_ns.is_none();
    if parent.placement.ns_pid == Some(1) && not_for_this_child && maybe_adopted {
        return Cause::ContainerInitDoesNotReap {
            container: parent
                .placement
                .names
                .name
                .clone()
                .or_else(|| parent.placement.container_id.clone()),
            adopted_from: child.original_parent,
        };
    }
    cause
}

/// Why a parent that is not the host's init has not reaped `child`.
fn parent_cause(
    child: &Facts<'_>,
    parent: &ProcessInfo,
    now_ns: u64,
    tracing_since_ns: u64,
) -> Cause {
    match parent.state {
        'T' => return Cause::ParentStopped { by_tracer: false },
        't' => return Cause::ParentStopped { by_tracer: true },
        'Z' | 'X' if parent.threads > 1 => {
            return Cause::ParentMainThreadExited {
                threads_left: parent.threads - 1,
            };
        }
        'Z' | 'X' => return Cause::ParentExiting,
        _ => {}
    }
    let handler = parent.sigchld.map_or(Handler::Default, Sigchld::handler);
    // This child's pid as the parent names it: the host's, or, for a parent
    // in a pid namespace of its own, the child's innermost one.
    let own_pid = if parent.placement.ns_pid.is_none() {
        i32::try_from(child.pid).ok()
    } else {
        child.placement.ns_pid.and_then(|p| i32::try_from(p).ok())
    };
    let names_this =
        |target: &WaitTarget| matches!(target, WaitTarget::Pid(p) if Some(*p) == own_pid);

    let blocking: Vec<&WaitNow> = parent.waits_now.iter().filter(|w| w.blocks()).collect();
    if !blocking.is_empty() {
        // A call for any child, or for this one, that still blocks: its
        // options leave this child out. Groups and pidfds whose pid is not
        // known are described as they are.
        let collects_this = |w: &&WaitNow| match (w.target, w.child) {
            (_, Some(child_pid)) => child_pid == child.pid,
            (target, None) => matches!(target, WaitTarget::Any) || names_this(&target),
        };
        if let Some(call) = blocking.iter().find(|w| collects_this(w)) {
            return Cause::WaitOptionsExclude {
                syscall: call.syscall,
            };
        }
        return Cause::BlockedOnOtherChildren {
            calls: blocking.into_iter().cloned().collect(),
        };
    }

    let Some(waits) = child.parent_waits else {
        return Cause::WaitsNotTraced;
    };
    if waits.calls == 0 {
        return Cause::NeverWaited { handler };
    }
    let last_ns = waits.last_ns.unwrap_or(now_ns);
    let last_ago_ns = now_ns.saturating_sub(last_ns);
    // Since when the child has been a zombie, as far as is known.
    let exited = match (child.age_ns, child.preexisting) {
        (Some(age), _) => Some((now_ns.saturating_sub(age), Since::Exit)),
        (None, true) => Some((tracing_since_ns, Since::TracingBegan)),
        (None, false) => None,
    };
    if let Some((exited_ns, since)) = exited
        && last_ns < exited_ns
    {
        return Cause::NoWaitSince {
            since,
            calls: waits.calls,
            gap_ns: exited_ns.saturating_sub(last_ns),
            handler,
        };
    }
    // The targets asked for since the child died (since tracing began when
    // that is unknown): none for any child, none for this one?
    let since_ns = exited.map_or(0, |(ns, _)| ns);
    let asked: Vec<&RecentWait> = waits
        .targets
        .iter()
        .filter(|t| t.last_ns >= since_ns)
        .collect();
    if !asked.is_empty()
        && asked
            .iter()
            .all(|t| !matches!(t.target, WaitTarget::Any) && !names_this(&t.target))
    {
        return Cause::WaitsForOtherChildren {
            since: exited.map(|(_, since)| since),
            targets: asked.into_iter().cloned().collect(),
            last_ago_ns,
            whole: waits.all_targets_since(since_ns),
        };
    }
    if waits.reaped > 0 {
        Cause::OneWaitPerSigchld {
            reaped: waits.reaped,
        }
    } else if waits.empty > 0 {
        Cause::PollsFindNothing {
            empty: waits.empty,
            last_ago_ns,
        }
    } else if waits.errors > 0 {
        Cause::WaitCallsFail {
            errors: waits.errors,
        }
    } else if waits.peeks > 0 {
        Cause::OnlyPeeks
    } else {
        Cause::WaitedWithoutCollecting { calls: waits.calls }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        event::{WNOHANG, WaitSyscall},
        fixtures::{recent, waiting, waits},
    };

    const SEC: u64 = 1_000_000_000;
    /// Facts are read at 100 s (boot time); tracing began at 10 s.
    const NOW: u64 = 100 * SEC;
    const SINCE: u64 = 10 * SEC;
    const CHILD: u32 = 4242;

    fn parent() -> ProcessInfo {
        ProcessInfo {
            pid: 4200,
            comm: b"python3".to_vec(),
            state: 'S',
            sigchld: Some(Sigchld {
                ignored: false,
                caught: false,
                blocked: false,
            }),
            threads: 1,
            ..ProcessInfo::default()
        }
    }

    /// What `diagnose` says of child 4242 of `parent`, dead for `age`.
    fn of(parent: Option<&ProcessInfo>, waits: Option<&WaitStats>, age: Option<u64>) -> Diagnosis {
        let placement = Placement::default();
        let facts = Facts {
            pid: CHILD,
            placement: &placement,
            age_ns: age,
            preexisting: false,
            original_parent: None,
            parent,
            parent_waits: waits,
        };
        diagnose(&facts, NOW, SINCE)
    }

    fn cause(parent: &ProcessInfo, waits: Option<&WaitStats>, age: Option<u64>) -> Cause {
        of(Some(parent), waits, age).cause
    }

    fn with(f: impl FnOnce(&mut ProcessInfo)) -> ProcessInfo {
        let mut p = parent();
        f(&mut p);
        p
    }

    #[test]
    fn the_parent_itself() {
        assert_eq!(of(None, None, Some(SEC)).cause, Cause::ParentGone);
        let none = WaitStats::default();
        let c = |p: ProcessInfo| cause(&p, Some(&none), Some(SEC));
        assert_eq!(c(with(|p| p.pid = 1)), Cause::InitDoesNotReap);
        assert_eq!(
            c(with(|p| p.state = 'T')),
            Cause::ParentStopped { by_tracer: false }
        );
        assert_eq!(
            c(with(|p| p.state = 't')),
            Cause::ParentStopped { by_tracer: true }
        );
        assert_eq!(
            c(with(|p| {
                p.state = 'Z';
                p.threads = 3;
            })),
            Cause::ParentMainThreadExited { threads_left: 2 }
        );
        assert_eq!(c(with(|p| p.state = 'X')), Cause::ParentExiting);
    }

    #[test]
    fn sigchld_handling_when_it_never_waited() {
        let none = WaitStats::default();
        for (ignored, caught, handler) in [
            (false, false, Handler::Default),
            (true, false, Handler::Ignored),
            (false, true, Handler::Caught),
        ] {
            let p = with(|p| {
                p.sigchld = Some(Sigchld {
                    ignored,
                    caught,
                    blocked: true,
                });
            });
            let d = of(Some(&p), Some(&none), Some(SEC));
            assert_eq!(d.cause, Cause::NeverWaited { handler });
            assert!(d.sigchld_blocked);
        }
        // Blocking SIGCHLD is no fact about a stopped parent.
        let stopped = with(|p| {
            p.state = 'T';
            p.sigchld = Some(Sigchld {
                ignored: false,
                caught: false,
                blocked: true,
            });
        });
        assert!(!of(Some(&stopped), Some(&none), Some(SEC)).sigchld_blocked);
        assert_eq!(cause(&parent(), None, None), Cause::WaitsNotTraced);
    }

    #[test]
    fn calls_in_progress_decide_whatever_the_tallies() {
        let blocked = |calls: Vec<WaitNow>| {
            cause(
                &with(|p| p.waits_now = calls),
                Some(&waits(
                    21,
                    NOW - SEC,
                    vec![recent(WaitTarget::Pid(9), NOW - SEC, None)],
                )),
                Some(5 * SEC),
            )
        };
        let for_77 = waiting(4200, WaitTarget::Pid(77), Some(77));
        assert_eq!(
            blocked(vec![for_77.clone()]),
            Cause::BlockedOnOtherChildren {
                calls: vec![for_77.clone()]
            }
        );
        let two = vec![for_77, waiting(4201, WaitTarget::Pid(78), Some(78))];
        assert_eq!(
            blocked(two.clone()),
            Cause::BlockedOnOtherChildren { calls: two }
        );
        let group = waiting(4200, WaitTarget::Pgid(9), None);
        assert!(matches!(
            blocked(vec![group]),
            Cause::BlockedOnOtherChildren { .. }
        ));
        let unknown_pidfd = waiting(4200, WaitTarget::Pidfd(3), None);
        assert!(matches!(
            blocked(vec![unknown_pidfd]),
            Cause::BlockedOnOtherChildren { .. }
        ));
        // A blocking call that could collect this child: its options.
        for call in [
            waiting(4200, WaitTarget::Any, None),
            waiting(4200, WaitTarget::Pid(CHILD as i32), Some(CHILD)),
            waiting(4200, WaitTarget::Pidfd(3), Some(CHILD)),
        ] {
            assert_eq!(
                blocked(vec![call]),
                Cause::WaitOptionsExclude {
                    syscall: WaitSyscall::Wait4
                }
            );
        }
        // A WNOHANG call caught in flight blocks nothing.
        let polling = WaitNow {
            options: WNOHANG,
            ..waiting(4200, WaitTarget::Pid(77), Some(77))
        };
        assert_eq!(
            cause(&with(|p| p.waits_now = vec![polling]), None, None),
            Cause::WaitsNotTraced
        );
        // In a pid namespace, the parent names this child by its pid there.
        let contained = with(|p| {
            p.placement.ns_pid = Some(12);
            p.waits_now = vec![waiting(4200, WaitTarget::Pid(7), None)];
        });
        let placement = Placement {
            ns_pid: Some(7),
            ..Placement::default()
        };
        let facts = Facts {
            pid: CHILD,
            placement: &placement,
            age_ns: None,
            preexisting: false,
            original_parent: None,
            parent: Some(&contained),
            parent_waits: None,
        };
        assert!(matches!(
            diagnose(&facts, NOW, SINCE).cause,
            Cause::WaitOptionsExclude { .. }
        ));
    }

    #[test]
    fn calls_made_since_the_child_died() {
        let p = parent();
        let exited = NOW - 5 * SEC;
        // All before it died.
        assert_eq!(
            cause(&p, Some(&waits(3, exited - 2 * SEC, vec![])), Some(5 * SEC)),
            Cause::NoWaitSince {
                since: Since::Exit,
                calls: 3,
                gap_ns: 2 * SEC,
                handler: Handler::Default,
            }
        );
        // Since, only for other pids; the first ever do not count.
        let others = vec![
            recent(WaitTarget::Pid(123), NOW - SEC, None),
            recent(WaitTarget::Pid(124), NOW - 2 * SEC, None),
            recent(WaitTarget::Any, exited - SEC, None),
        ];
        let d = of(
            Some(&p),
            Some(&waits(30, NOW - SEC, others.clone())),
            Some(5 * SEC),
        );
        assert_eq!(
            d.cause,
            Cause::WaitsForOtherChildren {
                since: Some(Since::Exit),
                targets: others[..2].to_vec(),
                last_ago_ns: SEC,
                whole: true,
            }
        );
        assert!(!d.exit_unknown);
        // Exit unknown (a lost record): everything since tracing began
        // counts, and it says the exit is unknown.
        let d = of(Some(&p), Some(&waits(30, NOW - SEC, others)), None);
        assert_eq!(d.cause, Cause::WaitedWithoutCollecting { calls: 30 });
        assert!(d.exit_unknown);
        let lately = vec![recent(WaitTarget::Pid(123), NOW - SEC, None)];
        let d = of(Some(&p), Some(&waits(5, NOW - SEC, lately.clone())), None);
        assert_eq!(
            d.cause,
            Cause::WaitsForOtherChildren {
                since: None,
                targets: lately,
                last_ago_ns: SEC,
                whole: true,
            }
        );
        // A full list, every target since it died: others may have been
        // pushed out. (Threads racing in the kernel can leave a full list
        // with fewer distinct targets.)
        let many = WaitStats {
            full: true,
            ..waits(
                40,
                NOW - SEC,
                (0..5)
                    .map(|i| recent(WaitTarget::Pid(200 + i), NOW - SEC - i as u64, None))
                    .collect(),
            )
        };
        assert!(matches!(
            cause(&p, Some(&many), Some(5 * SEC)),
            Cause::WaitsForOtherChildren { whole: false, .. }
        ));
        // Its own pid asked for: not "for others".
        let own = vec![recent(WaitTarget::Pid(CHILD as i32), NOW - SEC, None)];
        assert_eq!(
            cause(&p, Some(&waits(1, NOW - SEC, own)), Some(5 * SEC)),
            Cause::WaitedWithoutCollecting { calls: 1 }
        );
    }

    #[test]
    fn a_zombie_from_before_tracing_counts_from_then() {
        let placement = Placement::default();
        let p = parent();
        let before = waits(1, SINCE - 5_000_000, vec![]);
        let facts = Facts {
            pid: CHILD,
            placement: &placement,
            age_ns: None,
            preexisting: true,
            original_parent: None,
            parent: Some(&p),
            parent_waits: Some(&before),
        };
        let d = diagnose(&facts, NOW, SINCE);
        assert_eq!(
            d.cause,
            Cause::NoWaitSince {
                since: Since::TracingBegan,
                calls: 1,
                gap_ns: 5_000_000,
                handler: Handler::Default,
            }
        );
        assert!(!d.exit_unknown, "it was a zombie before tracing began");
    }

    #[test]
    fn what_calls_for_any_child_achieved() {
        let any = |f: fn(&mut WaitStats)| {
            let mut w = waits(2, NOW - SEC, vec![recent(WaitTarget::Any, NOW - SEC, None)]);
            f(&mut w);
            cause(&parent(), Some(&w), Some(5 * SEC))
        };
        assert_eq!(
            any(|w| w.reaped = 1),
            Cause::OneWaitPerSigchld { reaped: 1 }
        );
        assert_eq!(
            any(|w| w.empty = 2),
            Cause::PollsFindNothing {
                empty: 2,
                last_ago_ns: SEC
            }
        );
        assert_eq!(any(|w| w.errors = 2), Cause::WaitCallsFail { errors: 2 });
        assert_eq!(any(|w| w.peeks = 2), Cause::OnlyPeeks);
        assert_eq!(any(|_| ()), Cause::WaitedWithoutCollecting { calls: 2 });
    }

    #[test]
    fn a_containers_pid_1_needs_an_init() {
        let init = |f: fn(&mut ProcessInfo)| {
            with(|p| {
                p.placement.ns_pid = Some(1);
                p.placement.container_id = Some("0123456789ab".into());
                f(p);
            })
        };
        let sh = ParentName {
            pid: 77,
            comm: crate::model::event::Comm::new(b"sh"),
        };
        let cause_of = |parent: &ProcessInfo, waits: Option<&WaitStats>| {
            let placement = Placement::default();
            let facts = Facts {
                pid: CHILD,
                placement: &placement,
                age_ns: Some(SEC),
                preexisting: false,
                original_parent: Some(sh),
                parent: Some(parent),
                parent_waits: waits,
            };
            diagnose(&facts, NOW, SINCE).cause
        };
        let never = waits(0, 0, vec![]);
        assert_eq!(
            cause_of(&init(|_| ()), Some(&never)),
            Cause::ContainerInitDoesNotReap {
                container: Some("0123456789ab".into()),
                adopted_from: Some(sh),
            }
        );
        // Named by its runtime: the name, not the id.
        let named = init(|p| p.placement.names.name = Some("web".into()));
        assert!(matches!(
            cause_of(&named, None),
            Cause::ContainerInitDoesNotReap { container: Some(c), .. } if c == "web"
        ));
        // Stopped, or a real init that polls: that diagnosis stands.
        assert_eq!(
            cause_of(&init(|p| p.state = 'T'), Some(&never)),
            Cause::ParentStopped { by_tracer: false }
        );
        let polls = WaitStats {
            empty: 3,
            ..waits(3, NOW - SEC / 2, vec![])
        };
        assert!(matches!(
            cause_of(&init(|_| ()), Some(&polls)),
            Cause::PollsFindNothing { .. }
        ));
        // One it forked itself, its exit seen: its own leak, not an init's.
        let placement = Placement::default();
        let own = Facts {
            pid: CHILD,
            placement: &placement,
            age_ns: Some(SEC),
            preexisting: false,
            original_parent: None,
            parent: Some(&init(|_| ())),
            parent_waits: Some(&never),
        };
        assert_eq!(
            diagnose(&own, NOW, SINCE).cause,
            Cause::NeverWaited {
                handler: Handler::Default
            }
        );
        // The host's pid namespace: no container.
        assert_eq!(
            cause_of(&parent(), Some(&never)),
            Cause::NeverWaited {
                handler: Handler::Default
            }
        );
    }

    #[test]
    fn codes_are_distinct() {
        let causes = [
            Cause::ParentGone,
            Cause::InitDoesNotReap,
            Cause::ContainerInitDoesNotReap {
                container: None,
                adopted_from: None,
            },
            Cause::ParentStopped { by_tracer: false },
            Cause::ParentStopped { by_tracer: true },
            Cause::ParentMainThreadExited { threads_left: 1 },
            Cause::ParentExiting,
            Cause::WaitOptionsExclude {
                syscall: WaitSyscall::Wait4,
            },
            Cause::BlockedOnOtherChildren { calls: vec![] },
            Cause::WaitsNotTraced,
            Cause::NeverWaited {
                handler: Handler::Default,
            },
            Cause::NoWaitSince {
                since: Since::Exit,
                calls: 1,
                gap_ns: 1,
                handler: Handler::Default,
            },
            Cause::WaitsForOtherChildren {
                since: None,
                targets: vec![],
                last_ago_ns: 0,
                whole: true,
            },
            Cause::OneWaitPerSigchld { reaped: 1 },
            Cause::PollsFindNothing {
                empty: 1,
                last_ago_ns: 0,
            },
            Cause::WaitCallsFail { errors: 1 },
            Cause::OnlyPeeks,
            Cause::WaitedWithoutCollecting { calls: 1 },
        ];
        let mut codes: Vec<&str> = causes.iter().map(Cause::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), causes.len());
    }
}
