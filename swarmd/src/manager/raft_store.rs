//! The store behind Raft: where `swarm-store` and `swarm-raft` meet, the
//! only place that knows both (ARCHITECTURE.md, "Crates").
//!
//! A write transaction's store actions become one Raft entry
//! ([`RaftProposer`]); every committed entry is applied to the store on every
//! manager ([`StoreMachine`]), and the proposer's future resolves with what
//! that apply said on this manager. Snapshots are the store's own.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use prost::Message as _;
use swarm_proto::v1::{StoreAction, StoreActions};
use swarm_raft::{BoxError, RaftHandle, SnapshotWriter, StateMachine};
use swarm_store::{Error, MemoryStore, Proposer};

/// What applying one entry to the store said.
pub type ApplyResult = swarm_store::Result<()>;

/// The store as Raft's state machine.
pub struct StoreMachine {
    store: MemoryStore,
}

impl StoreMachine {
    /// Applies committed entries to `store`.
    pub fn new(store: MemoryStore) -> Self {
        StoreMachine { store }
    }
}

impl StateMachine for StoreMachine {
    type Output = ApplyResult;

    fn apply(&mut self, index: u64, data: &[u8]) -> ApplyResult {
        self.apply_run(&[(index, data)]).pop().unwrap_or(Ok(()))
    }

    fn apply_run(&mut self, entries: &[(u64, &[u8])]) -> Vec<ApplyResult> {
        // An entry that does not decode still takes its index (as nothing);
        // its proposer hears why. So does one refused by a conflict found at
        // apply.
        let mut undecodable = Vec::new();
        let decoded = entries
            .iter()
            .enumerate()
            .map(|(i, &(index, data))| match StoreActions::decode(data) {
                Ok(actions) => (index, actions.actions),
                Err(err) => {
                    undecodable.push((
                        i,
                        Error::Invalid(format!("entry {index} holds no store actions: {err}")),
                    ));
                    (index, Vec::new())
                }
            })
            .collect();
        let mut results = self.store.apply_all(decoded);
        for (i, err) in undecodable {
            results[i] = Err(err);
        }
        results
    }

    fn skip(&mut self, index: u64) {
        // An empty commit: the store's index, which watches resume after
        // and `info` reports as the log's, follows the log.
        let _ = self.store.apply_all(vec![(index, Vec::new())]);
    }

    fn snapshot(&self) -> SnapshotWriter {
        let write = self.store.snapshot_writer();
        Box::new(move || Ok(write()))
    }

    fn size_hint(&self) -> Option<u64> {
        self.store.approximate_bytes()
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), BoxError> {
        Ok(self.store.restore(data)?)
    }
}

/// Proposes each transaction's actions as one Raft entry. Built before the
/// Raft member (the store needs it first); [`RaftProposer::connect`] hands it
/// the member once started.
pub struct RaftProposer {
    raft: OnceLock<RaftHandle<ApplyResult>>,
    /// How long a write waits for its entry to apply before it is told
    /// that it may still be made ([`ANSWER_WITHIN`]).
    answer_within: Duration,
}

/// How long a write waits for its entry to apply: a disk that hangs (a
/// frozen filesystem, a dead network volume) would otherwise hold its
/// client for ever, with no word of why. Far above any healthy write,
/// however loaded, or a leader change (etcd's request timeout is 5 s plus
/// two election timeouts).
pub const ANSWER_WITHIN: Duration = Duration::from_secs(20);

impl Default for RaftProposer {
    fn default() -> Self {
        RaftProposer {
            raft: OnceLock::new(),
            answer_within: ANSWER_WITHIN,
        }
    }
}

impl RaftProposer {
    /// A proposer with no Raft member yet: proposals fail until
    /// [`RaftProposer::connect`].
    pub fn new() -> Arc<Self> {
        Arc::new(RaftProposer::default())
    }

    /// As [`RaftProposer::new`], answering writes within `answer_within`.
    #[cfg(test)]
    fn answering_within(answer_within: Duration) -> Arc<Self> {
        Arc::new(RaftProposer {
            answer_within,
            ..RaftProposer::default()
        })
    }

    /// Sends proposals to `raft` from now on. Only the first call counts.
    pub fn connect(&self, raft: RaftHandle<ApplyResult>) {
        let _ = self.raft.set(raft);
    }
}

impl Proposer for RaftProposer {
    fn propose(&self, actions: Vec<StoreAction>) -> BoxFuture<'static, swarm_store::Result<u64>> {
        let Some(raft) = self.raft.get().cloned() else {
            return futures::future::ready(Err(Error::ProposalFailed("raft has not started".into()))).boxed();
        };
        // Removals only: taken while the disk is short of room for writes,
        // so that an operator can make room (as etcd takes deletes under
        // its NOSPACE alarm).
        let frees = actions
            .iter()
            .all(|action| action.kind == i32::from(swarm_proto::v1::store_action::Kind::Remove));
        let data = StoreActions { actions }.encode_to_vec();
        let within = self.answer_within;
        async move {
            let proposed = async {
                if frees {
                    raft.propose_freeing(data).await
                } else {
                    raft.propose(data).await
                }
            };
            let Ok(proposed) = tokio::time::timeout(within, proposed).await else {
                return Err(Error::TimedOut(format!(
                    "the write had no answer within {}s (the Raft log's disk is slow or hangs: see the manager's \
                     log); it may still be made",
                    within.as_secs_f64()
                )));
            };
            match proposed {
                Ok((index, applied)) => applied.map(|()| index),
                Err(err @ swarm_raft::Error::UnknownOutcome { .. }) => Err(Error::OutcomeUnknown(err.to_string())),
                Err(err @ swarm_raft::Error::TooLarge { .. }) => Err(Error::Invalid(format!("transaction: {err}"))),
                Err(err @ swarm_raft::Error::NoSpace { .. }) => Err(Error::ResourceExhausted(err.to_string())),
                Err(err) => Err(Error::ProposalFailed(err.to_string())),
            }
        }
        .boxed()
    }
}

#[cfg(test)]
#[path = "raft_store_test.rs"]
mod tests;
