//! A running Raft member: [`RaftNode::start`] opens its data dir, rebuilds
//! the state machine, and spawns the Ready loop; [`RaftHandle`] is how the
//! rest of the program talks to it.

mod failover;
mod freeing;
mod handle;
mod membership;
mod pending;
mod ready_loop;
mod snapshot_schedule;
mod tick_clock;

use std::collections::BTreeMap;
use std::sync::Arc;

use rocksdb::WriteBatch;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use handle::{Leadership, Progress, RaftHandle, Role, Status};

use crate::config::Config;
use crate::data_dir::DataDirGuard;
use crate::disk_space::{self, DiskSpace};
use crate::error::{Error, Result};
use crate::logger::raft_logger;
use crate::metrics::Metrics;
use crate::open_db::OnClose;
use crate::state_machine::StateMachine;
use crate::storage::RocksStorage;
use crate::transport::{Links, Transport, TransportService};
use failover::LeaderWatch;
use pending::Pending;
use ready_loop::ReadyLoop;
use snapshot_schedule::SnapshotSchedule;

/// How a member starts when its data dir holds no log yet. A data dir that
/// holds one always restarts from it, whatever is asked here.
#[derive(Debug, Clone)]
pub enum Start {
    /// Form a new group of these members (id to transport address). Every
    /// initial member must be given the same list.
    Bootstrap(BTreeMap<u64, String>),
    /// Wait to be added by the group's leader ([`RaftHandle::add_member`])
    /// and catch up from it.
    Join,
    /// Go on from the log in the data dir, which must hold one: a member
    /// that has run before and finds none lost its data (removed, or on a
    /// volume not mounted at the data dir itself: one mounted higher up
    /// looks like a new state dir), and starting anew would forget its
    /// votes.
    Restart,
}

/// A running member: owns its Ready loop, which stops when this is shut
/// down or dropped.
pub struct RaftNode<S: StateMachine> {
    handle: RaftHandle<S::Output>,
    service: TransportService,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<()>>,
    /// Resolves once RocksDB is closed: when no one holds the database
    /// any more and its close has ended.
    db_closed: OnClose,
}

impl<S: StateMachine> RaftNode<S> {
    /// Opens `config.data_dir`, restores `machine` from the stored snapshot,
    /// and starts the Ready loop, which then replays the committed entries
    /// after the snapshot before anything else. Serve
    /// [`RaftNode::transport_service`] on `config.addr` for peers to reach it.
    ///
    /// # Errors
    ///
    /// [`Error::Config`], [`Error::DataDir`] (another cluster's or member's
    /// dir, not a Raft dir, unreadable, or no log at all for
    /// [`Start::Restart`]), [`Error::Corrupt`] (a log or snapshot that does
    /// not decode, or that the machine refuses).
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub async fn start(config: Config, mut machine: S, start: Start) -> Result<Self> {
        config.validate()?;
        let no_log = || Error::DataDir {
            dir: config.data_dir.clone(),
            reason: if crate::storage::holds_remnants(&config.data_dir) {
                "holds no Raft log, though this member has run before: RocksDB's files are there but not its \
                 CURRENT file, as an incomplete copy or restore leaves them (copy the whole dir again, or \
                 restore a backup); refusing to start anew"
            } else {
                "holds no Raft log, though this member has run before: its data was removed (or, if this \
                 dir is a mount point, its volume is not mounted); refusing to start anew"
            }
            .into(),
        };
        // Checked before opening, which would make a new log.
        let restart = matches!(start, Start::Restart);
        if restart && !crate::storage::holds_data(&config.data_dir)? {
            return Err(no_log());
        }
        let opening = std::time::Instant::now();
        let (mut storage, _) = RocksStorage::open(&config.data_dir, config.cluster_id, config.id)?;
        if restart && !storage.is_initialized() {
            // Made, then cut short before its first configuration: it
            // would wait for a leader for ever.
            return Err(no_log());
        }
        let opened = opening.elapsed();
        let data_dir = DataDirGuard::new(&config.data_dir)?;
        // A log that exists restarts as it is, whatever `start` says.
        if let (false, Start::Bootstrap(members)) = (storage.is_initialized(), &start) {
            if !members.contains_key(&config.id) {
                let id = config.id;
                return Err(Error::Config(format!(
                    "the initial members do not include this member {id}"
                )));
            }
            let state = machine.snapshot()()
                .map_err(|err| Error::Corrupt(format!("the state machine cannot write its first snapshot: {err}")))?;
            let mut batch = WriteBatch::default();
            storage.bootstrap(&mut batch, members, &membership::encode_snapshot(members, state))?;
            storage.write(batch)?;
        }
        let snapshot_index = storage.snapshot_meta().index;
        let restoring = std::time::Instant::now();
        let mut snapshot_schedule = SnapshotSchedule::new(&config);
        if snapshot_index > 0 {
            let data = storage
                .snapshot_data()?
                .ok_or_else(|| Error::Corrupt("snapshot data is missing".into()))?;
            // The next snapshot is weighed against this one, as against one
            // this run wrote.
            snapshot_schedule.written(data.len());
            let (_, state) = membership::decode_snapshot(&data.into())?;
            machine
                .restore(&state)
                .map_err(|err| Error::Corrupt(format!("the state machine refused the stored snapshot: {err}")))?;
            // Its last entries may have been Raft's own.
            machine.skip(snapshot_index);
        }
        let members = storage.members().clone();
        let db_closed = storage.db().on_close();
        let freeing = freeing::Freeing::new(storage.db(), config.id, storage.truncated_index());
        let raw = raft::RawNode::new(&config.raft_config(snapshot_index), storage, &raft_logger())?;

        let metrics = Arc::new(Metrics::default());
        // Read once before the first proposal: a start on a full disk
        // refuses writes from the first one on.
        let disk = Arc::new(DiskSpace::new(
            &config.data_dir,
            config.keep_free_disk,
            config.election_timeout(),
        ));
        let unflushed = crate::storage::unflushed_bytes(&raw.store().db());
        if let Some(crossed) = disk.refresh(snapshot_schedule.next_bytes(machine.size_hint()), unflushed) {
            disk_space::report(config.id, &crossed);
        }
        let links = Links::default();
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let leader_watch = LeaderWatch::new(reports_tx.clone(), links.clone());
        let mut transport = Transport::new(
            &config,
            links.clone(),
            reports_tx,
            Arc::clone(&metrics),
            Arc::clone(&disk),
        );
        transport.set_members(&members);
        let (inbound_tx, inbound) = mpsc::channel(config.peer_queue);
        let (proposals_tx, proposals) = mpsc::channel(config.proposal_queue);
        let (commands_tx, commands) = mpsc::channel(64);
        let (shutdown_tx, shutdown) = oneshot::channel();
        let (leadership_tx, leadership) = watch::channel(Leadership::default());
        let (snapshots_written, snapshots_done) = mpsc::unbounded_channel();

        let handle = RaftHandle {
            id: config.id,
            proposals: proposals_tx,
            commands: commands_tx,
            leadership,
            metrics: Arc::clone(&metrics),
            disk: Arc::clone(&disk),
            links: links.clone(),
            election_timeout: config.election_timeout(),
        };
        let service = TransportService::new(
            config.id,
            config.cluster_id,
            inbound_tx,
            links.clone(),
            Arc::clone(&disk),
        );
        // Where a slow start goes: opening RocksDB (and replaying its
        // write-ahead log), restoring the snapshot into the machine; the
        // entries after it are applied by the loop's first turns. And
        // where the log ends: after a crash, what a torn tail left.
        tracing::info!(
            member = config.id,
            dir = %config.data_dir.display(),
            snapshot_index,
            last_index = raw.store().last(),
            committed = raw.raft.raft_log.committed,
            open = ?opened,
            restore = ?restoring.elapsed(),
            "raft member starting"
        );
        let config_tick = config.tick;
        let ready_loop = ReadyLoop {
            snapshot_schedule,
            config,
            raw,
            machine,
            transport,
            pending: Pending::new(),
            batch: WriteBatch::default(),
            proposals,
            commands,
            inbound,
            reports,
            shutdown,
            leadership: leadership_tx,
            metrics,
            disk,
            unwritten: Vec::new(),
            removed: false,
            snapshot_started: None,
            freeing,
            snapshots_written,
            snapshots_done,
            leader_watch,
            ticks: tick_clock::TickClock::new(config_tick),
            links,
            last_heard: Default::default(),
            unreachable: Vec::new(),
            data_dir,
        };
        let task = tokio::spawn(ready_loop.run());
        Ok(RaftNode {
            handle,
            service,
            shutdown: Some(shutdown_tx),
            task,
            db_closed,
        })
    }

    /// A handle to send requests with.
    pub fn handle(&self) -> RaftHandle<S::Output> {
        self.handle.clone()
    }

    /// The service peers send messages to; serve it on this member's address.
    pub fn transport_service(&self) -> TransportService {
        self.service.clone()
    }

    /// Stops the Ready loop after its current turn (a write in progress
    /// completes), fails waiting proposals (their outcome unknown), and
    /// closes RocksDB.
    ///
    /// # Errors
    ///
    /// The error that stopped the loop earlier, if one did.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let result = (&mut self.task).await.map_err(|err| match err.try_into_panic() {
            Ok(panic) => Error::Panicked(panic_message(panic.as_ref())),
            Err(_) => Error::Stopped,
        });
        self.wait_closed().await;
        result?
    }

    /// Ends the member abruptly, as a crash would (the loop is cancelled
    /// wherever it waits), and returns once its data dir is closed. For
    /// tests of failure.
    pub async fn kill(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
        self.wait_closed().await;
    }

    /// Waits (up to 10 s) until RocksDB is closed: a write or a snapshot
    /// cut short on a blocking thread holds the database until it ends.
    async fn wait_closed(&mut self) {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), self.db_closed.closed()).await;
    }

    /// Whether the Ready loop has ended (stopped, removed, or failed).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// What a panic said, when it said it with a string (as `panic!` does).
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(message), _) => message.to_string(),
        (None, Some(message)) => message.clone(),
        (None, None) => "a panic without a message".to_string(),
    }
}

impl<S: StateMachine> Drop for RaftNode<S> {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}
