//! `swarmctl service ...`

use anyhow::bail;
use swarm_proto::v1::{
    Annotations, Config, ConfigReference, ContainerSpec, CreateServiceRequest, GetServiceRequest, ListServicesRequest,
    ListTasksRequest, Placement, RemoveServiceRequest, ReplicatedService, Secret, SecretReference, Service,
    ServiceSpec, TaskSpec, TaskState, UpdateServiceRequest, service_spec, task_spec,
};

use super::{data, labels, name, reply};
use crate::cli::{ServiceCommand, ServiceSpecArgs, ServiceUpdateArgs};
use crate::connect::Control;
use crate::output::{self, Format};
use crate::resolve;

pub async fn run(control: &mut Control, command: ServiceCommand, format: Format) -> anyhow::Result<()> {
    match command {
        ServiceCommand::Create(args) => {
            let mut secrets = Vec::new();
            for flag in &args.secret {
                let (secret_id, secret_name, target) =
                    data::reference::<Secret>(control, flag, |name| name.to_string()).await?;
                secrets.push(SecretReference {
                    secret_id,
                    secret_name,
                    target,
                });
            }
            let mut configs = Vec::new();
            for flag in &args.config {
                let (config_id, config_name, target) =
                    data::reference::<Config>(control, flag, |name| format!("/{name}")).await?;
                configs.push(ConfigReference {
                    config_id,
                    config_name,
                    target,
                });
            }
            let spec = spec_from(args, secrets, configs)?;
            let service = reply(control.create_service(CreateServiceRequest { spec: Some(spec) }).await)?;
            println!("{}", service.service.unwrap_or_default().id);
        }
        ServiceCommand::Ls(list) => {
            let services = all(control).await?;
            if format == Format::Json && !list.quiet {
                return output::json_list(&services);
            }
            // Running tasks per service, counted once (IDs only need none).
            let mut running_tasks = std::collections::HashMap::new();
            if !list.quiet {
                let request = ListTasksRequest {
                    states: vec![TaskState::Running.into()],
                    ..Default::default()
                };
                for task in reply(control.list_tasks(request).await)?.tasks {
                    *running_tasks.entry(task.service_id).or_insert(0usize) += 1;
                }
            }
            let rows = services
                .iter()
                .map(|service| {
                    let running = running_tasks.get(&service.id).copied().unwrap_or(0);
                    vec![
                        service.id.clone(),
                        service_name(service),
                        image(service),
                        replicas(service, running),
                    ]
                })
                .collect();
            output::table(&["ID", "NAME", "IMAGE", "REPLICAS"], rows, list.quiet)?;
        }
        ServiceCommand::Inspect { reference } => {
            let service = get(control, &reference).await?;
            if format == Format::Json {
                return output::json_one(&service);
            }
            let spec = service.spec.clone().unwrap_or_default();
            let container = container(&spec).cloned().unwrap_or_default();
            output::fields(&[
                ("ID", service.id.clone()),
                ("Name", service_name(&service)),
                ("Labels", labels(&spec.annotations.clone().unwrap_or_default().labels)),
                (
                    "Version",
                    service.meta.as_ref().map_or(0, |meta| meta.version).to_string(),
                ),
                ("Mode", mode(&spec)),
                ("Image", container.image.clone()),
                ("Command", container.command.join(" ")),
                ("Args", container.args.join(" ")),
                ("Env", container.env.join(", ")),
                (
                    "Secrets",
                    references(container.secrets.iter().map(|r| (&r.secret_name, &r.target))),
                ),
                (
                    "Configs",
                    references(container.configs.iter().map(|r| (&r.config_name, &r.target))),
                ),
            ])?;
        }
        ServiceCommand::Update { reference, changes } => {
            let service = get(control, &reference).await?;
            let version = service.meta.as_ref().map_or(0, |meta| meta.version);
            let spec = updated(service.spec.clone().unwrap_or_default(), changes)?;
            let request = UpdateServiceRequest {
                service_id: service.id.clone(),
                service_version: version,
                spec: Some(spec),
                rollback: false,
            };
            let updated = reply(control.update_service(request).await)?;
            println!("{}", updated.service.unwrap_or_default().id);
        }
        ServiceCommand::Rm { references } => {
            for reference in references {
                let service = get(control, &reference).await?;
                reply(
                    control
                        .remove_service(RemoveServiceRequest {
                            service_id: service.id.clone(),
                        })
                        .await,
                )?;
                println!("{}", service.id);
            }
        }
    }
    Ok(())
}

async fn all(control: &mut Control) -> anyhow::Result<Vec<Service>> {
    Ok(reply(control.list_services(ListServicesRequest::default()).await)?.services)
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

/// `name -> target, ...`
fn references<'a>(pairs: impl Iterator<Item = (&'a String, &'a String)>) -> String {
    pairs
        .map(|(name, target)| format!("{name} -> {target}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn service_name(service: &Service) -> String {
    name(service.spec.as_ref().and_then(|spec| spec.annotations.as_ref()))
}

fn container(spec: &ServiceSpec) -> Option<&ContainerSpec> {
    spec.task
        .as_deref()
        .and_then(|task| task.runtime.as_ref())
        .map(|task_spec::Runtime::Container(c)| c)
}

fn image(service: &Service) -> String {
    service
        .spec
        .as_ref()
        .and_then(container)
        .map(|container| container.image.clone())
        .unwrap_or_default()
}

fn mode(spec: &ServiceSpec) -> String {
    match &spec.mode {
        Some(service_spec::Mode::Replicated(replicated)) => format!("replicated ({} tasks)", replicated.replicas),
        Some(service_spec::Mode::Global(_)) => "global".into(),
        Some(service_spec::Mode::ReplicatedJob(_)) => "replicated job".into(),
        Some(service_spec::Mode::GlobalJob(_)) => "global job".into(),
        None => String::new(),
    }
}

fn replicas(service: &Service, running: usize) -> String {
    match service.spec.as_ref().and_then(|spec| spec.mode.as_ref()) {
        Some(service_spec::Mode::Replicated(replicated)) => format!("{running}/{}", replicated.replicas),
        _ => format!("{running} (global)"),
    }
}

fn key_value_map(pairs: &[String], flag: &str) -> anyhow::Result<std::collections::HashMap<String, String>> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
            _ => bail!("--{flag} {pair:?} is not key=value"),
        })
        .collect()
}

fn spec_from(
    args: ServiceSpecArgs,
    secrets: Vec<SecretReference>,
    configs: Vec<ConfigReference>,
) -> anyhow::Result<ServiceSpec> {
    let mode = match args.mode.as_deref() {
        Some("global") => service_spec::Mode::Global(Default::default()),
        _ => service_spec::Mode::Replicated(ReplicatedService {
            replicas: args.replicas.unwrap_or(1),
        }),
    };
    let placement = (!args.constraint.is_empty()).then(|| {
        Box::new(Placement {
            constraints: args.constraint,
            ..Default::default()
        })
    });
    let container = ContainerSpec {
        image: args.image,
        command: args.command,
        args: args.args,
        env: args.env,
        secrets,
        configs,
        ..Default::default()
    };
    Ok(ServiceSpec {
        annotations: Some(Annotations {
            name: args.name,
            labels: key_value_map(&args.label, "label")?,
        }),
        task: Some(swarm_proto::Shared::new(TaskSpec {
            runtime: Some(task_spec::Runtime::Container(container)),
            placement,
            ..Default::default()
        })),
        mode: Some(mode),
        ..Default::default()
    })
}

fn updated(mut spec: ServiceSpec, changes: ServiceUpdateArgs) -> anyhow::Result<ServiceSpec> {
    if let Some(replicas) = changes.replicas {
        match spec.mode.as_mut() {
            Some(service_spec::Mode::Replicated(replicated)) => replicated.replicas = replicas,
            _ => bail!("--replicas applies to replicated services only"),
        }
    }
    let task = swarm_proto::Shared::make_mut(spec.task.get_or_insert_with(Default::default));
    let task_spec::Runtime::Container(container) = task
        .runtime
        .get_or_insert_with(|| task_spec::Runtime::Container(Default::default()));
    if let Some(image) = changes.image {
        container.image = image;
    }
    for entry in changes.env {
        let key = entry.split_once('=').map_or(entry.as_str(), |(key, _)| key).to_string();
        container
            .env
            .retain(|existing| existing.split_once('=').map_or(existing.as_str(), |(k, _)| k) != key);
        container.env.push(entry);
    }
    Ok(spec)
}
