//! Container ids in cgroup paths.

/// The 64-lowercase-hex container id in a cgroup path: the last path
/// segment holding one, in any of the forms `docker-<id>.scope`,
/// `/docker/<id>`, `cri-containerd-<id>.scope`, `crio-<id>.scope`,
/// `libpod-<id>`, `nerdctl-<id>.scope`, `/kubepods/.../pod<uid>/<id>`
/// (cgroupfs driver), or a bare `<id>`. Conmon's cgroups
/// (`crio-conmon-<id>`, `libpod-conmon-<id>`) are not the container's.
/// Leading `/..` segments (a path seen from inside a cgroup namespace) are
/// no different from other segments that hold no id.
pub fn full_id(cgroup: &str) -> Option<&str> {
    let mut parent = None;
    let mut found = None;
    for segment in cgroup.split('/').filter(|s| !s.is_empty()) {
        if let Some(id) = segment_id(parent, segment) {
            found = Some(id);
        }
        parent = Some(segment);
    }
    found
}

/// The container id that directory `name` (below `parent`) is named
/// after, if it is a container's cgroup.
pub fn segment_id<'a>(parent: Option<&str>, name: &'a str) -> Option<&'a str> {
    let name = name.strip_suffix(".scope").unwrap_or(name);
    if is_full_id(name) {
        // Podman's cgroupfs layout names a pod's cgroup by the pod's id,
        // bare: `/libpod_parent/<pod id>/libpod-<id>`.
        return (parent != Some("libpod_parent")).then_some(name);
    }
    const PREFIXES: [&str; 5] = ["docker-", "cri-containerd-", "crio-", "libpod-", "nerdctl-"];
    PREFIXES
        .iter()
        .filter_map(|p| name.strip_prefix(p))
        .find(|id| is_full_id(id))
}

/// 64 lowercase hex digits: the form of every runtime's full id.
pub fn is_full_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4fa3aef7349435171d465a8b555704b452dc9e3778e1adc31bf3bf34ef0b94cf";
    const POD: &str = "a22e17d3b47766d2a0488d3e5ff64296394d5b85571bb9f097221e494ec22be8";

    #[test]
    fn every_runtimes_form() {
        let paths = [
            format!("/system.slice/docker-{ID}.scope"),
            format!("/docker/{ID}"),
            format!(
                "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b_3c.slice/cri-containerd-{ID}.scope"
            ),
            format!("/kubepods.slice/kubepods-pod1.slice/crio-{ID}.scope"),
            format!("/machine.slice/libpod-{ID}.scope"),
            format!("/libpod_parent/libpod-{ID}"),
            format!("/libpod_parent/{POD}/libpod-{ID}"),
            format!("/kubepods/burstable/pod0a1b2c3d-0000-4000-8000-000000000000/{ID}"),
            format!("/system.slice/nerdctl-{ID}.scope"),
            format!("/../../docker-{ID}.scope"),
            format!("/system.slice/docker-{ID}.scope/init.scope"),
            ID.to_owned(),
        ];
        for path in paths {
            assert_eq!(full_id(&path), Some(ID), "{path}");
        }
    }

    #[test]
    fn conmon_pods_and_others_are_not_containers() {
        let paths = [
            format!("/kubepods.slice/crio-conmon-{ID}.scope"),
            format!("/machine.slice/libpod-conmon-{ID}.scope"),
            format!("/libpod_parent/{POD}"),
            format!("/machine.slice/machine-libpod_pod_{POD}.slice"),
            format!("/docker/{}", &ID[..63]),
            format!("/docker/{}", ID.to_uppercase()),
            format!("/docker/{ID}0"),
            "/user.slice/user-0.slice/session-1.scope".to_owned(),
            "/".to_owned(),
            String::new(),
        ];
        for path in paths {
            assert_eq!(full_id(&path), None, "{path}");
        }
    }

    #[test]
    fn the_last_segment_holding_an_id_wins() {
        let path = format!("/docker/{POD}/docker-{ID}.scope");
        assert_eq!(full_id(&path), Some(ID));
    }
}
