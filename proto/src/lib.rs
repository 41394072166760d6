//! The orchestrator's API, generated from `proto/swarm/v1/*.proto`.
//!
//! # Layout
//!
//! - `types.proto`: building blocks (meta, annotations, task states, resources).
//! - `specs.proto`: what an operator asks for (service, node, cluster specs).
//! - `objects.proto`: the stored objects (Node, Service, Task, Cluster, Secret,
//!   Config), each with an id and a [`v1::Meta`].
//! - `store.proto`: [`v1::StoreAction`], what one Raft log entry carries.
//! - `control.proto`, `watch.proto`: the gRPC services a manager serves.
//! - `raft.proto`: the transport between Raft members and the member list
//!   that the Raft crate replicates itself.
//!
//! Everything lives in [`v1`]; the helpers in this crate only add what the
//! generated code cannot say, such as the ordering of task states, and
//! [`Shared`], which lets every task of a service share one task spec,
//! constructors such as [`v1::ServiceSpec::container`], and
//! [`clean_path`], the one spelling of a path in a container.

#![deny(missing_docs)]

/// Generated types and services of package `swarm.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("swarm.v1");
}

/// The encoded `FileDescriptorSet` of every `.proto` file above (and the
/// well-known types they import), for reflection: printing a message as
/// JSON, for example.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));

mod builders;
mod path;
mod shared;
mod task_state;

pub use path::clean_path;
pub use shared::Shared;
pub use v1::TaskState;
