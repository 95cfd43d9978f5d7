//! What the tests over the simulated cloud share: a replica running the ECS
//! reconcilers, writing documents as the API would, reading conditions, and
//! killing a replica the way a crash would.

use std::time::Duration;

use api_types::validate_document;
use desired_state::store::{ChangeSource, Store, WriteMode};
use runners::sim::SimCloud;
use runners::workload::{WorkloadConfig, Workloads};
use serde_json::Value;

use super::{Options, Replica, redis_url, start_replica_with};

/// The simulated cloud's seed: `MOORING_SIM_SEED`, else a random one,
/// printed so a failure replays exactly.
pub fn seed() -> u64 {
    let seed = std::env::var("MOORING_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    eprintln!("simulated cloud seed {seed} (replay with MOORING_SIM_SEED={seed})");
    seed
}

/// A replica running the relay and worker reconcilers over `cloud`, with the
/// workload settings and replica options a test needs (fast polls and a short
/// lease are always set).
pub fn start_workloads(
    store: &Store,
    prefix: &str,
    cloud: &SimCloud,
    config: WorkloadConfig,
    opts: Options,
) -> Replica {
    let config = WorkloadConfig {
        poll_in_flight: Duration::from_millis(40),
        observe_max_age: Duration::from_secs(60),
        // Well above the simulated clouds' consistency windows (at most 500 ms).
        absence_grace: Duration::from_secs(2),
        ..config
    };
    let reconcilers = controller::workloads::reconcilers(Some(Workloads::new(cloud.cloud(), config)), None, None);
    let opts = Options { lease: Duration::from_secs(2), renew: Duration::from_millis(500), workers: 8, ..opts };
    start_replica_with(store, prefix, "sim-replica", reconcilers, &opts)
}

/// Simulates the process dying: its tasks stop at once and its leases are
/// taken over as if they had expired.
pub async fn crash(replica: Replica, prefix: &str) {
    replica.crash();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut redis = redis::Client::open(redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}:lease:*")).query_async(&mut redis).await.unwrap();
    for k in keys {
        let _: () = redis::cmd("DEL").arg(k).query_async(&mut redis).await.unwrap();
    }
}

/// Validates and writes a document the way the API does.
pub async fn apply(store: &Store, doc: Value) {
    let doc = validate_document(doc).unwrap();
    store.write(&doc, WriteMode::Upsert, &ChangeSource::api("test")).await.unwrap();
}

/// A condition of a status as (status, reason, observedGeneration).
pub fn condition(status: &Value, type_: &str) -> Option<(String, String, i64)> {
    status["conditions"].as_array()?.iter().find(|c| c["type"] == type_).map(|c| {
        (
            c["status"].as_str().unwrap_or_default().to_string(),
            c["reason"].as_str().unwrap_or_default().to_string(),
            c["observedGeneration"].as_i64().unwrap_or_default(),
        )
    })
}
