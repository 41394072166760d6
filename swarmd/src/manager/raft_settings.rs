//! The cluster object's Raft settings, applied to this manager's member
//! while it runs: a `swarmctl cluster update` of the snapshot interval or
//! of the entries kept for slow followers takes effect at once, as
//! SwarmKit reads them from its store for each snapshot decision.

use swarm_proto::v1::{Cluster, RaftConfig};
use swarm_raft::RaftHandle;
use swarm_store::{Event, Filter, Kind, MemoryStore, Object, Read as _};
use tokio::task::JoinHandle;

use super::raft_store::ApplyResult;

/// Follows the cluster object until the member stops; the task is aborted
/// when the manager stops.
pub(crate) fn follow(store: MemoryStore, raft: RaftHandle<ApplyResult>) -> JoinHandle<()> {
    tokio::spawn(async move {
        // A watcher ends when the store is replaced by a snapshot (or falls
        // behind): read the state again and go on from there.
        loop {
            let (read, mut watcher) = store.view_and_watch(Filter::all().kind(Kind::Cluster));
            for cluster in read.list::<Cluster>() {
                if apply(&raft, cluster).await.is_err() {
                    return;
                }
            }
            drop(read);
            while let Ok(event) = watcher.recv().await {
                // Only the last of the changes already queued matters: a
                // start replaying a long log applies many at once.
                let mut latest = cluster_of(event);
                while let Ok(Some(event)) = watcher.try_recv() {
                    latest = cluster_of(event).or(latest);
                }
                if let Some(cluster) = latest
                    && apply(&raft, &cluster).await.is_err()
                {
                    return;
                }
            }
        }
    })
}

/// The cluster an event stored, if it is one.
fn cluster_of(event: Event) -> Option<std::sync::Arc<Cluster>> {
    match event {
        Event::Change(change) => match &change.new {
            Some(Object::Cluster(cluster)) => Some(cluster.clone()),
            _ => None,
        },
        Event::Commit { .. } => None,
    }
}

/// Hands the cluster's settings to the member; an error only when the
/// member has stopped.
async fn apply(raft: &RaftHandle<ApplyResult>, cluster: &Cluster) -> Result<(), swarm_raft::Error> {
    let Some(RaftConfig {
        snapshot_interval,
        log_entries_for_slow_followers,
        ..
    }) = cluster.spec.as_ref().and_then(|spec| spec.raft.as_ref())
    else {
        return Ok(());
    };
    match raft
        .set_log_retention(*snapshot_interval, *log_entries_for_slow_followers)
        .await
    {
        Err(err @ swarm_raft::Error::Stopped) => Err(err),
        Err(err) => {
            // Refused when stored (validation); an older value, say.
            tracing::warn!(%err, "the cluster's raft settings were not applied");
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}
