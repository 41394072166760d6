//! Members lost, cut off, far behind, wiped, and all restarted: the group
//! goes on where a majority can, and every member converges afterwards.

mod common;

use std::time::{Duration, Instant};

use common::Cluster;
use swarm_raft::Error;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_and_catches_up_after_restart() {
    let mut cluster = Cluster::start(3).await;
    let old_leader = cluster.leader().await;
    cluster.propose_many(old_leader, 200, 16, "before").await;
    cluster.stop(old_leader, false).await;

    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, old_leader);
    cluster.propose_many(new_leader, 200, 16, "after").await;

    cluster.restart(old_leader).await;
    let log = cluster.converge(400).await;
    assert_eq!(log.len(), 400);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minority_cannot_commit_and_says_so_while_the_majority_goes_on() {
    let cluster = Cluster::start(5).await;
    let leader = cluster.leader().await;
    cluster.propose_many(leader, 50, 8, "before").await;
    let follower = *cluster.members.keys().find(|id| **id != leader).unwrap();
    let minority = [leader, follower];
    let majority: Vec<u64> = cluster
        .members
        .keys()
        .copied()
        .filter(|id| !minority.contains(id))
        .collect();
    cluster.partition(&minority);

    // The old leader takes the proposal, cannot commit it, and steps down
    // once it has not heard from a majority for an election timeout.
    let started = Instant::now();
    let err = cluster.handle(leader).propose(b"minority".to_vec()).await.unwrap_err();
    assert!(
        matches!(err, Error::UnknownOutcome { .. } | Error::NotLeader { .. }),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the minority answered after {:?}",
        started.elapsed()
    );
    let err = cluster
        .handle(follower)
        .propose(b"minority".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotLeader { .. }), "{err}");

    let new_leader = cluster.leader_among(&majority).await;
    cluster.propose_many(new_leader, 100, 8, "majority").await;

    cluster.heal();
    let log = cluster.converge(150).await;
    assert!(
        log.iter().all(|(_, data)| &data[..] != b"minority"),
        "the minority's proposal was replaced, never applied"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_behind_the_retained_log_catches_up_by_snapshot() {
    let cluster = Cluster::start_with(3, |config| {
        config.snapshot_interval = 200;
        config.keep_entries = 20;
        // The snapshot (1,000 entries, about 22 KB) travels in some forty
        // chunks: one lost, repeated or out of order fails the machine's
        // restore or the convergence below.
        config.snapshot_chunk_bytes = 512;
    })
    .await;
    let leader = cluster.leader().await;
    let behind = *cluster.members.keys().find(|id| **id != leader).unwrap();
    cluster.partition(&[behind]);
    cluster.propose_many(leader, 1000, 32, "while away").await;
    // Snapshots are written off the loop: the last may still be on its
    // way to the disk.
    status_when(cluster.handle(leader), "the leader compacted its log", |status| {
        status.snapshot_index >= 800
    })
    .await;

    cluster.heal();
    cluster.converge(1000).await;
    cluster.wait_snapshot_installed(behind).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_retention_changes_while_running() {
    let cluster = Cluster::start(1).await;
    let leader = cluster.leader().await;
    let handle = cluster.handle(leader);
    cluster.propose_many(leader, 300, 16, "default").await;
    assert_eq!(
        handle.status().await.unwrap().snapshot_index,
        1,
        "10,000 entries by default"
    );

    let err = handle.set_log_retention(0, 10).await.unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    handle.set_log_retention(100, 10).await.unwrap();
    cluster.propose_many(leader, 300, 16, "every 100").await;
    // A snapshot once 100 entries are applied after the change (the
    // first, so no log share to wait for), compacted to keep 10.
    let status = status_when(handle, "a snapshot after 100 entries", |status| {
        status.snapshot_index > 301
    })
    .await;
    assert!(
        status.first_index >= status.snapshot_index - 10,
        "10 entries kept: {status:?}"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_member_added_back_under_a_new_id_catches_up() {
    let mut cluster = Cluster::start_with(3, |config| {
        config.snapshot_interval = 100;
        config.keep_entries = 10;
    })
    .await;
    let leader = cluster.leader().await;
    cluster.propose_many(leader, 300, 16, "first").await;
    let lost = *cluster.members.keys().find(|id| **id != leader).unwrap();
    cluster.stop(lost, false).await;
    std::fs::remove_dir_all(cluster.dir(lost)).unwrap();
    cluster.handle(leader).remove_member(lost).await.unwrap();

    let addr = cluster.start_joiner(4).await;
    cluster.handle(leader).add_member(4, &addr).await.unwrap();
    cluster.propose_many(leader, 100, 16, "second").await;
    cluster.converge(400).await;
    let status = cluster.handle(4).status().await.unwrap();
    let running: Vec<u64> = cluster.members.keys().copied().collect();
    assert_eq!(
        status.members.keys().copied().collect::<Vec<_>>(),
        running,
        "the removed member is gone"
    );
    cluster.shutdown().await;
}

/// A member whose log is lost but that comes back under its old id (which
/// a node must not do: its votes went with the log) hears heartbeats that
/// say entries it no longer holds are committed. It neither panics on them
/// (raft-rs would, as SwarmKit's members did) nor commits entries from
/// them; the leader's appends repair it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_wiped_and_back_under_its_old_id_catches_up_without_a_panic() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    cluster.propose_many(leader, 200, 16, "first").await;
    let lost = *cluster.members.keys().find(|id| **id != leader).unwrap();
    cluster.stop(lost, false).await;
    std::fs::remove_dir_all(cluster.dir(lost)).unwrap();
    cluster.restart(lost).await;
    cluster.propose_many(leader, 50, 8, "second").await;
    let log = cluster.converge(250).await;
    assert_eq!(log.len(), 250);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_members_restarted_keep_everything_and_elect_a_leader() {
    let mut cluster = Cluster::start_with(3, |config| {
        config.snapshot_interval = 150;
        config.keep_entries = 10;
    })
    .await;
    let leader = cluster.leader().await;
    cluster.propose_many(leader, 400, 16, "kept").await;
    let before = cluster.converge(400).await;
    for id in [1, 2, 3] {
        cluster.stop(id, true).await;
    }
    for id in [1, 2, 3] {
        cluster.restart(id).await;
    }
    let leader = cluster.leader().await;
    let after = cluster.converge(400).await;
    assert_eq!(after, before, "the restarted members hold exactly what they had");
    cluster.propose_many(leader, 10, 4, "more").await;
    cluster.converge(410).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_member_that_would_lose_quorum_is_refused() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    let mut followers = cluster.members.keys().copied().filter(|id| *id != leader);
    let (dead, alive) = (followers.next().unwrap(), followers.next().unwrap());
    cluster.stop(dead, false).await;
    wait_for_inactive(&cluster, leader, dead).await;
    // Without `alive`, the group would be {leader, dead}: one reachable of
    // two, below its quorum of two.
    let refused = match cluster.handle(leader).remove_member(alive).await {
        Err(Error::Membership(reason)) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert!(refused.contains("below the quorum"), "{refused}");
    assert!(refused.contains(&alive.to_string()), "{refused}");
    let err = cluster.handle(leader).remove_member(leader).await.unwrap_err();
    assert!(matches!(err, Error::Membership(_)), "{err}");
    // Removing the dead one is fine: the two left are both reachable.
    cluster.handle(leader).remove_member(dead).await.unwrap();
    cluster.propose(b"still committing".to_vec()).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_moves_on_request_and_proposals_go_on() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    cluster.propose_many(leader, 50, 8, "before").await;
    let target = *cluster.members.keys().find(|id| **id != leader).unwrap();
    let new_leader = cluster.handle(leader).transfer_leadership(Some(target)).await.unwrap();
    assert_eq!(new_leader, target);
    assert_eq!(cluster.leader().await, target);
    let automatic = cluster.handle(target).transfer_leadership(None).await.unwrap();
    assert_ne!(automatic, target);
    cluster.propose_many(automatic, 50, 8, "after").await;
    cluster.converge(100).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_stopped_gracefully_hands_over_and_the_group_goes_on() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    cluster.propose_many(leader, 50, 8, "before").await;
    let handed_to = cluster.stop_handing_over(leader).await.expect("the leader handed over");
    assert_ne!(handed_to, leader);
    assert_eq!(cluster.leader().await, handed_to);
    cluster.propose_many(handed_to, 50, 8, "after").await;
    // A follower has nothing to hand over.
    let follower = *cluster.members.keys().find(|id| **id != handed_to).unwrap();
    assert_eq!(cluster.stop_handing_over(follower).await, None);
    cluster.shutdown().await;
}

/// Waits until the leader has noticed that `member` stopped answering.
async fn wait_for_inactive(cluster: &Cluster, leader: u64, member: u64) {
    status_when(
        cluster.handle(leader),
        "the leader noticed the member stopped",
        |status| status.progress.get(&member).is_some_and(|progress| !progress.active),
    )
    .await;
}

/// Polls the member's status until `wanted` holds (failing the test, with
/// `what` and the last status, after the cluster's deadline); returns it.
async fn status_when(
    handle: &swarm_raft::RaftHandle<usize>,
    what: &str,
    wanted: impl Fn(&swarm_raft::Status) -> bool,
) -> swarm_raft::Status {
    let deadline = Instant::now() + swarm_raft::testing::cluster::DEADLINE;
    loop {
        let status = handle.status().await.unwrap();
        if wanted(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "never: {what}; last {status:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_added_after_the_last_snapshot_gets_a_fresh_one_that_includes_it() {
    let mut cluster = Cluster::start_with(3, |config| {
        config.snapshot_interval = 100;
        config.keep_entries = 5;
    })
    .await;
    let leader = cluster.leader().await;
    cluster.propose_many(leader, 250, 16, "before").await;
    // No proposal follows the addition: the stored snapshot predates the
    // new member, and raft-rs refuses a snapshot that leaves its receiver out.
    let addr = cluster.start_joiner(4).await;
    cluster.handle(leader).add_member(4, &addr).await.unwrap();
    cluster.converge(250).await;
    cluster.wait_snapshot_installed(4).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_leader_is_replaced_without_waiting_out_its_lease() {
    let mut cluster = Cluster::start(3).await;
    let old_leader = cluster.leader().await;
    cluster.propose_many(old_leader, 20, 4, "before").await;
    cluster.stop(old_leader, false).await;
    let new_leader = cluster.leader().await;
    assert_ne!(new_leader, old_leader);
    let fast: u64 = cluster
        .members
        .values()
        .map(|member| member.handle.metrics().fast_failovers)
        .sum();
    // One, or two when the first to try had a shorter log and lost.
    assert!(
        fast >= 1,
        "a follower found the leader's port closed and campaigned at once"
    );
    cluster.propose_many(new_leader, 20, 4, "after").await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_but_alive_is_not_replaced_by_a_fast_campaign() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    cluster.partition(&[leader]);
    let others: Vec<u64> = cluster.members.keys().copied().filter(|id| *id != leader).collect();
    let new_leader = cluster.leader_among(&others).await;
    assert_ne!(new_leader, leader);
    let fast: u64 = cluster
        .members
        .values()
        .map(|member| member.handle.metrics().fast_failovers)
        .sum();
    assert_eq!(
        fast, 0,
        "its address still answers: only the election timeout may replace it"
    );
    cluster.heal();
    cluster.shutdown().await;
}

/// A follower cut off from a live leader whose address refuses it (a
/// firewall that rejects its connections) campaigns at once; the member
/// that still hears the leader takes that as a plain pre-vote, which its
/// lease drops: the leader stays, and commits go on. The campaign raised
/// no term, so the leader stays once the cut heals too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_refused_by_a_live_leader_does_not_depose_it() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    let term = cluster.handle(leader).leadership().term;
    let cut_off = *cluster.members.keys().find(|id| **id != leader).unwrap();
    cluster.handle(leader).links().cut(cut_off);
    cluster.handle(cut_off).links().refuse_probes_of(leader);
    swarm_raft::testing::cluster::wait_for("the cut-off follower's failover campaign", || {
        (cluster.handle(cut_off).metrics().fast_failovers > 0).then_some(())
    })
    .await;
    // Well past what the campaign needs to win through the third member.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let leadership = cluster.handle(leader).leadership();
        assert!(
            leadership.is_leader && leadership.term == term,
            "the live leader was deposed: {leadership:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.propose_many(leader, 10, 4, "still leading").await;
    assert_eq!(
        cluster.handle(cut_off).leadership().term,
        term,
        "the refused campaign raised the cut-off follower's term"
    );
    cluster.heal();
    cluster.handle(cut_off).links().heal_all();
    cluster.propose_many(leader, 10, 4, "healed").await;
    swarm_raft::testing::cluster::wait_for("the healed follower to follow the leader", || {
        (cluster.handle(cut_off).leadership().leader_id == Some(leader)).then_some(())
    })
    .await;
    let leadership = cluster.handle(leader).leadership();
    assert!(
        leadership.is_leader && leadership.term == term,
        "the healed follower deposed the leader: {leadership:?}"
    );
    cluster.shutdown().await;
}

/// Two followers cut off the same way from a live leader of five: one's
/// failover pre-vote is granted by the other (the leader is silent to it
/// too) and dropped by the rest, so neither raises its term for as long
/// as the cut lasts (a higher term would depose the leader once healed),
/// and the leader stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_cut_off_from_a_live_leader_do_not_churn_terms() {
    // Ticks of 100 ms, not the tests' 50: the followers that still hear
    // the leader refuse a pre-vote only while they heard it within an
    // election timeout, and on a loaded 2-core machine (the whole suite at
    // once) 0.5 s without a heartbeat happened, and a real election with
    // it (CI, once).
    let cluster = Cluster::start_with(5, |config| config.tick = Duration::from_millis(100)).await;
    let leader = cluster.leader().await;
    let term = cluster.handle(leader).leadership().term;
    let cut_off: Vec<u64> = cluster
        .members
        .keys()
        .copied()
        .filter(|id| *id != leader)
        .take(2)
        .collect();
    for &follower in &cut_off {
        cluster.handle(leader).links().cut(follower);
        cluster.handle(follower).links().refuse_probes_of(leader);
    }
    swarm_raft::testing::cluster::wait_for("a failover campaign", || {
        let started: u64 = cut_off
            .iter()
            .map(|id| cluster.handle(*id).metrics().fast_failovers)
            .sum();
        (started > 0).then_some(())
    })
    .await;
    // Several election timeouts (1-2 s each here).
    tokio::time::sleep(Duration::from_secs(4)).await;
    for &follower in &cut_off {
        let reached = cluster.handle(follower).leadership().term;
        assert_eq!(reached, term, "member {follower} went from term {term} to {reached}");
    }
    let leadership = cluster.handle(leader).leadership();
    assert!(leadership.is_leader && leadership.term == term, "{leadership:?}");
    cluster.propose_many(leader, 10, 4, "still leading").await;
    cluster.heal();
    for &follower in &cut_off {
        cluster.handle(follower).links().heal_all();
    }
    cluster.shutdown().await;
}

/// A follower whose loop stalls (as on a write that waits for a slow
/// disk) reads the heartbeats that came meanwhile as having come then: its
/// leader was never silent to it. Counting every tick the stall missed
/// after them instead, it would take the leader for silent the whole
/// stall long and campaign.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_whose_loop_stalls_still_hears_its_leader_meanwhile() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    let term = cluster.handle(leader).leadership().term;
    let stalled = cluster
        .members
        .keys()
        .copied()
        .find(|id| *id != leader)
        .expect("a follower");
    let handle = cluster.handle(stalled);
    // A counter, not the leadership watch: a campaign lost a heartbeat
    // later would show in the watch for one turn only.
    let leader_changes = handle.metrics().leader_changes;
    // Past the longest election timeout (1 s here).
    handle.links().pause_loop(Duration::from_millis(1_500));
    swarm_raft::testing::cluster::wait_for("the stall to start", || {
        (!handle.links().loop_pause_asked()).then_some(())
    })
    .await;
    // The stall, then the turns it would set off: those that apply an
    // entry proposed after it.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let proposed = cluster.propose_many(leader, 10, 4, "after the stall").await;
    cluster
        .wait_applied(stalled, proposed.into_iter().max().expect("an index"))
        .await;
    let changes = handle.metrics().leader_changes - leader_changes;
    assert_eq!(
        changes, 0,
        "the stalled member {stalled} lost its leader {leader} ({changes} changes)"
    );
    let leadership = cluster.handle(leader).leadership();
    assert!(leadership.is_leader && leadership.term == term, "{leadership:?}");
    cluster.shutdown().await;
}

/// A message from outside the group (the cluster's id known, the member
/// not) is dropped while the group has a live leader: a heartbeat of a far
/// higher term from it would have made the leader, and each follower,
/// follow a stranger, and the group hold an election to get over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_from_a_stranger_move_no_member_while_the_leader_lives() {
    use protobuf::Message as _;
    use raft::eraftpb::{Message, MessageType};
    const STRANGER: u64 = 4242;
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    let term = cluster.handle(leader).leadership().term;
    for member in cluster.members.values() {
        let mut heartbeat = Message::default();
        heartbeat.set_msg_type(MessageType::MsgHeartbeat);
        heartbeat.from = STRANGER;
        heartbeat.to = member.id;
        heartbeat.term = term + 100;
        let batch = swarm_proto::v1::RaftBatch {
            cluster_id: swarm_raft::testing::cluster::CLUSTER_ID,
            from: STRANGER,
            to: member.id,
            messages: vec![heartbeat.write_to_bytes().unwrap().into()],
            from_addr: "127.0.0.1:9".into(),
            disk_short: None,
        };
        swarm_proto::v1::raft_transport_client::RaftTransportClient::connect(format!("http://{}", member.addr))
            .await
            .expect("the member's transport")
            .send(batch)
            .await
            .expect("taken, as any batch of the cluster");
    }
    // Until each member has dropped it, or moved.
    swarm_raft::testing::cluster::wait_for("every member to read the stranger's heartbeat", || {
        cluster
            .members
            .values()
            .all(|member| {
                member.handle.metrics().messages_from_strangers == 1 || member.handle.leadership().term != term
            })
            .then_some(())
    })
    .await;
    for member in cluster.members.values() {
        let leadership = member.handle.leadership();
        assert_eq!(
            (leadership.term, leadership.leader_id),
            (term, Some(leader)),
            "member {}",
            member.id
        );
    }
    cluster.propose_many(leader, 10, 4, "after the stranger").await;
    cluster.shutdown().await;
}

/// A member that missed the change adding a member, which then leads,
/// takes that leader's messages though it is outside the configuration it
/// knows: from its first message on, it is its leader. (Taking only the
/// first, and dropping the rest while it "heard its leader", it never
/// caught up.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_behind_on_the_change_that_added_its_new_leader_catches_up() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    let behind = *cluster.members.keys().find(|id| **id != leader).unwrap();
    cluster.partition(&[behind]);
    let addr = cluster.start_joiner(4).await;
    cluster.handle(leader).add_member(4, &addr).await.unwrap();
    cluster.propose_many(leader, 10, 4, "with the new member").await;
    cluster.handle(leader).transfer_leadership(Some(4)).await.unwrap();
    let others: Vec<u64> = cluster.members.keys().copied().filter(|id| *id != behind).collect();
    assert_eq!(cluster.leader_among(&others).await, 4);
    cluster.heal();
    let proposed = cluster.propose_many(4, 10, 4, "after the heal").await;
    cluster
        .wait_applied(behind, proposed.into_iter().max().expect("an index"))
        .await;
    cluster.shutdown().await;
}

/// Ticks are time, not a turn of the loop's queue: a leader cut off from
/// the rest while proposals keep arriving (each one more turn of its loop,
/// all of them taken before anything else) still counts its election
/// timeout, finds it has no quorum, and steps down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_under_a_stream_of_proposals_still_steps_down() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    cluster.propose_many(leader, 20, 4, "before").await;
    cluster.partition(&[leader]);
    let handle = cluster.handle(leader).clone();
    let flood = tokio::spawn(async move {
        // Proposals as fast as they can be sent, none awaited: the loop's
        // queue is never empty when it looks.
        for _ in 0..200_000 {
            let handle = handle.clone();
            tokio::spawn(async move { handle.propose(b"cut off".to_vec()).await });
            tokio::task::yield_now().await;
        }
    });
    // Two election timeouts (0.5 s each here) is what the quorum check
    // takes: about 1 s, against 3-4 s when ticks waited for an empty queue.
    let started = Instant::now();
    while cluster.handle(leader).is_leader() {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "still leading, without a quorum, after 2 s of proposals"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    flood.abort();
    cluster.heal();
    cluster.shutdown().await;
}

/// A member removed while it runs learns it (the commit of its removal
/// reaches it before its link goes) and stops by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_member_that_is_removed_stops() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    cluster.propose_many(leader, 20, 4, "before").await;
    let removed = *cluster.members.keys().find(|id| **id != leader).unwrap();
    cluster.handle(leader).remove_member(removed).await.unwrap();
    let stopped = tokio::time::timeout(Duration::from_secs(10), cluster.handle(removed).stopped()).await;
    assert!(stopped.is_ok(), "the removed member still runs");
    cluster.propose(b"the two left commit".to_vec()).await;
    cluster.shutdown().await;
}
