//! `swarmctl service ...`

use anyhow::bail;
use swarm_proto::v1::{
    Config, ConfigReference, CreateServiceRequest, GetServiceRequest, ListServicesRequest, ListTasksRequest,
    RemoveServiceRequest, Secret, SecretReference, Service, ServiceSpec, TaskState, UpdateServiceRequest, port_config,
    service_spec,
};

use super::{BadValue, EachObject, change_reply, data, inspect_each, name, reply};
use crate::cli::ServiceCommand;
use crate::connect::Control;
use crate::filter::Filters;
use crate::output::{self, Format};
use crate::resolve;

mod env_file;
mod inspect;
mod spec;

pub async fn run(control: &mut Control, command: ServiceCommand, format: Format) -> anyhow::Result<()> {
    match command {
        ServiceCommand::Create(args) => {
            let secrets = secret_references(control, &args.secret).await?;
            let configs = config_references(control, &args.config).await?;
            let from_files = env_file::read_all(&args.env_file)?;
            let spec = spec::create(*args, from_files, secrets, configs)?;
            let service = change_reply(control.create_service(CreateServiceRequest { spec: Some(spec) }).await)?;
            println!("{}", service.service.unwrap_or_default().id);
        }
        ServiceCommand::Ls(list) => {
            let filters = Filters::new(list.filters, &["mode"])?;
            let modes = filters.enum_values("mode", &MODES.map(|(word, kind)| (word.to_string(), kind as i32)))?;
            let request = ListServicesRequest {
                filters: Some(filters.list_filters()),
            };
            let mut services = reply(control.list_services(request).await)?.services;
            // The Control API has no mode filter: kept here, as docker's.
            if !modes.is_empty() {
                services.retain(|service| modes.contains(&(mode_kind(service) as i32)));
            }
            // By name, as docker lists them (the store lists by ID).
            services.sort_by_cached_key(|service| service_name(service).to_lowercase());
            if format == Format::Json && !list.quiet {
                return output::json_list(&services);
            }
            // Running and completed tasks per service, counted once (IDs
            // only need none).
            let mut counts = std::collections::HashMap::<String, TaskCounts>::new();
            if !list.quiet {
                let request = ListTasksRequest {
                    states: vec![TaskState::Running.into(), TaskState::Complete.into()],
                    ..Default::default()
                };
                for task in reply(control.list_tasks(request).await)?.tasks {
                    let count = counts.entry(task.service_id).or_default();
                    let state = task.status.as_ref().map(|status| status.state);
                    if state == Some(TaskState::Complete.into()) {
                        count.completed += 1;
                    } else {
                        count.running += 1;
                    }
                }
            }
            let rows = services
                .iter()
                .map(|service| {
                    vec![
                        service.id.clone(),
                        service_name(service),
                        mode_word(service),
                        replicas(service, counts.get(&service.id).copied().unwrap_or_default()),
                        image(service),
                        published_ports(service),
                    ]
                })
                .collect();
            // Docker's columns, in its order.
            output::table(&["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"], rows, list.quiet)?;
        }
        ServiceCommand::Inspect { references } => {
            inspect_each(
                &references,
                format,
                async |reference| get(control, reference).await,
                inspect::fields,
            )
            .await?;
        }
        ServiceCommand::Update {
            reference,
            rollback: true,
            ..
        }
        | ServiceCommand::Rollback { reference, .. } => {
            let service = get(control, &reference).await?;
            if service.previous_spec.is_none() {
                bail!("service {reference:?} has no previous spec to roll back to");
            }
            println!("{}", update(control, &service, None, true).await?.id);
        }
        ServiceCommand::Update { reference, changes, .. } => {
            let service = get(control, &reference).await?;
            let secrets = secret_references(control, &changes.secret_add).await?;
            let configs = config_references(control, &changes.config_add).await?;
            let spec = spec::update(service.spec.clone().unwrap_or_default(), *changes, secrets, configs)?;
            println!("{}", update(control, &service, Some(spec), false).await?.id);
        }
        ServiceCommand::Scale { targets } => {
            let mut each = EachObject::default();
            for (reference, replicas) in targets {
                let scaled = async {
                    let service = get(control, &reference).await?;
                    let spec = spec::scale(service.spec.clone().unwrap_or_default(), replicas)
                        .map_err(|why| anyhow::anyhow!("service {reference:?} {why}"))?;
                    update(control, &service, Some(spec), false).await?;
                    println!("{reference} scaled to {replicas}");
                    Ok(())
                };
                each.record(scaled.await);
            }
            each.finish()?;
        }
        ServiceCommand::Ps { references, mut list } => {
            for reference in references {
                list.filters
                    .push(crate::filter::parse(&format!("service={reference}")).map_err(BadValue)?);
            }
            let command = crate::cli::TaskCommand::Ls { list, service: None };
            super::task::run(control, command, format).await?;
        }
        ServiceCommand::Rm { references } => {
            let mut each = EachObject::default();
            for reference in references {
                let removed = async {
                    let service = get(control, &reference).await?;
                    let request = RemoveServiceRequest {
                        service_id: service.id.clone(),
                    };
                    change_reply(control.remove_service(request).await)?;
                    println!("{}", service.id);
                    Ok(())
                };
                each.record(removed.await);
            }
            each.finish()?;
        }
    }
    Ok(())
}

/// Sends `spec` (or asks for the previous one) with the version `service`
/// was read at: a change made meanwhile by someone else is refused, not
/// overwritten. The service as updated.
async fn update(
    control: &mut Control,
    service: &Service,
    spec: Option<ServiceSpec>,
    rollback: bool,
) -> anyhow::Result<Service> {
    let request = UpdateServiceRequest {
        service_id: service.id.clone(),
        service_version: service.meta.as_ref().map_or(0, |meta| meta.version),
        spec,
        rollback,
    };
    let updated = change_reply(control.update_service(request).await)?;
    Ok(updated.service.unwrap_or_default())
}

/// `--secret` (or `--secret-add`) flags, each resolved to one secret.
async fn secret_references(control: &mut Control, flags: &[String]) -> anyhow::Result<Vec<SecretReference>> {
    let mut references = Vec::new();
    for flag in flags {
        let file = data::reference::<Secret>(control, flag, |name| name.to_string()).await?;
        references.push(SecretReference {
            secret_id: file.id,
            secret_name: file.name,
            target: file.target,
            uid: file.uid,
            gid: file.gid,
            mode: Some(file.mode),
        });
    }
    Ok(references)
}

/// `--config` (or `--config-add`) flags, each resolved to one config.
async fn config_references(control: &mut Control, flags: &[String]) -> anyhow::Result<Vec<ConfigReference>> {
    let mut references = Vec::new();
    for flag in flags {
        let file = data::reference::<Config>(control, flag, |name| format!("/{name}")).await?;
        references.push(ConfigReference {
            config_id: file.id,
            config_name: file.name,
            target: file.target,
            uid: file.uid,
            gid: file.gid,
            mode: Some(file.mode),
        });
    }
    Ok(references)
}

/// The service `reference` names (name, ID or unique ID prefix). Only the
/// services that can match are fetched: those of that name and those whose
/// ID starts with it, so that a cluster of 100,000 services costs no more.
pub(crate) async fn get(control: &mut Control, reference: &str) -> anyhow::Result<Service> {
    let mut candidates = Vec::new();
    for filters in resolve::filters(reference) {
        let request = ListServicesRequest { filters: Some(filters) };
        let services = reply(control.list_services(request).await)?.services;
        candidates.extend(services.iter().map(|s| (s.id.clone(), service_name(s))));
    }
    candidates.sort();
    candidates.dedup();
    let service_id = resolve::pick("service", reference, &candidates)?;
    Ok(reply(control.get_service(GetServiceRequest { service_id }).await)?
        .service
        .unwrap_or_default())
}

fn service_name(service: &Service) -> String {
    name(service.spec.as_ref().and_then(|spec| spec.annotations.as_ref()))
}

/// The image as `docker service ls` shows it: without its digest
/// (`inspect` shows the whole reference).
fn image(service: &Service) -> String {
    let image = service
        .spec
        .as_ref()
        .and_then(inspect::container)
        .map(|container| container.image.as_str())
        .unwrap_or_default();
    image.split_once('@').map_or(image, |(name, _)| name).to_string()
}

/// Published ports as `docker service ls` shows them: `*:8080->80/tcp`
/// through the routing mesh, `host:8080->80/tcp` on each node's own
/// address; one word, comma-separated.
fn published_ports(service: &Service) -> String {
    let ports = service.spec.as_ref().and_then(|spec| spec.endpoint.as_ref());
    ports
        .map_or(&[][..], |endpoint| endpoint.ports.as_slice())
        .iter()
        .map(|port| {
            let protocol = super::enum_word(port.protocol().as_str_name(), "PROTOCOL_");
            let on = match port.publish_mode() {
                port_config::PublishMode::Host => "host",
                port_config::PublishMode::Ingress => "*",
            };
            let published = match port.published_port {
                0 => "?".to_string(),
                published => published.to_string(),
            };
            format!("{on}:{published}->{}/{protocol}", port.target_port)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The kinds of service mode, as docker's `mode` filter names them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ModeKind {
    Replicated,
    Global,
    ReplicatedJob,
    GlobalJob,
}

const MODES: [(&str, ModeKind); 4] = [
    ("replicated", ModeKind::Replicated),
    ("global", ModeKind::Global),
    ("replicated-job", ModeKind::ReplicatedJob),
    ("global-job", ModeKind::GlobalJob),
];

fn mode_kind(service: &Service) -> ModeKind {
    match service.spec.as_ref().and_then(|spec| spec.mode.as_ref()) {
        Some(service_spec::Mode::Replicated(_)) => ModeKind::Replicated,
        Some(service_spec::Mode::ReplicatedJob(_)) => ModeKind::ReplicatedJob,
        Some(service_spec::Mode::GlobalJob(_)) => ModeKind::GlobalJob,
        _ => ModeKind::Global,
    }
}

/// The service's mode as docker's `service ls` names it: `replicated job`.
fn mode_word(service: &Service) -> String {
    let kind = mode_kind(service);
    MODES
        .iter()
        .find(|(_, mode)| *mode == kind)
        .map(|(word, _)| word.replace('-', " "))
        .unwrap_or_default()
}

/// A service's tasks that run and, for a job, those that completed.
#[derive(Clone, Copy, Debug, Default)]
struct TaskCounts {
    running: u64,
    completed: u64,
}

/// The REPLICAS column, as docker's: running of desired, and for a job its
/// completions of the total (a replicated job wants at most
/// `max_concurrent` tasks at once, and no more than it has left to run).
fn replicas(service: &Service, counts: TaskCounts) -> String {
    let TaskCounts { running, completed } = counts;
    match service.spec.as_ref().and_then(|spec| spec.mode.as_ref()) {
        Some(service_spec::Mode::Replicated(replicated)) => format!("{running}/{}", replicated.replicas),
        Some(service_spec::Mode::ReplicatedJob(job)) => {
            let total = job.total_completions;
            let desired = job.max_concurrent.min(total.saturating_sub(completed));
            format!("{running}/{desired} ({completed}/{total} completed)")
        }
        Some(service_spec::Mode::GlobalJob(_)) => format!("{running} ({completed} completed)"),
        _ => format!("{running} (global)"),
    }
}

#[cfg(test)]
mod tests {
    use swarm_proto::v1::{GlobalJob, ReplicatedJob, ReplicatedService, ServiceSpec};

    use super::*;

    fn service(mode: service_spec::Mode) -> Service {
        Service {
            spec: Some(ServiceSpec {
                mode: Some(mode),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn replicas_show_running_of_desired_and_a_jobs_completions() {
        let counts = |running, completed| TaskCounts { running, completed };
        let replicated = service(service_spec::Mode::Replicated(ReplicatedService { replicas: 3 }));
        assert_eq!(replicas(&replicated, counts(2, 0)), "2/3");
        let job = service(service_spec::Mode::ReplicatedJob(ReplicatedJob {
            max_concurrent: 2,
            total_completions: 5,
        }));
        assert_eq!(replicas(&job, counts(2, 1)), "2/2 (1/5 completed)");
        // One left to run: one is wanted, whatever the concurrency.
        assert_eq!(replicas(&job, counts(1, 4)), "1/1 (4/5 completed)");
        assert_eq!(replicas(&job, counts(0, 5)), "0/0 (5/5 completed)");
        let global_job = service(service_spec::Mode::GlobalJob(GlobalJob {}));
        assert_eq!(replicas(&global_job, counts(1, 2)), "1 (2 completed)");
    }
}
