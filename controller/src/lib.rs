//! The controller: the reconcile loop that keeps AWS equal to the desired state.
//!
//! Modelled on controller-runtime and kube-runtime, without Kubernetes: a work
//! queue of resource keys fed by the store's change feed, a periodic resync and
//! AWS events; shard leases in Redis so several replicas share the work; AWS
//! rate budgets in Redis shared by all replicas; and per-kind reconcilers that
//! observe, diff, apply and report status conditions.

pub mod queue;
pub mod retry;

pub mod budget;
pub mod events;
pub mod fleet;
pub mod iam;
pub mod keys;
pub mod lease;
pub mod logs;
pub mod metrics;
pub mod nodeset;
pub mod preview;
pub mod reconcile;
pub mod resource_metrics;
pub mod runtime;
pub mod slots;
pub mod workloads;
