//! Memory held by the store for 100,000 tasks (1,000 services of 100 tasks,
//! 1,000 nodes) with every index: live heap bytes counted by a wrapping
//! global allocator. First the objects alone as plain values, then the store
//! they were moved into, then a second store restored from the first's
//! snapshot (what a follower holds).
//!
//! Run: `cargo bench -p swarm-store --bench memory`

mod fixtures;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; it only
// counts the bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs this too and
    // must stay quick, so it builds a smaller store then.
    let tasks_per_service = if std::env::args().any(|a| a == "--bench") {
        100
    } else {
        1
    };

    // The objects alone, as plain values: what any store must hold at least.
    let before = live();
    let nodes: Vec<_> = (0..1_000).map(fixtures::node).collect();
    let services: Vec<_> = (0..1_000).map(fixtures::service).collect();
    let tasks: Vec<_> = services
        .iter()
        .enumerate()
        .flat_map(|(i, s)| (1..=tasks_per_service as u64).map(move |slot| (i, s, slot)))
        .map(|(i, s, slot)| fixtures::task(s, slot, &nodes[i % nodes.len()]))
        .collect();
    let plain = live() - before;
    let count = tasks.len();

    let before = live();
    let store = swarm_store::MemoryStore::new();
    futures::executor::block_on(async {
        let mut batch = store.batch();
        for n in nodes {
            batch.update(|tx| tx.create(n)).await.expect("fresh node");
        }
        for s in services {
            batch.update(|tx| tx.create(s)).await.expect("fresh service");
        }
        for t in tasks {
            batch.update(|tx| tx.create(t)).await.expect("fresh task");
        }
        batch.commit().await.expect("local commit");
    });
    // The plain values were moved into the store: what it holds now is
    // everything, objects and indexes.
    let held = live() - before + plain;
    let mib = |b: isize| b as f64 / (1 << 20) as f64;
    println!("1,000 nodes, 1,000 services, {count} tasks:");
    println!("  objects alone (plain values):  {:7.1} MiB", mib(plain));
    println!(
        "  held by the store, all in:     {:7.1} MiB ({:.0} bytes per task)",
        mib(held),
        held as f64 / count as f64
    );
    println!("  indexes and sharing overhead:  {:7.1} MiB", mib(held - plain));
    // A follower gets the same tasks decoded from a snapshot (or the log),
    // each in fresh allocations; the store must share their specs again.
    let bytes = store.snapshot();
    let before = live();
    let follower = swarm_store::MemoryStore::new();
    follower.restore(&bytes).expect("own snapshot restores");
    let restored = live() - before;
    println!(
        "  restored from a snapshot:      {:7.1} MiB ({:.0} bytes per task)",
        mib(restored),
        restored as f64 / count as f64
    );
    let sample = store.view(|tx| swarm_store::Read::list::<swarm_proto::v1::Task>(tx)[0].clone());
    println!(
        "  one task: {} bytes in memory inline, {} bytes encoded",
        std::mem::size_of::<swarm_proto::v1::Task>(),
        prost::Message::encoded_len(sample.as_ref())
    );
}
