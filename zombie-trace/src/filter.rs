//! `--pid`, `--ppid`, `--comm`, `--cgroup`, and `--container`, `--pod`,
//! `--namespace`: which processes to trace. The kernel programs apply them
//! (see `zombie_trace_common::Filter`; the containers as the set of their
//! cgroups, which the session keeps current); the `/proc` scans apply the
//! same here.

use std::{
    fs,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use thiserror::Error;
use zombie_trace_common::{COMM_LEN, FILTER_MAX, Filter};

use crate::{containers::Selector, model::process::ContainerNames, proc};

#[derive(Debug, Error)]
pub enum FilterError {
    #[error("--{0} takes at most {FILTER_MAX} values")]
    TooMany(&'static str),
    #[error(
        "--comm {0:?} is longer than the 15 bytes the kernel keeps of a name: give its first 15 bytes"
    )]
    CommTooLong(String),
    #[error("--comm must not be empty")]
    CommEmpty,
    #[error(
        "--cgroup {path}: {why}; give a cgroup v2 directory, such as /sys/fs/cgroup/system.slice/foo.service (see `cat /proc/PID/cgroup`)"
    )]
    Cgroup { path: PathBuf, why: String },
}

/// The filters, checked and resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    pub pids: Vec<u32>,
    pub ppids: Vec<u32>,
    pub comm: Option<Vec<u8>>,
    pub cgroup: Option<Cgroup>,
    pub containers: Selector,
}

/// A cgroup v2 directory, as the kernel and `/proc/PID/cgroup` name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cgroup {
    /// Its path below the cgroup v2 root, starting with `/`.
    pub path: String,
    pub id: u64,
    pub level: u32,
}

impl Filters {
    pub fn new(
        pids: Vec<u32>,
        ppids: Vec<u32>,
        comm: Option<String>,
        cgroup: Option<&Path>,
    ) -> Result<Self, FilterError> {
        if pids.len() > FILTER_MAX {
            return Err(FilterError::TooMany("pid"));
        }
        if ppids.len() > FILTER_MAX {
            return Err(FilterError::TooMany("ppid"));
        }
        let comm = match comm {
            Some(c) if c.is_empty() => return Err(FilterError::CommEmpty),
            Some(c) if c.len() >= COMM_LEN => return Err(FilterError::CommTooLong(c)),
            Some(c) => Some(c.into_bytes()),
            None => None,
        };
        let cgroup = cgroup.map(resolve_cgroup).transpose()?;
        Ok(Self {
            pids,
            ppids,
            comm,
            cgroup,
            containers: Selector::default(),
        })
    }

    /// Only processes in the containers `containers` selects.
    pub fn with_containers(self, containers: Selector) -> Self {
        Self { containers, ..self }
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The `--pid`/`--ppid` values that are no process now, as
    /// `(flag, pid)`: likely a typo, or a process that is gone.
    pub fn absent_pids(&self) -> Vec<(&'static str, u32)> {
        let pids = self.pids.iter().map(|&pid| ("--pid", pid));
        let ppids = self.ppids.iter().map(|&pid| ("--ppid", pid));
        pids.chain(ppids)
            .filter(|&(_, pid)| !proc::exists(pid))
            .collect()
    }

    /// For the kernel programs.
    pub fn to_kernel(&self) -> Filter {
        let mut f = Filter::default();
        for (slot, &pid) in f.pids.iter_mut().zip(&self.pids) {
            *slot = pid;
        }
        for (slot, &ppid) in f.ppids.iter_mut().zip(&self.ppids) {
            *slot = ppid;
        }
        f.n_pids = self.pids.len() as u32;
        f.n_ppids = self.ppids.len() as u32;
        if let Some(comm) = &self.comm {
            f.comm[..comm.len()].copy_from_slice(comm);
            f.comm_len = comm.len() as u32;
        }
        if let Some(cgroup) = &self.cgroup {
            f.cgroup_id = cgroup.id;
            f.cgroup_level = cgroup.level;
        }
        f.cgroup_set = u32::from(!self.containers.is_empty());
        f
    }

    /// A process in container `id` (none: `None`), which its runtime
    /// calls `names`, is in one the container options select.
    pub fn wants_container(&self, id: Option<&str>, names: &ContainerNames) -> bool {
        self.containers.is_empty() || id.is_some_and(|id| self.containers.matches(id, names))
    }

    /// The same test for a process found in `/proc` (`cgroup` is its line
    /// `0::PATH` from `/proc/PID/cgroup`, when needed and readable).
    pub fn matches(&self, pid: u32, ppid: u32, comm: &[u8], cgroup: Option<&str>) -> bool {
        (self.pids.is_empty() || self.pids.contains(&pid))
            && (self.ppids.is_empty() || self.ppids.contains(&ppid))
            && self.comm.as_deref().is_none_or(|c| c == comm)
            && self
                .cgroup
                .as_ref()
                .is_none_or(|want| cgroup.is_some_and(|have| is_within(have, &want.path)))
    }
}

/// `have` is `want` or below it.
fn is_within(have: &str, want: &str) -> bool {
    want == "/"
        || have == want
        || have
            .strip_prefix(want)
            .is_some_and(|rest| rest.starts_with('/'))
}

fn resolve_cgroup(path: &Path) -> Result<Cgroup, FilterError> {
    let err = |why: String| FilterError::Cgroup {
        path: path.to_path_buf(),
        why,
    };
    let full = fs::canonicalize(path).map_err(|e| err(e.to_string()))?;
    let meta = fs::metadata(&full).map_err(|e| err(e.to_string()))?;
    if !meta.is_dir() {
        return Err(err("not a directory".into()));
    }
    let root = proc::cgroup2_mounts()
        .into_iter()
        .filter(|m| full.starts_with(m))
        .max_by_key(|m| m.as_os_str().len())
        .ok_or_else(|| err("not under a cgroup v2 mount".into()))?;
    let rel = full.strip_prefix(&root).unwrap_or(Path::new(""));
    let level = rel.components().count() as u32;
    Ok(Cgroup {
        path: format!("/{}", rel.display()),
        id: meta.ino(),
        level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_values() {
        assert!(Filters::new(vec![1; 9], vec![], None, None).is_err());
        assert!(Filters::new(vec![], vec![1; 9], None, None).is_err());
        assert!(Filters::new(vec![], vec![], Some(String::new()), None).is_err());
        assert!(Filters::new(vec![], vec![], Some("a".repeat(16)), None).is_err());
        assert!(Filters::new(vec![], vec![], Some("a".repeat(15)), None).is_ok());
        let err = Filters::new(vec![], vec![], None, Some(Path::new("/nonexistent/cg")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cgroup v2 directory"), "{err}");
        assert!(
            Filters::new(vec![], vec![], None, Some(Path::new("/proc")))
                .unwrap_err()
                .to_string()
                .contains("not under a cgroup v2 mount")
        );
        assert!(Filters::default().is_empty());
    }

    #[test]
    fn kernel_form() {
        let f = Filters::new(vec![7, 8], vec![9], Some("make".into()), None)
            .unwrap()
            .to_kernel();
        assert_eq!((f.n_pids, f.n_ppids), (2, 1));
        assert_eq!(&f.pids[..3], &[7, 8, 0]);
        assert_eq!(&f.comm[..5], b"make\0");
        assert_eq!(f.comm_len, 4);
        assert_eq!(f.cgroup_id, 0);
        assert_eq!(Filters::default().to_kernel(), Filter::default());
    }

    #[test]
    fn matches_like_the_kernel() {
        let f = Filters {
            ppids: vec![10],
            comm: Some(b"worker".to_vec()),
            cgroup: Some(Cgroup {
                path: "/app".into(),
                id: 1,
                level: 1,
            }),
            ..Filters::default()
        };
        assert!(f.matches(5, 10, b"worker", Some("/app")));
        assert!(f.matches(5, 10, b"worker", Some("/app/sub")));
        assert!(!f.matches(5, 10, b"worker", Some("/apple")));
        assert!(!f.matches(5, 10, b"worker", None));
        assert!(!f.matches(5, 11, b"worker", Some("/app")));
        assert!(!f.matches(5, 10, b"work", Some("/app")));
        assert!(Filters::default().matches(1, 2, b"x", None));
        assert!(is_within("/anything", "/"));
    }

    #[test]
    fn containers_by_name_in_the_kernel_as_a_set() {
        let id = "ab".repeat(32);
        let web = ContainerNames {
            name: Some("web".into()),
            ..ContainerNames::default()
        };
        let f = Filters::default()
            .with_containers(Selector::new(Some("web".into()), None, None).unwrap());
        assert_eq!(f.to_kernel().cgroup_set, 1);
        assert!(!f.is_empty());
        assert!(f.wants_container(Some(&id), &web));
        assert!(!f.wants_container(Some(&id), &ContainerNames::default()));
        assert!(!f.wants_container(None, &web));
        assert!(Filters::default().wants_container(None, &ContainerNames::default()));
        assert_eq!(Filters::default().to_kernel().cgroup_set, 0);
    }
}
