//! The runtimes' file formats, parsed into what names a container: the
//! OCI runtime spec's `config.json` (Podman, CRI-O, containerd), Podman's
//! `containers.json`, Docker's `config.v2.json` and runc's `state.json`.
//! Public for the fuzz target; everything else goes through
//! [`Resolver`](super::Resolver).

use std::{collections::HashMap, fmt};

use serde::{
    Deserialize,
    de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor},
};
use serde_json::{Map, Value};

use crate::{model::process::ContainerNames, proc::container::is_full_id};

/// The longest name kept: Kubernetes' limit for names (DNS subdomains).
pub const MAX_NAME: usize = 253;

/// The annotations (labels) that say what a container is called, the only
/// ones kept.
const KEYS: [&str; 13] = [
    POD_NAME,
    CRI_SANDBOX_NAME,
    POD_NAMESPACE,
    CRI_SANDBOX_NAMESPACE,
    CONTAINER_NAME,
    CRI_CONTAINER_NAME,
    CRI_CONTAINER_TYPE,
    CRIO_CONTAINER_TYPE,
    CRIO_SANDBOX_ID,
    DOCKER_TYPE,
    NERDCTL_NAME,
    MANAGER,
    BUNDLE,
];
const POD_NAME: &str = "io.kubernetes.pod.name";
const CRI_SANDBOX_NAME: &str = "io.kubernetes.cri.sandbox-name";
const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
const CRI_SANDBOX_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
const CONTAINER_NAME: &str = "io.kubernetes.container.name";
const CRI_CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";
/// containerd's CRI plugin: `sandbox` for a pod's pause container.
const CRI_CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
/// CRI-O's (and Podman's, for containers in a pod): `sandbox` or `container`.
const CRIO_CONTAINER_TYPE: &str = "io.kubernetes.cri-o.ContainerType";
/// CRI-O's, and Podman's for a container in a pod: the infra container.
const CRIO_SANDBOX_ID: &str = "io.kubernetes.cri-o.SandboxID";
/// cri-dockerd's label: `podsandbox` for a pod's pause container.
const DOCKER_TYPE: &str = "io.kubernetes.docker.type";
const NERDCTL_NAME: &str = "nerdctl/name";
/// `libpod` for Podman's containers.
const MANAGER: &str = "io.container.manager";
/// runc's label: the bundle directory, holding the OCI `config.json`.
const BUNDLE: &str = "bundle";

/// What one runtime file says about a container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// The annotations or labels that matter here, by key.
    labels: HashMap<&'static str, String>,
    /// The runtime's own name for the container (Podman's, Docker's).
    name: Option<String>,
    /// The OCI spec's `hostname`: a Podman pod's name, on its infra
    /// container.
    hostname: Option<String>,
}

impl Facts {
    /// The runtime's own name alone (Podman's `containers.json`).
    pub fn named(name: String) -> Self {
        Self {
            name: Some(name),
            ..Self::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.name.is_none() && self.hostname.is_none()
    }

    /// Fills in what `self` lacks from `other` (what was read first wins).
    pub fn merge(&mut self, other: Facts) {
        for (key, value) in other.labels {
            self.labels.entry(key).or_insert(value);
        }
        self.name = self.name.take().or(other.name);
        self.hostname = self.hostname.take().or(other.hostname);
    }

    /// Pod and container names all known (or known not to be): no other
    /// file need be read.
    pub fn complete(&self) -> bool {
        let names = ContainerNames::from(self);
        names.pod_name.is_some()
            && names.pod_namespace.is_some()
            && (names.name.is_some() || self.is_sandbox())
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    /// runc's `bundle=` label: the directory holding `config.json`.
    pub fn bundle(&self) -> Option<&str> {
        self.label(BUNDLE)
    }

    /// A Podman container in a pod: the pod's infra container's id.
    pub fn podman_sandbox(&self) -> Option<&str> {
        let podman = self.label(MANAGER) == Some("libpod");
        self.label(CRIO_SANDBOX_ID)
            .filter(|id| podman && is_full_id(id))
    }

    pub fn hostname(&self) -> Option<&str> {
        self.hostname.as_deref()
    }

    /// A pod's pause (sandbox, infra) container: it has pod names, no
    /// name of its own.
    pub fn is_sandbox(&self) -> bool {
        self.label(CRI_CONTAINER_TYPE) == Some("sandbox")
            || self.label(CRIO_CONTAINER_TYPE) == Some("sandbox")
            || self.label(DOCKER_TYPE) == Some("podsandbox")
            || self.is_podman_infra()
    }

    /// Podman 4 marks no infra container as such: it is the one named
    /// `<pod id's first 12 hex>-infra`, and its hostname is the pod's name
    /// (`podman kube play` and `podman pod create` alike).
    fn is_podman_infra(&self) -> bool {
        self.label(MANAGER) == Some("libpod")
            && self.label(CRIO_SANDBOX_ID).is_none()
            && self.name.as_deref().is_some_and(|n| {
                n.strip_suffix("-infra").is_some_and(|pod| {
                    pod.len() == 12 && pod.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                })
            })
    }

    /// The pod's name for a Podman container in a pod, from its infra
    /// container's hostname (Podman writes the pod's name nowhere else but
    /// its database).
    pub fn set_podman_pod(&mut self, infra_hostname: Option<&str>) {
        if let Some(pod) = infra_hostname.and_then(safe_name) {
            self.labels.entry(POD_NAME).or_insert(pod);
        }
    }

    fn keep(&mut self, key: &str, value: &str) {
        let Some(key) = KEYS.iter().find(|k| **k == key) else {
            return;
        };
        let value = if *key == BUNDLE {
            safe_path(value)
        } else {
            safe_name(value)
        };
        if let Some(value) = value {
            self.labels.entry(key).or_insert(value);
        }
    }
}

impl From<&Facts> for ContainerNames {
    fn from(facts: &Facts) -> Self {
        let first = |keys: &[&str]| keys.iter().find_map(|k| facts.label(k)).map(str::to_owned);
        let mut pod_name = first(&[POD_NAME, CRI_SANDBOX_NAME]);
        let sandbox = facts.is_sandbox();
        if facts.is_podman_infra() {
            pod_name = pod_name.or_else(|| facts.hostname.clone());
        }
        let name = if sandbox {
            None
        } else {
            first(&[CONTAINER_NAME, CRI_CONTAINER_NAME])
                .or_else(|| facts.name.clone())
                .or_else(|| first(&[NERDCTL_NAME]))
        };
        ContainerNames {
            name,
            pod_name,
            pod_namespace: first(&[POD_NAMESPACE, CRI_SANDBOX_NAMESPACE]),
        }
    }
}

/// `name` if it can be said as it is: not empty, at most [`MAX_NAME`]
/// bytes, no control characters (a name that is not is dropped, not
/// mended: a mended name would match no `--container` given).
pub fn safe_name(name: &str) -> Option<String> {
    (!name.is_empty() && name.len() <= MAX_NAME && !name.chars().any(char::is_control))
        .then(|| name.to_owned())
}

/// A path label's value, as bounded as a name's but a little longer.
fn safe_path(path: &str) -> Option<String> {
    (path.starts_with('/') && path.len() <= 4096 && !path.chars().any(char::is_control))
        .then(|| path.to_owned())
}

/// An OCI runtime spec `config.json`: its `annotations` and `hostname`.
pub fn oci_config(bytes: &[u8]) -> Option<Facts> {
    let doc: Map<String, Value> = serde_json::from_slice(bytes).ok()?;
    let mut facts = Facts::default();
    if let Some(annotations) = doc.get("annotations").and_then(Value::as_object) {
        for (key, value) in annotations {
            if let Some(value) = value.as_str() {
                facts.keep(key, value);
            }
        }
    }
    facts.hostname = doc
        .get("hostname")
        .and_then(Value::as_str)
        .and_then(safe_name);
    Some(facts)
}

/// Docker's `config.v2.json`: `Name` (`/foo`) and `Config.Labels`
/// (cri-dockerd puts Kubernetes' there).
pub fn docker_config(bytes: &[u8]) -> Option<Facts> {
    let doc: Map<String, Value> = serde_json::from_slice(bytes).ok()?;
    let mut facts = Facts::default();
    let labels = doc
        .get("Config")
        .and_then(|c| c.get("Labels"))
        .and_then(Value::as_object);
    for (key, value) in labels.into_iter().flatten() {
        if let Some(value) = value.as_str() {
            facts.keep(key, value);
        }
    }
    facts.name = doc
        .get("Name")
        .and_then(Value::as_str)
        .map(|n| n.strip_prefix('/').unwrap_or(n))
        .and_then(safe_name);
    Some(facts)
}

/// runc's `state.json`: `config.labels`, `key=value` strings (the OCI
/// annotations, and `bundle=`).
pub fn runc_state(bytes: &[u8]) -> Option<Facts> {
    #[derive(Deserialize)]
    struct State {
        config: Config,
    }
    #[derive(Deserialize)]
    struct Config {
        #[serde(default)]
        labels: Vec<Value>,
    }
    let state: State = serde_json::from_slice(bytes).ok()?;
    let mut facts = Facts::default();
    for label in state.config.labels.iter().filter_map(Value::as_str) {
        if let Some((key, value)) = label.split_once('=') {
            facts.keep(key, value);
        }
    }
    Some(facts)
}

/// The cgroup v2 path runc's `state.json` records for its container
/// (`cgroup_paths[""]`), below the cgroup v2 mount, as `/proc/PID/cgroup`
/// shows it.
pub fn runc_cgroup(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct State {
        #[serde(default)]
        cgroup_paths: HashMap<String, Text>,
    }
    let state: State = serde_json::from_slice(bytes).ok()?;
    let path = state.cgroup_paths.get("")?.0.as_deref()?;
    let below = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .iter()
        .find_map(|mount| path.strip_prefix(mount))?;
    if below.is_empty() {
        return Some("/".to_owned());
    }
    below.starts_with('/').then(|| below.to_owned())
}

/// Podman's (containers/storage's) `containers.json`: each container's id
/// and first name.
pub fn podman_containers(bytes: &[u8]) -> Option<HashMap<String, String>> {
    /// Only what is kept is held: a list of millions of tiny values (the
    /// file may be 16 MiB) must not become millions of `Value`s.
    #[derive(Deserialize)]
    struct Container {
        #[serde(default)]
        id: Text,
        #[serde(default)]
        names: FirstText,
    }
    let list: Vec<Container> = serde_json::from_slice(bytes).ok()?;
    let names = list.into_iter().filter_map(|c| {
        let id = c.id.0.filter(|id| is_full_id(id))?;
        let name = c.names.0.as_deref().and_then(safe_name)?;
        Some((id, name))
    });
    Some(names.collect())
}

/// A string, or `None` for any other value, which is skipped unread.
#[derive(Default)]
struct Text(Option<String>);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TextVisitor).map(Text)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Some(s.to_owned()))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

/// The first element of a list, if a string; the rest skipped unread.
#[derive(Default)]
struct FirstText(Option<String>);

impl<'de> Deserialize<'de> for FirstText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct First;
        impl<'de> Visitor<'de> for First {
            type Value = Option<String>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of names")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let first = seq.next_element::<Text>()?.and_then(|t| t.0);
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(first)
            }
        }
        d.deserialize_seq(First).map(FirstText)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dropped_not_mended() {
        assert_eq!(safe_name("web-1").as_deref(), Some("web-1"));
        assert_eq!(safe_name(""), None);
        assert_eq!(safe_name("a\nb"), None);
        assert_eq!(safe_name("a\u{1b}[31m"), None);
        assert_eq!(safe_name("a\u{85}"), None);
        assert!(safe_name(&"x".repeat(MAX_NAME)).is_some());
        assert_eq!(safe_name(&"x".repeat(MAX_NAME + 1)), None);
    }

    #[test]
    fn labels_of_any_type_or_key_do_no_harm() {
        let facts = oci_config(
            br#"{"annotations": {"io.kubernetes.pod.name": 7, "other": "x",
                "io.kubernetes.pod.namespace": "ns", "io.kubernetes.container.name": null},
                "hostname": ["h"]}"#,
        )
        .unwrap();
        let names = ContainerNames::from(&facts);
        assert_eq!(names.pod_namespace.as_deref(), Some("ns"));
        assert_eq!(names.pod_name, None);
        assert_eq!(names.name, None);
        assert_eq!(
            oci_config(br#"{"annotations": []}"#),
            Some(Facts::default())
        );
        assert_eq!(oci_config(b"[]"), None);
        assert_eq!(
            runc_state(br#"{"config": {"labels": [1, "=", "x", "nerdctl/name=a=b"]}}"#)
                .map(|f| ContainerNames::from(&f).name),
            Some(Some("a=b".to_owned()))
        );
    }

    #[test]
    fn runc_records_its_cgroup() {
        let state = |path: &str| format!(r#"{{"cgroup_paths": {{"": "{path}", "pids": "/x"}}}}"#);
        assert_eq!(
            runc_cgroup(state("/sys/fs/cgroup/unified/zt-web").as_bytes()).as_deref(),
            Some("/zt-web")
        );
        assert_eq!(
            runc_cgroup(state("/sys/fs/cgroup/kubepods/pod1/web").as_bytes()).as_deref(),
            Some("/kubepods/pod1/web")
        );
        assert_eq!(runc_cgroup(state("/elsewhere/x").as_bytes()), None);
        assert_eq!(runc_cgroup(state("/sys/fs/cgroupx").as_bytes()), None);
        assert_eq!(runc_cgroup(br#"{"cgroup_paths": {"": 7}}"#), None);
        assert_eq!(runc_cgroup(b"\xff garbage"), None);
    }

    #[test]
    fn a_huge_podman_list_holds_only_what_it_keeps() {
        // Millions of tiny values where an id and names go: skipped, not
        // held (as `Value`s they would take hundreds of MiB).
        let mut json = String::from(r#"[{"id": [0"#);
        json.push_str(&",0".repeat(2 << 20));
        json.push_str(r#"], "names": [{"a": 1}"#);
        json.push_str(&",0".repeat(2 << 20));
        json.push_str("]}]");
        assert_eq!(podman_containers(json.as_bytes()).map(|m| m.len()), Some(0));
    }

    #[test]
    fn podman_list_skips_what_it_cannot_use() {
        let id = "4fa3aef7349435171d465a8b555704b452dc9e3778e1adc31bf3bf34ef0b94cf";
        let json = format!(
            r#"[{{"id": "{id}", "names": ["zt-a", "alias"]}}, {{"id": "short", "names": ["b"]}},
               {{"id": 5}}, {{"names": ["c"]}}, {{"id": "{}", "names": []}}]"#,
            id.replace('4', "5")
        );
        let names = podman_containers(json.as_bytes()).unwrap();
        assert_eq!(names.len(), 1);
        assert_eq!(names[id], "zt-a");
    }
}
