//! The plain types the rest of zombie-trace speaks: what the kernel says
//! happened (`event`), what a process is (`process`), and what is said to
//! the operator (`report`). They depend on nothing else in the crate.

pub mod diagnosis;
pub mod event;
#[cfg(test)]
pub mod fixtures;
pub mod process;
pub mod report;
pub mod time;
