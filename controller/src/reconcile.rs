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

use api_types::condition::{Condition, ConditionType, Conditions};
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
    fn paused(old: &R::Status, generation: i64, now: chrono::DateTime<chrono::Utc>, drift: Option<Condition>) -> Step {
        let message = format!(
            "reconciliation is paused by the annotation {}: {}; nothing is changed in AWS until it is removed",
            RECONCILE_ANNOTATION.0, RECONCILE_ANNOTATION.1
        );
        let reported = Reconciled {
            status: old.clone(),
            conditions: std::iter::once(Condition::sync_failed(PAUSED_REASON, message, generation, now))
                .chain(drift)
                .collect(),
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
    owner: Option<&'a str>,
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
        request: r.rollout_request.as_ref().map(|j| &j.0),
        snapshot_request: r.snapshot_request.as_ref().map(|j| &j.0),
        owner,
    }
}

#[async_trait::async_trait]
impl<R: Reconcile> DynReconciler for Typed<R> {
    async fn reconcile(&self, ctx: &Context<'_>, r: &StoredResource) -> Result<Step, ReconcileError> {
        let (spec, status) = Self::parse(r)?;
        if reconcile_paused(&r.annotations.0) {
            return Ok(Self::paused(&status, r.generation, ctx.now, drift_condition(r, ctx.now)));
        }
        let (uid, owner) = (r.uid.to_string(), r.owner_uid.map(|o| o.to_string()));
        let mut reported = self.0.reconcile(ctx.gate, &target(ctx, r, &uid, owner.as_deref(), &spec, &status)).await?;
        reported.conditions.extend(drift_condition(r, ctx.now));
        Ok(Self::merged(&status, reported, r.generation))
    }

    async fn cleanup(&self, ctx: &Context<'_>, r: &StoredResource) -> Result<Option<Step>, ReconcileError> {
        let (spec, status) = Self::parse(r)?;
        // A paused resource is not torn down either: its finalizer holds it.
        if reconcile_paused(&r.annotations.0) {
            return Ok(Some(Self::paused(&status, r.generation, ctx.now, None)));
        }
        let (uid, owner) = (r.uid.to_string(), r.owner_uid.map(|o| o.to_string()));
        match self.0.cleanup(ctx.gate, &target(ctx, r, &uid, owner.as_deref(), &spec, &status)).await? {
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
                request: None,
                snapshot_request: None,
                owner: None,
            };
            self.0.expect(&t);
        }
    }
}

/// The `Drifted` condition of a resource a GitOps sync manages (labelled
/// `mooring/managed-by=gitops`), from where its current spec came from:
/// `True` (`ChangedOutsideGit`) when the API or a rollback wrote it, `False`
/// (`MatchesGit`) when a sync did. `None` for any other resource.
pub fn drift_condition(r: &StoredResource, now: chrono::DateTime<chrono::Utc>) -> Option<Condition> {
    let (key, value) = desired_state::gitops::MANAGED_BY;
    if r.labels.0.get(key).map(String::as_str) != Some(value) {
        return None;
    }
    let source = r.labels.0.get(desired_state::gitops::SOURCE_LABEL).map_or("its source", String::as_str);
    let applied = r.applied_revision.as_deref().unwrap_or("none");
    let (status, reason, message) = match r.source.as_str() {
        "gitops" => {
            (false, "MatchesGit", format!("generation {} is the spec git applied (commit {applied})", r.generation))
        }
        other => (
            true,
            "ChangedOutsideGit",
            format!(
                "generation {} was written by {} ({}), not by git (last applied commit {applied}); the next sync of {source} restores git's version",
                r.generation,
                if other == "rollback" { "a rollback" } else { "the API" },
                r.source_actor.as_deref().unwrap_or("unknown"),
            ),
        ),
    };
    Some(Condition::new(ConditionType::Drifted, status, reason, message, Some(r.generation), now))
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

/// A stored row of `kind`, generation 1, with every other field empty: what
/// the unit tests of the reconcilers start from.
#[cfg(test)]
pub(crate) fn test_row(kind: Kind, namespace: &str, name: &str) -> StoredResource {
    StoredResource {
        uid: uuid::Uuid::nil(),
        kind,
        namespace: namespace.into(),
        name: name.into(),
        labels: sqlx::types::Json(Default::default()),
        annotations: sqlx::types::Json(Default::default()),
        spec: Value::Object(Default::default()),
        spec_hash: String::new(),
        status: Value::Object(Default::default()),
        generation: 1,
        resource_version: 1,
        finalizers: vec![],
        created_at: chrono::DateTime::from_timestamp(0, 0).unwrap_or_default(),
        deletion_timestamp: None,
        source: "api".into(),
        source_actor: None,
        source_commit: None,
        status_fence: 0,
        revision_hash: None,
        applied_revision: None,
        rollout_request: None,
        snapshot_request: None,
        owner_uid: None,
    }
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

    fn row(labels: &[(&str, &str)], source: &str) -> StoredResource {
        StoredResource {
            labels: sqlx::types::Json(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            generation: 4,
            source: source.into(),
            source_actor: Some("alice".into()),
            applied_revision: Some("abc1234".into()),
            ..test_row(api_types::Kind::Relay, "default", "gw")
        }
    }

    #[test]
    fn drift_condition_table() {
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let managed = [("mooring/managed-by", "gitops"), ("mooring/source", "platform")];
        // (labels, source of the last spec change) → (status, reason)
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, Option<(&'a str, &'a str)>);
        let cases: [Case; 5] = [
            (&managed, "gitops", Some(("False", "MatchesGit"))),
            (&managed, "api", Some(("True", "ChangedOutsideGit"))),
            (&managed, "rollback", Some(("True", "ChangedOutsideGit"))),
            (&[], "api", None),
            (&[("mooring/managed-by", "helm")], "api", None),
        ];
        for (labels, source, want) in cases {
            let got = drift_condition(&row(labels, source), now).map(|c| {
                let v = serde_json::to_value(&c).unwrap();
                (v["status"].as_str().unwrap().to_string(), v["reason"].as_str().unwrap().to_string())
            });
            let want = want.map(|(s, r)| (s.to_string(), r.to_string()));
            assert_eq!(got, want, "{labels:?} {source}");
        }
        let c = serde_json::to_value(drift_condition(&row(&managed, "api"), now).unwrap()).unwrap();
        assert_eq!(c["type"], "Drifted");
        assert_eq!(c["observedGeneration"], 4);
        let message = c["message"].as_str().unwrap();
        assert!(
            message.contains("the API (alice)") && message.contains("abc1234") && message.contains("platform"),
            "{message}"
        );
    }

    #[test]
    fn a_paused_status_keeps_outputs_and_says_why() {
        let t0 = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let old = RelayStatus { task_definition_arn: Some("arn:td".into()), ..Default::default() };
        let step = Relay::paused(&old, 3, t0, None);
        assert_eq!(step.status["taskDefinitionArn"], "arn:td");
        assert_eq!(step.status["observedGeneration"], 3);
        let synced = &step.status["conditions"][0];
        assert_eq!((synced["type"].as_str(), synced["status"].as_str()), (Some("Synced"), Some("False")));
        assert_eq!(synced["reason"], PAUSED_REASON);
        assert!(synced["message"].as_str().unwrap().contains("mooring/reconcile: paused"));
        assert_eq!(step.requeue_after, None);
    }
}
