//! Text for people under a flood of reports: per parent, the first few
//! zombie reports in a second are printed, the parent's details with the
//! first only, and the rest of that second is summed up in one line when it
//! ends; the reaps of reported zombies likewise per reaper. JSON (stdout or
//! `--output`) keeps one line per zombie and per reap: scripts count on
//! it. Pure: the caller passes the time (boot ns).

use std::collections::{HashMap, VecDeque};

use super::{parent_name, sentence::sentence};
use crate::model::report::{Reaped, Zombie};

/// `z`'s diagnosis in the sentence its line gives.
fn said(z: &Zombie) -> String {
    sentence(&z.diagnosis, &parent_name(z))
}

/// Lines printed per parent (or reaper) in a window before the rest is
/// summed up.
pub const SHOWN_PER_WINDOW: u32 = 3;
/// How long a window lasts.
pub const WINDOW_NS: u64 = 1_000_000_000;

/// How a zombie report is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    /// Whole, with the parent's details.
    Full,
    /// The child, and the parent by pid and name only (its details are on
    /// the line above); the diagnosis only when it differs from that line's.
    Brief { diagnosis: bool },
    /// Not printed: counted in the parent's [`Flood`] line.
    Held,
}

/// What a window sums up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Zombies reported, by their parent.
    Zombies,
    /// Reported zombies reaped, by their reaper (0: unknown).
    Reaps,
}

/// The lines of one parent (or reaper) that a window held back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flood {
    pub kind: Kind,
    /// The parent, or the reaper.
    pub pid: u32,
    pub comm: Vec<u8>,
    /// How many, with the lowest and highest pid among them.
    pub count: u64,
    pub min_pid: u32,
    pub max_pid: u32,
    /// Zombies: boot ns of the earliest exit among them, when any exit time
    /// is known.
    pub oldest_exit_ns: Option<u64>,
    /// Reaps: the longest time one had been a zombie, when known.
    pub longest_zombie_ns: Option<u64>,
    /// How long the window lasted, to its end.
    pub window_ns: u64,
}

impl Flood {
    /// The age of the oldest zombie among them at `now_ns`.
    pub fn oldest_age_ns(&self, now_ns: u64) -> Option<u64> {
        self.oldest_exit_ns.map(|t| now_ns.saturating_sub(t))
    }

    fn add(&mut self, pid: u32) {
        self.count += 1;
        self.min_pid = self.min_pid.min(pid);
        self.max_pid = self.max_pid.max(pid);
    }
}

struct Window {
    start_ns: u64,
    shown: u32,
    /// The diagnosis of the window's first zombie line, as said: two that
    /// differ only in facts the sentence rounds away read the same.
    diagnosis: String,
    held: Option<Flood>,
}

/// Per parent and per reaper, which lines a text stream prints.
#[derive(Default)]
pub struct FloodGate {
    windows: HashMap<(Kind, u32), Window>,
    /// The windows' keys in the order they opened, and so will end (the
    /// time only goes forward): closing the due ones does not look at the
    /// others, as it is asked before every line.
    opened: VecDeque<(Kind, u32)>,
}

impl FloodGate {
    /// How to print zombie `z`, reported at `now_ns`. A window that has run
    /// its course must have been closed by [`FloodGate::due`] first, so
    /// that its sum comes before the next window's lines.
    pub fn admit(&mut self, z: &Zombie, now_ns: u64) -> Shown {
        let window = self.window(Kind::Zombies, z.ppid, now_ns);
        if window.shown == 0 {
            window.shown = 1;
            window.diagnosis = said(z);
            return Shown::Full;
        }
        if window.shown < SHOWN_PER_WINDOW {
            window.shown += 1;
            return Shown::Brief {
                diagnosis: said(z) != window.diagnosis,
            };
        }
        let held = window.held.get_or_insert_with(|| Flood {
            comm: z
                .parent
                .as_ref()
                .map(|p| p.comm.clone())
                .unwrap_or_default(),
            ..Flood::new(Kind::Zombies, z.ppid, z.pid)
        });
        held.add(z.pid);
        let exit_ns = z.age_ns.map(|age| now_ns.saturating_sub(age));
        held.oldest_exit_ns = match (held.oldest_exit_ns, exit_ns) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Shown::Held
    }

    /// Whether to print the reap line of a reported zombie, reaped at
    /// `now_ns`; `false`: it is counted in the reaper's [`Flood`] line.
    pub fn admit_reap(&mut self, r: &Reaped, now_ns: u64) -> bool {
        let reaper = r.reaper_pid.unwrap_or(0);
        let window = self.window(Kind::Reaps, reaper, now_ns);
        if window.shown < SHOWN_PER_WINDOW {
            window.shown += 1;
            return true;
        }
        let held = window.held.get_or_insert_with(|| Flood {
            comm: r
                .reaper_comm
                .map(|c| c.as_bytes().to_vec())
                .unwrap_or_default(),
            ..Flood::new(Kind::Reaps, reaper, r.pid)
        });
        held.add(r.pid);
        held.longest_zombie_ns = held.longest_zombie_ns.max(r.zombie_ns);
        false
    }

    fn window(&mut self, kind: Kind, pid: u32, now_ns: u64) -> &mut Window {
        let opened = &mut self.opened;
        self.windows.entry((kind, pid)).or_insert_with(|| {
            opened.push_back((kind, pid));
            Window {
                start_ns: now_ns,
                shown: 0,
                diagnosis: String::new(),
                held: None,
            }
        })
    }

    /// Closes the windows that have run their course by `now_ns`: the sums
    /// of what they held back, zombies first, then by pid.
    pub fn due(&mut self, now_ns: u64) -> Vec<Flood> {
        let mut ended = Vec::new();
        while let Some(key) = self.opened.front() {
            if self
                .windows
                .get(key)
                .is_some_and(|w| now_ns.saturating_sub(w.start_ns) < WINDOW_NS)
            {
                break;
            }
            ended.extend(self.opened.pop_front());
        }
        self.close(ended, now_ns)
    }

    /// Closes every window (the tracer stops).
    pub fn all(&mut self, now_ns: u64) -> Vec<Flood> {
        let ended = self.opened.drain(..).collect();
        self.close(ended, now_ns)
    }

    fn close(&mut self, ended: Vec<(Kind, u32)>, now_ns: u64) -> Vec<Flood> {
        let mut floods: Vec<Flood> = ended
            .into_iter()
            .filter_map(|key| {
                let window = self.windows.remove(&key)?;
                let mut held = window.held?;
                held.window_ns = now_ns.saturating_sub(window.start_ns);
                Some(held)
            })
            .collect();
        floods.sort_by_key(|f| (f.kind == Kind::Reaps, f.pid));
        floods
    }
}

impl Flood {
    fn new(kind: Kind, pid: u32, first: u32) -> Self {
        Self {
            kind,
            pid,
            comm: Vec::new(),
            count: 0,
            min_pid: first,
            max_pid: first,
            oldest_exit_ns: None,
            longest_zombie_ns: None,
            window_ns: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        diagnosis::{Cause, Diagnosis},
        event::Comm,
        process::{Handler, ProcessInfo},
        report::ReaperKind,
    };

    const MS: u64 = 1_000_000;

    /// Zombie `pid` of `ppid`, whose parent calls wait (`waits`) or not.
    fn zombie(pid: u32, ppid: u32, age_ms: Option<u64>, waits: bool) -> Zombie {
        let cause = if waits {
            Cause::OnlyPeeks
        } else {
            Cause::NeverWaited {
                handler: Handler::Default,
            }
        };
        Zombie {
            command: None,
            spawn_stack: None,
            ts: std::time::SystemTime::UNIX_EPOCH,
            pid,
            comm: Comm::new(b"child"),
            status: None,
            age_ns: age_ms.map(|ms| ms * MS),
            preexisting: false,
            ppid_at_exit: Some(ppid),
            original_parent: None,
            ppid,
            parent: Some(ProcessInfo {
                pid: ppid,
                comm: b"leaker".to_vec(),
                ..ProcessInfo::default()
            }),
            placement: Default::default(),
            parent_waits: None,
            diagnosis: Diagnosis {
                cause,
                sigchld_blocked: false,
                exit_unknown: false,
            },
        }
    }

    fn reap(pid: u32, reaper: u32, zombie_ms: u64) -> Reaped {
        Reaped {
            pid,
            ts_ns: Some(zombie_ms * MS),
            comm: Comm::new(b"child"),
            reaper_pid: Some(reaper),
            reaper_comm: Some(Comm::new(b"leaker")),
            reaper_kind: ReaperKind::Parent,
            zombie_ns: Some(zombie_ms * MS),
            was_reported: true,
            preexisting: false,
        }
    }

    #[test]
    fn a_flood_is_a_few_lines_and_a_sum_per_second() {
        let mut gate = FloodGate::default();
        let t = 10_000 * MS;
        assert_eq!(
            gate.admit(&zombie(100, 7, Some(1000), false), t),
            Shown::Full
        );
        assert_eq!(
            gate.admit(&zombie(101, 7, Some(1000), false), t),
            Shown::Brief { diagnosis: false }
        );
        assert_eq!(
            gate.admit(&zombie(102, 7, Some(1000), true), t),
            Shown::Brief { diagnosis: true }
        );
        for (pid, age) in [(150, 1200), (103, 1000), (120, 1100)] {
            assert_eq!(
                gate.admit(&zombie(pid, 7, Some(age), false), t + 100 * MS),
                Shown::Held
            );
        }
        // Another parent has its own window, and so have reaps.
        assert_eq!(
            gate.admit(&zombie(200, 8, Some(1000), false), t),
            Shown::Full
        );
        for pid in 0..5 {
            assert_eq!(
                gate.admit_reap(&reap(300 + pid, 7, 900 + pid as u64), t),
                pid < 3
            );
        }
        assert!(gate.due(t + 999 * MS).is_empty());
        let floods = gate.due(t + 1000 * MS);
        assert_eq!(
            floods,
            [
                Flood {
                    kind: Kind::Zombies,
                    pid: 7,
                    comm: b"leaker".to_vec(),
                    count: 3,
                    min_pid: 103,
                    max_pid: 150,
                    oldest_exit_ns: Some(t + 100 * MS - 1200 * MS),
                    longest_zombie_ns: None,
                    window_ns: 1000 * MS,
                },
                Flood {
                    kind: Kind::Reaps,
                    pid: 7,
                    comm: b"leaker".to_vec(),
                    count: 2,
                    min_pid: 303,
                    max_pid: 304,
                    oldest_exit_ns: None,
                    longest_zombie_ns: Some(904 * MS),
                    window_ns: 1000 * MS,
                }
            ]
        );
        assert_eq!(floods[0].oldest_age_ns(t + 1000 * MS), Some(2100 * MS));
        // The next second starts over, with the parent's details again.
        assert_eq!(
            gate.admit(&zombie(160, 7, Some(1000), false), t + 1100 * MS),
            Shown::Full
        );
    }

    #[test]
    fn unknown_ages_and_the_end() {
        let mut gate = FloodGate::default();
        for pid in 1..=5 {
            gate.admit(&zombie(pid, 7, None, false), 0);
        }
        let floods = gate.all(10 * MS);
        assert_eq!(floods.len(), 1);
        assert_eq!((floods[0].count, floods[0].oldest_exit_ns), (2, None));
        assert!(gate.all(20 * MS).is_empty());
        // A window that held nothing ends without a line.
        gate.admit(&zombie(9, 7, None, false), 0);
        assert!(gate.due(WINDOW_NS).is_empty());
        assert_eq!(
            gate.admit(&zombie(10, 7, None, false), WINDOW_NS),
            Shown::Full
        );
    }

    #[test]
    fn windows_end_one_second_after_each_opened() {
        let mut gate = FloodGate::default();
        for (ppid, opened) in [(7, 0), (8, 500 * MS)] {
            for pid in 0..4 {
                gate.admit(&zombie(ppid * 10 + pid, ppid, None, false), opened);
            }
        }
        let pids = |floods: Vec<Flood>| floods.iter().map(|f| f.pid).collect::<Vec<_>>();
        assert_eq!(pids(gate.due(1000 * MS)), [7]);
        // 7's next window opens after 8's and ends after it.
        gate.admit(&zombie(79, 7, None, false), 1000 * MS);
        assert_eq!(pids(gate.due(1499 * MS)), [] as [u32; 0]);
        assert_eq!(pids(gate.due(1500 * MS)), [8]);
        assert_eq!(
            gate.admit(&zombie(89, 8, None, false), 1500 * MS),
            Shown::Full
        );
        assert_eq!(
            gate.admit(&zombie(78, 7, None, false), 1500 * MS),
            Shown::Brief { diagnosis: false }
        );
    }
}
