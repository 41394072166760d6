//! What a manager runs.

pub mod raft_store;
