//! `mooring rollout` against a real server on the simulated cloud: a
//! blue/green relay with a manual gate waits, `rollout status` shows where it
//! is and what to run, `promote` lets production traffic move, `abort` rolls
//! the next revision back, `undo` returns to the previous spec; bad requests
//! get their 4xx.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{Server, Stack, WAIT, eventually};

fn relay(ns: &str, image: &str) -> Value {
    json!({"apiVersion": "mooring/v1", "kind": "Relay", "metadata": {"name": "gw", "namespace": ns},
    "spec": {
        "cluster": "prod",
        "containers": [{"name": "api", "image": image, "port": 8080}],
        "network": {"subnets": ["subnet-0a1b2c3d"], "securityGroups": ["sg-0a1b2c3d"]},
        "loadBalancer": {
            "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/gw-blue/0123456789abcdef",
            "containerPort": 8080,
            "alternateTargetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/gw-green/fedcba9876543210",
            "productionListenerRuleArn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:listener-rule/app/gw/0123456789abcdef/0123456789abcdef/0000000000000001",
            "roleArn": "arn:aws:iam::000000000000:role/ecs-lb"},
        "scaling": {"min": 1, "max": 2},
        "deployment": {"strategy": "BlueGreen", "bakeMinutes": 0, "verify": {"approval": "Manual"}}
    }})
}

async fn put(server: &Server, ns: &str, image: &str) {
    let resp = server.api(Method::POST, "/v1/apply").json(&json!([relay(ns, image)])).send().await.expect("apply");
    assert_eq!(resp.status(), StatusCode::OK, "{}", resp.text().await.unwrap_or_default());
}

async fn status(server: &Server, ns: &str) -> Value {
    let resp = server.api(Method::GET, &format!("/v1/namespaces/{ns}/relays/gw")).send().await.expect("get");
    resp.json::<Value>().await.expect("json")["status"].clone()
}

/// Waits until the relay's rollout for `generation` satisfies `ok`.
async fn rollout_when(server: &Server, ns: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    eventually(what, WAIT, async || {
        let s = status(server, ns).await;
        if ok(&s) { Ok(s) } else { Err(format!("{s:#}")) }
    })
    .await
}

fn observed(s: &Value, generation: i64) -> bool {
    s["observedGeneration"] == generation
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_gate_is_promoted_and_aborted_from_the_cli() {
    let stack = Stack::new("rollouts").await;
    let server = stack.server().env("MOORING_POLL_SECONDS", "0.2").start().await;
    let ns = "rollouts";
    put(&server, ns, "ghcr.io/acme/api:1.0").await;
    rollout_when(&server, ns, "v1 waiting for approval", |s| s["rollout"]["waitingFor"] == "Approval").await;

    let out = server.cli(&["rollout", "status", "relay", "gw", "-n", ns]).await;
    out.success()
        .stdout_has("PRE_PRODUCTION_TRAFFIC_SHIFT")
        .stdout_has("mooring rollout promote relay gw -n rollouts")
        .stdout_has("[--------------------] 0% on the new revision")
        .stdout_has("AwaitingApproval");

    server.cli(&["rollout", "promote", "relay", "gw", "-n", ns]).await.success().stdout_has("promoted");
    let s =
        rollout_when(&server, ns, "v1 rolled out", |s| observed(s, 1) && s["rollout"]["state"] == "SUCCESSFUL").await;
    assert_eq!(s["rollout"]["productionPercent"], 100.0, "{s:#}");
    // Over: nothing to answer any more.
    let out = server.cli(&["rollout", "abort", "relay", "gw", "-n", ns]).await;
    out.failure().stderr_has("no rollout in progress");
    server
        .cli(&["rollout", "status", "relay", "gw", "-n", ns, "--watch"])
        .await
        .success()
        .stdout_has("SUCCESSFUL")
        .stdout_has("[####################] 100%");

    // v2 waits at the gate; abort rolls it back, and the page says who did.
    put(&server, ns, "ghcr.io/acme/api:2.0").await;
    rollout_when(&server, ns, "v2 waiting", |s| observed(s, 2) && s["rollout"]["waitingFor"] == "Approval").await;
    server.cli(&["rollout", "abort", "relay", "gw", "-n", ns]).await.success().stdout_has("rolling");
    let s = rollout_when(&server, ns, "v2 rolled back", |s| s["rollout"]["state"] == "ROLLBACK_SUCCESSFUL").await;
    assert!(s["rollout"]["rollbackReason"].as_str().is_some_and(|r| r.starts_with("aborted by")), "{s:#}");
    server
        .cli(&["rollout", "status", "relay", "gw", "-n", ns, "-w"])
        .await
        .code_is(1)
        .stdout_has("ROLLBACK_SUCCESSFUL")
        .stdout_has("RolledBack");
    let events = server.cli(&["describe", "relay", "gw", "-n", ns]).await;
    events.success().stdout_has("RolloutAbortRequested").stdout_has("RolloutPromoteRequested");

    // undo: generation 3 carries revision 1's spec (v1 again, which serves
    // already): nothing to deploy, and the rolled-back v2 is history.
    server
        .cli(&["rollout", "undo", "relay", "gw", "-n", ns])
        .await
        .success()
        .stdout_has("generation 3 has the spec of revision 1");
    let resp = server.api(Method::GET, &format!("/v1/namespaces/{ns}/relays/gw")).send().await.expect("get");
    let doc: Value = resp.json().await.expect("json");
    assert_eq!(doc["metadata"]["generation"], 3, "{doc:#}");
    rollout_when(&server, ns, "not degraded at generation 3", |s| {
        observed(s, 3)
            && s["conditions"].as_array().is_some_and(|cs| {
                cs.iter().any(|c| c["type"] == "Degraded" && c["status"] == "False" && c["observedGeneration"] == 3)
            })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_requests_are_checked() {
    let stack = Stack::new("rollout_requests").await;
    let server = stack.server().start().await;
    let ns = "requests";
    put(&server, ns, "ghcr.io/acme/api:1.0").await;
    let post = |path: String, body: Value| server.api(Method::POST, &path).json(&body).send();
    // (path, body, status, text in the answer)
    let table = [
        (format!("/v1/namespaces/{ns}/relays/gw/rollout"), json!({"action": "sideways"}), 400, "promote"),
        (format!("/v1/namespaces/{ns}/relays/gw/rollout"), json!({"action": "promote", "x": 1}), 400, "unknown field"),
        (format!("/v1/namespaces/{ns}/relays/nope/rollout"), json!({"action": "promote"}), 404, "nope"),
        (format!("/v1/namespaces/{ns}/workers/gw/rollout"), json!({"action": "promote"}), 404, "relays do"),
    ];
    for (path, body, code, text) in table {
        let resp = post(path.clone(), body).await.expect("post");
        let status = resp.status().as_u16();
        let answer = resp.text().await.unwrap_or_default();
        assert_eq!(status, code, "{path}: {answer}");
        assert!(answer.contains(text), "{path}: {answer}");
    }
    server.cli(&["rollout", "status", "worker", "gw", "-n", ns]).await.failure().stderr_has("relay");
    // A read-only token may look but not answer.
    let reader = server.cli(&["token", "create", "--name", "reader", "--scope", &format!("read:{ns}")]).await;
    reader.success();
    let token = reader.stdout.trim().lines().last().expect("a token").trim().to_string();
    server.cli_as(&token, &["rollout", "promote", "relay", "gw", "-n", ns]).await.failure().stderr_has("may not write");
}
