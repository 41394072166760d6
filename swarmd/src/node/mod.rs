//! The node life cycle, as SwarmKit's `agent.Node`: start (open the state
//! dir, start the manager), ready (the Control API serves), stop (on the
//! shutdown signal: stop taking requests, let those in flight finish, close
//! RocksDB, remove the socket), or err.

mod answering;
mod info;
mod long_errors;
mod oversize;
pub mod socket;
pub mod state_dir;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use swarm_proto::v1::control_server::ControlServer;
use swarm_proto::v1::info_server::InfoServer;
use swarm_proto::v1::watch_server::WatchServer;

use crate::error::{Error, Result};
use crate::manager::bootstrap::Recorded;
use crate::manager::controlapi::ControlApi;
use crate::manager::proxy::LeaderOnly;
use crate::manager::raft_store::ApplyResult;
use crate::manager::watchapi::WatchApi;
use crate::manager::{self, Manager, RaftOptions, bootstrap};
use crate::metrics::Metrics;
use info::InfoApi;
use state_dir::StateDir;

use crate::manager::DRAIN_GRACE;

/// What a node is started with (the `swarmd` flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// The state dir.
    pub state_dir: PathBuf,
    /// The Control API's Unix socket.
    pub control_socket: PathBuf,
    /// The name this node reports.
    pub hostname: String,
    /// The manager's Raft settings (its dir is set from the state dir).
    pub raft: RaftOptions,
    /// Where to serve Prometheus metrics, if anywhere.
    pub metrics: Option<SocketAddr>,
    /// Start from a damaged Raft log's records before the damage
    /// (`--salvage-damaged-log`), dropping the damaged one and the rest.
    pub salvage_damaged_log: bool,
}

/// Runs a node until `shutdown` resolves, then stops it cleanly.
///
/// # Errors
///
/// An unusable state dir or socket path, a Raft member that cannot start,
/// or a server that fails; what was found on disk is left as it was.
pub async fn run(options: Options, shutdown: impl Future<Output = ()>) -> Result<()> {
    // The socket's lock first: a daemon that finds another one at its
    // socket stops before it touches (or makes) a state dir.
    let socket = socket::claim(&options.control_socket)?;
    // The state dir's lock next (a second daemon on it is told so), then
    // the addresses: one in use stops a first start before its cluster is
    // made (only the pending identity is, which the next start takes up).
    let state_dir = StateDir::open(&options.state_dir)?;
    // Said at once: a start refused further on ends cleanly itself, and
    // the next one could no longer tell.
    if state_dir.unclean_stop {
        tracing::warn!(
            "the last run on this state dir did not stop cleanly (killed, crashed or its machine lost power): \
             recovering from the Raft log"
        );
    }
    let raft_listener = Manager::bind(&options.raft).await?;
    let metrics_listener = match options.metrics {
        Some(addr) => Some(Metrics::bind(addr).await?),
        None => None,
    };
    let identity = &state_dir.identity;
    tracing::info!(
        raft_cluster = format!("{:016x}", identity.cluster_id),
        node = identity.node_id,
        new = state_dir.created,
        "starting"
    );
    let raft = RaftOptions {
        dir: state_dir.raft_dir(),
        ..options.raft.clone()
    };
    if options.salvage_damaged_log {
        salvage(&raft.dir, identity)?;
    }
    let manager = Manager::start(identity, &raft, raft_listener, state_dir.created).await?;
    // Its Raft data exists now: the identity is the dir's for good.
    if let Err(err) = state_dir.confirm() {
        let _ = manager.stop().await;
        return Err(err);
    }
    // A stop asked for before the node serves (a member that cannot lead,
    // its group's quorum gone; a long start) ends the start there.
    let mut shutdown = std::pin::pin!(shutdown);
    let record = NodeRecord {
        store: manager.store.clone(),
        raft: manager.raft(),
        identity: identity.clone(),
        hostname: options.hostname.clone(),
        raft_addr: manager.raft_addr.clone(),
        raft_options: raft,
    };
    let prepared = tokio::select! {
        prepared = prepare(&record, &manager) => Some(prepared),
        () = &mut shutdown => None,
    };
    let served = match prepared {
        Some(Ok(recorded)) => {
            let retry = (recorded == Recorded::WhenRoom).then(|| tokio::spawn(record.record_when_room()));
            let served = serve(&options, &socket, &state_dir, &manager, metrics_listener, shutdown).await;
            if let Some(retry) = retry {
                retry.abort();
            }
            served
        }
        Some(Err(err)) => Err(err),
        None => {
            tracing::info!("stop requested before the node was ready");
            Ok(())
        }
    };
    let stopped = manager.stop().await;
    // Only now, the state dir closed, may another daemon claim the socket.
    drop(socket);
    // When both failed, the Raft member's error is the cause (a disk that
    // refuses writes, say) and serving's the symptom.
    let result = stopped.and(served);
    if result.is_ok() {
        tracing::info!("stopped");
    }
    result
}

/// Drops a damaged record of the Raft log in `dir` and all after it, as
/// the operator asked; says what it found.
fn salvage(dir: &std::path::Path, identity: &state_dir::Identity) -> Result<()> {
    match swarm_raft::salvage_damaged_log(dir, identity.cluster_id, identity.raft_id)? {
        swarm_raft::Salvage::Intact => {
            tracing::info!(
                "--salvage-damaged-log: the Raft log's write-ahead log is not damaged; nothing was dropped \
                 (damage elsewhere, in a table, cannot be salvaged: the start says so if there is any)"
            );
        }
        swarm_raft::Salvage::Salvaged { last_index, commit } => tracing::warn!(
            last_index,
            commit,
            "--salvage-damaged-log: the Raft log held a damaged record; it and every later one were dropped \
             (writes acknowledged after entry {last_index} are gone, and later entries will reuse their indexes)"
        ),
    }
    Ok(())
}

/// Takes the exclusive lock on the file at `path` (made if missing, mode
/// 0600; never through a symlink, which someone else may have planted
/// there): the lock, held until dropped and released by the kernel if the
/// process dies; `None` if another process holds it.
///
/// # Errors
///
/// The file cannot be opened or locked.
pub(crate) fn exclusive_lock(path: &std::path::Path) -> std::io::Result<Option<std::fs::File>> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(err)) => Err(err),
    }
}

/// The largest Control API request decoded: well above the largest
/// object the manager takes in practice (a config holds 1000 KiB), and
/// small enough that a hostile one (millions of empty repeated entries,
/// each a struct once decoded) costs hundreds of megabytes, not gigabytes.
const MAX_REQUEST_BYTES: usize = 8 * 1024 * 1024;

/// How long the metrics endpoint may take to stop.
const METRICS_STOP: std::time::Duration = std::time::Duration::from_secs(1);

/// What comes before serving: the member leads, the cluster and this
/// node are in the store as they are now, the group knows this member's
/// address (or will once the disk has room: `Recorded::WhenRoom`).
async fn prepare(record: &NodeRecord, manager: &Manager) -> Result<Recorded> {
    manager.wait_until_leading().await?;
    record.record().await
}

/// What a start records of this node: the cluster and its Node in the
/// store, its Raft address in the group.
struct NodeRecord {
    store: swarm_store::MemoryStore,
    raft: swarm_raft::RaftHandle<ApplyResult>,
    identity: state_dir::Identity,
    hostname: String,
    raft_addr: String,
    raft_options: RaftOptions,
}

impl NodeRecord {
    async fn record(&self) -> Result<Recorded> {
        let node = bootstrap::ensure_cluster(
            &self.store,
            &self.identity,
            &self.hostname,
            &self.raft_addr,
            &self.raft_options,
        )
        .await?;
        let address = manager::record_address(&self.raft, &self.raft_addr).await?;
        Ok(if (node, address) == (Recorded::Done, Recorded::Done) {
            Recorded::Done
        } else {
            Recorded::WhenRoom
        })
    }

    /// Records again each time the disk has room, until it all is (or
    /// something else than room refuses it).
    async fn record_when_room(self) {
        let mut room = self.raft.watch_disk_room();
        loop {
            if room.wait_for(|room| *room).await.is_err() {
                return;
            }
            match self.record().await {
                Ok(Recorded::Done) => {
                    tracing::info!(
                        hostname = self.hostname,
                        "recorded this node's description: there is room again"
                    );
                    return;
                }
                // Short again already: wait for the next time.
                Ok(Recorded::WhenRoom) => {
                    if room.changed().await.is_err() {
                        return;
                    }
                }
                Err(err) => {
                    tracing::warn!(%err, "cannot record this node's new description");
                    return;
                }
            }
        }
    }
}

/// What a request that comes once a stop has ended the watches is told.
const STOPPING_REFUSAL: &str = "the manager is stopping: this request was not served (nothing changed)";

/// Serves the Control API until `shutdown`; the socket is removed after.
async fn serve(
    options: &Options,
    socket: &socket::SocketClaim,
    state_dir: &StateDir,
    manager: &Manager,
    metrics_listener: Option<tokio::net::TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    // Without --listen-metrics, requests are not counted at all.
    let metrics = metrics_listener.map(|listener| (Metrics::new(manager.store.clone(), manager.raft()), listener));
    let count_requests = metrics.as_ref().map(|(metrics, _)| metrics.layer());
    let (listener, bound) = socket.bind()?;
    let socket_watch = tokio::spawn(socket::warn_if_removed(options.control_socket.clone()));
    let (stopping, stop_watches) = tokio::sync::watch::channel(false);
    // The node stops on the signal, or when its Raft member has stopped on
    // an error (a disk that refuses writes, say): a manager that can commit
    // nothing should exit with that error, for its supervisor to see, rather
    // than answer Unavailable forever. At the stop the socket's path goes
    // first, so that a client dialing now is told that nothing listens
    // (nothing changed), and the connections already made are taken and
    // served (closing the listener would reset them: a change that may
    // have been made, to their clients). Then the server stops gracefully.
    // Watch streams never end by themselves: they end once the stop began
    // and every other request has its answer, requests that come later
    // refused (`answering`), so that the graceful stop waits only for real
    // requests, and a watch's last words come after the last change.
    let raft = manager.raft();
    let socket_watch_abort = socket_watch.abort_handle();
    let bound_at_stop = bound.clone();
    let stop = async move {
        tokio::select! {
            () = shutdown => {}
            // Its error, if it failed, is what the node then exits with.
            () = raft.stopped() => tracing::warn!("the raft member stopped: stopping the node"),
        }
        socket_watch_abort.abort();
        bound_at_stop.remove();
        let _ = stopping.send(true);
    };
    let answering = answering::Answering::default();
    let (end_watches, watches_end) = tokio::sync::watch::channel(false);
    let mut stop_began = stop_watches.clone();
    let watches_ender = tokio::spawn({
        let answering = answering.clone();
        async move {
            let _ = stop_began.wait_for(|stopping| *stopping).await;
            answering.close_when_idle().await;
            let _ = end_watches.send(true);
        }
    });
    let mut stop_came = stop_watches.clone();
    let incoming = swarm_raft::transport::Incoming::with_limits(
        listener,
        "the Control API",
        crate::connection_limits::control_api(),
    )
    .ending_after(async move {
        let _ = stop_came.wait_for(|stopping| *stopping).await;
    });
    let connections = incoming.connections();
    let leader_only = LeaderOnly::new(manager.raft());
    let control =
        ControlServer::new(ControlApi::new(manager.store.clone()).with_leadership(manager.raft().watch_leadership()))
            // Above gRPC's 4 MiB: a secret or config too large is then told
            // so, by its size limit, rather than by a transport error.
            .max_decoding_message_size(MAX_REQUEST_BYTES);
    let control = tonic::service::interceptor::InterceptedService::new(control, leader_only.clone());
    let watch = WatchServer::with_interceptor(
        WatchApi::new(manager.store.clone(), watches_end).with_leadership(manager.raft().watch_leadership()),
        leader_only,
    );
    let info = InfoServer::new(InfoApi {
        node_id: state_dir.identity.node_id.clone(),
        hostname: options.hostname.clone(),
        state_dir: std::fs::canonicalize(&options.state_dir).unwrap_or_else(|_| options.state_dir.clone()),
        raft_id: state_dir.identity.raft_id,
        raft_addr: manager.raft_addr.clone(),
        raft_timing: (
            options.raft.tick,
            options.raft.heartbeat_ticks,
            options.raft.election_ticks,
        ),
        raft: manager.raft(),
        store: manager.store.clone(),
    });
    let metrics_server = metrics.map(|(metrics, listener)| {
        let mut stopped = stop_watches.clone();
        let stopped = async move {
            let _ = stopped.wait_for(|stopping| *stopping).await;
        };
        tokio::spawn(metrics.serve(listener, stopped))
    });
    let server = tonic::transport::Server::builder()
        .trace_fn(|request| tracing::info_span!("request", rpc = request.uri().path()))
        .layer(tower::util::option_layer(count_requests))
        .layer(tower::util::MapFutureLayer::new(move |answer| {
            // A handler's future does nothing until polled: one refused
            // here made no change.
            let answering = answering.begin();
            async move {
                let Some(answering) = answering else {
                    return Ok(tonic::Status::unavailable(STOPPING_REFUSAL).into_http());
                };
                let answer: Result<http::Response<tonic::body::Body>, _> = answer.await;
                drop(answering);
                answer.map(long_errors::shortened)
            }
        }))
        // Inside the counting: a request too large is counted as refused so.
        .layer(oversize::OversizeLayer)
        .add_service(control)
        .add_service(watch)
        .add_service(info);
    tracing::info!(socket = %options.control_socket.display(), "node is ready");
    // Those in flight get a grace (`DRAIN_GRACE`), not for ever.
    let mut stop_began = stop_watches.clone();
    let grace_over = async move {
        let _ = stop_began.wait_for(|stopping| *stopping).await;
        tokio::time::sleep(DRAIN_GRACE).await;
    };
    let served = tokio::select! {
        // The stream of connections ends the serving once `stop` above
        // came, not tonic's own signal, which only drives `stop` (and
        // makes the end graceful).
        served = server.serve_with_incoming_shutdown(incoming, async {
            stop.await;
            std::future::pending::<()>().await;
        }) => {
            tracing::info!("stopping: no new requests; those in flight finished");
            served.map_err(Error::from)
        }
        () = grace_over => {
            // Dropping the server stops its accepts; each connection is a
            // task of its own, ended by closing its socket.
            let closed = connections.map_or(0, |connections| connections.close_all());
            tracing::warn!(grace = ?DRAIN_GRACE, closed,
                "stopping: requests still in flight after the grace (a client that stopped reading?): \
                 their connections are closed");
            Ok(())
        }
    };
    socket_watch.abort();
    watches_ender.abort();
    // Gone already unless serving ended otherwise.
    bound.remove();
    if let Some(mut metrics_server) = metrics_server {
        // A scrape that never finishes (a client that sends half a
        // request) must not hold the stop: a second, then it is dropped.
        if tokio::time::timeout(METRICS_STOP, &mut metrics_server).await.is_err() {
            tracing::warn!("the metrics endpoint did not stop within a second: dropped");
            metrics_server.abort();
        }
    }
    served
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stop asked for while the node starts ends the start cleanly, with
    /// no socket left behind, and what the start made is whole: the next
    /// start serves.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stop_requested_before_the_node_serves_ends_the_start_cleanly() {
        let root = tempfile::tempdir().expect("tempdir");
        let options = Options {
            state_dir: root.path().join("state"),
            control_socket: root.path().join("swarm.sock"),
            hostname: "node-1".into(),
            raft: RaftOptions {
                dir: PathBuf::new(),
                listen: "127.0.0.1:0".parse().expect("an address"),
                tick: std::time::Duration::from_millis(100),
                heartbeat_ticks: 1,
                election_ticks: 10,
                keep_free_disk: swarm_raft::DEFAULT_KEEP_FREE_DISK,
            },
            metrics: None,
            salvage_damaged_log: false,
        };
        // Already requested: the start stops as soon as the manager runs.
        run(options.clone(), std::future::ready(()))
            .await
            .expect("a clean stop");
        assert!(!options.control_socket.exists(), "the Control API served");
        // What it made is whole: the next start serves.
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(run(options.clone(), async move {
            let _ = stopped.await;
        }));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !options.control_socket.exists() {
            assert!(std::time::Instant::now() < deadline, "the second start never served");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let _ = stop.send(());
        served.await.expect("joined").expect("a clean stop");
    }
}
