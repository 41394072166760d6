//! The walkthrough of the daemon issue, line by line, with the real
//! `swarmctl` against a real `swarmd`: outputs and exit codes checked.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use swarm_tests::daemon::{Daemon, swarmd_binary, workspace_binary};

/// Runs swarmctl with `args` against `socket`; returns (exit code, stdout, stderr).
fn swarmctl(socket: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(workspace_binary("swarmctl"))
        .args(args)
        .env("SWARM_SOCKET", socket)
        .output()
        .expect("run swarmctl");
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("utf-8 output");
    (
        output.status.code().unwrap_or(-1),
        text(output.stdout),
        text(output.stderr),
    )
}

/// Runs swarmctl and requires success; returns stdout.
fn ok(socket: &Path, args: &[&str]) -> String {
    let (code, stdout, stderr) = swarmctl(socket, args);
    assert_eq!(code, 0, "swarmctl {args:?} failed: {stderr}");
    stdout
}

/// Runs swarmctl and requires a one-line error containing `mention`.
fn fails(socket: &Path, args: &[&str], mention: &str) {
    let (code, _, stderr) = swarmctl(socket, args);
    assert_eq!(code, 1, "swarmctl {args:?} should fail: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("Error: ") && stderr.contains(mention), "{stderr}");
}

/// The data lines of a table (its header dropped), split into columns.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// Collects the lines `swarmctl watch` prints, as they come.
fn watched_lines(stdout: std::process::ChildStdout) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

/// Writes probe configs until the watch reports one: from then on it sees
/// every change.
fn wait_until_watching(socket: &Path, watched: &Mutex<Vec<String>>, scratch: &Path) {
    let file = scratch.join("probe");
    std::fs::write(&file, "probe").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    for attempt in 0.. {
        let name = format!("probe-{attempt}");
        ok(socket, &["config", "create", &name, "-f", &file.to_string_lossy()]);
        let until = Instant::now() + Duration::from_millis(200);
        while Instant::now() < until {
            if watched.lock().unwrap().iter().any(|line| line.ends_with(&name)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(Instant::now() < deadline, "swarmctl watch never reported a change");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_walkthrough_of_a_single_node_manager() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node-1");
    let daemon = Daemon::start(&swarmd_binary(), &dir, "node-1").await;
    let socket = daemon.socket.clone();
    let mut watch = Command::new(workspace_binary("swarmctl"))
        .args(["watch"])
        .env("SWARM_SOCKET", &socket)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start swarmctl watch");
    let watched = watched_lines(watch.stdout.take().expect("piped"));
    wait_until_watching(&socket, &watched, root.path());

    let cluster = ok(&socket, &["cluster", "inspect", "default"]);
    assert!(cluster.contains("Name:") && cluster.contains("default"), "{cluster}");

    let id = ok(
        &socket,
        &[
            "service",
            "create",
            "--name",
            "web",
            "--image",
            "busybox:local",
            "--replicas",
            "3",
            "--command",
            "sleep",
            "--args",
            "3600",
        ],
    );
    let id = id.trim();
    assert_eq!(id.len(), 25, "prints the new service's id: {id:?}");

    let services = rows(&ok(&socket, &["service", "ls"]));
    assert_eq!(
        services,
        vec![vec![id.to_string(), "web".into(), "busybox:local".into(), "0/3".into()]]
    );

    for reference in ["web", id, &id[..6]] {
        let inspect = ok(&socket, &["service", "inspect", reference]);
        assert!(
            inspect.contains(id) && inspect.contains("sleep") && inspect.contains("3600"),
            "{inspect}"
        );
    }

    ok(
        &socket,
        &["service", "update", "web", "--replicas", "5", "--env", "A=1"],
    );
    let inspect = ok(&socket, &["service", "inspect", "web"]);
    assert!(
        inspect.contains("replicated (5 tasks)") && inspect.contains("A=1"),
        "{inspect}"
    );

    let nodes = rows(&ok(&socket, &["node", "ls"]));
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0][1..], ["node-1", "manager", "ready", "active", "leader"]);

    ok(
        &socket,
        &[
            "node",
            "update",
            "node-1",
            "--label-add",
            "zone=a",
            "--availability",
            "drain",
        ],
    );
    let node = ok(&socket, &["node", "inspect", "node-1"]);
    assert!(node.contains("zone=a") && node.contains("drain"), "{node}");
    ok(&socket, &["cluster", "update", "default", "--task-history-limit", "7"]);
    assert!(ok(&socket, &["cluster", "inspect", "default"]).contains("7"));

    let pass = root.path().join("pass.txt");
    std::fs::write(&pass, "hunter2").unwrap();
    ok(&socket, &["secret", "create", "db-pass", "-f", &pass.to_string_lossy()]);
    ok(
        &socket,
        &["config", "create", "app.conf", "-f", &pass.to_string_lossy()],
    );
    let secrets = ok(&socket, &["secret", "ls"]);
    assert!(secrets.contains("db-pass") && !secrets.contains("hunter2"), "{secrets}");
    let configs = ok(&socket, &["config", "ls"]);
    assert!(configs.contains("app.conf"), "{configs}");

    // --format json: the objects themselves, for scripts.
    let json = |args: &[&str]| -> serde_json::Value {
        let stdout = ok(&socket, args);
        serde_json::from_str(&stdout).unwrap_or_else(|err| panic!("{args:?} printed no JSON ({err}):\n{stdout}"))
    };
    let services = json(&["service", "ls", "--format", "json"]);
    assert_eq!(services.as_array().map(Vec::len), Some(1), "{services}");
    assert_eq!(services[0]["id"], id);
    assert_eq!(services[0]["spec"]["annotations"]["name"], "web");
    assert_eq!(services[0]["spec"]["replicated"]["replicas"], 5);
    assert_eq!(services[0]["spec"]["task"]["container"]["env"][0], "A=1");
    let node = json(&["--format", "json", "node", "inspect", "node-1"]);
    assert_eq!(node["role"], "NODE_ROLE_MANAGER");
    assert_eq!(node["spec"]["annotations"]["labels"]["zone"], "a");
    let secret = json(&["secret", "inspect", "db-pass", "--format", "json"]);
    assert_eq!(secret["spec"]["annotations"]["name"], "db-pass");
    assert!(!secret.to_string().contains("hunter2"), "{secret}");
    assert!(secret["spec"]["data"].as_str().is_none_or(str::is_empty), "{secret}");
    assert_eq!(ok(&socket, &["service", "ls", "-q", "--format", "json"]).trim(), id);
    let (code, _, stderr) = swarmctl(&socket, &["service", "ls", "--format", "yaml"]);
    assert!(code == 2 && stderr.contains("invalid value 'yaml'"), "{code}: {stderr}");

    fails(
        &socket,
        &["service", "create", "--name", "web", "--image", "busybox"],
        "already in use",
    );
    fails(
        &socket,
        &["service", "create", "--name", "bad name", "--image", "busybox"],
        "spec.annotations.name",
    );
    fails(
        &socket,
        &[
            "service", "create", "--name", "x", "--image", "busybox", "--env", "NOEQUALS",
        ],
        "env",
    );
    fails(&socket, &["service", "inspect", "nope"], "service \"nope\" not found");
    fails(
        &socket,
        &[
            "service",
            "create",
            "--name",
            "c",
            "--image",
            "busybox",
            "--constraint",
            "node.labels.zone = a",
        ],
        "spec.task.placement.constraints",
    );
    ok(
        &socket,
        &[
            "service",
            "create",
            "--name",
            "everywhere",
            "--image",
            "busybox",
            "--mode",
            "global",
        ],
    );
    fails(
        &socket,
        &["service", "update", "everywhere", "--replicas", "2"],
        "replicated services only",
    );
    ok(&socket, &["service", "rm", "everywhere"]);
    let (code, _, stderr) = swarmctl(
        &socket,
        &[
            "service",
            "create",
            "--name",
            "g",
            "--image",
            "busybox",
            "--mode",
            "global",
            "--replicas",
            "2",
        ],
    );
    assert!(code == 2 && stderr.contains("cannot be used with"), "{code}: {stderr}");
    let pass_path = pass.to_string_lossy();
    fails(
        &socket,
        &["secret", "create", "db-pass", "-f", &pass_path],
        "already in use",
    );
    fails(
        &socket,
        &["config", "create", "app.conf", "-f", &pass_path],
        "already in use",
    );
    let big = root.path().join("big");
    std::fs::write(&big, vec![b'x'; 500 * 1024 + 1]).unwrap();
    fails(
        &socket,
        &["secret", "create", "big", "-f", &big.to_string_lossy()],
        "at most 512000",
    );
    fails(
        &socket,
        &["cluster", "update", "default", "--task-history-limit=-1"],
        "task_history_retention_limit",
    );

    // Secrets and configs given to a service, by name; one in use stays.
    ok(
        &socket,
        &[
            "service",
            "create",
            "--name",
            "app",
            "--image",
            "busybox",
            "--secret",
            "db-pass",
            "--config",
            "source=app.conf,target=/etc/app.conf",
        ],
    );
    let inspect = ok(&socket, &["service", "inspect", "app"]);
    assert!(
        inspect.contains("db-pass -> db-pass") && inspect.contains("app.conf -> /etc/app.conf"),
        "{inspect}"
    );
    fails(&socket, &["secret", "rm", "db-pass"], "in use by service(s) app");
    fails(
        &socket,
        &[
            "service", "create", "--name", "x", "--image", "busybox", "--secret", "nope",
        ],
        "secret \"nope\" not found",
    );
    ok(&socket, &["service", "rm", "app"]);

    assert_eq!(ok(&socket, &["service", "rm", "web"]).trim(), id);
    assert_eq!(ok(&socket, &["service", "ls", "-q"]), "");

    let status = daemon.signal_and_wait(2, Duration::from_secs(10));
    assert!(status.success());
    let ended = watch.wait_with_output().expect("swarmctl watch ends with the daemon");
    let lines = watched.lock().unwrap().clone();
    let services: Vec<(&str, &str)> = lines
        .iter()
        .map(|line| line.split('\t').collect::<Vec<_>>())
        .filter(|fields| fields[2] == "service")
        .map(|fields| (fields[1], fields[4]))
        .collect();
    assert_eq!(
        services,
        [
            ("create", "web"),
            ("update", "web"),
            ("create", "everywhere"),
            ("remove", "everywhere"),
            ("create", "app"),
            ("remove", "app"),
            ("remove", "web")
        ],
        "{lines:?}"
    );
    assert!(String::from_utf8_lossy(&ended.stderr).contains("stopping"));
    let (code, _, stderr) = swarmctl(&socket, &["service", "ls"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("cannot reach swarmd"), "{stderr}");

    // Started again with the same -d: everything acknowledged is back.
    let daemon = Daemon::start(&swarmd_binary(), &dir, "node-1").await;
    assert_eq!(ok(&socket, &["service", "ls", "-q"]), "", "web stays removed");
    let listed = |kind: &str, name: &str| rows(&ok(&socket, &[kind, "ls"])).iter().any(|row| row[1] == name);
    assert!(listed("secret", "db-pass") && listed("config", "app.conf"));
    let node = json(&["--format", "json", "node", "inspect", "node-1"]);
    assert_eq!(node["spec"]["annotations"]["labels"]["zone"], "a");
    let cluster = json(&["cluster", "inspect", "default", "--format", "json"]);
    assert_eq!(
        cluster["spec"]["orchestration"]["taskHistoryRetentionLimit"], 7,
        "{cluster}"
    );
    assert!(daemon.signal_and_wait(2, Duration::from_secs(10)).success());
}
