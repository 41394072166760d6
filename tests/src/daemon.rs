//! Real `swarmd` processes for tests: start one on a state dir, reach its
//! Control API over the Unix socket, stop it with a signal or SIGKILL.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use swarm_proto::v1::ListServicesRequest;
use swarm_proto::v1::control_client::ControlClient;
use tonic::transport::{Channel, Endpoint};

/// A connection to a Control API served on the Unix socket at `path`.
///
/// # Errors
///
/// Nothing answers at `path`.
pub async fn connect(path: &Path) -> Result<ControlClient<Channel>, tonic::transport::Error> {
    Ok(ControlClient::new(channel(path).await?))
}

/// Runs `write(client, n)` for every `n` below `writes`, spread over
/// `clients` concurrent clients on `channel`, each client's in order;
/// returns once all are done.
///
/// # Panics
///
/// When a write panics (fails).
pub async fn write_concurrently<F, Fut>(channel: &Channel, clients: usize, writes: usize, write: F)
where
    F: Fn(ControlClient<Channel>, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ControlClient<Channel>> + Send,
{
    let writers: Vec<_> = (0..clients)
        .map(|client| {
            let mut control = ControlClient::new(channel.clone());
            let write = write.clone();
            tokio::spawn(async move {
                for n in (client..writes).step_by(clients) {
                    control = write(control, n).await;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("a writer failed");
    }
}

/// A channel to the Unix socket at `path`, for any of the daemon's services.
///
/// # Errors
///
/// Nothing answers at `path`.
pub async fn channel(path: &Path) -> Result<Channel, tonic::transport::Error> {
    let path = path.to_path_buf();
    // The URI is required by the API but unused: the connector dials the socket.
    let channel = Endpoint::from_static("http://swarmd.sock")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move { tokio::net::UnixStream::connect(path).await.map(TokioIo::new) }
        }))
        .await?;
    Ok(channel)
}

/// A running `swarmd` process.
pub struct Daemon {
    /// The process.
    pub child: Child,
    /// Its Control API socket.
    pub socket: PathBuf,
    /// Where its stderr goes.
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `binary` on `state_dir` with its socket inside it and its
    /// Raft transport on a free loopback port, and waits until the socket
    /// answers.
    ///
    /// # Panics
    ///
    /// When it cannot start or does not serve within 30 s.
    pub async fn start(binary: &Path, state_dir: &Path, hostname: &str) -> Daemon {
        Daemon::start_with(binary, state_dir, hostname, &[]).await
    }

    /// As [`Daemon::start`], with more flags.
    ///
    /// # Panics
    ///
    /// When it cannot start or does not serve within 30 s.
    pub async fn start_with(binary: &Path, state_dir: &Path, hostname: &str, flags: &[&str]) -> Daemon {
        Daemon::start_configured(binary, state_dir, hostname, flags, |_| {}).await
    }

    /// As [`Daemon::start_with`], its command set up by `configure` too
    /// (limits, say) before it starts.
    ///
    /// # Panics
    ///
    /// When it cannot start or does not serve within 30 s.
    pub async fn start_configured(
        binary: &Path,
        state_dir: &Path,
        hostname: &str,
        flags: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> Daemon {
        let socket = state_dir.join("swarm.sock");
        let log = state_dir.with_extension("log");
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open the log");
        let mut command = Command::new(binary);
        command
            .args([
                "-d",
                &state_dir.to_string_lossy(),
                "--listen-control-api",
                &socket.to_string_lossy(),
            ])
            .args(["--listen-remote-api", "127.0.0.1:0", "--hostname", hostname])
            .args(flags)
            .stdout(Stdio::null())
            .stderr(stderr);
        configure(&mut command);
        let child = command.spawn().expect("start swarmd");
        let daemon = Daemon { child, socket, log };
        daemon.wait_until_serving().await;
        daemon
    }

    async fn wait_until_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while connect(&self.socket).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "swarmd did not serve in 30 s; its log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Every service it lists, as name -> ID, and how many it listed (more
    /// than the map holds if a name was listed twice).
    ///
    /// # Panics
    ///
    /// When the list fails.
    pub async fn service_ids_by_name(&self) -> (BTreeMap<String, String>, usize) {
        // A list is as large as the store: past gRPC's default 4 MiB.
        let mut control = connect(&self.socket)
            .await
            .expect("reach swarmd")
            .max_decoding_message_size(256 << 20);
        let services = control
            .list_services(ListServicesRequest::default())
            .await
            .expect("list services")
            .into_inner()
            .services;
        let count = services.len();
        let by_name = services
            .into_iter()
            .map(|service| {
                let name = service.spec.and_then(|spec| spec.annotations).unwrap_or_default().name;
                (name, service.id)
            })
            .collect();
        (by_name, count)
    }

    /// What it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` (for example `libc`'s SIGINT = 2) and waits up to
    /// `within` for the process to exit.
    ///
    /// # Panics
    ///
    /// When it does not exit in time.
    pub fn signal_and_wait(self, signal: i32, within: Duration) -> ExitStatus {
        self.signal(signal);
        self.wait(within)
    }

    /// Sends `signal` without waiting.
    ///
    /// # Panics
    ///
    /// When `kill` fails.
    pub fn signal(&self, signal: i32) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status();
        assert!(status.is_ok_and(|status| status.success()), "kill -{signal} failed");
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `within` for the process to exit.
    ///
    /// # Panics
    ///
    /// When it does not exit in time.
    pub fn wait(mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for swarmd") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "swarmd did not exit within {within:?}; its log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits up to `within` until its log contains `text`.
    ///
    /// # Panics
    ///
    /// When it does not in time.
    pub fn wait_for_log(&self, text: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.log_text().contains(text) {
            assert!(
                Instant::now() < deadline,
                "swarmd did not log {text:?} within {within:?}; its log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Starts `swarmd` on `state_dir`, its socket at `socket` and its Raft
/// transport at `remote`, where it must refuse to start: its exit code and
/// stderr.
///
/// # Panics
///
/// When it is still running after 30 seconds (it started, which is the
/// failure the caller tests for): it is killed first.
pub fn refused_start(binary: &Path, state_dir: &Path, socket: &Path, remote: &str) -> (Option<i32>, String) {
    refused_start_with(binary, state_dir, socket, remote, &[])
}

/// As [`refused_start`], with `extra` arguments.
pub fn refused_start_with(
    binary: &Path,
    state_dir: &Path,
    socket: &Path,
    remote: &str,
    extra: &[&str],
) -> (Option<i32>, String) {
    use std::io::Read as _;
    let mut child = Command::new(binary)
        .args(["-d", &state_dir.to_string_lossy()])
        .args(["--listen-control-api", &socket.to_string_lossy()])
        .args(["--listen-remote-api", remote])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start swarmd");
    // Read as it comes: a daemon that started and logs more than a pipe
    // holds would otherwise block, and look like one still starting.
    let mut pipe = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut stderr = String::new();
        let _ = pipe.read_to_string(&mut stderr);
        stderr
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for swarmd") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stderr = reader.join().unwrap_or_default();
    let Some(status) = status else {
        panic!("swarmd started where it should have refused to; its log:\n{stderr}");
    };
    (status.code(), stderr)
}

/// The `swarmd` binary of this build (see [`workspace_binary`]).
pub fn swarmd_binary() -> PathBuf {
    workspace_binary("swarmd")
}

/// A binary of this workspace, from the same build as the running
/// executable: beside it (a benchmark binary) or beside its `deps` folder
/// (a test). `scripts/test` builds every binary before the tests run.
///
/// # Panics
///
/// When it has not been built.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the running executable's path");
    let beside = exe.parent().expect("target/<profile>/<binary>");
    let candidates = [Some(beside), beside.parent().filter(|_| beside.ends_with("deps"))];
    let found = candidates
        .into_iter()
        .flatten()
        .map(|dir| dir.join(name))
        .find(|binary| binary.exists());
    found.unwrap_or_else(|| {
        panic!(
            "{name} is not built beside {}: run `cargo build --workspace --bins` first (scripts/test does)",
            exe.display()
        )
    })
}
