//! `swarmctl watch`: every change to the store, live.

use std::io::Write as _;
use std::path::Path;

use swarm_proto::v1::watch_client::WatchClient;
use swarm_proto::v1::watch_request::WatchEntry;
use swarm_proto::v1::{WatchMessage, WatchRequest, object, store_action};

use super::name;
use crate::cli::WatchAction;
use crate::connect::channel;
use crate::output::{self, Format};

/// The kinds a watch covers when none is named.
pub(crate) const ALL_KINDS: [&str; 6] = ["node", "service", "task", "cluster", "secret", "config"];

pub async fn run(
    socket: &Path,
    kinds: Vec<String>,
    actions: Vec<WatchAction>,
    resume_after: Option<u64>,
    format: Format,
) -> anyhow::Result<()> {
    // A kind or action named twice is watched once.
    let mut kinds: Vec<String> = kinds.iter().map(|kind| kind.to_lowercase()).collect();
    kinds.sort();
    kinds.dedup();
    let mut actions: Vec<i32> = actions
        .into_iter()
        .map(|action| {
            match action {
                WatchAction::Create => store_action::Kind::Create,
                WatchAction::Update => store_action::Kind::Update,
                WatchAction::Remove => store_action::Kind::Remove,
            }
            .into()
        })
        .collect();
    actions.sort_unstable();
    actions.dedup();
    // No entry means every kind and action; actions alone need every kind.
    let kinds = match (kinds.is_empty(), actions.is_empty()) {
        (true, false) => ALL_KINDS.map(String::from).to_vec(),
        _ => kinds,
    };
    let entries = kinds
        .into_iter()
        .map(|kind| WatchEntry {
            kind,
            actions: actions.clone(),
            ..Default::default()
        })
        .collect();
    let mut request = WatchRequest {
        entries,
        include_commits: true,
        resume_after,
    };
    // An event carries whole objects, two for an update: as large as a
    // list's reply may be.
    let mut client =
        WatchClient::new(channel(socket).await?).max_decoding_message_size(crate::connect::MAX_REPLY_BYTES);
    let mut stdout = std::io::stdout().lock();
    loop {
        let mut stream = super::reply(client.watch(request.clone()).await)?;
        let status = loop {
            match stream.message().await {
                Ok(Some(message)) => {
                    // Markers come with every message: where to resume.
                    request.resume_after = Some(message.commit_index);
                    print(&mut stdout, message, format)?;
                }
                Ok(None) => return Ok(()),
                Err(status) => break status,
            }
        };
        // Cut off for falling behind: resume where it was, as long as the
        // manager keeps the changes since (else it says so, and this ends).
        match request.resume_after {
            Some(after) if status.code() == tonic::Code::ResourceExhausted => {
                eprintln!("swarmctl: the watch fell behind; resuming after commit {after}");
            }
            _ => return Err(super::status_error(status, false)),
        }
    }
}

/// Prints one message of the stream: a line per event.
fn print(stdout: &mut std::io::StdoutLock<'_>, message: WatchMessage, format: Format) -> anyhow::Result<()> {
    for event in message.events {
        let action = store_action::Kind::try_from(event.action)
            .map(|kind| kind.as_str_name().trim_start_matches("KIND_").to_lowercase())
            .unwrap_or_default();
        let object = event.object.unwrap_or_default();
        if format == Format::Json {
            let mut line = serde_json::json!({
                "commitIndex": message.commit_index,
                "action": action,
                "kind": describe(object.object.clone()).0,
                "object": output::json_value(&object)?,
            });
            // An update says what it changed from, as SwarmKit's
            // watch does.
            if let Some(old) = &event.old_object {
                line["oldObject"] = output::json_value(old)?;
            }
            writeln!(stdout, "{line}")?;
            continue;
        }
        let (kind, id, object_name) = describe(object.object);
        writeln!(
            stdout,
            "{}\t{action}\t{kind}\t{id}\t{object_name}",
            message.commit_index
        )?;
    }
    stdout.flush()?;
    Ok(())
}

fn describe(object: Option<object::Object>) -> (&'static str, String, String) {
    match object {
        Some(object::Object::Node(node)) => {
            let hostname = node
                .description
                .map(|description| description.hostname)
                .unwrap_or_default();
            ("node", node.id, hostname)
        }
        Some(object::Object::Service(service)) => {
            let service_name = name(service.spec.as_ref().and_then(|spec| spec.annotations.as_ref()));
            ("service", service.id, service_name)
        }
        Some(object::Object::Task(task)) => ("task", task.id, task.service_id),
        Some(object::Object::Cluster(cluster)) => (
            "cluster",
            cluster.id,
            name(cluster.spec.as_ref().and_then(|spec| spec.annotations.as_ref())),
        ),
        Some(object::Object::Secret(secret)) => (
            "secret",
            secret.id,
            name(secret.spec.as_ref().and_then(|spec| spec.annotations.as_ref())),
        ),
        Some(object::Object::Config(config)) => (
            "config",
            config.id,
            name(config.spec.as_ref().and_then(|spec| spec.annotations.as_ref())),
        ),
        None => ("?", String::new(), String::new()),
    }
}
