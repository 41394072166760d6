//! Committing through a proposer, the way Raft will: proposals queue up in a
//! log, a separate applier applies them in order, and each writer returns
//! only once its entry is applied.

mod common;

use std::sync::{Arc, Mutex};

use common::{node, service, service_annotations};
use futures::future::BoxFuture;
use swarm_proto::v1::{Node, Service, StoreAction};
use swarm_store::{Error, MemoryStore, Proposer, Read, Result};
use tokio::sync::{mpsc, oneshot};

/// Stands in for Raft in these tests: entries get consecutive indexes in the
/// order proposed and are applied by one task, in that order.
struct LogProposer {
    log: mpsc::UnboundedSender<(Vec<StoreAction>, oneshot::Sender<Result<u64>>)>,
    proposed: Mutex<Vec<usize>>,
}

impl Proposer for LogProposer {
    fn propose(&self, actions: Vec<StoreAction>) -> BoxFuture<'static, Result<u64>> {
        self.proposed.lock().unwrap().push(actions.len());
        let (reply, applied) = oneshot::channel();
        let sent = self.log.send((actions, reply));
        Box::pin(async move {
            sent.map_err(|_| Error::ProposalFailed("log closed".into()))?;
            applied
                .await
                .map_err(|_| Error::ProposalFailed("entry dropped".into()))?
        })
    }
}

/// A store whose commits go through a log, and a gate that holds the applier
/// until released, so that proposals can pile up in flight.
fn store_with_log() -> (MemoryStore, Arc<LogProposer>, tokio::sync::watch::Sender<bool>) {
    let (log, mut entries) = mpsc::unbounded_channel::<(Vec<StoreAction>, oneshot::Sender<Result<u64>>)>();
    let proposer = Arc::new(LogProposer {
        log,
        proposed: Mutex::new(Vec::new()),
    });
    let store = MemoryStore::builder().proposer(proposer.clone()).build();
    let (gate, mut open) = tokio::sync::watch::channel(false);
    let applier = store.clone();
    tokio::spawn(async move {
        let mut index = 0;
        let _ = open.wait_for(|open| *open).await;
        while let Some((actions, reply)) = entries.recv().await {
            index += 1;
            let _ = reply.send(applier.apply(actions, index).map(|()| index));
        }
    });
    (store, proposer, gate)
}

#[tokio::test]
async fn nothing_is_visible_before_the_entry_is_applied() {
    let (store, _proposer, gate) = store_with_log();
    let n = node("n");
    let id = n.id.clone();
    let writer = tokio::spawn({
        let store = store.clone();
        async move { store.update(|tx| tx.create(n)).await }
    });
    tokio::task::yield_now().await;
    assert!(
        store.read().get::<Node>(&id).is_none(),
        "a proposal is invisible until applied"
    );
    gate.send(true).unwrap();
    writer.await.unwrap().unwrap();
    let stored = store
        .read()
        .get::<Node>(&id)
        .cloned()
        .expect("visible once update returned");
    assert_eq!(stored.meta.as_ref().unwrap().version, 1);
}

#[tokio::test]
async fn racing_writers_of_one_version_cannot_both_win() {
    let (store, proposer, gate) = store_with_log();
    let s = service("web");
    gate.send(true).unwrap();
    store.update(|tx| tx.create(s.clone())).await.unwrap();
    let read = store.read().get::<Service>(&s.id).map(|s| (**s).clone()).unwrap();

    // Hold the applier back by proposing from tasks that all read version 1
    // before any of their entries is applied.
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let (store, mut mine) = (store.clone(), read.clone());
            tokio::spawn(async move {
                service_annotations(&mut mine)
                    .labels
                    .insert("writer".into(), i.to_string());
                store.update(|tx| tx.update(mine)).await
            })
        })
        .collect();
    let mut won = 0;
    for w in writers {
        match w.await.unwrap() {
            Ok(()) => won += 1,
            Err(Error::VersionConflict { given: 1, .. }) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(won, 1, "exactly one writer of version 1 wins");
    assert_eq!(proposer.proposed.lock().unwrap().len(), 9);
    let stored = store.read().get::<Service>(&s.id).cloned().unwrap();
    assert_eq!(
        stored.meta.as_ref().unwrap().version,
        2,
        "the winner's entry; the refused ones change nothing"
    );
}

#[tokio::test]
async fn batch_splits_into_bounded_proposals_and_rolls_back_failed_updates() {
    let (store, proposer, gate) = store_with_log();
    gate.send(true).unwrap();
    let mut batch = store.batch();
    for i in 0..450 {
        batch.update(|tx| tx.create(node(&format!("n{i}")))).await.unwrap();
    }
    // A failing update in the middle: its first change is rolled back.
    let err = batch
        .update(|tx| {
            tx.create(node("half-done"))?;
            tx.create(node("n449"))
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NameConflict { .. }), "{err}");
    batch.update(|tx| tx.create(node("last"))).await.unwrap();
    assert_eq!(batch.commit().await.unwrap(), 3);

    assert_eq!(*proposer.proposed.lock().unwrap(), vec![200, 200, 51]);
    let tx = store.read();
    assert_eq!(tx.count::<Node>(), 451);
    assert!(tx.get_by_name::<Node>("half-done").is_none());
    assert!(tx.get_by_name::<Node>("last").is_some());
}

#[tokio::test]
async fn a_failed_proposal_applies_nothing() {
    struct Refusing;
    impl Proposer for Refusing {
        fn propose(&self, _: Vec<StoreAction>) -> BoxFuture<'static, Result<u64>> {
            Box::pin(async { Err(Error::ProposalFailed("not the leader".into())) })
        }
    }
    let store = MemoryStore::builder().proposer(Arc::new(Refusing)).build();
    let err = store.update(|tx| tx.create(node("n"))).await.unwrap_err();
    assert_eq!(err, Error::ProposalFailed("not the leader".into()));
    assert_eq!(store.read().count::<Node>(), 0);
    // A transaction that changes nothing proposes nothing.
    store.update(|_| Ok(())).await.unwrap();
}

#[tokio::test]
async fn a_removal_carries_only_the_id_and_version_yet_watchers_get_the_whole_object() {
    use std::sync::OnceLock;
    use swarm_proto::v1::store_action::Target;
    use swarm_store::{Event, Filter};

    /// Applies at once, keeping what each proposal carried.
    #[derive(Default)]
    struct Recording {
        store: OnceLock<MemoryStore>,
        proposed: Mutex<Vec<StoreAction>>,
    }
    impl Proposer for Recording {
        fn propose(&self, actions: Vec<StoreAction>) -> BoxFuture<'static, Result<u64>> {
            let mut proposed = self.proposed.lock().unwrap();
            proposed.extend(actions.iter().cloned());
            let index = proposed.len() as u64;
            let result = self.store.get().expect("a store").apply(actions, index).map(|()| index);
            Box::pin(async move { result })
        }
    }
    let recording = Arc::new(Recording::default());
    let store = MemoryStore::builder().proposer(recording.clone()).build();
    let _ = recording.store.set(store.clone());

    let mut web = service("web");
    service_annotations(&mut web)
        .labels
        .insert("padding".into(), "x".repeat(10_000));
    store.update(|tx| tx.create(web.clone())).await.unwrap();
    let mut watcher = store.watch(Filter::all());
    store.update(|tx| tx.delete::<Service>(&web.id)).await.unwrap();

    let removal = recording.proposed.lock().unwrap().last().cloned().unwrap();
    let Some(Target::Service(carried)) = removal.target else {
        panic!("a service removal: {removal:?}");
    };
    assert_eq!(carried.id, web.id);
    assert_eq!(carried.meta.as_ref().map(|meta| meta.version), Some(1));
    assert!(carried.spec.is_none(), "nothing but the id and version: {carried:?}");
    assert!(prost::Message::encoded_len(&carried) < 100);

    let Event::Change(change) = watcher.recv().await.unwrap() else {
        panic!("a change");
    };
    let removed = change.old.as_ref().unwrap().downcast::<Service>().unwrap();
    assert_eq!(
        removed.spec.as_ref().unwrap().annotations.as_ref().unwrap().labels["padding"].len(),
        10_000,
        "the watcher gets the object as it was"
    );
}
