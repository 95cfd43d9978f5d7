//! Pins what Mooring sends where moto drops it: the CreateService request a
//! relay's reconcile builds carries the deployment circuit breaker with
//! rollback, the client token and the ownership tags, even though moto does not
//! echo the deployment configuration back. Captured on the wire by an SDK
//! interceptor while the real reconcile runs against moto.

use std::sync::{Arc, Mutex};

use api_types::relay::{RelaySpec, RelayStatus};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use runners::aws::AwsSettings;
use runners::aws::ecs::SdkEcs;
use runners::cloud::Cloud;
use runners::gate::Ungated;
use runners::workload::{Target, WorkloadConfig, Workloads};
use serde_json::{Value, json};

/// Records the body of every request whose `X-Amz-Target` ends with `operation`.
#[derive(Debug, Clone)]
struct Capture {
    operation: &'static str,
    bodies: Arc<Mutex<Vec<Value>>>,
}

impl Intercept for Capture {
    fn name(&self) -> &'static str {
        "capture"
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = ctx.request();
        let target = request.headers().get("x-amz-target").unwrap_or_default();
        if target.ends_with(self.operation)
            && let Some(bytes) = request.body().bytes()
        {
            self.bodies.lock().unwrap().push(serde_json::from_slice(bytes)?);
        }
        Ok(())
    }
}

#[tokio::test]
async fn create_service_carries_the_circuit_breaker_token_and_tags() {
    let endpoint = std::env::var("MOORING_AWS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4566".into());
    let settings = AwsSettings { endpoint: Some(endpoint), region: Some("us-east-1".into()) };
    let sdk = runners::aws::sdk_config(&settings).await;
    let cluster = format!("pin-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    aws_sdk_ecs::Client::new(&sdk).create_cluster().cluster_name(&cluster).send().await.unwrap();

    let capture = Capture { operation: "CreateService", bodies: Arc::default() };
    let config = aws_sdk_ecs::config::Builder::from(&sdk).interceptor(capture.clone()).build();
    let plain = runners::aws::cloud(&settings).await;
    let cloud = Cloud {
        ecs: Arc::new(SdkEcs::from_client(aws_sdk_ecs::Client::from_conf(config))),
        queues: plain.queues,
        caches: plain.caches,
    };
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
    let status = RelayStatus::default();
    let uid = uuid::Uuid::new_v4().to_string();
    let target = Target {
        uid: &uid,
        namespace: "pin",
        name: "gateway",
        generation: 1,
        spec: &spec,
        status: &status,
        fresh: true,
        now: chrono::Utc::now(),
    };
    let report = workloads.reconcile_relay(&Ungated, &target).await.unwrap();
    assert!(report.outputs["serviceArn"].is_string(), "{:?}", report.outputs);

    let bodies = capture.bodies.lock().unwrap().clone();
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
    // moto drops what was sent: the observed service has no deployment configuration.
    let observed = workloads.reconcile_relay(&Ungated, &target).await.unwrap();
    assert!(observed.events.iter().all(|e| e.reason != "ServiceCreated"), "the second pass creates nothing");
}
