//! Readers never see a torn state while writers commit.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use common::{node, node_annotations};
use swarm_proto::v1::Node;
use swarm_store::{By, MemoryStore, Read};

/// Two nodes carry a label "n" that every transaction bumps on both; a read
/// must always see them equal, and the label index must agree with them.
#[test]
fn concurrent_readers_see_no_torn_state() {
    const WRITES: u64 = 3_000;
    let store = MemoryStore::new();
    let (a, b) = (node("a"), node("b"));
    let ids = (a.id.clone(), b.id.clone());
    futures::executor::block_on(store.update(|tx| {
        tx.create(a)?;
        tx.create(b)
    }))
    .unwrap();

    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (store, done, ids) = (store.clone(), done.clone(), ids.clone());
            thread::spawn(move || {
                let mut reads = 0u64;
                while !done.load(Ordering::Acquire) {
                    store.view(|tx| {
                        let label = |id: &str| {
                            let n = tx.get::<Node>(id).unwrap();
                            n.spec
                                .as_ref()
                                .unwrap()
                                .annotations
                                .as_ref()
                                .unwrap()
                                .labels
                                .get("n")
                                .cloned()
                        };
                        let (la, lb) = (label(&ids.0), label(&ids.1));
                        assert_eq!(la, lb, "torn read at index {}", tx.index());
                        if let Some(v) = la {
                            assert_eq!(
                                tx.find::<Node>(By::Label("n", &v)).unwrap().len(),
                                2,
                                "index behind its table"
                            );
                        }
                    });
                    reads += 1;
                }
                reads
            })
        })
        .collect();

    for i in 0..WRITES {
        futures::executor::block_on(store.update(|tx| {
            for id in [&ids.0, &ids.1] {
                let mut n = (**tx.get::<Node>(id).unwrap()).clone();
                node_annotations(&mut n).labels.insert("n".into(), i.to_string());
                tx.update(n)?;
            }
            Ok(())
        }))
        .unwrap();
    }
    done.store(true, Ordering::Release);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
}

/// Writers racing on one object: each read-modify-write either lands on the
/// version it read or fails with a conflict and is retried, so no increment
/// is lost, whether the commit found its base still current or not.
#[test]
fn concurrent_writers_lose_no_update() {
    const WRITERS: usize = 4;
    const INCREMENTS: u64 = 500;
    let store = MemoryStore::new();
    let counter = node("counter");
    let id = counter.id.clone();
    futures::executor::block_on(store.update(|tx| tx.create(counter))).unwrap();

    let conflicts: u64 = (0..WRITERS)
        .map(|_| {
            let (store, id) = (store.clone(), id.clone());
            thread::spawn(move || {
                let mut conflicts = 0;
                for _ in 0..INCREMENTS {
                    // Read outside the transaction, so that another writer
                    // can commit in between and make this one stale.
                    loop {
                        let mut n = (**store.read().get::<Node>(&id).unwrap()).clone();
                        let labels = &mut node_annotations(&mut n).labels;
                        let value: u64 = labels.get("n").map_or(0, |v| v.parse().unwrap());
                        labels.insert("n".into(), (value + 1).to_string());
                        match futures::executor::block_on(store.update(|tx| tx.update(n))) {
                            Ok(()) => break,
                            Err(swarm_store::Error::VersionConflict { .. }) => conflicts += 1,
                            Err(e) => panic!("unexpected error: {e}"),
                        }
                    }
                }
                conflicts
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|w| w.join().unwrap())
        .sum();

    let total = WRITERS as u64 * INCREMENTS;
    let tx = store.read();
    let n = tx.get::<Node>(&id).unwrap();
    let value = &n.spec.as_ref().unwrap().annotations.as_ref().unwrap().labels["n"];
    assert_eq!(value, &total.to_string(), "{conflicts} conflicts retried");
    assert_eq!(n.meta.as_ref().unwrap().version, total + 1);
    assert_eq!(tx.find::<Node>(By::Label("n", value)).unwrap().len(), 1);
}
