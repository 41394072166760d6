//! The receiving side: a tonic service that checks where each batch comes
//! from and hands its messages to the Ready loop.

use bytes::BytesMut;
use futures::StreamExt as _;
use raft::eraftpb::Message;
use swarm_proto::v1::raft_transport_server::{RaftTransport, RaftTransportServer};
use swarm_proto::v1::{RaftAck, RaftBatch, SnapshotChunk};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use super::Links;

/// The largest batch accepted; senders close batches at 4 MiB, and one
/// raft-rs message holds entries up to the configured message size (1 MiB)
/// or a single larger one, of at most `MAX_ENTRY_BYTES` (32 MiB).
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// A message from a peer, with the address the peer says it listens on
/// (empty when it did not say).
pub(crate) struct Inbound {
    pub from_addr: String,
    pub message: Message,
}

/// The transport service of one member; serve it with
/// [`TransportService::into_server`] on the member's address.
#[derive(Clone)]
pub struct TransportService {
    id: u64,
    cluster_id: u64,
    inbound: mpsc::Sender<Inbound>,
    links: Links,
}

impl TransportService {
    pub(crate) fn new(id: u64, cluster_id: u64, inbound: mpsc::Sender<Inbound>, links: Links) -> Self {
        TransportService {
            id,
            cluster_id,
            inbound,
            links,
        }
    }

    /// The tonic server to add to a router.
    pub fn into_server(self) -> RaftTransportServer<Self> {
        RaftTransportServer::new(self).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// Refuses a message of another cluster or for another member; `Ok(false)`
    /// for one on a cut link, which is dropped as a network would.
    fn admit(&self, cluster_id: u64, from: u64, to: u64) -> Result<bool, Status> {
        if cluster_id != self.cluster_id {
            return Err(Status::permission_denied(format!(
                "raft message of cluster {cluster_id:x} sent to a member of cluster {:x}",
                self.cluster_id
            )));
        }
        if to != self.id {
            return Err(Status::invalid_argument(format!(
                "raft message for member {to} sent to member {}",
                self.id
            )));
        }
        Ok(!self.links.is_cut(from))
    }

    async fn deliver(&self, from_addr: &str, message: Message) -> Result<(), Status> {
        let inbound = Inbound {
            from_addr: from_addr.to_string(),
            message,
        };
        self.inbound
            .send(inbound)
            .await
            .map_err(|_| Status::unavailable(format!("raft member {} has stopped", self.id)))
    }
}

fn decode(bytes: &[u8]) -> Result<Message, Status> {
    protobuf::Message::parse_from_bytes(bytes)
        .map_err(|err| Status::invalid_argument(format!("undecodable raft message: {err}")))
}

#[tonic::async_trait]
impl RaftTransport for TransportService {
    async fn send(&self, request: Request<RaftBatch>) -> Result<Response<RaftAck>, Status> {
        let batch = request.into_inner();
        if self.admit(batch.cluster_id, batch.from, batch.to)? {
            for bytes in &batch.messages {
                self.deliver(&batch.from_addr, decode(bytes)?).await?;
            }
        }
        Ok(Response::new(RaftAck {}))
    }

    async fn send_snapshot(&self, request: Request<Streaming<SnapshotChunk>>) -> Result<Response<RaftAck>, Status> {
        let mut chunks = request.into_inner();
        let Some(first) = chunks.next().await.transpose()? else {
            return Err(Status::invalid_argument("empty snapshot stream"));
        };
        let admitted = self.admit(first.cluster_id, first.from, first.to)?;
        let mut message = decode(&first.message)?;
        let mut data = BytesMut::from(&first.data[..]);
        while let Some(chunk) = chunks.next().await.transpose()? {
            data.extend_from_slice(&chunk.data);
        }
        if !admitted {
            return Ok(Response::new(RaftAck {}));
        }
        tracing::info!(from = first.from, bytes = data.len(), "snapshot received");
        message.mut_snapshot().data = data.freeze();
        self.deliver("", message).await?;
        Ok(Response::new(RaftAck {}))
    }
}
