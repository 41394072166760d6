//! The whole store as bytes, and back.
//!
//! Layout: the magic `SWST`, a format version (u32, little-endian), the CRC32
//! of the payload (u32, little-endian), then the payload: a
//! `swarm.v1.StoreSnapshot` message. The checksum catches what protobuf decoding
//! would not: truncated or flipped bytes that still parse.

use std::sync::Arc;

use prost::DecodeError;
use prost::encoding::{WireType, decode_key, decode_varint};
use swarm_proto::v1::{Cluster, Config, Node, Secret, Service, Task};

use crate::state::{Restorer, State};
use crate::{Error, Object, Result, StoreObject};

const MAGIC: &[u8; 4] = b"SWST";
const FORMAT: u32 = 1;
const HEADER_LEN: usize = 12;

/// Field numbers of `StoreSnapshot`.
const FIELD_INDEX: u32 = 1;
const FIELD_NODES: u32 = 2;
const FIELD_SERVICES: u32 = 3;
const FIELD_TASKS: u32 = 4;
const FIELD_CLUSTERS: u32 = 5;
const FIELD_SECRETS: u32 = 6;
const FIELD_CONFIGS: u32 = 7;

/// Encodes `state` as a `StoreSnapshot`, straight from the shared objects:
/// building the message first would copy every object once more.
pub(crate) fn encode(state: &State) -> Vec<u8> {
    let mut payload = Vec::new();
    prost::encoding::uint64::encode(FIELD_INDEX, &state.index, &mut payload);
    encode_table::<Node>(state, FIELD_NODES, &mut payload);
    encode_table::<Service>(state, FIELD_SERVICES, &mut payload);
    encode_table::<Task>(state, FIELD_TASKS, &mut payload);
    encode_table::<Cluster>(state, FIELD_CLUSTERS, &mut payload);
    encode_table::<Secret>(state, FIELD_SECRETS, &mut payload);
    encode_table::<Config>(state, FIELD_CONFIGS, &mut payload);

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
/// Objects are decoded one at a time, each straight into its table: no
/// intermediate list of 100,000 tasks, and each object is inserted while
/// its bytes are still in cache.
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
    let mut payload = &bytes[HEADER_LEN..];
    let (expected, actual) = (word(8), crc32fast::hash(payload));
    if expected != actual {
        return Err(invalid(format!(
            "checksum mismatch ({actual:08x}, header says {expected:08x})"
        )));
    }

    fn object<T: StoreObject>(buf: &mut &[u8]) -> Result<Object, DecodeError> {
        Ok(T::into_object(Arc::new(T::decode_length_delimited(buf)?)))
    }
    let mut restorer = Restorer::default();
    let mut index = 0;
    while !payload.is_empty() {
        let (field, wire_type) = decode_key(&mut payload).map_err(|e| invalid(e.to_string()))?;
        let decoded = match (field, wire_type) {
            (FIELD_INDEX, WireType::Varint) => {
                index = decode_varint(&mut payload).map_err(|e| invalid(e.to_string()))?;
                continue;
            }
            (FIELD_NODES, WireType::LengthDelimited) => object::<Node>(&mut payload),
            (FIELD_SERVICES, WireType::LengthDelimited) => object::<Service>(&mut payload),
            (FIELD_TASKS, WireType::LengthDelimited) => object::<Task>(&mut payload),
            (FIELD_CLUSTERS, WireType::LengthDelimited) => object::<Cluster>(&mut payload),
            (FIELD_SECRETS, WireType::LengthDelimited) => object::<Secret>(&mut payload),
            (FIELD_CONFIGS, WireType::LengthDelimited) => object::<Config>(&mut payload),
            _ => return Err(invalid(format!("unexpected field {field} ({wire_type:?})"))),
        };
        let object = decoded.map_err(|e| invalid(e.to_string()))?;
        restorer.add(object).map_err(|e| invalid(e.to_string()))?;
    }
    restorer.finish(index).map_err(|e| invalid(e.to_string()))
}
