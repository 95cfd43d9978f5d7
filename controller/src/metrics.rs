//! The controller's Prometheus metrics, registered in the API's registry so one
//! `/metrics` shows everything.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindResult {
    kind: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Call {
    operation: String,
    /// `read` or `write`: whether the operation changes anything in AWS.
    access: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FamilyLabel {
    family: String,
}

fn latency_buckets() -> Histogram {
    Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
}

/// Reconciles, queue, leases, AWS calls and budget waits.
pub struct ControllerMetrics {
    reconciles: Family<KindResult, Counter>,
    reconcile_duration: Family<KindLabel, Histogram>,
    pub queue_depth: Gauge,
    queue_wait: Histogram,
    pub leases_held: Gauge,
    pub active_reconciles: Gauge,
    aws_calls: Family<Call, Counter>,
    budget_wait: Family<FamilyLabel, Histogram>,
}

impl ControllerMetrics {
    /// Creates the metrics and registers them.
    pub fn new(registry: &mut Registry) -> ControllerMetrics {
        let m = ControllerMetrics {
            reconciles: Family::default(),
            reconcile_duration: Family::new_with_constructor(latency_buckets),
            queue_depth: Gauge::default(),
            queue_wait: latency_buckets(),
            leases_held: Gauge::default(),
            active_reconciles: Gauge::default(),
            aws_calls: Family::default(),
            budget_wait: Family::new_with_constructor(latency_buckets),
        };
        registry.register("reconciles", "Reconciles by kind and result", m.reconciles.clone());
        registry.register("reconcile_duration_seconds", "Reconcile duration by kind", m.reconcile_duration.clone());
        registry.register("queue_depth", "Keys ready in the work queue", m.queue_depth.clone());
        registry.register("queue_wait_seconds", "Time a key waited in the queue once ready", m.queue_wait.clone());
        registry.register("leases_held", "Shard leases held by this replica", m.leases_held.clone());
        registry.register("active_reconciles", "Reconciles running now", m.active_reconciles.clone());
        registry.register("aws_calls", "AWS calls by operation, access (read/write) and outcome", m.aws_calls.clone());
        registry.register("aws_budget_wait_seconds", "Time AWS calls waited for their budget", m.budget_wait.clone());
        m
    }

    /// Metrics registered nowhere (tests).
    pub fn unregistered() -> ControllerMetrics {
        ControllerMetrics::new(&mut Registry::default())
    }

    pub fn reconciled(&self, kind: &str, result: &str, took: Duration) {
        self.reconciles.get_or_create(&KindResult { kind: kind.into(), result: result.into() }).inc();
        self.reconcile_duration.get_or_create(&KindLabel { kind: kind.into() }).observe(took.as_secs_f64());
    }

    /// Reconciles so far of `kind` with `result`.
    pub fn reconcile_count(&self, kind: &str, result: &str) -> u64 {
        self.reconciles.get_or_create(&KindResult { kind: kind.into(), result: result.into() }).get()
    }

    pub fn waited(&self, wait: Duration) {
        self.queue_wait.observe(wait.as_secs_f64());
    }

    /// Counts one AWS call.
    pub fn aws_call(&self, op: &runners::cloud::Op, outcome: &str) {
        self.aws_calls.get_or_create(&Self::call_labels(op, outcome)).inc();
    }

    /// AWS calls so far of `op` with `outcome`.
    pub fn aws_call_count(&self, op: &runners::cloud::Op, outcome: &str) -> u64 {
        self.aws_calls.get_or_create(&Self::call_labels(op, outcome)).get()
    }

    fn call_labels(op: &runners::cloud::Op, outcome: &str) -> Call {
        Call {
            operation: op.name.into(),
            access: if op.mutating { "write" } else { "read" }.into(),
            outcome: outcome.into(),
        }
    }

    pub fn observe_budget_wait(&self, family: &str, wait: Duration) {
        self.budget_wait.get_or_create(&FamilyLabel { family: family.into() }).observe(wait.as_secs_f64());
    }
}
