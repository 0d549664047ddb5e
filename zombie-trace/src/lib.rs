//! zombie-trace: find zombie processes as they happen.
//!
//! `loader` loads and attaches the kernel programs, `decode` turns
//! ring-buffer bytes into `event`s, the `engine` pairs exits with reaps
//! (pure, no I/O), `inspect` reads `/proc` and `procfile` parses what it
//! reads, `output` renders `report` lines as text or JSON (`flood` sums
//! up floods of them in text) and `writer` sends them to stdout.
//! `session` runs the event loop that wires them, `ps` is the
//! `/proc`-only snapshot; `main.rs` only parses the command line.

pub mod cli;
pub mod clock;
pub mod decode;
pub mod engine;
pub mod event;
pub mod filter;
pub mod flood;
pub mod inspect;
pub mod loader;
pub mod metrics;
pub mod offsets;
pub mod output;
pub mod privileges;
pub mod procfile;
pub mod ps;
pub mod report;
pub mod session;
pub mod stats;
pub mod writer;
