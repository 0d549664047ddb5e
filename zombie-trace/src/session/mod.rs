//! One tracing session: the event loop and its signals (this file), which
//! wires the kernel side (the ring buffer, the maps, the hand-over of
//! overdue children in `handover`) to the `reporter` (engine findings and
//! `/proc` into report lines) and the `sinks` (stdout, `--output`), and
//! `--metrics`, until it is told to stop.

use std::{
    collections::HashSet,
    io,
    net::SocketAddr,
    os::fd::{AsRawFd, RawFd},
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context as _, Result};
use aya::maps::{MapData, RingBuf};
use sd_notify::NotifyState;
use tokio::{
    io::{
        Interest,
        unix::{AsyncFd, AsyncFdReadyGuard},
    },
    net::TcpListener,
    signal::unix::{SignalKind, signal},
};

mod alarm;
mod containers;
mod handover;
pub mod reporter;
mod sinks;
pub mod writer;

use alarm::Alarm;
use containers::Selection;
use handover::Handover;
use reporter::{Mode, Proc, Reporter};
use sinks::Sinks;
use writer::WriteError;
use zombie_trace_common::{COMMANDS_MAX, PENDING_MAX, WAIT_ARGS_MAX};

use crate::{
    filter::Filters,
    kernel::{
        clock, decode,
        load::{self, Tracer},
        maps::{Counters, ParentCommands, Probes},
        privileges,
    },
    metrics::Metrics,
    model::{
        event::{Comm, Event},
        report::{Line, ParentGroup, Ready, Startup},
        time::ns_to_ticks,
    },
    output::Format,
    proc,
    stacks::Symbolizer,
    stats::{KernelLatency, Log2Hist},
};

/// The ring buffer is drained this often (the kernel side wakes the reader
/// early only when the ring is a quarter full), and overdue children are
/// checked at least this often.
const TICK: Duration = Duration::from_millis(100);
/// Overdue children are checked at most this often: in a flood, a batch
/// every few milliseconds costs less than a wakeup per child.
const DUE_AT_MOST_EVERY: Duration = Duration::from_millis(10);
/// Kernel counters (lost records) are read this often.
const COUNTERS_EVERY: u64 = 10;
/// Reported zombies are re-checked in `/proc` this often, in case their
/// reap record was lost.
const RECHECK_EVERY: u64 = 20;
/// The selected containers are looked at again this often (ticks): gone
/// ones dropped, late-named ones taken.
const CONTAINERS_EVERY: u64 = 50;
/// Ring buffer size: about 50,000 records of slack for a stalled reader.
const RING_BYTES: u32 = 1 << 22;

pub struct Options {
    pub filters: Filters,
    pub threshold: Duration,
    pub format: Format,
    /// Whether to write to stdout (it was open at start).
    pub stdout: bool,
    pub events: bool,
    /// Keep where each child was forked (`--stacks`).
    pub stacks: bool,
    /// Stop by itself after this long.
    pub duration: Option<Duration>,
    /// Also append JSON lines here (reopened on SIGHUP).
    pub output: Option<PathBuf>,
    /// Print a summary this often, not only at the end.
    pub summary_interval: Option<Duration>,
    /// Serve OpenMetrics here.
    pub metrics: Option<SocketAddr>,
    /// Where the container runtimes' state directories are.
    pub runtime_root: PathBuf,
    /// `--node-name`, for JSON's `node`.
    pub node: Arc<str>,
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
    let file = options
        .output
        .as_deref()
        .map(Sinks::open_file)
        .transpose()?;
    let has_file = file.is_some();
    let listener = match options.metrics {
        Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| {
            format!("cannot serve --metrics on {addr}: is the port in use? pick another")
        })?),
        None => None,
    };
    // The containers selected now are in the kernel's set before it
    // attaches: none of their exits is missed.
    let (mut selection, cgroups) =
        match Selection::start(&options.filters.containers, &options.runtime_root)? {
            Some((selection, cgroups)) => (Some(selection), cgroups),
            None => (None, Vec::new()),
        };
    // Served while the probes load: `/healthz` answers, not yet ready.
    let served = listener.map(|listener| {
        let metrics = Metrics::new(&load::kernel_release());
        let server = tokio::spawn(metrics.serve(listener));
        (metrics, server)
    });
    let Tracer {
        events,
        mut logger,
        mut probes,
    } = load::load(&load::Options {
        ring_bytes: RING_BYTES,
        filter: options.filters.to_kernel(),
        stream: options.events,
        cgroups,
        stacks: options.stacks,
    })?;
    // Attached: the rest of the run needs far less than it took to get here.
    match privileges::drop_all_but_kept() {
        Ok(left) => log::debug!("capabilities dropped, left: {left:?}"),
        Err(e) => log::warn!("{e}: the tracer keeps them for this run"),
    }
    if let Some(why) = &probes.wait_tracing_error {
        log::warn!(
            "wait4/waitid calls are not traced, so reports will not say whether the parent calls \
             wait: {why}"
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
    let mut sighup = if has_file {
        Some(signal(SignalKind::hangup()).context("cannot handle SIGHUP")?)
    } else {
        None
    };
    let sinks = Sinks::new(
        options.stdout.then_some(options.format),
        file,
        Arc::clone(&options.node),
    );
    let mut session = Session::new(&options, probes.wait_tracing, sinks);
    let server = served.map(|(metrics, server)| {
        session.metrics = Some(metrics);
        server
    });
    session.start(ring.get_mut(), &mut probes)?;
    if let Some(metrics) = &session.metrics {
        metrics.set_ready(probes.wait_tracing);
    }
    tell_service_manager(&[NotifyState::Ready, NotifyState::Status("tracing")]);

    // Overdue children are checked when the next one falls due, not only
    // on the tick: a report is late by its own checks, not by the tick's
    // phase. One alarm for both: the sooner.
    let alarm = Alarm::new().context("cannot make the tracer's timer (timerfd)")?;
    let mut next_tick = Instant::now() + TICK;
    let mut ticks: u64 = 0;
    alarm
        .set(session.until_due())
        .context("cannot set the tracer's timer (timerfd)")?;
    let time_is_up = until(options.duration);
    tokio::pin!(time_is_up);
    let mut summaries = options
        .summary_interval
        .map(|every| tokio::time::interval_at(tokio::time::Instant::now() + every, every));
    let ended = loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard.context("waiting on the ring buffer")?;
                session.drain(guard.get_inner_mut(), &probes);
                guard.clear_ready();
            }
            guard = readable(logs.as_ref()) => {
                let mut guard = guard.context("waiting on the eBPF log buffer")?;
                if let Some(logger) = logger.as_mut() {
                    logger.flush();
                }
                guard.clear_ready();
            }
            rung = alarm.rung() => {
                rung.context("waiting on the tracer's timer (timerfd)")?;
                let now = Instant::now();
                if now < next_tick {
                    session.drain(ring.get_mut(), &probes);
                    session.tick(&mut probes);
                } else {
                    // Ticks missed (a stopped tracer) are skipped, not
                    // made up in a burst.
                    next_tick = (next_tick + TICK).max(now + TICK / 2);
                    ticks += 1;
                    let events = ring.get_mut();
                    session.drain(events, &probes);
                    if ticks.is_multiple_of(COUNTERS_EVERY) {
                        session.counters(events, &mut probes);
                    }
                    if ticks.is_multiple_of(RECHECK_EVERY) {
                        session.recheck(&mut probes);
                    }
                    if let Some(selection) = selection.as_mut() {
                        // Every 300 ms: a runtime writes its files within a
                        // few ms, and each look opens a few of them.
                        if ticks.is_multiple_of(3) {
                            selection.settle(&mut probes);
                        }
                        if ticks.is_multiple_of(CONTAINERS_EVERY) {
                            selection.rescan(&mut probes);
                        }
                    }
                    session.tick(&mut probes);
                    if let Err(e) = session.watch_stdout() {
                        break Err(e);
                    }
                }
                let until_tick = next_tick.saturating_duration_since(Instant::now());
                alarm
                    .set(session.until_due().min(until_tick))
                    .context("cannot set the tracer's timer (timerfd)")?;
            }
            cgroups = appeared(selection.as_mut()) => {
                if let Some(selection) = selection.as_mut() {
                    selection.add(cgroups, &mut probes);
                }
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
    tell_service_manager(&[NotifyState::Stopping]);
    let written = match ended {
        Ok(()) => {
            let events = ring.get_mut();
            session.drain(events, &probes);
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

/// Tells systemd how the run stands, when it started the tracer as a
/// `Type=notify` service (`$NOTIFY_SOCKET`); nothing otherwise.
fn tell_service_manager(state: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(state) {
        let said: Vec<String> = state.iter().map(ToString::to_string).collect();
        log::warn!(
            "cannot tell systemd {} through $NOTIFY_SOCKET: {e}; a Type=notify unit will time \
             out (use Type=exec where the socket cannot be reached)",
            said.join(" ")
        );
    }
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

/// Container cgroups made since the last call, or never.
async fn appeared(selection: Option<&mut Selection>) -> Vec<crate::containers::ContainerCgroup> {
    match selection {
        Some(selection) => selection.appeared().await,
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
    reporter: Reporter,
    proc: Proc,
    handover: Handover,
    sinks: Sinks,
    metrics: Option<Metrics>,
    mode: Mode,
    filters: Filters,
    threshold_ms: u64,
    wait_tracing: bool,
    /// What the kernel counters said last time.
    counted: Counters,
    overflow_seen: u64,
    decode_errors: u64,
    /// Names the frames of `--stacks` captures (its caches live on).
    symbolizer: Symbolizer,
}

impl Session {
    fn new(options: &Options, wait_tracing: bool, sinks: Sinks) -> Self {
        let mode = if options.events {
            Mode::Stream
        } else {
            Mode::KernelPairs
        };
        let started_ns = clock::boot_ns();
        let threshold_ns = u64::try_from(options.threshold.as_nanos()).unwrap_or(u64::MAX);
        Self {
            proc: Proc::new(&options.runtime_root),
            reporter: Reporter::new(
                options.threshold,
                mode,
                options.filters.clone(),
                wait_tracing,
                started_ns,
            ),
            handover: Handover::new(threshold_ns),
            sinks,
            metrics: None,
            mode,
            filters: options.filters.clone(),
            threshold_ms: u64::try_from(options.threshold.as_millis()).unwrap_or(u64::MAX),
            wait_tracing,
            counted: Counters::default(),
            overflow_seen: 0,
            decode_errors: 0,
            symbolizer: Symbolizer::default(),
        }
    }

    /// Everything is attached: take in the zombies that already exist,
    /// confirm them, say `ready` with how many, and report them right after
    /// it.
    fn start(&mut self, events: &mut RingBuf<MapData>, probes: &mut Probes) -> Result<()> {
        self.drain(events, probes);
        let scanning = Instant::now();
        self.scan(probes, true)?;
        let scan = scanning.elapsed();
        // Children that died during the scan: their exits are in the ring,
        // and take over their `/proc` entries (with their real age).
        self.drain(events, probes);
        // Pre-existing zombies are due at once; one reaped since the scan is
        // neither reported nor counted, so `ready` and every summary agree.
        self.tick(probes);
        let preexisting = usize::try_from(self.reporter.counts().preexisting).unwrap_or(usize::MAX);
        // `ready` is the first line; the reports and what `--events` saw
        // meanwhile follow.
        self.sinks.ready(&Line::Ready(Ready {
            ts: SystemTime::now(),
            version: env!("CARGO_PKG_VERSION"),
            threshold_ms: self.threshold_ms,
            kernel: load::kernel_release(),
            pid: std::process::id(),
            preexisting,
            wait_tracing: self.wait_tracing,
            wait_hooks: probes.wait_hooks,
            startup: Startup {
                scan,
                ..probes.startup
            },
        }));
        Ok(())
    }

    /// Hands the reporter's lines to the sinks.
    fn publish(&mut self) {
        for line in self.reporter.take_lines() {
            if let (Line::Zombie(z), Some(metrics)) = (&line, &mut self.metrics) {
                metrics.reported(z);
            }
            self.sinks.emit(&line);
        }
    }

    /// Adds the zombies in `/proc` that neither the engine nor the kernel
    /// knows.
    fn scan(&mut self, probes: &mut Probes, preexisting: bool) -> Result<()> {
        let zombies = proc::zombies().context("scanning /proc for zombies")?;
        let now = clock::boot_ns();
        // Read after /proc: a child that died meanwhile is held by now.
        let held: HashSet<(u32, u64)> = match self.mode {
            Mode::KernelPairs => {
                let hz = self.reporter.ticks_per_sec();
                probes
                    .held()
                    .iter()
                    .map(|exit| (exit.tgid, ns_to_ticks(exit.start_ns, hz)))
                    .collect()
            }
            Mode::Stream => HashSet::new(),
        };
        let added = self
            .reporter
            .scan(zombies, &held, &self.proc, preexisting, now);
        if self.mode == Mode::KernelPairs {
            for pid in added {
                self.handover.track(probes, pid);
            }
        }
        Ok(())
    }

    /// Everything the kernel has sent so far.
    fn drain(&mut self, events: &mut RingBuf<MapData>, probes: &Probes) {
        let mut parents = ParentCommands::new();
        while let Some(item) = events.next() {
            match decode::decode(&item) {
                // Sent without a command: it never exec'd while traced.
                Ok(Event::Exit(mut exit)) if exit.command.is_none() => {
                    exit.command = probes.inherited_command(&exit, &mut parents).map(Arc::new);
                    self.reporter.on_event(&Event::Exit(exit));
                }
                Ok(event) => self.reporter.on_event(&event),
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
        self.reporter.settle();
        self.publish();
    }

    /// Lost records: said, counted, and made up for by a `/proc` rescan
    /// (a lost exit would otherwise be a missed zombie).
    fn counters(&mut self, events: &mut RingBuf<MapData>, probes: &mut Probes) {
        let now = probes.counters();
        let lost = now.lost().saturating_sub(self.counted.lost());
        if self.counted.untracked_waits == 0 && now.untracked_waits > 0 {
            log::warn!(
                "more than {WAIT_ARGS_MAX} threads were in wait4/waitid at once: {} wait calls \
                 were not tracked, so wait statistics may be short",
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
        if self.counted.commands_full == 0 && now.commands_full > 0 {
            log::warn!(
                "more than {COMMANDS_MAX} processes exec'd while traced were alive at once: {} \
                 commands were not kept, and their zombies are reported without one",
                now.commands_full
            );
        }
        if now.handed_full > 0 {
            self.handover.tracking_is_full();
        }
        let overflow = self.reporter.counts().overflow;
        // A lost or unreadable exit would be a missed zombie: look in /proc.
        let rescan = now.lost_exits > self.counted.lost_exits
            || now.read_errors > self.counted.read_errors
            || overflow > self.overflow_seen;
        self.counted = now;
        self.overflow_seen = overflow;
        if lost > 0 {
            self.reporter.on_lost(lost, now.lost());
            self.publish();
        }
        if self.metrics.is_some() {
            let (exits, reaps) = self.totals();
            let latency = self
                .reporter
                .stats()
                .reap_latency(&self.kernel_latency(probes, None));
            let now = clock::boot_ns();
            let outstanding = self.reporter.outstanding(now);
            let tracing_ns = now.saturating_sub(self.reporter.started_ns());
            let lost = self.reporter.counts().lost;
            if let Some(metrics) = &mut self.metrics {
                metrics.set_totals(exits, reaps, lost);
                metrics.set_zombies(&outstanding, tracing_ns);
                metrics.set_reap_latency(latency);
            }
        }
        if rescan {
            self.drain(events, probes);
            if let Err(e) = self.scan(probes, false) {
                log::warn!("{e:#}");
            }
        }
    }

    /// Overdue children (those held in the kernel taken over first):
    /// confirmed in `/proc`, then reported.
    fn tick(&mut self, probes: &mut Probes) {
        let now = clock::boot_ns();
        if self.mode == Mode::KernelPairs {
            for exit in self.handover.overdue(probes, now) {
                self.reporter.on_exit(&exit);
            }
            self.reporter.settle();
        }
        let tallies = |ppid| probes.wait_tally(ppid).map(|t| decode::wait_tally(&t));
        let orphans = |pid, start_ns, ppid| {
            probes
                .orphan(pid, start_ns, ppid)
                .map(|o| decode::orphan(&o))
        };
        let symbolizer = &mut self.symbolizer;
        let mut spawn_stack = |pid, start_ns| {
            let capture = match probes.spawn_stacks.as_ref()?.lookup(pid, start_ns) {
                Ok(capture) => capture?,
                Err(e) => {
                    log::debug!("--stacks: the capture of {pid} cannot be read: {e}");
                    return None;
                }
            };
            symbolizer
                .resolve(&capture)
                .inspect_err(|e| log::debug!("--stacks: {e}"))
                .ok()
        };
        self.reporter
            .tick(&self.proc, &tallies, &orphans, &mut spawn_stack, now);
        self.publish();
        self.sinks.floods(false);
    }

    /// How long until a child may fall due (between [`DUE_AT_MOST_EVERY`]
    /// and [`TICK`]): the engine's next deadline, or the next exit held in
    /// the kernel or read of its map.
    fn until_due(&self) -> Duration {
        let kernel = (self.mode == Mode::KernelPairs).then(|| self.handover.next_due_ns());
        let next = match (self.reporter.next_deadline(), kernel) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(u64::MAX),
        };
        Duration::from_nanos(next.saturating_sub(clock::boot_ns())).clamp(DUE_AT_MOST_EVERY, TICK)
    }

    /// Reported zombies: still there (under which parent), or gone without
    /// a reap record; and the kernel told which reaps it need not send.
    fn recheck(&mut self, probes: &mut Probes) {
        if self.mode == Mode::KernelPairs {
            let reporter = &self.reporter;
            self.handover.sweep(probes, |pid| reporter.tracks(pid));
        }
        self.reporter.recheck(&self.proc, clock::boot_ns());
        self.publish();
    }

    /// Exits and reaps so far. With `--events` and filters, the kernel
    /// also sends reaps of processes they leave out; only those of traced
    /// ones count. Otherwise the kernel counts what it paired, and the
    /// engine what it took over.
    fn totals(&self) -> (u64, u64) {
        let counts = self.reporter.counts();
        match self.mode {
            Mode::KernelPairs => (
                self.counted.exits,
                self.counted.kernel_reaps + counts.paired_reaps,
            ),
            Mode::Stream if self.filters.is_empty() => (counts.exits, counts.reaps),
            Mode::Stream => (counts.exits, counts.paired_reaps),
        }
    }

    /// The reap latencies the kernel kept; by name and by parent only for
    /// the summary's tables, which also list the parents of `outstanding`.
    fn kernel_latency(&self, probes: &Probes, tables: Option<&[ParentGroup]>) -> KernelLatency {
        if self.mode == Mode::Stream {
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
                .reporter
                .stats()
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
            self.sinks.floods(true);
        }
        let now = clock::boot_ns();
        let outstanding = self.reporter.outstanding(now);
        let kernel = self.kernel_latency(probes, Some(&outstanding));
        let totals = self.totals();
        self.reporter.summary(&kernel, totals, last, now);
        self.publish();
    }

    fn flush(&mut self) -> Result<(), WriteError> {
        self.sinks.flush()
    }

    fn watch_stdout(&mut self) -> Result<(), WriteError> {
        self.sinks.watch_stdout()
    }

    fn reopen(&mut self) -> Result<(), WriteError> {
        self.sinks.reopen()
    }

    fn finish(self) -> Result<(), WriteError> {
        self.sinks.finish()
    }
}
