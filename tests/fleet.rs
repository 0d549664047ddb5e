//! The fleet deployment (deploy/) against real components: Debian's
//! Prometheus loading the shipped rules while zombie-trace watches a leaking
//! podman container, and the DaemonSet's pod run under `podman kube play`.
//! Needs root, podman, runc and prometheus (`cargo xtask setup` installs
//! them); run one at a time:
//! `cargo test --release -p zombie-trace --test fleet -- --test-threads=1`.
//!
//! No registry is reachable from the test machines, so both images are built
//! here: busybox-static's binary, and the tracer with its shared libraries.

mod support;

use std::{
    fs,
    io::{BufRead, BufReader, Read, Write as _},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use support::podman::{
    BUSYBOX_IMAGE, Cleanup, busybox_image, import, podman, remove, run, should_run, work_dir,
};

const BIN: &str = env!("CARGO_BIN_EXE_zombie-trace");
const TRACER_IMAGE: &str = "localhost/zt-fleet-tracer:test";
/// The node name the test pod gets by hand (no downward API under podman).
const NODE: &str = "zt-fleet-node";
/// How long Prometheus gets to scrape, record and fire (shortened rules).
const ALERT_TIMEOUT: Duration = Duration::from_secs(120);
const READY_TIMEOUT: Duration = Duration::from_secs(60);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The release binary and the shared libraries ldd lists, as an image whose
/// entry point is the tracer (what the OCI image will hold, minus layers).
fn tracer_image() {
    let rootfs = work_dir("fleet-tracer").join("rootfs");
    fs::create_dir_all(&rootfs).unwrap();
    fs::copy(BIN, rootfs.join("zombie-trace")).unwrap();
    let libs = run(Command::new("ldd").arg(BIN));
    for line in libs.lines() {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)`, or the
        // loader alone: `/lib64/ld-linux-x86-64.so.2 (0x...)`.
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        let Some(path) = path.filter(|p| p.starts_with('/')) else {
            continue;
        };
        let dest = rootfs.join(path.trim_start_matches('/'));
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(path, &dest).unwrap_or_else(|e| panic!("copying {path}: {e}"));
    }
    import(&rootfs, TRACER_IMAGE, &[r#"ENTRYPOINT ["/zombie-trace"]"#]);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a free port")
        .port()
}

/// GET `path` from `addr` (HTTP/1.1): status code and body, or None when
/// nothing answers.
fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    // Prometheus answers its API in chunks.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Some((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// Asks `what` every half second until it says Some, for at most `timeout`.
fn poll<T>(timeout: Duration, mut what: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = what() {
            return Some(found);
        }
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(500));
    }
}

/// Collects a stream's lines on a thread.
fn collect(stream: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

/// The JSON lines among `lines`.
fn json_lines(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The shipped rules with their durations shortened (a scrape and an
/// evaluation a second), so that an alert fires within a minute. Only
/// durations change; promtool's unit tests
/// (deploy/prometheus/zombie-trace.rules.test.yml) cover the real ones.
fn rules_with_short_durations() -> String {
    let path = repo().join("deploy/prometheus/zombie-trace.rules.yml");
    let rules = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let shortened: Vec<String> = rules
        .lines()
        .map(|line| {
            let indent = &line[..line.len() - line.trim_start().len()];
            if line.trim_start().starts_with("for: ") {
                format!("{indent}for: 5s")
            } else {
                line.replace("[10m]", "[20s]")
            }
        })
        .collect();
    shortened.join("\n") + "\n"
}

/// Debian's Prometheus on loopback, on its own storage, scraping `target`.
fn start_prometheus(dir: &Path, target: &str, cleanup: &mut Cleanup) -> String {
    fs::write(dir.join("rules.yml"), rules_with_short_durations()).unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files: [rules.yml]\n\
         scrape_configs:\n  - job_name: zombie-trace\n    honor_labels: true\n    \
         static_configs:\n      - targets: ['{target}']\n        labels: {{node: {NODE}}}\n"
    );
    fs::write(dir.join("prometheus.yml"), config).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let log = fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("starting prometheus (install it: `cargo xtask setup`)");
    cleanup.children.push(child);
    poll(READY_TIMEOUT, || {
        http_get(&addr, "/-/ready").filter(|(status, _)| *status == 200)
    })
    .unwrap_or_else(|| {
        panic!(
            "prometheus not ready within {READY_TIMEOUT:?}; its log:\n{}",
            fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
        )
    });
    addr
}

/// `data` of a Prometheus API answer.
fn api(prometheus: &str, path: &str) -> Value {
    let (status, body) = http_get(prometheus, path)
        .unwrap_or_else(|| panic!("prometheus at {prometheus} does not answer {path}"));
    let value: Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}"));
    assert_eq!(status, 200, "{path}: {body}");
    value["data"].clone()
}

fn percent_encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A container's label value in zombie-trace's metrics: its name, or its
/// 12-hex id where the name is not known (the spec allows either).
fn is_container(label: &Value, name: &str, id: &str) -> bool {
    label
        .as_str()
        .is_some_and(|l| l == name || (l.len() == 12 && id.starts_with(l)))
}

/// A container whose PID 1 never reaps, scraped by a real Prometheus with
/// the shipped rules: the leak alert fires for it, and the leak rate by
/// container is positive.
#[test]
fn prometheus_fires_the_leak_alert_for_a_leaking_container() {
    if !should_run(&["podman", "runc", "prometheus"]) {
        return;
    }
    let dir = work_dir("fleet-prometheus");
    let mut cleanup = Cleanup::default();

    let metrics = format!("127.0.0.1:{}", free_port());
    let mut tracer = Command::new(BIN)
        .args([
            "--metrics",
            &metrics,
            "--threshold",
            "1s",
            "--format",
            "json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {BIN}: {e}"));
    let out = collect(tracer.stdout.take().unwrap());
    let err = collect(tracer.stderr.take().unwrap());
    cleanup.children.push(tracer);
    let tracer_output = || {
        format!(
            "--- zombie-trace stdout (last 20 lines):\n{}\n--- stderr:\n{}",
            out.lock()
                .unwrap()
                .iter()
                .rev()
                .take(20)
                .rev()
                .cloned()
                .collect::<Vec<_>>()
                .join("\n"),
            err.lock().unwrap().join("\n")
        )
    };
    poll(READY_TIMEOUT, || {
        json_lines(&out.lock().unwrap())
            .into_iter()
            .find(|v| v["type"] == "ready")
    })
    .unwrap_or_else(|| panic!("zombie-trace not ready\n{}", tracer_output()));

    busybox_image();
    let name = "zt-fleet-leak".to_owned();
    // A container left by an earlier, killed run goes first.
    remove(&["rm", "-f", "-t", "0", &name]);
    cleanup.containers.push(name.clone());
    // Each second a subshell starts `sleep 0.1` in the background and exits:
    // the orphan goes to PID 1, `sleep 3600`, which never reaps.
    let id = run(podman().args([
        "run",
        "-d",
        // No network: nothing to reach, and no network plugins needed.
        "--network",
        "none",
        "--name",
        &name,
        BUSYBOX_IMAGE,
        "sh",
        "-c",
        "(while true; do (sleep 0.1 &); sleep 1; done) & exec sleep 3600",
    ]))
    .trim()
    .to_owned();

    let prometheus = start_prometheus(&dir, &metrics, &mut cleanup);
    let context = |what: &str| {
        let scraped = http_get(&metrics, "/metrics").map(|(_, body)| body);
        let targets = api(&prometheus, "/api/v1/targets");
        format!(
            "{what}\n--- alerts:\n{}\n--- targets:\n{targets}\n--- zombie-trace's /metrics:\n{}\n{}",
            api(&prometheus, "/api/v1/alerts"),
            scraped.unwrap_or_default(),
            tracer_output()
        )
    };

    let firing = poll(ALERT_TIMEOUT, || {
        let alerts = api(&prometheus, "/api/v1/alerts");
        alerts["alerts"]
            .as_array()?
            .iter()
            .find(|a| {
                a["labels"]["alertname"] == "ZombieLeakingWorkload"
                    && a["state"] == "firing"
                    && is_container(&a["labels"]["container"], &name, &id)
            })
            .cloned()
    })
    .unwrap_or_else(|| {
        panic!(
            "{}",
            context(&format!(
                "no firing ZombieLeakingWorkload for container {name} within {ALERT_TIMEOUT:?}"
            ))
        )
    });
    // The rules keep the node apart, and the parent is the container's PID 1.
    assert_eq!(firing["labels"]["node"], NODE, "{firing}");
    assert_eq!(firing["labels"]["parent_comm"], "sleep", "{firing}");

    let query = "sum by (container) (rate(zombie_trace_zombies_reported_total[30s]))";
    let result = api(
        &prometheus,
        &format!("/api/v1/query?query={}", percent_encode(query)),
    );
    let rate = result["result"]
        .as_array()
        .and_then(|series| {
            series
                .iter()
                .find(|s| is_container(&s["metric"]["container"], &name, &id))
        })
        .and_then(|s| s["value"][1].as_str()?.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("{}", context(&format!("`{query}` has no {name}: {result}"))));
    assert!(rate > 0.0, "{}", context(&format!("`{query}` = {rate}")));
}

/// The DaemonSet's pod template, from deploy/kubernetes/daemonset.yaml.
fn daemonset_template() -> Value {
    let path = repo().join("deploy/kubernetes/daemonset.yaml");
    // Parsing YAML is left to python3's yaml module (python3-yaml).
    let json = run(Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)",
        ])
        .arg(&path));
    let daemonset: Value = serde_json::from_str(&json).unwrap();
    daemonset["spec"]["template"].clone()
}

/// `podman run` arguments that do what the kubelet does with the pod
/// template: hostPID, the container's securityContext (capabilities,
/// read-only root, no privilege escalation, seccomp), its volumes, env,
/// args and limits. Not `podman kube play`: podman 4.3 ignores `hostPID`
/// there (its containers get a pid namespace of their own) and takes
/// seccomp only from an annotation. Differences from a node, each needed
/// here: host networking (the test reaches the metrics port on loopback
/// without port mapping), the port moved off 9464, NODE_NAME given by hand
/// (no downward API), runtimes this machine lacks left out (the kubelet
/// mounts an empty directory, podman refuses), and no probes (the test
/// makes their request itself).
fn podman_run_args(template: &Value, name: &str, port: u16) -> Vec<String> {
    let spec = &template["spec"];
    let container = &spec["containers"][0];
    let security = &container["securityContext"];
    let mut args: Vec<String> = ["run", "-d", "--name", name, "--network", "host"]
        .map(str::to_owned)
        .to_vec();
    assert_eq!(spec["hostPID"], true, "the DaemonSet has hostPID");
    args.extend(["--pid".into(), "host".into()]);
    assert_ne!(
        security["privileged"], true,
        "the DaemonSet is not privileged"
    );
    for cap in security["capabilities"]["drop"]
        .as_array()
        .into_iter()
        .flatten()
    {
        args.push(format!("--cap-drop={}", cap.as_str().unwrap()));
    }
    for cap in security["capabilities"]["add"]
        .as_array()
        .into_iter()
        .flatten()
    {
        args.push(format!("--cap-add={}", cap.as_str().unwrap()));
    }
    if security["readOnlyRootFilesystem"] == true {
        args.push("--read-only".into());
    }
    if security["allowPrivilegeEscalation"] == false {
        args.push("--security-opt=no-new-privileges".into());
    }
    if security["seccompProfile"]["type"] == "Unconfined" {
        args.push("--security-opt=seccomp=unconfined".into());
    }
    if let Some(user) = security["runAsUser"].as_u64() {
        args.push(format!("--user={user}"));
    }
    if let Some(memory) = container["resources"]["limits"]["memory"].as_str() {
        // Kubernetes' Mi is podman's m (both 2^20).
        args.push(format!("--memory={}", memory.replace("Mi", "m")));
    }
    for mount in container["volumeMounts"].as_array().into_iter().flatten() {
        let volume = spec["volumes"]
            .as_array()
            .and_then(|vs| vs.iter().find(|v| v["name"] == mount["name"]))
            .unwrap_or_else(|| panic!("no volume for mount {mount}"));
        let host = volume["hostPath"]["path"]
            .as_str()
            .unwrap_or_else(|| panic!("not a hostPath volume: {volume}"));
        if !Path::new(host).exists() {
            continue;
        }
        let ro = if mount["readOnly"] == true { ":ro" } else { "" };
        args.push(format!(
            "--volume={host}:{}{ro}",
            mount["mountPath"].as_str().unwrap()
        ));
    }
    for var in container["env"].as_array().into_iter().flatten() {
        let name = var["name"].as_str().unwrap();
        let value = match var["value"].as_str() {
            Some(value) => value,
            None if name == "NODE_NAME" => NODE,
            None => panic!("env {name} has neither a value nor a known source"),
        };
        args.push(format!("--env={name}={value}"));
    }
    args.push(TRACER_IMAGE.into());
    let node_name = NODE;
    for arg in container["args"].as_array().expect("the container's args") {
        // The kubelet expands $(VAR) from the container's env.
        let arg = arg.as_str().unwrap().replace("$(NODE_NAME)", node_name);
        args.push(if arg == "0.0.0.0:9464" {
            format!("127.0.0.1:{port}")
        } else {
            arg
        });
    }
    args
}

/// Whether this build of the tracer knows `flag` (features of issue 15 land
/// on main while the deployment is written).
fn knows(flag: &str) -> bool {
    run(Command::new(BIN).arg("--help")).contains(flag)
}

/// The DaemonSet's pod, run for real (not privileged, its capabilities
/// only): it reports a zombie of the host and answers /healthz.
#[test]
fn daemonset_pod_reports_a_host_zombie() {
    if !should_run(&["podman", "runc", "python3"]) {
        return;
    }
    let mut cleanup = Cleanup::default();
    tracer_image();
    let port = free_port();
    let name = "zt-fleet-daemonset";
    let mut args = podman_run_args(&daemonset_template(), name, port);
    let node_name_known = knows("--node-name");
    if !node_name_known {
        // Until --node-name lands, run the rest without it (asserted below).
        if let Some(at) = args.iter().position(|a| a == "--node-name") {
            args.drain(at..at + 2);
        }
    }
    // A container left by an earlier, killed run goes first.
    remove(&["rm", "-f", "-t", "0", name]);
    cleanup.containers.push(name.to_owned());
    run(podman().args(&args));

    let logs = || {
        let out = podman().args(["logs", name]).output().expect("podman logs");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let context = |what: &str| {
        let state = podman()
            .args([
                "inspect",
                "--format",
                "{{.State.Status}} exit={{.State.ExitCode}} {{.State.Error}}",
                name,
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        format!(
            "{what}\n--- container {name}: {state}--- its output:\n{}\n--- podman {}",
            logs(),
            args.join(" ")
        )
    };
    let lines = || {
        let text = logs();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        json_lines(&lines)
    };
    poll(READY_TIMEOUT, || {
        lines().into_iter().find(|v| v["type"] == "ready")
    })
    .unwrap_or_else(|| panic!("{}", context("the pod's tracer printed no ready line")));

    // A parent on the host that forks a child and never waits: the child
    // (`sleep 0.1`) stays a zombie of `sleep 30` past the 5 s threshold. It
    // runs as nobody: reading another user's /proc/PID/syscall takes both
    // SYS_PTRACE and DAC_READ_SEARCH, which the DaemonSet grants for that.
    let parent = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args(["sh", "-c", "sleep 0.1 & exec sleep 30"])
        .spawn()
        .expect("starting sh");
    let ppid = parent.id();
    cleanup.children.push(parent);
    let zombie = poll(Duration::from_secs(20), || {
        lines()
            .into_iter()
            .find(|v| v["type"] == "zombie" && v["ppid"] == ppid)
    })
    .unwrap_or_else(|| panic!("{}", context(&format!("no zombie line with ppid {ppid}"))));
    assert_eq!(zombie["comm"], "sleep", "{zombie}");
    assert_eq!(zombie["parent_comm"], "sleep", "{zombie}");
    // Read from the host's /proc through hostPID and the capabilities.
    assert_eq!(zombie["parent_syscall"], "clock_nanosleep", "{zombie}");
    assert_eq!(zombie["parent_cmdline"], json!(["sleep", "30"]), "{zombie}");

    // What the readiness and liveness probes ask.
    let healthz = http_get(&format!("127.0.0.1:{port}"), "/healthz");
    assert!(
        matches!(&healthz, Some((200, body)) if body == "ok\n"),
        "{}",
        context(&format!("GET /healthz answered {healthz:?}, not 200 ok"))
    );
    assert!(
        node_name_known,
        "{BIN} does not know --node-name yet (the DaemonSet passes it)"
    );
    assert_eq!(zombie["node"], NODE, "{zombie}");
}
