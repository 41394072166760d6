//! One table: the objects of one kind, with their indexes kept in step.
//!
//! All maps are persistent (`imbl`): cloning a table is a few reference
//! counts, and changing the clone copies only the paths it touches. That is
//! what makes a read transaction a cheap snapshot.

use std::ops::Bound;
use std::sync::{Arc, LazyLock};

use imbl::{OrdMap, OrdSet};

use crate::index::{By, Id, IndexKey, KeyRef};
use crate::{Error, Result, StoreObject};

/// The smallest id, as the lower bound of index range scans.
static MIN_ID: LazyLock<Id> = LazyLock::new(|| Arc::from(""));

/// The objects of one kind and their indexes.
pub struct Table<T> {
    /// Every object, by id. Ordered, so that id prefixes are range scans.
    objects: OrdMap<Id, Arc<T>>,
    /// Lower-cased name to id; names are unique per kind. Objects with an
    /// empty name are not in it.
    names: OrdMap<Arc<str>, Id>,
    /// All secondary indexes, as `(key, id)` pairs.
    index: OrdSet<(IndexKey, Id)>,
}

impl<T> Clone for Table<T> {
    fn clone(&self) -> Self {
        Table {
            objects: self.objects.clone(),
            names: self.names.clone(),
            index: self.index.clone(),
        }
    }
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            objects: OrdMap::new(),
            names: OrdMap::new(),
            index: OrdSet::new(),
        }
    }
}

/// The object's name, if it has a non-empty one.
fn name_of<T: StoreObject>(obj: &T) -> Option<&str> {
    obj.annotations().map(|a| a.name.as_str()).filter(|n| !n.is_empty())
}

/// Every secondary index key of the object: its kind's own and its labels.
fn keys_of<T: StoreObject>(obj: &T) -> Vec<KeyRef<'_>> {
    let mut keys = Vec::new();
    obj.own_index_keys(&mut keys);
    if let Some(annotations) = obj.annotations() {
        for (k, v) in &annotations.labels {
            keys.push(KeyRef::Label(k, v));
        }
    }
    keys
}

fn same_name(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a == b || a.to_lowercase() == b.to_lowercase(),
        _ => false,
    }
}

impl<T: StoreObject> Table<T> {
    /// Number of objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// The object with this id.
    pub fn get(&self, id: &str) -> Option<&Arc<T>> {
        self.objects.get(id)
    }

    /// The object with this name, compared case-insensitively.
    pub fn get_by_name(&self, name: &str) -> Option<&Arc<T>> {
        let id = self.names.get(name.to_lowercase().as_str())?;
        self.objects.get(id)
    }

    /// Every object, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<T>> {
        self.objects.values()
    }

    /// Refuses `obj` as a new object if its id or name is taken.
    pub fn check_create(&self, obj: &T) -> Result<()> {
        if obj.id().is_empty() {
            return Err(Error::Invalid(format!("a new {} needs an id", T::KIND)));
        }
        if self.objects.contains_key(obj.id()) {
            return Err(Error::AlreadyExists {
                kind: T::KIND,
                id: obj.id().to_owned(),
            });
        }
        self.check_name_free(obj)
    }

    /// Refuses `obj` as a new version of a stored object if that object is
    /// missing, has moved past the version `obj` carries, or if `obj` takes
    /// another object's name. Returns the stored version.
    pub fn check_update(&self, obj: &T) -> Result<&Arc<T>> {
        let current = self.check_version(obj.id(), obj.version())?;
        if !same_name(name_of(current.as_ref()), name_of(obj)) {
            self.check_name_free(obj)?;
        }
        Ok(current)
    }

    /// The stored object `id`, if it is at `version`.
    pub fn check_version(&self, id: &str, version: u64) -> Result<&Arc<T>> {
        let current = self.get(id).ok_or_else(|| Error::NotFound {
            kind: T::KIND,
            id: id.to_owned(),
        })?;
        if current.version() != version {
            return Err(Error::VersionConflict {
                kind: T::KIND,
                id: id.to_owned(),
                given: version,
                current: current.version(),
            });
        }
        Ok(current)
    }

    fn check_name_free(&self, obj: &T) -> Result<()> {
        let Some(name) = name_of(obj) else {
            return Ok(());
        };
        match self.names.get(name.to_lowercase().as_str()) {
            Some(owner) if owner.as_ref() != obj.id() => Err(Error::NameConflict {
                kind: T::KIND,
                name: name.to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// Inserts or replaces `obj`, keeping every index in step. Checks
    /// nothing: callers run [`Table::check_create`] or
    /// [`Table::check_update`] first.
    pub fn insert(&mut self, obj: Arc<T>) {
        let old = self
            .objects
            .get_key_value(obj.id())
            .map(|(id, o)| (id.clone(), o.clone()));
        let id: Id = match &old {
            Some((id, _)) => id.clone(),
            None => Arc::from(obj.id()),
        };
        let old_obj = old.map(|(_, o)| o);

        let old_name = old_obj.as_deref().and_then(name_of);
        let new_name = name_of(obj.as_ref());
        if old_name != new_name {
            if let Some(name) = old_name {
                self.names.remove(name.to_lowercase().as_str());
            }
            if let Some(name) = new_name {
                self.names.insert(name.to_lowercase().into(), id.clone());
            }
        }

        let old_keys = old_obj.as_deref().map(keys_of).unwrap_or_default();
        let new_keys = keys_of(obj.as_ref());
        // Touch only the entries that changed: an update that moves a task
        // to a new state rewrites one index entry, not five.
        for key in &old_keys {
            if !new_keys.contains(key) {
                self.index.remove(&(key.to_key(), id.clone()));
            }
        }
        for key in &new_keys {
            if !old_keys.contains(key) {
                let key = self.shared_key(key.to_key());
                self.index.insert((key, id.clone()));
            }
        }
        drop(new_keys);
        self.objects.insert(id, obj);
    }

    /// Removes the object `id` and its index entries.
    pub fn remove(&mut self, id: &str) -> Option<Arc<T>> {
        let (id, old) = self.objects.remove_with_key(id)?;
        if let Some(name) = name_of(old.as_ref()) {
            self.names.remove(name.to_lowercase().as_str());
        }
        for key in keys_of(old.as_ref()) {
            self.index.remove(&(key.to_key(), id.clone()));
        }
        Some(old)
    }

    /// The objects `by` selects, in id order (name order for name
    /// selectors).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] if this kind has no index for the selector, such as
    /// tasks by role.
    pub fn find(&self, by: By<'_>) -> Result<Vec<&Arc<T>>> {
        match by {
            By::All => Ok(self.objects.values().collect()),
            By::IdPrefix(prefix) => Ok(self
                .objects
                .range::<_, str>((Bound::Included(prefix), Bound::Unbounded))
                .take_while(|(id, _)| id.starts_with(prefix))
                .map(|(_, o)| o)
                .collect()),
            By::Name(name) => Ok(self.get_by_name(name).into_iter().collect()),
            By::NamePrefix(prefix) => {
                let prefix = prefix.to_lowercase();
                Ok(self
                    .names
                    .range::<_, str>((Bound::Included(prefix.as_str()), Bound::Unbounded))
                    .take_while(|(name, _)| name.starts_with(prefix.as_str()))
                    .filter_map(|(_, id)| self.objects.get(id))
                    .collect())
            }
            _ => {
                let Some(range) = by.key_range() else {
                    unreachable!("selectors without an index key are matched above")
                };
                if let Some(index) = range.index
                    && !T::INDEXES.contains(&index)
                {
                    return Err(Error::Invalid(format!("{}s cannot be found by {index:?}", T::KIND)));
                }
                Ok(self.scan(&range.start, range.within).map(|(_, o)| o).collect())
            }
        }
    }

    /// The index entries from `start` on while `within` holds, with their
    /// objects.
    fn scan<'t>(
        &'t self,
        start: &IndexKey,
        within: Box<dyn Fn(&IndexKey) -> bool>,
    ) -> impl Iterator<Item = (&'t IndexKey, &'t Arc<T>)> {
        let start = (start.clone(), MIN_ID.clone());
        self.index
            .range::<_, (IndexKey, Id)>((Bound::Included(&start), Bound::Unbounded))
            .take_while(move |(k, _)| within(k))
            .filter_map(|(k, id)| Some((k, self.objects.get(id)?)))
    }

    /// `key`, holding the string of an equal-string key already indexed if
    /// there is one: the 100 tasks of a service share one copy of its id.
    fn shared_key(&self, key: IndexKey) -> IndexKey {
        let Some(string) = key.string() else {
            return key;
        };
        let probe = (key.first_with_same_string(), MIN_ID.clone());
        let neighbour = self
            .index
            .range::<_, (IndexKey, Id)>((Bound::Included(&probe), Bound::Unbounded))
            .next()
            .and_then(|(k, _)| k.string())
            .filter(|s| *s == string)
            .cloned();
        match neighbour {
            Some(shared) => key.with_string(shared),
            None => key,
        }
    }

    /// Rebuilds every index from the objects and compares: for tests.
    #[cfg(test)]
    pub fn check_indexes(&self) -> std::result::Result<(), String> {
        let mut rebuilt = Table::<T>::default();
        for obj in self.objects.values() {
            rebuilt.insert(obj.clone());
        }
        if rebuilt.names != self.names {
            return Err(format!("{} name index differs from its objects", T::KIND));
        }
        if rebuilt.index != self.index {
            return Err(format!("{} secondary index differs from its objects", T::KIND));
        }
        Ok(())
    }
}
