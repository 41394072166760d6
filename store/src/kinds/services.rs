//! Services: found by name and by the labels of their spec.

use swarm_proto::v1::{Annotations, Service};

use crate::StoreObject;
use crate::index::{IndexKind, KeyRef};
use crate::object::store_object_common;

impl StoreObject for Service {
    store_object_common!(Service, services);

    const INDEXES: &'static [IndexKind] = &[];

    fn annotations(&self) -> Option<&Annotations> {
        self.spec.as_ref()?.annotations.as_ref()
    }

    fn own_index_keys<'a>(&'a self, _keys: &mut smallvec::SmallVec<[KeyRef<'a>; 8]>) {}
}
