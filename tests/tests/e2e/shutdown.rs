//! Graceful shutdown of `mooring serve` (API and controller in one process).

use std::time::Duration;

use reqwest::Method;
use tests::{Stack, relay_yaml};

/// Generous bound on a clean exit after SIGTERM: the grace period the stack sets
/// (5 s), the controller's 10 s for releasing leases, and room for a busy machine.
const EXIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exits_cleanly_on_sigterm() {
    let stack = Stack::new("serve_sigterm").await;
    let mut server = stack.server().start().await;
    let file = stack.write("gateway.yaml", &relay_yaml("gateway", "default", "public.ecr.aws/acme/gateway:1"));
    server.cli(&["apply", "-f", file.to_str().expect("a UTF-8 path")]).await.success();
    server.cli(&["wait", "relay", "gateway", "--for", "condition=Synced", "--timeout", "60s"]).await.success();

    server.terminate();
    let status = server.wait_exit(EXIT).await;
    assert!(status.success(), "mooring serve exited with {status} after SIGTERM\n{}", server.log());
    assert!(server.log().contains("leases released"), "the controller gives its leases back\n{}", server.log());
}

/// An open `/v1/watch` stream (a dashboard, `kubectl get -w`-style client) must not
/// keep the server from stopping: ECS would SIGKILL it after its stop timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exits_on_sigterm_with_an_open_watch_stream() {
    let stack = Stack::new("serve_sigterm_watch").await;
    let mut server = stack.server().start().await;
    let file = stack.write("gateway.yaml", &relay_yaml("gateway", "default", "public.ecr.aws/acme/gateway:1"));
    server.cli(&["apply", "-f", file.to_str().expect("a UTF-8 path")]).await.success();

    // A client with no overall timeout, as a real watcher would use.
    let client = reqwest::Client::builder().no_proxy().build().expect("an HTTP client");
    let mut watch = client
        .request(Method::GET, server.url("/v1/watch?since=0"))
        .bearer_auth(server.token())
        .send()
        .await
        .expect("GET /v1/watch");
    assert!(watch.status().is_success(), "{}", watch.status());
    let first = watch.chunk().await.expect("the first event");
    assert!(first.is_some(), "the stream sends the create event");

    server.terminate();
    let status = server.wait_exit(EXIT).await;
    assert!(status.success(), "mooring serve exited with {status} after SIGTERM");
    drop(watch);
}
