//! `swarmd`: runs a node until SIGINT, SIGTERM or SIGHUP (unless started
//! with it ignored), then stops it cleanly within 10 seconds. A second
//! SIGINT or SIGTERM exits at once (RocksDB's write-ahead log keeps what
//! was acknowledged).

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
    /// IP:PORT, HOST:PORT (resolved at start, IPv4 first) or :PORT (every
    /// IPv4 interface).
    #[arg(long = "listen-remote-api", default_value = "0.0.0.0:4242", value_parser = listen_address)]
    listen_remote_api: std::net::SocketAddr,
    /// Serve Prometheus metrics at http://ADDR/metrics (for example
    /// 127.0.0.1:9090, or :9090 on every IPv4 interface): requests, Raft and
    /// store figures.
    #[arg(long = "listen-metrics", value_name = "ADDR", value_parser = listen_address)]
    listen_metrics: Option<std::net::SocketAddr>,
    /// The name this node reports (default: the machine's hostname).
    #[arg(long, value_parser = hostname)]
    hostname: Option<String>,
    /// Log filter: a level (off, error, warn, info, debug, trace) or a
    /// tracing-subscriber directive.
    #[arg(short = 'l', long = "log-level", default_value = "info")]
    log_level: String,
    /// Length of one Raft tick, in milliseconds (at most a minute).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    tick: u64,
    /// Raft ticks between heartbeats (at most 10,000).
    #[arg(long = "heartbeat-tick", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    heartbeat_tick: u64,
    /// Raft ticks without a leader before an election (at most 100,000;
    /// raft-rs overflows on far larger ones).
    #[arg(long = "election-tick", default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..=100_000))]
    election_tick: u64,
    /// MiB kept free on the state dir's filesystem, besides room for the
    /// next Raft snapshot (twice what it would weigh): with less free,
    /// writes are refused (ResourceExhausted; removals while this much is
    /// free), reads go on, and a snapshot that frees the log is taken while
    /// half of this stays free. 0 turns this off; at most 1 TiB, and
    /// under the filesystem's size.
    #[arg(long = "disk-reserve", value_name = "MIB", default_value_t = swarm_raft::DEFAULT_KEEP_FREE_DISK >> 20,
        value_parser = clap::value_parser!(u64).range(0..=1 << 20))]
    disk_reserve: u64,
    /// Start even though the Raft log holds a damaged record (a start
    /// without it refuses, naming RocksDB's Corruption): keep what came
    /// before the damage, drop that record and every later one, with the
    /// writes they acknowledged. For a single manager with no healthy copy;
    /// copy the state dir first. A healthy log is left as it is.
    #[arg(long)]
    salvage_damaged_log: bool,
    /// Print the version.
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version)]
    version: (),
}

fn main() -> ExitCode {
    // Everything swarmd makes is its user's alone, from the first moment:
    // the control socket (no window between its bind and a chmod in which
    // another user could connect), the state dir, RocksDB's files (the
    // secrets are in the log).
    // SAFETY: `umask` only sets the process's file mode mask.
    unsafe { libc::umask(0o077) };
    // A stop signal that comes before its handler is in place waits for
    // it, rather than kill the process (SIGTERM's default) or be lost (a
    // SIGINT ignored by the shell that started swarmd in the background):
    // blocked here, taken once `run` listens for them.
    stop_signals_mask(libc::SIG_BLOCK);
    let args = Args::parse();
    if args.election_tick <= args.heartbeat_tick {
        // Checked here rather than by raft-rs, which would find it only
        // once the state dir is made.
        <Args as clap::CommandFactory>::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                format!(
                    "--election-tick ({}) must be more than --heartbeat-tick ({}): followers would call \
                     elections between a live leader's heartbeats",
                    args.election_tick, args.heartbeat_tick
                ),
            )
            .exit();
    }
    if let Err(reason) = reserve_fits(&args.state_dir, args.disk_reserve) {
        <Args as clap::CommandFactory>::command()
            .error(clap::error::ErrorKind::ValueValidation, reason)
            .exit();
    }
    let filter = match log_filter(&args.log_level) {
        Ok(filter) => filter,
        Err(err) => {
            say(format_args!("Error: --log-level {:?}: {err}", args.log_level));
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(|| LossyStderr)
        .init();
    raise_open_file_limit();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            say(format_args!("Error: cannot start the runtime: {err}"));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(args));
    // A blocking task the stop gave up on (a write to a disk that hangs,
    // which the stop already waited 10 s for) must not hold the exit: the
    // runtime would wait for it with no limit, the signal handlers gone.
    // What it was writing was never acknowledged.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            say(format_args!("Error: {err:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Refuses a `--disk-reserve` of `mib` that the filesystem holding
/// `state_dir` could never keep free: every write, the first included,
/// would be refused, in words that do not name the flag. A filesystem that
/// cannot be asked is left to the start, which says why.
fn reserve_fits(state_dir: &std::path::Path, mib: u64) -> Result<(), String> {
    let reserve = mib.saturating_mul(1 << 20);
    match swarm_raft::filesystem_size(state_dir) {
        // 0 turns the reserve off, whatever the filesystem.
        Ok(size) if reserve > 0 && reserve >= size => Err(format!(
            "--disk-reserve {mib} ({}) is not under the size of the filesystem holding {} ({}): no write could \
             ever be made",
            swarm_raft::human_bytes(reserve),
            state_dir.display(),
            swarm_raft::human_bytes(size)
        )),
        _ => Ok(()),
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
            keep_free_disk: args.disk_reserve.saturating_mul(1 << 20),
        },
        metrics: args.listen_metrics,
        salvage_damaged_log: args.salvage_damaged_log,
    };
    // Listening before the node starts: a node that could not be stopped
    // cleanly should not start at all.
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    // SIGHUP too (the terminal that started it went away): a clean stop
    // rather than death. Unless it was ignored (`nohup swarmd`): then it
    // stays ignored.
    let hangup = if hangup_ignored() {
        None
    } else {
        Some(signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?)
    };
    stop_signals_mask(libc::SIG_UNBLOCK);
    let (stopping, stop_requested) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(signals(interrupt, terminate, hangup, stopping));
    let shutdown = async {
        let _ = stop_requested.await;
    };
    Ok(node::run(options, shutdown).await?)
}

/// Resolves the shutdown on the first SIGINT, SIGTERM or SIGHUP; bounds
/// the clean stop to 10 seconds; exits at once on a second SIGINT or
/// SIGTERM (a hangup often comes twice: from the shell, then the kernel).
async fn signals(
    mut interrupt: tokio::signal::unix::Signal,
    mut terminate: tokio::signal::unix::Signal,
    mut hangup: Option<tokio::signal::unix::Signal>,
    stopping: tokio::sync::oneshot::Sender<()>,
) {
    let hung_up = async {
        match hangup.as_mut() {
            Some(hangup) => drop(hangup.recv().await),
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
        () = hung_up => {}
    }
    tracing::info!("stop requested");
    let _ = stopping.send(());
    tokio::select! {
        _ = interrupt.recv() => tracing::warn!("second signal: exiting now"),
        _ = terminate.recv() => tracing::warn!("second signal: exiting now"),
        _ = tokio::time::sleep(Duration::from_secs(10)) => tracing::error!("the stop took over 10 s: exiting now"),
    }
    exit_now(130);
}

/// Ends the process at once, as a crash would (nothing acknowledged is
/// lost: every acknowledgement waited for its synced write). Not
/// `std::process::exit`: that runs the exit handlers, RocksDB's C++ static
/// destructors among them, while its threads and ours still use what they
/// destroy, and the process could die of a segfault or an abort instead.
fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` ends the process without running any handler; no
    // Rust invariant outlives the process.
    unsafe { libc::_exit(code) }
}

/// Raises the soft limit on open files to the hard limit, as Go's runtime
/// does for dockerd and containerd: every client connection holds a file
/// descriptor beside RocksDB's files, and the usual soft limit of 1,024
/// would refuse connections (and could fail RocksDB) long before the
/// machine's limit.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes the limit into the plain struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 || limit.rlim_cur >= limit.rlim_max {
        return;
    }
    let soft = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: `setrlimit` only reads the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        // Where the hard limit is above what the kernel allows (`nr_open`),
        // the soft one stays: swarmd runs with it.
        tracing::debug!(soft, hard = limit.rlim_max, "could not raise the open files limit");
    }
}

/// Whether SIGHUP was ignored when swarmd started.
/// Blocks (`libc::SIG_BLOCK`) or unblocks the stop signals, SIGINT,
/// SIGTERM and SIGHUP, for this thread: the main thread, whose mask the
/// runtime's threads inherit. (Those started while they were blocked keep
/// them blocked: the kernel then gives them to the main thread, which
/// runs the runtime until the exit, and the handler is the process's.)
fn stop_signals_mask(how: libc::c_int) {
    // SAFETY: `sigemptyset` and `sigaddset` fill a plain struct of our
    // own; `pthread_sigmask` only reads it and changes this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}

fn hangup_ignored() -> bool {
    // SAFETY: with a null new action, `sigaction` only reads the current
    // one into `current`, a plain struct it fully writes on success.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGHUP, std::ptr::null(), &mut current) == 0 && current.sa_sigaction == libc::SIG_IGN
    }
}

/// An address to listen on: `IP:PORT` (an IPv6 IP in brackets),
/// `HOST:PORT`, or `:PORT` for every IPv4 interface, as node_exporter and
/// dockerd take one. A host is resolved here, once, to its first IPv4
/// address if it has one (as Go's listeners prefer: `localhost` often
/// resolves to `::1` first, and a listener there would not answer
/// 127.0.0.1), else its first.
fn listen_address(text: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::ToSocketAddrs as _;
    if let Some(port) = text.strip_prefix(':') {
        let port: u16 = port.parse().map_err(|_| format!("{port:?} is not a port (0-65535)"))?;
        return Ok(std::net::SocketAddr::from(([0, 0, 0, 0], port)));
    }
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let expected = "expected IP:PORT, HOST:PORT or :PORT";
    // A host with a colon is an IPv6 address without its brackets.
    if text
        .rsplit_once(':')
        .is_none_or(|(host, port)| host.is_empty() || host.contains(':') || port.parse::<u16>().is_err())
    {
        return Err(format!("{expected} (an IPv6 IP in brackets)"));
    }
    let found: Vec<std::net::SocketAddr> = text
        .to_socket_addrs()
        .map_err(|err| format!("{expected}; the host does not resolve: {err}"))?
        .collect();
    found
        .iter()
        .find(|addr| addr.is_ipv4())
        .or(found.first())
        .copied()
        .ok_or_else(|| format!("{expected}; the host resolves to no address"))
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
    // A DNS name's limit; a machine's own is shorter (64 on Linux).
    const MAX_HOSTNAME_BYTES: usize = 253;
    if text.len() > MAX_HOSTNAME_BYTES {
        return Err(format!(
            "a hostname holds at most {MAX_HOSTNAME_BYTES} bytes, as a DNS name; this one {}",
            text.len()
        ));
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

/// Standard error for the log, dropping what it cannot write: a reader of
/// the pipe that went away (`swarmd | head`, a log collector restarted)
/// must not stop the daemon. (Given the error, tracing-subscriber would
/// say so with `eprintln!`, which panics on a closed pipe.)
struct LossyStderr;

impl std::io::Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Writes one line to standard error, if it can (as [`LossyStderr`]).
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disk_reserve_must_be_under_the_size_of_the_filesystem_to_be() {
        let dir = tempfile::tempdir().expect("a temporary dir");
        let state_dir = dir.path().join("not/made/yet");
        let size = swarm_raft::filesystem_size(dir.path()).expect("its filesystem's size");
        assert_eq!(
            swarm_raft::filesystem_size(&state_dir).ok(),
            Some(size),
            "asked of its ancestor"
        );
        let over = size.div_ceil(1 << 20);
        let err = reserve_fits(&state_dir, over).expect_err("a reserve the size of the filesystem");
        assert!(err.starts_with(&format!("--disk-reserve {over} (")), "{err}");
        assert!(err.contains(&state_dir.display().to_string()), "{err}");
        assert_eq!(reserve_fits(&state_dir, size / (2 << 20)), Ok(()));
        assert_eq!(reserve_fits(&state_dir, 0), Ok(()));
        // A filesystem of no size (procfs): the reserve off is no reason to
        // refuse.
        assert_eq!(reserve_fits(std::path::Path::new("/proc/self"), 0), Ok(()));
        assert!(reserve_fits(std::path::Path::new("/proc/self"), 1).is_err());
    }

    #[test]
    fn hostnames_are_named_lines_of_at_most_253_bytes() {
        assert_eq!(hostname("node-1").as_deref(), Ok("node-1"));
        assert!(hostname(&"a".repeat(253)).is_ok());
        let err = hostname(&"a".repeat(254)).unwrap_err();
        assert!(err.contains("at most 253 bytes") && err.contains("254"), "{err}");
        assert!(hostname(" ").is_err() && hostname("a\nb").is_err());
    }

    #[test]
    fn listen_addresses_take_an_ip_a_host_or_only_a_port() {
        let parsed = |text: &str| listen_address(text).map(|addr| addr.to_string());
        assert_eq!(parsed("127.0.0.1:4242").as_deref(), Ok("127.0.0.1:4242"));
        assert_eq!(parsed("[::1]:4242").as_deref(), Ok("[::1]:4242"));
        assert_eq!(parsed(":9090").as_deref(), Ok("0.0.0.0:9090"));
        let localhost = listen_address("localhost:9090").expect("localhost resolves");
        assert_eq!(localhost.to_string(), "127.0.0.1:9090", "IPv4 first");
        for bad in [
            "9090",
            ":",
            ":http",
            ":70000",
            "localhost",
            "localhost:",
            "127.0.0.1:x",
            "::1:4242",
        ] {
            let refused = listen_address(bad).expect_err(bad);
            assert!(refused.contains("PORT") || refused.contains("port"), "{bad}: {refused}");
        }
    }
}
