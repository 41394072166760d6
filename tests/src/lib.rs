//! Multi-process tests and tools: the Raft crash test's child, benchmark
//! binaries and their statistics, real `swarmd` processes for tests and
//! benchmarks (`daemon`), incompressible bytes (`noise`), and (to come) the docker compose cluster and
//! whole-cluster load and fault tools.

pub mod crash;
pub mod daemon;
pub mod fsync;
pub mod metrics;
pub mod noise;
pub mod stats;
