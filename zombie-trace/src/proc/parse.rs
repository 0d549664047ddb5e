//! What the contents of `/proc/PID` files mean: pure parsers of the bytes
//! `proc` reads, which a process (its name, its arguments) or a kernel
//! of another version may shape in any way. Odd content degrades to `None`,
//! never to a panic or a wrong value; `fuzz/` holds their fuzz targets.

use syscalls::Sysno;
use zombie_trace_common::wait4_target;

use crate::model::{
    event::{WaitSyscall, WaitTarget},
    process::Sigchld,
};

/// The cgroup v2 path (`0::/path`), or on hybrid systems, where v2 often
/// holds everything at `/`, the first v1 path that says more.
pub fn parse_cgroup(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let paths: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once(':')?;
            rest.split_once(':')
        })
        .collect();
    let v2 = paths.iter().find(|(c, _)| c.is_empty()).map(|(_, p)| *p);
    v2.filter(|p| *p != "/")
        .or_else(|| paths.iter().map(|(_, p)| *p).find(|p| *p != "/"))
        .or(v2)
        .map(str::to_owned)
}

/// The cgroup v2 path alone (`0::/path`), whatever the v1 hierarchies say.
pub fn parse_cgroup_v2(bytes: &[u8]) -> Option<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_owned)
}

/// The pid inside the innermost pid namespace (`NSpid:` lists it last),
/// when the process is in one below the host's. The last `NSpid:` line
/// counts, as for the signal masks (see `status_mask`), and a line that is
/// not all pids says nothing.
pub fn parse_ns_pid(status: &[u8]) -> Option<u32> {
    let text = String::from_utf8_lossy(status);
    let line = text
        .lines()
        .filter_map(|l| l.strip_prefix("NSpid:"))
        .next_back()?;
    let pids: Vec<u32> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    pids.last().copied().filter(|_| pids.len() > 1)
}

/// The pid a pidfd refers to, from its `/proc/PID/fdinfo/FD` (`Pid:`, in
/// the reader's pid namespace; `-1` once that process is reaped, and no such
/// line for a file that is not a pidfd).
pub fn parse_pidfd_pid(fdinfo: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(fdinfo).ok()?;
    let line = text
        .lines()
        .filter_map(|l| l.strip_prefix("Pid:"))
        .next_back()?;
    line.trim().parse::<u32>().ok().filter(|&pid| pid > 0)
}

/// The id of the container a cgroup path is in (see
/// [`super::container::full_id`]), shortened to 12 digits as `docker ps`
/// shows it.
pub fn container_id(cgroup: &str) -> Option<String> {
    super::container::full_id(cgroup).map(|id| id[..12].to_owned())
}

/// The name of a `/proc/PID/stat` state letter.
pub fn state_name(c: char) -> &'static str {
    match c {
        'R' => "running",
        'S' => "sleeping",
        'D' => "disk sleep",
        'Z' => "zombie",
        'T' => "stopped",
        't' => "tracing stop",
        'X' => "dead",
        'I' => "idle",
        _ => "unknown",
    }
}

/// The fields of `/proc/PID/stat` that zombie-trace uses.
#[derive(Debug, PartialEq, Eq)]
pub struct Stat {
    pub comm: Vec<u8>,
    pub state: char,
    pub ppid: u32,
    pub threads: u32,
    /// `starttime`: clock ticks since boot.
    pub start_ticks: u64,
}

impl Stat {
    /// A leader that exited while other threads still run also shows `Z`,
    /// but its process is alive; a dead process has only the leader left.
    pub fn is_zombie(&self) -> bool {
        self.state == 'Z' && self.threads <= 1
    }
}

/// `pid (comm) state ppid ...`, where comm is raw bytes that may hold
/// anything but NUL, `)` and newlines included; every later field is a
/// number, so the comm ends at the last `)`.
pub fn parse_stat(bytes: &[u8]) -> Option<Stat> {
    let open = bytes.iter().position(|&b| b == b'(')?;
    let close = bytes.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    std::str::from_utf8(&bytes[..open])
        .ok()?
        .trim_end()
        .parse::<u32>()
        .ok()?;
    let fields: Vec<&str> = std::str::from_utf8(&bytes[close + 1..])
        .ok()?
        .split_ascii_whitespace()
        .collect();
    // Every kernel's states are single ASCII letters (`R`, `S`, `Z`, ...).
    let &[state] = fields.first()?.as_bytes() else {
        return None;
    };
    if !state.is_ascii_alphabetic() {
        return None;
    }
    // Field numbers from proc_pid_stat(5), minus 3 for pid, comm and state.
    Some(Stat {
        comm: bytes[open + 1..close].to_vec(),
        state: char::from(state),
        ppid: fields.get(1)?.parse().ok()?,
        threads: fields.get(17)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

/// Arguments are NUL-terminated; empty arguments in between are real
/// (`prog "" x`), so only the final terminator is dropped.
pub fn split_cmdline(bytes: &[u8]) -> Vec<Vec<u8>> {
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes
        .strip_suffix(b"\0")
        .unwrap_or(bytes)
        .split(|&b| b == 0)
        .map(<[u8]>::to_vec)
        .collect()
}

/// `0` means not sleeping, or not allowed to see where.
pub fn parse_wchan(bytes: &[u8]) -> Option<String> {
    let name = String::from_utf8_lossy(bytes.trim_ascii());
    (!name.is_empty() && name != "0").then(|| name.into_owned())
}

/// `/proc/PID/syscall`: `running`, `-1 sp pc` when blocked outside a
/// syscall, or the number followed by the arguments.
pub fn parse_syscall(bytes: &[u8]) -> Option<String> {
    let first = std::str::from_utf8(bytes)
        .ok()?
        .split_ascii_whitespace()
        .next()?;
    if first == "running" {
        return Some(first.to_owned());
    }
    let nr: u64 = first.parse().ok()?;
    Some(match usize::try_from(nr).ok().and_then(Sysno::new) {
        Some(sysno) => sysno.name().to_owned(),
        None => format!("syscall {nr}"),
    })
}

/// A `wait4`/`waitid` call as `/proc/PID/task/TID/syscall` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitCall {
    pub syscall: WaitSyscall,
    pub target: WaitTarget,
    pub options: u32,
}

/// The wait call of a `/proc/PID/task/TID/syscall` line that shows a
/// thread in `wait4` or `waitid` (arguments in hex; an `int` may show
/// sign-extended or not, so only its low 32 bits count).
pub fn parse_wait_call(bytes: &[u8]) -> Option<WaitCall> {
    let mut fields = std::str::from_utf8(bytes).ok()?.split_ascii_whitespace();
    let nr: i64 = fields.next()?.parse().ok()?;
    let args: Vec<u32> = fields
        .take(4)
        .map(|f| Some(u64::from_str_radix(f.strip_prefix("0x")?, 16).ok()? as u32))
        .collect::<Option<_>>()?;
    let arg = |i: usize| args.get(i).copied();
    let (syscall, (idtype, id), options) = match usize::try_from(nr).ok().and_then(Sysno::new)? {
        Sysno::wait4 => (WaitSyscall::Wait4, wait4_target(arg(0)? as i32), arg(2)?),
        Sysno::waitid => (WaitSyscall::Waitid, (arg(0)?, arg(1)? as i32), arg(3)?),
        _ => return None,
    };
    Some(WaitCall {
        syscall,
        target: WaitTarget::from_idtype(idtype, id)?,
        options,
    })
}

/// How `/proc/PID/status` says the process treats SIGCHLD.
pub fn parse_sigchld(status: &[u8]) -> Option<Sigchld> {
    let bit = 1u64 << (libc::SIGCHLD - 1);
    let has = |key| status_mask(status, key).map(|mask| mask & bit != 0);
    Some(Sigchld {
        ignored: has("SigIgn")?,
        caught: has("SigCgt")?,
        blocked: has("SigBlk")?,
    })
}

/// The low 64 bits of a hex signal mask line (`SigIgn:\t0000...`). Masks
/// are wider on architectures with more signals; the low word holds the
/// classic signals. The last matching line wins: the kernel escapes the
/// `Name:` line, but a line the process could forge would come first.
fn status_mask(status: &[u8], key: &str) -> Option<u64> {
    let value = status
        .split(|&b| b == b'\n')
        .filter_map(|line| line.strip_prefix(key.as_bytes())?.strip_prefix(b":"))
        .next_back()?
        .trim_ascii();
    if value.is_empty() || !value.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let low = &value[value.len().saturating_sub(16)..];
    u64::from_str_radix(std::str::from_utf8(low).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat_line(comm: &[u8], rest: &str) -> Vec<u8> {
        let mut line = b"4242 (".to_vec();
        line.extend_from_slice(comm);
        line.extend_from_slice(b") ");
        line.extend_from_slice(rest.as_bytes());
        line
    }

    // state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
    // utime stime cutime cstime priority nice threads itreal starttime ...
    const ZOMBIE_REST: &str =
        "Z 4200 4200 1 0 -1 4227084 0 0 0 0 0 0 0 0 20 0 1 0 205856 0 0 18446744073709551615\n";

    #[test]
    fn stat_plain() {
        let stat = parse_stat(&stat_line(b"python3", ZOMBIE_REST)).unwrap();
        assert_eq!(
            stat,
            Stat {
                comm: b"python3".to_vec(),
                state: 'Z',
                ppid: 4200,
                threads: 1,
                start_ticks: 205856,
            }
        );
        assert!(stat.is_zombie());
    }

    #[test]
    fn stat_hostile_comm() {
        for comm in [
            &b") S 1 1 1 ("[..],
            b"a) Z 9 (b",
            b"x\ny)",
            b"\x1b[31m)(",
            b"\xff\xfe ) ",
            b"",
            b"((((",
        ] {
            let stat = parse_stat(&stat_line(comm, ZOMBIE_REST)).unwrap();
            assert_eq!(stat.comm, comm);
            assert_eq!(
                (stat.state, stat.ppid, stat.start_ticks),
                ('Z', 4200, 205856)
            );
        }
    }

    #[test]
    fn stat_garbage() {
        for bytes in [
            &b""[..],
            b"garbage",
            b"4242 (x)",
            b"4242 (x) ",
            b"4242 (x) Z",
            b"4242 (x) Z 1 2 3",
            b"4242 )x( Z 4200 4200 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
            b"pid (x) Z 4200 4200 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
            b"4242 (x) ZZ 4200 4200 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
            // Found by the `proc_stat` fuzz target: a vertical tab (which
            // split_ascii_whitespace keeps) was taken as the state.
            b"4242 (x) \x0b 4200 4200 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
            "4242 (x) \u{a0} 4200 4200 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5".as_bytes(),
            b"4242 (x) 7 4200 4200 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
            b"4242 (x) Z -1 4200 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
            b"4242 (x) Z 99999999999 4200 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
            b"4242 (x) Z 4200 4200 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99999999999999999999999",
            b"4242 (x) Z 4200 4200 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 \xff",
        ] {
            assert_eq!(
                parse_stat(bytes),
                None,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn stat_leader_exited_is_not_zombie() {
        let rest = ZOMBIE_REST.replacen(" 20 0 1 0 ", " 20 0 5 0 ", 1);
        let stat = parse_stat(&stat_line(b"app", &rest)).unwrap();
        assert_eq!((stat.state, stat.threads), ('Z', 5));
        assert!(!stat.is_zombie());
    }

    #[test]
    fn cmdline_split() {
        assert_eq!(split_cmdline(b""), Vec::<Vec<u8>>::new());
        assert_eq!(split_cmdline(b"\0"), [b"".to_vec()]);
        assert_eq!(
            split_cmdline(b"sleep\x0010\0"),
            [b"sleep".to_vec(), b"10".to_vec()]
        );
        assert_eq!(
            split_cmdline(b"prog\0\0x\0"),
            [b"prog".to_vec(), b"".to_vec(), b"x".to_vec()]
        );
        assert_eq!(split_cmdline(b"prog\0\0"), [b"prog".to_vec(), b"".to_vec()]);
        // setproctitle: the kernel stops at the first NUL, none at the end.
        assert_eq!(
            split_cmdline(b"nginx: master process"),
            [b"nginx: master process".to_vec()]
        );
        assert_eq!(
            split_cmdline(b"\xff\xfe\n\x1b[2J\0a b\0"),
            [b"\xff\xfe\n\x1b[2J".to_vec(), b"a b".to_vec()]
        );
        let long = vec![b'a'; 4096];
        assert_eq!(split_cmdline(&long), std::slice::from_ref(&long));
    }

    #[test]
    fn wchan() {
        assert_eq!(parse_wchan(b""), None);
        assert_eq!(parse_wchan(b"0"), None);
        assert_eq!(parse_wchan(b"0\n"), None);
        assert_eq!(parse_wchan(b"do_wait"), Some("do_wait".to_owned()));
        assert_eq!(
            parse_wchan(b"hrtimer_nanosleep\n"),
            Some("hrtimer_nanosleep".to_owned())
        );
        assert_eq!(parse_wchan(b"\xff"), Some("\u{fffd}".to_owned()));
    }

    #[test]
    fn wait_call_in_progress() {
        let line = |nr: i64, args: &str| format!("{nr} {args} 0x7ffc 0x7f00\n").into_bytes();
        let wait4 = libc::SYS_wait4;
        let waitid = libc::SYS_waitid;
        let target = |bytes: &[u8]| parse_wait_call(bytes).map(|c| c.target);
        // As the kernel shows them: an int argument zero-extended or not.
        assert_eq!(
            target(&line(wait4, "0xffffffff 0x7ffe 0x0 0x0 0x1 0x8")),
            Some(WaitTarget::Any)
        );
        assert_eq!(
            target(&line(wait4, "0xffffffffffffffff 0x0 0x0 0x0 0x0 0x0")),
            Some(WaitTarget::Any)
        );
        assert_eq!(
            target(&line(wait4, "0x134 0x0 0x0 0x0 0x0 0x0")),
            Some(WaitTarget::Pid(0x134))
        );
        assert_eq!(
            target(&line(wait4, "0x0 0x0 0x0 0x0 0x0 0x0")),
            Some(WaitTarget::Pgid(0))
        );
        assert_eq!(
            target(&line(wait4, "0xfffffff6 0x0 0x0 0x0 0x0 0x0")),
            Some(WaitTarget::Pgid(10))
        );
        assert_eq!(
            target(&line(waitid, "0x0 0x0 0x7ffc 0x4 0x0 0x0")),
            Some(WaitTarget::Any)
        );
        assert_eq!(
            target(&line(waitid, "0x3 0x5 0x7ffc 0x4 0x0 0x0")),
            Some(WaitTarget::Pidfd(5))
        );
        // The syscall and its options (wait4's third argument, waitid's
        // fourth).
        assert_eq!(
            parse_wait_call(&line(wait4, "0x134 0x7ffe 0x1 0x0 0x0 0x0")),
            Some(WaitCall {
                syscall: WaitSyscall::Wait4,
                target: WaitTarget::Pid(0x134),
                options: 1,
            })
        );
        assert_eq!(
            parse_wait_call(&line(waitid, "0x1 0x134 0x7ffc 0x1000004 0x0 0x0")),
            Some(WaitCall {
                syscall: WaitSyscall::Waitid,
                target: WaitTarget::Pid(0x134),
                options: 0x0100_0004,
            })
        );
        // Not a wait call, an unknown idtype, or odd content.
        assert_eq!(parse_wait_call(&line(0, "0x3 0x0 0x0 0x0 0x0 0x0")), None);
        assert_eq!(
            parse_wait_call(&line(waitid, "0x9 0x1 0x0 0x0 0x0 0x0")),
            None
        );
        assert_eq!(parse_wait_call(b"running\n"), None);
        assert_eq!(parse_wait_call(b"-1 0x7ffc 0x7f00\n"), None);
        assert_eq!(parse_wait_call(format!("{wait4}").as_bytes()), None);
        assert_eq!(parse_wait_call(format!("{wait4} 0xzz").as_bytes()), None);
        assert_eq!(parse_wait_call(format!("{wait4} 12").as_bytes()), None);
        assert_eq!(parse_wait_call(b"\xff\xfe"), None);
        // The options are needed: a line cut short is no call.
        assert_eq!(parse_wait_call(format!("{wait4} 0x1 0x0").as_bytes()), None);
    }

    #[test]
    fn syscall_line() {
        assert_eq!(parse_syscall(b"running\n"), Some("running".to_owned()));
        assert_eq!(parse_syscall(b"-1 0x7ffc 0x7f00\n"), None);
        assert_eq!(parse_syscall(b""), None);
        assert_eq!(parse_syscall(b"\n"), None);
        assert_eq!(parse_syscall(b"garbage 0x1"), None);
        assert_eq!(parse_syscall(b"\xff\xfe"), None);
        assert_eq!(parse_syscall(b"99999999999999999999999 0x1"), None);
        assert_eq!(
            parse_syscall(b"999999 0x1 0x2"),
            Some("syscall 999999".to_owned())
        );
        // Every architecture's numbers, by name.
        for sysno in [
            Sysno::wait4,
            Sysno::waitid,
            Sysno::clock_nanosleep,
            Sysno::read,
            Sysno::epoll_pwait2,
        ] {
            let line = format!("{} 0x1 0x7ffd\n", sysno.id());
            assert_eq!(
                parse_syscall(line.as_bytes()).as_deref(),
                Some(sysno.name())
            );
        }
        if cfg!(target_arch = "x86_64") {
            let wait4 =
                parse_syscall(b"61 0xffffffffffffffff 0x7ffd 0x0 0x0 0x0 0x0 0x7ffd 0x7f12\n");
            assert_eq!(wait4.as_deref(), Some("wait4"));
        }
    }

    const STATUS: &[u8] = b"Name:\tpython3\nState:\tS (sleeping)\nThreads:\t1\n\
SigQ:\t0/96365\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n\
SigBlk:\t0000000000000000\nSigIgn:\t0000000001001000\nSigCgt:\t0000000180000002\n";

    #[test]
    fn status_masks() {
        assert_eq!(status_mask(STATUS, "SigIgn"), Some(0x0100_1000));
        assert_eq!(status_mask(STATUS, "SigCgt"), Some(0x1_8000_0002));
        assert_eq!(status_mask(STATUS, "SigBlk"), Some(0));
        assert_eq!(status_mask(STATUS, "Sig"), None);
        assert_eq!(status_mask(b"", "SigIgn"), None);
        assert_eq!(status_mask(b"SigIgn:\n", "SigIgn"), None);
        assert_eq!(status_mask(b"SigIgn:\tzz\n", "SigIgn"), None);
        assert_eq!(status_mask(b"SigIgn:\t-1\n", "SigIgn"), None);
        assert_eq!(status_mask(b"SigIgn:\t\xff\n", "SigIgn"), None);
        // 128 signals (MIPS): the low word is the last 16 digits.
        assert_eq!(
            status_mask(b"SigIgn:\tffffffffffffffff0000000000010000\n", "SigIgn"),
            Some(0x1_0000)
        );
        assert_eq!(
            status_mask(&[&b"SigIgn:\t"[..], &[b'f'; 4096]].concat(), "SigIgn"),
            Some(u64::MAX)
        );
        // A forged line in a name would come before the real one.
        let forged = b"Name:\tx\nSigIgn:\tffffffffffffffff\nSigIgn:\t0000000000000000\n";
        assert_eq!(status_mask(forged, "SigIgn"), Some(0));
    }

    #[test]
    fn pidfd_pid() {
        let fdinfo =
            b"pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1057\nPid:\t4242\nNSpid:\t4242\n";
        assert_eq!(parse_pidfd_pid(fdinfo), Some(4242));
        assert_eq!(parse_pidfd_pid(b"pos:\t0\nPid:\t-1\nNSpid:\t-1\n"), None);
        assert_eq!(parse_pidfd_pid(b"pos:\t0\nflags:\t02\n"), None);
        assert_eq!(parse_pidfd_pid(b"Pid:\t0\n"), None);
        assert_eq!(parse_pidfd_pid(b"Pid:\tzz\n"), None);
        assert_eq!(parse_pidfd_pid(b"\xff\xfe"), None);
    }

    #[test]
    fn sigchld() {
        let bit = 1u64 << (libc::SIGCHLD - 1);
        let status = |ign: u64, blk: u64, cgt: u64| {
            format!("SigBlk:\t{blk:016x}\nSigIgn:\t{ign:016x}\nSigCgt:\t{cgt:016x}\n")
        };
        assert_eq!(
            parse_sigchld(status(0, 0, 0).as_bytes()),
            Some(Sigchld {
                ignored: false,
                caught: false,
                blocked: false
            })
        );
        assert_eq!(
            parse_sigchld(status(bit, bit, 0).as_bytes()),
            Some(Sigchld {
                ignored: true,
                caught: false,
                blocked: true
            })
        );
        assert_eq!(
            parse_sigchld(status(!bit, !bit, bit).as_bytes()),
            Some(Sigchld {
                ignored: false,
                caught: true,
                blocked: false
            })
        );
        assert_eq!(parse_sigchld(b"SigIgn:\t0\nSigCgt:\t0\n"), None);
        assert_eq!(parse_sigchld(b""), None);
    }

    #[test]
    fn cgroups_and_containers() {
        assert_eq!(
            parse_cgroup(b"0::/system.slice/a.service\n").as_deref(),
            Some("/system.slice/a.service")
        );
        let hybrid = b"9:name=systemd:/\n4:memory:/docker/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n0::/\n";
        let path = parse_cgroup(hybrid).unwrap();
        assert!(path.starts_with("/docker/"), "{path}");
        assert_eq!(parse_cgroup(b"0::/\n").as_deref(), Some("/"));
        assert_eq!(parse_cgroup(b"garbage"), None);
        let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        for path in [
            format!("/system.slice/docker-{id}.scope"),
            format!("/docker/{id}"),
            format!("/kubepods.slice/kubepods-pod1.slice/cri-containerd-{id}.scope"),
            format!("/machine.slice/libpod-{id}.scope/container"),
        ] {
            assert_eq!(
                container_id(&path).as_deref(),
                Some("0123456789ab"),
                "{path}"
            );
        }
        assert_eq!(container_id("/user.slice/user-1000.slice"), None);
        assert_eq!(
            container_id(&format!("/x/{id}0")),
            None,
            "65 digits are not an id"
        );
        assert_eq!(container_id(&format!("/x/{}", id.to_uppercase())), None);
    }

    #[test]
    fn ns_pids() {
        assert_eq!(parse_ns_pid(b"Name:\tx\nNSpid:\t4242\t7\n"), Some(7));
        assert_eq!(parse_ns_pid(b"NSpid:\t4242\n"), None, "the host's own");
        assert_eq!(parse_ns_pid(b"Name:\tx\n"), None);
        assert_eq!(parse_ns_pid(b"NSpid:\tx y\n"), None);
        assert_eq!(parse_ns_pid(b"NSpid:\t4242 x 7\n"), None);
        assert_eq!(
            parse_ns_pid(b"Name:\tx\nNSpid:\t1\t2\nNSpid:\t4242\t7\n"),
            Some(7),
            "the last line counts"
        );
    }

    #[test]
    fn state_names() {
        assert_eq!(state_name('S'), "sleeping");
        assert_eq!(state_name('t'), "tracing stop");
        assert_eq!(state_name('Z'), "zombie");
        assert_eq!(state_name('?'), "unknown");
        assert_eq!(state_name('\u{1b}'), "unknown");
    }
}
