//! The name, ID and label filters (`ListFilters`) that lists and watches
//! share, checked against one object.

use swarm_proto::v1::{Cluster, Config, ListFilters, Node, Secret, Service, Task};
use swarm_store::{Object, StoreObject};

/// The name that the `names` and `name_prefixes` filters match.
pub(crate) trait FilterName {
    /// Whether that name is the one the store indexes (its annotations').
    const INDEXED: bool = true;

    fn filter_name(&self) -> &str;
}

macro_rules! filter_by_annotations_name {
    ($($kind:ty),*) => {$(
        impl FilterName for $kind {
            fn filter_name(&self) -> &str {
                self.annotations().map_or("", |annotations| annotations.name.as_str())
            }
        }
    )*};
}
filter_by_annotations_name!(Service, Task, Cluster, Secret, Config);

/// Nodes are selected by hostname, as SwarmKit's controlapi does: a node's
/// spec rarely has a name, and hostnames need not be unique, so the store
/// does not index them.
impl FilterName for Node {
    const INDEXED: bool = false;

    fn filter_name(&self) -> &str {
        self.description
            .as_ref()
            .map_or("", |description| description.hostname.as_str())
    }
}

/// A request's `ListFilters`, prepared once (names lower-cased, labels
/// split) because a watch checks them on every change, under the store's
/// commit lock.
#[derive(Debug, Default)]
pub(crate) struct Selector {
    names: Vec<String>,
    name_prefixes: Vec<String>,
    id_prefixes: Vec<String>,
    /// `key` (any value) or `key=value`.
    labels: Vec<(String, Option<String>)>,
}

impl Selector {
    pub(crate) fn new(filters: &ListFilters) -> Selector {
        // Lower-cased a character at a time, as names are compared: the
        // whole string's `to_lowercase` ends a word in ς where a
        // character's gives σ.
        let lowercase = |values: &[String]| {
            values
                .iter()
                .map(|value| value.chars().flat_map(char::to_lowercase).collect())
                .collect()
        };
        Selector {
            names: lowercase(&filters.names),
            name_prefixes: lowercase(&filters.name_prefixes),
            id_prefixes: filters.id_prefixes.clone(),
            labels: filters
                .labels
                .iter()
                .map(|label| match label.split_once('=') {
                    Some((key, value)) => (key.to_string(), Some(value.to_string())),
                    None => (label.clone(), None),
                })
                .collect(),
        }
    }

    /// Whether `object` passes every filter that is set: any of the names
    /// (case-insensitive), any of the name prefixes (the same), any of the
    /// id prefixes, and all of the labels.
    pub(crate) fn matches<T: StoreObject + FilterName>(&self, object: &T) -> bool {
        let name = object.filter_name();
        let labels = object.annotations().map(|annotations| &annotations.labels);
        (self.names.is_empty() || self.names.iter().any(|wanted| equal_lowercased(name, wanted)))
            && (self.name_prefixes.is_empty()
                || self.name_prefixes.iter().any(|prefix| starts_lowercased(name, prefix)))
            && (self.id_prefixes.is_empty() || self.id_prefixes.iter().any(|prefix| object.id().starts_with(prefix)))
            && self.labels.iter().all(|(key, value)| {
                let found = labels.and_then(|labels| labels.get(key));
                match value {
                    Some(value) => found == Some(value),
                    None => found.is_some(),
                }
            })
    }

    /// [`Selector::matches`], for an object of any kind.
    pub(crate) fn matches_object(&self, object: &Object) -> bool {
        match object {
            Object::Node(node) => self.matches(node.as_ref()),
            Object::Service(service) => self.matches(service.as_ref()),
            Object::Task(task) => self.matches(task.as_ref()),
            Object::Cluster(cluster) => self.matches(cluster.as_ref()),
            Object::Secret(secret) => self.matches(secret.as_ref()),
            Object::Config(config) => self.matches(config.as_ref()),
        }
    }
}

/// Whether `name`, lower-cased, is `lowercase`; without a copy of `name`.
fn equal_lowercased(name: &str, lowercase: &str) -> bool {
    name.chars().flat_map(char::to_lowercase).eq(lowercase.chars())
}

/// Whether `name`, lower-cased, starts with `lowercase`.
fn starts_lowercased(name: &str, lowercase: &str) -> bool {
    let mut name = name.chars().flat_map(char::to_lowercase);
    lowercase.chars().all(|wanted| name.next() == Some(wanted))
}

#[cfg(test)]
mod tests {
    use swarm_proto::v1::{Annotations, NodeDescription, NodeSpec};

    use super::*;

    fn node(hostname: &str, labels: &[(&str, &str)]) -> Node {
        let labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Node {
            id: swarm_store::id::generate(),
            spec: Some(NodeSpec {
                annotations: Some(Annotations {
                    name: String::new(),
                    labels,
                }),
                ..Default::default()
            }),
            description: Some(NodeDescription {
                hostname: hostname.to_string(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn filters_select_nodes_by_hostname_prefix_id_and_label() {
        let a = node("Web-1", &[("zone", "a")]);
        let b = node("db-1", &[("zone", "b"), ("ssd", "")]);
        let filters = |f: ListFilters| {
            let selector = Selector::new(&f);
            (selector.matches(&a), selector.matches(&b))
        };
        assert_eq!(filters(ListFilters::default()), (true, true));
        assert_eq!(
            filters(ListFilters {
                names: vec!["web-1".into()],
                ..Default::default()
            }),
            (true, false)
        );
        assert_eq!(
            filters(ListFilters {
                names: vec!["web".into()],
                ..Default::default()
            }),
            (false, false),
            "a name matches whole"
        );
        assert_eq!(
            filters(ListFilters {
                name_prefixes: vec!["DB".into()],
                ..Default::default()
            }),
            (false, true)
        );
        assert_eq!(
            filters(ListFilters {
                name_prefixes: vec!["db-1-".into()],
                ..Default::default()
            }),
            (false, false),
            "a prefix longer than the name"
        );
        let by_id = ListFilters {
            id_prefixes: vec![a.id[..6].to_string()],
            ..Default::default()
        };
        assert!(Selector::new(&by_id).matches_object(&Object::Node(std::sync::Arc::new(a.clone()))));
        assert_eq!(
            filters(ListFilters {
                labels: vec!["zone=b".into()],
                ..Default::default()
            }),
            (false, true)
        );
        assert_eq!(
            filters(ListFilters {
                labels: vec!["ssd".into()],
                ..Default::default()
            }),
            (false, true)
        );
        assert_eq!(
            filters(ListFilters {
                labels: vec!["ssd=".into()],
                ..Default::default()
            }),
            (false, true),
            "an empty value is a value"
        );
        assert_eq!(
            filters(ListFilters {
                labels: vec!["zone".into(), "ssd".into()],
                ..Default::default()
            }),
            (false, true)
        );
    }

    #[test]
    fn a_name_ending_in_sigma_matches_itself() {
        let node = node("ΟΔΟΣ", &[]);
        let names = ListFilters {
            names: vec!["ΟΔΟΣ".into()],
            name_prefixes: vec!["οδοσ".into()],
            ..Default::default()
        };
        assert!(Selector::new(&names).matches(&node));
    }

    #[test]
    fn names_compare_lowercased_beyond_ascii() {
        assert!(equal_lowercased("ÉTÉ", "été"));
        assert!(!equal_lowercased("été", "ét"));
        assert!(starts_lowercased("ÉTÉ-1", "été"));
        assert!(starts_lowercased("x", ""));
        assert!(!starts_lowercased("ét", "été"));
    }
}
