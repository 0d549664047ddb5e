//! Zombies in real containers: podman (a named container) and runc (an OCI
//! bundle carrying the annotations a Kubernetes runtime sets), each built
//! here from busybox-static. Inside, PID 1 is an application that never
//! reaps (`exec sleep`), and a subshell leaves it an orphan. Needs root,
//! podman, runc and busybox-static (`cargo xtask setup` installs them); run
//! one at a time:
//! `cargo test --release -p zombie-trace --test containers -- --test-threads=1`.

mod support;

use std::{
    fs,
    os::unix::fs::symlink,
    path::PathBuf,
    process::{Command, Stdio},
    thread,
    time::Duration,
};

use serde_json::{Value, json};
use support::{
    podman::{BUSYBOX_IMAGE, Cleanup, busybox_image, podman, run, should_run, work_dir},
    *,
};

/// PID 1 execs `sleep`; the subshell's `sleep 0.2` is orphaned to it.
const ORPHAN_UNDER_PID_1: &str = "(sleep 0.2 &); exec sleep 30";

/// A named podman container running `script` under `sh -c`, created (not
/// started); its id.
fn create(cleanup: &mut Cleanup, name: &str, script: &str) -> String {
    busybox_image();
    cleanup.containers.push(name.to_owned());
    support::podman::remove(&["rm", "-f", "-t", "0", name]);
    run(podman().args(["create", "--name", name, BUSYBOX_IMAGE, "sh", "-c", script]))
        .trim()
        .to_owned()
}

/// `zombie` has each field of `expect`, with its value.
fn assert_fields(zombie: &Value, expect: &Value) {
    for (field, want) in expect.as_object().unwrap() {
        assert_eq!(&zombie[field], want, "{field} in {zombie}");
    }
}

fn start(name: &str) {
    run(podman().args(["start", name]));
}

fn zombie_of_container(tracer: &mut Tracer, id: &str) -> Value {
    tracer.wait_for("a zombie in the container", |v| {
        v["type"] == "zombie" && v["container_id"] == id[..12]
    })
}

/// A container started after the tracer, chosen by name: its orphan is
/// reported with the container's name, the PID-1 diagnosis and who forked
/// it; nothing outside the container is.
#[test]
fn orphan_under_a_containers_pid_1_is_named_and_explained() {
    if !should_run(&["podman", "runc"]) {
        return;
    }
    let mut cleanup = Cleanup::default();
    let name = format!("zt-e2e-orphan-{}", std::process::id());
    let port = free_port();
    let mut tracer = Tracer::start(&[
        "--threshold",
        "500ms",
        "--container",
        &name,
        "--node-name",
        "e2e-node",
        "--metrics",
        &port.to_string(),
    ]);
    assert_eq!(tracer.ready["node"], "e2e-node", "{}", tracer.ready);
    let id = create(&mut cleanup, &name, ORPHAN_UNDER_PID_1);
    let mut outside = Scenario::python("children.py", &["late", "2"]);
    let (_, host_child) = outside.parent_and_child();
    start(&name);
    let zombie = zombie_of_container(&mut tracer, &id);
    let expect = json!({
        "comm": "sleep",
        "parent_comm": "sleep",
        "parent_ns_pid": 1,
        "container_name": name,
        "parent_container_name": name,
        "pod_name": null,
        "pod_namespace": null,
        "reparented": true,
        "original_parent_comm": "sh",
        "cause": "container_init_does_not_reap",
        "node": "e2e-node",
    });
    assert_fields(&zombie, &expect);
    assert!(zombie["original_ppid"].as_u64().is_some(), "{zombie}");
    let said = zombie["diagnosis"].as_str().unwrap();
    assert!(
        said.contains(&format!("PID 1 of container {name}")) && said.contains("--init"),
        "{said}"
    );
    // The gauges follow within a second.
    thread::sleep(Duration::from_millis(1500));
    let metrics = http_get(&format!("127.0.0.1:{port}"), "/metrics");
    let workload = format!(r#"{{namespace="",pod="",container="{name}",parent_comm="sleep"}}"#);
    for line in [
        format!("zombie_trace_zombies{workload} 1"),
        format!("zombie_trace_zombies_reported_total{workload} 1"),
    ] {
        assert!(metrics.contains(&line), "{line} missing:\n{metrics}");
    }
    outside.finish();
    let (all, _) = tracer.stop();
    assert!(
        !all.iter().any(|v| is(v, "zombie", host_child)),
        "a zombie outside --container was reported: {all:?}"
    );
}

/// A runc bundle with the annotations containerd's CRI plugin sets: the
/// zombie names its pod, namespace and container, and `--pod` with
/// `--namespace` select it in the kernel.
#[test]
fn kubernetes_annotations_name_the_pod() {
    if !should_run(&["runc"]) {
        return;
    }
    let bundle = Bundle::new("shop-7f9c4d-x2k8q", "prod", "web", ORPHAN_UNDER_PID_1);
    let mut tracer = Tracer::start(&[
        "--threshold",
        "500ms",
        "--pod",
        "shop-7f9c4d-x2k8q",
        "--namespace",
        "prod",
    ]);
    let mut outside = Scenario::python("children.py", &["late", "2"]);
    let (_, host_child) = outside.parent_and_child();
    bundle.run();
    let zombie = zombie_of_container(&mut tracer, &bundle.id);
    let expect = json!({
        "pod_name": "shop-7f9c4d-x2k8q",
        "pod_namespace": "prod",
        "container_name": "web",
        "parent_pod_name": "shop-7f9c4d-x2k8q",
        "parent_ns_pid": 1,
        "reparented": true,
        "cause": "container_init_does_not_reap",
    });
    assert_fields(&zombie, &expect);
    assert!(
        zombie["cgroup"]
            .as_str()
            .is_some_and(|c| c.ends_with(&bundle.id)),
        "{zombie}"
    );
    outside.finish();
    let (all, _) = tracer.stop();
    assert!(
        !all.iter().any(|v| is(v, "zombie", host_child)),
        "a zombie outside --pod was reported: {all:?}"
    );
}

/// A runc container of any id (not a runtime's 64 hex digits), in runc's
/// default cgroup, with the annotations CRI-O sets: found by its cgroup in
/// runc's state, and named.
#[test]
fn a_runc_container_of_any_id_is_named() {
    if !should_run(&["runc"]) {
        return;
    }
    let id = format!("zt-e2e-web-{}", std::process::id());
    let annotations = json!({
        "io.kubernetes.pod.name": "cart-5d8f7",
        "io.kubernetes.pod.namespace": "staging",
        "io.kubernetes.container.name": "cart",
    });
    let bundle = Bundle::with(id.clone(), None, annotations, ORPHAN_UNDER_PID_1);
    let mut tracer = Tracer::start(&["--threshold", "500ms"]);
    bundle.run();
    let zombie = tracer.wait_for("a zombie in the container", |v| {
        v["type"] == "zombie" && v["cgroup"].as_str().is_some_and(|c| c.ends_with(&id))
    });
    let expect = json!({
        "pod_name": "cart-5d8f7",
        "pod_namespace": "staging",
        "container_name": "cart",
        "parent_container_name": "cart",
        "container_id": null,
        "reparented": true,
        "cause": "container_init_does_not_reap",
    });
    assert_fields(&zombie, &expect);
    tracer.stop();
}

/// Runtime files that are garbage, truncated, huge, links or FIFOs give
/// no names, at once: the zombie is still reported, with `null` names.
#[test]
fn hostile_runtime_files_give_no_names_and_no_stall() {
    if !should_run(&["podman", "runc"]) {
        return;
    }
    let mut cleanup = Cleanup::default();
    let name = format!("zt-e2e-hostile-{}", std::process::id());
    let id = create(&mut cleanup, &name, ORPHAN_UNDER_PID_1);
    let root = work_dir("hostile-runtime-root");
    let put = |rel: &str, bytes: &[u8]| {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
        path
    };
    let storage = "var/lib/containers/storage/overlay-containers";
    put(
        &format!("{storage}/{id}/userdata/config.json"),
        b"{\"annotations\": {\"io.kubernetes.pod.name\": \"x\x1b[31m",
    );
    put(
        &format!("{storage}/containers.json"),
        &[b'['; 20 * 1024 * 1024],
    );
    put(
        &format!("var/lib/docker/containers/{id}/config.v2.json"),
        b"\xff\xfe not json \x00",
    );
    let fifo = root.join(format!(
        "run/containers/storage/overlay-containers/{id}/userdata/config.json"
    ));
    fs::create_dir_all(fifo.parent().unwrap()).unwrap();
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo {}", fifo.display());
    let runc = root.join(format!("run/runc/{id}"));
    fs::create_dir_all(&runc).unwrap();
    symlink("/dev/zero", runc.join("state.json")).unwrap();
    let containerd = root.join("run/containerd/io.containerd.runtime.v2.task/k8s.io");
    fs::create_dir_all(&containerd).unwrap();
    symlink("/", containerd.join(&id)).unwrap();

    let mut tracer = Tracer::start(&[
        "--threshold",
        "500ms",
        "--runtime-root",
        root.to_str().unwrap(),
    ]);
    start(&name);
    let zombie = zombie_of_container(&mut tracer, &id);
    for field in ["container_name", "pod_name", "pod_namespace"] {
        assert_eq!(zombie[field], Value::Null, "{field} in {zombie}");
    }
    assert_eq!(zombie["cause"], "container_init_does_not_reap", "{zombie}");
    // Unnamed, the diagnosis names the container by its id.
    let said = zombie["diagnosis"].as_str().unwrap();
    assert!(said.contains(&id[..12]), "{said}");
    tracer.stop();
}

/// An OCI bundle run by runc as Kubernetes' runtimes do: a 64-hex id, a
/// cgroup under `kubepods` (the cgroupfs driver's layout), and the CRI
/// annotations. Deleted on drop.
struct Bundle {
    dir: PathBuf,
    id: String,
}

impl Bundle {
    fn new(pod: &str, namespace: &str, container: &str, script: &str) -> Self {
        let id = format!("{:0>64x}", u128::from(std::process::id()) << 64 | 0x7a7e);
        let cgroup = format!("/kubepods/besteffort/pod0e2e{}/{id}", std::process::id());
        let annotations = json!({
            "io.kubernetes.cri.container-type": "container",
            "io.kubernetes.cri.container-name": container,
            "io.kubernetes.cri.sandbox-name": pod,
            "io.kubernetes.cri.sandbox-namespace": namespace,
        });
        Self::with(id, Some(cgroup), annotations, script)
    }

    /// Bundle `id`, in `cgroup` (runc's default: `/ID`), with `annotations`.
    fn with(id: String, cgroup: Option<String>, annotations: Value, script: &str) -> Self {
        let dir = work_dir(&format!("runc-bundle-{id}"));
        let rootfs = dir.join("rootfs");
        fs::create_dir_all(rootfs.join("bin")).unwrap();
        fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
            .expect("copying /bin/busybox (install busybox-static)");
        for applet in ["sh", "sleep"] {
            symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        run(Command::new("runc").arg("spec").current_dir(&dir));
        let path = dir.join("config.json");
        let mut spec: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        spec["process"]["terminal"] = false.into();
        spec["process"]["args"] = json!(["sh", "-c", script]);
        spec["annotations"] = annotations;
        if let Some(cgroup) = cgroup {
            spec["linux"]["cgroupsPath"] = cgroup.into();
        }
        fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
        Self { dir, id }
    }

    /// Starts it, detached (its PID 1 runs on; `Drop` ends it).
    fn run(&self) {
        let status = Command::new("runc")
            .args(["run", "--detach", &self.id])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("starting runc");
        assert!(status.success(), "runc run {}: {status}", self.id);
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = Command::new("runc")
            .args(["delete", "--force", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = fs::remove_dir_all(&self.dir);
        // runc leaves the parents it made in every hierarchy.
        let pod = format!("kubepods/besteffort/pod0e2e{}", std::process::id());
        for hierarchy in fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let base = hierarchy.path();
            for dir in [pod.as_str(), "kubepods/besteffort", "kubepods"] {
                let _ = fs::remove_dir(base.join(dir));
            }
        }
    }
}
