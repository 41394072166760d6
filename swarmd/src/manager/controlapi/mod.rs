//! The Control API, as SwarmKit's `manager/controlapi`: what `swarmctl`
//! calls, over the local Unix socket.
//!
//! Reads (`read.rs`) answer from the local store; writes (`write.rs`) are
//! validated (`validate.rs`, as SwarmKit's controlapi; images by
//! `image_reference.rs`) and committed as one store transaction each.

mod image_reference;
mod read;
mod validate;
mod write;

use swarm_proto::v1::control_server::Control;
use swarm_proto::v1::*;
use swarm_raft::Leadership;
use swarm_store::{By, MemoryStore};
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::manager::redact;

/// Serves the Control API from a manager's store.
#[derive(Clone)]
pub struct ControlApi {
    store: MemoryStore,
    leadership: Option<watch::Receiver<Leadership>>,
    cross_checks: write::CrossCheckLock,
}

impl ControlApi {
    /// Answers from `store`.
    pub fn new(store: MemoryStore) -> Self {
        ControlApi {
            store,
            leadership: None,
            cross_checks: write::CrossCheckLock::default(),
        }
    }

    /// Reports which manager leads from `leadership` (the Raft member's),
    /// as SwarmKit does: a node's `manager_status.leader` is computed when
    /// it is read, never stored, so it is never stale.
    pub fn with_leadership(mut self, leadership: watch::Receiver<Leadership>) -> Self {
        self.leadership = Some(leadership);
        self
    }

    /// `node` with `manager_status.leader` set from the current leadership
    /// (left as stored without a Raft member, in unit tests).
    fn mark_leader(&self, mut node: Node) -> Node {
        if let (Some(leadership), Some(status)) = (&self.leadership, node.manager_status.as_mut()) {
            status.leader = leadership.borrow().leader_id == Some(status.raft_id);
        }
        node
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn ok<T>(message: T) -> Reply<T> {
    Ok(Response::new(message))
}

#[tonic::async_trait]
impl Control for ControlApi {
    async fn get_node(&self, request: Request<GetNodeRequest>) -> Reply<GetNodeResponse> {
        let node = read::get(&self.store, "node_id", &request.get_ref().node_id)?;
        ok(GetNodeResponse {
            node: Some(self.mark_leader(node)),
        })
    }

    async fn list_nodes(&self, request: Request<ListNodesRequest>) -> Reply<ListNodesResponse> {
        let request = request.into_inner();
        let roles: Vec<By> = request
            .roles
            .iter()
            .filter_map(|&role| NodeRole::try_from(role).ok())
            .map(By::Role)
            .collect();
        let nodes = read::list(&self.store, request.filters.as_ref(), &roles, |node: &Node| {
            let membership = node.spec.as_ref().map_or(0, |spec| spec.membership);
            (request.roles.is_empty() || request.roles.contains(&node.role))
                && (request.memberships.is_empty() || request.memberships.contains(&membership))
        })?;
        let nodes = nodes.into_iter().map(|node| self.mark_leader(node)).collect();
        ok(ListNodesResponse { nodes })
    }

    async fn update_node(&self, request: Request<UpdateNodeRequest>) -> Reply<UpdateNodeResponse> {
        let request = request.into_inner();
        let node = write::update_node(
            &self.store,
            &self.cross_checks,
            &request.node_id,
            request.node_version,
            request.spec,
        )
        .await?;
        ok(UpdateNodeResponse {
            node: Some(self.mark_leader(node)),
        })
    }

    async fn remove_node(&self, request: Request<RemoveNodeRequest>) -> Reply<RemoveNodeResponse> {
        let request = request.into_inner();
        write::remove_node(&self.store, &request.node_id, request.force).await?;
        ok(RemoveNodeResponse {})
    }

    async fn get_service(&self, request: Request<GetServiceRequest>) -> Reply<GetServiceResponse> {
        let service = read::get(&self.store, "service_id", &request.get_ref().service_id)?;
        ok(GetServiceResponse { service: Some(service) })
    }

    async fn list_services(&self, request: Request<ListServicesRequest>) -> Reply<ListServicesResponse> {
        let services = read::list(&self.store, request.get_ref().filters.as_ref(), &[], |_: &Service| true)?;
        ok(ListServicesResponse { services })
    }

    async fn create_service(&self, request: Request<CreateServiceRequest>) -> Reply<CreateServiceResponse> {
        let service = write::create_service(&self.store, &self.cross_checks, request.into_inner().spec).await?;
        ok(CreateServiceResponse { service: Some(service) })
    }

    async fn update_service(&self, request: Request<UpdateServiceRequest>) -> Reply<UpdateServiceResponse> {
        let request = request.into_inner();
        let service = write::update_service(
            &self.store,
            &self.cross_checks,
            &request.service_id,
            request.service_version,
            request.spec,
            request.rollback,
        )
        .await?;
        ok(UpdateServiceResponse { service: Some(service) })
    }

    async fn remove_service(&self, request: Request<RemoveServiceRequest>) -> Reply<RemoveServiceResponse> {
        write::remove::<Service>(&self.store, "service_id", &request.get_ref().service_id).await?;
        ok(RemoveServiceResponse {})
    }

    async fn get_task(&self, request: Request<GetTaskRequest>) -> Reply<GetTaskResponse> {
        let task = read::get(&self.store, "task_id", &request.get_ref().task_id)?;
        ok(GetTaskResponse { task: Some(task) })
    }

    async fn list_tasks(&self, request: Request<ListTasksRequest>) -> Reply<ListTasksResponse> {
        let request = request.into_inner();
        // The narrowest of the request's task indexes; none when it asks
        // for something they do not hold (an empty node ID: the tasks not
        // yet assigned).
        let indexable =
            |ids: &[String]| !ids.is_empty() && ids.iter().all(|id| swarm_store::id::Id::parse(id).is_some());
        let indexed: Vec<By> = if indexable(&request.service_ids) {
            request.service_ids.iter().map(|id| By::ServiceId(id)).collect()
        } else if indexable(&request.node_ids) {
            request.node_ids.iter().map(|id| By::NodeId(id)).collect()
        } else {
            Vec::new()
        };
        let tasks = read::list(&self.store, request.filters.as_ref(), &indexed, |task: &Task| {
            let state = task.status.as_ref().map_or(0, |status| status.state);
            (request.service_ids.is_empty() || request.service_ids.contains(&task.service_id))
                && (request.node_ids.is_empty() || request.node_ids.contains(&task.node_id))
                && (request.desired_states.is_empty() || request.desired_states.contains(&task.desired_state))
                && (request.states.is_empty() || request.states.contains(&state))
        })?;
        ok(ListTasksResponse { tasks })
    }

    async fn remove_task(&self, request: Request<RemoveTaskRequest>) -> Reply<RemoveTaskResponse> {
        write::remove_task(&self.store, &request.get_ref().task_id).await?;
        ok(RemoveTaskResponse {})
    }

    async fn get_cluster(&self, request: Request<GetClusterRequest>) -> Reply<GetClusterResponse> {
        let cluster = read::get(&self.store, "cluster_id", &request.get_ref().cluster_id)?;
        ok(GetClusterResponse {
            cluster: Some(redact::cluster(cluster)),
        })
    }

    async fn list_clusters(&self, request: Request<ListClustersRequest>) -> Reply<ListClustersResponse> {
        let clusters = read::list(&self.store, request.get_ref().filters.as_ref(), &[], |_: &Cluster| true)?;
        ok(ListClustersResponse {
            clusters: clusters.into_iter().map(redact::cluster).collect(),
        })
    }

    async fn update_cluster(&self, request: Request<UpdateClusterRequest>) -> Reply<UpdateClusterResponse> {
        let request = request.into_inner();
        if request.rotate_worker_token || request.rotate_manager_token {
            return Err(Status::unimplemented(
                "join tokens come with the cluster issue: nothing to rotate yet",
            ));
        }
        let cluster =
            write::update_cluster(&self.store, &request.cluster_id, request.cluster_version, request.spec).await?;
        ok(UpdateClusterResponse {
            cluster: Some(redact::cluster(cluster)),
        })
    }

    async fn get_secret(&self, request: Request<GetSecretRequest>) -> Reply<GetSecretResponse> {
        let secret = read::get(&self.store, "secret_id", &request.get_ref().secret_id)?;
        ok(GetSecretResponse {
            secret: Some(redact::secret(secret)),
        })
    }

    async fn list_secrets(&self, request: Request<ListSecretsRequest>) -> Reply<ListSecretsResponse> {
        let secrets = read::list(&self.store, request.get_ref().filters.as_ref(), &[], |_: &Secret| true)?;
        ok(ListSecretsResponse {
            secrets: secrets.into_iter().map(redact::secret).collect(),
        })
    }

    async fn create_secret(&self, request: Request<CreateSecretRequest>) -> Reply<CreateSecretResponse> {
        let secret = write::create_secret(&self.store, request.into_inner().spec).await?;
        ok(CreateSecretResponse {
            secret: Some(redact::secret(secret)),
        })
    }

    async fn update_secret(&self, request: Request<UpdateSecretRequest>) -> Reply<UpdateSecretResponse> {
        let request = request.into_inner();
        let secret = write::update_labels::<Secret>(
            &self.store,
            &request.secret_id,
            request.secret_version,
            request.spec.map(|spec| (spec.annotations, spec.data)),
        )
        .await?;
        ok(UpdateSecretResponse {
            secret: Some(redact::secret(secret)),
        })
    }

    async fn remove_secret(&self, request: Request<RemoveSecretRequest>) -> Reply<RemoveSecretResponse> {
        let id = &request.get_ref().secret_id;
        write::remove_referenced::<Secret>(&self.store, &self.cross_checks, "secret_id", id, |container, id| {
            container.secrets.iter().any(|reference| reference.secret_id == id)
        })
        .await?;
        ok(RemoveSecretResponse {})
    }

    async fn get_config(&self, request: Request<GetConfigRequest>) -> Reply<GetConfigResponse> {
        let config = read::get(&self.store, "config_id", &request.get_ref().config_id)?;
        ok(GetConfigResponse { config: Some(config) })
    }

    async fn list_configs(&self, request: Request<ListConfigsRequest>) -> Reply<ListConfigsResponse> {
        let configs = read::list(&self.store, request.get_ref().filters.as_ref(), &[], |_: &Config| true)?;
        ok(ListConfigsResponse { configs })
    }

    async fn create_config(&self, request: Request<CreateConfigRequest>) -> Reply<CreateConfigResponse> {
        let config = write::create_config(&self.store, request.into_inner().spec).await?;
        ok(CreateConfigResponse { config: Some(config) })
    }

    async fn update_config(&self, request: Request<UpdateConfigRequest>) -> Reply<UpdateConfigResponse> {
        let request = request.into_inner();
        let config = write::update_labels::<Config>(
            &self.store,
            &request.config_id,
            request.config_version,
            request.spec.map(|spec| (spec.annotations, spec.data)),
        )
        .await?;
        ok(UpdateConfigResponse { config: Some(config) })
    }

    async fn remove_config(&self, request: Request<RemoveConfigRequest>) -> Reply<RemoveConfigResponse> {
        let id = &request.get_ref().config_id;
        write::remove_referenced::<Config>(&self.store, &self.cross_checks, "config_id", id, |container, id| {
            container.configs.iter().any(|reference| reference.config_id == id)
        })
        .await?;
        ok(RemoveConfigResponse {})
    }
}

#[cfg(test)]
mod tests;
