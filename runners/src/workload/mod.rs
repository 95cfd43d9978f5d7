//! Observe → diff → apply for the kinds that run on ECS (`Relay`, `Worker`),
//! in AWS terms and free of storage: the controller hands in a resource and a
//! gate, and gets back conditions, status outputs, events and when to look
//! again (a [`Report`]), or what the teardown still waits for ([`Teardown`]).

mod node;
mod relay;
mod service;
mod worker;

use std::time::Duration;

pub use node::{BUILDSPEC, NodeConfig, NodeTarget, Nodes, ProjectSettings, provision_hash};

use api_types::condition::{Condition, ConditionStatus, ConditionType};
use serde_json::{Map, Value};

use crate::cloud::gated::Gated;
use crate::cloud::{Caches, Cloud, CloudError, Ecs, ErrorKind, Queues};
use crate::gate::CallGate;
use crate::observe::{ServiceObserver, TaskDefinitions};

/// Settings of the workload runners.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    /// The AWS Region (for the `awslogs` driver).
    pub region: String,
    /// How soon to look again while a rollout, a cache or a teardown is in flight.
    pub poll_in_flight: Duration,
    /// How old an observation of a settled service may be before a reconcile
    /// describes it again (AWS events and Mooring's own writes refresh it sooner).
    pub observe_max_age: Duration,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            region: "us-east-1".into(),
            poll_in_flight: Duration::from_secs(10),
            observe_max_age: Duration::from_secs(60),
        }
    }
}

/// The runners of the ECS kinds: one per controller, shared by all reconciles
/// so observations batch across resources.
pub struct Workloads {
    cloud: Cloud,
    observer: ServiceObserver,
    task_definitions: TaskDefinitions,
    config: WorkloadConfig,
}

/// One resource, as a runner needs it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a, S, St> {
    pub uid: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub generation: i64,
    pub spec: &'a S,
    pub status: &'a St,
    /// Observe AWS afresh (an AWS event announced a change).
    pub fresh: bool,
    pub now: chrono::DateTime<chrono::Utc>,
}

/// An event to record on the resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub warning: bool,
    pub reason: String,
    pub message: String,
}

impl Event {
    fn normal(reason: &str, message: impl Into<String>) -> Event {
        Event { warning: false, reason: reason.into(), message: message.into() }
    }
    fn warning(reason: &str, message: impl Into<String>) -> Event {
        Event { warning: true, reason: reason.into(), message: message.into() }
    }
}

/// What a reconcile found and did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub conditions: Vec<Condition>,
    /// Status fields to set (`null` removes one).
    pub outputs: Map<String, Value>,
    pub events: Vec<Event>,
    pub requeue_after: Option<Duration>,
}

/// Where a teardown is.
#[derive(Debug, Clone)]
pub enum Teardown {
    /// Nothing of the resource is left in AWS (or it was released under `Retain`).
    Done,
    /// Still draining or deleting: look again after this long.
    Pending(Duration, String),
    /// Still going, with status to record first (a build's intent and progress).
    Progress(Report),
}

/// Why a reconcile or teardown stopped.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RunError {
    /// An AWS call failed.
    #[error("{0}")]
    Cloud(#[from] CloudError),
    /// What Mooring would manage exists and belongs to someone else.
    #[error("{0}")]
    Conflict(String),
}

impl RunError {
    /// The kind of cloud failure, if it was one.
    pub fn cloud_kind(&self) -> Option<ErrorKind> {
        match self {
            RunError::Cloud(e) => Some(e.kind),
            RunError::Conflict(_) => None,
        }
    }
}

/// The facades of one reconcile, behind its gate.
struct Calls<'a> {
    ecs: Gated<'a, dyn Ecs>,
    queues: Gated<'a, dyn Queues>,
    caches: Gated<'a, dyn Caches>,
}

impl Workloads {
    /// Runners over `cloud`.
    pub fn new(cloud: Cloud, config: WorkloadConfig) -> Workloads {
        Workloads {
            observer: ServiceObserver::new(config.observe_max_age),
            task_definitions: TaskDefinitions::default(),
            cloud,
            config,
        }
    }

    /// Hints that the ECS service of `namespace/name` in `cluster` is about to
    /// be reconciled (see [`ServiceObserver::expect`]).
    pub fn expect(&self, cluster: &str, namespace: &str, name: &str) {
        self.observer.expect(cluster, &crate::names::service_name(namespace, name));
    }

    fn calls<'a>(&'a self, gate: &'a dyn CallGate) -> Calls<'a> {
        Calls {
            ecs: Gated::new(self.cloud.ecs.as_ref(), gate),
            queues: Gated::new(self.cloud.queues.as_ref(), gate),
            caches: Gated::new(self.cloud.caches.as_ref(), gate),
        }
    }
}

fn condition(
    type_: ConditionType,
    status: impl Into<ConditionStatus>,
    reason: &str,
    message: impl Into<String>,
    generation: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> Condition {
    Condition::new(type_, status, reason, message, Some(generation), now)
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
