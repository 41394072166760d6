//! The victim of the Raft crash test (`tests/raft_crash.rs`): a single
//! Raft member that proposes as fast as it can and prints each
//! acknowledged proposal as `<index> <payload>`, flushed, until it is
//! killed. Started again on the same data dir, it first replays what it
//! had, then goes on.
//!
//! Usage: `raft-crash-child DATA_DIR TAG` (payloads are `TAG-<n>`).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::ExitCode;

use futures::StreamExt as _;
use swarm_raft::testing::LogMachine;
use swarm_raft::{RaftNode, Start};

/// Proposals kept in flight, so that a kill lands among many unanswered.
const IN_FLIGHT: usize = 64;

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(tag)) = (args.next(), args.next()) else {
        eprintln!("usage: raft-crash-child DATA_DIR TAG");
        return ExitCode::FAILURE;
    };
    match run(&dir, &tag).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("raft-crash-child: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(dir: &str, tag: &str) -> anyhow::Result<()> {
    let config = swarm_tests::crash::config(dir);
    let members = BTreeMap::from([(config.id, config.addr.clone())]);
    let node = RaftNode::start(config, LogMachine::new(), Start::Bootstrap(members)).await?;
    let handle = node.handle();
    let mut leadership = handle.watch_leadership();
    leadership.wait_for(|seen| seen.is_leader).await?;

    let mut acknowledged = futures::stream::iter(0u64..)
        .map(|n| {
            let handle = handle.clone();
            let payload = format!("{tag}-{n}");
            async move {
                handle
                    .propose(payload.clone().into_bytes())
                    .await
                    .map(|(index, _)| (index, payload))
            }
        })
        .buffer_unordered(IN_FLIGHT);
    let mut stdout = std::io::stdout().lock();
    while let Some(outcome) = acknowledged.next().await {
        let (index, payload) = outcome?;
        // Printed and flushed only once acknowledged: every line the test
        // reads is a promise the data dir must keep.
        writeln!(stdout, "{index} {payload}")?;
        stdout.flush()?;
    }
    Ok(())
}
