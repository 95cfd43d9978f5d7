//! Relays and workers applied to moto (the local AWS) by a real `mooring serve`
//! with the AWS SDK: what lands in AWS, an image change, a no-op re-apply
//! (zero mutating calls, by the server's own metrics), and deletion.
//!
//! moto never starts tasks, so `Ready` is not reached here; `Synced` and the
//! shapes of the AWS resources are the signals (the simulated cloud's tests in
//! `controller/tests/workloads_sim.rs` cover rollouts and readiness).

use serde_json::Value;
use tests::{Moto, Server, Stack, WAIT, condition, eventually, metric_value, relay_yaml, worker_yaml};

async fn status(server: &Server, plural: &str, ns: &str, name: &str) -> Value {
    server.get_json(&format!("/v1/namespaces/{ns}/{plural}/{name}")).await.unwrap_or(Value::Null)
}

async fn synced_at(server: &Server, plural: &str, ns: &str, name: &str, generation: i64) {
    let what = format!("{plural}/{name} Synced at generation {generation}");
    eventually(&what, WAIT, async || {
        let r = status(server, plural, ns, name).await;
        let c = condition(&r, "Synced").cloned().unwrap_or(Value::Null);
        if c["status"] == "True" && c["observedGeneration"] == generation { Ok(r) } else { Err(format!("{c}")) }
    })
    .await;
}

async fn metric(server: &Server, name: &str, labels: &[(&str, &str)]) -> f64 {
    let text = server.metrics().await.expect("metrics");
    metric_value(&text, name, labels).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_and_worker_on_moto() {
    let moto = Moto::connect().await;
    moto.ensure_cluster("prod").await;
    moto.ensure_cluster("batch").await;
    let stack = Stack::new("relay_and_worker_on_moto").await;
    let ns = format!("moto-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let server = stack.server().on_moto(&moto).start().await;
    let docs = |image: &str| {
        format!(
            "{}---\n{}",
            relay_yaml("gateway", &ns, image),
            worker_yaml("converter", &ns, "ghcr.io/acme/proton-beam:0.9")
        )
    };
    let file = stack.write("apps.yaml", &docs("public.ecr.aws/acme/gateway:2.1.0"));
    let file = file.to_str().expect("a UTF-8 path");
    server.cli(&["apply", "-f", file]).await.success();
    synced_at(&server, "relays", &ns, "gateway", 1).await;
    let worker = status(&server, "workers", &ns, "converter").await;
    synced_at(&server, "workers", &ns, "converter", 1).await;

    // The task definition has both containers; the service runs it.
    let family = format!("{ns}_gateway");
    let revisions = moto.cloud.ecs.list_task_definitions(&family).await.expect("task definitions");
    assert_eq!(revisions.len(), 1, "{revisions:?}");
    let relay = status(&server, "relays", &ns, "gateway").await;
    assert_eq!(relay["status"]["taskDefinitionArn"], revisions[0].as_str(), "{relay:#}");
    let services = moto.cloud.ecs.describe_services("prod", std::slice::from_ref(&family)).await.expect("services");
    assert_eq!(services.len(), 1);
    assert_eq!(services[0].task_definition, revisions[0]);
    assert_eq!(services[0].desired_count, 2, "created at scaling.min");
    assert_eq!(relay["status"]["service"]["arn"], services[0].arn.as_str());
    assert_eq!(relay["status"]["service"]["cluster"], "prod");

    // The worker's queue has a dead-letter queue and a redrive policy.
    let worker = if worker["status"]["queue"]["url"].is_string() {
        worker
    } else {
        status(&server, "workers", &ns, "converter").await
    };
    let queue_url = worker["status"]["queue"]["url"].as_str().expect("queue.url in status").to_string();
    let attrs = moto.cloud.queues.queue_attributes(&queue_url).await.expect("queue attributes");
    assert_eq!(attrs["VisibilityTimeout"], "300");
    let redrive: Value = serde_json::from_str(&attrs["RedrivePolicy"]).expect("a redrive policy");
    assert!(redrive["deadLetterTargetArn"].as_str().is_some_and(|a| a.ends_with("_converter-dlq")), "{redrive}");
    assert!(moto.cloud.queues.queue_url(&format!("{ns}_converter-dlq")).await.expect("dlq").is_some());

    // The same documents again: nothing to write, and the reconciles that keep
    // polling (moto's rollouts never complete) make no mutating call.
    let writes = metric(&server, "mooring_aws_calls_total", &[("access", "write")]).await;
    assert!(writes > 0.0);
    let reconciles = metric(&server, "mooring_reconcile_total", &[("kind", "Relay")]).await;
    server.cli(&["apply", "-f", file]).await.success().stdout_has("unchanged");
    eventually("three more relay reconciles", WAIT, async || {
        let now = metric(&server, "mooring_reconcile_total", &[("kind", "Relay")]).await;
        if now >= reconciles + 3.0 { Ok(()) } else { Err(format!("{now} reconciles")) }
    })
    .await;
    assert_eq!(
        metric(&server, "mooring_aws_calls_total", &[("access", "write")]).await,
        writes,
        "a no-op reconcile wrote to AWS"
    );

    // A new image: exactly one new revision, and the service moves to it.
    stack.write("apps.yaml", &docs("public.ecr.aws/acme/gateway:2.2.0"));
    server.cli(&["apply", "-f", file]).await.success();
    synced_at(&server, "relays", &ns, "gateway", 2).await;
    let revisions = moto.cloud.ecs.list_task_definitions(&family).await.expect("task definitions");
    assert_eq!(revisions.len(), 2, "{revisions:?}");
    let services = moto.cloud.ecs.describe_services("prod", std::slice::from_ref(&family)).await.expect("services");
    assert_eq!(services[0].task_definition, revisions[0], "the service runs the newest revision");
    assert_eq!(services[0].desired_count, 2, "the spec update did not reset the replica count");

    // Delete: the services go, the task definitions are deregistered, the queues deleted.
    for (kind, name) in [("relay", "gateway"), ("worker", "converter")] {
        server.cli(&["delete", kind, name, "-n", &ns, "--wait", "--timeout", "60s"]).await.success();
    }
    let services = moto.cloud.ecs.describe_services("prod", std::slice::from_ref(&family)).await.expect("services");
    assert!(services.is_empty(), "{services:?}");
    assert!(moto.cloud.ecs.list_task_definitions(&family).await.expect("list").is_empty());
    assert!(moto.cloud.queues.queue_url(&format!("{ns}_converter")).await.expect("queue").is_none());
}
