//! [`MemoryStore`]: the handle every part of a manager holds.

use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use swarm_proto::v1::StoreAction;

use crate::batch::Batch;
use crate::proposer::Proposer;
use crate::state::State;
use crate::tx::{Pending, ReadTx, WriteTx, to_store_action};
use crate::watch::{
    Action, Bounds, Change, DEFAULT_WATCH_BUFFER, DEFAULT_WATCH_BUFFER_BYTES, Filter, WatchQueue, Watcher,
};
use crate::{Object, Result, snapshot};

/// The changes of a transaction as (action, object) pairs.
fn into_actions(changes: Vec<Pending>) -> impl Iterator<Item = (Action, Object)> {
    changes.into_iter().filter_map(|p| Some((p.action?, p.object)))
}

/// Store actions as the changes they carry.
fn decode(actions: Vec<StoreAction>) -> Result<Vec<(Action, Object)>> {
    actions
        .into_iter()
        .map(|a| {
            let action = Action::from_proto(a.kind)?;
            let target = a
                .target
                .ok_or_else(|| crate::Error::Invalid("store action without an object".into()))?;
            Ok((action, Object::from_target(target)))
        })
        .collect()
}

/// Checks and applies the changes of one entry to `state`, all or none:
/// on error `state` is as it was.
fn apply_entry(state: &mut State, changes: Vec<(Action, Object)>, index: u64) -> Result<Vec<Arc<Change>>> {
    // A single change is checked before it touches anything; only several
    // need a copy to go back to (a persistent clone: cheap to take, but the
    // paths written after it are copied again).
    let saved = (changes.len() > 1).then(|| state.clone());
    let mut applied = Vec::with_capacity(changes.len());
    for (action, object) in changes {
        match state.apply(action, object, index) {
            Ok(change) => applied.push(Arc::new(change)),
            Err(e) => {
                if let Some(saved) = saved {
                    *state = saved;
                }
                return Err(e);
            }
        }
    }
    Ok(applied)
}

/// The cluster state, in memory: six tables with indexes, read and write
/// transactions, and a watch queue. Cloning the handle is cheap; every clone
/// is the same store.
///
/// Writes go through [`MemoryStore::update`] (or a [`Batch`]); with a
/// [`Proposer`] they reach the state only through [`MemoryStore::apply`] once
/// committed. Reads ([`MemoryStore::view`]) see the last applied state and
/// never wait for writers.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// The current state. Readers clone the `Arc` under the read lock and
    /// let go at once; the write lock is held only to swap in a new state.
    root: RwLock<Arc<State>>,
    /// Serializes commits, so that states and events follow index order,
    /// and lets `view_and_watch` subscribe between two commits.
    commit: Mutex<()>,
    proposer: Option<Arc<dyn Proposer>>,
    watch: WatchQueue,
}

/// Builds a [`MemoryStore`] with settings other than the defaults.
#[derive(Default)]
pub struct Builder {
    proposer: Option<Arc<dyn Proposer>>,
    watch_buffer: Option<usize>,
    watch_buffer_bytes: Option<usize>,
    watch_history: (usize, usize),
}

impl Builder {
    /// Commit through `proposer` (Raft) instead of applying locally.
    pub fn proposer(mut self, proposer: Arc<dyn Proposer>) -> Builder {
        self.proposer = Some(proposer);
        self
    }

    /// Events a watcher may leave unread before it is cut off (default
    /// [`DEFAULT_WATCH_BUFFER`]).
    pub fn watch_buffer(mut self, events: usize) -> Builder {
        self.watch_buffer = Some(events);
        self
    }

    /// Bytes (the objects of its events, encoded) a watcher may leave
    /// unread before it is cut off (default [`DEFAULT_WATCH_BUFFER_BYTES`]).
    pub fn watch_buffer_bytes(mut self, bytes: usize) -> Builder {
        self.watch_buffer_bytes = Some(bytes);
        self
    }

    /// Keep the last `changes` changes, up to `bytes` (their objects,
    /// encoded), after they were published, so that a watcher can resume
    /// after a commit it saw ([`MemoryStore::watch_after`]). None by default.
    pub fn watch_history(mut self, changes: usize, bytes: usize) -> Builder {
        self.watch_history = (changes, bytes);
        self
    }

    /// The store, empty.
    pub fn build(self) -> MemoryStore {
        MemoryStore {
            inner: Arc::new(Inner {
                root: RwLock::new(Arc::new(State::default())),
                commit: Mutex::new(()),
                proposer: self.proposer,
                watch: WatchQueue::new(Bounds {
                    buffer: self.watch_buffer.unwrap_or(DEFAULT_WATCH_BUFFER),
                    buffer_bytes: self.watch_buffer_bytes.unwrap_or(DEFAULT_WATCH_BUFFER_BYTES),
                    history: self.watch_history.0,
                    history_bytes: self.watch_history.1,
                }),
            }),
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// An empty store that commits locally, with no consensus: each
    /// transaction gets the next index. For tests and single-process use.
    pub fn new() -> MemoryStore {
        Builder::default().build()
    }

    /// Settings other than the defaults.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A consistent snapshot of the current state, to read at leisure.
    pub fn read(&self) -> ReadTx {
        ReadTx { state: self.current() }
    }

    /// Runs `f` on a consistent snapshot of the current state.
    pub fn view<R>(&self, f: impl FnOnce(&ReadTx) -> R) -> R {
        f(&self.read())
    }

    /// Runs `f` as one all-or-nothing transaction and commits its changes as
    /// one proposal. Returns once the changes are applied here, so every
    /// later read sees them.
    ///
    /// Conflicts are caught on what the transaction writes: an object it
    /// updates or removes must still be at the version it read, a name it
    /// takes must still be free. What it only read is not checked again
    /// (SwarmKit instead runs one writer at a time); a writer whose decision
    /// rests on another object should write that object too, or check it
    /// again after.
    ///
    /// # Errors
    ///
    /// The error `f` returned, or the commit's: a conflict found when the
    /// changes were applied, or the proposer's. Either way nothing of the
    /// transaction is applied.
    pub async fn update<R>(&self, f: impl FnOnce(&mut WriteTx) -> Result<R>) -> Result<R> {
        Ok(self.update_with_index(f).await?.0)
    }

    /// As [`update`](Self::update), for a caller that needs the commit's
    /// index (the version of every object the transaction wrote; the
    /// current index if it wrote nothing), and whose checks in `f` may fail
    /// with an error of its own.
    ///
    /// # Errors
    ///
    /// As [`update`](Self::update).
    pub async fn update_with_index<R, E: From<crate::Error>>(
        &self,
        f: impl FnOnce(&mut WriteTx) -> Result<R, E>,
    ) -> Result<(R, u64), E> {
        let mut tx = WriteTx::new(self.current());
        let result = f(&mut tx)?;
        let index = self.commit(tx).await?;
        Ok((result, index))
    }

    /// Many updates, committed in proposals of bounded size; see [`Batch`].
    pub fn batch(&self) -> Batch<'_> {
        Batch::new(self)
    }

    /// Commits a transaction; returns its index (the current one if it
    /// changed nothing).
    pub(crate) async fn commit(&self, tx: WriteTx) -> Result<u64> {
        let (base, state, changes) = tx.into_parts();
        if changes.is_empty() {
            return Ok(self.current().index);
        }
        // Past this point each changed object has one owner besides the
        // change list (the private state, or nothing once that is dropped),
        // so that setting its version copies nothing.
        match &self.inner.proposer {
            None => {
                let guard = self.lock_commit();
                let current = self.current();
                let index = current.index + 1;
                match state {
                    Some(state) if Arc::ptr_eq(&base, &current) => {
                        self.commit_checked(&guard, state, changes, index);
                    }
                    // Checked against an older state, or not built (one
                    // change, which applying copies no more than building
                    // would): check and apply on the current one.
                    _ => {
                        drop(state);
                        self.apply_locked(&guard, into_actions(changes).collect(), index)?;
                    }
                }
                Ok(index)
            }
            Some(proposer) => {
                drop(state);
                let actions = into_actions(changes)
                    .map(|(action, object)| to_store_action(action, object))
                    .collect();
                proposer.propose(actions).await
            }
        }
    }

    /// Applies a committed entry: what every manager runs for each entry of
    /// the Raft log, in order. All or nothing: the changes are checked
    /// against the current state (a create needs a free id and name, an
    /// update or remove the version it read), and if one fails none is
    /// applied. The index advances either way, so that it always names the
    /// last entry applied (a local commit that fails, having no log entry,
    /// leaves it). An entry at or below that index was applied
    /// already and is skipped.
    ///
    /// # Errors
    ///
    /// The first check that failed, or [`Error::Invalid`](crate::Error::Invalid)
    /// for a malformed action.
    pub fn apply(&self, actions: Vec<StoreAction>, index: u64) -> Result<()> {
        let mut results = self.apply_all(vec![(index, actions)]);
        results.pop().unwrap_or(Ok(()))
    }

    /// Applies a run of committed entries, `(index, actions)` in index
    /// order, exactly as [`MemoryStore::apply`] would one after the other,
    /// and returns what each said. Readers see the state after the last one
    /// only: one new state is built for the whole run, so that the paths of
    /// the indexes that many entries touch are copied once, not once per
    /// entry. Watchers still get one commit per entry.
    pub fn apply_all(&self, entries: Vec<(u64, Vec<StoreAction>)>) -> Vec<Result<()>> {
        let _guard = self.lock_commit();
        let current = self.current();
        let mut next = (*current).clone();
        let mut results = Vec::with_capacity(entries.len());
        let mut events = Vec::with_capacity(entries.len());
        for (index, actions) in entries {
            if index <= next.index {
                tracing::debug!(index, applied = next.index, "entry already applied");
                results.push(Ok(()));
                continue;
            }
            let applied = decode(actions).and_then(|changes| apply_entry(&mut next, changes, index));
            // The entry is in the log whatever it held: the index moves on.
            next.index = index;
            results.push(match applied {
                Ok(applied) => {
                    events.push((applied, index));
                    Ok(())
                }
                Err(e) => {
                    tracing::debug!(index, error = %e, "entry refused");
                    // Published as a commit of nothing: where watchers are
                    // follows the store's index.
                    events.push((Vec::new(), index));
                    Err(e)
                }
            });
        }
        if next.index != current.index {
            self.swap(next);
        }
        // After the swap: a watcher that sees a change can read it.
        self.inner.watch.publish(&events);
        results
    }

    /// Checks and applies `changes` at `index`; on error changes nothing.
    fn apply_locked(&self, _commit: &MutexGuard<'_, ()>, changes: Vec<(Action, Object)>, index: u64) -> Result<()> {
        let mut next = (*self.current()).clone();
        let applied = apply_entry(&mut next, changes, index)?;
        next.index = index;
        self.swap(next);
        self.inner.watch.publish(&[(applied, index)]);
        Ok(())
    }

    /// Commits a transaction that ran on the current state: its own state,
    /// with versions set, becomes the next one. Its checks ran on this very
    /// state, so none can fail now.
    fn commit_checked(&self, _commit: &MutexGuard<'_, ()>, mut next: State, changes: Vec<Pending>, index: u64) {
        next.index = index;
        let mut applied = Vec::with_capacity(changes.len());
        for Pending {
            action,
            id,
            object,
            old,
        } in changes
        {
            let Some(action) = action else { continue };
            let kind = object.kind();
            // Let go of the list's reference first: the state then holds
            // the object alone, and stamping it copies nothing.
            drop(object);
            let new = match action {
                Action::Remove => None,
                Action::Create | Action::Update => next.stamp(kind, id, index),
            };
            applied.push(Arc::new(Change { action, old, new }));
        }
        self.swap(next);
        self.inner.watch.publish(&[(applied, index)]);
    }

    /// A watcher of the changes `filter` selects, from the next commit on.
    pub fn watch(&self, filter: Filter) -> Watcher {
        // Under the commit lock: a run of commits is swapped in before it
        // is published, and a watcher must start after the state readers
        // see.
        let _guard = self.lock_commit();
        self.inner.watch.subscribe(filter)
    }

    /// A snapshot and a watcher that starts exactly after it: every change
    /// after the snapshot reaches the watcher, and none it already holds.
    pub fn view_and_watch(&self, filter: Filter) -> (ReadTx, Watcher) {
        let _guard = self.lock_commit();
        (self.read(), self.inner.watch.subscribe(filter))
    }

    /// A watcher that resumes after the commit at index `after`: it first
    /// gets the changes of every later commit that `filter` wants, as a
    /// watcher subscribed then would have, then every change after. What a
    /// watcher that lost its stream calls with the last commit index it got
    /// (markers from [`Filter::with_commits`] carry it).
    ///
    /// # Errors
    ///
    /// [`Error::NoLongerKept`](crate::Error::NoLongerKept) once the store no
    /// longer keeps the changes after `after` (it keeps as many as
    /// [`Builder::watch_history`] says, none by default, and none from
    /// before a restore); the caller then starts again from
    /// [`MemoryStore::view_and_watch`]. [`Error::Invalid`](crate::Error::Invalid)
    /// if `after` is past the last commit.
    pub fn watch_after(&self, filter: Filter, after: u64) -> Result<Watcher> {
        let _guard = self.lock_commit();
        let last = self.current().index;
        if after > last {
            return Err(crate::Error::Invalid(format!(
                "cannot resume after index {after}: the last commit is {last}"
            )));
        }
        self.inner.watch.subscribe_after(filter, after)
    }

    /// What a snapshot of the store would weigh, about: the last one
    /// restored, and what every change since added or took away, encoded.
    /// Kept up only by a store that keeps changes for watchers
    /// ([`Builder::watch_history`]), which measures each anyway; `None`
    /// otherwise.
    pub fn approximate_bytes(&self) -> Option<u64> {
        self.inner.watch.state_bytes()
    }

    /// Number of live watchers: those dropped or cut off are not counted.
    pub fn watcher_count(&self) -> usize {
        self.inner.watch.len()
    }

    /// The whole store as bytes, for a Raft snapshot: a checksummed
    /// `swarm.v1.StoreSnapshot` message that [`MemoryStore::restore`] reads.
    pub fn snapshot(&self) -> Vec<u8> {
        snapshot::encode(&self.current())
    }

    /// Captures the current state (the clone of an `Arc`: writers go on
    /// undisturbed) and returns what encodes it as [`MemoryStore::snapshot`]
    /// would, so that the encoding can run on another thread while entries
    /// keep being applied.
    pub fn snapshot_writer(&self) -> impl FnOnce() -> Vec<u8> + Send + 'static {
        let _guard = self.lock_commit();
        let state = self.current();
        // After a restart, resumes start at the snapshot (what the store
        // keeps for them is what was replayed after it): every watcher
        // with markers is told it came this far.
        self.inner.watch.mark_all();
        move || snapshot::encode(&state)
    }

    /// Replaces the whole store with a snapshot from [`MemoryStore::snapshot`].
    /// Every watcher is closed: it must start again from `view_and_watch`.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`](crate::Error::Invalid) if the bytes are not a whole,
    /// consistent snapshot; the store is then left as it was.
    pub fn restore(&self, bytes: &[u8]) -> Result<()> {
        let state = snapshot::decode(bytes)?;
        let _guard = self.lock_commit();
        let index = state.index;
        self.swap(state);
        self.inner.watch.close_all_restored(index, bytes.len() as u64);
        Ok(())
    }

    fn current(&self) -> Arc<State> {
        // Poisoning cannot leave a half-swapped `Arc`: the guarded value is
        // replaced in one assignment.
        self.inner.root.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn swap(&self, state: State) {
        *self.inner.root.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(state);
    }

    fn lock_commit(&self) -> MutexGuard<'_, ()> {
        self.inner.commit.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Rebuilds every index of the current state from its tables and
    /// compares: a consistency check for tests and for an operator's
    /// diagnostics. Costs as much as a restore.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`](crate::Error::Invalid) naming the index that
    /// differs.
    pub fn verify_indexes(&self) -> Result<()> {
        self.current().verify_indexes()
    }
}
