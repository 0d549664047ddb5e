//! Report lines from what the engine concludes and what `/proc` says: an
//! overdue child confirmed still a zombie becomes a `zombie` line with its
//! parent's facts and diagnosis, a reap a `reap` line, the totals a
//! `summary`. `/proc` is asked through [`ProcView`], so the reporter is
//! tested with facts the tests give.

use std::{
    cell::RefCell,
    collections::{HashMap, HashSet},
    path::Path,
    rc::Rc,
    time::{Duration, SystemTime},
};

use crate::{
    containers::Resolver,
    diagnosis::{Facts, diagnose},
    engine::{Config, Counts, Engine, Finding, Id, Outcome, Overdue, Resolution, Unseen, Verdict},
    filter::Filters,
    kernel::clock::Clock,
    model::{
        event::{Command, Event, Exit, ParentName, WaitTarget},
        process::{ContainerNames, Placement, ProcessInfo, TargetState, WaitStats},
        report::{Exited, Frame, Line, Lost, ParentGroup, Reaped, ReaperKind, Summary, Zombie},
    },
    proc::{self, ProcZombie, ZombieState, container::full_id},
    stats::{HeldBy, KernelLatency, Stats},
};

/// Reported zombies re-checked per pass, at most.
const RECHECK_MAX: usize = 512;
/// A reported zombie is re-checked once `/proc` has not confirmed it for
/// this long: a flood's thousands, just confirmed, are left alone.
const RECHECK_AFTER_NS: u64 = 10_000_000_000;
/// A reported zombie that `/proc` no longer shows is taken as reaped, its
/// record lost, only after this long: the kernel's release record comes an
/// RCU grace period after the reap, and lazy RCU batches those for up to
/// 10 s.
const VANISHED_AFTER_NS: u64 = 12_000_000_000;

/// Where exits and reaps are paired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// In the kernel (the default): userspace takes over only the children
    /// overdue there, and the parents' wait calls are tallied there.
    KernelPairs,
    /// In userspace (`--events`): every record streams, and every exit and
    /// reap has its line.
    Stream,
}

/// What the reporter asks `/proc` (see `crate::proc`).
pub trait ProcView {
    /// Whether `pid` is still the zombie that started at `start_ticks`, and
    /// if so where it lived (see `proc::zombie_state_and_placement`).
    fn zombie(
        &self,
        pid: u32,
        start_ticks: u64,
        in_pid_ns: bool,
        parent_cgroup: &mut dyn FnMut(u32) -> Option<Option<String>>,
    ) -> (ZombieState, Placement);
    fn zombie_state(&self, pid: u32, start_ticks: u64) -> ZombieState;
    fn process(&self, pid: u32) -> Option<ProcessInfo>;
    fn child_state(&self, parent: u32, pid: u32) -> TargetState;
    fn comm(&self, pid: u32) -> Option<Vec<u8>>;
    /// Its cgroup v2 path, for `--cgroup`.
    fn cgroup_v2(&self, pid: u32) -> Option<String>;
    /// What the container runtime calls the container of a process in
    /// `cgroup`.
    fn container_names(&self, cgroup: &str) -> ContainerNames;
    /// Names the container of a process placed at `placement`, if any.
    fn name_container(&self, placement: &mut Placement);
}

/// The real `/proc`, and the container runtimes' files.
pub struct Proc {
    containers: RefCell<Resolver>,
}

impl Proc {
    /// With the runtimes' state directories below `runtime_root`.
    pub fn new(runtime_root: &Path) -> Self {
        Self {
            containers: RefCell::new(Resolver::new(runtime_root)),
        }
    }
}

impl ProcView for Proc {
    fn zombie(
        &self,
        pid: u32,
        start_ticks: u64,
        in_pid_ns: bool,
        parent_cgroup: &mut dyn FnMut(u32) -> Option<Option<String>>,
    ) -> (ZombieState, Placement) {
        proc::zombie_state_and_placement(pid, start_ticks, in_pid_ns, parent_cgroup)
    }

    fn zombie_state(&self, pid: u32, start_ticks: u64) -> ZombieState {
        proc::zombie_state(pid, start_ticks)
    }

    fn process(&self, pid: u32) -> Option<ProcessInfo> {
        proc::process_info(pid)
    }

    fn child_state(&self, parent: u32, pid: u32) -> TargetState {
        proc::child_state(parent, pid)
    }

    fn comm(&self, pid: u32) -> Option<Vec<u8>> {
        proc::comm(pid)
    }

    fn cgroup_v2(&self, pid: u32) -> Option<String> {
        proc::cgroup_v2(pid)
    }

    fn container_names(&self, cgroup: &str) -> ContainerNames {
        self.containers.borrow_mut().names_of_cgroup(cgroup)
    }

    fn name_container(&self, placement: &mut Placement) {
        self.containers.borrow_mut().name(placement);
    }
}

/// The wait calls of a parent as the kernel tallied them (the default
/// mode), for the reporter.
pub type Tallies<'a> = &'a dyn Fn(u32) -> Option<WaitStats>;

/// The parent a child (pid, start ns) had before it was adopted alive, as
/// the kernel remembered it; the third argument is its parent now.
pub type Orphans<'a> = &'a dyn Fn(u32, u64, u32) -> Option<ParentName>;

/// Where the parent of a child (pid, start ns) forked it (`--stacks`).
pub type SpawnStackOf<'a> = &'a mut dyn FnMut(u32, u64) -> Option<Vec<Frame>>;

/// What the kernel kept of a child found a zombie, besides its exit.
struct Found {
    /// The parent that forked it, when it was adopted alive.
    original_parent: Option<ParentName>,
    spawn_stack: Option<Vec<Frame>>,
}

/// What is known of a parent when its children are reported.
struct ParentFacts {
    /// `None` when it is gone.
    info: Option<ProcessInfo>,
    /// `None` when wait calls are not traced.
    waits: Option<WaitStats>,
}

pub struct Reporter {
    engine: Engine,
    stats: Stats,
    filters: Filters,
    mode: Mode,
    clock: Clock,
    ticks_per_sec: u64,
    wait_tracing: bool,
    /// When tracing began (boot ns).
    started_ns: u64,
    outcomes: Vec<Outcome>,
    lines: Vec<Line>,
    /// Reported zombies that `/proc` no longer shows, since when (boot ns).
    missing: HashMap<Id, u64>,
    /// The last reported zombie the previous re-check got to, when it did
    /// not get to all.
    recheck_after: Option<Id>,
}

impl Reporter {
    pub fn new(
        threshold: Duration,
        mode: Mode,
        filters: Filters,
        wait_tracing: bool,
        started_ns: u64,
    ) -> Self {
        let threshold_ns = u64::try_from(threshold.as_nanos()).unwrap_or(u64::MAX);
        let ticks_per_sec = procfs::ticks_per_second();
        Self {
            engine: Engine::new(Config::new(threshold_ns, ticks_per_sec)),
            stats: Stats::default(),
            filters,
            mode,
            clock: Clock::new(),
            ticks_per_sec,
            wait_tracing,
            started_ns,
            outcomes: Vec::new(),
            lines: Vec::new(),
            missing: HashMap::new(),
            recheck_after: None,
        }
    }

    /// The lines made since the last call.
    pub fn take_lines(&mut self) -> Vec<Line> {
        std::mem::take(&mut self.lines)
    }

    pub fn counts(&self) -> Counts {
        self.engine.counts()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn outstanding(&self, now_ns: u64) -> Vec<ParentGroup> {
        self.engine.outstanding(now_ns)
    }

    /// When tracing began (boot ns).
    pub fn started_ns(&self) -> u64 {
        self.started_ns
    }

    /// When the engine has something due next (boot ns).
    pub fn next_deadline(&self) -> Option<u64> {
        self.engine.next_deadline()
    }

    /// Whether a process with this pid is tracked.
    pub fn tracks(&self, pid: u32) -> bool {
        self.engine.tracks(pid)
    }

    pub fn ticks_per_sec(&self) -> u64 {
        self.ticks_per_sec
    }

    /// A record from the kernel.
    pub fn on_event(&mut self, event: &Event) {
        self.engine.on_event(event, &mut self.outcomes);
    }

    /// A child taken over from the kernel, overdue there.
    pub fn on_exit(&mut self, exit: &Exit) {
        self.engine.on_exit(exit, &mut self.outcomes);
    }

    /// `n` more records the kernel dropped, `total` in all.
    pub fn on_lost(&mut self, n: u64, total: u64) {
        self.engine.on_lost(n);
        self.lines.push(Line::Lost(Lost {
            ts: SystemTime::now(),
            count: n,
            total,
        }));
    }

    /// Lines for what the engine concluded from the records so far: every
    /// exit and reap with `--events`, else the reaps of reported zombies.
    pub fn settle(&mut self) {
        let stream = self.mode == Mode::Stream;
        for outcome in std::mem::take(&mut self.outcomes) {
            match outcome {
                Outcome::Exited { exit, auto_reap } if stream => {
                    self.lines.push(Line::Exited(Exited {
                        ts: self.clock.wall(exit.ts_ns),
                        pid: exit.key.pid,
                        tid: exit.tid,
                        ppid: exit.ppid,
                        comm: exit.comm,
                        parent_comm: exit.parent_comm,
                        status: exit.status,
                        auto_reap,
                        command: exit.command,
                    }));
                }
                Outcome::Exited { .. } => {}
                Outcome::Reaped(r) => {
                    if let (Some(reaper), Some(comm), Some(latency), Some(ts)) =
                        (r.reaper_pid, r.reaper_comm, r.zombie_ns, r.ts_ns)
                    {
                        self.stats.reaped(reaper, comm.as_bytes(), latency, ts);
                    }
                    // With filters, the kernel also sends reaps of children
                    // whose exit it filtered out: not ours to show.
                    let filtered_out = !self.filters.is_empty()
                        && r.reaper_kind == ReaperKind::Unknown
                        && !r.was_reported;
                    if (stream || r.was_reported) && !filtered_out {
                        self.reaped(r);
                    }
                }
            }
        }
    }

    fn reaped(&mut self, reaped: Reaped) {
        self.lines.push(Line::Reaped {
            ts: reaped
                .ts_ns
                .map_or_else(SystemTime::now, |ns| self.clock.wall(ns)),
            reaped,
        });
    }

    /// Tracks the zombies of `zombies` (a `/proc` scan) that neither the
    /// engine nor the kernel (`held`: pid and start ticks) knows and the
    /// filters keep; returns their pids, whose reaps the kernel must send.
    pub fn scan(
        &mut self,
        zombies: Vec<ProcZombie>,
        held: &HashSet<(u32, u64)>,
        proc: &impl ProcView,
        preexisting: bool,
        now: u64,
    ) -> Vec<u32> {
        // A leaking parent may hold thousands: read each parent once.
        let mut parents = HashMap::new();
        let mut added = Vec::new();
        for z in zombies {
            if self.engine.knows(z.pid, z.start_ticks) || held.contains(&(z.pid, z.start_ticks)) {
                continue;
            }
            let by_container = !self.filters.containers.is_empty();
            let cgroup = (self.filters.cgroup.is_some() || by_container)
                .then(|| proc.cgroup_v2(z.pid))
                .flatten();
            if !self
                .filters
                .matches(z.pid, z.ppid, z.comm.as_bytes(), cgroup.as_deref())
            {
                continue;
            }
            if by_container {
                let id = cgroup.as_deref().and_then(full_id);
                let names = cgroup
                    .as_deref()
                    .map(|c| proc.container_names(c))
                    .unwrap_or_default();
                if !self.filters.wants_container(id, &names) {
                    continue;
                }
            }
            let parent_comm = comm_of(proc, &mut parents, z.ppid);
            let unseen = Unseen {
                pid: z.pid,
                start_ticks: z.start_ticks,
                comm: z.comm,
                ppid: z.ppid,
                parent_comm,
                preexisting,
            };
            if self.engine.add_unseen(unseen, now) {
                added.push(z.pid);
            }
        }
        added
    }

    /// Overdue children: confirmed in `/proc`, then reported. A leaking
    /// parent may have thousands due at once: what is known of a parent is
    /// read once a tick, not once a child.
    pub fn tick(
        &mut self,
        proc: &impl ProcView,
        tallies: Tallies<'_>,
        orphans: Orphans<'_>,
        spawn_stack: SpawnStackOf<'_>,
        now: u64,
    ) {
        let mut parents: HashMap<u32, Rc<ParentFacts>> = HashMap::new();
        for due in self.engine.tick(now) {
            let mut facts_of = |ppid| {
                Rc::clone(
                    parents
                        .entry(ppid)
                        .or_insert_with(|| Rc::new(self.parent_facts(proc, tallies, ppid))),
                )
            };
            // Its parent's cgroup, when it was in its parent's cgroups at
            // exit and that parent is its parent still.
            let mut parent_cgroup = |ppid| {
                (due.cgroups_of == Some(ppid))
                    .then(|| {
                        let facts = facts_of(ppid);
                        let parent = facts.info.as_ref()?;
                        Some(parent.placement.cgroup.clone().filter(|c| c != "/"))
                    })
                    .flatten()
            };
            let (state, mut placement) =
                proc.zombie(due.pid, due.start_ticks, due.in_pid_ns, &mut parent_cgroup);
            if matches!(state, ZombieState::Zombie { .. }) {
                proc.name_container(&mut placement);
            }
            let verdict = match state {
                ZombieState::Zombie { .. } if self.unwanted(&placement) => Verdict::Gone,
                ZombieState::Zombie { ppid } => {
                    let facts = facts_of(ppid);
                    let parent_comm = facts
                        .info
                        .as_ref()
                        .map(|p| p.comm.clone())
                        .unwrap_or_default();
                    let verdict = Verdict::Zombie { ppid, parent_comm };
                    if let Resolution::Report(finding) = self.engine.resolve(due.id, verdict, now) {
                        let command = finding
                            .command
                            .as_deref()
                            .map_or(finding.comm.as_bytes(), Command::name);
                        self.parent_held_zombie(
                            ppid,
                            facts.info.as_ref(),
                            command,
                            now,
                            finding.preexisting,
                        );
                        let original_parent =
                            finding.original_parent.or_else(|| match finding.id {
                                Id::Seen(key) => orphans(key.pid, key.start_ns, finding.ppid),
                                Id::Unseen { .. } => None,
                            });
                        let spawn_stack = match finding.id {
                            Id::Seen(key) => spawn_stack(key.pid, key.start_ns),
                            Id::Unseen { .. } => None,
                        };
                        let found = Found {
                            original_parent,
                            spawn_stack,
                        };
                        self.report(&finding, found, &facts, placement, now);
                    }
                    continue;
                }
                ZombieState::NotZombie | ZombieState::Unknown => Verdict::NotYet,
                ZombieState::Gone => Verdict::Gone,
            };
            self.engine.resolve(due.id, verdict, now);
        }
    }

    /// A zombie placed at `placement` (its container named) is in a
    /// container the options leave out. The kernel traces a container for
    /// a moment before its names say whether it is wanted (see
    /// `session::containers`): one whose names say it is not is dropped
    /// here. Without an id or names, the kernel's choice stands.
    fn unwanted(&self, placement: &Placement) -> bool {
        let id = placement.cgroup.as_deref().and_then(full_id);
        id.is_some()
            && placement.names != ContainerNames::default()
            && !self.filters.wants_container(id, &placement.names)
    }

    /// For the per-parent table: its leak rate counts from when it started
    /// or tracing did, whichever is later.
    fn parent_held_zombie(
        &mut self,
        ppid: u32,
        parent: Option<&ProcessInfo>,
        command: &[u8],
        now: u64,
        preexisting: bool,
    ) {
        let since = parent.map_or(self.started_ns, |p| {
            proc::boot_ns_from_ticks(p.start_ticks).max(self.started_ns)
        });
        let (comm, cmdline) = parent.map_or((&[][..], &[][..]), |p| (&p.comm[..], &p.cmdline[..]));
        let held_by = HeldBy {
            ppid,
            comm,
            cmdline,
            watched_since_ns: since,
        };
        self.stats.zombie(held_by, command, now, preexisting);
    }

    /// Process `ppid` as `/proc` shows it now (the wait calls its threads
    /// are in included), and the wait calls it made, with what the pids it
    /// asked for are now.
    fn parent_facts(&self, proc: &impl ProcView, tallies: Tallies<'_>, ppid: u32) -> ParentFacts {
        let mut info = proc.process(ppid);
        if let Some(info) = &mut info {
            proc.name_container(&mut info.placement);
        }
        let waits = self.wait_tracing.then(|| {
            let mut waits = match self.mode {
                Mode::KernelPairs => tallies(ppid).unwrap_or_default(),
                Mode::Stream => self.engine.wait_stats(ppid),
            };
            // Pids are the host's only for a parent in the host's pid
            // namespace.
            if info.as_ref().is_some_and(|p| p.placement.ns_pid.is_none()) {
                for recent in &mut waits.targets {
                    if let WaitTarget::Pid(pid) = recent.target
                        && let Ok(pid) = u32::try_from(pid)
                    {
                        recent.state = Some(proc.child_state(ppid, pid));
                    }
                }
            }
            waits
        });
        ParentFacts { info, waits }
    }

    fn report(
        &mut self,
        finding: &Finding,
        found: Found,
        parent: &ParentFacts,
        placement: Placement,
        now: u64,
    ) {
        let Found {
            original_parent,
            spawn_stack,
        } = found;
        let facts = Facts {
            pid: finding.pid,
            placement: &placement,
            age_ns: finding.age_ns,
            preexisting: finding.preexisting,
            original_parent,
            parent: parent.info.as_ref(),
            parent_waits: parent.waits.as_ref(),
        };
        let diagnosis = diagnose(&facts, now, self.started_ns);
        self.lines.push(Line::Zombie(Box::new(Zombie {
            ts: SystemTime::now(),
            pid: finding.pid,
            comm: finding.comm,
            status: finding.status,
            age_ns: finding.age_ns,
            preexisting: finding.preexisting,
            ppid_at_exit: finding.ppid_at_exit,
            original_parent,
            ppid: finding.ppid,
            parent: parent.info.clone(),
            placement,
            parent_waits: parent.waits.clone(),
            diagnosis,
            command: finding.command.clone(),
            spawn_stack,
        })));
    }

    /// Reported zombies: still there (under which parent), or gone without
    /// a reap record.
    pub fn recheck(&mut self, proc: &impl ProcView, now: u64) {
        let mut reported = self.engine.reported(now.saturating_sub(RECHECK_AFTER_NS));
        reported.sort_unstable_by_key(|z| z.id);
        self.missing
            .retain(|id, _| reported.binary_search_by_key(id, |z| z.id).is_ok());
        // A pass checks a bounded batch, going on where the last one
        // stopped: thousands of zombies are gone through over a few passes
        // at a steady cost, not all at once.
        let start = self
            .recheck_after
            .map_or(0, |after| reported.partition_point(|z| z.id <= after));
        let batch: Vec<Overdue> = reported[start..]
            .iter()
            .chain(&reported[..start])
            .take(RECHECK_MAX)
            .copied()
            .collect();
        self.recheck_after = batch
            .last()
            .map(|z| z.id)
            .filter(|_| reported.len() > RECHECK_MAX);
        let mut parents = HashMap::new();
        for z in batch {
            match proc.zombie_state(z.pid, z.start_ticks) {
                ZombieState::Zombie { ppid } => {
                    self.missing.remove(&z.id);
                    let parent_comm = comm_of(proc, &mut parents, ppid);
                    self.engine
                        .resolve(z.id, Verdict::Zombie { ppid, parent_comm }, now);
                }
                // No answer: nothing learnt.
                ZombieState::Unknown => {}
                ZombieState::NotZombie | ZombieState::Gone => {
                    let since = *self.missing.entry(z.id).or_insert(now);
                    if now.saturating_sub(since) >= VANISHED_AFTER_NS {
                        self.missing.remove(&z.id);
                        if let Resolution::Vanished(r) =
                            self.engine.resolve(z.id, Verdict::Gone, now)
                        {
                            self.reaped(r);
                        }
                    }
                }
            }
        }
    }

    /// Totals so far (`last` on a clean stop), with the exits and reaps
    /// counted and the reap latencies the kernel kept.
    pub fn summary(&mut self, kernel: &KernelLatency, totals: (u64, u64), last: bool, now: u64) {
        let counts = self.engine.counts();
        let outstanding = self.engine.outstanding(now);
        let (exits, reaps) = totals;
        self.lines.push(Line::Summary(Summary {
            ts: SystemTime::now(),
            last,
            duration_ns: now.saturating_sub(self.started_ns),
            exits,
            reaps,
            zombies: counts.zombies,
            preexisting: counts.preexisting,
            lost: counts.lost,
            parents: self.stats.parents(&outstanding, now, kernel),
            outstanding,
            reap_latency: self.stats.reap_latency(kernel).summary(),
            reap_latency_by_comm: self.stats.reap_latency_by_comm(kernel),
        }));
    }
}

/// The name of process `pid`, read from `/proc` once per `cache`.
fn comm_of(proc: &impl ProcView, cache: &mut HashMap<u32, Vec<u8>>, pid: u32) -> Vec<u8> {
    cache
        .entry(pid)
        .or_insert_with(|| proc.comm(pid).unwrap_or_default())
        .clone()
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::model::{
        diagnosis::Cause,
        event::{Comm, ExitStatus, ProcKey, Release},
        process::{Handler, RecentWait, Sigchld, WaitNow},
    };

    const MS: u64 = 1_000_000;
    const SEC: u64 = 1_000 * MS;

    /// `/proc` as a test says it is, counting what is asked.
    #[derive(Default)]
    struct FakeProc {
        /// Zombies by pid: their parent now.
        zombies: HashMap<u32, u32>,
        processes: HashMap<u32, ProcessInfo>,
        children: HashMap<u32, TargetState>,
        /// The cgroup a zombie's own entry shows.
        own_cgroup: Option<String>,
        process_reads: RefCell<u32>,
        cgroup_reads: RefCell<u32>,
    }

    impl ProcView for FakeProc {
        fn zombie(
            &self,
            pid: u32,
            _start_ticks: u64,
            _in_pid_ns: bool,
            parent_cgroup: &mut dyn FnMut(u32) -> Option<Option<String>>,
        ) -> (ZombieState, Placement) {
            let Some(&ppid) = self.zombies.get(&pid) else {
                return (ZombieState::Gone, Placement::default());
            };
            let cgroup = parent_cgroup(ppid).unwrap_or_else(|| {
                *self.cgroup_reads.borrow_mut() += 1;
                self.own_cgroup.clone()
            });
            let placement = Placement {
                cgroup,
                ..Placement::default()
            };
            (ZombieState::Zombie { ppid }, placement)
        }

        fn zombie_state(&self, pid: u32, _start_ticks: u64) -> ZombieState {
            match self.zombies.get(&pid) {
                Some(&ppid) => ZombieState::Zombie { ppid },
                None => ZombieState::Gone,
            }
        }

        fn process(&self, pid: u32) -> Option<ProcessInfo> {
            *self.process_reads.borrow_mut() += 1;
            self.processes.get(&pid).cloned()
        }

        fn child_state(&self, _parent: u32, pid: u32) -> TargetState {
            self.children
                .get(&pid)
                .copied()
                .unwrap_or(TargetState::Gone)
        }

        fn comm(&self, pid: u32) -> Option<Vec<u8>> {
            self.processes.get(&pid).map(|p| p.comm.clone())
        }

        fn cgroup_v2(&self, _pid: u32) -> Option<String> {
            None
        }

        fn container_names(&self, _cgroup: &str) -> ContainerNames {
            ContainerNames::default()
        }

        fn name_container(&self, _placement: &mut Placement) {}
    }

    fn parent(pid: u32) -> ProcessInfo {
        ProcessInfo {
            pid,
            comm: b"leaker".to_vec(),
            state: 'S',
            sigchld: Some(Sigchld {
                ignored: false,
                caught: false,
                blocked: false,
            }),
            threads: 1,
            placement: Placement {
                cgroup: Some("/app".to_owned()),
                ..Placement::default()
            },
            ..ProcessInfo::default()
        }
    }

    fn exit(pid: u32, ppid: u32, ts_ns: u64, parent_cgroups: bool) -> Exit {
        Exit {
            command: None,
            key: ProcKey {
                pid,
                start_ns: 100 * MS,
            },
            tid: pid,
            ppid,
            ts_ns,
            status: ExitStatus::Exited(0),
            comm: Comm::new(b"child"),
            parent_comm: Comm::new(b"leaker"),
            parent_ignores_sigchld: false,
            ptraced: false,
            not_sigchld: false,
            leader_went_first: false,
            in_pid_ns: false,
            parent_cgroups,
        }
    }

    fn reporter(mode: Mode) -> Reporter {
        Reporter::new(Duration::from_secs(1), mode, Filters::default(), true, 0)
    }

    fn zombies(lines: &[Line]) -> Vec<&Zombie> {
        lines
            .iter()
            .filter_map(|l| match l {
                Line::Zombie(z) => Some(&**z),
                _ => None,
            })
            .collect()
    }

    /// A child adopted alive names the parent that forked it, as the
    /// kernel remembered it; one the kernel knows nothing of names none.
    #[test]
    fn an_adopted_child_names_the_parent_that_forked_it() {
        let mut proc = FakeProc::default();
        proc.processes.insert(1, parent(1));
        let mut r = reporter(Mode::KernelPairs);
        for pid in [100, 101] {
            proc.zombies.insert(pid, 1);
            r.on_exit(&exit(pid, 1, SEC, true));
        }
        r.settle();
        let sh = ParentName {
            pid: 55,
            comm: crate::model::event::Comm::new(b"sh"),
        };
        let orphans = |pid, start_ns, ppid| {
            assert_eq!((start_ns, ppid), (100 * MS, 1));
            (pid == 100).then_some(sh)
        };
        // With --stacks, where the kernel kept the parent's stack.
        let site = Frame {
            symbol: Some("spawn_leaky".into()),
            ..Frame::default()
        };
        let mut spawn_stack = |pid, start_ns| {
            assert_eq!(start_ns, 100 * MS);
            (pid == 100).then(|| vec![site.clone()])
        };
        r.tick(&proc, &|_| None, &orphans, &mut spawn_stack, 2 * SEC);
        let lines = r.take_lines();
        let reported = zombies(&lines);
        let of = |pid| reported.iter().find(|z| z.pid == pid).unwrap();
        assert_eq!(of(100).original_parent, Some(sh));
        assert_eq!(of(101).original_parent, None);
        assert_eq!(of(100).spawn_stack, Some(vec![site.clone()]));
        assert_eq!(of(101).spawn_stack, None);
    }

    /// A parent leaking many children: one report each, with the parent's
    /// facts read once for the tick, its cgroup taken for the children that
    /// shared it, and the diagnosis from the tallies given.
    #[test]
    fn a_parent_is_read_once_a_tick_for_all_its_children() {
        let mut proc = FakeProc {
            own_cgroup: Some("/elsewhere".to_owned()),
            ..FakeProc::default()
        };
        proc.processes.insert(7, parent(7));
        let mut r = reporter(Mode::KernelPairs);
        for pid in 100..150 {
            proc.zombies.insert(pid, 7);
            r.on_exit(&exit(pid, 7, SEC, pid != 149));
        }
        r.settle();
        let tallies = |_| None;
        r.tick(
            &proc,
            &tallies,
            &|_, _, _| None,
            &mut |_, _| None,
            SEC + 999 * MS,
        );
        assert!(r.take_lines().is_empty(), "not due yet");
        r.tick(&proc, &tallies, &|_, _, _| None, &mut |_, _| None, 2 * SEC);
        let lines = r.take_lines();
        let reported = zombies(&lines);
        assert_eq!(reported.len(), 50);
        assert_eq!(*proc.process_reads.borrow(), 1);
        // Only the child that left its parent's cgroups reads its own.
        assert_eq!(*proc.cgroup_reads.borrow(), 1);
        for z in &reported {
            let expected = if z.pid == 149 { "/elsewhere" } else { "/app" };
            assert_eq!(z.placement.cgroup.as_deref(), Some(expected), "{}", z.pid);
            assert_eq!(z.ppid, 7);
            assert_eq!(z.age_ns, Some(SEC));
            assert_eq!(
                z.diagnosis.cause,
                Cause::NeverWaited {
                    handler: Handler::Default
                }
            );
        }
        assert_eq!(r.counts().zombies, 50);
        assert_eq!(r.outstanding(2 * SEC)[0].zombies.len(), 50);
    }

    /// The kernel's tally of the parent's wait calls (the default mode),
    /// with what the pids it asked for are now, and the call it is in.
    #[test]
    fn the_parents_wait_calls_make_the_diagnosis() {
        let mut proc = FakeProc::default();
        let mut p = parent(7);
        p.waits_now = vec![WaitNow {
            tid: 7,
            syscall: crate::model::event::WaitSyscall::Wait4,
            target: WaitTarget::Pid(300),
            options: 0,
            child: Some(300),
            state: Some(TargetState::LiveChild),
        }];
        proc.processes.insert(7, p);
        proc.zombies.insert(100, 7);
        proc.children.insert(300, TargetState::LiveChild);
        let mut r = reporter(Mode::KernelPairs);
        r.on_exit(&exit(100, 7, SEC, true));
        let tallies = |ppid: u32| {
            (ppid == 7).then(|| WaitStats {
                calls: 20,
                reaped: 20,
                last_ns: Some(SEC - MS),
                targets: vec![RecentWait {
                    target: WaitTarget::Pid(299),
                    last_ns: SEC - MS,
                    state: None,
                }],
                ..WaitStats::default()
            })
        };
        r.tick(&proc, &tallies, &|_, _, _| None, &mut |_, _| None, 2 * SEC);
        let lines = r.take_lines();
        let z = zombies(&lines)[0];
        let waits = z.parent_waits.as_ref().expect("traced");
        assert_eq!(waits.calls, 20);
        // The pid it reaped last is gone now.
        assert_eq!(waits.targets[0].state, Some(TargetState::Gone));
        assert!(matches!(
            &z.diagnosis.cause,
            Cause::BlockedOnOtherChildren { calls } if calls[0].child == Some(300)
        ));
    }

    /// A child reaped before it was due, or gone from `/proc` when due, is
    /// never reported; a reported one that vanishes without a reap record
    /// gets its reap line once it has been missing long enough.
    #[test]
    fn no_false_report_and_vanished_zombies_are_said() {
        let mut proc = FakeProc::default();
        proc.processes.insert(7, parent(7));
        let mut r = reporter(Mode::Stream);
        r.on_event(&Event::Exit(exit(100, 7, SEC, true)));
        r.on_event(&Event::Exit(exit(101, 7, SEC, true)));
        r.on_event(&Event::Release(Release {
            key: ProcKey {
                pid: 100,
                start_ns: 100 * MS,
            },
            ts_ns: SEC + MS,
            comm: Comm::new(b"child"),
            reaper_pid: 7,
            reaper_comm: Comm::new(b"leaker"),
        }));
        r.settle();
        let lines = r.take_lines();
        // With --events: both exits and the reap have their lines.
        assert_eq!(
            lines
                .iter()
                .filter(|l| matches!(l, Line::Exited(_)))
                .count(),
            2
        );
        assert!(
            lines
                .iter()
                .any(|l| matches!(l, Line::Reaped { reaped, .. } if reaped.pid == 100))
        );
        // 101 is gone from /proc when due: no report.
        r.tick(&proc, &|_| None, &|_, _, _| None, &mut |_, _| None, 2 * SEC);
        assert!(zombies(&r.take_lines()).is_empty());

        proc.zombies.insert(102, 7);
        r.on_event(&Event::Exit(exit(102, 7, 3 * SEC, true)));
        r.settle();
        r.take_lines();
        r.tick(&proc, &|_| None, &|_, _, _| None, &mut |_, _| None, 4 * SEC);
        assert_eq!(zombies(&r.take_lines()).len(), 1);
        // Its reap record is lost; /proc no longer shows it.
        proc.zombies.remove(&102);
        r.recheck(&proc, 15 * SEC);
        assert!(r.take_lines().is_empty(), "missing, not yet vanished");
        r.recheck(&proc, 27 * SEC);
        let lines = r.take_lines();
        assert!(
            matches!(&lines[..], [Line::Reaped { reaped, .. }]
                if reaped.pid == 102 && reaped.reaper_kind == ReaperKind::Unknown),
            "{lines:?}"
        );
    }

    /// The start-up scan: zombies the engine does not know are added (and
    /// their pids returned, for the kernel to send their reaps), reported
    /// at once as pre-existing.
    #[test]
    fn a_scan_adds_what_is_unknown() {
        let mut proc = FakeProc::default();
        proc.processes.insert(7, parent(7));
        proc.zombies.insert(200, 7);
        let mut r = reporter(Mode::KernelPairs);
        let found = |pid| ProcZombie {
            pid,
            comm: Comm::new(b"old"),
            ppid: 7,
            start_ticks: 5,
        };
        let held = HashSet::from([(201, 5)]);
        let added = r.scan(vec![found(200), found(201)], &held, &proc, true, SEC);
        assert_eq!(added, [200], "201's exit is held in the kernel");
        r.tick(&proc, &|_| None, &|_, _, _| None, &mut |_, _| None, SEC);
        let lines = r.take_lines();
        let z = zombies(&lines)[0];
        assert!(z.preexisting && z.age_ns.is_none());
        assert_eq!(r.counts().preexisting, 1);
        assert!(r.scan(vec![found(200)], &held, &proc, true, SEC).is_empty());
    }
}
