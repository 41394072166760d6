//! A member short of room on its disk holds off the group's writes: every
//! member stores every entry, so the leader refuses them, naming that
//! member, until it has room again or falls silent.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::Cluster;
use swarm_raft::{Error, RaftHandle};

/// What member 3 keeps free on its disk: at first more than any disk has.
static MEMBER_3_RESERVE: AtomicU64 = AtomicU64::new(u64::MAX / 4);

/// Proposes to `leader` (a removal if `freeing`) until it is refused for
/// want of room, for up to 10 s: the refusal. (Proposals taken meanwhile
/// count in `taken`.)
async fn refusal(leader: &RaftHandle<usize>, freeing: bool, taken: &mut usize) -> Error {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let data = format!("entry-{taken}").into_bytes();
        let proposed = if freeing {
            leader.propose_freeing(data).await
        } else {
            leader.propose(data).await
        };
        match proposed {
            Ok(_) => *taken += 1,
            Err(err @ Error::NoSpace { .. }) => return err,
            Err(err) => panic!("{err}"),
        }
        assert!(Instant::now() < deadline, "never refused: {taken} proposals taken");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_short_of_room_holds_off_the_groups_writes_naming_itself() {
    let mut cluster = Cluster::start_with(3, |config| {
        if config.id == 3 {
            config.keep_free_disk = MEMBER_3_RESERVE.load(Ordering::Acquire);
        }
    })
    .await;
    // A leader short of room refuses on its own account; here another one
    // must lead.
    let mut leader = cluster.leader().await;
    for _ in 0..5 {
        if leader != 3 {
            break;
        }
        cluster.stop_handing_over(3).await;
        cluster.restart(3).await;
        leader = cluster.leader().await;
    }
    assert_ne!(leader, 3, "member 3 kept leading");

    let mut taken = 0;
    let refused = refusal(cluster.handle(leader), false, &mut taken).await;
    let Error::NoSpace {
        removal: false,
        member: Some(member),
        ..
    } = &refused
    else {
        panic!("refused on the leader's own account: {refused:?}");
    };
    assert!(member.starts_with("member 3 at 127.0.0.1:"), "{refused}");
    let said = refused.to_string();
    assert!(
        said.starts_with("the raft data dir's filesystem of member 3 at 127.0.0.1:")
            && said.contains("writes are refused until there is room"),
        "{said}"
    );
    // With less than its reserve itself free, it refuses removals too.
    let refused = refusal(cluster.handle(leader), true, &mut taken).await;
    assert!(
        matches!(&refused, Error::NoSpace { removal: true, member: Some(member), .. } if member.starts_with("member 3 ")),
        "{refused:?}"
    );
    assert!(
        !*cluster.handle(leader).watch_disk_room().borrow(),
        "those waiting for room see writes refused"
    );

    // Fallen silent, it no longer holds them off: the other two store
    // every entry, and a dead member must not stop the group's writes.
    cluster.stop(3, false).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match cluster.handle(leader).propose(b"after".to_vec()).await {
            Ok(_) => break,
            Err(Error::NoSpace { .. }) => {
                assert!(Instant::now() < deadline, "still refused 10 s after member 3 stopped");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(err) => panic!("{err}"),
        }
    }
    taken += 1;
    // Those waiting for room see it at the leader's next reading.
    let mut room = cluster.handle(leader).watch_disk_room();
    tokio::time::timeout(Duration::from_secs(5), room.wait_for(|room| *room))
        .await
        .expect("room seen within 5 s")
        .expect("the member runs");

    // Back with room, it catches up, and the group takes writes.
    MEMBER_3_RESERVE.store(0, Ordering::Release);
    cluster.restart(3).await;
    cluster.propose_many(leader, 20, 4, "with-room").await;
    let log = cluster.converge(taken + 20).await;
    assert_eq!(log.len(), taken + 20);
    cluster.shutdown().await;
}
