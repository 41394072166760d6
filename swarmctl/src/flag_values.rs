//! A flag left without its value, said as such.
//!
//! Flags whose value may start with `-` (a duration, a size or a CPU count,
//! so that `--stop-grace-period -5s` is refused as negative rather than as an
//! unknown flag) take clap's `allow_hyphen_values`. clap then takes the next
//! flag as their value: `service update web --limit-memory --replicas 3` took
//! `--replicas` as the size and refused `3` as an unexpected argument, which
//! names the wrong word (the value parsers refuse a flag as a value, but
//! clap may refuse the next word first). So a flag followed by a word that
//! is a flag, not a negative number, is said to lack its value before clap
//! parses anything. Command lines (`--command`, `--args`) may hold words
//! that start with `-`, and are left alone.

use std::any::TypeId;
use std::ffi::OsString;

use clap::Command;
use clap::error::ErrorKind;

use crate::parse::{Words, is_a_flag};

/// Refuses, as clap refuses a usage error, the first flag of `args` that
/// takes a value which may be negative and is followed by another flag.
/// `command` must be built (`Command::build`), so that global flags are on
/// every subcommand.
pub fn check(command: &Command, args: &[OsString]) -> Result<(), clap::Error> {
    let mut current = command;
    let mut words = args.iter().skip(1).map(|arg| arg.to_string_lossy()).peekable();
    while let Some(word) = words.next() {
        if word == "--" {
            break;
        }
        let arg = if let Some(long) = word.strip_prefix("--") {
            if long.contains('=') {
                continue;
            }
            current.get_arguments().find(|arg| arg.get_long() == Some(long))
        } else if let Some(shorts) = word.strip_prefix('-').filter(|shorts| shorts.chars().count() == 1) {
            current
                .get_arguments()
                .find(|arg| arg.get_short().map(String::from).as_deref() == Some(shorts))
        } else {
            if let Some(subcommand) = current.find_subcommand(word.as_ref()) {
                current = subcommand;
            }
            continue;
        };
        let Some(arg) = arg.filter(|arg| takes_the_next_word(arg)) else {
            continue;
        };
        // As clap does: a word starting with `-` is a value only where the
        // flag allows it.
        let Some(value) = words.next_if(|next| arg.is_allow_hyphen_values_set() || !next.starts_with('-')) else {
            continue;
        };
        if refuses_a_flag_as_value(arg) && is_a_flag(&value) {
            let flag = word.into_owned();
            let value_name = arg
                .get_value_names()
                .and_then(|names| names.first())
                .map_or_else(|| "VALUE".to_string(), ToString::to_string);
            return Err(current.clone().error(
                ErrorKind::InvalidValue,
                format!("'{flag} <{value_name}>' needs a value, but the flag '{value}' follows it"),
            ));
        }
    }
    Ok(())
}

/// Whether `arg`, written alone, takes the word after it as its value
/// (`--tty` takes one only after `=`).
fn takes_the_next_word(arg: &clap::Arg) -> bool {
    arg.get_action().takes_values()
        && !arg.is_require_equals_set()
        && arg.get_num_args().is_some_and(|range| range.min_values() >= 1)
}

/// Whether `arg` takes words starting with `-` only as negative numbers.
fn refuses_a_flag_as_value(arg: &clap::Arg) -> bool {
    arg.is_allow_hyphen_values_set() && arg.get_value_parser().type_id() != TypeId::of::<Words>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_line(line: &str) -> Result<(), String> {
        let mut command = crate::cli::command();
        command.build();
        let args: Vec<OsString> = line.split(' ').map(OsString::from).collect();
        check(&command, &args).map_err(|err| err.to_string())
    }

    #[test]
    fn a_typed_flag_followed_by_a_flag_is_said_to_lack_its_value() {
        let err = check_line("swarmctl service update web --limit-memory --replicas 3").unwrap_err();
        assert!(
            err.contains("'--limit-memory <BYTES>' needs a value, but the flag '--replicas' follows it"),
            "{err}"
        );
        assert!(
            err.contains("swarmctl service update"),
            "the usage line is the subcommand's: {err}"
        );
        let err = check_line("swarmctl service create --name web --stop-grace-period --image x").unwrap_err();
        assert!(err.contains("'--stop-grace-period <DURATION>'"), "{err}");
        let err = check_line("swarmctl service update web --limit-cpu -q").unwrap_err();
        assert!(err.contains("the flag '-q' follows it"), "{err}");
    }

    #[test]
    fn negative_values_command_words_and_values_after_equals_are_left_to_clap() {
        for line in [
            "swarmctl service update web --limit-memory -5 --replicas 3",
            "swarmctl service update web --stop-grace-period -.5s --replicas 3",
            "swarmctl service update web --limit-memory=--replicas",
            "swarmctl service create --name web --image x --args --verbose",
            "swarmctl service create --name web --image x --command --limit-memory --stop-grace-period",
            "swarmctl service update web --env --limit-memory",
            "swarmctl -s /tmp/s service update web --tty --stop-grace-period 5s",
            "swarmctl service update web -- --limit-memory --replicas",
        ] {
            assert_eq!(check_line(line), Ok(()), "{line}");
        }
    }
}
