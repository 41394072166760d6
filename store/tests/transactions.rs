//! Write transactions: all-or-nothing, versions, conflicts, selectors.

mod common;

use common::{node, node_annotations, service, service_annotations, task};
use swarm_proto::v1::{Node, NodeRole, Service, Task, TaskState, TaskStatus};
use swarm_store::{By, Error, Kind, MemoryStore, Read};

#[tokio::test]
async fn create_then_read_by_id_and_case_insensitive_name() {
    let store = MemoryStore::new();
    let n = node("Worker-1");
    let id = n.id.clone();
    store.update(|tx| tx.create(n)).await.unwrap();

    store.view(|tx| {
        let stored = tx.get::<Node>(&id).expect("created node is readable");
        assert_eq!(stored.meta.as_ref().unwrap().version, 1, "version is the commit index");
        assert!(stored.meta.as_ref().unwrap().created_at.is_some());
        assert_eq!(tx.get_by_name::<Node>("worker-1").unwrap().id, id);
        assert_eq!(tx.get_by_name::<Node>("WORKER-1").unwrap().id, id);
        assert!(tx.get::<Service>(&id).is_none(), "kinds are separate tables");
        assert_eq!(tx.index(), 1);
    });
}

#[tokio::test]
async fn names_are_unique_per_kind_case_insensitively() {
    let store = MemoryStore::new();
    store.update(|tx| tx.create(service("web"))).await.unwrap();
    let err = store.update(|tx| tx.create(service("WEB"))).await.unwrap_err();
    assert!(
        matches!(err, Error::NameConflict { kind: Kind::Service, ref name, ref holder } if name == "WEB" && holder == "web"),
        "{err}"
    );
    assert_eq!(err.to_string(), r#"service name "WEB" is already in use (as "web")"#);
    // Another kind may use the name.
    store.update(|tx| tx.create(node("web"))).await.unwrap();
    // Renaming onto a taken name fails too.
    let api = service("api");
    store.update(|tx| tx.create(api.clone())).await.unwrap();
    let mut renamed = store.view(|tx| (**tx.get::<Service>(&api.id).unwrap()).clone());
    service_annotations(&mut renamed).name = "Web".into();
    let err = store.update(|tx| tx.update(renamed)).await.unwrap_err();
    assert!(matches!(err, Error::NameConflict { .. }), "{err}");
}

#[tokio::test]
async fn duplicate_id_and_empty_id_are_refused() {
    let store = MemoryStore::new();
    let n = node("a");
    store.update(|tx| tx.create(n.clone())).await.unwrap();
    let mut same_id = node("b");
    same_id.id = n.id.clone();
    let err = store.update(|tx| tx.create(same_id)).await.unwrap_err();
    assert_eq!(
        err,
        Error::AlreadyExists {
            kind: Kind::Node,
            id: n.id.clone()
        }
    );
    let mut no_id = node("c");
    no_id.id.clear();
    assert!(matches!(
        store.update(|tx| tx.create(no_id)).await,
        Err(Error::Invalid(_))
    ));
}

#[tokio::test]
async fn failed_transaction_leaves_no_trace() {
    let store = MemoryStore::new();
    store.update(|tx| tx.create(service("keep"))).await.unwrap();
    let mut watcher = store.watch(swarm_store::Filter::all());
    let index_before = store.read().index();

    let err = store
        .update(|tx| {
            tx.create(service("one"))?;
            tx.create(node("two"))?;
            tx.create(service("KEEP")) // name conflict: the whole transaction fails
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NameConflict { .. }));

    store.view(|tx| {
        assert_eq!(tx.count::<Service>(), 1);
        assert_eq!(tx.count::<Node>(), 0);
        assert!(tx.get_by_name::<Service>("one").is_none());
        assert_eq!(tx.index(), index_before);
    });
    assert_eq!(watcher.try_recv().unwrap(), None, "no event for a failed transaction");
}

#[tokio::test]
async fn stale_version_is_a_conflict_and_changes_nothing() {
    let store = MemoryStore::new();
    let n = node("n");
    let id = n.id.clone();
    store.update(|tx| tx.create(n)).await.unwrap();
    let read = store.view(|tx| (**tx.get::<Node>(&id).unwrap()).clone());

    let mut first = read.clone();
    first.role = NodeRole::Manager as i32;
    store.update(|tx| tx.update(first)).await.unwrap();

    let mut second = read.clone();
    node_annotations(&mut second).name = "other".into();
    let err = store.update(|tx| tx.update(second)).await.unwrap_err();
    assert_eq!(
        err,
        Error::VersionConflict {
            kind: Kind::Node,
            id: id.clone(),
            name: "n".into(),
            given: 1,
            current: 2
        }
    );
    assert_eq!(
        err.to_string(),
        format!("node \"n\" ({id}) was changed: the write was made on version 1, the store has version 2"),
        "named as the operator knows it"
    );

    store.view(|tx| {
        let stored = tx.get::<Node>(&id).unwrap();
        assert_eq!(stored.role, NodeRole::Manager as i32);
        assert_eq!(tx.get_by_name::<Node>("n").unwrap().id, id);
        assert!(tx.get_by_name::<Node>("other").is_none());
    });
}

#[tokio::test]
async fn transaction_reads_its_own_writes_and_folds_changes_per_object() {
    let store = MemoryStore::new();
    let mut watcher = store.watch(swarm_store::Filter::all().with_commits());
    let s = service("web");
    let sid = s.id.clone();
    let gone = node("gone");
    store
        .update(|tx| {
            tx.create(s)?;
            let mut again = (**tx.get::<Service>(&sid).unwrap()).clone();
            again.pending_delete = true;
            tx.update(again)?;
            tx.create(gone.clone())?;
            tx.delete::<Node>(&gone.id)?;
            assert!(tx.get::<Node>(&gone.id).is_none());
            assert_eq!(tx.len(), 1, "create+update is one create; create+delete is nothing");
            Ok(())
        })
        .await
        .unwrap();
    let swarm_store::Event::Change(change) = watcher.try_recv().unwrap().unwrap() else {
        panic!("expected a change")
    };
    assert_eq!(change.action, swarm_store::Action::Create);
    assert!(
        change
            .new
            .as_ref()
            .unwrap()
            .downcast::<Service>()
            .unwrap()
            .pending_delete
    );
    assert_eq!(
        watcher.try_recv().unwrap(),
        Some(swarm_store::Event::Commit { index: 1 })
    );
    assert_eq!(watcher.try_recv().unwrap(), None);
}

#[tokio::test]
async fn delete_of_missing_object_is_not_found() {
    let store = MemoryStore::new();
    let err = store.update(|tx| tx.delete::<Task>("nope")).await.unwrap_err();
    assert_eq!(
        err,
        Error::NotFound {
            kind: Kind::Task,
            id: "nope".into()
        }
    );
}

#[tokio::test]
async fn selectors_find_what_they_name() {
    let store = MemoryStore::new();
    let (web, api) = (service("web"), service("api"));
    let mut tasks = Vec::new();
    for slot in 1..=3 {
        tasks.push(task(&web.id, slot));
    }
    tasks.push(task(&api.id, 1));
    let mut labelled = node("labelled");
    node_annotations(&mut labelled).labels.insert("zone".into(), "a".into());
    labelled.role = NodeRole::Manager as i32;
    tasks[0].node_id = labelled.id.clone();
    tasks[1].status = Some(TaskStatus {
        state: TaskState::Running as i32,
        ..Default::default()
    });

    let (w, a, n, t) = (web.clone(), api.clone(), labelled.clone(), tasks.clone());
    store
        .update(move |tx| {
            tx.create(w)?;
            tx.create(a)?;
            tx.create(n)?;
            t.into_iter().try_for_each(|t| tx.create(t))
        })
        .await
        .unwrap();

    let tx = store.read();
    let ids = |found: Vec<&std::sync::Arc<Task>>| {
        let mut ids: Vec<String> = found.into_iter().map(|t| t.id.clone()).collect();
        ids.sort();
        ids
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        ids(tx.find::<Task>(By::ServiceId(&web.id)).unwrap()),
        sorted(tasks[..3].iter().map(|t| t.id.clone()).collect())
    );
    assert_eq!(
        ids(tx.find::<Task>(By::Slot(&web.id, 2)).unwrap()),
        vec![tasks[1].id.clone()]
    );
    assert_eq!(
        ids(tx.find::<Task>(By::NodeId(&labelled.id)).unwrap()),
        vec![tasks[0].id.clone()]
    );
    assert_eq!(
        ids(tx.find::<Task>(By::TaskState(TaskState::Running)).unwrap()),
        vec![tasks[1].id.clone()]
    );
    assert_eq!(tx.find::<Task>(By::TaskState(TaskState::New)).unwrap().len(), 3);
    assert_eq!(tx.find::<Task>(By::DesiredState(TaskState::Running)).unwrap().len(), 4);
    assert_eq!(tx.find::<Task>(By::All).unwrap().len(), 4);
    assert_eq!(
        tx.find::<Task>(By::IdPrefix(&tasks[3].id[..10])).unwrap()[0].id,
        tasks[3].id
    );
    assert_eq!(tx.find::<Service>(By::NamePrefix("W")).unwrap()[0].id, web.id);
    assert_eq!(tx.find::<Service>(By::Name("API")).unwrap()[0].id, api.id);
    assert_eq!(tx.find::<Node>(By::LabelKey("zone")).unwrap().len(), 1);
    assert_eq!(tx.find::<Node>(By::Label("zone", "a")).unwrap().len(), 1);
    assert_eq!(tx.find::<Node>(By::Label("zone", "b")).unwrap().len(), 0);
    assert_eq!(tx.find::<Node>(By::Role(NodeRole::Manager)).unwrap().len(), 1);
    assert_eq!(tx.find::<Node>(By::Role(NodeRole::Worker)).unwrap().len(), 0);
    let err = tx.find::<Task>(By::Role(NodeRole::Manager)).unwrap_err();
    assert!(matches!(err, Error::Invalid(ref m) if m.contains("task")), "{err}");
    assert!(tx.find::<Node>(By::ServiceId(&web.id)).is_err());
}

#[tokio::test]
async fn apply_refuses_a_stale_entry_whole_and_still_advances() {
    let store = MemoryStore::new();
    let s = service("web");
    store.update(|tx| tx.create(s.clone())).await.unwrap();
    let stale = store.view(|tx| (**tx.get::<Service>(&s.id).unwrap()).clone());
    store.update(|tx| tx.update(stale.clone())).await.unwrap(); // version 2 now

    use swarm_proto::v1::{StoreAction, store_action};
    let fresh = service("fresh");
    let entry = vec![
        StoreAction {
            kind: store_action::Kind::Create as i32,
            target: Some(store_action::Target::Service(fresh.clone())),
        },
        StoreAction {
            kind: store_action::Kind::Update as i32,
            target: Some(store_action::Target::Service(stale)),
        },
    ];
    let err = store.apply(entry, 3).unwrap_err();
    assert!(
        matches!(
            err,
            Error::VersionConflict {
                given: 1,
                current: 2,
                ..
            }
        ),
        "{err}"
    );
    store.view(|tx| {
        assert!(
            tx.get::<Service>(&fresh.id).is_none(),
            "the entry's create is not applied either"
        );
        assert_eq!(tx.index(), 3);
    });
    // Re-applying an index already applied is a no-op.
    store
        .apply(
            vec![StoreAction {
                kind: store_action::Kind::Create as i32,
                target: Some(store_action::Target::Service(fresh.clone())),
            }],
            3,
        )
        .unwrap();
    assert!(store.read().get::<Service>(&fresh.id).is_none());
    // A malformed action is refused.
    assert!(matches!(
        store.apply(vec![StoreAction { kind: 9, target: None }], 4),
        Err(Error::Invalid(_))
    ));
}

#[tokio::test]
async fn a_task_decoded_from_the_log_shares_its_service_spec() {
    use prost::Message;
    use swarm_proto::v1::{StoreAction, StoreActions, store_action};
    let store = MemoryStore::new();
    let web = service("web");
    store.update(|tx| tx.create(web.clone())).await.unwrap();
    // As a follower gets it: encoded, then decoded into fresh allocations.
    let entry = StoreActions {
        actions: vec![StoreAction {
            kind: store_action::Kind::Create as i32,
            target: Some(store_action::Target::Task(common::task_of(&web, 1))),
        }],
    };
    let decoded = StoreActions::decode(&entry.encode_to_vec()[..]).unwrap();
    store.apply(decoded.actions, 2).unwrap();
    let tx = store.read();
    let stored_service = tx.get::<Service>(&web.id).unwrap();
    let task = tx.find::<Task>(By::ServiceId(&web.id)).unwrap()[0];
    assert!(swarm_proto::Shared::ptr_eq(
        task.spec.as_ref().unwrap(),
        stored_service.spec.as_ref().unwrap().task.as_ref().unwrap()
    ));
}

#[tokio::test]
async fn a_local_commit_after_another_writer_is_checked_again() {
    let store = MemoryStore::new();
    let shared = node("shared");
    store.update(|tx| tx.create(shared.clone())).await.unwrap();

    // A batch reads the state, then another writer commits before the
    // batch does: the batch's changes are checked again and land on top.
    let mut batch = store.batch();
    let fresh = node("fresh");
    batch.update(|tx| tx.create(fresh.clone())).await.unwrap();
    store.update(|tx| tx.create(node("meanwhile"))).await.unwrap();
    batch.commit().await.unwrap();
    store.view(|tx| {
        assert_eq!(tx.count::<Node>(), 3);
        assert_eq!(tx.get::<Node>(&fresh.id).unwrap().meta.as_ref().unwrap().version, 3);
    });

    // The same with a conflict: the batch's update of a node another
    // writer changed in between is refused whole.
    let mut batch = store.batch();
    let read = store.view(|tx| (**tx.get::<Node>(&shared.id).unwrap()).clone());
    let late = node("late");
    batch
        .update(|tx| {
            tx.create(late.clone())?;
            let mut mine = read.clone();
            mine.role = NodeRole::Manager as i32;
            tx.update(mine)
        })
        .await
        .unwrap();
    let mut theirs = read.clone();
    node_annotations(&mut theirs).name = "renamed".into();
    store.update(|tx| tx.update(theirs)).await.unwrap();
    let err = batch.commit().await.unwrap_err();
    assert!(matches!(err, Error::VersionConflict { .. }), "{err}");
    store.view(|tx| {
        assert!(
            tx.get::<Node>(&late.id).is_none(),
            "nothing of the refused commit lands"
        );
        assert_eq!(tx.get::<Node>(&shared.id).unwrap().role, NodeRole::Worker as i32);
        assert_eq!(tx.index(), 4, "a refused local commit takes no index");
    });
}

#[tokio::test]
async fn a_failed_batch_update_undoes_what_it_folded_into_earlier_changes() {
    // Locally the next state is the transaction's own; through apply it is
    // built from the proposed changes: both must lose the failed update.
    for store in [MemoryStore::new(), common::store_through_apply()] {
        failed_batch_update_is_undone(store).await;
    }
}

async fn failed_batch_update_is_undone(store: MemoryStore) {
    let existing = node("existing");
    store.update(|tx| tx.create(existing.clone())).await.unwrap();

    let mut batch = store.batch();
    let fresh = node("fresh");
    batch.update(|tx| tx.create(fresh.clone())).await.unwrap();
    let err = batch
        .update(|tx| {
            // Folds into the batch's create of `fresh`, adds an update of
            // `existing` and a create, then fails: all three must go.
            let mut f = (**tx.get::<Node>(&fresh.id).unwrap()).clone();
            f.role = NodeRole::Manager as i32;
            tx.update(f)?;
            let mut e = (**tx.get::<Node>(&existing.id).unwrap()).clone();
            e.role = NodeRole::Manager as i32;
            tx.update(e)?;
            tx.create(node("doomed"))?;
            Err::<(), _>(Error::Invalid("changed my mind".into()))
        })
        .await
        .unwrap_err();
    assert_eq!(err, Error::Invalid("changed my mind".into()));
    // The batch goes on from where the failed update found it.
    batch
        .update(|tx| {
            assert_eq!(tx.get::<Node>(&fresh.id).unwrap().role, NodeRole::Worker as i32);
            assert!(tx.get_by_name::<Node>("doomed").is_none());
            assert_eq!(tx.len(), 1);
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(batch.commit().await.unwrap(), 1);

    store.view(|tx| {
        assert_eq!(tx.count::<Node>(), 2);
        assert_eq!(tx.get::<Node>(&fresh.id).unwrap().role, NodeRole::Worker as i32);
        assert_eq!(tx.get::<Node>(&existing.id).unwrap().role, NodeRole::Worker as i32);
        assert_eq!(tx.get::<Node>(&existing.id).unwrap().meta.as_ref().unwrap().version, 1);
    });
}

#[tokio::test]
async fn reads_after_a_first_update_or_delete_see_it() {
    // A transaction's first write is only recorded; the state its later
    // reads and writes see is built from it then. Both commit paths.
    for store in [MemoryStore::new(), common::store_through_apply()] {
        let (a, b) = (node("a"), node("b"));
        store.update(|tx| tx.create(a.clone())).await.unwrap();
        store.update(|tx| tx.create(b.clone())).await.unwrap();
        let b_version = store.view(|tx| tx.get::<Node>(&b.id).unwrap().meta.as_ref().unwrap().version);
        store
            .update(|tx| {
                let mut renamed = (**tx.get::<Node>(&a.id).unwrap()).clone();
                node_annotations(&mut renamed).name = "renamed".into();
                tx.update(renamed)?;
                assert!(tx.get_by_name::<Node>("a").is_none(), "the old name is free");
                assert_eq!(tx.get_by_name::<Node>("RENAMED").unwrap().id, a.id);
                // The freed name can be taken in the same transaction.
                let mut taker = b.clone();
                node_annotations(&mut taker).name = "a".into();
                taker.meta.get_or_insert_default().version = b_version;
                tx.update(taker)
            })
            .await
            .unwrap();
        store
            .update(|tx| {
                tx.delete::<Node>(&a.id)?;
                assert!(tx.get::<Node>(&a.id).is_none());
                assert!(tx.get_by_name::<Node>("renamed").is_none());
                assert_eq!(tx.count::<Node>(), 1);
                // Its name is free again within the transaction.
                let mut reborn = node("renamed");
                reborn.id = "0000000000000000000000001".into();
                tx.create(reborn)
            })
            .await
            .unwrap();
        store.view(|tx| {
            assert_eq!(tx.get_by_name::<Node>("a").unwrap().id, b.id);
            assert_eq!(
                tx.get_by_name::<Node>("renamed").unwrap().id,
                "0000000000000000000000001"
            );
            assert_eq!(tx.count::<Node>(), 2);
        });
        store.verify_indexes().unwrap();
    }
}

#[tokio::test]
async fn a_run_of_entries_applies_each_on_its_own_and_readers_see_the_end() {
    use swarm_proto::v1::{StoreAction, store_action};
    let create = |s: &Service| StoreAction {
        kind: store_action::Kind::Create as i32,
        target: Some(store_action::Target::Service(s.clone())),
    };
    let store = MemoryStore::new();
    let mut watcher = store.watch(swarm_store::Filter::all().with_commits());
    let (a, b, c, d) = (service("a"), service("b"), service("c"), service("d"));
    let mut a_again = service("A");
    a_again.id = "0000000000000000000000002".into();
    let results = store.apply_all(vec![
        (1, vec![create(&a)]),
        // Takes a's name (case-insensitively): refused whole, with the
        // create of b beside it.
        (2, vec![create(&b), create(&a_again)]),
        (3, vec![create(&c)]),
        (4, vec![StoreAction { kind: 9, target: None }]),
        (5, vec![create(&d)]),
    ]);
    assert!(
        results[0].is_ok() && results[2].is_ok() && results[4].is_ok(),
        "{results:?}"
    );
    assert!(matches!(results[1], Err(Error::NameConflict { .. })), "{results:?}");
    assert!(matches!(results[3], Err(Error::Invalid(_))), "{results:?}");
    store.view(|tx| {
        assert_eq!(tx.index(), 5, "refused entries take their index too");
        let names: Vec<_> = tx.list::<Service>().iter().map(|s| s.id.clone()).collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(
            tx.get::<Service>(&b.id).is_none(),
            "the refused entry's other change is not applied"
        );
        assert_eq!(tx.get::<Service>(&c.id).unwrap().meta.as_ref().unwrap().version, 3);
    });
    store.verify_indexes().unwrap();
    // One commit per applied entry, in order, each after its own change.
    let mut commits = Vec::new();
    while let Some(event) = watcher.try_recv().unwrap() {
        if let swarm_store::Event::Commit { index } = event {
            commits.push(index);
        }
    }
    assert_eq!(commits, [1, 3, 5]);
}

#[tokio::test]
async fn written_is_the_object_as_committed_but_for_the_index_the_commit_returns() {
    let store = MemoryStore::new();
    store.update(|tx| tx.create(node("filler"))).await.unwrap();
    let (web, db) = (service("web"), service("db"));
    let (written, index) = store
        .update_with_index(|tx| {
            tx.create(web.clone())?;
            let mut renamed = web.clone();
            service_annotations(&mut renamed).name = "web-2".into();
            renamed.meta = tx.get::<Service>(&web.id).unwrap().meta;
            tx.update(renamed)?;
            tx.create(db.clone())?;
            tx.delete::<Service>(&db.id)?;
            Ok::<_, Error>((tx.written::<Service>(&web.id), tx.written::<Service>(&db.id)))
        })
        .await
        .unwrap();
    assert_eq!(index, 2);
    let mut web_written = written.0.expect("created, then updated: written");
    assert!(written.1.is_none(), "created and removed again: not written");
    web_written.meta.as_mut().unwrap().version = index;
    let stored = store.view(|tx| Service::clone(tx.get::<Service>(&web.id).unwrap()));
    assert_eq!(web_written, stored);

    // A transaction that writes nothing is at the current index.
    let ((), index) = store.update_with_index(|_| Ok::<_, Error>(())).await.unwrap();
    assert_eq!(index, 2);
    // Another kind with that id, or an id never written: nothing.
    store
        .update(|tx| {
            assert!(tx.written::<Node>(&web.id).is_none());
            assert!(tx.written::<Service>("not-an-id").is_none());
            Ok(())
        })
        .await
        .unwrap();
}
