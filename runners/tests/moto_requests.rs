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

#[tokio::test]
async fn create_service_carries_the_circuit_breaker_token_and_tags() {
    let settings = common::settings();
    let sdk = runners::aws::sdk_config(&settings).await;
    let cluster = format!("pin-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    aws_sdk_ecs::Client::new(&sdk).create_cluster().cluster_name(&cluster).send().await.unwrap();

    let capture = Capture::new("CreateService");
    let registered = Capture::new("RegisterTaskDefinition");
    let config =
        aws_sdk_ecs::config::Builder::from(&sdk).interceptor(capture.clone()).interceptor(registered.clone()).build();
    let plain = runners::aws::cloud(&settings).await;
    let cloud = Cloud { ecs: Arc::new(SdkEcs::from_client(aws_sdk_ecs::Client::from_conf(config))), ..plain };
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
    let target = |status| Target {
        uid: &uid,
        namespace: "pin",
        name: "gateway",
        generation: 1,
        annotations: &annotations,
        spec: &spec,
        status,
        fresh: true,
        now: chrono::Utc::now(),
        request: None,
    };
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
    for generation in [1, 1, 1] {
        let t = Target {
            uid,
            namespace: "pin",
            name: "staged",
            generation,
            annotations: &annotations,
            spec,
            status: &status,
            fresh: true,
            now: chrono::Utc::now(),
            request: None,
        };
        status = relays.reconcile(&Ungated, &t).await.unwrap().status;
        if status.service.as_ref().is_some_and(|s| s.arn.is_some()) {
            break;
        }
    }
    status
}

#[tokio::test]
async fn each_strategy_is_sent_with_its_shift_bake_hooks_and_listener_rules() {
    let settings = common::settings();
    common::require_moto(&settings);
    let sdk = runners::aws::sdk_config(&settings).await;
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
        let cluster = format!("pin-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        aws_sdk_ecs::Client::new(&sdk).create_cluster().cluster_name(&cluster).send().await.unwrap();
        let created = Capture::new("CreateService");
        let updated = Capture::new("UpdateService");
        let config =
            aws_sdk_ecs::config::Builder::from(&sdk).interceptor(created.clone()).interceptor(updated.clone()).build();
        let plain = runners::aws::cloud(&settings).await;
        let cloud = Cloud { ecs: Arc::new(SdkEcs::from_client(aws_sdk_ecs::Client::from_conf(config))), ..plain };
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
        let t = Target {
            uid: &uid,
            namespace: "pin",
            name: "staged",
            generation: 2,
            annotations: &annotations,
            spec: &v2,
            status: &status,
            fresh: true,
            now: chrono::Utc::now(),
            request: None,
        };
        let report = relays.reconcile(&Ungated, &t).await.unwrap();
        let updates = updated.bodies();
        assert_eq!(updates.len(), 1, "{strategy}: one UpdateService: {updates:#?}");
        assert_eq!(updates[0]["taskDefinition"].as_str(), report.status.task_definition_arn.as_deref());
        assert_ne!(report.status.task_definition_arn, status.task_definition_arn, "{strategy}: a new revision");
    }
}
