//! The autoscaler over real HTTP against moto: a worker's queue backlog and a
//! relay's CloudWatch CPU set the ECS desired count, status and events say
//! why, a spec update leaves the scaled count alone, and a drained queue takes
//! the worker back to its minimum once the (short, in this test) idle window
//! has passed.

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use serde_json::Value;
use tests::{Moto, Server, Stack, WAIT, condition, eventually, relay_yaml};

async fn get(server: &Server, plural: &str, ns: &str, name: &str) -> Value {
    server.get_json(&format!("/v1/namespaces/{ns}/{plural}/{name}")).await.unwrap_or(Value::Null)
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// Waits until the resource is `Synced=True` at `generation`; returns it.
async fn synced_at(server: &Server, plural: &str, ns: &str, name: &str, generation: i64) -> Value {
    eventually(&format!("{plural}/{name} Synced at generation {generation}"), WAIT, async || {
        let r = get(server, plural, ns, name).await;
        let c = condition(&r, "Synced").cloned().unwrap_or(Value::Null);
        if c["status"] == "True" && c["observedGeneration"] == generation {
            Ok(r)
        } else {
            Err(format!("{}", r["status"]))
        }
    })
    .await
}

/// The ECS desired count of the service a status records.
async fn desired_count(moto: &Moto, resource: &Value) -> u32 {
    let cluster = resource.pointer("/status/service/cluster").and_then(Value::as_str).expect("status.service.cluster");
    let name = resource.pointer("/status/service/name").and_then(Value::as_str).expect("status.service.name");
    let found = moto.cloud.ecs.describe_services(cluster, &[name.to_string()]).await.expect("describe");
    found.first().map(|s| s.desired_count).expect("the service exists")
}

/// Waits until the service runs `count` tasks per ECS and status says so; returns the resource.
async fn scaled_to(server: &Server, moto: &Moto, plural: &str, ns: &str, name: &str, count: u32) -> Value {
    eventually(&format!("{plural}/{name} at {count} replicas"), WAIT, async || {
        let r = get(server, plural, ns, name).await;
        if r.pointer("/status/service/name").is_none() {
            return Err("no service recorded yet".into());
        }
        let ecs = desired_count(moto, &r).await;
        let status = r.pointer("/status/lastScaling/to").and_then(Value::as_u64);
        if ecs == count && status == Some(u64::from(count)) {
            Ok(r)
        } else {
            Err(format!("ECS desired {ecs}, lastScaling {}", r["status"]["lastScaling"]))
        }
    })
    .await
}

async fn event_reasons(server: &Server, plural: &str, ns: &str, name: &str) -> Vec<String> {
    let events = server.get_json(&format!("/v1/namespaces/{ns}/{plural}/{name}/events")).await.unwrap_or(Value::Null);
    events["items"].as_array().into_iter().flatten().filter_map(|e| e["reason"].as_str().map(String::from)).collect()
}

fn worker(ns: &str, image: &str) -> String {
    format!(
        r#"apiVersion: mooring/v1
kind: Worker
metadata:
  name: jobs
  namespace: {ns}
spec:
  cluster: batch
  container:
    name: consume
    image: {image}
  queue:
    visibilityTimeoutSeconds: 60
  scaling:
    min: 1
    max: 10
    queueDepthTarget: 5
    scaleInAfterIdleSeconds: 3
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_follows_its_backlog_on_moto() {
    let moto = Moto::connect().await;
    moto.ensure_cluster("batch").await;
    let stack = Stack::new("autoscaling_worker").await;
    let server = stack.server().on_moto(&moto).env("MOORING_SCALE_INTERVAL_SECONDS", "1").start().await;
    let ns = unique("scale");
    let file = stack.write("worker.yaml", &worker(&ns, "ghcr.io/acme/proton-beam:0.9"));
    let path = file.to_str().expect("a UTF-8 path");
    server.cli(&["apply", "-f", path]).await.success();
    let r = synced_at(&server, "workers", &ns, "jobs", 1).await;
    assert_eq!(desired_count(&moto, &r).await, 1, "starts at min: {r:#}");
    let url = r.pointer("/status/queue/url").and_then(Value::as_str).expect("status.queue.url").to_string();

    // 12 messages = 2.4 × the target of 5 per replica: ⌈12 / 5⌉ = 3, in one step.
    let sqs = aws_sdk_sqs::Client::new(moto.sdk());
    for n in 0..12 {
        sqs.send_message().queue_url(&url).message_body(format!("job {n}")).send().await.expect("send");
    }
    let r = scaled_to(&server, &moto, "workers", &ns, "jobs", 3).await;
    let last = &r["status"]["lastScaling"];
    assert_eq!((last["from"].as_u64(), last["reason"].as_str()), (Some(1), Some("ScaleOut")), "{last:#}");
    assert_eq!(last["inputs"]["backlog"], 12.0, "{last:#}");
    assert_eq!(r["status"]["backlog"], 12, "{:#}", r["status"]);
    assert!(event_reasons(&server, "workers", &ns, "jobs").await.contains(&"ScaledOut".to_string()));

    // A spec update (a new image) rolls out without resetting the scaled count.
    stack.write("worker.yaml", &worker(&ns, "ghcr.io/acme/proton-beam:1.0"));
    server.cli(&["apply", "-f", path]).await.success();
    let r = synced_at(&server, "workers", &ns, "jobs", 2).await;
    assert_eq!(desired_count(&moto, &r).await, 3, "the spec update kept the count: {:#}", r["status"]);

    // Drained: after the idle window (3 s here) it goes back to min.
    sqs.purge_queue().queue_url(&url).send().await.expect("purge");
    let r = scaled_to(&server, &moto, "workers", &ns, "jobs", 1).await;
    assert_eq!(r["status"]["lastScaling"]["reason"], "ScaleInAfterIdle", "{:#}", r["status"]);
    assert!(event_reasons(&server, "workers", &ns, "jobs").await.contains(&"ScaledIn".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_follows_its_cpu_on_moto() {
    let moto = Moto::connect().await;
    moto.ensure_cluster("prod").await;
    let stack = Stack::new("autoscaling_relay").await;
    let server = stack.server().on_moto(&moto).env("MOORING_SCALE_INTERVAL_SECONDS", "1").start().await;
    let ns = unique("cpu");
    let file = stack.write("relay.yaml", &relay_yaml("gateway", &ns, "ghcr.io/acme/gateway:2.0"));
    server.cli(&["apply", "-f", file.to_str().expect("a UTF-8 path")]).await.success();
    let r = synced_at(&server, "relays", &ns, "gateway", 1).await;
    assert_eq!(desired_count(&moto, &r).await, 2, "starts at min 2: {:#}", r["status"]);
    let cluster = r.pointer("/status/service/cluster").and_then(Value::as_str).expect("cluster").to_string();
    let service = r.pointer("/status/service/name").and_then(Value::as_str).expect("service").to_string();

    // ECS would publish this; here the test does: 85% average at 2 tasks against
    // the 70% target: ⌈2 × 85 / 70⌉ = 3.
    let cloudwatch = aws_sdk_cloudwatch::Client::new(moto.sdk());
    let datum = MetricDatum::builder()
        .metric_name("CPUUtilization")
        .dimensions(Dimension::builder().name("ClusterName").value(&cluster).build())
        .dimensions(Dimension::builder().name("ServiceName").value(&service).build())
        .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from(std::time::SystemTime::now()))
        .value(85.0)
        .unit(StandardUnit::Percent)
        .build();
    cloudwatch.put_metric_data().namespace("AWS/ECS").metric_data(datum).send().await.expect("put metric data");
    let r = scaled_to(&server, &moto, "relays", &ns, "gateway", 3).await;
    let last = &r["status"]["lastScaling"];
    assert_eq!((last["from"].as_u64(), last["reason"].as_str()), (Some(2), Some("ScaleOut")), "{last:#}");
    assert_eq!(last["inputs"]["cpuPercent"], 85.0, "{last:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_native_scaling_lives_in_application_auto_scaling_on_moto() {
    use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
    let moto = Moto::connect().await;
    moto.ensure_cluster("batch").await;
    let stack = Stack::new("autoscaling_native").await;
    let server = stack.server().on_moto(&moto).start().await;
    let ns = unique("native");
    let yaml = worker(&ns, "ghcr.io/acme/proton-beam:0.9")
        .replace("    scaleInAfterIdleSeconds: 3\n", "    mode: aws-native\n");
    let file = stack.write("worker.yaml", &yaml);
    let path = file.to_str().expect("a UTF-8 path");

    // min 0 cannot be rendered: refused with the field path, nothing written.
    let zero = stack.write("zero.yaml", &yaml.replace("    min: 1\n", "    min: 0\n"));
    server
        .cli(&["apply", "-f", zero.to_str().expect("a UTF-8 path")])
        .await
        .failure()
        .stderr_has("spec.scaling.min")
        .stderr_has("aws-native");

    server.cli(&["apply", "-f", path]).await.success();
    let r = synced_at(&server, "workers", &ns, "jobs", 1).await;
    let service = r.pointer("/status/service/name").and_then(Value::as_str).expect("service").to_string();
    let id = format!("service/batch/{service}");
    let aas = aws_sdk_applicationautoscaling::Client::new(moto.sdk());
    let policies = eventually("the scalable target and its policy in moto", WAIT, async || {
        let targets = aas
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_ids(&id)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let t = targets.scalable_targets().first().ok_or("no target yet")?;
        if (t.min_capacity(), t.max_capacity()) != (1, 10) {
            return Err(format!("bounds {} {}", t.min_capacity(), t.max_capacity()));
        }
        let policies = aas
            .describe_scaling_policies()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_id(&id)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let names: Vec<String> = policies.scaling_policies().iter().map(|p| p.policy_name().to_string()).collect();
        if names == ["mooring-backlog"] { Ok(policies) } else { Err(format!("policies {names:?}")) }
    })
    .await;
    let config =
        policies.scaling_policies()[0].target_tracking_scaling_policy_configuration().expect("target tracking");
    assert_eq!((config.target_value(), config.scale_in_cooldown()), (5.0, Some(600)));
    let r = get(&server, "workers", &ns, "jobs").await;
    assert_eq!(r["status"]["scalableTarget"], id.as_str(), "{:#}", r["status"]);

    // Deleted: the policy and the target go with the worker.
    server.cli(&["delete", "worker", "jobs", "-n", &ns, "--wait", "--timeout", "60s"]).await.success();
    let left = aas
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .resource_ids(&id)
        .send()
        .await
        .expect("describe");
    assert!(left.scalable_targets().is_empty(), "{:?}", left.scalable_targets());
    let policies = aas
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(&id)
        .send()
        .await
        .expect("describe");
    assert!(policies.scaling_policies().is_empty(), "{:?}", policies.scaling_policies());
}
