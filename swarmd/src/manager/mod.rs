//! What a manager runs: the store behind Raft, the Raft transport server,
//! the objects of a new cluster, and the Control API.

pub mod bootstrap;
pub mod controlapi;
pub mod proxy;
mod raft_settings;
pub mod raft_store;
mod redact;
mod selector;
pub mod watchapi;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use swarm_raft::{RaftNode, Start};
use swarm_store::MemoryStore;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::node::state_dir::Identity;
use raft_store::{RaftProposer, StoreMachine};

/// How a manager's Raft member is set up.
#[derive(Debug, Clone)]
pub struct RaftOptions {
    /// Where RocksDB keeps the log.
    pub dir: PathBuf,
    /// The address the Raft transport listens on.
    pub listen: SocketAddr,
    /// The length of one tick.
    pub tick: Duration,
    /// Ticks between heartbeats.
    pub heartbeat_ticks: usize,
    /// Ticks without a leader before an election.
    pub election_ticks: usize,
    /// Bytes kept free on the log's filesystem besides room for a
    /// snapshot; 0 for no check.
    pub keep_free_disk: u64,
}

/// A running manager.
pub struct Manager {
    /// The cluster state, committed through Raft.
    pub store: MemoryStore,
    /// The address other managers reach this one's Raft transport at.
    pub raft_addr: String,
    raft: RaftNode<StoreMachine>,
    transport: TransportServer,
    raft_settings: JoinHandle<()>,
}

impl Manager {
    /// Binds the Raft transport's address (before anything else of a start
    /// is made, so that one in use fails it first).
    ///
    /// # Errors
    ///
    /// The address cannot be bound.
    pub async fn bind(options: &RaftOptions) -> Result<TcpListener> {
        TcpListener::bind(options.listen)
            .await
            .map_err(Error::io(format!("bind the Raft transport on {}", options.listen)))
    }

    /// Starts the Raft member (a new single-member group on the node's
    /// `first_start`, else the one in `options.dir`, which must be there)
    /// with the store behind it, and serves the Raft transport on
    /// `listener` (from [`Manager::bind`]); [`Manager::wait_until_leading`]
    /// then waits until this member leads.
    ///
    /// # Errors
    ///
    /// Raft cannot start (a data dir of another cluster, a corrupt log, no
    /// log after a first start).
    pub async fn start(
        identity: &Identity,
        options: &RaftOptions,
        listener: TcpListener,
        first_start: bool,
    ) -> Result<Manager> {
        let listening = listener
            .local_addr()
            .map_err(Error::io("read the transport's address"))?;
        let addr = advertised(listening);
        let mut config = swarm_raft::Config::new(identity.raft_id, identity.cluster_id, &options.dir, addr.clone());
        config.tick = options.tick;
        config.heartbeat_ticks = options.heartbeat_ticks;
        config.election_ticks = options.election_ticks;
        config.keep_free_disk = options.keep_free_disk;

        let proposer = RaftProposer::new();
        let (history, history_bytes) = watchapi::WATCH_HISTORY;
        let store = MemoryStore::builder()
            .proposer(proposer.clone())
            .watch_buffer_bytes(watchapi::WATCH_BUFFER_BYTES)
            .watch_history(history, history_bytes)
            .build();
        // The first start makes a group of this one member; the cluster
        // issue adds joining an existing one.
        let members = BTreeMap::from([(identity.raft_id, addr.clone())]);
        let start = if first_start {
            Start::Bootstrap(members)
        } else {
            Start::Restart
        };
        let raft = RaftNode::start(config, StoreMachine::new(store.clone()), start).await?;
        proposer.connect(raft.handle());

        let (stop, stopped) = oneshot::channel::<()>();
        let router = tonic::transport::Server::builder().add_service(raft.transport_service().into_server());
        let incoming = swarm_raft::transport::Incoming::with_limits(
            listener,
            "the Raft transport",
            crate::connection_limits::raft_transport(),
        );
        let connections = incoming.connections();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(err) = router.serve_with_incoming_shutdown(incoming, shutdown).await {
                tracing::error!(%err, "the Raft transport server failed");
            }
        });
        tracing::info!(%listening, advertised = %addr, "raft transport listening");
        let manager = Manager {
            store: store.clone(),
            raft_addr: addr,
            raft_settings: raft_settings::follow(store.clone(), raft.handle()),
            raft,
            transport: TransportServer {
                stop,
                task,
                connections,
            },
        };
        Ok(manager)
    }

    /// Waits until this member leads and has applied what its term
    /// inherited.
    ///
    /// # Errors
    ///
    /// The member stopped first.
    pub async fn wait_until_leading(&self) -> Result<()> {
        let mut leadership = self.raft.handle().watch_leadership();
        leadership
            .wait_for(|seen| seen.caught_up)
            .await
            .map_err(|_| Error::Raft(swarm_raft::Error::Stopped))?;
        Ok(())
    }

    /// The handle of this manager's Raft member.
    pub fn raft(&self) -> swarm_raft::RaftHandle<raft_store::ApplyResult> {
        self.raft.handle()
    }

    /// Hands leadership over if another manager can take it, then stops the
    /// Raft member (proposals in flight fail, RocksDB closes) and its
    /// transport server.
    ///
    /// # Errors
    ///
    /// The error that stopped the Raft member earlier, if one did.
    pub async fn stop(self) -> Result<()> {
        let Manager {
            raft,
            transport,
            raft_settings,
            ..
        } = self;
        raft_settings.abort();
        // While the transport still serves: the new leader's first message
        // is what tells this member the transfer completed.
        raft.handle().hand_over().await;
        let stopped = raft.shutdown().await;
        transport.stop().await;
        Ok(stopped?)
    }
}

/// Records the Raft address of this manager, reached at `addr`, in the
/// group if it moved since the last start (another `--listen-remote-api`,
/// or port 0): the address is replicated state, which every member and
/// every later start reach it by. Only a leader can; a follower's move is
/// the cluster issue's (forwarded to the leader), and until then it says so.
///
/// # Errors
///
/// The change failed for another reason than this member not leading or
/// its disk short of room.
pub(crate) async fn record_address(
    raft: &swarm_raft::RaftHandle<raft_store::ApplyResult>,
    addr: &str,
) -> Result<bootstrap::Recorded> {
    match raft.move_member(raft.id(), addr).await {
        Ok(_) => Ok(bootstrap::Recorded::Done),
        Err(swarm_raft::Error::NotLeader { .. }) => {
            tracing::warn!(addr, "not leading: the group keeps this member's old address");
            Ok(bootstrap::Recorded::Done)
        }
        Err(err @ swarm_raft::Error::NoSpace { .. }) => {
            tracing::warn!(addr, %err, "the group keeps this member's old address until there is room");
            Ok(bootstrap::Recorded::WhenRoom)
        }
        Err(err) => Err(err.into()),
    }
}

/// How long requests in flight when a stop begins may take to finish, on
/// the Control API and the Raft transport: far more than any answer needs
/// (a stop takes about 0.1 s), and well within the 10 s a signalled stop
/// is given. Then their connections are closed: a client that stopped
/// reading (a `swarmctl watch | less` left alone, a half-sent request)
/// must not hold a stop, the one after a Raft failure included.
pub(crate) const DRAIN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// The Raft transport's server task.
struct TransportServer {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    connections: Option<swarm_raft::transport::Connections>,
}

impl TransportServer {
    /// Stops taking connections, gives those in flight [`DRAIN_GRACE`],
    /// then closes them.
    async fn stop(self) {
        let TransportServer {
            stop,
            mut task,
            connections,
        } = self;
        let _ = stop.send(());
        if tokio::time::timeout(DRAIN_GRACE, &mut task).await.is_err() {
            let closed = connections.map_or(0, |connections| connections.close_all());
            tracing::warn!(
                closed,
                "the raft transport's connections did not finish within the grace: closed"
            );
            task.abort();
        }
    }
}

/// The address peers are told to use: the listening one, with loopback in
/// place of "any address" (a single manager; the cluster issue adds
/// `--advertise-addr`).
fn advertised(listening: SocketAddr) -> String {
    let mut addr = listening;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    addr.to_string()
}
