//! `swarmctl info`

use swarm_proto::v1::ManagerInfo;

use crate::connect::Control;
use crate::output::{self, Format};

pub async fn run(control: &Control, format: Format) -> anyhow::Result<()> {
    let info = control.info().await?;
    if format == Format::Json {
        return output::json_one(&info);
    }
    let mut fields = vec![
        ("Node ID", info.node_id.clone()),
        ("Hostname", info.hostname.clone()),
        ("Role", super::node::role_name(info.role)),
        ("Version", info.version.clone()),
        ("State dir", info.state_dir.clone()),
        ("Cluster ID", info.cluster_id.clone()),
        ("Nodes", info.nodes.to_string()),
        ("Managers", info.managers.to_string()),
    ];
    if let Some(manager) = &info.manager {
        fields.extend(manager_fields(manager));
    }
    output::fields(&fields)?;
    Ok(())
}

/// A manager's Raft view, one line each.
fn manager_fields(manager: &ManagerInfo) -> Vec<(&'static str, String)> {
    let leader = if manager.is_leader {
        "this node".to_string()
    } else if manager.leader_raft_id.is_empty() {
        "none known".to_string()
    } else {
        format!("{} at {}", manager.leader_raft_id, manager.leader_addr)
    };
    let mut fields = vec![
        ("Raft ID", manager.raft_id.clone()),
        ("Raft address", manager.addr.clone()),
        ("Leader", leader),
        ("Term", manager.term.to_string()),
        (
            "Raft timing",
            format!(
                "tick {}, heartbeat every {} tick(s), election after {} tick(s)",
                manager.tick.as_ref().map(output::duration).unwrap_or_default(),
                manager.heartbeat_ticks,
                manager.election_ticks
            ),
        ),
    ];
    fields.push(("Disk", disk(manager)));
    if !manager.raft_error.is_empty() {
        fields.push(("Raft error", manager.raft_error.clone()));
        return fields;
    }
    let mut members: Vec<String> = manager
        .members
        .iter()
        .map(|(id, addr)| format!("{id} at {addr}"))
        .collect();
    members.sort();
    fields.extend([
        ("Raft members", format!("{} ({})", members.len(), members.join(", "))),
        ("Commit index", manager.commit_index.to_string()),
        ("Applied index", manager.applied_index.to_string()),
        ("Snapshot index", manager.snapshot_index.to_string()),
        ("Log", log_range(manager.first_log_index, manager.last_log_index)),
    ]);
    fields
}

/// Room on the Raft data dir's filesystem, and whether writes are refused
/// for want of it.
fn disk(manager: &ManagerInfo) -> String {
    let free = output::bytes(manager.disk_free_bytes);
    let refused = if manager.removals_refused {
        "writes and removals refused"
    } else {
        "writes refused (removals taken)"
    };
    match (manager.disk_reserve_bytes, manager.writes_refused) {
        (0, _) => format!("{free} free (no reserve)"),
        (reserve, false) => format!("{free} free, {} kept free", output::bytes(reserve)),
        (reserve, true) => format!(
            "{free} free, under the {} kept free: {refused} until there is room",
            output::bytes(reserve)
        ),
    }
}

/// The entries the log holds: none when the first index it would hold is
/// past the last (all of them are in the snapshot).
fn log_range(first: u64, last: u64) -> String {
    if first > last {
        format!("empty (the next entry is {first})")
    } else {
        format!("{first} to {last}")
    }
}

/// The ID of the node serving the socket: what `self` names.
pub(crate) async fn own_node_id(control: &Control) -> anyhow::Result<String> {
    Ok(control.info().await?.node_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_with_everything_in_the_snapshot_says_so() {
        assert_eq!(log_range(5, 9), "5 to 9");
        assert_eq!(log_range(9, 9), "9 to 9");
        assert_eq!(log_range(1779, 1778), "empty (the next entry is 1779)");
    }
}
