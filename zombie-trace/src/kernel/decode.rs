//! Ring-buffer bytes to [`Event`]s. The length is checked before anything is
//! read: a short or unknown record is an error, never undefined behaviour.

use std::{mem::size_of, sync::Arc};

use thiserror::Error;
use zombie_trace_common::{
    Command as KernelCommand, EXIT_HAS_COMMAND, EXIT_IN_PID_NS, EXIT_LEADER_WENT_FIRST,
    EXIT_NOT_SIGCHLD, EXIT_PARENT_CGROUPS, EXIT_PARENT_IGNORES_SIGCHLD, EXIT_PTRACED, ExecRecord,
    ExitCommandRecord, ExitRecord, KIND_EXEC, KIND_EXIT, KIND_REAP, KIND_WAIT, Orphan, ReapRecord,
    WAIT_SYSCALL_WAIT4, WAIT_SYSCALL_WAITID, WAIT_TARGETS, WaitRecord, WaitTally, WaitTargetId,
    collects_exit, exit_status_word,
};

use crate::model::{
    event::{
        Comm, Command, Event, Exec, Exit, ExitStatus, ParentName, ProcKey, Release, WNOWAIT, Wait,
        WaitSyscall, WaitTarget,
    },
    process::{RecentWait, WaitStats},
};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {len} bytes is too short for its kind ({need} bytes)")]
    TooShort { len: usize, need: usize },
    #[error("unknown record kind {0}")]
    UnknownKind(u32),
    #[error("unknown wait syscall {0}")]
    UnknownSyscall(u32),
    #[error("unknown waitid idtype {0}")]
    UnknownIdtype(u32),
}

/// Reads a plain-integer record out of `bytes` once its length is known to
/// be enough.
fn read<T: Copy>(bytes: &[u8]) -> Result<T, DecodeError> {
    let need = size_of::<T>();
    if bytes.len() < need {
        return Err(DecodeError::TooShort {
            len: bytes.len(),
            need,
        });
    }
    // SAFETY: `bytes` holds at least size_of::<T>() bytes, and every `T`
    // used here is a `#[repr(C)]` struct of integers and byte arrays, valid
    // for any bit pattern; read_unaligned needs no alignment.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    let kind: u32 = read(bytes)?;
    match kind {
        KIND_EXIT if read::<ExitRecord>(bytes)?.flags & EXIT_HAS_COMMAND != 0 => {
            let r: ExitCommandRecord = read(bytes)?;
            let mut exit = exit(r.exit);
            exit.command = command(&r.command, r.exit.start_ns).map(Arc::new);
            Ok(Event::Exit(exit))
        }
        KIND_EXIT => Ok(Event::Exit(exit(read(bytes)?))),
        KIND_REAP => Ok(Event::Release(reap(read(bytes)?))),
        KIND_WAIT => wait(read(bytes)?).map(Event::Wait),
        KIND_EXEC => {
            let r: ExecRecord = read(bytes)?;
            Ok(Event::Exec(Exec {
                pid: r.tgid,
                ts_ns: r.ts_ns,
            }))
        }
        other => Err(DecodeError::UnknownKind(other)),
    }
}

pub fn exit(r: ExitRecord) -> Exit {
    Exit {
        key: ProcKey {
            pid: r.tgid,
            start_ns: r.start_ns,
        },
        tid: r.tid,
        ppid: r.ppid,
        ts_ns: r.ts_ns,
        status: ExitStatus::from_wait_status(r.status),
        comm: Comm::new(&r.comm),
        parent_comm: Comm::new(&r.parent_comm),
        parent_ignores_sigchld: r.flags & EXIT_PARENT_IGNORES_SIGCHLD != 0,
        ptraced: r.flags & EXIT_PTRACED != 0,
        not_sigchld: r.flags & EXIT_NOT_SIGCHLD != 0,
        leader_went_first: r.flags & EXIT_LEADER_WENT_FIRST != 0,
        in_pid_ns: r.flags & EXIT_IN_PID_NS != 0,
        parent_cgroups: r.flags & EXIT_PARENT_CGROUPS != 0,
        command: None,
    }
}

/// The command the kernel kept for the process started at `start_ns`, if
/// `c` is that process's.
pub fn command(c: &KernelCommand, start_ns: u64) -> Option<Command> {
    if c.start_ns != start_ns {
        return None;
    }
    let exe = &c.exe[..usize::from(c.exe_len).min(c.exe.len())];
    let argv = &c.argv[..usize::from(c.argv_len).min(c.argv.len())];
    Some(Command::new(exe, argv, c.argv_size))
}

/// The command of a child that never exec'd, from its parent's: the one
/// it runs, if the parent's exec came before the child's fork and the
/// child still has the name that exec gave (a child adopted by another
/// parent, or renamed, gets none rather than a wrong one).
pub fn inherited_command(
    parent: &KernelCommand,
    child_start_ns: u64,
    child_comm: &Comm,
) -> Option<Command> {
    if parent.exec_ns > child_start_ns || Comm::new(&parent.comm) != *child_comm {
        return None;
    }
    let mut command = command(parent, parent.start_ns)?;
    command.inherited = true;
    Some(command)
}

fn reap(r: ReapRecord) -> Release {
    Release {
        key: ProcKey {
            pid: r.tgid,
            start_ns: r.start_ns,
        },
        ts_ns: r.ts_ns,
        comm: Comm::new(&r.comm),
        reaper_pid: r.reaper_tgid,
        reaper_comm: Comm::new(&r.reaper_comm),
    }
}

/// The wait calls the kernel counted for one process (the default mode).
pub fn wait_tally(t: &WaitTally) -> WaitStats {
    let n = (t.n_targets as usize).min(t.targets.len());
    let mut kept: Vec<&WaitTargetId> = t.targets[..n].iter().collect();
    kept.sort_by_key(|t| std::cmp::Reverse(t.last_ns));
    let mut targets: Vec<RecentWait> = Vec::with_capacity(n);
    // Distinct, though two threads adding at once may have doubled one:
    // the newest of each stays.
    for id in kept {
        if let Some(target) = WaitTarget::from_idtype(id.idtype, id.id)
            && !targets.iter().any(|r| r.target == target)
        {
            targets.push(RecentWait {
                target,
                last_ns: id.last_ns,
                state: None,
            });
        }
    }
    WaitStats {
        calls: t.calls,
        reaped: t.reaped,
        empty: t.empty,
        errors: t.errors,
        peeks: t.peeks,
        last_ns: (t.calls > 0).then_some(t.last_ns),
        targets,
        // Threads adding at once may have doubled a target in a full list:
        // full it was, whatever is left once they are merged.
        full: n == WAIT_TARGETS,
    }
}

fn wait(r: WaitRecord) -> Result<Wait, DecodeError> {
    let syscall = match r.syscall {
        WAIT_SYSCALL_WAIT4 => WaitSyscall::Wait4,
        WAIT_SYSCALL_WAITID => WaitSyscall::Waitid,
        other => return Err(DecodeError::UnknownSyscall(other)),
    };
    let target =
        WaitTarget::from_idtype(r.idtype, r.id).ok_or(DecodeError::UnknownIdtype(r.idtype))?;
    let reported_pid = (r.pid > 0).then_some(r.pid);
    let collects_exit = collects_exit(r.syscall, r.options, r.status, r.code);
    let status = reported_pid
        .filter(|_| collects_exit)
        .and_then(|_| exit_status_word(r.syscall, r.status, r.code))
        .map(ExitStatus::from_wait_status);
    Ok(Wait {
        syscall,
        pid: r.tgid,
        tid: r.tid,
        comm: Comm::new(&r.comm),
        ts_ns: r.ts_ns,
        target,
        options: r.options,
        ret: r.ret,
        reported_pid,
        reaped: reported_pid.is_some() && collects_exit && r.options & WNOWAIT == 0,
        status,
        global_pids: r.pid_ns_level == 0,
    })
}

/// Who a child had as parent before it was adopted (`ORPHANS`).
pub fn orphan(o: &Orphan) -> ParentName {
    ParentName {
        pid: o.ppid,
        comm: Comm::new(&o.parent_comm),
    }
}

#[cfg(test)]
mod tests {
    use zombie_trace_common::{
        ARGV_LEN, CLD_DUMPED, CLD_EXITED, EXE_LEN, P_ALL, P_PID, WaitTargetId,
    };

    use super::*;

    fn bytes_of<T>(v: &T) -> Vec<u8> {
        // SAFETY: test-only view of a padding-free repr(C) record.
        unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
    }

    fn comm(s: &[u8]) -> [u8; 16] {
        let mut c = [0; 16];
        c[..s.len()].copy_from_slice(s);
        c
    }

    fn exit_record() -> ExitRecord {
        ExitRecord {
            kind: KIND_EXIT,
            tgid: 42,
            tid: 43,
            ppid: 7,
            start_ns: 123,
            ts_ns: 456,
            status: 77 << 8,
            flags: EXIT_PARENT_IGNORES_SIGCHLD
                | EXIT_LEADER_WENT_FIRST
                | EXIT_IN_PID_NS
                | EXIT_PARENT_CGROUPS,
            comm: comm(b"child"),
            parent_comm: comm(b"parent"),
        }
    }

    fn wait_record() -> WaitRecord {
        WaitRecord {
            kind: KIND_WAIT,
            syscall: WAIT_SYSCALL_WAIT4,
            tgid: 7,
            tid: 8,
            ts_ns: 2,
            idtype: P_ALL,
            id: 0,
            options: 0,
            pid: 42,
            ret: 42,
            status: 77 << 8,
            code: 1,
            comm: comm(b"parent"),
            pid_ns_level: 0,
            _pad: 0,
        }
    }

    #[test]
    fn decodes_exit_with_status_as_waitpid_sees_it() {
        let Event::Exit(e) = decode(&bytes_of(&exit_record())).unwrap() else {
            panic!("not an exit");
        };
        assert_eq!(
            e.key,
            ProcKey {
                pid: 42,
                start_ns: 123
            }
        );
        assert_eq!(e.status, ExitStatus::Exited(77));
        assert_eq!(e.comm.as_bytes(), b"child");
        assert_eq!(e.parent_comm.as_bytes(), b"parent");
        assert!(e.parent_ignores_sigchld && e.leader_went_first && e.in_pid_ns && e.parent_cgroups);
        assert!(!e.ptraced && !e.not_sigchld);
    }

    fn kernel_command(start_ns: u64, exe: &[u8], argv: &[u8], argv_size: u32) -> KernelCommand {
        let mut c = KernelCommand {
            start_ns,
            exec_ns: 100,
            argv_size,
            argv_len: argv.len() as u16,
            exe_len: exe.len() as u16,
            comm: comm(b"child"),
            exe: [0; EXE_LEN],
            argv: [0; ARGV_LEN],
        };
        c.exe[..exe.len()].copy_from_slice(exe);
        c.argv[..argv.len()].copy_from_slice(argv);
        c
    }

    /// An exit with its command: the flag says it follows, a short record
    /// is refused, and a command of another process (a recycled pid) is
    /// not taken.
    #[test]
    fn decodes_exit_with_its_command() {
        let mut exit = exit_record();
        exit.flags |= EXIT_HAS_COMMAND;
        let record = ExitCommandRecord {
            exit,
            command: kernel_command(123, b"/usr/bin/git", b"git\0fetch\0", 10),
        };
        let bytes = bytes_of(&record);
        let Event::Exit(e) = decode(&bytes).unwrap() else {
            panic!("not an exit");
        };
        let c = e.command.unwrap();
        assert_eq!(c.exe, b"/usr/bin/git");
        assert_eq!(c.args().collect::<Vec<_>>(), [&b"git"[..], b"fetch"]);
        assert!(!c.truncated && !c.inherited);
        assert!(matches!(
            decode(&bytes[..size_of::<ExitRecord>()]),
            Err(DecodeError::TooShort { .. })
        ));
        let other = ExitCommandRecord {
            command: kernel_command(999, b"/bin/sh", b"sh\0", 3),
            ..record
        };
        let Event::Exit(e) = decode(&bytes_of(&other)).unwrap() else {
            panic!("not an exit");
        };
        assert_eq!(e.command, None);
    }

    /// A child that never exec'd runs its parent's command, only when the
    /// parent exec'd before the child started and the child has the name
    /// that exec gave.
    #[test]
    fn a_child_inherits_only_a_command_it_can_run() {
        let parent = kernel_command(5, b"/usr/bin/python3", b"python3\0app.py\0", 15);
        let named = Comm::new(b"child");
        let c = inherited_command(&parent, 200, &named).unwrap();
        assert!(c.inherited);
        assert_eq!(c.name(), b"python3");
        assert_eq!(
            inherited_command(&parent, 50, &named),
            None,
            "forked before the exec"
        );
        let renamed = Comm::new(b"worker");
        assert_eq!(
            inherited_command(&parent, 200, &renamed),
            None,
            "renamed, or adopted"
        );
    }

    #[test]
    fn decodes_kills_and_core_dumps() {
        let mut r = exit_record();
        r.status = 9;
        let Event::Exit(e) = decode(&bytes_of(&r)).unwrap() else {
            panic!()
        };
        assert_eq!(
            e.status,
            ExitStatus::Killed {
                signal: 9,
                core_dumped: false
            }
        );
        r.status = 0x80 | 11;
        let Event::Exit(e) = decode(&bytes_of(&r)).unwrap() else {
            panic!()
        };
        assert_eq!(
            e.status,
            ExitStatus::Killed {
                signal: 11,
                core_dumped: true
            }
        );
    }

    #[test]
    fn decodes_reap() {
        let r = ReapRecord {
            kind: KIND_REAP,
            tgid: 42,
            start_ns: 123,
            ts_ns: 999,
            reaper_tgid: 7,
            _pad: 0,
            comm: comm(b"child"),
            reaper_comm: comm(b"parent"),
        };
        let Event::Release(e) = decode(&bytes_of(&r)).unwrap() else {
            panic!()
        };
        assert_eq!(e.reaper_pid, 7);
        assert_eq!(e.reaper_comm.as_bytes(), b"parent");
        assert_eq!(e.key.start_ns, 123);
    }

    #[test]
    fn decodes_exec() {
        let r = ExecRecord {
            kind: KIND_EXEC,
            tgid: 42,
            ts_ns: 5,
        };
        assert_eq!(
            decode(&bytes_of(&r)).unwrap(),
            Event::Exec(Exec { pid: 42, ts_ns: 5 })
        );
        assert!(matches!(
            decode(&bytes_of(&r)[..12]),
            Err(DecodeError::TooShort { len: 12, need: 16 })
        ));
    }

    #[test]
    fn wait4_collecting_an_exit_reaps() {
        let Event::Wait(w) = decode(&bytes_of(&wait_record())).unwrap() else {
            panic!()
        };
        assert_eq!(w.syscall, WaitSyscall::Wait4);
        assert_eq!(w.reported_pid, Some(42));
        assert!(w.reaped);
        assert_eq!(w.target, WaitTarget::Any);
        assert_eq!(w.status, Some(ExitStatus::Exited(77)));
        assert!(w.global_pids);
        let mut r = wait_record();
        r.pid_ns_level = 1;
        let Event::Wait(w) = decode(&bytes_of(&r)).unwrap() else {
            panic!()
        };
        assert!(!w.global_pids);
    }

    #[test]
    fn wait4_reporting_a_stop_does_not_reap() {
        let mut r = wait_record();
        r.status = (19 << 8) | 0x7f;
        let Event::Wait(w) = decode(&bytes_of(&r)).unwrap() else {
            panic!()
        };
        assert!(!w.reaped);
        r.status = 0xffff;
        let Event::Wait(w) = decode(&bytes_of(&r)).unwrap() else {
            panic!()
        };
        assert!(!w.reaped);
    }

    #[test]
    fn wait4_with_nohang_and_nothing_to_collect() {
        let mut r = wait_record();
        r.options = 1;
        r.pid = 0;
        r.ret = 0;
        r.code = 0;
        let Event::Wait(w) = decode(&bytes_of(&r)).unwrap() else {
            panic!()
        };
        assert_eq!(w.reported_pid, None);
        assert!(!w.reaped);
    }

    #[test]
    fn waitid_with_wnowait_only_peeks() {
        let mut r = wait_record();
        r.syscall = WAIT_SYSCALL_WAITID;
        r.idtype = P_PID;
        r.id = 42;
        r.ret = 0;
        r.code = CLD_EXITED;
        r.options = WNOWAIT | 4;
        let Event::Wait(w) = decode(&bytes_of(&r)).unwrap() else {
            panic!()
        };
        assert_eq!(w.target, WaitTarget::Pid(42));
        assert!(!w.reaped);
        r.options = 4;
        r.status = 9;
        let Event::Wait(w) = decode(&bytes_of(&r)).unwrap() else {
            panic!()
        };
        assert!(w.reaped);
        assert_eq!(w.status, Some(ExitStatus::Exited(9)));
        r.code = CLD_DUMPED;
        r.status = 11;
        let Event::Wait(w) = decode(&bytes_of(&r)).unwrap() else {
            panic!()
        };
        assert_eq!(
            w.status,
            Some(ExitStatus::Killed {
                signal: 11,
                core_dumped: true
            })
        );
    }

    #[test]
    fn rejects_short_and_unknown_records() {
        assert_eq!(decode(&[]), Err(DecodeError::TooShort { len: 0, need: 4 }));
        let bytes = bytes_of(&exit_record());
        assert_eq!(
            decode(&bytes[..bytes.len() - 1]),
            Err(DecodeError::TooShort {
                len: bytes.len() - 1,
                need: bytes.len()
            })
        );
        assert_eq!(
            decode(&[9, 0, 0, 0, 1, 2]),
            Err(DecodeError::UnknownKind(9))
        );
        let mut w = wait_record();
        w.idtype = 99;
        assert_eq!(decode(&bytes_of(&w)), Err(DecodeError::UnknownIdtype(99)));
        w.idtype = P_ALL;
        w.syscall = 5;
        assert_eq!(decode(&bytes_of(&w)), Err(DecodeError::UnknownSyscall(5)));
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        let mut seed = 0x9e37_79b9_u32;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            let _ = decode(&bytes);
            for kind in [KIND_EXIT, KIND_REAP, KIND_WAIT] {
                let mut b = bytes.clone();
                if b.len() >= 4 {
                    b[..4].copy_from_slice(&kind.to_ne_bytes());
                    let _ = decode(&b);
                }
            }
        }
    }

    #[test]
    fn kernel_wait_tally_becomes_wait_stats() {
        let mut t = WaitTally {
            calls: 5,
            reaped: 2,
            empty: 1,
            errors: 1,
            peeks: 1,
            last_ns: 42,
            // More than it holds, as a torn update could leave it.
            n_targets: 99,
            ..WaitTally::default()
        };
        t.targets[0] = WaitTargetId {
            idtype: P_ALL,
            id: 0,
            last_ns: 10,
        };
        t.targets[1] = WaitTargetId {
            idtype: P_PID,
            id: 7,
            last_ns: 40,
        };
        t.targets[2] = WaitTargetId {
            idtype: 77,
            id: 0,
            last_ns: 50,
        };
        let stats = wait_tally(&t);
        assert_eq!(
            (
                stats.calls,
                stats.reaped,
                stats.empty,
                stats.errors,
                stats.peeks
            ),
            (5, 2, 1, 1, 1)
        );
        assert_eq!(stats.last_ns, Some(42));
        // Most recent first; the unknown idtype is left out; the unset slots
        // read as P_ALL at time 0, and only the newest P_ALL stays.
        let recent = |target, last_ns| RecentWait {
            target,
            last_ns,
            state: None,
        };
        assert_eq!(
            stats.targets,
            [recent(WaitTarget::Pid(7), 40), recent(WaitTarget::Any, 10)]
        );
        // A full list, though racing threads doubled some of its entries.
        assert!(stats.full);
        assert!(!wait_tally(&WaitTally::default()).full);
        assert_eq!(wait_tally(&WaitTally::default()).last_ns, None);
    }
}
