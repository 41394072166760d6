//! The connection to a manager's Control API over its Unix socket.

use std::path::Path;

use anyhow::Context as _;
use hyper_util::rt::TokioIo;
use swarm_proto::v1::control_client::ControlClient;
use tonic::transport::{Channel, Endpoint};

/// The Control API client.
pub type Control = ControlClient<Channel>;

/// Connects to the Control API on the socket at `path`.
pub async fn connect(path: &Path) -> anyhow::Result<Control> {
    // gRPC's default 4 MiB limit on a reply would fail `service ls` beyond
    // about 40,000 services; a list is as large as the cluster is.
    Ok(ControlClient::new(channel(path).await?).max_decoding_message_size(MAX_REPLY_BYTES))
}

/// The largest reply accepted: far above any cluster's list, still a bound.
const MAX_REPLY_BYTES: usize = 1 << 30;

/// A channel to the socket at `path`, for any of the daemon's services.
pub async fn channel(path: &Path) -> anyhow::Result<Channel> {
    let socket = path.to_path_buf();
    // The URI is required by the API but unused: the connector dials the socket.
    let channel = Endpoint::from_static("http://swarmd.sock")
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            async move { tokio::net::UnixStream::connect(socket).await.map(TokioIo::new) }
        }))
        .await
        .with_context(|| {
            format!(
                "cannot reach swarmd at {} (set --socket or SWARM_SOCKET)",
                path.display()
            )
        })?;
    Ok(channel)
}
