//! Object builders shared by the store's tests.
#![allow(dead_code)]

use std::collections::HashMap;

use swarm_proto::Shared;
use swarm_proto::v1::{
    Annotations, ContainerSpec, Node, NodeSpec, ReplicatedService, Service, ServiceSpec, Task, TaskSpec, TaskState,
    TaskStatus, service_spec, task_spec,
};
use swarm_store::{MemoryStore, id};

pub fn annotations(name: &str, labels: &[(&str, &str)]) -> Option<Annotations> {
    Some(Annotations {
        name: name.to_owned(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
    })
}

pub fn node(name: &str) -> Node {
    Node {
        id: id::generate(),
        spec: Some(NodeSpec {
            annotations: annotations(name, &[]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn service(name: &str) -> Service {
    Service {
        id: id::generate(),
        spec: Some(ServiceSpec {
            annotations: annotations(name, &[]),
            task: Some(Shared::new(TaskSpec {
                runtime: Some(task_spec::Runtime::Container(ContainerSpec {
                    image: "busybox:latest".into(),
                    ..Default::default()
                })),
                ..Default::default()
            })),
            mode: Some(service_spec::Mode::Replicated(ReplicatedService { replicas: 1 })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A task of `service`, carrying its spec as the orchestrator makes them.
pub fn task_of(service: &Service, slot: u64) -> Task {
    Task {
        spec: service.spec.as_ref().and_then(|s| s.task.clone()),
        ..task(&service.id, slot)
    }
}

pub fn task(service_id: &str, slot: u64) -> Task {
    let id = id::generate();
    Task {
        annotations: annotations(&format!("{service_id}.{slot}.{id}"), &[]),
        id,
        service_id: service_id.to_owned(),
        slot,
        desired_state: TaskState::Running as i32,
        status: Some(TaskStatus {
            state: TaskState::New as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The node's annotations (name, labels), created if missing.
pub fn node_annotations(n: &mut Node) -> &mut Annotations {
    n.spec
        .get_or_insert_with(Default::default)
        .annotations
        .get_or_insert_with(Default::default)
}

/// The service's annotations (name, labels), created if missing.
pub fn service_annotations(s: &mut Service) -> &mut Annotations {
    s.spec
        .get_or_insert_with(Default::default)
        .annotations
        .get_or_insert_with(Default::default)
}

/// A store whose every commit goes through [`MemoryStore::apply`], as Raft
/// commits do: actions are applied at once, at consecutive indexes.
pub fn store_through_apply() -> MemoryStore {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, OnceLock};

    use futures::future::BoxFuture;
    use swarm_proto::v1::StoreAction;
    use swarm_store::{Error, Proposer};

    struct Loopback {
        store: OnceLock<MemoryStore>,
        last: AtomicU64,
    }
    impl Proposer for Loopback {
        fn propose(&self, actions: Vec<StoreAction>) -> BoxFuture<'static, swarm_store::Result<u64>> {
            let index = self.last.fetch_add(1, Ordering::SeqCst) + 1;
            let result = match self.store.get() {
                Some(store) => store.apply(actions, index).map(|()| index),
                None => Err(Error::ProposalFailed("no store to apply to".into())),
            };
            Box::pin(async move { result })
        }
    }
    let proposer = Arc::new(Loopback {
        store: OnceLock::new(),
        last: AtomicU64::new(0),
    });
    let store = MemoryStore::builder().proposer(proposer.clone()).build();
    // The store and its proposer hold each other: leaked, in a test only.
    let _ = proposer.store.set(store.clone());
    store
}
