//! Several controller replicas share the shards through Redis leases, and the
//! living take over the shards of a replica that died or left.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tests::{Server, Stack, WAIT, condition, eventually, metric_value, relay_json};

const SHARDS: u32 = 12;
const LEASE_SECONDS: &str = "3";

/// Lease time plus a few renew rounds (a third of the lease each), with room for a
/// busy machine.
const TAKEOVER: Duration = Duration::from_secs(20);

/// The shard of a resource, as the controller computes it (FNV-1a of
/// `kind/namespace/name`, documented as stable across processes and releases).
fn shard_of(kind: &str, namespace: &str, name: &str) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [kind, "/", namespace, "/", name] {
        for b in part.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    (h % u64::from(SHARDS)) as u32
}

/// `mooring_leases_held` of each replica, in order.
async fn leases_held(replicas: &[&Server]) -> Result<Vec<u64>, String> {
    let mut held = Vec::new();
    for r in replicas {
        let text = r.metrics().await?;
        let n = metric_value(&text, "mooring_leases_held", &[]).ok_or(format!("{}: no mooring_leases_held", r.name))?;
        held.push(n as u64);
    }
    Ok(held)
}

/// Who holds each shard's lease in Redis (`<prefix>:lease:<shard>` = `<replica>|<fence>`).
async fn lease_owners(stack: &Stack) -> Result<BTreeMap<u32, String>, String> {
    let mut conn = stack.redis().await;
    let keys: Vec<String> = (0..SHARDS).map(|s| format!("{}:lease:{s}", stack.redis_prefix)).collect();
    let values: Vec<Option<String>> =
        redis::cmd("MGET").arg(&keys).query_async(&mut conn).await.map_err(|e| format!("MGET leases: {e}"))?;
    Ok((0..SHARDS)
        .zip(values)
        .filter_map(|(s, v)| Some((s, v?.split('|').next().unwrap_or_default().to_string())))
        .collect())
}

/// Waits until the replicas each report `share` leases and Redis agrees: every
/// shard held, each by one of them, `share` apiece.
async fn wait_for_shares(stack: &Stack, replicas: &[&Server], share: u64, timeout: Duration) -> BTreeMap<u32, String> {
    let names: Vec<&str> = replicas.iter().map(|r| r.name.as_str()).collect();
    let what = format!("{names:?} to hold {share} shards each");
    eventually(&what, timeout, async || {
        let held = leases_held(replicas).await?;
        let owners = lease_owners(stack).await?;
        let per_owner: Vec<u64> =
            names.iter().map(|n| owners.values().filter(|o| o.as_str() == *n).count() as u64).collect();
        let state = format!("metrics {held:?}, Redis {per_owner:?}, leases {owners:?}");
        let want = vec![share; replicas.len()];
        if held == want && per_owner == want && owners.len() as u32 == SHARDS { Ok(owners) } else { Err(state) }
    })
    .await
}

/// Creates relays through the API.
async fn create_relays(api: &Server, names: &[String]) {
    for name in names {
        let resp = api
            .api(Method::POST, "/v1/namespaces/default/relays")
            .json(&relay_json(name, "default", "public.ecr.aws/acme/gateway:2.1.0"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating relay {name}: {e}"));
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::CREATED, "creating relay {name}: {body}");
    }
}

/// Waits until every relay in `names` reports `Synced=True` for its current
/// generation (each replica runs its own simulated cloud).
async fn wait_reconciled(api: &Server, names: &[String]) {
    let what = format!("{} relays to be reconciled", names.len());
    eventually(&what, WAIT, async || {
        let list = api.get_json("/v1/namespaces/default/relays?limit=1000").await?;
        let items = list["items"].as_array().ok_or("no items")?;
        let pending: Vec<String> = names
            .iter()
            .filter(|name| {
                !items.iter().any(|r| {
                    let synced = condition(r, "Synced").unwrap_or(&Value::Null);
                    r["metadata"]["name"] == name.as_str()
                        && synced["status"] == "True"
                        && synced["observedGeneration"] == r["metadata"]["generation"]
                })
            })
            .cloned()
            .collect();
        if pending.is_empty() { Ok(()) } else { Err(format!("not yet reconciled: {pending:?}")) }
    })
    .await;
}

/// Successful Relay reconciles a replica has done.
async fn relay_reconciles(replica: &Server) -> f64 {
    let text = replica.metrics().await.unwrap_or_else(|e| panic!("{e}"));
    metric_value(&text, "mooring_reconcile_total", &[("kind", "Relay"), ("result", "success")]).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_controller_replicas_share_shards_and_take_over() {
    let stack = Stack::new("three_replicas").await;
    let api = stack.server().name("api").arg("--api-only").start().await;
    let api_metrics = api.metrics().await.expect("the API's metrics");
    assert!(metric_value(&api_metrics, "mooring_leases_held", &[]).is_none(), "--api-only runs no controller");

    let mut replicas: Vec<Server> = ["replica-a", "replica-b", "replica-c"]
        .into_iter()
        .map(|name| {
            stack
                .server()
                .name(name)
                .arg("--controller-only")
                .env("MOORING_SHARDS", SHARDS.to_string())
                .env("MOORING_LEASE_SECONDS", LEASE_SECONDS)
                .spawn()
        })
        .collect();
    for r in &mut replicas {
        r.wait_healthy().await;
    }
    // The controller-only replicas serve the operational endpoints only.
    let resp = replicas[0].api(Method::GET, "/v1/relays").send().await.expect("GET /v1/relays");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND, "a controller-only replica serves no API");

    let owners = wait_for_shares(&stack, &replicas.iter().collect::<Vec<_>>(), 4, WAIT).await;

    // Thirty relays, each reconciled by whichever replica owns its shard.
    let first: Vec<String> = (0..30).map(|i| format!("relay-{i:02}")).collect();
    create_relays(&api, &first).await;
    wait_reconciled(&api, &first).await;
    let mut total = 0.0;
    for r in &replicas {
        let done = relay_reconciles(r).await;
        total += done;
        let mine = first.iter().filter(|n| owners.get(&shard_of("Relay", "default", n)) == Some(&r.name)).count();
        assert!(mine == 0 || done > 0.0, "{} owns the shards of {mine} relays but reconciled none", r.name);
    }
    assert!(total >= first.len() as f64, "{total} reconciles for {} relays", first.len());

    // Deletes complete too: each replica clears the finalizers of its shards.
    for name in &first[..5] {
        let resp = api
            .api(Method::DELETE, &format!("/v1/namespaces/default/relays/{name}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("deleting relay {name}: {e}"));
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "deleting relay {name}");
    }
    eventually("5 deleted relays to be gone", WAIT, async || {
        let mut left = Vec::new();
        for name in &first[..5] {
            let resp = api
                .api(Method::GET, &format!("/v1/namespaces/default/relays/{name}"))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if resp.status() != StatusCode::NOT_FOUND {
                left.push(format!("{name}: {}", resp.status()));
            }
        }
        if left.is_empty() { Ok(()) } else { Err(format!("still there: {left:?}")) }
    })
    .await;

    // A replica dies without a word: its shards move to the two others.
    replicas[0].kill();
    let survivors: Vec<&Server> = replicas[1..].iter().collect();
    wait_for_shares(&stack, &survivors, 6, TAKEOVER).await;
    let second: Vec<String> = (30..40).map(|i| format!("relay-{i:02}")).collect();
    create_relays(&api, &second).await;
    wait_reconciled(&api, &second).await;

    // A replica shuts down cleanly: it exits 0 and gives its shards back.
    replicas[1].terminate();
    let status = replicas[1].wait_exit(Duration::from_secs(30)).await;
    assert!(status.success(), "replica-b exited with {status} after SIGTERM");
    wait_for_shares(&stack, &[&replicas[2]], u64::from(SHARDS), TAKEOVER).await;
    let third = vec!["relay-40".to_string()];
    create_relays(&api, &third).await;
    wait_reconciled(&api, &third).await;
}
