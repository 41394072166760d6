//! Secondary index keys.
//!
//! Every secondary index of a table lives in one ordered set of
//! `(IndexKey, id)` pairs: finding the tasks of a service is a range scan
//! over the pairs whose key is `Slot(service id, _)`. One dense set costs far less
//! memory than a set per key, most of which would hold a single id.

use std::sync::Arc;

use swarm_proto::v1::{NodeMembership, NodeRole, TaskState};

/// An object id as the indexes hold it: one allocation shared by every index
/// entry of the object.
pub type Id = Arc<str>;

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

/// A borrowed index key, as an object yields it. Comparing borrowed keys lets
/// an update find which index entries changed without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRef<'a> {
    /// The task's node id.
    Node(&'a str),
    /// The task's service id and slot.
    Slot(&'a str, u64),
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
}

/// An owned index key, as the index set holds it. Every variant is at most
/// one shared string and one number, so that an entry stays small.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IndexKey {
    /// See [`KeyRef::Node`].
    Node(Arc<str>),
    /// See [`KeyRef::Slot`].
    Slot(Arc<str>, u64),
    /// See [`KeyRef::DesiredState`].
    DesiredState(i32),
    /// See [`KeyRef::TaskState`].
    TaskState(i32),
    /// See [`KeyRef::Role`].
    Role(i32),
    /// See [`KeyRef::Membership`].
    Membership(i32),
    /// Key and value joined by a NUL: one allocation, and all values of one
    /// key are neighbours, so "has this key" is a prefix scan. (A label key
    /// holding a NUL would blur that line; the API refuses such keys.)
    Label(Arc<str>),
}

impl KeyRef<'_> {
    /// The owned form, with a fresh string.
    pub fn to_key(self) -> IndexKey {
        match self {
            KeyRef::Node(s) => IndexKey::Node(s.into()),
            KeyRef::Slot(s, slot) => IndexKey::Slot(s.into(), slot),
            KeyRef::DesiredState(v) => IndexKey::DesiredState(v),
            KeyRef::TaskState(v) => IndexKey::TaskState(v),
            KeyRef::Role(v) => IndexKey::Role(v),
            KeyRef::Membership(v) => IndexKey::Membership(v),
            KeyRef::Label(k, v) => IndexKey::Label(format!("{k}\0{v}").into()),
        }
    }
}

impl IndexKey {
    /// The key's string, if it has one.
    pub fn string(&self) -> Option<&Arc<str>> {
        match self {
            IndexKey::Node(s) | IndexKey::Slot(s, _) | IndexKey::Label(s) => Some(s),
            _ => None,
        }
    }

    /// The same key holding `shared` as its string (equal to its own).
    pub fn with_string(self, shared: Arc<str>) -> IndexKey {
        match self {
            IndexKey::Node(_) => IndexKey::Node(shared),
            IndexKey::Slot(_, slot) => IndexKey::Slot(shared, slot),
            IndexKey::Label(_) => IndexKey::Label(shared),
            other => other,
        }
    }

    /// The smallest key with the same string: where a scan for a
    /// neighbour sharing it starts.
    pub fn first_with_same_string(&self) -> IndexKey {
        match self {
            IndexKey::Slot(s, _) => IndexKey::Slot(s.clone(), 0),
            other => other.clone(),
        }
    }
}

/// Which index entries a selector reads: every key from `start` on for
/// which `within` holds.
pub struct KeyRange {
    /// The index the selector needs; `None` for labels, which every kind has.
    pub index: Option<IndexKind>,
    /// The first key.
    pub start: IndexKey,
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
        let exact = |index: Option<IndexKind>, key: KeyRef<'_>| {
            let start = key.to_key();
            let end = start.clone();
            KeyRange {
                index,
                start,
                within: Box::new(move |k| *k == end),
            }
        };
        Some(match self {
            By::All | By::IdPrefix(_) | By::Name(_) | By::NamePrefix(_) => return None,
            By::LabelKey(k) => {
                let prefix: Arc<str> = format!("{k}\0").into();
                KeyRange {
                    index: None,
                    start: IndexKey::Label(prefix.clone()),
                    within: Box::new(move |key| matches!(key, IndexKey::Label(s) if s.starts_with(&*prefix))),
                }
            }
            By::Label(k, v) => exact(None, KeyRef::Label(k, v)),
            By::ServiceId(s) => {
                let service: Arc<str> = s.into();
                KeyRange {
                    index: Some(IndexKind::Service),
                    start: IndexKey::Slot(service.clone(), 0),
                    within: Box::new(move |key| matches!(key, IndexKey::Slot(s, _) if *s == service)),
                }
            }
            By::NodeId(n) => exact(Some(IndexKind::Node), KeyRef::Node(n)),
            By::Slot(s, slot) => exact(Some(IndexKind::Slot), KeyRef::Slot(s, slot)),
            By::DesiredState(s) => exact(Some(IndexKind::DesiredState), KeyRef::DesiredState(s as i32)),
            By::TaskState(s) => exact(Some(IndexKind::TaskState), KeyRef::TaskState(s as i32)),
            By::Role(r) => exact(Some(IndexKind::Role), KeyRef::Role(r as i32)),
            By::Membership(m) => exact(Some(IndexKind::Membership), KeyRef::Membership(m as i32)),
        })
    }
}
