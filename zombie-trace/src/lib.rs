//! zombie-trace: find zombie processes as they happen.
//!
//! The binary (`main.rs`) wires these together: `loader` loads and attaches
//! the kernel programs, `decode` turns ring-buffer bytes into `event`s, the
//! `engine` pairs exits with reaps (pure, no I/O), `inspect` reads `/proc`,
//! and `output` renders `report` lines as text or JSON.

pub mod cli;
pub mod clock;
pub mod decode;
pub mod engine;
pub mod event;
pub mod inspect;
pub mod loader;
pub mod offsets;
pub mod output;
pub mod report;
pub mod session;
