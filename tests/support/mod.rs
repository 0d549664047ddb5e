//! What every end-to-end test binary shares: the tracer under test, the
//! scenario programs under their subreaper, and reading what they print.

#![allow(dead_code, reason = "each test binary uses its own part")]

pub mod podman;

use std::{
    io::{BufRead, BufReader, Read, Write as _},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, OnceLock, mpsc},
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_zombie-trace");
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

pub fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/scenarios")
}

pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the end-to-end tests load eBPF programs and need root: run `./x.sh test`"
    );
}

/// Compiles `scenarios/NAME.c` once per test run.
pub fn compiled(name: &str) -> PathBuf {
    compiled_with(name, &[])
}

/// The same, with more compiler flags.
pub fn compiled_with(name: &str, flags: &[&str]) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap();
    if !built.iter().any(|b| b == name) {
        let src = scenarios().join(format!("{name}.c"));
        let status = Command::new("cc")
            .args(["-O2", "-pthread"])
            .args(flags)
            .arg("-o")
            .arg(&out)
            .arg(&src)
            .status()
            .unwrap_or_else(|e| panic!("running cc for {}: {e} (install gcc)", src.display()));
        assert!(status.success(), "compiling {} failed", src.display());
        built.push(name.to_owned());
    }
    out
}

/// Lines of a child's stdout, read on a thread, handed over by channel.
pub fn line_reader(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

pub fn collect_stderr(stream: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let buf = Arc::new(Mutex::new(String::new()));
    let sink = buf.clone();
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let mut sink = sink.lock().unwrap();
            sink.push_str(&line);
            sink.push('\n');
        }
    });
    buf
}

pub fn send_signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, signal) };
}

pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        thread::sleep(Duration::from_millis(20));
    }
    None
}

/// zombie-trace with `args` and `env`, its stdout and stderr piped.
pub fn spawn_tracer(args: &[&str], env: &[(&str, &str)]) -> Child {
    require_root();
    Command::new(BIN)
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {BIN}: {e}"))
}

/// zombie-trace running with `--format json`.
pub struct Tracer {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    pub stderr: Arc<Mutex<String>>,
    /// Every line read so far, for context when a test fails.
    pub seen: Vec<Value>,
    pub ready: Value,
}

impl Tracer {
    pub fn start(args: &[&str]) -> Self {
        Self::start_with(args, &[])
    }

    pub fn start_with(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = spawn_tracer(&[&["--format", "json"], args].concat(), env);
        let lines = line_reader(child.stdout.take().unwrap());
        let stderr = collect_stderr(child.stderr.take().unwrap());
        let mut tracer = Self {
            child,
            lines,
            stderr,
            seen: Vec::new(),
            ready: Value::Null,
        };
        let first = tracer
            .next(READY_TIMEOUT)
            .unwrap_or_else(|| tracer.fail("no first line within the ready timeout"));
        if first["type"] != "ready" {
            tracer.fail("the first line is not `ready`");
        }
        tracer.ready = first;
        tracer
    }

    pub fn next(&mut self, timeout: Duration) -> Option<Value> {
        let line = self.lines.recv_timeout(timeout).ok()?;
        let value: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| self.fail(&format!("not JSON ({e}): {line:?}")));
        self.seen.push(value.clone());
        Some(value)
    }

    /// The next line for which `pred` holds.
    pub fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.wait_for_in(what, EVENT_TIMEOUT, pred)
    }

    /// As [`Tracer::wait_for`], within `timeout`.
    pub fn wait_for_in(
        &mut self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next(left) {
                Some(v) if pred(&v) => return v,
                Some(_) => {}
                None => break,
            }
        }
        self.fail(&format!("no {what} within {timeout:?}"))
    }

    /// The `kind` lines of every pid in `pids`, in whatever order they come.
    pub fn wait_for_each(&mut self, kind: &str, pids: &[u64]) -> Vec<Value> {
        let mut found: Vec<Value> = Vec::new();
        while found.len() < pids.len() {
            let line = self.wait_for(&format!("{kind} lines for all of {pids:?}"), |v| {
                v["type"] == kind
                    && pids.iter().any(|&p| v["pid"] == p)
                    && !found.iter().any(|f| f["pid"] == v["pid"])
            });
            found.push(line);
        }
        found
    }

    /// SIGTERM, then every line it printed (first to last) and its status.
    pub fn stop(mut self) -> (Vec<Value>, ExitStatus) {
        send_signal(&self.child, libc::SIGTERM);
        let status = wait_timeout(&mut self.child, Duration::from_secs(20))
            .unwrap_or_else(|| self.fail("did not exit within 20s of SIGTERM"));
        while self.next(Duration::from_secs(2)).is_some() {}
        (std::mem::take(&mut self.seen), status)
    }

    pub fn fail(&self, why: &str) -> ! {
        let seen: Vec<String> = self.seen.iter().map(Value::to_string).collect();
        panic!(
            "zombie-trace: {why}\n--- lines so far:\n{}\n--- stderr:\n{}",
            seen.join("\n"),
            self.stderr.lock().unwrap()
        );
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scenario program under the subreaper.
pub struct Scenario {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    pub subreaper: u32,
}

impl Scenario {
    pub fn start(program: &[&str]) -> Self {
        let mut child = Command::new("python3")
            .arg(scenarios().join("subreaper.py"))
            .args(program)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {program:?}: {e} (install python3)"));
        let lines = line_reader(child.stdout.take().unwrap());
        let mut scenario = Self {
            child,
            lines,
            subreaper: 0,
        };
        let first = scenario.line();
        scenario.subreaper = first
            .strip_prefix("subreaper ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("subreaper said {first:?}"));
        scenario
    }

    pub fn python(script: &str, args: &[&str]) -> Self {
        let script = scenarios().join(script);
        let mut program = vec!["python3", script.to_str().unwrap()];
        program.extend_from_slice(args);
        Self::start(&program)
    }

    pub fn line(&mut self) -> String {
        self.lines
            .recv_timeout(EVENT_TIMEOUT)
            .unwrap_or_else(|_| panic!("scenario printed nothing within {EVENT_TIMEOUT:?}"))
    }

    /// Reads a `WORD N N ...` line: the numbers.
    pub fn numbers(&mut self, word: &str) -> Vec<u64> {
        let line = self.line();
        line.strip_prefix(word)
            .and_then(|rest| {
                rest.split_whitespace()
                    .map(|n| n.parse().ok())
                    .collect::<Option<Vec<u64>>>()
            })
            .unwrap_or_else(|| panic!("expected `{word}N...`, got {line:?}"))
    }

    /// Reads a `parent P child C` line.
    pub fn parent_and_child(&mut self) -> (u64, u64) {
        let line = self.line();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[..] {
            ["parent", p, "child", c] => (p.parse().unwrap(), c.parse().unwrap()),
            _ => panic!("expected `parent P child C`, got {line:?}"),
        }
    }

    pub fn finish(mut self) {
        let status = wait_timeout(&mut self.child, Duration::from_secs(30))
            .unwrap_or_else(|| panic!("scenario still running after 30s"));
        assert!(status.success(), "scenario failed: {status}");
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        // Killing the subreaper orphans what is left to init: kill the whole
        // tree first. The scenario's processes are the subreaper's
        // descendants; `pkill -P` twice covers two generations.
        for _ in 0..2 {
            let _ = Command::new("pkill")
                .args(["-KILL", "-P", &self.subreaper.to_string()])
                .status();
            thread::sleep(Duration::from_millis(100));
        }
        let _ = wait_timeout(&mut self.child, Duration::from_secs(10));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A copy of the binary that user `nobody` can run, wherever the checkout
/// is (made once per test run).
pub fn reachable_copy_of_bin() -> PathBuf {
    static COPY: OnceLock<PathBuf> = OnceLock::new();
    COPY.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("zombie-trace-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bin = dir.join("zombie-trace");
        std::fs::copy(BIN, &bin).unwrap();
        for path in [&dir, &bin] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        bin
    })
    .clone()
}

pub fn is(v: &Value, kind: &str, pid: u64) -> bool {
    v["type"] == kind && v["pid"] == pid
}

pub fn ms(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} is not a number in {v}"))
}

/// A free port on loopback, for `--metrics`.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on loopback")
}

pub fn http_get(addr: &str, path: &str) -> String {
    http(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// Sends `request` as it is; what came back before the server closed (a
/// reset, as for a refused request, ends it too).
pub fn http(addr: &str, request: &[u8]) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stream.write_all(request);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}
