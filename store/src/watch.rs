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

use std::cell::OnceCell;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::sync::mpsc::{self, error::TrySendError};

use crate::history::{History, Mark, Position};
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
    /// asked for markers and got at least one change of that transaction,
    /// and, with none of its changes, to those that got none for a while
    /// ([`PROGRESS_EVERY`] transactions, or a quarter of the changes or
    /// bytes the store keeps for watches that resume): how far the store
    /// has come, which a watcher that resumes may resume after. A watcher
    /// that asked for markers when resuming also gets one as it catches up
    /// with the live commits, and every one when the store is snapshotted
    /// (after a restart, what a store behind Raft keeps for resumes starts
    /// at its last snapshot).
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

/// Commits after which a watcher with markers that wanted none of them
/// gets a marker all the same (see [`Event::Commit`]).
pub const PROGRESS_EVERY: u64 = 100;

/// Why a watcher's stream ended, as the writer side recorded it.
const OPEN: u8 = 0;
const LAGGED: u8 = 1;
const RESTORED: u8 = 2;

/// An event in a watcher's buffer, with the bytes it counts for.
struct Queued {
    event: Event,
    bytes: usize,
    /// For a marker: the history's position at its commit.
    at: Option<Position>,
}

/// The history's position at the last marker a watcher read, shared by
/// its two sides: the point it would resume after, were it cut off now.
/// (One lock, not two atomics: both figures come from the same marker.)
#[derive(Default)]
struct ReadMark(Mutex<Position>);

impl ReadMark {
    fn set(&self, at: Position) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }

    fn get(&self) -> Position {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Subscription {
    filter: Filter,
    sender: mpsc::Sender<Queued>,
    ended: Arc<AtomicU8>,
    /// Bytes queued and not yet read; the watcher takes off what it reads.
    unread_bytes: Arc<AtomicUsize>,
    max_bytes: usize,
    /// Told when it is cut off for falling behind.
    cut_off: Arc<Notify>,
    /// The last commit marker queued, or the last commit before it
    /// subscribed.
    mark: Mark,
    /// The last marker it read (or where it subscribed).
    read: Arc<ReadMark>,
}

impl Subscription {
    /// Cuts the watcher off: it fell behind.
    fn fall_behind(&self) {
        self.ended.store(LAGGED, Ordering::Release);
        // A permit if no one waits yet: the next wait ends at once.
        self.cut_off.notify_one();
    }

    /// Queues one event; false if the watcher is gone or was just cut off.
    fn offer(&self, event: Event, bytes: usize, at: Option<Position>) -> bool {
        // Counted before the send, so that the reader never takes off
        // bytes not yet added.
        let unread = self.unread_bytes.fetch_add(bytes, Ordering::AcqRel);
        if bytes > 0 && unread > 0 && unread.saturating_add(bytes) > self.max_bytes {
            self.fall_behind();
            return false;
        }
        match self.sender.try_send(Queued { event, bytes, at }) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.fall_behind();
                false
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }

    /// Queues the changes of `commit` this watcher wants, then the commit
    /// marker if it is due one; false once the watcher is gone, even if it
    /// wants none of these changes (a dropped watcher whose filter never
    /// matches again would otherwise be kept, and its filter run, on every
    /// commit for ever), or cut off.
    fn publish(&mut self, commit: &Published<'_>, history: &History) -> bool {
        if self.sender.is_closed() {
            return false;
        }
        // A watcher with markers that read none while the history recorded
        // half of what it keeps is cut off while it can still resume after
        // the last it read; later, the history could have let go of what
        // came after that marker, and the watcher would have to start over.
        // Counted to the start of this run of commits: its reader could not
        // run within it, and a large run must not cut off the watchers that
        // keep up.
        if self.filter.commits && history.spans(self.read.get(), commit.run_start, 2) {
            self.fall_behind();
            return false;
        }
        let mut matched = false;
        for (change, size) in commit.changes.iter().zip(commit.sizes) {
            if self.filter.matches(change) {
                let bytes = *size.get_or_init(|| change_bytes(change));
                if !self.offer(Event::Change(change.clone()), bytes, None) {
                    return false;
                }
                matched = true;
            }
        }
        let after = history.position();
        if !self.filter.commits || !self.mark.advance(matched, commit.index, after, history) {
            return true;
        }
        self.offer(Event::Commit { index: commit.index }, 0, Some(after))
    }
}

/// One commit as it is handed to the watchers.
struct Published<'a> {
    index: u64,
    changes: &'a [Arc<Change>],
    /// Each change's bytes, measured once if at all.
    sizes: &'a [OnceCell<usize>],
    /// The history's position before the run of commits this one is part
    /// of: what a watcher's reader could have seen.
    run_start: Position,
}

/// The writer's side: every subscription, and the recent commits.
pub(crate) struct WatchQueue {
    shared: Arc<Shared>,
}

/// What the store shares with the watchers still replaying kept commits.
struct Shared {
    queue: Mutex<Queue>,
    buffer: usize,
    buffer_bytes: usize,
}

struct Queue {
    subscriptions: Vec<Subscription>,
    history: History,
    /// The store's objects, encoded, about: kept up when the history is
    /// (which measures every change anyway).
    state_bytes: u64,
    /// Restores so far: a watcher replaying across one is closed, as a
    /// subscribed one is.
    restores: u64,
    /// The index of the last commit published (or restored).
    published: u64,
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

impl Queue {
    fn publish_one(&mut self, changes: &[Arc<Change>], index: u64, run_start: Position) {
        // Measured once per change, and only if kept or a watcher wants it.
        let sizes = vec![OnceCell::new(); changes.len()];
        if self.history.keeps_any() {
            let mut grown: i64 = 0;
            for (change, size) in changes.iter().zip(&sizes) {
                let (old, new) = version_bytes(change);
                let _ = size.set(old + new);
                grown += new as i64 - old as i64;
            }
            self.state_bytes = self.state_bytes.saturating_add_signed(grown);
        }
        // Kept first: a filter that panics below cannot leave the commit
        // out of what a resumed watcher replays.
        self.history.record(index, changes, &sizes);
        self.published = index;
        if !self.subscriptions.is_empty() {
            let commit = Published {
                index,
                changes,
                sizes: &sizes,
                run_start,
            };
            let history = &self.history;
            self.subscriptions.retain_mut(|s| s.publish(&commit, history));
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // A panic while holding this lock cannot leave the queue
        // half-changed (push, retain and the history's own bookkeeping,
        // done before any filter runs, are the only writers), so a
        // poisoned lock is safe to reuse.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Subscribes `filter` to every commit from the next one on.
    fn subscribe(self: &Arc<Self>, queue: &mut Queue, filter: Filter) -> Live {
        let (sender, receiver) = mpsc::channel(self.buffer);
        let ended = Arc::new(AtomicU8::new(OPEN));
        let unread_bytes = Arc::new(AtomicUsize::new(0));
        let cut_off = Arc::new(Notify::new());
        let at = queue.history.position();
        let read = Arc::new(ReadMark::default());
        read.set(at);
        queue.subscriptions.push(Subscription {
            filter,
            sender,
            ended: ended.clone(),
            unread_bytes: unread_bytes.clone(),
            max_bytes: self.buffer_bytes,
            cut_off: cut_off.clone(),
            mark: Mark {
                index: queue.published,
                at,
            },
            read: read.clone(),
        });
        Live {
            shared: Arc::downgrade(self),
            receiver,
            ended,
            unread_bytes,
            cut_off,
            read,
        }
    }
}

impl WatchQueue {
    pub(crate) fn new(bounds: Bounds) -> WatchQueue {
        WatchQueue {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue {
                    subscriptions: Vec::new(),
                    history: History::new(bounds.history, bounds.history_bytes),
                    state_bytes: 0,
                    restores: 0,
                    published: 0,
                }),
                buffer: bounds.buffer.max(1),
                buffer_bytes: bounds.buffer_bytes,
            }),
        }
    }

    pub(crate) fn subscribe(&self, filter: Filter) -> Watcher {
        let live = self.shared.subscribe(&mut self.shared.lock(), filter);
        Watcher {
            replay: None,
            replayed: VecDeque::new(),
            live: Some(live),
            failed: None,
        }
    }

    /// A watcher that first replays the kept commits after `after`, one at
    /// a time as it reads them (nothing is copied up front, nor pinned),
    /// and subscribes to the live ones once it has caught up. Called with
    /// `after` at most the last commit's index.
    ///
    /// # Errors
    ///
    /// [`Error::NoLongerKept`] if changes after `after` were let go of.
    pub(crate) fn subscribe_after(&self, filter: Filter, after: u64) -> Result<Watcher> {
        let queue = self.shared.lock();
        queue.history.check(after).map_err(|kept| Error::NoLongerKept {
            after,
            oldest: kept.oldest,
        })?;
        Ok(Watcher {
            replay: Some(Replay {
                shared: Arc::clone(&self.shared),
                filter,
                after,
                mark: queue.history.mark_at(after),
                restores: queue.restores,
            }),
            replayed: VecDeque::new(),
            live: None,
            failed: None,
        })
    }

    /// Keeps a run of transactions' changes (`(changes, index)`, in commit
    /// order) for watchers that resume, then hands each to every watcher,
    /// dropping those that are gone, full or cut off. Called in commit
    /// order, under the commit lock; the watchers' readers cannot run
    /// between the commits of one run.
    pub(crate) fn publish(&self, run: &[(Vec<Arc<Change>>, u64)]) {
        let mut queue = self.shared.lock();
        let run_start = queue.history.position();
        for (changes, index) in run {
            queue.publish_one(changes, *index, run_start);
        }
    }

    /// Tells every live watcher with markers how far the store has come,
    /// unless its last marker said so: the store is being snapshotted.
    pub(crate) fn mark_all(&self) {
        let mut queue = self.shared.lock();
        let (index, at) = (queue.published, queue.history.position());
        queue.subscriptions.retain_mut(|s| {
            if !s.filter.commits || s.mark.index >= index {
                return true;
            }
            s.mark = Mark { index, at };
            s.offer(Event::Commit { index }, 0, Some(at))
        });
    }

    /// Ends every watcher and forgets the kept changes: the store was
    /// replaced by a snapshot at `index`, and no stream of changes could
    /// carry a watcher from its old view to the new.
    pub(crate) fn close_all_restored(&self, index: u64, bytes: u64) {
        let mut queue = self.shared.lock();
        queue.state_bytes = bytes;
        for s in queue.subscriptions.drain(..) {
            s.ended.store(RESTORED, Ordering::Release);
        }
        queue.history.reset(index);
        queue.restores += 1;
        queue.published = index;
    }

    /// The store's objects, encoded, about; `None` unless the history is
    /// kept (only then is every change measured).
    pub(crate) fn state_bytes(&self) -> Option<u64> {
        let queue = self.shared.lock();
        queue.history.keeps_any().then_some(queue.state_bytes)
    }

    /// Live watchers; forgets those whose owner dropped them. Those still
    /// replaying kept commits are not counted.
    pub(crate) fn len(&self) -> usize {
        let mut queue = self.shared.lock();
        queue.subscriptions.retain(|s| !s.sender.is_closed());
        queue.subscriptions.len()
    }
}

/// What one change keeps alive in a buffer: its versions, encoded. (The new
/// one is also the store's until the next change, but a watcher filtered
/// by action may never see that change, and would then hold it uncounted.)
pub(crate) fn change_bytes(change: &Change) -> usize {
    let (old, new) = version_bytes(change);
    old + new
}

/// The old and new versions of a change, each encoded (0 for none).
fn version_bytes(change: &Change) -> (usize, usize) {
    let bytes = |version: &Option<Object>| version.as_ref().map_or(0, Object::encoded_len);
    (bytes(&change.old), bytes(&change.new))
}

/// The reading side of one subscription. Dropping it unsubscribes.
pub struct Watcher {
    /// Set while a resumed watcher replays kept commits.
    replay: Option<Replay>,
    /// Events of the commit just replayed, not yet read.
    replayed: VecDeque<Event>,
    /// Set once subscribed to live commits.
    live: Option<Live>,
    /// Why replaying ended early, said again on every later read.
    failed: Option<Error>,
}

/// Where a resumed watcher is in the kept commits.
struct Replay {
    shared: Arc<Shared>,
    filter: Filter,
    /// The last commit replayed (or the one resumed after).
    after: u64,
    /// The last marker replayed (or the commit resumed after).
    mark: Mark,
    /// The queue's restores when the watcher resumed.
    restores: u64,
}

/// A subscription's buffer, read side.
struct Live {
    /// Weak: the queue holds this subscription's sender, which must go
    /// with the store for the reader to see the end.
    shared: std::sync::Weak<Shared>,
    receiver: mpsc::Receiver<Queued>,
    ended: Arc<AtomicU8>,
    unread_bytes: Arc<AtomicUsize>,
    cut_off: Arc<Notify>,
    read: Arc<ReadMark>,
}

impl fmt::Debug for Watcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let live = self.live.as_ref().map_or(0, |live| live.receiver.len());
        f.debug_struct("Watcher")
            .field("replaying", &self.replay.is_some())
            .field("queued", &(self.replayed.len() + live))
            .finish()
    }
}

impl Watcher {
    /// The next event, waiting for one.
    ///
    /// # Errors
    ///
    /// [`Error::FellBehind`] once the watcher fell behind and was cut off
    /// (or, resumed, was still replaying commits the store let go of);
    /// [`Error::Closed`] once the store was restored from a snapshot or
    /// dropped. Every event queued before that is delivered first.
    pub async fn recv(&mut self) -> Result<Event> {
        if let Some(event) = self.next_replayed()? {
            return Ok(event);
        }
        let live = self.live()?;
        match live.receiver.recv().await {
            Some(queued) => Ok(live.read(queued)),
            None => Err(live.end_reason()),
        }
    }

    /// The next event if one is queued, without waiting.
    ///
    /// # Errors
    ///
    /// As [`Watcher::recv`].
    pub fn try_recv(&mut self) -> Result<Option<Event>> {
        if let Some(event) = self.next_replayed()? {
            return Ok(Some(event));
        }
        let live = self.live()?;
        match live.receiver.try_recv() {
            Ok(queued) => Ok(Some(live.read(queued))),
            Err(mpsc::error::TryRecvError::Empty) => Ok(None),
            Err(mpsc::error::TryRecvError::Disconnected) => Err(live.end_reason()),
        }
    }

    /// The next event, blocking the thread. Not for use inside an async
    /// runtime.
    ///
    /// # Errors
    ///
    /// As [`Watcher::recv`].
    pub fn blocking_recv(&mut self) -> Result<Event> {
        if let Some(event) = self.next_replayed()? {
            return Ok(event);
        }
        let live = self.live()?;
        match live.receiver.blocking_recv() {
            Some(queued) => Ok(live.read(queued)),
            None => Err(live.end_reason()),
        }
    }

    /// Resolves once the watcher has been cut off for falling behind (what
    /// it queued before is still there to read), and never while it keeps
    /// up or replays kept commits: for an owner held up by something else
    /// (a client that stopped reading) to drop the watcher, and with it
    /// what it queued, at once rather than when that something moves.
    pub async fn fell_behind(&self) {
        match &self.live {
            Some(live) if live.ended.load(Ordering::Acquire) == LAGGED => {}
            Some(live) => live.cut_off.notified().await,
            None => std::future::pending().await,
        }
    }

    /// The next replayed event of a resumed watcher, following the kept
    /// commits one by one (the queue's lock held for one commit at a
    /// time); once caught up, it subscribes to live commits under that
    /// same lock (no commit between the two is missed or seen twice), and
    /// with markers is told the last commit it has come to, unless its
    /// last marker said so: the point it would resume after from then on.
    /// `None` once live.
    fn next_replayed(&mut self) -> Result<Option<Event>> {
        if let Some(failed) = &self.failed {
            return Err(failed.clone());
        }
        loop {
            if let Some(event) = self.replayed.pop_front() {
                return Ok(Some(event));
            }
            let Some(mut replay) = self.replay.take() else {
                return Ok(None);
            };
            let shared = Arc::clone(&replay.shared);
            let mut queue = shared.lock();
            if queue.restores != replay.restores {
                return Err(self.fail(Error::Restored));
            }
            match queue.history.next_after(replay.after, &replay.filter, &mut replay.mark) {
                Ok(Some((index, events))) => {
                    replay.after = index;
                    self.replayed.extend(events);
                    self.replay = Some(replay);
                }
                Ok(None) => {
                    let caught_up = (replay.filter.wants_commits() && queue.published > replay.mark.index)
                        .then_some(Event::Commit { index: queue.published });
                    self.live = Some(shared.subscribe(&mut queue, replay.filter));
                    return Ok(caught_up);
                }
                Err(_) => return Err(self.fail(Error::FellBehind)),
            }
        }
    }

    /// The commit through which this watcher has been given every change
    /// it wants, when that is the last one published: it is live, not cut
    /// off, and has nothing left to read. A point to resume after, which
    /// a watcher that wanted nothing for a while would not otherwise know.
    pub fn caught_up_to(&self) -> Option<u64> {
        if self.replay.is_some() || !self.replayed.is_empty() || self.failed.is_some() {
            return None;
        }
        let live = self.live.as_ref()?;
        let shared = live.shared.upgrade()?;
        // Publishing queues under this lock: nothing lands between the
        // check and the index.
        let queue = shared.lock();
        (live.ended.load(Ordering::Acquire) == OPEN && live.receiver.is_empty()).then_some(queue.published)
    }

    fn fail(&mut self, err: Error) -> Error {
        self.failed = Some(err.clone());
        err
    }

    fn live(&mut self) -> Result<&mut Live> {
        self.live
            .as_mut()
            .ok_or_else(|| Error::Closed("the watcher ended".into()))
    }
}

impl Live {
    /// Takes a read event's bytes off the buffer's count, and notes a
    /// marker's position.
    fn read(&self, queued: Queued) -> Event {
        self.unread_bytes.fetch_sub(queued.bytes, Ordering::AcqRel);
        if let Some(at) = queued.at {
            self.read.set(at);
        }
        queued.event
    }

    fn end_reason(&self) -> Error {
        match self.ended.load(Ordering::Acquire) {
            LAGGED => Error::FellBehind,
            RESTORED => Error::Restored,
            _ => Error::Closed("the store was closed".into()),
        }
    }
}
