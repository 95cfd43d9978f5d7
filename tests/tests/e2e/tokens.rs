//! API tokens: creation, namespace scopes, listing, revocation.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tests::{Stack, eventually, worker_yaml};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_scopes() {
    let stack = Stack::new("tokens_and_scopes").await;
    let server = stack.server().start().await;

    let created = server.cli(&["token", "create", "--name", "ci", "--scope", "write:payments"]).await;
    let ci = created.success().stdout.trim().to_string();
    assert!(!ci.is_empty() && !ci.contains(char::is_whitespace), "one token on stdout\n{created}");
    assert_ne!(ci, server.token());

    // Writes in `payments` are allowed.
    let payments = stack.write("payments.yaml", &worker_yaml("converter", "payments", "ghcr.io/acme/proton-beam:0.9"));
    server
        .cli_as(&ci, &["apply", "-f", payments.to_str().expect("a UTF-8 path")])
        .await
        .success()
        .stdout_has("worker.mooring/payments/converter created");
    server.cli_as(&ci, &["get", "workers", "converter", "-n", "payments"]).await.success();

    // Writes in `default` are not: the CLI says so, and the API answers 403.
    let default_doc = worker_yaml("converter", "default", "ghcr.io/acme/proton-beam:0.9");
    let default = stack.write("default.yaml", &default_doc);
    server
        .cli_as(&ci, &["apply", "-f", default.to_str().expect("a UTF-8 path")])
        .await
        .failure()
        .stderr_has("\"default\"");
    let resp = server
        .http(Method::POST, "/v1/apply")
        .bearer_auth(&ci)
        .header("Content-Type", "application/yaml")
        .body(default_doc)
        .send()
        .await
        .expect("POST /v1/apply");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body: Value = resp.json().await.expect("a JSON error body");
    assert_eq!(body["error"]["code"], "Forbidden", "{body:#}");
    server.cli(&["get", "workers", "converter"]).await.failure().stderr_has("not found");

    // Token management needs admin.
    server.cli_as(&ci, &["token", "list"]).await.failure();

    let list = server.cli(&["token", "list"]).await;
    assert!(
        list.success()
            .stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()[..2] == ["ci", "write:payments"]),
        "ci is listed with its scope\n{list}"
    );
    assert!(!list.stdout.contains(&ci), "secrets are never listed\n{list}");

    server.cli(&["token", "delete", "ci"]).await.success();
    let list = server.cli(&["token", "list"]).await;
    assert!(!list.success().stdout.lines().any(|l| l.starts_with("ci ")), "{list}");

    // Revoked; the API caches token lookups for up to 5 s.
    eventually("the revoked token to be refused", Duration::from_secs(15), async || {
        let resp = server
            .http(Method::GET, "/v1/namespaces/payments/workers")
            .bearer_auth(&ci)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        match resp.status() {
            StatusCode::UNAUTHORIZED => Ok(()),
            other => Err(format!("answered {other}")),
        }
    })
    .await;
    server.cli_as(&ci, &["get", "workers", "-n", "payments"]).await.failure().stderr_has("token");
}
