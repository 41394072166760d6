//! The Prometheus endpoint (`--listen-metrics`): requests served by the
//! Control and Watch APIs, the Raft member's counters, and the store's
//! object counts, in the OpenMetrics text format at `GET /metrics`.
//!
//! Request counters are bumped as requests finish (a tower layer on the
//! gRPC server: a call's status comes in its response's headers when it is
//! refused, in the trailers after its body otherwise, which for a watch is
//! when its stream ends); Raft and store figures are read at each scrape,
//! so the hot paths pay nothing for them.

mod process;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use swarm_store::{Kind, MemoryStore, Read as _, ReadTx};
use tokio::net::TcpListener;

use crate::error::{Error, Result};
use crate::manager::raft_store::ApplyResult;

type RaftHandle = swarm_raft::RaftHandle<ApplyResult>;

/// Labels of a finished request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// The gRPC path, `/swarm.v1.Control/CreateService`.
    method: String,
    /// The gRPC status code's name, as SwarmKit's metrics (Go's gRPC)
    /// spell it: `OK`, `Canceled`, `NotFound`, ...
    code: String,
}

/// Labels of a request's latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

/// Requests served, by method and status code, and their latency.
#[derive(Debug)]
struct Requests {
    finished: Family<RequestLabels, Counter>,
    seconds: Family<MethodLabels, Histogram>,
}

impl Requests {
    /// Counts a call that ended with `code`, `answered` after it came (its
    /// response headers: for a watch, when it started streaming, not its
    /// whole life).
    fn record(&self, method: String, code: tonic::Code, answered: Duration) {
        // Only methods that exist get a series each: whatever else a client
        // sends shares one, so the label set stays bounded (whatever the
        // answer: a follower refuses an unknown method of a known service
        // with Unavailable before it is routed).
        let method = if known_method(&method) {
            method
        } else {
            "other".to_string()
        };
        let code = code_name(code);
        self.seconds
            .get_or_create(&MethodLabels { method: method.clone() })
            .observe(answered.as_secs_f64());
        self.finished.get_or_create(&RequestLabels { method, code }).inc();
    }
}

/// Whether `path` is a method of the API (`/swarm.v1.Control/CreateService`).
fn known_method(path: &str) -> bool {
    static METHODS: std::sync::LazyLock<std::collections::HashSet<String>> = std::sync::LazyLock::new(|| {
        use prost::Message as _;
        // Compiled in by swarm-proto's build: it decodes. Were it not to,
        // every method would count as "other", which is still bounded.
        let files = prost_types::FileDescriptorSet::decode(swarm_proto::FILE_DESCRIPTOR_SET).unwrap_or_default();
        files
            .file
            .iter()
            .flat_map(|file| {
                file.service.iter().flat_map(move |service| {
                    service
                        .method
                        .iter()
                        .map(move |method| format!("/{}.{}/{}", file.package(), service.name(), method.name()))
                })
            })
            .collect()
    });
    METHODS.contains(path)
}

/// The daemon's metrics registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    requests: Arc<Requests>,
}

impl Metrics {
    /// A registry that reads `raft` and `store` at each scrape.
    pub fn new(store: MemoryStore, raft: RaftHandle) -> Metrics {
        let requests = Arc::new(Requests {
            finished: Family::default(),
            // 100 µs to about 3 s.
            seconds: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0001, 2.0, 16))),
        });
        let mut registry = Registry::default();
        registry.register(
            "swarmd_requests",
            "gRPC requests finished, by method and status code",
            requests.finished.clone(),
        );
        registry.register(
            "swarmd_request_duration_seconds",
            "Time from a gRPC request to its response headers, by method",
            requests.seconds.clone(),
        );
        registry.register_collector(Box::new(StateCollector { raft, store }));
        registry.register_collector(Box::new(process::ProcessCollector));
        Metrics {
            registry: Arc::new(registry),
            requests,
        }
    }

    /// A tower layer for the gRPC server that counts every request.
    pub fn layer(&self) -> CountRequestsLayer {
        CountRequestsLayer {
            requests: self.requests.clone(),
        }
    }

    /// Everything, in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail; a collector's error would be a bug.
        if let Err(err) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(%err, "cannot encode the metrics");
        }
        text
    }

    /// Binds `addr` for [`Metrics::serve`]; failing here fails the start.
    ///
    /// # Errors
    ///
    /// The address cannot be bound.
    pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
        TcpListener::bind(addr)
            .await
            .map_err(Error::io(format!("bind the metrics endpoint on {addr}")))
    }

    /// Serves `GET /metrics` on `listener` until `shutdown` resolves.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) {
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "metrics served at http://{addr}/metrics");
        }
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = self.clone();
                async move {
                    let headers = [(
                        http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )];
                    (headers, metrics.encode())
                }
            }),
        );
        let listener = Limited {
            addr: listener
                .local_addr()
                .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0))),
            incoming: swarm_raft::transport::Incoming::with_limits(
                listener,
                "the metrics endpoint",
                crate::connection_limits::metrics(),
            ),
        };
        if let Err(err) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(%err, "the metrics endpoint failed");
        }
    }
}

/// The metrics listener as axum takes one: its connections admitted under
/// `connection_limits::metrics`, with accepts that fail paused rather than spun on.
struct Limited {
    addr: SocketAddr,
    incoming: swarm_raft::transport::Incoming<TcpListener>,
}

impl axum::serve::Listener for Limited {
    type Io = swarm_raft::transport::Admitted<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, SocketAddr) {
        use futures::StreamExt as _;
        loop {
            // The stream never ends nor fails; a connection past the cap
            // was closed inside it.
            if let Some(Ok(connection)) = self.incoming.next().await {
                let peer = connection.get_ref().peer_addr().unwrap_or(self.addr);
                return (connection, peer);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

/// Reads the Raft member's and the store's figures at each scrape.
struct StateCollector {
    raft: RaftHandle,
    store: MemoryStore,
}

impl std::fmt::Debug for StateCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateCollector")
    }
}

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        self.encode_raft(&mut encoder)?;
        self.encode_store(&mut encoder)
    }
}

impl StateCollector {
    fn encode_raft(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        let m = self.raft.metrics();
        let counters: [(&str, &str, u64); 13] = [
            (
                "swarm_raft_proposals",
                "Proposals appended by this member as leader",
                m.proposals,
            ),
            (
                "swarm_raft_applied_entries",
                "Log entries applied to the store",
                m.applied_entries,
            ),
            ("swarm_raft_fsyncs", "Synced writes of the Raft log", m.fsyncs),
            (
                "swarm_raft_entries_persisted",
                "Log entries written by those writes",
                m.entries_persisted,
            ),
            (
                "swarm_raft_messages_sent",
                "Raft messages delivered to peers",
                m.messages_sent,
            ),
            (
                "swarm_raft_messages_dropped",
                "Raft messages dropped (full queue, unreachable peer)",
                m.messages_dropped,
            ),
            (
                "swarm_raft_snapshots_taken",
                "Snapshots taken of the store",
                m.snapshots_taken,
            ),
            (
                "swarm_raft_snapshots_sent",
                "Snapshots streamed to followers",
                m.snapshots_sent,
            ),
            (
                "swarm_raft_snapshots_installed",
                "Snapshots received and installed",
                m.snapshots_installed,
            ),
            (
                "swarm_raft_leader_changes",
                "Changes of the known leader",
                m.leader_changes,
            ),
            (
                "swarm_raft_fast_failovers",
                "Campaigns started at once because the leader's address refused connections",
                m.fast_failovers,
            ),
            (
                "swarm_raft_messages_from_strangers",
                "Raft messages dropped for coming from outside the group while it had a live leader",
                m.messages_from_strangers,
            ),
            ("swarm_raft_ready_cycles", "Ready cycles handled", m.ready_cycles),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)?;
        }
        let write_seconds = ConstCounter::new(m.fsync_micros as f64 / 1e6);
        write_seconds.encode(encoder.encode_descriptor(
            "swarm_raft_fsync_seconds",
            "Time spent in synced writes of the Raft log",
            None,
            write_seconds.metric_type(),
        )?)?;
        gauge(
            encoder,
            "swarm_raft_disk_free_bytes",
            "Free bytes on the Raft data dir's filesystem at the last reading (each tick)",
            i64::try_from(m.disk_free_bytes).unwrap_or(i64::MAX),
        )?;
        gauge(
            encoder,
            "swarm_raft_disk_reserve_bytes",
            "Free bytes under which writes are refused (0: no check)",
            i64::try_from(m.disk_reserve_bytes).unwrap_or(i64::MAX),
        )?;
        gauge(
            encoder,
            "swarm_raft_disk_writes_refused",
            "1 while writes are refused for want of room on the Raft data dir's filesystem",
            i64::from(m.disk_refusing_writes),
        )?;
        gauge(
            encoder,
            "swarm_raft_disk_removals_refused",
            "1 while even removals are refused: less than the reserve itself (--disk-reserve) is free",
            i64::from(m.disk_refusing_removals),
        )?;
        let leadership = self.raft.leadership();
        gauge(
            encoder,
            "swarm_raft_term",
            "The current Raft term",
            leadership.term as i64,
        )?;
        let is_leader = i64::from(leadership.is_leader);
        gauge(
            encoder,
            "swarm_raft_is_leader",
            "1 if this member leads its group",
            is_leader,
        )
    }

    /// Object counts by kind, from one consistent view.
    fn encode_store(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        let tx = self.store.read();
        let objects = ConstGauge::new(0i64);
        let mut family = encoder.encode_descriptor(
            "swarm_store_objects",
            "Objects in the store, by kind",
            None,
            objects.metric_type(),
        )?;
        for kind in Kind::ALL {
            let count = ConstGauge::new(count(&tx, kind) as i64);
            count.encode(family.encode_family(&[("kind", kind.as_str())])?)?;
        }
        let index = tx.index() as i64;
        gauge(
            encoder,
            "swarm_store_index",
            "The Raft index of the last change applied to the store",
            index,
        )?;
        let watchers = self.store.watcher_count() as i64;
        gauge(
            encoder,
            "swarm_store_watchers",
            "Open watches of the store, the manager's own (one, following the cluster's Raft settings) included",
            watchers,
        )
    }
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> std::fmt::Result {
    let gauge = ConstGauge::new(value);
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

fn count(tx: &ReadTx, kind: Kind) -> usize {
    use swarm_proto::v1::{Cluster, Config, Node, Secret, Service, Task};
    match kind {
        Kind::Node => tx.count::<Node>(),
        Kind::Service => tx.count::<Service>(),
        Kind::Task => tx.count::<Task>(),
        Kind::Cluster => tx.count::<Cluster>(),
        Kind::Secret => tx.count::<Secret>(),
        Kind::Config => tx.count::<Config>(),
    }
}

/// `code` as Go's gRPC names it, which SwarmKit's metrics label their
/// requests with (so that a dashboard made for those reads these): tonic's
/// names but two, `Ok` and `Cancelled`.
fn code_name(code: tonic::Code) -> String {
    match code {
        tonic::Code::Ok => "OK".to_string(),
        tonic::Code::Cancelled => "Canceled".to_string(),
        other => format!("{other:?}"),
    }
}

/// Wraps a gRPC server's routes to count each request as it finishes.
#[derive(Clone)]
pub struct CountRequestsLayer {
    requests: Arc<Requests>,
}

impl<S> tower::Layer<S> for CountRequestsLayer {
    type Service = CountRequests<S>;

    fn layer(&self, inner: S) -> CountRequests<S> {
        CountRequests {
            inner,
            requests: self.requests.clone(),
        }
    }
}

/// See [`CountRequestsLayer`].
#[derive(Clone)]
pub struct CountRequests<S> {
    inner: S,
    requests: Arc<Requests>,
}

impl<S, B> tower::Service<http::Request<B>> for CountRequests<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    // The body stays tonic's (the counting one inside), so that the server
    // takes the routes with the layer or without it alike.
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = std::result::Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let mut finish = Finish(Some(Uncounted {
            requests: self.requests.clone(),
            method: request.uri().path().to_string(),
            started: Instant::now(),
            answered: None,
        }));
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            finish.answered();
            let response = match response {
                Ok(response) => response,
                Err(err) => {
                    finish.record(tonic::Code::Unknown);
                    return Err(err);
                }
            };
            // A refusal answers with its status in the headers and no body
            // (gRPC's "trailers-only"): finished now.
            if let Some(status) = response.headers().get("grpc-status") {
                finish.record(tonic::Code::from_bytes(status.as_bytes()));
            }
            Ok(response.map(|inner| tonic::body::Body::new(CountedBody { inner, finish })))
        })
    }
}

/// A call not yet counted: what [`Requests::record`] needs once its status
/// is known. Dropped uncounted, the call ended without one: its client
/// went away (a watch closed by its client, most often; or a client's
/// deadline passed before the answer, which tonic enforces outside this
/// layer), counted as `Cancelled`.
struct Finish(Option<Uncounted>);

struct Uncounted {
    requests: Arc<Requests>,
    method: String,
    started: Instant,
    /// How long the response headers took, once they came.
    answered: Option<Duration>,
}

impl Finish {
    /// Notes that the response headers came now.
    fn answered(&mut self) {
        if let Some(call) = &mut self.0 {
            call.answered = Some(call.started.elapsed());
        }
    }

    fn record(&mut self, code: tonic::Code) {
        if let Some(call) = self.0.take() {
            let answered = call.answered.unwrap_or_else(|| call.started.elapsed());
            call.requests.record(call.method, code, answered);
        }
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        self.record(tonic::Code::Cancelled);
    }
}

pin_project_lite::pin_project! {
    /// A response body that counts its call when the trailers carrying its
    /// status go out.
    struct CountedBody<B> {
        #[pin]
        inner: B,
        finish: Finish,
    }
}

impl<B: http_body::Body> http_body::Body for CountedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    let code = trailers.get("grpc-status").map_or(tonic::Code::Unknown, |status| {
                        tonic::Code::from_bytes(status.as_bytes())
                    });
                    this.finish.record(code);
                }
            }
            // A body that fails, or ends without the status gRPC requires.
            Poll::Ready(Some(Err(_)) | None) => this.finish.record(tonic::Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_apis_methods_are_known() {
        for path in [
            "/swarm.v1.Control/CreateService",
            "/swarm.v1.Watch/Watch",
            "/swarm.v1.Info/GetInfo",
        ] {
            assert!(super::known_method(path), "{path}");
        }
        for path in ["/swarm.v1.Control/Nope", "/no.such.Service/Call", "/", ""] {
            assert!(!super::known_method(path), "{path}");
        }
    }
}
