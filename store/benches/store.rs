//! Criterion benchmarks of the store; see BENCHMARKS.md for the figures and
//! SwarmKit's on the same machine.
//!
//! Run: `cargo bench -p swarm-store --bench store`

mod fixtures;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use futures::executor::block_on;
use swarm_proto::v1::{Annotations, Node, NodeSpec, Task};
use swarm_store::{By, Filter, MemoryStore, Read};

/// Nodes as SwarmKit's memory-store benchmarks make them: an id and a name.
fn bare_node(i: usize) -> Node {
    Node {
        id: swarm_store::id::generate(),
        spec: Some(NodeSpec {
            annotations: Some(Annotations {
                name: format!("name{i}"),
                labels: Default::default(),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// 10,000 bare nodes, as SwarmKit's `setupNodes(b, benchmarkNumNodes)`.
fn bare_nodes() -> (MemoryStore, Vec<String>) {
    let store = MemoryStore::new();
    let nodes: Vec<Node> = (0..SWARMKIT_NODES).map(bare_node).collect();
    let ids = nodes.iter().map(|n| n.id.clone()).collect();
    block_on(store.update(|tx| nodes.into_iter().try_for_each(|n| tx.create(n)))).unwrap();
    (store, ids)
}

const SWARMKIT_NODES: usize = 10_000;

/// The shapes of SwarmKit's `manager/state/store` benchmarks, so that the
/// figures compare one to one (see BENCHMARKS.md).
fn swarmkit_shapes(c: &mut Criterion) {
    let mut group = c.benchmark_group("swarmkit");
    // BenchmarkCreateNode: n nodes in one transaction; time per node.
    group.bench_function("create_node", |b| {
        b.iter_custom(|iters| {
            let store = MemoryStore::new();
            let nodes: Vec<Node> = (0..iters as usize).map(bare_node).collect();
            let start = Instant::now();
            block_on(store.update(|tx| nodes.into_iter().try_for_each(|n| tx.create(n)))).unwrap();
            start.elapsed()
        })
    });
    // BenchmarkUpdateNodeTransaction: replace one of 10,000 nodes, each in
    // its own transaction (ours reads the version it must carry).
    let (store, ids) = bare_nodes();
    let mut i = 0;
    group.bench_function("update_node_transaction", |b| {
        b.iter(|| {
            let id = &ids[i % ids.len()];
            i += 1;
            block_on(store.update(|tx| {
                let version = tx.get::<Node>(id).expect("node exists").meta;
                let mut n = bare_node(0);
                n.id = id.clone();
                n.meta = version;
                n.spec
                    .as_mut()
                    .and_then(|s| s.annotations.as_mut())
                    .expect("bare nodes are named")
                    .name = format!("{id}_{i}");
                tx.update(n)
            }))
            .unwrap()
        })
    });
    // BenchmarkGetNode and BenchmarkFindNodeByName: many reads in one view,
    // of a fresh store (the update above renamed the nodes). Ours look up
    // names that exist; SwarmKit's loop runs past its 10,000 names, so most
    // of its lookups miss.
    let (store, ids) = bare_nodes();
    let tx = store.read();
    group.bench_function("get_node", |b| {
        b.iter(|| {
            let id = &ids[i % ids.len()];
            i += 1;
            black_box(tx.get::<Node>(id).is_some())
        })
    });
    let names: Vec<String> = (0..SWARMKIT_NODES).map(|i| format!("name{i}")).collect();
    group.bench_function("find_node_by_name", |b| {
        b.iter(|| {
            let name = &names[i % names.len()];
            i += 1;
            black_box(tx.find::<Node>(By::Name(name)).map(|found| found.len()))
        })
    });
    group.finish();
}

/// Create one realistic node (description, status, a label) per
/// transaction, into a store of 1,000 nodes that grows as it runs.
fn create_node(c: &mut Criterion) {
    let (store, _, _) = fixtures::populated(1_000, 0, 0);
    let mut i = 1_000;
    c.bench_function("create_node_own_transaction", |b| {
        b.iter_batched(
            || {
                i += 1;
                fixtures::node(i)
            },
            |n| block_on(store.update(|tx| tx.create(n))).unwrap(),
            BatchSize::SmallInput,
        )
    });
}

/// Read a realistic node, change its status, write it back: one
/// transaction each, local proposer, among 1,000 and 10,000 nodes; and
/// among 1,000 in a store that keeps changes for watchers that resume, as
/// swarmd's does (every replaced version kept alive for 20,000 changes).
fn update_node(c: &mut Criterion) {
    let mut group = c.benchmark_group("update_node_own_transaction");
    let keeping = || MemoryStore::builder().watch_history(20_000, 128 << 20).build();
    let stores = [
        ("1000_nodes", fixtures::populated(1_000, 0, 0)),
        ("10000_nodes", fixtures::populated(SWARMKIT_NODES, 0, 0)),
        (
            "1000_nodes_keeping_20000_changes",
            fixtures::populated_in(keeping(), 1_000, 0, 0),
        ),
    ];
    for (name, (store, nodes, _)) in stores {
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                let id = &nodes[i % nodes.len()].id;
                i += 1;
                block_on(store.update(|tx| {
                    let mut n = (**tx.get::<Node>(id).expect("node exists")).clone();
                    n.status.get_or_insert_with(Default::default).message = "heartbeat".into();
                    tx.update(n)
                }))
                .unwrap()
            })
        });
    }
    group.finish();
}

/// Get by id and find by name, each in a read transaction of its own
/// (`view`), 10,000 nodes: what a single API call pays.
fn reads(c: &mut Criterion) {
    let (store, nodes, _) = fixtures::populated(SWARMKIT_NODES, 0, 0);
    let mut i = 0;
    c.bench_function("get_node_by_id_own_view", |b| {
        b.iter(|| {
            let id = &nodes[i % nodes.len()].id;
            i += 1;
            store.view(|tx| black_box(tx.get::<Node>(id).is_some()))
        })
    });
    let names: Vec<String> = (0..nodes.len()).map(|i| format!("NODE-{i}")).collect();
    c.bench_function("find_node_by_name_own_view", |b| {
        b.iter(|| {
            let name = &names[i % names.len()];
            i += 1;
            store.view(|tx| black_box(tx.get_by_name::<Node>(name).is_some()))
        })
    });
}

/// The 100 tasks of one service out of 100,000 (1,000 services).
fn tasks_of_service(c: &mut Criterion) {
    let (store, _, services) = fixtures::populated(1_000, 1_000, 100);
    let mut i = 0;
    c.bench_function("list_100_tasks_of_service_in_100k", |b| {
        b.iter(|| {
            let id = &services[i % services.len()].id;
            i += 1;
            let n = store
                .view(|tx| tx.find::<Task>(By::ServiceId(id)).map(|t| t.len()))
                .unwrap();
            assert_eq!(n, 100);
        })
    });
}

/// One committed change fanned out to N watchers: the time of the commit,
/// which queues the event for every watcher. Watchers are drained outside
/// the timing so that none is cut off.
fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("commit_one_change_with_watchers");
    for watchers in [0usize, 100] {
        let (store, nodes, _) = fixtures::populated(1_000, 0, 0);
        let mut ws: Vec<_> = (0..watchers).map(|_| store.watch(Filter::all())).collect();
        let mut i = 0;
        group.bench_function(format!("{watchers}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let id = &nodes[i % nodes.len()].id;
                    i += 1;
                    let mut n = (**store.read().get::<Node>(id).expect("node exists")).clone();
                    n.status.get_or_insert_with(Default::default).message = "heartbeat".into();
                    let start = Instant::now();
                    block_on(store.update(|tx| tx.update(n))).unwrap();
                    total += start.elapsed();
                    for w in &mut ws {
                        assert!(w.try_recv().unwrap().is_some());
                    }
                }
                total
            })
        });
    }
    group.finish();
}

/// The whole store (1,000 nodes, 100,000 tasks) to bytes and back.
fn snapshot(c: &mut Criterion) {
    let (store, _, _) = fixtures::populated(1_000, 1_000, 100);
    let bytes = store.snapshot();
    let mut group = c.benchmark_group("snapshot_1k_nodes_100k_tasks");
    group.sample_size(10);
    group.bench_function("snapshot", |b| b.iter(|| black_box(store.snapshot().len())));
    group.bench_function("restore", |b| {
        b.iter_batched(
            MemoryStore::new,
            |s| s.restore(&bytes).unwrap(),
            BatchSize::PerIteration,
        )
    });
    group.finish();
    println!("snapshot of 1,000 nodes + 100,000 tasks: {} bytes", bytes.len());
}

criterion_group!(
    benches,
    swarmkit_shapes,
    create_node,
    update_node,
    reads,
    tasks_of_service,
    fanout,
    snapshot
);
criterion_main!(benches);
