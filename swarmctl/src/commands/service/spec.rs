//! Service specs from flags: `service create` builds one from nothing,
//! `service update` changes, in the spec the service has, only what its
//! flags name (a key both added and removed, `--env-add A=2 --env-rm A`,
//! is refused: the add alone replaces it; a constraint or a mount target
//! likewise).
//! What needs no manager is checked here: a flag that does not fit the
//! service's mode, a removal of something the service does not have. The
//! manager validates the whole spec again.

use anyhow::bail;
use swarm_proto::Shared;
use swarm_proto::v1::{
    Annotations, ConfigReference, ContainerSpec, EndpointSpec, HealthConfig, Placement, ReplicatedJob,
    ReplicatedService, Resources, RestartPolicy, SecretReference, ServiceSpec, TaskSpec, UpdateConfig, restart_policy,
    service_spec, task_spec, update_config,
};

use super::super::{BadValue, change_map, key_values, refuse_added_and_removed, refuse_both};
use crate::cli::{
    FailureAction, PolicyFlags, RestartCondition, ServiceMode, ServiceSpecArgs, ServiceUpdateArgs, TaskFlags,
    UpdateOrder,
};
use crate::parse;

/// The spec `service create` asks for; `env_files` are the variables its
/// `--env-file`s hold, which `--env` follows (and overrides).
pub fn create(
    args: ServiceSpecArgs,
    env_files: Vec<String>,
    secrets: Vec<SecretReference>,
    configs: Vec<ConfigReference>,
) -> anyhow::Result<ServiceSpec> {
    let (image, image_args) = image_and_args(args.image_flag, args.image_and_args, args.args)?;
    // A variable given twice is given once, the later value at the later
    // place, as docker makes it.
    let mut env = Vec::new();
    add_replacing(&mut env, env_files.into_iter().chain(args.env), |a, b| {
        env_key(a) == env_key(b)
    });
    let container = ContainerSpec {
        image,
        labels: key_values(&args.container_label, "container-label")?,
        command: args.command.map(|words| words.0).unwrap_or_default(),
        args: image_args,
        env,
        mounts: args.mount,
        secrets,
        configs,
        ..Default::default()
    };
    let placement = Placement {
        constraints: without_repeats(args.constraint),
        preferences: without_repeats(args.placement_pref),
        ..Default::default()
    };
    let mut spec = ServiceSpec {
        annotations: Some(Annotations {
            name: args.name,
            labels: key_values(&args.label, "label")?,
        }),
        task: Some(Shared::new(TaskSpec {
            runtime: Some(task_spec::Runtime::Container(container)),
            placement: (placement != Placement::default()).then(|| Box::new(placement)),
            ..Default::default()
        })),
        mode: Some(new_mode(args.mode, args.replicas, args.max_concurrent)?),
        endpoint: (!args.publish.is_empty()).then(|| EndpointSpec {
            ports: args.publish.into_iter().flat_map(|ports| ports.0).collect(),
            ..Default::default()
        }),
        ..Default::default()
    };
    apply_task_flags(&mut spec, args.task);
    Ok(spec)
}

/// The image and arguments of a new service: `--image` and `--args`, or
/// docker's `IMAGE [ARG]...` after the flags; each given once.
fn image_and_args(
    flag: Option<String>,
    positional: Vec<String>,
    args_flag: Option<parse::Words>,
) -> Result<(String, Vec<String>), BadValue> {
    let mut positional = positional.into_iter();
    let (image, args) = match (flag, positional.next()) {
        (Some(_), Some(after)) => {
            return Err(BadValue(format!(
                "the image is given twice: --image, and {after:?} after the flags (arguments after the image \
                 go with it, not with --image)"
            )));
        }
        (None, None) => {
            return Err(BadValue(
                "no image: give it after the flags, or as --image IMAGE".into(),
            ));
        }
        (Some(image), None) | (None, Some(image)) => (image, positional.collect::<Vec<_>>()),
    };
    match args_flag {
        Some(_) if !args.is_empty() => Err(BadValue(
            "the arguments are given twice: --args, and after the image".into(),
        )),
        Some(words) => Ok((image, words.0)),
        None => Ok((image, args)),
    }
}

/// `spec` with the changes `service update` asks for; `secrets` and
/// `configs` are its `--secret-add` and `--config-add`, resolved.
pub fn update(
    mut spec: ServiceSpec,
    changes: ServiceUpdateArgs,
    secrets: Vec<SecretReference>,
    configs: Vec<ConfigReference>,
) -> anyhow::Result<ServiceSpec> {
    change_counts(&mut spec.mode, changes.replicas, changes.max_concurrent)?;
    let labels = &mut spec.annotations.get_or_insert_with(Default::default).labels;
    change_map(labels, &changes.labels.label_add, &changes.labels.label_rm, "label")?;
    if !changes.publish_rm.is_empty() || !changes.publish_add.is_empty() {
        let ports = &mut spec.endpoint.get_or_insert_with(Default::default).ports;
        let removed_ports = changes
            .publish_rm
            .iter()
            .map(|removed| parse::port(removed).map_err(|why| anyhow::anyhow!("--publish-rm: {why}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        remove_each(
            ports,
            &removed_ports,
            |port, removed| port.target_port == removed.target_port && port.protocol == removed.protocol,
            "publish-rm",
            &changes.publish_rm,
            "port",
        )?;
        // Added beside the others; a published port already taken is the
        // manager's to refuse.
        add_new(ports, changes.publish_add.into_iter().flat_map(|ports| ports.0));
    }

    let task = Shared::make_mut(spec.task.get_or_insert_with(Default::default));
    if changes.force {
        task.force_update += 1;
    }
    if !changes.constraint_rm.is_empty()
        || !changes.constraint_add.is_empty()
        || !changes.placement_pref_rm.is_empty()
        || !changes.placement_pref_add.is_empty()
    {
        refuse_both(
            "constraint",
            changes.constraint_add.iter().map(String::as_str),
            &changes.constraint_rm,
            "give one or the other",
        )?;
        let placement = task.placement.get_or_insert_with(Default::default);
        remove_each(
            &mut placement.constraints,
            &changes.constraint_rm,
            |constraint, removed| constraint == removed,
            "constraint-rm",
            &changes.constraint_rm,
            "constraint",
        )?;
        add_new(&mut placement.constraints, changes.constraint_add);
        let shown: Vec<String> = changes
            .placement_pref_rm
            .iter()
            .map(|removed| {
                removed
                    .spread
                    .as_ref()
                    .map_or_else(String::new, |s| s.spread_descriptor.clone())
            })
            .collect();
        remove_each(
            &mut placement.preferences,
            &changes.placement_pref_rm,
            |preference, removed| preference == removed,
            "placement-pref-rm",
            &shown,
            "preference",
        )?;
        add_new(&mut placement.preferences, changes.placement_pref_add);
    }

    let container = container_mut(task);
    if let Some(image) = changes.image {
        container.image = image;
    }
    if let Some(command) = changes.command {
        container.command = command.0;
    }
    if let Some(args) = changes.args {
        container.args = args.0;
    }
    // A variable both added and removed is refused, as a label is.
    refuse_added_and_removed(
        "env",
        changes.env_add.iter().map(|entry| env_key(entry)),
        &changes.env_rm,
    )?;
    add_replacing(&mut container.env, changes.env_add, |a, b| env_key(a) == env_key(b));
    remove_each(
        &mut container.env,
        &changes.env_rm,
        |entry, key| env_key(entry) == key,
        "env-rm",
        &changes.env_rm,
        "variable",
    )?;
    change_map(
        &mut container.labels,
        &changes.container_label_add,
        &changes.container_label_rm,
        "container-label",
    )?;
    let removed_targets: Vec<String> = changes
        .mount_rm
        .iter()
        .map(|target| swarm_proto::clean_path(target))
        .collect();
    let added_targets: Vec<String> = changes
        .mount_add
        .iter()
        .map(|mount| swarm_proto::clean_path(&mount.target))
        .collect();
    refuse_both(
        "mount",
        added_targets.iter().map(String::as_str),
        &removed_targets,
        "--mount-add alone replaces the mount on that target",
    )?;
    remove_each(
        &mut container.mounts,
        &removed_targets,
        |mount, removed| &swarm_proto::clean_path(&mount.target) == removed,
        "mount-rm",
        &changes.mount_rm,
        "mount",
    )?;
    // One target twice among the added is a mistake (docker refuses it
    // too), not a replacement.
    for (i, mount) in changes.mount_add.iter().enumerate() {
        if changes.mount_add[..i]
            .iter()
            .any(|earlier| earlier.target == mount.target)
        {
            bail!("--mount-add: two mounts target {:?}", mount.target);
        }
    }
    add_replacing(&mut container.mounts, changes.mount_add, |a, b| {
        swarm_proto::clean_path(&a.target) == b.target
    });
    remove_references(
        &mut container.secrets,
        &changes.secret_rm,
        |r| (&r.secret_id, &r.secret_name),
        "secret",
    )?;
    add_to_free_targets(
        &mut container.secrets,
        secrets,
        |r| (&r.secret_name, &r.target),
        "secret",
    )?;
    remove_references(
        &mut container.configs,
        &changes.config_rm,
        |r| (&r.config_id, &r.config_name),
        "config",
    )?;
    add_to_free_targets(
        &mut container.configs,
        configs,
        |r| (&r.config_name, &r.target),
        "config",
    )?;
    apply_task_flags(&mut spec, changes.task);
    Ok(spec)
}

/// Removes the items any of `removals` `matches`; an error if one of them
/// matches none, so that a mistyped removal is not taken for done. Each is
/// checked against the items as they were, so that one item named twice
/// (`80` and `80/tcp`, a name and an ID prefix) is removed once, as in
/// docker. `shown` is each removal as typed.
fn remove_each<T, R>(
    items: &mut Vec<T>,
    removals: &[R],
    matches: impl Fn(&T, &R) -> bool,
    flag: &str,
    shown: &[String],
    what: &str,
) -> anyhow::Result<()> {
    for (removal, shown) in removals.iter().zip(shown) {
        if !items.iter().any(|item| matches(item, removal)) {
            bail!("--{flag} {shown:?}: the service has no such {what}");
        }
    }
    items.retain(|item| !removals.iter().any(|removal| matches(item, removal)));
    Ok(())
}

/// Removes the secret or config references (`--{kind}-rm`) named as any
/// reference is resolved (`resolve::pick`: a whole ID, a name, a prefix of
/// one ID) among those the service uses. `id_and_name` gives a
/// reference's.
fn remove_references<T>(
    references: &mut Vec<T>,
    removals: &[String],
    id_and_name: impl Fn(&T) -> (&String, &String),
    kind: &str,
) -> anyhow::Result<()> {
    // One secret given on two targets is one candidate.
    let mut candidates: Vec<(String, String)> = references
        .iter()
        .map(|reference| {
            let (id, name) = id_and_name(reference);
            (id.clone(), name.clone())
        })
        .collect();
    candidates.sort();
    candidates.dedup_by(|a, b| a.0 == b.0);
    let ids = removals
        .iter()
        .map(|removal| {
            crate::resolve::pick(kind, removal, &candidates)
                .map_err(|err| anyhow::anyhow!("--{kind}-rm: {err} among the service's {kind}s"))
        })
        .collect::<anyhow::Result<Vec<String>>>()?;
    references.retain(|reference| !ids.contains(id_and_name(reference).0));
    Ok(())
}

/// Adds secret or config references whose targets no reference of the
/// service (after the removals) takes: as docker's, which appends them and
/// has SwarmKit refuse two on one target, rather than silently dropping the
/// one already there (which may be in use). `named` gives a reference's
/// (name, target).
fn add_to_free_targets<T>(
    references: &mut Vec<T>,
    added: Vec<T>,
    named: impl Fn(&T) -> (&String, &String),
    kind: &str,
) -> anyhow::Result<()> {
    for (n, reference) in added.iter().enumerate() {
        let target = named(reference).1;
        if added[..n].iter().any(|earlier| named(earlier).1 == target) {
            bail!("--{kind}-add: two {kind}s target {target:?}");
        }
    }
    for reference in added {
        let (name, target) = named(&reference);
        if let Some(taken) = references.iter().find(|existing| named(existing).1 == target) {
            let holder = named(taken).0;
            bail!(
                "--{kind}-add {name:?}: the target {target:?} is {kind} {holder:?}'s; to replace it, \
                 also pass --{kind}-rm {holder}"
            );
        }
        references.push(reference);
    }
    Ok(())
}

/// `items` with each added that is not there yet: the same one twice means
/// nothing more than once (docker would keep a repeated constraint).
fn add_new<T: PartialEq>(items: &mut Vec<T>, added: impl IntoIterator<Item = T>) {
    for item in added {
        if !items.contains(&item) {
            items.push(item);
        }
    }
}

/// `items`, each once, in their first order.
fn without_repeats<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut kept = Vec::with_capacity(items.len());
    add_new(&mut kept, items);
    kept
}

/// Adds `added` at the end, each replacing an item it is `same` as (a
/// mount on the same target, as docker's `--mount-add` does).
fn add_replacing<T>(items: &mut Vec<T>, added: impl IntoIterator<Item = T>, same: impl Fn(&T, &T) -> bool) {
    for item in added {
        items.retain(|existing| !same(existing, &item));
        items.push(item);
    }
}

/// `KEY` of `KEY=VALUE`.
fn env_key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(key, _)| key)
}

/// A new service's mode; replicated: 1 task unless `--replicas`;
/// replicated job: 1 completion, all at once unless `--max-concurrent`.
fn new_mode(
    kind: ServiceMode,
    replicas: Option<u64>,
    max_concurrent: Option<u64>,
) -> anyhow::Result<service_spec::Mode> {
    let mut mode = Some(match kind {
        ServiceMode::Replicated => service_spec::Mode::Replicated(ReplicatedService { replicas: 1 }),
        ServiceMode::Global => service_spec::Mode::Global(Default::default()),
        ServiceMode::ReplicatedJob => service_spec::Mode::ReplicatedJob(ReplicatedJob {
            max_concurrent: 1,
            total_completions: 1,
        }),
        ServiceMode::GlobalJob => service_spec::Mode::GlobalJob(Default::default()),
    });
    change_counts(&mut mode, replicas, max_concurrent)?;
    if let Some(service_spec::Mode::ReplicatedJob(job)) = &mut mode
        && max_concurrent.is_none()
    {
        job.max_concurrent = job.total_completions;
    }
    Ok(mode.unwrap_or(service_spec::Mode::Replicated(ReplicatedService { replicas: 1 })))
}

/// `spec` running `replicas` tasks (completions, for a job), as `service
/// scale` asks.
///
/// # Errors
///
/// The service is global: it runs one task per node, whatever the count.
pub fn scale(mut spec: ServiceSpec, replicas: u64) -> Result<ServiceSpec, String> {
    if matches!(
        spec.mode,
        Some(service_spec::Mode::Global(_) | service_spec::Mode::GlobalJob(_))
    ) {
        return Err("is global: only replicated services and jobs scale".into());
    }
    change_counts(&mut spec.mode, Some(replicas), None).map_err(|err| err.to_string())?;
    Ok(spec)
}

/// Applies `--replicas` and `--max-concurrent` to a mode they fit.
fn change_counts(
    mode: &mut Option<service_spec::Mode>,
    replicas: Option<u64>,
    max_concurrent: Option<u64>,
) -> anyhow::Result<()> {
    match mode {
        Some(service_spec::Mode::Replicated(replicated)) => {
            if max_concurrent.is_some() {
                bail!("--max-concurrent applies to replicated jobs only");
            }
            if let Some(replicas) = replicas {
                replicated.replicas = replicas;
            }
        }
        Some(service_spec::Mode::ReplicatedJob(job)) => {
            if let Some(replicas) = replicas {
                job.total_completions = replicas;
            }
            if let Some(max_concurrent) = max_concurrent {
                job.max_concurrent = max_concurrent;
            } else if job.max_concurrent == 0 {
                // A job of no completions had none at once; given some, it
                // runs them all at once, as a new one does.
                job.max_concurrent = job.total_completions;
            }
        }
        _ if replicas.is_some() => bail!("--replicas applies to replicated services and jobs only"),
        _ if max_concurrent.is_some() => bail!("--max-concurrent applies to replicated jobs only"),
        _ => {}
    }
    Ok(())
}

/// The container spec of `task`, made one if it has none.
fn container_mut(task: &mut TaskSpec) -> &mut ContainerSpec {
    let task_spec::Runtime::Container(container) = task
        .runtime
        .get_or_insert_with(|| task_spec::Runtime::Container(Default::default()));
    container
}

/// Sets what `flags` name, and only that.
fn apply_task_flags(spec: &mut ServiceSpec, flags: TaskFlags) {
    apply_policy(&mut spec.update, flags.update.into());
    apply_policy(&mut spec.rollback, flags.rollback.into());
    let task = Shared::make_mut(spec.task.get_or_insert_with(Default::default));

    if flags.limit_cpu.is_some() || flags.limit_memory.is_some() {
        let limits = task
            .resources
            .get_or_insert_with(Default::default)
            .limits
            .get_or_insert_with(Default::default);
        set_resources(limits, flags.limit_cpu, flags.limit_memory);
    }
    if flags.reserve_cpu.is_some() || flags.reserve_memory.is_some() {
        let reservations = task
            .resources
            .get_or_insert_with(Default::default)
            .reservations
            .get_or_insert_with(Default::default);
        set_resources(reservations, flags.reserve_cpu, flags.reserve_memory);
    }
    if flags.restart_condition.is_some()
        || flags.restart_delay.is_some()
        || flags.restart_max_attempts.is_some()
        || flags.restart_window.is_some()
    {
        // SwarmKit's defaults for what the flags leave unset.
        let restart = task.restart.get_or_insert_with(|| RestartPolicy {
            condition: restart_policy::Condition::Any.into(),
            delay: Some(prost_types::Duration { seconds: 5, nanos: 0 }),
            ..Default::default()
        });
        if let Some(condition) = flags.restart_condition {
            restart.set_condition(match condition {
                RestartCondition::None => restart_policy::Condition::None,
                RestartCondition::OnFailure => restart_policy::Condition::OnFailure,
                RestartCondition::Any => restart_policy::Condition::Any,
            });
        }
        replace(&mut restart.delay, flags.restart_delay);
        replace_value(&mut restart.max_attempts, flags.restart_max_attempts);
        replace(&mut restart.window, flags.restart_window);
    }
    if let Some(max) = flags.replicas_max_per_node {
        task.placement.get_or_insert_with(Default::default).max_replicas = max;
    }

    let container = container_mut(task);
    replace_value(&mut container.dir, flags.workdir);
    replace_value(&mut container.user, flags.user);
    replace_value(&mut container.hostname, flags.hostname);
    replace(&mut container.stop_grace_period, flags.stop_grace_period);
    replace_value(&mut container.stop_signal, flags.stop_signal);
    replace_value(&mut container.tty, flags.tty);
    replace_value(&mut container.read_only, flags.read_only);
    if flags.no_healthcheck {
        container.healthcheck = Some(Box::new(HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        }));
    }
    if flags.health_cmd.is_some()
        || flags.health_interval.is_some()
        || flags.health_timeout.is_some()
        || flags.health_retries.is_some()
        || flags.health_start_period.is_some()
    {
        let health = container.healthcheck.get_or_insert_with(Default::default);
        // As docker: a health option turns a check that was off back on
        // (the image's, unless --health-cmd names one), and an empty
        // --health-cmd means the image's.
        if health.test.first().is_some_and(|test| test == "NONE") {
            health.test.clear();
        }
        match flags.health_cmd {
            Some(command) if command.trim().is_empty() => health.test.clear(),
            Some(command) => health.test = vec!["CMD-SHELL".into(), command],
            None => {}
        }
        replace(&mut health.interval, flags.health_interval);
        replace(&mut health.timeout, flags.health_timeout);
        replace_value(&mut health.retries, flags.health_retries);
        replace(&mut health.start_period, flags.health_start_period);
    }
}

fn set_resources(resources: &mut Resources, cpus: Option<i64>, memory: Option<i64>) {
    replace_value(&mut resources.nano_cpus, cpus);
    replace_value(&mut resources.memory_bytes, memory);
}

/// Applies the `--update-...` or `--rollback-...` flags to `config`.
fn apply_policy(config: &mut Option<UpdateConfig>, flags: PolicyFlags) {
    let PolicyFlags {
        parallelism,
        delay,
        failure_action,
        monitor,
        max_failure_ratio,
        order,
    } = flags;
    if parallelism.is_none()
        && delay.is_none()
        && failure_action.is_none()
        && monitor.is_none()
        && max_failure_ratio.is_none()
        && order.is_none()
    {
        return;
    }
    // SwarmKit's defaults for what the flags leave unset: one task at a time.
    let config = config.get_or_insert_with(|| UpdateConfig {
        parallelism: 1,
        ..Default::default()
    });
    replace_value(&mut config.parallelism, parallelism);
    replace(&mut config.delay, delay);
    replace(&mut config.monitor, monitor);
    replace_value(&mut config.max_failure_ratio, max_failure_ratio);
    if let Some(action) = failure_action {
        config.set_failure_action(match action {
            FailureAction::Pause => update_config::FailureAction::Pause,
            FailureAction::Continue => update_config::FailureAction::Continue,
            FailureAction::Rollback => update_config::FailureAction::Rollback,
        });
    }
    if let Some(order) = order {
        config.set_order(match order {
            UpdateOrder::StopFirst => update_config::Order::StopFirst,
            UpdateOrder::StartFirst => update_config::Order::StartFirst,
        });
    }
}

/// `*field = Some(value)` when a flag gave one.
fn replace<T>(field: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *field = value;
    }
}

/// `*field = value` when a flag gave one.
fn replace_value<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `--secret-rm removals` leaves of references given as (ID, name).
    fn left_after(removals: &[&str]) -> anyhow::Result<Vec<String>> {
        let mut references: Vec<(String, String)> = [
            ("8q41hmhf4q", "db-pass"),
            ("zz1", "8q4"),
            ("6aa", "a"),
            ("6bb", "b"),
            ("6bb", "b"),
        ]
        .iter()
        .map(|(id, name)| (id.to_string(), name.to_string()))
        .collect();
        let removals: Vec<String> = removals.iter().map(|removal| removal.to_string()).collect();
        remove_references(&mut references, &removals, |(id, name)| (id, name), "secret")?;
        Ok(references.into_iter().map(|(_, name)| name).collect())
    }

    #[test]
    fn a_reference_is_removed_by_whole_id_then_name_then_the_prefix_of_one_id() {
        // A name that is also another's ID prefix names its own secret.
        assert_eq!(left_after(&["8q4"]).unwrap(), ["db-pass", "a", "b", "b"]);
        assert_eq!(left_after(&["8q41"]).unwrap(), ["8q4", "a", "b", "b"]);
        assert_eq!(left_after(&["DB-Pass", "zz1"]).unwrap(), ["a", "b", "b"]);
        // One secret on two targets goes from both; named twice, once.
        assert_eq!(left_after(&["6b", "b"]).unwrap(), ["db-pass", "8q4", "a"]);
        let ambiguous = left_after(&["6"]).unwrap_err().to_string();
        assert_eq!(
            ambiguous,
            "--secret-rm: secret \"6\" is ambiguous: it matches 6aa, 6bb among the service's secrets"
        );
        let missing = left_after(&["zz2"]).unwrap_err().to_string();
        assert_eq!(
            missing,
            "--secret-rm: secret \"zz2\" not found among the service's secrets"
        );
    }

    fn job(max_concurrent: u64, total_completions: u64) -> Option<service_spec::Mode> {
        Some(service_spec::Mode::ReplicatedJob(ReplicatedJob {
            max_concurrent,
            total_completions,
        }))
    }

    #[test]
    fn a_job_given_completions_runs_them_at_once_unless_told() {
        let mut empty = job(0, 0);
        change_counts(&mut empty, Some(3), None).expect("fits a job");
        assert_eq!(empty, job(3, 3), "none at once would never run");
        let mut paced = job(2, 5);
        change_counts(&mut paced, Some(8), None).expect("fits a job");
        assert_eq!(paced, job(2, 8), "a concurrency set stays");
        change_counts(&mut paced, None, Some(4)).expect("fits a job");
        assert_eq!(paced, job(4, 8));
    }
}
