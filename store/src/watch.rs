//! The watch queue: every committed change, in commit order, to whoever
//! subscribed to it.
//!
//! Each watcher has its own bounded buffer, filled by the committing writer
//! with `try_send`: a watcher that falls behind is cut off (its next read
//! says so) and never slows the writer or the other watchers. The buffer is
//! bounded in events and in bytes (of the objects its events keep alive):
//! a few thousand updates of a large object would otherwise pin gigabytes
//! for a watcher that stopped reading. Its owner
//! starts again from [`MemoryStore::view_and_watch`](crate::MemoryStore::view_and_watch),
//! or resumes after the last commit it saw with
//! [`MemoryStore::watch_after`](crate::MemoryStore::watch_after) while the
//! queue still keeps the changes after it (`history.rs`).

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::{self, error::TrySendError};

use crate::history::History;
use crate::{Error, Kind, Object, Result};

/// Default number of events a watcher may have unread before it is cut off.
pub const DEFAULT_WATCH_BUFFER: usize = 10_000;

/// Default bytes (the objects of its events, encoded) a watcher may have
/// unread before it is cut off: twice what one turn of the Raft loop can
/// apply (two Readies of 16 MiB, each update's old and new versions), so
/// that a watcher that keeps up is not cut off by one burst. One event is
/// always taken into an empty buffer, however large.
pub const DEFAULT_WATCH_BUFFER_BYTES: usize = 128 << 20;

/// What a change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The object is new.
    Create,
    /// The object replaced an older version.
    Update,
    /// The object is gone.
    Remove,
}

impl Action {
    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// One changed object of a committed transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// What happened.
    pub action: Action,
    /// The object before the change; `None` for a create.
    pub old: Option<Object>,
    /// The object after the change; `None` for a remove.
    pub new: Option<Object>,
}

impl Change {
    /// The object the change is about: the new version, or for a remove the
    /// version removed.
    pub fn object(&self) -> &Object {
        match (&self.new, &self.old) {
            (Some(o), _) | (None, Some(o)) => o,
            (None, None) => unreachable!("a change has an old or a new object"),
        }
    }

    /// Kind of the object changed.
    pub fn kind(&self) -> Kind {
        self.object().kind()
    }
}

/// What a watcher receives.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// One change, shared by every watcher that gets it.
    Change(Arc<Change>),
    /// The end of a transaction, after its changes: sent to watchers that
    /// asked for markers and got at least one change of that transaction.
    Commit {
        /// Raft index of the transaction.
        index: u64,
    },
}

type Predicate = Arc<dyn Fn(&Change) -> bool + Send + Sync>;

/// Which changes a watcher wants. Every condition set must hold.
#[derive(Clone, Default)]
pub struct Filter {
    /// Bit set of kinds; 0 means all.
    kinds: u8,
    /// Bit set of actions; 0 means all.
    actions: u8,
    predicate: Option<Predicate>,
    commits: bool,
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("kinds", &self.kinds)
            .field("actions", &self.actions)
            .field("predicate", &self.predicate.is_some())
            .field("commits", &self.commits)
            .finish()
    }
}

impl Filter {
    /// Every change of every kind.
    pub fn all() -> Filter {
        Filter::default()
    }

    /// Also changes of `kind` (the first call narrows from "all kinds").
    pub fn kind(mut self, kind: Kind) -> Filter {
        self.kinds |= kind.bit();
        self
    }

    /// Also changes doing `action` (the first call narrows from "all").
    pub fn action(mut self, action: Action) -> Filter {
        self.actions |= action.bit();
        self
    }

    /// Only changes for which `predicate` holds.
    pub fn matching(mut self, predicate: impl Fn(&Change) -> bool + Send + Sync + 'static) -> Filter {
        self.predicate = Some(Arc::new(predicate));
        self
    }

    /// Send an [`Event::Commit`] after each transaction that matched.
    pub fn with_commits(mut self) -> Filter {
        self.commits = true;
        self
    }

    /// Changes to the tasks of one service.
    pub fn tasks_of_service(service_id: impl Into<String>) -> Filter {
        let service_id = service_id.into();
        Filter::all()
            .kind(Kind::Task)
            .matching(move |change| matches!(change.object(), Object::Task(t) if t.service_id == service_id))
    }

    pub(crate) fn wants_commits(&self) -> bool {
        self.commits
    }

    pub(crate) fn matches(&self, change: &Change) -> bool {
        (self.kinds == 0 || self.kinds & change.kind().bit() != 0)
            && (self.actions == 0 || self.actions & change.action.bit() != 0)
            && self.predicate.as_ref().is_none_or(|p| p(change))
    }
}

/// Why a watcher's stream ended, as the writer side recorded it.
const OPEN: u8 = 0;
const LAGGED: u8 = 1;
const RESTORED: u8 = 2;

/// An event in a watcher's buffer, with the bytes it counts for.
struct Queued {
    event: Event,
    bytes: usize,
}

struct Subscription {
    filter: Filter,
    sender: mpsc::Sender<Queued>,
    ended: Arc<AtomicU8>,
    /// Bytes queued and not yet read; the watcher takes off what it reads.
    unread_bytes: Arc<AtomicUsize>,
    max_bytes: usize,
}

impl Subscription {
    /// Queues one event; false if the watcher is gone or was just cut off.
    fn offer(&self, event: Event, bytes: usize) -> bool {
        // Counted before the send, so that the reader never takes off
        // bytes not yet added.
        let unread = self.unread_bytes.fetch_add(bytes, Ordering::AcqRel);
        if bytes > 0 && unread > 0 && unread.saturating_add(bytes) > self.max_bytes {
            self.ended.store(LAGGED, Ordering::Release);
            return false;
        }
        match self.sender.try_send(Queued { event, bytes }) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.ended.store(LAGGED, Ordering::Release);
                false
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }

    /// Queues the changes this watcher wants, then the commit marker; false
    /// once the watcher is gone, even if it wants none of these changes (a
    /// dropped watcher whose filter never matches again would otherwise be
    /// kept, and its filter run, on every commit for ever).
    fn publish(&self, changes: &[Arc<Change>], sizes: &[usize], index: u64) -> bool {
        if self.sender.is_closed() {
            return false;
        }
        let mut matched = false;
        for (change, &bytes) in changes.iter().zip(sizes) {
            if self.filter.matches(change) {
                if !self.offer(Event::Change(change.clone()), bytes) {
                    return false;
                }
                matched = true;
            }
        }
        !(matched && self.filter.commits) || self.offer(Event::Commit { index }, 0)
    }
}

/// The writer's side: every subscription, and the recent commits.
pub(crate) struct WatchQueue {
    queue: Mutex<Queue>,
    buffer: usize,
    buffer_bytes: usize,
}

struct Queue {
    subscriptions: Vec<Subscription>,
    history: History,
}

/// How much a [`WatchQueue`] buffers and keeps.
pub(crate) struct Bounds {
    /// Events a watcher may leave unread.
    pub(crate) buffer: usize,
    /// Bytes a watcher may leave unread.
    pub(crate) buffer_bytes: usize,
    /// Changes kept for watchers that resume.
    pub(crate) history: usize,
    /// Bytes kept for watchers that resume.
    pub(crate) history_bytes: usize,
}

impl WatchQueue {
    pub(crate) fn new(bounds: Bounds) -> WatchQueue {
        WatchQueue {
            queue: Mutex::new(Queue {
                subscriptions: Vec::new(),
                history: History::new(bounds.history, bounds.history_bytes),
            }),
            buffer: bounds.buffer.max(1),
            buffer_bytes: bounds.buffer_bytes,
        }
    }

    pub(crate) fn subscribe(&self, filter: Filter) -> Watcher {
        self.subscribe_locked(&mut self.lock(), filter, VecDeque::new())
    }

    /// A watcher that first gets the kept changes of the commits after
    /// `after` that `filter` wants, then every later one. Called under the
    /// commit lock, with `after` at most the last commit's index.
    ///
    /// # Errors
    ///
    /// [`Error::NoLongerHeld`] if changes after `after` were let go of.
    pub(crate) fn subscribe_after(&self, filter: Filter, after: u64) -> Result<Watcher> {
        let mut queue = self.lock();
        let backlog = queue
            .history
            .events_after(after, &filter)
            .map_err(|held| Error::NoLongerHeld {
                after,
                oldest: held.oldest,
            })?;
        Ok(self.subscribe_locked(&mut queue, filter, backlog.into()))
    }

    fn subscribe_locked(&self, queue: &mut Queue, filter: Filter, backlog: VecDeque<Event>) -> Watcher {
        let (sender, receiver) = mpsc::channel(self.buffer);
        let ended = Arc::new(AtomicU8::new(OPEN));
        let unread_bytes = Arc::new(AtomicUsize::new(0));
        queue.subscriptions.push(Subscription {
            filter,
            sender,
            ended: ended.clone(),
            unread_bytes: unread_bytes.clone(),
            max_bytes: self.buffer_bytes,
        });
        Watcher {
            backlog,
            receiver,
            ended,
            unread_bytes,
        }
    }

    /// Hands one transaction's changes to every watcher, dropping those that
    /// are gone or full, and keeps them for watchers that resume later.
    /// Called in commit order, under the commit lock.
    pub(crate) fn publish(&self, changes: Vec<Arc<Change>>, index: u64) {
        if changes.is_empty() {
            return;
        }
        let mut queue = self.lock();
        if queue.subscriptions.is_empty() && !queue.history.keeps_any() {
            queue.history.skip(index);
            return;
        }
        let sizes: Vec<usize> = changes.iter().map(|change| change_bytes(change)).collect();
        queue.subscriptions.retain(|s| s.publish(&changes, &sizes, index));
        queue.history.record(index, changes, &sizes);
    }

    /// Ends every watcher and forgets the kept changes: the store was
    /// replaced by a snapshot at `index`, and no stream of changes could
    /// carry a watcher from its old view to the new.
    pub(crate) fn close_all_restored(&self, index: u64) {
        let mut queue = self.lock();
        for s in queue.subscriptions.drain(..) {
            s.ended.store(RESTORED, Ordering::Release);
        }
        queue.history.reset(index);
    }

    /// Live watchers; forgets those whose owner dropped them.
    pub(crate) fn len(&self) -> usize {
        let mut queue = self.lock();
        queue.subscriptions.retain(|s| !s.sender.is_closed());
        queue.subscriptions.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the queue
        // half-changed (retain, push and the history's bookkeeping after
        // its push are the only writers), so a poisoned lock is safe to
        // reuse.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What one change keeps alive in a buffer: its versions, encoded. (The new
/// one is also the store's until the next change, but a watcher filtered
/// by action may never see that change, and would then hold it uncounted.)
fn change_bytes(change: &Change) -> usize {
    [&change.old, &change.new]
        .into_iter()
        .flatten()
        .map(Object::encoded_len)
        .sum()
}

/// The reading side of one subscription. Dropping it unsubscribes.
pub struct Watcher {
    /// Kept changes a resumed watcher gets before the live ones.
    backlog: VecDeque<Event>,
    receiver: mpsc::Receiver<Queued>,
    ended: Arc<AtomicU8>,
    unread_bytes: Arc<AtomicUsize>,
}

impl fmt::Debug for Watcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watcher")
            .field("queued", &(self.backlog.len() + self.receiver.len()))
            .finish()
    }
}

impl Watcher {
    /// The next event, waiting for one.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] once the watcher fell behind and was cut off, the
    /// store was restored from a snapshot, or the store was dropped; every
    /// event queued before that is delivered first.
    pub async fn recv(&mut self) -> Result<Event> {
        if let Some(event) = self.backlog.pop_front() {
            return Ok(event);
        }
        match self.receiver.recv().await {
            Some(queued) => Ok(self.read(queued)),
            None => Err(self.end_reason()),
        }
    }

    /// The next event if one is queued, without waiting.
    ///
    /// # Errors
    ///
    /// As [`Watcher::recv`].
    pub fn try_recv(&mut self) -> Result<Option<Event>> {
        if let Some(event) = self.backlog.pop_front() {
            return Ok(Some(event));
        }
        match self.receiver.try_recv() {
            Ok(queued) => Ok(Some(self.read(queued))),
            Err(mpsc::error::TryRecvError::Empty) => Ok(None),
            Err(mpsc::error::TryRecvError::Disconnected) => Err(self.end_reason()),
        }
    }

    /// The next event, blocking the thread. Not for use inside an async
    /// runtime.
    ///
    /// # Errors
    ///
    /// As [`Watcher::recv`].
    pub fn blocking_recv(&mut self) -> Result<Event> {
        if let Some(event) = self.backlog.pop_front() {
            return Ok(event);
        }
        match self.receiver.blocking_recv() {
            Some(queued) => Ok(self.read(queued)),
            None => Err(self.end_reason()),
        }
    }

    /// Takes a read event's bytes off the buffer's count.
    fn read(&self, queued: Queued) -> Event {
        self.unread_bytes.fetch_sub(queued.bytes, Ordering::AcqRel);
        queued.event
    }

    fn end_reason(&self) -> Error {
        Error::Closed(
            match self.ended.load(Ordering::Acquire) {
                LAGGED => "the watcher fell behind and was cut off (it may resume after the last commit index it got)",
                RESTORED => "the store was restored from a snapshot",
                _ => "the store was closed",
            }
            .to_owned(),
        )
    }
}
