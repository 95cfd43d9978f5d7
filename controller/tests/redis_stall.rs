//! A Redis that accepts connections and never answers (a network that drops
//! its packets): leases and AWS budgets fail closed within the operation
//! timeout, instead of hanging or acting without proof of ownership.

use std::sync::Arc;
use std::time::Duration;

use controller::budget::{Budgets, RedisGate};
use controller::lease::{LeaseConfig, ShardLeases};
use controller::metrics::AwsCallMetrics;
use desired_state::redis::{RedisHandle, RedisSettings};
use runners::gate::{ApiFamily, CallGate, GateError};

async fn silent_redis() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    url
}

#[tokio::test]
async fn leases_and_budgets_fail_closed_on_a_silent_redis() {
    let url = silent_redis().await;
    let settings = RedisSettings { op_timeout: Duration::from_millis(200), connect_timeout: Duration::from_secs(1) };
    let redis = Arc::new(RedisHandle::with_settings(&url, settings).unwrap());
    let gate = RedisGate::new(redis.clone(), "stall", Budgets::default(), Arc::new(AwsCallMetrics::unregistered()));
    let leases = ShardLeases::new(LeaseConfig { prefix: "stall".into(), ..Default::default() }, redis, "r1");

    // Bounded well below the connection timeout of a real outage: each answer
    // comes from the operation timeout, not from a hang.
    let outcome = tokio::time::timeout(Duration::from_secs(20), async {
        let budget = gate.acquire(ApiFamily::EcsServiceWrite).await;
        let lease_round = leases.tick().await;
        (budget, lease_round)
    })
    .await
    .expect("a stalled Redis made the controller hang");
    assert!(matches!(outcome.0, Err(GateError::BudgetUnavailable(_))), "an AWS call was allowed: {:?}", outcome.0);
    assert!(outcome.1.is_err(), "a lease round succeeded without Redis");
    assert_eq!(leases.owned().shards.len(), 0, "no shard is held");
}
