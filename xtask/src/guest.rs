//! `xtask guest ZOMBIE_TRACE`: the end-to-end scenarios of the kernel
//! matrix, run inside each guest of `cargo xtask vmtest` (and on the host,
//! its last column). Real children, made with `fork`; the tracer's JSON
//! lines checked as they come. One line per scenario on stdout,
//! `VMTEST <scenario> PASS|FAIL <detail>`, which the host reads off the
//! serial console; then `VMTEST DONE`.
//!
//! Everything a scenario forks exits at once or sleeps a little; this
//! process is their subreaper, so orphans come back to it and nothing is
//! left a zombie after the run.

use std::{
    io::{BufRead as _, BufReader, Read as _},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc::{self, Receiver},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::tax::{TAX, TAX_TRACEPOINTS, Tax, getppid_ns};

/// The tracer's threshold, and how long a scenario leaves a zombie: well
/// past it, so that the report is due even on a slow emulated machine.
const THRESHOLD: &str = "1s";
const ZOMBIE_FOR: Duration = Duration::from_millis(3000);
/// How long a report may take once due (emulation is slow).
const DUE: Duration = Duration::from_secs(20);

/// How the scenarios run the tracer.
pub const TRACER_ARGS: [&str; 4] = ["--format", "json", "--threshold", THRESHOLD];

/// What the host reads: the name of each check and whether it passed.
pub const MARK: &str = "VMTEST";

/// A scenario's detail that starts so: the kernel cannot do it, and the
/// tracer said so at start-up.
const UNSUPPORTED: &str = "unsupported, said at start-up: ";

pub fn guest(zombie_trace: &Path) -> Result<()> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        bail!(
            "prctl(PR_SET_CHILD_SUBREAPER): {}",
            std::io::Error::last_os_error()
        );
    }
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!("{MARK} kernel {}", kernel.trim());
    let programs_before = bpf_programs();
    // Before anything of the tracer is loaded, and in the same run as the
    // time while it runs: a guest's syscalls under emulation are far slower
    // than the host's, only this ratio compares.
    let getppid_before = getppid_ns();
    let mut tracer = Tracer::start(zombie_trace, &[])?;
    let mut failed = 0;
    let mut check = |name: &str, result: Result<String>| match result {
        Ok(detail) => match detail.strip_prefix(UNSUPPORTED) {
            Some(said) => println!("{MARK} {name} UNSUPPORTED {said}"),
            None => println!("{MARK} {name} PASS {detail}"),
        },
        Err(e) => {
            failed += 1;
            println!("{MARK} {name} FAIL {}", one_line(&format!("{e:#}")));
        }
    };
    let ready = tracer.ready();
    let wait_tracing = ready.as_ref().is_ok_and(|r| r["wait_tracing"] == true);
    // Absent from an older tracer, null where wait calls are not traced.
    let wait_hooks = ready
        .as_ref()
        .ok()
        .and_then(|r| r["wait_hooks"].as_str().map(str::to_owned));
    let is_ready = ready.is_ok();
    check(
        "ready",
        ready.map(|_| format!("wait_tracing={wait_tracing}")),
    );
    // Before the scenarios, while the tracer has nothing else to do.
    let getppid_with = is_ready.then(getppid_ns);
    if is_ready {
        if let Ok(after) = bpf_programs() {
            println!(
                "{MARK} how {} programs",
                after.saturating_sub(*programs_before.as_ref().unwrap_or(&0))
            );
        }
        if let Some(hooks) = &wait_hooks {
            println!("{MARK} how wait calls by {hooks}");
        }
        check("zombie-and-late-reap", zombie_and_late_reap(&mut tracer));
        if wait_tracing {
            check("wait-calls", wait_calls(&mut tracer));
        } else {
            println!("{MARK} wait-calls UNSUPPORTED the tracer cannot trace wait calls here");
        }
        check("blocked-wait", blocked_wait(&mut tracer));
        check("command", command(&mut tracer));
        check("auto-reap", auto_reap(&mut tracer));
        check("reparent", reparent(&mut tracer));
        check("storm", storm(&mut tracer));
        check("cgroup-filter", cgroup_filter(zombie_trace));
        check("stacks", stacks(zombie_trace));
    }
    check(
        "detach-on-sigkill",
        detach_on_sigkill(&mut tracer, programs_before),
    );
    // Complete now that the tracer is dead.
    let stderr = tracer
        .stderr
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_default();
    if is_ready {
        let reads = if stderr.contains("direct kernel reads refused") {
            "bpf_probe_read_kernel"
        } else {
            "direct loads"
        };
        println!("{MARK} how kernel memory read by {reads}");
    }
    let getppid_after = getppid_ns();
    if let Some(with) = getppid_with {
        let tax = Tax {
            before: getppid_before,
            with,
            after: getppid_after,
        };
        println!("{MARK} {}", tax.line());
    }
    // Where trampolines run, the other way too, in the same guest and run:
    // the same answers, and what it costs every other syscall.
    if wait_hooks.as_deref() == Some("trampolines") {
        check(
            "wait-calls-by-tracepoints",
            by_tracepoints(zombie_trace, getppid_after),
        );
    }
    println!("{MARK} DONE {failed} failed");
    if failed > 0 {
        bail!("{failed} scenario(s) failed");
    }
    Ok(())
}

/// The tracer with wait calls forced onto the syscall tracepoints: it says
/// so, the wait-call scenario passes as it did by trampolines, and its
/// `getppid` tax line (`tax-tracepoints`), `alone` measured just before.
fn by_tracepoints(zombie_trace: &Path, alone: f64) -> Result<String> {
    let mut cmd = Command::new(zombie_trace);
    cmd.args(TRACER_ARGS)
        .env("ZOMBIE_TRACE_WAIT_HOOKS", "tracepoints");
    let mut tracer = Tracer::spawn(cmd)?;
    let ready = tracer.ready()?;
    let with = getppid_ns();
    let result = (|| {
        if ready["wait_hooks"] != "tracepoints" {
            bail!("forced to tracepoints, the ready line says {ready}");
        }
        wait_calls(&mut tracer)
    })();
    let _ = tracer.child.kill();
    let _ = tracer.child.wait();
    let tax = Tax {
        before: alone,
        with,
        after: getppid_ns(),
    };
    println!("{MARK} {}", tax.line().replacen(TAX, TAX_TRACEPOINTS, 1));
    result
}

/// `cargo xtask dist --check`: the tracer that `cmd` starts with
/// [`TRACER_ARGS`] (a packaged one: the image under podman) reports a
/// zombie this process makes, then stops on SIGTERM with its summary and
/// leaves nothing loaded in the kernel.
pub fn packaged(cmd: Command) -> Result<String> {
    let before = bpf_programs()?;
    let mut tracer = Tracer::spawn(cmd)?;
    tracer.ready()?;
    let found = zombie_and_late_reap(&mut tracer);
    // SAFETY: kill with a pid of our own child, which is not reaped yet.
    unsafe { libc::kill(tracer.child.id() as i32, libc::SIGTERM) };
    let summary = tracer.wait_for(Duration::from_secs(60), |v| v["type"] == "summary");
    let status = tracer.child.wait().context("waiting for the tracer")?;
    let found = found?;
    if summary.is_none() || !status.success() {
        bail!("stopped with SIGTERM: {status}, summary: {summary:?}");
    }
    let after = bpf_programs()?;
    if after > before {
        bail!("{before} programs before, {after} after it stopped");
    }
    Ok(format!(
        "{found}; stopped with its summary, nothing left loaded"
    ))
}

/// A line of the tracer, or a message that can never be one.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

struct Tracer {
    child: Child,
    lines: Receiver<Value>,
    stderr: Receiver<String>,
    /// Every line seen so far, for the checks that look back.
    seen: Vec<Value>,
}

impl Tracer {
    fn start(zombie_trace: &Path, args: &[&str]) -> Result<Self> {
        let mut cmd = Command::new(zombie_trace);
        cmd.args(TRACER_ARGS)
            .args(args)
            // For the way the loader found to read kernel memory.
            .env("RUST_LOG", "zombie_trace=debug");
        Self::spawn(cmd)
    }

    /// Starts `cmd`, which runs the tracer with [`TRACER_ARGS`].
    fn spawn(mut cmd: Command) -> Result<Self> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {:?}", cmd.get_program()))?;
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().context("the tracer's stdout")?;
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| Value::String(format!("not JSON: {line}")));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        let (tx, stderr) = mpsc::channel();
        let mut err = child.stderr.take().context("the tracer's stderr")?;
        thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            let _ = tx.send(text);
        });
        Ok(Tracer {
            child,
            lines,
            stderr,
            seen: Vec::new(),
        })
    }

    /// The first line from now on that `want` accepts, within `within`.
    fn wait_for(&mut self, within: Duration, want: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let value = self.lines.recv_timeout(left).ok()?;
            self.seen.push(value.clone());
            if want(&value) {
                return Some(value);
            }
        }
    }

    /// Takes in what came until now, and whether any of it `want` accepts.
    fn any_since(&mut self, from: usize, want: impl Fn(&Value) -> bool) -> Option<Value> {
        while let Ok(value) = self.lines.try_recv() {
            self.seen.push(value);
        }
        self.seen[from..].iter().find(|v| want(v)).cloned()
    }

    /// Waits for the ready line.
    fn ready(&mut self) -> Result<Value> {
        // Parsing the kernel's BTF takes a while under emulation.
        match self.wait_for(Duration::from_secs(180), |v| v["type"] == "ready") {
            Some(ready) => Ok(ready),
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let stderr = self
                    .stderr
                    .recv_timeout(Duration::from_secs(5))
                    .unwrap_or_default();
                bail!("no ready line; stderr: {}", one_line(&stderr))
            }
        }
    }
}

fn is(v: &Value, kind: &str, pid: i32) -> bool {
    v["type"] == kind && v["pid"] == pid
}

/// A child that exits with status 7, left unreaped for [`ZOMBIE_FOR`],
/// then reaped: its zombie report, then its reap.
fn zombie_and_late_reap(tracer: &mut Tracer) -> Result<String> {
    let child = fork_then(|| exit(7))?;
    thread::sleep(ZOMBIE_FOR);
    let zombie = tracer
        .wait_for(DUE, |v| is(v, "zombie", child))
        .context("no zombie report")?;
    let me = std::process::id() as i32;
    if zombie["ppid"] != me || zombie["exit_code"] != 7 {
        bail!("wrong report: {zombie}");
    }
    reap(child)?;
    let reap = tracer
        .wait_for(DUE, |v| is(v, "reap", child))
        .context("no reap line")?;
    let ms = reap["zombie_ms"].as_u64().unwrap_or(0);
    if reap["reaper_pid"] != me || ms < ZOMBIE_FOR.as_millis() as u64 * 9 / 10 {
        bail!("wrong reap: {reap}");
    }
    Ok(format!("zombie for {ms} ms"))
}

/// A parent that polls another child with `waitpid(WNOHANG)` and never the
/// one that died: the report counts its calls and names the target.
fn wait_calls(tracer: &mut Tracer) -> Result<String> {
    let (parent, [dead, sleeper]) = fork_telling(|tell| {
        let dead = fork_or_exit(|| exit(0));
        // Outlives the polling below, which would otherwise reap it when
        // a slow guest starts the loop late, and leave reap_all nothing.
        let sleeper = fork_or_exit(|| sleep_then_exit(ZOMBIE_FOR * 3));
        tell([dead, sleeper]);
        let started = Instant::now();
        while started.elapsed() < ZOMBIE_FOR * 2 {
            // SAFETY: a plain wait call on our own child.
            unsafe { libc::waitpid(sleeper, std::ptr::null_mut(), libc::WNOHANG) };
            thread::sleep(Duration::from_millis(100));
        }
        exit(0)
    })?;
    let zombie = tracer.wait_for(ZOMBIE_FOR + DUE, |v| is(v, "zombie", dead));
    // Its children come back to this subreaper when it exits.
    reap_all(&[parent, dead, sleeper])?;
    let zombie = zombie.context("no zombie report")?;
    let calls = zombie["parent_wait_calls"].as_u64().unwrap_or(0);
    let targets = zombie["parent_wait_targets"].to_string();
    if calls == 0 || !targets.contains(&sleeper.to_string()) || zombie["ppid"] != parent {
        bail!("wait calls not seen: {zombie}");
    }
    Ok(format!("{calls} calls, targets {targets}"))
}

/// A parent blocked in `waitpid` for another child, its dead one left
/// unreaped: the diagnosis says so, and names the system call it is in as
/// `/proc/PID/syscall` gives it, by number: the architecture's own
/// numbering (wait4 is 61 on x86_64, 260 on arm64).
fn blocked_wait(tracer: &mut Tracer) -> Result<String> {
    let (parent, [dead, sleeper]) = fork_telling(|tell| {
        let dead = fork_or_exit(|| exit(0));
        let sleeper = fork_or_exit(|| sleep_then_exit(ZOMBIE_FOR * 3));
        tell([dead, sleeper]);
        // SAFETY: a plain wait call on our own child.
        unsafe { libc::waitpid(sleeper, std::ptr::null_mut(), 0) };
        exit(0)
    })?;
    let zombie = tracer.wait_for(ZOMBIE_FOR + DUE, |v| is(v, "zombie", dead));
    // The parent reaps the sleeper and exits; its dead child comes back to
    // this subreaper.
    // SAFETY: a signal to our own grandchild.
    unsafe { libc::kill(sleeper, libc::SIGKILL) };
    reap_all(&[parent, dead])?;
    let zombie = zombie.context("no zombie report")?;
    if zombie["cause"] != "blocked_on_other_children"
        || zombie["parent_syscall"] != "wait4"
        || zombie["ppid"] != parent
    {
        bail!("not seen blocked in wait4 for another child: {zombie}");
    }
    Ok(zombie["diagnosis"].as_str().unwrap_or_default().to_owned())
}

/// A child that execs, with a control byte and a byte that is not UTF-8
/// in its arguments, left unreaped: the report names what it ran, exactly.
fn command(tracer: &mut Tracer) -> Result<String> {
    use std::os::unix::ffi::OsStrExt as _;
    let odd = std::ffi::OsStr::from_bytes(b"\x1b\xff");
    let mut child = Command::new("/bin/true")
        .args([std::ffi::OsStr::new("command-scenario"), odd])
        .spawn()
        .context("starting /bin/true")?;
    let pid = child.id() as i32;
    let zombie = tracer.wait_for(ZOMBIE_FOR + DUE, |v| is(v, "zombie", pid));
    child.wait().context("reaping /bin/true")?;
    let zombie = zombie.context("no zombie report")?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let exact: Vec<Vec<u8>> = zombie["cmdline_b64"]
        .as_array()
        .map(|args| {
            args.iter()
                .filter_map(|a| base64::Engine::decode(&b64, a.as_str()?).ok())
                .collect()
        })
        .unwrap_or_default();
    let want: [&[u8]; 3] = [b"/bin/true", b"command-scenario", b"\x1b\xff"];
    if zombie["exe"] != "/bin/true" || exact != want {
        bail!("wrong command: {zombie}");
    }
    Ok(format!("cmdline {}", zombie["cmdline"]))
}

/// A parent that ignores SIGCHLD: its child is reaped by the kernel at
/// once and is never a zombie.
fn auto_reap(tracer: &mut Tracer) -> Result<String> {
    let from = tracer.seen.len();
    let (parent, [child, _]) = fork_telling(|tell| {
        // SAFETY: setting a disposition in the child, before any thread.
        unsafe { libc::signal(libc::SIGCHLD, libc::SIG_IGN) };
        let child = fork_or_exit(|| exit(0));
        tell([child, 0]);
        thread::sleep(ZOMBIE_FOR);
        exit(0)
    })?;
    reap(parent)?;
    thread::sleep(Duration::from_secs(2));
    if let Some(report) = tracer.any_since(from, |v| is(v, "zombie", child)) {
        bail!("an auto-reaped child reported: {report}");
    }
    Ok(format!("child {child} not reported"))
}

/// A child whose parent exits first goes to this process, its subreaper,
/// which leaves it unreaped: the report names the new parent.
fn reparent(tracer: &mut Tracer) -> Result<String> {
    let (parent, [child, _]) = fork_telling(|tell| {
        let child = fork_or_exit(|| sleep_then_exit(Duration::from_millis(500)));
        tell([child, 0]);
        exit(0)
    })?;
    reap(parent)?;
    let zombie = tracer.wait_for(ZOMBIE_FOR + DUE, |v| is(v, "zombie", child));
    reap(child)?;
    let zombie = zombie.context("no zombie report")?;
    let me = std::process::id() as i32;
    if zombie["ppid"] != me {
        bail!("not reported under its new parent {me}: {zombie}");
    }
    // Adopted alive: the kernel remembered the parent that forked it.
    if zombie["reparented"] != true || zombie["original_ppid"] != parent {
        bail!("its first parent {parent} is not named: {zombie}");
    }
    Ok(format!("reported under {me}, forked by {parent}"))
}

/// Many children reaped at once: no report.
fn storm(tracer: &mut Tracer) -> Result<String> {
    const CHILDREN: usize = 2000;
    let from = tracer.seen.len();
    let started = Instant::now();
    let loop_pid = fork_then(|| {
        for _ in 0..CHILDREN {
            let child = fork_or_exit(|| exit(0));
            if reap(child).is_err() {
                exit(1);
            }
        }
        exit(0)
    })?;
    reap(loop_pid)?;
    let took = started.elapsed();
    thread::sleep(Duration::from_secs(3));
    if let Some(report) = tracer.any_since(from, |v| v["type"] == "zombie") {
        bail!("false report: {report}");
    }
    Ok(format!("{CHILDREN} children in {took:.1?}, no report"))
}

/// `--cgroup`: a second tracer, watching one cgroup, reports a zombie made
/// in it; or, where the kernel cannot filter by cgroup, it says so at
/// start-up and naming `--cgroup`.
fn cgroup_filter(zombie_trace: &Path) -> Result<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").context("reading mounts")?;
    let root = mounts
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
        })
        .context("no cgroup v2 mounted")?;
    let dir = root.join("zombie-trace-vmtest");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = in_cgroup(zombie_trace, &dir);
    // The cgroup can go once its processes have.
    let _ = std::fs::remove_dir(&dir);
    result
}

fn in_cgroup(zombie_trace: &Path, dir: &Path) -> Result<String> {
    let path = dir.to_string_lossy();
    let mut tracer = Tracer::start(zombie_trace, &["--cgroup", &path])?;
    if let Err(e) = tracer.ready() {
        let e = one_line(&format!("{e:#}"));
        // The tracer's own words, without what the guest adds around them.
        let e = e.rsplit("error: ").next().unwrap_or(&e).trim().to_owned();
        if e.contains("--cgroup") {
            return Ok(format!("{UNSUPPORTED}{e}"));
        }
        bail!("failed without naming --cgroup: {e}");
    }
    let procs = dir.join("cgroup.procs");
    let (parent, [child, _]) = fork_telling(|tell| {
        if std::fs::write(&procs, std::process::id().to_string()).is_err() {
            exit(1);
        }
        let child = fork_or_exit(|| exit(0));
        tell([child, 0]);
        thread::sleep(ZOMBIE_FOR);
    })?;
    let zombie = tracer.wait_for(ZOMBIE_FOR + DUE, |v| is(v, "zombie", child));
    reap_all(&[parent, child])?;
    let _ = tracer.child.kill();
    let _ = tracer.child.wait();
    let zombie = zombie.context("no report from the tracer of that cgroup")?;
    Ok(format!("reported in {}", zombie["cgroup"]))
}

/// `--stacks`: a second tracer names the function this process forked a
/// zombie from; or, on a kernel without what it needs, says so at start-up,
/// naming `--stacks`.
fn stacks(zombie_trace: &Path) -> Result<String> {
    let mut tracer = Tracer::start(zombie_trace, &["--stacks"])?;
    if let Err(e) = tracer.ready() {
        let e = one_line(&format!("{e:#}"));
        let e = e.rsplit("error: ").next().unwrap_or(&e).trim().to_owned();
        if e.contains("--stacks") {
            return Ok(format!("{UNSUPPORTED}{e}"));
        }
        bail!("failed without naming --stacks: {e}");
    }
    let child = spawn_for_stacks()?;
    let zombie = tracer.wait_for(ZOMBIE_FOR + DUE, |v| is(v, "zombie", child));
    reap(child)?;
    let _ = tracer.child.kill();
    let _ = tracer.child.wait();
    let zombie = zombie.context("no report from the --stacks tracer")?;
    let symbols: Vec<&str> = zombie["spawn_stack"]
        .as_array()
        .map(|frames| frames.iter().filter_map(|f| f["symbol"].as_str()).collect())
        .unwrap_or_default();
    if !symbols.iter().any(|s| s.contains("spawn_for_stacks")) {
        bail!("the forking function is not named: {zombie}");
    }
    Ok(format!("{} frames", symbols.len()))
}

/// Forks a child that exits at once, from a function of its own: the one
/// `--stacks` must name.
#[inline(never)]
fn spawn_for_stacks() -> Result<i32> {
    fork_then(|| exit(0))
}

/// SIGKILL, then nothing of the tracer stays loaded.
fn detach_on_sigkill(tracer: &mut Tracer, before: Result<usize>) -> Result<String> {
    let before = before?;
    let during = bpf_programs()?;
    tracer.child.kill().context("SIGKILL to the tracer")?;
    tracer.child.wait().context("waiting for the tracer")?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let after = bpf_programs()?;
        if after <= before {
            return Ok(format!(
                "{before} programs before, {during} while running, {after} after"
            ));
        }
        if Instant::now() > deadline {
            bail!("{before} programs before, {during} while running, {after} 20 s after SIGKILL");
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// How many BPF programs the kernel holds (`BPF_PROG_GET_NEXT_ID`).
fn bpf_programs() -> Result<usize> {
    const BPF_PROG_GET_NEXT_ID: libc::c_long = 11;
    // union bpf_attr for *_GET_NEXT_ID: start_id, next_id, open_flags.
    let mut attr = [0u32; 3];
    let mut n = 0;
    loop {
        // SAFETY: attr is a live, large enough buffer for the command.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_PROG_GET_NEXT_ID,
                attr.as_mut_ptr(),
                std::mem::size_of_val(&attr),
            )
        };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::ENOENT) {
                return Ok(n);
            }
            bail!("bpf(BPF_PROG_GET_NEXT_ID): {err}");
        }
        n += 1;
        attr[0] = attr[1];
    }
}

/// Forks; the child runs `f`, then exits (0, unless `f` exits first).
fn fork_then(f: impl FnOnce()) -> Result<i32> {
    // SAFETY: the child only runs `f`, which makes plain syscalls and exits
    // with _exit.
    match unsafe { libc::fork() } {
        -1 => bail!("fork: {}", std::io::Error::last_os_error()),
        0 => {
            f();
            exit(0)
        }
        pid => Ok(pid),
    }
}

/// In a forked child, where an error can only end it.
fn fork_or_exit(f: impl FnOnce()) -> i32 {
    fork_then(f).unwrap_or_else(|_| exit(1))
}

fn exit(status: i32) -> ! {
    // SAFETY: ends this (forked) process at once, as a C child would.
    unsafe { libc::_exit(status) }
}

fn sleep_then_exit(d: Duration) -> ! {
    thread::sleep(d);
    exit(0)
}

fn reap(pid: i32) -> Result<()> {
    let mut status = 0;
    // SAFETY: waits for our own child; status is a live local.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        bail!("waitpid({pid}): {}", std::io::Error::last_os_error());
    }
    Ok(())
}

fn reap_all(pids: &[i32]) -> Result<()> {
    pids.iter().try_for_each(|&pid| reap(pid))
}

/// Forks a child that runs `f`, which tells this process two pids (of its
/// own children) through `tell`.
fn fork_telling(f: impl FnOnce(&dyn Fn([i32; 2]))) -> Result<(i32, [i32; 2])> {
    let mut fds = [0; 2];
    // SAFETY: fds is a live array of two.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        bail!("pipe: {}", std::io::Error::last_os_error());
    }
    let [read, write] = fds;
    let pid = fork_then(|| {
        f(&|pids| {
            let bytes: Vec<u8> = pids.iter().flat_map(|p| p.to_ne_bytes()).collect();
            // SAFETY: writes a live buffer to our end of the pipe.
            unsafe { libc::write(write, bytes.as_ptr().cast(), bytes.len()) };
        })
    });
    // SAFETY: our copy of the write end: closed, a child that dies before
    // telling ends the read below.
    unsafe { libc::close(write) };
    let mut bytes = [0u8; 8];
    let n = match pid {
        // SAFETY: reads into a live buffer of that size.
        Ok(_) => unsafe { libc::read(read, bytes.as_mut_ptr().cast(), bytes.len()) },
        Err(_) => 0,
    };
    // SAFETY: the read end, no longer used.
    unsafe { libc::close(read) };
    let pid = pid?;
    if n != 8 {
        bail!("the child {pid} did not tell its children's pids");
    }
    let at = |i: usize| i32::from_ne_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    Ok((pid, [at(0), at(4)]))
}
