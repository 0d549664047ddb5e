//! The pairing engine: exits, reaps and wait calls in; findings out.
//!
//! Pure: no I/O and no clock of its own. Every call that needs the time
//! takes boot-time ns (the clock of the kernel's timestamps), so it is tested
//! on synthetic streams. What only `/proc` can tell (is this overdue child
//! really still a zombie?) the caller asks and feeds back with
//! [`Engine::resolve`]: a lost reap record must never become a false report.
//!
//! Memory is bounded: pending children by [`Config::max_pending`] (overflow
//! is counted, the caller then rescans `/proc`), wait statistics by
//! [`Config::max_wait_callers`], and reaps without their exit by
//! [`Config::max_orphan_reaps`].

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    sync::Arc,
};

use crate::model::{
    event::{
        Comm, Command, Event, Exit, ExitStatus, ParentName, ProcKey, Release, WNOHANG, WNOWAIT,
        Wait,
    },
    process::{RECENT_TARGETS, RecentWait, WaitStats},
    report::{ParentGroup, Reaped, ReaperKind},
    time::ns_to_ticks,
};

/// When `/proc` says an overdue child is not a zombie yet, ask again after.
const RETRY_NS: u64 = 1_000_000_000;

#[derive(Clone, Debug)]
pub struct Config {
    /// A child unreaped this long after its exit is overdue.
    pub threshold_ns: u64,
    /// Clock ticks per second of `/proc/PID/stat` start times.
    pub ticks_per_sec: u64,
    pub max_pending: usize,
    pub max_wait_callers: usize,
    pub max_orphan_reaps: usize,
    /// How long a child `/proc` saw go, or a reap whose exit was not seen,
    /// is remembered for a record that arrives late.
    pub memory_ns: u64,
}

impl Config {
    pub fn new(threshold_ns: u64, ticks_per_sec: u64) -> Self {
        Self {
            threshold_ns,
            ticks_per_sec,
            max_pending: 65_536,
            max_wait_callers: 4_096,
            max_orphan_reaps: 4_096,
            memory_ns: 30_000_000_000,
        }
    }
}

/// A pending child: by its exact identity when its exit was seen, by pid
/// and `/proc` start ticks when it was only found in `/proc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Id {
    Seen(ProcKey),
    Unseen { pid: u32, start_ticks: u64 },
}

/// A zombie found in `/proc` whose exit the engine did not see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unseen {
    pub pid: u32,
    pub start_ticks: u64,
    pub comm: Comm,
    pub ppid: u32,
    pub parent_comm: Vec<u8>,
    /// Found by the start-up scan (rather than after lost records).
    pub preexisting: bool,
}

/// A child past its threshold: the caller checks `/proc`, then calls
/// [`Engine::resolve`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overdue {
    pub id: Id,
    pub pid: u32,
    pub start_ticks: u64,
    /// It may have a pid of its own in a pid namespace (always, when its
    /// exit was not seen): `/proc` must be asked.
    pub in_pid_ns: bool,
    /// The parent whose cgroups it was in at exit, if it was.
    pub cgroups_of: Option<u32>,
}

/// What `/proc` says about a pending child.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Still an unreaped zombie, under this parent now.
    Zombie { ppid: u32, parent_comm: Vec<u8> },
    /// There, but not a zombie yet (its last thread is still exiting).
    NotYet,
    /// Reaped (its record was lost or is still in flight), or the pid is
    /// another process's now.
    Gone,
}

/// A confirmed zombie, for the caller to report with its parent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub id: Id,
    pub pid: u32,
    pub comm: Comm,
    pub status: Option<ExitStatus>,
    /// Since its exit, when the exit was seen.
    pub age_ns: Option<u64>,
    pub ppid_at_exit: Option<u32>,
    pub ppid: u32,
    /// The parent that forked it, when another has it now.
    pub original_parent: Option<ParentName>,
    pub preexisting: bool,
    /// What it ran, when its exec (or its parent's) was seen.
    pub command: Option<Arc<Command>>,
}

/// What [`Engine::on_event`] gives back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A process died; `auto_reap` when the kernel reaps it at once.
    Exited {
        exit: Exit,
        auto_reap: bool,
    },
    Reaped(Reaped),
}

/// Running totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub exits: u64,
    pub reaps: u64,
    /// Reaps of children whose exit (or `/proc` entry) was tracked.
    pub paired_reaps: u64,
    /// Zombies reported, pre-existing ones included.
    pub zombies: u64,
    pub preexisting: u64,
    pub lost: u64,
    /// Children not tracked because `max_pending` was reached.
    pub overflow: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Exited, waiting for its reap or its deadline.
    Waiting,
    /// Reported as a zombie; waits for its reap.
    Reported,
    /// `/proc` saw it go; kept until its deadline for a late reap record.
    /// `announced`: its reap line was already given.
    Gone { announced: bool },
}

#[derive(Clone, Debug)]
struct Pending {
    pid: u32,
    start_ticks: u64,
    comm: Comm,
    exit: Option<Exit>,
    /// Parent as last known (at exit, or from `/proc`).
    ppid: u32,
    parent_comm: Vec<u8>,
    preexisting: bool,
    state: State,
    /// Set when `state` is `Waiting` or `Gone`.
    deadline: Option<u64>,
    /// When `/proc` last said it is still a zombie (boot ns).
    confirmed_ns: u64,
}

impl Pending {
    /// What the summary groups it by: its command's name, else its own.
    fn command_name(&self) -> &[u8] {
        self.exit
            .as_ref()
            .and_then(|e| e.command.as_deref())
            .map_or(self.comm.as_bytes(), Command::name)
    }

    fn overdue(&self, id: Id) -> Overdue {
        Overdue {
            id,
            pid: self.pid,
            start_ticks: self.start_ticks,
            in_pid_ns: self.exit.as_ref().is_none_or(|e| e.in_pid_ns),
            cgroups_of: self
                .exit
                .as_ref()
                .filter(|e| e.parent_cgroups)
                .map(|e| e.ppid),
        }
    }

    fn finding(&self, id: Id, now_ns: u64) -> Finding {
        Finding {
            id,
            pid: self.pid,
            comm: self.comm,
            status: self.exit.as_ref().map(|e| e.status),
            age_ns: self.exit.as_ref().map(|e| now_ns.saturating_sub(e.ts_ns)),
            ppid_at_exit: self.exit.as_ref().map(|e| e.ppid),
            ppid: self.ppid,
            // Adopted as a zombie; one adopted alive is for the reporter
            // to find (the kernel's `ORPHANS`).
            original_parent: self.exit.as_ref().and_then(|e| {
                (e.ppid != self.ppid).then_some(ParentName {
                    pid: e.ppid,
                    comm: e.parent_comm,
                })
            }),
            preexisting: self.preexisting,
            command: self.exit.as_ref().and_then(|e| e.command.clone()),
        }
    }

    /// Its reap at `ts_ns` by `reaper_pid`.
    fn reaping(&self, ts_ns: u64, reaper_pid: u32, reaper_comm: Comm) -> Reaped {
        let kind = match &self.exit {
            Some(exit) if exit.auto_reaped() => ReaperKind::Kernel,
            Some(exit) if reaper_pid == exit.ppid => ReaperKind::Parent,
            None if reaper_pid == self.ppid => ReaperKind::Parent,
            _ if reaper_pid == 1 => ReaperKind::Init,
            _ => ReaperKind::Subreaper,
        };
        Reaped {
            pid: self.pid,
            comm: self.comm,
            ts_ns: Some(ts_ns),
            reaper_pid: Some(reaper_pid),
            reaper_comm: Some(reaper_comm),
            reaper_kind: kind,
            // Released at exit by the kernel: never a zombie.
            zombie_ns: self
                .exit
                .as_ref()
                .filter(|_| kind != ReaperKind::Kernel)
                .map(|e| ts_ns.saturating_sub(e.ts_ns)),
            was_reported: self.state == State::Reported,
            preexisting: self.preexisting,
        }
    }
}

#[derive(Clone, Debug)]
struct Waits {
    stats: WaitStats,
    /// Last update, for eviction (oldest first).
    touched: u64,
}

pub struct Engine {
    config: Config,
    pending: HashMap<Id, Pending>,
    /// Pid of each pending child (the newest, if a pid was reused).
    by_pid: HashMap<u32, Id>,
    deadlines: BTreeSet<(u64, Id)>,
    /// Reaps whose exit was not seen, in arrival order, for an exit that
    /// arrives late.
    orphan_reaps: HashMap<ProcKey, u64>,
    orphan_order: VecDeque<(u64, ProcKey)>,
    waits: HashMap<u32, Waits>,
    /// Orders wait updates (event times may run backwards across CPUs).
    wait_clock: u64,
    counts: Counts,
}

impl Engine {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            pending: HashMap::new(),
            by_pid: HashMap::new(),
            deadlines: BTreeSet::new(),
            orphan_reaps: HashMap::new(),
            orphan_order: VecDeque::new(),
            waits: HashMap::new(),
            wait_clock: 0,
            counts: Counts::default(),
        }
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Children tracked now (all states).
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Callers of wait with a tally now (at most `max_wait_callers`).
    pub fn wait_callers_len(&self) -> usize {
        self.waits.len()
    }

    /// Reaps remembered without their exit now (at most
    /// `max_orphan_reaps`).
    pub fn orphan_reaps_len(&self) -> usize {
        self.orphan_reaps.len()
    }

    fn ticks(&self, ns: u64) -> u64 {
        ns_to_ticks(ns, self.config.ticks_per_sec)
    }

    pub fn on_event(&mut self, event: &Event, out: &mut Vec<Outcome>) {
        match event {
            Event::Exit(exit) => self.on_exit(exit, out),
            Event::Release(reap) => self.on_release(reap, out),
            Event::Wait(wait) => self.on_wait(wait, out),
            // Wait calls of the old program say nothing about the new one.
            Event::Exec(exec) => {
                self.waits.remove(&exec.pid);
            }
        }
    }

    pub fn on_exit(&mut self, exit: &Exit, out: &mut Vec<Outcome>) {
        let id = Id::Seen(exit.key);
        if self.pending.contains_key(&id) {
            // Two threads died at once and both saw the group dead.
            return;
        }
        self.counts.exits += 1;
        // Its pid may be reused: its wait history ends here.
        self.waits.remove(&exit.key.pid);
        out.push(Outcome::Exited {
            exit: exit.clone(),
            auto_reap: exit.auto_reaped(),
        });
        if self.orphan_reaps.remove(&exit.key).is_some() {
            // Reaped already: its reap arrived first.
            return;
        }
        let start_ticks = self.ticks(exit.key.start_ns);
        let mut entry = Pending {
            pid: exit.key.pid,
            start_ticks,
            comm: exit.comm,
            exit: Some(exit.clone()),
            ppid: exit.ppid,
            parent_comm: exit.parent_comm.as_bytes().to_vec(),
            preexisting: false,
            state: State::Waiting,
            deadline: Some(exit.ts_ns.saturating_add(self.config.threshold_ns)),
            confirmed_ns: 0,
        };
        // A `/proc` rescan may have found it before its exit record came.
        if let Some(unseen) = self.unseen_for(exit.key.pid, start_ticks) {
            // Not yet reported, it now gets its real age and deadline; once
            // reported, it stays as it was reported.
            let old = self.remove(unseen).expect("by_pid points into pending");
            if old.state != State::Waiting {
                entry.preexisting = old.preexisting;
                entry.state = old.state;
                entry.deadline = old.deadline;
            }
        } else if self.pending.len() >= self.config.max_pending {
            self.counts.overflow += 1;
            return;
        }
        self.insert(id, entry);
    }

    pub fn on_release(&mut self, reap: &Release, out: &mut Vec<Outcome>) {
        let id = Some(Id::Seen(reap.key))
            .filter(|id| self.pending.contains_key(id))
            .or_else(|| self.unseen_for(reap.key.pid, self.ticks(reap.key.start_ns)));
        let Some(id) = id else {
            self.counts.reaps += 1;
            self.remember_orphan_reap(reap);
            out.push(Outcome::Reaped(Reaped {
                pid: reap.key.pid,
                comm: reap.comm,
                ts_ns: Some(reap.ts_ns),
                reaper_pid: Some(reap.reaper_pid),
                reaper_comm: Some(reap.reaper_comm),
                reaper_kind: ReaperKind::Unknown,
                zombie_ns: None,
                was_reported: false,
                preexisting: false,
            }));
            return;
        };
        let entry = self.remove(id).expect("id is pending");
        // An announced reap was counted when it was announced.
        if entry.state != (State::Gone { announced: true }) {
            self.counts.reaps += 1;
            self.counts.paired_reaps += 1;
            out.push(Outcome::Reaped(entry.reaping(
                reap.ts_ns,
                reap.reaper_pid,
                reap.reaper_comm,
            )));
        }
    }

    pub fn on_wait(&mut self, wait: &Wait, out: &mut Vec<Outcome>) {
        self.record_wait(wait);
        self.reap_by_wait(wait, out);
    }

    fn record_wait(&mut self, wait: &Wait) {
        self.wait_clock += 1;
        if !self.waits.contains_key(&wait.pid) && self.waits.len() >= self.config.max_wait_callers {
            // Full: make room by forgetting the caller idle longest.
            let oldest = self
                .waits
                .iter()
                .min_by_key(|(_, w)| w.touched)
                .map(|(&pid, _)| pid);
            if let Some(oldest) = oldest {
                self.waits.remove(&oldest);
            }
        }
        let slot = self.waits.entry(wait.pid).or_insert_with(|| Waits {
            stats: WaitStats::default(),
            touched: 0,
        });
        slot.touched = self.wait_clock;
        record_wait(&mut slot.stats, wait);
    }

    /// A wait call that collected a pending child is its reap, at the
    /// moment it happened: the kernel's own release record
    /// (`sched_process_free`) comes only after an RCU grace period, which
    /// lazy RCU can stretch to seconds. That record is then swallowed.
    ///
    /// The reported pid is in the caller's pid namespace: a caller outside
    /// the initial one falls back to the release record. The caller must
    /// also be the child's parent, and the status the same.
    fn reap_by_wait(&mut self, wait: &Wait, out: &mut Vec<Outcome>) {
        let Some(pid) = wait
            .reported_pid
            .filter(|_| wait.reaped && wait.global_pids)
            .and_then(|p| u32::try_from(p).ok())
        else {
            return;
        };
        let Some(&id) = self.by_pid.get(&pid) else {
            return;
        };
        let Some(entry) = self.pending.get_mut(&id) else {
            return;
        };
        let original_parent = entry.exit.as_ref().map(|e| e.ppid);
        let by_parent = wait.pid == entry.ppid || original_parent == Some(wait.pid);
        let same_status = match (wait.status, &entry.exit) {
            (Some(status), Some(exit)) => status == exit.status,
            _ => true,
        };
        if !by_parent || !same_status || entry.state == (State::Gone { announced: true }) {
            return;
        }
        let reaper_comm = if wait.pid == entry.ppid && !entry.parent_comm.is_empty() {
            Comm::new(&entry.parent_comm)
        } else {
            wait.comm
        };
        let reaping = entry.reaping(wait.ts_ns, wait.pid, reaper_comm);
        entry.state = State::Gone { announced: true };
        self.counts.reaps += 1;
        self.counts.paired_reaps += 1;
        self.set_deadline(id, Some(wait.ts_ns.saturating_add(self.config.memory_ns)));
        out.push(Outcome::Reaped(reaping));
    }

    /// The wait calls process `tgid` made since tracing began (or since the
    /// engine last had room for it).
    pub fn wait_stats(&self, tgid: u32) -> WaitStats {
        self.waits
            .get(&tgid)
            .map(|w| w.stats.clone())
            .unwrap_or_default()
    }

    /// Records the kernel dropped (`n` more).
    pub fn on_lost(&mut self, n: u64) {
        self.counts.lost += n;
    }

    /// Whether a process with this pid is tracked.
    pub fn tracks(&self, pid: u32) -> bool {
        self.by_pid.contains_key(&pid)
    }

    /// Whether the process `pid` started at `start_ticks` is tracked.
    pub fn knows(&self, pid: u32, start_ticks: u64) -> bool {
        self.by_pid
            .get(&pid)
            .and_then(|id| self.pending.get(id))
            .is_some_and(|p| p.start_ticks == start_ticks)
    }

    /// Tracks a zombie found in `/proc`. Pre-existing ones are due at once:
    /// they were zombies before tracing began, for an unknown time, and are
    /// reported with `ready`. Ones found after lost records get the
    /// threshold like any other.
    /// `false` if it is already tracked or there is no room.
    pub fn add_unseen(&mut self, unseen: Unseen, now_ns: u64) -> bool {
        if self.knows(unseen.pid, unseen.start_ticks) {
            return false;
        }
        if self.pending.len() >= self.config.max_pending {
            self.counts.overflow += 1;
            return false;
        }
        let wait = if unseen.preexisting {
            0
        } else {
            self.config.threshold_ns
        };
        let deadline = now_ns.saturating_add(wait);
        let id = Id::Unseen {
            pid: unseen.pid,
            start_ticks: unseen.start_ticks,
        };
        self.insert(
            id,
            Pending {
                pid: unseen.pid,
                start_ticks: unseen.start_ticks,
                comm: unseen.comm,
                exit: None,
                ppid: unseen.ppid,
                parent_comm: unseen.parent_comm,
                preexisting: unseen.preexisting,
                state: State::Waiting,
                deadline: Some(deadline),
                confirmed_ns: 0,
            },
        );
        true
    }

    /// When [`Engine::tick`] has something to do next (boot ns).
    pub fn next_deadline(&self) -> Option<u64> {
        self.deadlines.first().map(|&(deadline, _)| deadline)
    }

    /// Children past their deadline, each once; forgets what `/proc` saw
    /// go long enough ago.
    pub fn tick(&mut self, now_ns: u64) -> Vec<Overdue> {
        let mut due = Vec::new();
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now_ns {
                break;
            }
            self.deadlines.pop_first();
            let Some(entry) = self.pending.get_mut(&id) else {
                continue;
            };
            entry.deadline = None;
            match entry.state {
                State::Waiting => due.push(entry.overdue(id)),
                State::Gone { .. } => {
                    self.remove(id);
                }
                State::Reported => {}
            }
        }
        let horizon = now_ns.saturating_sub(self.config.memory_ns);
        while let Some(&(ts, key)) = self.orphan_order.front() {
            if ts > horizon && self.orphan_order.len() <= self.config.max_orphan_reaps {
                break;
            }
            self.orphan_order.pop_front();
            if self.orphan_reaps.get(&key) == Some(&ts) {
                self.orphan_reaps.remove(&key);
            }
        }
        due
    }

    /// Applies what `/proc` says about an overdue or reported child: the
    /// finding to report (once), or the reap of a reported child whose reap
    /// record never came.
    pub fn resolve(&mut self, id: Id, verdict: Verdict, now_ns: u64) -> Resolution {
        let Some(entry) = self.pending.get_mut(&id) else {
            return Resolution::Nothing;
        };
        match (verdict, entry.state) {
            (Verdict::Zombie { ppid, parent_comm }, state) => {
                entry.ppid = ppid;
                entry.parent_comm = parent_comm;
                entry.confirmed_ns = now_ns;
                if state != State::Waiting {
                    return Resolution::Nothing;
                }
                entry.state = State::Reported;
                self.counts.zombies += 1;
                if entry.preexisting {
                    self.counts.preexisting += 1;
                }
                let finding = entry.finding(id, now_ns);
                self.set_deadline(id, None);
                Resolution::Report(Box::new(finding))
            }
            (Verdict::NotYet, State::Waiting) => {
                self.set_deadline(id, Some(now_ns.saturating_add(RETRY_NS)));
                Resolution::Nothing
            }
            (Verdict::NotYet, _) => Resolution::Nothing,
            (Verdict::Gone, State::Gone { .. }) => Resolution::Nothing,
            (Verdict::Gone, state) => {
                let reported = state == State::Reported;
                entry.state = State::Gone {
                    announced: reported,
                };
                if reported {
                    self.counts.reaps += 1;
                    self.counts.paired_reaps += 1;
                }
                let resolution = if reported {
                    Resolution::Vanished(Reaped {
                        pid: entry.pid,
                        comm: entry.comm,
                        ts_ns: None,
                        reaper_pid: None,
                        reaper_comm: None,
                        reaper_kind: ReaperKind::Unknown,
                        zombie_ns: None,
                        was_reported: true,
                        preexisting: entry.preexisting,
                    })
                } else {
                    Resolution::Nothing
                };
                self.set_deadline(id, Some(now_ns.saturating_add(self.config.memory_ns)));
                resolution
            }
        }
    }

    /// Reported zombies that `/proc` last confirmed at or before
    /// `confirmed_by_ns`, to re-check now and then.
    pub fn reported(&self, confirmed_by_ns: u64) -> Vec<Overdue> {
        self.pending
            .iter()
            .filter(|(_, p)| p.state == State::Reported && p.confirmed_ns <= confirmed_by_ns)
            .map(|(&id, p)| p.overdue(id))
            .collect()
    }

    /// Reported zombies still unreaped, grouped by their parent now, the
    /// parents with most zombies first.
    pub fn outstanding(&self, now_ns: u64) -> Vec<ParentGroup> {
        let mut groups: HashMap<u32, ParentGroup> = HashMap::new();
        let mut names: HashMap<u32, Vec<&[u8]>> = HashMap::new();
        for p in self.pending.values().filter(|p| p.state == State::Reported) {
            let age = p.exit.as_ref().map(|e| now_ns.saturating_sub(e.ts_ns));
            let group = groups.entry(p.ppid).or_insert_with(|| ParentGroup {
                ppid: p.ppid,
                parent_comm: p.parent_comm.clone(),
                zombies: Vec::new(),
                by_command: Vec::new(),
                oldest_ns: None,
                preexisting: false,
            });
            group.zombies.push(p.pid);
            names.entry(p.ppid).or_default().push(p.command_name());
            group.oldest_ns = group.oldest_ns.max(age);
            group.preexisting |= p.preexisting;
        }
        let mut groups: Vec<ParentGroup> = groups.into_values().collect();
        for g in &mut groups {
            g.zombies.sort_unstable();
            g.by_command = ParentGroup::count_commands(names.remove(&g.ppid).unwrap_or_default());
        }
        groups.sort_by(|a, b| {
            b.zombies
                .len()
                .cmp(&a.zombies.len())
                .then(a.ppid.cmp(&b.ppid))
        });
        groups
    }

    fn unseen_for(&self, pid: u32, start_ticks: u64) -> Option<Id> {
        let id = *self.by_pid.get(&pid)?;
        matches!(id, Id::Unseen { start_ticks: t, .. } if t == start_ticks).then_some(id)
    }

    fn insert(&mut self, id: Id, entry: Pending) {
        if let Some(deadline) = entry.deadline {
            self.deadlines.insert((deadline, id));
        }
        self.by_pid.insert(entry.pid, id);
        self.pending.insert(id, entry);
    }

    fn remove(&mut self, id: Id) -> Option<Pending> {
        let entry = self.pending.remove(&id)?;
        if let Some(deadline) = entry.deadline {
            self.deadlines.remove(&(deadline, id));
        }
        if self.by_pid.get(&entry.pid) == Some(&id) {
            self.by_pid.remove(&entry.pid);
        }
        Some(entry)
    }

    fn set_deadline(&mut self, id: Id, deadline: Option<u64>) {
        let Some(entry) = self.pending.get_mut(&id) else {
            return;
        };
        if let Some(old) = entry.deadline {
            self.deadlines.remove(&(old, id));
        }
        entry.deadline = deadline;
        if let Some(new) = deadline {
            self.deadlines.insert((new, id));
        }
    }

    fn remember_orphan_reap(&mut self, reap: &Release) {
        self.orphan_reaps.insert(reap.key, reap.ts_ns);
        self.orphan_order.push_back((reap.ts_ns, reap.key));
        while self.orphan_order.len() > self.config.max_orphan_reaps {
            if let Some((ts, key)) = self.orphan_order.pop_front()
                && self.orphan_reaps.get(&key) == Some(&ts)
            {
                self.orphan_reaps.remove(&key);
            }
        }
    }
}

/// What [`Engine::resolve`] concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    Nothing,
    /// A new zombie to report.
    Report(Box<Finding>),
    /// A reported zombie is gone though no reap record came.
    Vanished(Reaped),
}

fn record_wait(stats: &mut WaitStats, wait: &Wait) {
    stats.calls += 1;
    stats.last_ns = Some(stats.last_ns.map_or(wait.ts_ns, |t| t.max(wait.ts_ns)));
    if wait.ret < 0 {
        stats.errors += 1;
    } else if wait.reaped {
        stats.reaped += 1;
    } else if wait.reported_pid.is_none() && wait.options & WNOHANG != 0 {
        stats.empty += 1;
    }
    if wait.options & WNOWAIT != 0 && wait.reported_pid.is_some() {
        stats.peeks += 1;
    }
    // The most recently asked for, newest first (as the kernel's tally).
    let mut last_ns = wait.ts_ns;
    if let Some(i) = stats.targets.iter().position(|t| t.target == wait.target) {
        last_ns = last_ns.max(stats.targets.remove(i).last_ns);
    }
    let at = stats.targets.partition_point(|t| t.last_ns > last_ns);
    stats.targets.insert(
        at,
        RecentWait {
            target: wait.target,
            last_ns,
            state: None,
        },
    );
    stats.targets.truncate(RECENT_TARGETS);
    stats.full = stats.targets.len() == RECENT_TARGETS;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::event::{WaitSyscall, WaitTarget};

    const MS: u64 = 1_000_000;
    const SEC: u64 = 1_000 * MS;
    const HZ: u64 = 100;
    const THRESHOLD: u64 = 5 * SEC;

    fn engine() -> Engine {
        Engine::new(Config::new(THRESHOLD, HZ))
    }

    fn key(pid: u32, start_ns: u64) -> ProcKey {
        ProcKey { pid, start_ns }
    }

    fn exit(pid: u32, start_ns: u64, ppid: u32, ts_ns: u64) -> Exit {
        Exit {
            command: None,
            key: key(pid, start_ns),
            tid: pid,
            ppid,
            ts_ns,
            status: ExitStatus::Exited(0),
            comm: Comm::new(b"child"),
            parent_comm: Comm::new(b"parent"),
            parent_ignores_sigchld: false,
            ptraced: false,
            not_sigchld: false,
            leader_went_first: false,
            in_pid_ns: false,
            parent_cgroups: false,
        }
    }

    fn reap(pid: u32, start_ns: u64, reaper: u32, ts_ns: u64) -> Release {
        Release {
            key: key(pid, start_ns),
            ts_ns,
            comm: Comm::new(b"child"),
            reaper_pid: reaper,
            reaper_comm: Comm::new(b"reaper"),
        }
    }

    fn wait(pid: u32, ts_ns: u64, target: WaitTarget, options: u32, ret: i64) -> Wait {
        Wait {
            syscall: WaitSyscall::Wait4,
            pid,
            tid: pid,
            comm: Comm::new(b"parent"),
            ts_ns,
            target,
            options,
            ret,
            reported_pid: (ret > 0).then_some(ret as i32),
            reaped: ret > 0 && options & WNOWAIT == 0,
            status: (ret > 0).then_some(ExitStatus::Exited(0)),
            global_pids: true,
        }
    }

    fn reapings(out: &[Outcome]) -> Vec<&Reaped> {
        out.iter()
            .filter_map(|o| match o {
                Outcome::Reaped(r) => Some(r),
                Outcome::Exited { .. } => None,
            })
            .collect()
    }

    fn zombie(ppid: u32) -> Verdict {
        Verdict::Zombie {
            ppid,
            parent_comm: b"parent".to_vec(),
        }
    }

    fn report(resolution: Resolution) -> Finding {
        match resolution {
            Resolution::Report(f) => *f,
            other => panic!("expected a report, got {other:?}"),
        }
    }

    #[test]
    fn prompt_reap_pairs_and_reports_nothing() {
        let mut e = engine();
        let mut out = Vec::new();
        e.on_exit(&exit(100, 7, 10, SEC), &mut out);
        e.on_release(&reap(100, 7, 10, SEC + 2 * MS), &mut out);
        assert!(
            matches!(&out[0], Outcome::Exited { exit, auto_reap: false } if exit.key.pid == 100)
        );
        let r = reapings(&out);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].reaper_kind, ReaperKind::Parent);
        assert_eq!(r[0].zombie_ns, Some(2 * MS));
        assert!(!r[0].was_reported);
        assert!(e.tick(100 * SEC).is_empty());
        assert_eq!(e.pending_len(), 0);
        let c = e.counts();
        assert_eq!((c.exits, c.reaps, c.zombies), (1, 1, 0));
    }

    #[test]
    fn late_reap_is_overdue_once_then_reported_then_reaped() {
        let mut e = engine();
        let mut out = Vec::new();
        e.on_exit(&exit(100, 7, 10, SEC), &mut out);
        assert!(e.tick(SEC + THRESHOLD - 1).is_empty());
        let due = e.tick(SEC + THRESHOLD);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].pid, 100);
        assert_eq!(due[0].start_ticks, 0);
        assert!(e.tick(SEC + THRESHOLD + 1).is_empty(), "overdue only once");
        let f = report(e.resolve(due[0].id, zombie(10), 7 * SEC));
        assert_eq!(f.pid, 100);
        assert_eq!(f.age_ns, Some(6 * SEC));
        assert_eq!(f.status, Some(ExitStatus::Exited(0)));
        assert_eq!(f.ppid_at_exit, Some(10));
        assert!(!f.preexisting);
        assert_eq!(
            e.resolve(due[0].id, zombie(10), 8 * SEC),
            Resolution::Nothing,
            "reported only once"
        );
        assert_eq!(e.counts().zombies, 1);
        let groups = e.outstanding(9 * SEC);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].zombies, vec![100]);
        assert_eq!(groups[0].oldest_ns, Some(8 * SEC));
        e.on_release(&reap(100, 7, 10, 10 * SEC), &mut out);
        let r = reapings(&out);
        assert!(r[0].was_reported);
        assert_eq!(r[0].zombie_ns, Some(9 * SEC));
        assert!(e.outstanding(11 * SEC).is_empty());
        assert_eq!(e.pending_len(), 0);
    }

    #[test]
    fn lost_reap_never_becomes_a_report() {
        let mut e = engine();
        let mut out = Vec::new();
        e.on_exit(&exit(100, 7, 10, SEC), &mut out);
        let due = e.tick(10 * SEC);
        assert_eq!(
            e.resolve(due[0].id, Verdict::Gone, 10 * SEC),
            Resolution::Nothing
        );
        assert_eq!(e.counts().zombies, 0);
        // A late reap record is still paired (but was not reported).
        e.on_release(&reap(100, 7, 10, 11 * SEC), &mut out);
        let r = reapings(&out);
        assert_eq!(r.len(), 1);
        assert!(!r[0].was_reported);
        assert_eq!(r[0].reaper_kind, ReaperKind::Parent);
        // Without one, it is forgotten after the memory window.
        e.on_exit(&exit(200, 8, 10, SEC), &mut out);
        let due = e.tick(20 * SEC);
        e.resolve(due[0].id, Verdict::Gone, 20 * SEC);
        assert_eq!(e.pending_len(), 1);
        assert!(e.tick(20 * SEC + e.config.memory_ns).is_empty());
        assert_eq!(e.pending_len(), 0);
    }

    #[test]
    fn not_yet_a_zombie_is_asked_again() {
        let mut e = engine();
        e.on_exit(&exit(100, 7, 10, SEC), &mut Vec::new());
        let due = e.tick(6 * SEC);
        assert_eq!(
            e.resolve(due[0].id, Verdict::NotYet, 6 * SEC),
            Resolution::Nothing
        );
        assert!(e.tick(6 * SEC + RETRY_NS - 1).is_empty());
        let again = e.tick(6 * SEC + RETRY_NS);
        assert_eq!(again, due);
        report(e.resolve(again[0].id, zombie(10), 7 * SEC));
    }

    #[test]
    fn reported_zombie_that_vanishes_gets_one_reap_line() {
        let mut e = engine();
        let mut out = Vec::new();
        e.on_exit(&exit(100, 7, 10, SEC), &mut out);
        let due = e.tick(6 * SEC);
        report(e.resolve(due[0].id, zombie(10), 6 * SEC));
        assert_eq!(e.reported(6 * SEC), due);
        assert!(e.reported(6 * SEC - 1).is_empty(), "confirmed at 6 s");
        let Resolution::Vanished(r) = e.resolve(due[0].id, Verdict::Gone, 7 * SEC) else {
            panic!("expected a vanished reap");
        };
        assert!(r.was_reported);
        assert_eq!(r.reaper_pid, None);
        assert_eq!(r.reaper_kind, ReaperKind::Unknown);
        assert!(e.reported(u64::MAX).is_empty());
        // Its reap record, arriving late, adds no second line.
        out.clear();
        e.on_release(&reap(100, 7, 10, 7 * SEC), &mut out);
        assert!(reapings(&out).is_empty());
        assert_eq!(e.pending_len(), 0);
    }

    #[test]
    fn parent_wait_is_the_reap_moment_and_the_release_record_is_swallowed() {
        let mut e = engine();
        let mut out = Vec::new();
        e.on_exit(&exit(100, 7, 10, SEC), &mut out);
        let due = e.tick(6 * SEC);
        report(e.resolve(due[0].id, zombie(10), 6 * SEC));
        out.clear();
        e.on_wait(&wait(10, 9 * SEC, WaitTarget::Any, 0, 100), &mut out);
        let r = reapings(&out);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].ts_ns, Some(9 * SEC));
        assert_eq!(r[0].zombie_ns, Some(8 * SEC));
        assert_eq!(
            (r[0].reaper_pid, r[0].reaper_kind),
            (Some(10), ReaperKind::Parent)
        );
        assert_eq!(r[0].reaper_comm, Some(Comm::new(b"parent")));
        assert!(r[0].was_reported);
        assert!(e.outstanding(9 * SEC).is_empty());
        assert!(e.reported(u64::MAX).is_empty());
        // The kernel's release record, seconds later (lazy RCU): no second line.
        out.clear();
        e.on_release(&reap(100, 7, 10, 19 * SEC), &mut out);
        assert!(out.is_empty());
        assert_eq!(e.pending_len(), 0);
        assert_eq!(e.counts().reaps, 1);
    }

    #[test]
    fn wait_reports_that_may_be_another_process_are_not_reaps() {
        let mut e = engine();
        let mut out = Vec::new();
        e.on_exit(&exit(100, 7, 10, SEC), &mut out);
        out.clear();
        // Not its parent (a pid in another namespace, say).
        e.on_wait(&wait(11, 2 * SEC, WaitTarget::Any, 0, 100), &mut out);
        // Its parent, but another status: another namespace's pid 100.
        let mut other = wait(10, 2 * SEC, WaitTarget::Any, 0, 100);
        other.status = Some(ExitStatus::Exited(3));
        e.on_wait(&other, &mut out);
        // A peek.
        e.on_wait(&wait(10, 2 * SEC, WaitTarget::Any, WNOWAIT, 100), &mut out);
        // Its parent, from inside a pid namespace: pid 100 is not ours.
        let mut namespaced = wait(10, 2 * SEC, WaitTarget::Any, 0, 100);
        namespaced.global_pids = false;
        e.on_wait(&namespaced, &mut out);
        assert!(out.is_empty());
        e.on_release(&reap(100, 7, 10, 3 * SEC), &mut out);
        assert_eq!(reapings(&out)[0].zombie_ns, Some(2 * SEC));
    }

    #[test]
    fn subreaper_wait_reaps_a_reported_orphan() {
        let mut e = engine();
        let mut out = Vec::new();
        e.on_exit(&exit(100, 7, 10, SEC), &mut out);
        let due = e.tick(6 * SEC);
        report(e.resolve(due[0].id, zombie(55), 6 * SEC));
        out.clear();
        e.on_wait(&wait(55, 7 * SEC, WaitTarget::Any, 0, 100), &mut out);
        assert_eq!(reapings(&out)[0].reaper_kind, ReaperKind::Subreaper);
    }

    #[test]
    fn reap_before_exit_pairs_without_a_report() {
        let mut e = engine();
        let mut out = Vec::new();
        e.on_release(&reap(100, 7, 10, SEC), &mut out);
        assert_eq!(reapings(&out)[0].reaper_kind, ReaperKind::Unknown);
        out.clear();
        e.on_exit(&exit(100, 7, 10, SEC - MS), &mut out);
        assert_eq!(out.len(), 1, "only the exit line");
        assert!(e.tick(100 * SEC).is_empty());
        assert_eq!(e.pending_len(), 0);
    }

    #[test]
    fn lost_exit_leaves_an_unknown_reap_and_is_forgotten() {
        let mut e = engine();
        let mut out = Vec::new();
        for pid in 0..10_000u32 {
            e.on_release(&reap(pid, 7, 10, SEC), &mut out);
        }
        assert_eq!(e.orphan_reaps.len(), e.config.max_orphan_reaps);
        e.tick(SEC + e.config.memory_ns + 1);
        assert!(e.orphan_reaps.is_empty());
        assert!(e.orphan_order.is_empty());
        assert_eq!(e.counts().reaps, 10_000);
    }

    #[test]
    fn duplicate_exit_is_ignored() {
        let mut e = engine();
        let mut out = Vec::new();
        e.on_exit(&exit(100, 7, 10, SEC), &mut out);
        e.on_exit(&exit(100, 7, 10, SEC), &mut out);
        assert_eq!(out.len(), 1, "one exit line");
        assert_eq!(e.counts().exits, 1);
        assert_eq!(e.tick(10 * SEC).len(), 1);
    }

    #[test]
    fn traced_or_clone_children_are_not_auto_reaped() {
        for (ptraced, not_sigchld) in [(true, false), (false, true)] {
            let mut e = engine();
            let mut out = Vec::new();
            let mut x = exit(100, 7, 10, SEC);
            x.parent_ignores_sigchld = true;
            x.ptraced = ptraced;
            x.not_sigchld = not_sigchld;
            e.on_exit(&x, &mut out);
            assert!(matches!(
                out[0],
                Outcome::Exited {
                    auto_reap: false,
                    ..
                }
            ));
            e.on_release(&reap(100, 7, 10, 2 * SEC), &mut out);
            let r = reapings(&out)[0];
            assert_eq!(r.reaper_kind, ReaperKind::Parent);
            assert_eq!(r.zombie_ns, Some(SEC));
        }
    }

    #[test]
    fn recycled_pid_is_a_different_process() {
        let mut e = engine();
        let mut out = Vec::new();
        e.on_exit(&exit(100, 7, 10, SEC), &mut out);
        // The old reap was lost; pid 100 comes back as a new process.
        e.on_exit(&exit(100, 9 * SEC, 11, 9 * SEC), &mut out);
        // A reap with the new identity does not pair with the old exit.
        e.on_release(&reap(100, 9 * SEC, 11, 9 * SEC + MS), &mut out);
        let r = reapings(&out);
        assert_eq!(r[0].zombie_ns, Some(MS));
        let due = e.tick(20 * SEC);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].id, Id::Seen(key(100, 7)));
        // A stale reap with the old identity pairs with the old exit only.
        out.clear();
        e.on_release(&reap(100, 7, 10, 21 * SEC), &mut out);
        assert_eq!(reapings(&out)[0].zombie_ns, Some(20 * SEC));
        assert_eq!(e.pending_len(), 0);
    }

    #[test]
    fn reaper_kinds() {
        let cases = [
            (10, false, ReaperKind::Parent),
            (1, false, ReaperKind::Init),
            (55, false, ReaperKind::Subreaper),
            (10, true, ReaperKind::Kernel),
        ];
        for (reaper, ignores, kind) in cases {
            let mut e = engine();
            let mut out = Vec::new();
            let mut x = exit(100, 7, 10, SEC);
            x.parent_ignores_sigchld = ignores;
            e.on_exit(&x, &mut out);
            assert!(matches!(out[0], Outcome::Exited { auto_reap, .. } if auto_reap == ignores));
            e.on_release(&reap(100, 7, reaper, SEC + MS), &mut out);
            let r = reapings(&out)[0];
            assert_eq!(r.reaper_kind, kind, "reaper {reaper}");
            assert_eq!(r.zombie_ns, (!ignores).then_some(MS), "reaper {reaper}");
        }
    }

    #[test]
    fn reparented_zombie_is_reported_under_its_new_parent() {
        let mut e = engine();
        let mut out = Vec::new();
        e.on_exit(&exit(100, 7, 10, SEC), &mut out);
        let due = e.tick(6 * SEC);
        let f = report(e.resolve(due[0].id, zombie(55), 6 * SEC));
        assert_eq!((f.ppid, f.ppid_at_exit), (55, Some(10)));
        let parent = ParentName {
            pid: 10,
            comm: Comm::new(b"parent"),
        };
        assert_eq!(f.original_parent, Some(parent));
        assert_eq!(e.outstanding(6 * SEC)[0].ppid, 55);
        // The parent dies again: a re-check updates the group.
        e.resolve(due[0].id, zombie(1), 7 * SEC);
        assert_eq!(e.outstanding(7 * SEC)[0].ppid, 1);
        e.on_release(&reap(100, 7, 1, 8 * SEC), &mut out);
        assert_eq!(reapings(&out)[0].reaper_kind, ReaperKind::Init);
    }

    #[test]
    fn threads_pair_by_their_group_leader() {
        let mut e = engine();
        let mut out = Vec::new();
        let mut x = exit(100, 7, 10, 3 * SEC);
        x.tid = 103;
        x.leader_went_first = true;
        e.on_exit(&x, &mut out);
        assert!(
            e.tick(3 * SEC + THRESHOLD - 1).is_empty(),
            "clock starts at the group's death"
        );
        e.on_release(&reap(100, 7, 10, 4 * SEC), &mut out);
        assert_eq!(reapings(&out)[0].zombie_ns, Some(SEC));
    }

    fn unseen(pid: u32, start_ticks: u64, preexisting: bool) -> Unseen {
        Unseen {
            pid,
            start_ticks,
            comm: Comm::new(b"old"),
            ppid: 10,
            parent_comm: b"parent".to_vec(),
            preexisting,
        }
    }

    #[test]
    fn preexisting_zombie_is_due_at_once_and_pairs_by_ticks() {
        let mut e = engine();
        let mut out = Vec::new();
        assert!(e.tick(50 * SEC - 1).is_empty());
        assert!(e.add_unseen(unseen(100, 250, true), 50 * SEC));
        assert!(!e.add_unseen(unseen(100, 250, true), 50 * SEC), "known");
        assert!(e.knows(100, 250));
        assert!(!e.knows(100, 251));
        let due = e.tick(50 * SEC);
        assert_eq!(due.len(), 1);
        let f = report(e.resolve(due[0].id, zombie(10), 50 * SEC));
        assert!(f.preexisting);
        assert_eq!((f.age_ns, f.status, f.ppid_at_exit), (None, None, None));
        // Another process's reap with the same pid does not pair.
        e.on_release(&reap(100, 3 * SEC, 10, 51 * SEC), &mut out);
        assert_eq!(reapings(&out)[0].reaper_kind, ReaperKind::Unknown);
        out.clear();
        // 2.5 s = 250 ticks at 100 Hz.
        e.on_release(&reap(100, 2_500 * MS + 3, 77, 52 * SEC), &mut out);
        let r = reapings(&out)[0];
        assert!(r.preexisting && r.was_reported);
        assert_eq!(r.reaper_kind, ReaperKind::Subreaper);
        assert_eq!(r.zombie_ns, None);
        let c = e.counts();
        assert_eq!((c.zombies, c.preexisting), (1, 1));
    }

    #[test]
    fn missed_zombie_gets_the_threshold_and_merges_with_its_late_exit() {
        let mut e = engine();
        let mut out = Vec::new();
        assert!(e.add_unseen(unseen(100, 250, false), 50 * SEC));
        assert!(e.tick(50 * SEC + THRESHOLD - 1).is_empty());
        // Its exit record was still in the ring buffer.
        e.on_exit(&exit(100, 2_500 * MS, 10, 49 * SEC), &mut out);
        assert_eq!(e.pending_len(), 1);
        assert!(e.knows(100, 250));
        let due = e.tick(54 * SEC);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].id, Id::Seen(key(100, 2_500 * MS)));
        let f = report(e.resolve(due[0].id, zombie(10), 54 * SEC));
        assert_eq!(f.age_ns, Some(5 * SEC));
        assert!(!f.preexisting);
    }

    #[test]
    fn unseen_zombie_whose_exit_was_in_flight_is_not_preexisting() {
        let mut e = engine();
        e.add_unseen(unseen(100, 250, true), 50 * SEC);
        e.on_exit(&exit(100, 2_500 * MS, 10, 49 * SEC), &mut Vec::new());
        assert!(e.tick(50 * SEC).is_empty(), "it gets the threshold");
        let due = e.tick(54 * SEC);
        let f = report(e.resolve(due[0].id, zombie(10), 54 * SEC));
        assert!(!f.preexisting);
        assert_eq!(e.counts().preexisting, 0);
    }

    #[test]
    fn reported_unseen_zombie_stays_reported_when_its_exit_arrives() {
        let mut e = engine();
        let mut out = Vec::new();
        e.add_unseen(unseen(100, 250, true), 50 * SEC);
        let due = e.tick(51 * SEC);
        report(e.resolve(due[0].id, zombie(10), 51 * SEC));
        e.on_exit(&exit(100, 2_500 * MS, 10, 49 * SEC), &mut out);
        assert!(e.tick(100 * SEC).is_empty(), "not reported twice");
        e.on_release(&reap(100, 2_500 * MS, 10, 101 * SEC), &mut out);
        let r = reapings(&out)[0];
        assert!(r.was_reported && r.preexisting);
    }

    #[test]
    fn wait_statistics_per_caller() {
        let mut e = engine();
        e.on_wait(&wait(10, SEC, WaitTarget::Any, WNOHANG, 0), &mut Vec::new());
        e.on_wait(
            &wait(10, 2 * SEC, WaitTarget::Pid(100), 0, 100),
            &mut Vec::new(),
        );
        e.on_wait(&wait(10, 3 * SEC, WaitTarget::Any, 0, -10), &mut Vec::new());
        e.on_wait(
            &wait(10, 4 * SEC, WaitTarget::Pgid(0), WNOWAIT, 100),
            &mut Vec::new(),
        );
        let s = e.wait_stats(10);
        assert_eq!(
            (s.calls, s.empty, s.reaped, s.errors, s.peeks),
            (4, 1, 1, 1, 1)
        );
        assert_eq!(s.last_ns, Some(4 * SEC));
        let targets = |s: &WaitStats| -> Vec<(WaitTarget, u64)> {
            s.targets.iter().map(|t| (t.target, t.last_ns)).collect()
        };
        // Newest first; `Any` asked twice keeps its last time.
        assert_eq!(
            targets(&s),
            [
                (WaitTarget::Pgid(0), 4 * SEC),
                (WaitTarget::Any, 3 * SEC),
                (WaitTarget::Pid(100), 2 * SEC)
            ]
        );
        assert_eq!(e.wait_stats(11), WaitStats::default());
        for pid in 0..100 {
            e.on_wait(
                &wait(10, 5 * SEC + pid as u64, WaitTarget::Pid(pid), 0, -10),
                &mut Vec::new(),
            );
        }
        // The last ones asked for, not the first.
        let last: Vec<(WaitTarget, u64)> = (92..100)
            .rev()
            .map(|pid| (WaitTarget::Pid(pid), 5 * SEC + pid as u64))
            .collect();
        assert_eq!(targets(&e.wait_stats(10)), last);
        assert!(e.wait_stats(10).full, "older targets were pushed out");
        // A record that arrives late (another CPU's) sorts by its time.
        e.on_wait(
            &wait(10, 5 * SEC + 95, WaitTarget::Pgid(3), 0, -10),
            &mut Vec::new(),
        );
        let s = e.wait_stats(10);
        assert_eq!(s.targets.len(), RECENT_TARGETS);
        assert_eq!(s.targets[4].target, WaitTarget::Pgid(3), "{s:?}");
        // The caller's exit ends its history (its pid may be reused).
        e.on_exit(&exit(10, 1, 1, 6 * SEC), &mut Vec::new());
        assert_eq!(e.wait_stats(10), WaitStats::default());
        // So does an exec: a new program with the same pid.
        e.on_wait(&wait(10, 7 * SEC, WaitTarget::Any, 0, -10), &mut Vec::new());
        e.on_event(
            &Event::Exec(crate::model::event::Exec {
                pid: 10,
                ts_ns: 8 * SEC,
            }),
            &mut Vec::new(),
        );
        assert_eq!(e.wait_stats(10), WaitStats::default());
    }

    #[test]
    fn wait_callers_are_bounded_forgetting_the_idlest() {
        let mut e = Engine::new(Config {
            max_wait_callers: 3,
            ..Config::new(THRESHOLD, HZ)
        });
        for pid in [1, 2, 3] {
            e.on_wait(&wait(pid, SEC, WaitTarget::Any, 0, -10), &mut Vec::new());
        }
        e.on_wait(&wait(1, SEC, WaitTarget::Any, 0, -10), &mut Vec::new());
        e.on_wait(&wait(4, SEC, WaitTarget::Any, 0, -10), &mut Vec::new());
        assert_eq!(e.waits.len(), 3);
        assert_eq!(e.wait_stats(2), WaitStats::default(), "idlest forgotten");
        assert_eq!(e.wait_stats(1).calls, 2);
    }

    #[test]
    fn pending_is_bounded_and_overflow_counted() {
        let mut e = Engine::new(Config {
            max_pending: 2,
            ..Config::new(THRESHOLD, HZ)
        });
        let mut out = Vec::new();
        for pid in 1..=3 {
            e.on_exit(&exit(pid, 7, 10, SEC), &mut out);
        }
        assert!(!e.add_unseen(unseen(9, 1, true), SEC));
        assert_eq!(e.pending_len(), 2);
        assert_eq!(e.counts().overflow, 2);
        assert_eq!(e.counts().exits, 3);
    }

    #[test]
    fn outstanding_groups_by_parent_most_first() {
        let mut e = engine();
        let mut out = Vec::new();
        for (pid, ppid) in [(100, 10), (101, 20), (102, 20), (103, 20)] {
            e.on_exit(&exit(pid, 7, ppid, SEC), &mut out);
        }
        e.on_exit(&exit(104, 7, 30, 30 * SEC), &mut out);
        for due in e.tick(6 * SEC) {
            let ppid = if due.pid == 100 { 10 } else { 20 };
            report(e.resolve(due.id, zombie(ppid), 6 * SEC));
        }
        let groups = e.outstanding(7 * SEC);
        assert_eq!(groups.len(), 2, "unreported children are not outstanding");
        assert_eq!(
            (groups[0].ppid, &groups[0].zombies),
            (20, &vec![101, 102, 103])
        );
        assert_eq!((groups[1].ppid, &groups[1].zombies), (10, &vec![100]));
        assert_eq!(groups[1].parent_comm, b"parent");
    }

    #[test]
    fn storm_of_reaped_children_leaves_nothing_behind() {
        let mut e = engine();
        let mut out = Vec::new();
        for i in 0..100_000u32 {
            let pid = 1_000 + i % 30_000;
            let start = u64::from(i) * 1_000 + 1;
            let t = SEC + u64::from(i) * 10_000;
            e.on_event(&Event::Exit(exit(pid, start, 10, t)), &mut out);
            e.on_event(
                &Event::Wait(wait(10, t + 1, WaitTarget::Any, 0, i64::from(pid))),
                &mut out,
            );
            e.on_event(&Event::Release(reap(pid, start, 10, t + 2)), &mut out);
            if i % 1_000 == 0 {
                assert!(e.tick(t).is_empty());
            }
            out.clear();
        }
        assert!(e.tick(u64::MAX).is_empty());
        assert_eq!(e.pending_len(), 0);
        assert!(e.deadlines.is_empty() && e.by_pid.is_empty() && e.orphan_reaps.is_empty());
        let c = e.counts();
        assert_eq!((c.exits, c.reaps, c.zombies), (100_000, 100_000, 0));
        assert_eq!(c.paired_reaps, 100_000);
        assert_eq!(e.wait_stats(10).reaped, 100_000);
    }
}
