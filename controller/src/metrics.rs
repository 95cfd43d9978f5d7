//! The controller's Prometheus metrics, registered in the API's registry so one
//! `/metrics` shows everything.
//!
//! Names follow controller-runtime's (`controller_runtime_reconcile_total`,
//! `workqueue_depth`, ...) under the `mooring_` prefix, with the resource kind
//! where controller-runtime has the controller's name, so a user of
//! kubebuilder's dashboards finds what they know. See `docs/metrics.md`.

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

/// An event the controller recorded: its reasons are the code's own constants
/// (`ScaledOut`, `Created`, `InvalidReference`, ...), a bounded set.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    kind: String,
    #[prometheus(flatten)]
    event: EventKind,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventKind {
    r#type: String,
    reason: String,
}

fn latency_buckets() -> Histogram {
    Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
}

/// Reconciles, work queue, leases and events.
pub struct ControllerMetrics {
    reconciles: Family<KindResult, Counter>,
    reconcile_errors: Family<KindLabel, Counter>,
    reconcile_time: Family<KindLabel, Histogram>,
    /// Reconciles running now (controller-runtime's `active_workers`).
    pub active_workers: Gauge,
    /// Workers per kind (controller-runtime's `max_concurrent_reconciles`).
    pub max_concurrent_reconciles: Gauge,
    /// Keys ready in the work queues now.
    pub queue_depth: Gauge,
    queue_adds: Counter,
    queue_retries: Counter,
    queue_duration: Histogram,
    /// Shard leases this replica holds.
    pub leases_held: Gauge,
    /// Shards there are (the same on every replica): `sum(leases_held) <
    /// max(shards)` means a shard has no controller.
    pub shards: Gauge,
    events: Family<EventLabels, Counter>,
}

impl ControllerMetrics {
    /// Creates the metrics and registers them.
    pub fn new(registry: &mut Registry) -> ControllerMetrics {
        let m = ControllerMetrics {
            reconciles: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_time: Family::new_with_constructor(latency_buckets),
            active_workers: Gauge::default(),
            max_concurrent_reconciles: Gauge::default(),
            queue_depth: Gauge::default(),
            queue_adds: Counter::default(),
            queue_retries: Counter::default(),
            queue_duration: latency_buckets(),
            leases_held: Gauge::default(),
            shards: Gauge::default(),
            events: Family::default(),
        };
        registry.register(
            "reconcile",
            "Reconciles by kind and result (success, error, deferred for AWS budget, skipped: shard not held)",
            m.reconciles.clone(),
        );
        registry.register("reconcile_errors", "Reconciles that failed, by kind", m.reconcile_errors.clone());
        registry.register("reconcile_time_seconds", "Reconcile duration by kind", m.reconcile_time.clone());
        registry.register("active_workers", "Reconciles running now", m.active_workers.clone());
        registry.register(
            "max_concurrent_reconciles",
            "Reconcile workers per kind",
            m.max_concurrent_reconciles.clone(),
        );
        registry.register("workqueue_depth", "Keys ready in the work queues", m.queue_depth.clone());
        registry.register("workqueue_adds", "Keys added to the work queues", m.queue_adds.clone());
        registry.register("workqueue_retries", "Keys queued again after a failed reconcile", m.queue_retries.clone());
        registry.register(
            "workqueue_queue_duration_seconds",
            "Time a key waited in the queue once ready",
            m.queue_duration.clone(),
        );
        registry.register("leases_held", "Shard leases held by this replica", m.leases_held.clone());
        registry.register("shards", "Shards the resources are spread over (every replica)", m.shards.clone());
        registry.register(
            "events",
            "Events the controller recorded, by kind, type and reason (ScaledOut, ScaledIn: scaling decisions)",
            m.events.clone(),
        );
        m
    }

    /// Creates the series of `kind` at zero, so a dashboard or an alert reading
    /// the rate of errors finds a series before the first error.
    pub fn init_kind(&self, kind: &str) {
        for result in ["success", "error"] {
            let _ = self.reconciles.get_or_create(&KindResult { kind: kind.into(), result: result.into() });
        }
        let _ = self.reconcile_errors.get_or_create(&KindLabel { kind: kind.into() });
    }

    /// Metrics registered nowhere (tests).
    pub fn unregistered() -> ControllerMetrics {
        ControllerMetrics::new(&mut Registry::default())
    }

    /// Counts and times one reconcile.
    pub fn reconciled(&self, kind: &str, result: &str, took: Duration) {
        self.reconciles.get_or_create(&KindResult { kind: kind.into(), result: result.into() }).inc();
        if result == "error" {
            self.reconcile_errors.get_or_create(&KindLabel { kind: kind.into() }).inc();
        }
        self.reconcile_time.get_or_create(&KindLabel { kind: kind.into() }).observe(took.as_secs_f64());
    }

    /// Reconciles so far of `kind` with `result`.
    pub fn reconcile_count(&self, kind: &str, result: &str) -> u64 {
        self.reconciles.get_or_create(&KindResult { kind: kind.into(), result: result.into() }).get()
    }

    /// A key left the queue after waiting `wait`.
    pub fn waited(&self, wait: Duration) {
        self.queue_duration.observe(wait.as_secs_f64());
    }

    /// A key was added to a queue (again: `retry`, after a failure).
    pub fn queued(&self, retry: bool) {
        self.queue_adds.inc();
        if retry {
            self.queue_retries.inc();
        }
    }

    /// Counts one recorded event.
    pub fn event(&self, kind: &str, type_: &str, reason: &str) {
        self.events
            .get_or_create(&EventLabels {
                kind: kind.into(),
                event: EventKind { r#type: type_.into(), reason: reason.into() },
            })
            .inc();
    }
}

/// Every AWS call this process makes, and its wait for a budget token: on
/// every replica that calls AWS (the controller's reconciles, and the API's
/// `logs` reads), registered once per process.
pub struct AwsCallMetrics {
    aws_calls: Family<Call, Counter>,
    budget_wait: Family<FamilyLabel, Histogram>,
}

impl AwsCallMetrics {
    /// Creates the metrics and registers them.
    pub fn new(registry: &mut Registry) -> AwsCallMetrics {
        let m =
            AwsCallMetrics { aws_calls: Family::default(), budget_wait: Family::new_with_constructor(latency_buckets) };
        registry.register("aws_calls", "AWS calls by operation, access (read/write) and outcome", m.aws_calls.clone());
        registry.register("aws_budget_wait_seconds", "Time AWS calls waited for their budget", m.budget_wait.clone());
        m
    }

    /// Metrics registered nowhere (tests).
    pub fn unregistered() -> AwsCallMetrics {
        AwsCallMetrics::new(&mut Registry::default())
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

    /// Time an AWS call waited for a token of `family`'s budget.
    pub fn observe_budget_wait(&self, family: &str, wait: Duration) {
        self.budget_wait.get_or_create(&FamilyLabel { family: family.into() }).observe(wait.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(registry: &Registry) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, registry).unwrap();
        out
    }

    #[test]
    fn names_follow_controller_runtime() {
        let mut registry = Registry::with_prefix("mooring");
        let m = ControllerMetrics::new(&mut registry);
        m.init_kind("Worker");
        m.reconciled("Relay", "success", Duration::from_millis(3));
        m.reconciled("Relay", "error", Duration::from_millis(3));
        m.queued(false);
        m.queued(true);
        m.event("Worker", "Normal", "ScaledOut");
        let text = text(&registry);
        for line in [
            "mooring_reconcile_total{kind=\"Relay\",result=\"success\"} 1",
            "mooring_reconcile_total{kind=\"Relay\",result=\"error\"} 1",
            "mooring_reconcile_errors_total{kind=\"Relay\"} 1",
            "mooring_reconcile_errors_total{kind=\"Worker\"} 0",
            "mooring_reconcile_time_seconds_count{kind=\"Relay\"} 2",
            "mooring_workqueue_adds_total 2",
            "mooring_workqueue_retries_total 1",
            "mooring_events_total{kind=\"Worker\",type=\"Normal\",reason=\"ScaledOut\"} 1",
            "# TYPE mooring_workqueue_depth gauge",
            "# TYPE mooring_active_workers gauge",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }
}
