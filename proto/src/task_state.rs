//! What the numeric task states mean beyond their names.

use crate::v1::TaskState;

impl TaskState {
    /// True once a task has stopped for good: it will never run again.
    pub fn is_terminal(self) -> bool {
        self >= TaskState::Complete
    }

    /// True if moving from `self` to `next` goes forward in the life cycle.
    /// A task never moves backwards.
    pub fn can_move_to(self, next: TaskState) -> bool {
        next >= self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_increase_along_the_life_cycle() {
        let order = [
            TaskState::New,
            TaskState::Pending,
            TaskState::Assigned,
            TaskState::Accepted,
            TaskState::Preparing,
            TaskState::Ready,
            TaskState::Starting,
            TaskState::Running,
            TaskState::Complete,
            TaskState::Shutdown,
            TaskState::Failed,
            TaskState::Rejected,
            TaskState::Remove,
            TaskState::Orphaned,
        ];
        for pair in order.windows(2) {
            assert!(pair[0] < pair[1], "{:?} should come before {:?}", pair[0], pair[1]);
            assert!(pair[0].can_move_to(pair[1]));
            assert!(!pair[1].can_move_to(pair[0]));
        }
        assert!(!TaskState::Running.is_terminal());
        assert!(TaskState::Complete.is_terminal());
        assert!(TaskState::Failed.is_terminal());
        // SwarmKit's wire values, so tools that know them read ours alike.
        assert_eq!(TaskState::Running as i32, 512);
        assert_eq!(TaskState::Orphaned as i32, 832);
    }
}
