//! Relays and workers reconciled by the real controller (Postgres, Redis,
//! leases, budgets) against the simulated cloud: convergence under faults,
//! crash at every facade call, drift, failed rollouts. Each test prints its
//! seed; rerun a failure with `MOORING_SIM_SEED=<seed>`.

mod common;

use std::time::Duration;

use api_types::Kind;
use common::sim::*;
use common::*;
use desired_state::store::{ListQuery, Store};
use runners::cloud::ops;
use runners::sim::{FaultMix, SimCloud, SimConfig};
use runners::workload::WorkloadConfig;
use serde_json::{Value, json};

fn sim(seed: u64, faults: FaultMix) -> SimCloud {
    SimCloud::new(SimConfig {
        seed,
        faults,
        latency: (Duration::ZERO, Duration::from_millis(1)),
        task_start_delay: Duration::from_millis(30),
        drain_delay: Duration::from_millis(20),
        cache_create_delay: Duration::from_millis(30),
        consistency_window: Duration::from_millis(100),
        clusters: vec!["prod".into(), "batch".into()],
        ..Default::default()
    })
}

/// A fresh controller process over `cloud`: new runners (empty caches), the
/// shared store, Redis prefix and leases.
fn start(store: &Store, prefix: &str, cloud: &SimCloud) -> Replica {
    start_workloads(store, prefix, cloud, WorkloadConfig::default(), Options::default())
}

fn relay(ns: &str, name: &str, image: &str, cache: bool) -> Value {
    let mut spec = json!({
        "cluster": "prod",
        "containers": [
            {"name": "api", "image": image, "port": 8080,
             "secrets": {"TOKEN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:tok-AbCdEf"}},
            {"name": "opa", "image": "openpolicyagent/opa:0.60.0", "port": 8181, "essential": false}
        ],
        "scaling": {"min": 2, "max": 6}
    });
    if cache {
        spec["cache"] = json!({"nodeType": "cache.t4g.micro"});
    }
    json!({"apiVersion": "mooring/v1", "kind": "Relay", "metadata": {"name": name, "namespace": ns}, "spec": spec})
}

fn worker(ns: &str, name: &str, image: &str) -> Value {
    json!({"apiVersion": "mooring/v1", "kind": "Worker", "metadata": {"name": name, "namespace": ns},
        "spec": {"cluster": "batch", "container": {"name": "convert", "image": image},
                 "queue": {"visibilityTimeoutSeconds": 60, "deadLetter": {"maxReceiveCount": 4}},
                 "scaling": {"min": 1, "max": 5}}})
}

/// Resources of `ns` that are not yet Synced and Ready at their generation.
async fn unready(store: &Store, ns: &str) -> Vec<String> {
    let page = store.list(&ListQuery { namespace: Some(ns.into()), limit: 1000, ..Default::default() }).await.unwrap();
    page.items
        .iter()
        .filter(|r| {
            let ok = |t| condition(&r.status, t).is_some_and(|(s, _, g)| s == "True" && g == r.generation);
            !(ok("Synced") && ok("Ready"))
        })
        .map(|r| format!("{}/{}: {}", r.kind, r.name, r.status["conditions"]))
        .collect()
}

/// Waits until every resource of `ns` is Synced and Ready; names the stragglers otherwise.
async fn converge(store: &Store, ns: &str, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = unready(store, ns).await;
        if left.is_empty() {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "not converged after {within:?}: {left:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn count(store: &Store, ns: &str) -> usize {
    store.list(&ListQuery { namespace: Some(ns.into()), limit: 1000, ..Default::default() }).await.unwrap().items.len()
}

async fn delete_all(store: &Store, ns: &str) {
    let page = store.list(&ListQuery { namespace: Some(ns.into()), limit: 1000, ..Default::default() }).await.unwrap();
    for r in page.items {
        store.request_delete(r.kind, ns, &r.name).await.unwrap();
    }
}

/// Nothing of namespace `ns` is left in the simulated cloud.
fn assert_clean(cloud: &SimCloud, ns: &str) {
    let prefix = format!("{ns}_");
    let services: Vec<_> = cloud.services().into_iter().filter(|s| s.name.starts_with(&prefix)).collect();
    assert!(services.is_empty(), "services left: {services:?}");
    let tds: Vec<_> =
        cloud.active_task_definitions().into_iter().filter(|a| a.contains(&format!("/{prefix}"))).collect();
    assert!(tds.is_empty(), "task definitions left: {tds:?}");
    let queues: Vec<_> = cloud.queues().into_iter().filter(|(n, _)| n.starts_with(&prefix)).collect();
    assert!(queues.is_empty(), "queues left: {queues:?}");
    let targets: Vec<_> = cloud.scalable_targets().into_iter().filter(|t| t.contains(&format!("/{prefix}"))).collect();
    assert!(targets.is_empty(), "scalable targets left: {targets:?}");
}

#[sqlx::test(migrations = false)]
async fn two_hundred_resources_converge_under_faults_without_duplicates_or_leaks(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = sim(seed(), FaultMix::typical());
    let replica = start(&store, &prefix, &cloud);
    let ns = "fleet";
    for i in 0..100 {
        apply(&store, relay(ns, &format!("r{i}"), "ghcr.io/acme/api:1.0", i % 10 == 0)).await;
        apply(&store, worker(ns, &format!("w{i}"), "ghcr.io/acme/convert:1.0")).await;
    }
    converge(&store, ns, Duration::from_secs(120)).await;
    let services = cloud.services();
    assert_eq!(services.len(), 200, "one service per resource");
    for s in &services {
        assert_eq!(cloud.services_created(&s.cluster, &s.name), 1, "service {} was created more than once", s.name);
        assert!((2..=6).contains(&s.desired_count) || s.cluster == "batch", "{s:?}");
    }
    assert_eq!(cloud.queues().len(), 200, "a queue and a dead-letter queue per worker");
    assert_eq!(cloud.replication_groups().len(), 10);
    assert!(cloud.call_count(&ops::DESCRIBE_SERVICES) > 0);

    delete_all(&store, ns).await;
    eventually(Duration::from_secs(120), "every resource deleted", || {
        let store = store.clone();
        async move { count(&store, ns).await == 0 }
    })
    .await;
    assert_clean(&cloud, ns);
    assert!(cloud.replication_groups().is_empty(), "caches left: {:?}", cloud.replication_groups());
    replica.shutdown().await;
}

/// What a crash sweep runs between create and delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    /// Create, converge, delete.
    CreateDelete,
    /// Create, then move the relay and the worker to the other cluster, drop
    /// the relay's cache and hand the worker's scaling to AWS (`aws-native`),
    /// converge, delete.
    MoveAndDropCache,
}

/// Whether the relay and worker of `ns` finished their move: in the new
/// clusters, nothing retiring, the cache gone from status.
async fn moved(store: &Store, ns: &str) -> bool {
    let relay = store.get(Kind::Relay, ns, "gateway").await.map(|r| r.status).unwrap_or_default();
    let worker = store.get(Kind::Worker, ns, "converter").await.map(|r| r.status).unwrap_or_default();
    relay["service"]["cluster"] == "batch"
        && worker["service"]["cluster"] == "prod"
        && relay.get("retiringServices").is_none()
        && worker.get("retiringServices").is_none()
        && relay.get("cache").is_none()
        && worker["scalableTarget"] == format!("service/prod/{ns}_converter")
}

/// One relay with a cache and one worker, created, changed per `lifecycle`
/// and deleted, with the process killed right after the `at`-th facade call
/// took effect (when the lifecycle makes that many). Returns whether the
/// crash happened.
async fn lifecycle_with_crash(
    store: &Store,
    prefix: &str,
    cloud: &SimCloud,
    ns: &str,
    lifecycle: Lifecycle,
    at: Option<u64>,
) -> bool {
    let crashed = at.map(|n| cloud.crash_at(n));
    let mut replica = Some(start(store, prefix, cloud));
    let mut did_crash = false;
    // Runs `phase` until it holds; if the armed crash fires first, restarts.
    macro_rules! until {
        ($what:expr, $check:expr) => {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                if $check {
                    break;
                }
                if let Some(c) = &crashed
                    && !did_crash
                    && tokio::time::timeout(Duration::from_millis(20), c.notified()).await.is_ok()
                {
                    did_crash = true;
                    crash(replica.take().unwrap(), prefix).await;
                    cloud.clear_crash();
                    replica = Some(start(store, prefix, cloud));
                    continue;
                }
                assert!(tokio::time::Instant::now() < deadline, "timed out: {} (crash at {at:?})", $what);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
    }
    apply(store, relay(ns, "gateway", "ghcr.io/acme/api:1.0", true)).await;
    apply(store, worker(ns, "converter", "ghcr.io/acme/convert:1.0")).await;
    until!("converged", unready(store, ns).await.is_empty() && count(store, ns).await == 2);
    for (cluster, name) in [("prod", format!("{ns}_gateway")), ("batch", format!("{ns}_converter"))] {
        assert_eq!(cloud.services_created(cluster, &name), 1, "{name} created twice (crash at {at:?})");
    }
    let ours = |q: &(String, String)| q.0.starts_with(&format!("{ns}_"));
    assert_eq!(cloud.queues().iter().filter(|q| ours(q)).count(), 2, "crash at {at:?}");
    if lifecycle == Lifecycle::MoveAndDropCache {
        let mut moved_relay = relay(ns, "gateway", "ghcr.io/acme/api:1.0", false);
        moved_relay["spec"]["cluster"] = json!("batch");
        let mut moved_worker = worker(ns, "converter", "ghcr.io/acme/convert:1.0");
        moved_worker["spec"]["cluster"] = json!("prod");
        moved_worker["spec"]["scaling"]["mode"] = json!("aws-native");
        apply(store, moved_relay).await;
        apply(store, moved_worker).await;
        until!("moved", unready(store, ns).await.is_empty() && moved(store, ns).await);
        // Exactly one live service each, in the new cluster, each created once there.
        for (cluster, name) in [("batch", format!("{ns}_gateway")), ("prod", format!("{ns}_converter"))] {
            assert_eq!(
                cloud.services_created(cluster, &name),
                1,
                "{name} created twice in {cluster} (crash at {at:?})"
            );
        }
        let live: Vec<_> = cloud.services().into_iter().filter(|s| s.name.starts_with(&format!("{ns}_"))).collect();
        assert_eq!(live.len(), 2, "one service per resource after the move (crash at {at:?}): {live:?}");
        assert!(live.iter().all(|s| (s.cluster == "batch") == s.name.ends_with("_gateway")), "{live:?}");
        let uid = store.get(Kind::Relay, ns, "gateway").await.unwrap().uid.to_string();
        let id = runners::names::cache_id("gateway", &uid);
        let caches: Vec<_> = cloud.replication_groups().into_iter().filter(|g| g.id == id).collect();
        assert!(caches.is_empty(), "the dropped cache is left (crash at {at:?}): {caches:?}");
        let target = cloud.scalable_target(&format!("service/prod/{ns}_converter"));
        let (_, _, policies) = target.unwrap_or_else(|| panic!("no scalable target (crash at {at:?})"));
        assert_eq!(policies.len(), 1, "the backlog policy (crash at {at:?}): {policies:?}");
    }
    delete_all(store, ns).await;
    until!("deleted", count(store, ns).await == 0);
    assert_clean(cloud, ns);
    cloud.clear_crash();
    replica.take().unwrap().shutdown().await;
    did_crash
}

#[sqlx::test(migrations = false)]
async fn a_crash_after_any_facade_call_neither_duplicates_nor_leaks(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = sim(seed(), FaultMix::none());
    // A clean run counts the calls of a lifecycle; then one run per call, each
    // killed right after that call took effect.
    crash_sweep(&store, &prefix, &cloud, Lifecycle::CreateDelete).await;
}

#[sqlx::test(migrations = false)]
async fn a_crash_during_a_cluster_move_and_a_cache_removal_neither_duplicates_nor_leaks(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = sim(seed(), FaultMix::none());
    crash_sweep(&store, &prefix, &cloud, Lifecycle::MoveAndDropCache).await;
}

/// A clean run counts the calls of a lifecycle; then one run per call, each
/// killed right after that call took effect.
async fn crash_sweep(store: &Store, prefix: &str, cloud: &SimCloud, lifecycle: Lifecycle) {
    cloud.reset_calls();
    lifecycle_with_crash(store, prefix, cloud, "clean", lifecycle, None).await;
    let calls = cloud.total_calls();
    assert!(calls > 10, "a lifecycle makes {calls} calls");
    let mut crashes = 0;
    for at in 1..=calls {
        if lifecycle_with_crash(store, prefix, cloud, &format!("crash{at}"), lifecycle, Some(at)).await {
            crashes += 1;
        }
    }
    eprintln!("{lifecycle:?}: {crashes} of {calls} crash points reached; each converged without duplicates or leaks");
    assert!(crashes as f64 >= calls as f64 * 0.8, "only {crashes} of {calls} crash points were reached");
}

#[sqlx::test(migrations = false)]
async fn drift_is_detected_reported_and_corrected(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = sim(seed(), FaultMix::none());
    let replica = start(&store, &prefix, &cloud);
    let ns = "drift";
    apply(&store, relay(ns, "gateway", "ghcr.io/acme/api:1.0", false)).await;
    apply(&store, worker(ns, "converter", "ghcr.io/acme/convert:1.0")).await;
    converge(&store, ns, Duration::from_secs(30)).await;
    let svc = format!("{ns}_gateway");
    let td = cloud.service("prod", &svc).unwrap().task_definition;
    let updates_before = cloud.call_count(&ops::UPDATE_SERVICE);

    // Behind Mooring's back: 40 tasks (max 6), another task definition, a queue attribute.
    assert!(cloud.set_desired_count("prod", &svc, 40));
    let other = cloud.active_task_definitions().into_iter().find(|a| a.contains("converter")).unwrap();
    assert!(cloud.set_service_task_definition("prod", &svc, &other));
    assert!(cloud.set_queue_attribute(&format!("{ns}_converter"), "VisibilityTimeout", "5"));
    // An AWS event announces the change (as EventBridge would).
    for kind in [Kind::Relay, Kind::Worker] {
        let name = if kind == Kind::Relay { "gateway" } else { "converter" };
        let r = store.get(kind, ns, name).await.unwrap();
        store.touch(&r).await.unwrap();
    }
    eventually(Duration::from_secs(30), "drift corrected", || {
        let cloud = cloud.clone();
        let (svc, td, ns) = (svc.clone(), td.clone(), ns.to_string());
        async move {
            let s = cloud.service("prod", &svc).unwrap();
            let q = cloud.queue_attributes(&format!("{ns}_converter")).unwrap();
            s.desired_count == 6 && s.task_definition == td && q["VisibilityTimeout"] == "60"
        }
    })
    .await;
    assert!(cloud.call_count(&ops::UPDATE_SERVICE) > updates_before);
    let events = store.events(Kind::Relay, ns, "gateway", 100).await.unwrap();
    let drift: Vec<_> = events.iter().filter(|e| e.reason == "DriftCorrected").map(|e| e.message.clone()).collect();
    assert!(drift.iter().any(|m| m.contains("desired count 40")), "{drift:?}");
    let events = store.events(Kind::Worker, ns, "converter", 100).await.unwrap();
    assert!(events.iter().any(|e| e.reason == "DriftCorrected" && e.message.contains("VisibilityTimeout")));
    replica.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn a_failed_rollout_is_degraded_and_not_pushed_again(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = sim(seed(), FaultMix::none());
    let replica = start(&store, &prefix, &cloud);
    let ns = "rollout";
    apply(&store, relay(ns, "gateway", "ghcr.io/acme/api:1.0", false)).await;
    converge(&store, ns, Duration::from_secs(30)).await;
    let svc = format!("{ns}_gateway");
    let v1 = cloud.service("prod", &svc).unwrap().task_definition;

    apply(&store, relay(ns, "gateway", "ghcr.io/acme/api:fail-2.0", false)).await;
    eventually(Duration::from_secs(30), "Degraded after the circuit breaker", || {
        let store = store.clone();
        async move {
            let r = store.get(Kind::Relay, ns, "gateway").await.unwrap();
            condition(&r.status, "Degraded")
                .is_some_and(|(s, reason, g)| s == "True" && reason == "RolloutFailed" && g == 2)
        }
    })
    .await;
    // ECS rolled back to v1; Mooring does not push the failing revision again.
    let s = cloud.service("prod", &svc).unwrap();
    assert_eq!(s.task_definition, v1);
    let updates = cloud.call_count(&ops::UPDATE_SERVICE);
    let r = store.get(Kind::Relay, ns, "gateway").await.unwrap();
    store.touch(&r).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cloud.call_count(&ops::UPDATE_SERVICE), updates, "the failed revision was pushed again");
    let r = store.get(Kind::Relay, ns, "gateway").await.unwrap();
    assert!(r.status["failedTaskDefinitionArn"].is_string(), "{}", r.status);
    // A fixed image rolls out and clears Degraded.
    apply(&store, relay(ns, "gateway", "ghcr.io/acme/api:2.1", false)).await;
    eventually(Duration::from_secs(30), "v2.1 ready, not degraded", || {
        let store = store.clone();
        async move {
            let r = store.get(Kind::Relay, ns, "gateway").await.unwrap();
            unready(&store, ns).await.is_empty()
                && condition(&r.status, "Degraded").is_some_and(|(s, _, g)| s == "False" && g == 3)
        }
    })
    .await;
    replica.shutdown().await;
}

async fn status_of(store: &Store, kind: Kind, ns: &str, name: &str) -> Value {
    store.get(kind, ns, name).await.map(|r| r.status).unwrap_or_default()
}

async fn reasons(store: &Store, kind: Kind, ns: &str, name: &str) -> Vec<String> {
    store.events(kind, ns, name, 100).await.unwrap().into_iter().map(|e| e.reason).collect()
}

#[sqlx::test(migrations = false)]
async fn a_cluster_change_moves_the_service_at_its_current_count(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = sim(seed(), FaultMix::none());
    let replica = start(&store, &prefix, &cloud);
    let ns = "move";
    let svc = format!("{ns}_gateway");
    apply(&store, relay(ns, "gateway", "ghcr.io/acme/api:1.0", false)).await;
    converge(&store, ns, Duration::from_secs(30)).await;
    // The autoscaler's count (within [2, 6]) moves with the service.
    assert!(cloud.set_desired_count("prod", &svc, 4));
    let mut moved = relay(ns, "gateway", "ghcr.io/acme/api:1.0", false);
    moved["spec"]["cluster"] = json!("batch");
    apply(&store, moved).await;
    eventually(Duration::from_secs(30), "moved to batch, the old service gone", || {
        let (store, cloud, svc) = (store.clone(), cloud.clone(), svc.clone());
        async move {
            let s = status_of(&store, Kind::Relay, ns, "gateway").await;
            s["service"]["cluster"] == "batch"
                && s.get("retiringServices").is_none()
                && unready(&store, ns).await.is_empty()
                && cloud.service("prod", &svc).is_none_or(|s| s.state != runners::cloud::ecs::ServiceState::Active)
        }
    })
    .await;
    let live: Vec<_> = cloud.services().into_iter().filter(|s| s.name == svc).collect();
    assert_eq!(live.len(), 1, "exactly one service: {live:?}");
    assert_eq!((live[0].cluster.as_str(), live[0].desired_count), ("batch", 4), "started at the old count");
    assert_eq!(cloud.services_created("batch", &svc), 1);
    let s = status_of(&store, Kind::Relay, ns, "gateway").await;
    assert_eq!(s["service"]["arn"], live[0].arn.as_str(), "{s}");
    let reasons = reasons(&store, Kind::Relay, ns, "gateway").await;
    assert!(
        reasons.iter().any(|r| r == "ServiceMigrating") && reasons.iter().any(|r| r == "ServiceRetired"),
        "{reasons:?}"
    );
    replica.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn cache_changes_are_applied_and_a_removed_cache_is_deleted(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = sim(seed(), FaultMix::none());
    let replica = start(&store, &prefix, &cloud);
    let ns = "cache";
    apply(&store, relay(ns, "gateway", "ghcr.io/acme/api:1.0", true)).await;
    converge(&store, ns, Duration::from_secs(30)).await;
    let uid = store.get(Kind::Relay, ns, "gateway").await.unwrap().uid.to_string();
    let id = runners::names::cache_id("gateway", &uid);
    let group = |cloud: &SimCloud| cloud.replication_groups().into_iter().find(|g| g.id == id);
    assert_eq!(group(&cloud).map(|g| (g.node_type, g.members)), Some((Some("cache.t4g.micro".into()), 1)));

    // A bigger node and a read replica: applied, not ignored.
    let mut changed = relay(ns, "gateway", "ghcr.io/acme/api:1.0", true);
    changed["spec"]["cache"] = json!({"nodeType": "cache.t4g.small", "replicas": 1});
    apply(&store, changed.clone()).await;
    eventually(Duration::from_secs(30), "the cache changed and the relay settled", || {
        let (store, cloud, id) = (store.clone(), cloud.clone(), id.clone());
        async move {
            let g = cloud.replication_groups().into_iter().find(|g| g.id == id);
            g.is_some_and(|g| g.node_type.as_deref() == Some("cache.t4g.small") && g.members == 2 && g.available())
                && unready(&store, ns).await.is_empty()
        }
    })
    .await;
    assert!(reasons(&store, Kind::Relay, ns, "gateway").await.iter().any(|r| r == "CacheModified"));

    // The cache removed from the spec: the replication group is deleted.
    let mut removed = changed;
    removed["spec"].as_object_mut().unwrap().remove("cache");
    apply(&store, removed).await;
    eventually(Duration::from_secs(30), "the cache deleted", || {
        let (store, cloud) = (store.clone(), cloud.clone());
        let gone = group(&cloud).is_none();
        async move { gone && status_of(&store, Kind::Relay, ns, "gateway").await.get("cache").is_none() }
    })
    .await;
    assert!(reasons(&store, Kind::Relay, ns, "gateway").await.iter().any(|r| r == "CacheDeleted"));
    replica.shutdown().await;
}

/// A cache dropped from the spec right after it was created, while every
/// read answers from before the create: the describe that finds no group is
/// not believed, so the group is deleted once it shows up rather than left
/// behind unrecorded (found by the simulation sweep, seed 16).
#[sqlx::test(migrations = false)]
async fn a_cache_dropped_before_reads_show_it_is_still_deleted(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = SimCloud::new(SimConfig {
        faults: FaultMix { stale_read: 1.0, ..FaultMix::none() },
        consistency_window: Duration::from_millis(500),
        ..sim(seed(), FaultMix::none()).config().clone()
    });
    let replica = start(&store, &prefix, &cloud);
    let ns = "stale-cache";
    apply(&store, relay(ns, "gateway", "ghcr.io/acme/api:1.0", true)).await;
    eventually(Duration::from_secs(30), "the cache created", || {
        let cloud = cloud.clone();
        async move { !cloud.replication_groups().is_empty() }
    })
    .await;
    apply(&store, relay(ns, "gateway", "ghcr.io/acme/api:1.0", false)).await;
    eventually(Duration::from_secs(60), "the dropped cache deleted and forgotten", || {
        let (store, cloud) = (store.clone(), cloud.clone());
        async move {
            cloud.replication_groups().is_empty()
                && status_of(&store, Kind::Relay, ns, "gateway").await.get("cache").is_none()
        }
    })
    .await;
    replica.shutdown().await;
}

/// A cache ElastiCache fails to create is deleted and created again (the
/// relay Degraded meanwhile), and one that keeps failing goes with its relay.
#[sqlx::test(migrations = false)]
async fn a_cache_that_failed_to_create_is_replaced_and_goes_with_its_relay(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = sim(seed(), FaultMix::none());
    cloud.fail_cache_creations(1);
    let replica = start(&store, &prefix, &cloud);
    let ns = "failed-cache";
    let degraded = |name: &'static str| {
        let store = store.clone();
        async move {
            let s = status_of(&store, Kind::Relay, ns, name).await;
            common::sim::condition(&s, "Degraded").is_some_and(|(status, reason, _)| {
                status == "True" && reason == api_types::condition::reason::CACHE_CREATE_FAILED
            })
        }
    };
    apply(&store, relay(ns, "gateway", "ghcr.io/acme/api:1.0", true)).await;
    eventually(Duration::from_secs(30), "Degraded: the cache failed to create", || degraded("gateway")).await;
    converge(&store, ns, Duration::from_secs(60)).await;
    let groups = cloud.replication_groups();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0].status, "available");
    let seen = reasons(&store, Kind::Relay, ns, "gateway").await;
    let events = store.events(Kind::Relay, ns, "gateway", 100).await.unwrap();
    let created: i32 = events.iter().filter(|e| e.reason == "CacheCreated").map(|e| e.count).sum();
    assert_eq!(created, 2, "created, failed, created again: {seen:?}");
    assert!(seen.iter().any(|r| r == "CacheCreateFailed"), "{seen:?}");
    assert!(!seen.iter().any(|r| r == "DriftDetected"), "its own deletion is no drift: {seen:?}");

    // A cache that keeps failing is created MAX_CACHE_CREATIONS times, then
    // no more until its settings change.
    cloud.fail_cache_creations(u32::MAX);
    apply(&store, relay(ns, "edge", "ghcr.io/acme/api:1.0", true)).await;
    let max = runners::workload::MAX_CACHE_CREATIONS;
    eventually(Duration::from_secs(60), "the cache's creations given up", || {
        let store = store.clone();
        async move {
            let s = status_of(&store, Kind::Relay, ns, "edge").await;
            s["cache"]["failedCreations"]["count"] == max
                && common::sim::condition(&s, "Synced").is_some_and(|(status, reason, _)| {
                    status == "False" && reason == api_types::condition::reason::CACHE_CREATE_FAILED
                })
        }
    })
    .await;
    assert!(degraded("edge").await);
    let events = store.events(Kind::Relay, ns, "edge", 100).await.unwrap();
    let created: i32 = events.iter().filter(|e| e.reason == "CacheCreated").map(|e| e.count).sum();
    assert_eq!(created, max as i32, "{events:?}");
    let id = status_of(&store, Kind::Relay, ns, "edge").await["cache"]["id"].as_str().unwrap().to_string();
    assert!(cloud.replication_groups().iter().all(|g| g.id != id), "the failed groups are deleted");

    // New settings: created again, and available once ElastiCache can.
    cloud.fail_cache_creations(0);
    let mut edge = relay(ns, "edge", "ghcr.io/acme/api:1.0", true);
    edge["spec"]["cache"]["nodeType"] = json!("cache.t4g.small");
    apply(&store, edge).await;
    eventually(Duration::from_secs(60), "the cache available with new settings", || {
        let store = store.clone();
        async move {
            let s = status_of(&store, Kind::Relay, ns, "edge").await;
            s["cache"]["endpoint"].is_string() && s["cache"]["failedCreations"].is_null()
        }
    })
    .await;

    // The relay is deleted: nothing of it is left.
    store.request_delete(Kind::Relay, ns, "edge").await.unwrap();
    eventually(Duration::from_secs(60), "the relay and its cache gone", || {
        let (store, cloud, id) = (store.clone(), cloud.clone(), id.clone());
        async move {
            store.get(Kind::Relay, ns, "edge").await.is_err() && cloud.replication_groups().iter().all(|g| g.id != id)
        }
    })
    .await;
    replica.shutdown().await;
}

/// A creation that fails after the spec changed counts against the settings
/// it asked for: the new settings still get every creation.
#[sqlx::test(migrations = false)]
async fn a_failed_creation_counts_against_its_own_settings_not_a_changed_spec(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    // Slow enough that the spec changes while ElastiCache is still creating.
    let cloud = SimCloud::new(SimConfig {
        seed: seed(),
        latency: (Duration::ZERO, Duration::from_millis(1)),
        task_start_delay: Duration::from_millis(30),
        cache_create_delay: Duration::from_millis(1500),
        clusters: vec!["prod".into()],
        ..Default::default()
    });
    cloud.fail_cache_creations(u32::MAX);
    let replica = start(&store, &prefix, &cloud);
    let ns = "changed-cache";
    apply(&store, relay(ns, "gateway", "ghcr.io/acme/api:1.0", true)).await;
    eventually(Duration::from_secs(30), "the first creation asked for", || async {
        status_of(&store, Kind::Relay, ns, "gateway").await["cache"]["arn"].is_string()
    })
    .await;
    let first = status_of(&store, Kind::Relay, ns, "gateway").await["cache"]["createdWith"].clone();
    let mut changed = relay(ns, "gateway", "ghcr.io/acme/api:1.0", true);
    changed["spec"]["cache"]["nodeType"] = json!("cache.t4g.small");
    apply(&store, changed).await;
    assert!(
        cloud.replication_groups().iter().all(|g| g.status == "creating"),
        "the first creation ended before the spec changed: {:?}",
        cloud.replication_groups()
    );
    let max = runners::workload::MAX_CACHE_CREATIONS;
    eventually(Duration::from_secs(90), "the new settings' creations given up", || async {
        let s = status_of(&store, Kind::Relay, ns, "gateway").await;
        s["cache"]["failedCreations"]["count"] == max
    })
    .await;
    let s = status_of(&store, Kind::Relay, ns, "gateway").await;
    let settings = s["cache"]["failedCreations"]["settings"].as_str().unwrap();
    assert!(settings.starts_with("cache.t4g.small "), "{s:#}");
    assert_ne!(first, s["cache"]["createdWith"], "{s:#}");
    let events = store.events(Kind::Relay, ns, "gateway", 100).await.unwrap();
    let created: i32 = events.iter().filter(|e| e.reason == "CacheCreated").map(|e| e.count).sum();
    assert_eq!(created, max as i32 + 1, "one creation of the old settings, then {max} of the new: {events:?}");
    replica.shutdown().await;
}

/// A settled worker reads its queue on every reconcile (the backlog) and its
/// dead-letter queue only when the spec changed or the last read is older
/// than the observation max age (60 s here, longer than the test).
#[sqlx::test(migrations = false)]
async fn a_settled_worker_reads_its_dead_letter_queue_only_when_due(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = sim(seed(), FaultMix::none());
    let replica = start(&store, &prefix, &cloud);
    let ns = "dlq";
    apply(&store, worker(ns, "converter", "ghcr.io/acme/convert:1.0")).await;
    converge(&store, ns, Duration::from_secs(30)).await;
    let s = status_of(&store, Kind::Worker, ns, "converter").await;
    let queue = s["queue"]["url"].as_str().unwrap().to_string();
    let dlq = s["deadLetterQueue"]["url"].as_str().unwrap().to_string();
    let op = &runners::cloud::ops::GET_QUEUE_ATTRIBUTES;
    let dlq_reads = cloud.calls_on(op, &dlq);
    for i in 0..5 {
        let before = cloud.calls_on(op, &queue);
        // A label change: a reconcile, not an AWS event (which reads everything afresh).
        let mut labelled = worker(ns, "converter", "ghcr.io/acme/convert:1.0");
        labelled["metadata"]["labels"] = json!({"pass": i.to_string()});
        apply(&store, labelled).await;
        eventually(Duration::from_secs(30), "another reconcile read the queue", || async {
            cloud.calls_on(op, &queue) > before
        })
        .await;
    }
    assert_eq!(cloud.calls_on(op, &dlq), dlq_reads, "the dead-letter queue was read again while nothing changed");
    // A new generation reads it again.
    let mut changed = worker(ns, "converter", "ghcr.io/acme/convert:1.0");
    changed["spec"]["queue"]["visibilityTimeoutSeconds"] = json!(90);
    apply(&store, changed).await;
    eventually(Duration::from_secs(30), "the dead-letter queue is read for generation 2", || async {
        cloud.calls_on(op, &dlq) > dlq_reads
    })
    .await;
    replica.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn an_untagged_queue_is_a_conflict_until_adopted(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = sim(seed(), FaultMix::none());
    let replica = start(&store, &prefix, &cloud);
    let ns = "adopt";
    let queue = format!("{ns}_converter");
    let attrs = [("VisibilityTimeout".to_string(), "17".to_string())].into();
    cloud.create_queue_out_of_band(&queue, &attrs).unwrap();
    apply(&store, worker(ns, "converter", "ghcr.io/acme/convert:1.0")).await;
    eventually(Duration::from_secs(30), "Synced=False, Conflict", || {
        let store = store.clone();
        async move {
            let s = status_of(&store, Kind::Worker, ns, "converter").await;
            condition(&s, "Synced").is_some_and(|(st, reason, _)| st == "False" && reason == "Conflict")
        }
    })
    .await;
    let s = status_of(&store, Kind::Worker, ns, "converter").await;
    let message =
        s["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Synced").unwrap()["message"].clone();
    assert!(
        message.as_str().unwrap().contains(&queue) && message.as_str().unwrap().contains("mooring/adopt"),
        "{message}"
    );
    // Nothing was touched: attributes and tags are as their owner left them.
    assert_eq!(cloud.queue_attributes(&queue).unwrap()["VisibilityTimeout"], "17");
    assert!(cloud.queue_tags(&queue).unwrap().is_empty());
    assert!(cloud.services().iter().all(|s| !s.name.starts_with(ns)), "no service before the queue is settled");

    // Adopted on request: tagged, corrected, recorded as an event.
    let mut adopting = worker(ns, "converter", "ghcr.io/acme/convert:1.0");
    adopting["metadata"]["annotations"] = json!({"mooring/adopt": "true"});
    apply(&store, adopting).await;
    converge(&store, ns, Duration::from_secs(30)).await;
    let uid = store.get(Kind::Worker, ns, "converter").await.unwrap().uid.to_string();
    assert_eq!(cloud.queue_tags(&queue).unwrap().get("mooring:uid"), Some(&uid));
    assert_eq!(cloud.queue_attributes(&queue).unwrap()["VisibilityTimeout"], "60");
    let events = store.events(Kind::Worker, ns, "converter", 100).await.unwrap();
    assert!(events.iter().any(|e| e.reason == "Adopted" && e.message.contains(&queue)), "{events:?}");
    replica.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn user_tags_go_on_everything_and_follow_the_spec(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = sim(seed(), FaultMix::none());
    let replica = start(&store, &prefix, &cloud);
    let ns = "tags";
    let with = |tags: Value| {
        let mut r = relay(ns, "gateway", "ghcr.io/acme/api:1.0", true);
        r["spec"]["tags"] = tags.clone();
        let mut w = worker(ns, "converter", "ghcr.io/acme/convert:1.0");
        w["spec"]["tags"] = tags;
        (r, w)
    };
    let (r, w) = with(json!({"team": "payments", "cost-center": "42"}));
    apply(&store, r).await;
    apply(&store, w).await;
    converge(&store, ns, Duration::from_secs(30)).await;
    let uid = store.get(Kind::Relay, ns, "gateway").await.unwrap().uid.to_string();
    let cache = runners::names::cache_id("gateway", &uid);
    let service_tags = |cluster: &str, name: &str| cloud.service(cluster, name).map(|s| s.tags).unwrap_or_default();
    let team = |t: &std::collections::BTreeMap<String, String>| t.get("team").cloned();
    assert_eq!(team(&service_tags("prod", &format!("{ns}_gateway"))).as_deref(), Some("payments"));
    assert_eq!(team(&cloud.queue_tags(&format!("{ns}_converter")).unwrap()).as_deref(), Some("payments"));
    assert_eq!(team(&cloud.queue_tags(&format!("{ns}_converter-dlq")).unwrap()).as_deref(), Some("payments"));
    assert_eq!(team(&cloud.replication_group_tags(&cache).unwrap()).as_deref(), Some("payments"));

    // A new value and a removed tag follow on every existing resource; Mooring's own stay.
    let (r, w) = with(json!({"team": "billing"}));
    apply(&store, r).await;
    apply(&store, w).await;
    eventually(Duration::from_secs(30), "tags updated everywhere", || {
        let cloud = cloud.clone();
        let (ns, cache) = (ns.to_string(), cache.clone());
        async move {
            let all = [
                cloud.service("prod", &format!("{ns}_gateway")).map(|s| s.tags).unwrap_or_default(),
                cloud.service("batch", &format!("{ns}_converter")).map(|s| s.tags).unwrap_or_default(),
                cloud.queue_tags(&format!("{ns}_converter")).unwrap_or_default(),
                cloud.queue_tags(&format!("{ns}_converter-dlq")).unwrap_or_default(),
                cloud.replication_group_tags(&cache).unwrap_or_default(),
            ];
            all.iter().all(|t| {
                t.get("team").map(String::as_str) == Some("billing")
                    && !t.contains_key("cost-center")
                    && t.contains_key("mooring:uid")
            })
        }
    })
    .await;
    replica.shutdown().await;
}

/// A replica that decides scaling every 100 ms.
fn start_scaling(store: &Store, prefix: &str, cloud: &SimCloud) -> Replica {
    let scale = runners::autoscale::ScaleConfig { interval: Duration::from_millis(100), ..Default::default() };
    start_workloads(store, prefix, cloud, WorkloadConfig { scale, ..Default::default() }, Options::default())
}

fn scaling_worker(ns: &str, image: &str, min: u32, idle_seconds: u32) -> Value {
    let mut w = worker(ns, "converter", image);
    w["spec"]["scaling"] =
        json!({"min": min, "max": 10, "queueDepthTarget": 10, "scaleInAfterIdleSeconds": idle_seconds});
    w
}

/// Waits until the stored status of a resource satisfies `want`; returns it.
async fn status_when(
    store: &Store,
    kind: Kind,
    ns: &str,
    name: &str,
    what: &str,
    want: impl Fn(&Value) -> bool,
) -> Value {
    eventually(Duration::from_secs(30), what, || {
        let store = store.clone();
        let name = name.to_string();
        let want = &want;
        async move { want(&status_of(&store, kind, ns, &name).await) }
    })
    .await;
    status_of(store, kind, ns, name).await
}

async fn desired_when(cloud: &SimCloud, cluster: &str, svc: &str, what: &str, want: impl Fn(u32) -> bool) {
    eventually(Duration::from_secs(30), what, || {
        let s = cloud.service(cluster, svc).map(|s| s.desired_count);
        let ok = s.is_some_and(&want);
        async move { ok }
    })
    .await;
}

#[sqlx::test(migrations = false)]
async fn a_worker_follows_its_backlog_out_and_back_in_after_the_idle_window(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = sim(seed(), FaultMix::none());
    let replica = start_scaling(&store, &prefix, &cloud);
    let ns = "backlog";
    let (svc, queue) = (format!("{ns}_converter"), format!("{ns}_converter"));
    cloud.set_service_load("batch", &svc, 0.0);
    apply(&store, scaling_worker(ns, "ghcr.io/acme/convert:1.0", 1, 2)).await;
    converge(&store, ns, Duration::from_secs(30)).await;
    // 2.4 × the backlog one replica may carry: three replicas, at once.
    assert!(cloud.set_queue_attribute(&queue, "ApproximateNumberOfMessages", "20"));
    assert!(cloud.set_queue_attribute(&queue, "ApproximateNumberOfMessagesNotVisible", "4"));
    desired_when(&cloud, "batch", &svc, "scaled out to 3", |n| n == 3).await;
    let s = status_when(&store, Kind::Worker, ns, "converter", "status says 3", |s| s["lastScaling"]["to"] == 3).await;
    assert_eq!((s["lastScaling"]["from"].as_u64(), s["lastScaling"]["to"].as_u64()), (Some(1), Some(3)), "{s:#}");
    assert_eq!(s["lastScaling"]["inputs"]["backlog"], 24.0, "in-flight messages count: {s:#}");
    assert!(reasons(&store, Kind::Worker, ns, "converter").await.iter().any(|r| r == "ScaledOut"));
    // A spec update leaves the count alone.
    apply(&store, scaling_worker(ns, "ghcr.io/acme/convert:1.1", 1, 2)).await;
    eventually(Duration::from_secs(30), "the new image rolled out", || {
        let store = store.clone();
        async move { unready(&store, ns).await.is_empty() }
    })
    .await;
    assert_eq!(cloud.service("batch", &svc).unwrap().desired_count, 3, "the spec update reset the count");
    // Drained: back to the minimum once the window (2 s here) had only lower proposals.
    assert!(cloud.set_queue_attribute(&queue, "ApproximateNumberOfMessages", "0"));
    assert!(cloud.set_queue_attribute(&queue, "ApproximateNumberOfMessagesNotVisible", "0"));
    desired_when(&cloud, "batch", &svc, "scaled back in to 1", |n| n == 1).await;
    let s = status_when(&store, Kind::Worker, ns, "converter", "status says 1", |s| s["lastScaling"]["to"] == 1).await;
    assert_eq!(s["lastScaling"]["reason"], "ScaleInAfterIdle", "{s:#}");
    replica.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn protected_tasks_outlive_a_scale_in_and_status_reports_them(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = sim(seed(), FaultMix::none());
    let replica = start_scaling(&store, &prefix, &cloud);
    let ns = "protect";
    let (svc, queue) = (format!("{ns}_converter"), format!("{ns}_converter"));
    apply(&store, scaling_worker(ns, "ghcr.io/acme/convert:1.0", 1, 1)).await;
    converge(&store, ns, Duration::from_secs(30)).await;
    assert!(cloud.set_queue_attribute(&queue, "ApproximateNumberOfMessages", "30"));
    desired_when(&cloud, "batch", &svc, "scaled out to 3", |n| n == 3).await;
    eventually(Duration::from_secs(30), "three tasks running", || {
        let running = cloud.service("batch", &svc).map(|s| s.running_count);
        async move { running == Some(3) }
    })
    .await;
    // Two tasks are busy with a message and protect themselves; the queue drains.
    cloud.protect_tasks("batch", &svc, 2);
    assert!(cloud.set_queue_attribute(&queue, "ApproximateNumberOfMessages", "0"));
    desired_when(&cloud, "batch", &svc, "scaled in to 1", |n| n == 1).await;
    eventually(Duration::from_secs(30), "status reports the protected tasks", || {
        let store = store.clone();
        async move {
            // ECS stops the unprotected task (after a moment) and keeps the two protected ones.
            let s = status_of(&store, Kind::Worker, ns, "converter").await;
            s["replicas"]["protected"] == 2 && s["replicas"]["running"] == 2
        }
    })
    .await;
    let status = status_of(&store, Kind::Worker, ns, "converter").await;
    assert_eq!(
        (status["replicas"]["desired"].as_u64(), status["replicas"]["running"].as_u64()),
        (Some(1), Some(2)),
        "{status:#}"
    );
    let r = store.get(Kind::Worker, ns, "converter").await.unwrap();
    let (ready, _, _) = condition(&r.status, "Ready").expect("Ready");
    assert_eq!(ready, "True", "protected tasks finishing their work are not a fault: {status:#}");
    // Done with their messages: ECS stops them and status says so.
    cloud.protect_tasks("batch", &svc, 0);
    eventually(Duration::from_secs(30), "the protected tasks stopped", || {
        let store = store.clone();
        async move {
            let s = status_of(&store, Kind::Worker, ns, "converter").await;
            s["replicas"]["running"] == 1 && s["replicas"].get("protected").is_none()
        }
    })
    .await;
    replica.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn aws_native_scaling_is_rendered_kept_and_removed(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = sim(seed(), FaultMix::none());
    let replica = start_scaling(&store, &prefix, &cloud);
    let ns = "native";
    let id = format!("service/batch/{ns}_converter");
    let mut w = scaling_worker(ns, "ghcr.io/acme/convert:1.0", 1, 600);
    w["spec"]["scaling"]["mode"] = json!("aws-native");
    apply(&store, w.clone()).await;
    converge(&store, ns, Duration::from_secs(30)).await;
    let uid = store.get(Kind::Worker, ns, "converter").await.unwrap().uid.to_string();
    let registered = || cloud.scalable_target(&id);
    eventually(Duration::from_secs(30), "the target and its policy", || {
        let found = registered().is_some_and(|(_, _, p)| p.len() == 1);
        async move { found }
    })
    .await;
    let (target, tags, policies) = registered().unwrap();
    assert_eq!((target.min, target.max), (1, 10));
    assert_eq!(tags.get("mooring:uid"), Some(&uid), "{tags:?}");
    let p = &policies[0];
    assert_eq!((p.name.as_str(), p.target, p.scale_in_cooldown), ("mooring-backlog", 10.0, 600), "{p:?}");
    assert_eq!(status_of(&store, Kind::Worker, ns, "converter").await["scalableTarget"], id.as_str());
    // The controller does not scale it: a backlog leaves the count to AWS.
    assert!(cloud.set_queue_attribute(&format!("{ns}_converter"), "ApproximateNumberOfMessages", "100"));

    // New bounds and a CPU target: the target is updated, a second policy put.
    w["spec"]["scaling"]["max"] = json!(8);
    w["spec"]["scaling"]["cpuTargetPercent"] = json!(60);
    apply(&store, w.clone()).await;
    eventually(Duration::from_secs(30), "bounds and the CPU policy", || {
        let found = registered().is_some_and(|(t, _, p)| t.max == 8 && p.len() == 2);
        async move { found }
    })
    .await;
    assert_eq!(
        cloud.service("batch", &format!("{ns}_converter")).unwrap().desired_count,
        1,
        "the controller scaled it"
    );
    assert!(reasons(&store, Kind::Worker, ns, "converter").await.iter().any(|r| r == "ScalableTargetRegistered"));

    // Back to the controller: the target and its policies go.
    w["spec"]["scaling"]["mode"] = json!("controller");
    apply(&store, w.clone()).await;
    eventually(Duration::from_secs(30), "the target deregistered", || {
        let gone = registered().is_none();
        async move { gone }
    })
    .await;
    eventually(Duration::from_secs(30), "status forgets the target", || {
        let store = store.clone();
        async move { status_of(&store, Kind::Worker, ns, "converter").await.get("scalableTarget").is_none() }
    })
    .await;

    // aws-native again, then deleted: nothing is left.
    w["spec"]["scaling"]["mode"] = json!("aws-native");
    apply(&store, w).await;
    eventually(Duration::from_secs(30), "registered again", || {
        let found = registered().is_some();
        async move { found }
    })
    .await;
    delete_all(&store, ns).await;
    eventually(Duration::from_secs(30), "deleted", || {
        let store = store.clone();
        async move { count(&store, ns).await == 0 }
    })
    .await;
    assert_clean(&cloud, ns);
    replica.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn a_worker_at_zero_wakes_at_the_first_message_and_returns_to_zero(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = sim(seed(), FaultMix::none());
    let replica = start_scaling(&store, &prefix, &cloud);
    let ns = "zero";
    let (svc, queue) = (format!("{ns}_converter"), format!("{ns}_converter"));
    cloud.set_service_load("batch", &svc, 0.0);
    apply(&store, scaling_worker(ns, "ghcr.io/acme/convert:1.0", 0, 1)).await;
    converge(&store, ns, Duration::from_secs(30)).await;
    assert_eq!(cloud.service("batch", &svc).unwrap().desired_count, 0);
    assert!(cloud.set_queue_attribute(&queue, "ApproximateNumberOfMessages", "1"));
    desired_when(&cloud, "batch", &svc, "woken by the first message", |n| n == 1).await;
    // The message is taken (in flight): still busy. Then done: back to zero after the window.
    assert!(cloud.set_queue_attribute(&queue, "ApproximateNumberOfMessages", "0"));
    assert!(cloud.set_queue_attribute(&queue, "ApproximateNumberOfMessagesNotVisible", "1"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(cloud.service("batch", &svc).unwrap().desired_count, 1, "scaled away while a message was in flight");
    assert!(cloud.set_queue_attribute(&queue, "ApproximateNumberOfMessagesNotVisible", "0"));
    desired_when(&cloud, "batch", &svc, "back to zero", |n| n == 0).await;
    replica.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn cpu_above_target_scales_a_relay_out_and_a_pause_pins_it(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = sim(seed(), FaultMix::none());
    let replica = start_scaling(&store, &prefix, &cloud);
    let ns = "cpu";
    let svc = format!("{ns}_gateway");
    // 140 % of one task's CPU over 2 tasks: 70 %, on target.
    cloud.set_service_load("prod", &svc, 140.0);
    apply(&store, relay(ns, "gateway", "ghcr.io/acme/api:1.0", false)).await;
    converge(&store, ns, Duration::from_secs(30)).await;
    // 85 % at 2 replicas (target 70): 3.
    cloud.set_service_load("prod", &svc, 170.0);
    desired_when(&cloud, "prod", &svc, "scaled out to 3", |n| n == 3).await;
    let s = status_when(&store, Kind::Relay, ns, "gateway", "status says 3", |s| s["lastScaling"]["to"] == 3).await;
    assert_eq!(s["lastScaling"]["inputs"]["cpuPercent"], 85.0, "{s:#}");
    // An incident: pinned at 5 whatever the metrics say.
    let mut pinned = relay(ns, "gateway", "ghcr.io/acme/api:1.0", false);
    pinned["metadata"]["annotations"] = json!({"mooring/scaling-paused": "5"});
    apply(&store, pinned).await;
    desired_when(&cloud, "prod", &svc, "pinned at 5", |n| n == 5).await;
    cloud.set_service_load("prod", &svc, 900.0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(cloud.service("prod", &svc).unwrap().desired_count, 5, "a pinned count moved");
    replica.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn a_change_to_an_existing_worker_goes_ahead_of_two_thousand_creates(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = sim(seed(), FaultMix::none());
    // AWS's buckets, Mooring's default half of them, and a worker never held
    // longer than a second for a token.
    let opts = Options {
        budgets: controller::budget::Budgets::default(),
        budget_max_wait: Some(Duration::from_secs(1)),
        ..Default::default()
    };
    let replica = start_workloads(&store, &prefix, &cloud, WorkloadConfig::default(), opts);
    let ns = "fair";
    apply(&store, worker(ns, "existing", "ghcr.io/acme/convert:1.0")).await;
    converge(&store, ns, Duration::from_secs(30)).await;
    let bulk = "fair-bulk";
    for i in 0..2000 {
        apply(&store, worker(bulk, &format!("w{i:04}"), "ghcr.io/acme/convert:1.0")).await;
    }
    let changed = tokio::time::Instant::now();
    apply(&store, worker(ns, "existing", "ghcr.io/acme/convert:2.0")).await;
    // The change is applied while most creates still wait for their budget
    // (RegisterTaskDefinition: 10 at once, then one every two seconds).
    eventually(Duration::from_secs(60), "the existing worker's change applied", || {
        let store = store.clone();
        async move {
            let r = store.get(Kind::Worker, ns, "existing").await.unwrap();
            condition(&r.status, "Synced").is_some_and(|(s, _, g)| s == "True" && g == 2)
        }
    })
    .await;
    let created = cloud.services().iter().filter(|s| s.name.starts_with(bulk)).count();
    eprintln!(
        "the change was applied {:.1} s after it was written, when {created} of the 2000 new services were created",
        changed.elapsed().as_secs_f64()
    );
    assert!(created < 200, "{created} of 2000 creates went first");
    // The creates still run, at the budget's rate.
    let since = tokio::time::Instant::now();
    eventually(Duration::from_secs(60), "creates carry on", || {
        let cloud = cloud.clone();
        async move { cloud.services().iter().filter(|s| s.name.starts_with(bulk)).count() > created + 5 }
    })
    .await;
    let now = cloud.services().iter().filter(|s| s.name.starts_with(bulk)).count();
    eprintln!(
        "then {} more in {:.1} s ({:.2}/s; RegisterTaskDefinition's budget refills 0.5/s)",
        now - created,
        since.elapsed().as_secs_f64(),
        (now - created) as f64 / since.elapsed().as_secs_f64()
    );
    replica.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn a_spot_worker_runs_on_spot_and_its_on_demand_base_follows_the_spec(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = sim(seed(), FaultMix::none());
    let replica = start(&store, &prefix, &cloud);
    let ns = "spot";
    let spot = |base: u32| {
        let mut w = worker(ns, "converter", "ghcr.io/acme/convert:1.0");
        w["spec"]["capacity"] = json!("FARGATE_SPOT");
        w["spec"]["onDemandBase"] = json!(base);
        w
    };
    apply(&store, spot(1)).await;
    converge(&store, ns, Duration::from_secs(30)).await;
    let svc = format!("{ns}_converter");
    let s = cloud.service("batch", &svc).unwrap();
    assert_eq!(s.spot.map(|c| c.on_demand_base), Some(1), "{s:?}");
    let updates = cloud.call_count(&ops::UPDATE_SERVICE);
    apply(&store, spot(2)).await;
    eventually(Duration::from_secs(30), "the new base applied", || {
        let cloud = cloud.clone();
        let svc = svc.clone();
        async move { cloud.service("batch", &svc).unwrap().spot.map(|c| c.on_demand_base) == Some(2) }
    })
    .await;
    assert_eq!(cloud.call_count(&ops::UPDATE_SERVICE), updates + 1, "one UpdateService for the base");
    replica.shutdown().await;
}
