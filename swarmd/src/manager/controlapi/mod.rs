//! The Control API, as SwarmKit's `manager/controlapi`: what `swarmctl`
//! calls, over the local Unix socket.
//!
//! So far the reads: get and list of every kind, with their filters. The
//! writes (create, update, remove, with validation as SwarmKit does it) come
//! next and answer `Unimplemented` until then.

mod read;

use swarm_proto::v1::control_server::Control;
use swarm_proto::v1::*;
use swarm_store::MemoryStore;
use tonic::{Request, Response, Status};

/// Serves the Control API from a manager's store.
#[derive(Clone)]
pub struct ControlApi {
    store: MemoryStore,
}

impl ControlApi {
    /// Answers from `store`.
    pub fn new(store: MemoryStore) -> Self {
        ControlApi { store }
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn ok<T>(message: T) -> Reply<T> {
    Ok(Response::new(message))
}

fn not_yet<T>(rpc: &str) -> Reply<T> {
    Err(Status::unimplemented(format!("{rpc} is not implemented yet")))
}

/// A secret as reads return it: everything but its data.
fn without_data(mut secret: Secret) -> Secret {
    if let Some(spec) = secret.spec.as_mut() {
        spec.data.clear();
    }
    secret
}

#[tonic::async_trait]
impl Control for ControlApi {
    async fn get_node(&self, request: Request<GetNodeRequest>) -> Reply<GetNodeResponse> {
        let node = read::get(&self.store, "node_id", &request.get_ref().node_id)?;
        ok(GetNodeResponse { node: Some(node) })
    }

    async fn list_nodes(&self, request: Request<ListNodesRequest>) -> Reply<ListNodesResponse> {
        let request = request.into_inner();
        let nodes = read::list(&self.store, request.filters.as_ref(), |node: &Node| {
            let membership = node.spec.as_ref().map_or(0, |spec| spec.membership);
            (request.roles.is_empty() || request.roles.contains(&node.role))
                && (request.memberships.is_empty() || request.memberships.contains(&membership))
        });
        ok(ListNodesResponse { nodes })
    }

    async fn update_node(&self, _: Request<UpdateNodeRequest>) -> Reply<UpdateNodeResponse> {
        not_yet("UpdateNode")
    }

    async fn remove_node(&self, _: Request<RemoveNodeRequest>) -> Reply<RemoveNodeResponse> {
        not_yet("RemoveNode")
    }

    async fn get_service(&self, request: Request<GetServiceRequest>) -> Reply<GetServiceResponse> {
        let service = read::get(&self.store, "service_id", &request.get_ref().service_id)?;
        ok(GetServiceResponse { service: Some(service) })
    }

    async fn list_services(&self, request: Request<ListServicesRequest>) -> Reply<ListServicesResponse> {
        let services = read::list(&self.store, request.get_ref().filters.as_ref(), |_: &Service| true);
        ok(ListServicesResponse { services })
    }

    async fn create_service(&self, _: Request<CreateServiceRequest>) -> Reply<CreateServiceResponse> {
        not_yet("CreateService")
    }

    async fn update_service(&self, _: Request<UpdateServiceRequest>) -> Reply<UpdateServiceResponse> {
        not_yet("UpdateService")
    }

    async fn remove_service(&self, _: Request<RemoveServiceRequest>) -> Reply<RemoveServiceResponse> {
        not_yet("RemoveService")
    }

    async fn get_task(&self, request: Request<GetTaskRequest>) -> Reply<GetTaskResponse> {
        let task = read::get(&self.store, "task_id", &request.get_ref().task_id)?;
        ok(GetTaskResponse { task: Some(task) })
    }

    async fn list_tasks(&self, request: Request<ListTasksRequest>) -> Reply<ListTasksResponse> {
        let request = request.into_inner();
        let tasks = read::list(&self.store, request.filters.as_ref(), |task: &Task| {
            let state = task.status.as_ref().map_or(0, |status| status.state);
            (request.service_ids.is_empty() || request.service_ids.contains(&task.service_id))
                && (request.node_ids.is_empty() || request.node_ids.contains(&task.node_id))
                && (request.desired_states.is_empty() || request.desired_states.contains(&task.desired_state))
                && (request.states.is_empty() || request.states.contains(&state))
        });
        ok(ListTasksResponse { tasks })
    }

    async fn remove_task(&self, _: Request<RemoveTaskRequest>) -> Reply<RemoveTaskResponse> {
        not_yet("RemoveTask")
    }

    async fn get_cluster(&self, request: Request<GetClusterRequest>) -> Reply<GetClusterResponse> {
        let cluster = read::get(&self.store, "cluster_id", &request.get_ref().cluster_id)?;
        ok(GetClusterResponse { cluster: Some(cluster) })
    }

    async fn list_clusters(&self, request: Request<ListClustersRequest>) -> Reply<ListClustersResponse> {
        let clusters = read::list(&self.store, request.get_ref().filters.as_ref(), |_: &Cluster| true);
        ok(ListClustersResponse { clusters })
    }

    async fn update_cluster(&self, _: Request<UpdateClusterRequest>) -> Reply<UpdateClusterResponse> {
        not_yet("UpdateCluster")
    }

    async fn get_secret(&self, request: Request<GetSecretRequest>) -> Reply<GetSecretResponse> {
        let secret = read::get(&self.store, "secret_id", &request.get_ref().secret_id)?;
        ok(GetSecretResponse {
            secret: Some(without_data(secret)),
        })
    }

    async fn list_secrets(&self, request: Request<ListSecretsRequest>) -> Reply<ListSecretsResponse> {
        let secrets = read::list(&self.store, request.get_ref().filters.as_ref(), |_: &Secret| true);
        ok(ListSecretsResponse {
            secrets: secrets.into_iter().map(without_data).collect(),
        })
    }

    async fn create_secret(&self, _: Request<CreateSecretRequest>) -> Reply<CreateSecretResponse> {
        not_yet("CreateSecret")
    }

    async fn update_secret(&self, _: Request<UpdateSecretRequest>) -> Reply<UpdateSecretResponse> {
        not_yet("UpdateSecret")
    }

    async fn remove_secret(&self, _: Request<RemoveSecretRequest>) -> Reply<RemoveSecretResponse> {
        not_yet("RemoveSecret")
    }

    async fn get_config(&self, request: Request<GetConfigRequest>) -> Reply<GetConfigResponse> {
        let config = read::get(&self.store, "config_id", &request.get_ref().config_id)?;
        ok(GetConfigResponse { config: Some(config) })
    }

    async fn list_configs(&self, request: Request<ListConfigsRequest>) -> Reply<ListConfigsResponse> {
        let configs = read::list(&self.store, request.get_ref().filters.as_ref(), |_: &Config| true);
        ok(ListConfigsResponse { configs })
    }

    async fn create_config(&self, _: Request<CreateConfigRequest>) -> Reply<CreateConfigResponse> {
        not_yet("CreateConfig")
    }

    async fn update_config(&self, _: Request<UpdateConfigRequest>) -> Reply<UpdateConfigResponse> {
        not_yet("UpdateConfig")
    }

    async fn remove_config(&self, _: Request<RemoveConfigRequest>) -> Reply<RemoveConfigResponse> {
        not_yet("RemoveConfig")
    }
}
