//! Pins what Mooring sends where moto drops it: the CreateService request a
//! relay's reconcile builds carries the deployment circuit breaker with
//! rollback, the client token and the ownership tags, even though moto does not
//! echo the deployment configuration back. Captured on the wire by an SDK
//! interceptor while the real reconcile runs against moto.

mod common;

use std::sync::Arc;

use api_types::relay::{RelaySpec, RelayStatus};
use common::Capture;
use runners::aws::ecs::SdkEcs;
use runners::cloud::Cloud;
use runners::gate::Ungated;
use runners::reconcile::{Reconcile, Target};
use runners::workload::{WorkloadConfig, Workloads};
use serde_json::json;

/// A fresh ECS cluster on moto and a cloud whose ECS client captures the
/// bodies of `operations` on the wire (one [`Capture`] each, in order).
async fn capturing(operations: &[&'static str]) -> (String, Cloud, Vec<Capture>) {
    let settings = common::settings();
    common::require_moto(&settings);
    let sdk = runners::aws::sdk_config(&settings).await;
    let cluster = format!("pin-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    aws_sdk_ecs::Client::new(&sdk).create_cluster().cluster_name(&cluster).send().await.unwrap();
    let captures: Vec<Capture> = operations.iter().map(|op| Capture::new(op)).collect();
    let mut config = aws_sdk_ecs::config::Builder::from(&sdk);
    for c in &captures {
        config = config.interceptor(c.clone());
    }
    let plain = runners::aws::cloud(&settings).await;
    let ecs = aws_sdk_ecs::Client::from_conf(config.build());
    (cluster, Cloud { ecs: Arc::new(SdkEcs::from_client(ecs)), ..plain }, captures)
}

/// A target at `generation` of resource `pin/NAME`.
fn target<'a, S, St>(
    uid: &'a str,
    name: &'a str,
    generation: i64,
    annotations: &'a std::collections::BTreeMap<String, String>,
    spec: &'a S,
    status: &'a St,
) -> Target<'a, S, St> {
    Target {
        uid,
        namespace: "pin",
        name,
        generation,
        annotations,
        spec,
        status,
        fresh: true,
        now: chrono::Utc::now(),
        request: None,
        snapshot_request: None,
        owner: None,
    }
}

#[tokio::test]
async fn create_service_carries_the_circuit_breaker_token_and_tags() {
    let (cluster, cloud, captures) = capturing(&["CreateService", "RegisterTaskDefinition"]).await;
    let (capture, registered) = (captures[0].clone(), captures[1].clone());
    let workloads = Workloads::new(cloud, WorkloadConfig::default());
    let spec: RelaySpec = serde_json::from_value(json!({
        "cluster": cluster,
        "containers": [
            {"name": "api", "image": "public.ecr.aws/acme/gateway:2.1.0", "port": 8000},
            {"name": "opa", "image": "openpolicyagent/opa:0.68.0", "port": 8181, "essential": false}
        ],
        "scaling": {"min": 2, "max": 8}
    }))
    .unwrap();
    let uid = uuid::Uuid::new_v4().to_string();
    let annotations = std::collections::BTreeMap::new();
    let target = |status| target(&uid, "gateway", 1, &annotations, &spec, status);
    let relays = workloads.relays();
    // The first pass records what it will create, and creates nothing.
    let empty = RelayStatus::default();
    let intent = relays.reconcile(&Ungated, &target(&empty)).await.unwrap();
    assert!(capture.bodies().is_empty() && registered.bodies().is_empty(), "nothing before the intent is recorded");
    let recorded = intent.status.service.clone().expect("the service is recorded before it is created");
    assert_eq!(
        (recorded.cluster.as_str(), recorded.name.as_str(), recorded.arn),
        (cluster.as_str(), "pin_gateway", None)
    );
    let report = relays.reconcile(&Ungated, &target(&intent.status)).await.unwrap();
    assert!(report.status.service.as_ref().is_some_and(|s| s.arn.is_some()), "{:?}", report.status);

    let bodies = capture.bodies();
    assert_eq!(bodies.len(), 1, "one CreateService: {bodies:#?}");
    let body = &bodies[0];
    let deployment = &body["deploymentConfiguration"];
    assert_eq!(deployment["deploymentCircuitBreaker"], json!({"enable": true, "rollback": true}), "{body:#}");
    assert_eq!(deployment["minimumHealthyPercent"], 100);
    assert_eq!(deployment["maximumPercent"], 200);
    assert_eq!(body["launchType"], "FARGATE");
    assert_eq!(body["desiredCount"], 2);
    assert_eq!(body["serviceName"], "pin_gateway");
    assert_eq!(body["clientToken"].as_str().map(str::len), Some(36), "{body:#}");
    let tags = body["tags"].as_array().unwrap();
    assert!(tags.iter().any(|t| t["key"] == "mooring:uid" && t["value"] == uid.as_str()), "{tags:?}");
    // The task definition: Fargate, both containers (the app and the OPA sidecar), awslogs.
    let td = &registered.bodies()[0];
    assert_eq!(td["family"], "pin_gateway");
    assert_eq!(td["requiresCompatibilities"], json!(["FARGATE"]));
    assert_eq!(td["networkMode"], "awsvpc");
    let names: Vec<&str> =
        td["containerDefinitions"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, ["api", "opa"], "{td:#}");
    assert_eq!(td["containerDefinitions"][1]["logConfiguration"]["logDriver"], "awslogs");
    assert_eq!(td["containerDefinitions"][1]["essential"], false);
    // moto drops what was sent: the observed service has no deployment configuration.
    let observed = relays.reconcile(&Ungated, &target(&report.status)).await.unwrap();
    assert!(observed.events.iter().all(|e| e.reason != "ServiceCreated"), "the second pass creates nothing");
}

/// The relay spec of a staged strategy, on `cluster`, with load balancer and gates.
fn staged(cluster: &str, subnet: &str, image: &str, deployment: serde_json::Value) -> RelaySpec {
    serde_json::from_value(json!({
        "cluster": cluster,
        "containers": [{"name": "api", "image": image, "port": 8080}],
        "network": {"subnets": [subnet], "securityGroups": []},
        "loadBalancer": {
            "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/gw-blue/0123456789abcdef",
            "containerPort": 8080,
            "alternateTargetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/gw-green/fedcba9876543210",
            "productionListenerRuleArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/gw/0123456789abcdef/0123456789abcdef/0000000000000001",
            "testListenerRuleArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/gw/0123456789abcdef/0123456789abcdef/0000000000000002",
            "roleArn": "arn:aws:iam::123456789012:role/ecs-lb"
        },
        "scaling": {"min": 1, "max": 2},
        "deployment": deployment
    }))
    .unwrap()
}

/// Reconciles `spec` as a new relay until its service exists; returns the status.
async fn create(relays: &runners::workload::Relays, uid: &str, spec: &RelaySpec) -> RelayStatus {
    let annotations = std::collections::BTreeMap::new();
    let mut status = RelayStatus::default();
    for _ in 0..3 {
        status =
            relays.reconcile(&Ungated, &target(uid, "staged", 1, &annotations, spec, &status)).await.unwrap().status;
        if status.service.as_ref().is_some_and(|s| s.arn.is_some()) {
            break;
        }
    }
    status
}

#[tokio::test]
async fn each_strategy_is_sent_with_its_shift_bake_hooks_and_listener_rules() {
    let sdk = runners::aws::sdk_config(&common::settings()).await;
    let subnet = aws_sdk_ec2::Client::new(&sdk)
        .describe_subnets()
        .send()
        .await
        .unwrap()
        .subnets()
        .first()
        .and_then(|s| s.subnet_id().map(str::to_string))
        .expect("moto's default subnet");
    let checks = json!({"testUrl": "http://internal-gw.example:8443", "http": [{"path": "/health"}],
                        "approval": "Manual", "timeoutMinutes": 30, "alarms": ["gw-5xx"]});
    // (deployment, what deploymentConfiguration must carry)
    let table = [
        (
            json!({"strategy": "BlueGreen", "bakeMinutes": 15, "verify": checks}),
            json!({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 15}),
        ),
        (
            json!({"strategy": "Canary", "canary": {"percent": 10.0, "bakeMinutes": 5}}),
            json!({"strategy": "CANARY", "bakeTimeInMinutes": 5,
                   "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 5}}),
        ),
        (
            json!({"strategy": "Linear", "linear": {"stepPercent": 25.0, "stepBakeMinutes": 2}, "bakeMinutes": 1}),
            json!({"strategy": "LINEAR", "bakeTimeInMinutes": 1,
                   "linearConfiguration": {"stepPercent": 25.0, "stepBakeTimeInMinutes": 2}}),
        ),
        (json!({}), json!({"strategy": "ROLLING", "deploymentCircuitBreaker": {"enable": true, "rollback": true}})),
    ];
    for (deployment, want) in table {
        let (cluster, cloud, captures) = capturing(&["CreateService", "UpdateService"]).await;
        let (created, updated) = (captures[0].clone(), captures[1].clone());
        let relays = Workloads::new(cloud, WorkloadConfig::default()).relays();
        let uid = uuid::Uuid::new_v4().to_string();
        let strategy = deployment["strategy"].as_str().unwrap_or("Rolling").to_string();
        let v1 = staged(&cluster, &subnet, "ghcr.io/acme/api:1.0", deployment.clone());
        let status = create(&relays, &uid, &v1).await;
        let bodies = created.bodies();
        assert_eq!(bodies.len(), 1, "{strategy}: one CreateService: {bodies:#?}");
        let sent = &bodies[0]["deploymentConfiguration"];
        for (key, value) in want.as_object().unwrap() {
            assert_eq!(&sent[key], value, "{strategy}: deploymentConfiguration.{key}: {sent:#}");
        }
        let lb = &bodies[0]["loadBalancers"][0];
        if strategy == "Rolling" {
            assert!(lb.get("advancedConfiguration").is_none(), "rolling: no alternate group: {lb:#}");
            assert!(sent.get("lifecycleHooks").is_none(), "{sent:#}");
        } else {
            assert_eq!(
                lb["advancedConfiguration"]["alternateTargetGroupArn"],
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/gw-green/fedcba9876543210",
                "{lb:#}"
            );
            assert!(
                lb["advancedConfiguration"]["productionListenerRule"].as_str().is_some_and(|r| r.ends_with("0001"))
            );
            assert!(lb["advancedConfiguration"]["testListenerRule"].as_str().is_some_and(|r| r.ends_with("0002")));
            assert_eq!(lb["advancedConfiguration"]["roleArn"], "arn:aws:iam::123456789012:role/ecs-lb");
        }
        if strategy == "BlueGreen" {
            // One PAUSE hook per gate: the checks after test traffic moved, the approval before production.
            let hooks = sent["lifecycleHooks"].as_array().expect("hooks");
            let stages: Vec<&str> = hooks.iter().filter_map(|h| h["lifecycleStages"][0].as_str()).collect();
            assert_eq!(stages, ["POST_TEST_TRAFFIC_SHIFT", "PRE_PRODUCTION_TRAFFIC_SHIFT"], "{sent:#}");
            assert!(hooks.iter().all(|h| h["targetType"] == "PAUSE"), "{sent:#}");
            assert!(
                hooks
                    .iter()
                    .all(|h| h["timeoutConfiguration"] == json!({"timeoutInMinutes": 30, "action": "ROLLBACK"}))
            );
        }
        // A new image: one UpdateService with the new task definition (moto
        // reports no service deployment, so nothing is followed there).
        let v2 = staged(&cluster, &subnet, "ghcr.io/acme/api:2.0", deployment);
        let annotations = std::collections::BTreeMap::new();
        let report = relays.reconcile(&Ungated, &target(&uid, "staged", 2, &annotations, &v2, &status)).await.unwrap();
        let updates = updated.bodies();
        assert_eq!(updates.len(), 1, "{strategy}: one UpdateService: {updates:#?}");
        assert_eq!(updates[0]["taskDefinition"].as_str(), report.status.task_definition_arn.as_deref());
        assert_ne!(report.status.task_definition_arn, status.task_definition_arn, "{strategy}: a new revision");
    }
}

#[tokio::test]
async fn a_spot_worker_is_created_on_fargate_spot_with_its_storage() {
    let (cluster, cloud, captures) = capturing(&["CreateService", "RegisterTaskDefinition"]).await;
    let (created, registered) = (captures[0].clone(), captures[1].clone());
    let workers = Workloads::new(cloud, WorkloadConfig::default()).workers();
    let spec: api_types::WorkerSpec = serde_json::from_value(json!({
        "cluster": cluster,
        "container": {"name": "convert", "image": "ghcr.io/acme/proton-beam:0.9"},
        "queue": {"name": format!("{cluster}-jobs")},
        "scaling": {"min": 1, "max": 4},
        "capacity": "FARGATE_SPOT", "onDemandBase": 1, "ephemeralStorageGiB": 100
    }))
    .unwrap();
    let uid = uuid::Uuid::new_v4().to_string();
    let annotations = std::collections::BTreeMap::new();
    let mut status = api_types::WorkerStatus::default();
    for _ in 0..4 {
        status =
            workers.reconcile(&Ungated, &target(&uid, "spot", 1, &annotations, &spec, &status)).await.unwrap().status;
        if status.service.as_ref().is_some_and(|s| s.arn.is_some()) {
            break;
        }
    }
    let bodies = created.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:#?}");
    let body = &bodies[0];
    assert!(body.get("launchType").is_none(), "spot capacity replaces the launch type: {body:#}");
    assert_eq!(
        body["capacityProviderStrategy"],
        // (Zero weight and base are left out on the wire: ECS's defaults.)
        json!([{"capacityProvider": "FARGATE", "base": 1}, {"capacityProvider": "FARGATE_SPOT", "weight": 1}]),
        "{body:#}"
    );
    let td = &registered.bodies()[0];
    assert_eq!(td["ephemeralStorage"], json!({"sizeInGiB": 100}), "{td:#}");
}
