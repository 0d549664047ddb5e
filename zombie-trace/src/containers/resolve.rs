//! Names of containers, from the runtimes' own files on the node, cached
//! by id.

use std::{
    collections::{HashMap, VecDeque},
    path::{Component, Path, PathBuf},
    time::{Duration, Instant},
};

use super::{
    files::{self, Stamp},
    runtime::{self, Facts},
};
use crate::{
    model::process::{ContainerNames, Placement},
    proc::container::{full_id, is_full_id},
};

/// Largest `config.json`, `config.v2.json` or `state.json` read: real ones
/// are tens of KiB.
const CONFIG_CAP: usize = 1 << 20;
/// Largest Podman `containers.json` read: a few hundred bytes a container.
const CONTAINERS_CAP: usize = 16 << 20;
/// Ids whose names are kept; the oldest go first.
const CACHE_IDS: usize = 4096;
/// How long "nothing found" stands: a runtime may write its files after
/// the container's first process runs.
const MISS_RETRY: Duration = Duration::from_secs(5);
/// containerd namespaces (and runc roots) looked into.
const NAMESPACES: usize = 64;
/// Containers of a runc root looked at, at most.
const RUNC_CONTAINERS: usize = 1024;

/// Podman's and CRI-O's state, below the root.
const STORAGES: [&str; 2] = ["var/lib/containers/storage", "run/containers/storage"];
const PODMAN_LIST: &str = "var/lib/containers/storage/overlay-containers";
const CONTAINERD_TASKS: &str = "run/containerd/io.containerd.runtime.v2.task";
const DOCKER: &str = "var/lib/docker/containers";
const RUNC: [&str; 2] = ["run/runc", "run/docker/runtime-runc/moby"];
const CONTAINERD_RUNC: &str = "run/containerd/runc";

/// Reads names from the runtimes' own files below a root (normally "/"),
/// cached by id.
pub struct Resolver {
    root: PathBuf,
    cache: HashMap<String, Cached>,
    /// Cached ids, oldest first.
    order: VecDeque<String>,
    podman: PodmanList,
    runc: RuncIndex,
    miss_retry: Duration,
}

/// Plain runc's containers by their cgroup: their ids need not be hex (`runc
/// run web`), so a cgroup path does not name them. Read again when a runc
/// root's directory changes.
#[derive(Default)]
struct RuncIndex {
    stamps: Vec<Option<Stamp>>,
    /// When the stamps were last looked at: a flood of reports looks once.
    looked: Option<Instant>,
    by_cgroup: HashMap<String, String>,
}

/// How often the runc roots are looked at for changes, at most.
const RUNC_LOOK_EVERY: Duration = Duration::from_millis(100);

struct Cached {
    names: ContainerNames,
    /// Nothing was found: ask again after [`MISS_RETRY`].
    missed_at: Option<Instant>,
}

/// Podman's `containers.json`, parsed once and again only when it changed.
#[derive(Default)]
struct PodmanList {
    stamp: Option<Stamp>,
    names: HashMap<String, String>,
}

impl Resolver {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            cache: HashMap::new(),
            order: VecDeque::new(),
            podman: PodmanList::default(),
            runc: RuncIndex::default(),
            miss_retry: MISS_RETRY,
        }
    }

    /// The names of the container whose full id is found in `cgroup` (a
    /// path as `/proc/PID/cgroup` shows it); all `None` if none found.
    pub fn names_of_cgroup(&mut self, cgroup: &str) -> ContainerNames {
        match full_id(cgroup) {
            Some(id) => self.names(id),
            None => self.runc_names(cgroup),
        }
    }

    /// The names of the plain runc container in `cgroup`, if one is: its
    /// annotations, else its id as its name.
    fn runc_names(&mut self, cgroup: &str) -> ContainerNames {
        let look = self
            .runc
            .looked
            .is_none_or(|at| at.elapsed() >= RUNC_LOOK_EVERY);
        let roots: Vec<PathBuf> = RUNC.iter().map(|r| self.root.join(r)).collect();
        let stamps: Vec<Option<Stamp>> = if look {
            self.runc.looked = Some(Instant::now());
            roots.iter().map(|r| files::dir_stamp(r)).collect()
        } else {
            self.runc.stamps.clone()
        };
        if stamps != self.runc.stamps {
            let mut by_cgroup = HashMap::new();
            for root in &roots {
                for id in files::subdirs(root, RUNC_CONTAINERS) {
                    let state = files::read_below(root, &[&id, "state.json"], CONFIG_CAP);
                    if let Some(path) = state.as_deref().and_then(runtime::runc_cgroup)
                        && path != "/"
                    {
                        by_cgroup.insert(path, id);
                    }
                }
            }
            self.runc.stamps = stamps;
            self.runc.by_cgroup = by_cgroup;
        }
        let Some(id) = self.runc.by_cgroup.get(cgroup).cloned() else {
            return ContainerNames::default();
        };
        let mut facts = self.runc(&id);
        facts.merge(Facts::named(id));
        ContainerNames::from(&facts)
    }

    /// Names the container of a process placed at `placement`, if it is
    /// in one.
    pub fn name(&mut self, placement: &mut Placement) {
        if let Some(cgroup) = placement.cgroup.as_deref().filter(|c| *c != "/") {
            placement.names = self.names_of_cgroup(cgroup);
        }
    }

    /// The names of container `id` (64 lowercase hex).
    pub fn names(&mut self, id: &str) -> ContainerNames {
        self.lookup(id, false)
    }

    /// As [`Resolver::names`], but a container found nameless is looked
    /// for again at once: its runtime may be writing its files right now.
    pub fn names_now(&mut self, id: &str) -> ContainerNames {
        self.lookup(id, true)
    }

    fn lookup(&mut self, id: &str, retry_miss: bool) -> ContainerNames {
        if !is_full_id(id) {
            return ContainerNames::default();
        }
        if let Some(cached) = self.cache.get(id)
            && cached
                .missed_at
                .is_none_or(|at| !retry_miss && at.elapsed() < self.miss_retry)
        {
            return cached.names.clone();
        }
        let facts = self.facts(id);
        let names = ContainerNames::from(&facts);
        let missed_at = facts.is_empty().then(Instant::now);
        self.remember(id, names.clone(), missed_at);
        names
    }

    fn remember(&mut self, id: &str, names: ContainerNames, missed_at: Option<Instant>) {
        let cached = Cached { names, missed_at };
        if self.cache.insert(id.to_owned(), cached).is_none() {
            self.order.push_back(id.to_owned());
        }
        while self.order.len() > CACHE_IDS {
            if let Some(old) = self.order.pop_front() {
                self.cache.remove(&old);
            }
        }
    }

    /// What the runtimes' files say of `id`, earlier sources first; later
    /// ones fill in only what earlier ones lack.
    fn facts(&mut self, id: &str) -> Facts {
        let mut facts = self.storage(id);
        if !facts.complete() {
            facts.merge(self.containerd(id));
        }
        if !facts.complete() {
            facts.merge(self.docker(id));
        }
        if !facts.complete() {
            facts.merge(self.runc(id));
        }
        if let Some(infra) = facts
            .podman_sandbox()
            .filter(|s| *s != id)
            .map(str::to_owned)
        {
            let infra = self.storage_config(&infra);
            facts.set_podman_pod(infra.as_ref().and_then(Facts::hostname));
        }
        facts
    }

    /// containers/storage (Podman, CRI-O): the OCI `config.json`, and
    /// Podman's name for the container.
    fn storage(&mut self, id: &str) -> Facts {
        let mut facts = self.storage_config(id).unwrap_or_default();
        if let Some(name) = self.podman_name(id) {
            facts.merge(Facts::named(name));
        }
        facts
    }

    fn storage_config(&self, id: &str) -> Option<Facts> {
        STORAGES.iter().find_map(|storage| {
            let base = self.root.join(storage).join("overlay-containers");
            config(&base, &[id, "userdata", "config.json"], runtime::oci_config)
        })
    }

    fn podman_name(&mut self, id: &str) -> Option<String> {
        if !self.podman.names.contains_key(id) {
            self.reload_podman_list();
        }
        self.podman.names.get(id).cloned()
    }

    /// Reads `containers.json` again if it changed since last read.
    fn reload_podman_list(&mut self) {
        let base = self.root.join(PODMAN_LIST);
        let Some(file) = files::open_below(&base, &["containers.json"]) else {
            self.podman = PodmanList::default();
            return;
        };
        let stamp = files::stamp(&file);
        if stamp.is_some() && stamp == self.podman.stamp {
            return;
        }
        let names = files::read_capped(file, CONTAINERS_CAP)
            .and_then(|bytes| runtime::podman_containers(&bytes))
            .unwrap_or_default();
        self.podman = PodmanList { stamp, names };
    }

    /// containerd's tasks, in every namespace: the OCI `config.json`.
    fn containerd(&self, id: &str) -> Facts {
        let tasks = self.root.join(CONTAINERD_TASKS);
        let found = files::subdirs(&tasks, NAMESPACES)
            .into_iter()
            .find_map(|ns| config(&tasks, &[&ns, id, "config.json"], runtime::oci_config));
        found.unwrap_or_default()
    }

    /// Docker's `config.v2.json`.
    fn docker(&self, id: &str) -> Facts {
        let base = self.root.join(DOCKER);
        config(&base, &[id, "config.v2.json"], runtime::docker_config).unwrap_or_default()
    }

    /// runc's `state.json` (alone, or under containerd or Docker), and the
    /// `config.json` of the bundle it names.
    fn runc(&self, id: &str) -> Facts {
        let containerd = self.root.join(CONTAINERD_RUNC);
        let mut roots: Vec<PathBuf> = RUNC.iter().map(|r| self.root.join(r)).collect();
        roots.extend(
            files::subdirs(&containerd, NAMESPACES)
                .iter()
                .map(|ns| containerd.join(ns)),
        );
        let Some(mut facts) = roots
            .iter()
            .find_map(|root| config(root, &[id, "state.json"], runtime::runc_state))
        else {
            return Facts::default();
        };
        if let Some(bundle) = facts.bundle().and_then(|b| self.below_root(b))
            && let Some(config) = config(&bundle, &["config.json"], runtime::oci_config)
        {
            facts.merge(config);
        }
        facts
    }

    /// `path` (absolute, as a runtime wrote it) below the root, unless it
    /// would climb out of it.
    fn below_root(&self, path: &str) -> Option<PathBuf> {
        let path = Path::new(path);
        let mut below = self.root.clone();
        for part in path.components() {
            match part {
                Component::RootDir | Component::CurDir => {}
                Component::Normal(name) => below.push(name),
                Component::ParentDir | Component::Prefix(_) => return None,
            }
        }
        Some(below)
    }
}

/// The file `below` `base`, read by `parse` if it is at most
/// [`CONFIG_CAP`] bytes.
fn config(base: &Path, below: &[&str], parse: fn(&[u8]) -> Option<Facts>) -> Option<Facts> {
    parse(&files::read_below(base, below, CONFIG_CAP)?)
}

#[cfg(test)]
mod tests;
