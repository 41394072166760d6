//! The objects a new cluster starts with: the `default` Cluster, holding
//! the cluster-wide settings, and the Node of its first manager.

use swarm_proto::v1::{
    Annotations, CaConfig, Cluster, ClusterSpec, DispatcherConfig, ManagerStatus, Node, NodeDescription,
    NodeMembership, NodeRole, NodeSpec, NodeStatus, OrchestrationConfig, RaftConfig, manager_status, node_status,
};
use swarm_store::{MemoryStore, Read as _};

use super::RaftOptions;
use crate::error::{Error, Result};
use crate::node::state_dir::Identity;

/// Whether a start recorded what changed of this node, or must again once
/// its disk has room (a restart on a nearly full disk serves with the node
/// as it was recorded rather than not at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// All recorded, or nothing to.
    Done,
    /// Refused for want of room: to record again once there is.
    WhenRoom,
}

/// The name of the one cluster object, as in SwarmKit.
pub const DEFAULT_CLUSTER: &str = "default";

/// Creates the `default` cluster and this manager's node, if missing, in
/// one transaction. A restart finds both and changes nothing, but for the
/// node's hostname and Raft address if it starts under others (as a docker
/// node's description follows its host).
///
/// # Errors
///
/// The transaction failed (for example this manager lost leadership);
/// [`Error::FailedPrecondition`] when the store holds a cluster without
/// this node.
pub async fn ensure_cluster(
    store: &MemoryStore,
    identity: &Identity,
    hostname: &str,
    raft_addr: &str,
    raft: &RaftOptions,
) -> Result<Recorded> {
    let (has_cluster, node) = store.view(|read| {
        (
            read.get_by_name::<Cluster>(DEFAULT_CLUSTER).is_some(),
            read.get::<Node>(&identity.node_id).map(|node| Node::clone(node)),
        )
    });
    // This node as it is now, if the stored one says otherwise.
    let refreshed = node.as_ref().and_then(|node| {
        let mut now = node.clone();
        now.description.get_or_insert_default().hostname = hostname.to_string();
        if let Some(status) = now.manager_status.as_mut() {
            // The Raft group learns it too (`manager::record_address`).
            status.addr = raft_addr.to_string();
        }
        (&now != node).then_some(now)
    });
    if has_cluster && node.is_none() {
        // The cluster was made with this node in it: its identity file
        // names another (edited, or copied from another node's state dir).
        // Adding it would leave two managers on one Raft member.
        return Err(Error::FailedPrecondition(format!(
            "this state dir's cluster has no node {}, which its identity file names: the file was changed or \
             comes from another node's state dir; refusing to start",
            identity.node_id
        )));
    }
    if has_cluster && node.is_some() && refreshed.is_none() {
        return Ok(Recorded::Done);
    }
    let created = node.is_none();
    let written = store
        .update(|tx| {
            if !has_cluster {
                tx.create(default_cluster(raft))?;
            }
            if created {
                tx.create(first_manager(identity, hostname, raft_addr))?;
            } else if let Some(now) = refreshed {
                tx.update(now)?;
            }
            Ok(())
        })
        .await;
    match written {
        Ok(()) => {}
        // A restart on a nearly full disk serves reads with the node as it
        // was recorded rather than not at all; a first start cannot.
        Err(swarm_store::Error::ResourceExhausted(why)) if has_cluster && !created => {
            tracing::warn!(node = identity.node_id, hostname, raft_addr, %why,
                "cannot record this node's new description now; serving with the one recorded until there is room");
            return Ok(Recorded::WhenRoom);
        }
        Err(err) => return Err(err.into()),
    }
    if created {
        tracing::info!(
            cluster = DEFAULT_CLUSTER,
            node = identity.node_id,
            "created the cluster and its first manager"
        );
    } else {
        tracing::info!(
            node = identity.node_id,
            hostname,
            raft_addr,
            "this node's description changed"
        );
    }
    Ok(Recorded::Done)
}

fn duration(duration: std::time::Duration) -> Option<prost_types::Duration> {
    prost_types::Duration::try_from(duration).ok()
}

fn default_cluster(raft: &RaftOptions) -> Cluster {
    let defaults = swarm_raft::Config::new(1, 1, "", "");
    Cluster {
        id: swarm_store::id::generate(),
        spec: Some(ClusterSpec {
            annotations: Some(Annotations {
                name: DEFAULT_CLUSTER.into(),
                ..Default::default()
            }),
            orchestration: Some(OrchestrationConfig {
                task_history_retention_limit: 5,
            }),
            raft: Some(RaftConfig {
                snapshot_interval: defaults.snapshot_interval,
                keep_old_snapshots: 0,
                log_entries_for_slow_followers: defaults.keep_entries,
                heartbeat_tick: raft.heartbeat_ticks as u32,
                election_tick: raft.election_ticks as u32,
                tick: duration(raft.tick),
            }),
            dispatcher: Some(DispatcherConfig {
                heartbeat_period: duration(std::time::Duration::from_secs(5)),
            }),
            ca_config: Some(CaConfig {
                node_cert_expiry: duration(std::time::Duration::from_secs(90 * 24 * 3600)),
            }),
            task_defaults: None,
        }),
        ..Default::default()
    }
}

fn first_manager(identity: &Identity, hostname: &str, raft_addr: &str) -> Node {
    Node {
        id: identity.node_id.clone(),
        spec: Some(NodeSpec {
            annotations: Some(Annotations::default()),
            desired_role: NodeRole::Manager.into(),
            membership: NodeMembership::Accepted.into(),
            ..Default::default()
        }),
        description: Some(NodeDescription {
            hostname: hostname.to_string(),
            ..Default::default()
        }),
        status: Some(NodeStatus {
            state: node_status::State::Ready.into(),
            ..Default::default()
        }),
        manager_status: Some(ManagerStatus {
            raft_id: identity.raft_id,
            addr: raft_addr.to_string(),
            leader: true,
            reachability: manager_status::Reachability::Reachable.into(),
        }),
        role: NodeRole::Manager.into(),
        ..Default::default()
    }
}
