//! `--env-file`: environment variables from files, as docker reads them
//! (`opts.ParseEnvFile`): a `KEY=VALUE` per line, the value taken as it
//! is; blank lines and lines starting with `#` skipped; a line of `KEY`
//! alone takes the variable's value here.

use std::path::Path;

use anyhow::Context as _;

use super::super::BadValue;

/// Every variable of `files`, in order.
pub fn read_all(files: &[std::path::PathBuf]) -> anyhow::Result<Vec<String>> {
    let mut env = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("--env-file: cannot read {}", file.display()))?;
        env.extend(parse(file, &text, |key| std::env::var(key).ok())?);
    }
    Ok(env)
}

/// The variables of `text`, read from `file`; `here` gives a variable's
/// value in this environment.
fn parse(file: &Path, text: &str, here: impl Fn(&str) -> Option<String>) -> Result<Vec<String>, BadValue> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut env = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let bad = |why: String| BadValue(format!("--env-file {} line {}: {why}", file.display(), number + 1));
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (line.trim_end(), None),
        };
        if key.is_empty() {
            return Err(bad(format!("{line:?} names no variable")));
        }
        if key.contains(char::is_whitespace) {
            return Err(bad(format!("the variable name {key:?} holds white space")));
        }
        let value = match value {
            Some(value) => value.to_string(),
            None => {
                here(key).ok_or_else(|| bad(format!("{key:?} has no =VALUE and is not set in this environment")))?
            }
        };
        env.push(format!("{key}={value}"));
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<Vec<String>, String> {
        let here = |key: &str| (key == "HOME_HERE").then(|| "/home/me".to_string());
        parse(Path::new("app.env"), text, here).map_err(|err| err.0)
    }

    #[test]
    fn reads_lines_as_docker_does() {
        let text =
            "\u{feff}# a comment\n\nA=1\n  B=two words \nC=\nD=x=y\nHOME_HERE\n\t# indented comment\r\nE=last\r\n";
        assert_eq!(
            parsed(text).unwrap(),
            ["A=1", "B=two words ", "C=", "D=x=y", "HOME_HERE=/home/me", "E=last"]
        );
    }

    #[test]
    fn a_bad_line_is_named_with_its_file_and_number() {
        assert_eq!(
            parsed("A=1\n=x\n").unwrap_err(),
            "--env-file app.env line 2: \"=x\" names no variable"
        );
        assert_eq!(
            parsed("MY VAR=1").unwrap_err(),
            "--env-file app.env line 1: the variable name \"MY VAR\" holds white space"
        );
        assert_eq!(
            parsed("A=1\nNOT_SET_HERE\n").unwrap_err(),
            "--env-file app.env line 2: \"NOT_SET_HERE\" has no =VALUE and is not set in this environment"
        );
    }
}
