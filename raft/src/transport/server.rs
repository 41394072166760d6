//! The receiving side: a tonic service that checks where each batch comes
//! from and hands its messages to the Ready loop.

use bytes::BytesMut;
use futures::StreamExt as _;
use raft::eraftpb::{Message, MessageType};
use swarm_proto::v1::raft_transport_server::{RaftTransport, RaftTransportServer};
use swarm_proto::v1::{RaftAck, RaftBatch, SnapshotChunk};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use super::Links;
use crate::disk_space::DiskSpace;

/// The largest batch accepted; senders close batches at 4 MiB, and one
/// raft-rs message holds entries up to the configured message size (1 MiB)
/// or a single larger one, of at most `MAX_ENTRY_BYTES` (32 MiB).
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// A message from a peer, with the address the peer says it listens on
/// (empty when it did not say).
pub(crate) struct Inbound {
    pub from_addr: String,
    pub message: Message,
    /// When it arrived: the loop may read it later (`tick_clock`).
    pub received: tokio::time::Instant,
}

/// The transport service of one member; serve it with
/// [`TransportService::into_server`] on the member's address.
#[derive(Clone)]
pub struct TransportService {
    id: u64,
    cluster_id: u64,
    inbound: mpsc::Sender<Inbound>,
    links: Links,
    /// Where what each batch says of its sender's disk goes.
    disk: std::sync::Arc<DiskSpace>,
    /// When a refusal of another cluster's message was last logged as a
    /// warning: one a minute at most, whatever a stranger sends.
    refusal_warned: std::sync::Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

/// How often a refusal of another cluster's messages is logged as a warning
/// (the others at debug level).
const REFUSAL_WARNING_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl TransportService {
    pub(crate) fn new(
        id: u64,
        cluster_id: u64,
        inbound: mpsc::Sender<Inbound>,
        links: Links,
        disk: std::sync::Arc<DiskSpace>,
    ) -> Self {
        TransportService {
            id,
            cluster_id,
            inbound,
            links,
            disk,
            refusal_warned: Default::default(),
        }
    }

    /// The tonic server to add to a router.
    pub fn into_server(self) -> RaftTransportServer<Self> {
        RaftTransportServer::new(self).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// Refuses a message of another cluster or for another member; `Ok(false)`
    /// for one on a cut link, which is dropped as a network would.
    ///
    /// Until the transport has TLS (the cluster issue), the cluster id is
    /// all that keeps a stranger who reaches the port from speaking Raft to
    /// this member, so the refusal never says which cluster this is; the
    /// log does.
    fn admit(&self, cluster_id: u64, from: u64, to: u64) -> Result<bool, Status> {
        if cluster_id != self.cluster_id {
            let (theirs, ours) = (format!("{cluster_id:016x}"), format!("{:016x}", self.cluster_id));
            if self.warn_of_refusal() {
                tracing::warn!(
                    member = self.id,
                    from,
                    their_cluster = theirs,
                    our_cluster = ours,
                    "refused a raft message of another cluster (further ones within a minute at debug level)"
                );
            } else {
                tracing::debug!(
                    member = self.id,
                    from,
                    their_cluster = theirs,
                    our_cluster = ours,
                    "refused a raft message of another cluster"
                );
            }
            return Err(Status::permission_denied(format!(
                "raft message of cluster {cluster_id:016x} sent to a member of another cluster"
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

    /// Whether this refusal is the first in a minute, to be a warning.
    fn warn_of_refusal(&self) -> bool {
        let mut warned = self
            .refusal_warned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = std::time::Instant::now();
        let due = warned.is_none_or(|at| now.duration_since(at) >= REFUSAL_WARNING_EVERY);
        if due {
            *warned = Some(now);
        }
        due
    }

    /// Queues `message` for the loop. `received` is when its batch came:
    /// stamped once, before the first message of the batch waits for room
    /// in the queue, so that a loop stalled long enough to fill it still
    /// reads when the rest came.
    async fn deliver(&self, from_addr: &str, message: Message, received: tokio::time::Instant) -> Result<(), Status> {
        let inbound = Inbound {
            from_addr: from_addr.to_string(),
            message,
            received,
        };
        self.inbound
            .send(inbound)
            .await
            .map_err(|_| Status::unavailable(format!("raft member {} has stopped", self.id)))
    }
}

/// A message of the batch from `from` to `to`, as a peer may send one:
/// addressed as its batch is (replies go to where a message says it came
/// from), and of a kind members exchange. Proposals never travel (each
/// member proposes only to its own log, as the leader), and the kinds
/// raft-rs makes for itself (a tick, an unreachable report) never come
/// from outside; a snapshot comes only as a stream.
fn decode(bytes: &[u8], from: u64, to: u64, snapshot: bool) -> Result<Message, Status> {
    let message: Message = protobuf::Message::parse_from_bytes(bytes)
        .map_err(|err| Status::invalid_argument(format!("undecodable raft message: {err}")))?;
    if (message.from, message.to) != (from, to) {
        return Err(Status::invalid_argument(format!(
            "a raft message from {} to {} in a batch from {from} to {to}",
            message.from, message.to
        )));
    }
    let kind = message.get_msg_type();
    if (kind == MessageType::MsgSnapshot) != snapshot || !exchanged(kind) {
        return Err(Status::invalid_argument(format!(
            "a raft message of kind {kind:?} does not travel this way"
        )));
    }
    Ok(message)
}

/// Whether members send messages of `kind` to each other. Not a
/// leadership transfer request (only the leader starts one, on itself) nor
/// read-index messages (unused): a peer could otherwise ask the leader to
/// hand over to it.
fn exchanged(kind: MessageType) -> bool {
    use MessageType::*;
    matches!(
        kind,
        MsgAppend
            | MsgAppendResponse
            | MsgRequestVote
            | MsgRequestVoteResponse
            | MsgRequestPreVote
            | MsgRequestPreVoteResponse
            | MsgSnapshot
            | MsgHeartbeat
            | MsgHeartbeatResponse
            | MsgTimeoutNow
    )
}

/// The largest snapshot taken from a peer. Far above any store this
/// daemon holds in memory (100,000 objects make about 50 MiB), it bounds
/// what a faulty peer can make a member buffer.
const MAX_SNAPSHOT_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// What a snapshot stream reserves at once.
const INITIAL_RESERVATION: usize = 64 * 1024 * 1024;

/// A snapshot's data put together from its chunks, held to the length its
/// first chunk declared.
struct Reassembly {
    data: BytesMut,
    expected: usize,
}

impl Reassembly {
    fn new(total_bytes: u64) -> Result<Self, Status> {
        if total_bytes > MAX_SNAPSHOT_BYTES {
            return Err(Status::resource_exhausted(format!(
                "a snapshot of {total_bytes} bytes is larger than the {MAX_SNAPSHOT_BYTES} a member takes"
            )));
        }
        let expected = total_bytes as usize;
        Ok(Reassembly {
            // Grown as data comes, past this: a declaration alone must not
            // take memory the member may not have.
            data: BytesMut::with_capacity(expected.min(INITIAL_RESERVATION)),
            expected,
        })
    }

    fn add(&mut self, chunk: &[u8]) -> Result<(), Status> {
        if self.expected == 0 && !chunk.is_empty() {
            return Err(Status::invalid_argument(
                "the snapshot stream declares no length (a sender of an older version?)",
            ));
        }
        if chunk.len() > self.expected - self.data.len() {
            return Err(Status::invalid_argument(format!(
                "the snapshot stream carries more than the {} bytes it declared",
                self.expected
            )));
        }
        self.data.extend_from_slice(chunk);
        Ok(())
    }

    fn finish(self) -> Result<bytes::Bytes, Status> {
        if self.data.len() != self.expected {
            return Err(Status::invalid_argument(format!(
                "the snapshot stream ended after {} of the {} bytes it declared",
                self.data.len(),
                self.expected
            )));
        }
        Ok(self.data.freeze())
    }
}

#[tonic::async_trait]
impl RaftTransport for TransportService {
    async fn send(&self, request: Request<RaftBatch>) -> Result<Response<RaftAck>, Status> {
        let received = tokio::time::Instant::now();
        let batch = request.into_inner();
        if self.admit(batch.cluster_id, batch.from, batch.to)? {
            self.disk.note_peer(batch.from, &batch.from_addr, batch.disk_short);
            for bytes in &batch.messages {
                self.deliver(&batch.from_addr, decode(bytes, batch.from, batch.to, false)?, received)
                    .await?;
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
        let mut message = decode(&first.message, first.from, first.to, true)?;
        if !admitted {
            // Dropped, as a cut link would: read to the end, keep nothing.
            while chunks.next().await.transpose()?.is_some() {}
            return Ok(Response::new(RaftAck {}));
        }
        let mut data = Reassembly::new(first.total_bytes)?;
        data.add(&first.data)?;
        while let Some(chunk) = chunks.next().await.transpose()? {
            data.add(&chunk.data)?;
        }
        let data = data.finish()?;
        tracing::info!(from = first.from, bytes = data.len(), "snapshot received");
        message.mut_snapshot().data = data;
        // Complete only now: it counts as come now.
        self.deliver("", message, tokio::time::Instant::now()).await?;
        Ok(Response::new(RaftAck {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_of_another_cluster_is_refused_without_naming_this_one() {
        let (inbound, _) = mpsc::channel(1);
        let dir = tempfile::tempdir().unwrap();
        let disk = DiskSpace::new(dir.path(), 0, std::time::Duration::from_secs(1));
        let service = TransportService::new(2, 0x5eed_cafe, inbound, Links::default(), disk.into());
        assert_eq!(service.admit(0x5eed_cafe, 1, 2).ok(), Some(true));
        let refused = service.admit(0xbad, 1, 2).expect_err("another cluster");
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        assert!(
            !refused.message().contains("5eedcafe"),
            "the refusal tells a stranger the cluster id: {}",
            refused.message()
        );
        let misaddressed = service.admit(0x5eed_cafe, 1, 3).expect_err("another member");
        assert_eq!(misaddressed.code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn a_snapshot_is_held_to_the_length_it_declared() {
        let mut whole = Reassembly::new(5).expect("declared");
        whole.add(b"ab").expect("fits");
        whole.add(b"cde").expect("fits");
        assert_eq!(&whole.finish().expect("complete")[..], b"abcde");

        let mut long = Reassembly::new(3).expect("declared");
        long.add(b"ab").expect("fits");
        assert_eq!(
            long.add(b"cd").expect_err("too long").code(),
            tonic::Code::InvalidArgument
        );

        let mut short = Reassembly::new(3).expect("declared");
        short.add(b"ab").expect("fits");
        assert_eq!(
            short.finish().expect_err("too short").code(),
            tonic::Code::InvalidArgument
        );

        let refused = Reassembly::new(MAX_SNAPSHOT_BYTES + 1).err().expect("too large");
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    }

    fn bytes(kind: MessageType, from: u64, to: u64) -> Vec<u8> {
        let mut message = Message::default();
        message.set_msg_type(kind);
        message.from = from;
        message.to = to;
        protobuf::Message::write_to_bytes(&message).unwrap()
    }

    #[test]
    fn only_messages_peers_exchange_addressed_as_their_batch_are_taken() {
        let heartbeat = decode(&bytes(MessageType::MsgHeartbeat, 1, 2), 1, 2, false).expect("taken");
        assert_eq!(heartbeat.get_msg_type(), MessageType::MsgHeartbeat);
        assert!(decode(&bytes(MessageType::MsgSnapshot, 1, 2), 1, 2, true).is_ok());
        for (kind, from, to, snapshot) in [
            // Claims another sender or recipient than its batch.
            (MessageType::MsgAppend, 3, 2, false),
            (MessageType::MsgAppend, 1, 3, false),
            // Proposals and raft-rs's own kinds never travel.
            (MessageType::MsgPropose, 1, 2, false),
            (MessageType::MsgHup, 1, 2, false),
            (MessageType::MsgUnreachable, 1, 2, false),
            // A snapshot only as a stream, and a stream only of one.
            (MessageType::MsgSnapshot, 1, 2, false),
            (MessageType::MsgAppend, 1, 2, true),
        ] {
            let refused = decode(&bytes(kind, from, to), 1, 2, snapshot).expect_err("refused");
            assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{kind:?}");
        }
    }
}
