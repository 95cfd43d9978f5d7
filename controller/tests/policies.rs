//! Policy documents share the store and the change feed with the workloads but
//! are never reconciled: no queue, no status, no finalizer to wait for.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use api_types::Kind;
use common::*;
use desired_state::store::{ChangeSource, WriteMode};
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrations = false)]
async fn policies_are_neither_queued_nor_given_conditions(pool: PgPool) {
    let store = store(pool).await;
    let probe = Arc::new(Probe::default());
    let replica = start_replica(&store, &prefix(), "r1", probe.clone(), &Options::default());
    let policy = api_types::validate_document(json!({
        "apiVersion": "mooring/v1", "kind": "Policy", "metadata": {"name": "guardrails"},
        "spec": {"guardrails": {"namespaces": {"team-a": {"roleArns": []}}}}
    }))
    .unwrap();
    store.write(&policy, WriteMode::Create, &ChangeSource::api("test")).await.unwrap();
    let relay = create(&store, "gw").await;
    // The relay written after the policy is reconciled, so the change feed has
    // delivered the policy's change too; a resync queues everything again.
    eventually(Duration::from_secs(20), "the relay is reconciled", || async {
        probe.last_seen.lock().await.contains_key("Relay/default/gw")
    })
    .await;
    replica.controller.resync_now().await;
    eventually(Duration::from_secs(20), "the resync reconciles the relay again", || async {
        probe.reconciles.load(Ordering::SeqCst) >= 2
    })
    .await;
    assert!(!probe.last_seen.lock().await.keys().any(|k| k.starts_with("Policy/")), "a policy was reconciled");
    let stored = store.get(Kind::Policy, "", "guardrails").await.unwrap();
    assert_eq!(stored.status, json!({}), "no condition (NoCloudBackend or other) on a policy");
    assert!(stored.finalizers.is_empty());
    assert!(store.get(Kind::Relay, "default", "gw").await.unwrap().finalizers.len() == relay.finalizers.len());
    // Deleting it removes it at once: no controller cleanup to wait for.
    assert!(store.request_delete(Kind::Policy, "", "guardrails").await.unwrap().is_none());
    replica.shutdown().await;
}
