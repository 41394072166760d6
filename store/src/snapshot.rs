//! The whole store as bytes, and back.
//!
//! Layout: the magic `SWST`, a format version (u32, little-endian), the CRC32
//! of the payload (u32, little-endian), then the payload: a
//! [`StoreSnapshot`] message. The checksum catches what protobuf decoding
//! would not: truncated or flipped bytes that still parse.

use std::sync::Arc;

use prost::Message;
use swarm_proto::v1::StoreSnapshot;

use crate::state::State;
use crate::{Error, Object, Result, StoreObject};

const MAGIC: &[u8; 4] = b"SWST";
const FORMAT: u32 = 1;
const HEADER_LEN: usize = 12;

/// Field numbers of [`StoreSnapshot`].
const FIELD_INDEX: u32 = 1;
const FIELD_NODES: u32 = 2;
const FIELD_SERVICES: u32 = 3;
const FIELD_TASKS: u32 = 4;
const FIELD_CLUSTERS: u32 = 5;
const FIELD_SECRETS: u32 = 6;
const FIELD_CONFIGS: u32 = 7;

/// Encodes `state` as a [`StoreSnapshot`], straight from the shared objects:
/// building the message first would copy every object once more.
pub(crate) fn encode(state: &State) -> Vec<u8> {
    let mut payload = Vec::new();
    prost::encoding::uint64::encode(FIELD_INDEX, &state.index, &mut payload);
    encode_table::<swarm_proto::v1::Node>(state, FIELD_NODES, &mut payload);
    encode_table::<swarm_proto::v1::Service>(state, FIELD_SERVICES, &mut payload);
    encode_table::<swarm_proto::v1::Task>(state, FIELD_TASKS, &mut payload);
    encode_table::<swarm_proto::v1::Cluster>(state, FIELD_CLUSTERS, &mut payload);
    encode_table::<swarm_proto::v1::Secret>(state, FIELD_SECRETS, &mut payload);
    encode_table::<swarm_proto::v1::Config>(state, FIELD_CONFIGS, &mut payload);

    let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&FORMAT.to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    bytes
}

fn encode_table<T: StoreObject>(state: &State, field: u32, out: &mut Vec<u8>) {
    for obj in T::table(state).iter() {
        prost::encoding::message::encode(field, obj.as_ref(), out);
    }
}

/// Decodes and checks a snapshot into a fresh state.
///
/// # Errors
///
/// [`Error::Invalid`] naming what is wrong: the header, the checksum, the
/// message, or an id or name held twice.
pub(crate) fn decode(bytes: &[u8]) -> Result<State> {
    let invalid = |what: String| Error::Invalid(format!("snapshot: {what}"));
    if bytes.len() < HEADER_LEN || &bytes[..4] != MAGIC {
        return Err(invalid("not a store snapshot (bad magic)".into()));
    }
    let word = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let format = word(4);
    if format != FORMAT {
        return Err(invalid(format!("format {format} is not supported (expected {FORMAT})")));
    }
    let payload = &bytes[HEADER_LEN..];
    let (expected, actual) = (word(8), crc32fast::hash(payload));
    if expected != actual {
        return Err(invalid(format!(
            "checksum mismatch ({actual:08x}, header says {expected:08x})"
        )));
    }
    let message = StoreSnapshot::decode(payload).map_err(|e| invalid(e.to_string()))?;

    let mut state = State {
        index: message.index,
        ..State::default()
    };
    let objects = (message.nodes.into_iter().map(|o| Object::Node(Arc::new(o))))
        .chain(message.services.into_iter().map(|o| Object::Service(Arc::new(o))))
        .chain(message.tasks.into_iter().map(|o| Object::Task(Arc::new(o))))
        .chain(message.clusters.into_iter().map(|o| Object::Cluster(Arc::new(o))))
        .chain(message.secrets.into_iter().map(|o| Object::Secret(Arc::new(o))))
        .chain(message.configs.into_iter().map(|o| Object::Config(Arc::new(o))));
    for object in objects {
        state.restore(object).map_err(|e| invalid(e.to_string()))?;
    }
    Ok(state)
}
