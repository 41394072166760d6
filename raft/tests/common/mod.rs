//! The fixture of the group tests: a real group in this process
//! (`swarm_raft::testing::cluster`) with test timing and logs.

#![allow(dead_code)]

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use swarm_raft::Config;

/// A group whose data dirs live in a temporary directory removed on drop.
pub struct Cluster {
    inner: swarm_raft::testing::cluster::Cluster,
    _root: tempfile::TempDir,
}

/// Test timing: a 50 ms tick (elections after 0.5-1 s) keeps the tests
/// quick without making elections flap on a loaded 2-core machine.
fn test_timing(config: &mut Config) {
    config.tick = Duration::from_millis(50);
}

impl Cluster {
    pub async fn start(size: u64) -> Cluster {
        Self::start_with(size, |_| {}).await
    }

    pub async fn start_with(size: u64, tweak: fn(&mut Config)) -> Cluster {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let root = tempfile::tempdir().expect("tempdir");
        let configure = move |config: &mut Config| {
            test_timing(config);
            tweak(config);
        };
        let inner = swarm_raft::testing::cluster::Cluster::start(root.path().to_path_buf(), size, configure).await;
        Cluster { inner, _root: root }
    }

    pub async fn shutdown(self) {
        self.inner.shutdown().await;
    }
}

impl Deref for Cluster {
    type Target = swarm_raft::testing::cluster::Cluster;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl DerefMut for Cluster {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}
