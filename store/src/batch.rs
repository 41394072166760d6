//! [`Batch`]: many small updates, committed in bounded proposals.

use crate::tx::WriteTx;
use crate::{MemoryStore, Result};

/// Most changes one proposal of a batch carries (SwarmKit: 200).
pub const MAX_CHANGES_PER_PROPOSAL: usize = 200;

/// About the most bytes one proposal of a batch carries (SwarmKit: 1 MiB;
/// the gRPC message limit is 4 MiB).
pub const MAX_PROPOSAL_BYTES: usize = 1 << 20;

/// Many updates, such as a status report for thousands of tasks, committed
/// as few proposals as the bounds allow.
///
/// Each [`Batch::update`] is all-or-nothing: if its closure fails, what it
/// changed is rolled back and the batch goes on. Once the open transaction
/// holds [`MAX_CHANGES_PER_PROPOSAL`] changes or about
/// [`MAX_PROPOSAL_BYTES`], it is committed and a new one starts from the
/// then current state. Each proposal is atomic; the batch as a whole is not.
/// [`Batch::commit`] commits the rest; dropping a batch discards it.
pub struct Batch<'s> {
    store: &'s MemoryStore,
    tx: Option<WriteTx>,
    proposals: usize,
}

impl<'s> Batch<'s> {
    pub(crate) fn new(store: &'s MemoryStore) -> Batch<'s> {
        Batch {
            store,
            tx: None,
            proposals: 0,
        }
    }

    /// Runs `f` in the open transaction.
    ///
    /// # Errors
    ///
    /// The error of `f` (its changes are rolled back), or that of committing
    /// a full transaction (every change since the previous commit is lost).
    pub async fn update<R>(&mut self, f: impl FnOnce(&mut WriteTx) -> Result<R>) -> Result<R> {
        let store = self.store;
        let tx = self.tx.get_or_insert_with(|| {
            let mut tx = WriteTx::new(store.read().state);
            tx.track_size();
            tx
        });
        let checkpoint = tx.checkpoint();
        let result = match f(tx) {
            Ok(result) => result,
            Err(e) => {
                tx.rollback(checkpoint);
                return Err(e);
            }
        };
        tx.keep(checkpoint);
        if tx.len() >= MAX_CHANGES_PER_PROPOSAL || tx.size() >= MAX_PROPOSAL_BYTES {
            self.flush().await?;
        }
        Ok(result)
    }

    /// Commits the open transaction, if any.
    async fn flush(&mut self) -> Result<()> {
        if let Some(tx) = self.tx.take()
            && !tx.is_empty()
        {
            self.proposals += 1;
            self.store.commit(tx).await?;
        }
        Ok(())
    }

    /// Commits what is left; returns the number of proposals the batch made.
    ///
    /// # Errors
    ///
    /// As [`MemoryStore::update`].
    pub async fn commit(mut self) -> Result<usize> {
        self.flush().await?;
        Ok(self.proposals)
    }
}
