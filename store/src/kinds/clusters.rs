//! Clusters: one per cluster (named `default`), found by name.

use swarm_proto::v1::{Annotations, Cluster};

use crate::StoreObject;
use crate::index::{IndexKind, KeyRef};
use crate::object::store_object_common;

impl StoreObject for Cluster {
    store_object_common!(Cluster, clusters);

    const INDEXES: &'static [IndexKind] = &[];

    fn annotations(&self) -> Option<&Annotations> {
        self.spec.as_ref()?.annotations.as_ref()
    }

    fn own_index_keys<'a>(&'a self, _keys: &mut smallvec::SmallVec<[KeyRef<'a>; 8]>) {}
}
