//! zombie-trace: find zombie processes as they happen.
//!
//! Layers, each using only those below it (see README.md, Development):
//! `model` (plain types); `kernel` (the eBPF programs, their maps and
//! records) and `proc` (every `/proc` read and its parsers); `engine`
//! (pairing exits with reaps), `diagnosis`, `stats` and `filter` (pure
//! logic); `output` (text, JSON); `session` (the event loop that wires
//! them), `metrics` and `ps`; `cli` and `main.rs`.

pub mod cli;
pub mod diagnosis;
pub mod engine;
pub mod filter;
pub mod kernel;
pub mod metrics;
pub mod model;
pub mod output;
pub mod proc;
pub mod ps;
pub mod session;
pub mod stats;
