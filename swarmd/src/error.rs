//! The one error type of the daemon, and its one mapping to gRPC statuses.

use std::path::PathBuf;

/// Why the daemon, or one request to it, failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The state dir cannot be used: unreadable, of another format, or its
    /// identity file is damaged. It is left as it was found.
    #[error("state dir {}: {reason}", .dir.display())]
    StateDir {
        /// The directory.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// The Control API socket cannot be served.
    #[error("control socket {}: {reason}", .path.display())]
    Socket {
        /// The socket's path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A request named something that does not exist.
    #[error("{0}")]
    NotFound(String),

    /// A request is malformed; the message names the field.
    #[error("{0}")]
    InvalidArgument(String),

    /// A request is well formed but the state forbids it now (a secret in
    /// use, a manager to remove, nothing to roll back to).
    #[error("{0}")]
    FailedPrecondition(String),

    /// The store refused or failed an operation.
    #[error(transparent)]
    Store(#[from] swarm_store::Error),

    /// Consensus failed (start, storage, a proposal).
    #[error(transparent)]
    Raft(#[from] swarm_raft::Error),

    /// Serving gRPC failed: the transport's error and its causes, in one
    /// message.
    #[error("grpc transport: {0}")]
    Transport(String),

    /// An I/O error, with what was being done.
    // As every variant here, the message includes its cause, which is not
    // also given as `source()` (a printed chain would say it twice).
    #[error("{what}: {error}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        error: std::io::Error,
    },
}

impl From<tonic::transport::Error> for Error {
    fn from(err: tonic::transport::Error) -> Self {
        // Its own message is only "transport error": the cause is below.
        let mut message = err.to_string();
        let mut cause = std::error::Error::source(&err);
        while let Some(err) = cause {
            message.push_str(&format!(": {err}"));
            cause = err.source();
        }
        Error::Transport(message)
    }
}

/// The result type of the daemon.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error while doing `what`.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |error| Error::Io { what, error }
    }
}

/// The one place errors become gRPC statuses, with codes used as meant.
impl From<Error> for tonic::Status {
    fn from(err: Error) -> Self {
        use swarm_store::Error as Store;
        let message = err.to_string();
        match err {
            Error::NotFound(_) | Error::Store(Store::NotFound { .. }) => tonic::Status::not_found(message),
            // The code says it is invalid; the message need not ("invalid: ...").
            Error::Store(Store::Invalid(reason)) => tonic::Status::invalid_argument(reason),
            Error::InvalidArgument(_) => tonic::Status::invalid_argument(message),
            Error::Store(Store::AlreadyExists { .. } | Store::NameConflict { .. }) => {
                tonic::Status::already_exists(message)
            }
            Error::Store(Store::VersionConflict { .. }) => tonic::Status::aborted(message),
            // The disk is nearly full: nothing written, reads go on.
            Error::Store(Store::ResourceExhausted(_)) | Error::Raft(swarm_raft::Error::NoSpace { .. }) => {
                tonic::Status::resource_exhausted(message)
            }
            // A watch asked to resume before what the manager keeps, or
            // whose store was replaced: it cannot resume, only start over.
            Error::Store(Store::NoLongerKept { .. } | Store::Restored) => tonic::Status::out_of_range(message),
            // Its buffer exhausted; the client may resume where it was.
            Error::Store(Store::FellBehind) => tonic::Status::resource_exhausted(format!(
                "{message}: resume it after the last commit index received (resume_after)"
            )),
            Error::FailedPrecondition(_) => tonic::Status::failed_precondition(message),
            // Leadership moved while the write waited: it may still commit,
            // so a blind retry is not safe (the message says so).
            Error::Store(Store::OutcomeUnknown(_)) | Error::Raft(swarm_raft::Error::UnknownOutcome { .. }) => {
                tonic::Status::unknown(message)
            }
            // gRPC's code for a change that may have been made all the same.
            Error::Store(Store::TimedOut(_)) => tonic::Status::deadline_exceeded(message),
            // Not the leader, no leader yet, shutting down: nothing was
            // written, and the client may try again.
            Error::Store(Store::ProposalFailed(_) | Store::Closed(_)) | Error::Raft(_) => {
                tonic::Status::unavailable(message)
            }
            Error::StateDir { .. } | Error::Socket { .. } | Error::Transport(_) | Error::Io { .. } => {
                tonic::Status::internal(message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Error;
    use swarm_store::Error as Store;
    use tonic::Code;

    fn code(err: Error) -> Code {
        tonic::Status::from(err).code()
    }

    #[test]
    fn a_write_that_may_still_commit_is_not_reported_as_safe_to_retry() {
        let unknown = Store::OutcomeUnknown("leadership lost; it may still commit".into());
        assert_eq!(code(Error::Store(unknown)), Code::Unknown);
        let failed = Store::ProposalFailed("not the leader".into());
        assert_eq!(code(Error::Store(failed)), Code::Unavailable);
        assert_eq!(code(Error::Raft(swarm_raft::Error::Stopped)), Code::Unavailable);
        let unanswered = swarm_raft::Error::UnknownOutcome {
            index: None,
            reason: "stopped".into(),
        };
        assert_eq!(code(Error::Raft(unanswered)), Code::Unknown);
        let unanswered = Store::TimedOut("no answer within 20 s; it may still be made".into());
        assert_eq!(code(Error::Store(unanswered)), Code::DeadlineExceeded);
    }

    #[test]
    fn a_watch_resumed_before_what_is_kept_is_out_of_range_and_says_from_where_it_may() {
        let status = tonic::Status::from(Error::Store(Store::NoLongerKept { after: 3, oldest: 9 }));
        assert_eq!(status.code(), Code::OutOfRange);
        assert!(
            status.message().contains("can resume after is 9"),
            "{}",
            status.message()
        );
        // Nor can one whose store was replaced by a snapshot.
        let status = tonic::Status::from(Error::Store(Store::Restored));
        assert_eq!(status.code(), Code::OutOfRange);
        assert!(status.message().contains("watch from now"), "{}", status.message());
    }
}
