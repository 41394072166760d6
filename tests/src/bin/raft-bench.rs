//! Benchmarks of the Raft layer (issue "Raft consensus on RocksDB"):
//! durable throughput and latency with 1 and 3 members, failover after the
//! leader is killed, graceful leadership transfer, and a 100 MB snapshot
//! sent to a new member. Every figure is printed beside the fsync latency
//! measured in the same run, on the same disk. Results go in BENCHMARKS.md.
//!
//! Usage: `raft-bench [--dir DIR] [--seconds N] [SCENARIO...]` where a
//! scenario is `durable`, `cluster`, `failover`, `transfer` or `snapshot`
//! (default: all). Build with `--release`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use swarm_raft::testing::LogMachine;
use swarm_raft::testing::cluster::Cluster;
use swarm_raft::{Config, MetricsSnapshot, RaftHandle};
use swarm_tests::fsync::{self, FsyncLatency};
use swarm_tests::stats::{ms, percentile};

/// The allocator swarmd runs on, so that the Raft layer is measured as the
/// daemon runs it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(about = "Benchmarks of the Raft layer")]
struct Args {
    /// Where the data dirs go (on the disk to measure).
    #[arg(long, default_value = "target/raft-bench")]
    dir: PathBuf,
    /// Seconds of load per point of the throughput scenarios.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Trials of the failover and transfer scenarios.
    #[arg(long, default_value_t = 20)]
    trials: usize,
    /// Entries between snapshots in the throughput scenarios (default: the
    /// crate's, 10,000).
    #[arg(long)]
    snapshot_interval: Option<u64>,
    /// Scenarios to run (durable, cluster, failover, transfer, snapshot).
    scenarios: Vec<String>,
}

const ENTRY_BYTES: usize = 256;
const IN_FLIGHT: [usize; 4] = [1, 16, 64, 256];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let all = ["durable", "cluster", "failover", "transfer", "snapshot"];
    let scenarios: Vec<&str> = if args.scenarios.is_empty() {
        all.to_vec()
    } else {
        args.scenarios.iter().map(String::as_str).collect()
    };
    if let Some(unknown) = scenarios.iter().find(|name| !all.contains(name)) {
        anyhow::bail!("unknown scenario {unknown:?}; choose among {all:?}");
    }
    std::fs::create_dir_all(&args.dir).with_context(|| format!("create {}", args.dir.display()))?;
    println!("{}", fsync_line(&args.dir)?);
    for scenario in scenarios {
        let root = args.dir.join(scenario);
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root)?;
        match scenario {
            "durable" => throughput(&root, 1, &args).await?,
            "cluster" => throughput(&root, 3, &args).await?,
            "failover" => failover(&root, args.trials).await?,
            "transfer" => transfer(&root, args.trials).await?,
            "snapshot" => snapshot(&root).await?,
            _ => unreachable!("checked above"),
        }
        std::fs::remove_dir_all(&root)?;
        println!("{}", fsync_line(&args.dir)?);
    }
    Ok(())
}

fn fsync_line(dir: &Path) -> anyhow::Result<String> {
    Ok(format!("disk: {}", measure_fsync(dir)?))
}

fn measure_fsync(dir: &Path) -> anyhow::Result<FsyncLatency> {
    fsync::measure(dir, 300).with_context(|| format!("measure fsync in {}", dir.display()))
}

/// Proposes 256-byte entries with `in_flight` proposers for `seconds` and
/// returns the latency of each.
async fn load(handle: &RaftHandle<usize>, in_flight: usize, seconds: u64) -> anyhow::Result<Vec<Duration>> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut workers = Vec::with_capacity(in_flight);
    for worker in 0..in_flight {
        let handle = handle.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let mut data = format!("{worker}-{n}-").into_bytes();
                data.resize(ENTRY_BYTES, b'x');
                let started = Instant::now();
                handle.propose(data).await?;
                latencies.push(started.elapsed());
                n += 1;
            }
            Ok::<_, swarm_raft::Error>(latencies)
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await??);
    }
    all.sort_unstable();
    Ok(all)
}

fn delta(after: MetricsSnapshot, before: MetricsSnapshot) -> (u64, u64, u64, u64) {
    (
        after.fsyncs - before.fsyncs,
        after.entries_persisted - before.entries_persisted,
        after.fsync_micros - before.fsync_micros,
        after.messages_dropped - before.messages_dropped,
    )
}

/// Durable throughput with `size` members on loopback.
async fn throughput(root: &Path, size: u64, args: &Args) -> anyhow::Result<()> {
    let seconds = args.seconds;
    let interval = args.snapshot_interval;
    // A state of bounded size (the latest 10,000 entries, about 2.7 MB), as
    // the store's is: snapshots cost the same at the end of a run as at
    // its start.
    let keep_last = || LogMachine::keeping_last(10_000);
    let cluster = Cluster::start_with_machines(root.to_path_buf(), size, keep_last, move |config| {
        if let Some(interval) = interval {
            config.snapshot_interval = interval;
        }
    })
    .await;
    let leader = cluster.leader().await;
    let handle = cluster.handle(leader).clone();
    load(&handle, 16, 1).await?; // warm up
    println!("\n{size} member(s), durable, {ENTRY_BYTES} B entries, {seconds} s per point");
    println!(
        "| in flight | proposals/s | p50 ms | p99 ms | fsyncs/s (leader) | entries/fsync | leader write ms | dropped msgs | fsync p50 ms (probe, {size} writer(s)) | target/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for in_flight in IN_FLIGHT {
        // As many writers as members: they share this one disk. A second
        // of writing at least, so that the disk's periodic stalls under
        // concurrent writers (every ~100 ms here) are in the sample.
        let probe = fsync::measure_concurrent(root, size as usize, 1500 / size as usize)?;
        let before = handle.metrics();
        let started = Instant::now();
        let latencies = load(&handle, in_flight, seconds).await?;
        let elapsed = started.elapsed();
        let (fsyncs, entries, micros, dropped) = delta(handle.metrics(), before);
        let rate = latencies.len() as f64 / elapsed.as_secs_f64();
        let target = match (size, in_flight) {
            (1, 256) => "30,000".to_string(),
            (3, 256) => "20,000".to_string(),
            _ => format!("{:.0}", 0.8 * in_flight as f64 / probe.p50.as_secs_f64()),
        };
        println!(
            "| {in_flight} | {rate:.0} | {:.2} | {:.2} | {:.0} | {:.1} | {:.2} | {dropped} | {:.2} (p99 {:.2}) | {target} |",
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.99)),
            fsyncs as f64 / elapsed.as_secs_f64(),
            entries as f64 / fsyncs.max(1) as f64,
            micros as f64 / 1e3 / fsyncs.max(1) as f64,
            ms(probe.p50),
            ms(probe.p99),
        );
    }
    cluster.shutdown().await;
    Ok(())
}

/// Time from killing the leader to the next committed proposal, with the
/// fast failover on (the default) and off (raft-rs's election timeout).
async fn failover(root: &Path, trials: usize) -> anyhow::Result<()> {
    for fast_failover in [true, false] {
        let dir = root.join(if fast_failover { "fast" } else { "election-timeout" });
        let mut cluster = Cluster::start(dir, 3, move |config| config.fast_failover = fast_failover).await;
        let mut samples = Vec::new();
        for _ in 0..trials {
            let leader = cluster.leader().await;
            cluster.propose(b"before".to_vec()).await;
            let started = Instant::now();
            cluster.stop(leader, false).await;
            cluster.propose(b"after".to_vec()).await;
            samples.push(started.elapsed());
            cluster.restart(leader).await;
            cluster.leader().await;
        }
        let what = format!("leader killed -> next committed proposal (3 members, fast failover {fast_failover})");
        report(&what, &mut samples);
        cluster.shutdown().await;
    }
    Ok(())
}

/// Time from asking for a leadership transfer to the next committed
/// proposal on the new leader.
async fn transfer(root: &Path, trials: usize) -> anyhow::Result<()> {
    let cluster = Cluster::start(root.to_path_buf(), 3, |_| {}).await;
    let mut samples = Vec::new();
    for _ in 0..trials {
        let leader = cluster.leader().await;
        cluster.propose(b"before".to_vec()).await;
        let started = Instant::now();
        let new_leader = cluster.handle(leader).transfer_leadership(None).await?;
        cluster.handle(new_leader).propose(b"after".to_vec()).await?;
        samples.push(started.elapsed());
    }
    report("graceful transfer -> next committed proposal (3 members)", &mut samples);
    cluster.shutdown().await;
    Ok(())
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort_unstable();
    let defaults = Config::new(1, 1, "", "");
    println!(
        "\n{what}, {} trials (tick {:?}, election {} ticks): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        samples.len(),
        defaults.tick,
        defaults.election_ticks,
        ms(percentile(samples, 0.5)),
        ms(percentile(samples, 0.99)),
        ms(percentile(samples, 1.0)),
    );
}

/// A group holding about 100 MB of state takes a new member: time from the
/// add to the new member having applied everything.
async fn snapshot(root: &Path) -> anyhow::Result<()> {
    const ENTRIES: usize = 400;
    const BYTES: usize = 256 * 1024;
    let mut cluster = Cluster::start(root.to_path_buf(), 3, |config| {
        config.snapshot_interval = ENTRIES as u64;
        config.keep_entries = 10;
    })
    .await;
    let leader = cluster.leader().await;
    let handle = cluster.handle(leader).clone();
    let payload = Arc::new(vec![0x5a_u8; BYTES]);
    for _ in 0..ENTRIES {
        handle.propose(payload.to_vec()).await?;
    }
    // Snapshots are written off the Ready loop: wait for the leader's.
    let deadline = Instant::now() + Duration::from_secs(60);
    while handle.status().await?.snapshot_index < ENTRIES as u64 {
        anyhow::ensure!(Instant::now() < deadline, "the leader took no snapshot in 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let expected = cluster.members[&leader].machine.len();

    let addr = cluster.start_joiner(4).await;
    let started = Instant::now();
    handle.add_member(4, &addr).await?;
    let joiner = cluster.members[&4].machine.clone();
    swarm_raft::testing::cluster::wait_for("the new member to catch up", || {
        (joiner.len() >= expected).then_some(())
    })
    .await;
    let elapsed = started.elapsed();
    let new_member = cluster.handle(4).clone();
    swarm_raft::testing::cluster::wait_for("the snapshot count", || {
        let metrics = new_member.metrics();
        (metrics.snapshots_installed > 0).then_some(())
    })
    .await;
    let metrics = new_member.metrics();
    println!(
        "\nsnapshot of {:.0} MB ({ENTRIES} entries of {} KiB) to a new member: caught up in {:.2} s (snapshots installed: {})",
        (ENTRIES * BYTES) as f64 / 1e6,
        BYTES / 1024,
        elapsed.as_secs_f64(),
        metrics.snapshots_installed,
    );
    cluster.shutdown().await;
    Ok(())
}
