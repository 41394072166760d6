//! `service inspect` for people: the service's spec as `Name: value`
//! lines. The identity, mode, image, command, environment, secrets and
//! configs always print; the rest only when the spec sets it.

use swarm_proto::v1::{
    ContainerSpec, HealthConfig, Mount, PortConfig, Resources, RestartPolicy, Service, ServiceSpec, UpdateConfig,
    mount, port_config, restart_policy, service_spec, task_spec, update_config, update_status,
};

use super::super::data::DEFAULT_FILE_MODE;
use super::super::{enum_word, label_pairs, meta_times};
use crate::output;

/// The lines `service inspect` prints for `service`.
pub fn fields(service: &Service) -> Vec<(&'static str, String)> {
    let spec = service.spec.clone().unwrap_or_default();
    let container = container(&spec).cloned().unwrap_or_default();
    let [created, updated] = meta_times(service.meta.as_ref());
    let mut fields = vec![("ID", service.id.clone()), ("Name", super::service_name(service))];
    fields.extend(output::list(
        "Labels",
        label_pairs(&spec.annotations.clone().unwrap_or_default().labels),
    ));
    fields.extend([
        (
            "Version",
            service.meta.as_ref().map_or(0, |meta| meta.version).to_string(),
        ),
        created,
        updated,
        ("Mode", mode(&spec)),
        ("Image", container.image.clone()),
        ("Command", shell_line(&container.command)),
        ("Args", shell_line(&container.args)),
    ]);
    fields.extend(output::list("Env", container.env.clone()));
    fields.extend(output::list(
        "Secrets",
        references(
            container
                .secrets
                .iter()
                .map(|r| (&r.secret_name, &r.target, r.uid, r.gid, r.mode)),
        ),
    ));
    fields.extend(output::list(
        "Configs",
        references(
            container
                .configs
                .iter()
                .map(|r| (&r.config_name, &r.target, r.uid, r.gid, r.mode)),
        ),
    ));
    // What the spec may leave unset prints only where it is set; a list
    // one item a line.
    let mut optional_list = |name: &'static str, items: Vec<String>| {
        if !items.is_empty() {
            fields.extend(output::list(name, items));
        }
    };
    optional_list("Container labels", label_pairs(&container.labels));
    let task = spec.task.as_deref().cloned().unwrap_or_default();
    if let Some(placement) = &task.placement {
        optional_list("Constraints", placement.constraints.clone());
        let preferences = placement
            .preferences
            .iter()
            .filter_map(|p| p.spread.as_ref().map(|s| format!("spread={}", s.spread_descriptor)));
        optional_list("Preferences", preferences.collect());
        if placement.max_replicas > 0 {
            optional_list("Max replicas per node", vec![placement.max_replicas.to_string()]);
        }
    }
    optional_list("Mounts", container.mounts.iter().map(mount_text).collect());
    let mut optional = |name: &'static str, value: String| {
        if !value.is_empty() {
            fields.push((name, value));
        }
    };
    optional_container_fields(&container, &mut optional);
    if let Some(resources) = &task.resources {
        optional("Limits", resources_text(resources.limits.as_ref()));
        optional("Reservations", resources_text(resources.reservations.as_ref()));
    }
    optional(
        "Restart policy",
        task.restart.as_ref().map(restart_text).unwrap_or_default(),
    );
    if task.force_update > 0 {
        optional("Forced updates", task.force_update.to_string());
    }
    let ports = spec.endpoint.as_ref().map(|e| e.ports.as_slice()).unwrap_or_default();
    optional("Ports", ports.iter().map(port_text).collect::<Vec<_>>().join(", "));
    optional(
        "Update config",
        spec.update.as_ref().map(policy_text).unwrap_or_default(),
    );
    optional(
        "Rollback config",
        spec.rollback.as_ref().map(policy_text).unwrap_or_default(),
    );
    if let Some(status) = &service.update_status {
        let state = update_status::State::try_from(status.state).unwrap_or_default();
        optional(
            "Update status",
            match status.message.as_str() {
                "" => enum_word(state.as_str_name(), "STATE_"),
                message => format!("{}: {message}", enum_word(state.as_str_name(), "STATE_")),
            },
        );
    }
    if service.previous_spec.is_some() {
        optional("Previous spec", "kept (service rollback goes back to it)".into());
    }
    fields
}

fn optional_container_fields(container: &ContainerSpec, optional: &mut impl FnMut(&'static str, String)) {
    optional("Workdir", container.dir.clone());
    optional("User", container.user.clone());
    optional("Hostname", container.hostname.clone());
    if container.tty {
        optional("TTY", "yes".into());
    }
    if container.read_only {
        optional("Read-only", "yes".into());
    }
    optional(
        "Stop grace period",
        container
            .stop_grace_period
            .as_ref()
            .map(output::duration)
            .unwrap_or_default(),
    );
    optional("Stop signal", container.stop_signal.clone());
    optional(
        "Healthcheck",
        container.healthcheck.as_deref().map(health_text).unwrap_or_default(),
    );
}

pub(super) fn container(spec: &ServiceSpec) -> Option<&ContainerSpec> {
    spec.task
        .as_deref()
        .and_then(|task| task.runtime.as_ref())
        .map(|task_spec::Runtime::Container(c)| c)
}

fn mode(spec: &ServiceSpec) -> String {
    match &spec.mode {
        Some(service_spec::Mode::Replicated(replicated)) => {
            format!("replicated ({})", counted(replicated.replicas, "task"))
        }
        Some(service_spec::Mode::Global(_)) => "global".into(),
        Some(service_spec::Mode::ReplicatedJob(job)) => format!(
            "replicated job ({}, {} at once)",
            counted(job.total_completions, "completion"),
            job.max_concurrent
        ),
        Some(service_spec::Mode::GlobalJob(_)) => "global job".into(),
        None => String::new(),
    }
}

/// Secret or config references: `name -> target`, and the file's owner
/// and mode where they are not the defaults (root's, 0444).
fn references<'a>(files: impl Iterator<Item = (&'a String, &'a String, u32, u32, Option<u32>)>) -> Vec<String> {
    files
        .map(|(name, target, uid, gid, mode)| {
            let mut text = format!("{name} -> {target}");
            if (uid, gid, mode.unwrap_or(DEFAULT_FILE_MODE)) != (0, 0, DEFAULT_FILE_MODE) {
                let mode = mode.map_or_else(
                    || format!("{DEFAULT_FILE_MODE:04o} (default)"),
                    |mode| format!("{mode:04o}"),
                );
                text.push_str(&format!(" (uid {uid}, gid {gid}, mode {mode})"));
            }
            text
        })
        .collect()
}

fn mount_text(mount: &Mount) -> String {
    let kind = mount::Type::try_from(mount.r#type).unwrap_or_default();
    let kind = enum_word(kind.as_str_name(), "TYPE_");
    let mut text = match mount.source.as_str() {
        "" => format!("{kind} {}", mount.target),
        source => format!("{kind} {source} -> {}", mount.target),
    };
    if mount.read_only {
        text.push_str(" (read-only)");
    }
    text
}

fn port_text(port: &PortConfig) -> String {
    let protocol = port_config::Protocol::try_from(port.protocol).unwrap_or_default();
    let protocol = enum_word(protocol.as_str_name(), "PROTOCOL_");
    let mode = port_config::PublishMode::try_from(port.publish_mode).unwrap_or_default();
    let mode = enum_word(mode.as_str_name(), "PUBLISH_MODE_");
    // As `ls` shows it: none given, the manager picks one (`?` until then).
    let published = match port.published_port {
        0 => "?".to_string(),
        port => port.to_string(),
    };
    format!("{published}:{}/{protocol} ({mode})", port.target_port)
}

fn health_text(health: &HealthConfig) -> String {
    match health.test.split_first() {
        Some((none, _)) if none == "NONE" => "off".into(),
        _ => {
            // The image's own check, when only its timing is set here.
            let command = match health.test.get(1..) {
                Some(words) if !words.is_empty() => words.join(" "),
                _ => "the image's check".into(),
            };
            let mut parts = vec![command];
            for (name, value) in [
                ("every", &health.interval),
                ("timeout", &health.timeout),
                ("start period", &health.start_period),
            ] {
                if let Some(value) = value {
                    parts.push(format!("{name} {}", output::duration(value)));
                }
            }
            if health.retries > 0 {
                parts.push(format!("{} retries", health.retries));
            }
            parts.join(", ")
        }
    }
}

fn resources_text(resources: Option<&Resources>) -> String {
    let Some(resources) = resources else {
        return String::new();
    };
    let mut parts = Vec::new();
    if resources.nano_cpus > 0 {
        let cpus = resources.nano_cpus as f64 / 1e9;
        parts.push(format!("{cpus} {}", if cpus == 1.0 { "CPU" } else { "CPUs" }));
    }
    if resources.memory_bytes > 0 {
        parts.push(format!(
            "{} memory",
            output::bytes(resources.memory_bytes.max(0) as u64)
        ));
    }
    parts.join(", ")
}

fn restart_text(restart: &RestartPolicy) -> String {
    let condition = restart_policy::Condition::try_from(restart.condition).unwrap_or_default();
    let mut parts = vec![enum_word(condition.as_str_name(), "CONDITION_")];
    if let Some(delay) = &restart.delay {
        parts.push(format!("delay {}", output::duration(delay)));
    }
    if restart.max_attempts > 0 {
        parts.push(format!("at most {} attempts", restart.max_attempts));
    }
    if let Some(window) = &restart.window {
        parts.push(format!("window {}", output::duration(window)));
    }
    parts.join(", ")
}

fn policy_text(config: &UpdateConfig) -> String {
    let action = update_config::FailureAction::try_from(config.failure_action).unwrap_or_default();
    let order = update_config::Order::try_from(config.order).unwrap_or_default();
    let mut parts = vec![match config.parallelism {
        0 => "all at once".to_string(),
        n => format!("{n} at a time"),
    }];
    if let Some(delay) = &config.delay {
        parts.push(format!("delay {}", output::duration(delay)));
    }
    parts.push(format!(
        "on failure {}",
        enum_word(action.as_str_name(), "FAILURE_ACTION_")
    ));
    if let Some(monitor) = &config.monitor {
        parts.push(format!("monitor {}", output::duration(monitor)));
    }
    if config.max_failure_ratio > 0.0 {
        parts.push(format!("max failure ratio {}", config.max_failure_ratio));
    }
    parts.push(enum_word(order.as_str_name(), "ORDER_"));
    parts.join(", ")
}

/// `n` of `what`, plural unless one: "1 task", "3 tasks".
fn counted(n: u64, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// Words as a shell line that `--command` and `--args` split back into
/// the same words.
fn shell_line(words: &[String]) -> String {
    shlex::try_join(words.iter().map(String::as_str)).unwrap_or_else(|_| words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_names_print_as_words() {
        assert_eq!(enum_word(mount::Type::Bind.as_str_name(), "TYPE_"), "bind");
        let order = update_config::Order::StartFirst.as_str_name();
        assert_eq!(enum_word(order, "ORDER_"), "start-first");
        let mode = port_config::PublishMode::Host.as_str_name();
        assert_eq!(enum_word(mode, "PUBLISH_MODE_"), "host");
    }
}
