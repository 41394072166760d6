//! Nodes: indexed by role and membership (the scheduler and the CA ask), and
//! by the labels of their spec (placement constraints ask).

use swarm_proto::v1::{Annotations, Node};

use crate::StoreObject;
use crate::index::{IndexKind, KeyRef};
use crate::object::store_object_common;

impl StoreObject for Node {
    store_object_common!(Node, nodes);

    const INDEXES: &'static [IndexKind] = &[IndexKind::Role, IndexKind::Membership];

    fn annotations(&self) -> Option<&Annotations> {
        self.spec.as_ref()?.annotations.as_ref()
    }

    fn own_index_keys<'a>(&'a self, keys: &mut smallvec::SmallVec<[KeyRef<'a>; 8]>) {
        keys.push(KeyRef::Role(self.role));
        let membership = self.spec.as_ref().map_or(0, |s| s.membership);
        keys.push(KeyRef::Membership(membership));
    }
}
