//! The actions, one module per noun.

mod cluster;
mod data;
mod info;
mod node;
mod service;
mod task;
pub(crate) mod watch;

use crate::cli::{Cli, Command};
use crate::connect::connect;
use crate::output::Format;
use swarm_proto::v1::{Config, Secret};

/// Runs the command line's command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Version => {
            let client = env!("CARGO_PKG_VERSION");
            if cli.format == Format::Json {
                // The client's version is printed even when the daemon's
                // cannot be had, as with a table.
                let daemon = async { connect(&cli.socket).await?.info().await }.await;
                let server = daemon.as_ref().ok().map(|info| info.version.as_str());
                crate::output::print_json(&serde_json::json!({ "client": client, "server": server }))?;
                return daemon.map(drop);
            }
            println!("swarmctl {client}");
            let daemon = connect(&cli.socket).await?.info().await?;
            println!("swarmd {}", daemon.version);
            Ok(())
        }
        Command::Completion { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            // Written by us, not by clap_complete, which panics on a write
            // error such as a closed pipe.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "swarmctl", &mut script);
            std::io::Write::write_all(&mut std::io::stdout().lock(), &script)?;
            Ok(())
        }
        Command::Watch {
            kind,
            action,
            filter,
            resume_after,
        } => watch::run(&cli.socket, kind, action, filter, resume_after, cli.format).await,
        command => {
            let format = cli.format;
            let mut control = connect(&cli.socket).await?;
            match command {
                Command::Info => info::run(&control, format).await,
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

/// Prints `Error: ` and `err` with its causes on stderr. A stderr that is
/// gone (`2>&1 | head`) is no reason to panic, as `eprintln!` would.
pub(crate) fn print_error(err: &anyhow::Error) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "Error: {err:#}");
}

/// A command over several objects, run as docker runs one: each object's
/// error is printed as it comes and the rest still run; the command fails
/// at the end if any did.
#[derive(Default)]
pub(crate) struct EachObject {
    failed: usize,
}

impl EachObject {
    /// Notes how one object went, printing its error.
    pub(crate) fn record(&mut self, result: anyhow::Result<()>) {
        if let Err(err) = result {
            print_error(&err);
            self.failed += 1;
        }
    }

    /// The command's outcome: [`Reported`] if any object failed.
    pub(crate) fn finish(self) -> anyhow::Result<()> {
        if self.failed > 0 {
            return Err(Reported.into());
        }
        Ok(())
    }
}

/// `inspect` of the objects `references` name, as docker's: each fetched
/// with `get`; for people each object's `fields`, a blank line between
/// two; in JSON an array of those found, one reference or several, so that
/// a script reads the same shape whatever it asked. One that fails prints
/// its error, the rest still print, and the command fails at the end.
pub(crate) async fn inspect_each<T: prost::Message + prost::Name>(
    references: &[String],
    format: Format,
    mut get: impl AsyncFnMut(&str) -> anyhow::Result<T>,
    fields: impl Fn(&T) -> Vec<(&'static str, String)>,
) -> anyhow::Result<()> {
    let mut each = EachObject::default();
    let mut found = Vec::new();
    let mut printed_one = false;
    for reference in references {
        // An object that cannot be had is reported and skipped; output that
        // cannot be written (the reader went away) ends the command.
        let object = match get(reference).await {
            Ok(object) => object,
            Err(err) => {
                each.record(Err(err));
                continue;
            }
        };
        match format {
            Format::Json => found.push(object),
            Format::Table => {
                if std::mem::replace(&mut printed_one, true) {
                    // Not `println!`, which panics when the reader went
                    // away (`| head`).
                    std::io::Write::write_all(&mut std::io::stdout(), b"\n")?;
                }
                crate::output::fields(&fields(&object))?;
            }
        }
    }
    if format == Format::Json {
        crate::output::json_list(&found)?;
    }
    each.finish()
}

/// A flag's value that does not parse, found after clap's own parsing:
/// a usage error, exit 2 as clap's are.
#[derive(Debug)]
pub struct BadValue(pub String);

impl std::fmt::Display for BadValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadValue {}

/// A failure whose errors were printed already: the command exits 1
/// without another line.
#[derive(Debug)]
pub struct Reported;

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("errors were reported")
    }
}

impl std::error::Error for Reported {}

/// The reply of an RPC, or its error's message alone (the status code is
/// for programs; the message names what is wrong).
pub(crate) fn reply<T>(result: Result<tonic::Response<T>, tonic::Status>) -> anyhow::Result<T> {
    result
        .map(tonic::Response::into_inner)
        .map_err(|status| status_error(status, false))
}

/// As [`reply`], for a request that changes something: if the connection
/// failed, the change may have been made all the same, and the error says
/// so.
pub(crate) fn change_reply<T>(result: Result<tonic::Response<T>, tonic::Status>) -> anyhow::Result<T> {
    result
        .map(tonic::Response::into_inner)
        .map_err(|status| status_error(status, true))
}

/// The error a status means to the operator. A status swarmd sent has no
/// source: its message says what is wrong. One made here from a failed
/// connection has one, and its message alone ("http2 error", "h2
/// protocol error") says little; a change sent over it (`a_change`) may
/// have been made all the same, which the operator must know before trying
/// again.
pub(crate) fn status_error(status: tonic::Status, a_change: bool) -> anyhow::Error {
    // A read is never a change, also where it came first in a command that
    // changes something (an update reads the spec it changes): said, as the
    // operator of a command cut short asks.
    let hint = if a_change {
        " (the change may have been made all the same: look before trying again)"
    } else {
        " (this request changed nothing)"
    };
    described(status, hint)
}

/// As [`status_error`], for a watch's stream, which changes nothing: how
/// it ended is what its operator needs.
pub(crate) fn stream_error(status: tonic::Status) -> anyhow::Error {
    described(status, "")
}

/// The error `status` means, with `hint` where the connection failed
/// after the request may have been sent.
fn described(status: tonic::Status, hint: &str) -> anyhow::Error {
    match std::error::Error::source(&status) {
        Some(cause) => {
            let cause = crate::connect::root_cause(cause);
            // Dialing again after the connection dropped, refused: this
            // request never reached swarmd, so it made no change.
            if refused(cause) {
                return anyhow::anyhow!("swarmd is no longer reachable (it stopped?): {cause}");
            }
            // The keepalive pings went unanswered: a daemon hung, or one
            // that only accepts.
            if went_unanswered(&status) {
                let within = 2 * crate::connect::KEEP_ALIVE.as_secs();
                return anyhow::anyhow!("swarmd stopped answering: no reply within {within}s{hint}");
            }
            anyhow::anyhow!("the connection to swarmd was lost: {cause}{hint}")
        }
        // Someone else's change came first; this one was made on what was
        // read before it, and nothing of it was stored.
        None if status.code() == tonic::Code::Aborted => anyhow::anyhow!(
            "{} (it changed while this command ran; nothing was changed: run it again)",
            status.message()
        ),
        None => anyhow::anyhow!("{}", status.message()),
    }
}

/// Whether `cause` is a refusal to connect: nothing listens on the socket.
fn refused(cause: &(dyn std::error::Error + 'static)) -> bool {
    cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
        matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
        )
    })
}

/// Whether `status` says only that the connection was lost: neither that
/// dialing again was refused nor that its pings went unanswered, so
/// whether swarmd still runs is unknown.
pub(crate) fn only_lost(status: &tonic::Status) -> bool {
    std::error::Error::source(status)
        .is_some_and(|cause| !refused(crate::connect::root_cause(cause)) && !went_unanswered(status))
}

/// Whether the connection under `status` was dropped for its keepalive
/// pings going unanswered. hyper says so with an error of its own,
/// "keep-alive timed out", whose type it does not export (its source
/// reads "operation timed out", as a bare cause would be shown).
fn went_unanswered(status: &tonic::Status) -> bool {
    let mut cause = std::error::Error::source(status);
    while let Some(error) = cause {
        if error.to_string() == "keep-alive timed out"
            || error
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cause = error.source();
    }
    false
}

/// A protobuf enum value's name without its `prefix`, in lower case with
/// dashes: `ORDER_START_FIRST` as `start-first`.
pub(crate) fn enum_word(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix)
        .unwrap_or(name)
        .replace('_', "-")
        .to_ascii_lowercase()
}

/// The name in an object's annotations.
pub(crate) fn name(annotations: Option<&swarm_proto::v1::Annotations>) -> String {
    annotations
        .map(|annotations| annotations.name.clone())
        .unwrap_or_default()
}

/// The `Created` and `Updated` lines of an inspection.
pub(crate) fn meta_times(meta: Option<&swarm_proto::v1::Meta>) -> [(&'static str, String); 2] {
    [
        (
            "Created",
            crate::output::moment(meta.and_then(|meta| meta.created_at.as_ref())),
        ),
        (
            "Updated",
            crate::output::moment(meta.and_then(|meta| meta.updated_at.as_ref())),
        ),
    ]
}

/// `key=value` pairs, sorted, comma-separated (a table's cell).
pub(crate) fn labels(labels: &std::collections::HashMap<String, String>) -> String {
    label_pairs(labels).join(", ")
}

/// `key=value` pairs, sorted.
pub(crate) fn label_pairs(labels: &std::collections::HashMap<String, String>) -> Vec<String> {
    let mut pairs: Vec<String> = labels.iter().map(|(key, value)| format!("{key}={value}")).collect();
    pairs.sort();
    pairs
}

/// Applies `--label-add` and `--label-rm` to `labels`.
pub(crate) fn change_labels(
    labels: &mut std::collections::HashMap<String, String>,
    changes: &crate::cli::LabelArgs,
) -> anyhow::Result<()> {
    change_map(labels, &changes.label_add, &changes.label_rm, "label")
}

/// Applies `--FLAG-add key=value` (add or replace) and `--FLAG-rm key`
/// (which must be there) to `map`.
pub(crate) fn change_map(
    map: &mut std::collections::HashMap<String, String>,
    add: &[String],
    remove: &[String],
    flag: &str,
) -> anyhow::Result<()> {
    let added = key_values(add, &format!("{flag}-add"))?;
    refuse_added_and_removed(flag, added.keys().map(String::as_str), remove)?;
    map.extend(added);
    // Each checked before any goes: a key named twice is removed once.
    if let Some(missing) = remove.iter().find(|key| !map.contains_key(*key)) {
        anyhow::bail!("--{flag}-rm {missing:?}: no such {}", flag.replace('-', " "));
    }
    for key in remove {
        map.remove(key);
    }
    Ok(())
}

/// Refuses a key both added (`--FLAG-add`) and removed (`--FLAG-rm`) in one
/// command, and a removal with no key: docker would add it, then remove
/// it, where the one who wrote both most likely meant to replace it
/// (which the add alone does).
pub(crate) fn refuse_added_and_removed<'a>(
    flag: &str,
    added: impl Iterator<Item = &'a str>,
    removed: &[String],
) -> Result<(), BadValue> {
    refuse_both(flag, added, removed, &format!("--{flag}-add alone replaces it"))
}

/// Refuses what is both added (`--FLAG-add`) and removed (`--FLAG-rm`)
/// in one command, or a removal of nothing, saying `advice`: docker
/// applies the add, then the removal, and keeps it or not as the kind
/// goes (a constraint and a mount are gone, an environment variable
/// too, a port or a placement preference stays); one command here means
/// one thing.
pub(crate) fn refuse_both<'a>(
    flag: &str,
    mut added: impl Iterator<Item = &'a str>,
    removed: &[String],
    advice: &str,
) -> Result<(), BadValue> {
    if removed.iter().any(String::is_empty) {
        return Err(BadValue(format!("--{flag}-rm \"\" has no key")));
    }
    match added.find(|key| removed.iter().any(|removed| removed == key)) {
        Some(key) => Err(BadValue(format!(
            "--{flag}-add and --{flag}-rm both name {key:?}: {advice}"
        ))),
        None => Ok(()),
    }
}

/// `key=value` (or `key`, for an empty value) flags (`--FLAG`) as a map.
pub(crate) fn key_values(pairs: &[String], flag: &str) -> anyhow::Result<std::collections::HashMap<String, String>> {
    pairs
        .iter()
        .map(|pair| {
            // `key` alone is a label with an empty value, as in docker.
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if key.is_empty() {
                return Err(BadValue(format!("--{flag} {pair:?} has no key: write key=value or key")).into());
            }
            Ok((key.to_string(), value.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_both_added_and_removed_or_a_removal_without_a_key_is_refused() {
        let removed = |keys: &[&str]| keys.iter().map(|key| key.to_string()).collect::<Vec<_>>();
        let mut labels = std::collections::HashMap::from([("a".to_string(), "1".to_string())]);
        let both = change_map(&mut labels, &["a=3".into()], &removed(&["a"]), "label").expect_err("refused");
        assert_eq!(
            both.to_string(),
            "--label-add and --label-rm both name \"a\": --label-add alone replaces it"
        );
        assert!(both.downcast_ref::<BadValue>().is_some(), "a usage error");
        let empty = change_map(&mut labels, &[], &removed(&[""]), "label").expect_err("refused");
        assert!(empty.downcast_ref::<BadValue>().is_some(), "{empty}");
        assert_eq!(labels["a"], "1", "nothing changed");
        change_map(&mut labels, &["b=2".into()], &removed(&["a"]), "label").expect("different keys");
        assert_eq!(
            labels,
            std::collections::HashMap::from([("b".to_string(), "2".to_string())])
        );
    }

    #[test]
    fn a_lost_connection_warns_of_a_change_made_unless_dialing_again_was_refused() {
        let lost = |kind: std::io::ErrorKind| {
            let cause: Box<dyn std::error::Error + Send + Sync> = Box::new(std::io::Error::from(kind));
            status_error(tonic::Status::from_error(cause), true).to_string()
        };
        let broken = lost(std::io::ErrorKind::BrokenPipe);
        assert!(
            broken.contains("the change may have been made all the same"),
            "{broken}"
        );
        let read: Box<dyn std::error::Error + Send + Sync> =
            Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        let read = status_error(tonic::Status::from_error(read), false).to_string();
        assert_eq!(
            read, "the connection to swarmd was lost: connection reset (this request changed nothing)",
            "a read says so"
        );
        let silent = lost(std::io::ErrorKind::TimedOut);
        assert!(
            silent.starts_with("swarmd stopped answering: no reply within 10s"),
            "{silent}"
        );
        for never_sent in [std::io::ErrorKind::ConnectionRefused, std::io::ErrorKind::NotFound] {
            let refused = lost(never_sent);
            assert!(refused.starts_with("swarmd is no longer reachable"), "{refused}");
            assert!(!refused.contains("may have been made"), "{refused}");
        }
    }

    #[test]
    fn refusals_that_ask_for_a_retry_say_so() {
        let other = tonic::Status::not_found("service \"web\" not found");
        assert_eq!(status_error(other, false).to_string(), "service \"web\" not found");
        let stale = tonic::Status::aborted("service x was changed");
        assert!(
            status_error(stale, true)
                .to_string()
                .ends_with("nothing was changed: run it again)")
        );
    }
}
