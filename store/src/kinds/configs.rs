//! Configs: found by name and labels only.

use swarm_proto::v1::{Annotations, Config};

use crate::StoreObject;
use crate::index::{IndexKind, KeyRef};
use crate::object::store_object_common;

impl StoreObject for Config {
    store_object_common!(Config, configs);

    const INDEXES: &'static [IndexKind] = &[];

    fn annotations(&self) -> Option<&Annotations> {
        self.spec.as_ref()?.annotations.as_ref()
    }

    fn own_index_keys<'a>(&'a self, _keys: &mut smallvec::SmallVec<[KeyRef<'a>; 8]>) {}
}
