//! kill -9 in the middle of 500 service creates made by 16 concurrent
//! clients, then a restart: every create that was acknowledged is there,
//! under the ID it was acknowledged with, once, and the name index agrees
//! with the table. Ten kill points at random moments, on one state dir:
//! each round kills after a random number of acknowledgements, so the kill
//! always lands among creates in flight.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use swarm_proto::v1::control_client::ControlClient;
use swarm_proto::v1::{CreateServiceRequest, ListFilters, ListServicesRequest, ServiceSpec};
use swarm_tests::daemon::{Daemon, channel, swarmd_binary};

const ROUNDS: usize = 10;
const CREATES: usize = 500;
const CLIENTS: usize = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_creates_survive_kill_9_at_random_moments() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node-1");
    let binary = swarmd_binary();
    // Name -> the ID its create was acknowledged with, over all rounds.
    let mut acknowledged: BTreeMap<String, String> = BTreeMap::new();

    for round in 0..ROUNDS {
        let daemon = Daemon::start(&binary, &dir, "node-1").await;
        let channel = channel(&daemon.socket).await.unwrap();
        // Acknowledgements so far this round, watched for the kill point.
        let acks = Arc::new(tokio::sync::watch::Sender::new(0usize));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let mut control = ControlClient::new(channel.clone());
                let acks = Arc::clone(&acks);
                tokio::spawn(async move {
                    let mut acked = Vec::new();
                    for n in (client..CREATES).step_by(CLIENTS) {
                        let name = format!("r{round}-{n}");
                        match control
                            .create_service(CreateServiceRequest {
                                spec: Some(ServiceSpec::container(&name, "busybox")),
                            })
                            .await
                        {
                            Ok(reply) => {
                                acked.push((name, reply.into_inner().service.unwrap().id));
                                acks.send_modify(|count| *count += 1);
                            }
                            Err(_) => break, // killed: what follows cannot be acknowledged
                        }
                    }
                    acked
                })
            })
            .collect();
        // The kill point: after a random number of acknowledgements, in the
        // first half, so that however slow the kill (a `kill` process to
        // start) the rest are still to come.
        let kill_after = rand::random_range(0..CREATES / 2);
        tokio::time::timeout(
            Duration::from_secs(60),
            acks.subscribe().wait_for(|count| *count >= kill_after),
        )
        .await
        .expect("creates are acknowledged")
        .expect("the clients run");
        daemon.signal_and_wait(9, Duration::from_secs(10));
        let mut acked_this_round = 0;
        for client in clients {
            for (name, id) in client.await.unwrap() {
                acked_this_round += 1;
                assert!(
                    acknowledged.insert(name.clone(), id).is_none(),
                    "{name} acknowledged twice"
                );
            }
        }
        assert!(
            acked_this_round < CREATES,
            "round {round}: the kill came after every create was acknowledged"
        );

        let daemon = Daemon::start(&binary, &dir, "node-1").await;
        let mut control = ControlClient::new(channel_for(&daemon).await);
        let (stored, listed) = daemon.service_ids_by_name().await;
        assert_eq!(stored.len(), listed, "round {round}: a name stored twice");
        for (name, id) in &acknowledged {
            assert_eq!(
                stored.get(name),
                Some(id),
                "round {round}: acknowledged {name} lost or changed"
            );
        }
        // The name index agrees with the table, for every acknowledged name.
        for name in acknowledged
            .keys()
            .filter(|name| name.starts_with(&format!("r{round}-")))
        {
            let filters = ListFilters {
                names: vec![name.clone()],
                ..Default::default()
            };
            let found = control
                .list_services(ListServicesRequest { filters: Some(filters) })
                .await
                .unwrap();
            assert_eq!(found.into_inner().services.len(), 1, "round {round}: {name} by name");
        }
        eprintln!(
            "round {round}: killed after {kill_after} acknowledgements ({acked_this_round} in all); \
             {} acknowledged so far, {} stored, all there",
            acknowledged.len(),
            stored.len()
        );
        let status = daemon.signal_and_wait(2, Duration::from_secs(10));
        assert!(status.success());
    }
}

async fn channel_for(daemon: &Daemon) -> tonic::transport::Channel {
    channel(&daemon.socket).await.unwrap()
}
