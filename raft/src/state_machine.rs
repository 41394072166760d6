//! The seam between consensus and what it replicates.

/// An error a state machine gives back: the Raft node stops on it, since a
/// replica that cannot apply or restore the log can no longer follow it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serializes a state captured by [`StateMachine::snapshot`], off the
/// Ready loop.
///
/// # Errors
///
/// Whatever keeps the machine from writing its state out; the member logs
/// it and tries again at the next snapshot point.
pub type SnapshotWriter = Box<dyn FnOnce() -> Result<Vec<u8>, BoxError> + Send>;

/// What the Raft node applies committed entries to, in log order, on every
/// member. `swarmd` puts the store behind it; the tests use
/// [`crate::testing::LogMachine`].
///
/// All three methods run on the Ready loop, which waits for them: they must
/// be quick, or heartbeats wait too.
pub trait StateMachine: Send + 'static {
    /// What applying one entry tells the member that proposed it (for the
    /// store: whether the transaction's changes applied).
    type Output: Send + 'static;

    /// Applies the entry committed at `index`. Called once per entry that a
    /// proposal carried, in increasing `index` order (the gaps are entries
    /// of Raft's own: leader no-ops and membership changes).
    fn apply(&mut self, index: u64, data: &[u8]) -> Self::Output;

    /// Applies a run of consecutive committed entries, `(index, data)` in
    /// order, and returns one output per entry, in the same order. The
    /// default applies them one by one; a machine that applies many entries
    /// at once for less than one at a time (the store builds one new state
    /// for a whole run) overrides it. The loop hands it every run of
    /// proposals one `Ready` commits.
    fn apply_run(&mut self, entries: &[(u64, &[u8])]) -> Vec<Self::Output> {
        entries.iter().map(|&(index, data)| self.apply(index, data)).collect()
    }

    /// Passes over the entry at `index`, one of Raft's own (a new leader's
    /// empty entry, a membership change) that holds nothing for the
    /// machine: one that tells an index (the store's, after which a watch
    /// resumes) then names the log's own. The default does nothing.
    fn skip(&mut self, index: u64) {
        let _ = index;
    }

    /// Captures the whole state as of the last applied entry, and returns
    /// what writes it out. The capture runs on the Ready loop and must be
    /// cheap (the store clones the root of its persistent maps); the writer
    /// runs on a blocking thread while the loop goes on.
    fn snapshot(&self) -> SnapshotWriter;

    /// What a snapshot would weigh now, about, if the machine knows it
    /// cheaply (it is asked every 100 ms): the room a member keeps on its
    /// disk for its next snapshot is reckoned from it, else from the last
    /// snapshot and every entry applied since (removals included, so an
    /// upper bound that only a snapshot brings down).
    fn size_hint(&self) -> Option<u64> {
        None
    }

    /// Replaces the whole state by a snapshot's (taken by `snapshot` on this
    /// or another member).
    ///
    /// # Errors
    ///
    /// Bytes that do not decode; the state must then be left as it was.
    fn restore(&mut self, data: &[u8]) -> Result<(), BoxError>;
}
