//! Create, update and remove: each one store transaction, committed through
//! Raft, answered with the object as stored.

use swarm_proto::v1::{
    Cluster, ClusterSpec, Config, ConfigSpec, Node, NodeMembership, NodeRole, NodeSpec, Secret, SecretSpec, Service,
    ServiceSpec, Task, UpdateStatus, node_status, port_config, service_spec, task_spec, update_status,
};
use swarm_store::{By, MemoryStore, Read as _, StoreObject, WriteTx};

use super::validate;
use crate::error::{Error, Result};

/// Serializes the writes whose checks read other objects: a service create
/// or update that names secrets or configs, against a secret's or config's
/// removal; one that publishes ports, against another such; and the
/// demotions of managers, each checking that another
/// manager stays. The store checks conflicts only on what a transaction
/// writes (see `MemoryStore::update`), and each of these rests on what it
/// only reads: run at once, a create could name a secret that a removal,
/// having found no user, deletes, two services take one port, or two
/// managers each be demoted as "not the last". One at a time, on the
/// manager that serves every write (the leader), they cannot interleave.
/// Services that do none of it, nearly all, do not wait.
#[derive(Clone, Default)]
pub(crate) struct CrossCheckLock(std::sync::Arc<tokio::sync::Mutex<()>>);

impl CrossCheckLock {
    /// Held while a write whose checks read other objects is checked and
    /// stored.
    async fn hold(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.0.lock().await
    }

    /// Held while a service spec that names secrets or configs, or
    /// publishes ports, is stored.
    async fn for_spec(&self, spec: &ServiceSpec) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        let container = spec.task.as_deref().and_then(|task| task.runtime.as_ref());
        let references = matches!(container, Some(task_spec::Runtime::Container(c)) if !c.secrets.is_empty() || !c.configs.is_empty());
        if !references && published_ports(spec).next().is_none() {
            return None;
        }
        Some(self.hold().await)
    }
}

/// The object of kind `T` with `id` inside a transaction, or NotFound.
fn current<T: StoreObject>(tx: &WriteTx, id: &str) -> Result<T, swarm_store::Error> {
    tx.get::<T>(id)
        .map(|object| T::clone(object))
        .ok_or_else(|| swarm_store::Error::NotFound {
            kind: T::KIND,
            id: id.to_string(),
        })
}

/// Sets the version the client read, which the store checks against the
/// stored one: a stale version is refused (Aborted), never merged.
fn at_version<T: StoreObject>(mut object: T, version: u64) -> T {
    object.meta_mut().version = version;
    object
}

/// Runs `f` as one transaction and answers with the object of kind `T`
/// and `id` as that transaction stored it, version and all. It is taken from
/// the transaction, not read back from the store, where a write that came
/// just after could already have changed or removed it (a create answered
/// NotFound). If `f` wrote nothing (an update that changed nothing), the
/// object as the store holds it.
async fn write<T: StoreObject>(store: &MemoryStore, id: &str, f: impl FnOnce(&mut WriteTx) -> Result<()>) -> Result<T> {
    let (written, index) = store
        .update_with_index(|tx| {
            f(tx)?;
            Ok::<_, Error>(tx.written::<T>(id))
        })
        .await?;
    match written {
        Some(object) => Ok(at_version(object, index)),
        None => super::read::get(store, "id", id),
    }
}

/// Creates `object` in a transaction of its own; returns it as stored
/// (with its version).
async fn insert<T: StoreObject>(store: &MemoryStore, object: T) -> Result<T> {
    let id = object.id().to_string();
    write(store, &id, |tx| Ok(tx.create(object)?)).await
}

fn required<'a>(field: &str, id: &'a str) -> Result<&'a str> {
    if id.is_empty() {
        Err(Error::InvalidArgument(format!("{field} is required")))
    } else {
        Ok(id)
    }
}

/// An update's version: the one the client read, which no stored object
/// has as 0 (a client that sends none has read nothing).
fn required_version(field: &str, version: u64) -> Result<u64> {
    if version == 0 {
        Err(Error::InvalidArgument(format!(
            "{field} is required: the version of the object as read, which the update is made on"
        )))
    } else {
        Ok(version)
    }
}

/// A service spec as stored, validated. A create that gives no mode gets a
/// replicated mode of one task (as `docker service create`); an update
/// must give one: the spec replaces the stored one whole, and a default
/// would scale the service down to one.
fn service_spec(spec: Option<ServiceSpec>, creates: bool) -> Result<ServiceSpec> {
    let mut spec = spec.ok_or_else(|| Error::InvalidArgument("spec is required".into()))?;
    if spec.mode.is_none() {
        if !creates {
            return Err(Error::InvalidArgument(
                "spec.mode is required: an update's spec replaces the service's whole, replicas included".into(),
            ));
        }
        spec.mode = Some(service_spec::Mode::Replicated(swarm_proto::v1::ReplicatedService {
            replicas: 1,
        }));
    }
    validate::service_spec(&spec)?;
    Ok(spec)
}

pub(crate) async fn create_service(
    store: &MemoryStore,
    cross_checks: &CrossCheckLock,
    spec: Option<ServiceSpec>,
) -> Result<Service> {
    let spec = service_spec(spec, true)?;
    let _serialized = cross_checks.for_spec(&spec).await;
    let id = swarm_store::id::generate();
    let service = Service {
        id: id.clone(),
        spec: Some(spec),
        ..Default::default()
    };
    write(store, &id, |tx| {
        let none = ServiceSpec::default();
        let spec = service.spec.as_ref().unwrap_or(&none);
        references_exist(tx, spec, false)?;
        ports_free(tx, spec, &service.id)?;
        Ok(tx.create(service)?)
    })
    .await
}

/// The ports `spec` publishes on nodes, as (published port, protocol,
/// routed by the ingress mesh rather than on the task's node alone).
fn published_ports(spec: &ServiceSpec) -> impl Iterator<Item = (u32, i32, bool)> + '_ {
    spec.endpoint
        .iter()
        .flat_map(|endpoint| &endpoint.ports)
        .filter(|port| port.published_port != 0)
        .map(|port| {
            let ingress = port.publish_mode() == port_config::PublishMode::Ingress;
            (port.published_port, port.protocol, ingress)
        })
}

/// Refuses a spec whose published ports collide with another service's,
/// as SwarmKit's `checkPortConflicts`: an ingress port is the cluster's, on
/// every node, so it collides with the same port published by another
/// service in either mode; two services may publish one port in host mode
/// (the scheduler keeps them on different nodes). Reads every service, so
/// only a spec that publishes ports pays; two cannot race (both hold the
/// [`CrossCheckLock`]).
fn ports_free(tx: &WriteTx, spec: &ServiceSpec, own_id: &str) -> Result<(), swarm_store::Error> {
    let wanted: Vec<(u32, i32, bool)> = published_ports(spec).collect();
    if wanted.is_empty() {
        return Ok(());
    }
    for other in tx.list::<Service>() {
        let Some(other_spec) = other.spec.as_ref().filter(|_| other.id != own_id) else {
            continue;
        };
        let collision = published_ports(other_spec).find_map(|(port, protocol, theirs_ingress)| {
            wanted
                .iter()
                .find(|&&(p, pr, ours_ingress)| (p, pr) == (port, protocol) && (ours_ingress || theirs_ingress))
                .map(|_| (port, protocol, theirs_ingress))
        });
        if let Some((port, protocol, theirs_ingress)) = collision {
            let name = other_spec.annotations.as_ref().map_or("", |a| a.name.as_str());
            let how = if theirs_ingress {
                "through the ingress mesh"
            } else {
                "in host mode"
            };
            return Err(swarm_store::Error::Invalid(format!(
                "spec.endpoint.ports: published port {port}/{} is already used by service {name:?} ({}) {how}",
                validate::protocol_name(protocol),
                other.id
            )));
        }
    }
    Ok(())
}

/// Refuses a spec that names a secret or config the store does not hold
/// (by ID, and by name where the reference gives one), as SwarmKit's
/// `checkSecretExistence`. A removal cannot slip in between: both hold the
/// [`CrossCheckLock`]. For a `rollback`, the spec is the one the service
/// had: one gone since is the state's fault, not the request's.
fn references_exist(tx: &WriteTx, spec: &ServiceSpec, rollback: bool) -> Result<()> {
    let Some(task_spec::Runtime::Container(container)) = spec.task.as_deref().and_then(|task| task.runtime.as_ref())
    else {
        return Ok(());
    };
    fn name<T: StoreObject>(object: &T) -> &str {
        object.annotations().map_or("", |annotations| annotations.name.as_str())
    }
    let secrets = container.secrets.iter().map(|r| {
        let stored = tx.get::<Secret>(&r.secret_id).map(|secret| name(secret.as_ref()));
        ("secret", &r.secret_id, &r.secret_name, stored)
    });
    let configs = container.configs.iter().map(|r| {
        let stored = tx.get::<Config>(&r.config_id).map(|config| name(config.as_ref()));
        ("config", &r.config_id, &r.config_name, stored)
    });
    for (kind, id, wanted_name, stored_name) in secrets.chain(configs) {
        match stored_name {
            None => {
                let named = match wanted_name.as_str() {
                    "" => format!("{id:?}"),
                    name => format!("{name:?} ({id})"),
                };
                return Err(if rollback {
                    Error::FailedPrecondition(format!(
                        "cannot roll back: the previous spec uses {kind} {named}, which no longer exists"
                    ))
                } else {
                    Error::InvalidArgument(format!("spec.task.container.{kind}s: {kind} {named} not found"))
                });
            }
            Some(stored_name) if !wanted_name.is_empty() && stored_name != wanted_name => {
                return Err(Error::InvalidArgument(format!(
                    "spec.task.container.{kind}s: {kind} {id:?} is named {stored_name:?}, not {wanted_name:?}"
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

pub(crate) async fn update_service(
    store: &MemoryStore,
    cross_checks: &CrossCheckLock,
    id: &str,
    version: u64,
    spec: Option<ServiceSpec>,
    rollback: bool,
) -> Result<Service> {
    let id = required("service_id", id)?;
    let version = required_version("service_version", version)?;
    // Checked before the transaction, which must not end empty-handed; a
    // change meanwhile fails it on the version anyway.
    let existing: Service = super::read::get(store, "service_id", id)?;
    let read_version = existing.meta.as_ref().map_or(0, |meta| meta.version);
    let next = if rollback {
        // The spec rolled back to is the one of the version the client
        // named: the transaction then holds it to that version.
        if read_version != version {
            return Err(swarm_store::Error::VersionConflict {
                kind: swarm_store::Kind::Service,
                id: id.to_string(),
                name: existing
                    .annotations()
                    .map(|annotations| annotations.name.clone())
                    .unwrap_or_default(),
                given: version,
                current: read_version,
            }
            .into());
        }
        existing
            .previous_spec
            .clone()
            .ok_or_else(|| Error::FailedPrecondition(format!("service {id} has no previous spec to roll back to")))?
    } else {
        // Said as what it is, before the new mode's own checks (a
        // replicated-only setting on a global spec, say) would say less.
        let existing_mode = existing.spec.as_ref().and_then(|spec| spec.mode.as_ref());
        let next_mode = spec.as_ref().and_then(|spec| spec.mode.as_ref());
        if next_mode.is_some() && !validate::same_mode_kind(existing_mode, next_mode) {
            return Err(Error::InvalidArgument(
                "spec.mode: a service cannot change between replicated, global and job modes".into(),
            ));
        }
        service_spec(spec, false)?
    };
    // Not even in case: the name is what the service is found by.
    let name = |spec: Option<&ServiceSpec>| spec.and_then(|spec| spec.annotations.as_ref()).map(|a| a.name.clone());
    if name(existing.spec.as_ref()) != name(Some(&next)) {
        return Err(Error::InvalidArgument(
            "spec.annotations.name: a service cannot be renamed".into(),
        ));
    }
    let _serialized = cross_checks.for_spec(&next).await;
    write(store, id, |tx| {
        // A stale version is refused before the checks that read the store
        // (a client told Aborted reads again), and even when nothing
        // changes.
        let mut service = Service::clone(tx.check_version::<Service>(id, version)?);
        references_exist(tx, &next, rollback)?;
        ports_free(tx, &next, id).map_err(|err| match err {
            swarm_store::Error::Invalid(why) if rollback => {
                Error::FailedPrecondition(format!("cannot roll back: {why}"))
            }
            err => err.into(),
        })?;
        if !rollback && service.spec.as_ref() == Some(&next) {
            // Nothing to change: no write, so that the previous spec (what
            // a rollback goes back to) is not replaced by this same one.
            return Ok(());
        }
        service.previous_spec = service.spec.replace(next);
        // As SwarmKit: a new spec starts with no update status (the
        // updater sets one); a rollback says who asked for it.
        service.update_status = rollback.then(|| UpdateStatus {
            state: update_status::State::RollbackStarted.into(),
            started_at: Some(std::time::SystemTime::now().into()),
            message: "manually requested rollback".into(),
            ..Default::default()
        });
        Ok(tx.update(service)?)
    })
    .await
}

/// How many times a write that names no version is made when updates keep
/// landing between its read and its commit.
const UNVERSIONED_ATTEMPTS: usize = 10;

/// Runs a write that names no version (a removal) until it commits on what
/// is stored then. The store refuses a transaction whose objects changed
/// after it read them, as it must for an update made on a version the
/// client read; but a removal only asks that the object go, as SwarmKit's
/// do, so an update landing first is no reason to refuse it: it is made
/// again (its checks too) on the newer object.
async fn unversioned<R, Write: Future<Output = Result<R>>>(mut write: impl FnMut() -> Write) -> Result<R> {
    let mut attempt = 1;
    loop {
        match write().await {
            Err(Error::Store(swarm_store::Error::VersionConflict { .. })) if attempt < UNVERSIONED_ATTEMPTS => {
                attempt += 1;
            }
            result => return result,
        }
    }
}

pub(crate) async fn remove<T: StoreObject>(store: &MemoryStore, field: &str, id: &str) -> Result<()> {
    let id = required(field, id)?;
    unversioned(|| async { Ok(store.update(|tx| tx.delete::<T>(id)).await?) }).await
}

pub(crate) async fn remove_node(store: &MemoryStore, id: &str, force: bool) -> Result<()> {
    let id = required("node_id", id)?;
    unversioned(|| remove_node_once(store, id, force)).await
}

async fn remove_node_once(store: &MemoryStore, id: &str, force: bool) -> Result<()> {
    store
        .update_with_index(|tx| {
            // Checked on the node the removal deletes (it carries that
            // version), so that a promotion or a node coming up just before
            // cannot slip past the checks.
            let node = current::<Node>(tx, id)?;
            if node.role == i32::from(NodeRole::Manager) {
                return Err(Error::FailedPrecondition(format!(
                    "node {id} is a manager: demote it before removing it"
                )));
            }
            let ready = node
                .status
                .as_ref()
                .is_some_and(|status| status.state == i32::from(node_status::State::Ready));
            if ready && !force {
                return Err(Error::FailedPrecondition(format!(
                    "node {id} is up: stop it first, or remove it with force"
                )));
            }
            Ok(tx.delete::<Node>(id)?)
        })
        .await?;
    Ok(())
}

pub(crate) async fn update_node(
    store: &MemoryStore,
    cross_checks: &CrossCheckLock,
    id: &str,
    version: u64,
    spec: Option<NodeSpec>,
) -> Result<Node> {
    let id = required("node_id", id)?;
    let version = required_version("node_version", version)?;
    let spec = spec.ok_or_else(|| Error::InvalidArgument("spec is required".into()))?;
    validate::node_spec(&spec)?;
    // "Another manager stays" rests on nodes the demotion does not write:
    // two demotions at once could each see the other's node still a
    // manager, so they take turns. (Judged on the node as read now: if it
    // changes before the transaction, the version check refuses the update.)
    let node: Node = super::read::get(store, "node_id", id)?;
    let _serialized = if demotes(&node, &spec) {
        Some(cross_checks.hold().await)
    } else {
        None
    };
    write(store, id, |tx| {
        // A stale version is refused before anything else is judged.
        let node = Node::clone(tx.check_version::<Node>(id, version)?);
        if node.spec.as_ref() == Some(&spec) {
            return Ok(()); // nothing changes: nothing written
        }
        let stored = node.spec.clone().unwrap_or_default();
        let name = |spec: &NodeSpec| spec.annotations.as_ref().map(|a| a.name.clone()).unwrap_or_default();
        if name(&spec) != name(&stored) {
            return Err(Error::InvalidArgument(
                "spec.annotations.name: a node is named by the hostname it reports; its spec's name cannot be changed"
                    .into(),
            ));
        }
        if stored.membership == i32::from(NodeMembership::Accepted)
            && spec.membership == i32::from(NodeMembership::Pending)
        {
            return Err(Error::InvalidArgument(
                "spec.membership: an accepted node cannot go back to pending (remove it instead)".into(),
            ));
        }
        if demotes(&node, &spec) && !another_manager(tx, id)? {
            return Err(Error::FailedPrecondition(format!(
                "node {id} is the last manager of the cluster: it cannot be demoted"
            )));
        }
        Ok(tx.update(Node {
            spec: Some(spec),
            ..node
        })?)
    })
    .await
}

/// Whether `spec` asks a manager to become a worker.
fn demotes(node: &Node, spec: &NodeSpec) -> bool {
    let manager = i32::from(NodeRole::Manager);
    spec.desired_role != manager && node.spec.as_ref().map_or(node.role, |spec| spec.desired_role) == manager
}

/// Whether a manager other than `id` stays one (not itself being demoted).
fn another_manager(tx: &WriteTx, id: &str) -> Result<bool, swarm_store::Error> {
    let managers = tx.find::<Node>(By::Role(NodeRole::Manager))?;
    Ok(managers.iter().any(|node| {
        node.id != id
            && node
                .spec
                .as_ref()
                .is_none_or(|spec| spec.desired_role == i32::from(NodeRole::Manager))
    }))
}

pub(crate) async fn update_cluster(
    store: &MemoryStore,
    id: &str,
    version: u64,
    spec: Option<ClusterSpec>,
) -> Result<Cluster> {
    let id = required("cluster_id", id)?;
    let version = required_version("cluster_version", version)?;
    let mut spec = spec.ok_or_else(|| Error::InvalidArgument("spec is required".into()))?;
    validate::cluster_spec(&spec)?;
    write(store, id, |tx| {
        let mut cluster = Cluster::clone(tx.check_version::<Cluster>(id, version)?);
        keep_recorded_ticks(&mut spec, cluster.spec.as_ref())?;
        keep_left_out(&mut spec, cluster.spec.as_ref());
        if cluster.spec.as_ref() == Some(&spec) {
            return Ok(()); // nothing changes: nothing written
        }
        let name = |spec: Option<&ClusterSpec>| {
            spec.and_then(|spec| spec.annotations.as_ref())
                .map(|annotations| annotations.name.clone())
        };
        if name(cluster.spec.as_ref()) != name(Some(&spec)) {
            return Err(Error::InvalidArgument(
                "spec.annotations.name: a cluster cannot be renamed".into(),
            ));
        }
        cluster.spec = Some(spec);
        Ok(tx.update(cluster)?)
    })
    .await
}

/// The settings a cluster update leaves out stay as stored (as the Raft
/// settings do): the orchestration settings, and the dispatcher's heartbeat
/// and the certificates' lifetime, which have no "unset" a node could go
/// by. A client that sends only what it changes clears nothing.
fn keep_left_out(spec: &mut ClusterSpec, stored: Option<&ClusterSpec>) {
    let Some(stored) = stored else { return };
    if spec.orchestration.is_none() {
        spec.orchestration = stored.orchestration;
    }
    if let Some(period) = stored.dispatcher.and_then(|stored| stored.heartbeat_period) {
        (spec.dispatcher.get_or_insert_default().heartbeat_period).get_or_insert(period);
    }
    if let Some(expiry) = stored.ca_config.and_then(|stored| stored.node_cert_expiry) {
        (spec.ca_config.get_or_insert_default().node_cert_expiry).get_or_insert(expiry);
    }
}

/// The Raft ticks of a cluster update: they record the first manager's
/// timing, and a changed value would be stored and shown but never used,
/// so one is refused. A spec that leaves them unset (or leaves out its Raft
/// settings) keeps those recorded.
fn keep_recorded_ticks(spec: &mut ClusterSpec, stored: Option<&ClusterSpec>) -> Result<()> {
    let Some(recorded) = stored.and_then(|stored| stored.raft.as_ref()) else {
        return Ok(());
    };
    let Some(raft) = spec.raft.as_mut() else {
        spec.raft = Some(*recorded);
        return Ok(());
    };
    let unchanged = |given: bool, same: bool| !given || same;
    if !(unchanged(raft.tick.is_some(), raft.tick == recorded.tick)
        && unchanged(raft.heartbeat_tick != 0, raft.heartbeat_tick == recorded.heartbeat_tick)
        && unchanged(raft.election_tick != 0, raft.election_tick == recorded.election_tick))
    {
        return Err(Error::InvalidArgument(
            "spec.raft.tick, heartbeat_tick and election_tick cannot be changed: they record the first \
             manager's timing, and each manager's own is set by its --tick, --heartbeat-tick and \
             --election-tick flags"
                .into(),
        ));
    }
    raft.tick = recorded.tick;
    raft.heartbeat_tick = recorded.heartbeat_tick;
    raft.election_tick = recorded.election_tick;
    Ok(())
}

pub(crate) async fn create_secret(store: &MemoryStore, spec: Option<SecretSpec>) -> Result<Secret> {
    let spec = spec.ok_or_else(|| Error::InvalidArgument("spec is required".into()))?;
    validate::secret_or_config(
        "secret",
        spec.annotations.as_ref(),
        &spec.data,
        validate::MAX_SECRET_BYTES,
    )?;
    let secret = Secret {
        id: swarm_store::id::generate(),
        spec: Some(spec),
        ..Default::default()
    };
    insert(store, secret).await
}

pub(crate) async fn create_config(store: &MemoryStore, spec: Option<ConfigSpec>) -> Result<Config> {
    let spec = spec.ok_or_else(|| Error::InvalidArgument("spec is required".into()))?;
    validate::secret_or_config(
        "config",
        spec.annotations.as_ref(),
        &spec.data,
        validate::MAX_CONFIG_BYTES,
    )?;
    let config = Config {
        id: swarm_store::id::generate(),
        spec: Some(spec),
        ..Default::default()
    };
    insert(store, config).await
}

/// A secret or a config: named data that is immutable but for its labels.
pub(crate) trait LabeledData: StoreObject {
    /// The request field naming its id.
    const ID_FIELD: &'static str;
    /// The request field naming the version it was read at.
    const VERSION_FIELD: &'static str;
    /// Whether reads return its data (a config's), so that a client may
    /// send it back unchanged; a secret's never is.
    const DATA_RETURNED: bool;
    /// Its annotations and data.
    fn parts(&self) -> (Option<&swarm_proto::v1::Annotations>, &[u8]);
    /// Replaces its annotations.
    fn set_annotations(&mut self, annotations: Option<swarm_proto::v1::Annotations>);
}

impl LabeledData for Secret {
    const ID_FIELD: &'static str = "secret_id";
    const VERSION_FIELD: &'static str = "secret_version";
    const DATA_RETURNED: bool = false;
    fn parts(&self) -> (Option<&swarm_proto::v1::Annotations>, &[u8]) {
        self.spec
            .as_ref()
            .map_or((None, &[][..]), |spec| (spec.annotations.as_ref(), &spec.data[..]))
    }
    fn set_annotations(&mut self, annotations: Option<swarm_proto::v1::Annotations>) {
        self.spec.get_or_insert_with(Default::default).annotations = annotations;
    }
}

impl LabeledData for Config {
    const ID_FIELD: &'static str = "config_id";
    const VERSION_FIELD: &'static str = "config_version";
    const DATA_RETURNED: bool = true;
    fn parts(&self) -> (Option<&swarm_proto::v1::Annotations>, &[u8]) {
        self.spec
            .as_ref()
            .map_or((None, &[][..]), |spec| (spec.annotations.as_ref(), &spec.data[..]))
    }
    fn set_annotations(&mut self, annotations: Option<swarm_proto::v1::Annotations>) {
        self.spec.get_or_insert_with(Default::default).annotations = annotations;
    }
}

/// Changes a secret's or config's labels (SwarmKit allows nothing else):
/// `annotations` and `data` are the request's spec.
pub(crate) async fn update_labels<T: LabeledData>(
    store: &MemoryStore,
    id: &str,
    version: u64,
    spec: Option<(Option<swarm_proto::v1::Annotations>, Vec<u8>)>,
) -> Result<T> {
    let id = required(T::ID_FIELD, id)?;
    let version = required_version(T::VERSION_FIELD, version)?;
    let (annotations, data) = spec.ok_or_else(|| Error::InvalidArgument("spec is required".into()))?;
    let existing: T = super::read::get(store, T::ID_FIELD, id)?;
    let (existing_annotations, existing_data) = existing.parts();
    if !T::DATA_RETURNED && !data.is_empty() {
        // Compared with the stored data, it would tell a caller whether a
        // guess of the secret is right.
        return Err(Error::InvalidArgument(
            "spec.data: a secret's data never changes and is never sent back; send none".into(),
        ));
    }
    only_labels_changed(existing_annotations, annotations.as_ref(), existing_data, &data)?;
    if let Some(annotations) = &annotations {
        validate::labels("spec.annotations.labels", &annotations.labels)?;
    }
    write(store, id, |tx| {
        let mut object = T::clone(tx.check_version::<T>(id, version)?);
        if object.parts().0 == annotations.as_ref() {
            return Ok(()); // nothing changes: nothing written
        }
        object.set_annotations(annotations);
        Ok(tx.update(object)?)
    })
    .await
}

/// Refuses any change to a secret's or config's name or data; an empty
/// `data` in the request means "unchanged" (reads never return it).
fn only_labels_changed(
    stored: Option<&swarm_proto::v1::Annotations>,
    requested: Option<&swarm_proto::v1::Annotations>,
    stored_data: &[u8],
    requested_data: &[u8],
) -> Result<()> {
    let name =
        |annotations: Option<&swarm_proto::v1::Annotations>| annotations.map(|a| a.name.clone()).unwrap_or_default();
    if name(stored) != name(requested) {
        return Err(Error::InvalidArgument(
            "spec.annotations.name: only labels can be updated".into(),
        ));
    }
    if !requested_data.is_empty() && requested_data != stored_data {
        return Err(Error::InvalidArgument("spec.data: only labels can be updated".into()));
    }
    Ok(())
}

/// Refuses to remove a secret or config a service uses.
pub(crate) async fn remove_referenced<T: StoreObject>(
    store: &MemoryStore,
    cross_checks: &CrossCheckLock,
    field: &str,
    id: &str,
    used_by: impl Fn(&swarm_proto::v1::ContainerSpec, &str) -> bool,
) -> Result<()> {
    let id = required(field, id)?;
    // No service that names it can be stored between the check and the
    // removal.
    let _serialized = cross_checks.hold().await;
    let (name, users): (Option<String>, Vec<String>) = store.view(|read| {
        let name = read
            .get::<T>(id)
            .and_then(|object| object.annotations().map(|annotations| annotations.name.clone()));
        let users = read
            .list::<Service>()
            .into_iter()
            .filter(|service| {
                let container = service
                    .spec
                    .as_ref()
                    .and_then(|spec| spec.task.as_deref())
                    .and_then(|task| task.runtime.as_ref())
                    .map(|task_spec::Runtime::Container(container)| container);
                container.is_some_and(|container| used_by(container, id))
            })
            .map(|service| {
                service
                    .spec
                    .as_ref()
                    .and_then(|spec| spec.annotations.as_ref())
                    .map(|a| a.name.clone())
                    .unwrap_or_default()
            })
            .collect();
        (name, users)
    });
    if !users.is_empty() {
        // Named as the operator knows it, with the ID for the unambiguous.
        let named = swarm_store::named(name.as_deref().unwrap_or_default(), id);
        return Err(Error::FailedPrecondition(format!(
            "{} {named} is in use by {}",
            T::KIND,
            some_services(users)
        )));
    }
    remove::<T>(store, field, id).await
}

/// The most services an error names; the rest are counted.
const SERVICES_NAMED: usize = 10;

/// "service a", "services a, b", or the first [`SERVICES_NAMED`] in
/// order "and 290 more": an error line stays readable however many use
/// an object.
fn some_services(mut names: Vec<String>) -> String {
    names.sort_unstable();
    let more = names.len().saturating_sub(SERVICES_NAMED);
    let plural = if names.len() == 1 { "" } else { "s" };
    let total = names.len();
    names.truncate(SERVICES_NAMED);
    let listed = names.join(", ");
    if more == 0 {
        format!("service{plural} {listed}")
    } else {
        format!("{total} services: {listed} and {more} more")
    }
}

/// Removes a task (its service's orchestrator replaces it if still wanted).
pub(crate) async fn remove_task(store: &MemoryStore, id: &str) -> Result<()> {
    remove::<Task>(store, "task_id", id).await
}

#[cfg(test)]
mod tests {
    use super::some_services;

    #[test]
    fn the_services_using_an_object_are_named_in_order_and_at_most_ten() {
        let names = |count: usize| (0..count).rev().map(|n| format!("s{n:03}")).collect::<Vec<_>>();
        assert_eq!(some_services(names(1)), "service s000");
        assert_eq!(some_services(names(2)), "services s000, s001");
        assert_eq!(
            some_services(names(300)),
            "300 services: s000, s001, s002, s003, s004, s005, s006, s007, s008, s009 and 290 more"
        );
    }
}
