//! The reconciler of every kind: relays and workers over the ECS runners,
//! nodes over the node runner, each run through [`Typed`]; a kind whose runner
//! is not configured reports `NoCloudBackend`.

use std::sync::Arc;

use api_types::{Kind, NodeSpec, NodeStatus, RelaySpec, RelayStatus, WorkerSpec, WorkerStatus};
use runners::reconcile::NoBackend;
use runners::workload::{Nodes, Workloads};

use crate::reconcile::{DynReconciler, Reconcilers, Typed};

/// The reconcilers by kind.
pub fn reconcilers(workloads: Option<Arc<Workloads>>, nodes: Option<Nodes>) -> Reconcilers {
    let (relay, worker): (Arc<dyn DynReconciler>, Arc<dyn DynReconciler>) = match workloads {
        Some(w) => (Arc::new(Typed(w.relays())), Arc::new(Typed(w.workers()))),
        None => (
            Arc::new(Typed(NoBackend::<RelaySpec, RelayStatus>::new(Kind::Relay))),
            Arc::new(Typed(NoBackend::<WorkerSpec, WorkerStatus>::new(Kind::Worker))),
        ),
    };
    let node: Arc<dyn DynReconciler> = match nodes {
        Some(n) => Arc::new(Typed(n)),
        None => Arc::new(Typed(NoBackend::<NodeSpec, NodeStatus>::new(Kind::Node))),
    };
    Reconcilers::from([(Kind::Node, node), (Kind::Relay, relay), (Kind::Worker, worker)])
}
