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

/// Where a watch the manager's stop ended says to go on, from its stderr.
fn stopped_at(stderr: &str) -> u64 {
    stderr
        .trim_end()
        .strip_prefix("Error: the manager is stopping (to go on: --resume-after ")
        .and_then(|rest| rest.strip_suffix(')'))
        .and_then(|index| index.parse().ok())
        .unwrap_or_else(|| panic!("{stderr}"))
}

/// The data lines of a table (its header dropped), split into columns.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// Runs `inspect` of one object in JSON: an array of that one, as docker
/// prints it; returns the object.
fn inspected(socket: &Path, args: &[&str]) -> serde_json::Value {
    let mut listed = json(socket, args);
    let objects = listed.as_array_mut().expect("inspect prints an array");
    assert_eq!(objects.len(), 1, "{args:?}");
    objects.remove(0)
}

/// `swarmctl watch` with `args`, on `socket`, its output piped.
fn start_watch(socket: &Path, args: &[&str]) -> std::process::Child {
    Command::new(workspace_binary("swarmctl"))
        .arg("watch")
        .args(args)
        .env("SWARM_SOCKET", socket)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start swarmctl watch")
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
    probe_until_watched(socket, scratch, false, |name| {
        watched.lock().unwrap().iter().any(|line| line.ends_with(name))
    });
}

/// Creates probe configs (and removes each again with `remove`) until
/// `reported(name)` says the watch printed that probe.
fn probe_until_watched(socket: &Path, scratch: &Path, remove: bool, reported: impl Fn(&str) -> bool) {
    let file = scratch.join("probe");
    std::fs::write(&file, "probe").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    for attempt in 0.. {
        let name = format!("probe-{attempt}");
        ok(socket, &["config", "create", &name, "-f", &file.to_string_lossy()]);
        if remove {
            ok(socket, &["config", "rm", &name]);
        }
        let until = Instant::now() + Duration::from_millis(200);
        while Instant::now() < until {
            if reported(&name) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(Instant::now() < deadline, "swarmctl watch never reported a change");
    }
}

/// Runs swarmctl and parses what it printed as JSON.
fn json(socket: &Path, args: &[&str]) -> serde_json::Value {
    let stdout = ok(socket, args);
    serde_json::from_str(&stdout).unwrap_or_else(|err| panic!("{args:?} printed no JSON ({err}):\n{stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_walkthrough_of_a_single_node_manager() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node-1");
    let daemon = Daemon::start(&swarmd_binary(), &dir, "node-1").await;
    let socket = daemon.socket.clone();
    let mut watch = start_watch(&socket, &[]);
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
        vec![vec![
            id.to_string(),
            "web".into(),
            "replicated".into(),
            "0/3".into(),
            "busybox:local".into()
        ]]
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
    // Marked `*`: the node serving the socket.
    assert_eq!(nodes[0][1..], ["*", "node-1", "manager", "ready", "active", "leader"]);

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
    let retention = |socket: &Path| {
        let inspected = ok(socket, &["cluster", "inspect", "default"]);
        let line = inspected
            .lines()
            .find(|line| line.starts_with("Task history retention"));
        line.map(|line| line.split_whitespace().last().unwrap_or_default().to_string())
    };
    // Negative keeps every finished task, as in SwarmKit.
    ok(&socket, &["cluster", "update", "default", "--task-history-limit=-1"]);
    assert_eq!(retention(&socket).as_deref(), Some("-1"));
    ok(&socket, &["cluster", "update", "default", "--task-history-limit", "7"]);
    assert_eq!(retention(&socket).as_deref(), Some("7"));

    let pass = root.path().join("pass.txt");
    std::fs::write(&pass, "hunter2").unwrap();
    ok(&socket, &["secret", "create", "db-pass", "-f", &pass.to_string_lossy()]);
    ok(
        &socket,
        &["config", "create", "app.conf", "-f", &pass.to_string_lossy()],
    );
    let secrets = ok(&socket, &["secret", "ls"]);
    assert!(secrets.contains("db-pass") && !secrets.contains("hunter2"), "{secrets}");
    assert!(
        secrets.starts_with("ID") && secrets.contains("CREATED") && secrets.contains(" ago"),
        "{secrets}"
    );
    let secret = ok(&socket, &["secret", "inspect", "db-pass"]);
    assert!(
        secret.contains("Created:") && secret.contains("Z (") && secret.contains(" ago)"),
        "{secret}"
    );
    let configs = ok(&socket, &["config", "ls"]);
    assert!(configs.contains("app.conf"), "{configs}");

    // --format json: the objects themselves, for scripts.
    let services = json(&socket, &["service", "ls", "--format", "json"]);
    assert_eq!(services.as_array().map(Vec::len), Some(1), "{services}");
    assert_eq!(services[0]["id"], id);
    assert_eq!(services[0]["spec"]["annotations"]["name"], "web");
    assert_eq!(services[0]["spec"]["replicated"]["replicas"], 5);
    assert_eq!(services[0]["spec"]["task"]["container"]["env"][0], "A=1");
    let node = inspected(&socket, &["--format", "json", "node", "inspect", "node-1"]);
    assert_eq!(node["role"], "NODE_ROLE_MANAGER");
    assert_eq!(node["spec"]["annotations"]["labels"]["zone"], "a");
    let secret = inspected(&socket, &["secret", "inspect", "db-pass", "--format", "json"]);
    assert_eq!(secret["spec"]["annotations"]["name"], "db-pass");
    assert!(!secret.to_string().contains("hunter2"), "{secret}");
    assert!(secret["spec"].get("data").is_none(), "data is never shown: {secret}");
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
    // KEY alone takes its value from swarmctl's environment, as docker's
    // -e does; unset there, it is refused before anything is sent.
    let (code, _, stderr) = swarmctl(
        &socket,
        &[
            "service", "create", "--name", "x", "--image", "busybox", "--env", "NOEQUALS",
        ],
    );
    assert!(
        code == 2 && stderr.contains("\"NOEQUALS\" has no =VALUE and is not set in this environment"),
        "{code}: {stderr}"
    );
    let created = Command::new(workspace_binary("swarmctl"))
        .args([
            "service",
            "create",
            "--name",
            "x",
            "--image",
            "busybox",
            "-e",
            "FROM_CLIENT",
        ])
        .env("SWARM_SOCKET", &socket)
        .env("FROM_CLIENT", "4 2")
        .output()
        .expect("run swarmctl");
    assert!(created.status.success(), "{created:?}");
    let x = inspected(&socket, &["service", "inspect", "x", "--format", "json"]);
    assert_eq!(
        x["spec"]["task"]["container"]["env"],
        serde_json::json!(["FROM_CLIENT=4 2"])
    );
    ok(&socket, &["service", "rm", "x"]);
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
        "--replicas applies to replicated services and jobs only",
    );
    ok(&socket, &["service", "rm", "everywhere"]);
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
    std::fs::write(&big, vec![b'x'; 500 * 1024]).unwrap();
    fails(
        &socket,
        &["secret", "create", "big", "-f", &big.to_string_lossy()],
        "under 512000 (500 KiB)",
    );
    fails(
        &socket,
        &["cluster", "update", "default", "--snapshot-interval", "0"],
        "snapshot_interval",
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
            "source=app.conf,target=/etc/app.conf,uid=101,mode=0640",
        ],
    );
    let inspect = ok(&socket, &["service", "inspect", "app"]);
    assert!(
        inspect.contains("db-pass -> db-pass")
            && !inspect.contains("db-pass -> db-pass (")
            && inspect.contains("app.conf -> /etc/app.conf (uid 101, gid 0, mode 0640)"),
        "{inspect}"
    );
    for (bad, mention) in [
        ("source=db-pass,mode=0999", "mode \"0999\" is not an octal file mode"),
        ("source=db-pass,mode=01777", "(0 to 0777)"),
        ("source=db-pass,uid=-1", "uid \"-1\" is not a number"),
    ] {
        let args = [
            "service", "create", "--name", "y", "--image", "busybox", "--secret", bad,
        ];
        let (code, _, stderr) = swarmctl(&socket, &args);
        assert!(code == 2 && stderr.contains(mention), "{bad}: {code}: {stderr}");
    }
    fails(&socket, &["secret", "rm", "db-pass"], "secret \"db-pass\" (");
    fails(&socket, &["secret", "rm", "db-pass"], "in use by service app");
    fails(
        &socket,
        &[
            "service", "create", "--name", "x", "--image", "busybox", "--secret", "nope",
        ],
        "secret \"nope\" not found",
    );
    // A secret leaves a service as it came: by name, ID or ID prefix.
    let secret_id = ok(&socket, &["secret", "ls", "-q", "-f", "name=db-pass"]);
    fails(
        &socket,
        &["service", "update", "app", "--secret-rm", "zz"],
        "--secret-rm: secret \"zz\" not found among the service's secrets",
    );
    ok(
        &socket,
        &["service", "update", "app", "--secret-rm", &secret_id.trim()[..6]],
    );
    assert!(!ok(&socket, &["service", "inspect", "app"]).contains("db-pass ->"));
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
            ("create", "x"),
            ("remove", "x"),
            ("create", "everywhere"),
            ("remove", "everywhere"),
            ("create", "app"),
            ("update", "app"),
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
    let node = inspected(&socket, &["--format", "json", "node", "inspect", "node-1"]);
    assert_eq!(node["spec"]["annotations"]["labels"]["zone"], "a");
    let cluster = inspected(&socket, &["cluster", "inspect", "default", "--format", "json"]);
    assert_eq!(
        cluster["spec"]["orchestration"]["taskHistoryRetentionLimit"], 7,
        "{cluster}"
    );
    assert!(daemon.signal_and_wait(2, Duration::from_secs(10)).success());
}

/// `service create`, `update` and `rollback` with the flags of `docker
/// service`: each flag lands in its field of the stored spec (read back as
/// JSON), an update changes only what its flags name, a rollback restores
/// the spec before, and bad values are refused by the client (exit 2,
/// before anything is sent) or by the manager (exit 1, the field named),
/// with the service left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_specs_from_docker_style_flags() {
    let root = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&swarmd_binary(), &root.path().join("node-1"), "node-1").await;
    let socket = daemon.socket.clone();
    let pass = root.path().join("pass.txt");
    std::fs::write(&pass, "hunter2").unwrap();
    ok(&socket, &["secret", "create", "db-pass", "-f", pass.to_str().unwrap()]);
    let env_file = root.path().join("api.env");
    std::fs::write(&env_file, "# from a file, as docker reads one\nFROM_FILE=1\n\nA=0\n").unwrap();

    // docker's own spellings too: --entrypoint, --env-file, -d and -q.
    #[rustfmt::skip]
    let create = [
        "service", "create", "-d", "-q", "--name", "api", "--image", "busybox:local",
        "--mode", "replicated", "--replicas", "6", "--replicas-max-per-node", "2",
        "--entrypoint", "sh -c", "--env-file", env_file.to_str().unwrap(),
        "--secret", "source=db-pass,target=/etc/db.pass",
        "-e", "A=1", "--label", "tier=back", "--container-label", "team=core",
        "--constraint", "node.role==manager", "--placement-pref", "spread=node.labels.zone",
        "--mount", "type=bind,source=/srv,target=/data,readonly", "--mount", "type=tmpfs,target=/scratch",
        "-p", "8080:80", "-p", "published=5353,target=53,protocol=udp,mode=host",
        "-w", "/app", "-u", "1000:1000", "--hostname", "api-host", "--tty", "--read-only",
        "--stop-grace-period", "1m30s", "--stop-signal", "SIGINT",
        "--limit-cpu", "0.5", "--limit-memory", "512m", "--reserve-cpu", "0.25", "--reserve-memory", "256m",
        "--restart-condition", "on-failure", "--restart-delay", "1.5s", "--restart-max-attempts", "3",
        "--restart-window", "2m",
        "--health-cmd", "wget -q localhost", "--health-interval", "10s", "--health-timeout", "2s",
        "--health-retries", "4", "--health-start-period", "1m",
        "--update-parallelism", "2", "--update-delay", "10s", "--update-failure-action", "rollback",
        "--update-monitor", "30s", "--update-max-failure-ratio", "0.25", "--update-order", "start-first",
        "--rollback-parallelism", "0", "--rollback-order", "stop-first",
    ];
    let id = ok(&socket, &create).trim().to_string();
    let service = inspected(&socket, &["service", "inspect", "api", "--format", "json"]);
    assert_eq!(service["id"], id.as_str());
    let spec = &service["spec"];
    let (task, container) = (&spec["task"], &spec["task"]["container"]);
    for (value, expected) in [
        (&spec["replicated"]["replicas"], serde_json::json!(6)),
        (&task["placement"]["maxReplicas"], serde_json::json!(2)),
        (&spec["annotations"]["labels"]["tier"], serde_json::json!("back")),
        // The file's first, then --env, which gives A again: once, as
        // docker keeps it, the later value at the later place.
        (&container["env"], serde_json::json!(["FROM_FILE=1", "A=1"])),
        (&container["command"], serde_json::json!(["sh", "-c"])),
        (&container["secrets"][0]["target"], serde_json::json!("/etc/db.pass")),
        (&container["labels"]["team"], serde_json::json!("core")),
        (&container["dir"], serde_json::json!("/app")),
        (&container["user"], serde_json::json!("1000:1000")),
        (&container["hostname"], serde_json::json!("api-host")),
        (&container["tty"], serde_json::json!(true)),
        (&container["readOnly"], serde_json::json!(true)),
        (&container["stopGracePeriod"], serde_json::json!("90s")),
        (&container["stopSignal"], serde_json::json!("SIGINT")),
        (&container["mounts"][0]["type"], serde_json::json!("TYPE_BIND")),
        (&container["mounts"][0]["source"], serde_json::json!("/srv")),
        (&container["mounts"][0]["readOnly"], serde_json::json!(true)),
        (&container["mounts"][1]["type"], serde_json::json!("TYPE_TMPFS")),
        (&container["mounts"][1]["target"], serde_json::json!("/scratch")),
        (
            &container["healthcheck"]["test"],
            serde_json::json!(["CMD-SHELL", "wget -q localhost"]),
        ),
        (&container["healthcheck"]["interval"], serde_json::json!("10s")),
        (&container["healthcheck"]["timeout"], serde_json::json!("2s")),
        (&container["healthcheck"]["retries"], serde_json::json!(4)),
        (&container["healthcheck"]["startPeriod"], serde_json::json!("60s")),
        (
            &task["placement"]["constraints"],
            serde_json::json!(["node.role==manager"]),
        ),
        (
            &task["placement"]["preferences"][0]["spread"]["spreadDescriptor"],
            serde_json::json!("node.labels.zone"),
        ),
        (&task["resources"]["limits"]["nanoCpus"], serde_json::json!(500_000_000)),
        (
            &task["resources"]["limits"]["memoryBytes"],
            serde_json::json!(512 << 20),
        ),
        (
            &task["resources"]["reservations"]["nanoCpus"],
            serde_json::json!(250_000_000),
        ),
        (
            &task["resources"]["reservations"]["memoryBytes"],
            serde_json::json!(256 << 20),
        ),
        (&task["restart"]["condition"], serde_json::json!("CONDITION_ON_FAILURE")),
        (&task["restart"]["delay"], serde_json::json!("1.500s")),
        (&task["restart"]["maxAttempts"], serde_json::json!(3)),
        (&task["restart"]["window"], serde_json::json!("120s")),
        (&spec["endpoint"]["ports"][0]["publishedPort"], serde_json::json!(8080)),
        (&spec["endpoint"]["ports"][0]["targetPort"], serde_json::json!(80)),
        (
            &spec["endpoint"]["ports"][1]["protocol"],
            serde_json::json!("PROTOCOL_UDP"),
        ),
        (
            &spec["endpoint"]["ports"][1]["publishMode"],
            serde_json::json!("PUBLISH_MODE_HOST"),
        ),
        (&spec["update"]["parallelism"], serde_json::json!(2)),
        (&spec["update"]["delay"], serde_json::json!("10s")),
        (
            &spec["update"]["failureAction"],
            serde_json::json!("FAILURE_ACTION_ROLLBACK"),
        ),
        (&spec["update"]["monitor"], serde_json::json!("30s")),
        (&spec["update"]["maxFailureRatio"], serde_json::json!(0.25)),
        (&spec["update"]["order"], serde_json::json!("ORDER_START_FIRST")),
        (&spec["rollback"]["parallelism"], serde_json::json!(0)),
        (&spec["rollback"]["order"], serde_json::json!("ORDER_STOP_FIRST")),
    ] {
        assert_eq!(value, &expected, "in {service:#}");
    }
    let listed = rows(&ok(&socket, &["service", "ls"]));
    assert_eq!(listed[0][5..], ["*:8080->80/tcp,", "host:5353->53/udp"], "{listed:?}");
    let inspect = ok(&socket, &["service", "inspect", "api"]);
    for line in [
        "replicated (6 tasks)",
        // A list one item a line, under the first.
        "Mounts:                bind /srv -> /data (read-only)\n                       tmpfs /scratch\n",
        "Env:                   FROM_FILE=1\n                       A=1\n",
        "8080:80/tcp (ingress), 5353:53/udp (host)",
        "0.5 CPUs, 512 MiB memory",
        "on-failure, delay 1.5s, at most 3 attempts, window 2m0s",
        "wget -q localhost, every 10s, timeout 2s, start period 1m0s, 4 retries",
        "2 at a time, delay 10s, on failure rollback, monitor 30s, max failure ratio 0.25, start-first",
        "all at once, on failure pause, stop-first",
    ] {
        assert!(inspect.contains(line), "{line:?} not in:\n{inspect}");
    }

    // An update changes what its flags name, and nothing else; a removal
    // named twice, in one spelling or two, removes once; an addition named
    // twice adds once.
    #[rustfmt::skip]
    let update = [
        "service", "update", "api", "--replicas", "8", "--env-rm", "A", "--env-add", "B=2",
        "--env-rm", "A", "--label-add", "tier=front", "--container-label-rm", "team",
        "--container-label-rm", "team",
        "--constraint-rm", "node.role==manager", "--constraint-add", "node.labels.zone==a",
        "--constraint-add", "node.labels.zone==a",
        "--mount-rm", "/scratch", "--mount-rm", "/scratch/", "--publish-rm", "53/udp", "--publish-add", "9090:90",
        "--limit-memory", "1g", "--secret-rm", "db-pass", "--secret-add", "db-pass", "--force",
    ];
    ok(&socket, &update);
    let updated = inspected(&socket, &["service", "inspect", "api", "--format", "json"]);
    let (spec, container) = (&updated["spec"], &updated["spec"]["task"]["container"]);
    assert_eq!(spec["replicated"]["replicas"], 8);
    assert_eq!(spec["annotations"]["labels"]["tier"], "front");
    assert_eq!(container["env"], serde_json::json!(["FROM_FILE=1", "B=2"]));
    assert_eq!(container["labels"], serde_json::json!({}));
    assert_eq!(container["mounts"].as_array().map(Vec::len), Some(1));
    assert_eq!(container["secrets"][0]["secretName"], "db-pass");
    assert_eq!(container["secrets"][0]["target"], "db-pass");
    assert_eq!(
        container["secrets"][0]["mode"], 0o444,
        "written into the spec, as docker does"
    );
    assert_eq!(
        spec["task"]["placement"]["constraints"],
        serde_json::json!(["node.labels.zone==a"])
    );
    let ports: Vec<_> = spec["endpoint"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["targetPort"])
        .collect();
    assert_eq!(ports, [80, 90]);
    assert_eq!(spec["task"]["resources"]["limits"]["memoryBytes"], 1 << 30);
    assert_eq!(
        spec["task"]["resources"]["limits"]["nanoCpus"], 500_000_000,
        "untouched"
    );
    assert_eq!(spec["task"]["forceUpdate"], 1);
    assert_eq!(
        container["healthcheck"],
        service["spec"]["task"]["container"]["healthcheck"]
    );
    assert_eq!(spec["update"], service["spec"]["update"]);
    assert_eq!(updated["previousSpec"], service["spec"]);

    // Refusals leave the service as it was.
    let create = ["service", "create", "--image", "busybox:local", "--name"];
    let update = ["service", "update", "api"];
    let refusals: [(&[&str], &[&str], &str); 11] = [
        (
            &update,
            &["--image", "Foo Bar"],
            "spec.task.container.image \"Foo Bar\"",
        ),
        (
            &update,
            &[
                "--secret-add",
                "source=db-pass,target=a",
                "--secret-add",
                "source=db-pass,target=a",
            ],
            "--secret-add: two secrets target \"a\"",
        ),
        // A target taken is not silently given to another secret.
        (
            &update,
            &["--secret-add", "db-pass"],
            "the target \"db-pass\" is secret \"db-pass\"'s; to replace it, also pass --secret-rm db-pass",
        ),
        (
            &update,
            &["--reserve-memory", "2g"],
            "reservations.memory_bytes (2147483648) must not exceed",
        ),
        (&update, &["--env-rm", "NOPE"], "no such variable"),
        (&update, &["--mount-rm", "/nowhere"], "no such mount"),
        (&update, &["--update-max-failure-ratio", "1.5"], "max_failure_ratio"),
        (&update, &["--health-interval", "1us"], "at least 1ms"),
        (
            &update,
            &["--mount-add", "type=bind,source=rel,target=/x"],
            "bind mount source",
        ),
        (
            &create,
            &["g", "--mode", "global", "--replicas", "2"],
            "--replicas applies to replicated services and jobs only",
        ),
        (
            &create,
            &["p", "-p", "8080:80", "-p", "8080:81"],
            "published port 8080/tcp is given twice",
        ),
    ];
    for (command, flags, mention) in refusals {
        fails(&socket, &[command, flags].concat(), mention);
    }
    // A range publishes each of its ports, as docker's.
    ok(
        &socket,
        &[&create[..], &["ranged", "-p", "9000-9001:90-91/udp"]].concat(),
    );
    let ranged = rows(&ok(&socket, &["service", "ls", "-f", "name=ranged"]));
    assert_eq!(ranged[0][5..], ["*:9000->90/udp,", "*:9001->91/udp"], "{ranged:?}");
    // `ls` shows an image without its digest, as docker's; `inspect` the
    // whole reference.
    let pinned = format!("busybox:local@sha256:{}", "ab".repeat(32));
    ok(&socket, &["service", "create", "--name", "pinned", "--image", &pinned]);
    let listed = rows(&ok(&socket, &["service", "ls", "-f", "name=pinned"]));
    assert_eq!(listed[0][4], "busybox:local", "{listed:?}");
    assert!(ok(&socket, &["service", "inspect", "pinned"]).contains(&pinned));
    for (flag, value) in [
        ("--restart-delay", "5x"),
        ("--limit-memory", "lots"),
        ("--limit-cpu", "-1"),
        ("--publish-add", "99999"),
        ("--mount-add", "type=nfs,target=/x"),
        ("--health-retries", "-1"),
        ("--update-order", "random"),
    ] {
        let (code, _, stderr) = swarmctl(&socket, &["service", "update", "api", &format!("{flag}={value}")]);
        assert!(code == 2 && stderr.contains(flag), "{flag} {value}: {code}: {stderr}");
    }
    // Values parsed past clap's own parsing are usage errors all the same.
    for (flag, value, mention) in [
        ("--label-add", "=x", "has no key"),
        (
            "--secret-add",
            "source=db-pass,targt=/y",
            "expected NAME or source=NAME",
        ),
    ] {
        let (code, _, stderr) = swarmctl(&socket, &["service", "update", "api", flag, value]);
        assert!(
            code == 2 && stderr.contains(mention),
            "{flag} {value}: {code}: {stderr}"
        );
    }
    // A negative number is a bad value, not an unknown flag, with a unit
    // too.
    for (flag, value) in [
        ("--limit-memory", "-1"),
        ("--health-retries", "-1"),
        ("--replicas", "-1"),
        ("--limit-memory", "-5m"),
        ("--limit-cpu", "-0.5"),
        ("--stop-grace-period", "-1s"),
        ("--update-delay", "-1s"),
    ] {
        let (code, _, stderr) = swarmctl(&socket, &["service", "update", "api", flag, value]);
        assert!(
            code == 2 && stderr.contains(&format!("invalid value '{value}'")),
            "{flag} {value}: {code}: {stderr}"
        );
    }
    // Such a flag left without its value is said to be, not the flag that
    // follows it taken as its value and the next word refused.
    let (code, _, stderr) = swarmctl(
        &socket,
        &["service", "update", "api", "--limit-memory", "--replicas", "3"],
    );
    assert!(
        code == 2 && stderr.contains("'--limit-memory <BYTES>' needs a value, but the flag '--replicas' follows it"),
        "{code}: {stderr}"
    );
    assert_eq!(
        inspected(&socket, &["service", "inspect", "api", "--format", "json"]),
        updated
    );

    // Jobs: completions and concurrency change; rolling updates do not
    // apply to them.
    #[rustfmt::skip]
    let job = [
        "service", "create", "--name", "batch", "--image", "busybox:local", "--mode", "replicated-job",
        "--replicas", "6", "--max-concurrent", "3", "--restart-delay", "2s",
    ];
    ok(&socket, &job);
    ok(&socket, &["service", "update", "batch", "--replicas", "2"]);
    let batch = inspected(&socket, &["service", "inspect", "batch", "--format", "json"]);
    assert_eq!(batch["spec"]["replicatedJob"]["totalCompletions"], 2);
    assert_eq!(batch["spec"]["replicatedJob"]["maxConcurrent"], 3);
    let restart = &batch["spec"]["task"]["restart"];
    assert_eq!(
        restart["condition"], "CONDITION_ANY",
        "SwarmKit's default beside --restart-delay"
    );
    assert_eq!(restart["delay"], "2s");
    fails(
        &socket,
        &["service", "update", "batch", "--update-parallelism", "2"],
        "a job takes no update config",
    );
    fails(
        &socket,
        &["service", "update", "batch", "--replicas-max-per-node", "2"],
        "max_replicas applies to replicated",
    );
    // `--tty` before the service's name does not take it for its value.
    ok(
        &socket,
        &["service", "update", "--tty", "batch", "--command=", "--args="],
    );
    let batch = inspected(&socket, &["service", "inspect", "batch", "--format", "json"]);
    assert_eq!(batch["spec"]["task"]["container"]["tty"], true);
    assert_eq!(batch["spec"]["task"]["container"]["command"], serde_json::json!([]));
    assert_eq!(batch["spec"]["task"]["container"]["args"], serde_json::json!([]));

    // `service scale`, as docker's: each SERVICE=REPLICAS in turn, a job's
    // completions as its count; a global service does not scale, and the
    // others still do.
    ok(
        &socket,
        &["service", "create", "--name", "scaled", "--image", "busybox:local"],
    );
    let before_scale = inspected(&socket, &["service", "inspect", "scaled", "--format", "json"]);
    let (code, stdout, stderr) = swarmctl(&socket, &["service", "scale", "batch=5", "nope=1", "scaled=3"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stdout, "batch scaled to 5\nscaled scaled to 3\n");
    assert!(stderr.contains("service \"nope\" not found"), "{stderr}");
    let batch = inspected(&socket, &["service", "inspect", "batch", "--format", "json"]);
    assert_eq!(batch["spec"]["replicatedJob"]["totalCompletions"], 5);
    let scaled = inspected(&socket, &["service", "inspect", "scaled", "--format", "json"]);
    assert_eq!(scaled["spec"]["replicated"]["replicas"], 3);
    let mut unscaled = scaled["spec"].clone();
    unscaled["replicated"]["replicas"] = before_scale["spec"]["replicated"]["replicas"].clone();
    assert_eq!(unscaled, before_scale["spec"], "nothing else changed");
    ok(
        &socket,
        &[
            "service",
            "create",
            "--name",
            "everywhere",
            "--image",
            "busybox:local",
            "--mode",
            "global",
        ],
    );
    fails(
        &socket,
        &["service", "scale", "everywhere=2"],
        "is global: only replicated services and jobs scale",
    );
    let (code, _, stderr) = swarmctl(&socket, &["service", "scale", "api"]);
    assert!(
        code == 2 && stderr.contains("is not SERVICE=REPLICAS"),
        "{code}: {stderr}"
    );
    // docker's `IMAGE [ARG]...` after the flags, or `--image` and
    // `--args`: each once.
    ok(
        &socket,
        &[
            "service",
            "create",
            "--name",
            "positional",
            "busybox:local",
            "sleep",
            "-t",
            "60",
        ],
    );
    let positional = inspected(&socket, &["service", "inspect", "positional", "--format", "json"]);
    let container = &positional["spec"]["task"]["container"];
    assert_eq!(container["image"], "busybox:local");
    assert_eq!(container["args"], serde_json::json!(["sleep", "-t", "60"]));
    // As docker's, a flag after the image is an argument of it; one
    // before it that swarmctl does not know is an error, not the image.
    ok(
        &socket,
        &[
            "service",
            "create",
            "--name",
            "late-flag",
            "busybox:local",
            "--replicas",
            "3",
        ],
    );
    let late = inspected(&socket, &["service", "inspect", "late-flag", "--format", "json"]);
    assert_eq!(
        late["spec"]["task"]["container"]["args"],
        serde_json::json!(["--replicas", "3"])
    );
    assert_eq!(late["spec"]["replicated"]["replicas"], 1);
    let (code, _, stderr) = swarmctl(
        &socket,
        &["service", "create", "--name", "typo", "--replica", "3", "busybox:local"],
    );
    assert!(
        code == 2 && stderr.contains("unexpected argument '--replica'"),
        "{code}: {stderr}"
    );
    let (code, _, stderr) = swarmctl(
        &socket,
        &[
            "service",
            "create",
            "--name",
            "typo",
            "--limit-memory",
            "--replicas",
            "3",
            "busybox:local",
        ],
    );
    assert!(
        code == 2 && stderr.contains("'--limit-memory <BYTES>' needs a value, but the flag '--replicas' follows it"),
        "{code}: {stderr}"
    );
    for (args, mention) in [
        (
            &["--name", "twice", "--image", "busybox:local", "busybox:local"][..],
            "the image is given twice",
        ),
        (&["--name", "none"][..], "no image"),
        (
            &["--name", "both", "--args", "sleep 1", "busybox:local", "sleep", "2"][..],
            "the arguments are given twice",
        ),
    ] {
        let (code, _, stderr) = swarmctl(&socket, &[&["service", "create"][..], args].concat());
        assert!(code == 2 && stderr.contains(mention), "{args:?}: {code}: {stderr}");
    }

    // `service ps`: the tasks of the services named (none run here yet),
    // each of which must exist.
    let listed = ok(&socket, &["service", "ps", "api", "batch"]);
    assert!(listed.starts_with("ID"), "{listed}");
    fails(&socket, &["service", "ps", "nope"], "service \"nope\" not found");

    // A rollback puts the spec before the update back; a service never
    // updated has nothing to roll back to.
    ok(&socket, &["service", "rollback", "api"]);
    let rolled_back = inspected(&socket, &["service", "inspect", "api", "--format", "json"]);
    assert_eq!(rolled_back["spec"], service["spec"]);
    // As SwarmKit records one.
    let status = &rolled_back["updateStatus"];
    assert_eq!(status["state"], "STATE_ROLLBACK_STARTED", "{rolled_back}");
    assert_eq!(status["message"], "manually requested rollback");
    let table = ok(&socket, &["service", "inspect", "api"]);
    assert!(
        table.contains("rollback-started: manually requested rollback"),
        "{table}"
    );
    // docker's spelling goes back again (to the updated spec); with a
    // change beside it, it is a usage error and changes nothing.
    let (code, _, stderr) = swarmctl(&socket, &["service", "update", "api", "--rollback", "--replicas", "2"]);
    assert!(
        code == 2
            && stderr.contains("other flags may not be combined with --rollback: --replicas")
            && stderr.contains("Usage: swarmctl service update"),
        "{code}: {stderr}"
    );
    ok(&socket, &["service", "update", "api", "--rollback"]);
    let again = inspected(&socket, &["service", "inspect", "api", "--format", "json"]);
    assert_eq!(again["spec"], updated["spec"]);
    ok(&socket, &["service", "rollback", "api"]);
    // Health options turn a check that was off back on; an empty command
    // means the image's (as docker).
    ok(&socket, &["service", "update", "api", "--no-healthcheck"]);
    ok(&socket, &["service", "update", "api", "--health-retries", "3"]);
    let health = &inspected(&socket, &["service", "inspect", "api", "--format", "json"])["spec"]["task"]["container"]["healthcheck"];
    assert_eq!(
        (&health["test"], &health["retries"]),
        (&serde_json::json!([]), &serde_json::json!(3))
    );
    ok(&socket, &["service", "update", "api", "--health-cmd", ""]);
    let health = &inspected(&socket, &["service", "inspect", "api", "--format", "json"])["spec"]["task"]["container"]["healthcheck"];
    assert_eq!(health["test"], serde_json::json!([]));
    // A rollback cannot roll itself back; one target twice among added
    // mounts is a mistake.
    let (code, _, stderr) = swarmctl(
        &socket,
        &["service", "update", "api", "--rollback-failure-action", "rollback"],
    );
    assert_eq!(code, 2, "{stderr}");
    fails(
        &socket,
        &[
            "service",
            "update",
            "api",
            "--mount-add",
            "type=tmpfs,target=/t",
            "--mount-add",
            "type=volume,target=/t",
        ],
        "two mounts target \"/t\"",
    );
    // A target is one directory however it is typed: added as `/data/`,
    // replaced as `/data`, removed as `/a/../data`.
    ok(
        &socket,
        &["service", "update", "api", "--mount-add", "type=volume,target=/data/"],
    );
    ok(
        &socket,
        &["service", "update", "api", "--mount-add", "type=tmpfs,target=/data"],
    );
    let mounts =
        &inspected(&socket, &["service", "inspect", "api", "--format", "json"])["spec"]["task"]["container"]["mounts"];
    let at_data: Vec<&serde_json::Value> = mounts
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["target"] == "/data")
        .collect();
    assert_eq!(at_data.len(), 1, "{mounts}");
    assert_eq!(at_data[0]["type"], "TYPE_TMPFS", "{mounts}");
    ok(&socket, &["service", "update", "api", "--mount-rm", "/a/../data"]);
    let mounts =
        &inspected(&socket, &["service", "inspect", "api", "--format", "json"])["spec"]["task"]["container"]["mounts"];
    assert!(!mounts.to_string().contains("/data"), "{mounts}");
    ok(
        &socket,
        &["service", "create", "--name", "web", "--image", "busybox:local"],
    );
    fails(&socket, &["service", "rollback", "web"], "no previous spec");

    // Command and arguments split as a shell splits them, words starting
    // with a hyphen included; a label may have no value.
    #[rustfmt::skip]
    let nginx = [
        "service", "create", "--name", "nginx", "--image", "nginx:local", "--command", "nginx",
        "--args", "-g 'daemon off;'", "--label", "novalue", "-e", "Q=0",
    ];
    ok(&socket, &nginx);
    let created = inspected(&socket, &["service", "inspect", "nginx", "--format", "json"]);
    let container = &created["spec"]["task"]["container"];
    assert_eq!(container["command"], serde_json::json!(["nginx"]));
    assert_eq!(container["args"], serde_json::json!(["-g", "daemon off;"]));
    assert_eq!(
        created["spec"]["annotations"]["labels"],
        serde_json::json!({"novalue": ""})
    );
    let inspect = ok(&socket, &["service", "inspect", "nginx"]);
    assert!(inspect.contains("-g 'daemon off;'"), "{inspect}");
    // Added and removed at once: docker adds, then removes; the one who
    // wrote both most likely meant to replace it. Refused, nothing changed.
    let before = inspected(&socket, &["service", "inspect", "nginx", "--format", "json"]);
    for (add, remove, advice) in [
        (["--env-add", "Q=1"], ["--env-rm", "Q"], "--env-add alone replaces it"),
        (
            ["--label-add", "novalue=x"],
            ["--label-rm", "novalue"],
            "--label-add alone replaces it",
        ),
        (
            ["--constraint-add", "node.role==manager"],
            ["--constraint-rm", "node.role==manager"],
            "give one or the other",
        ),
        (
            ["--mount-add", "type=tmpfs,target=/cache"],
            ["--mount-rm", "/cache/"],
            "--mount-add alone replaces the mount on that target",
        ),
    ] {
        let mut args = vec!["service", "update", "nginx"];
        args.extend(remove);
        args.extend(add);
        let (code, _, stderr) = swarmctl(&socket, &args);
        assert_eq!(code, 2, "a usage error: {stderr}");
        assert!(stderr.contains(advice), "{stderr}");
    }
    let updated = inspected(&socket, &["service", "inspect", "nginx", "--format", "json"]);
    assert_eq!(updated, before);
    fails(
        &socket,
        &["service", "update", "nginx", "--stop-grace-period", "999999999h"],
        "stop_grace_period is out of range",
    );
    // An empty name (an unset variable) names nothing, even with one
    // object to match.
    fails(&socket, &["service", "rm", ""], "name or ID is empty");
    fails(&socket, &["secret", "rm", ""], "name or ID is empty");
    assert!(ok(&socket, &["secret", "ls", "-q"]).lines().count() == 1);
    drop(daemon);
}

/// A daemon that never answers, a reader that closes the pipe early: the
/// command ends, with an error in the first case, quietly in the second;
/// an error printed to a closed pipe still ends it with its exit code.
#[test]
fn an_unanswering_socket_and_a_closed_pipe_end_the_command() {
    let root = tempfile::tempdir().unwrap();
    let socket = root.path().join("silent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    // Accepts, and holds each connection open without a word.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let mut child = Command::new(workspace_binary("swarmctl"))
        .args(["node", "ls"])
        .env("SWARM_SOCKET", &socket)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start swarmctl");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("swarmctl still waits on a socket that never answers");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("swarmd"), "{stderr}");

    for shell in ["bash", "zsh", "fish"] {
        let mut child = Command::new(workspace_binary("swarmctl"))
            .args(["completion", shell])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start swarmctl");
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success() && stderr.is_empty(), "{shell}: {stderr}");
    }

    // An error with stderr closed (`2>&1 | head` gone): the command still
    // fails as itself (1), not as a panic (101).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let status = Command::new(workspace_binary("swarmctl"))
        .args(["node", "inspect", "self"])
        .env("SWARM_SOCKET", root.path().join("nothing-here.sock"))
        .stdout(std::process::Stdio::null())
        .stderr(writer)
        .status()
        .expect("run swarmctl");
    assert_eq!(status.code(), Some(1));
}

/// `SWARM_SOCKET` is the socket's default: a usage error does not show it
/// in its usage line as if it had been typed, `--socket` wins over it, and
/// an empty one counts as unset.
#[test]
fn swarm_socket_is_a_default_the_usage_line_leaves_out() {
    let run = |socket_env: &str, args: &[&str]| {
        let output = Command::new(workspace_binary("swarmctl"))
            .args(args)
            .env("SWARM_SOCKET", socket_env)
            .output()
            .expect("run swarmctl");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stderr) = run("/tmp/from-the-env.sock", &["secret", "create"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("Usage: swarmctl secret create <NAME> <FILE>\n"),
        "{stderr}"
    );
    let (code, stderr) = run("/tmp/from-the-env.sock", &["node", "ls"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot reach swarmd at /tmp/from-the-env.sock")
            && stderr.contains("(is swarmd running? if it serves another socket, set --socket or SWARM_SOCKET)"),
        "{stderr}"
    );
    // A socket left by a swarmd that did not stop cleanly: nothing serves it.
    let left = tempfile::tempdir().unwrap();
    let stale = left.path().join("swarm.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let (_, stderr) = run(&stale.to_string_lossy(), &["node", "ls"]);
    assert!(
        stderr.contains("no swarmd serves it: the one that did ended without a clean stop"),
        "{stderr}"
    );
    let (_, stderr) = run("/tmp/from-the-env.sock", &["-s", "/tmp/typed.sock", "node", "ls"]);
    assert!(stderr.contains("cannot reach swarmd at /tmp/typed.sock"), "{stderr}");
    let (_, stderr) = run("", &["node", "ls"]);
    assert!(
        stderr.contains("cannot reach swarmd at /var/run/swarmd.sock"),
        "{stderr}"
    );
}

/// A daemon that hangs (here stopped with SIGSTOP) is found out by the
/// connection's keepalive pings: the command ends within seconds of their
/// 10 s, saying swarmd stopped answering and that its change may have been
/// made all the same. So does a watch, whose stream hears only that its
/// connection broke, and says where to go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_daemon_is_said_to_have_stopped_answering() {
    let root = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&swarmd_binary(), &root.path().join("node-1"), "node-1").await;
    let mut watch = start_watch(&daemon.socket, &[]);
    let watched = watched_lines(watch.stdout.take().expect("its stdout"));
    wait_until_watching(&daemon.socket, &watched, root.path());
    daemon.signal(libc::SIGSTOP);
    let started = Instant::now();
    let (code, _, stderr) = swarmctl(
        &daemon.socket,
        &["service", "create", "--name", "web", "--image", "busybox:local"],
    );
    let took = started.elapsed();
    let watch_ended = watch.wait_with_output().expect("the watch ends");
    let watch_took = started.elapsed();
    daemon.signal(libc::SIGCONT);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("swarmd stopped answering: no reply within 10s")
            && stderr.contains("the change may have been made all the same"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(30), "took {took:?}");
    let stderr = String::from_utf8_lossy(&watch_ended.stderr);
    assert_eq!(watch_ended.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("swarmd stopped answering: the watch's connection was dropped"),
        "{stderr}"
    );
    assert!(
        stderr.trim_end().ends_with(")") && stderr.contains("(to go on: --resume-after "),
        "{stderr}"
    );
    assert!(watch_took < Duration::from_secs(30), "the watch took {watch_took:?}");
    drop(daemon);
}

/// SwarmKit's node commands on a single manager: availability changes
/// stick; the last manager is neither demoted nor removed, and a refusal
/// changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_commands_keep_the_last_manager() {
    let root = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&swarmd_binary(), &root.path().join("node-1"), "node-1").await;
    let socket = daemon.socket.clone();
    let node = || inspected(&socket, &["node", "inspect", "node-1", "--format", "json"]);
    for (command, availability) in [
        ("drain", "NODE_AVAILABILITY_DRAIN"),
        ("pause", "NODE_AVAILABILITY_PAUSE"),
        ("activate", "NODE_AVAILABILITY_ACTIVE"),
    ] {
        ok(&socket, &["node", command, "node-1"]);
        assert_eq!(node()["spec"]["availability"], availability, "after node {command}");
    }
    ok(&socket, &["node", "update", "node-1", "--availability", "drain"]);
    assert!(rows(&ok(&socket, &["node", "ls"]))[0].contains(&"drain".to_string()));
    let before = node();
    fails(
        &socket,
        &["node", "demote", "node-1"],
        "is the last manager of the cluster",
    );
    fails(
        &socket,
        &["node", "update", "node-1", "--role", "worker"],
        "last manager",
    );
    fails(&socket, &["node", "rm", "--force", "node-1"], "is a manager: demote it");
    fails(&socket, &["node", "drain", "node-9"], "node \"node-9\" not found");
    assert_eq!(node(), before, "a refusal changed the node");
    ok(&socket, &["node", "promote", "node-1"]);
    assert_eq!(node()["spec"]["desiredRole"], "NODE_ROLE_MANAGER");
    drop(daemon);
}

/// `ls --filter KEY=VALUE` as docker reads it: a key twice matches either
/// value, two keys must both match; a key an `ls` does not take, or a
/// value it does not know, is a usage error (exit 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_filters_as_docker_does() {
    let root = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&swarmd_binary(), &root.path().join("node-1"), "node-1").await;
    let socket = daemon.socket.clone();
    let create = |name: &str, labels: &[&str]| {
        let mut args = vec!["service", "create", "--name", name, "--image", "busybox:local"];
        for label in labels {
            args.extend(["--label", label]);
        }
        ok(&socket, &args).trim().to_string()
    };
    let web_1 = create("web-1", &["env=prod"]);
    let web_2 = create("web-2", &["env=dev"]);
    let db = create("db", &["env=prod", "tier=data"]);
    let listed = |kind: &str, filters: &[&str]| {
        let mut args = vec![kind, "ls", "-q"];
        for filter in filters {
            args.extend(["--filter", filter]);
        }
        let mut ids: Vec<String> = ok(&socket, &args).lines().map(str::to_string).collect();
        ids.sort();
        ids
    };
    let sorted = |ids: &[&String]| {
        let mut ids: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        ids.sort();
        ids
    };
    assert_eq!(listed("service", &["name=web"]), sorted(&[&web_1, &web_2]));
    // By mode, as docker's `mode=` (kept by the client).
    let everywhere = ok(
        &socket,
        &[
            "service",
            "create",
            "--name",
            "everywhere",
            "--image",
            "busybox:local",
            "--mode",
            "global",
        ],
    );
    let everywhere = everywhere.trim().to_string();
    assert_eq!(listed("service", &["mode=global"]), sorted(&[&everywhere]));
    assert_eq!(
        listed("service", &["mode=Replicated", "name=web"]),
        sorted(&[&web_1, &web_2])
    );
    let (code, _, stderr) = swarmctl(&socket, &["service", "ls", "-f", "mode=sometimes"]);
    assert_eq!(code, 2, "{stderr}");
    ok(&socket, &["service", "rm", "everywhere"]);
    assert_eq!(
        listed("service", &["name=WEB-1"]),
        sorted(&[&web_1]),
        "names match in any case"
    );
    assert_eq!(
        listed("service", &["name=web", "name=db"]),
        sorted(&[&web_1, &web_2, &db])
    );
    assert_eq!(listed("service", &["name=web", "label=env=prod"]), sorted(&[&web_1]));
    assert_eq!(listed("service", &["label=tier"]), sorted(&[&db]));
    assert_eq!(
        listed("service", &["label=env=prod", "label=tier=data"]),
        sorted(&[&db])
    );
    assert_eq!(listed("service", &[&format!("id={}", &db[..6])]), sorted(&[&db]));
    assert!(listed("service", &["name=nosuch"]).is_empty());
    // The table and JSON show the same selection.
    let table = ok(&socket, &["service", "ls", "-f", "label=env=dev"]);
    assert_eq!(rows(&table).len(), 1, "{table}");
    assert_eq!(rows(&table)[0][1], "web-2");
    let json_list = json(&socket, &["service", "ls", "-f", "label=env=dev", "--format", "json"]);
    assert_eq!(json_list.as_array().map(Vec::len), Some(1), "{json_list}");

    let node_1 = listed("node", &[]);
    assert_eq!(node_1.len(), 1);
    assert_eq!(listed("node", &["role=manager", "membership=accepted"]), node_1);
    assert_eq!(listed("node", &["name=node"]), node_1, "name is a hostname prefix");
    assert!(listed("node", &["role=worker"]).is_empty());
    assert!(listed("node", &["membership=pending"]).is_empty());
    assert_eq!(listed("cluster", &["name=def"]).len(), 1);
    assert!(listed("cluster", &["label=nosuch"]).is_empty());
    let pass = root.path().join("pass.txt");
    std::fs::write(&pass, "s3cret").unwrap();
    ok(
        &socket,
        &[
            "secret",
            "create",
            "pass",
            pass.to_str().unwrap(),
            "--label",
            "env=prod",
        ],
    );
    assert_eq!(listed("secret", &["label=env=prod"]).len(), 1);
    assert!(listed("secret", &["label=env=dev"]).is_empty());
    assert!(listed("config", &["name=pass"]).is_empty());
    // No service creates tasks yet: the filters are checked and sent.
    assert!(listed("task", &["desired-state=running", "node=node-1"]).is_empty());
    assert!(listed("task", &["service=web-1"]).is_empty());
    fails(
        &socket,
        &["task", "ls", "-f", "node=node-9"],
        "node \"node-9\" not found",
    );
    fails(
        &socket,
        &["task", "ls", "-f", "service=nosuch"],
        "service \"nosuch\" not found",
    );

    for (args, mention) in [
        (
            &["service", "ls", "-f", "role=manager"][..],
            "unknown key \"role\"; this command filters by id, name, label",
        ),
        (&["node", "ls", "-f", "role=leader"], "role is one of manager, worker"),
        (
            &["task", "ls", "-f", "desired-state=sleeping"],
            "desired-state is one of new, pending",
        ),
        (&["secret", "ls", "-f", "name"], "is not KEY=VALUE"),
        (&["config", "ls", "-f", "name="], "needs both a key and a value"),
    ] {
        let (code, stdout, stderr) = swarmctl(&socket, args);
        assert!(code == 2 && stderr.contains(mention), "{args:?}: {code}: {stderr}");
        assert!(stdout.is_empty(), "{args:?} printed {stdout}");
    }
    drop(daemon);
}

/// `info` and `version` ask the node serving the socket about itself, and
/// `self` names that node wherever a node is named, as in docker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_version_and_self_name_the_node_serving_the_socket() {
    let root = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&swarmd_binary(), &root.path().join("node-1"), "node-1").await;
    let socket = daemon.socket.clone();
    let node_id = ok(&socket, &["node", "ls", "-q"]).trim().to_string();
    assert_eq!(node_id.len(), 25, "one node: {node_id}");

    let info = json(&socket, &["info", "--format", "json"]);
    assert_eq!(info["nodeId"], node_id.as_str());
    assert_eq!(info["hostname"], "node-1");
    assert_eq!(info["role"], "NODE_ROLE_MANAGER");
    let manager = &info["manager"];
    assert_eq!(manager["isLeader"], true);
    assert_eq!(manager["raftError"], "");
    assert_eq!(manager["leaderRaftId"], manager["raftId"]);
    assert_eq!(manager["members"].as_object().map(|members| members.len()), Some(1));
    // Raft ids are text, so that a script's JSON parser keeps every digit
    // and finds the member by its id.
    let raft_id = manager["raftId"].as_str().expect("a raft id as text");
    assert!(raft_id.parse::<u64>().is_ok(), "{raft_id}");
    assert_eq!(manager["members"][raft_id], manager["addr"]);
    let applied = manager["appliedIndex"].as_u64().expect("an applied index");
    assert!(
        applied > 0 && applied <= manager["commitIndex"].as_u64().unwrap_or(0),
        "{manager}"
    );
    // A write moves the indexes on.
    ok(
        &socket,
        &["service", "create", "--name", "web", "--image", "busybox:local"],
    );
    let after = json(&socket, &["info", "--format", "json"]);
    assert!(after["manager"]["appliedIndex"].as_u64() > Some(applied), "{after}");
    let cluster_id = ok(&socket, &["cluster", "ls", "-q"]).trim().to_string();
    assert_eq!(info["clusterId"], cluster_id.as_str());
    assert_eq!((info["nodes"].as_u64(), info["managers"].as_u64()), (Some(1), Some(1)));
    let table = ok(&socket, &["info"]);
    for line in [
        format!("Node ID: {node_id}"),
        "Leader: this node".into(),
        "Raft members: 1 (".into(),
        "Raft timing: tick 100ms, heartbeat every 1 tick(s), election after 10 tick(s)".into(),
        format!("Cluster ID: {cluster_id}"),
        "Managers: 1".into(),
    ] {
        let squeezed = table
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "));
        assert!(
            squeezed.clone().any(|l| l.starts_with(&line)),
            "no {line:?} in\n{table}"
        );
    }

    let version = json(&socket, &["version", "--format", "json"]);
    assert!(
        version["client"].is_string() && version["client"] == version["server"],
        "{version}"
    );
    let version = ok(&socket, &["version"]);
    let lines: Vec<&str> = version.lines().collect();
    assert_eq!(lines.len(), 2, "{version}");
    assert!(
        lines[0].starts_with("swarmctl ") && lines[1].starts_with("swarmd "),
        "{version}"
    );

    let inspected = inspected(&socket, &["node", "inspect", "self", "--format", "json"]);
    assert_eq!(inspected["id"], node_id.as_str());
    ok(&socket, &["node", "update", "self", "--label-add", "zone=a"]);
    assert_eq!(ok(&socket, &["node", "ls", "-q", "-f", "label=zone=a"]).trim(), node_id);

    let socket_gone = root.path().join("none.sock");
    let (code, stdout, stderr) = swarmctl(&socket_gone, &["version"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stdout.starts_with("swarmctl "),
        "the client's version still printed: {stdout}"
    );
    assert!(stderr.contains("cannot reach swarmd"), "{stderr}");
    drop(daemon);
}

/// Secrets and configs from standard input with labels, label updates that
/// keep the data, and the cluster settings `cluster update` changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_of_secrets_and_configs_and_cluster_settings() {
    let root = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&swarmd_binary(), &root.path().join("node-1"), "node-1").await;
    let socket = daemon.socket.clone();
    for kind in ["secret", "config"] {
        let mut create = Command::new(workspace_binary("swarmctl"))
            .args([kind, "create", "api-key", "-f", "-", "--label", "env=prod"])
            .env("SWARM_SOCKET", &socket)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start swarmctl");
        std::io::Write::write_all(&mut create.stdin.take().expect("piped"), b"k3y").unwrap();
        let created = create.wait_with_output().unwrap();
        assert!(created.status.success(), "{kind} create from stdin");
        let before = inspected(&socket, &[kind, "inspect", "api-key", "--format", "json"]);
        assert_eq!(
            before["spec"]["annotations"]["labels"],
            serde_json::json!({"env": "prod"})
        );
        ok(
            &socket,
            &[kind, "update", "api-key", "--label-add", "team=a", "--label-rm", "env"],
        );
        let after = inspected(&socket, &[kind, "inspect", "api-key", "--format", "json"]);
        assert_eq!(after["spec"]["annotations"]["labels"], serde_json::json!({"team": "a"}));
        assert!(after["meta"]["version"].as_u64() > before["meta"]["version"].as_u64());
        if kind == "config" {
            // A config's data is returned: the label update kept it.
            assert_eq!(after["spec"]["data"], before["spec"]["data"]);
            assert_eq!(after["spec"]["data"], "azN5", "base64 of k3y");
        }
        fails(
            &socket,
            &[kind, "update", "api-key", "--label-rm", "nope"],
            "no such label",
        );
        // Past gRPC's default 4 MiB, still refused by its size.
        let big = root.path().join("big");
        std::fs::write(&big, vec![b'x'; 5 << 20]).unwrap();
        fails(
            &socket,
            &[kind, "create", "big", big.to_str().unwrap()],
            "must hold under",
        );
        // An endless input is refused, not read whole into memory.
        fails(
            &socket,
            &[kind, "create", "zeros", "/dev/zero"],
            "holds more than 6 MiB",
        );
        // Past the Control API's 8 MiB, refused before it is sent.
        let huge = root.path().join("huge");
        std::fs::write(&huge, vec![b'x'; 9 << 20]).unwrap();
        fails(
            &socket,
            &[kind, "create", "huge", huge.to_str().unwrap()],
            "holds more than 6 MiB",
        );
        // The file as docker takes it, positional.
        let file = root.path().join(format!("{kind}.txt"));
        std::fs::write(&file, "from a file").unwrap();
        ok(&socket, &[kind, "create", "from-file", file.to_str().unwrap()]);
        let listed = ok(&socket, &[kind, "ls"]);
        assert!(listed.contains("from-file"), "{listed}");
        // Of several to remove, one unknown: the others still go, and the
        // command fails, naming it.
        let (code, _, stderr) = swarmctl(&socket, &[kind, "rm", "nosuch", "from-file"]);
        assert_eq!(code, 1, "{stderr}");
        assert_eq!(stderr.trim(), format!("Error: {kind} \"nosuch\" not found"));
        assert!(!ok(&socket, &[kind, "ls"]).contains("from-file"));
    }

    #[rustfmt::skip]
    let update = [
        "cluster", "update", "default", "--heartbeat-period", "10s", "--cert-expiry", "48h",
        "--log-entries-for-slow-followers", "1000", "--snapshot-interval", "20000",
    ];
    ok(&socket, &update);
    let spec = &inspected(&socket, &["cluster", "inspect", "default", "--format", "json"])["spec"];
    assert_eq!(spec["dispatcher"]["heartbeatPeriod"], "10s");
    assert_eq!(spec["caConfig"]["nodeCertExpiry"], "172800s");
    assert_eq!(spec["raft"]["logEntriesForSlowFollowers"], 1000);
    assert_eq!(spec["raft"]["snapshotInterval"], 20000);
    let inspect = ok(&socket, &["cluster", "inspect", "default"]);
    assert!(inspect.contains("10s") && inspect.contains("48h0m0s"), "{inspect}");
    fails(
        &socket,
        &["cluster", "update", "default", "--cert-expiry", "30m"],
        "at least 1h",
    );
    drop(daemon);
}

/// `watch --action remove --format json`: only removals, one JSON object
/// per line, carrying the object as it was stored (and, for an update, as
/// it was before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_filtered_by_action_prints_json_lines() {
    let root = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&swarmd_binary(), &root.path().join("node-1"), "node-1").await;
    let socket = daemon.socket.clone();
    let mut watch = start_watch(&socket, &["--action", "remove", "--format", "json"]);
    let watched = watched_lines(watch.stdout.take().expect("piped"));
    // Probe configs, created and removed, until the watch reports one.
    probe_until_watched(&socket, root.path(), true, |name| {
        watched.lock().unwrap().iter().any(|line| {
            let event: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            event["object"]["config"]["spec"]["annotations"]["name"] == name
        })
    });
    // And one of every action, to see an update's old object.
    let mut watch_all = start_watch(&socket, &["--format", "json"]);
    let watched_all = watched_lines(watch_all.stdout.take().expect("piped"));
    probe_until_watched(&socket, root.path(), true, |name| {
        watched_all.lock().unwrap().iter().any(|line| {
            let event: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            event["object"]["config"]["spec"]["annotations"]["name"] == name
        })
    });
    let id = ok(
        &socket,
        &["service", "create", "--name", "web", "--image", "busybox:local"],
    );
    let id = id.trim();
    ok(&socket, &["service", "update", "web", "--replicas", "2"]);
    ok(&socket, &["service", "rm", "web"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let event = loop {
        let found = watched.lock().unwrap().iter().find_map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            (event["kind"] == "service").then_some(event)
        });
        if let Some(event) = found {
            break event;
        }
        assert!(Instant::now() < deadline, "the service's removal was not reported");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(event["action"], "remove");
    assert_eq!(event["object"]["service"]["id"], id);
    assert_eq!(event["object"]["service"]["spec"]["replicated"]["replicas"], 2);
    assert!(event.get("oldObject").is_none(), "a removal has no old object: {event}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let update = loop {
        let found = watched_all.lock().unwrap().iter().find_map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            (event["kind"] == "service" && event["action"] == "update").then_some(event)
        });
        if let Some(update) = found {
            break update;
        }
        assert!(Instant::now() < deadline, "the service's update was not reported");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(
        update["oldObject"]["service"]["spec"]["replicated"]["replicas"], 1,
        "{update}"
    );
    assert_eq!(
        update["object"]["service"]["spec"]["replicated"]["replicas"], 2,
        "{update}"
    );
    watch_all.kill().unwrap();
    watch_all.wait().unwrap();
    assert!(event["commitIndex"].as_u64().is_some_and(|index| index > 0), "{event}");
    let lines = watched.lock().unwrap().clone();
    for line in &lines {
        let event: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        assert_eq!(event["action"], "remove", "only removals: {line}");
    }

    // An object past gRPC's default 4 MiB message (any the manager takes
    // may be watched): 5 MiB of labels, made through the API, as no
    // command line holds that much.
    let mut spec = swarm_proto::v1::ServiceSpec::container("big", "busybox:local");
    let labels = &mut spec.annotations.get_or_insert_with(Default::default).labels;
    for key in 0..50 {
        labels.insert(format!("k{key}"), "x".repeat(100 << 10));
    }
    let mut control = swarm_tests::daemon::connect(&socket)
        .await
        .expect("connect")
        .max_decoding_message_size(64 << 20);
    let request = swarm_proto::v1::CreateServiceRequest { spec: Some(spec) };
    control.create_service(request).await.expect("create a 5 MiB service");
    ok(&socket, &["service", "rm", "big"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lines = watched.lock().unwrap().clone();
        let reported = lines.iter().any(|line| {
            let event: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            event["object"]["service"]["spec"]["annotations"]["name"] == "big"
        });
        if reported {
            break;
        }
        assert!(watch.try_wait().unwrap().is_none(), "the watch ended on a large event");
        assert!(
            Instant::now() < deadline,
            "the large service's removal was not reported"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    watch.kill().unwrap();
    watch.wait().unwrap();
    drop(daemon);
}

/// `watch --filter`: by label and name prefix, the services that carry
/// the label, and the update that takes it away; not the others. A
/// service or node filter names one that exists, and selects tasks only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_filtered_by_label_and_name_sees_objects_enter_and_leave() {
    let root = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&swarmd_binary(), &root.path().join("node-1"), "node-1").await;
    let socket = daemon.socket.clone();
    let mut watch = start_watch(&socket, &["--filter", "label=env=prod", "-f", "name=web"]);
    let watched = watched_lines(watch.stdout.take().expect("piped"));
    // (action, kind, name) of each line, as `watch` prints them.
    let reported = || -> Vec<(String, String, String)> {
        watched
            .lock()
            .unwrap()
            .iter()
            .map(|line| {
                let fields: Vec<&str> = line.split('\t').collect();
                (fields[1].to_string(), fields[2].to_string(), fields[4].to_string())
            })
            .collect()
    };
    // Probe configs the filter selects, until the watch reports one.
    let file = root.path().join("probe");
    std::fs::write(&file, "probe").unwrap();
    let file = file.to_string_lossy();
    let deadline = Instant::now() + Duration::from_secs(30);
    for attempt in 0.. {
        let name = format!("web-probe-{attempt}");
        ok(
            &socket,
            &["config", "create", &name, "-f", &file, "--label", "env=prod"],
        );
        let until = Instant::now() + Duration::from_millis(200);
        while Instant::now() < until && !reported().iter().any(|(_, _, seen)| *seen == name) {
            std::thread::sleep(Duration::from_millis(5));
        }
        if reported().iter().any(|(_, _, seen)| *seen == name) {
            break;
        }
        assert!(Instant::now() < deadline, "swarmctl watch never reported a probe");
    }
    let probes = reported().len();
    let create = |name: &str, labels: &[&str]| {
        let mut args = vec!["service", "create", "--name", name, "--image", "busybox:local"];
        for label in labels {
            args.extend(["--label", label]);
        }
        ok(&socket, &args);
    };
    create("web-a", &["env=prod"]);
    create("web-b", &["env=dev"]);
    create("db", &["env=prod"]);
    ok(&socket, &["service", "update", "web-a", "--label-rm", "env"]);
    ok(&socket, &["service", "update", "web-b", "--label-add", "env=prod"]);
    ok(&socket, &["service", "update", "db", "--label-add", "tier=1"]);
    ok(&socket, &["service", "update", "web-a", "--label-add", "tier=1"]);
    ok(&socket, &["service", "rm", "web-b"]);
    ok(
        &socket,
        &["config", "create", "web-end", "-f", &file, "--label", "env=prod"],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !reported().iter().any(|(_, _, name)| name == "web-end") {
        assert!(Instant::now() < deadline, "the last change was not reported");
        std::thread::sleep(Duration::from_millis(10));
    }
    watch.kill().unwrap();
    watch.wait().unwrap();
    let expected: Vec<(String, String, String)> = [
        ("create", "service", "web-a"),
        ("update", "service", "web-a"),
        ("update", "service", "web-b"),
        ("remove", "service", "web-b"),
        ("create", "config", "web-end"),
    ]
    .iter()
    .map(|(action, kind, name)| (action.to_string(), kind.to_string(), name.to_string()))
    .collect();
    assert_eq!(reported()[probes..], expected[..]);

    // Tasks by service: the service must exist, and no other kind goes
    // with it.
    fails(
        &socket,
        &["watch", "--filter", "service=nope"],
        "service \"nope\" not found",
    );
    let (code, _, stderr) = swarmctl(&socket, &["watch", "--filter", "service=web-a", "--kind", "service"]);
    assert_eq!(code, 2, "a usage error: {stderr}");
    assert!(stderr.contains("select tasks"), "{stderr}");
    let (code, _, stderr) = swarmctl(&socket, &["watch", "--filter", "colour=red"]);
    assert_eq!(code, 2, "a usage error: {stderr}");
    assert!(stderr.contains("unknown key \"colour\""), "{stderr}");

    // A reader that goes away after one line (`| head -1`): the watch
    // ends, quietly and as a success, with no change after (a quiet
    // cluster may make none).
    let mut watch = start_watch(&socket, &["--kind", "config"]);
    let first_line = Arc::new(Mutex::new(Vec::new()));
    let stdout = watch.stdout.take().expect("piped");
    let sink = Arc::clone(&first_line);
    std::thread::spawn(move || {
        // The pipe's read end dropped after one line, before the line is
        // handed on.
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
        let line = lines.next();
        drop(lines);
        if let Some(Ok(line)) = line {
            sink.lock().unwrap().push(line);
        }
    });
    wait_until_watching(&socket, &first_line, root.path());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = watch.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the watch outlived its reader by 10 s, waiting for another change"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut watch.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "");
    drop(daemon);
}

/// A watch whose filter selects none of many commits is told how far the
/// store has come (messages with no events): where it starts, then now and
/// then; `swarmctl watch` ended by a stop names the last commit to go on
/// from, which a new watch resumes after once the manager is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrow_watch_hears_how_far_the_store_came_and_a_stopped_one_says_where_to_go_on() {
    use futures::StreamExt as _;
    use swarm_proto::v1::{Annotations, ConfigSpec, CreateConfigRequest, WatchRequest, watch_request};
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node-1");
    let daemon = Daemon::start(&swarmd_binary(), &dir, "node-1").await;
    let channel = swarm_tests::daemon::channel(&daemon.socket).await.unwrap();
    let watch = |resume_after: Option<u64>, kind: &str| WatchRequest {
        entries: vec![watch_request::WatchEntry {
            kind: kind.into(),
            ..Default::default()
        }],
        include_commits: true,
        resume_after,
    };
    let mut narrow = swarm_proto::v1::watch_client::WatchClient::new(channel.clone())
        .watch(watch(None, "task"))
        .await
        .expect("a watch")
        .into_inner();
    let mut next = async move || {
        tokio::time::timeout(Duration::from_secs(30), narrow.next())
            .await
            .expect("a message within 30 s")
            .expect("not the end")
            .expect("not an error")
    };
    let start = next().await;
    assert!(start.events.is_empty(), "where it starts: {start:?}");
    // The manager's store marks progress every 100 commits
    // (`swarm_store::PROGRESS_EVERY`).
    const PROGRESS_EVERY: u64 = 100;
    let writes = 2 * PROGRESS_EVERY as usize + 10;
    swarm_tests::daemon::write_concurrently(&channel, 16, writes, |mut control, n| async move {
        let spec = ConfigSpec {
            annotations: Some(Annotations {
                name: format!("c-{n}"),
                ..Default::default()
            }),
            data: b"x".to_vec(),
        };
        control
            .create_config(CreateConfigRequest { spec: Some(spec) })
            .await
            .unwrap();
        control
    })
    .await;
    let progress = [next().await, next().await];
    for (n, marker) in progress.iter().enumerate() {
        assert!(marker.events.is_empty(), "{marker:?}");
        assert_eq!(
            marker.commit_index,
            start.commit_index + (n as u64 + 1) * PROGRESS_EVERY,
            "{progress:?} after {start:?}"
        );
    }

    let stopped_watch = start_watch(&daemon.socket, &["--kind", "task"]);
    let file = root.path().join("last");
    std::fs::write(&file, "x").unwrap();
    ok(
        &daemon.socket,
        &["config", "create", "last", "-f", &file.to_string_lossy()],
    );
    let last = inspected(&daemon.socket, &["config", "inspect", "last", "--format", "json"])["meta"]["version"]
        .as_u64()
        .expect("a version");
    assert!(daemon.signal_and_wait(2, Duration::from_secs(10)).success());
    let output = stopped_watch.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let go_on_from = stopped_at(&stderr);
    assert!(go_on_from >= last, "{go_on_from} before the last commit, {last}");

    // Back: a watch resumes after it, and sees the next change.
    let daemon = Daemon::start(&swarmd_binary(), &dir, "node-1").await;
    let channel = swarm_tests::daemon::channel(&daemon.socket).await.unwrap();
    let mut resumed = swarm_proto::v1::watch_client::WatchClient::new(channel)
        .watch(watch(Some(go_on_from), "config"))
        .await
        .expect("resumed")
        .into_inner();
    ok(
        &daemon.socket,
        &["config", "create", "after", "-f", &file.to_string_lossy()],
    );
    // Where it came to, once it caught up (the commits of the restart are
    // none it wants), then the change.
    let after = loop {
        let message = tokio::time::timeout(Duration::from_secs(30), resumed.next())
            .await
            .expect("a message within 30 s")
            .expect("not the end")
            .expect("resumable");
        if !message.events.is_empty() {
            break message;
        }
        assert!(message.commit_index > go_on_from, "{message:?}");
    };
    assert_eq!(after.events.len(), 1, "{after:?}");
}

/// `inspect` takes several references, as docker's: for people, each
/// object's fields with a blank line between; in JSON, an array in the
/// order asked. One that is not found is reported, the others still print,
/// and the command exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_takes_several_references_as_docker_does() {
    let root = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&swarmd_binary(), &root.path().join("node-1"), "node-1").await;
    let socket = daemon.socket.clone();
    let web = ok(
        &socket,
        &["service", "create", "--name", "web", "--image", "busybox:local"],
    );
    let db = ok(
        &socket,
        &["service", "create", "--name", "db", "--image", "busybox:local"],
    );
    let (web, db) = (web.trim(), db.trim());

    let both = ok(&socket, &["service", "inspect", "db", web]);
    let objects: Vec<&str> = both.split("\n\n").collect();
    assert_eq!(objects.len(), 2, "{both}");
    assert!(objects[0].starts_with(&format!("ID:      {db}")), "{both}");
    assert!(objects[1].starts_with(&format!("ID:      {web}")), "{both}");

    let listed = json(&socket, &["service", "inspect", "web", "db", "--format", "json"]);
    let ids: Vec<&str> = listed
        .as_array()
        .expect("an array for several")
        .iter()
        .map(|service| service["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [web, db]);
    // One reference prints an array of one, as docker's does.
    assert_eq!(
        inspected(&socket, &["service", "inspect", "web", "--format", "json"])["id"],
        web
    );
    let (code, stdout, _) = swarmctl(&socket, &["service", "inspect", "nope", "--format", "json"]);
    assert_eq!((code, stdout.trim()), (1, "[]"));

    let (code, stdout, stderr) = swarmctl(&socket, &["service", "inspect", "web", "nope", "db"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stderr.trim(), "Error: service \"nope\" not found");
    assert_eq!(stdout.split("\n\n").count(), 2, "{stdout}");
    let (code, stdout, _) = swarmctl(&socket, &["service", "inspect", "nope", "web", "--format", "json"]);
    assert_eq!(code, 1);
    let found: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{found}");

    // Every kind takes several.
    let node = ok(&socket, &["node", "ls", "-q"]);
    assert_eq!(
        ok(&socket, &["node", "inspect", "self", node.trim()])
            .split("\n\n")
            .count(),
        2
    );
    assert_eq!(
        ok(&socket, &["cluster", "inspect", "default", "default"])
            .split("\n\n")
            .count(),
        2
    );
    for kind in ["secret", "config"] {
        for name in ["a", "b"] {
            let file = root.path().join(format!("{kind}-{name}"));
            std::fs::write(&file, name).unwrap();
            ok(&socket, &[kind, "create", name, "-f", &file.to_string_lossy()]);
        }
        let listed = json(&socket, &[kind, "inspect", "b", "a", "--format", "json"]);
        let names: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["spec"]["annotations"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["b", "a"], "{kind}");
    }
    let (code, _, stderr) = swarmctl(&socket, &["task", "inspect", "x", "y"]);
    assert_eq!(code, 1);
    assert_eq!(stderr.lines().count(), 2, "an error per task: {stderr}");
    drop(daemon);
}

/// A manager started again on another Raft address (port 0 picks a new
/// one each start) records it in the group: the members and the leader's
/// address name where it listens now, not where it listened before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_restarted_on_another_address_is_known_there() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node-1");
    let daemon = Daemon::start(&swarmd_binary(), &dir, "node-1").await;
    let first = json(&daemon.socket, &["info", "--format", "json"])["manager"]["addr"].clone();
    assert!(daemon.signal_and_wait(2, Duration::from_secs(10)).success());

    let daemon = Daemon::start(&swarmd_binary(), &dir, "node-1").await;
    let manager = json(&daemon.socket, &["info", "--format", "json"])["manager"].clone();
    let addr = manager["addr"].as_str().expect("an address");
    assert_ne!(manager["addr"], first, "port 0 gave the same port twice");
    let raft_id = manager["raftId"].as_str().unwrap();
    assert_eq!(manager["members"][raft_id], addr, "{manager}");
    assert_eq!(manager["leaderAddr"], addr, "{manager}");
    assert!(daemon.log_text().contains("member address changed"));
    let node = inspected(&daemon.socket, &["node", "inspect", "self", "--format", "json"]);
    assert_eq!(node["managerStatus"]["addr"], addr);

    // And it stays there across the next start, as the log replays; the
    // move in the log (committed, after a clean stop) does not keep the
    // member from leading at once.
    assert!(daemon.signal_and_wait(2, Duration::from_secs(10)).success());
    let daemon = Daemon::start(&swarmd_binary(), &dir, "node-1").await;
    let log = daemon.log_text();
    let last_start = &log[log.rfind("starting raft_cluster").unwrap_or(0)..];
    assert!(!last_start.contains("cannot campaign"), "{last_start}");
    let manager = json(&daemon.socket, &["info", "--format", "json"])["manager"].clone();
    let raft_id = manager["raftId"].as_str().unwrap();
    assert_eq!(manager["members"][raft_id], manager["addr"], "{manager}");
    drop(daemon);
}

/// `watch --resume-after INDEX`: a watch that was not running, here not
/// even the daemon, gets every change committed after INDEX, in order and
/// once, then the live ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_resumes_after_an_index_across_a_restart() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node-1");
    let daemon = Daemon::start(&swarmd_binary(), &dir, "node-1").await;
    let socket = daemon.socket.clone();
    for name in ["a", "b"] {
        ok(
            &socket,
            &["service", "create", "--name", name, "--image", "busybox:local"],
        );
    }
    let seen = inspected(&socket, &["service", "inspect", "b", "--format", "json"])["meta"]["version"]
        .as_u64()
        .expect("a version");
    // Missed by the watch: a create, an update and a removal...
    ok(
        &socket,
        &["service", "create", "--name", "c", "--image", "busybox:local"],
    );
    ok(&socket, &["service", "update", "a", "--replicas", "2"]);
    ok(&socket, &["service", "rm", "b"]);
    // ...and a restart of the manager.
    assert!(daemon.signal_and_wait(2, Duration::from_secs(10)).success());
    let daemon = Daemon::start(&swarmd_binary(), &dir, "node-1").await;

    let resume_after = seen.to_string();
    let mut watch = Command::new(workspace_binary("swarmctl"))
        .args([
            "watch",
            "--kind",
            "service",
            "--format",
            "json",
            "--resume-after",
            &resume_after,
        ])
        .env("SWARM_SOCKET", &socket)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start swarmctl watch");
    let watched = watched_lines(watch.stdout.take().expect("piped"));
    let wait_for = |count: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let lines = watched.lock().unwrap().clone();
            if lines.len() >= count {
                return lines;
            }
            assert!(Instant::now() < deadline, "{count} changes not reported: {lines:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_for(3);
    // Then live ones: the last shows that none came twice before it.
    for name in ["d", "e"] {
        ok(
            &socket,
            &["service", "create", "--name", name, "--image", "busybox:local"],
        );
    }
    let lines = wait_for(5);
    watch.kill().unwrap();
    watch.wait().unwrap();

    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let told: Vec<(String, String)> = events
        .iter()
        .map(|event| {
            (
                event["action"].as_str().unwrap_or_default().to_owned(),
                event["object"]["service"]["spec"]["annotations"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    let expected = [
        ("create", "c"),
        ("update", "a"),
        ("remove", "b"),
        ("create", "d"),
        ("create", "e"),
    ];
    assert_eq!(
        told,
        expected.map(|(action, name)| (action.to_owned(), name.to_owned())),
        "{lines:?}"
    );
    let indexes: Vec<u64> = events
        .iter()
        .map(|event| event["commitIndex"].as_u64().unwrap())
        .collect();
    assert!(indexes[0] > seen && indexes.is_sorted(), "{indexes:?} after {seen}");
    assert_eq!(
        events[1]["oldObject"]["service"]["spec"]["replicated"]["replicas"], 1,
        "a resumed update says what it changed from: {}",
        events[1]
    );

    // Past the last commit: refused, naming it.
    fails(
        &socket,
        &["watch", "--resume-after", "18446744073709551615"],
        "the last commit is",
    );
    // A restart begins at the last Raft snapshot: what came before it is
    // no longer kept, and the refusal says from where a watch may resume.
    ok(&socket, &["cluster", "update", "default", "--snapshot-interval", "2"]);
    for name in ["f", "g", "h", "i"] {
        ok(
            &socket,
            &["service", "create", "--name", name, "--image", "busybox:local"],
        );
    }
    assert!(daemon.signal_and_wait(2, Duration::from_secs(10)).success());
    let daemon = Daemon::start(&swarmd_binary(), &dir, "node-1").await;
    fails(
        &socket,
        &["watch", "--resume-after", &resume_after],
        "no longer kept (the oldest index a watch can resume after is",
    );
    assert!(daemon.signal_and_wait(2, Duration::from_secs(10)).success());
}

/// A watch a graceful stop ends is told where to go on only once the
/// requests in flight have made their changes: resumed there after the
/// restart, it misses none and gets none twice, even with a Raft snapshot
/// after every entry (what came before the last snapshot is no longer
/// kept for a resume after a restart; before the fix, a third of such
/// stops told an index from before changes that a snapshot then covered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_ended_by_a_stop_under_writes_resumes_after_the_restart() {
    const WRITERS: usize = 4;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node-1");
    let mut daemon = Daemon::start(&swarmd_binary(), &dir, "node-1").await;
    ok(
        &daemon.socket,
        &["cluster", "update", "default", "--snapshot-interval", "1"],
    );
    for round in 0..3 {
        let socket = daemon.socket.clone();
        let mut watch = start_watch(&socket, &[]);
        let watched = watched_lines(watch.stdout.take().expect("piped"));
        // Probes removed again: the next round makes them anew.
        probe_until_watched(&socket, root.path(), true, |name| {
            watched.lock().unwrap().iter().any(|line| line.ends_with(name))
        });
        let created = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let (socket, created) = (socket.clone(), Arc::clone(&created));
                std::thread::spawn(move || {
                    let mut acknowledged = Vec::new();
                    for n in 0.. {
                        let name = format!("r{round}-w{writer}-{n}");
                        let (code, _, _) = swarmctl(
                            &socket,
                            &["service", "create", "--name", &name, "--image", "busybox:local"],
                        );
                        if code != 0 {
                            return acknowledged;
                        }
                        acknowledged.push(name);
                        created.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    unreachable!("a writer creates until the stop")
                })
            })
            .collect();
        swarm_raft::testing::cluster::wait_for("some services created", || {
            (created.load(std::sync::atomic::Ordering::Relaxed) >= 3 * WRITERS).then_some(())
        })
        .await;
        assert!(daemon.signal_and_wait(2, Duration::from_secs(10)).success());
        let acknowledged: Vec<String> = writers
            .into_iter()
            .flat_map(|writer| writer.join().expect("a writer"))
            .collect();
        let output = watch.wait_with_output().expect("the watch ends with the manager");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let resume_after = stderr
            .split("--resume-after ")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .unwrap_or_else(|| panic!("round {round}: where to go on is not said: {stderr}"))
            .to_string();

        daemon = Daemon::start(&swarmd_binary(), &dir, "node-1").await;
        let mut resumed = start_watch(&daemon.socket, &["--resume-after", &resume_after]);
        let resumed_lines = watched_lines(resumed.stdout.take().expect("piped"));
        // Every acknowledged create, before the stop or after the resume;
        // none twice.
        let creates = |lines: &[String]| -> Vec<String> {
            lines
                .iter()
                .filter(|line| line.contains("\tcreate\tservice\t"))
                .filter_map(|line| line.rsplit('\t').next().map(str::to_string))
                .collect()
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let seen = loop {
            let mut seen = creates(&watched.lock().unwrap());
            seen.extend(creates(&resumed_lines.lock().unwrap()));
            if acknowledged.iter().all(|name| seen.contains(name)) {
                break seen;
            }
            if Instant::now() > deadline || resumed.try_wait().expect("the resumed watch").is_some() {
                resumed.kill().ok();
                let output = resumed.wait_with_output().expect("the resumed watch");
                panic!(
                    "round {round}: after --resume-after {resume_after}, acknowledged creates are missing from \
                     {seen:?} (acknowledged {acknowledged:?}); the resumed watch said: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        resumed.kill().expect("stop the resumed watch");
        resumed.wait().expect("the resumed watch");
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "round {round}: a create told twice: {seen:?}");
    }
    assert!(daemon.signal_and_wait(2, Duration::from_secs(10)).success());
}

/// A `swarmctl watch` whose reader stalls falls behind: past what it holds
/// (4 MiB), it lets go of the stream, and resumes by itself after the last
/// commit its output took once the reader is back, missing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_that_falls_behind_resumes_by_itself_and_misses_nothing() {
    use swarm_proto::v1::{Annotations, ConfigSpec, CreateConfigRequest};
    const WRITES: usize = 15_000;
    const CLIENTS: usize = 16;
    let root = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&swarmd_binary(), &root.path().join("node-1"), "node-1").await;
    // From the first commit on: no race with the writes below.
    let mut watch = start_watch(&daemon.socket, &["--kind", "config", "--resume-after", "0"]);
    // Its output is not read until every write is made: the pipe fills,
    // then what swarmctl holds (configs of 1 KiB fill it with fewer than
    // 4,000).
    let channel = swarm_tests::daemon::channel(&daemon.socket).await.unwrap();
    swarm_tests::daemon::write_concurrently(&channel, CLIENTS, WRITES, |mut control, n| async move {
        let spec = ConfigSpec {
            annotations: Some(Annotations {
                name: format!("c-{n}"),
                ..Default::default()
            }),
            data: vec![b'x'; 1024],
        };
        let request = CreateConfigRequest { spec: Some(spec) };
        control.create_config(request).await.unwrap();
        control
    })
    .await;

    let watched = watched_lines(watch.stdout.take().expect("piped"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let lines = loop {
        let lines = watched.lock().unwrap().clone();
        if lines.len() >= WRITES {
            break lines;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {WRITES} creates reported",
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    watch.kill().unwrap();
    let output = watch.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the watch fell behind; resuming after commit"),
        "it was never cut off, so this shows nothing: {stderr}"
    );
    let mut names = std::collections::BTreeSet::new();
    let mut last_index = 0;
    for line in &lines {
        // index, action, kind, id, name
        let columns: Vec<&str> = line.split('\t').collect();
        let index: u64 = columns[0].parse().expect("a commit index");
        assert!(index > last_index, "in order, none twice: {index} after {last_index}");
        last_index = index;
        assert_eq!(&columns[1..3], ["create", "config"], "{line}");
        assert!(names.insert(columns[4].to_owned()), "{line} twice");
    }
    assert_eq!(names.len(), WRITES, "every create reported");
    drop(daemon);
}

/// A watch whose reader stopped reading (`swarmctl watch | less`, left
/// alone) hears the manager stop within a second or so, rather than when
/// the reader goes: it exits 1 saying where to go on, the last commit it
/// printed (what it held unprinted comes again from there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_whose_output_stalled_hears_the_manager_stop() {
    use std::io::Read as _;
    use std::process::Stdio;
    let root = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&swarmd_binary(), &root.path().join("node-1"), "node-1").await;
    let mut watch = Command::new(workspace_binary("swarmctl"))
        .args(["-s", &daemon.socket.to_string_lossy(), "watch", "--kind", "config"])
        .args(["--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start swarmctl watch");
    // Configs of 100 KB, their data in each line: one fills the pipe,
    // which no one reads.
    let file = root.path().join("big.conf");
    std::fs::write(&file, "x".repeat(100_000)).unwrap();
    for n in 0..20 {
        ok(
            &daemon.socket,
            &["config", "create", &format!("c{n}"), &file.to_string_lossy()],
        );
    }
    let last = inspected(&daemon.socket, &["config", "inspect", "c19", "--format", "json"])["meta"]["version"]
        .as_u64()
        .expect("a version");
    assert!(daemon.signal_and_wait(2, Duration::from_secs(10)).success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = watch.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the watch did not end with the manager");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    watch.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    let (said, go_on_from) = stderr
        .trim_end()
        .rsplit_once("; to go on: --resume-after ")
        .and_then(|(said, index)| Some((said, index.strip_suffix(')')?.parse::<u64>().ok()?)))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert_eq!(
        said,
        format!(
            "Error: the manager is stopping (the output stalled: what came after commit {go_on_from} was not \
             printed, its last line perhaps cut short"
        )
    );
    // Not past what it printed: the last config never was.
    assert!(
        go_on_from < last,
        "--resume-after {go_on_from}, the last config at {last}"
    );
    let mut stdout = String::new();
    watch.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let printed: Vec<u64> = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .map(|line| line["commitIndex"].as_u64().expect("a commit index"))
        .collect();
    assert!(
        printed.iter().all(|&index| index <= go_on_from),
        "{printed:?} past {go_on_from}"
    );
}
