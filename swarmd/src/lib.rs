//! `swarmd`, the daemon every host runs.
//!
//! # Layout
//!
//! One folder per role, as SwarmKit does it (ARCHITECTURE.md, "Crates"):
//!
//! - [`manager`]: what a manager runs. So far the glue of the store and
//!   consensus ([`manager::raft_store`]); the Control API, the proxy to the
//!   leader, the dispatcher, the orchestrators and the scheduler come with
//!   the next issues.
//! - `node/`, `ca/`, `agent/`: to come.

#![deny(missing_docs)]

pub mod manager;
