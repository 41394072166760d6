//! The whole store as bytes, and back.
//!
//! Layout: the magic `SWST`, a format version (u32, little-endian), the CRC32
//! of the payload (u32, little-endian), then the payload: a
//! `swarm.v1.StoreSnapshot` message. The checksum catches what protobuf decoding
//! would not: truncated or flipped bytes that still parse.

use std::collections::HashMap;
use std::sync::Arc;

use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint};
use prost::{DecodeError, Message};
use swarm_proto::Shared;
use swarm_proto::v1::{Cluster, Config, Node, Secret, Service, Task, TaskSpec};

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
    let mut tasks = TaskDecoder::default();
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
            (FIELD_TASKS, WireType::LengthDelimited) => tasks.decode(&mut payload, restorer.state()).map(Object::Task),
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

/// Field number of `Task.spec`.
const TASK_SPEC: u32 = 3;

/// Decodes tasks, sharing each spec whose bytes are those of its service's
/// spec without decoding it: 100,000 tasks of 1,000 services hold 1,000
/// specs, and decoding the other 99,000 only to find them equal and drop
/// them took a fifth of a restore.
#[derive(Default)]
struct TaskDecoder {
    /// Per service id: its spec, if it has one.
    specs: HashMap<String, Option<EncodedSpec>>,
}

/// A service's task spec, encoded (to compare with a task's bytes) and
/// shared (to hand to the task when they match).
type EncodedSpec = (Vec<u8>, Shared<TaskSpec>);

impl TaskDecoder {
    /// Decodes one length-delimited task from `buf`.
    fn decode(&mut self, buf: &mut &[u8], state: &State) -> Result<Arc<Task>, DecodeError> {
        let len = usize::try_from(decode_varint(buf)?).unwrap_or(usize::MAX);
        if len > buf.len() {
            // Let prost say what is wrong, in its words.
            return Task::decode_length_delimited(buf).map(Arc::new);
        }
        let (body, rest) = buf.split_at(len);
        *buf = rest;

        let mut task = Task::default();
        let mut raw_spec = None;
        let mut fields = body;
        while !fields.is_empty() {
            let (tag, wire_type) = decode_key(&mut fields)?;
            if tag == TASK_SPEC && wire_type == WireType::LengthDelimited {
                if raw_spec.is_some() {
                    // Protobuf merges repeated occurrences: rare, so the
                    // plain decoder handles them.
                    return Task::decode(body).map(Arc::new);
                }
                let len = usize::try_from(decode_varint(&mut fields)?).unwrap_or(usize::MAX);
                if len > fields.len() {
                    return Task::decode(body).map(Arc::new);
                }
                let (spec, after) = fields.split_at(len);
                raw_spec = Some(spec);
                fields = after;
            } else {
                task.merge_field(tag, wire_type, &mut fields, DecodeContext::default())?;
            }
        }
        if let Some(raw) = raw_spec {
            task.spec = Some(match self.service_spec(&task.service_id, state) {
                Some((bytes, shared)) if bytes.as_slice() == raw => shared.clone(),
                _ => Shared::new(TaskSpec::decode(raw)?),
            });
        }
        Ok(Arc::new(task))
    }

    /// The current spec of a service already restored, encoded and shared.
    fn service_spec(&mut self, service_id: &str, state: &State) -> Option<&EncodedSpec> {
        if !self.specs.contains_key(service_id) {
            let spec = Service::table(state)
                .get(service_id)
                .and_then(|s| s.spec.as_ref()?.task.clone())
                .map(|spec| (spec.encode_to_vec(), spec));
            self.specs.insert(service_id.to_owned(), spec);
        }
        self.specs.get(service_id)?.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use swarm_proto::Shared;
    use swarm_proto::v1::{Annotations, Service, ServiceSpec, Task, TaskSpec};

    use super::*;
    use crate::id::generate;

    fn spec(force_update: u64) -> TaskSpec {
        TaskSpec {
            force_update,
            ..Default::default()
        }
    }

    fn state_with_service(spec: TaskSpec) -> (State, Service) {
        let service = Service {
            id: generate(),
            spec: Some(ServiceSpec {
                annotations: Some(Annotations {
                    name: "web".into(),
                    ..Default::default()
                }),
                task: Some(Shared::new(spec)),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut restorer = Restorer::default();
        restorer.add(Object::Service(Arc::new(service.clone()))).unwrap();
        (restorer.finish(0).unwrap(), service)
    }

    fn decode_one(decoder: &mut TaskDecoder, task_bytes: &[u8], state: &State) -> Task {
        let mut framed = Vec::new();
        prost::encoding::encode_varint(task_bytes.len() as u64, &mut framed);
        framed.extend_from_slice(task_bytes);
        let mut buf = framed.as_slice();
        let task = decoder.decode(&mut buf, state).unwrap();
        assert!(buf.is_empty(), "the whole task is consumed");
        Arc::unwrap_or_clone(task)
    }

    #[test]
    fn task_decoder_matches_plain_decoding_and_shares_only_equal_specs() {
        let (state, service) = state_with_service(spec(1));
        let service_spec = service.spec.as_ref().and_then(|s| s.task.clone()).unwrap();
        let stored_spec = Service::table(&state)
            .get(&service.id)
            .unwrap()
            .spec
            .as_ref()
            .unwrap()
            .task
            .clone();
        let mut decoder = TaskDecoder::default();
        let cases = [
            ("the service's spec", Some(service_spec.clone()), service.id.clone()),
            ("a spec of its own", Some(Shared::new(spec(2))), service.id.clone()),
            ("an unknown service", Some(Shared::new(spec(1))), generate()),
            ("no spec", None, service.id.clone()),
        ];
        for (what, spec, service_id) in cases {
            let task = Task {
                id: generate(),
                service_id,
                slot: 3,
                spec,
                ..Default::default()
            };
            let bytes = task.encode_to_vec();
            let decoded = decode_one(&mut decoder, &bytes, &state);
            assert_eq!(decoded, Task::decode(&bytes[..]).unwrap(), "{what}");
            let shared = match (&decoded.spec, &stored_spec) {
                (Some(a), Some(b)) => Shared::ptr_eq(a, b),
                _ => false,
            };
            assert_eq!(shared, what == "the service's spec", "{what}");
        }
    }

    #[test]
    fn a_spec_given_twice_is_merged_as_protobuf_says() {
        let (state, service) = state_with_service(spec(1));
        let first = Task {
            id: generate(),
            service_id: service.id.clone(),
            spec: Some(Shared::new(TaskSpec {
                force_update: 1,
                ..Default::default()
            })),
            ..Default::default()
        };
        let second = Task {
            spec: Some(Shared::new(TaskSpec {
                restart: Some(Default::default()),
                ..Default::default()
            })),
            ..Default::default()
        };
        // Concatenated messages merge: the spec field appears twice.
        let mut bytes = first.encode_to_vec();
        bytes.extend(second.encode_to_vec());
        let decoded = decode_one(&mut TaskDecoder::default(), &bytes, &state);
        assert_eq!(decoded, Task::decode(&bytes[..]).unwrap());
        let spec = decoded.spec.unwrap();
        assert_eq!((spec.force_update, spec.restart.is_some()), (1, true));
    }
}
