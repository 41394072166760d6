//! Reading a daemon's Prometheus endpoint (`swarmd --listen-metrics`), for
//! tests and benchmarks.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use crate::daemon::Daemon;

/// The address `daemon` (started with `--listen-metrics`) logged it serves
/// metrics on.
///
/// # Panics
///
/// When it logs none within 10 s.
pub fn metrics_addr(daemon: &Daemon) -> String {
    const LOGGED: &str = "metrics served at http://";
    daemon.wait_for_log(LOGGED, Duration::from_secs(10));
    let log = daemon.log_text();
    log.split(LOGGED)
        .nth(1)
        .and_then(|rest| rest.split_once("/metrics"))
        .map(|(addr, _)| addr.to_string())
        .unwrap_or_else(|| panic!("no metrics address in the log:\n{log}"))
}

/// `GET path` over plain HTTP/1.0: the status line and the body.
///
/// # Errors
///
/// The connection, the write or the read fails.
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(String, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: swarmd\r\n\r\n").as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.lines().next().unwrap_or_default().to_string();
    Ok((status, body.to_string()))
}

/// The value of the sample whose line starts with `series` (name and labels).
pub fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}
