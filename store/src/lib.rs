//! The managers' in-memory state store, shaped like SwarmKit's
//! `manager/state/store`.
//!
//! # Layout
//!
//! - [`MemoryStore`] (`store.rs`): the handle. `view` reads a consistent
//!   snapshot, `update` runs a write transaction and commits it as one
//!   proposal, `apply` lands a committed entry, `view_and_watch` hands a
//!   snapshot plus a watcher with no gap between them.
//! - `tx.rs`: [`ReadTx`], [`WriteTx`] and the [`Read`] trait they share.
//! - `table.rs`: one table: objects by id, unique names, secondary indexes.
//!   `kinds/`: one file per object kind saying which indexes it keeps.
//! - `index.rs`: index keys and the [`By`] selectors of `find`; `name.rs`:
//!   keys of the name index.
//! - `state.rs`: the six tables at one Raft index, and how a committed
//!   change is checked and applied.
//! - `watch.rs`: the watch queue, [`Filter`], [`Event`], [`Watcher`];
//!   `history.rs`: the recent commits it keeps for watchers that resume.
//! - `batch.rs`: [`Batch`], many updates in bounded proposals.
//! - `proposer.rs`: the [`Proposer`] seam to consensus.
//! - `snapshot.rs`: the store to bytes and back.
//!
//! # The path of a write
//!
//! `update(|tx| ...)` runs the closure on a private copy of the current
//! state (a persistent-map clone: a few reference counts). The transaction's
//! changes, one per object, go to the [`Proposer`], which commits them as one
//! Raft entry; every manager then lands the entry with [`MemoryStore::apply`],
//! which checks every change again against the state of that moment (another
//! writer may have committed since), sets each object's version to the
//! entry's index, swaps in the new state, and publishes the events. With no
//! proposer the store commits locally at the next index, and when no one
//! committed since the transaction began, its private copy simply becomes the
//! next state. Readers never wait: a read holds an `Arc` of one state,
//! whatever commits after.
//!
//! Inside the store an id is the 128-bit number its 25 characters spell
//! ([`id::Id`]), so index entries are small and copied without reference
//! counts; a malformed id is refused. Tasks share their service's task spec
//! ([`swarm_proto::Shared`]), also when they arrive decoded from the log.
//!
//! # Example
//!
//! ```
//! use swarm_proto::v1::{Annotations, Service, ServiceSpec};
//! use swarm_store::{By, Event, Filter, MemoryStore, Read};
//!
//! # futures::executor::block_on(async {
//! let store = MemoryStore::new(); // commits locally; give it a Proposer for Raft
//! let (snapshot, mut watcher) = store.view_and_watch(Filter::all().with_commits());
//!
//! let web = Service {
//!     id: swarm_store::id::generate(),
//!     spec: Some(ServiceSpec {
//!         annotations: Some(Annotations { name: "web".into(), ..Default::default() }),
//!         ..Default::default()
//!     }),
//!     ..Default::default()
//! };
//! store.update(|tx| tx.create(web)).await?; // one transaction, one proposal
//!
//! assert!(matches!(watcher.recv().await?, Event::Change(_))); // the create...
//! assert_eq!(watcher.recv().await?, Event::Commit { index: 1 }); // ...then its commit
//! assert_eq!(snapshot.count::<Service>(), 0); // a snapshot never changes
//! let found = store.view(|tx| tx.find::<Service>(By::NamePrefix("WE")).map(|s| s.len()))?;
//! assert_eq!(found, 1);
//! # Ok::<(), swarm_store::Error>(())
//! # }).unwrap();
//! ```

#![deny(missing_docs)]

mod batch;
mod error;
mod history;
pub mod id;
mod index;
mod kinds;
mod name;
mod object;
mod proposer;
mod snapshot;
mod state;
mod store;
mod table;
mod tx;
mod watch;

pub use batch::{Batch, MAX_CHANGES_PER_PROPOSAL, MAX_PROPOSAL_BYTES};
pub use error::{Error, Result, named};
pub use index::By;
pub use object::{Kind, Object, StoreObject};
pub use proposer::Proposer;
pub use store::{Builder, MemoryStore};
pub use tx::{Read, ReadTx, WriteTx};
pub use watch::{
    Action, Change, DEFAULT_WATCH_BUFFER, DEFAULT_WATCH_BUFFER_BYTES, Event, Filter, PROGRESS_EVERY, Watcher,
};
