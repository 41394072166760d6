//! `swarmd`, the daemon every host runs.
//!
//! # Layout
//!
//! One folder per role, as SwarmKit does it (ARCHITECTURE.md, "Crates"):
//!
//! - [`node`]: the life cycle (start, ready, stop), the state dir and its
//!   identity, the Control API socket.
//! - [`manager`]: what a manager runs: the store behind Raft
//!   ([`manager::raft_store`]), the objects of a new cluster, the Control API
//!   ([`manager::controlapi`]). The proxy to the leader, the dispatcher, the
//!   orchestrators and the scheduler come with the next issues.
//! - [`metrics`]: the Prometheus endpoint (`--listen-metrics`).
//! - `ca/`, `agent/`: to come.
//!
//! [`Error`] is the one error type; `From<Error> for tonic::Status` is the one
//! place errors become gRPC codes.

#![deny(missing_docs)]

mod connection_limits;
mod error;
pub mod manager;
pub mod metrics;
pub mod node;

pub use error::{Error, Result};
