//! `--pid`, `--ppid`, `--comm`, `--cgroup`, checked before a record is made:
//! what is filtered out costs no ring-buffer space and no wakeup.

use aya_ebpf::{helpers::bpf_get_current_ancestor_cgroup_id, macros::map, maps::HashMap};
use zombie_trace_common::{CGROUP_SET_MAX, COMM_LEN, FILTER_MAX, Filter};

/// Set by the loader before loading; all zero traces everything.
#[unsafe(no_mangle)]
static FILTER: Filter = Filter {
    pids: [0; FILTER_MAX],
    ppids: [0; FILTER_MAX],
    n_pids: 0,
    n_ppids: 0,
    comm: [0; COMM_LEN],
    comm_len: 0,
    cgroup_level: 0,
    cgroup_id: 0,
    cgroup_set: 0,
    _pad: 0,
};

/// The cgroups `--container`/`--pod`/`--namespace` select (ids; the value
/// is unused), kept current by userspace as containers come and go.
#[map]
static CGROUP_SET: HashMap<u64, u8> = HashMap::with_max_entries(CGROUP_SET_MAX, 0);

/// The filter, as the loader set it (see `crate::opaque`).
#[inline(always)]
pub fn filter() -> &'static Filter {
    crate::opaque(&FILTER)
}

#[inline(always)]
fn listed(list: &[u32; FILTER_MAX], n: u32, value: u32) -> bool {
    let mut i = 0;
    while i < FILTER_MAX {
        if (i as u32) < n && list[i] == value {
            return true;
        }
        i += 1;
    }
    false
}

/// The process `tgid`, named `comm`, is one to trace (by pid and name).
#[inline(always)]
pub fn wants_process(f: &Filter, tgid: u32, comm: &[u8; COMM_LEN]) -> bool {
    (f.n_pids == 0 || listed(&f.pids, f.n_pids, tgid)) && (f.comm_len == 0 || *comm == f.comm)
}

/// Children of `ppid` are traced.
#[inline(always)]
pub fn wants_parent(f: &Filter, ppid: u32) -> bool {
    f.n_ppids == 0 || listed(&f.ppids, f.n_ppids, ppid)
}

/// How deep a cgroup tree is searched for `--cgroup`.
const MAX_CGROUP_DEPTH: i32 = 32;

/// The current task is in the `--cgroup` (or below it), and in (or below)
/// one of the `CGROUP_SET` when that is on. Every ancestor is compared, not
/// only the one at the depth userspace computed: inside a cgroup namespace
/// the tracer sees a shallower tree than the kernel.
#[inline(always)]
pub fn wants_current_cgroup(f: &Filter) -> bool {
    (f.cgroup_id == 0 || in_cgroup(|id| id == f.cgroup_id))
        // SAFETY: the value is not used, only its presence.
        && (f.cgroup_set == 0 || in_cgroup(|id| unsafe { CGROUP_SET.get(&id) }.is_some()))
}

/// `wanted` holds for the current task's cgroup or one of its ancestors.
#[inline(always)]
fn in_cgroup(wanted: impl Fn(u64) -> bool) -> bool {
    let mut level = 0;
    while level < MAX_CGROUP_DEPTH {
        // SAFETY: a helper that takes a plain integer.
        let id = unsafe { bpf_get_current_ancestor_cgroup_id(level) };
        if wanted(id) {
            return true;
        }
        // Past the task's own cgroup the helper returns 0.
        if id == 0 {
            return false;
        }
        level += 1;
    }
    false
}
