//! `--container`, `--pod`, `--namespace` in the kernel: the cgroups of the
//! containers they select, kept current as containers start and stop.
//!
//! A container's cgroup may appear before its runtime has written what
//! names it (plain runc writes its state after making the cgroup): such a
//! container is traced at once, so that none of its first exits is
//! missed, until its names say whether it is wanted (the reporter checks
//! each report against the options too).

use std::{
    collections::{HashMap, HashSet},
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};

use crate::{
    containers::{CgroupWatch, ContainerCgroup, Resolver, Selector},
    kernel::maps::Probes,
    model::process::ContainerNames,
    proc,
};

/// How long a container's runtime may take to write what names it.
const UNNAMED_FOR: Duration = Duration::from_secs(10);

pub struct Selection {
    watch: CgroupWatch,
    names: Resolver,
    selector: Selector,
    /// The cgroups selected, by id (the kernel's), with their container's.
    selected: HashMap<u64, String>,
    /// Those selected for now, while nameless: their container's id, and
    /// since when.
    unnamed: HashMap<u64, (String, Instant)>,
    /// Those found not wanted once named, with their container's id.
    rejected: HashMap<u64, String>,
    /// Those still nameless after [`UNNAMED_FOR`], looked at again at each
    /// rescan.
    nameless: HashMap<u64, String>,
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
            unnamed: HashMap::new(),
            rejected: HashMap::new(),
            nameless: HashMap::new(),
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

    /// Traces those of `cgroups` that are selected, and those not yet
    /// named.
    pub fn add(&mut self, cgroups: Vec<ContainerCgroup>, probes: &mut Probes) {
        for c in cgroups {
            if self.selected.contains_key(&c.inode)
                || self.unnamed.contains_key(&c.inode)
                || self.rejected.contains_key(&c.inode)
                || self.nameless.contains_key(&c.inode)
            {
                continue;
            }
            let names = self.names.names(&c.id);
            let wanted = self.selector.matches(&c.id, &names);
            let nameless = names == ContainerNames::default();
            if wanted || nameless {
                match probes.select_cgroup(c.inode) {
                    Ok(()) if wanted => {
                        self.selected.insert(c.inode, c.id);
                    }
                    Ok(()) => {
                        self.unnamed.insert(c.inode, (c.id, Instant::now()));
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

    /// Decides the containers traced while nameless, as their names come
    /// (or not, for [`UNNAMED_FOR`]).
    pub fn settle(&mut self, probes: &mut Probes) {
        let mut decided = Vec::new();
        for (&inode, (id, since)) in &self.unnamed {
            let names = self.names.names_now(id);
            if self.selector.matches(id, &names) {
                decided.push((inode, Some(true)));
            } else if names != ContainerNames::default() {
                decided.push((inode, Some(false)));
            } else if since.elapsed() > UNNAMED_FOR {
                decided.push((inode, None));
            }
        }
        for (inode, wanted) in decided {
            let Some((id, _)) = self.unnamed.remove(&inode) else {
                continue;
            };
            if wanted == Some(true) {
                self.selected.insert(inode, id);
                continue;
            }
            probes.unselect_cgroup(inode);
            match wanted {
                Some(_) => self.rejected.insert(inode, id),
                None => self.nameless.insert(inode, id),
            };
        }
    }

    /// Looks at every container again: those gone are dropped, and those
    /// whose runtime wrote its files late are taken.
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
        self.rejected.retain(|inode, _| live.contains(inode));
        self.nameless.retain(|inode, _| live.contains(inode));
        // Names written late: decided now.
        let named: Vec<(u64, bool)> = self
            .nameless
            .iter()
            .filter_map(|(&inode, id)| {
                let names = self.names.names_now(id);
                let wanted = self.selector.matches(id, &names);
                (wanted || names != ContainerNames::default()).then_some((inode, wanted))
            })
            .collect();
        for (inode, wanted) in named {
            let Some(id) = self.nameless.remove(&inode) else {
                continue;
            };
            if wanted && probes.select_cgroup(inode).is_ok() {
                self.selected.insert(inode, id);
            } else {
                self.rejected.insert(inode, id);
            }
        }
        self.add(now, probes);
    }

    /// Whether the container in `c` is selected, by what is known now.
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
