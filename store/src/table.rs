//! One table: the objects of one kind, with their indexes kept in step.
//!
//! All maps are persistent (`imbl`): cloning a table is a few reference
//! counts, and changing the clone copies only the paths it touches. That is
//! what makes a read transaction a cheap snapshot. Keys are numeric ids
//! ([`Id`]), so that copying a path copies bytes, not reference counts.

use std::ops::Bound;
use std::sync::Arc;

use imbl::{OrdMap, OrdSet};
use smallvec::SmallVec;

use crate::id::Id;
use crate::index::{By, IndexKey, KeyRef};
use crate::name::{NameKey, Probe, lower};
use crate::{Error, Result, StoreObject};

/// What a write passed its checks with: where it goes, and what it
/// replaces.
pub struct Checked<T> {
    /// The object's id, as a number.
    pub id: Id,
    /// The object stored there now, if any.
    pub old: Option<Arc<T>>,
}

/// Name and index entries gathered while a table is rebuilt.
#[derive(Default)]
pub struct Deferred {
    names: Vec<(NameKey, Id)>,
    index: Vec<(IndexKey, Id)>,
}

/// The objects of one kind and their indexes.
pub struct Table<T> {
    /// Every object, by id. Ordered, so that id prefixes are range scans.
    objects: OrdMap<Id, Arc<T>>,
    /// Lower-cased name to id; names are unique per kind. Objects with an
    /// empty name are not in it.
    names: OrdMap<NameKey, Id>,
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

/// An object's index keys: a handful, kept off the heap.
type Keys<'a> = SmallVec<[KeyRef<'a>; 8]>;

/// Every secondary index key of the object: its kind's own and its labels.
fn keys_of<T: StoreObject>(obj: &T) -> Keys<'_> {
    let mut keys = Keys::new();
    obj.own_index_keys(&mut keys);
    if let Some(annotations) = obj.annotations() {
        for (k, v) in &annotations.labels {
            keys.push(KeyRef::Label(k, v));
        }
    }
    keys
}

/// The object's id, or why it is not one.
fn parse_id<T: StoreObject>(obj: &T) -> Result<Id> {
    Id::parse(obj.id()).ok_or_else(|| {
        Error::Invalid(format!(
            "{} id {:?} is not an id (25 characters of 0-9 and a-z)",
            T::KIND,
            obj.id()
        ))
    })
}

impl<T: StoreObject> Table<T> {
    /// Number of objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// The object with this id.
    pub fn get(&self, id: &str) -> Option<&Arc<T>> {
        self.objects.get(&Id::parse(id)?)
    }

    /// The object with this id, and the id as a number.
    pub fn lookup(&self, id: &str) -> Option<(Id, &Arc<T>)> {
        let id = Id::parse(id)?;
        Some((id, self.objects.get(&id)?))
    }

    /// The object with this name, compared case-insensitively.
    pub fn get_by_name(&self, name: &str) -> Option<&Arc<T>> {
        let id = self.names.get(&Probe::new(&lower(name)))?;
        self.objects.get(id)
    }

    /// Every object, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<T>> {
        self.objects.values()
    }

    /// Refuses `obj` as a new object if its id is malformed or taken, or its
    /// name taken.
    pub fn check_create(&self, obj: &T) -> Result<Checked<T>> {
        let id = parse_id(obj)?;
        if self.objects.contains_key(&id) {
            return Err(Error::AlreadyExists {
                kind: T::KIND,
                id: obj.id().to_owned(),
            });
        }
        Self::check_fields(obj)?;
        self.check_name_free(obj, id)?;
        Ok(Checked { id, old: None })
    }

    /// Refuses `obj` as a new version of a stored object if that object is
    /// missing, has moved past the version `obj` carries, or if `obj` takes
    /// another object's name.
    pub fn check_update(&self, obj: &T) -> Result<Checked<T>> {
        let (id, current) = self.check_version(obj.id(), obj.version())?;
        Self::check_fields(obj)?;
        if name_of(current.as_ref()) != name_of(obj) {
            self.check_name_free(obj, id)?;
        }
        Ok(Checked {
            id,
            old: Some(current.clone()),
        })
    }

    /// The stored object `id`, if it is at `version`.
    pub fn check_version(&self, id: &str, version: u64) -> Result<(Id, &Arc<T>)> {
        let not_found = || Error::NotFound {
            kind: T::KIND,
            id: id.to_owned(),
        };
        let parsed = Id::parse(id).ok_or_else(not_found)?;
        let current = self.objects.get(&parsed).ok_or_else(not_found)?;
        if current.version() != version {
            return Err(Error::VersionConflict {
                kind: T::KIND,
                id: id.to_owned(),
                name: current
                    .annotations()
                    .map(|annotations| annotations.name.clone())
                    .unwrap_or_default(),
                given: version,
                current: current.version(),
            });
        }
        Ok((parsed, current))
    }

    /// Refuses an object whose references to other objects are not ids.
    fn check_fields(obj: &T) -> Result<()> {
        Self::check_keys(obj, &keys_of(obj))
    }

    /// Refuses `obj` if one of its index keys, `keys`, is malformed.
    fn check_keys(obj: &T, keys: &[KeyRef<'_>]) -> Result<()> {
        match keys.iter().find(|k| matches!(k, KeyRef::Malformed(..))) {
            Some(KeyRef::Malformed(field, value)) => Err(Error::Invalid(format!(
                "{} {}: {field} {value:?} is not an id",
                T::KIND,
                obj.id()
            ))),
            _ => Ok(()),
        }
    }

    fn check_name_free(&self, obj: &T, id: Id) -> Result<()> {
        let Some(name) = name_of(obj) else {
            return Ok(());
        };
        match self.names.get(&Probe::new(&lower(name))) {
            Some(owner) if *owner != id => Err(Error::NameConflict {
                kind: T::KIND,
                name: name.to_owned(),
                holder: self
                    .objects
                    .get(owner)
                    .and_then(|holder| name_of(holder.as_ref()))
                    .unwrap_or(name)
                    .to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// Stores `obj` where `at` says, keeping every index in step. `at` must
    /// come from checking `obj` against this table as it is now (nothing
    /// changed it in between): it names the id and the object replaced.
    pub fn insert(&mut self, at: &Checked<T>, obj: Arc<T>) {
        let (id, old) = (at.id, at.old.as_deref());
        let old_name = old.and_then(name_of);
        let new_name = name_of(obj.as_ref());
        if old_name != new_name {
            if let Some(name) = old_name {
                self.names.remove(&Probe::new(&lower(name)));
            }
            if let Some(name) = new_name {
                self.names.insert(NameKey::new(&lower(name)), id);
            }
        }

        let old_keys = old.map(keys_of).unwrap_or_default();
        let new_keys = keys_of(obj.as_ref());
        // Touch only the entries that changed: an update that moves a task
        // to a new state rewrites one index entry, not four.
        for key in &old_keys {
            if !new_keys.contains(key)
                && let Some(key) = key.to_key()
            {
                self.index.remove(&(key, id));
            }
        }
        for key in &new_keys {
            if !old_keys.contains(key)
                && let Some(key) = key.to_key()
            {
                self.index.insert((key, id));
            }
        }
        drop(new_keys);
        self.objects.insert(id, obj);
    }

    /// Adds an object to a table being rebuilt from a snapshot. Its name
    /// and index entries are only gathered in `deferred`: inserted at the
    /// end, sorted, they go in far faster than one by one in random order.
    /// On error the table is half-built and must be discarded.
    pub fn insert_deferred(&mut self, obj: Arc<T>, deferred: &mut Deferred) -> Result<()> {
        let id = parse_id(obj.as_ref())?;
        let keys = keys_of(obj.as_ref());
        Self::check_keys(obj.as_ref(), &keys)?;
        if let Some(name) = name_of(obj.as_ref()) {
            deferred.names.push((NameKey::new(&lower(name)), id));
        }
        deferred
            .index
            .extend(keys.into_iter().filter_map(KeyRef::to_key).map(|key| (key, id)));
        if self.objects.insert(id, obj).is_some() {
            return Err(Error::AlreadyExists {
                kind: T::KIND,
                id: id.to_string(),
            });
        }
        Ok(())
    }

    /// Inserts what [`Table::insert_deferred`] gathered.
    ///
    /// # Errors
    ///
    /// [`Error::NameConflict`] if two objects had one name.
    pub fn finish_deferred(&mut self, deferred: Deferred) -> Result<()> {
        let Deferred { mut names, mut index } = deferred;
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            // The names as the objects spell them (the keys are lower-case).
            let spelled = |(key, id): &(NameKey, Id)| {
                self.objects
                    .get(id)
                    .and_then(|object| name_of(object.as_ref()))
                    .unwrap_or(key.name())
                    .to_owned()
            };
            return Err(Error::NameConflict {
                kind: T::KIND,
                name: spelled(&pair[1]),
                holder: spelled(&pair[0]),
            });
        }
        for (name, id) in names {
            self.names.insert(name, id);
        }
        index.sort_unstable();
        for entry in index {
            self.index.insert(entry);
        }
        Ok(())
    }

    /// Removes the object `id` and its index entries; returns it, and its
    /// id as a number.
    pub fn remove(&mut self, id: &str) -> Option<(Id, Arc<T>)> {
        let id = Id::parse(id)?;
        let old = self.objects.remove(&id)?;
        if let Some(name) = name_of(old.as_ref()) {
            self.names.remove(&Probe::new(&lower(name)));
        }
        for key in keys_of(old.as_ref()).into_iter().filter_map(KeyRef::to_key) {
            self.index.remove(&(key, id));
        }
        Some((id, old))
    }

    /// Sets the version of the stored object `id`, which this table alone
    /// must hold for that to copy nothing; returns it.
    pub fn stamp(&mut self, id: Id, version: u64) -> Option<Arc<T>> {
        let obj = self.objects.get_mut(&id)?;
        Arc::make_mut(obj).meta_mut().version = version;
        Some(obj.clone())
    }

    /// The objects `by` selects, in id order (name order for name
    /// selectors, key order for index selectors).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] if this kind has no index for the selector, such as
    /// tasks by role.
    pub fn find(&self, by: By<'_>) -> Result<Vec<&Arc<T>>> {
        match by {
            By::All => Ok(self.objects.values().collect()),
            By::IdPrefix(prefix) => Ok(match Id::prefix_range(prefix) {
                Some((low, high)) => self.objects.range(low..=high).map(|(_, o)| o).collect(),
                None => Vec::new(),
            }),
            By::Name(name) => Ok(self.get_by_name(name).into_iter().collect()),
            By::NamePrefix(prefix) => {
                let prefix = lower(prefix);
                Ok(self
                    .names
                    .range::<_, Probe<'_>>((Bound::Included(&Probe::new(&prefix)), Bound::Unbounded))
                    .take_while(|(name, _)| name.name().starts_with(&*prefix))
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
                let Some(start) = range.start else {
                    return Ok(Vec::new());
                };
                let start = (start, Id::MIN);
                Ok(self
                    .index
                    .range::<_, (IndexKey, Id)>((Bound::Included(&start), Bound::Unbounded))
                    .take_while(|(key, _)| (range.within)(key))
                    .filter_map(|(_, id)| self.objects.get(id))
                    .collect())
            }
        }
    }

    /// Rebuilds every index from the objects and compares.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] naming the index that differs.
    pub fn verify_indexes(&self) -> Result<()> {
        let mut rebuilt = Table::<T>::default();
        for obj in self.objects.values() {
            let at = rebuilt.check_create(obj)?;
            rebuilt.insert(&at, obj.clone());
        }
        let differs = |index: &str| {
            Err(Error::Invalid(format!(
                "the {} {index} differs from the table",
                T::KIND
            )))
        };
        if rebuilt.names != self.names {
            return differs("name index");
        }
        if rebuilt.index != self.index {
            return differs("secondary index");
        }
        Ok(())
    }
}
