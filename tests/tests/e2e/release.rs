//! `mooring release --all` (uninstall) against moto: every resource is
//! deleted through the API and the command waits until all are gone; the
//! controller released AWS per each resource's deletion policy (`Delete`:
//! the queue and service are gone; `Retain`: they stay, without Mooring's
//! tags).

use serde_json::Value;
use tests::{Moto, Stack, WAIT, condition, eventually, relay_yaml, worker_yaml};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_all_deletes_everything_per_its_deletion_policy() {
    let moto = Moto::connect().await;
    moto.ensure_cluster("prod").await;
    moto.ensure_cluster("batch").await;
    let stack = Stack::new("release_all").await;
    let ns = format!("rel-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let server = stack.server().on_moto(&moto).start().await;
    let kept = worker_yaml("kept", &ns, "ghcr.io/acme/proton-beam:0.9")
        .replace("spec:\n", "spec:\n  deletionPolicy: Retain\n");
    let docs = format!(
        "{}---\n{}---\n{kept}",
        relay_yaml("gateway", &ns, "public.ecr.aws/acme/gateway:2.1.0"),
        worker_yaml("gone", &ns, "ghcr.io/acme/proton-beam:0.9"),
    );
    let file = stack.write("apps.yaml", &docs);
    server.cli(&["apply", "-f", file.to_str().expect("a UTF-8 path")]).await.success();
    for (plural, name) in [("relays", "gateway"), ("workers", "gone"), ("workers", "kept")] {
        eventually(&format!("{plural}/{name} Synced"), WAIT, async || {
            let r = server.get_json(&format!("/v1/namespaces/{ns}/{plural}/{name}")).await?;
            let c = condition(&r, "Synced").cloned().unwrap_or(Value::Null);
            if c["status"] == "True" { Ok(()) } else { Err(format!("{c}")) }
        })
        .await;
    }
    let kept_queue = format!("{ns}_kept");
    let kept_url = moto.cloud.queues.queue_url(&kept_queue).await.expect("moto").expect("the kept queue exists");
    assert!(moto.cloud.queues.queue_tags(&kept_url).await.expect("tags").contains_key("mooring:uid"));

    let dry = server.cli(&["release", "--all", "--dry-run"]).await;
    dry.success();
    assert!(dry.stdout.contains(&format!("would release relay {ns}/gateway")), "{dry}");

    let out = server.cli(&["release", "--all", "--timeout", "90s"]).await;
    out.success();
    assert!(out.stdout.contains("released all 3 resources"), "{out}");
    for plural in ["relays", "workers", "nodes"] {
        let list = server.get_json(&format!("/v1/{plural}")).await.expect("a list");
        assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{plural}: {list}");
    }

    // Delete: gone from AWS.
    assert!(moto.cloud.queues.queue_url(&format!("{ns}_gone")).await.expect("moto").is_none());
    let services = moto.cloud.ecs.describe_services("prod", &[format!("{ns}_gateway")]).await.expect("moto");
    assert!(services.is_empty(), "{services:?}");
    // Retain: still there, no longer Mooring's.
    let tags = moto.cloud.queues.queue_tags(&kept_url).await.expect("the kept queue is still there");
    assert!(!tags.contains_key("mooring:uid"), "{tags:?}");
    let kept_service = moto.cloud.ecs.describe_services("batch", &[format!("{ns}_kept")]).await.expect("moto");
    assert_eq!(kept_service.len(), 1, "the retained service stays");
    assert!(!kept_service[0].tags.contains_key("mooring:uid"), "{:?}", kept_service[0].tags);

    // Nothing left: a second release says so.
    server.cli(&["release", "--all"]).await.success().stdout_has("nothing to release");
}
