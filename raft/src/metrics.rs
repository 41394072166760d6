//! Counters of one member, cheap to bump from the Ready loop and the
//! transport, read by benchmarks and (later) a metrics endpoint.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Running totals since the member started.
#[derive(Debug, Default)]
pub struct Metrics {
    proposals: AtomicU64,
    applied_entries: AtomicU64,
    ready_cycles: AtomicU64,
    fsyncs: AtomicU64,
    fsync_micros: AtomicU64,
    entries_persisted: AtomicU64,
    messages_sent: AtomicU64,
    messages_dropped: AtomicU64,
    snapshots_taken: AtomicU64,
    snapshots_sent: AtomicU64,
    snapshots_installed: AtomicU64,
    leader_changes: AtomicU64,
    fast_failovers: AtomicU64,
    messages_from_strangers: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Proposals appended to the log by this member as leader.
    pub proposals: u64,
    /// Entries applied to the state machine (proposals of any member).
    pub applied_entries: u64,
    /// Ready cycles handled.
    pub ready_cycles: u64,
    /// Synced RocksDB writes: one per Ready that had something to persist.
    pub fsyncs: u64,
    /// Total time spent in those writes, in microseconds.
    pub fsync_micros: u64,
    /// Log entries written by those writes.
    pub entries_persisted: u64,
    /// Raft messages delivered to peers.
    pub messages_sent: u64,
    /// Raft messages dropped: full peer queue, unreachable peer, cut link.
    pub messages_dropped: u64,
    /// Snapshots this member took of its state machine.
    pub snapshots_taken: u64,
    /// Snapshots streamed to followers.
    pub snapshots_sent: u64,
    /// Snapshots received from a leader and installed.
    pub snapshots_installed: u64,
    /// Changes of the known leader (including to none).
    pub leader_changes: u64,
    /// Campaigns started at once because the leader's address refused
    /// connections.
    pub fast_failovers: u64,
    /// Messages dropped for coming from outside every configuration this
    /// member knows while it had a live leader (or led).
    pub messages_from_strangers: u64,
    /// Free bytes on the data dir's filesystem at the last reading (0
    /// before it, or with the check off).
    pub disk_free_bytes: u64,
    /// Free bytes under which proposals are refused (0 with the check off).
    pub disk_reserve_bytes: u64,
    /// Whether proposals are refused for want of room on the disk.
    pub disk_refusing_writes: bool,
    /// Whether proposals that only remove are refused too.
    pub disk_refusing_removals: bool,
}

impl MetricsSnapshot {
    /// Log entries per fsync: how well group commit is batching.
    pub fn entries_per_fsync(&self) -> f64 {
        if self.fsyncs == 0 {
            0.0
        } else {
            self.entries_persisted as f64 / self.fsyncs as f64
        }
    }
}

impl Metrics {
    /// The counters now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            proposals: self.proposals.load(Relaxed),
            applied_entries: self.applied_entries.load(Relaxed),
            ready_cycles: self.ready_cycles.load(Relaxed),
            fsyncs: self.fsyncs.load(Relaxed),
            fsync_micros: self.fsync_micros.load(Relaxed),
            entries_persisted: self.entries_persisted.load(Relaxed),
            messages_sent: self.messages_sent.load(Relaxed),
            messages_dropped: self.messages_dropped.load(Relaxed),
            snapshots_taken: self.snapshots_taken.load(Relaxed),
            snapshots_sent: self.snapshots_sent.load(Relaxed),
            snapshots_installed: self.snapshots_installed.load(Relaxed),
            leader_changes: self.leader_changes.load(Relaxed),
            fast_failovers: self.fast_failovers.load(Relaxed),
            messages_from_strangers: self.messages_from_strangers.load(Relaxed),
            disk_free_bytes: 0,
            disk_reserve_bytes: 0,
            disk_refusing_writes: false,
            disk_refusing_removals: false,
        }
    }

    pub(crate) fn add_proposal(&self) {
        self.proposals.fetch_add(1, Relaxed);
    }
    pub(crate) fn add_applied(&self, entries: u64) {
        self.applied_entries.fetch_add(entries, Relaxed);
    }
    pub(crate) fn add_ready_cycle(&self) {
        self.ready_cycles.fetch_add(1, Relaxed);
    }
    pub(crate) fn add_fsync(&self, micros: u64, entries: u64) {
        self.fsyncs.fetch_add(1, Relaxed);
        self.fsync_micros.fetch_add(micros, Relaxed);
        self.entries_persisted.fetch_add(entries, Relaxed);
    }
    pub(crate) fn add_messages_sent(&self, count: usize) {
        self.messages_sent.fetch_add(count as u64, Relaxed);
    }
    pub(crate) fn add_messages_dropped(&self, count: usize) {
        self.messages_dropped.fetch_add(count as u64, Relaxed);
    }
    pub(crate) fn add_snapshot_taken(&self) {
        self.snapshots_taken.fetch_add(1, Relaxed);
    }
    pub(crate) fn add_snapshot_sent(&self) {
        self.snapshots_sent.fetch_add(1, Relaxed);
    }
    pub(crate) fn add_snapshot_installed(&self) {
        self.snapshots_installed.fetch_add(1, Relaxed);
    }
    pub(crate) fn add_fast_failover(&self) {
        self.fast_failovers.fetch_add(1, Relaxed);
    }
    pub(crate) fn add_leader_change(&self) {
        self.leader_changes.fetch_add(1, Relaxed);
    }
    pub(crate) fn add_message_from_stranger(&self) {
        self.messages_from_strangers.fetch_add(1, Relaxed);
    }
}
