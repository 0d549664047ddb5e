//! Unwinding real processes, without eBPF: a child blocked in a system
//! call, its registers taken by ptrace and its stack from `/proc/PID/mem`,
//! is what the kernel program captures at fork.

use std::{
    fs,
    io::{Read as _, Seek as _, SeekFrom},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use zombie_trace_common::SPAWN_STACK_BYTES;

use super::*;

/// A C parent with two spawn sites, as the `--stacks` end-to-end test has;
/// here the process blocks in `read` under one of them.
const C_PROGRAM: &str = r#"
#include <unistd.h>
__attribute__((noinline)) void spawn_leaky(int fd) {
    char b;
    read(fd, &b, 1);
}
__attribute__((noinline)) void spawn_reaped(int fd) {
    char b;
    read(fd, &b, 1);
}
int main(int argc, char **argv) {
    int p[2];
    if (pipe(p) != 0) return 1;
    if (argc > 1) spawn_reaped(p[0]); else spawn_leaky(p[0]);
    return 0;
}
"#;

/// The line of `read` in `spawn_leaky` above.
const LEAKY_LINE: u32 = 5;

/// Kills the process when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Compiles [`C_PROGRAM`] with `flags`; see [`compile_program`].
fn compile(name: &str, flags: &[&str]) -> Option<(PathBuf, PathBuf)> {
    compile_program(name, C_PROGRAM, flags)
}

/// Compiles C `program` with `flags`: its source and binary, or `None`
/// (the test skips) without a C compiler.
fn compile_program(name: &str, program: &str, flags: &[&str]) -> Option<(PathBuf, PathBuf)> {
    let dir = std::env::temp_dir().join(format!("zt-stacks-{}-{name}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let source = dir.join("parent.c");
    fs::write(&source, program).unwrap();
    let binary = dir.join("parent");
    match Command::new("cc")
        .args(flags)
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .status()
    {
        Ok(status) => {
            assert!(status.success(), "cc failed");
            Some((source, binary))
        }
        Err(e) => {
            eprintln!("SKIPPED: no C compiler (cc: {e}); install gcc to run this test");
            None
        }
    }
}

/// Waits until `pid` blocks in system call `nr` on a pipe.
fn wait_blocked_in(pid: u32, nr: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
        let wchan = fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
        // In the pipe's read, not one of start-up's reads of files.
        if text.split_whitespace().next().and_then(|n| n.parse().ok()) == Some(nr)
            && wchan.ends_with("pipe_read")
        {
            return;
        }
        assert!(Instant::now() < deadline, "{pid} never blocked: {text}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// The user registers of `pid`, a child of this process blocked in a
/// system call, and its stack, as the kernel program takes them at fork.
/// By ptrace: `/proc/PID/syscall` gives `sp` and `pc` but not `rbp`, which
/// CFI needs in code built with frame pointers (there the frame's address
/// is `rbp`-relative).
fn capture(pid: u32) -> (UserRegs, Vec<u8>) {
    let tid = pid as libc::pid_t;
    let null = std::ptr::null_mut::<libc::c_void>();
    // SAFETY: ptrace requests on our own child, with the arguments each
    // takes; `regs` is a valid `user_regs_struct` to fill.
    unsafe {
        assert_eq!(
            libc::ptrace(libc::PTRACE_SEIZE, tid, null, null),
            0,
            "PTRACE_SEIZE"
        );
        assert_eq!(libc::ptrace(libc::PTRACE_INTERRUPT, tid, null, null), 0);
        let mut status = 0;
        assert_eq!(libc::waitpid(tid, &mut status, libc::__WALL), tid);
        let mut regs: libc::user_regs_struct = std::mem::zeroed();
        assert_eq!(
            libc::ptrace(
                libc::PTRACE_GETREGS,
                tid,
                null,
                (&raw mut regs).cast::<libc::c_void>()
            ),
            0
        );
        let regs = UserRegs {
            ip: regs.rip,
            sp: regs.rsp,
            bp: regs.rbp,
            link: 0,
        };
        let stack = stack_of(pid, regs.sp);
        libc::ptrace(libc::PTRACE_DETACH, tid, null, null);
        (regs, stack)
    }
}

/// Up to [`SPAWN_STACK_BYTES`] of `pid`'s stack from `sp`, a page at a
/// time as the kernel program reads it.
fn stack_of(pid: u32, sp: u64) -> Vec<u8> {
    let mut mem = fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut stack = Vec::new();
    let mut at = sp;
    while stack.len() < SPAWN_STACK_BYTES {
        let chunk = (4096 - (at % 4096)) as usize;
        let mut page = vec![0u8; chunk.min(SPAWN_STACK_BYTES - stack.len())];
        mem.seek(SeekFrom::Start(at)).unwrap();
        if mem.read_exact(&mut page).is_err() {
            break;
        }
        stack.extend_from_slice(&page);
        at += page.len() as u64;
    }
    stack
}

fn frames_of(child: &Child, syscall: u64) -> Vec<Frame> {
    let pid = child.id();
    wait_blocked_in(pid, syscall);
    let (regs, stack) = capture(pid);
    let frames = Symbolizer::default()
        .spawn_stack(pid, regs, &stack, regs.sp)
        .unwrap();
    for frame in &frames {
        eprintln!("  {frame}  [{:#x} {:?}]", frame.address, frame.module);
    }
    frames
}

fn position(frames: &[Frame], symbol: &str) -> Option<usize> {
    frames
        .iter()
        .position(|f| f.symbol.as_deref() == Some(symbol))
}

fn run(binary: &Path) -> Running {
    Running(Command::new(binary).stdin(Stdio::null()).spawn().unwrap())
}

const SYS_READ: u64 = libc::SYS_read as u64;

#[test]
fn names_the_caller_through_libc_with_frame_pointers() {
    let Some((source, binary)) = compile("fp", &["-O1", "-g", "-fno-omit-frame-pointer"]) else {
        return;
    };
    let parent = run(&binary);
    let frames = frames_of(&parent.0, SYS_READ);
    let leaky = position(&frames, "spawn_leaky").expect("spawn_leaky named");
    let main = position(&frames, "main").expect("main named");
    assert!(leaky < main);
    assert_eq!(frames[leaky].file.as_deref(), source.to_str());
    assert_eq!(frames[leaky].line, Some(LEAKY_LINE));
    assert!(frames[main].file.as_deref() == source.to_str());
    assert!(position(&frames, "spawn_reaped").is_none());
    // The first frame is in libc's `read`, which has no frame pointer.
    assert!(
        frames[0]
            .module
            .as_deref()
            .is_some_and(|m| m.contains("libc.so")),
        "{frames:?}"
    );
}

#[test]
fn names_the_caller_without_frame_pointers() {
    let Some((source, binary)) = compile("nofp", &["-O2", "-g", "-fomit-frame-pointer"]) else {
        return;
    };
    let parent = run(&binary);
    let frames = frames_of(&parent.0, SYS_READ);
    let leaky = position(&frames, "spawn_leaky").expect("spawn_leaky named");
    assert_eq!(frames[leaky].file.as_deref(), source.to_str());
    assert!(position(&frames, "main").is_some_and(|main| leaky < main));
}

/// What a Python parent's stack gives: the interpreter's native frames
/// (`os.fork` is `os_fork_impl` under `_PyEval_EvalFrameDefault`), never
/// the Python function: Python 3.11 keeps its frames on a heap of its own.
#[test]
fn python_gives_the_interpreter_frames() {
    let script =
        "import os\ndef spawn_leaky():\n    r, w = os.pipe()\n    os.read(r, 1)\nspawn_leaky()\n";
    let parent = match Command::new("/usr/bin/python3")
        .args(["-c", script])
        .spawn()
    {
        Ok(child) => Running(child),
        Err(e) => {
            eprintln!("SKIPPED: no /usr/bin/python3 ({e})");
            return;
        }
    };
    let frames = frames_of(&parent.0, SYS_READ);
    assert!(
        position(&frames, "_PyEval_EvalFrameDefault").is_some(),
        "{frames:#?}"
    );
    assert!(
        !frames
            .iter()
            .any(|f| f.symbol.as_deref() == Some("spawn_leaky"))
    );
}

#[test]
fn garbage_stacks_give_few_frames_and_no_panic() {
    let Some((_, binary)) = compile("garbage", &["-O1", "-fno-omit-frame-pointer"]) else {
        return;
    };
    let parent = run(&binary);
    let pid = parent.0.id();
    wait_blocked_in(pid, SYS_READ);
    let (regs, _) = capture(pid);
    let mut stacks = Symbolizer::default();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for len in [0usize, 1, 7, 8, 64, 4096, SPAWN_STACK_BYTES] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        for regs in [
            regs,
            UserRegs {
                ip: 0,
                sp: 0,
                bp: 0,
                link: 0,
            },
            UserRegs {
                ip: u64::MAX,
                sp: u64::MAX - 3,
                bp: u64::MAX,
                link: u64::MAX,
            },
        ] {
            let frames = stacks.spawn_stack(pid, regs, &bytes, regs.sp).unwrap();
            assert!(frames.len() <= MAX_FRAMES);
        }
    }
    assert!(matches!(
        stacks.spawn_stack(u32::MAX, regs, &[], regs.sp),
        Err(StackError::ParentGone { .. })
    ));
}
