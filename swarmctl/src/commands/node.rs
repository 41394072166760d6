//! `swarmctl node ...`

use swarm_proto::v1::{
    GetNodeRequest, ListNodesRequest, Node, NodeAvailability, NodeMembership, NodeRole, NodeSpec, RemoveNodeRequest,
    UpdateNodeRequest, node_status,
};

use super::{EachObject, change_reply, enum_word, inspect_each, label_pairs, meta_times, reply};
use crate::cli::{NodeCommand, NodeReferences};
use crate::connect::Control;
use crate::filter::Filters;
use crate::output::{self, Format};
use crate::resolve;

/// The values of a node's role and membership, as `ls --filter` lists them.
const ROLES: [NodeRole; 2] = [NodeRole::Manager, NodeRole::Worker];
const MEMBERSHIPS: [NodeMembership; 2] = [NodeMembership::Accepted, NodeMembership::Pending];

/// The node reference that names the node serving the socket.
const SELF: &str = "self";

pub async fn run(control: &mut Control, command: NodeCommand, format: Format) -> anyhow::Result<()> {
    match command {
        NodeCommand::Ls(list) => {
            let filters = Filters::new(list.filters, &["role", "membership", crate::filter::NODE_LABEL])?;
            let request = ListNodesRequest {
                filters: Some(filters.list_filters()),
                roles: filters.enum_values("role", &ROLES.map(|role| (role_name(role as i32), role as i32)))?,
                memberships: filters.enum_values(
                    "membership",
                    &MEMBERSHIPS.map(|m| (enum_word(m.as_str_name(), "NODE_MEMBERSHIP_"), m as i32)),
                )?,
            };
            let nodes = reply(control.list_nodes(request).await)?.nodes;
            if format == Format::Json && !list.quiet {
                return output::json_list(&nodes);
            }
            // The node serving the socket is marked, as docker marks its own.
            let own = if list.quiet {
                String::new()
            } else {
                super::info::own_node_id(control).await?
            };
            let rows = nodes
                .iter()
                .map(|node| {
                    vec![
                        if node.id == own {
                            format!("{} *", node.id)
                        } else {
                            node.id.clone()
                        },
                        hostname(node),
                        role(node),
                        status(node),
                        availability(node),
                        leader(node),
                    ]
                })
                .collect();
            output::table(
                &["ID", "HOSTNAME", "ROLE", "STATUS", "AVAILABILITY", "MANAGER STATUS"],
                rows,
                list.quiet,
            )?;
        }
        NodeCommand::Update {
            reference,
            availability,
            role,
            labels: changes,
        } => {
            change(control, &reference, |spec| {
                let annotations = spec.annotations.get_or_insert_with(Default::default);
                super::change_labels(&mut annotations.labels, &changes)?;
                if let Some(availability) = availability.as_deref() {
                    spec.set_availability(match availability {
                        "pause" => NodeAvailability::Pause,
                        "drain" => NodeAvailability::Drain,
                        _ => NodeAvailability::Active,
                    });
                }
                if let Some(role) = role.as_deref() {
                    spec.set_desired_role(match role {
                        "manager" => NodeRole::Manager,
                        _ => NodeRole::Worker,
                    });
                }
                Ok(())
            })
            .await?;
        }
        NodeCommand::Activate(nodes) => {
            change_each(control, nodes, |spec| spec.set_availability(NodeAvailability::Active)).await?;
        }
        NodeCommand::Pause(nodes) => {
            change_each(control, nodes, |spec| spec.set_availability(NodeAvailability::Pause)).await?;
        }
        NodeCommand::Drain(nodes) => {
            change_each(control, nodes, |spec| spec.set_availability(NodeAvailability::Drain)).await?;
        }
        NodeCommand::Promote(nodes) => {
            change_each(control, nodes, |spec| spec.set_desired_role(NodeRole::Manager)).await?
        }
        NodeCommand::Demote(nodes) => {
            change_each(control, nodes, |spec| spec.set_desired_role(NodeRole::Worker)).await?
        }
        NodeCommand::Rm { nodes, force } => {
            let mut each = EachObject::default();
            for reference in &nodes.references {
                let removed = async {
                    let node = get(control, reference).await?;
                    let request = RemoveNodeRequest {
                        node_id: node.id.clone(),
                        force,
                    };
                    change_reply(control.remove_node(request).await)?;
                    println!("{}", node.id);
                    Ok(())
                };
                each.record(removed.await);
            }
            each.finish()?;
        }
        NodeCommand::Inspect { references } => {
            inspect_each(
                &references,
                format,
                async |reference| get(control, reference).await,
                fields,
            )
            .await?;
        }
    }
    Ok(())
}

/// Changes the spec of the node `reference` names with `edit`, at the
/// version read (a change made meanwhile is refused, not overwritten);
/// prints the node's ID.
async fn change(
    control: &mut Control,
    reference: &str,
    edit: impl FnOnce(&mut NodeSpec) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let node = get(control, reference).await?;
    let mut spec = node.spec.clone().unwrap_or_default();
    edit(&mut spec)?;
    let request = UpdateNodeRequest {
        node_id: node.id.clone(),
        node_version: node.meta.as_ref().map_or(0, |meta| meta.version),
        spec: Some(spec),
    };
    change_reply(control.update_node(request).await)?;
    println!("{}", node.id);
    Ok(())
}

/// Applies `edit` to the spec of each node `nodes` names, as [`change`]
/// does to one; a node that fails does not stop the others.
async fn change_each(control: &mut Control, nodes: NodeReferences, edit: impl Fn(&mut NodeSpec)) -> anyhow::Result<()> {
    let mut each = EachObject::default();
    for reference in &nodes.references {
        let changed = change(control, reference, |spec| {
            edit(spec);
            Ok(())
        });
        each.record(changed.await);
    }
    each.finish()
}

/// The node `reference` names (hostname, ID or unique ID prefix, or
/// `self` for the node serving the socket, as in docker). As for services,
/// only the nodes that can match are fetched.
pub(crate) async fn get(control: &mut Control, reference: &str) -> anyhow::Result<Node> {
    let own_id;
    let reference = if reference == SELF {
        own_id = super::info::own_node_id(control).await?;
        own_id.as_str()
    } else {
        reference
    };
    let mut candidates = Vec::new();
    for filters in resolve::filters(reference) {
        let request = ListNodesRequest {
            filters: Some(filters),
            ..Default::default()
        };
        let nodes = reply(control.list_nodes(request).await)?.nodes;
        candidates.extend(nodes.iter().map(|node| (node.id.clone(), hostname(node))));
    }
    candidates.sort();
    candidates.dedup();
    let node_id = resolve::pick("node", reference, &candidates)?;
    Ok(reply(control.get_node(GetNodeRequest { node_id }).await)?
        .node
        .unwrap_or_default())
}

fn hostname(node: &Node) -> String {
    node.description
        .as_ref()
        .map(|description| description.hostname.clone())
        .unwrap_or_default()
}

/// The role the node is asked to have (it differs from its role while a
/// promotion or demotion is under way).
fn desired_role(node: &Node) -> String {
    role_name(node.spec.as_ref().map_or(node.role, |spec| spec.desired_role))
}

fn role(node: &Node) -> String {
    role_name(node.role)
}

pub(crate) fn role_name(role: i32) -> String {
    match NodeRole::try_from(role) {
        Ok(NodeRole::Manager) => "manager".into(),
        _ => "worker".into(),
    }
}

fn status(node: &Node) -> String {
    let state = node.status.as_ref().map_or(0, |status| status.state);
    match node_status::State::try_from(state) {
        Ok(node_status::State::Ready) => "ready",
        Ok(node_status::State::Down) => "down",
        Ok(node_status::State::Disconnected) => "disconnected",
        _ => "unknown",
    }
    .into()
}

fn availability(node: &Node) -> String {
    let availability = node.spec.as_ref().map_or(0, |spec| spec.availability);
    match NodeAvailability::try_from(availability) {
        Ok(NodeAvailability::Pause) => "pause",
        Ok(NodeAvailability::Drain) => "drain",
        _ => "active",
    }
    .into()
}

fn leader(node: &Node) -> String {
    match &node.manager_status {
        Some(manager) if manager.leader => "leader".into(),
        Some(_) => "reachable".into(),
        None => String::new(),
    }
}

/// The lines `node inspect` prints for `node`.
fn fields(node: &Node) -> Vec<(&'static str, String)> {
    let [created, updated] = meta_times(node.meta.as_ref());
    let spec_labels = node
        .spec
        .as_ref()
        .and_then(|spec| spec.annotations.as_ref())
        .map(|a| label_pairs(&a.labels));
    let addr = node
        .manager_status
        .as_ref()
        .map(|manager| manager.addr.clone())
        .unwrap_or_default();
    let mut fields = vec![
        ("ID", node.id.clone()),
        ("Hostname", hostname(node)),
        ("Role", role(node)),
        ("Status", status(node)),
        ("Availability", availability(node)),
        ("Desired role", desired_role(node)),
        ("Manager status", leader(node)),
        ("Manager address", addr),
    ];
    fields.extend(output::list("Labels", spec_labels.unwrap_or_default()));
    fields.extend([created, updated]);
    fields
}
