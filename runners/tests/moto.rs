//! The AWS SDK facades (`runners::aws`) against moto, the local AWS endpoint,
//! over HTTP with the real SDK: every facade method, and the error mapping for
//! the failures reconcilers act on.
//!
//! Needs moto at `MOORING_AWS_ENDPOINT` (default `http://127.0.0.1:4566`); start
//! it with `eval "$(deploy/local/stack.sh up)"`. Every test uses names with a
//! random suffix, so tests run in parallel and against a long-lived moto.
//!
//! Where moto differs from AWS the test asserts moto's behaviour and says
//! "moto:" in a comment, with what AWS does instead (see also
//! /work/shared/LOCAL-AWS.md).

mod common;

use common::{require_moto, settings};
use std::collections::BTreeMap;

use runners::cloud::caches::ReplicationGroupInput;
use runners::cloud::ecs::{
    ContainerDefinition, DeploymentConfig, LoadBalancerRef, LogConfig, NetworkConfig, RolloutState, ServiceInput,
    ServiceState, ServiceUpdate, TaskDefinitionInput,
};
use runners::cloud::{Cloud, ErrorKind, TAG_NAME, TAG_RENDER_HASH, TAG_UID, Tags};

/// The facades of the AWS SDK cloud, and the raw SDK configuration for setup
/// the facades do not do (clusters, subnets).
async fn moto() -> (Cloud, aws_config::SdkConfig) {
    let settings = settings();
    require_moto(&settings);
    (runners::aws::cloud(&settings).await, runners::aws::sdk_config(&settings).await)
}

fn suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// A string map (tags, queue attributes) from pairs.
fn pairs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn task_definition_input(family: &str, image: &str, tags: Tags) -> TaskDefinitionInput {
    let log = LogConfig { group: "/mooring/test".into(), region: "us-east-1".into(), stream_prefix: "app".into() };
    TaskDefinitionInput {
        family: family.to_string(),
        cpu: 256,
        memory: 512,
        task_role_arn: None,
        execution_role_arn: Some("arn:aws:iam::123456789012:role/ecsTaskExecutionRole".into()),
        containers: vec![
            ContainerDefinition {
                name: "app".into(),
                image: image.to_string(),
                cpu: Some(128),
                memory: Some(256),
                port: Some(8080),
                command: vec![],
                environment: BTreeMap::from([("MODE".to_string(), "relay".to_string())]),
                secrets: BTreeMap::from([(
                    "TOKEN".to_string(),
                    "arn:aws:secretsmanager:us-east-1:123456789012:secret:token-AbCdEf".to_string(),
                )]),
                essential: true,
                stop_timeout: None,
                log: log.clone(),
            },
            ContainerDefinition {
                name: "sidecar".into(),
                image: "public.ecr.aws/docker/library/busybox:1.36".into(),
                cpu: None,
                memory: None,
                port: None,
                command: vec!["sleep".into(), "infinity".into()],
                environment: BTreeMap::new(),
                secrets: BTreeMap::new(),
                essential: false,
                stop_timeout: None,
                log: LogConfig { stream_prefix: "sidecar".into(), ..log },
            },
        ],
        ephemeral_storage_gib: None,
        tags,
    }
}

/// A fresh cluster (made with the SDK directly: the facade does not create
/// clusters) and the default VPC's subnet and security group, which moto
/// checks for awsvpc services.
async fn cluster(config: &aws_config::SdkConfig) -> (String, NetworkConfig) {
    let name = format!("mooring-test-{}", suffix());
    aws_sdk_ecs::Client::new(config).create_cluster().cluster_name(&name).send().await.unwrap();
    let ec2 = aws_sdk_ec2::Client::new(config);
    let subnets = ec2.describe_subnets().send().await.unwrap();
    let subnet = subnets.subnets()[0].subnet_id.clone().unwrap();
    let groups = ec2.describe_security_groups().group_names("default").send().await.unwrap();
    let group = groups.security_groups()[0].group_id.clone().unwrap();
    (name, NetworkConfig { subnets: vec![subnet], security_groups: vec![group], assign_public_ip: false })
}

#[tokio::test]
async fn task_definitions_register_describe_list_retag_deregister() {
    let (cloud, _) = moto().await;
    let family = format!("mooring-td-{}", suffix());
    let labels = pairs(&[(TAG_UID, "uid-1"), (TAG_NAME, "default/gw"), (TAG_RENDER_HASH, "h1")]);

    let first = cloud.ecs.register_task_definition(&task_definition_input(&family, "nginx:1", labels.clone())).await;
    let first = first.unwrap();
    assert_eq!(first.family, family);
    assert_eq!(first.revision, 1);
    assert!(first.active);
    assert!(first.arn.ends_with(&format!("task-definition/{family}:1")), "{}", first.arn);
    assert_eq!(first.tags, labels);

    let described = cloud.ecs.describe_task_definition(&first.arn).await.unwrap();
    assert_eq!(described, first);

    let second = cloud.ecs.register_task_definition(&task_definition_input(&family, "nginx:2", labels.clone())).await;
    let second = second.unwrap();
    assert_eq!(second.revision, 2);
    // A family whose name starts with ours must not be listed. (moto compares
    // familyPrefix exactly, and ignores sort=DESC: the facade sorts itself.)
    let other = task_definition_input(&format!("{family}-canary"), "nginx:1", Tags::new());
    cloud.ecs.register_task_definition(&other).await.unwrap();
    let listed = cloud.ecs.list_task_definitions(&family).await.unwrap();
    assert_eq!(listed, vec![second.arn.clone(), first.arn.clone()], "newest first, this family only");

    cloud.ecs.retag(&second.arn, &pairs(&[(TAG_RENDER_HASH, "h2"), ("extra", "x")]), &[TAG_NAME.into()]).await.unwrap();
    let retagged = cloud.ecs.describe_task_definition(&second.arn).await.unwrap();
    assert_eq!(retagged.tags, pairs(&[(TAG_UID, "uid-1"), (TAG_RENDER_HASH, "h2"), ("extra", "x")]));

    cloud.ecs.deregister_task_definition(&first.arn).await.unwrap();
    assert_eq!(cloud.ecs.list_task_definitions(&family).await.unwrap(), vec![second.arn.clone()]);
    let inactive = cloud.ecs.describe_task_definition(&first.arn).await.unwrap();
    assert!(!inactive.active, "a deregistered revision is still described, INACTIVE");

    let missing = cloud.ecs.describe_task_definition(&format!("{family}-missing:1")).await.unwrap_err();
    assert_eq!(missing.kind, ErrorKind::NotFound, "{missing}");
    assert_eq!(missing.op, "ecs:DescribeTaskDefinition");
}

#[tokio::test]
async fn services_create_describe_update_delete() {
    let (cloud, config) = moto().await;
    let (cluster, network) = cluster(&config).await;
    let family = format!("mooring-svc-{}", suffix());
    let td1 = cloud.ecs.register_task_definition(&task_definition_input(&family, "nginx:1", Tags::new())).await;
    let td1 = td1.unwrap();
    let td2 = cloud.ecs.register_task_definition(&task_definition_input(&family, "nginx:2", Tags::new())).await;
    let td2 = td2.unwrap();

    let name = format!("gw-{}", suffix());
    let labels = pairs(&[(TAG_UID, "uid-2"), (TAG_NAME, "default/gw")]);
    let input = ServiceInput {
        cluster: cluster.clone(),
        name: name.clone(),
        task_definition: td1.arn.clone(),
        desired_count: 2,
        network: Some(network.clone()),
        // moto does not check that the target group exists (AWS does).
        load_balancers: vec![LoadBalancerRef {
            target_group_arn: "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/gw/0123456789abcdef"
                .into(),
            container_name: "app".into(),
            container_port: 8080,
            advanced: None,
        }],
        deployment: DeploymentConfig::default(),
        health_check_grace_seconds: Some(30),
        spot: None,
        tags: labels.clone(),
        client_token: uuid::Uuid::new_v4().to_string(),
    };
    let created = cloud.ecs.create_service(&input).await.unwrap();
    assert_eq!(created.name, name);
    assert_eq!(created.cluster, cluster, "the cluster as the caller named it");
    assert!(created.arn.ends_with(&format!("service/{cluster}/{name}")), "{}", created.arn);
    assert_eq!(created.state, ServiceState::Active);
    assert_eq!(created.task_definition, td1.arn);
    assert_eq!(created.desired_count, 2);
    // moto never starts tasks: nothing runs, everything is pending.
    assert_eq!((created.running_count, created.pending_count), (0, 2));
    assert_eq!(created.network, Some(network.clone()));
    assert_eq!(created.load_balancers, input.load_balancers);
    // moto drops the deployment configuration (circuit breaker) and the
    // health check grace period; AWS echoes both.
    assert_eq!(created.deployment, None);
    assert_eq!(created.health_check_grace_seconds, None);
    assert_eq!(created.tags, labels);
    assert_eq!(created.deployments.len(), 1);
    let primary = created.primary().unwrap();
    assert_eq!(primary.task_definition, td1.arn);
    assert_eq!((primary.desired_count, primary.running_count), (2, 0));
    // moto: stays IN_PROGRESS forever, as no task ever runs.
    assert_eq!(primary.rollout, RolloutState::InProgress);

    let described = cloud.ecs.describe_services(&cluster, &[name.clone(), format!("missing-{}", suffix())]).await;
    let described = described.unwrap();
    assert_eq!(described.len(), 1, "a missing name is left out");
    assert_eq!(described[0], created, "describe sees what create returned, tags included");

    // The same client token again. AWS returns the existing service. moto
    // ignores the token: it replaces the service with a new one of the same
    // ARN (a new deployment id), and does the same for a *different* token,
    // where AWS refuses ("Creation of service was not idempotent").
    let again = cloud.ecs.create_service(&input).await.unwrap();
    assert_eq!(again.arn, created.arn);
    assert_eq!(again.task_definition, created.task_definition);
    assert_eq!(again.tags, created.tags);
    assert_ne!(again.primary().unwrap().id, primary.id, "moto: a new service, not the old one");
    let other_token = ServiceInput { client_token: uuid::Uuid::new_v4().to_string(), ..input.clone() };
    assert_eq!(cloud.ecs.create_service(&other_token).await.unwrap().arn, created.arn, "moto: AWS would refuse");

    let update = ServiceUpdate {
        cluster: cluster.clone(),
        name: name.clone(),
        task_definition: Some(td2.arn.clone()),
        ..ServiceUpdate::default()
    };
    let updated = cloud.ecs.update_service(&update).await.unwrap();
    assert_eq!(updated.task_definition, td2.arn);
    assert_eq!(updated.desired_count, 2, "only what the update sets changes");
    // moto: no new deployment; the PRIMARY one keeps the old revision. AWS
    // starts a new PRIMARY deployment of td2 and keeps the old one as ACTIVE.
    assert_eq!(updated.deployments.len(), 1);
    assert_eq!(updated.primary().unwrap().task_definition, td1.arn);

    let scale = ServiceUpdate {
        cluster: cluster.clone(),
        name: name.clone(),
        desired_count: Some(3),
        ..ServiceUpdate::default()
    };
    let scaled = cloud.ecs.update_service(&scale).await.unwrap();
    assert_eq!(scaled.task_definition, td2.arn);
    // moto: an UpdateService with a desired count makes that many run at once.
    assert_eq!((scaled.desired_count, scaled.running_count, scaled.pending_count), (3, 3, 0));

    cloud.ecs.retag(&created.arn, &pairs(&[("extra", "x")]), &[TAG_NAME.into()]).await.unwrap();
    let retagged = cloud.ecs.describe_services(&cluster, std::slice::from_ref(&name)).await.unwrap();
    assert_eq!(retagged[0].tags, pairs(&[(TAG_UID, "uid-2"), ("extra", "x")]));

    // More than ten names: refused before any call (moto would accept them).
    let eleven: Vec<String> = (0..11).map(|i| format!("{name}-{i}")).collect();
    let refused = cloud.ecs.describe_services(&cluster, &eleven).await.unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Invalid, "{refused}");
    assert_eq!(refused.op, "ecs:DescribeServices");
    assert!(cloud.ecs.describe_services(&cluster, &[]).await.unwrap().is_empty());

    cloud.ecs.delete_service(&cluster, &name, true).await.unwrap();
    // moto: INACTIVE at once (AWS: DRAINING first), and INACTIVE is left out.
    assert!(cloud.ecs.describe_services(&cluster, std::slice::from_ref(&name)).await.unwrap().is_empty());
}

#[tokio::test]
async fn ecs_errors_say_what_is_missing() {
    let (cloud, config) = moto().await;
    let (cluster, network) = cluster(&config).await;
    let family = format!("mooring-err-{}", suffix());
    let td = cloud.ecs.register_task_definition(&task_definition_input(&family, "nginx:1", Tags::new())).await;
    let td = td.unwrap();
    let input = ServiceInput {
        cluster: format!("missing-{}", suffix()),
        name: format!("svc-{}", suffix()),
        task_definition: td.arn.clone(),
        desired_count: 1,
        network: Some(network.clone()),
        load_balancers: vec![],
        deployment: DeploymentConfig::default(),
        health_check_grace_seconds: None,
        spot: None,
        tags: Tags::new(),
        client_token: uuid::Uuid::new_v4().to_string(),
    };

    let e = cloud.ecs.describe_services(&input.cluster, std::slice::from_ref(&input.name)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::MissingReference, "{e}");
    assert!(e.message.contains("ClusterNotFoundException"), "{e}");
    let e = cloud.ecs.create_service(&input).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::MissingReference, "{e}");
    assert_eq!(e.op, "ecs:CreateService");

    // ECS reports a missing subnet or task definition as an invalid parameter
    // whose message names what is missing.
    let bad_subnet = NetworkConfig { subnets: vec!["subnet-0000000000000000".into()], ..network.clone() };
    let in_cluster = ServiceInput { cluster: cluster.clone(), network: Some(bad_subnet), ..input.clone() };
    let e = cloud.ecs.create_service(&in_cluster).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::MissingReference, "{e}");
    let no_td = ServiceInput { cluster: cluster.clone(), task_definition: format!("{family}-missing:1"), ..input };
    let e = cloud.ecs.create_service(&no_td).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::MissingReference, "{e}");

    let update = ServiceUpdate {
        cluster: cluster.clone(),
        name: format!("missing-{}", suffix()),
        desired_count: Some(1),
        ..ServiceUpdate::default()
    };
    let e = cloud.ecs.update_service(&update).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(e.message.contains("ServiceNotFoundException"), "{e}");
}

#[tokio::test]
async fn queues_create_inspect_correct_delete() {
    let (cloud, _) = moto().await;
    let name = format!("mooring-q-{}", suffix());
    assert_eq!(cloud.queues.queue_url(&name).await.unwrap(), None);

    let attributes = pairs(&[("VisibilityTimeout", "45"), ("MessageRetentionPeriod", "3600")]);
    let labels = pairs(&[(TAG_UID, "uid-3"), (TAG_NAME, "default/conv")]);
    let url = cloud.queues.create_queue(&name, &attributes, &labels).await.unwrap();
    assert!(url.ends_with(&format!("/{name}")), "{url}");
    assert_eq!(cloud.queues.queue_url(&name).await.unwrap().as_deref(), Some(url.as_str()));

    // Idempotent with the same attributes; AlreadyExists with others.
    assert_eq!(cloud.queues.create_queue(&name, &attributes, &labels).await.unwrap(), url);
    let different = pairs(&[("VisibilityTimeout", "46")]);
    let e = cloud.queues.create_queue(&name, &different, &labels).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyExists, "{e}");
    assert_eq!(e.op, "sqs:CreateQueue");

    let read = cloud.queues.queue_attributes(&url).await.unwrap();
    assert_eq!(read.get("VisibilityTimeout").map(String::as_str), Some("45"));
    assert_eq!(read.get("MessageRetentionPeriod").map(String::as_str), Some("3600"));
    assert_eq!(read.get("ApproximateNumberOfMessages").map(String::as_str), Some("0"));
    assert!(read.get("QueueArn").is_some_and(|arn| arn.ends_with(&format!(":{name}"))), "{read:?}");

    // A dead-letter queue and a redrive policy to it.
    let dlq_url = cloud.queues.create_queue(&format!("{name}-dlq"), &BTreeMap::new(), &Tags::new()).await.unwrap();
    let dlq_arn = cloud.queues.queue_attributes(&dlq_url).await.unwrap().remove("QueueArn").unwrap();
    let policy = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}).to_string();
    let corrected =
        BTreeMap::from([("VisibilityTimeout".to_string(), "60".to_string()), ("RedrivePolicy".to_string(), policy)]);
    cloud.queues.set_queue_attributes(&url, &corrected).await.unwrap();
    let read = cloud.queues.queue_attributes(&url).await.unwrap();
    assert_eq!(read.get("VisibilityTimeout").map(String::as_str), Some("60"));
    let redrive: serde_json::Value = serde_json::from_str(&read["RedrivePolicy"]).unwrap();
    assert_eq!(redrive["deadLetterTargetArn"], serde_json::json!(dlq_arn));
    assert_eq!(redrive["maxReceiveCount"].to_string().trim_matches('"'), "5");

    assert_eq!(cloud.queues.queue_tags(&url).await.unwrap(), labels);
    cloud.queues.untag_queue(&url, &[TAG_NAME.into()]).await.unwrap();
    assert_eq!(cloud.queues.queue_tags(&url).await.unwrap(), pairs(&[(TAG_UID, "uid-3")]));

    cloud.queues.delete_queue(&url).await.unwrap();
    cloud.queues.delete_queue(&dlq_url).await.unwrap();
    assert_eq!(cloud.queues.queue_url(&name).await.unwrap(), None);
    cloud.queues.delete_queue(&url).await.expect("a missing queue is not an error");

    let e = cloud.queues.queue_attributes(&url).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert_eq!(e.op, "sqs:GetQueueAttributes");
    assert!(e.message.contains("NonExistentQueue"), "{e}");
}

#[tokio::test]
async fn replication_groups_create_describe_untag_delete() {
    let (cloud, config) = moto().await;
    let id = format!("mooring-{}", suffix());
    assert_eq!(cloud.caches.describe_replication_group(&id).await.unwrap(), None);

    let input = ReplicationGroupInput {
        id: id.clone(),
        description: "relay default/gw".into(),
        node_type: "cache.t4g.micro".into(),
        engine_version: "7.1".into(),
        replicas: 1,
        tags: pairs(&[(TAG_UID, "uid-4"), (TAG_NAME, "default/gw")]),
    };
    let created = cloud.caches.create_replication_group(&input).await.unwrap();
    assert_eq!(created.id, id);
    assert!(created.arn.ends_with(&format!(":replicationgroup:{id}")), "{}", created.arn);
    // moto: `available` at once, with an endpoint (AWS: `creating` for minutes).
    assert!(created.available(), "{created:?}");
    assert_eq!(created.members, 2, "the primary and one replica");
    assert_eq!(created.node_type.as_deref(), Some("cache.t4g.micro"));

    let described = cloud.caches.describe_replication_group(&id).await.unwrap().unwrap();
    assert_eq!(described, created);
    let endpoint = described.primary_endpoint.unwrap();
    assert!(endpoint.ends_with(":6379") && endpoint.contains(&id), "{endpoint}");

    let e = cloud.caches.create_replication_group(&input).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::AlreadyExists, "{e}");

    cloud.caches.remove_tags(&created.arn, &[TAG_NAME.into()]).await.unwrap();
    let listed = aws_sdk_elasticache::Client::new(&config)
        .list_tags_for_resource()
        .resource_name(&created.arn)
        .send()
        .await
        .unwrap();
    let left: Tags =
        listed.tag_list().iter().map(|t| (t.key.clone().unwrap(), t.value.clone().unwrap_or_default())).collect();
    assert_eq!(left, pairs(&[(TAG_UID, "uid-4")]));

    cloud.caches.delete_replication_group(&id).await.unwrap();
    // moto: the group stays `deleting` forever (AWS: `deleting`, then gone).
    let deleting = cloud.caches.describe_replication_group(&id).await.unwrap().unwrap();
    assert_eq!(deleting.status, "deleting");
    cloud.caches.delete_replication_group(&format!("mooring-{}", suffix())).await.expect("missing is not an error");
}
