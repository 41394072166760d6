//! Property test: random creates, updates and removes, checked after every
//! step against a plain model (maps scanned in full), and every index
//! rebuilt from its table and compared.

mod common;

use std::collections::BTreeMap;

use common::store_through_apply;
use futures::executor::block_on;
use proptest::prelude::*;
use swarm_proto::v1::{Annotations, Node, NodeRole, Task, TaskState, TaskStatus};
use swarm_store::{By, Error, MemoryStore, Read, StoreObject};

/// Ids (25 characters of 0-9a-z) that tasks refer to.
const SERVICES: [&str; 3] = [
    "0svc000000000000000000001",
    "0svc000000000000000000002",
    "0svc000000000000000000003",
];
const NODES: [&str; 3] = [
    "0node00000000000000000001",
    "0node00000000000000000002",
    "0node00000000000000000003",
];
/// Names differing only in case, so that case-insensitive uniqueness is hit.
const NAMES: [&str; 5] = ["web", "WEB", "Api", "db", "cache"];
const STATES: [TaskState; 4] = [
    TaskState::New,
    TaskState::Assigned,
    TaskState::Running,
    TaskState::Shutdown,
];
/// The last two would share one index key if key and value were simply
/// joined by a NUL ("zone\0a\0b"), and "zone\0a" would pass for "zone".
const LABELS: [(&str, &str); 5] = [
    ("zone", "a"),
    ("zone", "b"),
    ("tier", "front"),
    ("zone", "a\0b"),
    ("zone\0a", "b"),
];

#[derive(Clone, Debug)]
struct Fields {
    name: Option<usize>,
    label: Option<usize>,
    service: usize,
    slot: u64,
    node: Option<usize>,
    state: usize,
    desired: usize,
    role: bool,
}

#[derive(Clone, Debug)]
enum Op {
    CreateTask(Fields),
    UpdateTask(usize, Fields),
    RemoveTask(usize),
    CreateNode(Fields),
    UpdateNode(usize, Fields),
    RemoveNode(usize),
    /// A transaction that creates a task and then fails: must leave nothing.
    Aborted(Fields),
}

fn fields() -> impl Strategy<Value = Fields> {
    (
        proptest::option::of(0..NAMES.len()),
        proptest::option::of(0..LABELS.len()),
        0..SERVICES.len(),
        0u64..3,
        proptest::option::of(0..NODES.len()),
        0..STATES.len(),
        0..STATES.len(),
        any::<bool>(),
    )
        .prop_map(|(name, label, service, slot, node, state, desired, role)| Fields {
            name,
            label,
            service,
            slot,
            node,
            state,
            desired,
            role,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => fields().prop_map(Op::CreateTask),
        3 => (any::<usize>(), fields()).prop_map(|(i, f)| Op::UpdateTask(i, f)),
        1 => any::<usize>().prop_map(Op::RemoveTask),
        2 => fields().prop_map(Op::CreateNode),
        2 => (any::<usize>(), fields()).prop_map(|(i, f)| Op::UpdateNode(i, f)),
        1 => any::<usize>().prop_map(Op::RemoveNode),
        1 => fields().prop_map(Op::Aborted),
    ]
}

fn annotations(f: &Fields) -> Option<Annotations> {
    Some(Annotations {
        name: f.name.map(|i| NAMES[i].to_owned()).unwrap_or_default(),
        labels: f
            .label
            .map(|i| (LABELS[i].0.to_owned(), LABELS[i].1.to_owned()))
            .into_iter()
            .collect(),
    })
}

fn shape_task(t: &mut Task, f: &Fields) {
    t.annotations = annotations(f);
    t.service_id = SERVICES[f.service].to_owned();
    t.slot = f.slot;
    t.node_id = f.node.map(|i| NODES[i].to_owned()).unwrap_or_default();
    t.status = Some(TaskStatus {
        state: STATES[f.state] as i32,
        ..Default::default()
    });
    t.desired_state = STATES[f.desired] as i32;
}

fn shape_node(n: &mut Node, f: &Fields) {
    n.spec.get_or_insert_with(Default::default).annotations = annotations(f);
    n.role = if f.role { NodeRole::Manager } else { NodeRole::Worker } as i32;
}

/// The model: objects by id, without meta.
#[derive(Default)]
struct Model {
    tasks: BTreeMap<String, Task>,
    nodes: BTreeMap<String, Node>,
}

fn name_taken<T: StoreObject>(objects: &BTreeMap<String, T>, id: &str, obj: &T) -> bool {
    let name = obj.annotations().map(|a| a.name.to_lowercase()).unwrap_or_default();
    !name.is_empty()
        && objects
            .iter()
            .any(|(other, o)| other != id && o.annotations().map(|a| a.name.to_lowercase()) == Some(name.clone()))
}

fn pick<T: Clone>(map: &BTreeMap<String, T>, i: usize) -> Option<(String, T)> {
    if map.is_empty() {
        return None;
    }
    map.iter().nth(i % map.len()).map(|(k, v)| (k.clone(), v.clone()))
}

/// A new task with a fresh id, shaped by `f`.
fn new_task(f: &Fields) -> Task {
    let mut t = Task {
        id: swarm_store::id::generate(),
        ..Default::default()
    };
    shape_task(&mut t, f);
    t
}

/// A new node with a fresh id, shaped by `f`.
fn new_node(f: &Fields) -> Node {
    let mut n = Node {
        id: swarm_store::id::generate(),
        ..Default::default()
    };
    shape_node(&mut n, f);
    n
}

/// Creates, updates (reshaping with `f`) or removes one object of kind `T`
/// in the store and in its model table; both must agree on success.
fn write<T: StoreObject>(
    store: &MemoryStore,
    objects: &mut BTreeMap<String, T>,
    shape: fn(&mut T, &Fields),
    op: Write<'_, T>,
) -> Result<(), TestCaseError> {
    match op {
        Write::Create(obj) => {
            let conflict = name_taken(objects, obj.id(), &obj);
            let result = block_on(store.update(|tx| tx.create(obj.clone())));
            record(result, objects, obj.id().to_owned(), Some(obj), conflict)
        }
        Write::Update(i, f) => {
            let Some((id, _)) = pick(objects, i) else {
                return Ok(());
            };
            let mut obj = (**store.read().get::<T>(&id).expect("model and store agree on ids")).clone();
            shape(&mut obj, f);
            let conflict = name_taken(objects, &id, &obj);
            let result = block_on(store.update(|tx| tx.update(obj.clone())));
            record(result, objects, id, Some(obj), conflict)
        }
        Write::Remove(i) => {
            let Some((id, _)) = pick(objects, i) else {
                return Ok(());
            };
            let result = block_on(store.update(|tx| tx.delete::<T>(&id)));
            record(result, objects, id, None, false)
        }
    }
}

/// What [`write`] does.
enum Write<'a, T> {
    Create(T),
    Update(usize, &'a Fields),
    Remove(usize),
}

/// Applies `op` to the model and the store; both must agree on success.
fn step(store: &MemoryStore, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    match op {
        Op::CreateTask(f) => write(store, &mut model.tasks, shape_task, Write::Create(new_task(f))),
        Op::UpdateTask(i, f) => write(store, &mut model.tasks, shape_task, Write::Update(*i, f)),
        Op::RemoveTask(i) => write(store, &mut model.tasks, shape_task, Write::Remove(*i)),
        Op::CreateNode(f) => write(store, &mut model.nodes, shape_node, Write::Create(new_node(f))),
        Op::UpdateNode(i, f) => write(store, &mut model.nodes, shape_node, Write::Update(*i, f)),
        Op::RemoveNode(i) => write(store, &mut model.nodes, shape_node, Write::Remove(*i)),
        Op::Aborted(f) => {
            let t = new_task(f);
            let result = block_on(store.update(|tx| {
                let _ = tx.create(t.clone());
                let _ = tx.delete::<Node>(model.nodes.keys().next().map_or("none", String::as_str));
                Err::<(), _>(Error::Invalid("abort".into()))
            }));
            prop_assert!(result.is_err());
            Ok(())
        }
    }
}

fn record<T: StoreObject>(
    result: swarm_store::Result<()>,
    objects: &mut BTreeMap<String, T>,
    id: String,
    obj: Option<T>,
    conflict: bool,
) -> Result<(), TestCaseError> {
    if conflict {
        prop_assert!(
            matches!(result, Err(Error::NameConflict { .. })),
            "expected a name conflict, got {result:?}"
        );
        return Ok(());
    }
    prop_assert!(result.is_ok(), "{result:?}");
    match obj {
        Some(o) => objects.insert(id, o),
        None => objects.remove(&id),
    };
    Ok(())
}

fn ids<T: StoreObject>(found: swarm_store::Result<Vec<&std::sync::Arc<T>>>) -> Vec<String> {
    let mut ids: Vec<String> = found
        .expect("selector supported")
        .iter()
        .map(|o| o.id().to_owned())
        .collect();
    ids.sort();
    ids
}

fn model_ids<T>(objects: &BTreeMap<String, T>, keep: impl Fn(&T) -> bool) -> Vec<String> {
    objects
        .iter()
        .filter(|(_, o)| keep(o))
        .map(|(id, _)| id.clone())
        .collect()
}

/// Every selector the store answers must give what a full scan of the model
/// gives.
fn compare(store: &MemoryStore, model: &Model) -> Result<(), TestCaseError> {
    store.verify_indexes().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let tx = store.read();
    prop_assert_eq!(ids(tx.find::<Task>(By::All)), model_ids(&model.tasks, |_| true));
    prop_assert_eq!(ids(tx.find::<Node>(By::All)), model_ids(&model.nodes, |_| true));
    for (id, t) in &model.tasks {
        let stored = tx.get::<Task>(id).expect("task in model is stored");
        let mut without_meta = (**stored).clone();
        without_meta.meta = None;
        let mut expected = t.clone();
        expected.meta = None;
        prop_assert_eq!(&without_meta, &expected);
    }
    for s in SERVICES {
        prop_assert_eq!(
            ids(tx.find::<Task>(By::ServiceId(s))),
            model_ids(&model.tasks, |t| t.service_id == s)
        );
        for slot in 0..3 {
            prop_assert_eq!(
                ids(tx.find::<Task>(By::Slot(s, slot))),
                model_ids(&model.tasks, |t| t.service_id == s && t.slot == slot)
            );
        }
    }
    for n in NODES {
        prop_assert_eq!(
            ids(tx.find::<Task>(By::NodeId(n))),
            model_ids(&model.tasks, |t| t.node_id == n)
        );
    }
    for state in STATES {
        prop_assert_eq!(
            ids(tx.find::<Task>(By::TaskState(state))),
            model_ids(&model.tasks, |t| t.status.as_ref().map(|s| s.state)
                == Some(state as i32))
        );
        prop_assert_eq!(
            ids(tx.find::<Task>(By::DesiredState(state))),
            model_ids(&model.tasks, |t| t.desired_state == state as i32)
        );
    }
    for name in NAMES {
        let lower = name.to_lowercase();
        let has = |a: Option<&Annotations>| a.map(|a| a.name.to_lowercase()) == Some(lower.clone());
        prop_assert_eq!(
            ids(tx.find::<Task>(By::Name(name))),
            model_ids(&model.tasks, |t| has(t.annotations.as_ref()))
        );
        prop_assert_eq!(
            ids(tx.find::<Node>(By::Name(name))),
            model_ids(&model.nodes, |n| has(n.annotations()))
        );
        let prefix = &lower[..2];
        prop_assert_eq!(
            ids(tx.find::<Node>(By::NamePrefix(&prefix.to_uppercase()))),
            model_ids(&model.nodes, |n| n
                .annotations()
                .is_some_and(|a| a.name.to_lowercase().starts_with(prefix)))
        );
    }
    for (k, v) in LABELS {
        let has = |a: Option<&Annotations>| a.and_then(|a| a.labels.get(k)).map(String::as_str) == Some(v);
        let has_key = |a: Option<&Annotations>| a.is_some_and(|a| a.labels.contains_key(k));
        prop_assert_eq!(
            ids(tx.find::<Task>(By::Label(k, v))),
            model_ids(&model.tasks, |t| has(t.annotations.as_ref()))
        );
        prop_assert_eq!(
            ids(tx.find::<Node>(By::Label(k, v))),
            model_ids(&model.nodes, |n| has(n.annotations()))
        );
        prop_assert_eq!(
            ids(tx.find::<Node>(By::LabelKey(k))),
            model_ids(&model.nodes, |n| has_key(n.annotations()))
        );
    }
    for role in [NodeRole::Worker, NodeRole::Manager] {
        prop_assert_eq!(
            ids(tx.find::<Node>(By::Role(role))),
            model_ids(&model.nodes, |n| n.role == role as i32)
        );
    }
    Ok(())
}

fn run(store: &MemoryStore, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    for op in ops {
        step(store, &mut model, op)?;
        compare(store, &model)?;
    }
    // Snapshot and restore keeps every index too.
    let restored = MemoryStore::new();
    restored
        .restore(&store.snapshot())
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    compare(&restored, &model)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn indexes_match_a_model_under_random_changes(ops in proptest::collection::vec(op(), 1..80)) {
        run(&MemoryStore::new(), &ops)?;
    }

    #[test]
    fn indexes_match_a_model_when_every_change_goes_through_apply(ops in proptest::collection::vec(op(), 1..80)) {
        run(&store_through_apply(), &ops)?;
    }
}
