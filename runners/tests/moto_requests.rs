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
