//! What a Raft member is configured with.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// The most bytes of committed entries one Ready hands over to apply (one
/// entry at least, whatever its size).
const MAX_APPLY_BYTES_PER_READY: u64 = 16 * 1024 * 1024;

/// The settings of one Raft member. [`Config::new`] gives ours defaults
/// (ARCHITECTURE.md, "Defaults worth knowing"): a 100 ms tick, heartbeat
/// every tick, an election after 10 ticks, PreVote and CheckQuorum on, a
/// snapshot every 10,000 entries, once the log since the last one holds half
/// its size, keeping 500 entries behind it for slow followers (at most
/// 8 MiB of them, or the snapshot's size).
#[derive(Debug, Clone)]
pub struct Config {
    /// This member's Raft id: never 0, never reused for another data dir.
    pub id: u64,
    /// The cluster this member belongs to. Written into a new data dir and
    /// checked on every later start and on every message received.
    pub cluster_id: u64,
    /// Where RocksDB keeps the log, the hard state and the snapshot.
    pub data_dir: PathBuf,
    /// The address other members reach this one's transport at.
    pub addr: String,
    /// The interval of one Raft tick.
    pub tick: Duration,
    /// Ticks between the leader's heartbeats.
    pub heartbeat_ticks: usize,
    /// Ticks without a leader before a follower campaigns (raft-rs picks a
    /// random timeout in `[election_ticks, 2 * election_ticks)`).
    pub election_ticks: usize,
    /// Campaign only after a pre-vote shows a majority would grant it, so a
    /// member cut off for a while does not depose a healthy leader on return.
    pub pre_vote: bool,
    /// A leader steps down when it has not heard from a majority within an
    /// election timeout, so a leader in a minority stops taking proposals.
    pub check_quorum: bool,
    /// Campaign at once when the silent leader's address refuses
    /// connections (its process is gone), instead of waiting out an
    /// election timeout (`node/failover.rs`).
    pub fast_failover: bool,
    /// Take a snapshot (and compact the log) after this many applied entries.
    pub snapshot_interval: u64,
    /// And only once the entries applied since the last snapshot add up to
    /// this fraction of its size in bytes (0: the entry count alone), so
    /// that a large state is not written out again for a few small entries
    /// (`node/snapshot_schedule.rs`).
    pub snapshot_log_fraction: f64,
    /// And whatever the entry count, once the entries applied since the
    /// last snapshot add up to this many bytes and at least its size: a few
    /// hundred entries of a megabyte must not pile up into a log that a
    /// restart replays whole.
    pub snapshot_log_bytes: u64,
    /// Entries kept before the snapshot's index, so that a follower a little
    /// behind catches up from the log instead of a whole snapshot.
    pub keep_entries: u64,
    /// And no more of them than weigh this many bytes, or the snapshot's
    /// size if larger: a follower further behind is sent the snapshot,
    /// which costs it less than the entries would, and a few hundred large
    /// entries kept do not fill a disk.
    pub keep_bytes: u64,
    /// Proposals that may wait for the Ready loop before `propose` waits.
    pub proposal_queue: usize,
    /// Messages that may wait for one peer before new ones are dropped (and
    /// the peer reported unreachable so that raft-rs resends).
    pub peer_queue: usize,
    /// The largest append message raft-rs builds, in bytes.
    pub max_message_bytes: u64,
    /// Snapshots are streamed to followers in chunks of this many bytes.
    pub snapshot_chunk_bytes: usize,
    /// Free bytes kept on the data dir's filesystem besides room for the
    /// next snapshot: under that, proposals are refused
    /// ([`crate::Error::NoSpace`]). 0 turns the check off.
    pub keep_free_disk: u64,
}

/// Free bytes a member keeps on its disk by default, besides room for its
/// next snapshot: twice the write-ahead log an open may replay and flush
/// into a table.
pub const DEFAULT_KEEP_FREE_DISK: u64 = 2 * crate::storage::MAX_WAL_BYTES;

impl Config {
    /// The defaults, for member `id` of cluster `cluster_id`, keeping its
    /// state in `data_dir` and reachable at `addr`.
    pub fn new(id: u64, cluster_id: u64, data_dir: impl Into<PathBuf>, addr: impl Into<String>) -> Self {
        Config {
            id,
            cluster_id,
            data_dir: data_dir.into(),
            addr: addr.into(),
            tick: Duration::from_millis(100),
            heartbeat_ticks: 1,
            election_ticks: 10,
            pre_vote: true,
            check_quorum: true,
            fast_failover: true,
            snapshot_interval: 10_000,
            snapshot_log_fraction: 0.5,
            snapshot_log_bytes: 64 * 1024 * 1024,
            keep_entries: 500,
            keep_bytes: 8 * 1024 * 1024,
            proposal_queue: 4096,
            peer_queue: 4096,
            max_message_bytes: 1024 * 1024,
            snapshot_chunk_bytes: 1024 * 1024,
            keep_free_disk: DEFAULT_KEEP_FREE_DISK,
        }
    }

    /// The entries a snapshot of `snapshot_bytes` spares.
    pub(crate) fn keep(&self, snapshot_bytes: u64) -> crate::storage::Keep {
        crate::storage::Keep {
            entries: self.keep_entries,
            bytes: self.keep_bytes.max(snapshot_bytes),
        }
    }

    /// The time without a leader after which a follower campaigns, at least.
    pub fn election_timeout(&self) -> Duration {
        self.tick * self.election_ticks as u32
    }

    /// Checks what raft-rs would refuse, and ours beside it.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the setting.
    pub fn validate(&self) -> Result<()> {
        if self.id == 0 {
            return Err(Error::Config("id must not be 0".into()));
        }
        if self.cluster_id == 0 {
            return Err(Error::Config("cluster_id must not be 0".into()));
        }
        if self.tick.is_zero() {
            return Err(Error::Config("tick must be longer than 0".into()));
        }
        if self.snapshot_interval == 0 {
            return Err(Error::Config("snapshot_interval must be at least 1".into()));
        }
        if self.snapshot_log_bytes == 0 {
            return Err(Error::Config("snapshot_log_bytes must be at least 1".into()));
        }
        if !(self.snapshot_log_fraction >= 0.0 && self.snapshot_log_fraction.is_finite()) {
            return Err(Error::Config(
                "snapshot_log_fraction must be a finite number, 0 or more".into(),
            ));
        }
        if self.proposal_queue == 0 || self.peer_queue == 0 {
            return Err(Error::Config("queues must hold at least 1".into()));
        }
        if self.snapshot_chunk_bytes == 0 {
            return Err(Error::Config("snapshot_chunk_bytes must be at least 1".into()));
        }
        self.raft_config(0)
            .validate()
            .map_err(|err| Error::Config(err.to_string()))
    }

    /// raft-rs's configuration, starting from `applied`.
    pub(crate) fn raft_config(&self, applied: u64) -> raft::Config {
        raft::Config {
            id: self.id,
            election_tick: self.election_ticks,
            heartbeat_tick: self.heartbeat_ticks,
            applied,
            max_size_per_msg: self.max_message_bytes,
            // Appends in flight per follower: enough to keep a pipeline of
            // group commits busy on a fast link.
            max_inflight_msgs: 256,
            check_quorum: self.check_quorum,
            pre_vote: self.pre_vote,
            // Appends to one follower produced in one Ready go as one message.
            batch_append: true,
            // A long log replayed at start (or caught up on) is applied in
            // parts of this size, not read and decoded whole at once.
            max_committed_size_per_ready: MAX_APPLY_BYTES_PER_READY,
            ..Default::default()
        }
    }
}
