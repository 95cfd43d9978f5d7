//! The reconcilers of every kind: thin adapters from stored rows to the
//! runners ([`Workloads`] for the ECS kinds, [`Nodes`]) and from their reports
//! to the runtime's outcomes.

use std::collections::HashMap;
use std::sync::Arc;

use api_types::Kind;

use api_types::node::{NodeSpec, NodeStatus};
use api_types::relay::{RelaySpec, RelayStatus};
use api_types::worker::{WorkerSpec, WorkerStatus};
use desired_state::store::{EventType, StoredResource};
use runners::cloud::ErrorKind;
use runners::workload::{Nodes, Report, RunError, Target, Teardown, Workloads};
use serde::de::DeserializeOwned;

use crate::reconcile::{Cleanup, Context, NoBackend, Outcome, ReconcileError, Reconciler};

/// Reconciles `Relay` resources.
pub struct RelayReconciler(pub Arc<Workloads>);

/// Reconciles `Worker` resources.
pub struct WorkerReconciler(pub Arc<Workloads>);

/// Reconciles `Node` resources.
pub struct NodeReconciler(pub Arc<Nodes>);

/// The reconciler of every kind: relays and workers over `workloads`, nodes
/// over `nodes`; a kind whose runner is not given reports `NoCloudBackend`.
pub fn reconcilers(workloads: Option<Arc<Workloads>>, nodes: Option<Arc<Nodes>>) -> HashMap<Kind, Arc<dyn Reconciler>> {
    let (relay, worker): (Arc<dyn Reconciler>, Arc<dyn Reconciler>) = match workloads {
        Some(w) => (Arc::new(RelayReconciler(w.clone())), Arc::new(WorkerReconciler(w))),
        None => (Arc::new(NoBackend), Arc::new(NoBackend)),
    };
    let node: Arc<dyn Reconciler> = match nodes {
        Some(n) => Arc::new(NodeReconciler(n)),
        None => Arc::new(NoBackend),
    };
    HashMap::from([(Kind::Node, node), (Kind::Relay, relay), (Kind::Worker, worker)])
}

/// The row's spec and status, typed. A stored spec passed validation, so a
/// failure here means the row is from an incompatible version.
fn typed<S: DeserializeOwned, St: DeserializeOwned + Default>(r: &StoredResource) -> Result<(S, St), ReconcileError> {
    let spec = serde_json::from_value(r.spec.clone())
        .map_err(|e| ReconcileError::ApplyFailed(format!("stored spec cannot be read: {e}")))?;
    let status = serde_json::from_value(r.status.clone()).unwrap_or_default();
    Ok((spec, status))
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
        spec,
        status,
        fresh: ctx.fresh,
        now: ctx.now,
    }
}

fn outcome(report: Report) -> Outcome {
    Outcome {
        conditions: report.conditions,
        outputs: report.outputs,
        events: report
            .events
            .into_iter()
            .map(|e| (if e.warning { EventType::Warning } else { EventType::Normal }, e.reason, e.message))
            .collect(),
        requeue_after: report.requeue_after,
    }
}

fn cleanup(t: Teardown) -> Cleanup {
    match t {
        Teardown::Done => Cleanup::Done,
        Teardown::Pending(after, why) => Cleanup::Pending(after, why),
        Teardown::Progress(report) => Cleanup::Progress(outcome(report)),
    }
}

impl From<RunError> for ReconcileError {
    fn from(e: RunError) -> Self {
        let message = e.to_string();
        match e.cloud_kind() {
            None => ReconcileError::Conflict(message),
            Some(ErrorKind::Throttled) => ReconcileError::Throttled(message),
            Some(ErrorKind::MissingReference) => ReconcileError::InvalidReference(message),
            Some(ErrorKind::NotAllowed) => ReconcileError::NotOwner(message),
            Some(_) => ReconcileError::ApplyFailed(message),
        }
    }
}

#[async_trait::async_trait]
impl Reconciler for RelayReconciler {
    fn expect(&self, r: &StoredResource) {
        if let Some(cluster) = r.spec.get("cluster").and_then(|c| c.as_str()) {
            self.0.expect(cluster, &r.namespace, &r.name);
        }
    }

    async fn reconcile(&self, ctx: &Context<'_>, r: &StoredResource) -> Result<Outcome, ReconcileError> {
        let (spec, status) = typed::<RelaySpec, RelayStatus>(r)?;
        let uid = r.uid.to_string();
        Ok(outcome(self.0.reconcile_relay(ctx.gate, &target(ctx, r, &uid, &spec, &status)).await?))
    }

    async fn cleanup(&self, ctx: &Context<'_>, r: &StoredResource) -> Result<Cleanup, ReconcileError> {
        let (spec, status) = typed::<RelaySpec, RelayStatus>(r)?;
        let uid = r.uid.to_string();
        Ok(cleanup(self.0.cleanup_relay(ctx.gate, &target(ctx, r, &uid, &spec, &status)).await?))
    }
}

#[async_trait::async_trait]
impl Reconciler for WorkerReconciler {
    fn expect(&self, r: &StoredResource) {
        if let Some(cluster) = r.spec.get("cluster").and_then(|c| c.as_str()) {
            self.0.expect(cluster, &r.namespace, &r.name);
        }
    }

    async fn reconcile(&self, ctx: &Context<'_>, r: &StoredResource) -> Result<Outcome, ReconcileError> {
        let (spec, status) = typed::<WorkerSpec, WorkerStatus>(r)?;
        let uid = r.uid.to_string();
        Ok(outcome(self.0.reconcile_worker(ctx.gate, &target(ctx, r, &uid, &spec, &status)).await?))
    }

    async fn cleanup(&self, ctx: &Context<'_>, r: &StoredResource) -> Result<Cleanup, ReconcileError> {
        let (spec, status) = typed::<WorkerSpec, WorkerStatus>(r)?;
        let uid = r.uid.to_string();
        Ok(cleanup(self.0.cleanup_worker(ctx.gate, &target(ctx, r, &uid, &spec, &status)).await?))
    }
}

#[async_trait::async_trait]
impl Reconciler for NodeReconciler {
    async fn reconcile(&self, ctx: &Context<'_>, r: &StoredResource) -> Result<Outcome, ReconcileError> {
        let (spec, status) = typed::<NodeSpec, NodeStatus>(r)?;
        let uid = r.uid.to_string();
        Ok(outcome(self.0.reconcile_node(ctx.gate, &target(ctx, r, &uid, &spec, &status)).await?))
    }

    async fn cleanup(&self, ctx: &Context<'_>, r: &StoredResource) -> Result<Cleanup, ReconcileError> {
        let (spec, status) = typed::<NodeSpec, NodeStatus>(r)?;
        let uid = r.uid.to_string();
        Ok(cleanup(self.0.cleanup_node(ctx.gate, &target(ctx, r, &uid, &spec, &status)).await?))
    }
}
