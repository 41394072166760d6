//! Compiles `proto/swarm/v1/*.proto` into Rust with protox (a protobuf
//! compiler written in Rust), so that building needs no system `protoc`.

use std::path::PathBuf;

const PROTO_ROOT: &str = "proto";
const FILES: &[&str] = &[
    "swarm/v1/types.proto",
    "swarm/v1/specs.proto",
    "swarm/v1/objects.proto",
    "swarm/v1/store.proto",
    "swarm/v1/control.proto",
    "swarm/v1/watch.proto",
    "swarm/v1/info.proto",
    "swarm/v1/raft.proto",
];

/// Large sub-messages that most objects leave unset. Boxed, an unset one
/// costs a pointer instead of its whole size inside every stored task (the
/// store holds 100,000 of them; see BENCHMARKS.md, memory).
const BOXED: &[&str] = &[
    ".swarm.v1.Task.endpoint",
    ".swarm.v1.TaskSpec.placement",
    ".swarm.v1.ContainerSpec.healthcheck",
];

/// Fields whose message many objects carry identically, held as
/// `crate::Shared<T>` instead of `T` (see `src/shared.rs`): every task of a
/// service holds its service's task spec. prost-build has no option for
/// this, so the generated declarations are rewritten; the build fails if one
/// is not found, so a change in prost's output cannot slip by.
const SHARED: &[(&str, &str)] = &[
    (
        "pub spec: ::core::option::Option<TaskSpec>,",
        "pub spec: ::core::option::Option<crate::Shared<TaskSpec>>,",
    ),
    (
        "pub task: ::core::option::Option<TaskSpec>,",
        "pub task: ::core::option::Option<crate::Shared<TaskSpec>>,",
    ),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let paths: Vec<PathBuf> = FILES.iter().map(|f| PathBuf::from(PROTO_ROOT).join(f)).collect();
    for path in &paths {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let descriptors = protox::compile(&paths, [PROTO_ROOT])?;
    // Kept for reflection: swarmctl prints any message as JSON from it.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("descriptors.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    let mut builder = tonic_prost_build::configure()
        // Services are served by swarmd and called by swarmctl: both sides.
        .build_server(true)
        .build_client(true);
    // Raft messages and snapshot chunks pass through untouched: as
    // `bytes::Bytes` they are handed on without a copy.
    for message in [
        ".swarm.v1.RaftBatch",
        ".swarm.v1.SnapshotChunk",
        ".swarm.v1.RaftSnapshotData",
    ] {
        builder = builder.bytes(message);
    }
    for field in BOXED {
        builder = builder.boxed(field);
    }
    // `prost::Name` on every message: its full protobuf name, to find its
    // descriptor.
    let mut config = tonic_prost_build::Config::new();
    config.enable_type_names();
    builder.compile_fds_with_config(descriptors, config)?;
    share_fields()
}

fn share_fields() -> Result<(), Box<dyn std::error::Error>> {
    let path = PathBuf::from(std::env::var("OUT_DIR")?).join("swarm.v1.rs");
    let mut code = std::fs::read_to_string(&path)?;
    for (from, to) in SHARED {
        if code.matches(from).count() != 1 {
            return Err(format!("expected exactly one `{from}` in the generated code").into());
        }
        code = code.replace(from, to);
    }
    std::fs::write(&path, code)?;
    Ok(())
}
