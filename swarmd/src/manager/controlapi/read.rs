//! Get and list, the same for every kind of object.

use std::sync::Arc;

use swarm_proto::v1::ListFilters;
use swarm_store::{By, MemoryStore, Read as _, StoreObject};

use crate::error::{Error, Result};
use crate::manager::selector::{FilterName, Selector};

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
    let selector = filters.map(Selector::new);
    let read = store.read();
    // Candidates come from the narrowest index the request allows: names,
    // then ID prefixes (how a client resolves a reference: a scan of
    // every service before), then name prefixes, then the caller's
    // selectors, else the whole table. Every filter is then checked on
    // each candidate.
    let selectors: Vec<By<'_>> = match filters {
        Some(filters) if T::INDEXED && !filters.names.is_empty() => {
            filters.names.iter().map(|name| By::Name(name)).collect()
        }
        Some(filters) if !filters.id_prefixes.is_empty() => {
            filters.id_prefixes.iter().map(|prefix| By::IdPrefix(prefix)).collect()
        }
        Some(filters) if T::INDEXED && !filters.name_prefixes.is_empty() => filters
            .name_prefixes
            .iter()
            .map(|prefix| By::NamePrefix(prefix))
            .collect(),
        _ => indexed.to_vec(),
    };
    let candidates: Vec<&Arc<T>> = if selectors.is_empty() {
        read.list::<T>()
    } else {
        let mut found = Vec::new();
        for by in selectors {
            found.extend(read.find::<T>(by)?);
        }
        // Index selectors give key order (tasks of a service by slot).
        found.sort_by(|a, b| a.id().cmp(b.id()));
        found.dedup_by(|a, b| a.id() == b.id());
        found
    };
    Ok(candidates
        .into_iter()
        .filter(|object| {
            selector
                .as_ref()
                .is_none_or(|selector| selector.matches(object.as_ref()))
                && keep(object)
        })
        .map(|object: &Arc<T>| T::clone(object))
        .collect())
}
