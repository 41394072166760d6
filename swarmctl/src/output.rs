//! Aligned tables, as SwarmKit's swarmctl prints them (elastic tabstops).

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
        writeln!(writer, "{}", row.join("\t"))?;
    }
    writer.flush()
}

/// Prints `fields` as `Name: value` lines, names aligned.
pub fn fields(fields: &[(&str, String)]) -> std::io::Result<()> {
    let mut writer = tabwriter::TabWriter::new(std::io::stdout().lock()).padding(1);
    for (name, value) in fields {
        writeln!(writer, "{name}:\t{value}")?;
    }
    writer.flush()
}
