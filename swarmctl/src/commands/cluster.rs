//! `swarmctl cluster ...`

use swarm_proto::v1::{Cluster, GetClusterRequest, ListClustersRequest, ListFilters, UpdateClusterRequest};

use super::{change_reply, inspect_each, label_pairs, name, reply};
use crate::cli::ClusterCommand;
use crate::connect::Control;
use crate::filter::Filters;
use crate::output::{self, Format};
use crate::resolve;

pub async fn run(control: &mut Control, command: ClusterCommand, format: Format) -> anyhow::Result<()> {
    match command {
        ClusterCommand::Ls(list) => {
            let filters = Filters::new(list.filters, &[])?;
            let clusters = listed(control, filters.list_filters()).await?;
            if format == Format::Json && !list.quiet {
                return output::json_list(&clusters);
            }
            let rows = clusters
                .iter()
                .map(|cluster| vec![cluster.id.clone(), annotations_name(cluster)])
                .collect();
            output::table(&["ID", "NAME"], rows, list.quiet)?;
        }
        ClusterCommand::Update {
            reference,
            task_history_limit,
            snapshot_interval,
            log_entries_for_slow_followers,
            heartbeat_period,
            cert_expiry,
            labels: changes,
        } => {
            let cluster = get(control, &reference).await?;
            let version = cluster.meta.as_ref().map_or(0, |meta| meta.version);
            let mut spec = cluster.spec.clone().unwrap_or_default();
            super::change_labels(
                &mut spec.annotations.get_or_insert_with(Default::default).labels,
                &changes,
            )?;
            if let Some(limit) = task_history_limit {
                spec.orchestration
                    .get_or_insert_with(Default::default)
                    .task_history_retention_limit = limit;
            }
            if snapshot_interval.is_some() || log_entries_for_slow_followers.is_some() {
                let Some(raft) = spec.raft.as_mut() else {
                    anyhow::bail!("cluster {reference:?} has no raft settings to change");
                };
                raft.snapshot_interval = snapshot_interval.unwrap_or(raft.snapshot_interval);
                raft.log_entries_for_slow_followers =
                    log_entries_for_slow_followers.unwrap_or(raft.log_entries_for_slow_followers);
            }
            if heartbeat_period.is_some() {
                spec.dispatcher.get_or_insert_with(Default::default).heartbeat_period = heartbeat_period;
            }
            if cert_expiry.is_some() {
                spec.ca_config.get_or_insert_with(Default::default).node_cert_expiry = cert_expiry;
            }
            let request = UpdateClusterRequest {
                cluster_id: cluster.id.clone(),
                cluster_version: version,
                spec: Some(spec),
                ..Default::default()
            };
            change_reply(control.update_cluster(request).await)?;
            println!("{}", cluster.id);
        }
        ClusterCommand::Inspect { references } => {
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

fn annotations_name(cluster: &Cluster) -> String {
    name(cluster.spec.as_ref().and_then(|spec| spec.annotations.as_ref()))
}

async fn get(control: &mut Control, reference: &str) -> anyhow::Result<Cluster> {
    let candidates: Vec<_> = listed(control, ListFilters::default())
        .await?
        .iter()
        .map(|c| (c.id.clone(), annotations_name(c)))
        .collect();
    let cluster_id = resolve::pick("cluster", reference, &candidates)?;
    Ok(reply(control.get_cluster(GetClusterRequest { cluster_id }).await)?
        .cluster
        .unwrap_or_default())
}

async fn listed(control: &mut Control, filters: ListFilters) -> anyhow::Result<Vec<Cluster>> {
    let request = ListClustersRequest { filters: Some(filters) };
    Ok(reply(control.list_clusters(request).await)?.clusters)
}

/// The lines `cluster inspect` prints for `cluster`.
fn fields(cluster: &Cluster) -> Vec<(&'static str, String)> {
    let spec = cluster.spec.clone().unwrap_or_default();
    let raft = spec.raft.unwrap_or_default();
    let retention = spec
        .orchestration
        .map_or(0, |orchestration| orchestration.task_history_retention_limit);
    let heartbeat = spec
        .dispatcher
        .and_then(|dispatcher| dispatcher.heartbeat_period)
        .map(|period| output::duration(&period))
        .unwrap_or_default();
    let cert_expiry = spec
        .ca_config
        .and_then(|ca| ca.node_cert_expiry)
        .map(|expiry| output::duration(&expiry))
        .unwrap_or_default();
    let mut fields = vec![("ID", cluster.id.clone()), ("Name", annotations_name(cluster))];
    fields.extend(output::list(
        "Labels",
        label_pairs(&spec.annotations.unwrap_or_default().labels),
    ));
    fields.extend([
        ("Task history retention", retention.to_string()),
        ("Raft snapshot interval", raft.snapshot_interval.to_string()),
        (
            "Raft entries kept for slow followers",
            format!(
                "{} at most (and at most 8 MiB of them, or the snapshot's size)",
                raft.log_entries_for_slow_followers
            ),
        ),
        (
            "Raft heartbeat / election ticks (as created)",
            format!("{} / {}", raft.heartbeat_tick, raft.election_tick),
        ),
        ("Dispatcher heartbeat period", heartbeat),
        ("Node certificate expiry", cert_expiry),
    ]);
    fields
}
