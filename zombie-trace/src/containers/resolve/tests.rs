//! Each runtime's files laid out as on a node, then bad ones.

use std::{
    ffi::OsStr,
    fs,
    os::unix::{ffi::OsStrExt, fs::symlink},
    time::{Duration, Instant},
};

use super::*;
use crate::containers::scratch::Scratch;

const ID: &str = "0c1404a4e8b09d942f8729808828ed769876ee1dc2187e9522e1036b0b5c1863";
const INFRA: &str = "c8fd93575e72d1440bf68452cbdfbf464d29e644082aa3d5793fc4f5e582136a";
const OTHER: &str = "4fa3aef7349435171d465a8b555704b452dc9e3778e1adc31bf3bf34ef0b94cf";

fn names(name: Option<&str>, pod: Option<&str>, ns: Option<&str>) -> ContainerNames {
    ContainerNames {
        name: name.map(str::to_owned),
        pod_name: pod.map(str::to_owned),
        pod_namespace: ns.map(str::to_owned),
    }
}

/// An OCI `config.json` as runtimes write it (much left out).
fn oci(annotations: &str, hostname: Option<&str>) -> String {
    let hostname = hostname
        .map(|h| format!(r#""hostname": "{h}","#))
        .unwrap_or_default();
    format!(
        r#"{{"ociVersion": "1.0.2-dev", "process": {{"args": ["sleep", "60"], "env": ["PATH=/bin"]}},
        {hostname} "root": {{"path": "/x"}}, "annotations": {{{annotations}}},
        "linux": {{"cgroupsPath": "/libpod_parent/libpod-{ID}"}}}}"#
    )
}

fn podman_list(entries: &[(&str, &str)]) -> String {
    let entries: Vec<String> = entries
        .iter()
        .map(|(id, name)| {
            format!(
                r#"{{"id": "{id}", "names": ["{name}"], "image": "a90f", "layer": "9c75",
                "metadata": "{{\"name\":\"{name}\"}}", "created": "2026-12-01T17:12:31Z",
                "flags": {{"MountLabel": "", "ProcessLabel": ""}}}}"#
            )
        })
        .collect();
    format!("[{}]", entries.join(","))
}

const PODMAN_LABELS: &str = r#""io.container.manager": "libpod",
    "io.kubernetes.cri-o.Created": "2026-12-01T17:15:11.685471035Z",
    "io.kubernetes.cri-o.TTY": "false", "io.podman.annotations.autoremove": "FALSE",
    "org.opencontainers.image.stopSignal": "15""#;

fn storage_config(dir: &Scratch, id: &str, config: &str) {
    dir.write(
        &format!("var/lib/containers/storage/overlay-containers/{id}/userdata/config.json"),
        config,
    );
}

fn podman_names(dir: &Scratch, entries: &[(&str, &str)]) {
    dir.write(
        "var/lib/containers/storage/overlay-containers/containers.json",
        podman_list(entries),
    );
}

#[test]
fn podman_run_gives_its_name() {
    let dir = Scratch::new("podman");
    storage_config(&dir, OTHER, &oci(PODMAN_LABELS, Some("4fa3aef73494")));
    podman_names(&dir, &[(ID, "zt-probe"), (OTHER, "zt-cont-a")]);
    let mut resolver = Resolver::new(dir.path());
    assert_eq!(resolver.names(OTHER), names(Some("zt-cont-a"), None, None));
    let cgroup = format!("0::/libpod_parent/libpod-{OTHER}");
    assert_eq!(
        resolver.names_of_cgroup(&cgroup),
        names(Some("zt-cont-a"), None, None)
    );
    // Named in containers.json alone (its config.json not there).
    assert_eq!(resolver.names(ID), names(Some("zt-probe"), None, None));
}

#[test]
fn podman_kube_play_pod_name_is_the_infra_containers_hostname() {
    // As podman 4.3's `kube play` writes them: the pod's name only as the
    // infra container's hostname, its namespace nowhere but its database.
    let dir = Scratch::new("kube-play");
    storage_config(&dir, INFRA, &oci(PODMAN_LABELS, Some("zt-cont-pod")));
    let member = format!(
        r#"{PODMAN_LABELS}, "io.kubernetes.cri-o.ContainerType": "container",
        "io.kubernetes.cri-o.SandboxID": "{INFRA}""#
    );
    storage_config(&dir, ID, &oci(&member, None));
    podman_names(
        &dir,
        &[(INFRA, "a22e17d3b477-infra"), (ID, "zt-cont-pod-sleeper")],
    );
    let mut resolver = Resolver::new(dir.path());
    assert_eq!(
        resolver.names(ID),
        names(Some("zt-cont-pod-sleeper"), Some("zt-cont-pod"), None)
    );
    assert_eq!(
        resolver.names(INFRA),
        names(None, Some("zt-cont-pod"), None)
    );
}

#[test]
fn crio_pod_containers_and_sandbox() {
    let dir = Scratch::new("crio");
    let labels = r#""io.kubernetes.pod.name": "shop-7d9", "io.kubernetes.pod.namespace": "prod",
        "io.kubernetes.container.name": "web", "io.kubernetes.cri-o.ContainerType": "container",
        "io.kubernetes.cri-o.ContainerName": "k8s_web_shop-7d9_prod_1a2b_0""#;
    dir.write(
        &format!("run/containers/storage/overlay-containers/{ID}/userdata/config.json"),
        oci(labels, None),
    );
    let sandbox = r#""io.kubernetes.pod.name": "shop-7d9", "io.kubernetes.pod.namespace": "prod",
        "io.kubernetes.cri-o.ContainerType": "sandbox""#;
    storage_config(&dir, INFRA, &oci(sandbox, Some("shop-7d9")));
    podman_names(&dir, &[(ID, "k8s_web_shop-7d9_prod_1a2b_0")]);
    let mut resolver = Resolver::new(dir.path());
    assert_eq!(
        resolver.names(ID),
        names(Some("web"), Some("shop-7d9"), Some("prod"))
    );
    assert_eq!(
        resolver.names(INFRA),
        names(None, Some("shop-7d9"), Some("prod"))
    );
}

#[test]
fn containerd_cri_in_any_namespace() {
    let dir = Scratch::new("containerd");
    let labels = r#""io.kubernetes.cri.container-type": "container",
        "io.kubernetes.cri.container-name": "web", "io.kubernetes.cri.sandbox-name": "shop-7d9",
        "io.kubernetes.cri.sandbox-namespace": "prod", "io.kubernetes.cri.sandbox-id": "c8fd""#;
    dir.write(
        &format!("run/containerd/io.containerd.runtime.v2.task/k8s.io/{ID}/config.json"),
        oci(labels, None),
    );
    let pause = r#""io.kubernetes.cri.container-type": "sandbox",
        "io.kubernetes.cri.sandbox-name": "shop-7d9", "io.kubernetes.cri.sandbox-namespace": "prod""#;
    dir.write(
        &format!("run/containerd/io.containerd.runtime.v2.task/k8s.io/{INFRA}/config.json"),
        oci(pause, None),
    );
    let nerdctl = r#""nerdctl/name": "redis-1", "nerdctl/namespace": "default""#;
    dir.write(
        &format!("run/containerd/io.containerd.runtime.v2.task/default/{OTHER}/config.json"),
        oci(nerdctl, None),
    );
    fs::create_dir_all(
        dir.path()
            .join("run/containerd/io.containerd.runtime.v2.task/moby"),
    )
    .unwrap();
    let mut resolver = Resolver::new(dir.path());
    assert_eq!(
        resolver.names(ID),
        names(Some("web"), Some("shop-7d9"), Some("prod"))
    );
    assert_eq!(
        resolver.names(INFRA),
        names(None, Some("shop-7d9"), Some("prod"))
    );
    assert_eq!(resolver.names(OTHER), names(Some("redis-1"), None, None));
}

#[test]
fn docker_name_and_cri_dockerd_labels() {
    let dir = Scratch::new("docker");
    let config = |name: &str, labels: &str| {
        format!(
            r#"{{"StreamConfig": {{}}, "State": {{"Running": true, "Pid": 4242}}, "ID": "x",
            "Name": "{name}", "Config": {{"Hostname": "4fa3", "Image": "busybox", "Labels": {labels}}},
            "Driver": "overlay2"}}"#
        )
    };
    dir.write(
        &format!("var/lib/docker/containers/{OTHER}/config.v2.json"),
        config("/zt-web", "null"),
    );
    let k8s = r#"{"io.kubernetes.container.name": "web", "io.kubernetes.docker.type": "container",
        "io.kubernetes.pod.name": "shop-7d9", "io.kubernetes.pod.namespace": "prod"}"#;
    dir.write(
        &format!("var/lib/docker/containers/{ID}/config.v2.json"),
        config("/k8s_web_shop", k8s),
    );
    let pause = r#"{"io.kubernetes.docker.type": "podsandbox",
        "io.kubernetes.pod.name": "shop-7d9", "io.kubernetes.pod.namespace": "prod"}"#;
    dir.write(
        &format!("var/lib/docker/containers/{INFRA}/config.v2.json"),
        config("/k8s_POD_shop", pause),
    );
    // Docker's containerd task has annotations, not the name.
    dir.write(
        &format!("run/containerd/io.containerd.runtime.v2.task/moby/{OTHER}/config.json"),
        oci("", None),
    );
    let mut resolver = Resolver::new(dir.path());
    assert_eq!(resolver.names(OTHER), names(Some("zt-web"), None, None));
    assert_eq!(
        resolver.names(ID),
        names(Some("web"), Some("shop-7d9"), Some("prod"))
    );
    assert_eq!(
        resolver.names(INFRA),
        names(None, Some("shop-7d9"), Some("prod"))
    );
}

fn runc_state(labels: &[&str]) -> String {
    let labels: Vec<String> = labels.iter().map(|l| format!("{l:?}")).collect();
    format!(
        r#"{{"id": "x", "init_process_pid": 4242, "config": {{"rootfs": "/r", "labels": [{}],
        "cgroups": {{"path": "/x"}}}}, "rootless": false}}"#,
        labels.join(",")
    )
}

#[test]
fn runc_labels_and_its_bundles_config() {
    let dir = Scratch::new("runc");
    let state = runc_state(&[
        "io.kubernetes.cri.container-name=web",
        "io.kubernetes.cri.sandbox-name=shop-7d9",
        "bundle=/srv/bundles/web",
    ]);
    dir.write(
        &format!("run/containerd/runc/k8s.io/{ID}/state.json"),
        state,
    );
    let rest = r#""io.kubernetes.cri.sandbox-namespace": "prod""#;
    dir.write("srv/bundles/web/config.json", oci(rest, None));
    dir.write(
        &format!("run/runc/{OTHER}/state.json"),
        runc_state(&["nerdctl/name=plain"]),
    );
    // A bundle outside the root is not read.
    let escape = runc_state(&[
        "bundle=/../../../etc",
        "io.kubernetes.cri.container-name=esc",
    ]);
    dir.write(
        &format!("run/docker/runtime-runc/moby/{INFRA}/state.json"),
        escape,
    );
    let mut resolver = Resolver::new(dir.path());
    assert_eq!(
        resolver.names(ID),
        names(Some("web"), Some("shop-7d9"), Some("prod"))
    );
    assert_eq!(resolver.names(OTHER), names(Some("plain"), None, None));
    assert_eq!(resolver.names(INFRA), names(Some("esc"), None, None));
}

#[test]
fn earlier_sources_win_and_later_ones_fill_in() {
    let dir = Scratch::new("order");
    storage_config(
        &dir,
        ID,
        &oci(r#""io.kubernetes.container.name": "first""#, None),
    );
    dir.write(
        &format!("var/lib/docker/containers/{ID}/config.v2.json"),
        r#"{"Name": "/second", "Config": {"Labels": {"io.kubernetes.pod.namespace": "prod"}}}"#,
    );
    let mut resolver = Resolver::new(dir.path());
    assert_eq!(resolver.names(ID), names(Some("first"), None, Some("prod")));
}

#[test]
fn bad_files_are_not_found() {
    let dir = Scratch::new("bad");
    let config = |id: &str| {
        format!("var/lib/containers/storage/overlay-containers/{id}/userdata/config.json")
    };
    let huge_name = format!(r#""io.kubernetes.container.name": "{}""#, "x".repeat(300));
    let controls =
        r#""io.kubernetes.container.name": "evil\u001b[2J\n", "io.kubernetes.pod.name": "p""#;
    let cases: Vec<(String, Vec<u8>)> = vec![
        (config(ID), b"\x00\xff garbage {{{".to_vec()),
        (
            config(INFRA),
            oci(r#""io.kubernetes.container.name": "cut""#, None).as_bytes()[..100].to_vec(),
        ),
        (
            config(OTHER),
            [
                oci(r#""io.kubernetes.container.name": "big""#, None).as_bytes(),
                &vec![b' '; CONFIG_CAP],
            ]
            .concat(),
        ),
    ];
    for (rel, bytes) in &cases {
        dir.write(rel, bytes);
    }
    let mut resolver = Resolver::new(dir.path());
    for id in [ID, INFRA, OTHER] {
        assert_eq!(resolver.names(id), ContainerNames::default(), "{id}");
    }
    let (a, b, c) = (
        ID.replace('0', "1"),
        ID.replace('0', "2"),
        ID.replace('0', "3"),
    );
    dir.write(&config(&a), oci(&huge_name, None));
    dir.write(&config(&b), oci(controls, None));
    let mut bytes = oci(r#""io.kubernetes.container.name": "caf"#, None).into_bytes();
    let at = bytes.windows(3).position(|w| w == b"caf").unwrap() + 3;
    bytes.insert(at, 0xe9);
    dir.write(&config(&c), bytes);
    assert_eq!(resolver.names(&a), ContainerNames::default());
    assert_eq!(resolver.names(&b), names(None, Some("p"), None));
    assert_eq!(resolver.names(&c), ContainerNames::default());
    // Not ids: nothing is looked up.
    for id in ["", "..", "../../etc/passwd", &ID[..12], &ID.to_uppercase()] {
        assert_eq!(resolver.names(id), ContainerNames::default());
    }
    assert_eq!(
        resolver.names_of_cgroup("0::/user.slice"),
        ContainerNames::default()
    );
}

#[test]
fn a_fifo_for_a_config_does_not_hang() {
    let dir = Scratch::new("fifo");
    let path = dir.path().join(format!(
        "var/lib/containers/storage/overlay-containers/{ID}/userdata"
    ));
    fs::create_dir_all(&path).unwrap();
    let fifo = std::ffi::CString::new(path.join("config.json").as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path, valid for the call.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    fs::create_dir_all(
        dir.path()
            .join(format!("var/lib/docker/containers/{ID}/config.v2.json")),
    )
    .unwrap();
    let started = Instant::now();
    assert_eq!(
        Resolver::new(dir.path()).names(ID),
        ContainerNames::default()
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn symlinks_are_not_followed_below_the_state_directories() {
    let dir = Scratch::new("links");
    let real = dir.write(
        "elsewhere/config.json",
        oci(r#""io.kubernetes.container.name": "linked""#, None),
    );
    let storage = dir
        .path()
        .join("var/lib/containers/storage/overlay-containers");
    // The file a link.
    fs::create_dir_all(storage.join(ID).join("userdata")).unwrap();
    symlink(&real, storage.join(ID).join("userdata/config.json")).unwrap();
    // The id's directory a link.
    fs::create_dir_all(dir.path().join("elsewhere/userdata")).unwrap();
    fs::copy(&real, dir.path().join("elsewhere/userdata/config.json")).unwrap();
    symlink(dir.path().join("elsewhere"), storage.join(INFRA)).unwrap();
    // containers.json a link.
    let list = dir.write("elsewhere/containers.json", podman_list(&[(ID, "listed")]));
    symlink(&list, storage.join("containers.json")).unwrap();
    // A state directory itself may be a link (to another disk).
    let docker = dir.write(
        &format!("disk/docker/containers/{OTHER}/config.v2.json"),
        r#"{"Name": "/on-disk"}"#,
    );
    fs::create_dir_all(dir.path().join("var/lib/docker")).unwrap();
    symlink(
        docker.parent().unwrap().parent().unwrap(),
        dir.path().join("var/lib/docker/containers"),
    )
    .unwrap();
    let mut resolver = Resolver::new(dir.path());
    assert_eq!(resolver.names(ID), ContainerNames::default());
    assert_eq!(resolver.names(INFRA), ContainerNames::default());
    assert_eq!(resolver.names(OTHER), names(Some("on-disk"), None, None));
}

#[test]
fn non_utf8_directory_names_are_skipped() {
    let dir = Scratch::new("non-utf8");
    let tasks = dir
        .path()
        .join("run/containerd/io.containerd.runtime.v2.task");
    fs::create_dir_all(tasks.join(OsStr::from_bytes(b"\xff\xfe"))).unwrap();
    dir.write(
        &format!("run/containerd/io.containerd.runtime.v2.task/ns/{ID}/config.json"),
        oci(r#""nerdctl/name": "ok""#, None),
    );
    assert_eq!(
        Resolver::new(dir.path()).names(ID),
        names(Some("ok"), None, None)
    );
}

#[test]
fn misses_are_retried_and_hits_kept() {
    let dir = Scratch::new("cache");
    let mut resolver = Resolver::new(dir.path());
    assert_eq!(resolver.names(ID), ContainerNames::default());
    podman_names(&dir, &[(ID, "late")]);
    // Within the retry time the miss stands.
    assert_eq!(resolver.names(ID), ContainerNames::default());
    resolver.miss_retry = Duration::ZERO;
    assert_eq!(resolver.names(ID), names(Some("late"), None, None));
    // A hit is kept though the file goes.
    fs::remove_file(dir.path().join(PODMAN_LIST).join("containers.json")).unwrap();
    assert_eq!(resolver.names(ID), names(Some("late"), None, None));
}

#[test]
fn containers_json_is_read_again_only_when_it_changed() {
    let dir = Scratch::new("reload");
    podman_names(&dir, &[(ID, "one")]);
    let mut resolver = Resolver::new(dir.path());
    assert_eq!(resolver.names(ID), names(Some("one"), None, None));
    // A longer file: a new size, read again on the next miss.
    podman_names(&dir, &[(ID, "one"), (OTHER, "two-longer")]);
    assert_eq!(resolver.names(OTHER), names(Some("two-longer"), None, None));
    let stamp = resolver.podman.stamp;
    assert_eq!(resolver.names(INFRA), ContainerNames::default());
    assert_eq!(resolver.podman.stamp, stamp);
    assert_eq!(resolver.podman.names.len(), 2);
}

#[test]
fn the_cache_is_bounded() {
    let dir = Scratch::new("bound");
    let mut resolver = Resolver::new(dir.path());
    for n in 0..CACHE_IDS + 10 {
        resolver.names(&format!("{n:064x}"));
    }
    assert_eq!(resolver.cache.len(), CACHE_IDS);
    assert_eq!(resolver.order.len(), CACHE_IDS);
    assert!(!resolver.cache.contains_key(&format!("{:064x}", 0)));
}

#[test]
fn plain_runc_of_any_id_by_its_cgroup() {
    let dir = Scratch::new("runc-any-id");
    dir.write(
        "run/runc/web/state.json",
        r#"{"cgroup_paths": {"": "/sys/fs/cgroup/unified/web"},
            "config": {"labels": ["io.kubernetes.pod.name=shop", "io.kubernetes.pod.namespace=prod"]}}"#,
    );
    dir.write(
        "run/runc/bare/state.json",
        r#"{"cgroup_paths": {"": "/sys/fs/cgroup/bare"}, "config": {"labels": []}}"#,
    );
    dir.write("run/runc/broken/state.json", "{\"cgroup_paths\": ");
    let mut resolver = Resolver::new(dir.path());
    assert_eq!(
        resolver.names_of_cgroup("/web"),
        names(Some("web"), Some("shop"), Some("prod"))
    );
    assert_eq!(
        resolver.names_of_cgroup("/bare"),
        names(Some("bare"), None, None)
    );
    assert_eq!(
        resolver.names_of_cgroup("/user.slice/user-0.slice"),
        names(None, None, None)
    );
}
