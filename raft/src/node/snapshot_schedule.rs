//! When the Ready loop takes a snapshot.
//!
//! A snapshot costs time in proportion to the whole state; replaying the log
//! after a restart costs time in proportion to the log since the last one.
//! Counting entries alone makes the first grow with the state: 10,000 small
//! entries on a store of 30 MB write 30 MB to save replaying 3 MB. So the
//! schedule also waits until the log since the last snapshot holds a share
//! of that snapshot's size, which keeps the cost per logged byte constant
//! and the replay on restart below that share of a snapshot restore. And
//! whatever the count, a log that grows large in bytes (a few hundred
//! entries of a megabyte) is snapshotted once it outweighs the last
//! snapshot: a restart would replay it whole.

use crate::config::Config;

pub(crate) struct SnapshotSchedule {
    interval: u64,
    log_fraction: f64,
    /// The log bytes that make a snapshot due whatever the entry count.
    log_bytes_cap: u64,
    /// Bytes of the entries applied since the last snapshot started.
    log_bytes: u64,
    /// Bytes of the entries the snapshot being written covers (counted
    /// until it is written: the room it takes is taken until then).
    in_flight: u64,
    /// Size of the last snapshot this run wrote; 0 before the first, when
    /// the entry count alone decides.
    last_bytes: u64,
    /// Size of the snapshots replaced since their tables were last
    /// compacted away (`storage::compact_snapshots`).
    replaced_bytes: u64,
    /// Whether they are compacted away after the next write, whatever
    /// they weigh (the disk is short of room).
    compact_now: bool,
}

impl SnapshotSchedule {
    pub(crate) fn new(config: &Config) -> SnapshotSchedule {
        SnapshotSchedule {
            interval: config.snapshot_interval,
            log_fraction: config.snapshot_log_fraction,
            log_bytes_cap: config.snapshot_log_bytes,
            log_bytes: 0,
            in_flight: 0,
            last_bytes: 0,
            replaced_bytes: 0,
            compact_now: false,
        }
    }

    /// Snapshots from now on every `interval` entries (and the log share).
    pub(crate) fn set_interval(&mut self, interval: u64) {
        self.interval = interval;
    }

    /// Entries of `bytes` in all were applied.
    pub(crate) fn applied(&mut self, bytes: u64) {
        self.log_bytes = self.log_bytes.saturating_add(bytes);
    }

    /// Whether a snapshot is due with entries applied up to `applied` and
    /// the last snapshot at `snapshot_index`.
    pub(crate) fn due(&self, applied: u64, snapshot_index: u64) -> bool {
        let by_count = applied >= snapshot_index.saturating_add(self.interval)
            && self.log_bytes as f64 >= self.log_fraction * self.last_bytes as f64;
        let by_bytes = applied > snapshot_index && self.log_bytes >= self.log_bytes_cap.max(self.last_bytes);
        by_count || by_bytes
    }

    /// Whether a snapshot now would free room, the disk short of it: the
    /// log it lets go (all but `keep_bytes`, what a snapshot keeps for
    /// slow followers then) outweighs what the state grew by since the
    /// last one (as the state machine `measured` itself, if it does; else
    /// taken as none, the log having rewritten what the state holds). Then
    /// it is taken, due or not, and the replaced snapshots compacted away.
    pub(crate) fn frees_log(&self, keep_bytes: u64, measured: Option<u64>) -> bool {
        let growth = measured.map_or(0, |bytes| bytes.saturating_sub(self.last_bytes));
        self.log_bytes > keep_bytes.saturating_add(growth)
    }

    /// A snapshot of everything applied so far was started.
    pub(crate) fn started(&mut self) {
        self.in_flight = std::mem::take(&mut self.log_bytes);
    }

    /// The snapshot started was not written: what it would have covered
    /// is still in the log.
    pub(crate) fn failed(&mut self) {
        self.log_bytes = self.log_bytes.saturating_add(std::mem::take(&mut self.in_flight));
    }

    /// What the next snapshot may weigh: as the state machine `measured`
    /// itself, if it does; else, at most about, the last one (written, or
    /// restored at start) and every entry applied since.
    pub(crate) fn next_bytes(&self, measured: Option<u64>) -> u64 {
        measured.unwrap_or(
            self.last_bytes
                .saturating_add(self.in_flight)
                .saturating_add(self.log_bytes),
        )
    }

    /// A snapshot of `bytes` was written, or installed from the leader.
    pub(crate) fn written(&mut self, bytes: usize) {
        self.replaced_bytes = self.replaced_bytes.saturating_add(self.last_bytes);
        self.last_bytes = bytes as u64;
        self.in_flight = 0;
    }

    /// The snapshot started was written but not made current: one
    /// installed from the leader (and counted by [`written`]) replaced it
    /// meanwhile.
    ///
    /// [`written`]: SnapshotSchedule::written
    pub(crate) fn superseded(&mut self) {
        self.in_flight = 0;
    }

    /// Compacts the replaced snapshots away after the next write, whatever
    /// they weigh: the disk is short of room.
    pub(crate) fn compact_after_next_write(&mut self) {
        self.compact_now = true;
    }

    /// Whether the snapshots replaced since the last compaction outweigh
    /// the current one: then compacting them away is worth rewriting it
    /// (about every other snapshot); or it was asked for. Counted as done
    /// once said.
    pub(crate) fn take_compaction_due(&mut self) -> bool {
        let due = std::mem::take(&mut self.compact_now) || self.replaced_bytes > self.last_bytes;
        if due {
            self.replaced_bytes = 0;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(interval: u64, log_fraction: f64) -> SnapshotSchedule {
        let mut config = Config::new(1, 1, "", "");
        config.snapshot_interval = interval;
        config.snapshot_log_fraction = log_fraction;
        config.snapshot_log_bytes = 10_000;
        SnapshotSchedule::new(&config)
    }

    #[test]
    fn a_log_heavy_in_bytes_is_due_whatever_its_entry_count() {
        let mut s = schedule(10_000, 0.5);
        s.applied(9_999);
        assert!(!s.due(10, 0), "under the byte cap");
        s.applied(1);
        assert!(s.due(10, 0), "at the byte cap, 10 entries");
        assert!(!s.due(10, 10), "nothing applied since the snapshot");
        // After a snapshot larger than the cap, the log must outweigh it.
        s.started();
        s.written(50_000);
        s.applied(49_999);
        assert!(!s.due(20, 10));
        s.applied(1);
        assert!(s.due(20, 10));
    }

    #[test]
    fn the_next_snapshot_is_reckoned_whole_until_written_and_again_after_a_failure() {
        let mut s = schedule(100, 0.5);
        s.written(1_000);
        s.applied(300);
        assert_eq!(s.next_bytes(None), 1_300);
        // Started: what it covers still counts until it is written.
        s.started();
        s.applied(50);
        assert_eq!(s.next_bytes(None), 1_350);
        s.failed();
        assert_eq!(s.next_bytes(None), 1_350);
        s.started();
        s.written(1_200);
        assert_eq!(s.next_bytes(None), 1_200);
        assert_eq!(s.next_bytes(Some(700)), 700, "the machine's own measure first");
    }

    #[test]
    fn the_entry_count_alone_decides_until_a_snapshot_was_written() {
        let mut s = schedule(100, 0.5);
        assert!(!s.due(99, 0));
        s.applied(10);
        assert!(s.due(100, 0));
    }

    #[test]
    fn after_a_snapshot_the_log_must_also_hold_a_share_of_its_size() {
        let mut s = schedule(100, 0.5);
        s.started();
        s.written(1_000);
        s.applied(499);
        assert!(!s.due(300, 100), "enough entries, too few bytes");
        s.applied(1);
        assert!(s.due(300, 100));
        assert!(!s.due(199, 100), "enough bytes, too few entries");
    }

    #[test]
    fn a_fraction_of_zero_counts_entries_only() {
        let mut s = schedule(100, 0.0);
        s.started();
        s.written(1 << 30);
        assert!(s.due(200, 100));
    }

    #[test]
    fn the_replaced_snapshots_are_compacted_away_once_they_outweigh_the_current_one() {
        let mut s = schedule(10, 0.5);
        s.written(1_000);
        assert!(!s.take_compaction_due(), "nothing replaced at the first");
        s.written(1_000);
        assert!(!s.take_compaction_due(), "as much replaced as kept");
        s.written(1_500);
        assert!(s.take_compaction_due());
        assert!(!s.take_compaction_due(), "said once");
        s.written(100);
        assert!(s.take_compaction_due(), "a state that shrank");
    }

    #[test]
    fn a_snapshot_frees_room_once_the_log_outweighs_what_is_kept_and_what_the_state_grew() {
        let mut s = schedule(10_000, 0.5);
        s.written(100_000);
        s.applied(5_000);
        assert!(!s.frees_log(8_000, None), "under the bytes kept");
        s.applied(3_001);
        assert!(s.frees_log(8_000, None), "the log rewrote the state");
        assert!(
            s.frees_log(8_000, Some(100_000)),
            "the state measured as large as before"
        );
        assert!(s.frees_log(8_000, Some(90_000)), "a state that shrank");
        // Snapshotted now, a state grown by 1,000 would take about as much
        // room as the log it lets go beyond the 8,000 kept.
        assert!(!s.frees_log(8_000, Some(101_000)));
        s.applied(1_000);
        assert!(s.frees_log(8_000, Some(101_000)));
    }

    #[test]
    fn the_replaced_snapshots_are_compacted_away_when_asked_whatever_they_weigh() {
        let mut s = schedule(10, 0.5);
        s.written(1_000);
        s.written(1_000);
        s.compact_after_next_write();
        assert!(s.take_compaction_due());
        assert!(!s.take_compaction_due(), "said once");
    }
}
