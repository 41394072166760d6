//! The one error type of the store.

use crate::Kind;

/// Why a store operation failed. Every variant names what it is about, so
/// that a message reaching an operator says which object and why.
///
/// A failed transaction leaves no trace: nothing of it is applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No object of this kind has this id.
    #[error("{kind} {id} not found")]
    NotFound {
        /// Kind of the object looked for.
        kind: Kind,
        /// The id looked for.
        id: String,
    },

    /// An object of this kind already has this id.
    #[error("{kind} {id} already exists")]
    AlreadyExists {
        /// Kind of the object.
        kind: Kind,
        /// The id already taken.
        id: String,
    },

    /// Another object of this kind already has this name (names are unique
    /// per kind, compared case-insensitively).
    #[error("{kind} name {name:?} is already in use{}", spelled_otherwise(.name, .holder))]
    NameConflict {
        /// Kind of the object.
        kind: Kind,
        /// The name as the rejected object spelled it.
        name: String,
        /// The name as the object that holds it spells it.
        holder: String,
    },

    /// The object changed since the version the writer read.
    #[error(
        "{kind} {} was changed: the write was made on version {given}, the store has version {current}",
        named(.name, .id)
    )]
    VersionConflict {
        /// Kind of the object.
        kind: Kind,
        /// The object's id.
        id: String,
        /// Its name, empty if it has none: what the operator knows it by.
        name: String,
        /// The version the writer read.
        given: u64,
        /// The version stored now.
        current: u64,
    },

    /// The request itself is malformed: an empty id, a selector the kind has
    /// no index for, a corrupt snapshot.
    #[error("invalid: {0}")]
    Invalid(String),

    /// The proposer could not commit the transaction (for example this
    /// manager is not the Raft leader). Nothing was applied, nor will be.
    #[error("proposal failed: {0}")]
    ProposalFailed(String),

    /// The proposer refused the transaction for want of a resource (room on
    /// disk for the log); nothing was applied. It may succeed once there is.
    #[error("{0}")]
    ResourceExhausted(String),

    /// The proposer lost track of the transaction after sending it (for
    /// example leadership moved while it waited): it may still commit. A
    /// caller reads before retrying anything not idempotent.
    #[error("{0}")]
    OutcomeUnknown(String),

    /// The proposer had no answer for the transaction within its bound (a
    /// disk that hangs): it may still commit, as for
    /// [`Error::OutcomeUnknown`].
    #[error("{0}")]
    TimedOut(String),

    /// A watcher asked to resume after an index whose later changes the
    /// store no longer keeps. Its owner reads the state again and watches
    /// from there (`view_and_watch`).
    #[error(
        "the changes after index {after} are no longer kept (the oldest index a watch can resume after is \
         {oldest}): read the state again and watch from now"
    )]
    NoLongerKept {
        /// The index the watcher asked to resume after.
        after: u64,
        /// The lowest index a watcher may resume after now.
        oldest: u64,
    },

    /// A watcher left more unread than its buffer holds, or, resumed, was
    /// still replaying commits the store has let go of since: it was cut
    /// off. Its owner resumes after the last commit it read, if the store
    /// keeps changes for that, or starts again.
    #[error("the watcher fell behind and was cut off")]
    FellBehind,

    /// A watcher was closed: the store was replaced by a snapshot (a
    /// member that fell far behind its leader installs one), and no stream
    /// of changes leads from the watcher's view to the new state. Its owner
    /// starts again from `view_and_watch`; resuming cannot work.
    #[error("the store was replaced by a snapshot: read the state again and watch from now")]
    Restored,

    /// A watcher was closed: the store was dropped.
    #[error("watch closed: {0}")]
    Closed(String),
}

/// Shorthand for results of the store.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An object as the operator knows it: `"web" (ID)`, or its ID alone
/// when it has no `name`.
pub fn named(name: &str, id: &str) -> String {
    if name.is_empty() {
        id.to_string()
    } else {
        format!("{name:?} ({id})")
    }
}

/// `, as "Web"` when the object holding a name spells it otherwise than
/// the one refused: told which name to look for.
fn spelled_otherwise(name: &str, holder: &str) -> String {
    if name == holder {
        String::new()
    } else {
        format!(" (as {holder:?})")
    }
}
