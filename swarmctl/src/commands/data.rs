//! `swarmctl secret ...` and `swarmctl config ...`: named data given to
//! services; a secret's data is never shown.

use anyhow::Context as _;
use swarm_proto::v1::{
    Annotations, ConfigSpec, CreateConfigRequest, CreateSecretRequest, ListConfigsRequest, ListSecretsRequest,
    RemoveConfigRequest, RemoveSecretRequest, SecretSpec,
};

use super::{labels, name, reply};
use crate::cli::DataCommand;
use crate::connect::Control;
use crate::{output, resolve};

/// One secret or config as listed.
struct Item {
    id: String,
    name: String,
    labels: String,
    version: u64,
}

pub async fn run_secret(control: &mut Control, command: DataCommand) -> anyhow::Result<()> {
    match command {
        DataCommand::Create { name, file } => {
            let data = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let spec = SecretSpec {
                annotations: Some(Annotations {
                    name,
                    ..Default::default()
                }),
                data,
            };
            let secret = reply(control.create_secret(CreateSecretRequest { spec: Some(spec) }).await)?;
            println!("{}", secret.secret.unwrap_or_default().id);
        }
        DataCommand::Rm { references } => {
            for reference in references {
                let secret_id = resolve::pick("secret", &reference, &candidates(&secrets(control).await?))?;
                reply(
                    control
                        .remove_secret(RemoveSecretRequest {
                            secret_id: secret_id.clone(),
                        })
                        .await,
                )?;
                println!("{secret_id}");
            }
        }
        command => show("secret", secrets(control).await?, command)?,
    }
    Ok(())
}

pub async fn run_config(control: &mut Control, command: DataCommand) -> anyhow::Result<()> {
    match command {
        DataCommand::Create { name, file } => {
            let data = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let spec = ConfigSpec {
                annotations: Some(Annotations {
                    name,
                    ..Default::default()
                }),
                data,
            };
            let config = reply(control.create_config(CreateConfigRequest { spec: Some(spec) }).await)?;
            println!("{}", config.config.unwrap_or_default().id);
        }
        DataCommand::Rm { references } => {
            for reference in references {
                let config_id = resolve::pick("config", &reference, &candidates(&configs(control).await?))?;
                reply(
                    control
                        .remove_config(RemoveConfigRequest {
                            config_id: config_id.clone(),
                        })
                        .await,
                )?;
                println!("{config_id}");
            }
        }
        command => show("config", configs(control).await?, command)?,
    }
    Ok(())
}

fn candidates(items: &[Item]) -> Vec<(String, String)> {
    items.iter().map(|item| (item.id.clone(), item.name.clone())).collect()
}

fn show(kind: &str, items: Vec<Item>, command: DataCommand) -> anyhow::Result<()> {
    match command {
        DataCommand::Ls(list) => {
            let rows = items
                .into_iter()
                .map(|item| vec![item.id, item.name, item.labels])
                .collect();
            output::table(&["ID", "NAME", "LABELS"], rows, list.quiet)?;
        }
        DataCommand::Inspect { reference } => {
            let id = resolve::pick(kind, &reference, &candidates(&items))?;
            let item = items
                .into_iter()
                .find(|item| item.id == id)
                .context("listed a moment ago")?;
            output::fields(&[
                ("ID", item.id),
                ("Name", item.name),
                ("Labels", item.labels),
                ("Version", item.version.to_string()),
            ])?;
        }
        DataCommand::Create { .. } | DataCommand::Rm { .. } => unreachable!("handled by the caller"),
    }
    Ok(())
}

async fn secrets(control: &mut Control) -> anyhow::Result<Vec<Item>> {
    let secrets = reply(control.list_secrets(ListSecretsRequest::default()).await)?.secrets;
    Ok(secrets
        .into_iter()
        .map(|secret| {
            let annotations = secret.spec.and_then(|spec| spec.annotations);
            Item {
                id: secret.id,
                name: name(annotations.as_ref()),
                labels: labels(&annotations.unwrap_or_default().labels),
                version: secret.meta.map_or(0, |meta| meta.version),
            }
        })
        .collect())
}

async fn configs(control: &mut Control) -> anyhow::Result<Vec<Item>> {
    let configs = reply(control.list_configs(ListConfigsRequest::default()).await)?.configs;
    Ok(configs
        .into_iter()
        .map(|config| {
            let annotations = config.spec.and_then(|spec| spec.annotations);
            Item {
                id: config.id,
                name: name(annotations.as_ref()),
                labels: labels(&annotations.unwrap_or_default().labels),
                version: config.meta.map_or(0, |meta| meta.version),
            }
        })
        .collect())
}
