//! Multi-process tests and tools: the Raft crash test's child, benchmark
//! binaries, and (to come) tests that start real `swarmd` processes, the
//! docker compose cluster, and whole-cluster load and fault tools.

pub mod crash;
pub mod fsync;
