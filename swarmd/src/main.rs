//! `swarmd`: runs a node until SIGINT or SIGTERM, then stops it cleanly
//! within 10 seconds. A second signal exits at once (RocksDB's write-ahead
//! log keeps what was acknowledged).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use swarmd::manager::RaftOptions;
use swarmd::node::{self, Options};

/// mimalloc rather than glibc's malloc: a profile of durable creates spent
/// a tenth of the daemon's CPU in glibc's malloc and free (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The orchestrator daemon: a manager of a SwarmKit-style cluster.
#[derive(Parser, Debug)]
#[command(version, disable_version_flag = true)]
struct Args {
    /// The state dir: identity, Raft log and snapshots.
    #[arg(short = 'd', long = "state-dir", default_value = "/var/lib/swarmd")]
    state_dir: PathBuf,
    /// The Control API's Unix socket (mode 0600).
    #[arg(long = "listen-control-api", default_value = "/var/run/swarmd.sock")]
    listen_control_api: PathBuf,
    /// The address managers reach this one's Raft transport at.
    #[arg(long = "listen-remote-api", default_value = "0.0.0.0:4242")]
    listen_remote_api: std::net::SocketAddr,
    /// Serve Prometheus metrics at http://ADDR/metrics (for example
    /// 127.0.0.1:9090): requests, Raft and store figures.
    #[arg(long = "listen-metrics", value_name = "ADDR")]
    listen_metrics: Option<std::net::SocketAddr>,
    /// The name this node reports (default: the machine's hostname).
    #[arg(long, value_parser = hostname)]
    hostname: Option<String>,
    /// Log filter: a level (error, warn, info, debug, trace) or a
    /// tracing-subscriber directive.
    #[arg(short = 'l', long = "log-level", default_value = "info")]
    log_level: String,
    /// Length of one Raft tick, in milliseconds.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    tick: u64,
    /// Raft ticks between heartbeats.
    #[arg(long = "heartbeat-tick", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    heartbeat_tick: u64,
    /// Raft ticks without a leader before an election.
    #[arg(long = "election-tick", default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..))]
    election_tick: u64,
    /// Print the version.
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version)]
    version: (),
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = match log_filter(&args.log_level) {
        Ok(filter) => filter,
        Err(err) => {
            eprintln!("Error: --log-level {:?}: {err}", args.log_level);
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("Error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let hostname = match args.hostname {
        Some(hostname) => hostname,
        None => machine_hostname()?,
    };
    let options = Options {
        state_dir: args.state_dir,
        control_socket: args.listen_control_api,
        hostname,
        raft: RaftOptions {
            dir: PathBuf::new(),
            listen: args.listen_remote_api,
            tick: Duration::from_millis(args.tick),
            heartbeat_ticks: args.heartbeat_tick as usize,
            election_ticks: args.election_tick as usize,
        },
        metrics: args.listen_metrics,
    };
    // Listening before the node starts: a node that could not be stopped
    // cleanly should not start at all.
    use tokio::signal::unix::{SignalKind, signal};
    // SIGHUP too: the terminal that started it went away, which must not
    // end it without a clean stop either.
    let mut stop_signals = Vec::new();
    for (kind, name) in [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::hangup(), "SIGHUP"),
    ] {
        stop_signals.push(signal(kind).with_context(|| format!("cannot listen for {name}"))?);
    }
    let (stopping, stop_requested) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(signals(stop_signals, stopping));
    let shutdown = async {
        let _ = stop_requested.await;
    };
    Ok(node::run(options, shutdown).await?)
}

/// Resolves the shutdown on the first of `stop_signals`; bounds the clean
/// stop to 10 seconds; exits at once on a second signal.
async fn signals(mut stop_signals: Vec<tokio::signal::unix::Signal>, stopping: tokio::sync::oneshot::Sender<()>) {
    any_signal(&mut stop_signals).await;
    tracing::info!("stop requested");
    let _ = stopping.send(());
    tokio::select! {
        () = any_signal(&mut stop_signals) => tracing::warn!("second signal: exiting now"),
        () = tokio::time::sleep(Duration::from_secs(10)) => tracing::error!("the stop took over 10 s: exiting now"),
    }
    std::process::exit(130);
}

/// Waits for any of `signals` to arrive.
async fn any_signal(signals: &mut [tokio::signal::unix::Signal]) {
    let arrivals = signals.iter_mut().map(|signal| Box::pin(signal.recv()));
    futures::future::select_all(arrivals).await;
}

/// A `--hostname`: something to print in a table, so not blank and
/// without control characters.
fn hostname(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("a hostname cannot be blank".into());
    }
    if text.chars().any(char::is_control) {
        return Err("a hostname cannot hold control characters".into());
    }
    Ok(text.to_string())
}

/// The filter `--log-level` asks for. A bare word must be a level: to
/// tracing it would name a target, and `warning` would log nothing at all.
fn log_filter(text: &str) -> Result<tracing_subscriber::EnvFilter, String> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let text = if text.eq_ignore_ascii_case("warning") {
        "warn"
    } else {
        text
    };
    let directive = text.contains(['=', ',', '[', ':']);
    if !directive && !LEVELS.contains(&text.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "not a level ({}) nor a directive such as swarm_raft=debug",
            LEVELS.join(", ")
        ));
    }
    tracing_subscriber::EnvFilter::try_new(text).map_err(|err| err.to_string())
}

/// The kernel's host name (what `hostname` prints; a container's own), or
/// `/etc/hostname` where `/proc` is not mounted.
fn machine_hostname() -> anyhow::Result<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| name.trim().to_string())
        .find(|name| !name.is_empty())
        .ok_or_else(|| anyhow::anyhow!("cannot tell this machine's hostname: give one with --hostname"))
}
