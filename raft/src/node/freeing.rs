//! Frees, off the Ready loop, the disk that what the log dropped still
//! holds: the tables of the compacted log (deleted whole,
//! `storage::drop_compacted_files`) and those of replaced snapshots
//! (compacted away, `storage::compact_snapshots`).
//!
//! The log's tables may go only once the truncation that let them go is in
//! a table itself (see `drop_compacted_files`), so the work runs in order,
//! one task at a time, and the tables are dropped again only through a
//! truncation a task flushed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rocksdb::DB;

use crate::storage;

/// How often the compacted log's tables are dropped again while entries
/// come: those RocksDB had not yet moved out of level 0 at the last drop
/// move down as more of the log is flushed.
const AGAIN_EVERY: Duration = Duration::from_secs(1);

pub(crate) struct Freeing {
    db: Arc<DB>,
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
    pub(crate) fn new(db: Arc<DB>, member: u64, truncated: u64) -> Freeing {
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
            if let Some(through) = new_truncation {
                match storage::drop_compacted_files(&db, through, true) {
                    Ok(()) => {
                        flushed_through.fetch_max(through, Ordering::AcqRel);
                    }
                    Err(err) => tracing::warn!(member, %err, "cannot drop the table files of the compacted log"),
                }
            }
            if compact_snapshots && let Err(err) = storage::compact_snapshots(&db) {
                tracing::warn!(member, %err, "cannot compact the replaced snapshots away");
            }
        });
    }

    /// `truncated`, if no drop was asked through it yet.
    fn new_truncation(&mut self, truncated: u64) -> Option<u64> {
        (truncated > self.asked_through).then(|| {
            self.asked_through = truncated;
            truncated
        })
    }

    /// At each tick, the log ending at `last`: drops the compacted log's
    /// tables again every [`AGAIN_EVERY`] while entries come, unless a task
    /// is at work. (A drop that finds no table writes nothing.)
    pub(crate) fn on_tick(&mut self, last: u64) {
        let (at, last_then) = self.again;
        if last == last_then || at.elapsed() < AGAIN_EVERY || self.flushed_through.load(Ordering::Acquire) <= 1 {
            return;
        }
        self.again = (Instant::now(), last);
        let (db, member) = (Arc::clone(&self.db), self.member);
        let (flushed_through, working) = (Arc::clone(&self.flushed_through), Arc::clone(&self.working));
        tokio::task::spawn_blocking(move || {
            let Ok(_working) = working.try_lock() else { return };
            let through = flushed_through.load(Ordering::Acquire);
            if let Err(err) = storage::drop_compacted_files(&db, through, false) {
                tracing::debug!(member, %err, "cannot drop the table files of the compacted log");
            }
        });
    }
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
}
