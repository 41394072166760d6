//! What one durable write costs on a disk: 4 KiB appended to a file, then
//! `fdatasync`, as a Raft log append does. Benchmarks measure it in the
//! same run as their own figures and report ratios to it (the disk here is
//! slow and noisy; see ARCHITECTURE.md, "Facts of this environment").

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// Latencies of `count` durable writes.
#[derive(Debug, Clone, Copy)]
pub struct FsyncLatency {
    /// Threads writing at once, each to its own file.
    pub writers: usize,
    /// Writes measured, all threads together.
    pub count: usize,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest.
    pub max: Duration,
    /// Writes per second, one after the other.
    pub per_second: f64,
}

impl std::fmt::Display for FsyncLatency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "fsync ({} writes of 4 KiB + fdatasync, {} writer(s) at once): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {:.0} fsyncs/s",
            self.count,
            self.writers,
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.max.as_secs_f64() * 1e3,
            self.per_second,
        )
    }
}

/// Measures `count` (at least 1) durable writes to a scratch file in `dir`.
///
/// # Errors
///
/// The file cannot be created, written, synced or removed.
pub fn measure(dir: &Path, count: usize) -> std::io::Result<FsyncLatency> {
    measure_concurrent(dir, 1, count)
}

/// Measures `count` durable writes by each of `writers` threads at once,
/// each to its own file, as the members of a group on one machine write.
/// On this disk concurrent fsyncs stall each other far more than one alone.
///
/// # Errors
///
/// A file cannot be created, written, synced or removed.
pub fn measure_concurrent(dir: &Path, writers: usize, count: usize) -> std::io::Result<FsyncLatency> {
    let started = Instant::now();
    let samples: Vec<std::io::Result<Vec<Duration>>> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..writers.max(1))
            .map(|writer| scope.spawn(move || one_writer(dir, writer, count.max(1))))
            .collect();
        threads
            .into_iter()
            .map(|thread| thread.join().unwrap_or_else(|_| Err(std::io::Error::other("panicked"))))
            .collect()
    });
    let elapsed = started.elapsed();
    let mut all = Vec::new();
    for writer in samples {
        all.extend(writer?);
    }
    all.sort();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    Ok(FsyncLatency {
        writers: writers.max(1),
        count: all.len(),
        p50: at(0.50),
        p99: at(0.99),
        max: at(1.0),
        per_second: all.len() as f64 / elapsed.as_secs_f64(),
    })
}

fn one_writer(dir: &Path, writer: usize, count: usize) -> std::io::Result<Vec<Duration>> {
    let path = dir.join(format!("fsync-latency-{}-{writer}", std::process::id()));
    let mut file = OpenOptions::new().create_new(true).append(true).open(&path)?;
    let block = [0xa5u8; 4096];
    let mut samples = Vec::with_capacity(count);
    let result: std::io::Result<()> = (|| {
        for _ in 0..count {
            let start = Instant::now();
            file.write_all(&block)?;
            file.sync_data()?;
            samples.push(start.elapsed());
        }
        Ok(())
    })();
    std::fs::remove_file(&path)?;
    result.map(|()| samples)
}
