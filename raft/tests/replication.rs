//! Log replication (Raft paper §5.3): a leader is elected and every member
//! applies the same entries in the same order.

mod common;

use common::Cluster;

async fn replicate(size: u64, proposals: usize) {
    let cluster = Cluster::start(size).await;
    let leader = cluster.leader().await;
    let mut indexes = cluster.propose_many(leader, proposals, 64, "entry").await;
    indexes.sort_unstable();
    indexes.dedup();
    assert_eq!(indexes.len(), proposals, "every proposal got its own index");

    let log = cluster.converge(proposals).await;
    assert_eq!(log.len(), proposals, "nothing but the proposals was applied");
    let applied: Vec<u64> = log.iter().map(|(index, _)| *index).collect();
    assert_eq!(applied, indexes, "each proposal applied at the index it was given");
    let mut payloads: Vec<_> = log.iter().map(|(_, data)| data.clone()).collect();
    payloads.sort_unstable();
    payloads.dedup();
    assert_eq!(payloads.len(), proposals, "each proposal applied once");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_apply_10_000_proposals_in_the_same_order() {
    replicate(3, 10_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_members_apply_10_000_proposals_in_the_same_order() {
    replicate(5, 10_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_member_commits_on_its_own() {
    replicate(1, 500).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_refuses_proposals_naming_the_leader() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    let follower = *cluster.members.keys().find(|id| **id != leader).unwrap();
    let err = cluster.handle(follower).propose(b"x".to_vec()).await.unwrap_err();
    match err {
        swarm_raft::Error::NotLeader { leader: Some(peer) } => {
            assert_eq!(peer.id, leader);
            assert_eq!(peer.addr, cluster.addrs[&leader]);
        }
        other => panic!("expected NotLeader naming {leader}, got {other}"),
    }
    cluster.shutdown().await;
}
