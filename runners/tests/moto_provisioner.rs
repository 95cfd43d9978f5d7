//! The two sides of a node build agree: the StartBuild request the controller
//! builds (pinned on the wire: overrides and idempotency token, which moto
//! drops), run as `mooring-provisioner`'s environment against moto, provisions
//! the node; the destroy request tears it down.

mod common;

use common::{Capture, settings};
use std::collections::BTreeMap;

use api_types::node::{BuildStatus, NodeSpec, NodeStatus};
use runners::cloud::{Builds, TAG_UID};
use runners::provision::{Action, ProvisionRequest};
use runners::reconcile::Target;
use runners::workload::Nodes;
use serde_json::{Value, json};

async fn default_subnet(sdk: &aws_config::SdkConfig) -> String {
    let subnets = aws_sdk_ec2::Client::new(sdk).describe_subnets().send().await.unwrap();
    subnets.subnets()[0].subnet_id.clone().unwrap()
}

fn spec(subnet: &str) -> NodeSpec {
    serde_json::from_value(json!({
        "software": {"name": "pulse", "version": "1.4.2", "artifact": "s3://pulse-artifacts/pulse-1.4.2.tar.gz"},
        "instanceType": "t3.large", "ami": "ami-1e749f67", "subnetId": subnet,
        "dataVolume": {"sizeGiB": 20, "deleteOnNodeDelete": true},
        "provisioner": {"codebuildProject": "mooring-node-provisioner-pin"}
    }))
    .unwrap()
}

/// A build intent as a node's status records it.
fn intent(action: Action, token: &str) -> BuildStatus {
    BuildStatus { action, token: token.into(), ..Default::default() }
}

async fn run_provisioner(env: &BTreeMap<String, String>) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_mooring-provisioner"))
        .env_clear()
        .envs(env)
        .env("MOORING_AWS_ENDPOINT", settings().endpoint.unwrap())
        .env("MOORING_PROVISION_POLL_MS", "100")
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn start_build_request_and_provisioner_agree() {
    let sdk = runners::aws::sdk_config(&settings()).await;
    let subnet = default_subnet(&sdk).await;
    let spec = spec(&subnet);
    let status = NodeStatus::default();
    let uid = uuid::Uuid::new_v4().to_string();
    let annotations = BTreeMap::new();
    let target = Target {
        uid: &uid,
        namespace: "pin",
        name: "pulse-1",
        generation: 3,
        annotations: &annotations,
        spec: &spec,
        status: &status,
        fresh: true,
        now: chrono::Utc::now(),
        request: None,
        snapshot_request: None,
        owner: None,
    };
    let request = Nodes::build_request(&target, &intent(Action::Apply, "tok-123"));

    // On the wire: the overrides and the token, as CodeBuild would receive them.
    let capture = Capture::new("StartBuild");
    let config = aws_sdk_codebuild::config::Builder::from(&sdk).interceptor(capture.clone()).build();
    let builds = runners::aws::codebuild::SdkBuilds::from_client(aws_sdk_codebuild::Client::from_conf(config));
    let project = runners::cloud::codebuild::ProjectInput {
        name: "mooring-node-provisioner-pin".into(),
        description: "pin".into(),
        buildspec: runners::workload::BUILDSPEC.into(),
        image: "aws/codebuild/amazonlinux-x86_64-standard:5.0".into(),
        compute_type: "BUILD_GENERAL1_SMALL".into(),
        service_role: "arn:aws:iam::123456789012:role/mooring-node-provisioner".into(),
        source_location: "mooring-artifacts/mooring-provisioner.zip".into(),
        timeout_minutes: 60,
        tags: Default::default(),
    };
    if builds.project(&project.name).await.unwrap().is_none() {
        builds.create_project(&project).await.unwrap();
    }
    builds.start_build(&request).await.unwrap();
    let body = capture.bodies()[0].clone();
    assert_eq!(body["projectName"], "mooring-node-provisioner-pin");
    assert_eq!(body["idempotencyToken"], "tok-123");
    let overrides: BTreeMap<String, String> = body["environmentVariablesOverride"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            assert_eq!(v["type"], "PLAINTEXT");
            (v["name"].as_str().unwrap().to_string(), v["value"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(overrides, request.env, "the overrides are exactly the request's environment");
    let parsed = ProvisionRequest::from_env(&overrides).unwrap();
    assert_eq!((parsed.action, parsed.generation, parsed.spec.clone()), (Action::Apply, 3, spec.clone()));

    // Those overrides as the provisioner's environment: one instance, its volume attached.
    let out = run_provisioner(&overrides).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cloud = runners::aws::node_cloud(&settings()).await;
    let live = cloud.ec2.instances_tagged(TAG_UID, std::slice::from_ref(&uid)).await.unwrap();
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(result["instanceId"], live[0].id.as_str());
    assert_eq!(live[0].tags["mooring:name"], "pin/pulse-1");
    assert!(live[0].volumes.iter().any(|(_, v)| Some(v.as_str()) == result["volumeId"].as_str()), "{live:?}");

    // Again: idempotent (the instance is found by tag, not made twice).
    let out = run_provisioner(&overrides).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(cloud.ec2.instances_tagged(TAG_UID, std::slice::from_ref(&uid)).await.unwrap().len(), 1);

    // Destroy: terminated, the volume deleted (deleteOnNodeDelete).
    let destroy = Nodes::build_request(&target, &intent(Action::Destroy, "tok-124"));
    let out = run_provisioner(&destroy.env).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(cloud.ec2.instances_tagged(TAG_UID, std::slice::from_ref(&uid)).await.unwrap().is_empty());
    assert!(cloud.ec2.volumes_tagged(TAG_UID, std::slice::from_ref(&uid)).await.unwrap().is_empty());
}

#[tokio::test]
async fn provisioner_refuses_a_bad_request_and_names_aws_refusals() {
    let sdk = runners::aws::sdk_config(&settings()).await;
    let subnet = default_subnet(&sdk).await;
    let mut env = BTreeMap::from([("MOORING_NODE_ACTION".to_string(), "apply".to_string())]);
    let out = run_provisioner(&env).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("malformed provisioning request: MOORING_NODE_"));

    let mut bad = spec(&subnet);
    bad.subnet_id = "subnet-00000000".into();
    let status = NodeStatus::default();
    let uid = uuid::Uuid::new_v4().to_string();
    let annotations = BTreeMap::new();
    let target = Target {
        annotations: &annotations,
        uid: &uid,
        namespace: "pin",
        name: "bad",
        generation: 1,
        spec: &bad,
        status: &status,
        fresh: true,
        now: chrono::Utc::now(),
        request: None,
        snapshot_request: None,
        owner: None,
    };
    env = Nodes::build_request(&target, &intent(Action::Apply, "tok-bad")).env;
    let out = run_provisioner(&env).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("AWS refused") && stderr.contains("subnet-00000000"), "{stderr}");
}
