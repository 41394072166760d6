//! Aligned tables, as SwarmKit's swarmctl prints them (elastic tabstops),
//! and JSON for scripts (`--format json`).

use std::io::Write as _;

/// Prints `rows` under `header`, columns aligned; with `quiet`, only the
/// first column (the ID) of each row.
pub fn table(header: &[&str], rows: Vec<Vec<String>>, quiet: bool) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if quiet {
        for row in rows {
            writeln!(out, "{}", row.first().map(String::as_str).unwrap_or_default())?;
        }
        return Ok(());
    }
    let mut writer = tabwriter::TabWriter::new(out).padding(3);
    writeln!(writer, "{}", header.join("\t"))?;
    for row in rows {
        let cells: Vec<_> = row.iter().map(|cell| printable(cell)).collect();
        writeln!(writer, "{}", cells.join("\t"))?;
    }
    writer.flush()
}

/// Prints `fields` as `Name: value` lines, names aligned; a field with no
/// name goes on the line of the one before ([`list`]).
pub fn fields(fields: &[(&str, String)]) -> std::io::Result<()> {
    let mut writer = tabwriter::TabWriter::new(std::io::stdout().lock()).padding(1);
    for (name, value) in fields {
        match *name {
            "" => writeln!(writer, "\t{}", printable(value))?,
            name => writeln!(writer, "{name}:\t{}", printable(value))?,
        }
    }
    writer.flush()
}

/// Field `name` as [`fields`] prints it with one line per item (a value
/// with no items: none): joined on one line, an item that holds ", " (a
/// label's value, a path) would read as two.
pub fn list(name: &'static str, items: Vec<String>) -> Vec<(&'static str, String)> {
    if items.is_empty() {
        return vec![(name, String::new())];
    }
    let names = std::iter::once(name).chain(std::iter::repeat(""));
    names.zip(items).collect()
}

/// `text` with its control characters escaped as Rust writes them (`\n`,
/// `\t`, `\u{1b}`): a label value may hold any, and printed raw one would
/// break a table's rows or send escape sequences to the terminal.
fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let escaped = text
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect();
    std::borrow::Cow::Owned(escaped)
}

/// How lists and inspections print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned tables and `Name: value` lines, for people.
    Table,
    /// The objects themselves, in protobuf's JSON mapping but with 64-bit
    /// integers as numbers (as docker prints them; Raft ids as text), for
    /// scripts (a list prints an array).
    Json,
}

/// Prints `objects` as one JSON array.
pub fn json_list<T: prost::Message + prost::Name>(objects: &[T]) -> anyhow::Result<()> {
    let descriptor = descriptor::<T>()?;
    let values = objects
        .iter()
        .map(|object| to_json(&descriptor, object))
        .collect::<anyhow::Result<Vec<_>>>()?;
    print_json(&serde_json::Value::Array(values))
}

/// One object as a JSON value, as `json_one` prints it.
pub fn json_value<T: prost::Message + prost::Name>(object: &T) -> anyhow::Result<serde_json::Value> {
    to_json(&descriptor::<T>()?, object)
}

/// Prints one object as JSON.
pub fn json_one<T: prost::Message + prost::Name>(object: &T) -> anyhow::Result<()> {
    print_json(&to_json(&descriptor::<T>()?, object)?)
}

/// Prints `value` as indented JSON.
pub fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// The descriptor of `T`, from the API's own descriptor set, decoded once
/// per process: decoding it takes milliseconds, and a watch printing JSON
/// asks for a descriptor per event (it fell behind a few hundred writes a
/// second when each decoded the set again).
fn descriptor<T: prost::Name>() -> anyhow::Result<prost_reflect::MessageDescriptor> {
    static POOL: std::sync::OnceLock<Result<prost_reflect::DescriptorPool, String>> = std::sync::OnceLock::new();
    let pool = POOL
        .get_or_init(|| {
            prost_reflect::DescriptorPool::decode(swarm_proto::FILE_DESCRIPTOR_SET).map_err(|err| err.to_string())
        })
        .as_ref()
        .map_err(|err| anyhow::anyhow!("the API's descriptor set does not decode: {err}"))?;
    let name = T::full_name();
    pool.get_message_by_name(&name)
        .ok_or_else(|| anyhow::anyhow!("no descriptor for {name}"))
}

/// The object in protobuf's JSON mapping (field names in lowerCamelCase,
/// enums by name, timestamps in RFC 3339), read back through its
/// descriptor: the generated types carry no serde code. Two choices for
/// scripts: 64-bit integers print as numbers, not strings, and fields at
/// their default value print too, so that a script finds `"replicas": 0`
/// rather than nothing.
fn to_json<T: prost::Message>(
    descriptor: &prost_reflect::MessageDescriptor,
    object: &T,
) -> anyhow::Result<serde_json::Value> {
    let message = prost_reflect::DynamicMessage::decode(descriptor.clone(), object.encode_to_vec().as_slice())?;
    let options = prost_reflect::SerializeOptions::new()
        .stringify_64_bit_integers(false)
        .skip_default_fields(false);
    // Through text, not straight into a value: a value holds a 32-bit float
    // as the 64-bit one nearest to it (0.3 as 0.30000001192092896), text
    // as the shortest that reads back the same (0.3).
    let mut text = Vec::new();
    message.serialize_with_options(&mut serde_json::Serializer::new(&mut text), &options)?;
    let mut value = serde_json::from_slice(&text)?;
    raft_ids_as_text(&mut value);
    without_secret_data(descriptor.full_name(), &mut value);
    Ok(value)
}

/// `value` (a `name` message) without a secret's `data`: the manager never
/// returns it, and an empty `"data": ""` would read as an empty secret.
fn without_secret_data(name: &str, value: &mut serde_json::Value) {
    let secret = match name {
        "swarm.v1.Secret" => Some(value),
        // A watch event's object.
        "swarm.v1.Object" => value.get_mut("secret"),
        _ => None,
    };
    if let Some(spec) = secret
        .and_then(|secret| secret.get_mut("spec"))
        .and_then(|spec| spec.as_object_mut())
    {
        spec.remove("data");
    }
}

/// Raft member ids as decimal text, as the Info API gives them: random
/// 64-bit numbers, which a reader that parses JSON numbers as doubles (jq
/// 1.6, JavaScript) would round, and could then not match with `info`'s.
fn raft_ids_as_text(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(fields) => {
            for (key, field) in fields.iter_mut() {
                if key == "raftId"
                    && let serde_json::Value::Number(id) = field
                {
                    *field = serde_json::Value::String(id.to_string());
                } else {
                    raft_ids_as_text(field);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(raft_ids_as_text),
        _ => {}
    }
}

/// When `at` was, for tables: `2 minutes ago`, as docker prints it (empty
/// when unknown).
pub fn ago(at: Option<&prost_types::Timestamp>) -> String {
    let Some(then) = at.and_then(|at| std::time::SystemTime::try_from(*at).ok()) else {
        return String::new();
    };
    // A clock a little behind the manager's: just now, not an error.
    let elapsed = std::time::SystemTime::now().duration_since(then).unwrap_or_default();
    format!("{} ago", roughly(elapsed))
}

/// When `at` was, for inspections: the moment in RFC 3339 (UTC) and how long
/// ago (empty when unknown).
pub fn moment(at: Option<&prost_types::Timestamp>) -> String {
    match at {
        Some(at) => format!("{at} ({})", ago(Some(at))),
        None => String::new(),
    }
}

/// A duration in the one unit that reads best, as docker's tables round
/// them: `Less than a second`, `5 seconds`, `About a minute`, `3 hours`,
/// `2 weeks`.
fn roughly(elapsed: std::time::Duration) -> String {
    let seconds = elapsed.as_secs();
    let minutes = seconds / 60;
    // Hours round to the nearest; the longer units count whole ones of it.
    let hours = (seconds + 1800) / 3600;
    match () {
        () if seconds < 1 => "Less than a second".into(),
        () if seconds == 1 => "1 second".into(),
        () if seconds < 60 => format!("{seconds} seconds"),
        () if minutes == 1 => "About a minute".into(),
        () if minutes < 60 => format!("{minutes} minutes"),
        () if hours == 1 => "About an hour".into(),
        () if hours < 48 => format!("{hours} hours"),
        () if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        () if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        () if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        () => format!("{} years", seconds / 3600 / 24 / 365),
    }
}

/// A size in the largest binary unit it has at least one of: `512 MiB`,
/// `1.5 GiB`.
pub fn bytes(bytes: u64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    let rounded = (value * 100.0).round() / 100.0;
    format!("{rounded} {}", units[unit])
}

/// A duration as Go prints one: `1h30m0s`, `1.5s`, `250ms`.
pub fn duration(duration: &prost_types::Duration) -> String {
    let total = std::time::Duration::new(duration.seconds.max(0) as u64, duration.nanos.max(0) as u32);
    if total.is_zero() {
        return "0s".into();
    }
    if total < std::time::Duration::from_secs(1) {
        return format!("{:?}", total);
    }
    let seconds = total.as_secs();
    let (hours, minutes) = (seconds / 3600, seconds / 60 % 60);
    let rest = std::time::Duration::new(seconds % 60, total.subsec_nanos()).as_secs_f64();
    match (hours, minutes) {
        (0, 0) => format!("{rest}s"),
        (0, _) => format!("{minutes}m{rest}s"),
        _ => format!("{hours}h{minutes}m{rest}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_docker_prints_them() {
        let after = |seconds: u64| roughly(std::time::Duration::from_secs(seconds));
        assert_eq!(roughly(std::time::Duration::from_millis(300)), "Less than a second");
        assert_eq!(after(1), "1 second");
        assert_eq!(after(59), "59 seconds");
        assert_eq!(after(90), "About a minute");
        assert_eq!(after(59 * 60), "59 minutes");
        assert_eq!(after(80 * 60), "About an hour");
        assert_eq!(after(100 * 60), "2 hours");
        assert_eq!(after(47 * 3600), "47 hours");
        assert_eq!(after(3 * 86_400), "3 days");
        assert_eq!(after(20 * 86_400), "2 weeks");
        assert_eq!(after(90 * 86_400), "3 months");
        assert_eq!(after(800 * 86_400), "2 years");
        let now = prost_types::Timestamp::from(std::time::SystemTime::now());
        assert_eq!(ago(Some(&now)), "Less than a second ago");
        assert!(
            moment(Some(&now)).ends_with("Z (Less than a second ago)"),
            "{}",
            moment(Some(&now))
        );
        assert_eq!(ago(None), "");
    }

    #[test]
    fn raft_ids_print_as_text_and_other_integers_as_numbers() {
        let node = swarm_proto::v1::Node {
            manager_status: Some(swarm_proto::v1::ManagerStatus {
                raft_id: 17_181_931_913_028_051_616,
                ..Default::default()
            }),
            meta: Some(swarm_proto::v1::Meta {
                version: 7,
                ..Default::default()
            }),
            ..Default::default()
        };
        let value = json_value(&node).unwrap();
        assert_eq!(value["managerStatus"]["raftId"], "17181931913028051616");
        assert_eq!(value["meta"]["version"], 7);
    }

    #[test]
    fn a_secret_prints_without_its_data() {
        let secret = swarm_proto::v1::Secret {
            spec: Some(swarm_proto::v1::SecretSpec {
                annotations: Some(Default::default()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let value = json_value(&secret).unwrap();
        assert!(value["spec"].get("annotations").is_some(), "{value}");
        assert!(value["spec"].get("data").is_none(), "{value}");
        let event = swarm_proto::v1::Object {
            object: Some(swarm_proto::v1::object::Object::Secret(secret)),
        };
        let value = json_value(&event).unwrap();
        assert!(value["secret"]["spec"].get("data").is_none(), "{value}");
        // A config's data is its to show.
        let config = swarm_proto::v1::Config {
            spec: Some(swarm_proto::v1::ConfigSpec::default()),
            ..Default::default()
        };
        assert!(json_value(&config).unwrap()["spec"].get("data").is_some());
    }

    #[test]
    fn control_characters_print_escaped() {
        assert_eq!(printable("zone=a b"), "zone=a b");
        assert_eq!(printable("v\nw\tx"), "v\\nw\\tx");
        assert_eq!(printable("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(printable("café"), "café");
    }

    #[test]
    fn sizes_print_in_their_largest_unit() {
        assert_eq!(bytes(512), "512 bytes");
        assert_eq!(bytes(512 << 20), "512 MiB");
        assert_eq!(bytes(3 << 29), "1.5 GiB");
        assert_eq!(bytes(1 << 30), "1 GiB");
    }

    #[test]
    fn durations_print_as_go_prints_them() {
        let d = |seconds, nanos| duration(&prost_types::Duration { seconds, nanos });
        assert_eq!(d(0, 0), "0s");
        assert_eq!(d(0, 250_000_000), "250ms");
        assert_eq!(d(1, 500_000_000), "1.5s");
        assert_eq!(d(90, 0), "1m30s");
        assert_eq!(d(5400, 0), "1h30m0s");
    }

    #[test]
    fn json_writes_a_32_bit_float_as_it_was_typed() {
        let config = swarm_proto::v1::UpdateConfig {
            max_failure_ratio: 0.3,
            ..Default::default()
        };
        let value = json_value(&config).unwrap();
        assert_eq!(value["maxFailureRatio"].to_string(), "0.3");
    }
}
