//! Support for tests and benchmarks: a state machine that keeps every
//! entry, and a group of real members in one process.

pub mod cluster;
mod log_machine;

pub use log_machine::LogMachine;
