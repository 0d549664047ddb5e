//! `--container`, `--pod`, `--namespace` in the kernel: the cgroups of the
//! containers they select, kept current as containers start and stop.

use std::{
    collections::{HashMap, HashSet},
    path::Path,
};

use anyhow::{Context as _, Result};

use crate::{
    containers::{CgroupWatch, ContainerCgroup, Resolver, Selector},
    kernel::maps::Probes,
    proc,
};

pub struct Selection {
    watch: CgroupWatch,
    names: Resolver,
    selector: Selector,
    /// The cgroups selected, by id (the kernel's), with their container's.
    selected: HashMap<u64, String>,
    /// The kernel's set was found full: said once.
    full_said: bool,
}

impl Selection {
    /// The containers `selector` selects now, and a watch for those to
    /// come; `None` when it selects nothing (no container option given).
    /// The cgroup ids go to the kernel before its programs attach.
    pub fn start(selector: &Selector, runtime_root: &Path) -> Result<Option<(Self, Vec<u64>)>> {
        if selector.is_empty() {
            return Ok(None);
        }
        let mount = proc::cgroup2_mounts().into_iter().next().context(
            "--container, --pod and --namespace need cgroup v2 (mounted at /sys/fs/cgroup, or \
             /sys/fs/cgroup/unified on hybrid systems); none is mounted here: mount it \
             (mount -t cgroup2 none /sys/fs/cgroup/unified) or filter with --cgroup or --ppid",
        )?;
        let watch = CgroupWatch::new(&mount)
            .with_context(|| format!("watching {} for containers", mount.display()))?;
        let mut selection = Self {
            watch,
            names: Resolver::new(runtime_root),
            selector: selector.clone(),
            selected: HashMap::new(),
            full_said: false,
        };
        let mut ids = Vec::new();
        for c in selection.watch.scan() {
            if selection.wants(&c) {
                ids.push(c.inode);
                selection.selected.insert(c.inode, c.id);
            }
        }
        if ids.is_empty() {
            log::warn!(
                "no running container matches {}: tracing begins with the first one that does \
                 (see `docker ps`, `podman ps` or `crictl ps` for the names on this node)",
                describe(selector)
            );
        }
        Ok(Some((selection, ids)))
    }

    /// Cgroups made since the last call (see [`CgroupWatch::appeared`]).
    pub async fn appeared(&mut self) -> Vec<ContainerCgroup> {
        self.watch.appeared().await
    }

    /// Traces those of `cgroups` that are selected.
    pub fn add(&mut self, cgroups: Vec<ContainerCgroup>, probes: &mut Probes) {
        for c in cgroups {
            if !self.selected.contains_key(&c.inode) && self.wants(&c) {
                match probes.select_cgroup(c.inode) {
                    Ok(()) => {
                        self.selected.insert(c.inode, c.id);
                    }
                    Err(e) if !self.full_said => {
                        self.full_said = true;
                        log::warn!(
                            "container {} is not traced: the kernel's set of selected cgroups \
                             is full ({e}); select fewer containers",
                            &c.id[..12.min(c.id.len())]
                        );
                    }
                    Err(_) => {}
                }
            }
        }
    }

    /// Looks at every container again: those gone are dropped, and those
    /// whose runtime had not yet written its files when they appeared are
    /// taken.
    pub fn rescan(&mut self, probes: &mut Probes) {
        let now = self.watch.scan();
        let live: HashSet<u64> = now.iter().map(|c| c.inode).collect();
        self.selected.retain(|inode, _| {
            let keep = live.contains(inode);
            if !keep {
                probes.unselect_cgroup(*inode);
            }
            keep
        });
        self.add(now, probes);
    }

    fn wants(&mut self, c: &ContainerCgroup) -> bool {
        let names = self.names.names(&c.id);
        self.selector.matches(&c.id, &names)
    }
}

/// The container options, as given.
fn describe(s: &Selector) -> String {
    [
        ("--container", &s.container),
        ("--pod", &s.pod),
        ("--namespace", &s.namespace),
    ]
    .into_iter()
    .filter_map(|(flag, v)| v.as_ref().map(|v| format!("{flag} {v:?}")))
    .collect::<Vec<_>>()
    .join(" ")
}
