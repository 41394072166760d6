//! Transactions: [`ReadTx`] sees one consistent state; [`WriteTx`] changes a
//! private copy of it and records what it changed.

use std::cell::OnceCell;
use std::sync::Arc;
use std::time::SystemTime;

use swarm_proto::v1::StoreAction;

use rustc_hash::FxHashMap;

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

    /// The object of kind `T` with this id, if it is still at `version`:
    /// the check an update makes, for a writer that may find nothing to
    /// write.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], or [`Error::VersionConflict`] if the object
    /// moved on.
    fn check_version<T: StoreObject>(&self, id: &str, version: u64) -> Result<&Arc<T>> {
        T::table(self.state())
            .check_version(id, version)
            .map(|(_, object)| object)
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
pub(crate) struct Pending {
    /// `None` once a create was undone by a remove in the same transaction.
    pub(crate) action: Option<Action>,
    /// The object's id, as a number.
    pub(crate) id: Id,
    /// The object as the transaction leaves it (for a remove: as removed).
    pub(crate) object: Object,
    /// The object as it was before the transaction, if it existed.
    pub(crate) old: Option<Object>,
}

/// The changes of a transaction, one per object, in the order first made.
#[derive(Default)]
struct Changes {
    list: Vec<Pending>,
    /// Where each object's change sits in `list`.
    by_object: FxHashMap<(Kind, Id), usize>,
    /// While a [`Checkpoint`] is held: how to undo each record since.
    undo: Option<Vec<Undo>>,
    /// Encoded size of the changes, summed only in batches.
    size: Option<usize>,
}

/// How to undo one record of a change.
enum Undo {
    /// A change was appended to the list.
    Added,
    /// The change at this place was folded into; this is what it was.
    Replaced(usize, Pending),
}

/// What [`WriteTx::checkpoint`] saves: the private state if built (a cheap
/// persistent clone) and a mark in the undo log.
pub(crate) struct Checkpoint {
    own: Option<State>,
    undo_len: usize,
    size: Option<usize>,
}

/// A write transaction: reads see its own writes; nothing is visible to
/// anyone else until the store commits it as one proposal.
pub struct WriteTx {
    /// The state the transaction started from. If it is still the current
    /// one at commit, the transaction's own state is the next one: nothing
    /// needs checking or applying again.
    base: Arc<State>,
    /// The transaction's own state: the base with its changes applied. It is
    /// built only once a second write or a read after a write needs it: the
    /// first write is checked against the base and only recorded. So the
    /// common transaction, one create or update committed through a
    /// proposer, never copies an index: the committed entry is applied to
    /// the shared state anyway.
    own: OnceCell<State>,
    changes: Changes,
    now: prost_types::Timestamp,
}

impl Read for WriteTx {
    fn state(&self) -> &State {
        if self.unwritten() { &self.base } else { self.own() }
    }
}

impl WriteTx {
    pub(crate) fn new(base: Arc<State>) -> WriteTx {
        WriteTx {
            own: OnceCell::new(),
            changes: Changes::default(),
            now: SystemTime::now().into(),
            base,
        }
    }

    /// True while the transaction has written nothing and built no state
    /// of its own: it reads, and checks its first write, on the base.
    fn unwritten(&self) -> bool {
        self.own.get().is_none() && self.changes.list.is_empty()
    }

    /// The transaction's own state, built from the base and the change
    /// recorded so far if it was not yet.
    fn own(&self) -> &State {
        self.own.get_or_init(|| replayed(&self.base, &self.changes.list))
    }

    /// The state a write goes to: none for the transaction's first write
    /// (checked against the base, then only recorded), its own state for
    /// every later one.
    fn writable(&mut self) -> Option<&mut State> {
        if self.unwritten() {
            return None;
        }
        self.own();
        self.own.get_mut()
    }

    /// Sum the encoded size of changes from now on: batches bound their
    /// proposals by it.
    pub(crate) fn track_size(&mut self) {
        self.changes.size.get_or_insert(0);
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
        let at = T::table(self.state()).check_create(&obj)?;
        let removed_here = |&i: &usize| self.changes.list[i].action == Some(Action::Remove);
        if self.changes.by_object.get(&(T::KIND, at.id)).is_some_and(removed_here) {
            return Err(Error::Invalid(format!(
                "{} {} was removed earlier in this transaction; a new object needs a new id",
                T::KIND,
                obj.id()
            )));
        }
        obj.share_parts(self.state());
        let meta = obj.meta_mut();
        meta.version = 0;
        meta.created_at = Some(self.now);
        meta.updated_at = Some(self.now);
        let obj = Arc::new(obj);
        if let Some(own) = self.writable() {
            T::table_mut(own).insert(&at, obj.clone());
        }
        self.record(Action::Create, at.id, T::into_object(obj), None);
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
        let at = T::table(self.state()).check_update(&obj)?;
        let created_at = at.old.as_ref().and_then(|o| o.meta()?.created_at);
        obj.share_parts(self.state());
        let meta = obj.meta_mut();
        meta.created_at = created_at;
        meta.updated_at = Some(self.now);
        let obj = Arc::new(obj);
        if let Some(own) = self.writable() {
            T::table_mut(own).insert(&at, obj.clone());
        }
        self.record(Action::Update, at.id, T::into_object(obj), at.old.map(T::into_object));
        Ok(())
    }

    /// Removes the object of kind `T` with this id.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`].
    pub fn delete<T: StoreObject>(&mut self, id: &str) -> Result<()> {
        let removed = match self.writable() {
            Some(own) => T::table_mut(own).remove(id),
            None => T::table(&self.base).lookup(id).map(|(id, old)| (id, old.clone())),
        };
        let (id, old) = removed.ok_or_else(|| Error::NotFound {
            kind: T::KIND,
            id: id.to_owned(),
        })?;
        let old = T::into_object(old);
        self.record(Action::Remove, id, old.clone(), Some(old));
        Ok(())
    }

    /// Notes a change, folding it into an earlier change of the same object:
    /// a proposal carries each object once, in its final form.
    fn record(&mut self, action: Action, id: Id, object: Object, old: Option<Object>) {
        let changes = &mut self.changes;
        if let Some(size) = &mut changes.size {
            *size += object.encoded_len();
        }
        let Some(&i) = changes.by_object.get(&(object.kind(), id)) else {
            changes.by_object.insert((object.kind(), id), changes.list.len());
            changes.list.push(Pending {
                action: Some(action),
                id,
                object,
                old,
            });
            if let Some(undo) = &mut changes.undo {
                undo.push(Undo::Added);
            }
            return;
        };
        let pending = &mut changes.list[i];
        if let Some(undo) = &mut changes.undo {
            undo.push(Undo::Replaced(i, pending.clone()));
        }
        pending.action = match (pending.action, action) {
            // Created here and gone again: nothing to propose.
            (Some(Action::Create), Action::Remove) => None,
            // Still new to everyone else.
            (Some(Action::Create), Action::Update) => Some(Action::Create),
            (_, action) => Some(action),
        };
        pending.object = object;
    }

    /// The object of kind `T` with `id` as this transaction created or
    /// updated it: what the store holds once the transaction commits, but
    /// for its version, which is the commit's index. `None` if the
    /// transaction has not written it, or removed it. Unlike
    /// [`get`](crate::Read::get) after a write, it never builds the transaction's
    /// own state.
    pub fn written<T: StoreObject>(&self, id: &str) -> Option<T> {
        let &i = self.changes.by_object.get(&(T::KIND, Id::parse(id)?))?;
        let pending = &self.changes.list[i];
        match pending.action {
            Some(Action::Create | Action::Update) => pending.object.downcast::<T>().map(|object| T::clone(object)),
            _ => None,
        }
    }

    /// Number of objects this transaction changed so far.
    pub fn len(&self) -> usize {
        self.changes.list.iter().filter(|p| p.action.is_some()).count()
    }

    /// True if the transaction changed nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Approximate encoded size of the changes, if tracked.
    pub(crate) fn size(&self) -> usize {
        self.changes.size.unwrap_or(0)
    }

    /// Saves the transaction as it is, to roll back to.
    pub(crate) fn checkpoint(&mut self) -> Checkpoint {
        let undo = self.changes.undo.get_or_insert_with(Vec::new);
        Checkpoint {
            own: self.own.get().cloned(),
            undo_len: undo.len(),
            size: self.changes.size,
        }
    }

    /// Undoes every change since `checkpoint`.
    pub(crate) fn rollback(&mut self, checkpoint: Checkpoint) {
        let changes = &mut self.changes;
        let undo = changes.undo.get_or_insert_with(Vec::new);
        while undo.len() > checkpoint.undo_len {
            match undo.pop() {
                Some(Undo::Added) => {
                    if let Some(p) = changes.list.pop() {
                        changes.by_object.remove(&(p.object.kind(), p.id));
                    }
                }
                Some(Undo::Replaced(i, pending)) => changes.list[i] = pending,
                None => break,
            }
        }
        changes.size = checkpoint.size;
        // Without an own state the checkpoint held at most one change, as
        // the list does again now: the base and that change still tell it.
        self.own = checkpoint.own.map_or_else(OnceCell::new, OnceCell::from);
    }

    /// Keeps every change since `checkpoint`: it can no longer be rolled
    /// back to.
    pub(crate) fn keep(&mut self, checkpoint: Checkpoint) {
        if let Some(undo) = &mut self.changes.undo {
            undo.truncate(checkpoint.undo_len);
        }
    }

    /// The state the transaction started from, its own state if it was
    /// built, and its changes in the order first made.
    pub(crate) fn into_parts(self) -> (Arc<State>, Option<State>, Vec<Pending>) {
        let changes = self.changes.list.into_iter().filter(|p| p.action.is_some()).collect();
        (self.base, self.own.into_inner(), changes)
    }
}

/// `base` with `changes` applied. Only ever called with at most one change
/// (every write after the first goes to the built state), so the order of
/// the changes among themselves never matters.
fn replayed(base: &State, changes: &[Pending]) -> State {
    let mut state = base.clone();
    for pending in changes {
        state.replay(pending);
    }
    state
}

/// A change as a store action, the form a Raft entry carries.
pub(crate) fn to_store_action(action: Action, object: Object) -> StoreAction {
    let object = match action {
        Action::Remove => object.removal_key(),
        Action::Create | Action::Update => object,
    };
    StoreAction {
        kind: action.to_proto() as i32,
        target: Some(object.into_target()),
    }
}
