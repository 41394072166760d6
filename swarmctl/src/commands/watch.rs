//! `swarmctl watch`: every change to the store, live.

use std::io::Write as _;
use std::path::Path;

use swarm_proto::v1::watch_client::WatchClient;
use swarm_proto::v1::watch_request::WatchEntry;
use swarm_proto::v1::{ListFilters, WatchMessage, WatchRequest, object, store_action};

use super::{BadValue, name};
use crate::cli::WatchAction;
use crate::connect::{channel, connect};
use crate::filter::{Filter, Filters};
use crate::output::{self, Format};

/// The kinds a watch covers when none is named.
pub(crate) const ALL_KINDS: [&str; 6] = ["node", "service", "task", "cluster", "secret", "config"];

pub async fn run(
    socket: &Path,
    kinds: Vec<String>,
    actions: Vec<WatchAction>,
    filters: Vec<Filter>,
    resume_after: Option<u64>,
    format: Format,
) -> anyhow::Result<()> {
    let filters = Filters::new(filters, &TASK_KEYS)?;
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
    let selects_tasks = TASK_KEYS.iter().any(|key| filters.values(key).next().is_some());
    if selects_tasks && let Some(other) = kinds.iter().find(|kind| *kind != "task") {
        return Err(BadValue(format!(
            "--filter service= and node= select tasks; they cannot watch --kind {other}"
        ))
        .into());
    }
    // Resolved once, as the watch starts: a service created later under
    // the same name is another service.
    let (mut service_ids, mut node_ids) = (Vec::new(), Vec::new());
    if selects_tasks {
        let mut control = connect(socket).await?;
        for reference in filters.values("service") {
            service_ids.push(super::service::get(&mut control, reference).await?.id);
        }
        for reference in filters.values("node") {
            node_ids.push(super::node::get(&mut control, reference).await?.id);
        }
    }
    let entries = entries(&kinds, &actions, &service_ids, &node_ids, filters.list_filters())?;
    let request = WatchRequest {
        entries,
        include_commits: true,
        resume_after,
    };
    // An event carries whole objects, two for an update: as large as a
    // list's reply may be.
    let client = WatchClient::new(channel(socket).await?).max_decoding_message_size(crate::connect::MAX_REPLY_BYTES);
    let (lines, writer) = stdout_writer();
    let watched = watch_into(client, request, format, lines).await;
    // What stopped the output first (a closed pipe, say) is why the watch
    // ended, if it did; else the watch's own end, once all is printed.
    let written = writer
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the output thread panicked")));
    written?;
    watched
}

/// Streams the changes `request` asks for, each message's lines sent to
/// `lines`, resuming where it was when cut off for falling behind; ends
/// when the stream ends or the output has stopped.
async fn watch_into(
    mut client: WatchClient<tonic::transport::Channel>,
    mut request: WatchRequest,
    format: Format,
    lines: tokio::sync::mpsc::Sender<Vec<u8>>,
) -> anyhow::Result<()> {
    loop {
        let mut stream = super::reply(client.watch(request.clone()).await)?;
        let status = loop {
            match stream.message().await {
                Ok(Some(message)) => {
                    // Markers come with every message: where to resume.
                    request.resume_after = Some(message.commit_index);
                    let mut printed = Vec::new();
                    print(&mut printed, message, format)?;
                    if lines.send(printed).await.is_err() {
                        return Ok(()); // the output stopped, and says why
                    }
                }
                // A watch has no end of its own: the manager always says
                // why it ends one, unless its connection went first.
                Ok(None) => {
                    break tonic::Status::unavailable("the watch ended without a reason (the manager went away?)");
                }
                Err(status) => break status,
            }
        };
        // Cut off for falling behind: resume where it was, as long as the
        // manager keeps the changes since (else it says so, and this ends).
        match request.resume_after {
            Some(after) if status.code() == tonic::Code::ResourceExhausted => {
                eprintln!("swarmctl: the watch fell behind; resuming after commit {after}");
            }
            // Ended otherwise (the manager stopped, say): where a new watch
            // takes over, which with a narrow filter may be past the last
            // line printed (the manager marks its progress now and then).
            Some(after) if status.code() != tonic::Code::OutOfRange => {
                let ended = super::status_error(status, false);
                return Err(anyhow::anyhow!("{ended} (to go on: --resume-after {after})"));
            }
            _ => return Err(super::status_error(status, false)),
        }
    }
}

/// Messages waiting, at most, while standard output is slower than the
/// stream (besides the one being written): then the stream waits, and
/// the manager, if it waits long, cuts the watch off (and it resumes).
/// One: a message may be tens of megabytes.
const OUTPUT_QUEUE: usize = 1;

/// Standard output, written on a thread of its own: a reader slower than
/// the stream (a pager, a slow pipe) then holds that thread, never the
/// runtime, which must go on answering the connection's keepalive pings
/// (unanswered for 5 s, the connection is dropped) and reading the
/// stream. The thread ends when the sender is dropped, or on the first
/// error, which it returns.
fn stdout_writer() -> (
    tokio::sync::mpsc::Sender<Vec<u8>>,
    std::thread::JoinHandle<std::io::Result<()>>,
) {
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Vec<u8>>(OUTPUT_QUEUE);
    let writer = std::thread::spawn(move || {
        let mut stdout = std::io::stdout().lock();
        while let Some(printed) = receiver.blocking_recv() {
            stdout.write_all(&printed)?;
            stdout.flush()?;
        }
        Ok(())
    });
    (sender, writer)
}

/// The `--filter` keys of a watch that select tasks, besides `ls`'s.
const TASK_KEYS: [&str; 2] = ["service", "node"];

/// The request's entries: one per kind, service and node asked for (a
/// change must match one), each with the actions and the common filters.
/// No kind means every kind; no service or node, any.
fn entries(
    kinds: &[String],
    actions: &[i32],
    service_ids: &[String],
    node_ids: &[String],
    filters: ListFilters,
) -> Result<Vec<WatchEntry>, BadValue> {
    // An empty kind or ID is "any" to the manager.
    let any = [String::new()];
    let task = [String::from("task")];
    let kinds = match kinds {
        [] if !service_ids.is_empty() || !node_ids.is_empty() => &task[..],
        [] => &any[..],
        kinds => kinds,
    };
    let service_ids = if service_ids.is_empty() { &any[..] } else { service_ids };
    let node_ids = if node_ids.is_empty() { &any[..] } else { node_ids };
    let combinations = kinds.len() * service_ids.len() * node_ids.len();
    if combinations > MAX_ENTRIES {
        return Err(BadValue(format!(
            "{combinations} combinations of --kind, --filter service= and --filter node=; a watch takes at most {MAX_ENTRIES}"
        )));
    }
    let filters = (filters != ListFilters::default()).then_some(filters);
    let mut entries = Vec::with_capacity(combinations);
    for kind in kinds {
        for service_id in service_ids {
            for node_id in node_ids {
                entries.push(WatchEntry {
                    kind: kind.clone(),
                    actions: actions.to_vec(),
                    service_id: service_id.clone(),
                    node_id: node_id.clone(),
                    filters: filters.clone(),
                });
            }
        }
    }
    Ok(entries)
}

/// The most entries a manager takes in one watch.
const MAX_ENTRIES: usize = 64;

/// Prints one message of the stream: a line per event.
fn print(out: &mut Vec<u8>, message: WatchMessage, format: Format) -> anyhow::Result<()> {
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
            writeln!(out, "{line}")?;
            continue;
        }
        let (kind, id, object_name) = describe(object.object);
        writeln!(out, "{}\t{action}\t{kind}\t{id}\t{object_name}", message.commit_index)?;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|id| id.to_string()).collect()
    }

    #[test]
    fn entries_combine_kinds_services_and_nodes() {
        let everything = entries(&[], &[], &[], &[], ListFilters::default()).expect("entries");
        assert_eq!(everything, [WatchEntry::default()], "one entry: every change");

        let by_label = ListFilters {
            labels: ids(&["env=prod"]),
            ..Default::default()
        };
        let labelled = entries(&ids(&["config", "secret"]), &[1], &[], &[], by_label.clone()).expect("entries");
        assert_eq!(labelled.len(), 2);
        assert!(
            labelled
                .iter()
                .all(|entry| entry.filters.as_ref() == Some(&by_label) && entry.actions == [1])
        );

        // Services or nodes alone select tasks; each pair is an entry.
        let tasks = entries(&[], &[], &ids(&["s1", "s2"]), &ids(&["n1"]), ListFilters::default()).expect("entries");
        let pairs: Vec<(&str, &str, &str)> = tasks
            .iter()
            .map(|entry| (entry.kind.as_str(), entry.service_id.as_str(), entry.node_id.as_str()))
            .collect();
        assert_eq!(pairs, [("task", "s1", "n1"), ("task", "s2", "n1")]);
        assert!(tasks.iter().all(|entry| entry.filters.is_none()));
    }

    #[test]
    fn entries_beyond_what_a_manager_takes_are_refused() {
        let services: Vec<String> = (0..9).map(|n| format!("s{n}")).collect();
        let nodes: Vec<String> = (0..8).map(|n| format!("n{n}")).collect();
        assert_eq!(
            entries(&[], &[], &services[..8], &nodes, ListFilters::default())
                .expect("64 entries")
                .len(),
            64
        );
        let refused = entries(&[], &[], &services, &nodes, ListFilters::default()).expect_err("72 entries");
        assert!(refused.0.starts_with("72 combinations"), "{}", refused.0);
    }
}
