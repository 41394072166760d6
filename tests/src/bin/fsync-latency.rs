//! Measures what one durable write costs on this disk (see
//! `swarm_tests::fsync`), so that benchmark figures can be read against
//! the disk they ran on (BENCHMARKS.md reports ratios to it).
//!
//! Usage: `fsync-latency [DIR] [COUNT]` (default: the system temp dir, 500).

use std::path::PathBuf;
use std::process::ExitCode;

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
    match swarm_tests::fsync::measure(&dir, count) {
        Ok(latency) => {
            println!("{} in {}", latency, dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fsync-latency: {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}
