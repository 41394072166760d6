//! Load on a real `swarmd` (issue "swarmd and swarmctl"): durable service
//! creates through the Control API's Unix socket with 1, 16, 64 and 256
//! concurrent clients; the daemon's memory holding 10,000 services; the time
//! from start to serving with 100,000 services in the store; the state
//! dir's size under large writes. Every figure is printed beside the fsync
//! latency measured in the same run, on the same disk. Results go in
//! BENCHMARKS.md.
//!
//! Usage: `swarmd-load [--dir DIR] [--seconds N] [--clients 1,16,64,256] [--connections N] [--kept-secrets 0,100]
//! [--rounds N] [SCENARIO...]` where a scenario is `creates`, `memory`, `startup` or `disk` (default: all).
//! Build with `--release`: it starts the `swarmd` binary built beside it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, ValueEnum as _};
use swarm_proto::v1::control_client::ControlClient;
use swarm_proto::v1::{
    Annotations, CreateSecretRequest, CreateServiceRequest, ListClustersRequest, ListServicesRequest,
    RemoveSecretRequest, SecretSpec, ServiceSpec,
};
use swarm_tests::daemon::{Daemon, channel, swarmd_binary};
use swarm_tests::fsync::{self, FsyncLatency};
use swarm_tests::metrics::{http_get, metrics_addr, sample};
use swarm_tests::noise::Noise;
use swarm_tests::stats::{ms, percentile};
use tonic::transport::Channel;

/// The allocator swarmd runs on: the load process shares the daemon's two
/// cores, and every microsecond it spends in glibc's malloc is one the
/// daemon does not get.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(about = "Load on a real swarmd through its Control API")]
struct Args {
    /// Where the state dirs go (on the disk to measure).
    #[arg(long, default_value = "target/swarmd-load")]
    dir: PathBuf,
    /// Seconds of load per point of the `creates` scenario.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Services in the store for the `memory` scenario.
    #[arg(long, default_value_t = 10_000)]
    services: usize,
    /// Services in the store for the `startup` scenario.
    #[arg(long, default_value_t = 100_000)]
    objects: usize,
    /// Client counts of the `creates` scenario.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 64, 256])]
    clients: Vec<usize>,
    /// HTTP/2 connections the clients of the `creates` scenario share, as
    /// etcd's benchmark separates `--conns` from `--clients` (0: one
    /// connection per client).
    #[arg(long, default_value_t = 0)]
    connections: usize,
    /// Large secrets kept in the store by each run of the `disk` scenario.
    #[arg(long, value_delimiter = ',', default_values_t = [0, 100])]
    kept_secrets: Vec<usize>,
    /// Times the `disk` scenario replaces one large secret.
    #[arg(long, default_value_t = 1_500)]
    rounds: usize,
    /// Scenarios to run (default: all).
    #[arg(value_enum)]
    scenarios: Vec<Scenario>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Scenario {
    /// Durable service creates with each count of clients.
    Creates,
    /// The daemon's memory holding `--services` services.
    Memory,
    /// Start to serving with `--objects` services in the store.
    Startup,
    /// The state dir's size while one 400 KB secret is replaced
    /// `--rounds` times, beside `--kept-secrets` others.
    Disk,
}

const SIGINT: i32 = 2;
const SIGKILL: i32 = 9;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let scenarios = if args.scenarios.is_empty() {
        Scenario::value_variants().to_vec()
    } else {
        args.scenarios.clone()
    };
    std::fs::create_dir_all(&args.dir).with_context(|| format!("create {}", args.dir.display()))?;
    let binary = swarmd_binary();
    println!("swarmd: {}", binary.display());
    println!("disk: {}", measure_fsync(&args.dir)?);
    for scenario in scenarios {
        let root = args.dir.join(format!("{scenario:?}").to_lowercase());
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root)?;
        match scenario {
            Scenario::Creates => creates(&binary, &root, &args.clients, args.connections, args.seconds).await?,
            Scenario::Memory => memory(&binary, &root, args.services).await?,
            Scenario::Startup => startup(&binary, &root, args.objects).await?,
            Scenario::Disk => {
                for &kept in &args.kept_secrets {
                    disk(&binary, &root.join(format!("kept-{kept}")), kept, args.rounds).await?;
                }
            }
        }
        std::fs::remove_dir_all(&root)?;
        println!("disk: {}", measure_fsync(&args.dir)?);
    }
    Ok(())
}

fn measure_fsync(dir: &Path) -> anyhow::Result<FsyncLatency> {
    fsync::measure(dir, 1000).with_context(|| format!("measure fsync in {}", dir.display()))
}

/// What the clients of one run saw.
struct Run {
    latencies: Vec<Duration>,
    elapsed: Duration,
}

/// What each client of a run asks for, one request after the other.
#[derive(Clone)]
enum Load {
    /// Creates services named `{prefix}-{client}-{n}`: a durable write each.
    Create { prefix: String },
    /// Lists the clusters (one object): a read, which costs the RPC stack
    /// and the leader check but no write, the ceiling of what the creates
    /// can reach.
    Read,
}

/// `clients` clients send requests of `load` until `stop` says so, over
/// `connections` HTTP/2 connections (as many as clients if 0), client `i` on
/// connection `i % connections`.
async fn run_clients(
    socket: &Path,
    clients: usize,
    connections: usize,
    load: Load,
    stop: impl Fn(usize, Instant) -> bool + Clone + Send + 'static,
) -> anyhow::Result<Run> {
    let connections = if connections == 0 {
        clients
    } else {
        connections.min(clients)
    };
    let mut channels = Vec::with_capacity(connections);
    for _ in 0..connections {
        channels.push(channel(socket).await.context("connect to swarmd")?);
    }
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .zip(channels.iter().cycle())
        .map(|(client, channel)| {
            let (load, stop, channel) = (load.clone(), stop.clone(), channel.clone());
            tokio::spawn(async move { one_client(ControlClient::new(channel), client, load, stop).await })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Ok(Run { latencies, elapsed })
}

async fn one_client(
    mut control: ControlClient<Channel>,
    client: usize,
    load: Load,
    stop: impl Fn(usize, Instant) -> bool,
) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::new();
    let mut n = 0;
    while !stop(n, Instant::now()) {
        let started = Instant::now();
        match &load {
            Load::Create { prefix } => {
                let name = format!("{prefix}-{client}-{n}");
                let spec = ServiceSpec::container(&name, "busybox:local");
                let request = CreateServiceRequest { spec: Some(spec) };
                control
                    .create_service(request)
                    .await
                    .with_context(|| format!("create service {name}"))?;
            }
            Load::Read => {
                control
                    .list_clusters(ListClustersRequest::default())
                    .await
                    .context("list clusters")?;
            }
        }
        latencies.push(started.elapsed());
        n += 1;
    }
    Ok(latencies)
}

/// The Raft log's synced writes so far, from the daemon's metrics.
#[derive(Clone, Copy)]
struct RaftWrites {
    fsyncs: f64,
    entries: f64,
    seconds: f64,
}

impl RaftWrites {
    fn scrape(addr: &str) -> anyhow::Result<RaftWrites> {
        let (_, body) = http_get(addr, "/metrics")?;
        let value = |series: &str| sample(&body, series).with_context(|| format!("no {series} in the metrics"));
        Ok(RaftWrites {
            fsyncs: value("swarm_raft_fsyncs_total")?,
            entries: value("swarm_raft_entries_persisted_total")?,
            seconds: value("swarm_raft_fsync_seconds_total")?,
        })
    }

    fn since(self, before: RaftWrites) -> RaftWrites {
        RaftWrites {
            fsyncs: self.fsyncs - before.fsyncs,
            entries: self.entries - before.entries,
            seconds: self.seconds - before.seconds,
        }
    }
}

/// CPU seconds a process has used so far (user + system), from /proc.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("parse /proc/PID/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> { Ok(fields.get(i).context("short /proc/PID/stat")?.parse()?) };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after ")".
    let clock_ticks = 100.0; // USER_HZ on Linux
    Ok((ticks(11)? + ticks(12)?) / clock_ticks)
}

/// Resident memory of a process, in bytes, from /proc.
fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .context("no VmRSS in /proc/PID/status")?;
    let kib: u64 = line.split_whitespace().nth(1).context("parse VmRSS")?.parse()?;
    Ok(kib * 1024)
}

/// Durable creates with each count of clients (1, 16, 64, 256), each on a fresh
/// daemon, against the targets of the issue.
async fn creates(binary: &Path, root: &Path, counts: &[usize], connections: usize, seconds: u64) -> anyhow::Result<()> {
    let shared = match connections {
        0 => "one connection per client".to_string(),
        n => format!("the clients sharing {n} connections"),
    };
    println!("\ndurable service creates through the Unix socket, {shared}, {seconds} s per point");
    println!(
        "| clients | creates/s | p50 ms | p99 ms | max ms | swarmd CPU (cores) | swarmd CPU per create (µs) | entries per synced write | synced write ms | fsync p50 / p99 ms (probe) | target | reads/s (p50 ms), same clients |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &clients in counts {
        let dir = root.join(format!("clients-{clients}"));
        let daemon = Daemon::start_with(binary, &dir, "load", &["--listen-metrics", "127.0.0.1:0"]).await;
        let metrics = metrics_addr(&daemon);
        // Warm up: connections, allocator, the RocksDB memtable.
        let warm_up = Load::Create { prefix: "warm".into() };
        run_clients(&daemon.socket, 16, connections, warm_up, |n, _| n == 20).await?;
        let probe = fsync::measure(root, 1000)?;
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let cpu_before = cpu_seconds(daemon.child.id())?;
        let writes_before = RaftWrites::scrape(&metrics)?;
        let load = Load::Create { prefix: "svc".into() };
        let run = run_clients(&daemon.socket, clients, connections, load, move |_, now| {
            now >= deadline
        })
        .await?;
        let cpu = (cpu_seconds(daemon.child.id())? - cpu_before) / run.elapsed.as_secs_f64();
        let writes = RaftWrites::scrape(&metrics)?.since(writes_before);
        let rate = run.latencies.len() as f64 / run.elapsed.as_secs_f64();
        let (p50, p99) = (percentile(&run.latencies, 0.5), percentile(&run.latencies, 0.99));
        let target = match clients {
            1 => format!("p50 <= {:.2} ms", 1.2 * ms(probe.p50) + 1.0),
            64 => format!(
                ">= {:.0}/s, p99 < {:.2} ms",
                0.8 * 64.0 / probe.p50.as_secs_f64(),
                3.0 * ms(probe.p99) + 10.0
            ),
            256 => ">= 25,000/s".to_string(),
            _ => String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let reads = run_clients(&daemon.socket, clients, connections, Load::Read, move |_, now| {
            now >= deadline
        })
        .await?;
        println!(
            "| {clients} | {rate:.0} | {:.2} | {:.2} | {:.2} | {cpu:.2} | {:.0} | {:.1} | {:.2} | {:.2} / {:.2} | {target} | {:.0} ({:.2}) |",
            ms(p50),
            ms(p99),
            ms(percentile(&run.latencies, 1.0)),
            cpu * 1e6 / rate,
            writes.entries / writes.fsyncs.max(1.0),
            writes.seconds * 1e3 / writes.fsyncs.max(1.0),
            ms(probe.p50),
            ms(probe.p99),
            reads.latencies.len() as f64 / reads.elapsed.as_secs_f64(),
            ms(percentile(&reads.latencies, 0.5)),
        );
        let status = daemon.signal_and_wait(SIGINT, Duration::from_secs(10));
        anyhow::ensure!(status.success(), "swarmd exited with {status} after SIGINT");
    }
    Ok(())
}

/// The resident memory of a daemon holding `services` services.
async fn memory(binary: &Path, root: &Path, services: usize) -> anyhow::Result<()> {
    let daemon = Daemon::start(binary, &root.join("node"), "load").await;
    let empty = rss_bytes(daemon.child.id())?;
    let services = fill(&daemon.socket, services).await?.latencies.len();
    let full = rss_bytes(daemon.child.id())?;
    println!(
        "\nswarmd RSS: {:.1} MiB serving an empty store, {:.1} MiB holding {services} services ({:.0} bytes per service over the empty store)",
        mib(empty),
        mib(full),
        full.saturating_sub(empty) as f64 / services as f64
    );
    let status = daemon.signal_and_wait(SIGINT, Duration::from_secs(10));
    anyhow::ensure!(status.success(), "swarmd exited with {status} after SIGINT");
    Ok(())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Creates `count` services (rounded up to a multiple of 64) with 64 clients.
async fn fill(socket: &Path, count: usize) -> anyhow::Result<Run> {
    const CLIENTS: usize = 64;
    let per_client = count.div_ceil(CLIENTS);
    let load = Load::Create { prefix: "fill".into() };
    run_clients(socket, CLIENTS, 0, load, move |n, _| n == per_client).await
}

/// Time from starting `swarmd` on a state dir holding `objects` services to
/// its first answer, after a clean stop (SIGINT) and after kill -9, twice
/// each; then a check that every service came back.
async fn startup(binary: &Path, root: &Path, objects: usize) -> anyhow::Result<()> {
    let dir = root.join("node");
    let mut daemon = Daemon::start(binary, &dir, "load").await;
    let filled = fill(&daemon.socket, objects).await?;
    let objects = filled.latencies.len();
    println!(
        "\n{objects} services created in {:.1} s; swarmd RSS {:.0} MiB",
        filled.elapsed.as_secs_f64(),
        mib(rss_bytes(daemon.child.id())?)
    );
    for (how, signal) in [
        ("SIGINT", SIGINT),
        ("kill -9", SIGKILL),
        ("SIGINT", SIGINT),
        ("kill -9", SIGKILL),
    ] {
        let status = daemon.signal_and_wait(signal, Duration::from_secs(10));
        anyhow::ensure!(
            signal == SIGKILL || status.success(),
            "swarmd exited with {status} after {how}"
        );
        let started = Instant::now();
        daemon = Daemon::start(binary, &dir, "load").await;
        let mut control = ControlClient::new(channel(&daemon.socket).await?);
        control.list_clusters(ListClustersRequest::default()).await?;
        println!(
            "start to first answer after {how}, {objects} services in the store: {:.0} ms (target < 2,000 ms)",
            ms(started.elapsed())
        );
    }
    let services = count_services(&daemon.socket).await?;
    anyhow::ensure!(
        services == objects,
        "{services} services came back, {objects} were created"
    );
    // What an operator waits for with that many services.
    for args in [&["service", "ls", "-q"][..], &["service", "inspect", "fill-0-0"]] {
        let started = Instant::now();
        let output = std::process::Command::new(swarm_tests::daemon::workspace_binary("swarmctl"))
            .args(["--socket", &daemon.socket.to_string_lossy()])
            .args(args)
            .output()?;
        let elapsed = started.elapsed();
        anyhow::ensure!(
            output.status.success(),
            "swarmctl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        println!(
            "swarmctl {} with {objects} services: {:.0} ms",
            args.join(" "),
            ms(elapsed)
        );
    }
    let status = daemon.signal_and_wait(SIGINT, Duration::from_secs(10));
    anyhow::ensure!(status.success(), "swarmd exited with {status} after SIGINT");
    Ok(())
}

/// Every service in the store (the list is larger than tonic's default
/// 4 MiB message limit).
async fn count_services(socket: &Path) -> anyhow::Result<usize> {
    let mut control = ControlClient::new(channel(socket).await?).max_decoding_message_size(usize::MAX);
    let list = control
        .list_services(ListServicesRequest::default())
        .await?
        .into_inner();
    Ok(list.services.len())
}

/// The size of a large secret in the `disk` scenario (SwarmKit takes up to
/// 500 KiB).
const SECRET_BYTES: usize = 400_000;

/// The state dir's size, sampled every 20 ms, while one large secret is
/// replaced (created anew, the old one removed) `rounds` times beside
/// `kept` others: its peak against the state it holds. The secrets'
/// bytes are random, as RocksDB cannot compress them.
async fn disk(binary: &Path, root: &Path, kept: usize, rounds: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(root)?;
    let dir = root.join("node");
    let daemon = Daemon::start(binary, &dir, "load").await;
    let mut control = ControlClient::new(channel(&daemon.socket).await?);
    let mut noise = Noise::new(0x2545_f491_4f6c_dd1d);
    let mut secret = |name: String| {
        let data = noise.bytes(SECRET_BYTES);
        CreateSecretRequest {
            spec: Some(SecretSpec {
                annotations: Some(Annotations {
                    name,
                    ..Default::default()
                }),
                data,
            }),
        }
    };
    for n in 0..kept {
        control.create_secret(secret(format!("kept-{n}"))).await?;
    }
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = std::sync::Arc::clone(&sampling);
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            let mut peak = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(dir_bytes(&dir));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        })
    };
    let started = Instant::now();
    let mut previous: Option<String> = None;
    // Each create's latency: snapshots of the kept secrets are taken
    // meanwhile, and what they cost the loop shows in the slowest.
    let mut latencies = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let sent = Instant::now();
        let created = control.create_secret(secret(format!("churn-{round}"))).await?;
        latencies.push(sent.elapsed());
        let id = created.into_inner().secret.context("no secret in the reply")?.id;
        if let Some(secret_id) = previous.replace(id) {
            control.remove_secret(RemoveSecretRequest { secret_id }).await?;
        }
    }
    let elapsed = started.elapsed();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.await?;
    let state = ((kept + 1) * SECRET_BYTES) as u64;
    latencies.sort_unstable();
    println!(
        "
{kept} secrets of 400 KB kept, one replaced {rounds} times ({:.0} MiB written) in {:.1} s: \
         state dir peak {:.0} MiB, {:.0} MiB at the end, for {:.1} MiB of secrets; creates p50 {:.2} ms, \
         p99 {:.2} ms, max {:.2} ms",
        mib((rounds * SECRET_BYTES) as u64),
        elapsed.as_secs_f64(),
        mib(peak),
        mib(dir_bytes(&dir)),
        mib(state),
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default()),
    );
    let status = daemon.signal_and_wait(SIGINT, Duration::from_secs(10));
    anyhow::ensure!(status.success(), "swarmd exited with {status} after SIGINT");
    Ok(())
}

/// The bytes allocated to the files under `dir` (files removed meanwhile
/// count as nothing).
fn dir_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => dir_bytes(&entry.path()),
            Ok(meta) => meta.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}
