//! Proposals appended to the log and waiting for their entry to apply.
//!
//! A proposal is known by the index and term raft-rs gave its entry. When
//! the entry at that index applies, the term tells whether it is ours: the
//! same term means this very entry committed; another term means a new
//! leader replaced it, and ours can never commit.

use std::collections::BTreeMap;

use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// Who waits for an entry, and what they wait to hear.
pub(crate) enum Waiter<O> {
    /// A proposal of the state machine: its index and what applying said.
    Proposal(oneshot::Sender<Result<(u64, O)>>),
    /// A membership change: its index.
    ConfChange(oneshot::Sender<Result<u64>>),
}

impl<O> Waiter<O> {
    pub(crate) fn fail(self, error: Error) {
        // A caller that stopped waiting is no one to tell.
        match self {
            Waiter::Proposal(reply) => drop(reply.send(Err(error))),
            Waiter::ConfChange(reply) => drop(reply.send(Err(error))),
        }
    }
}

struct Entry<O> {
    term: u64,
    waiter: Waiter<O>,
}

/// The waiting proposals of one member, by index.
pub(crate) struct Pending<O> {
    by_index: BTreeMap<u64, Entry<O>>,
}

impl<O> Pending<O> {
    pub(crate) fn new() -> Self {
        Pending {
            by_index: BTreeMap::new(),
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_index.len()
    }

    /// Registers `waiter` for the entry just appended at `index` in `term`.
    pub(crate) fn insert(&mut self, index: u64, term: u64, waiter: Waiter<O>) {
        if let Some(replaced) = self.by_index.insert(index, Entry { term, waiter }) {
            // Our own earlier entry at this index was truncated here while
            // we followed someone else; other members may still hold it,
            // and one of them may yet lead and commit it.
            replaced.waiter.fail(Error::UnknownOutcome {
                index: Some(index),
                reason: "replaced in this member's log by a later entry".into(),
            });
        }
    }

    /// The entry at `index` of `term` was applied: returns its waiter if
    /// it is ours. Waiters of earlier indexes left over (entries we never
    /// saw apply, such as those a snapshot covered) and a waiter whose entry
    /// was replaced are told theirs did not commit as proposed.
    pub(crate) fn take_applied(&mut self, index: u64, term: u64) -> Option<Waiter<O>> {
        self.pass_over(index.saturating_sub(1));
        let entry = self.by_index.remove(&index)?;
        if entry.term == term {
            return Some(entry.waiter);
        }
        entry.waiter.fail(Error::Dropped {
            reason: "a new leader replaced the entry",
        });
        None
    }

    /// Tells the waiters of the entries up to `index`, which this member
    /// will never apply one by one (a snapshot covered them, or the log
    /// applied past them), that their outcome is unknown: the entry at
    /// such an index may be theirs or another leader's. Later waiters stay.
    pub(crate) fn pass_over(&mut self, index: u64) {
        let later = match index.checked_add(1) {
            Some(next) => self.by_index.split_off(&next),
            None => BTreeMap::new(),
        };
        for (skipped_index, entry) in std::mem::replace(&mut self.by_index, later) {
            entry.waiter.fail(Error::UnknownOutcome {
                index: Some(skipped_index),
                reason: "the log moved past the entry without applying it here".into(),
            });
        }
    }

    /// Tells every waiter its outcome is unknown (leadership lost, stop).
    pub(crate) fn fail_all(&mut self, reason: impl Into<std::borrow::Cow<'static, str>>) {
        let reason = reason.into();
        for (index, entry) in std::mem::take(&mut self.by_index) {
            entry.waiter.fail(Error::UnknownOutcome {
                index: Some(index),
                reason: reason.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposal() -> (Waiter<()>, oneshot::Receiver<Result<(u64, ())>>) {
        let (sender, receiver) = oneshot::channel();
        (Waiter::Proposal(sender), receiver)
    }

    #[test]
    fn the_same_term_at_the_index_is_our_entry() {
        let mut pending = Pending::new();
        let (waiter, _receiver) = proposal();
        pending.insert(7, 2, waiter);
        assert!(pending.take_applied(7, 2).is_some());
        assert_eq!(pending.len(), 0);
    }

    #[test]
    fn another_term_at_the_index_means_dropped() {
        let mut pending = Pending::new();
        let (waiter, mut receiver) = proposal();
        pending.insert(7, 2, waiter);
        assert!(pending.take_applied(7, 3).is_none());
        assert!(matches!(receiver.try_recv(), Ok(Err(Error::Dropped { .. }))));
    }

    #[test]
    fn a_waiter_whose_entry_this_log_replaced_learns_its_outcome_is_unknown() {
        // Other members may hold the entry this one truncated.
        let mut pending = Pending::new();
        let (first, mut first_receiver) = proposal();
        let (second, _second_receiver) = proposal();
        pending.insert(7, 2, first);
        pending.insert(7, 4, second);
        assert!(matches!(
            first_receiver.try_recv(),
            Ok(Err(Error::UnknownOutcome { index: Some(7), .. }))
        ));
        assert!(pending.take_applied(7, 4).is_some());
    }

    #[test]
    fn waiters_passed_over_learn_their_outcome_is_unknown() {
        let mut pending = Pending::new();
        let (skipped, mut skipped_receiver) = proposal();
        let (later, _later_receiver) = proposal();
        pending.insert(5, 2, skipped);
        pending.insert(9, 2, later);
        assert!(pending.take_applied(8, 2).is_none());
        assert!(matches!(
            skipped_receiver.try_recv(),
            Ok(Err(Error::UnknownOutcome { index: Some(5), .. }))
        ));
        assert_eq!(pending.len(), 1);
    }

    #[test]
    fn a_snapshot_passes_over_the_waiters_it_covers_and_no_later_one() {
        let mut pending = Pending::new();
        let (covered, mut covered_receiver) = proposal();
        let (next, mut next_receiver) = proposal();
        pending.insert(5, 2, covered);
        pending.insert(6, 2, next);
        pending.pass_over(5);
        assert!(matches!(
            covered_receiver.try_recv(),
            Ok(Err(Error::UnknownOutcome { index: Some(5), .. }))
        ));
        // The entry after the snapshot may still be ours and apply.
        assert!(next_receiver.try_recv().is_err(), "the waiter at 6 was answered");
        assert!(pending.take_applied(6, 2).is_some());
    }

    #[test]
    fn fail_all_says_unknown_outcome() {
        let mut pending = Pending::new();
        let (waiter, mut receiver) = proposal();
        pending.insert(3, 1, waiter);
        pending.fail_all("leadership lost");
        assert!(matches!(
            receiver.try_recv(),
            Ok(Err(Error::UnknownOutcome { index: Some(3), .. }))
        ));
    }
}
