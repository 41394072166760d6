//! `swarmd --listen-metrics`: a Prometheus scrape of a real daemon shows
//! the requests it served, by method and status code, its Raft member and
//! its store, and the endpoint goes away with a clean stop.

use std::net::TcpStream;
use std::time::Duration;

use swarm_proto::v1::{CreateServiceRequest, GetServiceRequest, ServiceSpec};
use swarm_tests::daemon::{Daemon, connect, swarmd_binary};
use swarm_tests::metrics::{http_get, metrics_addr, sample};

const SIGINT: i32 = 2;

/// A daemon in `root` serving metrics on a free port, and that port.
async fn start_with_metrics(root: &std::path::Path) -> (Daemon, String) {
    let flags = ["--listen-metrics", "127.0.0.1:0"];
    let daemon = Daemon::start_with(&swarmd_binary(), &root.join("node-1"), "node-1", &flags).await;
    let addr = metrics_addr(&daemon);
    (daemon, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_shows_requests_by_code_raft_and_store_and_ends_with_the_daemon() {
    let root = tempfile::tempdir().unwrap();
    let (daemon, addr) = start_with_metrics(root.path()).await;

    let mut control = connect(&daemon.socket).await.unwrap();
    for name in ["web", "db"] {
        let spec = ServiceSpec::container(name, "busybox:local");
        control
            .create_service(CreateServiceRequest { spec: Some(spec) })
            .await
            .unwrap();
    }
    let missing = GetServiceRequest {
        service_id: "nosuchservice".into(),
    };
    let refused = control.get_service(missing).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::NotFound);

    // A method that does not exist is counted, under one shared label.
    for path in ["/swarm.v1.Control/Nope", "/no.such.Service/Call"] {
        let request = http::Request::post(format!("http://swarmd.sock{path}"))
            .header("content-type", "application/grpc")
            .body(tonic::body::Body::empty())
            .unwrap();
        let channel = swarm_tests::daemon::channel(&daemon.socket).await.unwrap();
        let response = tower::ServiceExt::oneshot(channel, request).await.unwrap();
        assert_eq!(response.headers()["grpc-status"], "12", "{path}: Unimplemented");
    }

    let (status, body) = http_get(&addr, "/metrics").unwrap();
    assert!(status.contains("200"), "{status}\n{body}");
    let create = r#"swarmd_requests_total{method="/swarm.v1.Control/CreateService",code="OK"}"#;
    assert_eq!(sample(&body, create), Some(2.0), "{body}");
    let get = r#"swarmd_requests_total{method="/swarm.v1.Control/GetService",code="NotFound"}"#;
    assert_eq!(sample(&body, get), Some(1.0), "{body}");
    let unknown = r#"swarmd_requests_total{method="other",code="Unimplemented"}"#;
    assert_eq!(sample(&body, unknown), Some(2.0), "{body}");
    assert!(!body.contains("Nope") && !body.contains("no.such"), "{body}");
    let latency = r#"swarmd_request_duration_seconds_count{method="/swarm.v1.Control/CreateService"}"#;
    assert_eq!(sample(&body, latency), Some(2.0), "{body}");
    assert_eq!(
        sample(&body, r#"swarm_store_objects{kind="service"}"#),
        Some(2.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, r#"swarm_store_objects{kind="cluster"}"#),
        Some(1.0),
        "{body}"
    );
    assert_eq!(sample(&body, "swarm_raft_is_leader"), Some(1.0), "{body}");
    // The bootstrap objects and the two services, each a synced write.
    assert!(
        sample(&body, "swarm_raft_fsyncs_total").is_some_and(|n| n >= 3.0),
        "{body}"
    );
    assert!(sample(&body, "swarm_store_index").is_some_and(|n| n >= 3.0), "{body}");
    // The process's own figures, as every Prometheus client names them.
    let open_fds = sample(&body, "process_open_fds").expect("open fds");
    let max_fds = sample(&body, "process_max_fds").expect("max fds");
    assert!(open_fds >= 3.0 && open_fds < max_fds, "{open_fds} of {max_fds}");
    assert!(
        sample(&body, "process_resident_memory_bytes").is_some_and(|n| n > 1e6),
        "{body}"
    );
    assert!(
        sample(&body, "process_cpu_seconds_total").is_some_and(|n| n > 0.0),
        "{body}"
    );
    let started = sample(&body, "process_start_time_seconds").expect("start time");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now - 600.0..=now + 5.0).contains(&started),
        "started at {started}, now {now}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");

    let (status, _) = http_get(&addr, "/").unwrap();
    assert!(status.contains("404"), "{status}");

    let status = daemon.signal_and_wait(SIGINT, Duration::from_secs(10));
    assert!(status.success());
    assert!(
        TcpStream::connect(&addr).is_err(),
        "the metrics endpoint outlived the daemon"
    );
}

/// A Watch client that goes away is forgotten at once, even when nothing it
/// asked for ever changes (before, its watcher lived until a change it
/// wanted came: for ever, for a filter that never matches again), and its
/// call is counted then, as cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_whose_client_left_is_dropped_without_waiting_for_a_change() {
    use swarm_proto::v1::WatchRequest;
    use swarm_proto::v1::watch_client::WatchClient;
    use swarm_proto::v1::watch_request::WatchEntry;

    let root = tempfile::tempdir().unwrap();
    let (daemon, addr) = start_with_metrics(root.path()).await;
    let watchers = || {
        let (_, body) = http_get(&addr, "/metrics").unwrap();
        sample(&body, "swarm_store_watchers")
    };
    // The daemon may watch its own store.
    let before = watchers().expect("a watcher count");

    let channel = swarm_tests::daemon::channel(&daemon.socket).await.unwrap();
    let request = WatchRequest {
        entries: vec![WatchEntry {
            kind: "config".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let stream = WatchClient::new(channel.clone()).watch(request).await.unwrap();
    assert_eq!(watchers(), Some(before + 1.0));
    drop(stream);
    drop(channel);

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while watchers() != Some(before) {
        assert!(std::time::Instant::now() < deadline, "the watcher outlived its client");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Counted as it ended, by how it ended: its client cancelled it (not
    // as `Ok` the moment it opened).
    let watch = |code: &str| {
        let (_, body) = http_get(&addr, "/metrics").unwrap();
        sample(
            &body,
            &format!(r#"swarmd_requests_total{{method="/swarm.v1.Watch/Watch",code="{code}"}}"#),
        )
    };
    while watch("Canceled") != Some(1.0) {
        assert!(
            std::time::Instant::now() < deadline,
            "the cancelled watch was not counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(watch("OK"), None);
    let status = daemon.signal_and_wait(SIGINT, Duration::from_secs(10));
    assert!(status.success());
}

/// Idle connections to the metrics port cannot take the daemon's file
/// descriptors: past 16, one is closed as soon as accepted; once they go,
/// scrapes are answered again, and the Control API served throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_to_the_metrics_port_are_capped() {
    use std::io::Read as _;

    let root = tempfile::tempdir().unwrap();
    let (daemon, addr) = start_with_metrics(root.path()).await;
    let idle: Vec<std::net::TcpStream> = (0..16)
        .map(|_| std::net::TcpStream::connect(&addr).expect("connect"))
        .collect();
    // Past the cap: accepted, then closed with nothing said.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut extra = std::net::TcpStream::connect(&addr).expect("connect");
        extra.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut byte = [0u8; 1];
        let scraped = http_get(&addr, "/metrics").is_ok_and(|(status, _)| status.contains("200"));
        if matches!(extra.read(&mut byte), Ok(0) | Err(_)) && !scraped {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a connection past the cap was served"
        );
    }
    let mut control = connect(&daemon.socket).await.unwrap();
    control
        .list_services(swarm_proto::v1::ListServicesRequest::default())
        .await
        .expect("the Control API serves throughout");
    drop(idle);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !http_get(&addr, "/metrics").is_ok_and(|(status, _)| status.contains("200")) {
        assert!(
            std::time::Instant::now() < deadline,
            "no scrape answered after the idle ones went"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
