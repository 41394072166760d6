//! Measures what one durable write costs on this disk: write 4 KiB at the
//! end of a file, then `fdatasync`, as a Raft log append does. Prints p50,
//! p99 and the rate, so that benchmark figures can be read against the disk
//! they ran on (BENCHMARKS.md reports ratios to it).
//!
//! Usage: `fsync-latency [DIR] [COUNT]` (default: the system temp dir, 500).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let dir = args.next().map_or_else(std::env::temp_dir, PathBuf::from);
    let count: usize = match args.next().map(|c| c.parse()) {
        None => 500,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("fsync-latency: COUNT must be a positive number");
            return ExitCode::FAILURE;
        }
    };
    match measure(&dir, count) {
        Ok(mut samples) => {
            samples.sort();
            let total: Duration = samples.iter().sum();
            let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
            println!(
                "fsync latency in {} ({count} writes of 4 KiB + fdatasync): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {:.0} fsyncs/s",
                dir.display(),
                at(0.50).as_secs_f64() * 1e3,
                at(0.99).as_secs_f64() * 1e3,
                at(1.0).as_secs_f64() * 1e3,
                count as f64 / total.as_secs_f64(),
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fsync-latency: {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}

fn measure(dir: &std::path::Path, count: usize) -> std::io::Result<Vec<Duration>> {
    let path = dir.join(format!("fsync-latency-{}", std::process::id()));
    let mut file = OpenOptions::new().create_new(true).append(true).open(&path)?;
    let block = [0xa5u8; 4096];
    let mut samples = Vec::with_capacity(count);
    let result = (|| {
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
