//! Tasks: the largest table by far. The orchestrators ask for the tasks of a
//! service and of one of its slots, the dispatcher for those of a node, the
//! reaper and the Control API filter by desired and observed state.

use swarm_proto::Shared;
use swarm_proto::v1::{Annotations, Service, Task};

use crate::StoreObject;
use crate::index::{IndexKind, KeyRef};
use crate::object::store_object_common;
use crate::state::State;

impl StoreObject for Task {
    store_object_common!(Task, tasks);

    const INDEXES: &'static [IndexKind] = &[
        IndexKind::Service,
        IndexKind::Node,
        IndexKind::Slot,
        IndexKind::DesiredState,
        IndexKind::TaskState,
    ];

    /// A task's own annotations; its name is `<service>.<slot>.<id>` as the
    /// orchestrator sets it, so it never clashes.
    fn annotations(&self) -> Option<&Annotations> {
        self.annotations.as_ref()
    }

    /// A task made from its service's current spec holds that very spec.
    /// The orchestrator makes tasks that way; this catches the copies a
    /// follower decodes from the log or a snapshot, which arrive unshared.
    fn share_parts(&mut self, state: &State) {
        let Some(spec) = self.spec.as_mut() else {
            return;
        };
        let service = Service::table(state).get(&self.service_id);
        if let Some(current) = service.and_then(|s| s.spec.as_ref()?.task.as_ref())
            && !Shared::ptr_eq(spec, current)
            && **spec == **current
        {
            *spec = current.clone();
        }
    }

    fn own_index_keys<'a>(&'a self, keys: &mut smallvec::SmallVec<[KeyRef<'a>; 8]>) {
        // (service, slot) also answers "tasks of a service": a prefix scan.
        if !self.service_id.is_empty() {
            let slot = self.slot;
            keys.push(KeyRef::id_field("service_id", &self.service_id, |id| {
                KeyRef::Slot(id, slot)
            }));
        }
        // Unassigned tasks are not under any node.
        if !self.node_id.is_empty() {
            keys.push(KeyRef::id_field("node_id", &self.node_id, KeyRef::Node));
        }
        keys.push(KeyRef::DesiredState(self.desired_state));
        keys.push(KeyRef::TaskState(self.status.as_ref().map_or(0, |s| s.state)));
    }
}
