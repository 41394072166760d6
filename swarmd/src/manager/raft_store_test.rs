//! The store over a real single-member Raft group, on a real RocksDB.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use swarm_proto::v1::{Annotations, Node, NodeSpec};
use swarm_raft::{Config, RaftNode, Start};
use swarm_store::{Read as _, id};

use super::*;

/// A manager's store and the Raft member it commits through.
struct Manager {
    store: MemoryStore,
    raft: RaftNode<StoreMachine>,
}

async fn start(dir: &Path, snapshot_interval: u64) -> Manager {
    start_answering_within(dir, snapshot_interval, ANSWER_WITHIN).await
}

async fn start_answering_within(dir: &Path, snapshot_interval: u64, answer_within: Duration) -> Manager {
    let mut config = Config::new(1, 0x57, dir, "127.0.0.1:1");
    config.tick = Duration::from_millis(20);
    config.snapshot_interval = snapshot_interval;
    config.keep_entries = 5;
    let proposer = RaftProposer::answering_within(answer_within);
    let store = MemoryStore::builder().proposer(proposer.clone()).build();
    let members = BTreeMap::from([(1, config.addr.clone())]);
    let raft = RaftNode::start(config, StoreMachine::new(store.clone()), Start::Bootstrap(members))
        .await
        .unwrap();
    proposer.connect(raft.handle());
    let mut leadership = raft.handle().watch_leadership();
    tokio::time::timeout(Duration::from_secs(10), leadership.wait_for(|seen| seen.is_leader))
        .await
        .expect("a single member elects itself")
        .unwrap();
    Manager { store, raft }
}

fn node(name: &str) -> Node {
    Node {
        id: id::generate(),
        spec: Some(NodeSpec {
            annotations: Some(Annotations {
                name: name.to_string(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn version(node: &Node) -> u64 {
    node.meta.as_ref().map_or(0, |meta| meta.version)
}

#[tokio::test]
async fn a_transaction_commits_through_raft_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let manager = start(dir.path(), 10_000).await;
    manager.store.update(|tx| tx.create(node("n1"))).await.unwrap();
    let written = manager.store.read().get_by_name::<Node>("n1").cloned().unwrap();
    let raft_index = manager.raft.handle().status().await.unwrap().applied;
    assert_eq!(
        version(&written),
        raft_index,
        "the version is the Raft index of the write"
    );
    manager.raft.shutdown().await.unwrap();

    let manager = start(dir.path(), 10_000).await;
    let replayed = manager
        .store
        .read()
        .get_by_name::<Node>("n1")
        .cloned()
        .expect("replayed from the log");
    assert_eq!(replayed, written);
    manager.store.update(|tx| tx.create(node("n2"))).await.unwrap();
    let later = manager.store.read().get_by_name::<Node>("n2").cloned().unwrap();
    assert!(version(&later) > version(&written));
    manager.raft.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_conflict_found_at_apply_reaches_the_writer_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let manager = start(dir.path(), 10_000).await;
    manager.store.update(|tx| tx.create(node("n1"))).await.unwrap();
    let stale = (*manager.store.read().get_by_name::<Node>("n1").cloned().unwrap()).clone();
    let mut first = stale.clone();
    first
        .spec
        .as_mut()
        .unwrap()
        .annotations
        .as_mut()
        .unwrap()
        .labels
        .insert("a".into(), "1".into());
    manager.store.update(|tx| tx.update(first)).await.unwrap();

    let err = manager.store.update(|tx| tx.update(stale)).await.unwrap_err();
    assert!(matches!(err, Error::VersionConflict { .. }), "{err}");
    let stored = manager.store.read().get_by_name::<Node>("n1").cloned().unwrap();
    assert_eq!(
        stored
            .spec
            .as_ref()
            .unwrap()
            .annotations
            .as_ref()
            .unwrap()
            .labels
            .get("a")
            .map(String::as_str),
        Some("1")
    );
    manager.raft.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_restart_rebuilds_the_store_from_a_snapshot_and_the_entries_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let manager = start(dir.path(), 50).await;
    for n in 0..120 {
        manager
            .store
            .update(|tx| tx.create(node(&format!("n{n}"))))
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while manager.raft.handle().status().await.unwrap().snapshot_index < 100 {
        assert!(Instant::now() < deadline, "no snapshot was taken");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = manager.store.snapshot();
    manager.raft.shutdown().await.unwrap();

    let manager = start(dir.path(), 50).await;
    assert_eq!(manager.store.read().count::<Node>(), 120);
    assert_eq!(manager.store.snapshot(), before, "the same store, byte for byte");
    manager.raft.shutdown().await.unwrap();
}

#[test]
fn an_entry_that_does_not_decode_is_refused_alone_and_takes_its_index() {
    use swarm_proto::v1::{StoreAction, store_action};
    let store = MemoryStore::new();
    let mut machine = StoreMachine::new(store.clone());
    let entry = |node: &Node| {
        StoreActions {
            actions: vec![StoreAction {
                kind: store_action::Kind::Create as i32,
                target: Some(store_action::Target::Node(node.clone())),
            }],
        }
        .encode_to_vec()
    };
    let (first, last) = (node("first"), node("last"));
    let (first_bytes, last_bytes) = (entry(&first), entry(&last));
    let garbage = [0xff_u8, 0xff, 0xff];
    let results = machine.apply_run(&[(1, &first_bytes), (2, &garbage), (3, &last_bytes)]);
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    match &results[1] {
        Err(Error::Invalid(message)) => assert!(message.contains("entry 2"), "{message}"),
        other => panic!("expected the entry to be refused, got {other:?}"),
    }
    store.view(|tx| {
        assert_eq!(tx.index(), 3);
        assert_eq!(tx.count::<Node>(), 2);
        assert_eq!(version(tx.get::<Node>(&last.id).unwrap()), 3);
    });
}

/// A removal names no version: an update committed between its read and
/// its commit (a conflict the Raft pipeline finds only at apply) does not
/// refuse it. Every removal of services each updated at the same moment
/// succeeds, and none of them is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removals_racing_updates_of_the_same_objects_all_succeed() {
    use swarm_proto::v1::control_server::Control as _;
    use swarm_proto::v1::{CreateServiceRequest, RemoveServiceRequest, ServiceSpec, UpdateServiceRequest};
    use tonic::Request;

    let dir = tempfile::tempdir().unwrap();
    let manager = start(dir.path(), 10_000).await;
    let api = std::sync::Arc::new(crate::manager::controlapi::ControlApi::new(manager.store.clone()));
    let mut services = Vec::new();
    for n in 0..60 {
        let spec = ServiceSpec::container(format!("s{n}"), "busybox");
        let created = api
            .create_service(Request::new(CreateServiceRequest { spec: Some(spec) }))
            .await
            .unwrap();
        services.push(created.into_inner().service.unwrap());
    }
    let mut races = tokio::task::JoinSet::new();
    for service in services {
        let (updater, remover) = (api.clone(), api.clone());
        let mut spec = service.spec.clone().unwrap();
        spec.annotations
            .as_mut()
            .unwrap()
            .labels
            .insert("raced".into(), "yes".into());
        let update = UpdateServiceRequest {
            service_id: service.id.clone(),
            service_version: service.meta.as_ref().unwrap().version,
            spec: Some(spec),
            rollback: false,
        };
        races.spawn(async move {
            // The update may land first, or find the service gone.
            let _ = updater.update_service(Request::new(update)).await;
        });
        let service_id = service.id.clone();
        races.spawn(async move {
            remover
                .remove_service(Request::new(RemoveServiceRequest { service_id }))
                .await
                .map(|_| ())
                .unwrap_or_else(|status| panic!("a removal racing an update was refused: {status:?}"));
        });
    }
    while let Some(joined) = races.join_next().await {
        joined.unwrap();
    }
    assert_eq!(manager.store.view(|tx| tx.count::<swarm_proto::v1::Service>()), 0);
    manager.raft.shutdown().await.unwrap();
}

/// A write held up past the proposer's bound (the loop stalled, as on a
/// disk that hangs) is told that it may still be made; it is, once the
/// loop goes on.
#[tokio::test]
async fn a_write_held_up_past_the_bound_is_told_it_may_still_be_made() {
    let dir = tempfile::tempdir().unwrap();
    let manager = start_answering_within(dir.path(), 10_000, Duration::from_millis(200)).await;
    manager.raft.handle().links().pause_loop(Duration::from_secs(1));
    let held = node("held");
    let err = manager
        .store
        .update(|tx| tx.create(held.clone()))
        .await
        .expect_err("no answer within the bound");
    assert!(matches!(&err, Error::TimedOut(_)), "{err}");
    assert!(err.to_string().contains("may still be made"), "{err}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while manager.store.read().get::<Node>(&held.id).is_none() {
        assert!(Instant::now() < deadline, "the write held up never applied");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    manager.raft.shutdown().await.unwrap();
}
