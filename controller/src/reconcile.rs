//! How the runtime calls the reconcilers. The contract itself — typed per
//! kind, observe → diff → apply → report — is defined once, in
//! [`runners::reconcile`]; this module adapts it to stored rows (kube-runtime's
//! `Controller<K>` idea): [`Typed`] parses a row's spec and status once, runs
//! the kind's reconciler, merges the conditions it reported (transition times
//! move only on flips), stamps `observedGeneration`, and hands the runtime the
//! status to write. [`DynReconciler`] is that adapter's object-safe face, so
//! the runtime holds one reconciler per kind in a map.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use api_types::condition::{Condition, Conditions};
use api_types::meta::{RECONCILE_ANNOTATION, reconcile_paused};
use api_types::{Event, Kind, Status};
use desired_state::store::StoredResource;
use runners::gate::CallGate;
use runners::reconcile::{Reconcile, ReconcileError, Reconciled, Target, Teardown};
use serde_json::Value;

/// What a reconcile runs with, from the runtime.
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

/// One step's result for the runtime: the status to write (equal to the
/// stored one when nothing changed), events to record, and when to look again.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub status: Value,
    pub events: Vec<Event>,
    pub requeue_after: Option<Duration>,
}

/// A reconciler as the runtime holds it: over stored rows, for one kind.
#[async_trait::async_trait]
pub trait DynReconciler: Send + Sync {
    /// Observe → diff → apply → report.
    async fn reconcile(&self, ctx: &Context<'_>, resource: &StoredResource) -> Result<Step, ReconcileError>;
    /// Teardown; `None` once AWS is clean (the finalizer may go).
    async fn cleanup(&self, ctx: &Context<'_>, resource: &StoredResource) -> Result<Option<Step>, ReconcileError>;
    /// The resource is about to be reconciled in a sweep: prepare batched
    /// observation. Cheap; no I/O.
    fn expect(&self, _resource: &StoredResource) {}
}

/// The `Synced=False` reason of a paused resource (as Crossplane reports it).
pub const PAUSED_REASON: &str = "ReconcilePaused";

/// The reconcilers of every kind, by kind.
pub type Reconcilers = HashMap<Kind, Arc<dyn DynReconciler>>;

/// Runs a typed [`Reconcile`] over stored rows.
pub struct Typed<R>(pub R);

impl<R: Reconcile> Typed<R> {
    /// The row's spec and status, typed. A stored spec passed validation, so a
    /// failure here means the row is from an incompatible version; a status
    /// this version cannot read starts over (the identities it recorded are
    /// then found again by name and tag).
    fn parse(r: &StoredResource) -> Result<(R::Spec, R::Status), ReconcileError> {
        let spec = serde_json::from_value(r.spec.clone())
            .map_err(|source| ReconcileError::Unreadable { kind: R::KIND, source })?;
        let status = match serde_json::from_value(r.status.clone()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "stored status cannot be read; starting from an empty status");
                R::Status::default()
            }
        };
        Ok((spec, status))
    }

    /// The status while reconciliation is paused: the outputs and conditions
    /// as they were, with `Synced=False` (`ReconcilePaused`) for this generation.
    fn paused(old: &R::Status, generation: i64, now: chrono::DateTime<chrono::Utc>) -> Step {
        let message = format!(
            "reconciliation is paused by the annotation {}: {}; nothing is changed in AWS until it is removed",
            RECONCILE_ANNOTATION.0, RECONCILE_ANNOTATION.1
        );
        let reported = Reconciled {
            status: old.clone(),
            conditions: vec![Condition::sync_failed(PAUSED_REASON, message, generation, now)],
            events: vec![],
            requeue_after: None,
        };
        Self::merged(old, reported, generation)
    }

    /// The status to store after a report: its outputs, the old conditions
    /// with the reported ones set, this generation stamped.
    fn merged(old: &R::Status, mut reported: Reconciled<R::Status>, generation: i64) -> Step {
        let mut status = reported.status;
        let mut conditions = old.conditions().to_vec();
        for c in reported.conditions.drain(..) {
            conditions.set_condition(c);
        }
        *status.conditions_mut() = conditions;
        status.set_observed_generation(generation);
        Step {
            status: serde_json::to_value(&status).unwrap_or(Value::Null),
            events: reported.events,
            requeue_after: reported.requeue_after,
        }
    }
}

fn target<'a, S, St>(
    ctx: &Context<'_>,
    r: &'a StoredResource,
    uid: &'a str,
    spec: &'a S,
    status: &'a St,
) -> Target<'a, S, St> {
    Target {
        uid,
        namespace: &r.namespace,
        name: &r.name,
        generation: r.generation,
        annotations: &r.annotations.0,
        spec,
        status,
        fresh: ctx.fresh,
        now: ctx.now,
    }
}

#[async_trait::async_trait]
impl<R: Reconcile> DynReconciler for Typed<R> {
    async fn reconcile(&self, ctx: &Context<'_>, r: &StoredResource) -> Result<Step, ReconcileError> {
        let (spec, status) = Self::parse(r)?;
        if reconcile_paused(&r.annotations.0) {
            return Ok(Self::paused(&status, r.generation, ctx.now));
        }
        let uid = r.uid.to_string();
        let reported = self.0.reconcile(ctx.gate, &target(ctx, r, &uid, &spec, &status)).await?;
        Ok(Self::merged(&status, reported, r.generation))
    }

    async fn cleanup(&self, ctx: &Context<'_>, r: &StoredResource) -> Result<Option<Step>, ReconcileError> {
        let (spec, status) = Self::parse(r)?;
        // A paused resource is not torn down either: its finalizer holds it.
        if reconcile_paused(&r.annotations.0) {
            return Ok(Some(Self::paused(&status, r.generation, ctx.now)));
        }
        let uid = r.uid.to_string();
        match self.0.cleanup(ctx.gate, &target(ctx, r, &uid, &spec, &status)).await? {
            Teardown::Done => Ok(None),
            Teardown::Pending(reported) => Ok(Some(Self::merged(&status, reported, r.generation))),
        }
    }

    fn expect(&self, r: &StoredResource) {
        if let Ok((spec, status)) = Self::parse(r) {
            let uid = r.uid.to_string();
            let ctx_now = chrono::Utc::now();
            let t = Target {
                uid: &uid,
                namespace: &r.namespace,
                name: &r.name,
                generation: r.generation,
                annotations: &r.annotations.0,
                spec: &spec,
                status: &status,
                fresh: false,
                now: ctx_now,
            };
            self.0.expect(&t);
        }
    }
}

/// The status after a failed reconcile: `Synced=False` with the error's reason
/// and message, the other conditions and outputs as they were. Works on any
/// kind's status (conditions and `observedGeneration` are common to all).
pub fn failed_status(old: &Value, generation: i64, err: &ReconcileError, now: chrono::DateTime<chrono::Utc>) -> Value {
    let mut status = old.as_object().cloned().unwrap_or_default();
    let mut conditions: Vec<Condition> =
        status.get("conditions").and_then(|c| serde_json::from_value(c.clone()).ok()).unwrap_or_default();
    conditions.set_condition(Condition::sync_failed(err.reason(), err.to_string(), generation, now));
    status.insert("observedGeneration".into(), Value::from(generation));
    status.insert("conditions".into(), serde_json::to_value(&conditions).unwrap_or(Value::Array(vec![])));
    Value::Object(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use api_types::RelayStatus;
    use runners::reconcile::NoBackend;
    use serde_json::json;

    type Relay = Typed<NoBackend<api_types::RelaySpec, RelayStatus>>;

    #[test]
    fn merged_status_keeps_transition_times_and_outputs() {
        let t0 = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let t1 = t0 + chrono::Duration::seconds(60);
        let report = |t| Reconciled {
            status: RelayStatus { task_definition_arn: Some("arn:td".into()), ..Default::default() },
            conditions: vec![Condition::synced(1, t)],
            events: vec![],
            requeue_after: None,
        };
        let s1 = Relay::merged(&RelayStatus::default(), report(t0), 1);
        let old: RelayStatus = serde_json::from_value(s1.status.clone()).unwrap();
        let s2 = Relay::merged(&old, report(t1), 1);
        assert_eq!(s1.status, s2.status, "same facts later: no change");
        assert_eq!(s2.status["observedGeneration"], 1);
        assert_eq!(s2.status["taskDefinitionArn"], "arn:td");
        let err = ReconcileError::Conflict("queue q is not ours".into());
        let failed = failed_status(&s2.status, 2, &err, t1);
        assert_eq!(failed["conditions"][0]["reason"], "Conflict");
        assert_eq!(failed["observedGeneration"], 2);
        assert_eq!(failed["taskDefinitionArn"], "arn:td", "outputs stay");
        assert_eq!(failed_status(&json!({}), 1, &err, t1)["conditions"][0]["type"], "Synced");
    }

    #[test]
    fn a_paused_status_keeps_outputs_and_says_why() {
        let t0 = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let old = RelayStatus { task_definition_arn: Some("arn:td".into()), ..Default::default() };
        let step = Relay::paused(&old, 3, t0);
        assert_eq!(step.status["taskDefinitionArn"], "arn:td");
        assert_eq!(step.status["observedGeneration"], 3);
        let synced = &step.status["conditions"][0];
        assert_eq!((synced["type"].as_str(), synced["status"].as_str()), (Some("Synced"), Some("False")));
        assert_eq!(synced["reason"], PAUSED_REASON);
        assert!(synced["message"].as_str().unwrap().contains("mooring/reconcile: paused"));
        assert_eq!(step.requeue_after, None);
    }
}
