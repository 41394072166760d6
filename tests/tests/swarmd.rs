//! A real `swarmd` process: it creates its cluster on a first start, serves
//! the Control API on its socket, stops cleanly on SIGINT and SIGTERM (at
//! once on a second signal), and comes back with everything after a clean
//! stop or a kill -9.

use std::time::Duration;

use swarm_proto::v1::{
    Annotations, ConfigSpec, CreateConfigRequest, CreateSecretRequest, CreateServiceRequest, ListClustersRequest,
    ListConfigsRequest, ListNodesRequest, ListSecretsRequest, ListServicesRequest, NodeRole, SecretSpec, ServiceSpec,
};
use swarm_tests::daemon::{Daemon, connect, refused_start, swarmd_binary};

const SIGINT: i32 = 2;
const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;
const SIGHUP: i32 = 1;

/// The address the Raft transport listens on (`listening`) or is reached
/// at (`advertised`), as the last start logged it.
fn raft_addr(log: &str, which: &str) -> Option<String> {
    let line = log
        .lines()
        .rev()
        .find(|line| line.contains("raft transport listening"))?;
    Some(
        line.split(&format!("{which}="))
            .nth(1)?
            .split_whitespace()
            .next()?
            .to_string(),
    )
}

/// The cluster's id and this node's id and hostname, as the API reports them.
async fn identity(daemon: &Daemon) -> (String, String, String) {
    let mut control = connect(&daemon.socket).await.unwrap();
    let clusters = control
        .list_clusters(ListClustersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .clusters;
    assert_eq!(clusters.len(), 1);
    let cluster = &clusters[0];
    assert_eq!(
        cluster.spec.as_ref().unwrap().annotations.as_ref().unwrap().name,
        "default"
    );
    let nodes = control
        .list_nodes(ListNodesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .nodes;
    assert_eq!(nodes.len(), 1);
    let node = &nodes[0];
    assert_eq!(node.role, i32::from(NodeRole::Manager));
    assert!(node.manager_status.as_ref().unwrap().leader);
    let hostname = node.description.as_ref().unwrap().hostname.clone();
    (cluster.id.clone(), node.id.clone(), hostname)
}

/// Everything a user stored, as the API lists it: services, secrets and
/// configs, whole (versions included), and the cluster and node identity.
#[derive(Debug, PartialEq)]
struct Contents {
    identity: (String, String, String),
    services: Vec<swarm_proto::v1::Service>,
    secrets: Vec<swarm_proto::v1::Secret>,
    configs: Vec<swarm_proto::v1::Config>,
}

async fn contents(daemon: &Daemon) -> Contents {
    let mut control = connect(&daemon.socket).await.unwrap();
    let services = control.list_services(ListServicesRequest::default()).await.unwrap();
    let secrets = control.list_secrets(ListSecretsRequest::default()).await.unwrap();
    let configs = control.list_configs(ListConfigsRequest::default()).await.unwrap();
    Contents {
        identity: identity(daemon).await,
        services: services.into_inner().services,
        secrets: secrets.into_inner().secrets,
        configs: configs.into_inner().configs,
    }
}

/// Stores a service, a secret and a config named after `tag`.
async fn store_some(daemon: &Daemon, tag: &str) {
    let mut control = connect(&daemon.socket).await.unwrap();
    let annotations = Some(Annotations {
        name: tag.to_string(),
        labels: [("round".to_string(), tag.to_string())].into(),
    });
    control
        .create_service(CreateServiceRequest {
            spec: Some(ServiceSpec::container(tag, "busybox:local")),
        })
        .await
        .unwrap();
    let data = tag.as_bytes().to_vec();
    let spec = SecretSpec {
        annotations: annotations.clone(),
        data: data.clone(),
    };
    control
        .create_secret(CreateSecretRequest { spec: Some(spec) })
        .await
        .unwrap();
    let spec = ConfigSpec { annotations, data };
    control
        .create_config(CreateConfigRequest { spec: Some(spec) })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_keeps_its_cluster_across_sigint_sigterm_and_kill_9() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node-1");
    let binary = swarmd_binary();

    let daemon = Daemon::start(&binary, &dir, "node-1").await;
    let first = identity(&daemon).await;
    assert_eq!(first.2, "node-1");
    // Everything it made is its user's alone: the socket, the state dir,
    // and RocksDB's files, which hold the secrets.
    let private = |path: &std::path::Path| {
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions());
        assert_eq!(mode & 0o077, 0, "{} is mode {mode:o}", path.display());
    };
    private(&daemon.socket);
    private(&dir);
    for entry in std::fs::read_dir(dir.join("raft")).unwrap() {
        private(&entry.unwrap().path());
    }
    assert!(daemon.log_text().contains("node is ready"));
    store_some(&daemon, "before-sigint").await;
    let stored = contents(&daemon).await;
    let socket = daemon.socket.clone();
    let status = daemon.signal_and_wait(SIGINT, Duration::from_secs(10));
    assert!(status.success(), "exit after SIGINT: {status}");
    assert!(!socket.exists(), "the socket is removed on a clean stop");

    let daemon = Daemon::start(&binary, &dir, "node-1").await;
    assert_eq!(contents(&daemon).await, stored, "everything is back after SIGINT");
    assert!(
        !daemon.log_text().contains("did not stop cleanly"),
        "a clean stop is one"
    );
    assert_eq!(stored.identity, first);
    store_some(&daemon, "before-sigterm").await;
    let stored = contents(&daemon).await;
    let status = daemon.signal_and_wait(SIGTERM, Duration::from_secs(10));
    assert!(status.success(), "exit after SIGTERM: {status}");
    assert!(!socket.exists(), "the socket is removed on a clean stop");

    let daemon = Daemon::start(&binary, &dir, "node-1").await;
    assert_eq!(contents(&daemon).await, stored, "everything is back after SIGTERM");
    store_some(&daemon, "before-kill").await;
    let stored = contents(&daemon).await;
    assert_eq!(stored.services.len(), 3);
    daemon.signal_and_wait(SIGKILL, Duration::from_secs(10));
    assert!(socket.exists(), "a killed daemon leaves its socket");
    // A start refused further on (its Raft address taken) says it at once:
    // its own end is a clean one, and the next start could not tell.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let (code, stderr) = refused_start(&binary, &dir, &socket, &taken_addr);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("did not stop cleanly"), "{stderr}");
    drop(taken);

    let daemon = Daemon::start(&binary, &dir, "node-1").await;
    assert_eq!(contents(&daemon).await, stored, "everything is back after kill -9");
    assert!(daemon.log_text().contains("replacing a stale control socket"));
    assert!(
        !daemon.log_text().contains("did not stop cleanly"),
        "the refused start said it, and ended cleanly"
    );
    // The terminal that started it closing is a clean stop too, the
    // hangup coming twice as it often does (not a second signal that ends
    // the stop at once).
    daemon.signal(SIGHUP);
    daemon.wait_for_log("stop requested", Duration::from_secs(10));
    let status = daemon.signal_and_wait(SIGHUP, Duration::from_secs(10));
    assert!(status.success(), "exit after SIGHUP: {status}");
    assert!(!socket.exists(), "the socket is removed on a clean stop");

    // Started under another hostname and Raft address (each start here
    // takes a free port): the same node, now described so.
    let daemon = Daemon::start(&binary, &dir, "renamed").await;
    let (cluster, node, hostname) = identity(&daemon).await;
    assert_eq!((cluster, node), (first.0.clone(), first.1.clone()));
    assert_eq!(hostname, "renamed");
    let mut control = connect(&daemon.socket).await.unwrap();
    let nodes = control
        .list_nodes(ListNodesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .nodes;
    let advertised = raft_addr(&daemon.log_text(), "advertised").expect("the log names the raft address");
    assert_eq!(nodes[0].manager_status.as_ref().unwrap().addr, advertised);
    let status = daemon.signal_and_wait(SIGINT, Duration::from_secs(10));
    assert!(status.success());
}

/// A node's state dir under `root` after a run that stored one service
/// and stopped cleanly; and the swarmd binary.
async fn a_node_that_ran(root: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = root.join("node-1");
    let binary = swarmd_binary();
    let daemon = Daemon::start(&binary, &dir, "node-1").await;
    store_some(&daemon, "kept").await;
    assert!(daemon.signal_and_wait(SIGINT, Duration::from_secs(10)).success());
    (dir, binary)
}

/// A node that has run before and finds its Raft data gone (removed, or
/// on a volume not mounted) refuses to start rather than begin a new
/// cluster under its old identity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_raft_data_is_gone_refuses_to_start() {
    let root = tempfile::tempdir().unwrap();
    let (dir, binary) = a_node_that_ran(root.path()).await;

    let start = || {
        let (code, stderr) = refused_start(&binary, &dir, &root.path().join("s.sock"), "127.0.0.1:0");
        assert_eq!(code, Some(1), "{stderr}");
        stderr
    };
    let raft = dir.join("raft");
    let moved = root.path().join("raft-elsewhere");
    std::fs::rename(&raft, &moved).unwrap();
    // An empty mount point where the data was.
    std::fs::create_dir(&raft).unwrap();
    let stderr = start();
    assert!(
        stderr.contains("holds no Raft log, though this member has run before"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(&raft).unwrap().count(),
        0,
        "the empty dir was left empty"
    );
    std::fs::remove_dir(&raft).unwrap();
    let stderr = start();
    assert!(stderr.contains("no Raft data"), "{stderr}");
    assert!(!raft.exists());

    // The data back: everything is there.
    std::fs::rename(&moved, &raft).unwrap();
    let daemon = Daemon::start(&binary, &dir, "node-1").await;
    assert_eq!(contents(&daemon).await.services.len(), 1);
    assert!(daemon.signal_and_wait(SIGINT, Duration::from_secs(10)).success());
}

/// An identity file that names another node than the cluster holds
/// (edited, or copied from another node's state dir) stops the start:
/// adding that node would leave two managers on one Raft member. Put
/// back, the node starts with everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_naming_a_node_the_cluster_lacks_refuses_to_start() {
    let root = tempfile::tempdir().unwrap();
    let (dir, binary) = a_node_that_ran(root.path()).await;

    let identity = dir.join("identity");
    let original = std::fs::read_to_string(&identity).unwrap();
    let other = "aaaaaaaaaaaaaaaaaaaaaaaaa";
    let edited: String = original
        .lines()
        .map(|line| {
            if line.starts_with("node ") {
                format!("node {other}\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    assert_ne!(edited, original);
    std::fs::write(&identity, &edited).unwrap();
    let (code, stderr) = refused_start(&binary, &dir, &root.path().join("s.sock"), "127.0.0.1:0");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "this state dir's cluster has no node {other}, which its identity file names"
        )),
        "{stderr}"
    );

    std::fs::write(&identity, &original).unwrap();
    let daemon = Daemon::start(&binary, &dir, "node-1").await;
    assert_eq!(contents(&daemon).await.services.len(), 1);
    let nodes = connect(&daemon.socket)
        .await
        .unwrap()
        .list_nodes(swarm_proto::v1::ListNodesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .nodes;
    assert_eq!(nodes.len(), 1, "one node, never a second: {nodes:?}");
    assert!(daemon.signal_and_wait(SIGINT, Duration::from_secs(10)).success());
}

/// The largest write-ahead log file in a node's Raft data: after a kill -9
/// and a few writes, the one that holds them.
fn largest_write_ahead_log(raft: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(raft)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "log"))
        .max_by_key(|path| std::fs::metadata(path).unwrap().len())
        .expect("a write-ahead log")
}

/// Copies the dirs and files under `from` to `to`, modes kept (not a
/// socket left there).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::set_permissions(to, std::fs::metadata(from).unwrap().permissions()).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (kind, target) = (entry.file_type().unwrap(), to.join(entry.file_name()));
        if kind.is_dir() {
            copy_dir(&entry.path(), &target);
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A record of the write-ahead log damaged (a bad disk, a stray write)
/// stops the node with RocksDB's error and leaves the log as found, rather
/// than dropping the acknowledged writes after it and handing their
/// indexes to new ones. A record cut short at the log's end, which is all
/// a crash can leave, is tolerated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_write_ahead_log_record_stops_the_node_unless_salvaged_and_a_torn_tail_does_not() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node-1");
    let binary = swarmd_binary();
    let daemon = Daemon::start(&binary, &dir, "node-1").await;
    for n in 0..20 {
        store_some(&daemon, &format!("acked{n}")).await;
    }
    let acknowledged = contents(&daemon).await;
    assert!(!daemon.signal_and_wait(SIGKILL, Duration::from_secs(10)).success());
    // The acknowledged writes are in the log, not yet in tables: a copy
    // for the damage, as a start moves the log into tables.
    let copy = root.path().join("node-1-copy");
    copy_dir(&dir, &copy);

    // A torn tail: a few bytes of a record that never finished.
    let log = largest_write_ahead_log(&dir.join("raft"));
    let mut torn = std::fs::read(&log).unwrap();
    torn.extend_from_slice(b"ZZZZ");
    std::fs::write(&log, &torn).unwrap();
    let daemon = Daemon::start(&binary, &dir, "node-1").await;
    assert_eq!(contents(&daemon).await, acknowledged, "a torn tail cost nothing");
    assert!(daemon.signal_and_wait(SIGINT, Duration::from_secs(10)).success());

    // One byte of an acknowledged write's record changed: its checksum
    // fails.
    let log = largest_write_ahead_log(&copy.join("raft"));
    let mut damaged = std::fs::read(&log).unwrap();
    let at = damaged
        .windows(b"acked5".len())
        .position(|window| window == b"acked5")
        .expect("the write is in the log");
    damaged[at] ^= 0x20;
    std::fs::write(&log, &damaged).unwrap();
    let (code, stderr) = refused_start(&binary, &copy, &root.path().join("s.sock"), "127.0.0.1:0");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("Corruption"), "{stderr}");
    assert_eq!(
        std::fs::read(&log).unwrap(),
        damaged,
        "the damaged log was left as found"
    );

    // Asked to, it starts from what came before the damage.
    let daemon = Daemon::start_with(&binary, &copy, "node-1", &["--salvage-damaged-log"]).await;
    let salvaged = contents(&daemon).await;
    let names = |contents: &Contents| -> Vec<String> {
        let mut names: Vec<String> = contents
            .services
            .iter()
            .map(|service| {
                service
                    .spec
                    .as_ref()
                    .unwrap()
                    .annotations
                    .as_ref()
                    .unwrap()
                    .name
                    .clone()
            })
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names(&salvaged),
        (0..5).map(|n| format!("acked{n}")).collect::<Vec<_>>()
    );
    assert_eq!(salvaged.secrets.len(), 5, "the damaged write's and later ones are gone");
    assert!(daemon.log_text().contains("it and every later one were dropped"));
    // The copy was of a killed daemon's dir, which the refused start said;
    // a refused start itself is no unclean stop.
    assert!(
        !daemon.log_text().contains("did not stop cleanly"),
        "{}",
        daemon.log_text()
    );
    assert!(daemon.signal_and_wait(SIGINT, Duration::from_secs(10)).success());
    let daemon = Daemon::start(&binary, &copy, "node-1").await;
    assert_eq!(contents(&daemon).await, salvaged, "and starts as usual after");
    assert!(daemon.signal_and_wait(SIGINT, Duration::from_secs(10)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_a_live_socket_or_state_dir_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node-1");
    let binary = swarmd_binary();
    let daemon = Daemon::start(&binary, &dir, "node-1").await;

    // A second swarmd on `state_dir`, `socket` and Raft address `remote`:
    // refused; its stderr.
    let refused_at = |state_dir: &std::path::Path, socket: &std::path::Path, remote: &str| {
        let (code, stderr) = refused_start(&binary, state_dir, socket, remote);
        assert_ne!(code, Some(0), "{stderr}");
        stderr
    };
    let refused = |state_dir: &std::path::Path, socket: &std::path::Path| refused_at(state_dir, socket, "127.0.0.1:0");
    // The same state dir and socket: the socket is live, so it is refused.
    let stderr = refused(&dir, &daemon.socket);
    assert!(stderr.contains("Error:"), "{stderr}");
    // The same state dir on another socket: told so, plainly.
    let stderr = refused(&dir, &root.path().join("other.sock"));
    assert!(stderr.contains("another swarmd is using it"), "{stderr}");
    // Another state dir, the same socket: refused before that dir is made.
    let other = root.path().join("node-2");
    let stderr = refused(&other, &daemon.socket);
    assert!(stderr.contains("another daemon is serving it"), "{stderr}");
    assert!(!other.exists(), "a refused daemon made a state dir");
    // A socket path holding a file: refused as early, the file kept.
    let file = root.path().join("notes.txt");
    std::fs::write(&file, "mine").unwrap();
    let stderr = refused(&other, &file);
    assert!(stderr.contains("not a socket"), "{stderr}");
    assert!(!other.exists(), "a refused daemon made a state dir");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");
    // A socket path longer than a Unix socket's, or a Raft address in use:
    // refused before anything is made, or any cluster.
    let long = root.path().join(format!("{}.sock", "s".repeat(120)));
    let stderr = refused(&other, &long);
    assert!(stderr.contains("a Unix socket's path holds at most 107"), "{stderr}");
    assert!(!other.exists(), "a refused daemon made a state dir");
    let taken = raft_addr(&daemon.log_text(), "listening").expect("the log names the raft address");
    let stderr = refused_at(&other, &root.path().join("other.sock"), &taken);
    assert!(stderr.contains("bind the Raft transport"), "{stderr}");
    assert!(!other.join("raft").exists(), "a refused daemon made a cluster");

    let status = daemon.signal_and_wait(SIGINT, Duration::from_secs(10));
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_service_create_survives_kill_9_and_bad_input_is_refused() {
    use swarm_proto::v1::{CreateServiceRequest, GetServiceRequest, ServiceSpec};
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node-1");
    let binary = swarmd_binary();
    let daemon = Daemon::start(&binary, &dir, "node-1").await;
    let mut control = connect(&daemon.socket).await.unwrap();
    let spec = ServiceSpec::container;
    let created = control
        .create_service(CreateServiceRequest {
            spec: Some(spec("web", "busybox:local")),
        })
        .await
        .unwrap()
        .into_inner()
        .service
        .unwrap();
    let refused = control
        .create_service(CreateServiceRequest {
            spec: Some(spec("web", "busybox:local")),
        })
        .await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::AlreadyExists);
    let refused = control
        .create_service(CreateServiceRequest {
            spec: Some(spec("bad name", "busybox")),
        })
        .await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::InvalidArgument);
    // Over the 8 MiB the manager decodes: refused before any handler runs,
    // as gRPC means it, and in words.
    let huge = swarm_proto::v1::SecretSpec {
        annotations: Some(swarm_proto::v1::Annotations {
            name: "huge".into(),
            ..Default::default()
        }),
        data: vec![b'x'; 9 << 20],
    };
    let refused = control
        .create_secret(swarm_proto::v1::CreateSecretRequest { spec: Some(huge) })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().starts_with("the request is 943")
            && refused
                .message()
                .ends_with("over the 8388608 bytes (8 MiB) this manager takes in one request"),
        "{refused:?}"
    );
    // An error that quotes a long value quotes its start: whole, it made
    // a header over what gRPC's C core takes (16 KiB).
    let unknown = control
        .get_service(GetServiceRequest {
            service_id: "q".repeat(20_000),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    assert!(
        unknown.message().len() < 1024 && unknown.message().contains("…(20000 bytes) not found"),
        "{}",
        unknown.message()
    );
    drop(control);
    daemon.signal_and_wait(SIGKILL, Duration::from_secs(10));

    let daemon = Daemon::start(&binary, &dir, "node-1").await;
    let mut control = connect(&daemon.socket).await.unwrap();
    let found = control
        .get_service(GetServiceRequest {
            service_id: created.id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        found.into_inner().service.unwrap(),
        created,
        "acknowledged, so kept, version and all"
    );
    let status = daemon.signal_and_wait(SIGINT, Duration::from_secs(10));
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_sees_every_change_in_order_with_no_gap_across_1000_writes() {
    use futures::StreamExt as _;
    use swarm_proto::v1::watch_client::WatchClient;
    use swarm_proto::v1::watch_request::WatchEntry;
    use swarm_proto::v1::{CreateServiceRequest, ServiceSpec, WatchRequest, object};
    const WRITES: usize = 1000;
    const CLIENTS: usize = 16;

    let root = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&swarmd_binary(), &root.path().join("node-1"), "node-1").await;
    let channel = swarm_tests::daemon::channel(&daemon.socket).await.unwrap();
    let request = WatchRequest {
        entries: vec![WatchEntry {
            kind: "service".into(),
            ..Default::default()
        }],
        include_commits: true,
        resume_after: None,
    };
    let mut stream = WatchClient::new(channel.clone())
        .watch(request)
        .await
        .unwrap()
        .into_inner();

    swarm_tests::daemon::write_concurrently(&channel, CLIENTS, WRITES, |mut control, n| async move {
        let spec = ServiceSpec::container(format!("svc-{n}"), "busybox");
        let request = CreateServiceRequest { spec: Some(spec) };
        control.create_service(request).await.unwrap();
        control
    })
    .await;

    let mut names = std::collections::BTreeSet::new();
    let mut last_index = 0;
    while names.len() < WRITES {
        let message = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("the watch keeps up")
            .expect("the stream stays open")
            .unwrap();
        assert!(
            message.commit_index > last_index,
            "commits in order: {} after {last_index}",
            message.commit_index
        );
        last_index = message.commit_index;
        if message.events.is_empty() {
            continue; // how far the watch has come: where it starts, say
        }
        assert_eq!(message.events.len(), 1, "one service per transaction");
        let Some(object::Object::Service(service)) = message.events[0].object.as_ref().and_then(|o| o.object.clone())
        else {
            panic!("a service event");
        };
        assert_eq!(
            service.meta.as_ref().unwrap().version,
            message.commit_index,
            "the event is the commit's"
        );
        let name = service.spec.unwrap().annotations.unwrap().name;
        assert!(names.insert(name.clone()), "{name} seen twice");
    }
    assert_eq!(names.len(), WRITES);
    let status = daemon.signal_and_wait(SIGINT, Duration::from_secs(10));
    assert!(status.success());
}

/// A stop signal that comes before swarmd listens for it is taken once it
/// does, rather than kill it (SIGTERM's default) or be lost (SIGINT, which
/// a shell ignores in the jobs it starts in the background): swarmd
/// started so, with the stop signals blocked so that they surely come
/// before (the mask outlives the exec), and signalled at once, stops
/// cleanly.
#[test]
fn a_stop_signal_sent_as_swarmd_starts_stops_it_cleanly() {
    use std::os::unix::process::CommandExt as _;
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("node-1");
        let mut command = std::process::Command::new(swarmd_binary());
        command
            .args(["-d", &dir.to_string_lossy()])
            .args([
                "--listen-control-api",
                &root.path().join("swarm.sock").to_string_lossy(),
            ])
            .args(["--listen-remote-api", "127.0.0.1:0"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: between fork and exec, only async-signal-safe calls on a
        // set of our own.
        unsafe {
            command.pre_exec(|| {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                for blocked in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                    libc::sigaddset(&mut set, blocked);
                }
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                libc::signal(libc::SIGINT, libc::SIG_IGN);
                Ok(())
            });
        }
        let mut child = command.spawn().expect("start swarmd");
        // SAFETY: `kill` on the pid of a child of ours, not yet waited for.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for swarmd") {
                break status;
            }
            if std::time::Instant::now() > deadline {
                child.kill().ok();
                panic!("signal {signal}, sent as swarmd started, did not stop it");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(status.success(), "signal {signal}: {status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigint_ends_a_stalled_stop_at_once_and_loses_nothing() {
    use futures::stream;
    use http_body_util::StreamBody;
    use swarm_proto::v1::{CreateServiceRequest, ListServicesRequest, ServiceSpec};
    use swarm_tests::daemon::channel;
    use tower::ServiceExt as _;

    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node-1");
    let binary = swarmd_binary();
    let mut daemon = Daemon::start(&binary, &dir, "node-1").await;
    let mut control = connect(&daemon.socket).await.unwrap();
    for n in 0..20 {
        let spec = ServiceSpec::container(format!("svc-{n}"), "busybox");
        control
            .create_service(CreateServiceRequest { spec: Some(spec) })
            .await
            .unwrap();
    }

    // A request whose body never ends: a graceful stop waits for it (up to
    // its 10 s bound).
    let stalled_channel = channel(&daemon.socket).await.unwrap();
    let never = stream::pending::<Result<http_body::Frame<bytes::Bytes>, tonic::Status>>();
    let request = http::Request::post("http://swarmd.sock/swarm.v1.Control/ListServices")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::new(StreamBody::new(never)))
        .unwrap();
    let mut stalled = Box::pin(stalled_channel.clone().oneshot(request));
    let pending = tokio::time::timeout(Duration::from_millis(100), &mut stalled).await;
    assert!(pending.is_err(), "the stalled request was answered");
    // Frames of one connection arrive in order: once this answer is back,
    // the server has opened the stalled stream too.
    let mut same_connection = swarm_proto::v1::control_client::ControlClient::new(stalled_channel);
    same_connection
        .list_services(ListServicesRequest::default())
        .await
        .unwrap();

    daemon.signal(SIGINT);
    daemon.wait_for_log("stop requested", Duration::from_secs(10));
    assert!(daemon.is_running(), "the stop did not wait for the stalled request");
    daemon.signal(SIGINT);
    let status = daemon.wait(Duration::from_secs(2));
    assert_eq!(status.code(), Some(130), "exit after the second SIGINT: {status}");
    drop(stalled);

    let daemon = Daemon::start(&binary, &dir, "node-1").await;
    assert!(daemon.log_text().contains("second signal: exiting now"));
    let mut control = connect(&daemon.socket).await.unwrap();
    let services = control
        .list_services(ListServicesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .services;
    assert_eq!(services.len(), 20, "every acknowledged create is back");
    let status = daemon.signal_and_wait(SIGINT, Duration::from_secs(10));
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clusters_snapshot_interval_takes_effect_while_running() {
    use swarm_proto::v1::UpdateClusterRequest;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node-1");
    let daemon = Daemon::start(&swarmd_binary(), &dir, "node-1").await;
    store_some(&daemon, "before").await;
    assert!(
        !daemon.log_text().contains("snapshot taken"),
        "10,000 entries by default"
    );

    let mut control = connect(&daemon.socket).await.unwrap();
    let clusters = control.list_clusters(ListClustersRequest::default()).await.unwrap();
    let cluster = clusters.into_inner().clusters.remove(0);
    let mut spec = cluster.spec.unwrap();
    spec.raft.as_mut().unwrap().snapshot_interval = 20;
    control
        .update_cluster(UpdateClusterRequest {
            cluster_id: cluster.id,
            cluster_version: cluster.meta.unwrap().version,
            spec: Some(spec),
            ..Default::default()
        })
        .await
        .unwrap();
    daemon.wait_for_log("snapshot_interval=20", Duration::from_secs(10));
    for round in 0..10 {
        store_some(&daemon, &format!("after-{round}")).await;
    }
    daemon.wait_for_log("snapshot taken", Duration::from_secs(10));
    assert!(daemon.signal_and_wait(SIGINT, Duration::from_secs(10)).success());
}

/// The soft and hard limits on open files of process `pid`.
fn open_files_limit(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|line| line.starts_with("Max open files")).unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[3].to_string(), fields[4].to_string())
}

/// The CPU time process `pid` has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command, which is in parentheses and may hold
    // spaces: state is the first, utime the 12th, stime the 13th.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|field| field.parse().unwrap())
        .collect();
    // SAFETY: `sysconf` only reads a configuration value.
    let ticks = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap();
    Duration::from_millis((fields[0] + fields[1]) * 1000 / ticks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_at_its_connection_cap_closes_more_keeps_its_descriptors_and_serves_again() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node-1");
    // A soft limit of 64 open files, which swarmd raises to the hard 160.
    let limit = |command: &mut std::process::Command| {
        // SAFETY: between fork and exec, only `setrlimit`, which is
        // async-signal-safe, on a struct of our own.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(command, || {
                let limit = libc::rlimit {
                    rlim_cur: 64,
                    rlim_max: 160,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    };
    let daemon = Daemon::start_configured(&swarmd_binary(), &dir, "node-1", &[], limit).await;
    let pid = daemon.child.id();
    assert_eq!(open_files_limit(pid), ("160".to_string(), "160".to_string()));

    // Clients that would hold more connections than it can open (the
    // socket's backlog keeps those it has not accepted): it keeps a quarter
    // of its open files for them and closes the rest as soon as accepted,
    // so its descriptors never run out.
    let held: Vec<_> = (0..240)
        .map(|_| std::os::unix::net::UnixStream::connect(&daemon.socket).unwrap())
        .collect();
    daemon.wait_for_log("connections closed as soon as accepted", Duration::from_secs(10));
    // Refusing costs next to nothing: no thread spins on it. (A spinning
    // thread burns most of the window even on a busy machine; the bound
    // leaves room for a debug build's ticks and start-up work when the
    // whole suite shares two cores.)
    let before = cpu_time(pid);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let used = cpu_time(pid) - before;
    assert!(used < Duration::from_secs(1), "{used:?} of CPU in 3 s");
    assert!(
        !daemon.log_text().contains("cannot accept connections"),
        "it ran out of descriptors"
    );

    drop(held);
    let mut control = connect(&daemon.socket).await.unwrap();
    control.list_nodes(ListNodesRequest::default()).await.unwrap();
    store_some(&daemon, "after").await;
    assert!(daemon.signal_and_wait(SIGINT, Duration::from_secs(10)).success());
}

/// A daemon whose log pipe lost its reader (`swarmd | head`, a log
/// collector restarted) goes on: it serves, logging every request, and
/// stops cleanly on a signal, rather than panicking on the next line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_whose_log_pipe_closed_serves_on_and_stops_cleanly() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node-1");
    let piped = |command: &mut std::process::Command| {
        command.stderr(std::process::Stdio::piped());
    };
    let mut daemon = Daemon::start_configured(&swarmd_binary(), &dir, "node-1", &["-l", "debug"], piped).await;
    drop(daemon.child.stderr.take().expect("a pipe"));
    store_some(&daemon, "after").await;
    let mut control = connect(&daemon.socket).await.unwrap();
    let services = control.list_services(ListServicesRequest::default()).await.unwrap();
    assert_eq!(services.into_inner().services.len(), 1);
    let status = daemon.signal_and_wait(SIGTERM, Duration::from_secs(10));
    assert!(status.success(), "{status:?}");

    // And what it acknowledged is there.
    let daemon = Daemon::start(&swarmd_binary(), &dir, "node-1").await;
    let (stored, _) = daemon.service_ids_by_name().await;
    assert!(stored.contains_key("after"), "{stored:?}");
}

/// The commit index `info` reports is one a watch can resume after, even
/// when the last entries were Raft's own (a restart's election appends an
/// empty one): the store's index follows the log's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_resumes_after_the_commit_index_info_reports() {
    use swarm_proto::v1::info_client::InfoClient;
    use swarm_proto::v1::watch_client::WatchClient;
    use swarm_proto::v1::{GetInfoRequest, WatchRequest};
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node-1");
    let daemon = Daemon::start(&swarmd_binary(), &dir, "node-1").await;
    store_some(&daemon, "before").await;
    assert!(daemon.signal_and_wait(SIGTERM, Duration::from_secs(10)).success());
    let daemon = Daemon::start(&swarmd_binary(), &dir, "node-1").await;
    let channel = swarm_tests::daemon::channel(&daemon.socket).await.unwrap();
    let info = InfoClient::new(channel.clone())
        .get_info(GetInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    let manager = info.manager.expect("a manager");
    assert_eq!(manager.applied_index, manager.commit_index, "{manager:?}");
    let request = WatchRequest {
        include_commits: true,
        resume_after: Some(manager.commit_index),
        ..Default::default()
    };
    let resumed = WatchClient::new(channel).watch(request).await;
    assert!(resumed.is_ok(), "{:?}", resumed.err());
}

/// Flags that cannot work together are refused before anything is made.
#[test]
fn an_election_tick_not_above_the_heartbeat_is_refused_before_the_state_dir_is_made() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node-1");
    let output = std::process::Command::new(swarmd_binary())
        .args(["-d", &dir.to_string_lossy()])
        .args(["--listen-control-api", &root.path().join("s.sock").to_string_lossy()])
        .args(["--heartbeat-tick", "10", "--election-tick", "5"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--election-tick (5) must be more than --heartbeat-tick (10)"),
        "{stderr}"
    );
    assert!(!dir.exists(), "a refused start made the state dir");
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0, "nor anything else");
}

/// A client that stopped reading its watch (one that reads no more of the
/// stream, its window full) holds no stop: the stop gives what is in
/// flight a grace, then closes it, and exits 0 well within the 10 s a
/// signalled stop has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_stopped_reading_holds_no_stop() {
    use swarm_proto::v1::WatchRequest;
    use swarm_proto::v1::watch_client::WatchClient;

    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node-1");
    let daemon = Daemon::start(&swarmd_binary(), &dir, "node-1").await;
    let channel = swarm_tests::daemon::channel(&daemon.socket).await.unwrap();
    let request = WatchRequest {
        include_commits: true,
        ..Default::default()
    };
    let mut watch = WatchClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .watch(request)
        .await
        .expect("a watch")
        .into_inner();
    let mut control = connect(&daemon.socket).await.unwrap();
    let big = |name: &str| {
        let mut spec = ServiceSpec::container(name, "busybox:local");
        let task = swarm_proto::Shared::make_mut(spec.task.as_mut().unwrap());
        let Some(swarm_proto::v1::task_spec::Runtime::Container(container)) = task.runtime.as_mut() else {
            unreachable!("a container spec")
        };
        container.env = vec![format!("BIG={}", "x".repeat(400 * 1024))];
        CreateServiceRequest { spec: Some(spec) }
    };
    // Watching once its start marker comes; from then on nothing reads it.
    watch.message().await.expect("a start marker").expect("not the end");
    // Far more than the HTTP/2 windows hold.
    for n in 0..30 {
        control.create_service(big(&format!("big{n}"))).await.unwrap();
    }
    drop(control);
    let started = std::time::Instant::now();
    let status = daemon.signal_and_wait(SIGTERM, Duration::from_secs(9));
    assert!(status.success(), "exit after SIGTERM: {status}");
    assert!(started.elapsed() < Duration::from_secs(9), "{:?}", started.elapsed());
    let log = std::fs::read_to_string(dir.with_extension("log")).unwrap();
    assert!(
        log.contains("their connections are closed") && log.contains("closed=1"),
        "{log}"
    );
    drop(watch);
}

/// A control socket removed while the daemon serves (a cleanup script,
/// say) leaves it unreachable: it says so, once, and still stops cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_socket_removed_under_the_daemon_is_reported() {
    let root = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&swarmd_binary(), &root.path().join("node-1"), "node-1").await;
    std::fs::remove_file(&daemon.socket).unwrap();
    daemon.wait_for_log(
        "the control socket was removed or replaced while this daemon serves",
        Duration::from_secs(30),
    );
    assert!(daemon.signal_and_wait(SIGINT, Duration::from_secs(10)).success());
}

/// Clients dialing while the daemon stops are served, or told that nothing
/// listens: never left not knowing whether their change was made. (The
/// connections queued on the socket when it closed its listener were reset,
/// which a client cannot tell from a connection lost with its request in
/// it: 2 to 8 of 3,000 clients in most stops.) Every create acknowledged is
/// there after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_dialing_during_a_stop_are_served_or_told_nothing_listens() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const CLIENTS: usize = 16;
    let root = tempfile::tempdir().unwrap();
    let binary = swarmd_binary();
    let swarmctl = swarm_tests::daemon::workspace_binary("swarmctl");
    // Three stops: the race this guards against is not met in every one
    // (before the fix, two stops in five met it).
    for round in 0..3 {
        let dir = root.path().join(format!("node-{round}"));
        let daemon = Daemon::start(&binary, &dir, "node-1").await;
        let created = Arc::new(AtomicUsize::new(0));
        // Each client creates services, a swarmctl process (a connection)
        // each, until one fails: (the names acknowledged, the error).
        let clients: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let (swarmctl, socket, created) = (swarmctl.clone(), daemon.socket.clone(), Arc::clone(&created));
                std::thread::spawn(move || {
                    let mut acknowledged = Vec::new();
                    for n in 0.. {
                        let name = format!("c{client}-{n}");
                        let output = std::process::Command::new(&swarmctl)
                            .arg("--socket")
                            .arg(&socket)
                            .args(["service", "create", "--name", &name, "--image", "busybox"])
                            .output()
                            .expect("run swarmctl");
                        if !output.status.success() {
                            return (acknowledged, String::from_utf8_lossy(&output.stderr).into_owned());
                        }
                        acknowledged.push(name);
                        created.fetch_add(1, Ordering::Relaxed);
                    }
                    unreachable!("a client creates until the stop")
                })
            })
            .collect();
        swarm_raft::testing::cluster::wait_for("the clients to have created some services", || {
            (created.load(Ordering::Relaxed) >= 4 * CLIENTS).then_some(())
        })
        .await;
        let status = daemon.signal_and_wait(SIGINT, Duration::from_secs(10));
        assert!(status.success(), "{status}");
        let mut acknowledged = Vec::new();
        for client in clients {
            let (names, error) = client.join().expect("a client thread");
            // Dialed after the socket went; or accepted just before and
            // sent away unserved (HTTP/2's GOAWAY: the request was not
            // taken), then dialing again; or come once every request before
            // it was answered, and refused: either way nothing was made.
            let unreachable = error.contains("cannot reach swarmd")
                || error.contains("swarmd is no longer reachable")
                || error.contains("this request was not served (nothing changed)");
            assert!(
                unreachable && !error.contains("may have been made"),
                "round {round}: a client was told neither that nothing listens nor that it was served: {error}"
            );
            acknowledged.extend(names);
        }
        let daemon = Daemon::start(&binary, &dir, "node-1").await;
        let (by_name, count) = daemon.service_ids_by_name().await;
        assert!(
            acknowledged.iter().all(|name| by_name.contains_key(name)),
            "every acknowledged create is back"
        );
        assert!(count >= acknowledged.len());
        let status = daemon.signal_and_wait(SIGINT, Duration::from_secs(10));
        assert!(status.success());
    }
}
