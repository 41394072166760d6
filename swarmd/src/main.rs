//! `swarmd`, the daemon every host runs: a stub for now.
//!
//! It will hold the node life cycle, the CA, the manager (Control API,
//! leader-forwarding proxy, dispatcher, orchestrators, scheduler) and the
//! agent that drives the Docker engine; see ARCHITECTURE.md.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("swarmd: the daemon is not built yet; this workspace holds the API types and the store so far");
    ExitCode::FAILURE
}
