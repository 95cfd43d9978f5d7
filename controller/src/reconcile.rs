//! The reconcile contract every kind implements, modelled on Crossplane's
//! managed reconciler: observe AWS, diff against the spec, apply the smallest
//! idempotent change, and say what is true now (conditions, outputs) and when
//! to look again. Deletion is a separate `cleanup` that reports when AWS is clean,
//! so the finalizer is released only then.

use std::time::Duration;

use api_types::condition::{Condition, ConditionType};
use desired_state::store::{EventType, StoredResource};
use runners::gate::CallGate;
use serde_json::{Map, Value};

/// What a reconciler needs from the runtime.
pub struct Context<'a> {
    /// The fencing token of the shard lease this reconcile runs under.
    pub fence: i64,
    /// Every AWS call passes this first.
    pub gate: &'a dyn CallGate,
    /// Now, for conditions.
    pub now: chrono::DateTime<chrono::Utc>,
    /// An AWS event announced a change since the last reconcile: observe AWS
    /// afresh rather than trust a recent cached observation.
    pub fresh: bool,
}

/// The result of a successful reconcile.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Conditions to set (others keep their value).
    pub conditions: Vec<Condition>,
    /// Kind-specific status fields (`serviceArn`, `replicas`, ...), merged into status.
    pub outputs: Map<String, Value>,
    /// Events to record.
    pub events: Vec<(EventType, String, String)>,
    /// Look again after this long (something is in flight); `None` waits for a
    /// change or the periodic resync.
    pub requeue_after: Option<Duration>,
}

/// The result of a cleanup step.
#[derive(Debug, Clone)]
pub enum Cleanup {
    /// AWS is clean (or released under `Retain`): the finalizer may go.
    Done,
    /// Teardown in flight: look again after this long.
    Pending(Duration, String),
    /// Teardown in flight with status to record (a build's intent, say); looks
    /// again after the outcome's `requeue_after`.
    Progress(Outcome),
}

/// Why a reconcile failed; decides the `Synced` reason and whether to retry.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReconcileError {
    /// AWS refused or failed; retried with backoff.
    #[error("{0}")]
    ApplyFailed(String),
    /// AWS throttled us; retried with backoff.
    #[error("throttled: {0}")]
    Throttled(String),
    /// The spec points at something that does not exist (a cluster, a target
    /// group); retried with backoff, since someone may create it.
    #[error("invalid reference: {0}")]
    InvalidReference(String),
    /// No budget or no lease: nothing was changed; retried soon.
    #[error("not allowed to act now: {0}")]
    NotOwner(String),
    /// The AWS resource Mooring would manage exists but belongs to someone
    /// else (another resource's uid tag, or none); nothing is adopted silently.
    #[error("conflict: {0}")]
    Conflict(String),
}

impl ReconcileError {
    /// The `Synced=False` reason.
    pub fn reason(&self) -> &'static str {
        match self {
            ReconcileError::ApplyFailed(_) => "ApplyFailed",
            ReconcileError::Throttled(_) => "Throttled",
            ReconcileError::InvalidReference(_) => "InvalidReference",
            ReconcileError::NotOwner(_) => "NotOwner",
            ReconcileError::Conflict(_) => "Conflict",
        }
    }
}

/// A reconciler for one kind.
#[async_trait::async_trait]
pub trait Reconciler: Send + Sync {
    /// Observe → diff → apply → report.
    async fn reconcile(&self, ctx: &Context<'_>, resource: &StoredResource) -> Result<Outcome, ReconcileError>;
    /// Tear down (or release, under `Retain`) what the resource owns in AWS.
    async fn cleanup(&self, ctx: &Context<'_>, resource: &StoredResource) -> Result<Cleanup, ReconcileError>;
    /// The runtime queued `resource` for a sweep (resync, shard acquired): a
    /// chance to prepare batched observation. Cheap; no I/O.
    fn expect(&self, _resource: &StoredResource) {}
}

/// The honest reconciler for a kind whose cloud backend is not configured: it
/// changes nothing in AWS and says so in `Synced=False`, reason `NoCloudBackend`.
/// Deletion has nothing to clean up.
pub struct NoBackend;

#[async_trait::async_trait]
impl Reconciler for NoBackend {
    async fn reconcile(&self, ctx: &Context<'_>, resource: &StoredResource) -> Result<Outcome, ReconcileError> {
        let g = Some(resource.generation);
        let message = format!("no cloud backend is configured for {}; nothing was applied to AWS", resource.kind);
        Ok(Outcome {
            conditions: vec![
                Condition::new(ConditionType::Synced, false, "NoCloudBackend", message.clone(), g, ctx.now),
                Condition::new(
                    ConditionType::Ready,
                    api_types::ConditionStatus::Unknown,
                    "NoCloudBackend",
                    message,
                    g,
                    ctx.now,
                ),
            ],
            ..Default::default()
        })
    }

    async fn cleanup(&self, _ctx: &Context<'_>, _resource: &StoredResource) -> Result<Cleanup, ReconcileError> {
        Ok(Cleanup::Done)
    }
}

/// Builds the new status from the old one and an outcome: conditions are set
/// (transition times move only on flips), outputs merged, `observedGeneration`
/// stamped. Returns the new status; equal to `old` when nothing changed.
pub fn next_status(old: &Value, generation: i64, outcome: &Outcome) -> Value {
    use api_types::condition::Conditions;
    let mut status = old.as_object().cloned().unwrap_or_default();
    let mut conditions: Vec<Condition> =
        status.get("conditions").and_then(|c| serde_json::from_value(c.clone()).ok()).unwrap_or_default();
    for c in &outcome.conditions {
        conditions.set_condition(c.clone());
    }
    for (k, v) in &outcome.outputs {
        if v.is_null() {
            status.remove(k);
        } else {
            status.insert(k.clone(), v.clone());
        }
    }
    status.insert("observedGeneration".into(), Value::from(generation));
    status.insert("conditions".into(), serde_json::to_value(&conditions).unwrap_or(Value::Array(vec![])));
    Value::Object(status)
}

/// The status after a failed reconcile: `Synced=False` with the error's reason.
pub fn failed_status(old: &Value, generation: i64, err: &ReconcileError, now: chrono::DateTime<chrono::Utc>) -> Value {
    let outcome = Outcome {
        conditions: vec![Condition::new(
            ConditionType::Synced,
            false,
            err.reason(),
            err.to_string(),
            Some(generation),
            now,
        )],
        ..Default::default()
    };
    next_status(old, generation, &outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn next_status_keeps_transition_times_and_skips_no_ops() {
        let t0 = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let t1 = t0 + chrono::Duration::seconds(60);
        let o = |t| Outcome {
            conditions: vec![Condition::new(ConditionType::Synced, true, "ReconcileSuccess", "", Some(1), t)],
            outputs: [("serviceArn".to_string(), json!("arn:x"))].into_iter().collect(),
            ..Default::default()
        };
        let s1 = next_status(&json!({}), 1, &o(t0));
        let s2 = next_status(&s1, 1, &o(t1));
        assert_eq!(s1, s2, "same facts later: no change");
        assert_eq!(s2["observedGeneration"], 1);
        assert_eq!(s2["serviceArn"], "arn:x");
        let failed = failed_status(&s2, 2, &ReconcileError::Throttled("slow down".into()), t1);
        assert_eq!(failed["conditions"][0]["reason"], "Throttled");
        assert_eq!(failed["observedGeneration"], 2);
    }
}
