//! The open RocksDB of a data dir, shared by the Ready loop and the tasks
//! it starts on blocking threads, with a way to learn when it is closed.

use std::ops::Deref;

use rocksdb::DB;
use tokio::sync::watch;

/// An open database that says when it is closed. Dropping the last
/// holder closes RocksDB, which waits for its background work (a flush,
/// a compaction) and releases the data dir's lock; only then is `closed`
/// dropped (fields drop in order), so [`OpenDb::on_close`] tells it with the
/// directory's files still. (An `Arc`'s strong count falls to zero before
/// its value is dropped, too early to tell.)
pub(crate) struct OpenDb {
    db: DB,
    closed: watch::Sender<()>,
}

impl OpenDb {
    pub(crate) fn new(db: DB) -> Self {
        OpenDb {
            db,
            closed: watch::Sender::new(()),
        }
    }

    /// What tells when this database is closed.
    pub(crate) fn on_close(&self) -> OnClose {
        OnClose(self.closed.subscribe())
    }
}

/// Tells when an [`OpenDb`] is closed.
pub(crate) struct OnClose(watch::Receiver<()>);

impl OnClose {
    /// Resolves once the database is closed.
    pub(crate) async fn closed(&mut self) {
        // Nothing is ever sent: this ends when the sender is dropped.
        while self.0.changed().await.is_ok() {}
    }
}

impl Deref for OpenDb {
    type Target = DB;

    fn deref(&self) -> &DB {
        &self.db
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn the_close_is_told_once_the_last_holder_closed_it_and_its_lock_is_free() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        let db = Arc::new(OpenDb::new(DB::open(&options, dir.path()).expect("open")));
        db.put(b"key", b"value").expect("a write");
        let mut on_close = db.on_close();
        let holder = Arc::clone(&db);
        drop(db);
        let mut closed = Box::pin(on_close.closed());
        assert!(futures::poll!(&mut closed).is_pending(), "still held: not closed");
        std::thread::spawn(move || drop(holder));
        tokio::time::timeout(std::time::Duration::from_secs(10), closed)
            .await
            .expect("told of the close");
        let reopened = DB::open(&options, dir.path()).expect("the lock is free once the close is told");
        assert_eq!(reopened.get(b"key").expect("a read").as_deref(), Some(&b"value"[..]));
    }
}
