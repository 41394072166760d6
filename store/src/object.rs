//! What every stored kind has in common: the [`StoreObject`] trait, the
//! [`Kind`] tag and [`Object`], a stored object of any kind.

use std::fmt;
use std::sync::Arc;

use swarm_proto::v1::{Annotations, Cluster, Config, Meta, Node, Secret, Service, Task, store_action::Target};

use crate::index::{IndexKind, KeyRef};
use crate::state::State;
use crate::table::Table;

/// The kinds of objects the store holds, one table each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// [`Node`]: a host of the cluster.
    Node,
    /// [`Service`]: what the operator asked to run.
    Service,
    /// [`Task`]: one instance of a service, placed on one node.
    Task,
    /// [`Cluster`]: cluster-wide settings, CA and join tokens.
    Cluster,
    /// [`Secret`]: sensitive data handed to tasks.
    Secret,
    /// [`Config`]: non-sensitive data handed to tasks.
    Config,
}

impl Kind {
    /// Every kind, in table order.
    pub const ALL: [Kind; 6] = [
        Kind::Node,
        Kind::Service,
        Kind::Task,
        Kind::Cluster,
        Kind::Secret,
        Kind::Config,
    ];

    /// The lower-case name used in messages and in the Watch API.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Node => "node",
            Kind::Service => "service",
            Kind::Task => "task",
            Kind::Cluster => "cluster",
            Kind::Secret => "secret",
            Kind::Config => "config",
        }
    }

    pub(crate) fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored object of any kind, shared: cloning one is a reference count.
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    /// A node.
    Node(Arc<Node>),
    /// A service.
    Service(Arc<Service>),
    /// A task.
    Task(Arc<Task>),
    /// The cluster object.
    Cluster(Arc<Cluster>),
    /// A secret.
    Secret(Arc<Secret>),
    /// A config.
    Config(Arc<Config>),
}

/// Runs `$body` with `$obj` bound to the inner `Arc` of whatever kind.
macro_rules! each_object {
    ($value:expr, $obj:ident => $body:expr) => {
        match $value {
            Object::Node($obj) => $body,
            Object::Service($obj) => $body,
            Object::Task($obj) => $body,
            Object::Cluster($obj) => $body,
            Object::Secret($obj) => $body,
            Object::Config($obj) => $body,
        }
    };
}

impl Object {
    /// As [`StoreObject::removal_key`], of whatever kind.
    pub(crate) fn removal_key(&self) -> Object {
        match self {
            Object::Node(o) => Object::Node(Arc::new(o.removal_key())),
            Object::Service(o) => Object::Service(Arc::new(o.removal_key())),
            Object::Task(o) => Object::Task(Arc::new(o.removal_key())),
            Object::Cluster(o) => Object::Cluster(Arc::new(o.removal_key())),
            Object::Secret(o) => Object::Secret(Arc::new(o.removal_key())),
            Object::Config(o) => Object::Config(Arc::new(o.removal_key())),
        }
    }

    /// The object's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Object::Node(_) => Kind::Node,
            Object::Service(_) => Kind::Service,
            Object::Task(_) => Kind::Task,
            Object::Cluster(_) => Kind::Cluster,
            Object::Secret(_) => Kind::Secret,
            Object::Config(_) => Kind::Config,
        }
    }

    /// The object's id.
    pub fn id(&self) -> &str {
        each_object!(self, o => o.id())
    }

    /// The object's version: the Raft index of the write that produced it.
    pub fn version(&self) -> u64 {
        each_object!(self, o => o.version())
    }

    /// The object as a store action's target; copied only if shared.
    pub fn into_target(self) -> Target {
        match self {
            Object::Node(o) => Target::Node(Arc::unwrap_or_clone(o)),
            Object::Service(o) => Target::Service(Arc::unwrap_or_clone(o)),
            Object::Task(o) => Target::Task(Arc::unwrap_or_clone(o)),
            Object::Cluster(o) => Target::Cluster(Arc::unwrap_or_clone(o)),
            Object::Secret(o) => Target::Secret(Arc::unwrap_or_clone(o)),
            Object::Config(o) => Target::Config(Arc::unwrap_or_clone(o)),
        }
    }

    /// Wraps a store action's target.
    pub fn from_target(target: Target) -> Object {
        match target {
            Target::Node(o) => Object::Node(Arc::new(o)),
            Target::Service(o) => Object::Service(Arc::new(o)),
            Target::Task(o) => Object::Task(Arc::new(o)),
            Target::Cluster(o) => Object::Cluster(Arc::new(o)),
            Target::Secret(o) => Object::Secret(Arc::new(o)),
            Target::Config(o) => Object::Config(Arc::new(o)),
        }
    }

    /// The inner object, if it is a `T`.
    pub fn downcast<T: StoreObject>(&self) -> Option<&Arc<T>> {
        T::from_object(self)
    }

    /// Size of the object once encoded, to bound proposals.
    pub(crate) fn encoded_len(&self) -> usize {
        each_object!(self, o => prost::Message::encoded_len(o.as_ref()))
    }
}

/// A kind of object the store can hold: one table, its indexes, and how the
/// object travels in a store action.
///
/// Implemented for each of the six object types, in one file per kind
/// (`nodes.rs`, `tasks.rs`, ...).
pub trait StoreObject: prost::Message + Clone + Default + PartialEq + Send + Sync + 'static {
    /// The kind tag.
    const KIND: Kind;

    /// Secondary indexes this kind keeps, beyond id and name.
    #[doc(hidden)]
    const INDEXES: &'static [IndexKind];

    /// The object's id.
    fn id(&self) -> &str;

    /// The object's bookkeeping, if set.
    fn meta(&self) -> Option<&Meta>;

    /// The object's bookkeeping, created if missing.
    fn meta_mut(&mut self) -> &mut Meta;

    /// The object's version (0 if never stored).
    fn version(&self) -> u64 {
        self.meta().map_or(0, |m| m.version)
    }

    /// Name and labels: the name is unique per kind, and labels are indexed.
    fn annotations(&self) -> Option<&Annotations>;

    /// The keys of this kind's own secondary indexes (labels excluded; they
    /// come from [`StoreObject::annotations`]).
    #[doc(hidden)]
    fn own_index_keys<'a>(&'a self, keys: &mut smallvec::SmallVec<[KeyRef<'a>; 8]>);

    /// Points parts this object holds equal to another object's at that
    /// object's copy, so that they are held once (a task's spec and its
    /// service's). Called for every object a write stores; `state` is the
    /// state it is stored into.
    #[doc(hidden)]
    fn share_parts(&mut self, _state: &State) {}

    /// What a removal of this object carries in the log: its id and the
    /// version the writer read, all a manager applying it needs (it has
    /// the rest). A whole object would cost a removal of a large secret as
    /// much log as its create.
    #[doc(hidden)]
    fn removal_key(&self) -> Self;

    /// Wraps a shared object as an [`Object`].
    fn into_object(this: Arc<Self>) -> Object;

    /// The inner object, if `object` is of this kind.
    fn from_object(object: &Object) -> Option<&Arc<Self>>;

    #[doc(hidden)]
    fn table(state: &State) -> &Table<Self>;

    #[doc(hidden)]
    fn table_mut(state: &mut State) -> &mut Table<Self>;
}

/// The parts of [`StoreObject`] that are the same for every kind.
macro_rules! store_object_common {
    ($ty:ident, $table:ident) => {
        const KIND: $crate::Kind = $crate::Kind::$ty;

        fn id(&self) -> &str {
            &self.id
        }

        fn meta(&self) -> Option<&swarm_proto::v1::Meta> {
            self.meta.as_ref()
        }

        fn meta_mut(&mut self) -> &mut swarm_proto::v1::Meta {
            self.meta.get_or_insert_with(Default::default)
        }

        fn removal_key(&self) -> Self {
            Self {
                id: self.id.clone(),
                meta: self.meta.as_ref().map(|meta| swarm_proto::v1::Meta {
                    version: meta.version,
                    ..Default::default()
                }),
                ..Default::default()
            }
        }

        fn into_object(this: std::sync::Arc<Self>) -> $crate::Object {
            $crate::Object::$ty(this)
        }

        fn from_object(object: &$crate::Object) -> Option<&std::sync::Arc<Self>> {
            match object {
                $crate::Object::$ty(o) => Some(o),
                _ => None,
            }
        }

        fn table(state: &$crate::state::State) -> &$crate::table::Table<Self> {
            &state.$table
        }

        fn table_mut(state: &mut $crate::state::State) -> &mut $crate::table::Table<Self> {
            &mut state.$table
        }
    };
}
pub(crate) use store_object_common;
