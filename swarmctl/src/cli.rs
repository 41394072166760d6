//! What `swarmctl` accepts: the clap definitions, apart from the actions
//! (`commands/`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use swarm_proto::v1::{Mount, PlacementPreference};

use crate::output::Format;
use crate::parse;

/// The operator's client of a swarmd manager's Control API.
#[derive(Parser, Debug)]
#[command(name = "swarmctl", version, disable_version_flag = true)]
pub struct Cli {
    /// Print the client's version.
    #[arg(short = 'v', long, action = clap::ArgAction::Version)]
    pub version: (),
    /// The manager's Control API socket (a path, or `unix://PATH` as
    /// docker's DOCKER_HOST names one); by default $SWARM_SOCKET when set
    /// and not empty.
    #[arg(
        short,
        long,
        default_value = DEFAULT_SOCKET,
        global = true,
        value_parser = socket_path
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
    /// Stream every change to the store, live.
    ///
    /// One line each (with `--format json`, one JSON object each: commit
    /// index, action, kind, and the object as stored). Each line starts
    /// with the index of the commit it came from: a watch that ended
    /// resumes after the last one with `--resume-after`.
    Watch {
        /// Only this kind (repeatable; default all).
        #[arg(long, ignore_case = true, value_parser = clap::builder::PossibleValuesParser::new(crate::commands::watch::ALL_KINDS))]
        kind: Vec<String>,
        /// Only this action (repeatable; default all).
        #[arg(long, ignore_case = true, value_enum)]
        action: Vec<WatchAction>,
        /// Only changes of objects that match KEY=VALUE: id=PREFIX,
        /// name=PREFIX (a node's hostname), label=KEY or label=KEY=VALUE,
        /// as `ls` takes them; and service=SERVICE or node=NODE (a name,
        /// ID or ID prefix, resolved as the watch starts), which select
        /// the tasks of that service or on that node. Repeatable as in
        /// `ls`. An update matches when its object matches before or after
        /// it: a watch of label=env=prod sees the update that drops it.
        #[arg(short, long = "filter", value_name = "KEY=VALUE", value_parser = crate::filter::parse)]
        filter: Vec<crate::filter::Filter>,
        /// First the changes committed after this index (as far back as
        /// the manager keeps them), then the live ones, with no gap and
        /// none twice. A watch that falls behind resumes by itself.
        #[arg(long, value_name = "INDEX")]
        resume_after: Option<u64>,
    },
    /// What the node serving the socket is and what its Raft member sees.
    ///
    /// Its ID, role, version, and what its Raft member sees (leader, term,
    /// members, log indexes). Answered by that node, whether it leads or
    /// not.
    Info,
    /// Print the client's version, then the daemon's.
    ///
    /// Fails if the daemon's socket does not answer.
    Version,
    /// Print a shell completion script.
    Completion {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// A change `watch` can select.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum WatchAction {
    Create,
    Update,
    Remove,
}

/// Lists share these.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Print only the IDs (over `--format`).
    #[arg(short, long)]
    pub quiet: bool,
    /// Only those that match KEY=VALUE: id=PREFIX, name=PREFIX (a node's
    /// hostname), label=KEY or label=KEY=VALUE; for nodes also
    /// role=manager|worker, membership=accepted|pending and node.label= (as
    /// label=); for services mode=replicated|global|replicated-job|global-job;
    /// for tasks service=SERVICE, node=NODE and desired-state=STATE.
    /// Repeatable: a key given twice
    /// matches either value (every label must match), different keys must
    /// all match.
    #[arg(short, long = "filter", value_name = "KEY=VALUE", value_parser = crate::filter::parse)]
    pub filters: Vec<crate::filter::Filter>,
}

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// List the clusters.
    Ls(ListArgs),
    /// Show clusters by name, ID or ID prefix.
    Inspect {
        #[arg(required = true, value_name = "CLUSTER")]
        references: Vec<String>,
    },
    /// Change the cluster's settings.
    Update {
        /// The cluster: its name, ID or ID prefix.
        reference: String,
        /// Finished tasks kept per slot (negative: all of them).
        #[arg(long, allow_negative_numbers = true)]
        task_history_limit: Option<i64>,
        /// Log entries applied between two Raft snapshots (at least; a
        /// snapshot also waits for the log to hold half the last one's
        /// size). Takes effect at once.
        #[arg(long, allow_negative_numbers = true, value_parser = crate::parse::count)]
        snapshot_interval: Option<u64>,
        /// Log entries kept behind a snapshot, at most, so that a follower a
        /// little behind catches up from the log rather than a whole
        /// snapshot (and no more of them than weigh 8 MiB or the snapshot).
        #[arg(long, allow_negative_numbers = true, value_parser = crate::parse::count)]
        log_entries_for_slow_followers: Option<u64>,
        /// How often agents report to the dispatcher (a node missing three
        /// is down; at least 100ms).
        #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse::duration)]
        heartbeat_period: Option<prost_types::Duration>,
        /// How long node certificates are valid (at least 1h).
        #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse::duration)]
        cert_expiry: Option<prost_types::Duration>,
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
    /// Show nodes by hostname, ID or ID prefix (`self`: this one).
    Inspect {
        #[arg(required = true, value_name = "NODE")]
        references: Vec<String>,
    },
    /// Change a node's labels, availability or role.
    Update {
        /// The node: its hostname, ID or ID prefix (`self`: this one).
        reference: String,
        /// active, pause (no new tasks) or drain (tasks move away).
        #[arg(long, value_parser = ["active", "pause", "drain"])]
        availability: Option<String>,
        /// manager or worker (the last manager cannot be demoted).
        #[arg(long, value_parser = ["manager", "worker"])]
        role: Option<String>,
        #[command(flatten)]
        labels: LabelArgs,
    },
    /// Let nodes take new tasks again.
    Activate(NodeReferences),
    /// Give nodes no new tasks; those they run stay.
    Pause(NodeReferences),
    /// Move every task away from nodes (for maintenance).
    Drain(NodeReferences),
    /// Make nodes managers.
    Promote(NodeReferences),
    /// Make managers workers (never the last one).
    Demote(NodeReferences),
    /// Remove nodes from the cluster: a manager must be demoted first, and
    /// a node still up needs `--force`.
    Rm {
        #[command(flatten)]
        nodes: NodeReferences,
        /// Remove nodes that are still up.
        #[arg(short, long)]
        force: bool,
    },
}

/// Nodes, each by hostname, ID or ID prefix.
#[derive(Args, Debug)]
pub struct NodeReferences {
    #[arg(required = true, value_name = "NODE")]
    pub references: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum ServiceCommand {
    /// Create a service.
    Create(Box<ServiceSpecArgs>),
    /// List the services.
    Ls(ListArgs),
    /// Show services by name, ID or ID prefix.
    Inspect {
        #[arg(required = true, value_name = "SERVICE")]
        references: Vec<String>,
    },
    /// Change a service: only what the flags name changes.
    Update {
        /// The service: its name, ID or ID prefix.
        reference: String,
        /// Go back to the previous spec, as `service rollback` (docker's
        /// `service update --rollback`); no other change with it.
        #[arg(long)]
        rollback: bool,
        #[command(flatten)]
        changes: Box<ServiceUpdateArgs>,
    },
    /// Set how many tasks replicated services run, or how many
    /// completions replicated jobs make (docker's `service scale`).
    Scale {
        /// Each service (name, ID or ID prefix) and its count.
        #[arg(required = true, value_name = "SERVICE=REPLICAS", value_parser = crate::parse::scale)]
        targets: Vec<(String, u64)>,
    },
    /// List the tasks of services (docker's `service ps`).
    Ps {
        /// The services: name, ID or ID prefix.
        #[arg(required = true, value_name = "SERVICE")]
        references: Vec<String>,
        #[command(flatten)]
        list: ListArgs,
    },
    /// Go back to the service's previous spec (the one before its last
    /// update).
    Rollback {
        /// The service: its name, ID or ID prefix.
        reference: String,
        #[command(flatten)]
        progress: DockerProgressArgs,
    },
    /// Remove services.
    Rm {
        #[arg(required = true, value_name = "SERVICE")]
        references: Vec<String>,
    },
}

/// How a service runs its tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ServiceMode {
    /// `--replicas` tasks, kept running.
    Replicated,
    /// One task on every node, kept running.
    Global,
    /// Tasks run to completion: `--replicas` completions in all,
    /// `--max-concurrent` at once.
    ReplicatedJob,
    /// One task on every node, run to completion.
    GlobalJob,
}

#[derive(Args, Debug)]
pub struct ServiceSpecArgs {
    /// The service's name.
    #[arg(long)]
    pub name: String,
    /// The image each task runs (or after the flags, as docker takes it).
    #[arg(long = "image", value_name = "IMAGE")]
    pub image_flag: Option<String>,
    /// docker's `IMAGE [ARG]...`: the image, then the arguments the tasks
    /// run it with (as `--args`, one word each). As docker's, every word
    /// after the image is an argument, flags too: flags go before it.
    #[arg(value_name = "IMAGE", trailing_var_arg = true)]
    pub image_and_args: Vec<String>,
    /// How the tasks run.
    #[arg(long, value_enum, default_value_t = ServiceMode::Replicated)]
    pub mode: ServiceMode,
    /// Tasks to run (replicated mode; default 1), or completions in all (replicated-job).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::parse::count)]
    pub replicas: Option<u64>,
    /// Tasks of a replicated job run at once (default: `--replicas`).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::parse::count)]
    pub max_concurrent: Option<u64>,
    /// The command (replaces the image's entrypoint; docker's
    /// `--entrypoint`), split into words as a shell splits them:
    /// `--command "sh -c 'echo hi'"`.
    #[arg(
        long,
        visible_alias = "entrypoint",
        value_name = "COMMAND",
        allow_hyphen_values = true,
        value_parser = parse::words
    )]
    pub command: Option<parse::Words>,
    /// Its arguments (replace the image's CMD), split as `--command` is:
    /// `--args "-g 'daemon off;'"`.
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true, value_parser = parse::words)]
    pub args: Option<parse::Words>,
    /// An environment variable, KEY=VALUE, or KEY for its value here
    /// (repeatable).
    #[arg(short, long, value_parser = parse::env_entry)]
    pub env: Vec<String>,
    /// A file of environment variables, as docker reads one: KEY=VALUE or
    /// KEY a line, `#` comments (repeatable; `--env` comes after them).
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<std::path::PathBuf>,
    /// A label of the service, key=value (repeatable).
    #[arg(short, long)]
    pub label: Vec<String>,
    /// A label of the containers, key=value (repeatable).
    #[arg(long)]
    pub container_label: Vec<String>,
    /// A placement constraint, such as `node.labels.zone == a` (repeatable).
    #[arg(long)]
    pub constraint: Vec<String>,
    /// Spread the tasks evenly over the values of a node attribute:
    /// `spread=node.labels.zone` (repeatable: in order of importance).
    #[arg(long, value_name = "spread=DESCRIPTOR", value_parser = parse::placement_preference)]
    pub placement_pref: Vec<PlacementPreference>,
    /// A mount: `type=bind|volume|tmpfs,source=...,target=/PATH[,readonly]` (repeatable).
    #[arg(long, value_parser = parse::mount)]
    pub mount: Vec<Mount>,
    /// A published port: `[PUBLISHED:]TARGET[/tcp|udp|sctp]` (or ranges of
    /// one length, `8080-8081:80-81`) or
    /// `published=P,target=T,protocol=tcp,mode=ingress|host` (repeatable).
    #[arg(short, long, value_name = "PORT", value_parser = parse::ports)]
    pub publish: Vec<parse::Ports>,
    /// A secret the tasks get, by name or ID: `NAME` (at /run/secrets/NAME)
    /// or `source=NAME,target=FILE[,uid=N,gid=N,mode=0400]` (owner root's
    /// and mode 0444 unless given; repeatable).
    #[arg(long)]
    pub secret: Vec<String>,
    /// A config the tasks get, by name or ID: `NAME` (at /NAME) or
    /// `source=NAME,target=/PATH[,uid=N,gid=N,mode=0440]` (repeatable).
    #[arg(long)]
    pub config: Vec<String>,
    #[command(flatten)]
    pub task: TaskFlags,
    #[command(flatten)]
    pub progress: DockerProgressArgs,
}

/// Flags docker's `service create`, `update` and `rollback` take that
/// change nothing here, accepted so that scripts written for docker run
/// as they are: swarmctl never waits for the tasks to converge, and
/// prints only the service's ID.
#[derive(Args, Debug)]
pub struct DockerProgressArgs {
    /// Accepted for docker's scripts (swarmctl never waits for the tasks).
    #[arg(short, long)]
    pub detach: bool,
    /// Accepted for docker's scripts (swarmctl prints only the ID).
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct ServiceUpdateArgs {
    /// A new image.
    #[arg(long)]
    pub image: Option<String>,
    /// A new number of tasks (replicated), or of completions (replicated-job).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::parse::count)]
    pub replicas: Option<u64>,
    /// Tasks of a replicated job run at once.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::parse::count)]
    pub max_concurrent: Option<u64>,
    /// A new command, as `create` takes it (`--command ""` clears it: the
    /// image's entrypoint runs).
    #[arg(
        long,
        visible_alias = "entrypoint",
        value_name = "COMMAND",
        allow_hyphen_values = true,
        value_parser = parse::words
    )]
    pub command: Option<parse::Words>,
    /// New arguments, as `create` takes them (`--args ""` clears them).
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true, value_parser = parse::words)]
    pub args: Option<parse::Words>,
    /// Add or replace an environment variable, KEY=VALUE, or KEY for its
    /// value here (repeatable).
    #[arg(short = 'e', long, visible_alias = "env", value_parser = parse::env_entry)]
    pub env_add: Vec<String>,
    /// Remove an environment variable by its key (repeatable).
    #[arg(long)]
    pub env_rm: Vec<String>,
    #[command(flatten)]
    pub labels: LabelArgs,
    /// Add or replace a label of the containers, key=value (repeatable).
    #[arg(long)]
    pub container_label_add: Vec<String>,
    /// Remove a label of the containers by key (repeatable).
    #[arg(long)]
    pub container_label_rm: Vec<String>,
    /// Add a placement constraint (repeatable).
    #[arg(long)]
    pub constraint_add: Vec<String>,
    /// Remove a placement constraint, written as it was added (repeatable).
    #[arg(long)]
    pub constraint_rm: Vec<String>,
    /// Add a placement preference, `spread=DESCRIPTOR` (repeatable).
    #[arg(long, value_name = "spread=DESCRIPTOR", value_parser = parse::placement_preference)]
    pub placement_pref_add: Vec<PlacementPreference>,
    /// Remove a placement preference, `spread=DESCRIPTOR` (repeatable).
    #[arg(long, value_name = "spread=DESCRIPTOR", value_parser = parse::placement_preference)]
    pub placement_pref_rm: Vec<PlacementPreference>,
    /// Add or replace a mount (by its target), as `create --mount` (repeatable).
    #[arg(long, value_parser = parse::mount)]
    pub mount_add: Vec<Mount>,
    /// Remove a mount by its target path (repeatable).
    #[arg(long, value_name = "TARGET")]
    pub mount_rm: Vec<String>,
    /// Add a published port beside the others, as `create --publish`; to
    /// move one, remove it in the same command (repeatable).
    #[arg(long, value_name = "PORT", value_parser = parse::ports)]
    pub publish_add: Vec<parse::Ports>,
    /// Remove a published port: `TARGET[/PROTOCOL]` (repeatable).
    #[arg(long, value_name = "TARGET[/PROTOCOL]")]
    pub publish_rm: Vec<String>,
    /// Add a secret, as `create --secret` (repeatable).
    #[arg(long)]
    pub secret_add: Vec<String>,
    /// Remove a secret by name, ID or ID prefix (repeatable).
    #[arg(long)]
    pub secret_rm: Vec<String>,
    /// Add a config, as `create --config` (repeatable).
    #[arg(long)]
    pub config_add: Vec<String>,
    /// Remove a config by name, ID or ID prefix (repeatable).
    #[arg(long)]
    pub config_rm: Vec<String>,
    /// Replace every task even if nothing else changed.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub task: TaskFlags,
    #[command(flatten)]
    pub progress: DockerProgressArgs,
}

/// What `service create` and `service update` both set, each flag
/// replacing one field.
#[derive(Args, Debug)]
pub struct TaskFlags {
    /// The working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// The user the command runs as: `name`, `uid` or `uid:gid`.
    #[arg(short, long)]
    pub user: Option<String>,
    /// The container's hostname.
    #[arg(long)]
    pub hostname: Option<String>,
    /// Give a task this long to stop after its stop signal, before it is killed.
    #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse::duration)]
    pub stop_grace_period: Option<prost_types::Duration>,
    /// The signal that stops a container (default the image's, else SIGTERM).
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Give the container a terminal (`--tty=false` to take it away).
    #[arg(
        short,
        long,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub tty: Option<bool>,
    /// Mount the container's root filesystem read-only.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL")]
    pub read_only: Option<bool>,
    /// At most this many CPUs, such as 0.5 (0: no limit).
    #[arg(allow_hyphen_values = true, long, value_name = "CPUS", value_parser = parse::nano_cpus)]
    pub limit_cpu: Option<i64>,
    /// At most this much memory, such as 512m or 1g (0: no limit).
    #[arg(allow_hyphen_values = true, long, value_name = "BYTES", value_parser = parse::memory_bytes)]
    pub limit_memory: Option<i64>,
    /// CPUs a node must have free for a task, such as 0.25.
    #[arg(allow_hyphen_values = true, long, value_name = "CPUS", value_parser = parse::nano_cpus)]
    pub reserve_cpu: Option<i64>,
    /// Memory a node must have free for a task, such as 256m.
    #[arg(allow_hyphen_values = true, long, value_name = "BYTES", value_parser = parse::memory_bytes)]
    pub reserve_memory: Option<i64>,
    /// When a task that stopped is replaced (default any; a policy set by
    /// any `--restart-...` flag starts from SwarmKit's: any, after 5s).
    #[arg(long, value_enum)]
    pub restart_condition: Option<RestartCondition>,
    /// Wait this long before replacing a stopped task.
    #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse::duration)]
    pub restart_delay: Option<prost_types::Duration>,
    /// Give up after this many restarts within `--restart-window` (0: never).
    #[arg(allow_negative_numbers = true, value_parser = crate::parse::count, long, value_name = "N")]
    pub restart_max_attempts: Option<u64>,
    /// The window `--restart-max-attempts` counts restarts in (0: forever).
    #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse::duration)]
    pub restart_window: Option<prost_types::Duration>,
    /// At most this many tasks of the service on one node (0: no limit).
    #[arg(allow_negative_numbers = true, value_parser = crate::parse::count, long, value_name = "N")]
    pub replicas_max_per_node: Option<u64>,
    /// The health check: a shell command, healthy when it exits 0.
    #[arg(long, value_name = "COMMAND")]
    pub health_cmd: Option<String>,
    /// Time between two health checks.
    #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse::duration)]
    pub health_interval: Option<prost_types::Duration>,
    /// A health check taking longer than this failed.
    #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse::duration)]
    pub health_timeout: Option<prost_types::Duration>,
    /// Failed checks in a row that make a task unhealthy.
    #[arg(allow_negative_numbers = true, long, value_name = "N", value_parser = clap::value_parser!(i32).range(0..))]
    pub health_retries: Option<i32>,
    /// Failed checks do not count for this long after the start.
    #[arg(allow_hyphen_values = true, long, value_name = "DURATION", value_parser = parse::duration)]
    pub health_start_period: Option<prost_types::Duration>,
    /// Turn off the image's health check.
    #[arg(
        long,
        conflicts_with_all = ["health_cmd", "health_interval", "health_timeout", "health_retries", "health_start_period"]
    )]
    pub no_healthcheck: bool,
    #[command(flatten)]
    pub update: UpdatePolicyFlags,
    #[command(flatten)]
    pub rollback: RollbackPolicyFlags,
}

/// When a stopped task is replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RestartCondition {
    /// Never.
    None,
    /// When it failed (exited non-zero).
    OnFailure,
    /// Whenever it stopped.
    Any,
}

/// What to do when an update (or a rollback) sees tasks fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FailureAction {
    Pause,
    Continue,
    Rollback,
}

/// What a rollback does when tasks fail: it cannot roll itself back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RollbackFailureAction {
    Pause,
    Continue,
}

impl From<RollbackFailureAction> for FailureAction {
    fn from(action: RollbackFailureAction) -> FailureAction {
        match action {
            RollbackFailureAction::Pause => FailureAction::Pause,
            RollbackFailureAction::Continue => FailureAction::Continue,
        }
    }
}

/// Whether a new task starts before or after the one it replaces stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum UpdateOrder {
    StopFirst,
    StartFirst,
}

/// How tasks are replaced in steps: the same flags for updates
/// (`--update-...`) and rollbacks (`--rollback-...`).
macro_rules! policy_flags {
    ($name:ident, $prefix:literal, $what:literal, $failure_action:ty) => {
        #[doc = concat!("How ", $what, " replaces tasks: the `--", $prefix, "-...` flags.")]
        #[derive(Args, Debug)]
        pub struct $name {
            // Help as `help =`: clap reads no `#[doc = concat!(..)]`.
            #[arg(allow_negative_numbers = true, value_parser = crate::parse::count, help = concat!("Tasks ", $what, " replaces at once (0: all)."), long = concat!($prefix, "-parallelism"), id = concat!($prefix, "-parallelism"), value_name = "N")]
            pub parallelism: Option<u64>,
            #[arg(help = concat!("Time ", $what, " waits between two steps."), long = concat!($prefix, "-delay"),
                id = concat!($prefix, "-delay"),
                allow_hyphen_values = true,
                value_name = "DURATION",
                value_parser = parse::duration)]
            pub delay: Option<prost_types::Duration>,
            #[arg(help = concat!("What ", $what, " does when tasks fail."), long = concat!($prefix, "-failure-action"), id = concat!($prefix, "-failure-action"), value_enum)]
            pub failure_action: Option<$failure_action>,
            #[arg(help = concat!("How long ", $what, " watches each new task for a failure."), long = concat!($prefix, "-monitor"),
                id = concat!($prefix, "-monitor"),
                allow_hyphen_values = true,
                value_name = "DURATION",
                value_parser = parse::duration)]
            pub monitor: Option<prost_types::Duration>,
            #[arg(allow_negative_numbers = true, help = concat!("The share of tasks (0 to 1) that may fail before ", $what, " counts as failed."), long = concat!($prefix, "-max-failure-ratio"), id = concat!($prefix, "-max-failure-ratio"), value_name = "RATIO")]
            pub max_failure_ratio: Option<f32>,
            #[arg(allow_negative_numbers = true, help = concat!("Whether ", $what, " starts a new task before stopping the old one."), long = concat!($prefix, "-order"), id = concat!($prefix, "-order"), value_enum)]
            pub order: Option<UpdateOrder>,
        }

        impl From<$name> for PolicyFlags {
            fn from(flags: $name) -> PolicyFlags {
                PolicyFlags {
                    parallelism: flags.parallelism,
                    delay: flags.delay,
                    failure_action: flags.failure_action.map(Into::into),
                    monitor: flags.monitor,
                    max_failure_ratio: flags.max_failure_ratio,
                    order: flags.order,
                }
            }
        }
    };
}

/// The `--update-...` or the `--rollback-...` flags, whichever were meant.
#[derive(Debug)]
pub struct PolicyFlags {
    pub parallelism: Option<u64>,
    pub delay: Option<prost_types::Duration>,
    pub failure_action: Option<FailureAction>,
    pub monitor: Option<prost_types::Duration>,
    pub max_failure_ratio: Option<f32>,
    pub order: Option<UpdateOrder>,
}
policy_flags!(UpdatePolicyFlags, "update", "an update", FailureAction);
policy_flags!(RollbackPolicyFlags, "rollback", "a rollback", RollbackFailureAction);

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
    /// Show tasks by ID or ID prefix.
    Inspect {
        #[arg(required = true, value_name = "TASK")]
        references: Vec<String>,
    },
    /// Remove tasks.
    Rm {
        #[arg(required = true, value_name = "TASK")]
        references: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Create one from a file's contents (`-`: from standard input), the
    /// file given as docker takes it (`NAME FILE`) or as SwarmKit's
    /// swarmctl does (`NAME -f FILE`).
    Create {
        /// Its name (unique among its kind).
        name: String,
        /// The file holding the data, or `-` for standard input.
        #[arg(value_name = "FILE", required_unless_present = "file", conflicts_with = "file")]
        source: Option<PathBuf>,
        /// The same, as a flag.
        #[arg(short, long)]
        file: Option<PathBuf>,
        /// A label, key=value (repeatable).
        #[arg(short, long)]
        label: Vec<String>,
    },
    /// List them (a secret's data is never shown; a config's, with `--format json`).
    Ls(ListArgs),
    /// Show them by name, ID or ID prefix.
    Inspect {
        #[arg(required = true, value_name = "NAME")]
        references: Vec<String>,
    },
    /// Change one's labels (its name and data never change).
    Update {
        /// Its name, ID or ID prefix.
        reference: String,
        #[command(flatten)]
        labels: LabelArgs,
    },
    /// Remove them.
    Rm {
        #[arg(required = true, value_name = "NAME")]
        references: Vec<String>,
    },
}

/// Where the socket is when neither `--socket` nor `SWARM_SOCKET` says.
const DEFAULT_SOCKET: &str = "/var/run/swarmd.sock";

/// The command line, its `--socket` defaulting to `SWARM_SOCKET` (an empty
/// one counts as unset, as docker takes an empty DOCKER_HOST). A default,
/// not clap's `env`: a value clap takes from the environment shows in
/// every usage line as if it had been typed.
pub fn command() -> clap::Command {
    use clap::CommandFactory as _;
    let command = Cli::command();
    match std::env::var_os("SWARM_SOCKET") {
        Some(socket) if !socket.is_empty() => command.mut_arg("socket", |arg| arg.default_value(socket)),
        _ => command,
    }
}

/// A `--socket`: a path, or `unix://` and a path.
fn socket_path(text: &str) -> Result<PathBuf, String> {
    let path = text.strip_prefix("unix://").unwrap_or(text);
    if path.is_empty() {
        return Err("a socket path cannot be empty".into());
    }
    if let Some((scheme, _)) = path.split_once("://") {
        return Err(format!(
            "{scheme}:// is not a Unix socket: the Control API is served on one"
        ));
    }
    Ok(PathBuf::from(path))
}
