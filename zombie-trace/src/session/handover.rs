//! The default mode's hand-over between kernel and userspace: exits paired
//! in the kernel (`PENDING`) become the engine's once overdue, and the
//! kernel is told which processes' reaps to send (`HANDED`) and which no
//! longer.

use std::{
    collections::{HashSet, VecDeque},
    sync::Arc,
};

use zombie_trace_common::{ExitRecord, HANDED_MAX};

use crate::{
    kernel::{decode, maps::Probes},
    model::event::Exit,
};

pub struct Handover {
    threshold_ns: u64,
    /// The exits held in the kernel at the last read of its map and not yet
    /// taken over, oldest first.
    held: VecDeque<ExitRecord>,
    /// When an exit held since that read can be due (boot ns).
    read_due_ns: u64,
    /// Processes the kernel sends the reaps of which the engine no longer
    /// tracks, at the last sweep.
    untracked: HashSet<u32>,
    /// The kernel could not take more processes to send the reaps of.
    full: bool,
    /// Until when taking over waits after the kernel's list was found full
    /// (boot ns): room comes back only as zombies are reaped, so trying
    /// again on every tick would only spin.
    retry_ns: u64,
}

const RETRY_NS: u64 = 1_000_000_000;

impl Handover {
    pub fn new(threshold_ns: u64) -> Self {
        Self {
            threshold_ns,
            held: VecDeque::new(),
            read_due_ns: 0,
            untracked: HashSet::new(),
            full: false,
            retry_ns: 0,
        }
    }

    /// Children held in the kernel past the threshold, taken out of it:
    /// the engine's now, to check in `/proc` like any other. The kernel's
    /// map is read whole only when an exit held since the last read can be
    /// due; between reads, the exits that read found are taken over as
    /// they fall due. A parent that reaps thousands of children just inside
    /// the threshold, or one that leaks thousands, costs one read of the
    /// map per threshold, not one per tick.
    pub fn overdue(&mut self, probes: &mut Probes, now: u64) -> Vec<Exit> {
        if now >= self.read_due_ns {
            let mut held = probes.held();
            held.sort_unstable_by_key(|exit| exit.ts_ns);
            self.held = held.into();
            // Exits held after this read are younger than `now`.
            self.read_due_ns = now.saturating_add(self.threshold_ns);
        }
        let mut overdue = Vec::new();
        if now < self.retry_ns {
            return overdue;
        }
        while let Some(exit) = self.held.front() {
            if exit.ts_ns.saturating_add(self.threshold_ns) > now {
                break;
            }
            match probes.take_over(exit) {
                Ok(true) => {
                    let mut exit = decode::exit(*exit);
                    exit.command = probes.command(&exit).map(Arc::new);
                    overdue.push(exit);
                }
                // Reaped meanwhile, in the kernel.
                Ok(false) => {}
                // No room to track it: it stays in the kernel, and is
                // tried again in a second.
                Err(_) => {
                    self.tracking_is_full();
                    self.retry_ns = now.saturating_add(RETRY_NS);
                    break;
                }
            }
            self.held.pop_front();
        }
        overdue
    }

    /// When a child held in the kernel may fall due next (boot ns).
    pub fn next_due_ns(&self) -> u64 {
        self.held.front().map_or(self.read_due_ns, |exit| {
            exit.ts_ns
                .saturating_add(self.threshold_ns)
                .max(self.retry_ns)
                .min(self.read_due_ns)
        })
    }

    /// Asks the kernel for the reap of `pid`, which the engine tracks.
    pub fn track(&mut self, probes: &mut Probes, pid: u32) {
        if probes.track(pid).is_err() {
            self.tracking_is_full();
        }
    }

    /// The kernel's list of processes whose reaps it sends loses those the
    /// engine stopped tracking (seen twice, so that one whose exit is on
    /// its way is not taken for one).
    pub fn sweep(&mut self, probes: &mut Probes, engine_tracks: impl Fn(u32) -> bool) {
        let untracked: HashSet<u32> = probes
            .tracked()
            .into_iter()
            .filter(|&pid| !engine_tracks(pid))
            .collect();
        for &pid in untracked.intersection(&self.untracked) {
            probes.untrack(pid);
        }
        self.untracked = untracked;
    }

    pub fn tracking_is_full(&mut self) {
        if !self.full {
            self.full = true;
            log::warn!(
                "more than {HANDED_MAX} zombies are tracked at once: those beyond are reported late, \
                 and their reaps seen late, through /proc"
            );
        }
    }
}
