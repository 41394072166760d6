//! The whole store at one Raft index: six tables. Applying a committed
//! transaction to it is where every write finally lands.

use std::sync::Arc;

use swarm_proto::v1::{Cluster, Config, Node, Secret, Service, Task, store_action};

use crate::id::Id;
use crate::table::{Checked, Deferred, Table};
use crate::tx::Pending;
use crate::watch::{Action, Change};
use crate::{Error, Kind, Object, Result, StoreObject};

/// Every table, at one point in the log.
#[derive(Clone, Default)]
pub struct State {
    /// Raft index of the last entry applied.
    pub index: u64,
    pub(crate) nodes: Table<Node>,
    pub(crate) services: Table<Service>,
    pub(crate) tasks: Table<Task>,
    pub(crate) clusters: Table<Cluster>,
    pub(crate) secrets: Table<Secret>,
    pub(crate) configs: Table<Config>,
}

impl Action {
    pub(crate) fn from_proto(kind: i32) -> Result<Action> {
        match store_action::Kind::try_from(kind) {
            Ok(store_action::Kind::Create) => Ok(Action::Create),
            Ok(store_action::Kind::Update) => Ok(Action::Update),
            Ok(store_action::Kind::Remove) => Ok(Action::Remove),
            _ => Err(Error::Invalid(format!("unknown store action kind {kind}"))),
        }
    }

    pub(crate) fn to_proto(self) -> store_action::Kind {
        match self {
            Action::Create => store_action::Kind::Create,
            Action::Update => store_action::Kind::Update,
            Action::Remove => store_action::Kind::Remove,
        }
    }
}

impl State {
    /// Applies one change of a committed transaction at `index`, checking it
    /// against this state exactly as the writer's transaction did: the
    /// writer's checks ran on an older state, and a concurrent writer may
    /// have committed in between. Deterministic, so every manager agrees.
    pub(crate) fn apply(&mut self, action: Action, object: Object, index: u64) -> Result<Change> {
        match object {
            Object::Node(o) => self.apply_to::<Node>(action, o, index),
            Object::Service(o) => self.apply_to::<Service>(action, o, index),
            Object::Task(o) => self.apply_to::<Task>(action, o, index),
            Object::Cluster(o) => self.apply_to::<Cluster>(action, o, index),
            Object::Secret(o) => self.apply_to::<Secret>(action, o, index),
            Object::Config(o) => self.apply_to::<Config>(action, o, index),
        }
    }

    fn apply_to<T: StoreObject>(&mut self, action: Action, mut obj: Arc<T>, index: u64) -> Result<Change> {
        if action != Action::Remove {
            // The object is usually owned by this transaction alone: changing
            // it copies nothing.
            Arc::make_mut(&mut obj).share_parts(self);
        }
        let table = T::table_mut(self);
        let at = match action {
            Action::Create => table.check_create(&obj)?,
            Action::Update => table.check_update(&obj)?,
            Action::Remove => {
                table.check_version(obj.id(), obj.version())?;
                let old = table.remove(obj.id()).map(|(_, old)| T::into_object(old));
                return Ok(Change { action, old, new: None });
            }
        };
        Arc::make_mut(&mut obj).meta_mut().version = index;
        table.insert(&at, obj.clone());
        Ok(Change {
            action,
            old: at.old.map(T::into_object),
            new: Some(T::into_object(obj)),
        })
    }

    /// Sets the version of a stored object, in place when this state alone
    /// holds it; returns it.
    pub(crate) fn stamp(&mut self, kind: Kind, id: Id, version: u64) -> Option<Object> {
        fn stamp<T: StoreObject>(state: &mut State, id: Id, version: u64) -> Option<Object> {
            T::table_mut(state).stamp(id, version).map(T::into_object)
        }
        match kind {
            Kind::Node => stamp::<Node>(self, id, version),
            Kind::Service => stamp::<Service>(self, id, version),
            Kind::Task => stamp::<Task>(self, id, version),
            Kind::Cluster => stamp::<Cluster>(self, id, version),
            Kind::Secret => stamp::<Secret>(self, id, version),
            Kind::Config => stamp::<Config>(self, id, version),
        }
    }

    /// Applies a change a write transaction recorded, checked already
    /// against this very state: the object as the transaction left it goes
    /// in (or, for a remove, out), with no check and no version.
    pub(crate) fn replay(&mut self, pending: &Pending) {
        fn replay<T: StoreObject>(state: &mut State, pending: &Pending) {
            let table = T::table_mut(state);
            match pending.action {
                None => {}
                Some(Action::Remove) => {
                    table.remove(pending.object.id());
                }
                Some(Action::Create | Action::Update) => {
                    let Some(obj) = T::from_object(&pending.object) else {
                        return;
                    };
                    let old = pending.old.as_ref().and_then(T::from_object).cloned();
                    table.insert(&Checked { id: pending.id, old }, obj.clone());
                }
            }
        }
        match pending.object.kind() {
            Kind::Node => replay::<Node>(self, pending),
            Kind::Service => replay::<Service>(self, pending),
            Kind::Task => replay::<Task>(self, pending),
            Kind::Cluster => replay::<Cluster>(self, pending),
            Kind::Secret => replay::<Secret>(self, pending),
            Kind::Config => replay::<Config>(self, pending),
        }
    }

    /// Rebuilds every index and compares.
    pub(crate) fn verify_indexes(&self) -> Result<()> {
        self.nodes.verify_indexes()?;
        self.services.verify_indexes()?;
        self.tasks.verify_indexes()?;
        self.clusters.verify_indexes()?;
        self.secrets.verify_indexes()?;
        self.configs.verify_indexes()
    }
}

/// Rebuilds a state from a snapshot's objects, one at a time.
#[derive(Default)]
pub(crate) struct Restorer {
    state: State,
    /// Per kind, in [`Kind::ALL`] order.
    deferred: [Deferred; 6],
}

impl Restorer {
    /// The state rebuilt so far (objects in, name and index entries not).
    pub(crate) fn state(&self) -> &State {
        &self.state
    }

    /// Adds an object, keeping its version.
    pub(crate) fn add(&mut self, object: Object) -> Result<()> {
        fn add<T: StoreObject>(r: &mut Restorer, mut obj: Arc<T>) -> Result<()> {
            Arc::make_mut(&mut obj).share_parts(&r.state);
            T::table_mut(&mut r.state).insert_deferred(obj, &mut r.deferred[T::KIND as usize])
        }
        match object {
            Object::Node(o) => add(self, o),
            Object::Service(o) => add(self, o),
            Object::Task(o) => add(self, o),
            Object::Cluster(o) => add(self, o),
            Object::Secret(o) => add(self, o),
            Object::Config(o) => add(self, o),
        }
    }

    /// The state, at `index`, once every index is in.
    pub(crate) fn finish(self, index: u64) -> Result<State> {
        let Restorer { mut state, deferred } = self;
        let [nodes, services, tasks, clusters, secrets, configs] = deferred;
        state.nodes.finish_deferred(nodes)?;
        state.services.finish_deferred(services)?;
        state.tasks.finish_deferred(tasks)?;
        state.clusters.finish_deferred(clusters)?;
        state.secrets.finish_deferred(secrets)?;
        state.configs.finish_deferred(configs)?;
        state.index = index;
        Ok(state)
    }
}
