//! The one place a connection to a peer is built: the cluster issue adds
//! mutual TLS here and nowhere else.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// How long a connection attempt to a peer may take before the peer counts
/// as unreachable for this round.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// A lazily connecting channel to the peer at `addr` (`host:port`); it
/// reconnects by itself after a failure.
pub(crate) fn peer_channel(addr: &str) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .connect_lazy())
}
