//! Containers as their runtimes describe them: names from the runtimes'
//! own files on the node, and the cgroups containers run in.
//!
//! `resolve` reads what the
//! runtimes (Podman, CRI-O, containerd, Docker, runc) wrote of it, through
//! `files` (bounded reads that follow no planted link) and `runtime` (their
//! formats); `select` is what `--container`, `--pod` and `--namespace`
//! want; `watch` finds container cgroups as they are made.

mod files;
mod resolve;
pub mod runtime;
mod select;
mod watch;

pub use resolve::Resolver;
pub use select::{Selector, SelectorError};
pub use watch::{CgroupWatch, ContainerCgroup, WatchError};

#[cfg(test)]
mod scratch;
