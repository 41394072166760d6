//! The Watch API, as SwarmKit's watchapi: a server stream of the store's
//! changes, in commit order, filtered by kind, action and object (names,
//! IDs, labels; a task's service and node). A client that
//! falls behind (its buffer full) is cut off with an error saying so; it
//! never slows the store or the other watchers.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use swarm_proto::v1::watch_server::Watch;
use swarm_proto::v1::{ListFilters, WatchMessage, WatchRequest, object, store_action, watch_message, watch_request};
use swarm_raft::Leadership;
use swarm_store::{Action, Change, Event, Filter, Kind, MemoryStore, Object};
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::manager::proxy::member_stopped;
use crate::manager::redact;
use crate::manager::selector::Selector;

/// Serves watches of a manager's store.
#[derive(Clone)]
pub struct WatchApi {
    store: MemoryStore,
    stopping: tokio::sync::watch::Receiver<bool>,
    /// The Raft member's leadership, whose `stopped` says why, when the
    /// stop came from the member's error rather than a signal.
    leadership: Option<tokio::sync::watch::Receiver<Leadership>>,
    /// A permit per open watch: each one's filter runs on every change of
    /// every commit, under the store's commit lock.
    open: Arc<tokio::sync::Semaphore>,
    max_watches: usize,
    /// Permits for what the open watches' filters check on every change
    /// (an entry and each of its values): many watches with many filters
    /// would otherwise hold the commit lock long enough to stall the Raft
    /// loop, heartbeats included.
    filter_checks: Arc<tokio::sync::Semaphore>,
}

/// The most watches a manager serves at once (an agent, a `swarmctl
/// watch` or a dashboard each hold one).
const MAX_WATCHES: usize = 1024;

/// The most filter checks (entries, and values in them) the open watches
/// hold in all: a thousand watches of a few entries each, or fifteen of the
/// largest (64 entries of 64 values).
const MAX_FILTER_CHECKS: u32 = 65_536;

/// Bytes (of objects, encoded) a watcher of a manager's store may leave
/// unread before it is cut off: half the store's default, as a cut-off
/// watcher resumes (and `swarmctl watch` does by itself).
pub const WATCH_BUFFER_BYTES: usize = 64 << 20;

/// The changes a manager's store keeps for watches that resume: twice what
/// a watcher may leave unread, in changes and in bytes, so that one cut off
/// for falling behind can resume if it comes back soon. (A watch with
/// markers that selects few changes is cut off sooner, once it read no
/// marker for half of these: `swarm_store::Event::Commit`.)
pub const WATCH_HISTORY: (usize, usize) = (2 * swarm_store::DEFAULT_WATCH_BUFFER, 2 * WATCH_BUFFER_BYTES);

impl WatchApi {
    /// Watches `store`; every stream ends (Unavailable) once `stopping`
    /// turns true, so that a graceful stop need not wait for clients that
    /// would watch forever.
    pub fn new(store: MemoryStore, stopping: tokio::sync::watch::Receiver<bool>) -> Self {
        WatchApi::with_max_watches(store, stopping, MAX_WATCHES)
    }

    fn with_max_watches(store: MemoryStore, stopping: tokio::sync::watch::Receiver<bool>, max: usize) -> Self {
        let open = Arc::new(tokio::sync::Semaphore::new(max));
        WatchApi {
            store,
            stopping,
            leadership: None,
            open,
            max_watches: max,
            filter_checks: Arc::new(tokio::sync::Semaphore::new(MAX_FILTER_CHECKS as usize)),
        }
    }

    /// Names the Raft member's error, from `leadership`, to the watches a
    /// stop it caused ends: a client then sees why, not only that the
    /// manager stopped.
    pub fn with_leadership(mut self, leadership: tokio::sync::watch::Receiver<Leadership>) -> Self {
        self.leadership = Some(leadership);
        self
    }
}

/// What ends a watch from the manager's side, besides its store: the
/// manager's stop, or its leadership lost (a watch is served by the
/// leader, as every request; the client watches again, from the new one).
struct Ends {
    stopping: tokio::sync::watch::Receiver<bool>,
    leadership: Option<tokio::sync::watch::Receiver<Leadership>>,
}

impl Ends {
    /// Resolves, with what the watch is told, once it must end: at once if
    /// the manager no longer leads (it may have lost its leadership since
    /// the request was let in).
    async fn ended(&mut self) -> Status {
        let deposed = async {
            match self.leadership.as_mut() {
                Some(leadership) => {
                    // Its sender gone, the member stopped: the stop says so.
                    if leadership.wait_for(|leadership| !leadership.is_leader).await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            // The one change is to "stopping" (or the sender gone).
            _ = self.stopping.changed() => {}
            () = deposed => {}
        }
        // A stop also ends the leadership: it is said as a stop.
        let stopping = *self.stopping.borrow();
        match self
            .leadership
            .as_ref()
            .and_then(|leadership| leadership.borrow().stopped.clone())
        {
            Some(cause) => member_stopped(&cause),
            None if stopping => Status::unavailable("the manager is stopping"),
            None => Status::unavailable("this manager no longer leads; watch again (from the leader)"),
        }
    }
}

fn kind(name: &str) -> Result<Kind, Status> {
    Ok(match name {
        "node" => Kind::Node,
        "service" => Kind::Service,
        "task" => Kind::Task,
        "cluster" => Kind::Cluster,
        "secret" => Kind::Secret,
        "config" => Kind::Config,
        other => {
            return Err(Status::invalid_argument(format!(
                "entries.kind {other:?} is not node, service, task, cluster, secret or config"
            )));
        }
    })
}

fn action_kind(action: Action) -> store_action::Kind {
    match action {
        Action::Create => store_action::Kind::Create,
        Action::Update => store_action::Kind::Update,
        Action::Remove => store_action::Kind::Remove,
    }
}

/// One entry of the request, checked: a change matches it when all its
/// set conditions hold, on the object after the change or, for an update,
/// before it.
struct Entry {
    /// What it checks on every change: itself and each of its values.
    checks: u32,
    kind: Option<Kind>,
    actions: Vec<i32>,
    service_id: String,
    node_id: String,
    selector: Option<Selector>,
}

impl Entry {
    fn new(entry: watch_request::WatchEntry) -> Result<Entry, Status> {
        let kind = if entry.kind.is_empty() {
            None
        } else {
            Some(kind(&entry.kind)?)
        };
        for &action in &entry.actions {
            if !matches!(store_action::Kind::try_from(action), Ok(known) if known != store_action::Kind::Unknown) {
                return Err(Status::invalid_argument(format!(
                    "entries.actions: {action} is not create (1), update (2) or remove (3)"
                )));
            }
        }
        if kind.is_some_and(|kind| kind != Kind::Task) {
            for (field, id) in [("service_id", &entry.service_id), ("node_id", &entry.node_id)] {
                if !id.is_empty() {
                    return Err(Status::invalid_argument(format!(
                        "entries.{field} selects tasks; this entry watches {}s",
                        entry.kind
                    )));
                }
            }
        }
        let (selector, values) = match entry.filters {
            Some(filters) => (Some(Selector::new(&filters)), check_filter_sizes(&filters)?),
            None => (None, 0),
        };
        Ok(Entry {
            checks: 1 + values,
            kind,
            actions: entry.actions,
            service_id: entry.service_id,
            node_id: entry.node_id,
            selector,
        })
    }

    fn matches(&self, change: &Change) -> bool {
        self.kind.is_none_or(|kind| change.kind() == kind)
            && (self.actions.is_empty() || self.actions.contains(&i32::from(action_kind(change.action))))
            && (change.new.as_ref().is_some_and(|new| self.selects(new))
                || change.old.as_ref().is_some_and(|old| self.selects(old)))
    }

    /// Whether the object passes the entry's conditions on objects.
    fn selects(&self, object: &Object) -> bool {
        let task = match object {
            Object::Task(task) => Some(task),
            _ => None,
        };
        (self.service_id.is_empty() || task.is_some_and(|task| task.service_id == self.service_id))
            && (self.node_id.is_empty() || task.is_some_and(|task| task.node_id == self.node_id))
            && self
                .selector
                .as_ref()
                .is_none_or(|selector| selector.matches_object(object))
    }
}

/// The most values an entry's filters take in all (names, prefixes and
/// labels): each is checked against every change, under the store's
/// commit lock.
const MAX_FILTER_VALUES: usize = 64;

/// The number of values in `filters`, if an entry may take that many.
fn check_filter_sizes(filters: &ListFilters) -> Result<u32, Status> {
    let values = filters.names.len() + filters.name_prefixes.len() + filters.id_prefixes.len() + filters.labels.len();
    if values > MAX_FILTER_VALUES {
        return Err(Status::invalid_argument(format!(
            "entries.filters: {values} values; an entry takes at most {MAX_FILTER_VALUES} names, prefixes and labels in all"
        )));
    }
    Ok(values as u32)
}

/// The most bytes a watch's filter values take in all, for the same reason.
const MAX_FILTER_BYTES: usize = 64 * 1024;

fn check_filter_bytes(entries: &[watch_request::WatchEntry]) -> Result<(), Status> {
    let bytes: usize = entries
        .iter()
        .filter_map(|entry| entry.filters.as_ref())
        .flat_map(|filters| {
            (filters.names.iter())
                .chain(&filters.name_prefixes)
                .chain(&filters.id_prefixes)
                .chain(&filters.labels)
        })
        .map(String::len)
        .sum();
    if bytes > MAX_FILTER_BYTES {
        return Err(Status::invalid_argument(format!(
            "entries.filters: {bytes} bytes of names, prefixes and labels; a watch takes at most {MAX_FILTER_BYTES}"
        )));
    }
    Ok(())
}

fn proto_object(object: &Object) -> swarm_proto::v1::Object {
    let object = match object {
        Object::Node(node) => object::Object::Node((**node).clone()),
        Object::Service(service) => object::Object::Service((**service).clone()),
        Object::Task(task) => object::Object::Task((**task).clone()),
        Object::Cluster(cluster) => object::Object::Cluster(redact::cluster((**cluster).clone())),
        Object::Secret(secret) => object::Object::Secret(redact::secret((**secret).clone())),
        Object::Config(config) => object::Object::Config((**config).clone()),
    };
    swarm_proto::v1::Object { object: Some(object) }
}

fn event(change: &Change) -> watch_message::Event {
    let updated_from = match change.action {
        Action::Update => change.old.as_ref().map(proto_object),
        _ => None,
    };
    watch_message::Event {
        action: action_kind(change.action).into(),
        object: Some(proto_object(change.object())),
        old_object: updated_from,
    }
}

/// The most filter entries one watch takes: each is checked against every
/// change of every commit, under the store's commit lock.
const MAX_WATCH_ENTRIES: usize = 64;

type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchMessage, Status>> + Send>>;

#[tonic::async_trait]
impl Watch for WatchApi {
    type WatchStream = WatchStream;

    async fn watch(&self, request: Request<WatchRequest>) -> Result<Response<WatchStream>, Status> {
        let request = request.into_inner();
        if request.entries.len() > MAX_WATCH_ENTRIES {
            return Err(Status::invalid_argument(format!(
                "entries: {} filters; a watch takes at most {MAX_WATCH_ENTRIES} (each runs on every commit)",
                request.entries.len()
            )));
        }
        check_filter_bytes(&request.entries)?;
        let entries: Vec<Entry> = request.entries.into_iter().map(Entry::new).collect::<Result<_, _>>()?;
        // Checked before a permit is taken: a malformed request is told so,
        // even when every permit is held.
        let Ok(open) = Arc::clone(&self.open).try_acquire_owned() else {
            return Err(Status::resource_exhausted(format!(
                "{} watches are open, the most this manager serves at once; try again when one has ended",
                self.max_watches
            )));
        };
        let checks = entries.iter().map(|entry| entry.checks).sum::<u32>().max(1);
        let Ok(checked) = Arc::clone(&self.filter_checks).try_acquire_many_owned(checks) else {
            return Err(Status::resource_exhausted(format!(
                "the open watches check {} filters and values on every change, and this one adds {checks}: more \
                 than this manager runs ({MAX_FILTER_CHECKS}); try again when one has ended, or with fewer filters",
                MAX_FILTER_CHECKS as usize - self.filter_checks.available_permits()
            )));
        };
        // The store's kind bits first: a change of a kind no entry names
        // is passed over without running the entries.
        let mut filter = Filter::all();
        if !entries.is_empty() && entries.iter().all(|entry| entry.kind.is_some()) {
            for kind in entries.iter().filter_map(|entry| entry.kind) {
                filter = filter.kind(kind);
            }
        }
        let mut filter = filter.matching(move |change| entries.is_empty() || entries.iter().any(|e| e.matches(change)));
        let with_commits = request.include_commits;
        if with_commits {
            filter = filter.with_commits();
        }
        let mut watcher = match request.resume_after {
            Some(after) => self.store.watch_after(filter, after).map_err(Error::Store)?,
            None => self.store.watch(filter),
        };
        // Where a live watch with markers starts: a point its client may
        // resume after before any change it wants comes (should the
        // connection drop meanwhile).
        let starts_after = (with_commits && request.resume_after.is_none())
            .then(|| watcher.caught_up_to())
            .flatten();
        let mut ends = Ends {
            stopping: self.stopping.clone(),
            leadership: self.leadership.clone(),
        };
        let stream = async_stream(move |sender| async move {
            // Held while the watch is: they end with this task.
            let _held = (open, checked);
            if let Some(index) = starts_after {
                let _ = sender.send(Ok(progress(index))).await;
            }
            // With commit markers, one message per transaction: its changes
            // and its index; without, one message per change.
            let mut events = Vec::new();
            loop {
                let received = tokio::select! {
                    // What the store gave the watcher first: at a stop, every
                    // change made before it is read (the requests that made
                    // them all answered) before the watch ends, so that where
                    // it says to go on is past them all (unbiased, the end
                    // was taken with changes unread half the time, and a
                    // snapshot could then cover them before the restart).
                    biased;
                    received = watcher.recv() => received,
                    status = ends.ended() => return last_words(None, &watcher, with_commits, status),
                    // The client went away while no change it wants came:
                    // end now, which drops the watcher, rather than at the
                    // next change it would have been sent.
                    () = sender.closed() => return Vec::new(),
                };
                let message = match received {
                    Ok(Event::Change(change)) if with_commits => {
                        events.push(event(&change));
                        continue;
                    }
                    Ok(Event::Change(change)) => WatchMessage {
                        events: vec![event(&change)],
                        commit_index: 0,
                    },
                    Ok(Event::Commit { index }) => WatchMessage {
                        events: std::mem::take(&mut events),
                        commit_index: index,
                    },
                    Err(err) => {
                        // Said here too: the operator of a watcher that
                        // keeps falling behind should hear of it.
                        tracing::warn!(%err, "a watch ended");
                        return vec![Err(Status::from(Error::Store(err)))];
                    }
                };
                // A client that stops reading holds this send; meanwhile
                // the store may cut the watcher off. Then what it queued
                // goes at once, not when (if ever) the client reads again:
                // the client resumes after the last commit it got, from
                // what the store keeps. A stop does not wait for it either.
                tokio::select! {
                    // Likewise: a client that reads gets it before the end.
                    biased;
                    permit = sender.reserve() => match permit {
                        Ok(permit) => permit.send(Ok(message)),
                        Err(_) => return Vec::new(), // the client went away
                    },
                    () = watcher.fell_behind() => {
                        drop(watcher);
                        tracing::warn!("a watch fell behind and was cut off (its client stopped reading?)");
                        // The message held goes first: its marker may be
                        // the one the store kept resumable.
                        let fell_behind = Status::from(Error::Store(swarm_store::Error::FellBehind));
                        return vec![Ok(message), Err(fell_behind)];
                    }
                    status = ends.ended() => return last_words(Some(message), &watcher, with_commits, status),
                }
            }
        });
        Ok(Response::new(stream))
    }
}

/// What a watch the manager ends says last, after what it sent: the
/// message it held, if any; how far it got, if it read all it wanted (the
/// point to resume after, past the last marker); and why it ends.
fn last_words(
    held: Option<WatchMessage>,
    watcher: &swarm_store::Watcher,
    with_commits: bool,
    status: Status,
) -> Vec<Result<WatchMessage, Status>> {
    let caught_up = with_commits.then(|| watcher.caught_up_to()).flatten();
    (held.into_iter().chain(caught_up.map(progress)).map(Ok))
        .chain([Err(status)])
        .collect()
}

/// A message with no events: the watch has been given every change it
/// wants through commit `index`.
fn progress(index: u64) -> WatchMessage {
    WatchMessage {
        events: Vec::new(),
        commit_index: index,
    }
}

/// A stream fed by `produce` through a small channel, so that a client that
/// reads slowly holds the producer here, not the store: the store's own
/// per-watcher buffer (bounded in events and bytes) then fills and cuts it
/// off. Two messages: each holds whole copies of its objects, which may be
/// megabytes each. What `produce` returns comes last, after the channel:
/// its last words never wait for a client that stopped reading (the task
/// ends, letting go of the watcher), and are never lost, however full the
/// channel.
fn async_stream<F, Fut>(produce: F) -> WatchStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<WatchMessage, Status>>) -> Fut,
    Fut: std::future::Future<Output = Vec<Result<WatchMessage, Status>>> + Send + 'static,
{
    use futures::StreamExt as _;
    let (sender, receiver) = tokio::sync::mpsc::channel(2);
    let task = tokio::spawn(produce(sender));
    let last = futures::stream::once(async move {
        task.await
            .unwrap_or_else(|_| vec![Err(Status::internal("the watch failed (a bug: see the manager's log)"))])
    })
    .flat_map(futures::stream::iter);
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver).chain(last))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use swarm_proto::v1::{Cluster, RootCa, Secret, SecretSpec, object};
    use swarm_store::Object;

    use super::proto_object;

    #[tokio::test]
    async fn a_watch_ended_by_the_raft_members_error_says_it() {
        use futures::StreamExt as _;
        use swarm_proto::v1::watch_server::Watch as _;
        // A stop, with the member failed as it came or not: what the open
        // watch is told.
        async fn ended_with(cause: Option<&str>) -> tonic::Status {
            let (stopping, stopped) = tokio::sync::watch::channel(false);
            let leadership = swarm_raft::Leadership {
                is_leader: true,
                stopped: cause.map(str::to_string),
                ..Default::default()
            };
            let (_failed, leadership) = tokio::sync::watch::channel(leadership);
            let api = super::WatchApi::new(swarm_store::MemoryStore::new(), stopped).with_leadership(leadership);
            let request = tonic::Request::new(swarm_proto::v1::WatchRequest::default());
            let mut watch = api.watch(request).await.expect("a watch").into_inner();
            let _ = stopping.send(true);
            watch.next().await.expect("an end").expect_err("an error")
        }

        let signalled = ended_with(None).await;
        assert_eq!(signalled.code(), tonic::Code::Unavailable);
        assert_eq!(signalled.message(), "the manager is stopping");

        let failed = ended_with(Some("No space left on device")).await;
        assert_eq!(failed.code(), tonic::Code::Unavailable);
        assert!(
            failed
                .message()
                .contains("Raft member stopped on an error, and the manager is stopping: No space left on device"),
            "{}",
            failed.message()
        );
    }

    /// A watch is the leader's to serve: when this manager stops leading,
    /// its watches end, saying how far they got and to watch again.
    #[tokio::test]
    async fn a_watch_ends_when_its_manager_stops_leading() {
        use futures::StreamExt as _;
        use swarm_proto::v1::watch_server::Watch as _;
        let (_stopping, stopped) = tokio::sync::watch::channel(false);
        let leading = swarm_raft::Leadership {
            is_leader: true,
            ..Default::default()
        };
        let (leadership, watched) = tokio::sync::watch::channel(leading);
        let api = super::WatchApi::new(swarm_store::MemoryStore::new(), stopped).with_leadership(watched);
        let request = swarm_proto::v1::WatchRequest {
            include_commits: true,
            ..Default::default()
        };
        let mut watch = api
            .watch(tonic::Request::new(request))
            .await
            .expect("a watch")
            .into_inner();
        let start = watch.next().await.expect("a start marker").expect("not an error");
        assert_eq!(start.commit_index, 0);
        leadership.send_modify(|leadership| leadership.is_leader = false);
        let marker = watch.next().await.expect("how far it got").expect("not an error");
        assert_eq!((marker.events.len(), marker.commit_index), (0, 0));
        let status = watch.next().await.expect("an end").expect_err("a status");
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(status.message().contains("no longer leads"), "{}", status.message());
        assert!(watch.next().await.is_none());
    }

    #[tokio::test]
    async fn a_watch_takes_at_most_64_filters() {
        use swarm_proto::v1::watch_server::Watch as _;
        let (_stopping, stopped) = tokio::sync::watch::channel(false);
        let api = super::WatchApi::new(swarm_store::MemoryStore::new(), stopped);
        let request = |entries| {
            tonic::Request::new(swarm_proto::v1::WatchRequest {
                entries: vec![Default::default(); entries],
                ..Default::default()
            })
        };
        assert!(api.watch(request(64)).await.is_ok());
        let status = api.watch(request(65)).await.err().expect("65 filters refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains("at most 64"), "{}", status.message());
    }

    #[tokio::test]
    async fn actions_the_api_does_not_know_and_filters_over_64_kib_are_refused() {
        use swarm_proto::v1::watch_request::WatchEntry;
        use swarm_proto::v1::watch_server::Watch as _;
        let (_stopping, stopped) = tokio::sync::watch::channel(false);
        let api = super::WatchApi::new(swarm_store::MemoryStore::new(), stopped);
        let refusal = |entry: WatchEntry| {
            let request = swarm_proto::v1::WatchRequest {
                entries: vec![entry],
                ..Default::default()
            };
            let api = api.clone();
            async move {
                let status = api.watch(tonic::Request::new(request)).await.err().expect("refused");
                assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
                status.message().to_string()
            }
        };
        for action in [0, 4, -1] {
            let message = refusal(WatchEntry {
                actions: vec![1, action],
                ..Default::default()
            })
            .await;
            assert!(
                message.starts_with(&format!("entries.actions: {action} is not create (1)")),
                "{message}"
            );
        }
        let long_label = WatchEntry {
            filters: Some(swarm_proto::v1::ListFilters {
                labels: vec!["k".repeat(64 * 1024 + 1)],
                ..Default::default()
            }),
            ..Default::default()
        };
        let message = refusal(long_label).await;
        assert!(message.contains("65537 bytes"), "{message}");
        assert!(message.contains("at most 65536"), "{message}");
    }

    /// A stop ends the watch of a client that stopped reading at once: its
    /// task lets go of the watcher (and of its place among the watches
    /// open) without waiting for the client, and what it had to say comes
    /// after what it sent, whenever the client reads again: every commit
    /// in order, then why it ended.
    #[tokio::test]
    async fn a_stop_ends_the_watch_of_a_client_that_stopped_reading_at_once() {
        use futures::StreamExt as _;
        use swarm_proto::v1::watch_server::Watch as _;
        let (stopping, stopped) = tokio::sync::watch::channel(false);
        let api = super::WatchApi::with_max_watches(swarm_store::MemoryStore::new(), stopped, 1);
        let request = || {
            tonic::Request::new(swarm_proto::v1::WatchRequest {
                include_commits: true,
                ..Default::default()
            })
        };
        let mut watch = api.watch(request()).await.expect("a watch").into_inner();
        // More commits than the stream's two slots hold.
        for name in ["a", "b", "c", "d"] {
            let created = secret(&swarm_store::id::generate(), name, &[]);
            api.store.update(|tx| tx.create(created)).await.expect("store a secret");
        }
        let first = watch.next().await.expect("a start marker").expect("not an error");
        assert_eq!(first.commit_index, 0);
        let _ = stopping.send(true);
        // Its place among the watches open comes free, the client still
        // reading nothing.
        drop(taken_within_5s(&api, request, "the stopped watch still holds its place").await);
        let rest: Vec<_> = watch.collect().await;
        let commits: Vec<u64> = rest
            .iter()
            .filter_map(|message| message.as_ref().ok())
            .filter(|message| !message.events.is_empty())
            .map(|message| message.commit_index)
            .collect();
        assert_eq!(
            commits,
            (1..=commits.len() as u64).collect::<Vec<_>>(),
            "in order, from the first"
        );
        assert!(!commits.is_empty(), "{rest:?}");
        let status = rest
            .last()
            .and_then(|last| last.as_ref().err())
            .expect("a status, last");
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(status.message(), "the manager is stopping");
    }

    #[tokio::test]
    async fn the_open_watches_filters_are_bounded_in_all() {
        use swarm_proto::v1::watch_request::WatchEntry;
        use swarm_proto::v1::watch_server::Watch as _;
        let (_stopping, stopped) = tokio::sync::watch::channel(false);
        let api = super::WatchApi::new(swarm_store::MemoryStore::new(), stopped);
        let largest = || {
            let entry = WatchEntry {
                filters: Some(swarm_proto::v1::ListFilters {
                    labels: (0..64).map(|n| format!("k{n}")).collect(),
                    ..Default::default()
                }),
                ..Default::default()
            };
            tonic::Request::new(swarm_proto::v1::WatchRequest {
                entries: vec![entry; 64],
                ..Default::default()
            })
        };
        let mut open = Vec::new();
        for _ in 0..15 {
            open.push(api.watch(largest()).await.expect("within the bound"));
        }
        let status = api.watch(largest()).await.err().expect("a sixteenth refused");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().contains("this one adds 4160"), "{}", status.message());
        // A small watch still fits.
        let small = tonic::Request::new(swarm_proto::v1::WatchRequest::default());
        assert!(api.watch(small).await.is_ok());
        drop(open.pop());
        drop(taken_within_5s(&api, largest, "the ended watch's filters still count").await);
    }

    #[tokio::test]
    async fn a_watch_beyond_the_most_open_at_once_is_refused_until_one_ends() {
        use futures::StreamExt as _;
        use swarm_proto::v1::watch_server::Watch as _;
        let (_stopping, stopped) = tokio::sync::watch::channel(false);
        let api = super::WatchApi::with_max_watches(swarm_store::MemoryStore::new(), stopped, 2);
        let watch = || api.watch(tonic::Request::new(swarm_proto::v1::WatchRequest::default()));
        let first = watch().await.expect("a first watch");
        let _second = watch().await.expect("a second watch");
        let status = watch().await.err().expect("a third refused");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(
            status.message().starts_with("2 watches are open"),
            "{}",
            status.message()
        );
        // A malformed request is told what is wrong with it all the same.
        let unknown_action = swarm_proto::v1::WatchRequest {
            entries: vec![swarm_proto::v1::watch_request::WatchEntry {
                actions: vec![0],
                ..Default::default()
            }],
            ..Default::default()
        };
        let status = api
            .watch(tonic::Request::new(unknown_action))
            .await
            .err()
            .expect("refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        // The client of the first goes away: its watch ends, and a new one
        // may open.
        drop(first);
        let request = || tonic::Request::new(swarm_proto::v1::WatchRequest::default());
        let mut third = taken_within_5s(&api, request, "the ended watch still counts").await;
        // It is served: a change reaches it.
        let pass = secret(&swarm_store::id::generate(), "pass", &[]);
        api.store.update(|tx| tx.create(pass)).await.expect("store a secret");
        let message = third.next().await.expect("an event").expect("not an error");
        assert_eq!(message.events.len(), 1);
    }

    /// The watch `request()` asks for, asked again until `api` takes it:
    /// within 5 s, or the test fails saying what still `held` its place.
    async fn taken_within_5s(
        api: &super::WatchApi,
        request: impl Fn() -> tonic::Request<swarm_proto::v1::WatchRequest>,
        held: &str,
    ) -> super::WatchStream {
        use swarm_proto::v1::watch_server::Watch as _;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            if let Ok(taken) = api.watch(request()).await {
                return taken.into_inner();
            }
            assert!(tokio::time::Instant::now() < deadline, "{held}");
            tokio::task::yield_now().await;
        }
    }

    /// What a watch with `entry` reports of the changes `write` makes, as
    /// (action, id) pairs; read until the commit marker of a last write.
    async fn reported(
        entry: swarm_proto::v1::watch_request::WatchEntry,
        write: impl AsyncFnOnce(&swarm_store::MemoryStore),
    ) -> Vec<(swarm_proto::v1::store_action::Kind, String)> {
        use futures::StreamExt as _;
        use swarm_proto::v1::watch_server::Watch as _;
        let (_stopping, stopped) = tokio::sync::watch::channel(false);
        let store = swarm_store::MemoryStore::new();
        let api = super::WatchApi::new(store.clone(), stopped);
        let end_marker = swarm_store::id::generate();
        let request = swarm_proto::v1::WatchRequest {
            entries: vec![
                entry,
                swarm_proto::v1::watch_request::WatchEntry {
                    filters: Some(swarm_proto::v1::ListFilters {
                        id_prefixes: vec![end_marker.clone()],
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let mut watch = api
            .watch(tonic::Request::new(request))
            .await
            .expect("a watch")
            .into_inner();
        write(&store).await;
        store
            .update(|tx| tx.create(secret(&end_marker, "end", &[])))
            .await
            .expect("the end marker");
        let mut seen = Vec::new();
        loop {
            let message = watch.next().await.expect("a message").expect("not an error");
            for event in message.events {
                let action = event.action();
                let id = match event.object.and_then(|object| object.object) {
                    Some(object::Object::Secret(secret)) => secret.id,
                    Some(object::Object::Task(task)) => task.id,
                    other => panic!("unexpected {other:?}"),
                };
                if id == end_marker {
                    return seen;
                }
                seen.push((action, id));
            }
        }
    }

    fn secret(id: &str, name: &str, labels: &[(&str, &str)]) -> Secret {
        Secret {
            id: id.to_string(),
            spec: Some(SecretSpec {
                annotations: Some(swarm_proto::v1::Annotations {
                    name: name.to_string(),
                    labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Replaces the labels of the stored secret `id`.
    fn relabel(tx: &mut swarm_store::WriteTx, id: &str, labels: &[(&str, &str)]) -> swarm_store::Result<()> {
        use swarm_store::Read as _;
        let mut secret = Secret::clone(tx.get::<Secret>(id).expect("stored"));
        let annotations = secret
            .spec
            .as_mut()
            .and_then(|spec| spec.annotations.as_mut())
            .expect("named");
        annotations.labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        tx.update(secret)
    }

    #[tokio::test]
    async fn a_label_filter_sees_objects_enter_and_leave_its_selection() {
        use swarm_proto::v1::store_action::Kind::{Create, Remove, Update};
        let (prod, dev) = (swarm_store::id::generate(), swarm_store::id::generate());
        let entry = swarm_proto::v1::watch_request::WatchEntry {
            filters: Some(swarm_proto::v1::ListFilters {
                labels: vec!["env=prod".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let seen = reported(entry, async |store| {
            let (prod, dev) = (prod.clone(), dev.clone());
            store
                .update(|tx| {
                    tx.create(secret(&prod, "a", &[("env", "prod")]))?;
                    tx.create(secret(&dev, "b", &[("env", "dev")]))
                })
                .await
                .expect("create");
            // prod leaves the selection, dev enters it; then dev changes
            // within it, and prod changes outside it.
            store.update(|tx| relabel(tx, &prod, &[])).await.expect("relabel");
            store
                .update(|tx| relabel(tx, &dev, &[("env", "prod")]))
                .await
                .expect("relabel");
            store
                .update(|tx| relabel(tx, &dev, &[("env", "prod"), ("x", "1")]))
                .await
                .expect("relabel");
            store
                .update(|tx| relabel(tx, &prod, &[("x", "1")]))
                .await
                .expect("relabel");
            store
                .update(|tx| {
                    tx.delete::<Secret>(&prod)?;
                    tx.delete::<Secret>(&dev)
                })
                .await
                .expect("remove");
        })
        .await;
        assert_eq!(
            seen,
            [
                (Create, prod.clone()),
                (Update, prod),
                (Update, dev.clone()),
                (Update, dev.clone()),
                (Remove, dev),
            ]
        );
    }

    #[tokio::test]
    async fn a_node_filter_sees_a_task_arrive_and_leave() {
        use swarm_proto::v1::Task;
        use swarm_proto::v1::store_action::Kind::Update;
        let task_id = swarm_store::id::generate();
        let (node_a, node_b) = (swarm_store::id::generate(), swarm_store::id::generate());
        let entry = swarm_proto::v1::watch_request::WatchEntry {
            kind: "task".into(),
            node_id: node_a.clone(),
            ..Default::default()
        };
        let seen = reported(entry, async |store| {
            let task = Task {
                id: task_id.clone(),
                service_id: swarm_store::id::generate(),
                ..Default::default()
            };
            store.update(|tx| tx.create(task)).await.expect("create");
            // Assigned to node a, moved to node b, then changed there.
            for node in [&node_a, &node_b, &node_b] {
                store
                    .update(|tx| {
                        use swarm_store::Read as _;
                        let mut task = Task::clone(tx.get::<Task>(&task_id).expect("stored"));
                        task.node_id = node.clone();
                        task.slot += 1;
                        tx.update(task)
                    })
                    .await
                    .expect("update");
            }
        })
        .await;
        // Its creation (on no node) and its change on node b are not.
        assert_eq!(seen, [(Update, task_id.clone()), (Update, task_id)]);
    }

    #[tokio::test]
    async fn a_service_or_node_filter_on_another_kind_than_tasks_is_refused() {
        use swarm_proto::v1::watch_server::Watch as _;
        let (_stopping, stopped) = tokio::sync::watch::channel(false);
        let api = super::WatchApi::new(swarm_store::MemoryStore::new(), stopped);
        let request = swarm_proto::v1::WatchRequest {
            entries: vec![swarm_proto::v1::watch_request::WatchEntry {
                kind: "service".into(),
                service_id: swarm_store::id::generate(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let status = api.watch(tonic::Request::new(request)).await.err().expect("refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            status.message(),
            "entries.service_id selects tasks; this entry watches services"
        );
    }

    #[tokio::test]
    async fn filters_beyond_64_values_in_an_entry_are_refused() {
        use swarm_proto::v1::watch_server::Watch as _;
        let (_stopping, stopped) = tokio::sync::watch::channel(false);
        let api = super::WatchApi::new(swarm_store::MemoryStore::new(), stopped);
        let request = swarm_proto::v1::WatchRequest {
            entries: vec![swarm_proto::v1::watch_request::WatchEntry {
                filters: Some(swarm_proto::v1::ListFilters {
                    labels: vec!["a".into(); 60],
                    names: vec!["b".into(); 5],
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let status = api.watch(tonic::Request::new(request)).await.err().expect("refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(
            status.message().contains("entries.filters: 65 values"),
            "{}",
            status.message()
        );
    }

    #[test]
    fn events_carry_neither_secret_data_nor_the_root_ca_key() {
        let secret = Secret {
            spec: Some(SecretSpec {
                data: b"hunter2".to_vec(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let Some(object::Object::Secret(secret)) = proto_object(&Object::Secret(Arc::new(secret))).object else {
            panic!("a secret");
        };
        assert!(secret.spec.unwrap().data.is_empty());

        let cluster = Cluster {
            root_ca: Some(RootCa {
                ca_key: b"key".to_vec(),
                ca_cert: b"cert".to_vec(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let Some(object::Object::Cluster(cluster)) = proto_object(&Object::Cluster(Arc::new(cluster))).object else {
            panic!("a cluster");
        };
        let root_ca = cluster.root_ca.unwrap();
        assert!(root_ca.ca_key.is_empty());
        assert_eq!(root_ca.ca_cert, b"cert");
    }
}
