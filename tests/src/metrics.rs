//! Reading a daemon's Prometheus endpoint (`swarmd --listen-metrics`), for
//! tests and benchmarks.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::daemon::Daemon;

/// The address `daemon` (started with `--listen-metrics`) logged it serves
/// metrics on.
///
/// # Panics
///
/// When it logs none within 10 s.
pub fn metrics_addr(daemon: &Daemon) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = daemon.log_text();
        let found = log
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_once("/metrics"))
            .map(|(addr, _)| addr.to_string());
        if let Some(addr) = found {
            return addr;
        }
        assert!(Instant::now() < deadline, "no metrics address logged:\n{log}");
        std::thread::sleep(Duration::from_millis(10));
    }
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
