//! The reconcile contract every kind implements, defined once (modelled on
//! kube-runtime's `reconcile`/`error_policy` and crossplane-runtime's managed
//! reconciler): observe AWS, diff against the spec, apply the smallest
//! idempotent change, and say what is true now (conditions, the kind's status
//! outputs), what happened (events) and when to look again. Deletion is a
//! separate [`Reconcile::cleanup`] that answers [`Teardown::Done`] only when
//! AWS is clean, so the finalizer is released only then.
//!
//! Reconcilers are typed by kind: they read the spec and status as the kind's
//! structs and return the kind's status struct. The controller's runtime is
//! generic over them (it parses a stored row once, merges the conditions,
//! stamps `observedGeneration` and writes status with its fencing token).

use std::collections::BTreeMap;
use std::time::Duration;

use api_types::condition::{Condition, reason};
use api_types::{Event, Kind, Status};
use serde::de::DeserializeOwned;

use crate::cloud::{CloudError, ErrorKind};
use crate::gate::CallGate;

/// The annotation that lets a resource take over an existing AWS resource
/// that does not carry its `mooring:uid` tag (a queue created by hand, a
/// service released by `deletionPolicy: Retain`). Recorded as an `Adopted` event.
pub const ADOPT_ANNOTATION: &str = "mooring/adopt";

/// One resource, as a reconciler sees it: identity, spec and last status, typed.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a, S, St> {
    pub uid: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub generation: i64,
    pub annotations: &'a BTreeMap<String, String>,
    pub spec: &'a S,
    pub status: &'a St,
    /// Observe AWS afresh (an AWS event announced a change).
    pub fresh: bool,
    pub now: chrono::DateTime<chrono::Utc>,
    /// An operator's request about the resource's rollout (`mooring rollout
    /// promote|abort`), if one was made.
    pub request: Option<&'a api_types::rollout::RolloutRequest>,
    /// An operator's request for a snapshot of a node's data volume now
    /// (`mooring node snapshot`), if one was made.
    pub snapshot_request: Option<&'a api_types::node::SnapshotRequest>,
    /// The uid of the resource that owns this one (a NodeSet, for its
    /// members): the members' data volumes carry it, so a member created
    /// again takes back the volume its predecessor left.
    pub owner: Option<&'a str>,
}

impl<S, St: Clone> Target<'_, S, St> {
    /// Whether the resource asks to adopt existing AWS resources (see [`ADOPT_ANNOTATION`]).
    pub fn adopts(&self) -> bool {
        self.annotations.get(ADOPT_ANNOTATION).is_some_and(|v| v == "true")
    }

    /// `namespace/name`, for messages.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// A report that starts from the last status (outputs unchanged, no
    /// conditions set, nothing to record).
    pub fn report(&self) -> Reconciled<St> {
        Reconciled { status: self.status.clone(), conditions: vec![], events: vec![], requeue_after: None }
    }
}

/// What a reconcile found and did.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconciled<St> {
    /// The kind's status with its outputs as they are now (its `conditions`
    /// are the old ones: set conditions through [`Reconciled::conditions`]).
    pub status: St,
    /// Conditions to set; the others keep their value, and a condition's
    /// `lastTransitionTime` moves only when its status flips.
    pub conditions: Vec<Condition>,
    /// Events to record.
    pub events: Vec<Event>,
    /// Look again after this long (something is in flight); `None` waits for
    /// a change or the periodic resync.
    pub requeue_after: Option<Duration>,
}

impl<St> Reconciled<St> {
    /// Looks again after `d`, or sooner if already asked.
    pub fn requeue(&mut self, d: Duration) {
        self.requeue_after = Some(self.requeue_after.map_or(d, |cur| cur.min(d)));
    }
}

/// Where a teardown is.
#[derive(Debug, Clone, PartialEq)]
pub enum Teardown<St> {
    /// Nothing of the resource is left in AWS (or it was released under `Retain`).
    Done,
    /// Still draining or deleting, with status to record (a `Deleting`
    /// condition, a destroy build's intent) and when to look again.
    Pending(Reconciled<St>),
}

impl<St: Clone> Teardown<St> {
    /// Still going: `Ready=False`, reason `Deleting`, look again after `after`.
    pub fn pending<S>(target: &Target<'_, S, St>, message: impl Into<String>, after: Duration) -> Teardown<St> {
        let mut r = target.report();
        r.conditions.push(Condition::not_ready(reason::DELETING, message, target.generation, target.now));
        r.requeue_after = Some(after);
        Teardown::Pending(r)
    }
}

/// How the runtime treats a failed reconcile (kube's `error_policy`, ACK's
/// terminal conditions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Transient: retry with the key's exponential backoff.
    Backoff,
    /// Retrying cannot help until something changes (the spec, an adoption
    /// annotation, the other owner's resource): wait for a change or the
    /// periodic resync.
    WhenChanged,
    /// The reconcile's lease is gone: drop the key without writing status; the
    /// replica that holds the shard now reconciles it.
    Drop,
    /// Not a failure: an AWS budget is spent for now. Look again after this
    /// long, without recording a failure (the worker is free meanwhile).
    Later(Duration),
}

/// Why a reconcile or teardown stopped. Decides the `Synced=False` reason and
/// how the runtime retries ([`ReconcileError::retry`]).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// An AWS call failed (its operation and AWS's message say on what).
    #[error(transparent)]
    Cloud(#[from] CloudError),
    /// The AWS resource Mooring would manage exists and is not this
    /// resource's; nothing was changed.
    #[error("{0}")]
    Conflict(String),
    /// Mooring stopped trying until the spec changes (say, a destroy build
    /// failed again and again).
    #[error("{0}")]
    GaveUp(String),
    /// The store could not answer what the reconcile needed from it (the
    /// build slots in flight); nothing was changed.
    #[error("the store is unavailable: {0}")]
    Store(String),
    /// The stored document cannot be read as its kind by this version.
    #[error("the stored {kind} cannot be read by this version of Mooring: {source}")]
    Unreadable {
        kind: Kind,
        #[source]
        source: serde_json::Error,
    },
}

impl ReconcileError {
    /// The `Synced=False` reason.
    pub fn reason(&self) -> &'static str {
        match self {
            ReconcileError::Cloud(e) => match e.kind {
                ErrorKind::Throttled => reason::THROTTLED,
                ErrorKind::MissingReference => reason::INVALID_REFERENCE,
                ErrorKind::BudgetUnavailable => reason::BUDGET_UNAVAILABLE,
                _ => reason::APPLY_FAILED,
            },
            ReconcileError::Conflict(_) => reason::CONFLICT,
            ReconcileError::GaveUp(_) => reason::BUILD_FAILED,
            ReconcileError::Unreadable { .. } => reason::UNREADABLE,
            ReconcileError::Store(_) => reason::STORE_UNAVAILABLE,
        }
    }

    /// How the runtime retries.
    pub fn retry(&self) -> Retry {
        match self {
            ReconcileError::Cloud(e) if e.kind == ErrorKind::LeaseNotHeld => Retry::Drop,
            ReconcileError::Cloud(e) if e.kind == ErrorKind::OverBudget => {
                Retry::Later(e.retry_after.unwrap_or(Duration::from_secs(1)))
            }
            ReconcileError::Cloud(_) | ReconcileError::Store(_) => Retry::Backoff,
            ReconcileError::Conflict(_) | ReconcileError::GaveUp(_) | ReconcileError::Unreadable { .. } => {
                Retry::WhenChanged
            }
        }
    }
}

/// A reconciler of one kind.
#[async_trait::async_trait]
pub trait Reconcile: Send + Sync + 'static {
    /// The kind reconciled.
    const KIND: Kind;
    /// The kind's spec.
    type Spec: DeserializeOwned + Send + Sync;
    /// The kind's status.
    type Status: Status;

    /// Observe → diff → apply → report. Every AWS call passes `gate`.
    async fn reconcile(
        &self,
        gate: &dyn CallGate,
        target: &Target<'_, Self::Spec, Self::Status>,
    ) -> Result<Reconciled<Self::Status>, ReconcileError>;

    /// Tears down (or releases, under `Retain`) what the resource owns in AWS.
    async fn cleanup(
        &self,
        gate: &dyn CallGate,
        target: &Target<'_, Self::Spec, Self::Status>,
    ) -> Result<Teardown<Self::Status>, ReconcileError>;

    /// The runtime queued the resource for a sweep (a resync, a shard
    /// acquired): a chance to prepare batched observation. Cheap; no I/O.
    fn expect(&self, _target: &Target<'_, Self::Spec, Self::Status>) {}
}

/// The reconciler of a kind whose cloud backend is not configured: it changes
/// nothing in AWS and says so (`Synced=False`, `Ready=Unknown`, reason
/// `NoCloudBackend`). Deletion has nothing to clean up.
pub struct NoBackend<S, St>(std::marker::PhantomData<fn() -> (S, St)>, Kind);

impl<S, St> NoBackend<S, St> {
    /// The stand-in for `kind`.
    pub fn new(kind: Kind) -> Self {
        NoBackend(std::marker::PhantomData, kind)
    }
}

/// Reconciles `kind`'s documents with [`NoBackend`].
macro_rules! no_backend {
    ($kind:expr, $spec:ty, $status:ty) => {
        #[async_trait::async_trait]
        impl Reconcile for NoBackend<$spec, $status> {
            const KIND: Kind = $kind;
            type Spec = $spec;
            type Status = $status;

            async fn reconcile(
                &self,
                _gate: &dyn CallGate,
                t: &Target<'_, $spec, $status>,
            ) -> Result<Reconciled<$status>, ReconcileError> {
                let message = format!("no cloud backend is configured for {}; nothing was applied to AWS", self.1);
                let mut r = t.report();
                r.conditions.push(Condition::sync_failed(reason::NO_CLOUD_BACKEND, &message, t.generation, t.now));
                r.conditions.push(Condition::new(
                    api_types::ConditionType::Ready,
                    api_types::ConditionStatus::Unknown,
                    reason::NO_CLOUD_BACKEND,
                    message,
                    Some(t.generation),
                    t.now,
                ));
                Ok(r)
            }

            async fn cleanup(
                &self,
                _gate: &dyn CallGate,
                _t: &Target<'_, $spec, $status>,
            ) -> Result<Teardown<$status>, ReconcileError> {
                Ok(Teardown::Done)
            }
        }
    };
}

no_backend!(Kind::Node, api_types::NodeSpec, api_types::NodeStatus);
no_backend!(Kind::Relay, api_types::RelaySpec, api_types::RelayStatus);
no_backend!(Kind::Worker, api_types::WorkerSpec, api_types::WorkerStatus);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::{Op, ops};

    fn cloud(kind: ErrorKind) -> ReconcileError {
        let op: &Op = &ops::CREATE_SERVICE;
        ReconcileError::Cloud(CloudError::new(op, kind, "x"))
    }

    #[test]
    fn errors_decide_reason_and_retry() {
        let table = [
            (cloud(ErrorKind::Throttled), "Throttled", Retry::Backoff),
            (cloud(ErrorKind::MissingReference), "InvalidReference", Retry::Backoff),
            (cloud(ErrorKind::Server), "ApplyFailed", Retry::Backoff),
            (cloud(ErrorKind::BudgetUnavailable), "BudgetUnavailable", Retry::Backoff),
            (cloud(ErrorKind::LeaseNotHeld), "ApplyFailed", Retry::Drop),
            (ReconcileError::Conflict("queue q is not ours".into()), "Conflict", Retry::WhenChanged),
            (ReconcileError::GaveUp("3 builds failed".into()), "BuildFailed", Retry::WhenChanged),
        ];
        for (e, reason, retry) in table {
            assert_eq!((e.reason(), e.retry()), (reason, retry), "{e}");
        }
    }
}
