//! `zombie-trace ps`: the zombies that exist now, from `/proc` alone, in
//! the same lines as a live report. No eBPF, so no root needed; what it
//! cannot know (when a zombie died, whether its parent calls wait) it
//! leaves out.

use std::{
    collections::BTreeMap,
    io::{self, Write},
    path::Path,
    time::SystemTime,
};

use anyhow::{Context as _, Result};

use crate::{
    containers::Resolver,
    diagnosis::{Facts, diagnose},
    kernel::clock,
    model::{
        process::{Placement, ProcessInfo},
        report::{Line, ParentGroup, Snapshot, Zombie},
    },
    output::{Encoder, Format},
    proc::{self, ProcZombie},
};

/// `runtime_root`: where the container runtimes' state directories are.
pub fn run(format: Format, runtime_root: &Path) -> Result<()> {
    let full_detail = is_root();
    if !full_detail {
        log::warn!(
            "not root: what other users' processes are doing (their syscall, and more) cannot be \
             read; run as root for full detail"
        );
    }
    let zombies = proc::zombies().context("scanning /proc for zombies")?;
    let mut containers = Resolver::new(runtime_root);
    let encoder = Encoder::new(format);
    let mut out = Vec::new();
    let mut by_parent = Vec::new();
    for (ppid, children) in group_by_parent(zombies) {
        let mut parent = proc::process_info(ppid);
        if let Some(parent) = &mut parent {
            containers.name(&mut parent.placement);
        }
        for child in &children {
            let mut placement = proc::zombie_placement(child.pid);
            containers.name(&mut placement);
            let z = zombie(child, placement, parent.clone(), clock::boot_ns());
            out.extend_from_slice(encoder.encode(&Line::Zombie(Box::new(z))).as_bytes());
        }
        by_parent.push(ParentGroup {
            ppid,
            parent_comm: parent.map(|p| p.comm).unwrap_or_default(),
            zombies: children.iter().map(|c| c.pid).collect(),
            // Their own names: their commands went with their memory.
            by_command: ParentGroup::count_commands(children.iter().map(|c| c.comm.as_bytes())),
            oldest_ns: None,
            preexisting: false,
        });
    }
    // Parents with most zombies first, as in the summary.
    by_parent.sort_by(|a, b| {
        b.zombies
            .len()
            .cmp(&a.zombies.len())
            .then(a.ppid.cmp(&b.ppid))
    });
    let snapshot = Line::Snapshot(Snapshot {
        ts: SystemTime::now(),
        zombies: by_parent.iter().map(|g| g.zombies.len()).sum(),
        by_parent,
        full_detail,
    });
    out.extend_from_slice(encoder.encode(&snapshot).as_bytes());
    match io::stdout().lock().write_all(&out) {
        // `zombie-trace ps | head` is fine.
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e).context("cannot write to stdout"),
        _ => Ok(()),
    }
}

/// Zombies by parent pid, each group by pid.
fn group_by_parent(zombies: Vec<ProcZombie>) -> BTreeMap<u32, Vec<ProcZombie>> {
    let mut groups: BTreeMap<u32, Vec<ProcZombie>> = BTreeMap::new();
    for z in zombies {
        groups.entry(z.ppid).or_default().push(z);
    }
    for children in groups.values_mut() {
        children.sort_by_key(|c| c.pid);
    }
    groups
}

/// Zombie `child`, placed at `placement`, of `parent` (`None`: gone), as
/// `/proc` shows it at `now_ns`.
fn zombie(
    child: &ProcZombie,
    placement: Placement,
    parent: Option<ProcessInfo>,
    now_ns: u64,
) -> Zombie {
    let facts = Facts {
        pid: child.pid,
        placement: &placement,
        age_ns: None,
        preexisting: true,
        original_parent: None,
        parent: parent.as_ref(),
        // Not known without tracing.
        parent_waits: None,
    };
    let diagnosis = diagnose(&facts, now_ns, now_ns);
    Zombie {
        ts: SystemTime::now(),
        pid: child.pid,
        comm: child.comm,
        status: None,
        age_ns: None,
        preexisting: true,
        ppid_at_exit: None,
        original_parent: None,
        ppid: child.ppid,
        parent,
        placement,
        parent_waits: None,
        diagnosis,
        // A zombie's memory, its command line with it, is gone.
        command: None,
        spawn_stack: None,
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::event::Comm;

    fn z(pid: u32, ppid: u32) -> ProcZombie {
        ProcZombie {
            pid,
            comm: Comm::new(b"x"),
            ppid,
            start_ticks: 1,
        }
    }

    #[test]
    fn groups_by_parent_sorted() {
        let groups = group_by_parent(vec![z(9, 2), z(5, 1), z(7, 2), z(3, 2)]);
        let pids: Vec<(u32, Vec<u32>)> = groups
            .into_iter()
            .map(|(ppid, c)| (ppid, c.iter().map(|c| c.pid).collect()))
            .collect();
        assert_eq!(pids, vec![(1, vec![5]), (2, vec![3, 7, 9])]);
    }
}
