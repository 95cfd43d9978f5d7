//! Mooring touches only what carries its resource's `mooring:uid` (or, for the
//! provisioner project, its install's tag), over real HTTP against moto: an
//! untagged queue with a worker's queue name is left alone until adopted on
//! request; a CodeBuild project a node names that is not the install's is never
//! rewritten; deleting a worker right after its cluster changed leaves no
//! service in either cluster.

use serde_json::Value;
use tests::{Moto, Server, Stack, WAIT, condition, eventually, worker_yaml};

async fn get(server: &Server, plural: &str, ns: &str, name: &str) -> Value {
    server.get_json(&format!("/v1/namespaces/{ns}/{plural}/{name}")).await.unwrap_or(Value::Null)
}

/// Waits until `Synced` has `status` and `reason`; returns the resource.
async fn synced(server: &Server, plural: &str, ns: &str, name: &str, status: &str, reason: &str) -> Value {
    eventually(&format!("{plural}/{name} Synced={status} ({reason})"), WAIT, async || {
        let r = get(server, plural, ns, name).await;
        let c = condition(&r, "Synced").cloned().unwrap_or(Value::Null);
        if c["status"] == status && c["reason"] == reason { Ok(r) } else { Err(format!("{}", r["status"])) }
    })
    .await
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_what_is_ours_is_touched_on_moto() {
    let moto = Moto::connect().await;
    moto.ensure_cluster("prod").await;
    moto.ensure_cluster("batch").await;
    let stack = Stack::new("ownership_on_moto").await;
    let server = stack
        .server()
        .env("MOORING_CLOUD", "aws")
        .env("MOORING_AWS_ENDPOINT", &moto.endpoint)
        .env("MOORING_NODE_BUILDS", "codebuild")
        .env("MOORING_POLL_SECONDS", "1")
        .start()
        .await;
    let sqs = aws_sdk_sqs::Client::new(moto.sdk());

    // Someone else's queue, with a message in it, under the worker's queue name.
    let ns = unique("own");
    let queue = format!("{ns}_converter");
    let url = sqs
        .create_queue()
        .queue_name(&queue)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, "17")
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("url");
    sqs.send_message().queue_url(&url).message_body("someone's job").send().await.expect("send");
    let yaml = worker_yaml("converter", &ns, "ghcr.io/acme/proton-beam:0.9");
    let file = stack.write("worker.yaml", &yaml);
    server.cli(&["apply", "-f", file.to_str().expect("a UTF-8 path")]).await.success();
    let r = synced(&server, "workers", &ns, "converter", "False", "Conflict").await;
    let message = condition(&r, "Synced").and_then(|c| c["message"].as_str()).unwrap_or_default().to_string();
    assert!(message.contains(&queue) && message.contains("mooring/adopt"), "{message}");
    let attrs = moto.cloud.queues.queue_attributes(&url).await.expect("attributes");
    assert_eq!(attrs["VisibilityTimeout"], "17", "the queue was not touched");
    assert_eq!(attrs["ApproximateNumberOfMessages"], "1", "its message is still there");
    assert!(moto.cloud.queues.queue_tags(&url).await.expect("tags").is_empty());
    let family = format!("{ns}_converter");
    assert!(moto.cloud.ecs.describe_services("batch", std::slice::from_ref(&family)).await.expect("d").is_empty());

    // Adopted on request.
    let adopting = yaml.replace(
        &format!("  namespace: {ns}\n"),
        &format!("  namespace: {ns}\n  annotations:\n    mooring/adopt: \"true\"\n"),
    );
    stack.write("worker.yaml", &adopting);
    server.cli(&["apply", "-f", file.to_str().expect("a UTF-8 path")]).await.success();
    let r = synced(&server, "workers", &ns, "converter", "True", "ReconcileSuccess").await;
    let uid = r["metadata"]["uid"].as_str().expect("uid").to_string();
    let tags = moto.cloud.queues.queue_tags(&url).await.expect("tags");
    assert_eq!(tags.get("mooring:uid"), Some(&uid), "{tags:?}");
    assert_eq!(r["status"]["queue"]["url"], url.as_str());
    let events = server.get_json(&format!("/v1/namespaces/{ns}/workers/converter/events")).await.expect("events");
    let adopted = events["items"].as_array().into_iter().flatten().any(|e| e["reason"] == "Adopted");
    assert!(adopted, "{events:#}");

    // The cluster changes and the worker is deleted at once: no service is
    // left in either cluster (the teardown works from what status records).
    let moved = adopting.replace("  cluster: batch\n", "  cluster: prod\n");
    stack.write("worker.yaml", &moved);
    server.cli(&["apply", "-f", file.to_str().expect("a UTF-8 path")]).await.success();
    eventually("the move recorded", WAIT, async || {
        let r = get(&server, "workers", &ns, "converter").await;
        if r["status"]["service"]["cluster"] == "prod" { Ok(()) } else { Err(format!("{}", r["status"])) }
    })
    .await;
    server.cli(&["delete", "worker", "converter", "-n", &ns, "--wait", "--timeout", "60s"]).await.success();
    for cluster in ["batch", "prod"] {
        let left = moto.cloud.ecs.describe_services(cluster, std::slice::from_ref(&family)).await.expect("d");
        assert!(left.is_empty(), "a service is left in {cluster}: {left:?}");
    }

    // A CodeBuild project that is not the install's is never rewritten.
    let project = unique("team-builds");
    let codebuild = aws_sdk_codebuild::Client::new(moto.sdk());
    use aws_sdk_codebuild::types as cb;
    codebuild
        .create_project()
        .name(&project)
        .source(
            cb::ProjectSource::builder().r#type(cb::SourceType::S3).location("team/src.zip").build().expect("source"),
        )
        .artifacts(cb::ProjectArtifacts::builder().r#type(cb::ArtifactsType::NoArtifacts).build().expect("artifacts"))
        .environment(
            cb::ProjectEnvironment::builder()
                .r#type(cb::EnvironmentType::LinuxContainer)
                .image("aws/codebuild/standard:7.0")
                .compute_type(cb::ComputeType::BuildGeneral1Small)
                .build()
                .expect("environment"),
        )
        .service_role("arn:aws:iam::123456789012:role/team")
        .send()
        .await
        .expect("create project");
    let subnet = moto.default_subnet().await;
    let node = format!(
        "apiVersion: mooring/v1\nkind: Node\nmetadata: {{name: pulse, namespace: {ns}}}\nspec:\n  \
         software: {{name: pulse, version: 1.4.2, artifact: \"s3://pulse-artifacts/pulse.tar.gz\"}}\n  \
         instanceType: t3.large\n  ami: ami-1e749f67\n  subnetId: {subnet}\n  \
         provisioner: {{codebuildProject: {project}}}\n"
    );
    let file = stack.write("node.yaml", &node);
    server.cli(&["apply", "-f", file.to_str().expect("a UTF-8 path")]).await.success();
    let r = synced(&server, "nodes", &ns, "pulse", "False", "Conflict").await;
    let message = condition(&r, "Synced").and_then(|c| c["message"].as_str()).unwrap_or_default().to_string();
    assert!(message.contains(&project) && message.contains("mooring:install"), "{message}");
    let p = moto.node_cloud().builds.project(&project).await.expect("project").expect("exists");
    assert!(p.tags.is_empty(), "the project was not tagged: {p:?}");
    assert_ne!(p.buildspec.as_deref(), Some(runners::workload::BUILDSPEC), "the project was not rewritten");
    server.cli(&["delete", "node", "pulse", "-n", &ns, "--wait", "--timeout", "60s"]).await.success();
}
