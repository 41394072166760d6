//! Raft messages between members, over tonic.
//!
//! The Ready loop hands outgoing messages to `Transport::send`, which
//! never waits: each peer has a bounded queue drained by its own task
//! (`peer`), so a slow or dead peer costs dropped messages (which raft-rs
//! resends once told the peer is unreachable), never a stalled loop.
//! Snapshots go on their own task, streamed in chunks. Incoming messages
//! arrive through [`TransportService`] (`server`) and reach the loop over a
//! channel.

mod accept;
mod admission;
mod channel;
mod links;
mod peer;
mod server;
mod split;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use raft::eraftpb::{Message, MessageType};
use swarm_proto::v1::raft_transport_client::RaftTransportClient;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

pub use accept::{Incoming, Listener};
pub use admission::{Admitted, Connections, Deadline, Limits};
pub use links::Links;
pub(crate) use server::Inbound;
pub use server::TransportService;

use crate::disk_space::DiskSpace;
use crate::metrics::Metrics;
use peer::Route;

/// What the transport's tasks tell the Ready loop, which relays it to
/// raft-rs.
#[derive(Debug)]
pub(crate) enum Report {
    /// Sending to this peer failed.
    Unreachable(u64),
    /// A snapshot was streamed to `to`, or failed to be.
    Snapshot { to: u64, delivered: bool },
    /// A probe of the silent leader's address (`node::failover`).
    LeaderProbe { leader: u64, term: u64, refused: bool },
}

struct PeerLink {
    addr: String,
    queue: mpsc::Sender<Message>,
    client: RaftTransportClient<Channel>,
    /// Its sending task; `None` once retired.
    task: Option<JoinHandle<()>>,
}

/// How long a retired link may take to send what was queued for it.
const RETIRE_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

impl PeerLink {
    /// Ends the link once what is queued on it went out (or after
    /// [`RETIRE_WITHIN`]) rather than at once: the last messages to a
    /// member leaving the group carry the commit of its removal, which is
    /// what tells it to stop.
    fn retire(mut self) {
        let Some(mut task) = self.task.take() else {
            return;
        };
        // Dropping the link closes its queue: the task ends once drained.
        drop(self);
        tokio::spawn(async move {
            if tokio::time::timeout(RETIRE_WITHIN, &mut task).await.is_err() {
                task.abort();
            }
        });
    }
}

impl Drop for PeerLink {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The sending side of one member's transport, owned by its Ready loop.
pub(crate) struct Transport {
    id: u64,
    addr: String,
    cluster_id: u64,
    peer_queue: usize,
    snapshot_chunk_bytes: usize,
    max_message_bytes: u64,
    links: Links,
    peers: HashMap<u64, PeerLink>,
    reports: mpsc::UnboundedSender<Report>,
    metrics: Arc<Metrics>,
    /// What each batch says of this member's disk.
    disk: Arc<DiskSpace>,
}

impl Transport {
    pub(crate) fn new(
        config: &crate::Config,
        links: Links,
        reports: mpsc::UnboundedSender<Report>,
        metrics: Arc<Metrics>,
        disk: Arc<DiskSpace>,
    ) -> Self {
        Transport {
            id: config.id,
            addr: config.addr.clone(),
            cluster_id: config.cluster_id,
            peer_queue: config.peer_queue,
            snapshot_chunk_bytes: config.snapshot_chunk_bytes,
            max_message_bytes: config.max_message_bytes,
            links,
            peers: HashMap::new(),
            reports,
            metrics,
            disk,
        }
    }

    /// Starts, restarts (on a new address) and stops peer tasks so that
    /// there is one per member other than this one.
    pub(crate) fn set_members(&mut self, members: &BTreeMap<u64, String>) {
        self.disk.set_members(members.keys().copied());
        let gone: Vec<u64> = self
            .peers
            .iter()
            .filter(|(id, link)| members.get(id) != Some(&link.addr))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            if let Some(link) = self.peers.remove(&id) {
                link.retire();
            }
        }
        for (&id, addr) in members {
            if id == self.id || self.peers.contains_key(&id) {
                continue;
            }
            match self.connect(id, addr) {
                Ok(link) => {
                    self.peers.insert(id, link);
                }
                Err(err) => tracing::error!(peer = id, addr, %err, "bad peer address; messages to it are dropped"),
            }
        }
    }

    fn connect(&self, to: u64, addr: &str) -> Result<PeerLink, tonic::transport::Error> {
        let client = RaftTransportClient::new(channel::peer_channel(addr)?);
        let (queue, receiver) = mpsc::channel(self.peer_queue);
        let route = Route {
            cluster_id: self.cluster_id,
            from: self.id,
            to,
        };
        let envelope = peer::Envelope {
            route,
            from_addr: self.addr.clone(),
            disk: Arc::clone(&self.disk),
        };
        let task = tokio::spawn(peer::run(
            envelope,
            receiver,
            client.clone(),
            self.links.clone(),
            self.reports.clone(),
            Arc::clone(&self.metrics),
        ));
        Ok(PeerLink {
            addr: addr.to_string(),
            queue,
            client,
            task: Some(task),
        })
    }

    /// Learns the address of a peer that sent a message but is not (yet)
    /// among the members this member knows, so that replies reach it.
    pub(crate) fn learn(&mut self, id: u64, addr: &str) {
        if id == self.id || addr.is_empty() || self.peers.contains_key(&id) {
            return;
        }
        match self.connect(id, addr) {
            Ok(link) => {
                tracing::info!(peer = id, addr, "learned a peer's address from its message");
                self.peers.insert(id, link);
            }
            Err(err) => tracing::warn!(peer = id, addr, %err, "a peer sent an unusable address"),
        }
    }

    /// Queues `messages` for their peers without waiting. Returns the peers
    /// whose queue was full or who are unknown: the caller reports them
    /// unreachable to raft-rs.
    pub(crate) fn send(&mut self, messages: Vec<Message>) -> Vec<u64> {
        let mut unreachable = Vec::new();
        let max_message_bytes = self.max_message_bytes;
        let messages = messages
            .into_iter()
            .flat_map(|message| split::split_append(message, max_message_bytes));
        for message in messages {
            let to = message.to;
            let Some(link) = self.peers.get(&to) else {
                self.metrics.add_messages_dropped(1);
                unreachable.push(to);
                if message.get_msg_type() == MessageType::MsgSnapshot {
                    // Unreachable alone leaves the peer waiting on this
                    // snapshot for good: raft-rs retries only once told.
                    let _ = self.reports.send(Report::Snapshot { to, delivered: false });
                }
                continue;
            };
            if message.get_msg_type() == MessageType::MsgSnapshot {
                if self.links.is_cut(to) {
                    let _ = self.reports.send(Report::Snapshot { to, delivered: false });
                    continue;
                }
                let route = Route {
                    cluster_id: self.cluster_id,
                    from: self.id,
                    to,
                };
                tokio::spawn(peer::send_snapshot(
                    route,
                    message,
                    link.client.clone(),
                    self.snapshot_chunk_bytes,
                    self.reports.clone(),
                    Arc::clone(&self.metrics),
                ));
                continue;
            }
            if link.queue.try_send(message).is_err() {
                self.metrics.add_messages_dropped(1);
                if !unreachable.contains(&to) {
                    unreachable.push(to);
                }
            }
        }
        unreachable
    }
}
