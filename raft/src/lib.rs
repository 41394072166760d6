//! Consensus for the managers: a stub for now.
//!
//! This crate will own the Raft node built on raft-rs (crate `raft`): the
//! Ready loop, the RocksDB log and snapshot storage, the peer transport,
//! membership changes, and a `StateMachine` seam through which `swarmd` hands
//! committed entries to the store. It never depends on `swarm-store`; see
//! ARCHITECTURE.md, "Crates".
