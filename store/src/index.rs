//! Secondary index keys, and the selectors of `find`.
//!
//! Every secondary index of a table lives in one ordered set of
//! `(IndexKey, Id)` pairs: finding the tasks of a node is a range scan over
//! the pairs whose key is `Node(id)`. One dense set costs far less memory
//! than a set per key, most of which would hold a single id.

use std::sync::Arc;

use swarm_proto::v1::{NodeMembership, NodeRole, TaskState};

use crate::id::Id;

/// The secondary indexes a kind may declare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexKind {
    /// Tasks by service: served by the slot index, whose keys start with
    /// the service id.
    Service,
    /// Tasks by node.
    Node,
    /// Tasks by (service, slot).
    Slot,
    /// Tasks by desired state.
    DesiredState,
    /// Tasks by observed state.
    TaskState,
    /// Nodes by role.
    Role,
    /// Nodes by membership.
    Membership,
}

/// An index key as an object yields it. Comparing these lets an update find
/// which index entries changed without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRef<'a> {
    /// The task's node.
    Node(Id),
    /// The task's service and slot.
    Slot(Id, u64),
    /// The task's desired state.
    DesiredState(i32),
    /// The task's observed state.
    TaskState(i32),
    /// The node's role.
    Role(i32),
    /// The node's membership.
    Membership(i32),
    /// A label with its value.
    Label(&'a str, &'a str),
    /// A field that must hold an id holds something else: the object is
    /// refused (field name, value).
    Malformed(&'static str, &'a str),
}

impl<'a> KeyRef<'a> {
    /// `make(id)` if `text` is an id; [`KeyRef::Malformed`] otherwise.
    pub fn id_field(field: &'static str, text: &'a str, make: impl FnOnce(Id) -> KeyRef<'a>) -> KeyRef<'a> {
        Id::parse(text).map_or(KeyRef::Malformed(field, text), make)
    }

    /// The owned form; `None` for [`KeyRef::Malformed`].
    pub fn to_key(self) -> Option<IndexKey> {
        Some(match self {
            KeyRef::Node(id) => IndexKey::Node(id),
            KeyRef::Slot(id, slot) => IndexKey::Slot(id, slot),
            KeyRef::DesiredState(v) => IndexKey::DesiredState(v),
            KeyRef::TaskState(v) => IndexKey::TaskState(v),
            KeyRef::Role(v) => IndexKey::Role(v),
            KeyRef::Membership(v) => IndexKey::Membership(v),
            KeyRef::Label(k, v) => IndexKey::Label(format!("{}{v}", label_prefix(k)).into()),
            KeyRef::Malformed(..) => return None,
        })
    }
}

/// An owned index key, as the index set holds it. Small (32 bytes) and,
/// but for labels, free of pointers: copying an index node copies bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IndexKey {
    /// See [`KeyRef::Node`].
    Node(Id),
    /// See [`KeyRef::Slot`].
    Slot(Id, u64),
    /// See [`KeyRef::DesiredState`].
    DesiredState(i32),
    /// See [`KeyRef::TaskState`].
    TaskState(i32),
    /// See [`KeyRef::Role`].
    Role(i32),
    /// See [`KeyRef::Membership`].
    Membership(i32),
    /// The label as [`label_prefix`] of its key, then its value: one
    /// allocation, and all values of one key are neighbours, so "has this
    /// key" is a prefix scan.
    Label(Arc<str>),
}

/// The start of every index key of labels with key `key`: its length in
/// bytes, a colon, then the key. No other key's start begins with it, and
/// the value that follows can hold anything, so no two labels share an index
/// key whatever bytes (a NUL, a colon) their keys and values hold: the index
/// cannot rely on the API to refuse any.
fn label_prefix(key: &str) -> String {
    format!("{}:{key}", key.len())
}

/// Which index entries a selector reads: every key from `start` on for
/// which `within` holds.
pub struct KeyRange {
    /// The index the selector needs; `None` for labels, which every kind has.
    pub index: Option<IndexKind>,
    /// The first key; `None` if nothing can match (a malformed id).
    pub start: Option<IndexKey>,
    /// True while the scan is still inside the range.
    pub within: Box<dyn Fn(&IndexKey) -> bool>,
}

/// How to select objects in a [`find`](crate::Read::find).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum By<'a> {
    /// Every object of the kind.
    All,
    /// Ids starting with this prefix.
    IdPrefix(&'a str),
    /// This exact name, compared case-insensitively.
    Name(&'a str),
    /// Names starting with this prefix, compared case-insensitively.
    NamePrefix(&'a str),
    /// Objects carrying this label key, whatever its value.
    LabelKey(&'a str),
    /// Objects carrying this label with this value.
    Label(&'a str, &'a str),
    /// Tasks of this service.
    ServiceId(&'a str),
    /// Tasks assigned to this node.
    NodeId(&'a str),
    /// The tasks of one slot of a service (current and historic).
    Slot(&'a str, u64),
    /// Tasks with this desired state.
    DesiredState(TaskState),
    /// Tasks in this observed state.
    TaskState(TaskState),
    /// Nodes with this role.
    Role(NodeRole),
    /// Nodes with this membership.
    Membership(NodeMembership),
}

impl By<'_> {
    /// The index entries this selector reads, or `None` for the selectors
    /// served by the id and name maps.
    pub(crate) fn key_range(self) -> Option<KeyRange> {
        let exact = |index: Option<IndexKind>, key: Option<IndexKey>| {
            let end = key.clone();
            KeyRange {
                index,
                start: key,
                within: Box::new(move |k| Some(k) == end.as_ref()),
            }
        };
        Some(match self {
            By::All | By::IdPrefix(_) | By::Name(_) | By::NamePrefix(_) => return None,
            By::LabelKey(k) => {
                let prefix: Arc<str> = label_prefix(k).into();
                KeyRange {
                    index: None,
                    start: Some(IndexKey::Label(prefix.clone())),
                    within: Box::new(move |key| matches!(key, IndexKey::Label(s) if s.starts_with(&*prefix))),
                }
            }
            By::Label(k, v) => exact(None, KeyRef::Label(k, v).to_key()),
            By::ServiceId(s) => {
                let service = Id::parse(s);
                KeyRange {
                    index: Some(IndexKind::Service),
                    start: service.map(|id| IndexKey::Slot(id, 0)),
                    within: Box::new(move |key| matches!(key, IndexKey::Slot(id, _) if Some(*id) == service)),
                }
            }
            By::NodeId(n) => exact(Some(IndexKind::Node), Id::parse(n).map(IndexKey::Node)),
            By::Slot(s, slot) => exact(Some(IndexKind::Slot), Id::parse(s).map(|id| IndexKey::Slot(id, slot))),
            By::DesiredState(s) => exact(Some(IndexKind::DesiredState), Some(IndexKey::DesiredState(s as i32))),
            By::TaskState(s) => exact(Some(IndexKind::TaskState), Some(IndexKey::TaskState(s as i32))),
            By::Role(r) => exact(Some(IndexKind::Role), Some(IndexKey::Role(r as i32))),
            By::Membership(m) => exact(Some(IndexKind::Membership), Some(IndexKey::Membership(m as i32))),
        })
    }
}
