//! AWS calls of a no-op resync: the real controller (Postgres, Redis leases
//! and budgets, the Relay reconciler) over the simulated cloud. Counts, not
//! timings: once every observation is stale, one pass over 300 settled relays
//! in 3 clusters describes them in batches of ten and changes nothing. The
//! benchmark with 1,000 and 10,000 services is `examples/resync_calls.rs`.

mod common;

use std::time::Duration;

use api_types::{Kind, validate_document};
use common::*;
use desired_state::store::{ChangeSource, ListQuery, Store, WriteMode};
use runners::cloud::ops;
use runners::sim::{FaultMix, SimCloud, SimConfig};
use runners::workload::{WorkloadConfig, Workloads};
use serde_json::{Value, json};

const SERVICES: usize = 300;
const CLUSTERS: usize = 3;
/// How old an observation of a settled service may be; the pass starts once
/// every observation is older, as a resync (300 s) after the last one (60 s) would.
const OBSERVE_MAX_AGE: Duration = Duration::from_secs(5);

fn relay(i: usize) -> Value {
    json!({
        "apiVersion": "mooring/v1", "kind": "Relay",
        "metadata": {"name": format!("r{i:03}"), "namespace": "resync"},
        "spec": {
            "cluster": format!("c{}", i % CLUSTERS),
            "containers": [{"name": "api", "image": "ghcr.io/acme/api:1.0", "port": 8080}],
            // A fixed count: a scaling relay is looked at every scaling interval, which is not a resync.
            "scaling": {"min": 1, "max": 1}
        }
    })
}

fn start(store: &Store, prefix: &str, cloud: &SimCloud) -> Replica {
    let workloads = Workloads::new(
        cloud.cloud(),
        WorkloadConfig {
            region: "us-east-1".into(),
            poll_in_flight: Duration::from_millis(50),
            observe_max_age: OBSERVE_MAX_AGE,
            ..Default::default()
        },
    );
    let reconcilers = controller::workloads::reconcilers(Some(workloads), None, None);
    let opts = Options {
        lease: Duration::from_secs(5),
        renew: Duration::from_secs(1),
        resync: Duration::from_secs(3600),
        workers: 8,
        ..Default::default()
    };
    start_replica_with(store, prefix, "resync-replica", reconcilers, &opts)
}

fn is_true(status: &Value, type_: &str, generation: i64) -> bool {
    status["conditions"].as_array().is_some_and(|cs| {
        cs.iter().any(|c| c["type"] == type_ && c["status"] == "True" && c["observedGeneration"] == generation)
    })
}

async fn all_ready(store: &Store) -> bool {
    let page = store.list(&ListQuery { namespace: Some("resync".into()), limit: 1000, ..Default::default() }).await;
    let items = page.unwrap().items;
    items.len() == SERVICES
        && items.iter().all(|r| is_true(&r.status, "Synced", r.generation) && is_true(&r.status, "Ready", r.generation))
}

fn idle(replica: &Replica) -> bool {
    let q = replica.controller.queue(Kind::Relay);
    q.is_empty() && q.delayed_len() == 0 && q.processing_len() == 0
}

#[sqlx::test(migrations = false)]
async fn a_no_op_resync_describes_services_ten_at_a_time_and_changes_nothing(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = SimCloud::new(SimConfig {
        seed: 7,
        faults: FaultMix::none(),
        task_start_delay: Duration::from_millis(10),
        clusters: (0..CLUSTERS).map(|c| format!("c{c}")).collect(),
        ..Default::default()
    });
    let replica = start(&store, &prefix, &cloud);
    for chunk in (0..SERVICES).collect::<Vec<_>>().chunks(25) {
        let writes = chunk.iter().map(|&i| {
            let doc = validate_document(relay(i)).unwrap();
            let store = store.clone();
            async move { store.write(&doc, WriteMode::Create, &ChangeSource::api("test")).await.unwrap() }
        });
        futures::future::join_all(writes).await;
    }
    eventually(Duration::from_secs(60), "every relay Synced and Ready", || {
        let store = store.clone();
        async move { all_ready(&store).await }
    })
    .await;
    eventually(Duration::from_secs(10), "the controller idle", || std::future::ready(idle(&replica))).await;
    assert_eq!(cloud.services().len(), SERVICES);
    tokio::time::sleep(OBSERVE_MAX_AGE + Duration::from_millis(500)).await;

    cloud.reset_calls();
    let base = replica.metrics.reconcile_count("Relay", "success");
    let errors = replica.metrics.reconcile_count("Relay", "error");
    replica.controller.resync_now().await;
    eventually(Duration::from_secs(60), "one reconcile per relay", || {
        let done = replica.metrics.reconcile_count("Relay", "success") >= base + SERVICES as u64;
        std::future::ready(done && idle(&replica))
    })
    .await;
    assert_eq!(replica.metrics.reconcile_count("Relay", "success"), base + SERVICES as u64);
    assert_eq!(replica.metrics.reconcile_count("Relay", "error"), errors);

    let calls = cloud.calls();
    let describes = cloud.call_count(&ops::DESCRIBE_SERVICES);
    // ⌈services / 10⌉ per cluster.
    let lower_bound: usize =
        (0..CLUSTERS).map(|c| (0..SERVICES).filter(|i| i % CLUSTERS == c).count().div_ceil(10)).sum();
    eprintln!("{describes} DescribeServices for {SERVICES} services (lower bound {lower_bound}); all calls {calls:?}");
    assert!(describes >= lower_bound as u64, "every service is looked at: {calls:?}");
    assert!(describes as f64 <= 1.1 * lower_bound as f64, "{describes} DescribeServices, lower bound {lower_bound}");
    let mutating: Vec<_> = ops::ALL.iter().filter(|op| op.mutating && cloud.call_count(op) > 0).collect();
    assert!(mutating.is_empty(), "a no-op resync mutated AWS: {calls:?}");
    assert_eq!(cloud.total_calls(), describes, "task definitions come from the cache: {calls:?}");
    replica.shutdown().await;
}
