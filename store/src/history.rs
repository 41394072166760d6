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

use std::cell::OnceCell;
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

/// Why a watcher cannot resume after an index: the commits after it that
/// changed something are no longer all kept.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct NoLongerKept {
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

    /// Notes the commit at `index` (later than every one before) and keeps
    /// its changes, `sizes` measuring each one's bytes on demand, then lets
    /// go of the oldest commits until the bounds hold again.
    pub(crate) fn record(&mut self, index: u64, changes: &[Arc<Change>], sizes: &[OnceCell<usize>]) {
        if changes.is_empty() {
            return;
        }
        if !self.keeps_any() {
            // Keeps nothing: only where a resume may start.
            self.floor = index;
            return;
        }
        let bytes = changes
            .iter()
            .zip(sizes)
            .map(|(change, size)| *size.get_or_init(|| crate::watch::change_bytes(change)))
            .sum();
        self.changes += changes.len();
        self.bytes += bytes;
        self.commits.push_back(Commit {
            index,
            changes: changes.to_vec(),
            bytes,
        });
        while self.changes > self.max_changes || self.bytes > self.max_bytes {
            let Some(oldest) = self.commits.pop_front() else { break };
            self.floor = oldest.index;
            self.changes -= oldest.changes.len();
            self.bytes -= oldest.bytes;
        }
    }

    /// Whether it keeps any change at all.
    pub(crate) fn keeps_any(&self) -> bool {
        self.max_changes > 0 && self.max_bytes > 0
    }

    /// Forgets every commit: the state was replaced by a snapshot at
    /// `index`, and nothing before it can be told as changes.
    pub(crate) fn reset(&mut self, index: u64) {
        self.commits.clear();
        self.floor = index;
        self.changes = 0;
        self.bytes = 0;
    }

    /// Whether a watcher may resume after `after`.
    pub(crate) fn check(&self, after: u64) -> Result<(), NoLongerKept> {
        if after < self.floor {
            return Err(NoLongerKept { oldest: self.floor });
        }
        Ok(())
    }

    /// The first kept commit after `after`: its index and the events of it
    /// that `filter` wants (its changes, then its marker if the filter asks
    /// for markers and wants any change; none if it wants no change), as a
    /// live watcher got them. `None` when no commit after `after` is kept:
    /// the watcher has caught up.
    pub(crate) fn next_after(&self, after: u64, filter: &Filter) -> Result<Option<(u64, Vec<Event>)>, NoLongerKept> {
        self.check(after)?;
        let first = self.commits.partition_point(|commit| commit.index <= after);
        let Some(commit) = self.commits.get(first) else {
            return Ok(None);
        };
        let mut events: Vec<Event> = commit
            .changes
            .iter()
            .filter(|change| filter.matches(change))
            .map(|change| Event::Change(change.clone()))
            .collect();
        if !events.is_empty() && filter.wants_commits() {
            events.push(Event::Commit { index: commit.index });
        }
        Ok(Some((commit.index, events)))
    }
}

#[cfg(test)]
mod tests {
    use std::cell::OnceCell;
    use std::sync::Arc;

    use swarm_proto::v1::Secret;

    use super::{History, NoLongerKept};
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

    /// Records commits of the given changes, each counted as `bytes`.
    fn record(history: &mut History, index: u64, ids: &[&str], bytes: usize) {
        let changes: Vec<_> = ids.iter().map(|id| created(id)).collect();
        let sizes: Vec<OnceCell<usize>> = changes.iter().map(|_| OnceCell::from(bytes)).collect();
        history.record(index, &changes, &sizes);
    }

    /// The indexes of the kept commits after `after`, following them one by
    /// one as a resumed watcher does.
    fn commits_after(history: &History, mut after: u64) -> Result<Vec<u64>, NoLongerKept> {
        let mut indexes = Vec::new();
        while let Some((index, _)) = history.next_after(after, &Filter::all())? {
            indexes.push(index);
            after = index;
        }
        Ok(indexes)
    }

    #[test]
    fn gives_the_commits_after_an_index_and_forgets_the_oldest_beyond_its_bounds() {
        let mut history = History::new(3, usize::MAX);
        for index in [2, 3, 5] {
            record(&mut history, index, &["x"], 10);
        }
        assert_eq!(commits_after(&history, 0), Ok(vec![2, 3, 5]));
        assert_eq!(commits_after(&history, 3), Ok(vec![5]));
        assert_eq!(commits_after(&history, 4), Ok(vec![5]));
        assert_eq!(commits_after(&history, 5), Ok(vec![]));

        // A fourth change goes over the bound: the commit at 2 goes.
        record(&mut history, 7, &["x"], 10);
        assert_eq!(commits_after(&history, 1), Err(NoLongerKept { oldest: 2 }));
        assert_eq!(commits_after(&history, 2), Ok(vec![3, 5, 7]));
    }

    #[test]
    fn is_bounded_in_bytes_too_and_a_commit_over_the_bound_is_not_kept() {
        let mut history = History::new(usize::MAX, 100);
        record(&mut history, 1, &["a"], 60);
        record(&mut history, 2, &["b"], 60);
        assert_eq!(commits_after(&history, 0), Err(NoLongerKept { oldest: 1 }));
        record(&mut history, 3, &["c"], 500);
        assert_eq!(commits_after(&history, 2), Err(NoLongerKept { oldest: 3 }));
        assert_eq!(commits_after(&history, 3), Ok(vec![]));
    }

    #[test]
    fn keeping_nothing_it_still_knows_from_where_a_watch_may_resume() {
        let mut history = History::new(0, 0);
        record(&mut history, 4, &["a"], 1);
        // A commit that changed nothing (an entry refused at apply, a
        // membership change) moves nothing.
        history.record(5, &[], &[]);
        assert_eq!(commits_after(&history, 3), Err(NoLongerKept { oldest: 4 }));
        assert_eq!(commits_after(&history, 4), Ok(vec![]));
        assert_eq!(commits_after(&history, 5), Ok(vec![]));
    }

    #[test]
    fn filters_as_a_live_watcher_and_marks_only_commits_it_got_changes_of() {
        let mut history = History::new(100, usize::MAX);
        record(&mut history, 1, &["a", "b"], 1);
        record(&mut history, 2, &["c"], 1);
        let only_b = Filter::all()
            .kind(Kind::Secret)
            .matching(|change| change.object().id() == "b")
            .with_commits();
        let (index, events) = history.next_after(0, &only_b).unwrap().unwrap();
        assert_eq!(index, 1);
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(matches!(&events[0], Event::Change(change) if change.object().id() == "b"));
        assert_eq!(events[1], Event::Commit { index: 1 });
        // The next commit is followed, but gives nothing to this filter.
        assert_eq!(history.next_after(1, &only_b).unwrap(), Some((2, vec![])));
    }

    #[test]
    fn after_a_reset_resumes_only_from_the_snapshot_on() {
        let mut history = History::new(100, usize::MAX);
        record(&mut history, 1, &["a"], 1);
        history.reset(40);
        assert_eq!(commits_after(&history, 39), Err(NoLongerKept { oldest: 40 }));
        assert_eq!(commits_after(&history, 40), Ok(vec![]));
    }
}
