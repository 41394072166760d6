//! Secondary index keys.
//!
//! Every secondary index of a table lives in one ordered set of
//! `(IndexKey, id)` pairs: finding the tasks of a service is a range scan
//! over the pairs whose key is `Service(id)`. One dense set costs far less
//! memory than a set per key, most of which would hold a single id.

use std::sync::Arc;

use swarm_proto::v1::{NodeMembership, NodeRole, TaskState};

/// An object id as the indexes hold it: one allocation shared by every index
/// entry of the object.
pub type Id = Arc<str>;

/// The secondary indexes a kind may declare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexKind {
    /// Tasks by service.
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
    /// The task's service id.
    Service(&'a str),
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
    /// A label key, whatever its value.
    LabelKey(&'a str),
    /// A label key with its value.
    Label(&'a str, &'a str),
}

/// An owned index key, as the index set holds it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IndexKey {
    /// See [`KeyRef::Service`].
    Service(Arc<str>),
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
    /// See [`KeyRef::LabelKey`].
    LabelKey(Arc<str>),
    /// Key and value joined by a NUL, which neither may contain usefully:
    /// one allocation instead of two.
    Label(Arc<str>),
}

impl KeyRef<'_> {
    /// The owned form, allocated only for keys that are inserted or looked up.
    pub fn to_key(self) -> IndexKey {
        match self {
            KeyRef::Service(s) => IndexKey::Service(s.into()),
            KeyRef::Node(s) => IndexKey::Node(s.into()),
            KeyRef::Slot(s, slot) => IndexKey::Slot(s.into(), slot),
            KeyRef::DesiredState(v) => IndexKey::DesiredState(v),
            KeyRef::TaskState(v) => IndexKey::TaskState(v),
            KeyRef::Role(v) => IndexKey::Role(v),
            KeyRef::Membership(v) => IndexKey::Membership(v),
            KeyRef::LabelKey(k) => IndexKey::LabelKey(k.into()),
            KeyRef::Label(k, v) => IndexKey::Label(format!("{k}\0{v}").into()),
        }
    }
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

impl<'a> By<'a> {
    /// The index this selector reads and the key to look up, or `None` for
    /// the selectors served by the id and name maps.
    pub(crate) fn index_key(self) -> Option<(Option<IndexKind>, KeyRef<'a>)> {
        Some(match self {
            By::All | By::IdPrefix(_) | By::Name(_) | By::NamePrefix(_) => return None,
            By::LabelKey(k) => (None, KeyRef::LabelKey(k)),
            By::Label(k, v) => (None, KeyRef::Label(k, v)),
            By::ServiceId(s) => (Some(IndexKind::Service), KeyRef::Service(s)),
            By::NodeId(n) => (Some(IndexKind::Node), KeyRef::Node(n)),
            By::Slot(s, slot) => (Some(IndexKind::Slot), KeyRef::Slot(s, slot)),
            By::DesiredState(s) => (Some(IndexKind::DesiredState), KeyRef::DesiredState(s as i32)),
            By::TaskState(s) => (Some(IndexKind::TaskState), KeyRef::TaskState(s as i32)),
            By::Role(r) => (Some(IndexKind::Role), KeyRef::Role(r as i32)),
            By::Membership(m) => (Some(IndexKind::Membership), KeyRef::Membership(m as i32)),
        })
    }
}
