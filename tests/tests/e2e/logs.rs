//! `mooring logs`: a relay's container logs, written to CloudWatch Logs on moto
//! the way the `awslogs` driver writes them, and a node's journal, written the
//! way the CloudWatch agent writes it, read back by the server under the
//! token's namespace scopes — the client has no AWS credentials.

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use reqwest::{Method, StatusCode};
use tests::{Moto, Stack, WAIT, relay_json};

/// Writes `lines` to `group`'s stream (created with the group when missing).
async fn write_lines(logs: &aws_sdk_cloudwatchlogs::Client, group: &str, stream: &str, lines: &[&str]) {
    let _ = logs.create_log_group().log_group_name(group).send().await;
    let _ = logs.create_log_stream().log_group_name(group).log_stream_name(stream).send().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .expect("a clock after 1970");
    let events: Vec<InputLogEvent> =
        lines.iter().map(|l| InputLogEvent::builder().timestamp(now).message(*l).build().expect("an event")).collect();
    logs.put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .set_log_events(Some(events))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutLogEvents {group} {stream}: {e:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_read_through_the_server() {
    let moto = Moto::connect().await;
    moto.ensure_cluster("prod").await;
    let stack = Stack::new("logs_on_moto").await;
    let server = stack.server().on_moto(&moto).start().await;
    // A namespace of its own: moto's log groups outlive the test.
    let ns = format!("logs-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let resp = server
        .api(Method::POST, &format!("/v1/namespaces/{ns}/relays"))
        .json(&relay_json("gw", &ns, "public.ecr.aws/acme/gateway:2.1.0"))
        .send()
        .await
        .expect("create");
    assert_eq!(resp.status(), StatusCode::CREATED);

    // Before any task started: nothing, and why.
    server.cli(&["logs", "relay", "gw", "-n", &ns]).await.success().stderr_has("does not exist yet");

    let logs = aws_sdk_cloudwatchlogs::Client::new(moto.sdk());
    let group = format!("/mooring/{ns}/gw");
    write_lines(&logs, &group, "app/app/0f1e2d3c", &["listening on :8000", "GET /healthz 200", "GET /healthz 200"])
        .await;
    write_lines(&logs, &group, "opa/opa/0f1e2d3c", &["opa: ready"]).await;

    let reader = server.cli(&["token", "create", "--name", "reader", "--scope", &format!("read:{ns}")]).await;
    reader.success();
    let reader_token = reader.stdout.trim().lines().last().expect("a token").trim().to_string();
    let all = server.cli_as(&reader_token, &["logs", "relay", "gw", "-n", &ns]).await;
    all.success().stdout_has("listening on :8000").stdout_has("opa: ready");
    assert_eq!(
        all.stdout.matches("GET /healthz 200").count(),
        2,
        "a line written twice is printed twice: {}",
        all.stdout
    );
    server
        .cli_as(&reader_token, &["logs", "relay", "gw", "-n", &ns, "--container", "opa", "--prefix"])
        .await
        .success()
        .stdout_has("[opa] opa: ready");
    let only_opa = server.cli(&["logs", "relay", "gw", "-n", &ns, "--container", "opa"]).await;
    only_opa.success().stdout_has("opa: ready");
    assert!(!only_opa.stdout.contains("listening"), "{}", only_opa.stdout);
    server
        .cli(&["logs", "relay", "gw", "-n", &ns, "--container", "web"])
        .await
        .failure()
        .stderr_has("not one of this workload's");
    // Another namespace's token reads nothing of this one.
    let other = server.cli(&["token", "create", "--name", "other", "--scope", "read:elsewhere"]).await;
    let other_token = other.stdout.trim().lines().last().expect("a token").trim().to_string();
    server.cli_as(&other_token, &["logs", "relay", "gw", "-n", &ns]).await.failure().stderr_has("may not read");

    // -f prints what is there, then what comes.
    let (mut follower, mut lines) = server.cli_lines(&["logs", "relay", "gw", "-n", &ns, "-f", "--container", "app"]);
    let mut next_line =
        async || tokio::time::timeout(WAIT, lines.next_line()).await.expect("a line from logs -f").expect("read");
    assert_eq!(next_line().await.as_deref(), Some("listening on :8000"));
    assert_eq!(next_line().await.as_deref(), Some("GET /healthz 200"));
    assert_eq!(next_line().await.as_deref(), Some("GET /healthz 200"));
    write_lines(&logs, &group, "app/app/0f1e2d3c", &["GET /orders 201"]).await;
    assert_eq!(next_line().await.as_deref(), Some("GET /orders 201"), "a line written later is followed");
    follower.kill().await.expect("stop logs -f");

    // A node with logs: cloudwatch: its journal, one stream per instance
    // (written here the way the CloudWatch agent writes it). Paused: the
    // test is about reading, not provisioning.
    let node = |name: &str, logs: bool| {
        let mut doc = serde_json::json!({"apiVersion": "mooring/v1", "kind": "Node",
            "metadata": {"name": name, "namespace": ns, "annotations": {"mooring/reconcile": "paused"}},
            "spec": {"software": {"name": "pulse", "version": "1", "artifact": "s3://pulse-artifacts/p.tar.gz"},
                "instanceType": "t3.large", "ami": "ami-1e749f67", "subnetId": "subnet-0a1b2c3d"}});
        if logs {
            doc["spec"]["logs"] = serde_json::json!("cloudwatch");
            doc["spec"]["instanceProfile"] = serde_json::json!("pulse-node");
        }
        doc
    };
    for (name, logs) in [("pulse-0", true), ("quiet", false)] {
        let resp = server
            .api(Method::POST, &format!("/v1/namespaces/{ns}/nodes"))
            .json(&node(name, logs))
            .send()
            .await
            .expect("create a node");
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    let journal = format!("/mooring/{ns}/nodes/pulse-0");
    write_lines(&logs, &journal, "i-0123456789abcdef0", &["pulse: synced block 42"]).await;
    server.cli(&["logs", "node", "pulse-0", "-n", &ns]).await.success().stdout_has("pulse: synced block 42");
    server.cli(&["logs", "node", "quiet", "-n", &ns]).await.failure().stderr_has("does not ship its logs");

    // The read was an AWS call of the server, counted like the others.
    let text = server.metrics().await.expect("metrics");
    let calls = tests::metric_value(&text, "mooring_aws_calls_total", &[("operation", "logs:FilterLogEvents")]);
    assert!(calls.unwrap_or(0.0) >= 5.0, "FilterLogEvents calls: {calls:?}");
}
