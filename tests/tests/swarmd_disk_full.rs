//! A nearly full disk: `swarmd` refuses writes while less than its reserve
//! is free, goes on serving reads, and takes writes again once there is
//! room. With the reserve off, a disk that fills up under it: it stops with
//! an error that says so and a non-zero exit, and once there is room again
//! comes back with every create it acknowledged (full to the last byte,
//! it cannot start, and says to make room).
//!
//! And large writes churned on a small disk: the log keeps what it must,
//! and frees the rest, so they go on.
//!
//! The state dir is a small tmpfs of its own, so these tests need to mount
//! one: as root (this project's machines, CI) they must; as another user
//! they say loudly that they did not run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use swarm_proto::v1::{
    Annotations, CreateSecretRequest, CreateServiceRequest, ListNodesRequest, ListSecretsRequest, RemoveSecretRequest,
    SecretSpec, ServiceSpec,
};
use swarm_tests::daemon::{Daemon, connect, refused_start_with, swarmd_binary};
use swarm_tests::metrics::{http_get, metrics_addr, sample};
use swarm_tests::noise::Noise;

/// A tmpfs mounted for the test, unmounted when dropped (a failed test
/// included).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> std::io::Result<Tmpfs> {
        std::fs::create_dir_all(at)?;
        run_mount(&[
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=0700"),
            "tmpfs",
            &at.to_string_lossy(),
        ])?;
        Ok(Tmpfs(at.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        run_mount(&["-o", &format!("remount,size={size}"), &self.0.to_string_lossy()]).expect("grow the tmpfs");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Whether this process runs as root (`Uid: 0` in /proc/self/status).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|uids| uids.split_whitespace().nth(1))
            == Some("0")
    })
}

fn run_mount(args: &[&str]) -> std::io::Result<()> {
    let output = Command::new("mount").args(args).output()?;
    if output.status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ))
    }
}

/// A service whose labels make its create about 16 KiB on disk, so that the
/// disk fills after a few hundred creates.
fn bulky_service(name: &str) -> ServiceSpec {
    let mut spec = ServiceSpec::container(name, "busybox:local");
    let annotations = spec.annotations.get_or_insert_with(Default::default);
    annotations.labels.insert("padding".into(), "x".repeat(16 * 1024));
    spec
}

/// A tmpfs of `size` at `dir`, or `None` (said loudly) where this user may
/// not mount one.
fn mount_or_skip(dir: &Path, size: &str) -> Option<Tmpfs> {
    match Tmpfs::mount(dir, size) {
        Ok(tmpfs) => Some(tmpfs),
        Err(err) if !is_root() => {
            eprintln!("\n*** SKIPPED: this test mounts a tmpfs and could not ({err}); run it as root ***\n");
            None
        }
        Err(err) => panic!("root could not mount a tmpfs: {err}"),
    }
}

/// What `swarmctl info` prints.
fn swarmctl_info(socket: &Path) -> String {
    let output = Command::new(swarm_tests::daemon::workspace_binary("swarmctl"))
        .args(["info"])
        .env("SWARM_SOCKET", socket)
        .output()
        .expect("run swarmctl info");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Bytes free for a user on the filesystem holding `dir`, as `df` says.
fn free_bytes(dir: &Path) -> u64 {
    let output = Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(dir)
        .output()
        .expect("run df");
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .nth(1)
        .and_then(|line| line.trim().parse().ok())
        .unwrap_or_else(|| panic!("df said: {text}"))
}

/// What a failure shows of the disk under state dir `dir`: the free
/// bytes, and each file of its Raft data dir with its size.
fn disk_use(dir: &Path) -> String {
    let mut files: Vec<String> = std::fs::read_dir(dir.join("raft"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| {
            let size = entry.metadata().map_or(0, |metadata| metadata.len());
            format!("{} {size}", entry.file_name().to_string_lossy())
        })
        .collect();
    files.sort();
    format!("{} bytes free; raft dir: {}", free_bytes(dir), files.join(", "))
}

/// A file in `dir` that takes every byte left on its filesystem.
fn fill_up(dir: &Path) -> PathBuf {
    use std::io::Write as _;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 64 * 1024];
    loop {
        match file.write(&block) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(err) if err.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(err) => panic!("filling {}: {err}", path.display()),
        }
    }
    // Writes smaller than a block may still fit.
    while file.write(&[0u8; 512]).is_ok_and(|written| written > 0) {}
    path
}

/// Bulky creates, one after another, until one is refused: the names and
/// ids of those acknowledged, and the refusal.
async fn create_until_refused(
    control: &mut swarm_proto::v1::control_client::ControlClient<tonic::transport::Channel>,
) -> (BTreeMap<String, String>, tonic::Status) {
    let mut acknowledged = BTreeMap::new();
    let refusal = loop {
        let name = format!("svc-{}", acknowledged.len());
        let request = CreateServiceRequest {
            spec: Some(bulky_service(&name)),
        };
        match control.create_service(request).await {
            Ok(reply) => {
                acknowledged.insert(name, reply.into_inner().service.unwrap().id);
            }
            Err(status) => break status,
        }
        assert!(
            acknowledged.len() < 10_000,
            "a small tmpfs held 10,000 creates of 16 KiB"
        );
    };
    assert!(!acknowledged.is_empty(), "the first create was refused: {refusal:?}");
    (acknowledged, refusal)
}

/// After `refusal`: while it refused an entry for its own size only (the
/// free space was over the reserve, and under it with the entry), small
/// creates, each taking what little room is left, until one is refused
/// for the free space being under the reserve itself, which a reading of
/// the disk (every 100 ms) finds once what was written takes its room.
async fn until_under_the_reserve(
    control: &mut swarm_proto::v1::control_client::ControlClient<tonic::transport::Channel>,
    acknowledged: &mut BTreeMap<String, String>,
    mut refusal: tonic::Status,
) -> tonic::Status {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for n in 0.. {
        assert_eq!(refusal.code(), tonic::Code::ResourceExhausted, "{refusal:?}");
        if !refusal.message().contains("of this entry") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never under the reserve: {refusal:?}"
        );
        let name = format!("small-{n}");
        let request = CreateServiceRequest {
            spec: Some(ServiceSpec::container(&name, "busybox:local")),
        };
        match control.create_service(request).await {
            Ok(reply) => {
                acknowledged.insert(name, reply.into_inner().service.unwrap().id);
            }
            Err(status) => {
                refusal = status;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    refusal
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nearly_full_disk_refuses_writes_serves_reads_and_takes_writes_again_with_room() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node-1");
    // 16 MiB kept free (the default) out of 40, of which RocksDB's open
    // log takes 12 at once (preallocated): about 12 MiB to write.
    let Some(tmpfs) = mount_or_skip(&dir, "40m") else {
        return;
    };
    let binary = swarmd_binary();
    let daemon = Daemon::start(&binary, &dir, "node-1").await;

    let mut control = connect(&daemon.socket).await.unwrap();
    let (mut acknowledged, refusal) = create_until_refused(&mut control).await;
    let refusal = until_under_the_reserve(&mut control, &mut acknowledged, refusal).await;
    assert!(
        refusal.message().contains("writes are refused until there is room"),
        "{}",
        refusal.message()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !daemon.log_text().contains("nearly full") {
        assert!(std::time::Instant::now() < deadline, "{}", daemon.log_text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let info = swarmctl_info(&daemon.socket);
    assert!(info.contains("writes refused (removals taken)"), "{info}");

    // Reads go on, every acknowledged create there.
    let (stored, _) = daemon.service_ids_by_name().await;
    assert_eq!(stored, acknowledged);
    // Removals are taken: they are how an operator makes room.
    let (removed, removed_id) = acknowledged.pop_first().unwrap();
    control
        .remove_service(swarm_proto::v1::RemoveServiceRequest { service_id: removed_id })
        .await
        .unwrap_or_else(|status| panic!("removing {removed} while short of room: {status:?}"));

    // A stop and a start under another name while still short of room
    // (the stop frees the log's preallocated room: taken again here): it
    // serves, with the node as recorded, rather than refusing to start.
    assert!(daemon.signal_and_wait(2, Duration::from_secs(10)).success());
    let filler = dir.join("filler");
    let leave = 8 << 20;
    let free = free_bytes(&dir);
    assert!(free > leave, "{free} bytes free");
    std::fs::write(&filler, vec![0u8; (free - leave) as usize]).unwrap();
    let daemon = Daemon::start_with(&binary, &dir, "renamed", &["--listen-metrics", "127.0.0.1:0"]).await;
    let metrics = metrics_addr(&daemon);
    assert!(
        daemon
            .log_text()
            .contains("cannot record this node's new description now"),
        "{}",
        daemon.log_text()
    );
    let (stored, _) = daemon.service_ids_by_name().await;
    assert_eq!(stored, acknowledged);
    // Under `--disk-reserve` itself: removals refused too, and said so.
    let info = swarmctl_info(&daemon.socket);
    assert!(info.contains("writes and removals refused"), "{info}");
    let refused = |series: &str| {
        let (_, body) = http_get(&metrics, "/metrics").unwrap();
        sample(&body, series).unwrap_or_else(|| panic!("no {series} in\n{body}"))
    };
    assert_eq!(refused("swarm_raft_disk_writes_refused"), 1.0);
    assert_eq!(refused("swarm_raft_disk_removals_refused"), 1.0);
    let mut control = connect(&daemon.socket).await.unwrap();

    // Room again: writes are taken again, without a restart.
    std::fs::remove_file(&filler).unwrap();
    tmpfs.resize("256m");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let request = CreateServiceRequest {
            spec: Some(bulky_service("after")),
        };
        match control.create_service(request).await {
            Ok(_) => break,
            Err(status) => {
                assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
                assert!(
                    std::time::Instant::now() < deadline,
                    "still refused with room: {status:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    assert!(daemon.log_text().contains("room again"), "{}", daemon.log_text());
    // And the node's new name, refused at the start, is recorded now.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let nodes = control
            .list_nodes(ListNodesRequest::default())
            .await
            .unwrap()
            .into_inner()
            .nodes;
        let hostnames: Vec<String> = nodes
            .into_iter()
            .filter_map(|node| node.description.map(|description| description.hostname))
            .collect();
        if hostnames == ["renamed"] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the node is still {hostnames:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let info = swarmctl_info(&daemon.socket);
    assert!(info.contains("kept free") && !info.contains("refused"), "{info}");
    assert_eq!(refused("swarm_raft_disk_writes_refused"), 0.0);
    assert_eq!(refused("swarm_raft_disk_removals_refused"), 0.0);
    assert!(daemon.signal_and_wait(2, Duration::from_secs(10)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_node_with_its_error_and_loses_nothing_acknowledged() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node-1");
    let Some(tmpfs) = mount_or_skip(&dir, "8m") else { return };
    let binary = swarmd_binary();
    // No reserve: the disk fills up under the node.
    let daemon = Daemon::start_with(&binary, &dir, "node-1", &["--disk-reserve", "0"]).await;
    // A watch open as the disk fills: it is told why it ends.
    let channel = swarm_tests::daemon::channel(&daemon.socket).await.unwrap();
    let mut watch = swarm_proto::v1::watch_client::WatchClient::new(channel)
        .watch(swarm_proto::v1::WatchRequest::default())
        .await
        .unwrap()
        .into_inner();
    // Read as the changes come (a watch left unread would hold its end
    // behind them): how it ended.
    let watch_ended = tokio::spawn(async move {
        loop {
            match watch.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(status) => return Some(status),
            }
        }
    });

    let mut control = connect(&daemon.socket).await.unwrap();
    let (acknowledged, refusal) = create_until_refused(&mut control).await;
    assert!(
        matches!(refusal.code(), tonic::Code::Unavailable | tonic::Code::Unknown),
        "{refusal:?}"
    );
    // It says why, not only that the outcome is unknown.
    assert!(refusal.message().contains("No space left on device"), "{refusal:?}");

    // The node stops by itself, saying why, with a non-zero exit.
    let log_path = daemon.log.clone();
    let status = daemon.wait(Duration::from_secs(10));
    let log = std::fs::read_to_string(log_path).unwrap();
    assert!(!status.success(), "exit status {status}; log:\n{log}");
    assert!(log.contains("No space left on device"), "{log}");
    assert!(log.contains("the raft member stopped"), "{log}");
    let ended = watch_ended.await.unwrap().expect("the watch ended with an error");
    assert_eq!(ended.code(), tonic::Code::Unavailable, "{ended:?}");
    assert!(
        ended.message().contains("Raft member stopped on an error") && ended.message().contains("No space left"),
        "{ended:?}"
    );

    // Full to the last byte (what the node's stop freed taken too), it
    // cannot start, and says what to do.
    let filler = fill_up(&dir);
    let (code, stderr) = refused_start_with(
        &binary,
        &dir,
        &dir.join("swarm.sock"),
        "127.0.0.1:0",
        &["--disk-reserve", "0"],
    );
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("No space left on device") && stderr.contains("make room on it and start again"),
        "{stderr}"
    );
    std::fs::remove_file(filler).unwrap();

    // Room again: everything acknowledged is back.
    tmpfs.resize("256m");
    let daemon = Daemon::start(&binary, &dir, "node-1").await;
    let (stored, _) = daemon.service_ids_by_name().await;
    for (name, id) in &acknowledged {
        assert_eq!(stored.get(name), Some(id), "acknowledged {name} lost");
    }
    // The refused create may be there or not (its outcome was unknown);
    // nothing else may.
    assert!(stored.len() <= acknowledged.len() + 1, "{} stored", stored.len());
    eprintln!(
        "{} creates acknowledged before the disk filled, all back ({} stored); the refusal: {:?} {}",
        acknowledged.len(),
        stored.len(),
        refusal.code(),
        refusal.message()
    );
    // And it takes writes again.
    let mut control = connect(&daemon.socket).await.unwrap();
    control
        .create_service(CreateServiceRequest {
            spec: Some(bulky_service("after")),
        })
        .await
        .unwrap();
    assert!(daemon.signal_and_wait(2, Duration::from_secs(10)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_writes_churned_on_a_small_disk_go_on_as_the_log_frees_what_it_drops() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node-1");
    let Some(_tmpfs) = mount_or_skip(&dir, "192m") else {
        return;
    };
    let binary = swarmd_binary();
    let daemon = Daemon::start(&binary, &dir, "node-1").await;
    let mut control = connect(&daemon.socket).await.unwrap();

    // A 400 KB secret replaced 1,000 times: 400 MB through a log on a
    // 192 MiB disk (the state dir peaks near 110 MiB: the log between two
    // snapshots, 64 MiB, most of it). Kept by entry count alone (500
    // spared behind each snapshot), or left in RocksDB's tables until it
    // got round to compacting them, it filled the disk a few hundred in.
    let data = Noise::new(0x9e37_79b9_7f4a_7c15).bytes(400_000);
    let mut previous: Option<String> = None;
    let mut least_free = u64::MAX;
    for round in 0..1000 {
        let spec = SecretSpec {
            annotations: Some(Annotations {
                name: format!("secret-{round}"),
                ..Default::default()
            }),
            data: data.clone(),
        };
        let created = control
            .create_secret(CreateSecretRequest { spec: Some(spec) })
            .await
            .unwrap_or_else(|status| panic!("create {round} refused, {} bytes free: {status:?}", free_bytes(&dir)));
        if let Some(secret_id) = previous.replace(created.into_inner().secret.unwrap().id) {
            control
                .remove_secret(RemoveSecretRequest { secret_id })
                .await
                .unwrap_or_else(|status| panic!("remove {round} refused: {status:?}"));
        }
        if round % 50 == 0 {
            least_free = least_free.min(free_bytes(&dir));
        }
    }
    eprintln!("least free on the 192 MiB disk: {} MiB", least_free >> 20);

    // What is left is whole, before and after a restart.
    let names = |secrets: Vec<swarm_proto::v1::Secret>| -> Vec<String> {
        secrets
            .into_iter()
            .map(|secret| secret.spec.unwrap().annotations.unwrap().name)
            .collect()
    };
    let listed = control.list_secrets(ListSecretsRequest::default()).await.unwrap();
    assert_eq!(names(listed.into_inner().secrets), ["secret-999"]);
    assert!(daemon.signal_and_wait(2, Duration::from_secs(10)).success());
    let daemon = Daemon::start(&binary, &dir, "node-1").await;
    let mut control = connect(&daemon.socket).await.unwrap();
    let listed = control.list_secrets(ListSecretsRequest::default()).await.unwrap();
    assert_eq!(names(listed.into_inner().secrets), ["secret-999"]);
    assert!(daemon.signal_and_wait(2, Duration::from_secs(10)).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_fills_the_disk_is_snapshotted_away_and_writes_come_back_by_themselves() {
    churn_a_secret_against_the_reserve(0, "140").await;
}

/// As above, beside a state larger than the entries a snapshot keeps for
/// slow followers (8 MiB): short of room, a snapshot keeps no more than
/// those (it used to keep as much log as it weighed, and so could free
/// less than the table it added, and writes stayed refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_fills_the_disk_beside_a_large_state_is_snapshotted_away() {
    churn_a_secret_against_the_reserve(40, "100").await;
}

/// Keeps `kept` secrets of 400 KB, then replaces one more 300 times (120
/// MB through the log) on a 192 MiB disk with `--disk-reserve reserve`
/// MiB. Each call may be refused for want of room for a moment, never for
/// long: under the reserve, the member snapshots the log away. (It used to
/// wait for a snapshot that the reserve forbade, and refused writes for
/// good.)
async fn churn_a_secret_against_the_reserve(kept: usize, reserve: &str) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node-1");
    // A reserve that leaves less than the 64 MiB of log that make a
    // snapshot due by themselves, on a disk with room beside it.
    let Some(_tmpfs) = mount_or_skip(&dir, "192m") else {
        return;
    };
    let binary = swarmd_binary();
    let daemon = Daemon::start_with(&binary, &dir, "node-1", &["--disk-reserve", reserve]).await;
    let control = connect(&daemon.socket).await.unwrap();
    let data = Noise::new(0x9e37_79b9_7f4a_7c15).bytes(400_000);
    let mut refusals = 0;
    let create = |name: String| {
        let spec = SecretSpec {
            annotations: Some(Annotations {
                name,
                ..Default::default()
            }),
            data: data.clone(),
        };
        CreateSecretRequest { spec: Some(spec) }
    };
    for kept in 0..kept {
        let create = create(format!("kept-{kept}"));
        until_room(&daemon, &mut refusals, || {
            let mut control = control.clone();
            let create = create.clone();
            async move { control.create_secret(create).await }
        })
        .await;
    }
    let mut previous: Option<String> = None;
    for round in 0..300 {
        let create = create(format!("secret-{round}"));
        let created = until_room(&daemon, &mut refusals, || {
            let mut control = control.clone();
            let create = create.clone();
            async move { control.create_secret(create).await }
        })
        .await;
        if let Some(secret_id) = previous.replace(created.secret.unwrap().id) {
            until_room(&daemon, &mut refusals, || {
                let mut control = control.clone();
                let secret_id = secret_id.clone();
                async move { control.remove_secret(RemoveSecretRequest { secret_id }).await }
            })
            .await;
        }
    }
    assert!(refusals > 0, "the reserve was never reached: the test proves nothing");
    eprintln!("{refusals} refusals on the way");
    let log = daemon.log_text();
    assert!(log.contains("snapshot taken"), "{log}");
    let mut control = control.clone();
    let listed = control.list_secrets(ListSecretsRequest::default()).await.unwrap();
    assert_eq!(listed.into_inner().secrets.len(), kept + 1);
    assert!(daemon.signal_and_wait(2, Duration::from_secs(10)).success());
}

/// What `call` answers, called again while it is refused for want of room
/// (counted in `refusals`), for up to 10 s.
async fn until_room<T, F, Fut>(daemon: &Daemon, refusals: &mut usize, mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match call().await {
            Ok(reply) => return reply.into_inner(),
            Err(status) if status.code() == tonic::Code::ResourceExhausted => {
                *refusals += 1;
                assert!(
                    std::time::Instant::now() < deadline,
                    "refused for 10 s: {status:?}\n{}\n{}",
                    disk_use(daemon.socket.parent().expect("the state dir")),
                    daemon.log_text()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(status) => panic!("{status:?}"),
        }
    }
}
