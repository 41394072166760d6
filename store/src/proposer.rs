//! The seam between the store and consensus.

use futures::future::BoxFuture;
use swarm_proto::v1::StoreAction;

use crate::Result;

/// Commits a write transaction's changes, as one Raft log entry.
///
/// The store calls [`Proposer::propose`] once per transaction, with the
/// transaction's changes; the store itself changes nothing yet. The proposer
/// must see to it that once the entry is committed, every manager (this one
/// included) calls [`MemoryStore::apply`](crate::MemoryStore::apply) with
/// those actions and the entry's index, in log order, and must resolve the
/// returned future only after this manager's `apply` returned, with its
/// result. The writer then sees its own write in every later read.
///
/// Proposals need not wait for one another: many may be in flight and share
/// one fsync. Their checks run again in `apply`, against the state of the
/// moment, so two writers racing on one object cannot both win.
pub trait Proposer: Send + Sync + 'static {
    /// Proposes `actions` as one entry.
    ///
    /// # Errors
    ///
    /// The future fails with [`Error::ProposalFailed`](crate::Error::ProposalFailed)
    /// if the entry cannot be committed (no leader, shutting down), with
    /// [`Error::OutcomeUnknown`](crate::Error::OutcomeUnknown) if it was sent
    /// but may or may not commit (leadership lost while waiting), or with the
    /// error `apply` gave.
    fn propose(&self, actions: Vec<StoreAction>) -> BoxFuture<'static, Result<u64>>;
}
