//! Loading the programs into the kernel and attaching them. The verifier
//! takes most of start-up, and checks a program on the CPU that asked: the
//! programs are loaded two at a time.

use std::{
    thread,
    time::{Duration, Instant},
};

use aya::{
    Btf, Ebpf,
    programs::{Program, ProgramError},
};

/// A program and what it hooks: a BTF tracepoint's or a traced
/// function's name (a syscall tracepoint's is its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hook {
    pub program: &'static str,
    pub target: &'static str,
}

impl Hook {
    pub const fn named(program: &'static str) -> Self {
        Hook {
            program,
            target: program,
        }
    }
}

/// How many programs are verified at once.
const AT_ONCE: usize = 2;

/// Loads each of `hooks`, [`AT_ONCE`] at a time: whether it loaded, and
/// the wall time all took.
pub fn load(
    ebpf: &mut Ebpf,
    btf: &Btf,
    hooks: &[Hook],
) -> (Vec<Result<(), ProgramError>>, Duration) {
    let started = Instant::now();
    let mut programs: Vec<(usize, &Hook, Option<&mut Program>)> = Vec::new();
    let mut by_name: Vec<(&str, &mut Program)> = ebpf.programs_mut().collect();
    for (i, hook) in hooks.iter().enumerate() {
        let at = by_name.iter().position(|(name, _)| *name == hook.program);
        programs.push((i, hook, at.map(|at| by_name.swap_remove(at).1)));
    }
    // Dealt out in turn: the caller lists the costliest first.
    let mut queues: Vec<Vec<_>> = (0..AT_ONCE).map(|_| Vec::new()).collect();
    for (n, program) in programs.into_iter().enumerate() {
        queues[n % AT_ONCE].push(program);
    }
    let done: Vec<(usize, Result<(), ProgramError>)> = thread::scope(|scope| {
        let workers: Vec<_> = queues
            .into_iter()
            .map(|queue| {
                scope.spawn(move || {
                    queue
                        .into_iter()
                        .map(|(i, hook, program)| (i, load_one(hook, program, btf)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| {
                worker.join().unwrap_or_else(|_| {
                    log::warn!("a thread loading programs panicked: they are not loaded");
                    Vec::new()
                })
            })
            .collect()
    });
    // A worker that panicked (it said so on stderr) leaves its programs
    // not loaded.
    let mut results: Vec<_> = hooks.iter().map(|_| Err(ProgramError::NotLoaded)).collect();
    for (i, result) in done {
        results[i] = result;
    }
    (results, started.elapsed())
}

fn load_one(hook: &Hook, program: Option<&mut Program>, btf: &Btf) -> Result<(), ProgramError> {
    let program = program.ok_or(ProgramError::NotLoaded)?;
    let t = Instant::now();
    let loaded = match program {
        Program::BtfTracePoint(p) => p.load(hook.target, btf),
        Program::FExit(p) => p.load(hook.target, btf),
        Program::TracePoint(p) => p.load(),
        _ => Err(ProgramError::UnexpectedProgramType),
    };
    log::debug!(
        "start-up: {} {} in {:?} ({} instructions)",
        hook.program,
        if loaded.is_ok() {
            "verified"
        } else {
            "refused"
        },
        t.elapsed(),
        program
            .info()
            .ok()
            .and_then(|i| i.verified_instruction_count())
            .map_or_else(|| "?".to_owned(), |n| n.to_string()),
    );
    loaded
}

/// Attaches a loaded program; syscall tracepoints are in `syscalls`.
pub fn attach(ebpf: &mut Ebpf, hook: &Hook) -> Result<(), ProgramError> {
    let program = ebpf
        .program_mut(hook.program)
        .ok_or(ProgramError::NotLoaded)?;
    match program {
        Program::BtfTracePoint(p) => p.attach().map(drop),
        Program::FExit(p) => p.attach().map(drop),
        Program::TracePoint(p) => p.attach("syscalls", hook.target).map(drop),
        _ => Err(ProgramError::UnexpectedProgramType),
    }
}

/// Detaches and unloads a trampoline program, if it was loaded (the only
/// kind given up on once loaded).
pub fn unload(ebpf: &mut Ebpf, hook: &Hook) {
    if let Some(Program::FExit(p)) = ebpf.program_mut(hook.program)
        && let Err(e) = p.unload()
    {
        log::debug!("unloading {}: {e}", hook.program);
    }
}
