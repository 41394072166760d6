//! The watch queue: order, filters, cut-off of slow watchers, and
//! `view_and_watch` with no gap.

mod common;

use std::sync::Arc;
use std::thread;

use common::{node, service, task};
use swarm_proto::v1::{Node, Service, Task};
use swarm_store::{Action, Error, Event, Filter, Kind, MemoryStore, Read};

fn change(event: Event) -> Arc<swarm_store::Change> {
    match event {
        Event::Change(c) => c,
        other => panic!("expected a change, got {other:?}"),
    }
}

#[tokio::test]
async fn events_carry_old_and_new_in_commit_order_with_markers() {
    let store = MemoryStore::new();
    let mut w = store.watch(Filter::all().with_commits());
    let s = service("web");
    store.update(|tx| tx.create(s.clone())).await.unwrap();
    let read = store.view(|tx| (**tx.get::<Service>(&s.id).unwrap()).clone());
    let mut changed = read.clone();
    changed.pending_delete = true;
    store.update(|tx| tx.update(changed)).await.unwrap();
    store.update(|tx| tx.delete::<Service>(&s.id)).await.unwrap();

    let c = change(w.recv().await.unwrap());
    assert_eq!((c.action, c.kind()), (Action::Create, Kind::Service));
    assert!(c.old.is_none());
    assert_eq!(c.new.as_ref().unwrap().version(), 1);
    assert_eq!(w.recv().await.unwrap(), Event::Commit { index: 1 });

    let c = change(w.recv().await.unwrap());
    assert_eq!(c.action, Action::Update);
    assert_eq!(c.old.as_ref().unwrap().version(), 1);
    assert!(!c.old.as_ref().unwrap().downcast::<Service>().unwrap().pending_delete);
    assert!(c.new.as_ref().unwrap().downcast::<Service>().unwrap().pending_delete);
    assert_eq!(w.recv().await.unwrap(), Event::Commit { index: 2 });

    let c = change(w.recv().await.unwrap());
    assert_eq!(c.action, Action::Remove);
    assert!(c.new.is_none());
    assert_eq!(c.object().id(), s.id);
    assert_eq!(w.recv().await.unwrap(), Event::Commit { index: 3 });
    assert_eq!(w.try_recv().unwrap(), None);
}

/// A watcher with markers that wants none of many commits still hears,
/// every `PROGRESS_EVERY` of them, how far the store has come: what it
/// resumes after must stay within what the store keeps.
#[tokio::test]
async fn a_narrow_watcher_gets_a_marker_every_so_many_commits_it_wanted_nothing_of() {
    use swarm_store::PROGRESS_EVERY;
    let store = MemoryStore::builder().watch_buffer(100_000).build();
    let mut narrow = store.watch(Filter::all().kind(Kind::Task).with_commits());
    let commits = 2 * PROGRESS_EVERY + 10;
    for n in 0..commits {
        store.update(|tx| tx.create(node(&format!("n{n}")))).await.unwrap();
    }
    let mut markers = Vec::new();
    while let Some(event) = narrow.try_recv().unwrap() {
        match event {
            Event::Commit { index } => markers.push(index),
            Event::Change(change) => panic!("a change it did not want: {change:?}"),
        }
    }
    assert_eq!(markers, [PROGRESS_EVERY, 2 * PROGRESS_EVERY]);
    // A commit it wants is marked as ever, and counts as progress.
    store
        .update(|tx| tx.create(task(&swarm_store::id::generate(), 1)))
        .await
        .unwrap();
    assert!(matches!(narrow.try_recv().unwrap(), Some(Event::Change(_))));
    assert_eq!(narrow.try_recv().unwrap(), Some(Event::Commit { index: commits + 1 }));
    assert_eq!(narrow.try_recv().unwrap(), None);
    // Without markers, nothing.
    let mut unmarked = store.watch(Filter::all().kind(Kind::Task));
    for n in 0..=PROGRESS_EVERY {
        store.update(|tx| tx.create(node(&format!("m{n}")))).await.unwrap();
    }
    assert_eq!(unmarked.try_recv().unwrap(), None);
}

/// Commits that the watcher does not want fill what the store keeps for
/// resumes long before 100 of them go by: it is told how far the store
/// came each time a quarter of that went by (here, 10 changes), so that the
/// point it resumes after is always kept.
#[tokio::test]
async fn a_narrow_watcher_gets_a_marker_each_time_a_quarter_of_what_the_store_keeps_goes_by() {
    let store = MemoryStore::builder().watch_history(40, usize::MAX).build();
    let mut narrow = store.watch(Filter::all().kind(Kind::Task).with_commits());
    let mut markers = Vec::new();
    for n in 0..25 {
        store.update(|tx| tx.create(node(&format!("n{n}")))).await.unwrap();
        markers.extend(std::iter::from_fn(|| narrow.try_recv().unwrap()));
    }
    assert_eq!(markers, [Event::Commit { index: 10 }, Event::Commit { index: 20 }]);
    // Each one still resumable.
    assert!(store.watch_after(Filter::all(), 10).is_ok());
}

/// A watcher with markers that reads none while the store records half of
/// what it keeps is cut off while the last marker it read is still a point
/// it can resume after, rather than once its buffer is full, by when the
/// store may have let go of what came after it.
#[tokio::test]
async fn a_watcher_that_reads_no_marker_for_half_of_what_the_store_keeps_is_cut_off_where_it_can_resume() {
    let store = MemoryStore::builder().watch_history(40, usize::MAX).build();
    let filter = || Filter::all().kind(Kind::Task).with_commits();
    let mut narrow = store.watch(filter());
    for n in 0..31 {
        store.update(|tx| tx.create(node(&format!("n{n}")))).await.unwrap();
        // It reads the first marker, then nothing.
        if n == 9 {
            assert_eq!(narrow.try_recv().unwrap(), Some(Event::Commit { index: 10 }));
        }
    }
    // Cut off at commit 31, 20 changes after the marker it read, having
    // queued the markers before; and that marker is one to resume after.
    assert_eq!(narrow.recv().await.unwrap(), Event::Commit { index: 20 });
    assert_eq!(narrow.recv().await.unwrap(), Event::Commit { index: 30 });
    assert_eq!(narrow.recv().await.unwrap_err(), Error::FellBehind);
    let mut resumed = store.watch_after(filter(), 10).expect("resumable after what it read");
    // A narrow watcher that keeps reading is never cut off.
    for n in 31..200 {
        store.update(|tx| tx.create(node(&format!("n{n}")))).await.unwrap();
        while let Some(event) = resumed.try_recv().unwrap() {
            assert!(matches!(event, Event::Commit { .. }), "{event:?}");
        }
    }
}

/// Commits applied in one run reach the watchers together, their readers
/// unable to read between them: however much the run holds, a watcher
/// that had read all before it is not cut off, and hears where it got.
#[test]
fn a_run_of_commits_larger_than_half_of_what_the_store_keeps_cuts_off_no_watcher_that_kept_up() {
    use swarm_proto::v1::{StoreAction, store_action};
    let store = MemoryStore::builder().watch_history(40, usize::MAX).build();
    let mut narrow = store.watch(Filter::all().kind(Kind::Task).with_commits());
    let create = |n: u64| {
        let action = StoreAction {
            kind: store_action::Kind::Create.into(),
            target: Some(store_action::Target::Node(node(&format!("n{n}")))),
        };
        (n, vec![action])
    };
    // 30 commits in one run: three quarters of what the store keeps.
    let results = store.apply_all((1..=30).map(create).collect());
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let markers: Vec<Event> = std::iter::from_fn(|| narrow.try_recv().unwrap()).collect();
    let marked = |indexes: &[u64]| indexes.iter().map(|&index| Event::Commit { index }).collect::<Vec<_>>();
    assert_eq!(markers, marked(&[10, 20, 30]));
    assert_eq!(store.apply_all(vec![create(31)]), vec![Ok(())]);
    assert_eq!(narrow.try_recv().unwrap(), None, "read all: not cut off");
}

/// A snapshot of the store tells every watcher with markers how far the
/// store came: after a restart, what a store behind Raft keeps for resumes
/// starts at its last snapshot, and a narrow watcher's last marker must not
/// be older. An entry refused at apply moves the watchers on too.
#[test]
fn a_snapshot_and_a_refused_entry_mark_every_watcher_with_markers() {
    use swarm_proto::v1::{StoreAction, store_action};
    let store = with_history();
    let mut narrow = store.watch(Filter::all().kind(Kind::Task).with_commits());
    let mut unmarked = store.watch(Filter::all().kind(Kind::Task));
    for n in 0..5 {
        futures::executor::block_on(store.update(|tx| tx.create(node(&format!("n{n}"))))).unwrap();
    }
    assert_eq!(narrow.try_recv().unwrap(), None);
    let _write = store.snapshot_writer();
    assert_eq!(narrow.try_recv().unwrap(), Some(Event::Commit { index: 5 }));
    let _write = store.snapshot_writer();
    assert_eq!(narrow.try_recv().unwrap(), None, "once");
    assert_eq!(unmarked.try_recv().unwrap(), None, "only those that asked for markers");

    // An update of a node that is not there, refused at index 6.
    let refused = StoreAction {
        kind: store_action::Kind::Update.into(),
        target: Some(store_action::Target::Node(node("ghost"))),
    };
    assert!(store.apply_all(vec![(6, vec![refused])])[0].is_err());
    assert_eq!(narrow.caught_up_to(), Some(6));
    assert!(store.watch_after(Filter::all(), 6).is_ok());
}

/// A watcher that resumes with markers is told, as it catches up with the
/// live commits, the last one it came to: commits it did not want moved
/// its resume point on.
#[test]
fn a_resumed_watcher_is_marked_as_it_catches_up() {
    let store = with_history();
    for n in 0..5 {
        futures::executor::block_on(store.update(|tx| tx.create(node(&format!("n{n}"))))).unwrap();
    }
    let mut tasks = store
        .watch_after(Filter::all().kind(Kind::Task).with_commits(), 2)
        .unwrap();
    assert_eq!(tasks.try_recv().unwrap(), Some(Event::Commit { index: 5 }));
    assert_eq!(tasks.try_recv().unwrap(), None);
    assert_eq!(tasks.caught_up_to(), Some(5));
    // Resumed at the last commit: nothing to say.
    let mut at_end = store
        .watch_after(Filter::all().kind(Kind::Task).with_commits(), 5)
        .unwrap();
    assert_eq!(at_end.try_recv().unwrap(), None);
    // Nor without markers.
    let mut unmarked = store.watch_after(Filter::all().kind(Kind::Task), 2).unwrap();
    assert_eq!(unmarked.try_recv().unwrap(), None);
}

/// Where a watcher may resume after: the last commit, once it has read
/// all it wanted, even if it wanted none of the last ones.
#[tokio::test]
async fn a_watcher_that_read_all_it_wanted_is_caught_up_to_the_last_commit() {
    let store = MemoryStore::new();
    store.update(|tx| tx.create(node("before"))).await.unwrap();
    let mut tasks = store.watch(Filter::all().kind(Kind::Task).with_commits());
    assert_eq!(tasks.caught_up_to(), Some(1), "from where it started");
    for n in 0..5 {
        store.update(|tx| tx.create(node(&format!("n{n}")))).await.unwrap();
    }
    assert_eq!(tasks.caught_up_to(), Some(6), "none of those wanted");
    store
        .update(|tx| tx.create(task(&swarm_store::id::generate(), 1)))
        .await
        .unwrap();
    assert_eq!(tasks.caught_up_to(), None, "a change to read first");
    assert!(matches!(tasks.recv().await.unwrap(), Event::Change(_)));
    assert_eq!(tasks.caught_up_to(), None, "its marker to read first");
    assert_eq!(tasks.recv().await.unwrap(), Event::Commit { index: 7 });
    assert_eq!(tasks.caught_up_to(), Some(7));
}

#[tokio::test]
async fn filters_select_kind_action_and_predicate() {
    let store = MemoryStore::new();
    let web = service("web");
    let api = service("api");
    let mut tasks_of_web = store.watch(Filter::tasks_of_service(web.id.clone()));
    let mut node_creates = store.watch(Filter::all().kind(Kind::Node).action(Action::Create));
    let mut nodes_or_services = store.watch(Filter::all().kind(Kind::Node).kind(Kind::Service));

    let (w, a) = (web.clone(), api.clone());
    let n = node("n1");
    let nid = n.id.clone();
    store
        .update(move |tx| {
            tx.create(w.clone())?;
            tx.create(a.clone())?;
            tx.create(n)?;
            tx.create(task(&w.id, 1))?;
            tx.create(task(&a.id, 1))?;
            tx.create(task(&w.id, 2))
        })
        .await
        .unwrap();
    store.update(|tx| tx.delete::<Node>(&nid)).await.unwrap();

    for _ in 0..2 {
        let c = change(tasks_of_web.try_recv().unwrap().expect("a task of web"));
        assert_eq!(c.new.as_ref().unwrap().downcast::<Task>().unwrap().service_id, web.id);
    }
    assert_eq!(tasks_of_web.try_recv().unwrap(), None, "no commit markers unless asked");

    assert_eq!(change(node_creates.try_recv().unwrap().unwrap()).action, Action::Create);
    assert_eq!(node_creates.try_recv().unwrap(), None, "the remove is filtered out");

    let kinds: Vec<Kind> = std::iter::from_fn(|| nodes_or_services.try_recv().unwrap())
        .map(|e| change(e).kind())
        .collect();
    assert_eq!(kinds, vec![Kind::Service, Kind::Service, Kind::Node, Kind::Node]);
}

#[test]
fn an_event_larger_than_the_byte_bound_is_taken_whole_with_its_commit_marker() {
    let store = MemoryStore::builder().watch_buffer_bytes(10).build();
    let mut big = service("big");
    common::service_annotations(&mut big)
        .labels
        .insert("blob".into(), "x".repeat(1_000));
    futures::executor::block_on(store.update(|tx| tx.create(big.clone()))).unwrap();
    let mut watcher = store.watch(Filter::all().with_commits());
    big = store.view(|tx| (**tx.get::<Service>(&big.id).unwrap()).clone());
    big.pending_delete = true;
    futures::executor::block_on(store.update(|tx| tx.update(big))).unwrap();
    assert!(matches!(watcher.try_recv(), Ok(Some(Event::Change(_)))));
    assert!(matches!(watcher.try_recv(), Ok(Some(Event::Commit { .. }))));
}

#[test]
fn a_watcher_is_cut_off_by_the_bytes_it_leaves_unread_and_reading_frees_them() {
    let store = MemoryStore::builder().watch_buffer_bytes(10_000).build();
    let mut idle = store.watch(Filter::all());
    let mut reading = store.watch(Filter::all());
    let mut big = service("big");
    futures::executor::block_on(store.update(|tx| tx.create(big.clone()))).unwrap();
    assert!(matches!(reading.try_recv(), Ok(Some(Event::Change(_)))));
    for i in 0..20 {
        // Each update holds an old and a new version: the first, of a
        // version without the 3 KB label and one with it, and the next,
        // 6 KB each: with the create, three fit in the idle watcher's
        // 10,000 bytes.
        big = store.view(|tx| (**tx.get::<Service>(&big.id).unwrap()).clone());
        common::service_annotations(&mut big)
            .labels
            .insert("blob".into(), format!("{i}{}", "x".repeat(3_000)));
        futures::executor::block_on(store.update(|tx| tx.update(big.clone()))).unwrap();
        assert!(
            matches!(reading.try_recv(), Ok(Some(Event::Change(_)))),
            "a watcher that reads is never cut off, create {i}"
        );
    }
    let mut delivered = 0;
    let err = loop {
        match idle.try_recv() {
            Ok(Some(_)) => delivered += 1,
            Ok(None) => panic!("the idle watcher should have been cut off"),
            Err(e) => break e,
        }
    };
    assert_eq!(
        delivered,
        1 + 2,
        "the create, the updates that fit in its bytes, then the cut-off"
    );
    assert!(matches!(err, Error::FellBehind), "{err}");
}

#[test]
fn slow_watcher_is_cut_off_while_fast_one_gets_everything_in_order() {
    const BUFFER: usize = 16;
    const WRITES: u64 = 500;
    let store = MemoryStore::builder().watch_buffer(BUFFER).build();
    let mut slow = store.watch(Filter::all());
    let mut fast = store.watch(Filter::all().with_commits());

    // The fast watcher keeps up: it acknowledges each commit, and the writer
    // waits for that before the next one. The slow one never reads.
    let (ack, acked) = std::sync::mpsc::channel();
    let reader = thread::spawn(move || {
        let mut indexes = Vec::new();
        loop {
            match fast.blocking_recv() {
                Ok(Event::Commit { index }) => {
                    indexes.push(index);
                    ack.send(index).unwrap();
                    if index == WRITES {
                        return (indexes, fast);
                    }
                }
                Ok(Event::Change(_)) => {}
                Err(e) => panic!("the fast watcher must not be cut off: {e}"),
            }
        }
    });
    // The writer must never block on the slow watcher: if it did, this loop
    // would hang once the slow buffer is full.
    for i in 0..WRITES {
        futures::executor::block_on(store.update(|tx| tx.create(node(&format!("n{i}"))))).unwrap();
        assert_eq!(acked.recv().unwrap(), i + 1);
    }
    let (indexes, _fast) = reader.join().unwrap();
    assert_eq!(indexes, (1..=WRITES).collect::<Vec<_>>(), "every commit, in order");

    // The slow watcher gets what fit in its buffer, then the cut-off.
    let mut delivered = 0;
    let err = loop {
        match slow.try_recv() {
            Ok(Some(_)) => delivered += 1,
            Ok(None) => panic!("the slow watcher should have been closed"),
            Err(e) => break e,
        }
    };
    assert_eq!(delivered, BUFFER);
    assert!(matches!(err, Error::FellBehind), "{err}");
    assert_eq!(store.watcher_count(), 1, "the fast one stays, the slow one is gone");
}

#[test]
fn view_and_watch_has_no_gap_and_no_overlap_under_concurrent_writes() {
    const WRITES: u64 = 2_000;
    let store = MemoryStore::new();
    let writer = {
        let store = store.clone();
        thread::spawn(move || {
            for i in 0..WRITES {
                futures::executor::block_on(store.update(|tx| tx.create(node(&format!("n{i}"))))).unwrap();
            }
        })
    };
    let mut checked = 0;
    while !writer.is_finished() || checked == 0 {
        let (snapshot, mut watcher) = store.view_and_watch(Filter::all().with_commits());
        let start = snapshot.index();
        assert_eq!(snapshot.count::<Node>() as u64, start, "one node per commit");
        // Follow the stream for a while: it must pick up at start + 1 and
        // hold every commit once, each adding a node the snapshot lacks.
        let mut expected = start + 1;
        while expected <= WRITES.min(start + 200) {
            match watcher.blocking_recv().unwrap() {
                Event::Change(c) => assert!(snapshot.get::<Node>(c.object().id()).is_none(), "event seen twice"),
                Event::Commit { index } => {
                    assert_eq!(index, expected, "gap or reorder after the snapshot at {start}");
                    expected += 1;
                }
            }
        }
        checked += 1;
    }
    writer.join().unwrap();
    assert!(checked > 0);
}

#[tokio::test]
async fn restore_closes_watchers() {
    let store = MemoryStore::new();
    store.update(|tx| tx.create(node("a"))).await.unwrap();
    let bytes = store.snapshot();
    let mut w = store.watch(Filter::all());
    store.restore(&bytes).unwrap();
    let err = w.recv().await.unwrap_err();
    assert_eq!(err, Error::Restored);
}

#[tokio::test]
async fn dropping_the_store_ends_watchers() {
    let store = MemoryStore::new();
    let mut w = store.watch(Filter::all());
    drop(store);
    assert!(matches!(w.recv().await, Err(Error::Closed(_))));
}

#[tokio::test]
async fn a_dropped_watcher_is_forgotten_at_the_next_commit_even_if_it_wants_none_of_it() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let store = MemoryStore::new();
    let asked = Arc::new(AtomicUsize::new(0));
    let counted = asked.clone();
    // Asked of every change, it wants none.
    let wants_nothing = store.watch(Filter::all().matching(move |_| {
        counted.fetch_add(1, Ordering::Relaxed);
        false
    }));
    store.update(|tx| tx.create(node("a"))).await.unwrap();
    let before = asked.load(Ordering::Relaxed);
    assert_eq!(before, 1);
    drop(wants_nothing);
    for name in ["b", "c"] {
        store.update(|tx| tx.create(node(name))).await.unwrap();
    }
    assert_eq!(
        asked.load(Ordering::Relaxed),
        before,
        "the filter of a dropped watcher is run no more"
    );
    assert_eq!(store.watcher_count(), 0);
}

/// A store that keeps enough changes for watchers to resume.
fn with_history() -> MemoryStore {
    MemoryStore::builder().watch_history(10_000, 64 << 20).build()
}

#[test]
fn with_no_history_kept_a_watch_resumes_only_after_the_last_commit() {
    let store = MemoryStore::new();
    futures::executor::block_on(store.update(|tx| tx.create(node("a")))).unwrap();
    assert_eq!(
        store.watch_after(Filter::all(), 0).unwrap_err(),
        Error::NoLongerKept { after: 0, oldest: 1 }
    );
    assert!(store.watch_after(Filter::all(), 1).is_ok());
}

/// Reads a watcher's events until the commit at `last`, as
/// (commit index, ids of its changes).
fn commits_until(watcher: &mut swarm_store::Watcher, last: u64) -> Vec<(u64, Vec<String>)> {
    let mut commits = Vec::new();
    let mut ids = Vec::new();
    loop {
        match watcher.blocking_recv().unwrap() {
            Event::Change(c) => ids.push(c.object().id().to_owned()),
            Event::Commit { index } => {
                commits.push((index, std::mem::take(&mut ids)));
                if index >= last {
                    return commits;
                }
            }
        }
    }
}

#[test]
fn a_watcher_resumed_after_an_index_gets_every_later_commit_once_then_the_live_ones() {
    let store = with_history();
    let ids: Vec<String> = (1..=5)
        .map(|i| {
            let n = node(&format!("n{i}"));
            futures::executor::block_on(store.update(|tx| tx.create(n.clone()))).unwrap();
            n.id
        })
        .collect();
    // Resumed after commit 2: commits 3 to 5 from what the store kept,
    // with the very objects a live watcher got...
    let mut resumed = store.watch_after(Filter::all().with_commits(), 2).unwrap();
    // ...then commit 6, live.
    let sixth = node("n6");
    futures::executor::block_on(store.update(|tx| tx.create(sixth.clone()))).unwrap();
    let commits = commits_until(&mut resumed, 6);
    let expected: Vec<(u64, Vec<String>)> = (3..=5)
        .map(|index| (index, vec![ids[index as usize - 1].clone()]))
        .chain([(6, vec![sixth.id])])
        .collect();
    assert_eq!(commits, expected);
    assert_eq!(resumed.try_recv().unwrap(), None, "nothing twice");

    // After the last commit: only what comes next.
    let mut at_end = store.watch_after(Filter::all().with_commits(), 6).unwrap();
    assert_eq!(at_end.try_recv().unwrap(), None);
    // Past it: refused, naming the last commit.
    let err = store.watch_after(Filter::all(), 7).unwrap_err();
    assert!(
        matches!(err, Error::Invalid(ref m) if m.contains("last commit is 6")),
        "{err}"
    );
}

#[test]
fn a_resumed_watcher_gets_the_old_object_of_an_update_and_only_what_its_filter_wants() {
    let store = with_history();
    let web = service("web");
    futures::executor::block_on(store.update(|tx| tx.create(web.clone()))).unwrap();
    futures::executor::block_on(store.update(|tx| tx.create(node("n1")))).unwrap();
    let mut read = store.view(|tx| (**tx.get::<Service>(&web.id).unwrap()).clone());
    read.pending_delete = true;
    futures::executor::block_on(store.update(|tx| tx.update(read))).unwrap();

    let mut services = store
        .watch_after(Filter::all().kind(Kind::Service).with_commits(), 0)
        .unwrap();
    let created = change(services.blocking_recv().unwrap());
    assert_eq!(created.action, Action::Create);
    assert_eq!(services.blocking_recv().unwrap(), Event::Commit { index: 1 });
    // The node's commit (2) is not one it wants: no marker either.
    let updated = change(services.blocking_recv().unwrap());
    assert_eq!(updated.action, Action::Update);
    assert_eq!(updated.old.as_ref().unwrap().version(), 1);
    assert_eq!(updated.new.as_ref().unwrap().version(), 3);
    assert_eq!(services.blocking_recv().unwrap(), Event::Commit { index: 3 });
    assert_eq!(services.try_recv().unwrap(), None);
}

#[test]
fn resuming_before_what_the_store_keeps_is_refused_naming_the_oldest_index() {
    let store = MemoryStore::builder().watch_history(3, usize::MAX).build();
    for i in 1..=5 {
        futures::executor::block_on(store.update(|tx| tx.create(node(&format!("n{i}"))))).unwrap();
    }
    // Changes of commits 3, 4 and 5 kept: resuming after 2 works, after 1 not.
    assert!(store.watch_after(Filter::all(), 2).is_ok());
    let err = store.watch_after(Filter::all(), 1).unwrap_err();
    assert_eq!(err, Error::NoLongerKept { after: 1, oldest: 2 });
    assert!(
        err.to_string().contains("oldest index a watch can resume after is 2"),
        "{err}"
    );
}

#[tokio::test]
async fn after_a_restore_a_watch_resumes_only_from_the_snapshot_on() {
    let store = MemoryStore::new();
    for name in ["a", "b"] {
        store.update(|tx| tx.create(node(name))).await.unwrap();
    }
    let bytes = store.snapshot();
    let restored = with_history();
    restored.update(|tx| tx.create(node("other"))).await.unwrap();
    restored.restore(&bytes).unwrap();
    assert_eq!(
        restored.watch_after(Filter::all(), 1).unwrap_err(),
        Error::NoLongerKept { after: 1, oldest: 2 }
    );
    let mut w = restored.watch_after(Filter::all().with_commits(), 2).unwrap();
    restored.update(|tx| tx.create(node("c"))).await.unwrap();
    assert!(matches!(w.recv().await.unwrap(), Event::Change(_)));
    assert_eq!(w.recv().await.unwrap(), Event::Commit { index: 3 });
}

#[test]
fn a_watcher_resumed_during_concurrent_writes_has_no_gap_and_no_overlap_even_as_commits_are_let_go_of() {
    const WRITES: u64 = 3_000;
    // Kept: 300 changes, while the writer runs on and the watcher resumes
    // 50 behind and reads 200: some resumes race the eviction.
    let store = MemoryStore::builder().watch_history(300, usize::MAX).build();
    let writer = {
        let store = store.clone();
        thread::spawn(move || {
            for i in 0..WRITES {
                futures::executor::block_on(store.update(|tx| tx.create(node(&format!("n{i}"))))).unwrap();
            }
        })
    };
    let (mut whole, mut cut_off) = (0, 0);
    while !writer.is_finished() || whole == 0 {
        let after = store.view(|tx| tx.index()).saturating_sub(50);
        let Ok(mut watcher) = store.watch_after(Filter::all().with_commits(), after) else {
            cut_off += 1;
            continue;
        };
        let last = WRITES.min(after + 200);
        // Whatever it got, it got in order from after + 1, once each.
        let mut expected = after + 1;
        while expected <= last {
            match watcher.blocking_recv() {
                Ok(Event::Change(_)) => {}
                Ok(Event::Commit { index }) => {
                    assert_eq!(index, expected, "gap or reorder, resumed after {after}");
                    expected += 1;
                }
                Err(Error::FellBehind) => break,
                Err(err) => panic!("{err}"),
            }
        }
        if expected > last {
            whole += 1;
        } else {
            cut_off += 1;
        }
    }
    writer.join().unwrap();
    assert!(whole > 0, "no resume ran to its end ({cut_off} cut off)");
}

#[test]
fn a_resumed_watcher_still_replaying_what_is_let_go_of_is_cut_off_after_what_it_read() {
    let store = MemoryStore::builder().watch_history(3, usize::MAX).build();
    let create = |name: &str| futures::executor::block_on(store.update(|tx| tx.create(node(name)))).unwrap();
    for name in ["a", "b", "c", "d", "e"] {
        create(name);
    }
    let mut watcher = store.watch_after(Filter::all().with_commits(), 2).unwrap();
    assert!(matches!(watcher.blocking_recv().unwrap(), Event::Change(_)));
    // Commits 3 to 5 go while it reads commit 3.
    for name in ["f", "g", "h"] {
        create(name);
    }
    assert_eq!(watcher.blocking_recv().unwrap(), Event::Commit { index: 3 });
    assert_eq!(watcher.blocking_recv().unwrap_err(), Error::FellBehind);
    assert_eq!(watcher.try_recv().unwrap_err(), Error::FellBehind, "and it stays so");
}

#[test]
fn a_resumed_watcher_replaying_when_the_store_is_restored_is_closed() {
    let store = with_history();
    for name in ["a", "b"] {
        futures::executor::block_on(store.update(|tx| tx.create(node(name)))).unwrap();
    }
    let mut watcher = store.watch_after(Filter::all(), 0).unwrap();
    assert!(matches!(watcher.blocking_recv().unwrap(), Event::Change(_)));
    store.restore(&store.snapshot()).unwrap();
    let err = watcher.blocking_recv().unwrap_err();
    assert_eq!(err, Error::Restored);
}

#[test]
fn a_resumed_watcher_ends_once_caught_up_if_the_store_was_dropped() {
    let store = with_history();
    futures::executor::block_on(store.update(|tx| tx.create(node("a")))).unwrap();
    let mut watcher = store.watch_after(Filter::all(), 0).unwrap();
    drop(store);
    assert!(matches!(watcher.blocking_recv().unwrap(), Event::Change(_)));
    assert!(matches!(watcher.blocking_recv(), Err(Error::Closed(_))));
}

#[test]
fn entries_applied_from_the_log_resume_as_they_were_applied_refused_ones_giving_nothing() {
    use swarm_proto::v1::{StoreAction, store_action};
    let store = with_history();
    let create = |node: Node| StoreAction {
        kind: store_action::Kind::Create.into(),
        target: Some(store_action::Target::Node(node)),
    };
    let (a, b) = (node("a"), node("b"));
    // As the Raft loop applies a run: 1 creates a, 2 creates a again
    // (refused at apply), 3 creates b.
    let results = store.apply_all(vec![
        (1, vec![create(a.clone())]),
        (2, vec![create(a.clone())]),
        (3, vec![create(b.clone())]),
    ]);
    assert!(
        results[0].is_ok() && results[1].is_err() && results[2].is_ok(),
        "{results:?}"
    );
    let mut watcher = store.watch_after(Filter::all().with_commits(), 1).unwrap();
    let created = change(watcher.blocking_recv().unwrap());
    assert_eq!(created.object().id(), b.id);
    assert_eq!(created.new.as_ref().unwrap().version(), 3);
    assert_eq!(watcher.blocking_recv().unwrap(), Event::Commit { index: 3 });
    assert_eq!(watcher.try_recv().unwrap(), None);
    // Resuming after the refused entry is as good as after 1.
    let mut after_refused = store.watch_after(Filter::all().with_commits(), 2).unwrap();
    assert!(matches!(after_refused.blocking_recv().unwrap(), Event::Change(c) if c.object().id() == b.id));
}

#[test]
fn a_store_that_keeps_nothing_resumes_after_its_last_commit_into_live_changes() {
    let store = MemoryStore::new();
    futures::executor::block_on(store.update(|tx| tx.create(node("a")))).unwrap();
    let mut watcher = store.watch_after(Filter::all().with_commits(), 1).unwrap();
    assert_eq!(watcher.try_recv().unwrap(), None);
    futures::executor::block_on(store.update(|tx| tx.create(node("b")))).unwrap();
    assert!(matches!(watcher.try_recv().unwrap(), Some(Event::Change(_))));
    assert_eq!(watcher.try_recv().unwrap(), Some(Event::Commit { index: 2 }));
}

#[tokio::test]
async fn fell_behind_resolves_once_the_watcher_is_cut_off_its_queue_still_readable() {
    use futures::FutureExt as _;
    let store = MemoryStore::builder().watch_buffer(2).build();
    let watcher = store.watch(Filter::all());
    store.update(|tx| tx.create(node("a"))).await.unwrap();
    assert!(watcher.fell_behind().now_or_never().is_none(), "keeping up");
    // Already waiting when it is cut off (what the Watch API does while a
    // send to a stalled client waits): woken.
    let waiting = tokio::spawn(async move {
        watcher.fell_behind().await;
        watcher
    });
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished());
    for name in ["b", "c"] {
        store.update(|tx| tx.create(node(name))).await.unwrap();
    }
    let mut watcher = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
        .await
        .expect("woken when cut off")
        .unwrap();
    // Asked again later: at once.
    assert!(watcher.fell_behind().now_or_never().is_some());
    for _ in 0..2 {
        assert!(matches!(watcher.recv().await.unwrap(), Event::Change(_)));
    }
    assert_eq!(watcher.recv().await.unwrap_err(), Error::FellBehind);
}

#[tokio::test]
async fn a_store_keeping_changes_knows_about_what_a_snapshot_of_it_weighs() {
    assert_eq!(
        MemoryStore::new().approximate_bytes(),
        None,
        "not measured without a history"
    );
    let store = with_history();
    assert_eq!(store.approximate_bytes(), Some(0));
    let (a, b) = (service("a"), service("b"));
    for s in [&a, &b] {
        store.update(|tx| tx.create(s.clone())).await.unwrap();
    }
    let stored = |id: &str| store.view(|tx| prost::Message::encoded_len(&**tx.get::<Service>(id).unwrap()));
    let both = (stored(&a.id) + stored(&b.id)) as u64;
    assert_eq!(store.approximate_bytes(), Some(both));
    let mut bigger = store.view(|tx| (**tx.get::<Service>(&a.id).unwrap()).clone());
    common::service_annotations(&mut bigger)
        .labels
        .insert("k".into(), "x".repeat(1000));
    store.update(|tx| tx.update(bigger)).await.unwrap();
    let grown = (stored(&a.id) + stored(&b.id)) as u64;
    assert!(grown > both + 1000);
    assert_eq!(store.approximate_bytes(), Some(grown));
    store.update(|tx| tx.delete::<Service>(&a.id)).await.unwrap();
    assert_eq!(store.approximate_bytes(), Some(stored(&b.id) as u64));
    // A restore starts again from the snapshot's own size.
    let snapshot = store.snapshot();
    store.restore(&snapshot).unwrap();
    assert_eq!(store.approximate_bytes(), Some(snapshot.len() as u64));
}
