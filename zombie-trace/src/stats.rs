//! Answers per parent for long leak hunts: who holds or has held zombies,
//! how many, how fast they leak, and how long reaps take. Pure and bounded:
//! latencies go into log2 histograms (64 counters each), and the tables
//! keep at most a fixed number of parents and names, forgetting the idlest.

use std::collections::HashMap;

use zombie_trace_common::{LATENCY_BUCKETS, LatencyHist, latency_bucket};

use crate::model::report::{CommandRow, Latency, ParentGroup, ParentRow};

/// Parents remembered in the table.
const MAX_PARENTS: usize = 1024;
/// Process names with a reap latency histogram.
const MAX_COMMS: usize = 256;
/// Child command names counted per parent; the rest count under
/// [`OTHER_COMMANDS`].
const MAX_COMMANDS_PER_PARENT: usize = 32;
pub const OTHER_COMMANDS: &[u8] = b"(others)";
/// Leak rates are taken over at least this long.
const MIN_RATE_WINDOW_NS: u64 = 1_000_000_000;

/// A parent's zombies by command: `ever` counts every one reported, `now`
/// (its outstanding group) those not yet reaped.
fn by_command(ever: &HashMap<Vec<u8>, u64>, now: Option<&ParentGroup>) -> Vec<CommandRow> {
    let mut rows: HashMap<&[u8], CommandRow> = ever
        .iter()
        .map(|(name, &n)| {
            let row = CommandRow {
                command: name.clone(),
                zombies_now: 0,
                zombies_ever: n,
            };
            (name.as_slice(), row)
        })
        .collect();
    for (name, n) in now.map_or(&[][..], |g| &g.by_command[..]) {
        let row = rows.entry(name).or_insert_with(|| CommandRow {
            command: name.clone(),
            zombies_now: 0,
            zombies_ever: 0,
        });
        row.zombies_now += n;
        // Forgotten by the table while outstanding: still at least these.
        row.zombies_ever = row.zombies_ever.max(row.zombies_now);
    }
    let mut rows: Vec<CommandRow> = rows.into_values().collect();
    rows.sort_by(|a, b| {
        (b.zombies_now, b.zombies_ever)
            .cmp(&(a.zombies_now, a.zombies_ever))
            .then_with(|| a.command.cmp(&b.command))
    });
    rows
}

/// Counts of durations by power of two: bucket `i` holds values in
/// `[2^i, 2^(i+1))` ns (bucket 0 also holds 0), as the kernel side keeps
/// them too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Log2Hist {
    buckets: [u64; LATENCY_BUCKETS],
    count: u64,
    sum: u64,
    max: u64,
}

impl Default for Log2Hist {
    fn default() -> Self {
        Self {
            buckets: [0; LATENCY_BUCKETS],
            count: 0,
            sum: 0,
            max: 0,
        }
    }
}

impl From<&LatencyHist> for Log2Hist {
    fn from(k: &LatencyHist) -> Self {
        Self {
            buckets: k.buckets,
            count: k.buckets.iter().fold(0u64, |n, b| n.saturating_add(*b)),
            sum: k.sum_ns,
            max: k.max_ns,
        }
    }
}

impl Log2Hist {
    pub fn record(&mut self, ns: u64) {
        let bucket = latency_bucket(ns);
        self.buckets[bucket] += 1;
        self.count += 1;
        self.sum = self.sum.saturating_add(ns);
        self.max = self.max.max(ns);
    }

    pub fn merge(&mut self, other: &Self) {
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            *mine = mine.saturating_add(theirs);
        }
        self.count = self.count.saturating_add(other.count);
        self.sum = self.sum.saturating_add(other.sum);
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sum of the durations, ns.
    pub fn sum(&self) -> u64 {
        self.sum
    }

    /// `(upper bound in ns, count)` of each bucket, `u64::MAX` for the last.
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.buckets.iter().enumerate().map(|(i, &n)| {
            let upper = 1u64.checked_shl(i as u32 + 1).unwrap_or(u64::MAX);
            (upper, n)
        })
    }

    /// The `q`-quantile (0 to 1), as the upper bound of its bucket (at most
    /// the maximum seen): an overestimate by less than 2x.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (upper, n) in self.buckets() {
            seen = seen.saturating_add(n);
            if seen >= rank {
                return Some(upper.min(self.max));
            }
        }
        Some(self.max)
    }

    pub fn summary(&self) -> Latency {
        Latency {
            count: self.count,
            p50_ns: self.quantile(0.5),
            p99_ns: self.quantile(0.99),
            max_ns: (self.count > 0).then_some(self.max),
        }
    }
}

#[derive(Clone, Debug)]
struct Parent {
    comm: Vec<u8>,
    cmdline: Vec<Vec<u8>>,
    /// Since when it has been watched: its start, or the tracer's.
    watched_since_ns: u64,
    zombies_ever: u64,
    /// Those that died while traced (not found at start-up): the leak.
    leaked: u64,
    /// Zombies ever by their command's name.
    by_command: HashMap<Vec<u8>, u64>,
    /// Exit-to-reap times of the children it reaped since it entered the
    /// table.
    reaps: Log2Hist,
    touched_ns: u64,
}

/// The reaps made by processes of one name.
#[derive(Clone, Debug)]
struct ByName {
    reaps: Log2Hist,
    touched_ns: u64,
}

/// Reap latencies of the children paired in the kernel (the default mode),
/// to merge with those of the children userspace tracked.
#[derive(Clone, Debug, Default)]
pub struct KernelLatency {
    pub overall: Log2Hist,
    /// By the reaper's name.
    pub by_comm: Vec<(Vec<u8>, Log2Hist)>,
    /// By the reaper, for the parents in the table.
    pub by_parent: HashMap<u32, Log2Hist>,
}

#[derive(Default)]
pub struct Stats {
    reaps: Log2Hist,
    by_comm: HashMap<Vec<u8>, ByName>,
    parents: HashMap<u32, Parent>,
}

/// The parent of a zombie reported.
pub struct HeldBy<'a> {
    pub ppid: u32,
    pub comm: &'a [u8],
    pub cmdline: &'a [Vec<u8>],
    /// Since when it is watched: the later of its start and the tracer's.
    pub watched_since_ns: u64,
}

impl Stats {
    /// A zombie of command `command` (see `Command::name`) was reported
    /// under `parent`.
    pub fn zombie(&mut self, parent: HeldBy<'_>, command: &[u8], now_ns: u64, preexisting: bool) {
        let HeldBy {
            ppid,
            comm,
            cmdline,
            watched_since_ns,
        } = parent;
        if !self.parents.contains_key(&ppid) && self.parents.len() >= MAX_PARENTS {
            evict_idlest(&mut self.parents, |p| p.touched_ns);
        }
        let parent = self.parents.entry(ppid).or_insert_with(|| Parent {
            comm: comm.to_vec(),
            cmdline: cmdline.to_vec(),
            watched_since_ns,
            zombies_ever: 0,
            leaked: 0,
            by_command: HashMap::new(),
            reaps: Log2Hist::default(),
            touched_ns: now_ns,
        });
        if !comm.is_empty() {
            parent.comm = comm.to_vec();
            parent.cmdline = cmdline.to_vec();
        }
        parent.zombies_ever += 1;
        let known = parent.by_command.contains_key(command);
        let name = if known || parent.by_command.len() < MAX_COMMANDS_PER_PARENT {
            command
        } else {
            OTHER_COMMANDS
        };
        *parent.by_command.entry(name.to_vec()).or_default() += 1;
        parent.leaked += u64::from(!preexisting);
        parent.touched_ns = now_ns;
    }

    /// A child was reaped `latency_ns` after it died, by `reaper` (its
    /// parent, or an adoptive one).
    pub fn reaped(&mut self, reaper: u32, reaper_comm: &[u8], latency_ns: u64, now_ns: u64) {
        self.reaps.record(latency_ns);
        if let Some(parent) = self.parents.get_mut(&reaper) {
            parent.reaps.record(latency_ns);
            parent.touched_ns = now_ns;
        }
        if !self.by_comm.contains_key(reaper_comm) && self.by_comm.len() >= MAX_COMMS {
            evict_idlest(&mut self.by_comm, |c| c.touched_ns);
        }
        let comm = self.by_comm.entry(reaper_comm.to_vec()).or_insert(ByName {
            reaps: Log2Hist::default(),
            touched_ns: now_ns,
        });
        comm.reaps.record(latency_ns);
        comm.touched_ns = now_ns;
    }

    /// Every reap latency, here and in the kernel.
    pub fn reap_latency(&self, kernel: &KernelLatency) -> Log2Hist {
        let mut all = self.reaps.clone();
        all.merge(&kernel.overall);
        all
    }

    /// Reap latency by the reaper's name, busiest first, at most as many
    /// names as the table keeps.
    pub fn reap_latency_by_comm(&self, kernel: &KernelLatency) -> Vec<(Vec<u8>, Latency)> {
        let mut merged: HashMap<&[u8], Log2Hist> = self
            .by_comm
            .iter()
            .map(|(comm, c)| (comm.as_slice(), c.reaps.clone()))
            .collect();
        for (comm, hist) in &kernel.by_comm {
            merged.entry(comm).or_default().merge(hist);
        }
        let mut rows: Vec<(Vec<u8>, Latency)> = merged
            .into_iter()
            .map(|(comm, hist)| (comm.to_vec(), hist.summary()))
            .collect();
        rows.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(&b.0)));
        rows.truncate(MAX_COMMS);
        rows
    }

    /// The parents in the table.
    pub fn parent_pids(&self) -> Vec<u32> {
        self.parents.keys().copied().collect()
    }

    /// The parents that hold or have held zombies; `outstanding` says which
    /// zombies each holds now. Most zombies now first, then most ever.
    pub fn parents(
        &self,
        outstanding: &[ParentGroup],
        now_ns: u64,
        kernel: &KernelLatency,
    ) -> Vec<ParentRow> {
        let now_by_ppid: HashMap<u32, &ParentGroup> =
            outstanding.iter().map(|g| (g.ppid, g)).collect();
        let mut rows: Vec<ParentRow> = self
            .parents
            .iter()
            .map(|(&ppid, p)| {
                let group = now_by_ppid.get(&ppid);
                let window = now_ns
                    .saturating_sub(p.watched_since_ns)
                    .max(MIN_RATE_WINDOW_NS);
                ParentRow {
                    ppid,
                    comm: p.comm.clone(),
                    cmdline: p.cmdline.clone(),
                    zombies_now: group.map_or(0, |g| g.zombies.len() as u64),
                    zombies_ever: p.zombies_ever,
                    leak_per_min: p.leaked as f64 * 60e9 / window as f64,
                    oldest_ns: group.and_then(|g| g.oldest_ns),
                    reaps: {
                        let mut reaps = p.reaps.clone();
                        if let Some(k) = kernel.by_parent.get(&ppid) {
                            reaps.merge(k);
                        }
                        reaps.summary()
                    },
                    by_command: by_command(&p.by_command, group.copied()),
                }
            })
            .collect();
        // A parent forgotten by the table while it holds zombies still
        // belongs in it.
        for g in outstanding {
            if !self.parents.contains_key(&g.ppid) {
                rows.push(ParentRow {
                    ppid: g.ppid,
                    comm: g.parent_comm.clone(),
                    cmdline: Vec::new(),
                    zombies_now: g.zombies.len() as u64,
                    zombies_ever: g.zombies.len() as u64,
                    leak_per_min: 0.0,
                    oldest_ns: g.oldest_ns,
                    reaps: kernel
                        .by_parent
                        .get(&g.ppid)
                        .map(Log2Hist::summary)
                        .unwrap_or_default(),
                    by_command: by_command(&HashMap::new(), Some(g)),
                });
            }
        }
        rows.sort_by(|a, b| {
            (b.zombies_now, b.zombies_ever)
                .cmp(&(a.zombies_now, a.zombies_ever))
                .then(a.ppid.cmp(&b.ppid))
        });
        rows
    }
}

fn evict_idlest<K: Clone + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    touched: impl Fn(&V) -> u64,
) {
    if let Some(key) = map
        .iter()
        .min_by_key(|(_, v)| touched(v))
        .map(|(k, _)| k.clone())
    {
        map.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const SEC: u64 = 1_000 * MS;

    #[test]
    fn histogram_quantiles_are_within_a_factor_of_two() {
        let mut h = Log2Hist::default();
        assert_eq!(h.quantile(0.5), None);
        assert_eq!(h.summary().max_ns, None);
        for ms in 1..=100 {
            h.record(ms * MS);
        }
        let p50 = h.quantile(0.5).unwrap();
        assert!((50 * MS..=100 * MS).contains(&p50), "{p50}");
        let p99 = h.quantile(0.99).unwrap();
        assert!((99 * MS..=100 * MS).contains(&p99), "{p99}");
        assert_eq!(h.quantile(1.0), Some(100 * MS));
        assert_eq!(h.summary().count, 100);
        h.record(0);
        h.record(u64::MAX);
        assert_eq!(h.summary().max_ns, Some(u64::MAX));
        // 0 and 1 share the first bucket, [0, 2).
        assert_eq!(h.quantile(0.0), Some(2));
    }

    /// Found by the `kernel_maps` fuzz target: the kernel's counts may sum
    /// past `u64::MAX` (as read, not as lived), which overflowed the walk.
    #[test]
    fn histogram_counts_that_overflow_saturate() {
        let mut k = LatencyHist {
            buckets: [0; LATENCY_BUCKETS],
            sum_ns: 0,
            max_ns: 1 << 20,
        };
        k.buckets[0] = 1;
        k.buckets[3] = u64::MAX;
        let h = Log2Hist::from(&k);
        assert_eq!(h.count(), u64::MAX);
        assert_eq!(h.quantile(0.5), Some(16));
        // The walk adds u64::MAX to 1 on its way to the last rank.
        assert_eq!(h.quantile(1.0), Some(16));
        assert_eq!(h.summary().max_ns, Some(1 << 20));
    }

    fn held<'a>(ppid: u32, comm: &'a [u8], cmdline: &'a [Vec<u8>], since: u64) -> HeldBy<'a> {
        HeldBy {
            ppid,
            comm,
            cmdline,
            watched_since_ns: since,
        }
    }

    fn group(ppid: u32, zombies: &[u32], oldest: u64) -> ParentGroup {
        ParentGroup {
            by_command: vec![(b"git".to_vec(), zombies.len() as u64)],
            ppid,
            parent_comm: b"p".to_vec(),
            zombies: zombies.to_vec(),
            oldest_ns: Some(oldest),
            preexisting: false,
        }
    }

    #[test]
    fn parent_rows_with_rates_and_latencies() {
        let mut s = Stats::default();
        let cmd = vec![b"leaker".to_vec(), b"--slowly".to_vec()];
        // Watched from 100 s, leaks 10 zombies over 5 minutes, reaps one of
        // them after 2 s.
        for i in 0..10 {
            s.zombie(
                held(10, b"leaker", &cmd, 100 * SEC),
                if i < 7 { b"git" } else { b"ssh" },
                100 * SEC + i * 30 * SEC,
                false,
            );
        }
        s.reaped(10, b"leaker", 2 * SEC, 400 * SEC);
        s.zombie(
            held(20, b"other", &[], 399_500 * MS),
            b"sleep",
            399_500 * MS,
            false,
        );
        // Found at start-up: held, but not leaked while traced.
        s.zombie(held(40, b"old", &[], 100 * SEC), b"sleep", 100 * SEC, true);
        // A reaper that never held zombies only counts overall and by name.
        s.reaped(30, b"bash", MS, 400 * SEC);
        let none = KernelLatency::default();
        let rows = s.parents(
            &[group(10, &[1, 2, 3], 250 * SEC), group(99, &[7], SEC)],
            400 * SEC,
            &none,
        );
        assert_eq!(rows.len(), 4);
        let old = rows.iter().find(|r| r.ppid == 40).unwrap();
        assert_eq!((old.zombies_ever, old.leak_per_min), (1, 0.0));
        let forgotten = rows.iter().find(|r| r.ppid == 99).unwrap();
        assert_eq!((forgotten.zombies_now, forgotten.oldest_ns), (1, Some(SEC)));
        let leaker = &rows[0];
        assert_eq!(
            (leaker.ppid, leaker.zombies_now, leaker.zombies_ever),
            (10, 3, 10)
        );
        assert!(
            (leaker.leak_per_min - 2.0).abs() < 0.01,
            "{}",
            leaker.leak_per_min
        );
        assert_eq!(leaker.oldest_ns, Some(250 * SEC));
        assert_eq!(leaker.cmdline, cmd);
        // Which command leaks: git's are the ones held now.
        let by_command: Vec<(&[u8], u64, u64)> = leaker
            .by_command
            .iter()
            .map(|r| (&r.command[..], r.zombies_now, r.zombies_ever))
            .collect();
        assert_eq!(by_command, [(&b"git"[..], 3, 7), (&b"ssh"[..], 0, 3)]);
        assert_eq!(leaker.reaps.count, 1);
        assert_eq!(leaker.reaps.max_ns, Some(2 * SEC));
        let other = rows.iter().find(|r| r.ppid == 20).unwrap();
        assert_eq!((other.zombies_now, other.zombies_ever), (0, 1));
        assert!(
            (other.leak_per_min - 60.0).abs() < 0.01,
            "at least a second's window"
        );
        assert_eq!(s.reap_latency(&none).count(), 2);
        let by_comm = s.reap_latency_by_comm(&none);
        assert_eq!(by_comm.len(), 2);
        assert_eq!(by_comm[0].1.count, 1);
    }

    #[test]
    fn tables_are_bounded() {
        let mut s = Stats::default();
        for ppid in 0..5_000u32 {
            s.zombie(held(ppid, b"p", &[], 0), b"c", u64::from(ppid), false);
            s.reaped(ppid, format!("c{ppid}").as_bytes(), MS, u64::from(ppid));
        }
        assert_eq!(s.parents.len(), MAX_PARENTS);
        assert_eq!(s.by_comm.len(), MAX_COMMS);
        // The idlest went first.
        assert!(s.parents.contains_key(&4_999) && !s.parents.contains_key(&0));
        assert_eq!(s.reap_latency(&KernelLatency::default()).count(), 5_000);
    }

    /// The kernel's histograms (children paired there) add to those of
    /// the children userspace tracked: overall, by name, by parent.
    #[test]
    fn kernel_latencies_merge_with_ours() {
        let mut s = Stats::default();
        s.zombie(held(10, b"leaker", &[], 0), b"c", SEC, false);
        s.reaped(10, b"leaker", 3 * SEC, 4 * SEC);
        let mut k = LatencyHist {
            buckets: [0; LATENCY_BUCKETS],
            sum_ns: 0,
            max_ns: 0,
        };
        // 1,000 reaps of about 100 µs, by the same parent.
        let bucket = (100_000u64).ilog2() as usize;
        k.buckets[bucket] = 1_000;
        k.sum_ns = 100_000_000;
        k.max_ns = 120_000;
        let kernel = KernelLatency {
            overall: Log2Hist::from(&k),
            by_comm: vec![
                (b"leaker".to_vec(), Log2Hist::from(&k)),
                (b"sh".to_vec(), Log2Hist::default()),
            ],
            by_parent: HashMap::from([(10, Log2Hist::from(&k))]),
        };
        let all = s.reap_latency(&kernel);
        assert_eq!(all.count(), 1_001);
        assert_eq!(all.sum(), 3 * SEC + 100_000_000);
        let summary = all.summary();
        assert_eq!(summary.max_ns, Some(3 * SEC));
        assert!(summary.p50_ns.unwrap() < 200_000, "{summary:?}");
        let by_comm = s.reap_latency_by_comm(&kernel);
        assert_eq!(by_comm[0].0, b"leaker");
        assert_eq!(by_comm[0].1.count, 1_001);
        let rows = s.parents(&[], 5 * SEC, &kernel);
        assert_eq!(rows[0].reaps.count, 1_001);
        assert_eq!(rows[0].reaps.max_ns, Some(3 * SEC));
    }
}
