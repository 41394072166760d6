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
    /// Writes measured.
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
            "fsync ({} writes of 4 KiB + fdatasync): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {:.0} fsyncs/s",
            self.count,
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
    let count = count.max(1);
    let path = dir.join(format!("fsync-latency-{}", std::process::id()));
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
    result?;
    samples.sort();
    let total: Duration = samples.iter().sum();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    Ok(FsyncLatency {
        count,
        p50: at(0.50),
        p99: at(0.99),
        max: at(1.0),
        per_second: count as f64 / total.as_secs_f64(),
    })
}
