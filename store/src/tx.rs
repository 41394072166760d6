//! Transactions: [`ReadTx`] sees one consistent state; [`WriteTx`] changes a
//! private copy of it and records what it changed.

use std::sync::Arc;
use std::time::SystemTime;

use swarm_proto::v1::StoreAction;

use crate::id::Id;
use crate::index::By;
use crate::state::State;
use crate::watch::Action;
use crate::{Error, Kind, Object, Result, StoreObject};

/// Reads, shared by read and write transactions.
pub trait Read {
    #[doc(hidden)]
    fn state(&self) -> &State;

    /// The object of kind `T` with this id.
    fn get<T: StoreObject>(&self, id: &str) -> Option<&Arc<T>> {
        T::table(self.state()).get(id)
    }

    /// The object of kind `T` with this name, compared case-insensitively.
    fn get_by_name<T: StoreObject>(&self, name: &str) -> Option<&Arc<T>> {
        T::table(self.state()).get_by_name(name)
    }

    /// The objects of kind `T` that `by` selects.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] if kind `T` has no index for the selector.
    fn find<T: StoreObject>(&self, by: By<'_>) -> Result<Vec<&Arc<T>>> {
        T::table(self.state()).find(by)
    }

    /// Every object of kind `T`, in id order.
    fn list<T: StoreObject>(&self) -> Vec<&Arc<T>> {
        T::table(self.state()).iter().collect()
    }

    /// Number of objects of kind `T`.
    fn count<T: StoreObject>(&self) -> usize {
        T::table(self.state()).len()
    }

    /// Raft index of the last transaction this state includes.
    fn index(&self) -> u64 {
        self.state().index
    }
}

/// A consistent snapshot of the store. Holding one blocks nobody.
#[derive(Clone)]
pub struct ReadTx {
    pub(crate) state: Arc<State>,
}

impl Read for ReadTx {
    fn state(&self) -> &State {
        &self.state
    }
}

/// One change a write transaction made, collapsed per object.
#[derive(Clone)]
struct Pending {
    /// `None` once a create was undone by a remove in the same transaction.
    action: Option<Action>,
    object: Object,
}

/// What [`WriteTx::checkpoint`] saves; cheap, as every part is persistent.
#[derive(Clone)]
pub(crate) struct Checkpoint {
    state: State,
    changes: imbl::Vector<Pending>,
    touched: imbl::HashMap<(Kind, Id), usize>,
    /// Encoded size of the changes, summed only when `track_size` is set.
    size: usize,
}

/// A write transaction: reads see its own writes; nothing is visible to
/// anyone else until the store commits it as one proposal.
pub struct WriteTx {
    /// Sum the encoded size of changes (batches bound proposals by it).
    pub(crate) track_size: bool,
    /// The state the transaction started from. If it is still the current
    /// one at commit, the transaction's own state is the next one: nothing
    /// needs checking or applying again.
    base: Arc<State>,
    cp: Checkpoint,
    now: prost_types::Timestamp,
}

impl Read for WriteTx {
    fn state(&self) -> &State {
        &self.cp.state
    }
}

impl WriteTx {
    pub(crate) fn new(base: Arc<State>) -> WriteTx {
        WriteTx {
            cp: Checkpoint {
                state: (*base).clone(),
                changes: imbl::Vector::new(),
                touched: imbl::HashMap::new(),
                size: 0,
            },
            now: SystemTime::now().into(),
            base,
            track_size: false,
        }
    }

    /// Stores a new object. Its `meta` is set here: version 0 until the
    /// commit gives it one, created and updated now.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for a malformed id or an id removed earlier in this
    /// transaction, [`Error::AlreadyExists`] for a taken id,
    /// [`Error::NameConflict`] for a taken name.
    pub fn create<T: StoreObject>(&mut self, mut obj: T) -> Result<()> {
        T::table(&self.cp.state).check_create(&obj)?;
        let removed_here = |i: &usize| self.cp.changes[*i].action == Some(Action::Remove);
        let id = Id::parse(obj.id());
        if id
            .and_then(|id| self.cp.touched.get(&(T::KIND, id)))
            .is_some_and(removed_here)
        {
            return Err(Error::Invalid(format!(
                "{} {} was removed earlier in this transaction; a new object needs a new id",
                T::KIND,
                obj.id()
            )));
        }
        obj.share_parts(&self.cp.state);
        let meta = obj.meta_mut();
        meta.version = 0;
        meta.created_at = Some(self.now);
        meta.updated_at = Some(self.now);
        let obj = Arc::new(obj);
        T::table_mut(&mut self.cp.state).insert(obj.clone());
        self.record(Action::Create, T::into_object(obj));
        Ok(())
    }

    /// Replaces a stored object with `obj`, which must carry the version it
    /// was read at.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::VersionConflict`] if the object moved
    /// on, [`Error::NameConflict`] if `obj` takes another object's name.
    pub fn update<T: StoreObject>(&mut self, mut obj: T) -> Result<()> {
        let current = T::table(&self.cp.state).check_update(&obj)?;
        let created_at = current.meta().and_then(|m| m.created_at);
        obj.share_parts(&self.cp.state);
        let meta = obj.meta_mut();
        meta.created_at = created_at;
        meta.updated_at = Some(self.now);
        let obj = Arc::new(obj);
        T::table_mut(&mut self.cp.state).insert(obj.clone());
        self.record(Action::Update, T::into_object(obj));
        Ok(())
    }

    /// Removes the object of kind `T` with this id.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`].
    pub fn delete<T: StoreObject>(&mut self, id: &str) -> Result<()> {
        let table = T::table_mut(&mut self.cp.state);
        let old = table.remove(id).ok_or_else(|| Error::NotFound {
            kind: T::KIND,
            id: id.to_owned(),
        })?;
        self.record(Action::Remove, T::into_object(old));
        Ok(())
    }

    /// Notes a change, folding it into an earlier change of the same object:
    /// a proposal carries each object once, in its final form.
    fn record(&mut self, action: Action, object: Object) {
        if self.track_size {
            self.cp.size += object.encoded_len();
        }
        let Some(id) = Id::parse(object.id()) else {
            unreachable!("only checked objects are recorded");
        };
        let key = (object.kind(), id);
        let Some(&i) = self.cp.touched.get(&key) else {
            self.cp.touched.insert(key, self.cp.changes.len());
            self.cp.changes.push_back(Pending {
                action: Some(action),
                object,
            });
            return;
        };
        let pending = &mut self.cp.changes[i];
        pending.action = match (pending.action, action) {
            // Created here and gone again: nothing to propose.
            (Some(Action::Create), Action::Remove) => None,
            // Still new to everyone else.
            (Some(Action::Create), Action::Update) => Some(Action::Create),
            (_, action) => Some(action),
        };
        pending.object = object;
    }

    /// Number of objects this transaction changed so far.
    pub fn len(&self) -> usize {
        self.cp.changes.iter().filter(|p| p.action.is_some()).count()
    }

    /// True if the transaction changed nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Approximate encoded size of the changes, to bound proposals.
    pub(crate) fn size(&self) -> usize {
        self.cp.size
    }

    pub(crate) fn checkpoint(&self) -> Checkpoint {
        self.cp.clone()
    }

    pub(crate) fn rollback(&mut self, checkpoint: Checkpoint) {
        self.cp = checkpoint;
    }

    /// The state the transaction started from, its own state, and its
    /// changes in the order first made.
    pub(crate) fn into_parts(self) -> (Arc<State>, State, Vec<(Action, Object)>) {
        let Checkpoint { state, changes, .. } = self.cp;
        let changes = changes
            .into_iter()
            .filter_map(|p| Some((p.action?, p.object)))
            .collect();
        (self.base, state, changes)
    }
}

/// A change as a store action, the form a Raft entry carries.
pub(crate) fn to_store_action(action: Action, object: Object) -> StoreAction {
    StoreAction {
        kind: action.to_proto() as i32,
        target: Some(object.into_target()),
    }
}
