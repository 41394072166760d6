//! The Info API: what this node is and what its Raft member sees, answered
//! by this node itself. It never passes the leader check: a node that does
//! not lead still says so, and who does.

use std::path::PathBuf;
use std::time::Duration;

use swarm_proto::v1::info_server::Info;
use swarm_proto::v1::{Cluster, GetInfoRequest, GetInfoResponse, ManagerInfo, Node, NodeRole};
use swarm_raft::RaftHandle;
use swarm_store::{MemoryStore, Read as _};
use tonic::{Request, Response, Status};

use crate::manager::raft_store::ApplyResult;

/// How long the Raft member may take to report its status. It answers
/// between two turns of its loop, so it is quick unless the loop is stuck
/// (a disk that hangs on a write): then the answer says so instead of
/// hanging too.
const STATUS_WITHIN: Duration = Duration::from_secs(2);

/// Serves the Info API of one node.
pub struct InfoApi {
    pub node_id: String,
    pub hostname: String,
    pub state_dir: PathBuf,
    /// This manager's Raft member id and transport address.
    pub raft_id: u64,
    pub raft_addr: String,
    /// Its timing, as started.
    pub raft_timing: (Duration, usize, usize),
    pub raft: RaftHandle<ApplyResult>,
    /// The cluster state, for its counts.
    pub store: MemoryStore,
}

#[tonic::async_trait]
impl Info for InfoApi {
    async fn get_info(&self, _: Request<GetInfoRequest>) -> Result<Response<GetInfoResponse>, Status> {
        let (cluster_id, nodes, managers) = {
            let read = self.store.read();
            let nodes = read.list::<Node>();
            let managers = nodes
                .iter()
                .filter(|node| node.role == NodeRole::Manager as i32)
                .count();
            let cluster_id = read.list::<Cluster>().first().map(|cluster| cluster.id.clone());
            (cluster_id.unwrap_or_default(), nodes.len(), managers)
        };
        Ok(Response::new(GetInfoResponse {
            cluster_id,
            nodes: u32::try_from(nodes).unwrap_or(u32::MAX),
            managers: u32::try_from(managers).unwrap_or(u32::MAX),
            version: env!("CARGO_PKG_VERSION").to_string(),
            node_id: self.node_id.clone(),
            hostname: self.hostname.clone(),
            role: NodeRole::Manager.into(),
            state_dir: self.state_dir.display().to_string(),
            manager: Some(self.manager().await),
        }))
    }
}

impl InfoApi {
    async fn manager(&self) -> ManagerInfo {
        let leadership = self.raft.leadership();
        let mut info = ManagerInfo {
            raft_id: self.raft_id.to_string(),
            addr: self.raft_addr.clone(),
            term: leadership.term,
            is_leader: leadership.is_leader,
            leader_raft_id: leadership.leader_id.map(|id| id.to_string()).unwrap_or_default(),
            leader_addr: leadership.leader_addr.unwrap_or_default(),
            tick: prost_types::Duration::try_from(self.raft_timing.0).ok(),
            heartbeat_ticks: u32::try_from(self.raft_timing.1).unwrap_or(u32::MAX),
            election_ticks: u32::try_from(self.raft_timing.2).unwrap_or(u32::MAX),
            ..Default::default()
        };
        let metrics = self.raft.metrics();
        info.disk_free_bytes = metrics.disk_free_bytes;
        info.disk_reserve_bytes = metrics.disk_reserve_bytes;
        info.writes_refused = metrics.disk_refusing_writes;
        info.removals_refused = metrics.disk_refusing_removals;
        match tokio::time::timeout(STATUS_WITHIN, self.raft.status()).await {
            Ok(Ok(status)) => {
                info.members = status
                    .members
                    .into_iter()
                    .map(|(id, addr)| (id.to_string(), addr))
                    .collect();
                info.commit_index = status.commit;
                info.applied_index = status.applied;
                info.snapshot_index = status.snapshot_index;
                info.first_log_index = status.first_index;
                info.last_log_index = status.last_index;
            }
            Ok(Err(err)) => info.raft_error = err.to_string(),
            Err(_) => {
                info.raft_error = format!(
                    "the raft member did not answer within {}s: its loop is stuck (a disk that hangs?)",
                    STATUS_WITHIN.as_secs()
                );
            }
        }
        info
    }
}
