//! What the Raft crash test and its child process share.

use std::time::Duration;

use swarm_raft::Config;

/// The member the crash child runs: alone in its group, snapshotting often
/// so that kills also land around snapshots and log compaction.
pub fn config(dir: &str) -> Config {
    let mut config = Config::new(1, 0xc4a54, dir, "127.0.0.1:1");
    config.tick = Duration::from_millis(20);
    config.snapshot_interval = 1_000;
    config.keep_entries = 100;
    config
}
