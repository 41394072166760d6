//! Validation of what a client asks to store, as SwarmKit's controlapi does
//! it. Every refusal is [`Error::InvalidArgument`] naming the field.

use swarm_proto::v1::{
    Annotations, ClusterSpec, ContainerSpec, EndpointSpec, HealthConfig, Mount, NodeAvailability, NodeMembership,
    NodeRole, NodeSpec, Placement, ResourceRequirements, Resources, RestartPolicy, ServiceSpec, UpdateConfig,
    endpoint_spec, mount, port_config, restart_policy, service_spec, task_spec, update_config,
};

use crate::error::{Error, Result};

/// A secret holds less than this, as in SwarmKit (`MaxSecretSize`).
pub(crate) const MAX_SECRET_BYTES: usize = 500 * 1024;
/// A config holds less than this, as in SwarmKit (`MaxConfigSize`).
pub(crate) const MAX_CONFIG_BYTES: usize = 1000 * 1024;

fn invalid(message: String) -> Error {
    Error::InvalidArgument(message)
}

/// Label keys that are not empty and hold no control characters (a tab
/// or a newline in a key would break every table and `key=value` line
/// that prints it); values may hold anything.
pub(crate) fn labels(field: &str, labels: &std::collections::HashMap<String, String>) -> Result<()> {
    for key in labels.keys() {
        if key.trim().is_empty() {
            return Err(invalid(format!("{field}: a label key is empty")));
        }
        if key.chars().any(char::is_control) {
            return Err(invalid(format!("{field}: label key {key:?} holds a control character")));
        }
        // As the docker CLI refuses them: no constraint could name it.
        if key.chars().any(char::is_whitespace) {
            return Err(invalid(format!("{field}: label key {key:?} holds whitespace")));
        }
    }
    Ok(())
}

/// A name: 1 to 63 characters, letters and digits with `-` or `_` inside
/// (a DNS label, as SwarmKit checks it), and labels as [`labels`] wants.
pub(crate) fn annotations(field: &str, annotations: Option<&Annotations>) -> Result<()> {
    if let Some(annotations) = annotations {
        labels(&format!("{field}.labels"), &annotations.labels)?;
    }
    let name = annotations.map_or("", |annotations| annotations.name.as_str());
    if name.is_empty() {
        return Err(invalid(format!("{field}.name is required")));
    }
    if name.len() > 63 {
        return Err(invalid(format!("{field}.name {name:?} is longer than 63 characters")));
    }
    let bytes = name.as_bytes();
    let inner_ok = bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_');
    let ends_ok = bytes[0].is_ascii_alphanumeric() && bytes[bytes.len() - 1].is_ascii_alphanumeric();
    if !inner_ok || !ends_ok {
        return Err(invalid(format!(
            "{field}.name {name:?} is not a valid name: letters and digits, with - or _ inside"
        )));
    }
    Ok(())
}

/// The longest duration a Go `time.Duration` holds (int64 nanoseconds,
/// about 292 years), as the Docker engine and SwarmKit read durations: a
/// longer one would be taken by the manager and fail at the engine. (It
/// is also well within protobuf's JSON mapping, about 10,000 years.)
const MAX_DURATION_SECONDS: i64 = i64::MAX / 1_000_000_000;

/// A duration that is not negative, and short enough to be written back.
fn non_negative(field: &str, duration: Option<&prost_types::Duration>) -> Result<()> {
    match duration {
        // Protobuf's own rule for a Duration, which a client that builds
        // one by hand may break: reading it as a sum would hide the fault.
        Some(duration)
            if duration.nanos.unsigned_abs() >= 1_000_000_000
                || (duration.seconds != 0 && duration.nanos != 0 && (duration.seconds < 0) != (duration.nanos < 0)) =>
        {
            Err(invalid(format!(
                "{field} is not a valid protobuf Duration ({}s and {} nanos): nanos must be within ±999999999 and \
                 have the sign of seconds",
                duration.seconds, duration.nanos
            )))
        }
        Some(duration) if duration.seconds < 0 || duration.nanos < 0 => {
            Err(invalid(format!("{field} must not be negative")))
        }
        Some(duration)
            if i128::from(duration.seconds) * 1_000_000_000 + i128::from(duration.nanos) > i128::from(i64::MAX) =>
        {
            Err(invalid(format!(
                "{field} is out of range: at most {MAX_DURATION_SECONDS}s (292 years, as Go's time.Duration)"
            )))
        }
        _ => Ok(()),
    }
}

/// A node's spec: its labels, a name if given (a node's spec rarely has
/// one), and role, membership and availability among those the API knows.
pub(crate) fn node_spec(spec: &NodeSpec) -> Result<()> {
    if let Some(annotations) = &spec.annotations {
        labels("spec.annotations.labels", &annotations.labels)?;
        if !annotations.name.is_empty() {
            self::annotations("spec.annotations", Some(annotations))?;
        }
    }
    known::<NodeRole>("spec.desired_role", spec.desired_role)?;
    known::<NodeMembership>("spec.membership", spec.membership)?;
    known::<NodeAvailability>("spec.availability", spec.availability)
}

/// An enum field holds a value of `E`: prost keeps whatever number it
/// decodes, which would be stored, and shown later as the default.
fn known<E: TryFrom<i32>>(field: &str, value: i32) -> Result<()> {
    match E::try_from(value) {
        Ok(_) => Ok(()),
        Err(_) => Err(invalid(format!("{field}: {value} is not a value the API knows"))),
    }
}

/// The most tasks a service may ask for at once, as SwarmKit's
/// `validateMode` bounds them: counts the orchestration reads as signed.
const MAX_TASK_COUNT: u64 = i64::MAX as u64;

/// A service spec, whole.
pub(crate) fn service_spec(spec: &ServiceSpec) -> Result<()> {
    annotations("spec.annotations", spec.annotations.as_ref())?;
    let task = spec
        .task
        .as_deref()
        .ok_or_else(|| invalid("spec.task is required".into()))?;
    match &task.runtime {
        Some(task_spec::Runtime::Container(container)) => container_spec(container)?,
        None => return Err(invalid("spec.task.container is required".into())),
    }
    if let Some(restart) = &task.restart {
        restart_policy("spec.task.restart", restart)?;
    }
    if let Some(placement) = &task.placement {
        self::placement(placement)?;
    }
    if let Some(resources) = &task.resources {
        self::resources(resources)?;
    }
    if task.placement.as_ref().is_some_and(|p| p.max_replicas > 0)
        && !matches!(spec.mode, Some(service_spec::Mode::Replicated(_)))
    {
        return Err(invalid(
            "spec.task.placement.max_replicas applies to replicated services only".into(),
        ));
    }
    // As SwarmKit's `validateJob`: a job's tasks run to completion, and
    // are never replaced in rolling steps.
    let job = matches!(
        spec.mode,
        Some(service_spec::Mode::ReplicatedJob(_) | service_spec::Mode::GlobalJob(_))
    );
    if job && spec.update.is_some() {
        return Err(invalid("spec.update: a job takes no update config".into()));
    }
    let counts: &[(&str, u64)] = match &spec.mode {
        Some(service_spec::Mode::Replicated(replicated)) => &[("spec.mode.replicated.replicas", replicated.replicas)],
        Some(service_spec::Mode::ReplicatedJob(job)) => &[
            ("spec.mode.replicated_job.max_concurrent", job.max_concurrent),
            ("spec.mode.replicated_job.total_completions", job.total_completions),
        ],
        _ => &[],
    };
    if let Some((field, count)) = counts.iter().find(|(_, count)| *count > MAX_TASK_COUNT) {
        return Err(invalid(format!("{field}: {count} is more than {MAX_TASK_COUNT}")));
    }
    if let Some(service_spec::Mode::ReplicatedJob(job)) = &spec.mode
        && job.max_concurrent == 0
        && job.total_completions > 0
    {
        return Err(invalid(
            "spec.mode.replicated_job.max_concurrent must be at least 1: a job that runs no task at once never completes"
                .into(),
        ));
    }
    for (field, update) in [("spec.update", &spec.update), ("spec.rollback", &spec.rollback)] {
        if let Some(update) = update {
            update_config(field, update)?;
        }
    }
    if spec
        .rollback
        .as_ref()
        .is_some_and(|rollback| rollback.failure_action() == update_config::FailureAction::Rollback)
    {
        return Err(invalid(
            "spec.rollback.failure_action: a rollback that fails cannot roll back (pause or continue)".into(),
        ));
    }
    if let Some(endpoint) = &spec.endpoint {
        self::endpoint(endpoint)?;
    }
    Ok(())
}

fn container_spec(container: &ContainerSpec) -> Result<()> {
    if container.image.trim().is_empty() {
        return Err(invalid("spec.task.container.image is required".into()));
    }
    labels("spec.task.container.labels", &container.labels)?;
    super::image_reference::check(&container.image)
        .map_err(|why| invalid(format!("spec.task.container.image {:?}: {why}", container.image)))?;
    if let Some(entry) = container
        .env
        .iter()
        .find(|entry| !entry.contains('=') || entry.starts_with('='))
    {
        return Err(invalid(format!(
            "spec.task.container.env entry {entry:?} is not KEY=VALUE"
        )));
    }
    // Each becomes a C string of the process the engine starts (a word,
    // a variable, a path), which ends at a NUL: the engine would refuse
    // the task, or run something else than asked.
    let one = std::slice::from_ref;
    for (field, values) in [
        ("command", &container.command[..]),
        ("args", &container.args),
        ("env", &container.env),
        ("user", one(&container.user)),
        ("dir", one(&container.dir)),
        ("hostname", one(&container.hostname)),
    ] {
        if let Some(value) = values.iter().find(|value| value.contains('\0')) {
            return Err(invalid(format!(
                "spec.task.container.{field} {value:?} holds a NUL character"
            )));
        }
    }
    if container.command.first().is_some_and(String::is_empty) {
        return Err(invalid(
            "spec.task.container.command: its first word, the program, is empty".into(),
        ));
    }
    non_negative(
        "spec.task.container.stop_grace_period",
        container.stop_grace_period.as_ref(),
    )?;
    if !container.dir.is_empty() && !container.dir.starts_with('/') {
        return Err(invalid(format!(
            "spec.task.container.dir {:?} is not an absolute path",
            container.dir
        )));
    }
    if !container.stop_signal.is_empty() && !stop_signal(&container.stop_signal) {
        return Err(invalid(format!(
            "spec.task.container.stop_signal {:?} is not a signal: a name such as SIGTERM or TERM, or a number from 1 to 64",
            container.stop_signal
        )));
    }
    if let Some(health) = &container.healthcheck {
        healthcheck(health)?;
    }
    let secrets = container.secrets.iter().map(|r| FileReference {
        id: &r.secret_id,
        name: &r.secret_name,
        target: &r.target,
        mode: r.mode,
    });
    let secret_files = references("secret", secrets, |target| file_under(SECRETS_DIR, target))?;
    let configs = container.configs.iter().map(|r| FileReference {
        id: &r.config_id,
        name: &r.config_name,
        target: &r.target,
        mode: r.mode,
    });
    let config_files = references("config", configs, |target| file_under("", target))?;
    if let Some((file, named)) = config_files.iter().find(|(file, _)| secret_files.contains_key(*file)) {
        return Err(invalid(format!(
            "spec.task.container.configs: {named} would be the file {file:?}, which {} is",
            secret_files[file]
        )));
    }
    mounts(&container.mounts)
}

/// Whether `signal` names a Linux signal as the engine takes one: a number
/// from 1 to 64, or a name with or without `SIG` (`SIGRTMIN+3` too).
fn stop_signal(signal: &str) -> bool {
    // The names of moby's `SignalMap` for Linux.
    const NAMES: [&str; 34] = [
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "IOT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE",
        "ALRM", "TERM", "STKFLT", "CHLD", "CLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ",
        "VTALRM", "PROF", "WINCH", "IO", "POLL", "PWR", "SYS",
    ];
    if let Ok(number) = signal.parse::<u32>() {
        return (1..=64).contains(&number);
    }
    let name = signal.to_ascii_uppercase();
    let name = name.strip_prefix("SIG").unwrap_or(&name);
    // The real-time signals as moby names them: RTMIN, RTMIN+1 to +15,
    // RTMAX-14 to -1, RTMAX.
    let offset = |rest: &str, sign: char, most: u32| {
        rest.is_empty()
            || rest
                .strip_prefix(sign)
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| (1..=most).contains(&n))
    };
    NAMES.contains(&name)
        || name.strip_prefix("RTMIN").is_some_and(|rest| offset(rest, '+', 15))
        || name.strip_prefix("RTMAX").is_some_and(|rest| offset(rest, '-', 14))
}

/// Mounts, as SwarmKit's `validateMounts`: each at its own absolute target;
/// a bind mount's source an absolute path, a tmpfs mount's none.
fn mounts(mounts: &[Mount]) -> Result<()> {
    let mut targets = std::collections::HashSet::new();
    for mount in mounts {
        let field = "spec.task.container.mounts";
        known::<mount::Type>(&format!("{field}.type"), mount.r#type)?;
        if !mount.target.starts_with('/') {
            return Err(invalid(format!(
                "{field}: target {:?} is not an absolute path",
                mount.target
            )));
        }
        // One target, however spelled (`/data/.`, `//data`).
        let target = swarm_proto::clean_path(&mount.target);
        if target == "/" {
            return Err(invalid(format!(
                "{field}: target {:?} is the container's root, which no mount may replace",
                mount.target
            )));
        }
        if !targets.insert(target) {
            return Err(invalid(format!(
                "{field}: two mounts share the target {:?}",
                mount.target
            )));
        }
        match mount.r#type() {
            mount::Type::Bind if !mount.source.starts_with('/') => {
                return Err(invalid(format!(
                    "{field}: bind mount source {:?} is not an absolute path",
                    mount.source
                )));
            }
            // Docker's volume names; a path here is a bind mount written
            // without `type=bind`.
            mount::Type::Volume
                if !mount.source.is_empty()
                    && (!mount.source.starts_with(|c: char| c.is_ascii_alphanumeric())
                        || !mount
                            .source
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))) =>
            {
                return Err(invalid(format!(
                    "{field}: volume name {:?} is not letters, digits, '_', '.' or '-' (a path needs type=bind)",
                    mount.source
                )));
            }
            mount::Type::Tmpfs if !mount.source.is_empty() => {
                return Err(invalid(format!(
                    "{field}: tmpfs mount at {:?} takes no source",
                    mount.target
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The smallest CPU and memory figures SwarmKit's `validateResources`
/// accepts (0 means none): Docker refuses less.
const MIN_NANO_CPUS: i64 = 1_000_000;
const MIN_MEMORY_BYTES: i64 = 4 * 1024 * 1024;

/// Limits and reservations: none negative, none set below what a container
/// can run with, no reservation above its limit.
fn resources(resources: &ResourceRequirements) -> Result<()> {
    let none = Resources::default();
    let limits = resources.limits.as_ref().unwrap_or(&none);
    let reservations = resources.reservations.as_ref().unwrap_or(&none);
    for (field, r) in [("limits", limits), ("reservations", reservations)] {
        let field = format!("spec.task.resources.{field}");
        if r.nano_cpus < 0 || r.memory_bytes < 0 {
            return Err(invalid(format!("{field} must not be negative")));
        }
        if r.nano_cpus != 0 && r.nano_cpus < MIN_NANO_CPUS {
            return Err(invalid(format!("{field}.nano_cpus must be at least 0.001 CPUs")));
        }
        if r.memory_bytes != 0 && r.memory_bytes < MIN_MEMORY_BYTES {
            return Err(invalid(format!("{field}.memory_bytes must be at least 4 MiB")));
        }
    }
    for (field, reserved, limit) in [
        ("nano_cpus", reservations.nano_cpus, limits.nano_cpus),
        ("memory_bytes", reservations.memory_bytes, limits.memory_bytes),
    ] {
        if limit > 0 && reserved > limit {
            return Err(invalid(format!(
                "spec.task.resources.reservations.{field} ({reserved}) must not exceed spec.task.resources.limits.{field} ({limit})"
            )));
        }
    }
    Ok(())
}

/// A secret or config reference, as [`references`] checks it.
struct FileReference<'a> {
    id: &'a str,
    name: &'a str,
    target: &'a str,
    mode: Option<u32>,
}

/// Where a container finds its secrets: a relative target is under it.
const SECRETS_DIR: &str = "/run/secrets";

/// The file a target names in the container, as the engine places it
/// (moby's `getSecretTargetPath` and `getConfigTargetPath`): an absolute
/// target as it is, a relative one under `dir` (a config's under `/`).
fn file_under(dir: &str, target: &str) -> String {
    if target.starts_with('/') {
        target.to_string()
    } else {
        format!("{dir}/{target}")
    }
}

/// A container's secret or config references, as SwarmKit's
/// `validateSecretRefsSpec`: each names an object and a target
/// (`file_of` gives the file it names), with no `..` (a relative target
/// would leave where it is mounted), naming a file rather than a
/// directory, no two the same file however spelled, and a mode holds only
/// permission bits. Returns each file, with what is there.
fn references<'a>(
    kind: &str,
    references: impl Iterator<Item = FileReference<'a>>,
    file_of: impl Fn(&str) -> String,
) -> Result<std::collections::BTreeMap<String, String>> {
    let field = format!("spec.task.container.{kind}s");
    let mut files = std::collections::BTreeMap::new();
    for FileReference { id, name, target, mode } in references {
        if id.is_empty() {
            return Err(invalid(format!("{field}: a reference names no ID")));
        }
        let named = match name {
            "" => format!("{kind} {id}"),
            name => format!("{kind} {name:?}"),
        };
        if target.is_empty() || target.split('/').any(|part| part == "..") {
            return Err(invalid(format!(
                "{field}: target {target:?} of {named} must be a path without \"..\""
            )));
        }
        let file = file_of(target);
        // `/etc/`, `/tmp/.`, `.`: a directory, which a file cannot replace.
        if matches!(target.rsplit('/').next(), Some("" | ".")) {
            return Err(invalid(format!(
                "{field}: target {target:?} of {named} names a directory: it must name a file"
            )));
        }
        if let Some(mode) = mode.filter(|mode| *mode > 0o777) {
            return Err(invalid(format!(
                "{field}: mode {mode:#o} of {named} is not a file mode (0 to 0o777)"
            )));
        }
        if files.insert(swarm_proto::clean_path(&file), named).is_some() {
            return Err(invalid(format!("{field}: two references share the target {target:?}")));
        }
    }
    Ok(files)
}

/// The shortest health check period Docker accepts (0 means its default).
const MIN_HEALTH_PERIOD_NANOS: i128 = 1_000_000;

fn healthcheck(health: &HealthConfig) -> Result<()> {
    for (name, period) in [
        ("interval", &health.interval),
        ("timeout", &health.timeout),
        ("start_period", &health.start_period),
    ] {
        let field = format!("spec.task.container.healthcheck.{name}");
        non_negative(&field, period.as_ref())?;
        let nanos = period
            .as_ref()
            .map_or(0, |d| i128::from(d.seconds) * 1_000_000_000 + i128::from(d.nanos));
        if nanos != 0 && nanos < MIN_HEALTH_PERIOD_NANOS {
            return Err(invalid(format!("{field} must be 0 or at least 1ms")));
        }
    }
    if health.retries < 0 {
        return Err(invalid(
            "spec.task.container.healthcheck.retries must not be negative".into(),
        ));
    }
    health_test(&health.test)
}

/// A health check's test as the engine runs one: none (the image's),
/// `NONE` (none at all), `CMD` and the program's words, or `CMD-SHELL`
/// and one command for the shell.
fn health_test(test: &[String]) -> Result<()> {
    let bad = |why: &str| Err(invalid(format!("spec.task.container.healthcheck.test {test:?}: {why}")));
    if test.iter().any(|word| word.contains('\0')) {
        return bad("a word holds a NUL character");
    }
    match test {
        [] => Ok(()),
        [kind, rest @ ..] => match (kind.as_str(), rest) {
            ("NONE", []) => Ok(()),
            ("NONE", _) => bad("NONE takes nothing after it"),
            ("CMD", [program, ..]) if !program.is_empty() => Ok(()),
            ("CMD", _) => bad("CMD takes the program and its arguments after it"),
            ("CMD-SHELL", [command]) if !command.is_empty() => Ok(()),
            ("CMD-SHELL", _) => bad("CMD-SHELL takes one command for the shell after it"),
            _ => bad("it starts with NONE, CMD or CMD-SHELL"),
        },
    }
}

fn restart_policy(field: &str, restart: &RestartPolicy) -> Result<()> {
    known::<restart_policy::Condition>(&format!("{field}.condition"), restart.condition)?;
    non_negative(&format!("{field}.delay"), restart.delay.as_ref())?;
    non_negative(&format!("{field}.window"), restart.window.as_ref())
}

fn update_config(field: &str, update: &UpdateConfig) -> Result<()> {
    known::<update_config::FailureAction>(&format!("{field}.failure_action"), update.failure_action)?;
    known::<update_config::Order>(&format!("{field}.order"), update.order)?;
    non_negative(&format!("{field}.delay"), update.delay.as_ref())?;
    non_negative(&format!("{field}.monitor"), update.monitor.as_ref())?;
    if !(0.0..=1.0).contains(&update.max_failure_ratio) {
        return Err(invalid(format!(
            "{field}.max_failure_ratio {} is not between 0 and 1",
            update.max_failure_ratio
        )));
    }
    Ok(())
}

/// Published ports: valid numbers, no published port given twice for one
/// protocol, and none through the routing mesh of a DNS round-robin
/// service (it has no virtual IP to route to), as SwarmKit's
/// `validateEndpointSpec`.
fn endpoint(endpoint: &EndpointSpec) -> Result<()> {
    known::<endpoint_spec::ResolutionMode>("spec.endpoint.mode", endpoint.mode)?;
    let mut published = std::collections::HashSet::new();
    for port in &endpoint.ports {
        known::<port_config::Protocol>("spec.endpoint.ports.protocol", port.protocol)?;
        known::<port_config::PublishMode>("spec.endpoint.ports.publish_mode", port.publish_mode)?;
        let pair = format!("{}:{}", port.published_port, port.target_port);
        if port.target_port == 0 || port.target_port > 65535 || port.published_port > 65535 {
            return Err(invalid(format!("spec.endpoint.ports: {pair} is not a valid port pair")));
        }
        let ingress = port.publish_mode() == port_config::PublishMode::Ingress;
        if ingress && endpoint.mode() == endpoint_spec::ResolutionMode::Dnsrr {
            return Err(invalid(format!(
                "spec.endpoint.ports: {pair} is published through the ingress mesh, which a dnsrr service cannot use"
            )));
        }
        if port.published_port != 0 && !published.insert((port.published_port, port.protocol)) {
            return Err(invalid(format!(
                "spec.endpoint.ports: published port {}/{} is given twice",
                port.published_port,
                protocol_name(port.protocol)
            )));
        }
    }
    Ok(())
}

/// A port's protocol as messages name it: `tcp`, `udp`, `sctp`.
pub(crate) fn protocol_name(protocol: i32) -> String {
    let protocol = port_config::Protocol::try_from(protocol).unwrap_or_default();
    protocol
        .as_str_name()
        .trim_start_matches("PROTOCOL_")
        .to_ascii_lowercase()
}

fn placement(placement: &Placement) -> Result<()> {
    for expression in &placement.constraints {
        constraint(expression)
            .map_err(|why| invalid(format!("spec.task.placement.constraints: {expression:?}: {why}")))?;
    }
    for preference in &placement.preferences {
        let descriptor = preference.spread.as_ref().map_or("", |s| s.spread_descriptor.as_str());
        if !node_attribute(descriptor) {
            return Err(invalid(format!(
                "spec.task.placement.preferences: cannot spread over {descriptor:?}: not a node attribute such as node.labels.zone"
            )));
        }
    }
    Ok(())
}

/// A key of a node that constraints compare and preferences spread over:
/// its attributes and prefixes taken whatever their case, as SwarmKit
/// does, and a label name of letters, digits, `-`, `_` and `.` (SwarmKit's
/// key pattern: `node.labels.a=` is no key).
fn node_attribute(key: &str) -> bool {
    let known = [
        "node.id",
        "node.hostname",
        "node.role",
        "node.platform.os",
        "node.platform.arch",
    ];
    let lower = key.to_ascii_lowercase();
    let label = ["node.labels.", "engine.labels."].iter().any(|prefix| {
        lower.strip_prefix(prefix).is_some_and(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        })
    });
    known.contains(&lower.as_str()) || label
}

/// A placement constraint: `<key> == <value>` or `<key> != <value>`, where
/// the key is `node.id`, `node.hostname`, `node.role`, `node.platform.os`,
/// `node.platform.arch`, `node.labels.<label>` or `engine.labels.<label>`.
pub(crate) fn constraint(expression: &str) -> Result<(), String> {
    let (key, value) = match (expression.split_once("=="), expression.split_once("!=")) {
        (Some(pair), None) | (None, Some(pair)) => pair,
        _ => return Err("expected exactly one == or !=".into()),
    };
    let (key, value) = (key.trim(), value.trim());
    if value.is_empty() {
        return Err("the value is empty".into());
    }
    // SwarmKit's value pattern: no `=` or `!` in a value, so that an
    // expression reads one way only (`a==1==2` is refused, not `a` == `1==2`).
    if let Some(bad) = value.chars().find(|&c| !constraint_value_char(c)) {
        return Err(format!(
            "the value {value:?} holds {bad:?}: a value is letters, digits, spaces and : - _ . * ( ) ? + [ ] \\ ^ $ | /"
        ));
    }
    if !node_attribute(key) {
        return Err(format!("unknown key {key:?}"));
    }
    if key.eq_ignore_ascii_case("node.role") && !["manager", "worker"].contains(&value) {
        return Err(format!("node.role is manager or worker, not {value:?}"));
    }
    Ok(())
}

/// Whether `c` may appear in a constraint's value (SwarmKit's `valuePattern`).
fn constraint_value_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c.is_ascii_whitespace() || ":-_.*()?+[]\\^$|/".contains(c)
}

/// The shortest node certificate lifetime a cluster may ask for (SwarmKit's
/// `ca.MinNodeCertExpiration`).
const MIN_NODE_CERT_EXPIRY: prost_types::Duration = prost_types::Duration {
    seconds: 3600,
    nanos: 0,
};

/// The shortest period between a node's heartbeats: SwarmKit has none,
/// and a nanosecond would have every agent call the dispatcher without
/// pause; a tenth of a second still finds a dead node within a second.
const MIN_HEARTBEAT_PERIOD: prost_types::Duration = prost_types::Duration {
    seconds: 0,
    nanos: 100_000_000,
};

/// A cluster spec, whole, as SwarmKit's `validateClusterSpec` and a little
/// more: no negative period, a heartbeat period of at least 100ms, a
/// certificate lifetime of at least an hour,
/// and Raft timing that can elect a leader. A negative task history limit
/// is taken: as in SwarmKit and Docker's API, it keeps every finished task.
pub(crate) fn cluster_spec(spec: &ClusterSpec) -> Result<()> {
    annotations("spec.annotations", spec.annotations.as_ref())?;
    if let Some(dispatcher) = &spec.dispatcher {
        let period = dispatcher.heartbeat_period.as_ref();
        non_negative("spec.dispatcher.heartbeat_period", period)?;
        if let Some(period) = period
            && (period.seconds, period.nanos) < (MIN_HEARTBEAT_PERIOD.seconds, MIN_HEARTBEAT_PERIOD.nanos)
        {
            return Err(invalid(
                "spec.dispatcher.heartbeat_period must be at least 100ms: every node reports this often".into(),
            ));
        }
    }
    let expiry = spec.ca_config.as_ref().and_then(|ca| ca.node_cert_expiry.as_ref());
    non_negative("spec.ca_config.node_cert_expiry", expiry)?;
    if let Some(expiry) = expiry
        && (expiry.seconds, expiry.nanos) < (MIN_NODE_CERT_EXPIRY.seconds, MIN_NODE_CERT_EXPIRY.nanos)
    {
        return Err(invalid("spec.ca_config.node_cert_expiry must be at least 1h".into()));
    }
    if let Some(raft) = &spec.raft {
        if raft.snapshot_interval == 0 {
            return Err(invalid("spec.raft.snapshot_interval must be at least 1".into()));
        }
        non_negative("spec.raft.tick", raft.tick.as_ref())?;
        if raft.heartbeat_tick > 0 && raft.election_tick > 0 && raft.election_tick <= raft.heartbeat_tick {
            return Err(invalid(format!(
                "spec.raft.election_tick ({}) must be greater than spec.raft.heartbeat_tick ({})",
                raft.election_tick, raft.heartbeat_tick
            )));
        }
    }
    if let Some(restart) = spec
        .task_defaults
        .as_ref()
        .and_then(|defaults| defaults.restart.as_ref())
    {
        restart_policy("spec.task_defaults.restart", restart)?;
    }
    Ok(())
}

/// Whether two service modes are of one kind: a service cannot move
/// between replicated, global and the job modes (SwarmKit refuses it too,
/// as Unimplemented; we answer InvalidArgument naming the field, as for
/// every spec we refuse).
pub(crate) fn same_mode_kind(a: Option<&service_spec::Mode>, b: Option<&service_spec::Mode>) -> bool {
    a.map(std::mem::discriminant) == b.map(std::mem::discriminant)
}

/// A secret's or config's name: as a service's, but up to 64 characters
/// and dots allowed inside (`app.conf`), as SwarmKit checks it.
fn data_name(annotations: Option<&Annotations>) -> Result<()> {
    if let Some(annotations) = annotations {
        labels("spec.annotations.labels", &annotations.labels)?;
    }
    let name = annotations.map_or("", |annotations| annotations.name.as_str());
    let bytes = name.as_bytes();
    let valid = !name.is_empty()
        && name.len() <= 64
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric();
    if valid {
        Ok(())
    } else {
        Err(invalid(format!(
            "spec.annotations.name {name:?} is not a valid name: 1 to 64 letters and digits, with - _ or . inside"
        )))
    }
}

/// A secret's or config's name and data.
pub(crate) fn secret_or_config(kind: &str, annotations: Option<&Annotations>, data: &[u8], max: usize) -> Result<()> {
    data_name(annotations)?;
    if data.is_empty() {
        return Err(invalid(format!("spec.data is required: a {kind} holds data")));
    }
    if data.len() >= max {
        return Err(invalid(format!(
            "spec.data is {} bytes; a {kind} must hold under {max} ({} KiB)",
            data.len(),
            max / 1024
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarm_proto::v1::ReplicatedJob;

    fn named(name: &str) -> Option<Annotations> {
        Some(Annotations {
            name: name.into(),
            ..Default::default()
        })
    }

    #[test]
    fn label_keys_must_be_printable() {
        let with = |key: &str| std::collections::HashMap::from([(key.to_string(), "v".to_string())]);
        assert!(labels("l", &with("tier")).is_ok());
        assert!(labels("l", &with("zoné")).is_ok(), "unicode is fine");
        for bad in ["", "  ", "a\nb", "a\tb", "\u{7f}", " a b ", "a b"] {
            let err = labels("spec.annotations.labels", &with(bad)).expect_err(bad);
            assert!(err.to_string().starts_with("spec.annotations.labels: "), "{err}");
        }
        let values = std::collections::HashMap::from([("cert".to_string(), "line 1\nline 2".to_string())]);
        assert!(labels("l", &values).is_ok(), "values may hold anything");
    }

    #[test]
    fn names_are_dns_labels_of_at_most_63_characters() {
        assert!(annotations("spec.annotations", named("web").as_ref()).is_ok());
        assert!(annotations("spec.annotations", named("web_1-a").as_ref()).is_ok());
        for bad in ["", "-web", "web-", "we b", "wéb", &"a".repeat(64)] {
            let err = annotations("spec.annotations", named(bad).as_ref()).unwrap_err();
            assert!(err.to_string().contains("spec.annotations.name"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn stop_signals_are_linux_signals() {
        for good in [
            "SIGTERM",
            "TERM",
            "sigquit",
            "9",
            "64",
            "SIGRTMIN+3",
            "RTMAX-1",
            "SIGRTMIN",
            "SIGSYS",
            "POLL",
            "RTMIN+15",
            "RTMAX-14",
        ] {
            assert!(stop_signal(good), "{good}");
        }
        for bad in [
            "SIGBOGUS",
            "0",
            "65",
            "999",
            "SIG",
            "",
            "SIGRTMIN+16",
            "RTMAX-15",
            "RTMIN+0",
            "RTMIN3",
            "RTMIN-1",
            "-9",
        ] {
            assert!(!stop_signal(bad), "{bad}");
        }
    }

    #[test]
    fn a_relative_workdir_and_a_bogus_stop_signal_are_refused() {
        let refused = refusal(|spec| container(spec).dir = "relative/dir".into()).expect("refused");
        assert!(refused.contains("spec.task.container.dir"), "{refused}");
        assert!(refusal(|spec| container(spec).dir = "/srv".into()).is_none());
        let refused = refusal(|spec| container(spec).stop_signal = "SIGBOGUS".into()).expect("refused");
        assert!(refused.contains("spec.task.container.stop_signal"), "{refused}");
        assert!(refusal(|spec| container(spec).stop_signal = "SIGINT".into()).is_none());
        let refused = refusal(|spec| {
            container(spec).stop_grace_period = Some(prost_types::Duration {
                seconds: 35_999_996_400,
                nanos: 0,
            })
        })
        .expect("refused");
        assert!(refused.contains("292 years"), "{refused}");
        // The last nanosecond Go's time.Duration holds, and the next.
        let period = |seconds, nanos| {
            refusal(|spec| container(spec).stop_grace_period = Some(prost_types::Duration { seconds, nanos }))
        };
        assert!(period(9_223_372_036, 854_775_807).is_none());
        assert!(period(9_223_372_036, 854_775_808).is_some());
    }

    #[test]
    fn constraints_follow_the_grammar() {
        for good in [
            "node.labels.zone == a",
            "node.role!=manager",
            "engine.labels.os == linux",
            "node.hostname==n1",
            "node.labels.path == /srv/data-1:ro",
            "node.labels.re == a(b|c)*[0-9]?+^$",
            "Node.Labels.zone == a",
            "NODE.ROLE == manager",
        ] {
            assert!(constraint(good).is_ok(), "{good}");
        }
        for bad in [
            "node.labels.zone = a",
            "zone == a",
            "node.labels. == a",
            "node.role == boss",
            "node.id ==",
            "a == b == c",
            "node.labels.a==1==2",
            "node.labels.a==1!=2",
            "node.labels.a==x;y",
            "node.labels.k=!=b",
            "node.labels.a b == c",
        ] {
            assert!(constraint(bad).is_err(), "{bad}");
        }
    }

    /// `spec` changed by `change`, then validated: the refusal's message,
    /// or `None` if it passed.
    fn refusal(change: impl FnOnce(&mut ServiceSpec)) -> Option<String> {
        let mut spec = ServiceSpec::container("web", "busybox");
        spec.mode = Some(service_spec::Mode::Replicated(Default::default()));
        change(&mut spec);
        service_spec(&spec).err().map(|err| err.to_string())
    }

    fn task(spec: &mut ServiceSpec) -> &mut swarm_proto::v1::TaskSpec {
        swarm_proto::Shared::make_mut(spec.task.as_mut().unwrap())
    }

    fn container(spec: &mut ServiceSpec) -> &mut ContainerSpec {
        let Some(task_spec::Runtime::Container(container)) = task(spec).runtime.as_mut() else {
            unreachable!("a container spec")
        };
        container
    }

    fn mount(kind: mount::Type, source: &str, target: &str) -> Mount {
        Mount {
            r#type: kind.into(),
            source: source.into(),
            target: target.into(),
            read_only: false,
        }
    }

    #[test]
    fn mounts_are_checked_as_swarmkit_does() {
        let with_mounts = |mounts: Vec<Mount>| refusal(|spec| container(spec).mounts = mounts);
        assert_eq!(with_mounts(vec![mount(mount::Type::Bind, "/srv", "/data")]), None);
        assert_eq!(with_mounts(vec![mount(mount::Type::Volume, "cache", "/cache")]), None);
        assert_eq!(with_mounts(vec![mount(mount::Type::Tmpfs, "", "/tmp")]), None);
        for (bad, says) in [
            (
                vec![mount(mount::Type::Volume, "v", "relative")],
                "not an absolute path",
            ),
            (vec![mount(mount::Type::Bind, "srv", "/data")], "bind mount source"),
            (vec![mount(mount::Type::Bind, "/srv", "/")], "the container's root"),
            (vec![mount(mount::Type::Tmpfs, "", "/./")], "the container's root"),
            (vec![mount(mount::Type::Tmpfs, "", "/tmp/..")], "the container's root"),
            (
                vec![
                    mount(mount::Type::Volume, "a", "/d"),
                    mount(mount::Type::Volume, "b", "//d/."),
                ],
                "share the target",
            ),
            (vec![mount(mount::Type::Tmpfs, "x", "/tmp")], "takes no source"),
            (
                vec![mount(mount::Type::Volume, "/srv", "/data")],
                "a path needs type=bind",
            ),
            (
                vec![
                    mount(mount::Type::Volume, "a", "/d"),
                    mount(mount::Type::Volume, "b", "/d/"),
                ],
                "share the target",
            ),
        ] {
            let err = with_mounts(bad).expect("refused");
            assert!(
                err.contains("spec.task.container.mounts") && err.contains(says),
                "{err}"
            );
        }
    }

    #[test]
    fn resources_are_at_least_what_a_container_needs_and_reservations_fit_limits() {
        let with = |limits: Resources, reservations: Resources| {
            refusal(|spec| {
                task(spec).resources = Some(ResourceRequirements {
                    limits: Some(limits),
                    reservations: Some(reservations),
                })
            })
        };
        let r = |nano_cpus, memory_bytes| Resources {
            nano_cpus,
            memory_bytes,
            ..Default::default()
        };
        assert_eq!(with(r(500_000_000, 64 << 20), r(250_000_000, 32 << 20)), None);
        assert_eq!(with(r(0, 0), r(2_000_000_000, 0)), None, "no limit: any reservation");
        for (limits, reservations, says) in [
            (r(-1, 0), r(0, 0), "limits must not be negative"),
            (r(999_999, 0), r(0, 0), "limits.nano_cpus must be at least"),
            (
                r(0, 0),
                r(0, 1 << 20),
                "reservations.memory_bytes must be at least 4 MiB",
            ),
            (
                r(500_000_000, 0),
                r(600_000_000, 0),
                "reservations.nano_cpus (600000000) must not exceed spec.task.resources.limits.nano_cpus (500000000)",
            ),
            (
                r(0, 8 << 20),
                r(0, 16 << 20),
                "reservations.memory_bytes (16777216) must not exceed spec.task.resources.limits.memory_bytes (8388608)",
            ),
        ] {
            let err = with(limits, reservations).expect("refused");
            assert!(err.contains(says), "{err}");
        }
    }

    #[test]
    fn ports_are_published_once_and_never_through_the_mesh_of_a_dnsrr_service() {
        let port = |published, target, mode: port_config::PublishMode| swarm_proto::v1::PortConfig {
            published_port: published,
            target_port: target,
            publish_mode: mode.into(),
            ..Default::default()
        };
        let with = |mode: endpoint_spec::ResolutionMode, ports| {
            refusal(|spec| {
                spec.endpoint = Some(EndpointSpec {
                    mode: mode.into(),
                    ports,
                })
            })
        };
        let (vip, dnsrr) = (endpoint_spec::ResolutionMode::Vip, endpoint_spec::ResolutionMode::Dnsrr);
        let (ingress, host) = (port_config::PublishMode::Ingress, port_config::PublishMode::Host);
        assert_eq!(
            with(
                vip,
                vec![port(8080, 80, ingress), port(0, 80, ingress), port(0, 81, ingress)]
            ),
            None
        );
        assert_eq!(with(dnsrr, vec![port(8080, 80, host)]), None);
        let err = with(vip, vec![port(8080, 80, ingress), port(8080, 81, ingress)]).expect("refused");
        assert!(err.contains("published port 8080/tcp is given twice"), "{err}");
        let err = with(dnsrr, vec![port(8080, 80, ingress)]).expect("refused");
        assert!(err.contains("dnsrr"), "{err}");
        let err = with(vip, vec![port(8080, 0, ingress)]).expect("refused");
        assert!(err.contains("not a valid port pair"), "{err}");
    }

    /// A number no enum value has is refused, naming the field, rather
    /// than stored and shown as the default.
    #[test]
    fn enum_fields_take_only_values_the_api_knows() {
        type Change = fn(&mut ServiceSpec);
        let cases: [(&str, Change); 7] = [
            ("spec.task.container.mounts.type: 7", |spec| {
                container(spec).mounts = vec![Mount {
                    r#type: 7,
                    target: "/a".into(),
                    ..Default::default()
                }]
            }),
            ("spec.task.restart.condition: 9", |spec| {
                task(spec).restart = Some(RestartPolicy {
                    condition: 9,
                    ..Default::default()
                })
            }),
            ("spec.update.failure_action: 9", |spec| {
                spec.update = Some(UpdateConfig {
                    failure_action: 9,
                    ..Default::default()
                })
            }),
            ("spec.rollback.order: -1", |spec| {
                spec.rollback = Some(UpdateConfig {
                    order: -1,
                    ..Default::default()
                })
            }),
            ("spec.endpoint.mode: 9", |spec| {
                spec.endpoint = Some(EndpointSpec {
                    mode: 9,
                    ..Default::default()
                })
            }),
            ("spec.endpoint.ports.protocol: 9", |spec| {
                spec.endpoint = Some(EndpointSpec {
                    ports: vec![swarm_proto::v1::PortConfig {
                        protocol: 9,
                        target_port: 80,
                        ..Default::default()
                    }],
                    ..Default::default()
                })
            }),
            ("spec.endpoint.ports.publish_mode: 5", |spec| {
                spec.endpoint = Some(EndpointSpec {
                    ports: vec![swarm_proto::v1::PortConfig {
                        publish_mode: 5,
                        target_port: 80,
                        ..Default::default()
                    }],
                    ..Default::default()
                })
            }),
        ];
        for (says, change) in cases {
            let err = refusal(change).unwrap_or_else(|| panic!("{says}: accepted"));
            assert_eq!(err, format!("{says} is not a value the API knows"));
        }
    }

    #[test]
    fn update_policies_health_checks_and_placement_are_checked() {
        let ratio = |max_failure_ratio| {
            refusal(|spec| {
                spec.rollback = Some(UpdateConfig {
                    max_failure_ratio,
                    ..Default::default()
                })
            })
        };
        assert_eq!(ratio(0.5), None);
        let job_update = refusal(|spec| {
            spec.mode = Some(service_spec::Mode::ReplicatedJob(Default::default()));
            spec.update = Some(UpdateConfig::default());
        });
        assert!(job_update.expect("refused").contains("a job takes no update config"));
        let job = |max_concurrent, total_completions| {
            refusal(|spec| {
                spec.mode = Some(service_spec::Mode::ReplicatedJob(ReplicatedJob {
                    max_concurrent,
                    total_completions,
                }))
            })
        };
        assert_eq!(job(1, 3), None);
        assert_eq!(job(0, 0), None, "a job of no completions needs none at once");
        assert!(
            job(0, 3)
                .expect("refused")
                .contains("max_concurrent must be at least 1")
        );
        let rollback_rollback = refusal(|spec| {
            let mut rollback = UpdateConfig::default();
            rollback.set_failure_action(update_config::FailureAction::Rollback);
            spec.rollback = Some(rollback);
        });
        assert!(
            rollback_rollback
                .expect("refused")
                .contains("spec.rollback.failure_action")
        );
        for bad in [-0.1, 1.5, f32::NAN] {
            let err = ratio(bad).expect("refused");
            assert!(err.contains("spec.rollback.max_failure_ratio"), "{err}");
        }
        let interval = |nanos| {
            refusal(|spec| {
                container(spec).healthcheck = Some(Box::new(HealthConfig {
                    interval: Some(prost_types::Duration { seconds: 0, nanos }),
                    ..Default::default()
                }))
            })
        };
        assert_eq!(interval(0), None);
        assert_eq!(interval(1_000_000), None);
        let err = interval(999).expect("refused");
        assert!(err.contains("healthcheck.interval must be 0 or at least 1ms"), "{err}");
        let spread = |descriptor: &str| {
            refusal(|spec| {
                task(spec).placement = Some(Box::new(Placement {
                    preferences: vec![swarm_proto::v1::PlacementPreference {
                        spread: Some(swarm_proto::v1::SpreadOver {
                            spread_descriptor: descriptor.into(),
                        }),
                    }],
                    ..Default::default()
                }))
            })
        };
        assert_eq!(spread("node.labels.zone"), None);
        let err = spread("zone").expect("refused");
        assert!(err.contains("cannot spread over \"zone\""), "{err}");
        let max_replicas = |mode: service_spec::Mode| {
            refusal(|spec| {
                spec.mode = Some(mode);
                task(spec).placement = Some(Box::new(Placement {
                    max_replicas: 2,
                    ..Default::default()
                }))
            })
        };
        assert_eq!(max_replicas(service_spec::Mode::Replicated(Default::default())), None);
        let err = max_replicas(service_spec::Mode::Global(Default::default())).expect("refused");
        assert!(
            err.contains("max_replicas applies to replicated services only"),
            "{err}"
        );
    }

    #[test]
    fn secret_and_config_targets_are_checked() {
        let mut spec = ServiceSpec::container("web", "busybox");
        let task = swarm_proto::Shared::make_mut(spec.task.as_mut().unwrap());
        let Some(task_spec::Runtime::Container(container)) = task.runtime.as_mut() else {
            unreachable!("a container spec")
        };
        let secret = |target: &str| swarm_proto::v1::SecretReference {
            secret_id: "s1".into(),
            secret_name: "db".into(),
            target: target.into(),
            ..Default::default()
        };
        let config = |target: &str| swarm_proto::v1::ConfigReference {
            config_id: "c1".into(),
            config_name: "app".into(),
            target: target.into(),
            ..Default::default()
        };
        let private = swarm_proto::v1::SecretReference {
            mode: Some(0o400),
            uid: 1000,
            ..secret("private")
        };
        container.secrets = vec![secret("db"), secret("sub/db2"), private];
        container.configs = vec![config("/etc/app.conf")];
        assert!(container_spec(container).is_ok());
        for bad in [
            vec![secret("")],
            vec![secret("../etc/passwd")],
            vec![secret("/etc/../abs")],
            vec![secret("a"), secret("a")],
            // The same file, however spelled.
            vec![secret("a"), secret("./a")],
            // Directories, which a file cannot replace.
            vec![secret(".")],
            vec![secret("sub/")],
            vec![swarm_proto::v1::SecretReference {
                mode: Some(0o1777),
                ..secret("sticky")
            }],
        ] {
            container.secrets = bad;
            let err = container_spec(container).unwrap_err().to_string();
            assert!(err.contains("spec.task.container.secrets"), "{err}");
        }
        container.secrets = vec![secret("sub/../../etc/passwd")];
        let err = container_spec(container).unwrap_err().to_string();
        assert!(
            err.contains("target \"sub/../../etc/passwd\" of secret \"db\" must be a path without \"..\""),
            "names the secret as the user did, and the rule: {err}"
        );
        // As the engine takes them: a secret's absolute target is that
        // file, a config's relative one is under the root.
        container.secrets = vec![secret("/etc/ssl/key.pem")];
        container.configs = vec![config("app.conf")];
        assert!(container_spec(container).is_ok());
        container.secrets = vec![secret("/etc/app.conf")];
        container.configs = vec![config("etc/app.conf")];
        let err = container_spec(container).unwrap_err().to_string();
        assert!(
            err.contains("would be the file \"/etc/app.conf\", which secret \"db\" is"),
            "{err}"
        );
        container.secrets.clear();
        for bad in [
            vec![config("")],
            vec![config("/etc/../x")],
            vec![config("/")],
            vec![config("/etc/")],
            vec![config("/tmp/.")],
            vec![config("//")],
            vec![config("/etc/app.conf"), config("//etc/app.conf")],
        ] {
            container.configs = bad;
            let err = container_spec(container).unwrap_err().to_string();
            assert!(err.contains("spec.task.container.configs"), "{err}");
        }
        container.configs = vec![config("/etc/")];
        let err = container_spec(container).unwrap_err().to_string();
        assert!(err.contains("names a directory: it must name a file"), "{err}");
        // A config where a secret is: one of them would not be there.
        container.secrets = vec![secret("db")];
        container.configs = vec![config("/run/secrets/db")];
        let err = container_spec(container).unwrap_err().to_string();
        assert!(
            err.contains("would be the file \"/run/secrets/db\", which secret \"db\" is"),
            "{err}"
        );
    }

    #[test]
    fn secret_and_config_names_may_hold_dots() {
        assert!(secret_or_config("config", named("app.conf").as_ref(), b"x", MAX_CONFIG_BYTES).is_ok());
        for bad in [".conf", "app.", "a b", ""] {
            assert!(
                secret_or_config("config", named(bad).as_ref(), b"x", MAX_CONFIG_BYTES).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn secrets_of_500_kib_or_more_are_refused() {
        let err = secret_or_config(
            "secret",
            named("db-pass").as_ref(),
            &vec![0; MAX_SECRET_BYTES],
            MAX_SECRET_BYTES,
        )
        .unwrap_err();
        assert!(err.to_string().contains("under 512000 (500 KiB)"), "{err}");
        let largest = vec![0; MAX_SECRET_BYTES - 1];
        assert!(secret_or_config("secret", named("db-pass").as_ref(), &largest, MAX_SECRET_BYTES).is_ok());
    }
}
