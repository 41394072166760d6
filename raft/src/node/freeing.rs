//! Frees, off the Ready loop, the disk that what the log dropped still
//! holds: the tables of the compacted log (deleted whole,
//! `storage::drop_compacted_files`) and those of replaced snapshots
//! (compacted away, `storage::compact_snapshots`).
//!
//! The log's tables may go only once the truncation that let them go is in
//! a table itself (see `drop_compacted_files`), so the work runs one task
//! at a time, and the tables are dropped again only through a truncation a
//! task flushed. (The lock does not keep the tasks in order: each one's
//! truncation is synced before it is spawned, and `flushed_through` only
//! grows.)

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rocksdb::DB;

use crate::open_db::OpenDb;
use crate::storage;

/// How often the compacted log's tables are dropped again while entries
/// come: those RocksDB had not yet moved out of level 0 at the last drop
/// move down as more of the log is flushed.
const AGAIN_EVERY: Duration = Duration::from_secs(1);

pub(crate) struct Freeing {
    db: Arc<OpenDb>,
    member: u64,
    /// The truncation the last drop was asked for.
    asked_through: u64,
    /// The truncation in a table, through which the log's tables may go.
    flushed_through: Arc<AtomicU64>,
    /// Held by the task at work: one at a time, in order.
    working: Arc<Mutex<()>>,
    /// When the tables were last dropped again, and the log's last index
    /// then (with no entry since, nothing moved down).
    again: (Instant, u64),
}

impl Freeing {
    /// For the log in `db`, whose truncation `truncated` is in a table
    /// (an open flushes what it recovers, and drops what it let go).
    pub(crate) fn new(db: Arc<OpenDb>, member: u64, truncated: u64) -> Freeing {
        Freeing {
            db,
            member,
            asked_through: truncated,
            flushed_through: Arc::new(AtomicU64::new(truncated)),
            working: Arc::new(Mutex::new(())),
            again: (Instant::now(), 0),
        }
    }

    /// After a synced write, the log truncated at `truncated`: drops what
    /// a truncation that moved let go, and compacts the replaced snapshots
    /// away if `compact_snapshots`.
    pub(crate) fn after_sync(&mut self, truncated: u64, compact_snapshots: bool) {
        let new_truncation = self.new_truncation(truncated);
        if new_truncation.is_none() && !compact_snapshots {
            return;
        }
        let (db, member) = (Arc::clone(&self.db), self.member);
        let (flushed_through, working) = (Arc::clone(&self.flushed_through), Arc::clone(&self.working));
        tokio::task::spawn_blocking(move || {
            let _working = working.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(through) = new_truncation
                && let Err(err) = drop_tables(&db, &flushed_through, through, true)
            {
                tracing::warn!(member, %err, "cannot drop the table files of the compacted log");
            }
            if compact_snapshots && let Err(err) = storage::compact_snapshots(&db) {
                tracing::warn!(member, %err, "cannot compact the replaced snapshots away");
            }
        });
    }

    /// Whether [`Freeing::on_tick`] drops again now (or, short of room,
    /// flushes first: then even before the log was ever truncated).
    fn again_due(&self, last: u64, short_of_room: bool) -> bool {
        let (at, last_then) = self.again;
        let unflushed = self.asked_through > self.flushed_through.load(Ordering::Acquire);
        let wanted = last != last_then || short_of_room || unflushed;
        wanted && at.elapsed() >= AGAIN_EVERY && (self.asked_through > 1 || short_of_room)
    }

    /// `truncated`, if no drop was asked through it yet.
    fn new_truncation(&mut self, truncated: u64) -> Option<u64> {
        (truncated > self.asked_through).then(|| {
            self.asked_through = truncated;
            truncated
        })
    }

    /// At each tick, the log ending at `last`: every [`AGAIN_EVERY`],
    /// unless a task is at work, drops the compacted log's tables again
    /// while entries come or the disk is `short_of_room` (RocksDB moves
    /// tables out of level 0 as it compacts, entries or not, and then
    /// nothing else frees room), and takes again a drop whose task failed
    /// (a new truncation not yet in a table). A drop that finds no table
    /// writes nothing. If `flush` (see `DiskSpace::flush_frees_room`),
    /// RocksDB's memtables are flushed first, which frees the write-ahead
    /// log files they held.
    pub(crate) fn on_tick(&mut self, last: u64, short_of_room: bool, flush: bool) {
        if !self.again_due(last, short_of_room) {
            return;
        }
        self.again = (Instant::now(), last);
        let asked = self.asked_through;
        let (db, member) = (Arc::clone(&self.db), self.member);
        let (flushed_through, working) = (Arc::clone(&self.flushed_through), Arc::clone(&self.working));
        tokio::task::spawn_blocking(move || {
            let Ok(_working) = working.try_lock() else { return };
            if flush && let Err(err) = storage::flush_memtables(&db) {
                tracing::debug!(member, %err, "cannot flush the memtables");
            }
            if asked <= 1 {
                return; // nothing truncated yet
            }
            let flushed = flushed_through.load(Ordering::Acquire);
            // What `after_sync`'s task does, if it failed (or has yet to
            // run: then it finds the work done).
            let result = if asked > flushed {
                drop_tables(&db, &flushed_through, asked, true)
            } else {
                drop_tables(&db, &flushed_through, flushed, false)
            };
            if let Err(err) = result {
                tracing::debug!(member, %err, "cannot drop the table files of the compacted log");
            }
        });
    }
}

/// Drops the log's tables through `through` (first putting that
/// truncation in a table if `new_truncation`): from then on they may be
/// dropped through it again without a flush.
fn drop_tables(db: &DB, flushed_through: &AtomicU64, through: u64, new_truncation: bool) -> crate::Result<()> {
    storage::drop_compacted_files(db, through, new_truncation)?;
    flushed_through.fetch_max(through, Ordering::AcqRel);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncation_is_dropped_once_and_only_when_it_moved() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, _) = crate::storage::RocksStorage::open(dir.path(), 0xc1, 1).unwrap();
        let mut freeing = Freeing::new(storage.db(), 1, 10);
        assert_eq!(freeing.new_truncation(10), None, "where it started");
        assert_eq!(freeing.new_truncation(850), Some(850));
        assert_eq!(freeing.new_truncation(850), None, "asked once");
    }

    #[test]
    fn tables_are_dropped_again_while_entries_come_room_is_short_or_a_drop_failed() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, _) = crate::storage::RocksStorage::open(dir.path(), 0xc1, 1).unwrap();
        let mut freeing = Freeing::new(storage.db(), 1, 10);
        let long_ago = Instant::now() - AGAIN_EVERY;
        freeing.again = (long_ago, 500);
        assert!(!freeing.again_due(500, false), "idle, with room");
        assert!(freeing.again_due(501, false), "entries came");
        assert!(freeing.again_due(500, true), "short of room");
        // A truncation asked for whose drop has not put it in a table.
        assert_eq!(freeing.new_truncation(400), Some(400));
        assert!(freeing.again_due(500, false), "a drop to take again");
        freeing.flushed_through.store(400, Ordering::Release);
        assert!(!freeing.again_due(500, false), "done");
        freeing.again = (Instant::now(), 500);
        assert!(!freeing.again_due(501, true), "not twice within a second");
    }
}
