//! A full disk: `swarmd` refuses what it cannot write, stops with an error
//! that says so and a non-zero exit, and once there is room again comes
//! back with every create it acknowledged.
//!
//! The state dir is a small tmpfs of its own, so this test needs to mount
//! one: as root (this project's machines, CI) it must; as another user it
//! says loudly that it did not run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use swarm_proto::v1::{CreateServiceRequest, ServiceSpec};
use swarm_tests::daemon::{Daemon, connect, swarmd_binary};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_node_with_its_error_and_loses_nothing_acknowledged() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node-1");
    let tmpfs = match Tmpfs::mount(&dir, "8m") {
        Ok(tmpfs) => tmpfs,
        Err(err) if !is_root() => {
            eprintln!("\n*** SKIPPED: this test mounts a tmpfs and could not ({err}); run it as root ***\n");
            return;
        }
        Err(err) => panic!("root could not mount a tmpfs: {err}"),
    };
    let binary = swarmd_binary();
    let daemon = Daemon::start(&binary, &dir, "node-1").await;

    // Creates, one after another, until one is refused.
    let mut control = connect(&daemon.socket).await.unwrap();
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
        assert!(acknowledged.len() < 10_000, "8 MiB held 10,000 creates of 16 KiB");
    };
    assert!(!acknowledged.is_empty(), "the first create was refused: {refusal:?}");
    assert!(
        matches!(refusal.code(), tonic::Code::Unavailable | tonic::Code::Unknown),
        "{refusal:?}"
    );

    // The node stops by itself, saying why, with a non-zero exit.
    let log_path = daemon.log.clone();
    let status = daemon.wait(Duration::from_secs(10));
    let log = std::fs::read_to_string(log_path).unwrap();
    assert!(!status.success(), "exit status {status}; log:\n{log}");
    assert!(log.contains("No space left on device"), "{log}");
    assert!(log.contains("the raft member stopped"), "{log}");

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
