//! Snapshot and restore: equal stores; corrupt bytes change nothing.

mod common;

use common::{node, node_annotations, service, task_of};
use prost::Message;
use swarm_proto::v1::{Cluster, Config, Node, Secret, Service, StoreSnapshot, Task};
use swarm_store::{By, Error, MemoryStore, Read, ReadTx};

async fn populated() -> MemoryStore {
    let store = MemoryStore::new();
    let mut labelled = node("n1");
    node_annotations(&mut labelled).labels.insert("zone".into(), "a".into());
    let services: Vec<Service> = (0..5).map(|i| service(&format!("svc{i}"))).collect();
    let s = services.clone();
    store
        .update(move |tx| {
            tx.create(labelled)?;
            for svc in s {
                for slot in 1..=4 {
                    tx.create(task_of(&svc, slot))?;
                }
                tx.create(svc)?;
            }
            tx.create(Cluster {
                id: swarm_store::id::generate(),
                ..Default::default()
            })?;
            tx.create(Secret {
                id: swarm_store::id::generate(),
                ..Default::default()
            })?;
            tx.create(Config {
                id: swarm_store::id::generate(),
                ..Default::default()
            })
        })
        .await
        .unwrap();
    // A second commit, so that versions differ between objects.
    let first = services[0].id.clone();
    store
        .update(move |tx| {
            let mut s = (**tx.get::<Service>(&first).unwrap()).clone();
            s.pending_delete = true;
            tx.update(s)
        })
        .await
        .unwrap();
    store
}

/// Every object of every kind, and the index.
#[derive(Debug, PartialEq)]
struct Contents {
    index: u64,
    nodes: Vec<Node>,
    services: Vec<Service>,
    tasks: Vec<Task>,
    clusters: Vec<Cluster>,
    secrets: Vec<Secret>,
    configs: Vec<Config>,
}

fn contents(tx: &ReadTx) -> Contents {
    fn all<T: swarm_store::StoreObject>(tx: &ReadTx) -> Vec<T> {
        tx.list::<T>().into_iter().map(|o| (**o).clone()).collect()
    }
    Contents {
        index: tx.index(),
        nodes: all(tx),
        services: all(tx),
        tasks: all(tx),
        clusters: all(tx),
        secrets: all(tx),
        configs: all(tx),
    }
}

#[tokio::test]
async fn snapshot_then_restore_gives_an_equal_store() {
    let original = populated().await;
    let bytes = original.snapshot();

    let restored = MemoryStore::new();
    restored.restore(&bytes).unwrap();
    let (a, b) = (original.read(), restored.read());
    assert_eq!(contents(&a), contents(&b));
    assert_eq!(b.index(), 2);
    // Indexes are rebuilt, not just the tables.
    let svc = &a.list::<Service>()[0].id;
    assert_eq!(b.find::<Task>(By::ServiceId(svc)).unwrap().len(), 4);
    assert_eq!(b.find::<Node>(By::Label("zone", "a")).unwrap().len(), 1);
    assert_eq!(
        b.get_by_name::<Service>("SVC3").unwrap().spec,
        a.get_by_name::<Service>("svc3").unwrap().spec
    );
    // And the restored store keeps going from the snapshot's index.
    restored.update(|tx| tx.create(node("n2"))).await.unwrap();
    assert_eq!(
        restored
            .read()
            .get_by_name::<Node>("n2")
            .unwrap()
            .meta
            .as_ref()
            .unwrap()
            .version,
        3
    );
}

#[tokio::test]
async fn corrupt_snapshots_are_refused_and_change_nothing() {
    let source = populated().await;
    let good = source.snapshot();

    let target = MemoryStore::new();
    target.update(|tx| tx.create(node("keep-me"))).await.unwrap();
    let before = contents(&target.read());

    let mut flipped = good.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x40;
    let mut bad_magic = good.clone();
    bad_magic[0] = b'X';
    let mut bad_format = good.clone();
    bad_format[4] = 9;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "magic"),
        ("bad magic", bad_magic, "magic"),
        ("unknown format", bad_format, "format 9"),
        ("truncated", good[..good.len() - 7].to_vec(), "checksum"),
        ("flipped bit", flipped, "checksum"),
    ];
    for (what, bytes, expected) in cases {
        let err = target.restore(&bytes).unwrap_err();
        assert!(
            matches!(err, Error::Invalid(ref m) if m.contains(expected)),
            "{what}: {err}"
        );
        assert_eq!(contents(&target.read()), before, "{what} changed the store");
    }
}

#[tokio::test]
async fn a_snapshot_holding_one_id_twice_is_refused() {
    let n = node("dup");
    let payload = StoreSnapshot {
        index: 1,
        nodes: vec![n.clone(), n],
        ..Default::default()
    }
    .encode_to_vec();
    let mut bytes = b"SWST".to_vec();
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    let store = MemoryStore::new();
    let err = store.restore(&bytes).unwrap_err();
    assert!(
        matches!(err, Error::Invalid(ref m) if m.contains("already exists")),
        "{err}"
    );
    assert_eq!(store.read().count::<Node>(), 0);
}

#[tokio::test]
async fn the_payload_is_a_plain_store_snapshot_message() {
    let store = populated().await;
    let bytes = store.snapshot();
    let message = StoreSnapshot::decode(&bytes[12..]).unwrap();
    assert_eq!(message.index, 2);
    assert_eq!(
        (message.nodes.len(), message.services.len(), message.tasks.len()),
        (1, 5, 20)
    );
}

#[tokio::test]
async fn restored_tasks_share_their_service_spec() {
    let original = populated().await;
    let restored = MemoryStore::new();
    restored.restore(&original.snapshot()).unwrap();
    let tx = restored.read();
    let mut checked = 0;
    for service in tx.list::<Service>() {
        let spec = service.spec.as_ref().unwrap().task.as_ref().unwrap();
        for task in tx.find::<Task>(By::ServiceId(&service.id)).unwrap() {
            let task_spec = task.spec.as_ref().expect("tasks carry their spec");
            assert!(
                swarm_proto::Shared::ptr_eq(task_spec, spec),
                "task {} holds its own copy",
                task.id
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 20);
}

#[tokio::test]
async fn a_snapshot_writer_encodes_the_state_of_its_capture_not_later_writes() {
    let store = populated().await;
    let write = store.snapshot_writer();
    let expected = store.snapshot();
    store.update(|tx| tx.create(node("written-after"))).await.unwrap();
    let bytes = std::thread::spawn(write).join().unwrap();
    assert_eq!(bytes, expected);
    let restored = MemoryStore::new();
    restored.restore(&bytes).unwrap();
    assert!(restored.read().get_by_name::<Node>("written-after").is_none());
}
