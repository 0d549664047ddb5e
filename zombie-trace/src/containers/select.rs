//! `--container`, `--pod`, `--namespace`: which containers to trace.

use thiserror::Error;

use super::runtime::MAX_NAME;
use crate::model::process::ContainerNames;

/// Which containers to trace: every criterion given must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    /// The runtime's container name (exact), or 12 to 64 lowercase hex: a
    /// prefix of the container's id.
    pub container: Option<String>,
    /// Kubernetes' pod name (exact).
    pub pod: Option<String>,
    /// Kubernetes' pod namespace (exact).
    pub namespace: Option<String>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SelectorError {
    #[error("--{0} is empty: give a name (or leave the option out)")]
    Empty(&'static str),
    #[error("--{0} is longer than any name ({MAX_NAME} bytes at most)")]
    TooLong(&'static str),
    #[error("--{0} holds a control character, which no name has")]
    Control(&'static str),
}

impl Selector {
    /// Checks each value given: one no container could have is a mistake
    /// better said at once than found by tracing nothing.
    pub fn new(
        container: Option<String>,
        pod: Option<String>,
        namespace: Option<String>,
    ) -> Result<Self, SelectorError> {
        for (flag, value) in [
            ("container", &container),
            ("pod", &pod),
            ("namespace", &namespace),
        ] {
            match value {
                Some(v) if v.is_empty() => return Err(SelectorError::Empty(flag)),
                Some(v) if v.len() > MAX_NAME => return Err(SelectorError::TooLong(flag)),
                Some(v) if v.chars().any(char::is_control) => {
                    return Err(SelectorError::Control(flag));
                }
                _ => {}
            }
        }
        Ok(Self {
            container,
            pod,
            namespace,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.container.is_none() && self.pod.is_none() && self.namespace.is_none()
    }

    /// Container `id` (64 hex) with these names is wanted: every given
    /// criterion holds.
    pub fn matches(&self, id: &str, names: &ContainerNames) -> bool {
        let exact = |wanted: &Option<String>, have: &Option<String>| {
            wanted.is_none() || (have.is_some() && have == wanted)
        };
        let container = self.container.as_deref().is_none_or(|c| {
            names.name.as_deref() == Some(c) || (is_id_prefix(c) && id.starts_with(c))
        });
        container
            && exact(&self.pod, &names.pod_name)
            && exact(&self.namespace, &names.pod_namespace)
    }
}

/// 12 to 64 lowercase hex: what `docker ps` and `podman ps` show of an id,
/// up to all of it.
fn is_id_prefix(s: &str) -> bool {
    (12..=64).contains(&s.len()) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4fa3aef7349435171d465a8b555704b452dc9e3778e1adc31bf3bf34ef0b94cf";

    fn names(name: &str, pod: &str, ns: &str) -> ContainerNames {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        ContainerNames {
            name: some(name),
            pod_name: some(pod),
            pod_namespace: some(ns),
        }
    }

    fn select(container: &str, pod: &str, ns: &str) -> Selector {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Selector::new(some(container), some(pod), some(ns)).unwrap()
    }

    #[test]
    fn every_given_criterion_must_hold() {
        let web = names("web", "shop-1", "prod");
        assert!(select("", "", "").is_empty());
        assert!(select("", "", "").matches(ID, &web));
        assert!(select("web", "", "").matches(ID, &web));
        assert!(select("web", "shop-1", "prod").matches(ID, &web));
        assert!(!select("web", "shop-1", "dev").matches(ID, &web));
        assert!(!select("we", "", "").matches(ID, &web));
        assert!(select("", "", "prod").matches(ID, &web));
        assert!(!select("", "", "prod").matches(ID, &ContainerNames::default()));
        assert!(!select("", "shop-1", "").matches(ID, &names("web", "", "prod")));
    }

    #[test]
    fn ids_match_by_prefix_of_12_or_more() {
        let none = ContainerNames::default();
        assert!(select(&ID[..12], "", "").matches(ID, &none));
        assert!(select(ID, "", "").matches(ID, &none));
        assert!(!select(&ID[..11], "", "").matches(ID, &none));
        assert!(!select(&ID[..12].to_uppercase(), "", "").matches(ID, &none));
        assert!(!select(&ID[1..13], "", "").matches(ID, &none));
        // A container named like another's id is still found by its name.
        assert!(select("0123456789ab", "", "").matches(ID, &names("0123456789ab", "", "")));
    }

    #[test]
    fn values_no_name_could_have_are_refused() {
        let err = |c: &str, p: Option<&str>| {
            Selector::new(Some(c.to_owned()), p.map(str::to_owned), None).unwrap_err()
        };
        assert_eq!(err("", None), SelectorError::Empty("container"));
        assert_eq!(err("a", Some("")), SelectorError::Empty("pod"));
        assert_eq!(
            err(&"a".repeat(MAX_NAME + 1), None),
            SelectorError::TooLong("container")
        );
        assert_eq!(err("a\tb", None), SelectorError::Control("container"));
        assert_eq!(
            SelectorError::Empty("namespace").to_string(),
            "--namespace is empty: give a name (or leave the option out)"
        );
    }
}
