//! Integration tests that start real `swarmd` processes: a stub for now.
//!
//! This crate will hold the multi-process tests (loopback clusters, a real
//! RocksDB, a real Docker engine), the docker compose cluster, and the
//! whole-cluster load and fault tools.
