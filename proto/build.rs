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
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let paths: Vec<PathBuf> = FILES.iter().map(|f| PathBuf::from(PROTO_ROOT).join(f)).collect();
    for path in &paths {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let descriptors = protox::compile(&paths, [PROTO_ROOT])?;
    tonic_prost_build::configure()
        // Services are served by swarmd and called by swarmctl: both sides.
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
