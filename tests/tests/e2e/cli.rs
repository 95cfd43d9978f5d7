//! The client commands against one `mooring serve` (API and controller in one
//! process): apply, get, diff, history, rollback, describe, wait, delete.

use serde_json::Value;
use tests::{Stack, condition, relay_yaml, worker_yaml};

const IMAGE_1: &str = "public.ecr.aws/acme/gateway:2.1.0";
const IMAGE_2: &str = "public.ecr.aws/acme/gateway:2.2.0";
const WORKER_IMAGE: &str = "ghcr.io/acme/proton-beam:0.9";

/// The rows of a table the CLI printed (header dropped), split on whitespace.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_round_trip() {
    let stack = Stack::new("cli_round_trip").await;
    let server = stack.server().start().await;
    let docs = |image: &str| {
        format!("{}---\n{}", relay_yaml("gateway", "default", image), worker_yaml("converter", "default", WORKER_IMAGE))
    };
    let file = stack.write("gateway.yaml", &docs(IMAGE_1));
    let file = file.to_str().expect("a UTF-8 path");

    // Create.
    server
        .cli(&["apply", "-f", file])
        .await
        .success()
        .stdout_has("relay.mooring/default/gateway created")
        .stdout_has("worker.mooring/default/converter created");

    // List, as JSON: the document as sent, with defaults and server metadata.
    let list = server.cli(&["get", "relays", "-o", "json"]).await;
    let list = list.success().json();
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{list:#}");
    let relay = &items[0];
    assert_eq!(relay["metadata"]["name"], "gateway");
    assert_eq!(relay["metadata"]["generation"], 1);
    assert_eq!(relay["spec"]["containers"][0]["image"], IMAGE_1);
    assert_eq!(relay["spec"]["containers"][1]["name"], "opa");
    assert_eq!(relay["spec"]["deployment"]["circuitBreaker"], true, "defaults are filled in: {relay:#}");

    // No change: exit 0.
    server.cli(&["diff", "-f", file]).await.code_is(0);

    // A new image: diff exits 2 and names the field; nothing is written.
    stack.write("gateway.yaml", &docs(IMAGE_2));
    server.cli(&["diff", "-f", file]).await.code_is(2).stdout_has("spec.containers[0].image").stdout_has(IMAGE_2);
    let current = server.cli(&["get", "relays", "gateway", "-o", "json"]).await;
    assert_eq!(current.success().json()["metadata"]["generation"], 1, "diff must not write");

    server
        .cli(&["apply", "-f", file])
        .await
        .success()
        .stdout_has("relay.mooring/default/gateway configured")
        .stdout_has("worker.mooring/default/converter unchanged");

    // Two revisions, newest first.
    let history = server.cli(&["history", "relay", "gateway"]).await;
    let revisions: Vec<String> = rows(&history.success().stdout).into_iter().map(|r| r[0].clone()).collect();
    assert_eq!(revisions, ["2", "1"], "{history}");

    // Roll back to the first spec: a new generation 3 with the old image.
    server.cli(&["rollback", "relay", "gateway", "--to", "1"]).await.success().stdout_has("generation 3");
    let rolled = server.cli(&["get", "relays", "gateway", "-o", "json"]).await;
    let rolled = rolled.success().json();
    assert_eq!(rolled["metadata"]["generation"], 3, "{rolled:#}");
    assert_eq!(rolled["spec"]["containers"][0]["image"], IMAGE_1, "{rolled:#}");
    let history = server.cli(&["history", "relay", "gateway"]).await;
    let top = rows(&history.success().stdout).into_iter().next().expect("a revision");
    assert_eq!((top[0].as_str(), top[2].as_str()), ("3", "rollback"), "{history}");

    // The controller in the same process applies generation 3 (to the simulated
    // cloud the stack runs servers with).
    server
        .cli(&["wait", "relay", "gateway", "--for", "condition=Synced", "--timeout", "60s"])
        .await
        .success()
        .stdout_has("condition met");
    let reconciled = server.cli(&["get", "relays", "gateway", "-o", "json"]).await;
    let reconciled = reconciled.success().json();
    let synced = condition(&reconciled, "Synced").unwrap_or(&Value::Null);
    assert_eq!(synced["status"], "True", "{reconciled:#}");
    assert_eq!(synced["reason"], "ReconcileSuccess", "{reconciled:#}");
    assert_eq!(synced["observedGeneration"], 3, "{reconciled:#}");
    assert_eq!(reconciled["status"]["observedGeneration"], 3, "{reconciled:#}");

    server
        .cli(&["describe", "relay", "gateway"])
        .await
        .success()
        .stdout_has("Name:                gateway")
        .stdout_has("Conditions:")
        .stdout_has("Synced")
        .stdout_has("ReconcileSuccess")
        .stdout_has("RolledBack");

    // Delete and wait until the finalizer is cleared and the row is gone.
    server.cli(&["delete", "relay", "gateway", "--wait", "--timeout", "60s"]).await.success().stdout_has("deleted");
    server.cli(&["get", "relays", "gateway"]).await.failure().stderr_has("not found");
    // The worker is untouched.
    server.cli(&["get", "workers", "converter"]).await.success().stdout_has("converter");

    // An invalid document: refused with the field path, nothing written.
    let bad = stack.write(
        "bad.yaml",
        "apiVersion: mooring/v1\nkind: Relay\nmetadata:\n  name: bad\nspec:\n  cluster: prod\n  containers:\n    - name: app\n      image: public.ecr.aws/acme/gateway:2.1.0\n  scaling:\n    min: 5\n    max: 3\n",
    );
    server.cli(&["apply", "-f", bad.to_str().expect("a UTF-8 path")]).await.failure().stderr_has("spec.scaling.max");
    server.cli(&["get", "relays", "bad"]).await.failure().stderr_has("not found");
}
