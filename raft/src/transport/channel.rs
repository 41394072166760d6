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

/// The connections a listener accepts, each with Nagle's algorithm off: a
/// small acknowledgement held back waiting for more data (and the peer's
/// delayed ACK) would add up to 40 ms to a round trip. `Endpoint` sets this
/// for outgoing connections; a server fed its own listener must do it here.
pub fn incoming(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use futures::StreamExt as _;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|accepted| {
        let stream = accepted?;
        stream.set_nodelay(true)?;
        Ok(stream)
    })
}
