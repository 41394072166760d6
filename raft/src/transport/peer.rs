//! One task per peer: takes messages from the peer's bounded queue and
//! sends them in batches, one batch in flight at a time.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use protobuf::Message as _;
use raft::eraftpb::Message;
use swarm_proto::v1::raft_transport_client::RaftTransportClient;
use swarm_proto::v1::{RaftBatch, SnapshotChunk};
use tokio::sync::mpsc;
use tonic::transport::Channel;

use super::{Links, Report};
use crate::disk_space::DiskSpace;
use crate::metrics::Metrics;

/// A batch is closed at this size, well under the gRPC message limit the
/// receiver sets.
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Back-off after a failed send, doubling up to the maximum.
const BACKOFF_MIN: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Who is sending to whom, in which cluster: what every batch says.
#[derive(Clone, Copy)]
pub(crate) struct Route {
    pub cluster_id: u64,
    pub from: u64,
    pub to: u64,
}

/// What each batch to one peer says besides its messages.
pub(crate) struct Envelope {
    pub route: Route,
    /// Where the sender's transport listens.
    pub from_addr: String,
    /// The sender's disk, said to be short of room or not.
    pub disk: Arc<DiskSpace>,
}

impl Envelope {
    /// A batch of `messages` in this envelope.
    fn batch(&self, messages: Vec<Bytes>) -> RaftBatch {
        RaftBatch {
            cluster_id: self.route.cluster_id,
            from: self.route.from,
            to: self.route.to,
            messages,
            from_addr: self.from_addr.clone(),
            disk_short: self.disk.short(),
        }
    }
}

/// Sends what arrives on `queue` to the peer until the queue closes (the
/// peer was removed or the member stopped).
pub(crate) async fn run(
    envelope: Envelope,
    mut queue: mpsc::Receiver<Message>,
    mut client: RaftTransportClient<Channel>,
    links: Links,
    reports: mpsc::UnboundedSender<Report>,
    metrics: Arc<Metrics>,
) {
    let route = envelope.route;
    let mut backoff = BACKOFF_MIN;
    while let Some(first) = queue.recv().await {
        let mut messages = Vec::new();
        let mut size = 0;
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message.write_to_bytes() {
                Ok(bytes) => {
                    size += bytes.len();
                    messages.push(Bytes::from(bytes));
                }
                Err(err) => tracing::error!(to = route.to, %err, "cannot encode a raft message; dropped"),
            }
            if size < MAX_BATCH_BYTES {
                next = queue.try_recv().ok();
            }
        }
        if links.is_cut(route.to) || messages.is_empty() {
            metrics.add_messages_dropped(messages.len());
            continue;
        }
        let count = messages.len();
        match client.send(envelope.batch(messages)).await {
            Ok(_) => {
                metrics.add_messages_sent(count);
                backoff = BACKOFF_MIN;
            }
            Err(status) => {
                tracing::debug!(to = route.to, %status, "peer unreachable");
                metrics.add_messages_dropped(count);
                // raft-rs resends what matters once told; what queued up
                // meanwhile is stale by the time the peer answers again.
                let _ = reports.send(Report::Unreachable(route.to));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                while queue.try_recv().is_ok() {
                    metrics.add_messages_dropped(1);
                }
            }
        }
    }
}

/// How long a snapshot of `bytes` may take to reach a peer: a minute, and
/// a second more per MiB (100 MB went to a peer on loopback in about a
/// second; BENCHMARKS.md).
fn snapshot_deadline(bytes: usize) -> std::time::Duration {
    std::time::Duration::from_secs(60 + (bytes >> 20) as u64)
}

/// Streams one snapshot message to the peer, its data cut into chunks, and
/// reports to the Ready loop whether it arrived.
pub(crate) async fn send_snapshot(
    route: Route,
    mut message: Message,
    mut client: RaftTransportClient<Channel>,
    chunk_bytes: usize,
    reports: mpsc::UnboundedSender<Report>,
    metrics: Arc<Metrics>,
) {
    let data = std::mem::take(&mut message.mut_snapshot().data);
    let size = data.len();
    let header = match message.write_to_bytes() {
        Ok(header) => Bytes::from(header),
        Err(err) => {
            tracing::error!(to = route.to, %err, "cannot encode a snapshot message");
            let _ = reports.send(Report::Snapshot {
                to: route.to,
                delivered: false,
            });
            return;
        }
    };
    let mut chunks = Vec::with_capacity(size / chunk_bytes + 1);
    let mut offset = 0;
    loop {
        let end = (offset + chunk_bytes).min(size);
        chunks.push(SnapshotChunk {
            cluster_id: route.cluster_id,
            from: route.from,
            to: route.to,
            message: if offset == 0 { header.clone() } else { Bytes::new() },
            data: data.slice(offset..end),
            total_bytes: if offset == 0 { size as u64 } else { 0 },
        });
        offset = end;
        if offset >= size {
            break;
        }
    }
    let started = std::time::Instant::now();
    let deadline = snapshot_deadline(size);
    let sending = client.send_snapshot(tokio_stream::iter(chunks));
    let delivered = match tokio::time::timeout(deadline, sending).await {
        Ok(Ok(_)) => {
            metrics.add_snapshot_sent();
            tracing::info!(to = route.to, bytes = size, elapsed = ?started.elapsed(), "snapshot sent");
            true
        }
        Ok(Err(status)) => {
            tracing::warn!(to = route.to, bytes = size, %status, "snapshot not delivered");
            false
        }
        // A peer that takes the stream and stops reading would otherwise
        // hold its progress in raft-rs's snapshot state for ever; reported
        // as failed, raft-rs sends it again.
        Err(_) => {
            tracing::warn!(to = route.to, bytes = size, ?deadline, "snapshot not delivered in time");
            false
        }
    };
    let _ = reports.send(Report::Snapshot {
        to: route.to,
        delivered,
    });
}
