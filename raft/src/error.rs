//! The one error type of this crate.

use std::path::PathBuf;

/// A member of the group as the errors name it: its Raft id and, where
/// known, the address of its transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The member's Raft id.
    pub id: u64,
    /// The address its transport listens on (`host:port`).
    pub addr: String,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at {}", self.id, self.addr)
    }
}

/// Why a request to the Raft node failed.
///
/// The proposal errors say what a caller may conclude: [`Error::NotLeader`],
/// [`Error::Dropped`] and [`Error::Stopped`] mean the proposal was never
/// committed; [`Error::UnknownOutcome`] means it may yet commit, and a caller
/// must find out by reading before it retries anything not idempotent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// This member does not lead; the proposal was not appended.
    #[error("not the leader{}", match .leader {
        Some(leader) => format!(" (the leader is {leader})"),
        None => " (no leader is known yet)".to_string(),
    })]
    NotLeader {
        /// The leader this member knows of, if any.
        leader: Option<Peer>,
    },

    /// The proposal was refused or overwritten before it committed: raft-rs
    /// dropped it (for example during a leadership transfer), or a new leader
    /// replaced the entry at its index. It will never commit.
    #[error("proposal dropped and not committed: {reason}")]
    Dropped {
        /// What dropped it.
        reason: &'static str,
    },

    /// The proposal was appended to the log at `index`, but this member lost
    /// leadership (or stopped) before it committed: it may still commit
    /// under the next leader, or not.
    #[error("unknown outcome for the proposal{}: {reason}; it may still commit", match .index {
        Some(index) => format!(" at index {index}"),
        None => String::new(),
    })]
    UnknownOutcome {
        /// Where the entry was appended, when the member got as far as
        /// telling (not when its loop died before answering).
        index: Option<u64>,
        /// What interrupted the wait.
        reason: std::borrow::Cow<'static, str>,
    },

    /// The proposal is larger than one entry may be
    /// ([`crate::MAX_ENTRY_BYTES`]); it was not appended.
    #[error("a proposal of {bytes} bytes is larger than the {max} bytes an entry may hold")]
    TooLarge {
        /// Its size.
        bytes: usize,
        /// The most an entry may hold.
        max: usize,
    },

    /// The data dir's filesystem has less room than the member keeps free
    /// (to reopen its log and take its next snapshot; only to reopen its
    /// log for an entry that only removes), this member's or, on a leader,
    /// another's (`member`: every member stores every entry); the proposal
    /// was not appended. Writes go on once there is room.
    #[error(
        "{}",
        crate::disk_space::describe_no_space(*.available, *.needed, *.removal, .member.as_deref(), *.entry)
    )]
    NoSpace {
        /// Free bytes at the last reading.
        available: u64,
        /// Free bytes under which such proposals are refused (with writes
        /// refused already, what brings them back).
        needed: u64,
        /// Whether the proposal only removed.
        removal: bool,
        /// The member short of room, "member ID at ADDR", when not this
        /// one.
        member: Option<String>,
        /// The bytes of this proposal, when the reserve had room for
        /// smaller ones (0 otherwise).
        entry: u64,
    },

    /// The node has stopped (or was removed from the group); nothing sent
    /// now reaches the log.
    #[error("the raft node has stopped")]
    Stopped,

    /// The member's Ready loop panicked (a bug, or raft-rs refusing a
    /// storage error); the message is the panic's.
    #[error("the raft member's loop panicked: {0}")]
    Panicked(String),

    /// A membership change was refused.
    #[error("membership change refused: {0}")]
    Membership(String),

    /// A leadership transfer did not complete.
    #[error("leadership transfer failed: {0}")]
    Transfer(String),

    /// The data directory belongs to another cluster or another member, is
    /// not a Raft data directory, or holds something this code cannot read.
    /// It is left exactly as it was found.
    #[error("data directory {}: {reason}", .dir.display())]
    DataDir {
        /// The directory.
        dir: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The stored log or state cannot be decoded.
    #[error("corrupt raft storage: {0}")]
    Corrupt(String),

    /// RocksDB refused a read or a write.
    // The message includes the cause, which is therefore not also given as
    // `source()`: a printed chain would say it twice.
    #[error("rocksdb: {0}")]
    Storage(rocksdb::Error),

    /// raft-rs refused an operation.
    #[error("raft: {0}")]
    Raft(raft::Error),

    /// The configuration is not usable.
    #[error("invalid raft configuration: {0}")]
    Config(String),

    /// The state machine broke the contract of [`crate::StateMachine`]
    /// (for example returned fewer outputs than it was given entries). The
    /// node stops rather than leave proposers waiting for answers that will
    /// never come.
    #[error("the state machine broke its contract: {0}")]
    Machine(String),
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<rocksdb::Error> for Error {
    fn from(err: rocksdb::Error) -> Self {
        Error::Storage(err)
    }
}

impl From<raft::Error> for Error {
    fn from(err: raft::Error) -> Self {
        Error::Raft(err)
    }
}

impl From<protobuf::ProtobufError> for Error {
    fn from(err: protobuf::ProtobufError) -> Self {
        Error::Corrupt(err.to_string())
    }
}

impl From<prost::DecodeError> for Error {
    fn from(err: prost::DecodeError) -> Self {
        Error::Corrupt(err.to_string())
    }
}
