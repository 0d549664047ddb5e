//! Answers per parent for long leak hunts: who holds or has held zombies,
//! how many, how fast they leak, and how long reaps take. Pure and bounded:
//! latencies go into log2 histograms (64 counters each), and the tables
//! keep at most a fixed number of parents and names, forgetting the idlest.

use std::collections::HashMap;

use crate::report::{Latency, ParentGroup, ParentRow};

/// Parents remembered in the table.
const MAX_PARENTS: usize = 1024;
/// Process names with a reap latency histogram.
const MAX_COMMS: usize = 256;
/// Leak rates are taken over at least this long.
const MIN_RATE_WINDOW_NS: u64 = 1_000_000_000;

/// Counts of durations by power of two: bucket `i` holds values in
/// `[2^i, 2^(i+1))` ns (bucket 0 also holds 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Log2Hist {
    buckets: [u64; 64],
    count: u64,
    max: u64,
}

impl Default for Log2Hist {
    fn default() -> Self {
        Self {
            buckets: [0; 64],
            count: 0,
            max: 0,
        }
    }
}

impl Log2Hist {
    pub fn record(&mut self, ns: u64) {
        let bucket = ns.checked_ilog2().unwrap_or(0) as usize;
        self.buckets[bucket] += 1;
        self.count += 1;
        self.max = self.max.max(ns);
    }

    /// The `q`-quantile (0 to 1), as the upper bound of its bucket (at most
    /// the maximum seen): an overestimate by less than 2x.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let upper = 1u64.checked_shl(i as u32 + 1).unwrap_or(u64::MAX);
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
    /// Exit-to-reap times of the children it reaped since it entered the
    /// table.
    reaps: Log2Hist,
    touched_ns: u64,
}

#[derive(Clone, Debug)]
struct Comm {
    reaps: Log2Hist,
    touched_ns: u64,
}

#[derive(Default)]
pub struct Stats {
    reaps: Log2Hist,
    by_comm: HashMap<Vec<u8>, Comm>,
    parents: HashMap<u32, Parent>,
}

impl Stats {
    /// A zombie was reported under parent `ppid`, watched since
    /// `watched_since_ns` (the later of its start and the tracer's).
    pub fn zombie(
        &mut self,
        ppid: u32,
        comm: &[u8],
        cmdline: &[Vec<u8>],
        watched_since_ns: u64,
        now_ns: u64,
        preexisting: bool,
    ) {
        if !self.parents.contains_key(&ppid) && self.parents.len() >= MAX_PARENTS {
            evict_idlest(&mut self.parents, |p| p.touched_ns);
        }
        let parent = self.parents.entry(ppid).or_insert_with(|| Parent {
            comm: comm.to_vec(),
            cmdline: cmdline.to_vec(),
            watched_since_ns,
            zombies_ever: 0,
            leaked: 0,
            reaps: Log2Hist::default(),
            touched_ns: now_ns,
        });
        if !comm.is_empty() {
            parent.comm = comm.to_vec();
            parent.cmdline = cmdline.to_vec();
        }
        parent.zombies_ever += 1;
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
        let comm = self.by_comm.entry(reaper_comm.to_vec()).or_insert(Comm {
            reaps: Log2Hist::default(),
            touched_ns: now_ns,
        });
        comm.reaps.record(latency_ns);
        comm.touched_ns = now_ns;
    }

    pub fn reap_latency(&self) -> Latency {
        self.reaps.summary()
    }

    /// Reap latency by the reaper's name, busiest first.
    pub fn reap_latency_by_comm(&self) -> Vec<(Vec<u8>, Latency)> {
        let mut rows: Vec<(Vec<u8>, Latency)> = self
            .by_comm
            .iter()
            .map(|(comm, c)| (comm.clone(), c.reaps.summary()))
            .collect();
        rows.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(&b.0)));
        rows
    }

    /// The parents that hold or have held zombies; `outstanding` says which
    /// zombies each holds now. Most zombies now first, then most ever.
    pub fn parents(&self, outstanding: &[ParentGroup], now_ns: u64) -> Vec<ParentRow> {
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
                    reaps: p.reaps.summary(),
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
                    reaps: Latency::default(),
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

    fn group(ppid: u32, zombies: &[u32], oldest: u64) -> ParentGroup {
        ParentGroup {
            ppid,
            parent_comm: b"p".to_vec(),
            zombies: zombies.to_vec(),
            oldest_ns: Some(oldest),
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
                10,
                b"leaker",
                &cmd,
                100 * SEC,
                100 * SEC + i * 30 * SEC,
                false,
            );
        }
        s.reaped(10, b"leaker", 2 * SEC, 400 * SEC);
        s.zombie(20, b"other", &[], 399_500 * MS, 399_500 * MS, false);
        // Found at start-up: held, but not leaked while traced.
        s.zombie(40, b"old", &[], 100 * SEC, 100 * SEC, true);
        // A reaper that never held zombies only counts overall and by name.
        s.reaped(30, b"bash", MS, 400 * SEC);
        let rows = s.parents(
            &[group(10, &[1, 2, 3], 250 * SEC), group(99, &[7], SEC)],
            400 * SEC,
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
        assert_eq!(leaker.reaps.count, 1);
        assert_eq!(leaker.reaps.max_ns, Some(2 * SEC));
        let other = rows.iter().find(|r| r.ppid == 20).unwrap();
        assert_eq!((other.zombies_now, other.zombies_ever), (0, 1));
        assert!(
            (other.leak_per_min - 60.0).abs() < 0.01,
            "at least a second's window"
        );
        assert_eq!(s.reap_latency().count, 2);
        let by_comm = s.reap_latency_by_comm();
        assert_eq!(by_comm.len(), 2);
        assert_eq!(by_comm[0].1.count, 1);
    }

    #[test]
    fn tables_are_bounded() {
        let mut s = Stats::default();
        for ppid in 0..5_000u32 {
            s.zombie(ppid, b"p", &[], 0, u64::from(ppid), false);
            s.reaped(ppid, format!("c{ppid}").as_bytes(), MS, u64::from(ppid));
        }
        assert_eq!(s.parents.len(), MAX_PARENTS);
        assert_eq!(s.by_comm.len(), MAX_COMMS);
        // The idlest went first.
        assert!(s.parents.contains_key(&4_999) && !s.parents.contains_key(&0));
        assert_eq!(s.reap_latency().count, 5_000);
    }
}
