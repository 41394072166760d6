//! The Control API's answers and codes, on a store that commits locally.

use std::collections::HashMap;

use swarm_proto::v1::control_server::Control;
use swarm_proto::v1::*;
use swarm_store::MemoryStore;
use tonic::{Code, Request, Response};

use super::ControlApi;

fn api() -> (ControlApi, MemoryStore) {
    let store = MemoryStore::new();
    (ControlApi::new(store.clone()), store)
}

fn annotations(name: &str) -> Option<Annotations> {
    Some(Annotations {
        name: name.into(),
        labels: HashMap::new(),
    })
}

fn spec(name: &str, image: &str) -> ServiceSpec {
    ServiceSpec::container(name, image)
}

fn container(spec: &mut ServiceSpec) -> &mut ContainerSpec {
    let task = swarm_proto::Shared::make_mut(spec.task.as_mut().unwrap());
    match task.runtime.as_mut().unwrap() {
        task_spec::Runtime::Container(container) => container,
    }
}

/// A service publishing target port 80 as `published`.
fn publishing(
    name: &str,
    published: u32,
    protocol: port_config::Protocol,
    mode: port_config::PublishMode,
) -> ServiceSpec {
    let mut spec = spec(name, "busybox");
    spec.endpoint = Some(EndpointSpec {
        ports: vec![PortConfig {
            published_port: published,
            target_port: 80,
            protocol: protocol.into(),
            publish_mode: mode.into(),
            ..Default::default()
        }],
        ..Default::default()
    });
    spec
}

async fn create(api: &ControlApi, spec: ServiceSpec) -> Result<Service, tonic::Status> {
    let response = api
        .create_service(Request::new(CreateServiceRequest { spec: Some(spec) }))
        .await?;
    Ok(response.into_inner().service.unwrap())
}

/// Creates a secret named `name` through the API; returns it as stored.
async fn new_secret(api: &ControlApi, name: &str) -> Secret {
    let spec = SecretSpec {
        annotations: annotations(name),
        data: b"hunter2".to_vec(),
    };
    let response = api
        .create_secret(Request::new(CreateSecretRequest { spec: Some(spec) }))
        .await
        .unwrap();
    response.into_inner().secret.unwrap()
}

/// Asserts `code`, a message naming `mention`, and an unchanged store.
async fn refused<T: std::fmt::Debug>(
    store: &MemoryStore,
    call: impl std::future::Future<Output = Result<T, tonic::Status>>,
    code: Code,
    mention: &str,
) {
    let before = store.snapshot();
    let status = call.await.unwrap_err();
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(mention),
        "{:?} does not mention {mention:?}",
        status.message()
    );
    assert_eq!(store.snapshot(), before, "a refused request changed the store");
}

#[tokio::test]
async fn a_created_service_is_read_back_and_a_second_of_its_name_is_refused() {
    let (api, store) = api();
    let web = create(&api, spec("web", "busybox:local")).await.unwrap();
    let got = api
        .get_service(Request::new(GetServiceRequest {
            service_id: web.id.clone(),
        }))
        .await
        .unwrap();
    assert_eq!(got.into_inner().service.unwrap(), web);
    assert!(matches!(
        web.spec.as_ref().unwrap().mode,
        Some(service_spec::Mode::Replicated(ReplicatedService { replicas: 1 }))
    ));
    refused(
        &store,
        create(&api, spec("WEB", "busybox:local")),
        Code::AlreadyExists,
        "already in use",
    )
    .await;
}

#[tokio::test]
async fn bad_service_specs_are_refused_naming_the_field() {
    let (api, store) = api();
    refused(
        &store,
        create(&api, spec("web!", "busybox")),
        Code::InvalidArgument,
        "spec.annotations.name",
    )
    .await;
    refused(
        &store,
        create(&api, spec(&"a".repeat(64), "busybox")),
        Code::InvalidArgument,
        "63",
    )
    .await;
    refused(
        &store,
        create(&api, spec("web", " ")),
        Code::InvalidArgument,
        "spec.task.container.image",
    )
    .await;
    let mut env = spec("web", "busybox");
    container(&mut env).env = vec!["A=1".into(), "B".into()];
    refused(
        &store,
        create(&api, env),
        Code::InvalidArgument,
        "spec.task.container.env",
    )
    .await;
    let mut negative = spec("web", "busybox");
    container(&mut negative).stop_grace_period = Some(prost_types::Duration { seconds: -1, nanos: 0 });
    refused(
        &store,
        create(&api, negative),
        Code::InvalidArgument,
        "stop_grace_period",
    )
    .await;
    // 999999999h: past what protobuf's JSON can write back.
    let mut endless = spec("web", "busybox");
    container(&mut endless).stop_grace_period = Some(prost_types::Duration {
        seconds: 999_999_999 * 3600,
        nanos: 0,
    });
    refused(
        &store,
        create(&api, endless),
        Code::InvalidArgument,
        "stop_grace_period is out of range",
    )
    .await;
    // Malformed as protobuf Durations, whatever they would sum to.
    for (seconds, nanos) in [(0, 1_000_000_000), (5, -1), (-5, 1), (0, -1_000_000_000)] {
        let mut malformed = spec("web", "busybox");
        container(&mut malformed).stop_grace_period = Some(prost_types::Duration { seconds, nanos });
        refused(
            &store,
            create(&api, malformed),
            Code::InvalidArgument,
            "stop_grace_period is not a valid protobuf Duration",
        )
        .await;
    }
    // What no process can be given: a NUL in its words, environment or
    // paths; and health checks the engine could not run.
    for (field, set) in [
        (
            "spec.task.container.env",
            (|c: &mut ContainerSpec| c.env = vec!["A=b\0c".into()]) as fn(&mut ContainerSpec),
        ),
        ("spec.task.container.args", |c| c.args = vec!["ok".into(), "b\0".into()]),
        ("spec.task.container.command", |c| c.command = vec!["sh\0".into()]),
        ("spec.task.container.command", |c| {
            c.command = vec![String::new(), "x".into()]
        }),
        ("spec.task.container.user", |c| c.user = "a\0b".into()),
        ("spec.task.container.dir", |c| c.dir = "/a\0b".into()),
    ] {
        let mut bad = spec("web", "busybox");
        set(container(&mut bad));
        refused(&store, create(&api, bad), Code::InvalidArgument, field).await;
    }
    for test in [
        &["BOGUS", "true"][..],
        &["CMD"],
        &["CMD", ""],
        &["CMD-SHELL", "a", "b"],
        &["NONE", "x"],
    ] {
        let mut bad = spec("web", "busybox");
        container(&mut bad).healthcheck = Some(Box::new(HealthConfig {
            test: test.iter().map(|word| word.to_string()).collect(),
            ..Default::default()
        }));
        refused(
            &store,
            create(&api, bad),
            Code::InvalidArgument,
            "spec.task.container.healthcheck.test",
        )
        .await;
    }
    let mut constraint = spec("web", "busybox");
    let task = swarm_proto::Shared::make_mut(constraint.task.as_mut().unwrap());
    task.placement = Some(Box::new(Placement {
        constraints: vec!["node.labels.zone = a".into()],
        ..Default::default()
    }));
    refused(
        &store,
        create(&api, constraint),
        Code::InvalidArgument,
        "spec.task.placement.constraints",
    )
    .await;
    // As SwarmKit: counts the orchestration reads as signed.
    let mut huge = spec("web", "busybox");
    huge.mode = Some(service_spec::Mode::Replicated(ReplicatedService { replicas: u64::MAX }));
    refused(
        &store,
        create(&api, huge),
        Code::InvalidArgument,
        "spec.mode.replicated.replicas: 18446744073709551615 is more than",
    )
    .await;
    // max_replicas with no mode: the default mode, replicated, takes it.
    let mut capped = spec("capped", "busybox");
    capped.mode = None;
    let task = swarm_proto::Shared::make_mut(capped.task.as_mut().unwrap());
    task.placement = Some(Box::new(Placement {
        max_replicas: 2,
        ..Default::default()
    }));
    create(&api, capped).await.expect("replicated by default");
}

#[tokio::test]
async fn updates_carry_the_version_read_and_can_roll_back() {
    let (api, store) = api();
    let web = create(&api, spec("web", "busybox:1")).await.unwrap();
    let version = web.meta.as_ref().unwrap().version;
    let update = |version, spec: Option<ServiceSpec>, rollback| {
        let request = UpdateServiceRequest {
            service_id: web.id.clone(),
            service_version: version,
            spec,
            rollback,
        };
        api.update_service(Request::new(request))
    };
    let updated = update(version, Some(spec("web", "busybox:2")), false)
        .await
        .unwrap()
        .into_inner()
        .service
        .unwrap();
    assert!(updated.meta.as_ref().unwrap().version > version);
    assert_eq!(updated.previous_spec.as_ref().unwrap(), web.spec.as_ref().unwrap());

    // The same spec again changes nothing, and keeps what a rollback goes
    // back to; at a stale version it is refused all the same.
    let unchanged = update(updated.meta.as_ref().unwrap().version, updated.spec.clone(), false)
        .await
        .unwrap()
        .into_inner()
        .service
        .unwrap();
    assert_eq!(unchanged, updated);
    refused(
        &store,
        update(version, updated.spec.clone(), false),
        Code::Aborted,
        "version",
    )
    .await;

    refused(
        &store,
        update(version, Some(spec("web", "busybox:3")), false),
        Code::Aborted,
        "version",
    )
    .await;
    refused(
        &store,
        update(
            updated.meta.as_ref().unwrap().version,
            Some(spec("www", "busybox:3")),
            false,
        ),
        Code::InvalidArgument,
        "renamed",
    )
    .await;

    // Not even in case.
    refused(
        &store,
        update(
            updated.meta.as_ref().unwrap().version,
            Some(spec("Web", "busybox:3")),
            false,
        ),
        Code::InvalidArgument,
        "renamed",
    )
    .await;
    // A spec without its mode would scale the service down to one.
    let mut modeless = spec("web", "busybox:3");
    modeless.mode = None;
    refused(
        &store,
        update(updated.meta.as_ref().unwrap().version, Some(modeless), false),
        Code::InvalidArgument,
        "spec.mode is required",
    )
    .await;
    refused(
        &store,
        update(0, Some(spec("web", "busybox:3")), false),
        Code::InvalidArgument,
        "service_version is required",
    )
    .await;

    let mut global = spec("web", "busybox:3");
    global.mode = Some(service_spec::Mode::Global(GlobalService {}));
    refused(
        &store,
        update(updated.meta.as_ref().unwrap().version, Some(global.clone()), false),
        Code::InvalidArgument,
        "spec.mode: a service cannot change between replicated, global and job modes",
    )
    .await;
    // Said as a change of mode, not as what the new mode refuses of the
    // rest of the spec.
    let task = swarm_proto::Shared::make_mut(global.task.as_mut().unwrap());
    task.placement = Some(Box::new(Placement {
        max_replicas: 2,
        ..Default::default()
    }));
    refused(
        &store,
        update(updated.meta.as_ref().unwrap().version, Some(global), false),
        Code::InvalidArgument,
        "spec.mode: a service cannot change between replicated, global and job modes",
    )
    .await;

    let rolled_back = update(updated.meta.as_ref().unwrap().version, None, true)
        .await
        .unwrap()
        .into_inner()
        .service
        .unwrap();
    assert_eq!(rolled_back.spec, web.spec);
}

#[tokio::test]
async fn an_ingress_port_is_published_by_one_service_only_in_either_mode() {
    let (api, store) = api();
    let (tcp, udp) = (port_config::Protocol::Tcp, port_config::Protocol::Udp);
    let (ingress, host) = (port_config::PublishMode::Ingress, port_config::PublishMode::Host);
    let web = create(&api, publishing("web", 8080, tcp, ingress)).await.unwrap();
    refused(
        &store,
        create(&api, publishing("api", 8080, tcp, ingress)),
        Code::InvalidArgument,
        "published port 8080/tcp is already used by service \"web\"",
    )
    .await;
    // Nor in host mode, on every node's address: the mesh holds it there.
    refused(
        &store,
        create(&api, publishing("local", 8080, tcp, host)),
        Code::InvalidArgument,
        "published port 8080/tcp is already used by service \"web\"",
    )
    .await;
    // Another protocol, or one the cluster picks: no conflict. Two
    // services may share a port in host mode (never on one node).
    create(&api, publishing("dns", 8080, udp, ingress)).await.unwrap();
    create(&api, publishing("any", 0, tcp, ingress)).await.unwrap();
    create(&api, publishing("local", 7070, tcp, host)).await.unwrap();
    create(&api, publishing("local-2", 7070, tcp, host)).await.unwrap();
    // A port a service publishes in host mode is not the mesh's to take.
    refused(
        &store,
        create(&api, publishing("mesh", 7070, tcp, ingress)),
        Code::InvalidArgument,
        "published port 7070/tcp is already used by service \"local",
    )
    .await;
    // A service keeps its own port through an update; another cannot take it.
    let mut web_spec = web.spec.clone().unwrap();
    container(&mut web_spec).image = "busybox:2".into();
    let update = |service: &Service, spec: ServiceSpec| {
        api.update_service(Request::new(UpdateServiceRequest {
            service_id: service.id.clone(),
            service_version: service.meta.as_ref().unwrap().version,
            spec: Some(spec),
            rollback: false,
        }))
    };
    update(&web, web_spec).await.unwrap();
    let other = create(&api, publishing("other", 9090, tcp, ingress)).await.unwrap();
    refused(
        &store,
        update(&other, publishing("other", 8080, tcp, ingress)),
        Code::InvalidArgument,
        "already used by service \"web\"",
    )
    .await;
}

#[tokio::test]
async fn unknown_ids_are_not_found_and_a_missing_one_is_invalid() {
    let (api, store) = api();
    let unknown = swarm_store::id::generate();
    let get = api
        .get_service(Request::new(GetServiceRequest {
            service_id: unknown.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(get.code(), Code::NotFound);
    refused(
        &store,
        api.remove_service(Request::new(RemoveServiceRequest { service_id: unknown })),
        Code::NotFound,
        "not found",
    )
    .await;
    refused(
        &store,
        api.remove_service(Request::new(RemoveServiceRequest::default())),
        Code::InvalidArgument,
        "service_id",
    )
    .await;
}

/// A cluster named `default`, with no settings.
fn default_cluster() -> Cluster {
    Cluster {
        id: swarm_store::id::generate(),
        spec: Some(ClusterSpec {
            annotations: annotations("default"),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_root_ca_key_is_never_returned() {
    let (api, store) = api();
    let cluster = Cluster {
        root_ca: Some(RootCa {
            ca_key: b"-----BEGIN PRIVATE KEY-----".to_vec(),
            ca_cert: b"-----BEGIN CERTIFICATE-----".to_vec(),
            ..Default::default()
        }),
        ..default_cluster()
    };
    store.update(|tx| tx.create(cluster.clone())).await.unwrap();
    let redacted = |cluster: &Cluster| {
        let root_ca = cluster.root_ca.as_ref().unwrap();
        root_ca.ca_key.is_empty() && !root_ca.ca_cert.is_empty()
    };
    let got = api
        .get_cluster(Request::new(GetClusterRequest {
            cluster_id: cluster.id.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .cluster
        .unwrap();
    assert!(redacted(&got), "{got:?}");
    let listed = api
        .list_clusters(Request::new(ListClustersRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .clusters;
    assert!(listed.iter().all(redacted), "{listed:?}");
    let updated = api
        .update_cluster(Request::new(UpdateClusterRequest {
            cluster_id: cluster.id.clone(),
            cluster_version: got.meta.as_ref().unwrap().version,
            spec: got.spec.clone(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .cluster
        .unwrap();
    assert!(redacted(&updated), "{updated:?}");
    // The store itself keeps it.
    use swarm_store::Read as _;
    let stored = store.view(|read| read.get::<Cluster>(&cluster.id).unwrap().root_ca.clone());
    assert_eq!(stored.unwrap().ca_key, cluster.root_ca.unwrap().ca_key);
}

#[tokio::test]
async fn secret_data_is_never_returned_and_a_used_secret_stays() {
    let (api, store) = api();
    let created = new_secret(&api, "db-pass").await;
    assert!(created.spec.as_ref().unwrap().data.is_empty());
    let listed = api
        .list_secrets(Request::new(ListSecretsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .secrets;
    assert!(
        listed
            .iter()
            .all(|secret| secret.spec.as_ref().unwrap().data.is_empty())
    );

    let big = SecretSpec {
        annotations: annotations("big"),
        data: vec![0; 500 * 1024 + 1],
    };
    refused(
        &store,
        api.create_secret(Request::new(CreateSecretRequest { spec: Some(big) })),
        Code::InvalidArgument,
        "spec.data",
    )
    .await;

    let uses = |secret_id: &str, secret_name: &str| {
        let mut uses = spec("app", "busybox");
        container(&mut uses).secrets = vec![SecretReference {
            secret_id: secret_id.into(),
            secret_name: secret_name.into(),
            target: "db".into(),
            ..Default::default()
        }];
        uses
    };
    refused(
        &store,
        create(&api, uses(&swarm_store::id::generate(), "db-pass")),
        Code::InvalidArgument,
        "not found",
    )
    .await;
    refused(
        &store,
        create(&api, uses(&created.id, "other")),
        Code::InvalidArgument,
        "is named \"db-pass\"",
    )
    .await;
    create(&api, uses(&created.id, "db-pass")).await.unwrap();
    let remove = RemoveSecretRequest {
        secret_id: created.id.clone(),
    };
    refused(
        &store,
        api.remove_secret(Request::new(remove)),
        Code::FailedPrecondition,
        "app",
    )
    .await;

    let mut relabel = created.spec.clone().unwrap();
    relabel
        .annotations
        .as_mut()
        .unwrap()
        .labels
        .insert("team".into(), "db".into());
    let version = created.meta.as_ref().unwrap().version;
    let request = UpdateSecretRequest {
        secret_id: created.id.clone(),
        secret_version: version,
        spec: Some(relabel.clone()),
    };
    api.update_secret(Request::new(request)).await.unwrap();
    let mut bad_label = relabel.clone();
    bad_label
        .annotations
        .as_mut()
        .unwrap()
        .labels
        .insert("a\tb".into(), "x".into());
    let request = UpdateSecretRequest {
        secret_id: created.id.clone(),
        secret_version: version + 1,
        spec: Some(bad_label),
    };
    refused(
        &store,
        api.update_secret(Request::new(request)),
        Code::InvalidArgument,
        "holds a control character",
    )
    .await;
    // Any data is refused, the right one too: an answer that differed
    // would tell a caller whether a guess of the secret is right.
    for guess in [&b"changed"[..], &b"hunter2"[..]] {
        relabel.data = guess.to_vec();
        let request = UpdateSecretRequest {
            secret_id: created.id.clone(),
            secret_version: version + 1,
            spec: Some(relabel.clone()),
        };
        refused(
            &store,
            api.update_secret(Request::new(request)),
            Code::InvalidArgument,
            "a secret's data never changes",
        )
        .await;
    }
}

#[tokio::test]
async fn a_nodes_leader_flag_follows_raft_leadership_not_what_was_stored() {
    let store = MemoryStore::new();
    let node = Node {
        id: swarm_store::id::generate(),
        role: NodeRole::Manager.into(),
        manager_status: Some(ManagerStatus {
            raft_id: 7,
            leader: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    let node_id = node.id.clone();
    store.update(|tx| tx.create(node)).await.unwrap();
    let leadership = |leader_id| swarm_raft::Leadership {
        term: 2,
        leader_id,
        leader_addr: None,
        is_leader: false,
        caught_up: false,
        stopped: None,
    };
    let (leader, watched) = tokio::sync::watch::channel(leadership(Some(8)));
    let api = ControlApi::new(store).with_leadership(watched);
    let is_leader = async |api: &ControlApi| {
        let listed = api.list_nodes(Request::new(ListNodesRequest::default())).await.unwrap();
        let got = api
            .get_node(Request::new(GetNodeRequest {
                node_id: node_id.clone(),
            }))
            .await
            .unwrap();
        let flag = |node: &Node| node.manager_status.as_ref().unwrap().leader;
        let (listed, got) = (
            flag(&listed.get_ref().nodes[0]),
            flag(got.get_ref().node.as_ref().unwrap()),
        );
        assert_eq!(listed, got);
        listed
    };
    assert!(!is_leader(&api).await, "member 8 leads");
    leader.send(leadership(Some(7))).unwrap();
    assert!(is_leader(&api).await, "member 7 leads");
    leader.send(leadership(None)).unwrap();
    assert!(!is_leader(&api).await, "no leader");
}

#[tokio::test]
async fn nodes_are_listed_by_hostname_as_swarmkit_does() {
    let (api, store) = api();
    for hostname in ["node-1", "node-2", "db-1"] {
        let node = Node {
            id: swarm_store::id::generate(),
            description: Some(NodeDescription {
                hostname: hostname.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        store.update(|tx| tx.create(node)).await.unwrap();
    }
    let hostnames = async |filters: ListFilters| {
        let listed = api
            .list_nodes(Request::new(ListNodesRequest {
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .unwrap();
        let mut hostnames: Vec<String> = listed
            .into_inner()
            .nodes
            .into_iter()
            .map(|node| node.description.unwrap().hostname)
            .collect();
        hostnames.sort();
        hostnames
    };
    let by_names = ListFilters {
        names: vec!["NODE-2".into(), "db-1".into()],
        ..Default::default()
    };
    assert_eq!(hostnames(by_names).await, ["db-1", "node-2"]);
    let by_prefix = ListFilters {
        name_prefixes: vec!["node".into()],
        ..Default::default()
    };
    assert_eq!(hostnames(by_prefix).await, ["node-1", "node-2"]);
}

#[tokio::test]
async fn services_listed_by_id_or_name_prefix_are_those_a_scan_would_keep() {
    let (api, _store) = api();
    let mut services = Vec::new();
    for (i, name) in ["web", "web-2", "Webhook", "db", "dbx", "cache"]
        .into_iter()
        .enumerate()
    {
        let mut spec = spec(name, "busybox");
        if i % 2 == 0 {
            spec.annotations
                .as_mut()
                .unwrap()
                .labels
                .insert("tier".into(), "front".into());
        }
        services.push(create(&api, spec).await.unwrap());
    }
    let listed = |filters: ListFilters| {
        let api = &api;
        async move {
            let request = Request::new(ListServicesRequest { filters: Some(filters) });
            let services = api.list_services(request).await.unwrap().into_inner().services;
            services.into_iter().map(|service| service.id).collect::<Vec<_>>()
        }
    };
    // What a scan of every service keeps, in id order.
    let scan = |keep: &dyn Fn(&Service) -> bool| {
        let mut ids: Vec<String> = services.iter().filter(|s| keep(s)).map(|s| s.id.clone()).collect();
        ids.sort();
        ids
    };
    fn annotations_of(service: &Service) -> &Annotations {
        service
            .spec
            .as_ref()
            .and_then(|spec| spec.annotations.as_ref())
            .unwrap()
    }
    let name = |service: &Service| annotations_of(service).name.to_lowercase();
    let front = |service: &Service| annotations_of(service).labels.contains_key("tier");
    let (first, second) = (&services[0].id, &services[3].id);
    let by_ids = ListFilters {
        id_prefixes: vec![
            first[..3].to_string(),
            second.clone(),
            first[..1].to_string(),
            "NOT-AN-ID".into(),
        ],
        ..Default::default()
    };
    let expected = scan(&|s| s.id.starts_with(&first[..1]) || s.id == *second);
    assert_eq!(listed(by_ids.clone()).await, expected);
    let by_ids_and_label = ListFilters {
        labels: vec!["tier".into()],
        ..by_ids
    };
    let expected = scan(&|s| (s.id.starts_with(&first[..1]) || s.id == *second) && front(s));
    assert_eq!(listed(by_ids_and_label).await, expected);
    let by_name_prefix = ListFilters {
        name_prefixes: vec!["WEB".into(), "db".into()],
        ..Default::default()
    };
    let expected = scan(&|s| name(s).starts_with("web") || name(s).starts_with("db"));
    assert_eq!(expected.len(), 5, "web, web-2, Webhook, db, dbx");
    assert_eq!(listed(by_name_prefix).await, expected);
    let by_both = ListFilters {
        id_prefixes: vec![first.clone()],
        name_prefixes: vec!["db".into()],
        ..Default::default()
    };
    assert_eq!(
        listed(by_both).await,
        Vec::<String>::new(),
        "{first} is web's, not a db's"
    );
}

/// A node that is a manager and meant to stay one.
fn manager(hostname: &str) -> Node {
    Node {
        id: swarm_store::id::generate(),
        role: NodeRole::Manager.into(),
        spec: Some(NodeSpec {
            desired_role: NodeRole::Manager.into(),
            ..Default::default()
        }),
        description: Some(NodeDescription {
            hostname: hostname.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Asks for node `node_id` to become a worker, at the version `version_of`
/// gives the version read.
async fn demote_at(
    api: &ControlApi,
    node_id: &str,
    version_of: impl FnOnce(u64) -> u64,
) -> Result<tonic::Response<UpdateNodeResponse>, tonic::Status> {
    let node = api
        .get_node(Request::new(GetNodeRequest {
            node_id: node_id.into(),
        }))
        .await?
        .into_inner()
        .node
        .unwrap();
    let mut spec = node.spec.clone().unwrap();
    spec.set_desired_role(NodeRole::Worker);
    api.update_node(Request::new(UpdateNodeRequest {
        node_id: node.id.clone(),
        node_version: version_of(node.meta.unwrap().version),
        spec: Some(spec),
    }))
    .await
}

async fn demote(api: &ControlApi, node_id: &str) -> Result<tonic::Response<UpdateNodeResponse>, tonic::Status> {
    demote_at(api, node_id, |version| version).await
}

#[tokio::test]
async fn the_last_manager_cannot_be_demoted_and_a_manager_is_not_removed() {
    let (api, store) = api();
    let (first, second) = (manager("node-1"), manager("node-2"));
    for node in [first.clone(), second.clone()] {
        store.update(|tx| tx.create(node)).await.unwrap();
    }
    // Of two managers, one may go; then the other is the last.
    let demoted = demote(&api, &first.id).await.unwrap().into_inner().node.unwrap();
    assert_eq!(demoted.spec.unwrap().desired_role(), NodeRole::Worker);
    refused(
        &store,
        demote(&api, &second.id),
        Code::FailedPrecondition,
        "last manager",
    )
    .await;
    // A stale version is told as such before anything else is judged.
    let stale = demote_at(&api, &second.id, |version| version - 1);
    refused(&store, stale, Code::Aborted, "was changed").await;
    // A node still a manager by role is not removed, even with force.
    let remove = |node_id: &str, force| {
        api.remove_node(Request::new(RemoveNodeRequest {
            node_id: node_id.into(),
            force,
        }))
    };
    refused(&store, remove(&second.id, true), Code::FailedPrecondition, "demote it").await;
}

/// A node's spec cannot take a name (nodes go by the hostname they
/// report), nor an accepted node go back to pending; labels still change.
#[tokio::test]
async fn a_node_spec_cannot_rename_the_node_nor_unaccept_it() {
    use swarm_proto::v1::NodeMembership;
    let (api, store) = api();
    let mut node = manager("node-1");
    node.spec.as_mut().unwrap().set_membership(NodeMembership::Accepted);
    store.update(|tx| tx.create(node.clone())).await.unwrap();
    let update = |change: fn(&mut NodeSpec)| {
        let mut spec = node.spec.clone().unwrap();
        change(&mut spec);
        api.update_node(Request::new(UpdateNodeRequest {
            node_id: node.id.clone(),
            node_version: 1,
            spec: Some(spec),
        }))
    };
    let renamed = update(|spec| spec.annotations = annotations("renamed-node"));
    refused(
        &store,
        renamed,
        Code::InvalidArgument,
        "spec.annotations.name: a node is named by the hostname",
    )
    .await;
    let pending = update(|spec| spec.set_membership(NodeMembership::Pending));
    refused(
        &store,
        pending,
        Code::InvalidArgument,
        "spec.membership: an accepted node cannot go back",
    )
    .await;
    let labelled = update(|spec| {
        spec.annotations = Some(swarm_proto::v1::Annotations {
            labels: [("zone".to_string(), "a".to_string())].into(),
            ..Default::default()
        })
    });
    let labelled = labelled.await.expect("labels change").into_inner().node.unwrap();
    assert_eq!(labelled.spec.unwrap().annotations.unwrap().labels["zone"], "a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_managers_demoted_at_once_never_leave_none() {
    for round in 0..300 {
        let (api, store) = api();
        let (first, second) = (manager("node-1"), manager("node-2"));
        for node in [first.clone(), second.clone()] {
            store.update(|tx| tx.create(node)).await.unwrap();
        }
        let (a, b) = (api.clone(), api.clone());
        let first = tokio::spawn(async move { demote(&a, &first.id).await });
        let second = tokio::spawn(async move { demote(&b, &second.id).await });
        let (first, second) = (first.await.unwrap(), second.await.unwrap());
        // One of the two goes; never both.
        assert!(
            first.is_ok() != second.is_ok(),
            "round {round}: {:?} and {:?}",
            first.map(|_| ()),
            second.map(|_| ())
        );
    }
}

/// An update that changes nothing writes nothing, for nodes, clusters and
/// secrets as for services: no new version, no watch event; and a stale
/// version is refused all the same.
#[tokio::test]
async fn updates_that_change_nothing_write_nothing() {
    use swarm_store::Read as _;
    let (api, store) = api();
    let node = manager("node-1");
    let cluster = default_cluster();
    store.update(|tx| tx.create(node.clone())).await.unwrap();
    store.update(|tx| tx.create(cluster.clone())).await.unwrap();
    let secret = new_secret(&api, "db-pass").await;
    let index = store.view(|read| read.index());
    let version = |meta: Option<&Meta>| meta.map(|meta| meta.version).unwrap_or_default();
    let node_version = store.view(|read| version(read.get::<Node>(&node.id).unwrap().meta.as_ref()));
    let node_update = |node_version| UpdateNodeRequest {
        node_id: node.id.clone(),
        node_version,
        spec: node.spec.clone(),
    };
    let same = api.update_node(Request::new(node_update(node_version))).await.unwrap();
    assert_eq!(version(same.into_inner().node.unwrap().meta.as_ref()), node_version);
    let cluster_version = store.view(|read| version(read.get::<Cluster>(&cluster.id).unwrap().meta.as_ref()));
    let same = api
        .update_cluster(Request::new(UpdateClusterRequest {
            cluster_id: cluster.id.clone(),
            cluster_version,
            spec: cluster.spec.clone(),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert_eq!(
        version(same.into_inner().cluster.unwrap().meta.as_ref()),
        cluster_version
    );
    let same = api
        .update_secret(Request::new(UpdateSecretRequest {
            secret_id: secret.id.clone(),
            secret_version: version(secret.meta.as_ref()),
            spec: secret.spec.clone(),
        }))
        .await
        .unwrap();
    assert_eq!(
        version(same.into_inner().secret.unwrap().meta.as_ref()),
        version(secret.meta.as_ref())
    );
    assert_eq!(store.view(|read| read.index()), index, "nothing was written");
    refused(
        &store,
        api.update_node(Request::new(node_update(node_version + 1))),
        Code::Aborted,
        "was changed",
    )
    .await;
    // No version: the client read nothing to make the update on.
    refused(
        &store,
        api.update_node(Request::new(node_update(0))),
        Code::InvalidArgument,
        "node_version is required",
    )
    .await;
    // A role the API does not know is no demotion either.
    let mut unknown_role = node_update(node_version);
    if let Some(spec) = unknown_role.spec.as_mut() {
        spec.desired_role = 7;
    }
    refused(
        &store,
        api.update_node(Request::new(unknown_role)),
        Code::InvalidArgument,
        "spec.desired_role: 7 is not a value the API knows",
    )
    .await;
}

#[tokio::test]
async fn bad_cluster_specs_are_refused_naming_the_field() {
    let (api, store) = api();
    let cluster = default_cluster();
    store.update(|tx| tx.create(cluster.clone())).await.unwrap();
    let version = store.view(|read| {
        use swarm_store::Read as _;
        read.get::<Cluster>(&cluster.id).unwrap().meta.as_ref().unwrap().version
    });
    let update = |change: fn(&mut ClusterSpec)| {
        let mut spec = cluster.spec.clone().unwrap();
        change(&mut spec);
        api.update_cluster(Request::new(UpdateClusterRequest {
            cluster_id: cluster.id.clone(),
            cluster_version: version,
            spec: Some(spec),
            ..Default::default()
        }))
    };
    // Each change, and what its refusal must mention.
    type Change = fn(&mut ClusterSpec);
    let refusals: [(Change, &str); 6] = [
        (|spec| spec.annotations = annotations("other"), "renamed"),
        (
            |spec| {
                spec.dispatcher = Some(DispatcherConfig {
                    heartbeat_period: Some(prost_types::Duration { seconds: -5, nanos: 0 }),
                })
            },
            "spec.dispatcher.heartbeat_period",
        ),
        (
            |spec| {
                spec.dispatcher = Some(DispatcherConfig {
                    heartbeat_period: Some(prost_types::Duration { seconds: 0, nanos: 1 }),
                })
            },
            "heartbeat_period must be at least 100ms",
        ),
        (
            |spec| {
                spec.ca_config = Some(CaConfig {
                    node_cert_expiry: Some(prost_types::Duration { seconds: 60, nanos: 0 }),
                })
            },
            "spec.ca_config.node_cert_expiry",
        ),
        (
            |spec| {
                spec.raft = Some(RaftConfig {
                    snapshot_interval: 10_000,
                    heartbeat_tick: 3,
                    election_tick: 2,
                    ..Default::default()
                })
            },
            "spec.raft.election_tick",
        ),
        (
            |spec| spec.raft = Some(RaftConfig::default()),
            "spec.raft.snapshot_interval",
        ),
    ];
    for (change, mention) in refusals {
        refused(&store, update(change), Code::InvalidArgument, mention).await;
    }
    // A negative task history limit keeps every finished task, as in
    // SwarmKit.
    let updated = update(|spec| {
        spec.orchestration = Some(OrchestrationConfig {
            task_history_retention_limit: -1,
        })
    })
    .await
    .unwrap()
    .into_inner()
    .cluster
    .unwrap();
    assert!(updated.meta.unwrap().version > version);
    let orchestration = updated.spec.unwrap().orchestration.unwrap();
    assert_eq!(orchestration.task_history_retention_limit, -1);
}

#[tokio::test]
async fn tasks_are_listed_by_service_node_and_desired_state() {
    let (api, store) = api();
    let [svc_a, svc_b, svc_c, node_1, node_2] = std::array::from_fn(|_| swarm_store::id::generate());
    // (service, node, desired state) of each task.
    let layout = [
        (&svc_a, &node_1, TaskState::Running),
        (&svc_a, &node_2, TaskState::Shutdown),
        (&svc_b, &node_1, TaskState::Running),
        (&svc_c, &String::new(), TaskState::Running),
    ];
    let mut ids = Vec::new();
    for (slot, (service_id, node_id, desired)) in layout.into_iter().enumerate() {
        let task = Task {
            id: swarm_store::id::generate(),
            service_id: service_id.clone(),
            node_id: node_id.clone(),
            slot: slot as u64 + 1,
            desired_state: desired.into(),
            ..Default::default()
        };
        ids.push(task.id.clone());
        store.update(|tx| tx.create(task)).await.unwrap();
    }
    let listed = async |request: ListTasksRequest| {
        let tasks = api.list_tasks(Request::new(request)).await.unwrap().into_inner().tasks;
        assert!(tasks.is_sorted_by(|a, b| a.id < b.id), "in ID order");
        let mut found: Vec<usize> = tasks
            .iter()
            .map(|task| ids.iter().position(|id| *id == task.id).unwrap())
            .collect();
        found.sort();
        found
    };
    let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(listed(ListTasksRequest::default()).await, [0, 1, 2, 3]);
    let by_services = ListTasksRequest {
        service_ids: strings(&[&svc_a, &svc_b]),
        ..Default::default()
    };
    assert_eq!(listed(by_services).await, [0, 1, 2]);
    let by_node = ListTasksRequest {
        node_ids: strings(&[&node_1]),
        ..Default::default()
    };
    assert_eq!(listed(by_node).await, [0, 2]);
    let running_of_a_on_node_1 = ListTasksRequest {
        service_ids: strings(&[&svc_a]),
        node_ids: strings(&[&node_1]),
        desired_states: vec![TaskState::Running.into()],
        ..Default::default()
    };
    assert_eq!(listed(running_of_a_on_node_1).await, [0]);
    let shut_down = ListTasksRequest {
        desired_states: vec![TaskState::Shutdown.into()],
        ..Default::default()
    };
    assert_eq!(listed(shut_down).await, [1]);
    let unassigned = ListTasksRequest {
        node_ids: strings(&[""]),
        ..Default::default()
    };
    assert_eq!(listed(unassigned).await, [3]);
    let unknown_service = ListTasksRequest {
        service_ids: strings(&[&swarm_store::id::generate()]),
        ..Default::default()
    };
    assert_eq!(listed(unknown_service).await, Vec::<usize>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_never_names_a_secret_removed_beside_its_create() {
    let (api, store) = api();
    for round in 0..300 {
        let name = format!("s{round}");
        let secret = new_secret(&api, &name).await;
        let mut uses = spec(&format!("app{round}"), "busybox");
        container(&mut uses).secrets = vec![SecretReference {
            secret_id: secret.id.clone(),
            secret_name: name.clone(),
            target: name.clone(),
            ..Default::default()
        }];
        let (create, remove) = {
            let (a, b) = (api.clone(), api.clone());
            let secret_id = secret.id.clone();
            let create = tokio::spawn(async move { create(&a, uses).await });
            let remove =
                tokio::spawn(async move { b.remove_secret(Request::new(RemoveSecretRequest { secret_id })).await });
            (create.await.unwrap(), remove.await.unwrap())
        };
        // One of the two wins; never both.
        assert!(
            create.is_ok() != remove.is_ok(),
            "round {round}: create {:?}, remove {:?}",
            create.map(|_| ()),
            remove.map(|_| ())
        );
        use swarm_store::Read as _;
        let dangling = store.view(|read| read.get::<Secret>(&secret.id).is_none() && create.is_ok());
        assert!(!dangling, "round {round}: a service names a removed secret");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_services_created_at_once_never_both_take_one_port() {
    let (api, _store) = api();
    for round in 0..300 {
        let (a, b) = (api.clone(), api.clone());
        let port = |name: String| publishing(&name, 10_000 + round, Default::default(), Default::default());
        let (first, second) = (port(format!("a{round}")), port(format!("b{round}")));
        let first = tokio::spawn(async move { create(&a, first).await });
        let second = tokio::spawn(async move { create(&b, second).await });
        let (first, second) = (first.await.unwrap(), second.await.unwrap());
        // One of the two wins; never both.
        assert!(
            first.is_ok() != second.is_ok(),
            "round {round}: {:?} and {:?}",
            first.map(|_| ()),
            second.map(|_| ())
        );
    }
}

/// A rollback to a spec whose secret was removed since is refused on the
/// state (FailedPrecondition), naming the secret as the spec did.
#[tokio::test]
async fn a_rollback_to_a_removed_secret_names_it() {
    let (api, store) = api();
    let secret = new_secret(&api, "tmpsec").await;
    let uses_again = |secret_id: &str| {
        let mut uses = spec("app", "busybox");
        container(&mut uses).secrets = vec![SecretReference {
            secret_id: secret_id.into(),
            secret_name: "tmpsec".into(),
            target: "tmpsec".into(),
            ..Default::default()
        }];
        uses
    };
    let service = create(&api, uses_again(&secret.id)).await.unwrap();
    let updated = api
        .update_service(Request::new(UpdateServiceRequest {
            service_id: service.id.clone(),
            service_version: service.meta.as_ref().unwrap().version,
            spec: Some(spec("app", "busybox")),
            rollback: false,
        }))
        .await
        .unwrap()
        .into_inner()
        .service
        .unwrap();
    api.remove_secret(Request::new(RemoveSecretRequest {
        secret_id: secret.id.clone(),
    }))
    .await
    .unwrap();
    refused(
        &store,
        api.update_service(Request::new(UpdateServiceRequest {
            service_id: service.id.clone(),
            service_version: updated.meta.as_ref().unwrap().version,
            spec: None,
            rollback: true,
        })),
        Code::FailedPrecondition,
        "the previous spec uses secret \"tmpsec\"",
    )
    .await;
    // On a stale version, the version is what the client must hear of.
    let stale_uses = uses_again(&secret.id);
    refused(
        &store,
        api.update_service(Request::new(UpdateServiceRequest {
            service_id: service.id.clone(),
            service_version: service.meta.as_ref().unwrap().version,
            spec: Some(stale_uses),
            rollback: false,
        })),
        Code::Aborted,
        "version",
    )
    .await;
    refused(
        &store,
        api.update_service(Request::new(UpdateServiceRequest {
            service_id: service.id.clone(),
            service_version: service.meta.as_ref().unwrap().version,
            spec: None,
            rollback: true,
        })),
        Code::Aborted,
        "version",
    )
    .await;
}

/// An update that leaves out the orchestration settings, the heartbeat or
/// the certificates' lifetime keeps them; one that sets them changes them.
#[tokio::test]
async fn cluster_settings_an_update_leaves_out_are_kept() {
    use swarm_proto::v1::{CaConfig, DispatcherConfig, OrchestrationConfig};
    let (api, store) = api();
    let seconds = |seconds| Some(prost_types::Duration { seconds, nanos: 0 });
    let mut cluster = default_cluster();
    let spec = cluster.spec.as_mut().unwrap();
    spec.orchestration = Some(OrchestrationConfig {
        task_history_retention_limit: 5,
    });
    spec.dispatcher = Some(DispatcherConfig {
        heartbeat_period: seconds(5),
    });
    spec.ca_config = Some(CaConfig {
        node_cert_expiry: seconds(90 * 24 * 3600),
    });
    store.update(|tx| tx.create(cluster.clone())).await.unwrap();
    let stored = cluster.spec.clone().unwrap();
    let update = |spec: ClusterSpec, version: u64| {
        api.update_cluster(Request::new(UpdateClusterRequest {
            cluster_id: cluster.id.clone(),
            cluster_version: version,
            spec: Some(spec),
            ..Default::default()
        }))
    };
    let sections_left_out = ClusterSpec {
        annotations: annotations("default"),
        ..Default::default()
    };
    let reply = update(sections_left_out, 1).await.expect("accepted").into_inner();
    let cluster_after = reply.cluster.unwrap();
    assert_eq!(cluster_after.spec.as_ref(), Some(&stored), "nothing cleared");
    assert_eq!(cluster_after.meta.unwrap().version, 1, "nor anything written");

    let fields_left_out = ClusterSpec {
        dispatcher: Some(DispatcherConfig::default()),
        ca_config: Some(CaConfig::default()),
        orchestration: Some(OrchestrationConfig {
            task_history_retention_limit: 2,
        }),
        ..stored.clone()
    };
    let changed = update(fields_left_out, 1).await.expect("accepted").into_inner();
    let spec = changed.cluster.unwrap().spec.unwrap();
    assert_eq!(spec.orchestration.unwrap().task_history_retention_limit, 2);
    assert_eq!(spec.dispatcher, stored.dispatcher);
    assert_eq!(spec.ca_config, stored.ca_config);
}

/// The Raft ticks a cluster records are kept: an update that leaves them
/// out keeps them, one that changes them is refused.
#[tokio::test]
async fn a_clusters_recorded_raft_ticks_are_kept() {
    let (api, store) = api();
    let mut cluster = default_cluster();
    let recorded = RaftConfig {
        snapshot_interval: 10_000,
        heartbeat_tick: 1,
        election_tick: 10,
        tick: Some(prost_types::Duration {
            seconds: 0,
            nanos: 100_000_000,
        }),
        ..Default::default()
    };
    cluster.spec.as_mut().unwrap().raft = Some(recorded);
    store.update(|tx| tx.create(cluster.clone())).await.unwrap();
    let update = |raft: Option<RaftConfig>| {
        let mut spec = cluster.spec.clone().unwrap();
        spec.raft = raft;
        let version = store.view(|read| {
            use swarm_store::Read as _;
            read.get::<Cluster>(&cluster.id).unwrap().meta.as_ref().unwrap().version
        });
        api.update_cluster(Request::new(UpdateClusterRequest {
            cluster_id: cluster.id.clone(),
            cluster_version: version,
            spec: Some(spec),
            ..Default::default()
        }))
    };
    let stored_raft =
        |response: Response<UpdateClusterResponse>| response.into_inner().cluster.unwrap().spec.unwrap().raft.unwrap();
    let left_out = update(None).await.expect("no raft settings: those recorded stay");
    assert_eq!(stored_raft(left_out), recorded);
    let unset_ticks = RaftConfig {
        snapshot_interval: 500,
        ..Default::default()
    };
    let changed = stored_raft(update(Some(unset_ticks)).await.expect("ticks left unset"));
    assert_eq!(changed.snapshot_interval, 500);
    assert_eq!(
        (changed.tick, changed.heartbeat_tick, changed.election_tick),
        (recorded.tick, 1, 10)
    );
    let retimed = RaftConfig {
        election_tick: 20,
        ..recorded
    };
    refused(
        &store,
        update(Some(retimed)),
        Code::InvalidArgument,
        "cannot be changed",
    )
    .await;
}
