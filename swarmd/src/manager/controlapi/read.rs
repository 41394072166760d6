//! Get and list, the same for every kind of object.

use std::sync::Arc;

use swarm_proto::v1::{Cluster, Config, ListFilters, Node, Secret, Service, Task};
use swarm_store::{By, MemoryStore, Read as _, StoreObject};

use crate::error::{Error, Result};

/// The object of kind `T` with id `id`; `field` names the request field in
/// errors (for example `service_id`).
pub(crate) fn get<T: StoreObject + Clone>(store: &MemoryStore, field: &str, id: &str) -> Result<T> {
    if id.is_empty() {
        return Err(Error::InvalidArgument(format!("{field} is required")));
    }
    store
        .read()
        .get::<T>(id)
        .map(|object| T::clone(object))
        .ok_or_else(|| Error::NotFound(format!("{} {id} not found", T::KIND)))
}

/// The name that the `names` and `name_prefixes` filters of a list match.
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

/// Nodes are listed by hostname, as SwarmKit's controlapi does: a node's
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

/// The objects of kind `T` that `filters` and `keep` select, in id order.
/// `indexed` are store index selectors of which an object must match at
/// least one (a request's service IDs, say), or none to read every object;
/// `keep` must check them too where `filters` names do the narrowing.
pub(crate) fn list<T: StoreObject + FilterName + Clone>(
    store: &MemoryStore,
    filters: Option<&ListFilters>,
    indexed: &[By<'_>],
    keep: impl Fn(&T) -> bool,
) -> Result<Vec<T>> {
    let read = store.read();
    // Candidates come from the narrowest index the request allows: the
    // name index, then the caller's selectors, else the whole table. Every
    // filter is then checked on each candidate.
    let by_name = filters.filter(|filters| T::INDEXED && !filters.names.is_empty());
    let mut candidates: Vec<&Arc<T>> = if let Some(filters) = by_name {
        filters
            .names
            .iter()
            .filter_map(|name| read.get_by_name::<T>(name))
            .collect()
    } else if !indexed.is_empty() {
        let mut found = Vec::new();
        for &by in indexed {
            found.extend(read.find::<T>(by)?);
        }
        found
    } else {
        read.list::<T>()
    };
    if by_name.is_some() || !indexed.is_empty() {
        // Index selectors give key order (tasks of a service by slot).
        candidates.sort_by(|a, b| a.id().cmp(b.id()));
        candidates.dedup_by(|a, b| a.id() == b.id());
    }
    Ok(candidates
        .into_iter()
        .filter(|object| filters.is_none_or(|filters| matches(filters, object.as_ref())) && keep(object))
        .map(|object: &Arc<T>| T::clone(object))
        .collect())
}

/// Whether `object` passes every filter that is set: any of the names
/// (case-insensitive), any of the name prefixes, any of the id prefixes,
/// and all of the labels (`key` or `key=value`).
fn matches<T: StoreObject + FilterName>(filters: &ListFilters, object: &T) -> bool {
    let annotations = object.annotations();
    let name = object.filter_name().to_lowercase();
    let any_or_none = |list: &[String], test: &dyn Fn(&str) -> bool| list.is_empty() || list.iter().any(|v| test(v));
    any_or_none(&filters.names, &|wanted| name == wanted.to_lowercase())
        && any_or_none(&filters.name_prefixes, &|prefix| {
            name.starts_with(&prefix.to_lowercase())
        })
        && any_or_none(&filters.id_prefixes, &|prefix| object.id().starts_with(prefix))
        && filters.labels.iter().all(|label| {
            let labels = annotations.map(|annotations| &annotations.labels);
            match label.split_once('=') {
                Some((key, value)) => labels
                    .and_then(|labels| labels.get(key))
                    .is_some_and(|found| found == value),
                None => labels.is_some_and(|labels| labels.contains_key(label.as_str())),
            }
        })
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
        let filters = |f: ListFilters| (matches(&f, &a), matches(&f, &b));
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
                name_prefixes: vec!["DB".into()],
                ..Default::default()
            }),
            (false, true)
        );
        let by_id = ListFilters {
            id_prefixes: vec![a.id[..6].to_string()],
            ..Default::default()
        };
        assert!(matches(&by_id, &a));
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
                labels: vec!["zone".into(), "ssd".into()],
                ..Default::default()
            }),
            (false, true)
        );
    }
}
