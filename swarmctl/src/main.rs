//! `swarmctl`, the operator's client of a swarmd manager's Control API.
//!
//! # Layout
//!
//! `cli.rs` holds what the command line accepts (clap definitions);
//! `commands/` what each command does, one module per noun; `resolve.rs`
//! turns a name, ID or ID prefix into one object; `output.rs` prints
//! aligned tables. Errors print on one line (`Error: service "web" not
//! found`) and exit 1; a usage error exits 2 (clap).

mod cli;
mod commands;
mod connect;
mod filter;
mod flag_values;
mod output;
mod parse;
mod resolve;

use std::process::ExitCode;

use clap::FromArgMatches as _;

fn main() -> ExitCode {
    let cli = parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            commands::print_error(&anyhow::Error::new(err).context("cannot start the runtime"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A closed pipe (`swarmctl service ls | head`) is not an error.
            if broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            if err.downcast_ref::<commands::Reported>().is_some() {
                return ExitCode::FAILURE;
            }
            commands::print_error(&err);
            if err.downcast_ref::<commands::BadValue>().is_some() {
                return ExitCode::from(2);
            }
            ExitCode::FAILURE
        }
    }
}

/// The command line, refused as clap refuses any (a usage error, exit 2)
/// where clap's own rules cannot say it: a flag left without its value
/// ([`flag_values`]), and `service update --rollback` with a change beside
/// it, which docker refuses too.
fn parse() -> cli::Cli {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mut command = cli::command();
    command.build();
    if let Err(err) = flag_values::check(&command, &args) {
        err.exit();
    }
    let matches = command.try_get_matches_from_mut(&args).unwrap_or_else(|err| err.exit());
    if let Some(("service", service)) = matches.subcommand()
        && let Some(("update", update)) = service.subcommand()
        && update.get_flag("rollback")
    {
        // Built above, so that the error's usage line is `swarmctl service
        // update`'s.
        if let Some(update_command) = command
            .find_subcommand_mut("service")
            .and_then(|service| service.find_subcommand_mut("update"))
        {
            let beside: Vec<String> = update_command
                .get_arguments()
                .filter(|arg| {
                    !["rollback", "reference", "socket", "format", "detach", "quiet"].contains(&arg.get_id().as_str())
                })
                .filter(|arg| {
                    update.value_source(arg.get_id().as_str()) == Some(clap::parser::ValueSource::CommandLine)
                })
                .filter_map(|arg| arg.get_long().map(|long| format!("--{long}")))
                .collect();
            if !beside.is_empty() {
                update_command
                    .error(
                        clap::error::ErrorKind::ArgumentConflict,
                        format!("other flags may not be combined with --rollback: {}", beside.join(", ")),
                    )
                    .exit();
            }
        }
    }
    cli::Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit())
}

/// Whether `err` comes from writing to a pipe whose reader has gone, as the
/// I/O error itself or inside the JSON writer's.
fn broken_pipe(err: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    err.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().map(std::io::Error::kind) == Some(BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(BrokenPipe)
    })
}
