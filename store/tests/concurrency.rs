//! Readers never see a torn state while writers commit.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use common::node;
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
                n.spec
                    .as_mut()
                    .unwrap()
                    .annotations
                    .as_mut()
                    .unwrap()
                    .labels
                    .insert("n".into(), i.to_string());
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
