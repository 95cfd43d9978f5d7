//! The `fleet status` line the install's alarms read (CloudWatch metric
//! filters on the JSON log, deploy/aws/mooring.yaml): its fields are the
//! numbers of shards without an owner and of resources not Ready.

use serde_json::Value;
use tests::{Stack, WAIT, eventually};

/// The last JSON log line of `log` whose message is `fleet status`.
fn last_fleet_status(log: &str) -> Option<Value> {
    log.lines().rev().filter_map(|l| serde_json::from_str::<Value>(l).ok()).find(|v| v["message"] == "fleet status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_reports_unowned_shards_and_unready_resources() {
    let stack = Stack::new("fleet_status").await;
    let server = stack
        .server()
        .env("MOORING_LOG_FORMAT", "json")
        .env("MOORING_FLEET_REPORT_SECONDS", "1")
        .env("MOORING_POLL_SECONDS", "1")
        .start()
        .await;
    // A relay in a cluster the simulated account does not have: never Ready.
    let doc = tests::relay_yaml("lost", "fleet", "public.ecr.aws/acme/gateway:1")
        .replace("cluster: prod", "cluster: nowhere");
    let file = stack.write("lost.yaml", &doc);
    server.cli(&["apply", "-f", file.to_str().expect("a UTF-8 path")]).await.success();

    let status = eventually("a fleet status with every shard owned and the relay counted", WAIT, async || {
        let s = last_fleet_status(&server.log()).ok_or("no fleet status line yet")?;
        if s["shards_unowned"] == 0 && s["resources"] == 1 { Ok(s) } else { Err(s.to_string()) }
    })
    .await;
    assert_eq!(status["shards"], 8, "{status}");
    assert_eq!(status["resources_not_ready"], 1, "{status}");
}
