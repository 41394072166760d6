//! The recent commits, kept after they were published so that a watcher
//! that lost its stream (cut off for falling behind, a dropped connection,
//! a manager restart) can resume after the last index it saw instead of
//! reading the whole store again.
//!
//! SwarmKit resumes from the Raft log; the log holds the actions as
//! proposed, which may have been refused at apply, and neither versions nor
//! the objects they replaced. The history holds the changes exactly as
//! watchers got them. After a restart it holds what was replayed from the
//! log since the last snapshot, so a resume across a restart works as far
//! back as that.
//!
//! Off unless the store is built with
//! [`Builder::watch_history`](crate::Builder::watch_history): keeping the
//! replaced versions of objects alive, and dropping them later when they are
//! no longer in the cache, costs a commit of a large object a few
//! microseconds (BENCHMARKS.md).

use std::collections::VecDeque;
use std::sync::Arc;

use crate::watch::{Change, Event, Filter};

/// One transaction's changes.
struct Commit {
    index: u64,
    changes: Vec<Arc<Change>>,
    bytes: usize,
}

/// The last commits, bounded in changes and bytes.
pub(crate) struct History {
    commits: VecDeque<Commit>,
    /// Every commit after this index that changed something is held.
    floor: u64,
    changes: usize,
    bytes: usize,
    max_changes: usize,
    max_bytes: usize,
}

/// Why a watcher cannot resume after an index.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct NoLongerHeld {
    /// The lowest index a watcher may resume after.
    pub(crate) oldest: u64,
}

impl History {
    pub(crate) fn new(max_changes: usize, max_bytes: usize) -> History {
        History {
            commits: VecDeque::new(),
            floor: 0,
            changes: 0,
            bytes: 0,
            max_changes,
            max_bytes,
        }
    }

    /// Whether it keeps anything at all.
    pub(crate) fn keeps_any(&self) -> bool {
        self.max_changes > 0 && self.max_bytes > 0
    }

    /// Notes a commit with changes at `index` that it does not keep.
    pub(crate) fn skip(&mut self, index: u64) {
        self.reset(index);
    }

    /// Keeps the changes of the commit at `index` (later than every kept
    /// one), `sizes` holding each one's bytes, then lets go of the oldest
    /// commits until the bounds hold again.
    pub(crate) fn record(&mut self, index: u64, changes: Vec<Arc<Change>>, sizes: &[usize]) {
        if changes.is_empty() {
            return;
        }
        let bytes = sizes.iter().sum();
        self.changes += changes.len();
        self.bytes += bytes;
        self.commits.push_back(Commit { index, changes, bytes });
        while self.changes > self.max_changes || self.bytes > self.max_bytes {
            let Some(oldest) = self.commits.pop_front() else { break };
            self.floor = oldest.index;
            self.changes -= oldest.changes.len();
            self.bytes -= oldest.bytes;
        }
    }

    /// Forgets every commit: the state was replaced by a snapshot at
    /// `index`, and nothing before it can be told as changes.
    pub(crate) fn reset(&mut self, index: u64) {
        self.commits.clear();
        self.floor = index;
        self.changes = 0;
        self.bytes = 0;
    }

    /// The events of the commits after `after` that `filter` wants, in
    /// order, each commit's marker after its changes if the filter asks
    /// for markers: what a watcher subscribed at `after` would have got.
    pub(crate) fn events_after(&self, after: u64, filter: &Filter) -> Result<Vec<Event>, NoLongerHeld> {
        if after < self.floor {
            return Err(NoLongerHeld { oldest: self.floor });
        }
        let first = self.commits.partition_point(|commit| commit.index <= after);
        let mut events = Vec::new();
        for commit in self.commits.range(first..) {
            let before = events.len();
            events.extend(
                commit
                    .changes
                    .iter()
                    .filter(|change| filter.matches(change))
                    .map(|change| Event::Change(change.clone())),
            );
            if events.len() > before && filter.wants_commits() {
                events.push(Event::Commit { index: commit.index });
            }
        }
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use swarm_proto::v1::Secret;

    use super::{History, NoLongerHeld};
    use crate::watch::{Action, Change, Event, Filter};
    use crate::{Kind, Object};

    fn created(id: &str) -> Arc<Change> {
        Arc::new(Change {
            action: Action::Create,
            old: None,
            new: Some(Object::Secret(Arc::new(Secret {
                id: id.into(),
                ..Default::default()
            }))),
        })
    }

    fn indexes(events: &[Event]) -> Vec<u64> {
        events
            .iter()
            .filter_map(|event| match event {
                Event::Commit { index } => Some(*index),
                Event::Change(_) => None,
            })
            .collect()
    }

    #[test]
    fn gives_the_commits_after_an_index_and_forgets_the_oldest_beyond_its_bounds() {
        let mut history = History::new(3, usize::MAX);
        for index in [2, 3, 5] {
            history.record(index, vec![created(&index.to_string())], &[10]);
        }
        let all = Filter::all().with_commits();
        assert_eq!(indexes(&history.events_after(0, &all).unwrap()), [2, 3, 5]);
        assert_eq!(indexes(&history.events_after(3, &all).unwrap()), [5]);
        assert_eq!(indexes(&history.events_after(4, &all).unwrap()), [5]);
        assert!(history.events_after(5, &all).unwrap().is_empty());

        // A fourth change goes over the bound: the commit at 2 goes.
        history.record(7, vec![created("7")], &[10]);
        assert_eq!(history.events_after(1, &all), Err(NoLongerHeld { oldest: 2 }));
        assert_eq!(indexes(&history.events_after(2, &all).unwrap()), [3, 5, 7]);
    }

    #[test]
    fn is_bounded_in_bytes_too_and_a_commit_over_the_bound_is_not_kept() {
        let mut history = History::new(usize::MAX, 100);
        history.record(1, vec![created("1")], &[60]);
        history.record(2, vec![created("2")], &[60]);
        assert_eq!(history.events_after(0, &Filter::all()), Err(NoLongerHeld { oldest: 1 }));
        history.record(3, vec![created("3")], &[500]);
        assert_eq!(history.events_after(2, &Filter::all()), Err(NoLongerHeld { oldest: 3 }));
        assert!(history.events_after(3, &Filter::all()).unwrap().is_empty());
    }

    #[test]
    fn filters_as_a_live_watcher_and_marks_only_commits_it_got_changes_of() {
        let mut history = History::new(100, usize::MAX);
        history.record(1, vec![created("a"), created("b")], &[1, 1]);
        history.record(2, vec![created("c")], &[1]);
        let only_b = Filter::all()
            .kind(Kind::Secret)
            .matching(|change| change.object().id() == "b")
            .with_commits();
        let events = history.events_after(0, &only_b).unwrap();
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(matches!(&events[0], Event::Change(change) if change.object().id() == "b"));
        assert_eq!(events[1], Event::Commit { index: 1 });
    }

    #[test]
    fn after_a_reset_resumes_only_from_the_snapshot_on() {
        let mut history = History::new(100, usize::MAX);
        history.record(1, vec![created("a")], &[1]);
        history.reset(40);
        assert_eq!(
            history.events_after(39, &Filter::all()),
            Err(NoLongerHeld { oldest: 40 })
        );
        assert!(history.events_after(40, &Filter::all()).unwrap().is_empty());
    }
}
