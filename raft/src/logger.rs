//! raft-rs logs through slog; this forwards its records to `tracing`, so
//! they land with everything else under the same filter.

use slog::{Drain, KV, Level, OwnedKVList, Record};

/// A slog root logger whose records become `tracing` events of target
/// `raft` (raft-rs names the member in each, as `raft_id`).
pub(crate) fn raft_logger() -> slog::Logger {
    slog::Logger::root(TracingDrain, slog::o!())
}

/// raft-rs's informational records that describe its own state (the
/// configuration it read at start, and again after each membership change,
/// which the Ready loop logs itself; the node it made): at debug level, so
/// that a start logs what an operator acts on.
const SET_UP_RECORDS: [&str; 3] = ["switched to configuration", "newRaft", "RawNode created"];

fn set_up(message: &std::fmt::Arguments<'_>) -> bool {
    let message = message.to_string();
    SET_UP_RECORDS.iter().any(|start| message.starts_with(start))
}

struct TracingDrain;

impl Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &Record<'_>, values: &OwnedKVList) -> Result<(), slog::Never> {
        let mut fields = KeyValues(String::new());
        // Formatting into a String cannot fail; a failed field is left out.
        let _ = record.kv().serialize(record, &mut fields);
        let _ = values.serialize(record, &mut fields);
        let message = record.msg();
        let fields = fields.0;
        match record.level() {
            Level::Critical | Level::Error => tracing::error!(target: "raft", "{message}{fields}"),
            Level::Warning => tracing::warn!(target: "raft", "{message}{fields}"),
            Level::Info if set_up(message) => {
                tracing::debug!(target: "raft", "{message}{fields}")
            }
            Level::Info => tracing::info!(target: "raft", "{message}{fields}"),
            Level::Debug => tracing::debug!(target: "raft", "{message}{fields}"),
            Level::Trace => tracing::trace!(target: "raft", "{message}{fields}"),
        }
        Ok(())
    }
}

struct KeyValues(String);

impl slog::Serializer for KeyValues {
    fn emit_arguments(&mut self, key: slog::Key, value: &std::fmt::Arguments<'_>) -> slog::Result {
        use std::fmt::Write as _;
        let _ = write!(self.0, " {key}={value}");
        Ok(())
    }
}
