//! Consensus for the managers: raft-rs (crate `raft`) with its log, hard
//! state and snapshots in RocksDB, and a transport over tonic.
//!
//! # Layout
//!
//! - [`node`]: a running member. [`RaftNode::start`] opens the data dir and
//!   spawns the Ready loop (`node/ready_loop.rs`), the one task that owns
//!   raft-rs's `RawNode`, the storage, the state machine and the sending
//!   side of the transport; [`RaftHandle`] sends it proposals, membership
//!   changes and questions.
//! - [`storage`]: [`RocksStorage`], raft-rs's `Storage` in RocksDB;
//!   [`salvage_damaged_log`], the operator's way past a damaged log.
//! - [`transport`]: peer queues and tasks, snapshot streaming, and the
//!   receiving [`TransportService`].
//! - [`StateMachine`]: the seam through which committed entries reach what
//!   is replicated (`swarmd` puts the store there; tests use
//!   [`testing::LogMachine`]). This crate never depends on the store.
//!
//! # What a caller can rely on
//!
//! A proposal's future resolves with its index only after the entry is
//! committed and applied on this member. Errors say whether the proposal
//! can still commit ([`Error::UnknownOutcome`]) or cannot
//! ([`Error::NotLeader`], [`Error::Dropped`], [`Error::Stopped`]).

#![deny(missing_docs)]

mod config;
mod data_dir;
mod disk_space;
mod entry_cache;
mod error;
mod logger;
mod metrics;
pub mod node;
mod open_db;
mod peer_disks;
mod salvage;
mod state_machine;
pub mod storage;
pub mod testing;
pub mod transport;

/// The largest proposal a member takes. An entry travels whole in one
/// append message, whatever `Config::max_message_bytes` says (that bounds
/// how many entries share one; the transport cuts what raft-rs merged
/// beyond it), so a larger entry could never reach a follower: the
/// transport takes messages of up to 64 MiB.
pub const MAX_ENTRY_BYTES: usize = 32 * 1024 * 1024;

pub use config::{Config, DEFAULT_KEEP_FREE_DISK};
pub use disk_space::{filesystem_size, human as human_bytes};
pub use error::{Error, Peer, Result};
pub use metrics::{Metrics, MetricsSnapshot};
pub use node::{Leadership, Progress, RaftHandle, RaftNode, Role, Start, Status};
pub use salvage::{Salvage, salvage_damaged_log};
pub use state_machine::{BoxError, SnapshotWriter, StateMachine};
pub use storage::RocksStorage;
pub use transport::{Links, TransportService};
