//! What no answer carries: a secret's data and the cluster's CA key, as
//! SwarmKit's control API redacts them. Every answer that holds a secret or
//! a cluster, from the Control API's reads and writes and from the Watch
//! API's events, passes through here. Managers read both from their own
//! store, never through these APIs.

use swarm_proto::v1::{Cluster, Secret};

/// A secret without its data.
pub(crate) fn secret(mut secret: Secret) -> Secret {
    if let Some(spec) = secret.spec.as_mut() {
        spec.data.clear();
    }
    secret
}

/// A cluster without the private key of its root CA.
pub(crate) fn cluster(mut cluster: Cluster) -> Cluster {
    if let Some(root_ca) = cluster.root_ca.as_mut() {
        root_ca.ca_key.clear();
    }
    cluster
}
