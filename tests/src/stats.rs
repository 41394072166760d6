//! The few statistics the benchmark binaries print.

use std::time::Duration;

/// The `q` quantile (0.0 to 1.0) of samples sorted in increasing order.
///
/// # Panics
///
/// When `sorted` is empty.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

/// A duration in milliseconds, for printing.
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
