//! `swarmctl task ...`

use swarm_proto::v1::{GetTaskRequest, ListFilters, ListTasksRequest, RemoveTaskRequest, Task, TaskState};

use super::{EachObject, change_reply, enum_word, inspect_each, reply};
use crate::cli::TaskCommand;
use crate::connect::Control;
use crate::filter::Filters;
use crate::output::{self, Format};
use crate::resolve;

pub async fn run(control: &mut Control, command: TaskCommand, format: Format) -> anyhow::Result<()> {
    match command {
        TaskCommand::Ls { list, service } => {
            let filters = Filters::new(list.filters, &["service", "node", "desired-state"])?;
            let desired_states = filters.enum_values("desired-state", &state_choices())?;
            // `--service S` is `-f service=S`, as watch takes it.
            let mut service_ids = Vec::new();
            for reference in service.iter().map(String::as_str).chain(filters.values("service")) {
                service_ids.push(super::service::get(control, reference).await?.id);
            }
            let mut node_ids = Vec::new();
            for reference in filters.values("node") {
                node_ids.push(super::node::get(control, reference).await?.id);
            }
            let request = ListTasksRequest {
                filters: Some(filters.list_filters()),
                service_ids,
                node_ids,
                desired_states,
                states: Vec::new(),
            };
            let tasks = reply(control.list_tasks(request).await)?.tasks;
            if format == Format::Json && !list.quiet {
                return output::json_list(&tasks);
            }
            let rows = tasks
                .iter()
                .map(|task| {
                    vec![
                        task.id.clone(),
                        task.service_id.clone(),
                        task.slot.to_string(),
                        task.node_id.clone(),
                        state(task),
                        desired(task),
                    ]
                })
                .collect();
            output::table(
                &["ID", "SERVICE", "SLOT", "NODE", "STATE", "DESIRED STATE"],
                rows,
                list.quiet,
            )?;
        }
        TaskCommand::Inspect { references } => {
            inspect_each(
                &references,
                format,
                async |reference| get(control, reference).await,
                fields,
            )
            .await?;
        }
        TaskCommand::Rm { references } => {
            let mut each = EachObject::default();
            for reference in references {
                let removed = async {
                    let task = get(control, &reference).await?;
                    let request = RemoveTaskRequest {
                        task_id: task.id.clone(),
                    };
                    change_reply(control.remove_task(request).await)?;
                    println!("{}", task.id);
                    Ok(())
                };
                each.record(removed.await);
            }
            each.finish()?;
        }
    }
    Ok(())
}

/// The task `reference` names (its ID or a unique ID prefix); only the
/// tasks whose ID starts with it are fetched.
async fn get(control: &mut Control, reference: &str) -> anyhow::Result<Task> {
    let request = ListTasksRequest {
        filters: Some(ListFilters {
            id_prefixes: vec![reference.to_string()],
            ..Default::default()
        }),
        ..Default::default()
    };
    let tasks = reply(control.list_tasks(request).await)?.tasks;
    let candidates: Vec<_> = tasks.iter().map(|task| (task.id.clone(), String::new())).collect();
    let task_id = resolve::pick("task", reference, &candidates)?;
    Ok(reply(control.get_task(GetTaskRequest { task_id }).await)?
        .task
        .unwrap_or_default())
}

/// Every task state, as `ls` prints it, and its value.
fn state_choices() -> Vec<(String, i32)> {
    (0..=TaskState::Orphaned as i32)
        .filter(|&value| TaskState::try_from(value).is_ok())
        .map(|value| (state_name(value), value))
        .collect()
}

fn state_name(state: i32) -> String {
    TaskState::try_from(state)
        .map(|state| enum_word(state.as_str_name(), "TASK_STATE_"))
        .unwrap_or_else(|_| state.to_string())
}

fn state(task: &Task) -> String {
    state_name(task.status.as_ref().map_or(0, |status| status.state))
}

fn desired(task: &Task) -> String {
    state_name(task.desired_state)
}

/// The lines `task inspect` prints for `task`.
fn fields(task: &Task) -> Vec<(&'static str, String)> {
    let message = task
        .status
        .as_ref()
        .map(|status| status.message.clone())
        .unwrap_or_default();
    let error = task
        .status
        .as_ref()
        .map(|status| status.err.clone())
        .unwrap_or_default();
    vec![
        ("ID", task.id.clone()),
        ("Service", task.service_id.clone()),
        ("Slot", task.slot.to_string()),
        ("Node", task.node_id.clone()),
        ("State", state(task)),
        ("Desired state", desired(task)),
        ("Message", message),
        ("Error", error),
    ]
}
