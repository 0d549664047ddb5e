//! Typed access to the programs' maps: the kernel counters, the exits held
//! in the kernel (`PENDING`) and handing them over to userspace
//! (`HANDED`), the wait-call tallies and the reap-latency histograms.

use std::{
    collections::{HashMap as StdHashMap, HashSet},
    os::fd::{AsFd as _, AsRawFd as _},
};

use crate::{
    kernel::{decode, stacks::SpawnStacks},
    model::{
        event::{Command, Exit},
        report::{Startup, WaitHooks},
    },
};
use aya::{
    Ebpf, Pod,
    maps::{HashMap, IterableMap as _, MapData, PerCpuArray},
};
use zombie_trace_common::{
    COMM_LEN, COUNTER_COMMAND_FULL, COUNTER_EXITS, COUNTER_HANDED_FULL, COUNTER_KERNEL_REAPS,
    COUNTER_LOST_EXEC, COUNTER_LOST_EXIT, COUNTER_LOST_REAP, COUNTER_LOST_WAIT,
    COUNTER_PENDING_FULL, COUNTER_READ_ERRORS, COUNTER_WAIT_UNTRACKED, Command as KernelCommand,
    ExitRecord, LatencyHist, Orphan, PENDING_MAX, ReaperLatency, WaitTally,
};

/// Parents' command entries read for a batch of exits, by tgid.
pub type ParentCommands = StdHashMap<u32, Option<KernelCommand>>;

/// The programs, and the maps read on demand.
pub struct Probes {
    pub(super) counters: PerCpuArray<MapData, u64>,
    /// The default mode's maps (see the eBPF crate's `pairing`): exits not
    /// yet reaped, what userspace tracks, wait calls by caller, and reap
    /// latencies.
    pub(super) pending: HashMap<MapData, u32, ExitRecord>,
    pub(super) handed: HashMap<MapData, u32, u32>,
    /// What userspace put in `handed`: the kernel puts there only what it
    /// takes out again at the reap, so a stray entry (a process reaped as
    /// userspace marked it) is one of these, found without walking the map.
    pub(super) handed_here: HashSet<u32>,
    pub(super) wait_tally: HashMap<MapData, u32, WaitTally>,
    pub(super) latency: PerCpuArray<MapData, LatencyHist>,
    pub(super) latency_by_comm: HashMap<MapData, [u8; COMM_LEN], LatencyHist>,
    pub(super) latency_by_reaper: HashMap<MapData, u32, ReaperLatency>,
    /// The cgroups `--container`/`--pod`/`--namespace` select.
    pub(super) cgroup_set: HashMap<MapData, u64, u8>,
    /// The parents of children adopted alive.
    pub(super) orphans: HashMap<MapData, u32, Orphan>,
    /// What each process runs, from its exec.
    pub(super) commands: HashMap<MapData, u32, KernelCommand>,
    /// With `--stacks`: where each child's parent forked it.
    pub spawn_stacks: Option<SpawnStacks>,
    /// Whether `wait4`/`waitid` are traced (they need tracefs).
    pub wait_tracing: bool,
    /// Why not, when they are not.
    pub wait_tracing_error: Option<String>,
    /// How, when they are.
    pub wait_hooks: Option<WaitHooks>,
    /// What loading took, by part (the scan is the session's).
    pub startup: Startup,
    /// Keeps the programs and their links alive: dropping it detaches them.
    pub(super) _ebpf: Ebpf,
}

/// What the kernel programs count (since they were loaded).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Records the ring buffer had no room for.
    pub lost_exits: u64,
    pub lost_reaps: u64,
    pub lost_waits: u64,
    pub lost_execs: u64,
    /// Wait calls not tracked: too many threads were blocked in wait.
    pub untracked_waits: u64,
    /// Kernel memory reads that failed (fields left zero).
    pub read_errors: u64,
    /// Processes that died, as traced (the default mode's count).
    pub exits: u64,
    /// Reaps paired in the kernel (the default mode's).
    pub kernel_reaps: u64,
    /// Exits sent over the ring buffer because `PENDING` was full.
    pub pending_full: u64,
    /// Reaps not marked for userspace because `HANDED` was full.
    pub handed_full: u64,
    /// Execs whose command was not kept: `COMMANDS` was full.
    pub commands_full: u64,
}

impl Counters {
    pub fn lost(&self) -> u64 {
        self.lost_exits + self.lost_reaps + self.lost_waits + self.lost_execs
    }
}

impl Probes {
    /// The kernel-side counters, summed over CPUs.
    pub fn counters(&self) -> Counters {
        let read = |index: u32| {
            self.counters
                .get(&index, 0)
                .map(|values| values.iter().sum())
                .unwrap_or(0)
        };
        Counters {
            lost_exits: read(COUNTER_LOST_EXIT),
            lost_reaps: read(COUNTER_LOST_REAP),
            lost_waits: read(COUNTER_LOST_WAIT),
            lost_execs: read(COUNTER_LOST_EXEC),
            untracked_waits: read(COUNTER_WAIT_UNTRACKED),
            read_errors: read(COUNTER_READ_ERRORS),
            exits: read(COUNTER_EXITS),
            kernel_reaps: read(COUNTER_KERNEL_REAPS),
            pending_full: read(COUNTER_PENDING_FULL),
            handed_full: read(COUNTER_HANDED_FULL),
            commands_full: read(COUNTER_COMMAND_FULL),
        }
    }

    /// The exits held in the kernel, not yet reaped: the whole map in one
    /// batch (a leaking parent fills it with thousands), else entry by
    /// entry, two syscalls each.
    pub fn held(&self) -> Vec<ExitRecord> {
        match lookup_batch::<u32, ExitRecord>(self.pending.map(), PENDING_MAX) {
            Ok(entries) => entries.into_iter().map(|(_, exit)| exit).collect(),
            Err(e) => {
                log::debug!("batch lookup of PENDING failed ({e}): reading it entry by entry");
                self.pending
                    .iter()
                    .filter_map(Result::ok)
                    .map(|(_, exit)| exit)
                    .collect()
            }
        }
    }

    /// Takes the process of `exit`, read from the kernel's `PENDING` map
    /// earlier, out of it, so that its reap comes to userspace; `false` if
    /// the kernel paired it meanwhile (its pid may even hold another
    /// process's exit by now, which stays). On `Err`, `HANDED` is full: the
    /// process stays in the kernel.
    pub fn take_over(&mut self, exit: &ExitRecord) -> Result<bool, aya::maps::MapError> {
        let tgid = exit.tgid;
        if !self
            .pending
            .get(&tgid, 0)
            .is_ok_and(|held| held.start_ns == exit.start_ns)
        {
            return Ok(false);
        }
        // Marked first: a reap between the two steps then still comes.
        self.track(tgid)?;
        if self.pending.remove(&tgid).is_ok() {
            return Ok(true);
        }
        self.untrack(tgid);
        Ok(false)
    }

    /// Asks for the reap of process `tgid` (found in `/proc`) to come to
    /// userspace.
    pub fn track(&mut self, tgid: u32) -> Result<(), aya::maps::MapError> {
        self.handed.insert(&tgid, &0, 0)?;
        self.handed_here.insert(tgid);
        Ok(())
    }

    pub fn untrack(&mut self, tgid: u32) {
        let _ = self.handed.remove(&tgid);
        self.handed_here.remove(&tgid);
    }

    /// The processes userspace asked the reaps of and has not untracked
    /// (the kernel drops each from `HANDED` when it sends its reap).
    pub fn tracked(&self) -> Vec<u32> {
        self.handed_here.iter().copied().collect()
    }

    /// The parent process `tgid` (started at `start_ns`) had before it was
    /// adopted, if it was (and a thread of that parent was its parent: not
    /// another thread of the same process, `ppid`).
    pub fn orphan(&self, tgid: u32, start_ns: u64, ppid: u32) -> Option<Orphan> {
        self.orphans
            .get(&tgid, 0)
            .ok()
            .filter(|o| o.start_ns == start_ns && o.ppid != ppid)
    }

    /// What the process of `exit` ran: its own command, else (it never
    /// exec'd) its parent's.
    pub fn command(&self, exit: &Exit) -> Option<Command> {
        self.commands
            .get(&exit.key.pid, 0)
            .ok()
            .and_then(|c| decode::command(&c, exit.key.start_ns))
            .or_else(|| self.inherited_command(exit, &mut ParentCommands::new()))
    }

    /// The command of the process of `exit`, which never exec'd, from its
    /// parent's; `parents` keeps the parents' entries across a batch of
    /// exits (a storm's children share one).
    pub fn inherited_command(&self, exit: &Exit, parents: &mut ParentCommands) -> Option<Command> {
        let parent = parents
            .entry(exit.ppid)
            .or_insert_with(|| self.commands.get(&exit.ppid, 0).ok());
        decode::inherited_command(parent.as_ref()?, exit.key.start_ns, &exit.comm)
    }

    /// Traces the processes in cgroup `id` (and below) from now on.
    pub fn select_cgroup(&mut self, id: u64) -> Result<(), aya::maps::MapError> {
        self.cgroup_set.insert(&id, &1, 0)
    }

    /// Stops tracing cgroup `id` (removed, or no longer selected).
    pub fn unselect_cgroup(&mut self, id: u64) {
        let _ = self.cgroup_set.remove(&id);
    }

    /// The wait calls of process `tgid`, as the kernel counted them.
    pub fn wait_tally(&self, tgid: u32) -> Option<WaitTally> {
        self.wait_tally.get(&tgid, 0).ok()
    }

    /// Reap latencies of the children paired in the kernel, summed over
    /// CPUs.
    pub fn latency(&self) -> Option<LatencyHist> {
        let per_cpu = self.latency.get(&0, 0).ok()?;
        let mut sum = per_cpu.first().copied()?;
        for hist in per_cpu.iter().skip(1) {
            for (total, n) in sum.buckets.iter_mut().zip(hist.buckets) {
                *total += n;
            }
            sum.sum_ns += hist.sum_ns;
            sum.max_ns = sum.max_ns.max(hist.max_ns);
        }
        Some(sum)
    }

    /// The same by the reaper's name.
    pub fn latency_by_comm(&self) -> Vec<([u8; COMM_LEN], LatencyHist)> {
        self.latency_by_comm.iter().filter_map(Result::ok).collect()
    }

    /// The same for the children process `tgid` reaped.
    pub fn latency_of(&self, tgid: u32) -> Option<LatencyHist> {
        self.latency_by_reaper.get(&tgid, 0).ok().map(|r| r.hist)
    }
}

/// Every entry of hash map `map` (at most `max`), read by the kernel in as
/// few `BPF_MAP_LOOKUP_BATCH` calls as it takes (Linux 5.6+), which aya
/// does not offer.
fn lookup_batch<K: Pod, V: Pod>(map: &MapData, max: u32) -> std::io::Result<Vec<(K, V)>> {
    /// `union bpf_attr`'s `batch` member (include/uapi/linux/bpf.h).
    #[repr(C)]
    struct BatchAttr {
        in_batch: u64,
        out_batch: u64,
        keys: u64,
        values: u64,
        count: u32,
        map_fd: u32,
        elem_flags: u64,
        flags: u64,
    }
    const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
    let n = max as usize;
    let (key_len, value_len) = (size_of::<K>(), size_of::<V>());
    let mut keys = vec![0u8; n * key_len];
    let mut values = vec![0u8; n * value_len];
    // For a hash map the batch token is a bucket number (a u32).
    let (mut token_in, mut token_out) = (0u64, 0u64);
    let mut entries = Vec::new();
    let mut first = true;
    loop {
        let mut attr = BatchAttr {
            in_batch: if first {
                0
            } else {
                (&raw const token_in) as u64
            },
            out_batch: (&raw mut token_out) as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: max,
            map_fd: map.fd().as_fd().as_raw_fd() as u32,
            elem_flags: 0,
            flags: 0,
        };
        // SAFETY: the attribute points to buffers for `max` keys and
        // values and to 8-byte tokens, all alive for the call; the kernel
        // writes at most `count` entries.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_LOOKUP_BATCH,
                &raw mut attr,
                size_of::<BatchAttr>() as u32,
            )
        };
        // ENOENT: the end of the map, with the last entries read.
        let end = ret < 0 && {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ENOENT) {
                return Err(e);
            }
            true
        };
        let filled = (attr.count as usize).min(n);
        for i in 0..filled {
            // SAFETY: the kernel wrote `filled` whole keys and values; Pod
            // types are valid for any bytes, and read unaligned.
            let entry = unsafe {
                (
                    keys.as_ptr().add(i * key_len).cast::<K>().read_unaligned(),
                    values
                        .as_ptr()
                        .add(i * value_len)
                        .cast::<V>()
                        .read_unaligned(),
                )
            };
            entries.push(entry);
        }
        if end || entries.len() >= n {
            return Ok(entries);
        }
        token_in = token_out;
        first = false;
    }
}
