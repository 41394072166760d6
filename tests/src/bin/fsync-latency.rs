//! Measures what one durable write costs on this disk (see
//! `swarm_tests::fsync`), so that benchmark figures can be read against
//! the disk they ran on (BENCHMARKS.md reports ratios to it).
//!
//! Usage: `fsync-latency [DIR] [COUNT] [WRITERS]` (default: the system temp
//! dir, 500 writes, 1 writer). With several writers, each thread writes
//! COUNT times to its own file, all at once, as the members of a group on
//! one machine do.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let dir = args.next().map_or_else(std::env::temp_dir, PathBuf::from);
    let mut positive = |name: &str, default: usize| match args.next().map(|value| value.parse()) {
        None => Ok(default),
        Some(Ok(n)) if n > 0 => Ok(n),
        Some(_) => Err(format!("fsync-latency: {name} must be a positive number")),
    };
    let (count, writers) = match (positive("COUNT", 500), positive("WRITERS", 1)) {
        (Ok(count), Ok(writers)) => (count, writers),
        (Err(err), _) | (_, Err(err)) => {
            eprintln!("{err}");
            return ExitCode::FAILURE;
        }
    };
    match swarm_tests::fsync::measure_concurrent(&dir, writers, count) {
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
