//! `cargo xtask deploy-check`: the files in deploy/ are checked without a
//! cluster. The Prometheus rules by promtool (syntax, then the unit tests in
//! zombie-trace.rules.test.yml); the Kubernetes manifests against the API's
//! schemas (PyPI's kubernetes-validate, in a venv under target/); the
//! PodMonitor, whose CRD schema is not bundled there, by the fields that
//! tie it to the DaemonSet; the Grafana dashboard by parsing it and by the
//! metric names its queries use (only those of the interface spec).

use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::{output_of, run_cmd, which};

const RULES: &str = "deploy/prometheus/zombie-trace.rules.yml";
const RULE_TESTS: &str = "deploy/prometheus/zombie-trace.rules.test.yml";
const KUBERNETES: &str = "deploy/kubernetes";
const DASHBOARD: &str = "deploy/grafana/zombie-trace-dashboard.json";
const VENV: &str = "target/deploy-venv";
const KUBERNETES_VALIDATE: &str = "kubernetes-validate==1.37.0";
/// The oldest Kubernetes the manifests are for (securityContext's
/// appArmorProfile is 1.30's), and the newest kubernetes-validate knows.
const KUBERNETES_VERSIONS: &[&str] = &["1.30.0", "1.37.0"];
/// The metrics zombie-trace serves (the interface spec of issue 15).
const METRICS: &[&str] = &[
    "zombie_trace_zombies",
    "zombie_trace_zombies_reported_total",
    "zombie_trace_oldest_zombie_seconds",
    "zombie_trace_zombie_age_seconds_bucket",
    "zombie_trace_zombie_age_seconds_sum",
    "zombie_trace_zombie_age_seconds_count",
    "zombie_trace_exits_total",
    "zombie_trace_reaps_total",
    "zombie_trace_lost_events_total",
    "zombie_trace_build_info",
    "zombie_trace_wait_tracing",
];

pub fn check() -> Result<()> {
    prometheus_rules()?;
    kubernetes_manifests()?;
    dashboard()?;
    println!("deploy: all checks passed");
    Ok(())
}

fn prometheus_rules() -> Result<()> {
    if which("promtool").is_none() {
        bail!("promtool not found: run `cargo xtask setup` (it installs Debian's prometheus)");
    }
    run_cmd(
        Command::new("promtool").args(["check", "rules", RULES]),
        &format!("fix {RULES} as promtool says"),
    )?;
    run_cmd(
        Command::new("promtool").args(["test", "rules", RULE_TESTS]),
        &format!(
            "an alert or recording rule does not do what {RULE_TESTS} expects: fix the rule, or \
             the test if the change was meant"
        ),
    )
}

/// The venv's python and kubernetes-validate, installed on first use.
fn venv() -> Result<PathBuf> {
    let bin = Path::new(VENV).join("bin");
    if !bin.join("kubernetes-validate").is_file() {
        run_cmd(
            Command::new("python3").args(["-m", "venv", VENV]),
            "install python3-venv (`cargo xtask setup` does), then try again",
        )?;
        run_cmd(
            Command::new(bin.join("pip")).args(["install", "--quiet", KUBERNETES_VALIDATE]),
            "check the network (pip must reach pypi.org), then try again",
        )?;
    }
    Ok(bin)
}

fn kubernetes_manifests() -> Result<()> {
    let bin = venv()?;
    let mut manifests: Vec<PathBuf> = fs::read_dir(KUBERNETES)
        .with_context(|| format!("cannot list {KUBERNETES}"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    manifests.sort();
    let yaml = |path: &Path| -> Result<Value> {
        // PyYAML comes with kubernetes-validate.
        let json = output_of(
            Command::new(bin.join("python"))
                .args([
                    "-c",
                    "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)",
                ])
                .arg(path),
        )
        .with_context(|| format!("{} is not valid YAML", path.display()))?;
        Ok(serde_json::from_str(&json)?)
    };
    let kind_of = |path: &Path| -> Result<String> {
        Ok(yaml(path)?["kind"].as_str().unwrap_or_default().to_owned())
    };
    // kubernetes-validate knows the API's kinds only.
    let mut api_kinds = Vec::new();
    let mut podmonitor = None;
    let mut kustomization = None;
    let mut daemonset = None;
    for path in &manifests {
        match kind_of(path)?.as_str() {
            "PodMonitor" => podmonitor = Some(path.clone()),
            "Kustomization" => kustomization = Some(path.clone()),
            kind => {
                if kind == "DaemonSet" {
                    daemonset = Some(path.clone());
                }
                api_kinds.push(path.clone());
            }
        }
    }
    for version in KUBERNETES_VERSIONS {
        run_cmd(
            Command::new(bin.join("kubernetes-validate"))
                .args(["--strict", "--quiet", "--kubernetes-version", version])
                .args(&api_kinds),
            &format!("fix the manifest above: it must be valid for Kubernetes {version}"),
        )?;
    }
    let daemonset = yaml(&daemonset.context("no DaemonSet in deploy/kubernetes")?)?;
    let podmonitor = yaml(&podmonitor.context("no PodMonitor in deploy/kubernetes")?)?;
    check_podmonitor(&podmonitor, &daemonset)?;
    let kustomization = kustomization.context("no kustomization.yaml in deploy/kubernetes")?;
    check_kustomization(&yaml(&kustomization)?, &manifests, &kustomization)?;
    println!("deploy: {KUBERNETES}: valid for Kubernetes {KUBERNETES_VERSIONS:?}");
    Ok(())
}

/// The PodMonitor CRD's schema is not in kubernetes-validate (and no
/// registry or cluster is at hand): check what ties it to the DaemonSet and
/// what the rules need (honorLabels, the `node` label).
fn check_podmonitor(monitor: &Value, daemonset: &Value) -> Result<()> {
    let fail = |why: &str| bail!("deploy/kubernetes podmonitor: {why}");
    if monitor["apiVersion"] != "monitoring.coreos.com/v1" {
        return fail("apiVersion must be monitoring.coreos.com/v1");
    }
    let pod_labels = &daemonset["spec"]["template"]["metadata"]["labels"];
    let selected = monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .is_some_and(|wanted| wanted.iter().all(|(k, v)| &pod_labels[k] == v));
    if !selected {
        return fail("spec.selector.matchLabels does not select the DaemonSet's pods");
    }
    let ports: Vec<&Value> = daemonset["spec"]["template"]["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .map(|p| &p["name"])
        .collect();
    let endpoints = monitor["spec"]["podMetricsEndpoints"]
        .as_array()
        .filter(|e| !e.is_empty());
    let Some(endpoints) = endpoints else {
        return fail("no podMetricsEndpoints");
    };
    for endpoint in endpoints {
        if !ports.contains(&&endpoint["port"]) {
            return fail("an endpoint's port is not a named port of the DaemonSet's container");
        }
        if endpoint["honorLabels"] != true {
            return fail(
                "honorLabels must be true (the namespace/pod/container labels are the zombie's)",
            );
        }
        let node = endpoint["relabelings"].as_array().is_some_and(|r| {
            r.iter().any(|r| {
                r["targetLabel"] == "node"
                    && r["sourceLabels"]
                        .as_array()
                        .is_some_and(|s| s.iter().any(|l| l == "__meta_kubernetes_pod_node_name"))
            })
        });
        if !node {
            return fail("no relabeling of __meta_kubernetes_pod_node_name into `node`");
        }
    }
    Ok(())
}

/// Every manifest is in the kustomization, and every resource it lists
/// exists.
fn check_kustomization(kustomization: &Value, manifests: &[PathBuf], path: &Path) -> Result<()> {
    let listed: BTreeSet<&str> = kustomization["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for manifest in manifests {
        let name = manifest.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if manifest.as_path() != path && !listed.contains(name) {
            bail!(
                "{} is not in {}'s resources",
                manifest.display(),
                path.display()
            );
        }
    }
    for name in listed {
        if !Path::new(KUBERNETES).join(name).is_file() {
            bail!(
                "{} lists {name}, which is not in {KUBERNETES}",
                path.display()
            );
        }
    }
    Ok(())
}

fn dashboard() -> Result<()> {
    let text = fs::read_to_string(DASHBOARD).with_context(|| format!("cannot read {DASHBOARD}"))?;
    let dashboard: Value =
        serde_json::from_str(&text).with_context(|| format!("{DASHBOARD} is not JSON"))?;
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str())
        .collect();
    for wanted in ["datasource", "node", "namespace"] {
        if !variables.contains(&wanted) {
            bail!("{DASHBOARD} has no `{wanted}` template variable");
        }
    }
    let mut queries = Vec::new();
    collect_queries(&dashboard, &mut queries);
    if queries.is_empty() {
        bail!("{DASHBOARD} has no PromQL queries");
    }
    for query in &queries {
        for name in metric_names(query) {
            if !METRICS.contains(&name.as_str()) {
                bail!(
                    "{DASHBOARD}: `{query}` uses {name}, which zombie-trace does not serve (the \
                     metrics are those of the interface spec: {})",
                    METRICS.join(", ")
                );
            }
        }
    }
    println!(
        "deploy: {DASHBOARD}: {} queries, every metric known",
        queries.len()
    );
    Ok(())
}

/// Every PromQL string in the dashboard: panel targets' `expr`, and the
/// template variables' queries (`label_values(SELECTOR, label)` gives its
/// selector).
fn collect_queries(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", Value::String(s)) => out.push(s.clone()),
                    ("query", Value::String(s)) if s.starts_with("label_values(") => {
                        let inner = &s["label_values(".len()..s.len().saturating_sub(1)];
                        let selector = inner.rsplit_once(',').map_or(inner, |(sel, _)| sel);
                        out.push(selector.trim().to_owned());
                    }
                    ("query", Value::Object(q)) => {
                        if let Some(Value::String(s)) = q.get("query") {
                            collect_queries(&serde_json::json!({ "query": s }), out);
                        }
                    }
                    _ => collect_queries(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_queries(v, out)),
        _ => {}
    }
}

/// The metric names in a PromQL expression: identifiers that are not
/// functions (followed by `(`), keywords or aggregations, label names (inside `{}` or the
/// lists after by/without/on/ignoring/group_*), durations, strings or
/// Grafana variables.
fn metric_names(query: &str) -> Vec<String> {
    // Besides LISTS.
    const KEYWORDS: &[&str] = &[
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
        // Aggregations may put `by (...)` before their parenthesis.
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    const LISTS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = query.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    // Whether the next `(` opens a label list.
    let mut list_next = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == '{' || c == '[' || (c == '(' && list_next) {
            let close = match c {
                '{' => '}',
                '[' => ']',
                _ => ')',
            };
            while i < chars.len() && chars[i] != close {
                i += 1;
            }
            i += 1;
            list_next = false;
        } else if c == '$' {
            // $var, ${var}, $__rate_interval
            i += 1;
            if chars.get(i) == Some(&'{') {
                while i < chars.len() && chars[i] != '}' {
                    i += 1;
                }
                i += 1;
            } else {
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let is_call = chars.get(next) == Some(&'(');
            if LISTS.contains(&word.as_str()) {
                list_next = true;
            } else if !is_call
                && !KEYWORDS.contains(&word.to_lowercase().as_str())
                && !LISTS.contains(&word.to_lowercase().as_str())
            {
                names.push(word);
            }
        } else if c.is_ascii_digit() || c == '.' {
            // A number or a duration (5m, 1e3).
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::metric_names;

    #[test]
    fn metric_names_leave_out_functions_labels_and_variables() {
        let q = r#"topk(10, sum by (node, namespace) (rate(zombie_trace_zombies_reported_total{node=~"$node", namespace=~"${namespace}"}[$__rate_interval]))) > bool 0.5"#;
        assert_eq!(metric_names(q), ["zombie_trace_zombies_reported_total"]);
        let q = "histogram_quantile(0.99, sum by (le) (rate(zombie_trace_zombie_age_seconds_bucket[5m]))) / on(instance) group_left(node) up";
        assert_eq!(
            metric_names(q),
            ["zombie_trace_zombie_age_seconds_bucket", "up"]
        );
    }
}
