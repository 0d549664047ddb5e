//! One tracing session: kernel records into the engine, the engine's
//! questions to `/proc`, findings out as lines (stdout, `--output`,
//! `--metrics`), until it is told to stop.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    io,
    net::SocketAddr,
    os::fd::{AsRawFd, RawFd},
    path::PathBuf,
    rc::Rc,
    time::{Duration, SystemTime},
};

use anyhow::{Context as _, Result};
use aya::maps::{MapData, RingBuf};
use tokio::{
    io::{
        Interest,
        unix::{AsyncFd, AsyncFdReadyGuard},
    },
    net::TcpListener,
    signal::unix::{SignalKind, signal},
    time::MissedTickBehavior,
};

pub mod writer;

use crate::{
    diagnosis::{Facts, diagnose},
    engine::{Config, Engine, Finding, Id, Output, Overdue, Reaping, Resolution, Unseen, Verdict},
    filter::{self, Filters},
    kernel::{
        clock::{self, Clock},
        decode,
        load::{self as loader, Counters, Probes, Tracer},
        privileges,
    },
    metrics::Metrics,
    model::{
        event::{Comm, WaitTarget},
        process::{Placement, ProcessInfo, WaitStats},
        report::{Exited, Line, Lost, ParentGroup, Ready, Reaped, ReaperKind, Summary, Zombie},
        time::ns_to_ticks,
    },
    output::{
        Encoder, Format,
        flood::{FloodGate, Shown},
    },
    proc::{self as inspect, ZombieState},
    stats::{KernelLatency, Log2Hist, Stats},
};
use writer::{WriteError, Writer};
use zombie_trace_common::{ExitRecord, HANDED_MAX, PENDING_MAX};

/// The ring buffer is drained and overdue children are checked this often:
/// a report comes at most this late after its threshold. (The kernel side
/// wakes the reader early only when the ring is a quarter full.)
const TICK: Duration = Duration::from_millis(100);
/// Overdue children are checked at most this often: in a flood, a batch
/// every few milliseconds costs less than a wakeup per child.
const DUE_AT_MOST_EVERY: Duration = Duration::from_millis(10);
/// Kernel counters (lost records) are read this often.
const COUNTERS_EVERY: u64 = 10;
/// Reported zombies are re-checked in `/proc` this often, in case their
/// reap record was lost.
const RECHECK_EVERY: u64 = 20;
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
/// Ring buffer size: about 50,000 records of slack for a stalled reader.
const RING_BYTES: u32 = 1 << 22;

pub struct Options {
    pub filters: Filters,
    pub threshold: Duration,
    pub format: Format,
    /// Whether to write to stdout (it was open at start).
    pub stdout: bool,
    pub events: bool,
    /// Stop by itself after this long.
    pub duration: Option<Duration>,
    /// Also append JSON lines here (reopened on SIGHUP).
    pub output: Option<PathBuf>,
    /// Print a summary this often, not only at the end.
    pub summary_interval: Option<Duration>,
    /// Serve OpenMetrics here.
    pub metrics: Option<SocketAddr>,
}

/// The logger's descriptor, watched while the logger itself stays outside
/// the AsyncFd (its `flush` needs `&mut`).
struct LoggerFd(RawFd);

impl AsRawFd for LoggerFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// Loads the programs and traces until SIGINT, SIGTERM, the end of
/// `--duration`, or until its output is closed. Everything is detached when
/// it returns.
pub async fn run(options: Options) -> Result<()> {
    // Before anything is loaded: a bad path is the operator's to fix first.
    let file = match &options.output {
        Some(path) => Some(Sink::new(
            Format::Json,
            Writer::file(path).with_context(|| output_error(path))?,
        )),
        None => None,
    };
    let listener = match options.metrics {
        Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| {
            format!("cannot serve --metrics on {addr}: is the port in use? pick another")
        })?),
        None => None,
    };
    let Tracer {
        events,
        mut logger,
        mut probes,
    } = loader::load(&loader::Options {
        ring_bytes: RING_BYTES,
        filter: options.filters.to_kernel(),
        stream: options.events,
    })?;
    // Attached: the rest of the run needs far less than it took to get here.
    match privileges::drop_all_but_kept() {
        Ok(left) => log::debug!("capabilities dropped, left: {left:?}"),
        Err(e) => log::warn!("{e}: the tracer keeps them for this run"),
    }
    if let Some(why) = &probes.wait_tracing_error {
        log::warn!(
            "wait4/waitid calls are not traced ({why}): reports will not say whether the parent \
             calls wait; mount tracefs (mount -t tracefs nodev /sys/kernel/tracing) and restart"
        );
    }
    // SAFETY: the ring buffer owns its descriptor, so it stays open and the
    // same for as long as the AsyncFd that owns the ring buffer.
    let mut ring = unsafe { AsyncFd::register_with_interest(events, Interest::READABLE) }
        .map_err(io::Error::from)
        .context("cannot watch the ring buffer with epoll")?;
    let logs = match logger.as_ref() {
        // SAFETY: the logger owns the descriptor and outlives this AsyncFd:
        // `logs` is declared after `logger`, so it is dropped first on every
        // path (and explicitly so at the end).
        Some(l) => Some(
            unsafe { AsyncFd::register_with_interest(LoggerFd(l.as_raw_fd()), Interest::READABLE) }
                .map_err(io::Error::from)
                .context("cannot watch the eBPF log buffer with epoll")?,
        ),
        None => None,
    };
    let mut sigint = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut sigterm = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;

    // Only with a file to reopen does SIGHUP not end the tracer.
    let mut sighup = match file {
        Some(_) => Some(signal(SignalKind::hangup()).context("cannot handle SIGHUP")?),
        None => None,
    };
    let mut session = Session::new(&options, probes.wait_tracing, file);
    let server = listener.map(|listener| {
        let metrics = Metrics::new();
        let server = tokio::spawn(metrics.serve(listener));
        session.metrics = Some(metrics);
        server
    });
    session.start(ring.get_mut(), &mut probes)?;

    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut ticks: u64 = 0;
    // Overdue children are checked when the next one falls due, not only
    // on the tick: a report is late by its own checks, not by the tick's
    // phase.
    let due = tokio::time::sleep(session.until_due());
    tokio::pin!(due);
    let time_is_up = until(options.duration);
    tokio::pin!(time_is_up);
    let mut summaries = options
        .summary_interval
        .map(|every| tokio::time::interval_at(tokio::time::Instant::now() + every, every));
    let ended = loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard.context("waiting on the ring buffer")?;
                session.drain(guard.get_inner_mut());
                guard.clear_ready();
            }
            guard = readable(logs.as_ref()) => {
                let mut guard = guard.context("waiting on the eBPF log buffer")?;
                if let Some(logger) = logger.as_mut() {
                    logger.flush();
                }
                guard.clear_ready();
            }
            _ = ticker.tick() => {
                ticks += 1;
                let events = ring.get_mut();
                session.drain(events);
                if ticks.is_multiple_of(COUNTERS_EVERY) {
                    session.counters(events, &mut probes);
                }
                if ticks.is_multiple_of(RECHECK_EVERY) {
                    session.recheck(&mut probes);
                }
                session.tick(&mut probes);
                due.as_mut().reset(tokio::time::Instant::now() + session.until_due());
                if let Err(e) = session.watch_stdout() {
                    break Err(e);
                }
            }
            () = &mut due => {
                session.drain(ring.get_mut());
                session.tick(&mut probes);
                due.as_mut().reset(tokio::time::Instant::now() + session.until_due());
            }
            () = &mut time_is_up => break Ok(()),
            () = every(summaries.as_mut()) => session.summary(&probes, false),
            Some(()) = hangup(sighup.as_mut()) => {
                if let Err(e) = session.reopen() {
                    break Err(e);
                }
            }
            _ = sigint.recv() => break Ok(()),
            _ = sigterm.recv() => break Ok(()),
        }
        if let Err(e) = session.flush() {
            break Err(e);
        }
    };
    let written = match ended {
        Ok(()) => {
            let events = ring.get_mut();
            session.drain(events);
            session.counters(events, &mut probes);
            if let Some(logger) = logger.as_mut() {
                logger.flush();
            }
            session.summary(&probes, true);
            session.flush().and_then(|()| session.finish())
        }
        Err(e) => Err(e),
    };
    if let Some(server) = server {
        server.abort();
    }
    drop(logs);
    drop(logger);
    drop(ring);
    drop(probes);
    match written {
        // `zombie-trace | head` closes the pipe: a way to stop, not an error.
        Ok(()) | Err(WriteError::Closed) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// What to do about an `--output` path that cannot be opened.
fn output_error(path: &std::path::Path) -> String {
    let shown = path.display();
    if path
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
    {
        format!(
            "--output {shown} is a symbolic link, and zombie-trace refuses to write through \
             one: as root, it would append to whatever file the link points to, which whoever \
             made the link chose; give the real path (`readlink -f {shown}`)"
        )
    } else {
        format!("cannot open --output {shown}: check the path and its permissions")
    }
}

/// The name of process `pid`, read from `/proc` once per `cache`.
fn comm_of(cache: &mut HashMap<u32, Vec<u8>>, pid: u32) -> Vec<u8> {
    cache
        .entry(pid)
        .or_insert_with(|| inspect::comm(pid).unwrap_or_default())
        .clone()
}

/// The next tick of `interval`, or never.
async fn every(interval: Option<&mut tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// The next SIGHUP, or never.
async fn hangup(signal: Option<&mut tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

/// Resolves after `duration`, or never.
async fn until(duration: Option<Duration>) {
    match duration {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

async fn readable(fd: Option<&AsyncFd<LoggerFd>>) -> io::Result<AsyncFdReadyGuard<'_, LoggerFd>> {
    match fd {
        Some(fd) => fd.readable().await,
        None => std::future::pending().await,
    }
}

struct Session {
    engine: Engine,
    stats: Stats,
    filters: Filters,
    metrics: Option<Metrics>,
    clock: Clock,
    events: bool,
    /// Exits and reaps pair in the kernel (all but `--events`): userspace
    /// takes over only the children overdue there.
    kernel_pairs: bool,
    ticks_per_sec: u64,
    threshold_ns: u64,
    /// The exits held in the kernel at the last read of its map and not yet
    /// taken over, oldest first.
    kernel_held: VecDeque<ExitRecord>,
    /// When an exit held since that read can be due (boot ns).
    held_read_due_ns: u64,
    threshold_ms: u64,
    wait_tracing: bool,
    started_ns: u64,
    out: Vec<Output>,
    /// `None` once stdout failed while a `--output` file goes on.
    stdout: Option<Sink>,
    /// `--output FILE`: JSON lines.
    file: Option<Sink>,
    /// Lines emitted before `ready`, which must come first.
    held: Option<Vec<Line>>,
    /// What the kernel counters said last time.
    counted: Counters,
    overflow_seen: u64,
    /// Reported zombies that `/proc` no longer shows, since when (boot ns).
    missing: HashMap<Id, u64>,
    /// The last reported zombie the previous re-check got to, when it did
    /// not get to all.
    recheck_after: Option<Id>,
    /// Processes the kernel sends the reaps of which the engine no longer
    /// tracks, at the last sweep.
    untracked: HashSet<u32>,
    /// The kernel could not take more processes to send the reaps of.
    tracking_full: bool,
    decode_errors: u64,
}

impl Session {
    fn new(options: &Options, wait_tracing: bool, file: Option<Sink>) -> Self {
        let threshold_ns = u64::try_from(options.threshold.as_nanos()).unwrap_or(u64::MAX);
        let ticks_per_sec = procfs::ticks_per_second();
        Self {
            stats: Stats::default(),
            filters: options.filters.clone(),
            metrics: None,
            engine: Engine::new(Config::new(threshold_ns, ticks_per_sec)),
            ticks_per_sec,
            clock: Clock::new(),
            events: options.events,
            kernel_pairs: !options.events,
            threshold_ns,
            kernel_held: VecDeque::new(),
            held_read_due_ns: 0,
            threshold_ms: u64::try_from(options.threshold.as_millis()).unwrap_or(u64::MAX),
            wait_tracing,
            started_ns: clock::boot_ns(),
            out: Vec::new(),
            stdout: options
                .stdout
                .then(|| Sink::new(options.format, Writer::stdout())),
            file,
            held: Some(Vec::new()),
            counted: Counters::default(),
            overflow_seen: 0,
            missing: HashMap::new(),
            recheck_after: None,
            untracked: HashSet::new(),
            tracking_full: false,
            decode_errors: 0,
        }
    }

    /// Everything is attached: take in the zombies that already exist,
    /// confirm them, say `ready` with how many, and report them right after
    /// it.
    fn start(&mut self, events: &mut RingBuf<MapData>, probes: &mut Probes) -> Result<()> {
        self.drain(events);
        self.scan(probes, true)?;
        // Children that died during the scan: their exits are in the ring,
        // and take over their `/proc` entries (with their real age).
        self.drain(events);
        // Pre-existing zombies are due at once; one reaped since the scan is
        // neither reported nor counted, so `ready` and every summary agree.
        self.tick(probes);
        let preexisting = usize::try_from(self.engine.counts().preexisting).unwrap_or(usize::MAX);
        // `ready` is the first line; the reports and what `--events` saw
        // meanwhile follow.
        let early = self.held.take().unwrap_or_default();
        self.emit(&Line::Ready(Ready {
            ts: SystemTime::now(),
            version: env!("CARGO_PKG_VERSION"),
            threshold_ms: self.threshold_ms,
            kernel: loader::kernel_release(),
            pid: std::process::id(),
            preexisting,
            wait_tracing: self.wait_tracing,
        }));
        for line in &early {
            self.emit(line);
        }
        Ok(())
    }

    /// Adds the zombies in `/proc` that neither the engine nor the kernel
    /// knows.
    fn scan(&mut self, probes: &mut Probes, preexisting: bool) -> Result<()> {
        let zombies = inspect::zombies().context("scanning /proc for zombies")?;
        let now = clock::boot_ns();
        // Read after /proc: a child that died meanwhile is held by now.
        let held: HashSet<(u32, u64)> = if self.kernel_pairs {
            probes
                .held()
                .iter()
                .map(|exit| (exit.tgid, ns_to_ticks(exit.start_ns, self.ticks_per_sec)))
                .collect()
        } else {
            HashSet::new()
        };
        // A leaking parent may hold thousands: read each parent once.
        let mut parents = HashMap::new();
        for z in zombies {
            if self.engine.knows(z.pid, z.start_ticks) || held.contains(&(z.pid, z.start_ticks)) {
                continue;
            }
            let cgroup = self
                .filters
                .cgroup
                .as_ref()
                .and_then(|_| filter::cgroup_of(z.pid));
            if !self
                .filters
                .matches(z.pid, z.ppid, z.comm.as_bytes(), cgroup.as_deref())
            {
                continue;
            }
            let parent_comm = comm_of(&mut parents, z.ppid);
            let unseen = Unseen {
                pid: z.pid,
                start_ticks: z.start_ticks,
                comm: z.comm,
                ppid: z.ppid,
                parent_comm,
                preexisting,
            };
            if self.engine.add_unseen(unseen, now) && self.kernel_pairs {
                self.track(probes, z.pid);
            }
        }
        Ok(())
    }

    /// Everything the kernel has sent so far.
    fn drain(&mut self, events: &mut RingBuf<MapData>) {
        while let Some(item) = events.next() {
            match decode::decode(&item) {
                Ok(event) => self.engine.on_event(&event, &mut self.out),
                // A waitid() with a bad idtype, which the kernel refused.
                Err(decode::DecodeError::UnknownIdtype(_)) => {}
                Err(e) => {
                    self.decode_errors += 1;
                    if self.decode_errors == 1 {
                        log::warn!(
                            "skipping a kernel record that cannot be decoded ({e}); the binary's \
                             kernel and user parts may not match: rebuild it"
                        );
                    }
                }
            }
        }
        let mut outputs = std::mem::take(&mut self.out);
        for output in &outputs {
            match output {
                Output::Exited { exit, auto_reap } if self.events => {
                    self.emit(&Line::Exited(Exited {
                        ts: self.clock.wall(exit.ts_ns),
                        pid: exit.key.pid,
                        tid: exit.tid,
                        ppid: exit.ppid,
                        comm: exit.comm,
                        parent_comm: exit.parent_comm,
                        status: exit.status,
                        auto_reap: *auto_reap,
                    }));
                }
                Output::Reaped(r) => {
                    if let (Some(reaper), Some(comm), Some(latency), Some(ts)) =
                        (r.reaper_pid, r.reaper_comm, r.zombie_ns, r.ts_ns)
                    {
                        self.stats.reaped(reaper, comm.as_bytes(), latency, ts);
                    }
                    // With filters, the kernel also sends reaps of children
                    // whose exit it filtered out: not ours to show.
                    let filtered_out = !self.filters.is_empty()
                        && r.kind == ReaperKind::Unknown
                        && !r.was_reported;
                    if (self.events || r.was_reported) && !filtered_out {
                        self.reaped(r);
                    }
                }
                Output::Exited { .. } => {}
            }
        }
        outputs.clear();
        self.out = outputs;
    }

    fn reaped(&mut self, r: &Reaping) {
        self.emit(&Line::Reaped(Reaped {
            ts: r
                .ts_ns
                .map_or_else(SystemTime::now, |ns| self.clock.wall(ns)),
            pid: r.pid,
            comm: r.comm,
            reaper_pid: r.reaper_pid,
            reaper_comm: r.reaper_comm,
            reaper_kind: r.kind,
            zombie_ns: r.zombie_ns,
            was_reported: r.was_reported,
            preexisting: r.preexisting,
        }));
    }

    /// Lost records: said, counted, and made up for by a `/proc` rescan
    /// (a lost exit would otherwise be a missed zombie).
    fn counters(&mut self, events: &mut RingBuf<MapData>, probes: &mut Probes) {
        let now = probes.counters();
        let lost = now.lost().saturating_sub(self.counted.lost());
        if self.counted.untracked_waits == 0 && now.untracked_waits > 0 {
            log::warn!(
                "more than 16,384 threads were in wait4/waitid at once: {} wait calls were not \
                 tracked, so wait statistics may be short",
                now.untracked_waits
            );
        }
        if self.counted.read_errors == 0 && now.read_errors > 0 {
            log::warn!(
                "kernel memory reads failed ({} so far): some records are incomplete or \
                 dropped, and /proc is rescanned to make up; please report this with your \
                 kernel version (uname -r)",
                now.read_errors
            );
        }
        if self.counted.pending_full == 0 && now.pending_full > 0 {
            log::warn!(
                "more than {PENDING_MAX} exited children were unreaped at once: {} exits went \
                 to userspace instead of being paired in the kernel, which costs more CPU",
                now.pending_full
            );
        }
        if now.handed_full > 0 {
            self.tracking_is_full();
        }
        let overflow = self.engine.counts().overflow;
        // A lost or unreadable exit would be a missed zombie: look in /proc.
        let rescan = now.lost_exits > self.counted.lost_exits
            || now.read_errors > self.counted.read_errors
            || overflow > self.overflow_seen;
        self.counted = now;
        self.overflow_seen = overflow;
        if lost > 0 {
            self.engine.on_lost(lost);
            self.emit(&Line::Lost(Lost {
                ts: SystemTime::now(),
                count: lost,
                total: now.lost(),
            }));
        }
        if self.metrics.is_some() {
            let (exits, reaps) = self.totals();
            let latency = self.stats.reap_latency(&self.kernel_latency(probes, None));
            let outstanding = self.engine.outstanding(clock::boot_ns());
            if let Some(metrics) = &mut self.metrics {
                metrics.set_totals(exits, reaps, self.engine.counts().lost);
                metrics.set_zombies(&outstanding);
                metrics.set_reap_latency(latency);
            }
        }
        if rescan {
            self.drain(events);
            if let Err(e) = self.scan(probes, false) {
                log::warn!("{e:#}");
            }
        }
    }

    /// Overdue children: confirmed in `/proc`, then reported. A leaking
    /// parent may have thousands due at once: what is known of a parent is
    /// read once a tick, not once a child.
    fn tick(&mut self, probes: &mut Probes) {
        let now = clock::boot_ns();
        if self.kernel_pairs {
            self.take_over_overdue(probes, now);
        }
        let mut parents: HashMap<u32, Rc<ParentFacts>> = HashMap::new();
        for due in self.engine.tick(now) {
            let mut facts_of = |ppid| {
                Rc::clone(
                    parents
                        .entry(ppid)
                        .or_insert_with(|| Rc::new(self.parent_facts(probes, ppid))),
                )
            };
            // Its parent's cgroup, when it was in its parent's cgroups at
            // exit and that parent is its parent still.
            let parent_cgroup = |ppid| {
                (due.cgroups_of == Some(ppid))
                    .then(|| {
                        let facts = facts_of(ppid);
                        let parent = facts.info.as_ref()?;
                        Some(parent.placement.cgroup.clone().filter(|c| c != "/"))
                    })
                    .flatten()
            };
            let (state, placement) = inspect::zombie_state_and_placement(
                due.pid,
                due.start_ticks,
                due.in_pid_ns,
                parent_cgroup,
            );
            let verdict = match state {
                ZombieState::Zombie { ppid } => {
                    let facts = facts_of(ppid);
                    let parent_comm = facts
                        .info
                        .as_ref()
                        .map(|p| p.comm.clone())
                        .unwrap_or_default();
                    let verdict = Verdict::Zombie { ppid, parent_comm };
                    if let Resolution::Report(finding) = self.engine.resolve(due.id, verdict, now) {
                        self.parent_held_zombie(
                            ppid,
                            facts.info.as_ref(),
                            now,
                            finding.preexisting,
                        );
                        self.report(&finding, &facts, placement, now);
                    }
                    continue;
                }
                ZombieState::NotZombie | ZombieState::Unknown => Verdict::NotYet,
                ZombieState::Gone => Verdict::Gone,
            };
            self.engine.resolve(due.id, verdict, now);
        }
        self.floods(false);
    }

    /// How long until a child may fall due (between [`DUE_AT_MOST_EVERY`]
    /// and [`TICK`]): the engine's next deadline, the next exit held in the
    /// kernel, or the next read of the kernel's map.
    fn until_due(&self) -> Duration {
        let kernel = self.kernel_pairs.then(|| {
            self.kernel_held
                .front()
                .map_or(self.held_read_due_ns, |exit| {
                    exit.ts_ns
                        .saturating_add(self.threshold_ns)
                        .min(self.held_read_due_ns)
                })
        });
        let next = match (self.engine.next_deadline(), kernel) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(u64::MAX),
        };
        Duration::from_nanos(next.saturating_sub(clock::boot_ns())).clamp(DUE_AT_MOST_EVERY, TICK)
    }

    /// Children held in the kernel past the threshold become the engine's,
    /// which then checks them in `/proc` like any other. The kernel's map
    /// is read whole only when an exit held since the last read can be due:
    /// between reads, the exits that read found are taken over as they fall
    /// due. A parent that reaps thousands of children just inside the
    /// threshold, or one that leaks thousands, costs one read of the map
    /// per threshold, not one per tick.
    fn take_over_overdue(&mut self, probes: &mut Probes, now: u64) {
        if now >= self.held_read_due_ns {
            let mut held = probes.held();
            held.sort_unstable_by_key(|exit| exit.ts_ns);
            self.kernel_held = held.into();
            // Exits held after this read are younger than `now`.
            self.held_read_due_ns = now.saturating_add(self.threshold_ns);
        }
        while let Some(exit) = self.kernel_held.front() {
            if exit.ts_ns.saturating_add(self.threshold_ns) > now {
                break;
            }
            match probes.take_over(exit) {
                Ok(true) => self.engine.on_exit(&decode::exit(*exit), &mut self.out),
                // Reaped meanwhile, in the kernel.
                Ok(false) => {}
                // No room to track it: it stays in the kernel, and is
                // tried again next tick.
                Err(_) => {
                    self.tracking_is_full();
                    break;
                }
            }
            self.kernel_held.pop_front();
        }
    }

    /// Asks the kernel for the reap of `pid`, which the engine tracks.
    fn track(&mut self, probes: &mut Probes, pid: u32) {
        if probes.track(pid).is_err() {
            self.tracking_is_full();
        }
    }

    fn tracking_is_full(&mut self) {
        if !self.tracking_full {
            self.tracking_full = true;
            log::warn!(
                "more than {HANDED_MAX} zombies are tracked at once: those beyond are reported late, \
                 and their reaps seen late, through /proc"
            );
        }
    }

    /// For the per-parent table: its leak rate counts from when it started
    /// or tracing did, whichever is later.
    fn parent_held_zombie(
        &mut self,
        ppid: u32,
        parent: Option<&ProcessInfo>,
        now: u64,
        preexisting: bool,
    ) {
        let since = parent.map_or(self.started_ns, |p| {
            inspect::boot_ns_from_ticks(p.start_ticks).max(self.started_ns)
        });
        let (comm, cmdline) = parent.map_or((&[][..], &[][..]), |p| (&p.comm[..], &p.cmdline[..]));
        self.stats
            .zombie(ppid, comm, cmdline, since, now, preexisting);
    }

    /// Process `ppid` as `/proc` shows it now (the wait calls its threads
    /// are in included), and the wait calls it made, with what the pids it
    /// asked for are now.
    fn parent_facts(&self, probes: &Probes, ppid: u32) -> ParentFacts {
        let info = inspect::process_info(ppid);
        let waits = self.wait_tracing.then(|| {
            let mut waits = if self.kernel_pairs {
                probes
                    .wait_tally(ppid)
                    .map(|t| decode::wait_tally(&t))
                    .unwrap_or_default()
            } else {
                self.engine.wait_stats(ppid)
            };
            // Pids are the host's only for a parent in the host's pid
            // namespace.
            if info.as_ref().is_some_and(|p| p.placement.ns_pid.is_none()) {
                for recent in &mut waits.targets {
                    if let WaitTarget::Pid(pid) = recent.target
                        && let Ok(pid) = u32::try_from(pid)
                    {
                        recent.state = Some(inspect::child_state(ppid, pid));
                    }
                }
            }
            waits
        });
        ParentFacts { info, waits }
    }

    fn report(&mut self, finding: &Finding, parent: &ParentFacts, placement: Placement, now: u64) {
        let facts = Facts {
            pid: finding.pid,
            placement: &placement,
            age_ns: finding.age_ns,
            preexisting: finding.preexisting,
            parent: parent.info.as_ref(),
            parent_waits: parent.waits.as_ref(),
        };
        let diagnosis = diagnose(&facts, now, self.started_ns);
        let zombie = Zombie {
            ts: SystemTime::now(),
            pid: finding.pid,
            comm: finding.comm,
            status: finding.status,
            age_ns: finding.age_ns,
            preexisting: finding.preexisting,
            ppid_at_exit: finding.ppid_at_exit,
            ppid: finding.ppid,
            parent: parent.info.clone(),
            placement,
            parent_waits: parent.waits.clone(),
            diagnosis,
        };
        self.emit(&Line::Zombie(Box::new(zombie)));
    }

    /// Reported zombies: still there (under which parent), or gone without
    /// a reap record. And the kernel's list of processes whose reaps it
    /// sends loses those the engine stopped tracking (seen twice, so that
    /// one whose exit is on its way is not taken for one).
    fn recheck(&mut self, probes: &mut Probes) {
        if self.kernel_pairs {
            let untracked: HashSet<u32> = probes
                .tracked()
                .into_iter()
                .filter(|&pid| !self.engine.tracks(pid))
                .collect();
            for &pid in untracked.intersection(&self.untracked) {
                probes.untrack(pid);
            }
            self.untracked = untracked;
        }
        let now = clock::boot_ns();
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
            match inspect::zombie_state(z.pid, z.start_ticks) {
                ZombieState::Zombie { ppid } => {
                    self.missing.remove(&z.id);
                    let parent_comm = comm_of(&mut parents, ppid);
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
                            self.reaped(&r);
                        }
                    }
                }
            }
        }
    }

    /// Exits and reaps so far. With `--events` and filters, the kernel
    /// also sends reaps of processes they leave out; only those of traced
    /// ones count. Otherwise the kernel counts what it paired, and the
    /// engine what it took over.
    fn totals(&self) -> (u64, u64) {
        let counts = self.engine.counts();
        if self.kernel_pairs {
            (
                self.counted.exits,
                self.counted.kernel_reaps + counts.paired_reaps,
            )
        } else if self.filters.is_empty() {
            (counts.exits, counts.reaps)
        } else {
            (counts.exits, counts.paired_reaps)
        }
    }

    /// The reap latencies the kernel kept; by name and by parent only for
    /// the summary's tables, which also list the parents of `outstanding`.
    fn kernel_latency(&self, probes: &Probes, tables: Option<&[ParentGroup]>) -> KernelLatency {
        if !self.kernel_pairs {
            return KernelLatency::default();
        }
        let mut kernel = KernelLatency {
            overall: probes
                .latency()
                .map(|h| Log2Hist::from(&h))
                .unwrap_or_default(),
            ..KernelLatency::default()
        };
        if let Some(outstanding) = tables {
            kernel.by_comm = probes
                .latency_by_comm()
                .iter()
                .map(|(comm, h)| (Comm::new(comm).as_bytes().to_vec(), Log2Hist::from(h)))
                .collect();
            for ppid in self
                .stats
                .parent_pids()
                .into_iter()
                .chain(outstanding.iter().map(|g| g.ppid))
            {
                if let Some(h) = probes.latency_of(ppid) {
                    kernel.by_parent.insert(ppid, Log2Hist::from(&h));
                }
            }
        }
        kernel
    }

    /// Totals so far; `last` on a clean stop.
    fn summary(&mut self, probes: &Probes, last: bool) {
        if last {
            self.floods(true);
        }
        let now = clock::boot_ns();
        let counts = self.engine.counts();
        let outstanding = self.engine.outstanding(now);
        let kernel = self.kernel_latency(probes, Some(&outstanding));
        let (exits, reaps) = self.totals();
        self.emit(&Line::Summary(Summary {
            ts: SystemTime::now(),
            last,
            duration_ns: now.saturating_sub(self.started_ns),
            exits,
            reaps,
            zombies: counts.zombies,
            preexisting: counts.preexisting,
            lost: counts.lost,
            parents: self.stats.parents(&outstanding, now, &kernel),
            outstanding,
            reap_latency: self.stats.reap_latency(&kernel).summary(),
            reap_latency_by_comm: self.stats.reap_latency_by_comm(&kernel),
        }));
    }

    fn emit(&mut self, line: &Line) {
        if let Some(held) = &mut self.held {
            held.push(line.clone());
            return;
        }
        let now = clock::boot_ns();
        if let Some(stdout) = &mut self.stdout {
            stdout.emit(line, now);
        }
        if let Some(file) = &mut self.file {
            file.emit(line, now);
        }
    }

    /// Sums up the floods of zombie reports whose second is over, or all of
    /// them (`all`, when the tracer stops).
    fn floods(&mut self, all: bool) {
        if let Some(stdout) = &mut self.stdout {
            stdout.floods(clock::boot_ns(), all);
        }
    }

    fn flush(&mut self) -> Result<(), WriteError> {
        if let Some(stdout) = &mut self.stdout
            && let Err(e) = stdout.flush()
        {
            self.stdout_failed(e)?;
        }
        match &mut self.file {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }

    /// Whether stdout's reader is still there, asked without writing: a
    /// quiet tracer piped into `head -1` stops (and detaches) within a tick
    /// of its reader going, not at its next finding.
    fn watch_stdout(&mut self) -> Result<(), WriteError> {
        if self.stdout.is_some() && writer::stdout_reader_gone() {
            self.stdout_failed(WriteError::Closed)?;
        }
        Ok(())
    }

    /// Stdout failed: with a file to write, tracing goes on without it.
    fn stdout_failed(&mut self, e: WriteError) -> Result<(), WriteError> {
        if self.file.is_none() {
            return Err(e);
        }
        log::warn!("{e}: findings go on to the --output file only");
        self.stdout = None;
        Ok(())
    }

    /// SIGHUP: logrotate moved the `--output` file.
    fn reopen(&mut self) -> Result<(), WriteError> {
        match &mut self.file {
            Some(file) => file.writer.reopen(),
            None => Ok(()),
        }
    }

    fn finish(self) -> Result<(), WriteError> {
        let file = self.file.map_or(Ok(()), |f| f.writer.finish());
        let stdout = self.stdout.map_or(Ok(()), |s| s.writer.finish());
        file.and(stdout)
    }
}

/// What is known of a parent when its children are reported.
struct ParentFacts {
    /// `None` when it is gone.
    info: Option<ProcessInfo>,
    /// `None` when wait calls are not traced.
    waits: Option<WaitStats>,
}

/// Where lines go: stdout in `--format`, or the `--output` file in JSON.
struct Sink {
    encoder: Encoder,
    /// Text for people sums up floods of zombie reports; JSON has them all.
    flood: Option<FloodGate>,
    /// Encoded lines not yet handed to the writer.
    pending: Vec<u8>,
    writer: Writer,
}

impl Sink {
    fn new(format: Format, writer: Writer) -> Self {
        Self {
            encoder: Encoder::new(format),
            flood: (format == Format::Text).then(FloodGate::default),
            pending: Vec::new(),
            writer,
        }
    }

    fn emit(&mut self, line: &Line, now_ns: u64) {
        let text = match (line, &mut self.flood) {
            (Line::Zombie(z), Some(gate)) => match gate.admit(z, now_ns) {
                Shown::Full => self.encoder.encode_at(line, Some(now_ns)),
                Shown::Brief { diagnosis } => self.encoder.encode_brief(z, diagnosis),
                Shown::Held => return,
            },
            (Line::Reaped(r), Some(gate)) if r.was_reported => {
                if !gate.admit_reap(r, now_ns) {
                    return;
                }
                self.encoder.encode_at(line, Some(now_ns))
            }
            _ => self.encoder.encode_at(line, Some(now_ns)),
        };
        self.pending.extend_from_slice(text.as_bytes());
    }

    /// The sums of the floods whose second is over (`all`: every one).
    fn floods(&mut self, now_ns: u64, all: bool) {
        let Some(gate) = &mut self.flood else {
            return;
        };
        let floods = if all {
            gate.all(now_ns)
        } else {
            gate.due(now_ns)
        };
        for flood in &floods {
            let text = self.encoder.encode_flood(flood, SystemTime::now(), now_ns);
            self.pending.extend_from_slice(text.as_bytes());
        }
    }

    /// Hands what was emitted to the writer, in one piece: a reader sees
    /// whole lines.
    fn flush(&mut self) -> Result<(), WriteError> {
        self.writer.write(std::mem::take(&mut self.pending))
    }
}
