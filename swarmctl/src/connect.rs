//! The connection to a manager's Control API over its Unix socket.

use std::path::Path;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use swarm_proto::v1::control_client::ControlClient;
use swarm_proto::v1::info_client::InfoClient;
use swarm_proto::v1::{GetInfoRequest, GetInfoResponse};
use tonic::transport::{Channel, Endpoint};

/// The Control API client (its RPCs are called through it, as on
/// `ControlClient`), and the connection it uses, for the Info API.
pub struct Control {
    client: ControlClient<Channel>,
    channel: Channel,
}

impl std::ops::Deref for Control {
    type Target = ControlClient<Channel>;
    fn deref(&self) -> &Self::Target {
        &self.client
    }
}

impl std::ops::DerefMut for Control {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.client
    }
}

impl Control {
    /// What the node serving the socket says about itself.
    pub async fn info(&self) -> anyhow::Result<GetInfoResponse> {
        crate::commands::reply(InfoClient::new(self.channel.clone()).get_info(GetInfoRequest {}).await)
    }
}

/// Connects to the Control API on the socket at `path`.
pub async fn connect(path: &Path) -> anyhow::Result<Control> {
    let channel = channel(path).await?;
    // gRPC's default 4 MiB limit on a reply would fail `service ls` beyond
    // about 40,000 services; a list is as large as the cluster is.
    let client = ControlClient::new(channel.clone()).max_decoding_message_size(MAX_REPLY_BYTES);
    Ok(Control { client, channel })
}

/// The largest reply accepted: far above any cluster's list, still a bound.
pub const MAX_REPLY_BYTES: usize = 1 << 30;

/// How long reaching swarmd may take: a socket whose listener accepts and
/// never answers would otherwise hang the command.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often an idle connection is pinged, and how long a ping may go
/// unanswered before the connection counts as dead.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// A channel to the socket at `path`, for any of the daemon's services.
pub async fn channel(path: &Path) -> anyhow::Result<Channel> {
    let socket = path.to_path_buf();
    // The URI is required by the API but unused: the connector dials the socket.
    // A daemon that stops answering (its connection accepted, no reply ever
    // coming) is found by HTTP/2 pings within seconds, rather than hanging
    // the command; a long request (a large list, a watch) is not cut short.
    let endpoint = Endpoint::from_static("http://swarmd.sock")
        .http2_keep_alive_interval(KEEP_ALIVE)
        .keep_alive_timeout(KEEP_ALIVE)
        .keep_alive_while_idle(true);
    let connecting = endpoint.connect_with_connector(tower::service_fn(move |_| {
        let socket = socket.clone();
        async move { tokio::net::UnixStream::connect(socket).await.map(TokioIo::new) }
    }));
    let (why, hint) = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(channel)) => return Ok(channel),
        Ok(Err(err)) => (reason(path, &err), hint(&err)),
        Err(_) => (format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()), ""),
    };
    anyhow::bail!("cannot reach swarmd at {}: {why}{hint}", path.display())
}

/// What the operator can do about a failed connection: start swarmd, or
/// name the socket it serves, when none is there (a stopped swarmd
/// removes its own); look at why it ended when its socket is left with no
/// one serving it; run as swarmd's user when its socket (mode 0600)
/// refuses this one.
fn hint(err: &tonic::transport::Error) -> &'static str {
    let kind = root_cause(err)
        .downcast_ref::<std::io::Error>()
        .map(std::io::Error::kind);
    match kind {
        Some(std::io::ErrorKind::PermissionDenied) => {
            " (the socket is the user's that runs swarmd: run swarmctl as that user)"
        }
        Some(std::io::ErrorKind::NotFound) => {
            " (is swarmd running? if it serves another socket, set --socket or SWARM_SOCKET)"
        }
        Some(std::io::ErrorKind::ConnectionRefused) => {
            " (no swarmd serves it: the one that did ended without a clean stop; see its log)"
        }
        _ => " (set --socket or SWARM_SOCKET)",
    }
}

/// Why connecting failed, in one phrase: the innermost cause (tonic's and
/// hyper's wrappers repeat it), or what is at `path` instead of a socket.
fn reason(path: &Path, err: &tonic::transport::Error) -> String {
    use std::os::unix::fs::FileTypeExt as _;
    if let Ok(metadata) = std::fs::metadata(path)
        && !metadata.file_type().is_socket()
    {
        return "it is not a socket".into();
    }
    root_cause(err).to_string()
}

/// The innermost error of `err`'s chain: tonic's and hyper's wrappers
/// repeat it, or say less ("http2 error").
pub fn root_cause<'a>(err: &'a (dyn std::error::Error + 'static)) -> &'a (dyn std::error::Error + 'static) {
    let mut cause = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause
}
