//! Observe → diff → apply for every kind, in AWS terms and free of storage:
//! the controller hands in a resource and a gate, and gets back what the
//! [`crate::reconcile`] contract says (status outputs, conditions, events,
//! when to look again).
//!
//! Every reconciler follows the same ownership rule ([`ownership`]): it acts
//! only on AWS resources carrying its resource's `mooring:uid` tag, works from
//! the identities recorded in status (written as an intent before anything is
//! created), and takes over an untagged resource only when the resource asks
//! to (`mooring/adopt: "true"`), recording an `Adopted` event.

pub mod alarms;
pub mod backup;
pub mod discovery;
mod drain;
mod native;
mod node;
mod ownership;
mod relay;
mod rollout;
mod service;
mod tags;
mod worker;

use std::sync::Arc;
use std::time::Duration;

pub use node::{BUILDSPEC, BuildSlots, InMemorySlots, NodeConfig, NodeTarget, Nodes, ProjectSettings, provision_hash};
pub use ownership::{Ownership, TAG_INSTALL};
pub use relay::{MAX_CACHE_CREATIONS, RelayTarget, Relays};
pub use worker::{WorkerTarget, Workers};

use api_types::condition::{Condition, ConditionStatus, ConditionType};

use crate::autoscale::{Autoscaler, ScaleConfig};
use crate::cloud::gated::Gated;
use crate::cloud::{AppScaling, Caches, Cloud, Ecs, Metrics, Queues, TargetGroups};
use crate::gate::CallGate;
use crate::observe::{ServiceObserver, TaskDefinitions};

/// Whether something first found missing at `since` has stayed absent for
/// `grace` by `now` (never, when it was not found missing before). See
/// [`WorkloadConfig::absence_grace`].
fn absent_long_enough(
    since: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
    grace: Duration,
) -> bool {
    since.is_some_and(|since| (now - since).to_std().unwrap_or_default() >= grace)
}

/// Settings of the workload runners.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    /// The AWS Region (for the `awslogs` driver).
    pub region: String,
    /// How soon to look again while a rollout, a cache or a teardown is in flight.
    pub poll_in_flight: Duration,
    /// How old an observation of a settled service may be before a reconcile
    /// describes it again (AWS events and Mooring's own writes refresh it
    /// sooner); also how often a worker's dead-letter queue is read again.
    pub observe_max_age: Duration,
    /// The autoscaler's settings.
    pub scale: ScaleConfig,
    /// How long a recorded service, queue or cache that Mooring did not
    /// delete must stay absent from AWS's reads before Mooring believes it is
    /// gone (30 s). AWS's reads are eventually consistent: something created
    /// moments ago may not be listed yet, and forgetting it then would leave
    /// it behind, unrecorded. Longer than the cloud's consistency window.
    pub absence_grace: Duration,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            region: "us-east-1".into(),
            poll_in_flight: Duration::from_secs(10),
            observe_max_age: Duration::from_secs(60),
            scale: ScaleConfig::default(),
            absence_grace: Duration::from_secs(30),
        }
    }
}

/// The runners of the ECS kinds: one per controller, shared by the relay and
/// worker reconcilers so observations batch across resources.
pub struct Workloads {
    cloud: Cloud,
    observer: ServiceObserver,
    /// When each worker's dead-letter queue was last read, and for which
    /// generation (see `worker::dead_letter_due`).
    dead_letter_checks: std::sync::Mutex<std::collections::HashMap<String, (i64, tokio::time::Instant)>>,
    task_definitions: TaskDefinitions,
    scaler: Autoscaler,
    config: WorkloadConfig,
    /// The client of a rollout's HTTP checks.
    http: reqwest::Client,
}

/// The facades of one reconcile, behind its gate.
struct Calls<'a> {
    ecs: Gated<'a, dyn Ecs>,
    queues: Gated<'a, dyn Queues>,
    caches: Gated<'a, dyn Caches>,
    metrics: Gated<'a, dyn Metrics>,
    scaling: Gated<'a, dyn AppScaling>,
    targets: Gated<'a, dyn TargetGroups>,
}

impl Workloads {
    /// Runners over `cloud`.
    pub fn new(cloud: Cloud, config: WorkloadConfig) -> Arc<Workloads> {
        Arc::new(Workloads {
            observer: ServiceObserver::new(config.observe_max_age),
            dead_letter_checks: Default::default(),
            task_definitions: TaskDefinitions::default(),
            scaler: Autoscaler::new(config.scale.clone()),
            http: reqwest::Client::new(),
            cloud,
            config,
        })
    }

    /// The relay reconciler over these runners.
    pub fn relays(self: &Arc<Self>) -> Relays {
        Relays(self.clone())
    }

    /// The worker reconciler over these runners.
    pub fn workers(self: &Arc<Self>) -> Workers {
        Workers(self.clone())
    }

    fn calls<'a>(&'a self, gate: &'a dyn CallGate) -> Calls<'a> {
        Calls {
            ecs: Gated::new(self.cloud.ecs.as_ref(), gate),
            queues: Gated::new(self.cloud.queues.as_ref(), gate),
            caches: Gated::new(self.cloud.caches.as_ref(), gate),
            metrics: Gated::new(self.cloud.metrics.as_ref(), gate),
            scaling: Gated::new(self.cloud.scaling.as_ref(), gate),
            targets: Gated::new(self.cloud.targets.as_ref(), gate),
        }
    }
}

/// True when the last status says all is well for this generation: then a
/// recent cached observation is good enough.
fn settled(conditions: &[Condition], generation: i64) -> bool {
    let is = |t: ConditionType, want: bool| {
        conditions.iter().any(|c| {
            c.type_ == t
                && c.observed_generation == Some(generation)
                && c.status == if want { ConditionStatus::True } else { ConditionStatus::False }
        })
    };
    is(ConditionType::Synced, true) && is(ConditionType::Ready, true) && is(ConditionType::Progressing, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absence_is_believed_only_after_the_grace_as_a_table() {
        let now = chrono::Utc::now();
        let ago = |s: i64| Some(now - chrono::Duration::seconds(s));
        // (first found missing, believed gone)
        let cases =
            [(None, false), (ago(0), false), (ago(29), false), (ago(30), true), (ago(600), true), (ago(-5), false)];
        for (since, gone) in cases {
            assert_eq!(absent_long_enough(since, now, Duration::from_secs(30)), gone, "{since:?}");
        }
    }
}
