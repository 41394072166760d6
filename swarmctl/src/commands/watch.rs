//! `swarmctl watch`: every change to the store, live.

use std::io::Write as _;

use prost::Message as _;
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
    // Until a message is printed, a watch that resumes goes on from where
    // it was asked to (one that does not gets its start marker first).
    let (lines, printed, writer) = stdout_writer(resume_after.unwrap_or(0));
    let watched = watch_into(socket, client, request, format, lines, &printed).await;
    match watched {
        // Ended with its output stalled: said now, what was not printed
        // given up (where to go on is the last commit printed).
        Err(Ended::Stalled(ended)) => Err(ended),
        Err(Ended::Said(ended)) => {
            // What stopped the output first (a closed pipe, say) is why
            // the watch ended, if it did; else the watch's own end, once
            // all is printed.
            join(writer)?;
            Err(ended)
        }
        Ok(()) => join(writer),
    }
}

/// Waits for the output thread; its error, if it had one.
fn join(writer: std::thread::JoinHandle<std::io::Result<()>>) -> anyhow::Result<()> {
    writer
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the output thread panicked")))?;
    Ok(())
}

/// How a watch ended, other than by its output stopping.
enum Ended {
    /// Said once every line received is printed.
    Said(anyhow::Error),
    /// Said at once: the output was stalled (a reader that stopped
    /// reading) when the stream ended.
    Stalled(anyhow::Error),
}

/// What a watch holds of the stream, at most, while its output is slower
/// (past it, it resumes once the output takes again, from what the
/// manager keeps: 20,000 changes, 128 MiB).
const HELD_BYTES: usize = 4 << 20;

/// How long a watch whose stream ended waits for its output to take what
/// it received before it says so, and where to go on, without it.
const OUTPUT_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Streams the changes `request` asks for, each message's lines sent to
/// `lines` with its commit index (`printed` is the last one written out),
/// resuming where it was when cut off for falling behind; ends when the
/// stream ends or the output has stopped.
///
/// The stream is read on while the output is slower, so that its end is
/// heard even when the output is stalled (`swarmctl watch | less`, left
/// alone): up to [`HELD_BYTES`] of messages are held, later ones are let
/// go of, and the watch then resumes after the last one the output took.
async fn watch_into(
    socket: &Path,
    mut client: WatchClient<tonic::transport::Channel>,
    mut request: WatchRequest,
    format: Format,
    lines: tokio::sync::mpsc::Sender<Printed>,
    printed: &std::sync::atomic::AtomicU64,
) -> Result<(), Ended> {
    let no_reason = || tonic::Status::unavailable("the watch ended without a reason (the manager went away?)");
    loop {
        let mut stream = super::reply(client.watch(request.clone()).await).map_err(Ended::Said)?;
        let mut held = std::collections::VecDeque::<WatchMessage>::new();
        let mut held_bytes = 0;
        let mut let_go = false;
        let mut ended: Option<tonic::Status> = None;
        // Set once the stream ended with the output behind.
        let mut give_up_at: Option<tokio::time::Instant> = None;
        let status = loop {
            let message = match (held.pop_front(), ended.take()) {
                (Some(message), end) => {
                    held_bytes -= message.encoded_len();
                    ended = end;
                    message
                }
                (None, Some(status)) => break status,
                // Messages were let go of after the last one taken.
                (None, None) if let_go => break tonic::Status::resource_exhausted("the output is slower"),
                (None, None) => {
                    let received = tokio::select! {
                        received = stream.message() => received,
                        () = output_gone(&lines) => return Ok(()),
                    };
                    match received {
                        Ok(Some(message)) => message,
                        // A watch has no end of its own: the manager always
                        // says why it ends one, unless its connection went
                        // first.
                        Ok(None) => break no_reason(),
                        Err(status) => break status,
                    }
                }
            };
            // Markers come with every message: where to resume.
            request.resume_after = Some(message.commit_index);
            let commit_index = message.commit_index;
            let mut bytes = Vec::new();
            print(&mut bytes, message, format).map_err(Ended::Said)?;
            let send = lines.send(Printed { bytes, commit_index });
            tokio::pin!(send);
            loop {
                let give_up = async {
                    match give_up_at {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    sent = &mut send => {
                        if sent.is_err() {
                            return Ok(()); // the output stopped, and says why
                        }
                        break;
                    }
                    received = stream.message(), if ended.is_none() => match received {
                        Ok(Some(message)) if !let_go && held_bytes + message.encoded_len() <= HELD_BYTES => {
                            held_bytes += message.encoded_len();
                            held.push_back(message);
                        }
                        Ok(Some(_)) => let_go = true,
                        Ok(None) => ended = Some(no_reason()),
                        Err(status) => ended = Some(status),
                    },
                    () = give_up => {
                        let after = printed.load(std::sync::atomic::Ordering::Acquire);
                        let status = ended.take().unwrap_or_else(no_reason);
                        let ended = super::stream_error(status);
                        return Err(Ended::Stalled(anyhow::anyhow!(
                            "{ended} (the output stalled: what came after commit {after} was not printed, its \
                             last line perhaps cut short; to go on: --resume-after {after})"
                        )));
                    }
                }
                if give_up_at.is_none()
                    && ended
                        .as_ref()
                        .is_some_and(|status| status.code() != tonic::Code::ResourceExhausted)
                {
                    give_up_at = Some(tokio::time::Instant::now() + OUTPUT_GRACE);
                }
            }
        };
        // Cut off for falling behind, or output slower than the stream:
        // resume where it was, as long as the manager keeps the changes
        // since (else it says so, and this ends).
        match request.resume_after {
            Some(after) if status.code() == tonic::Code::ResourceExhausted => {
                eprintln!("swarmctl: the watch fell behind; resuming after commit {after}");
            }
            // Ended otherwise (the manager stopped, say): where a new watch
            // takes over, which with a narrow filter may be past the last
            // line printed (the manager marks its progress now and then).
            Some(after) if status.code() != tonic::Code::OutOfRange => {
                return Err(Ended::Said(ended_at(socket, status, after).await));
            }
            _ => return Err(Ended::Said(super::stream_error(status))),
        }
    }
}

/// Why a watch ended, with where a new one takes over. Where its
/// connection was only lost, a new one finds out why: hyper drops a
/// connection whose keepalive pings go unanswered, and a stream on it
/// learns only of a "broken pipe".
async fn ended_at(socket: &Path, status: tonic::Status, after: u64) -> anyhow::Error {
    let ended = if super::only_lost(&status) {
        match probe(socket).await {
            Probe::Answers => super::stream_error(status),
            Probe::Unreachable => {
                anyhow::anyhow!("swarmd is no longer reachable (it stopped?): the watch's connection was lost")
            }
            Probe::Silent => anyhow::anyhow!(
                "swarmd stopped answering: the watch's connection was dropped, and a new request got no reply \
                 within {}s",
                PROBE_TIMEOUT.as_secs()
            ),
        }
    } else {
        super::stream_error(status)
    };
    anyhow::anyhow!("{ended} (to go on: --resume-after {after})")
}

/// How long swarmd may take to answer the probe of a lost watch: far
/// longer than a live one takes to say what it is.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// What a request on a new connection finds.
enum Probe {
    Answers,
    /// Nothing serves the socket any more.
    Unreachable,
    /// The connection is taken, and no answer comes.
    Silent,
}

async fn probe(socket: &Path) -> Probe {
    let asked = async {
        let Ok(control) = connect(socket).await else {
            return Probe::Unreachable;
        };
        // Any answer, a refusal too, says it runs.
        let _ = control.info().await;
        Probe::Answers
    };
    tokio::time::timeout(PROBE_TIMEOUT, asked)
        .await
        .unwrap_or(Probe::Silent)
}

/// One message's lines, and the commit it came from.
struct Printed {
    bytes: Vec<u8>,
    commit_index: u64,
}

/// Messages waiting, at most, while standard output is slower than the
/// stream (besides the one being written). One: a message may be tens of
/// megabytes.
const OUTPUT_QUEUE: usize = 1;

/// Standard output, written on a thread of its own: a reader slower than
/// the stream (a pager, a slow pipe) then holds that thread, never the
/// runtime, which must go on answering the connection's keepalive pings
/// (unanswered for 5 s, the connection is dropped) and reading the
/// stream. The thread notes the commit index of each message it wrote
/// out (from `printed_from`), and ends when the sender is dropped, or on
/// the first error, which it returns.
fn stdout_writer(
    printed_from: u64,
) -> (
    tokio::sync::mpsc::Sender<Printed>,
    std::sync::Arc<std::sync::atomic::AtomicU64>,
    std::thread::JoinHandle<std::io::Result<()>>,
) {
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Printed>(OUTPUT_QUEUE);
    let printed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(printed_from));
    let written = std::sync::Arc::clone(&printed);
    let writer = std::thread::spawn(move || {
        let mut stdout = std::io::stdout().lock();
        while let Some(Printed { bytes, commit_index }) = receiver.blocking_recv() {
            stdout.write_all(&bytes)?;
            stdout.flush()?;
            if commit_index > 0 {
                written.store(commit_index, std::sync::atomic::Ordering::Release);
            }
        }
        Ok(())
    });
    (sender, printed, writer)
}

/// How often a watch waiting for changes looks whether its reader left.
const OUTPUT_CHECK: std::time::Duration = std::time::Duration::from_millis(100);

/// Resolves once standard output takes no more: its thread stopped (a
/// write failed), or its reader went away (`| head -1` had its line, a
/// terminal closed), seen without a next line to fail on: a quiet
/// cluster may make no change for hours.
async fn output_gone(lines: &tokio::sync::mpsc::Sender<Printed>) {
    let reader_left = async {
        loop {
            tokio::time::sleep(OUTPUT_CHECK).await;
            if stdout_reader_left() {
                return;
            }
        }
    };
    tokio::select! {
        () = lines.closed() => {}
        () = reader_left => {}
    }
}

/// Whether standard output's reader went away: a pipe whose read end is
/// closed polls as an error, a hung-up terminal or socket as a hang-up. (A
/// file or a live terminal polls as neither.)
fn stdout_reader_left() -> bool {
    let mut stdout = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid `pollfd`, and no wait.
    let ready = unsafe { libc::poll(&mut stdout, 1, 0) };
    ready > 0 && stdout.revents & (libc::POLLERR | libc::POLLHUP) != 0
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
