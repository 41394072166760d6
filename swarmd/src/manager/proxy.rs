//! The one place every Control and Watch request passes before it is
//! served: a manager that leads, with every acknowledged write applied,
//! serves it; one that does not answers Unavailable naming the leader. The
//! cluster issue turns the refusal into a forward over mutual TLS to the
//! leader, here and nowhere else.

use swarm_raft::RaftHandle;
use tonic::{Request, Status};

use super::raft_store::ApplyResult;

/// Checks leadership for each request (a tonic interceptor).
#[derive(Clone)]
pub struct LeaderOnly {
    raft: RaftHandle<ApplyResult>,
}

impl LeaderOnly {
    /// Checks against this manager's Raft member.
    pub fn new(raft: RaftHandle<ApplyResult>) -> Self {
        LeaderOnly { raft }
    }
}

impl tonic::service::Interceptor for LeaderOnly {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let leadership = self.raft.leadership();
        if leadership.caught_up {
            return Ok(request);
        }
        if let Some(cause) = leadership.stopped {
            return Err(member_stopped(&cause));
        }
        if leadership.is_leader {
            // For the moment of one log write after an election.
            return Err(Status::unavailable(
                "this manager was just elected leader and is applying the writes committed before; try again",
            ));
        }
        Err(Status::unavailable(
            match (leadership.leader_id, leadership.leader_addr) {
                (Some(id), Some(addr)) => {
                    format!("this manager is not the leader; the leader is Raft member {id} at {addr}")
                }
                (Some(id), None) => format!("this manager is not the leader; the leader is Raft member {id}"),
                (None, _) => "this manager is not the leader and no leader is known yet".to_string(),
            },
        ))
    }
}

/// What a request, or a watch, this manager's stop cuts off is told when
/// its Raft member stopped on `cause`.
pub(crate) fn member_stopped(cause: &str) -> Status {
    Status::unavailable(format!(
        "this manager's Raft member stopped on an error, and the manager is stopping: {cause}"
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use swarm_raft::{Config, RaftNode, Start};
    use swarm_store::MemoryStore;
    use tonic::service::Interceptor as _;

    use super::*;
    use crate::manager::raft_store::StoreMachine;

    async fn member(dir: &std::path::Path, start: Start) -> RaftNode<StoreMachine> {
        let config = Config::new(7, 0x7e, dir, "127.0.0.1:1");
        RaftNode::start(config, StoreMachine::new(MemoryStore::new()), start)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_member_that_does_not_lead_refuses_with_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let waiting = member(dir.path(), Start::Join).await;
        let status = LeaderOnly::new(waiting.handle()).call(Request::new(())).unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(status.message().contains("no leader is known"), "{}", status.message());
        waiting.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn the_leader_serves() {
        let dir = tempfile::tempdir().unwrap();
        let leader = member(
            dir.path(),
            Start::Bootstrap(BTreeMap::from([(7, "127.0.0.1:1".to_string())])),
        )
        .await;
        let mut leadership = leader.handle().watch_leadership();
        leadership.wait_for(|seen| seen.caught_up).await.unwrap();
        assert!(LeaderOnly::new(leader.handle()).call(Request::new(())).is_ok());
        leader.shutdown().await.unwrap();
    }
}
