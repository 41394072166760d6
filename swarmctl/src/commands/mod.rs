//! The actions, one module per noun.

mod cluster;
mod data;
mod node;
mod service;
mod task;
mod watch;

use crate::cli::{Cli, Command};
use crate::connect::connect;
use swarm_proto::v1::{Config, Secret};

/// Runs the command line's command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Version => {
            println!("swarmctl {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Completion { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "swarmctl", &mut std::io::stdout());
            Ok(())
        }
        Command::Watch { kind } => watch::run(&cli.socket, kind).await,
        command => {
            let format = cli.format;
            let mut control = connect(&cli.socket).await?;
            match command {
                Command::Cluster(command) => cluster::run(&mut control, command, format).await,
                Command::Node(command) => node::run(&mut control, command, format).await,
                Command::Service(command) => service::run(&mut control, command, format).await,
                Command::Task(command) => task::run(&mut control, command, format).await,
                Command::Secret(command) => data::run::<Secret>(&mut control, command, format).await,
                Command::Config(command) => data::run::<Config>(&mut control, command, format).await,
                Command::Version | Command::Completion { .. } | Command::Watch { .. } => {
                    unreachable!("handled above")
                }
            }
        }
    }
}

/// The reply of an RPC, or its error's message alone (the status code is
/// for programs; the message names what is wrong).
pub(crate) fn reply<T>(result: Result<tonic::Response<T>, tonic::Status>) -> anyhow::Result<T> {
    result
        .map(tonic::Response::into_inner)
        .map_err(|status| anyhow::anyhow!("{}", status.message()))
}

/// The name in an object's annotations.
pub(crate) fn name(annotations: Option<&swarm_proto::v1::Annotations>) -> String {
    annotations
        .map(|annotations| annotations.name.clone())
        .unwrap_or_default()
}

/// `key=value` pairs, sorted, comma-separated.
pub(crate) fn labels(labels: &std::collections::HashMap<String, String>) -> String {
    let mut pairs: Vec<String> = labels.iter().map(|(key, value)| format!("{key}={value}")).collect();
    pairs.sort();
    pairs.join(", ")
}

/// Applies `--label-add` and `--label-rm` to `labels`.
pub(crate) fn change_labels(
    labels: &mut std::collections::HashMap<String, String>,
    changes: &crate::cli::LabelArgs,
) -> anyhow::Result<()> {
    for pair in &changes.label_add {
        let Some((key, value)) = pair.split_once('=').filter(|(key, _)| !key.is_empty()) else {
            anyhow::bail!("--label-add {pair:?} is not key=value");
        };
        labels.insert(key.to_string(), value.to_string());
    }
    for key in &changes.label_rm {
        if labels.remove(key).is_none() {
            anyhow::bail!("--label-rm {key:?}: no such label");
        }
    }
    Ok(())
}
