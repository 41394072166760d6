//! How many connections each listener keeps, and how long one may stay
//! silent: sized from the open files the process may hold, so that
//! whoever can connect never takes the descriptors RocksDB needs (it then
//! cannot open its next log file, and the member stops). Half of them are
//! left to RocksDB and the rest.

use std::time::Duration;

use swarm_raft::transport::{Deadline, Limits};

/// The Control API's Unix socket is its user's alone, yet a runaway script
/// of that user's should not take every descriptor either: far more than
/// any set of clients needs (a benchmark's 256), each speaking first, at
/// once; a watch may then stay silent for ever.
pub(crate) fn control_api() -> Limits {
    Limits {
        max_connections: (open_files() / 4).clamp(16, 4096),
        max_per_source: usize::MAX,
        deadline: Deadline::FirstByte(Duration::from_secs(10)),
    }
}

/// The Raft transport is open to the network, and unauthenticated until
/// TLS comes. A group holds one connection per peer, a few more while they
/// reconnect; a peer's connections carry heartbeats every tick and HTTP/2
/// pings every 10 s, so one silent for 30 s is no peer's. One address may
/// hold 32, so that one host cannot take every place.
pub(crate) fn raft_transport() -> Limits {
    Limits {
        max_connections: (open_files() / 8).clamp(16, 1024),
        max_per_source: 32,
        deadline: Deadline::Idle(Duration::from_secs(30)),
    }
}

/// A scraper uses one connection at a time, and whoever can reach the port
/// must not hold descriptors with idle or half-sent requests: a connection
/// lives 30 s at most (a scraper that keeps one between scrapes makes
/// another).
pub(crate) fn metrics() -> Limits {
    Limits {
        max_connections: 16,
        max_per_source: 4,
        deadline: Deadline::Lifetime(Duration::from_secs(30)),
    }
}

/// The soft limit on open files (raised to the hard one at start).
fn open_files() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes the limit into the plain struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caps_leave_half_the_open_files_to_the_rest() {
        let caps = control_api().max_connections + raft_transport().max_connections + metrics().max_connections;
        assert!(
            caps <= open_files() / 2 || caps <= 16 + 16 + 16,
            "{caps} of {}",
            open_files()
        );
    }
}
