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

use crate::watch::{Change, Event, Filter, PROGRESS_EVERY};

/// One transaction's changes.
struct Commit {
    index: u64,
    changes: Vec<Arc<Change>>,
    bytes: usize,
    /// Where the history was once it recorded this commit.
    at: Position,
}

/// A point in all the history ever recorded: the changes and bytes so far.
/// Between two points lies what it recorded meanwhile, which tells whether
/// it may have let go of the commits after the first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) changes: u64,
    pub(crate) bytes: u64,
}

/// Where a watcher with markers was last told how far the store had come:
/// the index of its last marker, and the history's position then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mark {
    pub(crate) index: u64,
    pub(crate) at: Position,
}

impl Mark {
    /// Whether a watcher at this mark gets the marker of the commit at
    /// `index`, after which the history is `at`: after a change of it the
    /// watcher wanted; wanting none, every [`PROGRESS_EVERY`] commits, and
    /// before the history could let go of the commits after this mark (a
    /// quarter of what it keeps recorded since): the index a watcher
    /// resumes after must be one the history still holds, and it keeps the
    /// last changes, not the last this watcher wanted. If so, the mark
    /// moves there.
    pub(crate) fn advance(&mut self, matched: bool, index: u64, at: Position, history: &History) -> bool {
        let due = matched || index >= self.index.saturating_add(PROGRESS_EVERY) || history.spans(self.at, at, 4);
        if due {
            *self = Mark { index, at };
        }
        due
    }
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
    /// All it recorded so far.
    recorded: Position,
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
            recorded: Position::default(),
        }
    }

    /// Where it is now.
    pub(crate) fn position(&self) -> Position {
        self.recorded
    }

    /// The mark of a watcher told it had every change through `index` (at
    /// most the last recorded): the position after the last commit kept up
    /// to it.
    pub(crate) fn mark_at(&self, index: u64) -> Mark {
        let later = self.commits.partition_point(|commit| commit.index <= index);
        let at = match later.checked_sub(1).and_then(|last| self.commits.get(last)) {
            Some(commit) => commit.at,
            None => match self.commits.front() {
                // Before the first kept commit: where it was before it.
                Some(first) => Position {
                    changes: first.at.changes - first.changes.len() as u64,
                    bytes: first.at.bytes - first.bytes as u64,
                },
                None => self.recorded,
            },
        };
        Mark { index, at }
    }

    /// Whether what it recorded between `from` and `to` is a `1/share` part
    /// of what it keeps (of its changes or of its bytes) or more; never
    /// when it keeps nothing.
    pub(crate) fn spans(&self, from: Position, to: Position, share: u64) -> bool {
        let part = |recorded: u64, kept: usize| recorded.saturating_mul(share) >= kept as u64;
        self.keeps_any()
            && (part(to.changes.saturating_sub(from.changes), self.max_changes)
                || part(to.bytes.saturating_sub(from.bytes), self.max_bytes))
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
        self.recorded.changes += changes.len() as u64;
        self.recorded.bytes += bytes as u64;
        self.commits.push_back(Commit {
            index,
            changes: changes.to_vec(),
            bytes,
            at: self.recorded,
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
    /// for markers and the watcher at `mark` is due one), as a live watcher
    /// got them. `None` when no commit after `after` is kept: the watcher
    /// has caught up.
    pub(crate) fn next_after(
        &self,
        after: u64,
        filter: &Filter,
        mark: &mut Mark,
    ) -> Result<Option<(u64, Vec<Event>)>, NoLongerKept> {
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
        if filter.wants_commits() && mark.advance(!events.is_empty(), commit.index, commit.at, self) {
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

    use super::{History, NoLongerKept, Position};
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
        let mut mark = history.mark_at(after);
        while let Some((index, _)) = history.next_after(after, &Filter::all(), &mut mark)? {
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
        let mut mark = history.mark_at(0);
        let (index, events) = history.next_after(0, &only_b, &mut mark).unwrap().unwrap();
        assert_eq!(index, 1);
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(matches!(&events[0], Event::Change(change) if change.object().id() == "b"));
        assert_eq!(events[1], Event::Commit { index: 1 });
        // The next commit is followed, but gives nothing to this filter.
        assert_eq!(history.next_after(1, &only_b, &mut mark).unwrap(), Some((2, vec![])));
    }

    /// A replayed watcher that wants none of the kept commits is told how
    /// far it came each time a quarter of what the history keeps went by:
    /// were its stream to drop, it resumes from there, still kept.
    #[test]
    fn a_replay_that_wants_nothing_is_marked_every_quarter_of_the_history() {
        let mut history = History::new(8, usize::MAX);
        for index in 1..=8 {
            record(&mut history, index, &["x"], 1);
        }
        let nothing = Filter::all().matching(|_| false).with_commits();
        let (mut after, mut mark, mut markers) = (0, history.mark_at(0), Vec::new());
        while let Some((index, events)) = history.next_after(after, &nothing, &mut mark).unwrap() {
            markers.extend(events);
            after = index;
        }
        let marked = |indexes: &[u64]| indexes.iter().map(|&index| Event::Commit { index }).collect::<Vec<_>>();
        assert_eq!(markers, marked(&[2, 4, 6, 8]));
        assert_eq!(mark.index, 8);

        // From the middle: the position at the commit resumed after.
        let mut mark = history.mark_at(5);
        assert_eq!(mark.at, Position { changes: 5, bytes: 5 });
        assert_eq!(history.next_after(5, &nothing, &mut mark).unwrap(), Some((6, vec![])));
        assert_eq!(
            history.next_after(6, &nothing, &mut mark).unwrap(),
            Some((7, marked(&[7])))
        );
    }

    #[test]
    fn a_mark_before_every_kept_commit_is_where_the_history_was_before_the_first() {
        let mut history = History::new(2, usize::MAX);
        for index in [3, 5, 9] {
            record(&mut history, index, &["x"], 10);
        }
        // 3 was let go of; 5 and 9 are kept, 3 changes recorded in all.
        let at = |index| history.mark_at(index).at;
        assert_eq!(at(3), Position { changes: 1, bytes: 10 });
        assert_eq!(at(4), at(3));
        assert_eq!(at(5), Position { changes: 2, bytes: 20 });
        assert_eq!(at(9), history.position());
        assert_eq!(at(12), history.position());
        assert!(history.spans(at(3), at(9), 1), "two changes: all it keeps");
        assert!(!history.spans(at(5), at(9), 1));
        assert!(history.spans(at(5), at(9), 2));
        assert!(
            !History::new(0, 0).spans(at(3), at(9), 1),
            "keeping nothing, nothing spans"
        );

        // Bounded in bytes, the bytes count: 30 of the 40 kept.
        let mut history = History::new(usize::MAX, 40);
        for index in [3, 5, 9] {
            record(&mut history, index, &["x"], 10);
        }
        let (start, end) = (history.mark_at(0).at, history.position());
        assert_eq!(end, Position { changes: 3, bytes: 30 });
        assert!(history.spans(start, end, 2), "three quarters of the bytes");
        assert!(!history.spans(start, end, 1));
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
