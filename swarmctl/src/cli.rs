//! What `swarmctl` accepts: the clap definitions, apart from the actions
//! (`commands/`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::output::Format;

/// The operator's client of a swarmd manager's Control API.
#[derive(Parser, Debug)]
#[command(name = "swarmctl", version, disable_version_flag = true)]
pub struct Cli {
    /// The manager's Control API socket.
    #[arg(
        short,
        long,
        env = "SWARM_SOCKET",
        default_value = "/var/run/swarmd.sock",
        global = true
    )]
    pub socket: PathBuf,
    /// How `ls` and `inspect` print: `table` for people, `json` for scripts.
    #[arg(long, value_enum, default_value_t = Format::Table, global = true)]
    pub format: Format,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The cluster's settings.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// The nodes.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Services: what to run.
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Tasks: the units services run as.
    #[command(subcommand)]
    Task(TaskCommand),
    /// Secrets given to services.
    #[command(subcommand)]
    Secret(DataCommand),
    /// Configs given to services.
    #[command(subcommand)]
    Config(DataCommand),
    /// Stream every change to the store, live, one line each.
    Watch {
        /// Only this kind: node, service, task, cluster, secret or config
        /// (repeatable; default all).
        #[arg(long)]
        kind: Vec<String>,
    },
    /// Print the client's version.
    Version,
    /// Print a shell completion script.
    Completion {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// Lists share these.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Print only the IDs (over `--format`).
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// List the clusters.
    Ls(ListArgs),
    /// Show a cluster by name, ID or ID prefix.
    Inspect { reference: String },
    /// Change the cluster's settings.
    Update {
        reference: String,
        /// Finished tasks kept per slot.
        #[arg(long)]
        task_history_limit: Option<i64>,
        /// Log entries applied between two Raft snapshots (at least; a
        /// snapshot also waits for the log to hold half the last one's
        /// size). Takes effect at once.
        #[arg(long)]
        snapshot_interval: Option<u64>,
        #[command(flatten)]
        labels: LabelArgs,
    },
}

/// Label changes.
#[derive(Args, Debug)]
pub struct LabelArgs {
    /// Add or replace a label, key=value (repeatable).
    #[arg(long)]
    pub label_add: Vec<String>,
    /// Remove a label by key (repeatable).
    #[arg(long)]
    pub label_rm: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum NodeCommand {
    /// List the nodes.
    Ls(ListArgs),
    /// Show a node by hostname, ID or ID prefix.
    Inspect { reference: String },
    /// Change a node's labels or availability.
    Update {
        reference: String,
        /// active, pause (no new tasks) or drain (tasks move away).
        #[arg(long, value_parser = ["active", "pause", "drain"])]
        availability: Option<String>,
        #[command(flatten)]
        labels: LabelArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum ServiceCommand {
    /// Create a service.
    Create(ServiceSpecArgs),
    /// List the services.
    Ls(ListArgs),
    /// Show a service by name, ID or ID prefix.
    Inspect { reference: String },
    /// Change a service.
    Update {
        reference: String,
        #[command(flatten)]
        changes: ServiceUpdateArgs,
    },
    /// Remove services.
    Rm {
        #[arg(required = true)]
        references: Vec<String>,
    },
}

#[derive(Args, Debug)]
pub struct ServiceSpecArgs {
    /// The service's name.
    #[arg(long)]
    pub name: String,
    /// The image each task runs.
    #[arg(long)]
    pub image: String,
    /// Tasks to run (replicated mode).
    #[arg(long, conflicts_with = "mode")]
    pub replicas: Option<u64>,
    /// replicated (the default) or global: one task per node.
    #[arg(long, value_parser = ["replicated", "global"])]
    pub mode: Option<String>,
    /// The command (replaces the image's entrypoint); one or more words, up
    /// to the next flag (write `--command=-x` for a word that starts with -).
    #[arg(long, num_args = 1..)]
    pub command: Vec<String>,
    /// Its arguments (replace the image's CMD), as `--command` takes words.
    #[arg(long, num_args = 1..)]
    pub args: Vec<String>,
    /// An environment variable, KEY=VALUE (repeatable).
    #[arg(long)]
    pub env: Vec<String>,
    /// A label of the service, key=value (repeatable).
    #[arg(long)]
    pub label: Vec<String>,
    /// A placement constraint, such as `node.labels.zone == a` (repeatable).
    #[arg(long)]
    pub constraint: Vec<String>,
    /// A secret the tasks get, by name or ID: `NAME` (at /run/secrets/NAME)
    /// or `source=NAME,target=FILE` (repeatable).
    #[arg(long)]
    pub secret: Vec<String>,
    /// A config the tasks get, by name or ID: `NAME` (at /NAME) or
    /// `source=NAME,target=/PATH` (repeatable).
    #[arg(long)]
    pub config: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ServiceUpdateArgs {
    /// A new image.
    #[arg(long)]
    pub image: Option<String>,
    /// A new number of tasks (replicated services).
    #[arg(long)]
    pub replicas: Option<u64>,
    /// Add or replace an environment variable, KEY=VALUE (repeatable).
    #[arg(long)]
    pub env: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum TaskCommand {
    /// List the tasks.
    Ls {
        #[command(flatten)]
        list: ListArgs,
        /// Only those of this service (name, ID or ID prefix).
        #[arg(long)]
        service: Option<String>,
    },
    /// Show a task by ID or ID prefix.
    Inspect { reference: String },
    /// Remove tasks.
    Rm {
        #[arg(required = true)]
        references: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Create one from a file's contents.
    Create {
        name: String,
        /// The file holding the data.
        #[arg(short, long)]
        file: PathBuf,
    },
    /// List them (their data is never shown).
    Ls(ListArgs),
    /// Show one by name, ID or ID prefix.
    Inspect { reference: String },
    /// Remove them.
    Rm {
        #[arg(required = true)]
        references: Vec<String>,
    },
}
