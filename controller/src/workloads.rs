//! The reconciler of every kind: relays and workers over the ECS runners,
//! nodes over the node runner, each run through [`Typed`], and node sets over
//! the store ([`NodeSets`]); a kind whose runner is not configured reports
//! `NoCloudBackend` (a NodeSet without one is not reconciled at all).

use std::sync::Arc;

use api_types::{Kind, NodeSpec, NodeStatus, RelaySpec, RelayStatus, WorkerSpec, WorkerStatus};
use runners::reconcile::NoBackend;
use runners::workload::{Nodes, Workloads};

use crate::nodeset::NodeSets;
use crate::reconcile::{DynReconciler, Reconcilers, Typed};

/// The reconcilers by kind.
pub fn reconcilers(workloads: Option<Arc<Workloads>>, nodes: Option<Nodes>, sets: Option<NodeSets>) -> Reconcilers {
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
    let mut out = Reconcilers::from([(Kind::Node, node), (Kind::Relay, relay), (Kind::Worker, worker)]);
    if let Some(sets) = sets {
        out.insert(Kind::NodeSet, Arc::new(sets));
    }
    out
}
