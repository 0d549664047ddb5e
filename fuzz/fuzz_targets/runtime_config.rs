//! The container runtimes' files (OCI `config.json`, Docker's
//! `config.v2.json`, runc's `state.json`, Podman's `containers.json`) and
//! cgroup paths: written by whoever can write below the runtimes' state
//! directories or make cgroups.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zombie_trace::{
    containers::runtime::{self, Facts, MAX_NAME},
    model::process::ContainerNames,
    proc::container::full_id,
};

fn check(facts: Option<Facts>) {
    let Some(facts) = facts else {
        return;
    };
    let names = ContainerNames::from(&facts);
    for name in [&names.name, &names.pod_name, &names.pod_namespace]
        .into_iter()
        .flatten()
    {
        assert!(!name.is_empty() && name.len() <= MAX_NAME, "{name:?}");
        assert!(!name.chars().any(char::is_control), "{name:?}");
    }
}

fuzz_target!(|bytes: &[u8]| {
    check(runtime::oci_config(bytes));
    check(runtime::docker_config(bytes));
    check(runtime::runc_state(bytes));
    if let Some(names) = runtime::podman_containers(bytes) {
        for (id, name) in names {
            assert_eq!(full_id(&id), Some(id.as_str()));
            assert!(name.len() <= MAX_NAME && !name.chars().any(char::is_control));
        }
    }
    if let Ok(path) = std::str::from_utf8(bytes)
        && let Some(id) = full_id(path)
    {
        assert_eq!(id.len(), 64, "{id:?}");
        assert!(path.contains(id));
        assert!(
            id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            "{id:?}"
        );
    }
});
