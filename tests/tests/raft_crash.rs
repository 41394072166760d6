//! Kill -9 at random moments: a child process proposes to a single Raft
//! member as fast as it can and prints each acknowledged proposal; the test
//! kills it with SIGKILL, reopens the data dir, and finds every acknowledged
//! entry there, at its index, in order, once. The same data dir takes every
//! kill in turn, so each round also restarts from the crashes before it.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use swarm_raft::testing::LogMachine;
use swarm_raft::{RaftNode, Start};

const KILLS: usize = 20;

/// Runs the child until it has acknowledged something, lets it go on for
/// a random while, kills it, and returns every line it printed.
fn run_and_kill(dir: &str, tag: &str, after: Duration) -> Vec<(u64, String)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_raft-crash-child"))
        .args([dir, tag])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start raft-crash-child");
    let stdout = child.stdout.take().expect("piped stdout");
    let (first_tx, first_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let (index, payload) = line.split_once(' ').expect("`<index> <payload>`");
            lines.push((index.parse::<u64>().expect("an index"), payload.to_string()));
            if lines.len() == 1 {
                let _ = first_tx.send(());
            }
        }
        lines
    });
    first_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the child acknowledged a first proposal");
    std::thread::sleep(after);
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("reap the child");
    assert!(!status.success(), "the child was killed, not finished");
    reader.join().expect("reader thread")
}

/// Opens the data dir the way a restart does and returns every entry
/// applied, once the member leads and has committed a fresh entry (so all
/// before it are applied).
async fn recover(dir: &str) -> Vec<(u64, bytes::Bytes)> {
    let config = swarm_tests::crash::config(dir);
    let machine = LogMachine::new();
    let node = RaftNode::start(config, machine.clone(), Start::Join)
        .await
        .expect("reopen the data dir");
    let handle = node.handle();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match handle.propose(b"probe".to_vec()).await {
            Ok(_) => break,
            Err(err) => assert!(Instant::now() < deadline, "the reopened member never committed: {err}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node.shutdown().await.expect("clean shutdown");
    machine.entries()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_proposal_survives_kill_9() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("member").to_string_lossy().into_owned();
    let mut acknowledged: BTreeMap<u64, String> = BTreeMap::new();
    for round in 0..KILLS {
        let after = Duration::from_millis(rand::random_range(0..400));
        let tag = format!("r{round}");
        let lines = tokio::task::spawn_blocking({
            let dir = dir.clone();
            move || run_and_kill(&dir, &tag, after)
        })
        .await
        .unwrap();
        assert!(!lines.is_empty(), "round {round}: nothing acknowledged");
        for (index, payload) in lines {
            let earlier = acknowledged.insert(index, payload.clone());
            assert!(
                earlier.is_none(),
                "round {round}: index {index} acknowledged twice ({earlier:?}, {payload})"
            );
        }

        let applied = recover(&dir).await;
        let by_index: HashMap<u64, &[u8]> = applied.iter().map(|(index, data)| (*index, &data[..])).collect();
        for (index, payload) in &acknowledged {
            assert_eq!(
                by_index.get(index).copied(),
                Some(payload.as_bytes()),
                "round {round}: acknowledged entry {index} ({payload}) is not at its index"
            );
        }
        let indexes: Vec<u64> = applied.iter().map(|(index, _)| *index).collect();
        assert!(
            indexes.windows(2).all(|pair| pair[0] < pair[1]),
            "round {round}: entries out of order"
        );
        let mut payloads: Vec<&[u8]> = applied
            .iter()
            .map(|(_, data)| &data[..])
            .filter(|d| *d != b"probe")
            .collect();
        let total = payloads.len();
        payloads.sort_unstable();
        payloads.dedup();
        assert_eq!(payloads.len(), total, "round {round}: an entry was applied twice");
        eprintln!(
            "round {round}: killed after {after:?}; {} acknowledged so far, all recovered",
            acknowledged.len()
        );
    }
}
