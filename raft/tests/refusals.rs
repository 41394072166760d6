//! What a member refuses rather than go wrong: a state machine that breaks
//! its contract stops the member with an error that says so, no proposer
//! left waiting; a proposal too large to ever reach a follower is refused
//! before it enters the log.

use std::collections::BTreeMap;
use std::time::Duration;

use swarm_raft::testing::LogMachine;
use swarm_raft::{Config, Error, RaftNode, SnapshotWriter, Start, StateMachine};

/// Applies every entry but returns one output fewer than it was given.
struct ShortMachine(LogMachine);

impl StateMachine for ShortMachine {
    type Output = usize;

    fn apply(&mut self, index: u64, data: &[u8]) -> usize {
        self.0.apply(index, data)
    }

    fn apply_run(&mut self, entries: &[(u64, &[u8])]) -> Vec<usize> {
        let mut outputs: Vec<usize> = entries.iter().map(|&(index, data)| self.apply(index, data)).collect();
        outputs.pop();
        outputs
    }

    fn snapshot(&self) -> SnapshotWriter {
        self.0.snapshot()
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), swarm_raft::BoxError> {
        self.0.restore(data)
    }
}

/// Panics on an entry that says "boom", as a buggy machine would.
struct PanickingMachine(LogMachine);

impl StateMachine for PanickingMachine {
    type Output = usize;

    fn apply(&mut self, index: u64, data: &[u8]) -> usize {
        assert!(data != b"boom", "the machine cannot apply entry {index}");
        self.0.apply(index, data)
    }

    fn snapshot(&self) -> SnapshotWriter {
        self.0.snapshot()
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), swarm_raft::BoxError> {
        self.0.restore(data)
    }
}

/// A member alone in its group, in a temporary data dir, once it leads.
async fn single_member<S: StateMachine>(machine: S) -> (tempfile::TempDir, RaftNode<S>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config::new(1, 7, dir.path(), "127.0.0.1:1");
    config.tick = Duration::from_millis(20);
    let members = BTreeMap::from([(config.id, config.addr.clone())]);
    let node = RaftNode::start(config, machine, Start::Bootstrap(members))
        .await
        .expect("start");
    node.handle()
        .watch_leadership()
        .wait_for(|leadership| leadership.is_leader)
        .await
        .expect("leads");
    (dir, node)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_that_returns_too_few_outputs_stops_the_member_and_answers_its_proposers() {
    let (_dir, node) = single_member(ShortMachine(LogMachine::new())).await;
    let handle = node.handle();

    let answer = tokio::time::timeout(Duration::from_secs(10), handle.propose(b"x".to_vec()))
        .await
        .expect("the proposer got an answer");
    assert!(matches!(answer, Err(Error::UnknownOutcome { .. })), "{answer:?}");
    let stopped = node.shutdown().await.expect_err("the member stopped on an error");
    assert!(
        matches!(&stopped, Error::Machine(reason) if reason.contains("0 outputs for the 1 entries")),
        "{stopped}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_loop_is_an_unknown_outcome_to_its_proposer_and_the_stop_error_says_why() {
    let (_dir, node) = single_member(PanickingMachine(LogMachine::new())).await;
    let handle = node.handle();
    handle.propose(b"fine".to_vec()).await.expect("an entry that applies");

    let answer = tokio::time::timeout(Duration::from_secs(10), handle.propose(b"boom".to_vec()))
        .await
        .expect("the proposer got an answer");
    assert!(matches!(answer, Err(Error::UnknownOutcome { .. })), "{answer:?}");
    // Those who watch its leadership (a manager's API) learn why it stopped.
    let mut leadership = handle.watch_leadership();
    let seen = tokio::time::timeout(
        Duration::from_secs(10),
        leadership.wait_for(|seen| seen.stopped.is_some()),
    )
    .await
    .expect("the stop is published")
    .expect("published before the loop ended")
    .clone();
    assert!(!seen.is_leader);
    let cause = seen.stopped.unwrap_or_default();
    assert!(cause.contains("panicked: the machine cannot apply entry"), "{cause}");
    let stopped = node.shutdown().await.expect_err("the member stopped on a panic");
    assert!(
        matches!(&stopped, Error::Panicked(message) if message.contains("cannot apply entry")),
        "{stopped}"
    );
    let later = handle.add_member(2, "127.0.0.1:2").await;
    assert!(matches!(later, Err(Error::Stopped)), "{later:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_removed_under_the_member_stops_it_and_no_later_write_is_acknowledged() {
    let (dir, node) = single_member(LogMachine::new()).await;
    let handle = node.handle();
    handle
        .propose(b"before".to_vec())
        .await
        .expect("written while the dir is there");

    std::fs::remove_dir_all(dir.path()).expect("remove the data dir");
    // RocksDB still holds its files open and the write succeeds; it must
    // not be acknowledged all the same.
    let answer = tokio::time::timeout(Duration::from_secs(10), handle.propose(b"after".to_vec()))
        .await
        .expect("the proposer got an answer");
    assert!(matches!(answer, Err(Error::UnknownOutcome { .. })), "{answer:?}");
    let stopped = node.shutdown().await.expect_err("the member stopped");
    assert!(
        matches!(&stopped, Error::DataDir { reason, .. } if reason.contains("was removed")),
        "{stopped}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_member_whose_data_dir_was_removed_stops_by_itself() {
    let (dir, node) = single_member(LogMachine::new()).await;
    let handle = node.handle();
    std::fs::remove_dir_all(dir.path()).expect("remove the data dir");
    tokio::time::timeout(Duration::from_secs(10), handle.stopped())
        .await
        .expect("the member stopped with no write to notice it");
    let stopped = node.shutdown().await.expect_err("the member stopped on an error");
    assert!(matches!(&stopped, Error::DataDir { .. }), "{stopped}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_right_after_the_data_dir_was_removed_says_so() {
    let (dir, node) = single_member(LogMachine::new()).await;
    std::fs::remove_dir_all(dir.path()).expect("remove the data dir");
    // Before the check that runs every second could notice.
    let stopped = node.shutdown().await.expect_err("a stop that cannot be clean");
    assert!(matches!(&stopped, Error::DataDir { .. }), "{stopped}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_refuses_a_missing_or_never_configured_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("raft");
    let config = Config::new(1, 7, &data_dir, "127.0.0.1:1");
    let refused = |result: Result<RaftNode<LogMachine>, Error>| match result {
        Err(Error::DataDir { reason, .. }) => assert!(
            reason.contains("holds no Raft log") && !reason.contains("incomplete copy"),
            "{reason}"
        ),
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("a member started on no log"),
    };
    refused(RaftNode::start(config.clone(), LogMachine::new(), Start::Restart).await);
    assert!(!data_dir.exists(), "the refusal made a data dir");
    // Made, then cut short before its first configuration.
    drop(swarm_raft::RocksStorage::open(&data_dir, 7, 1).expect("a new log"));
    refused(RaftNode::start(config.clone(), LogMachine::new(), Start::Restart).await);
    // An incomplete copy: RocksDB's files without the CURRENT naming them.
    std::fs::remove_file(data_dir.join("CURRENT")).expect("remove CURRENT");
    match RaftNode::start(config, LogMachine::new(), Start::Restart).await {
        Err(Error::DataDir { reason, .. }) => assert!(reason.contains("incomplete copy"), "{reason}"),
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("a member started on no log"),
    }
    assert!(!data_dir.join("CURRENT").exists(), "the refusal touched the dir");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposal_larger_than_an_entry_may_be_is_refused_and_the_member_goes_on() {
    let (_dir, node) = single_member(LogMachine::new()).await;
    let handle = node.handle();
    let err = handle
        .propose(vec![0; swarm_raft::MAX_ENTRY_BYTES + 1])
        .await
        .expect_err("too large");
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    handle
        .propose(vec![0; 1024])
        .await
        .expect("a proposal of a normal size");
    node.shutdown().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_moves_to_a_free_address_only() {
    let (dir, node) = single_member(LogMachine::new()).await;
    let handle = node.handle();
    let applied = handle.status().await.expect("status").applied;
    // Its own address: nothing to change, no entry.
    assert_eq!(handle.move_member(1, "127.0.0.1:1").await.expect("no move"), applied);
    let err = handle.move_member(2, "127.0.0.1:2").await.expect_err("no member 2");
    assert!(matches!(err, Error::Membership(_)), "{err}");
    let moved_at = handle.move_member(1, "127.0.0.1:9").await.expect("moved");
    assert!(moved_at > applied);
    assert_eq!(handle.status().await.expect("status").members[&1], "127.0.0.1:9");
    node.shutdown().await.expect("clean stop");

    // The address is in the log: a restart reads it back.
    let mut config = Config::new(1, 7, dir.path(), "127.0.0.1:9");
    config.tick = Duration::from_millis(20);
    let node = RaftNode::start(config, LogMachine::new(), Start::Restart)
        .await
        .expect("restart");
    assert_eq!(node.handle().status().await.expect("status").members[&1], "127.0.0.1:9");
    node.shutdown().await.expect("clean stop");
}
