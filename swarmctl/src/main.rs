//! `swarmctl`, the operator's gRPC client: a stub for now.
//!
//! It will speak the Control API (`swarm-proto`) to a manager's Unix socket:
//! `service create/ls/inspect/update/rm`, `task ls`, `node ls/drain/...`.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("swarmctl: the client is not built yet; it comes with the daemon");
    ExitCode::FAILURE
}
