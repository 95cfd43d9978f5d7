//! `Worker`: an SQS consumer service on ECS. Mooring owns the queue and its
//! dead-letter queue, and scales the service with the backlog (to zero when idle).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{self, Container, DeletionPolicy, Network};
use crate::condition::Condition;
use crate::document::{Resource, Spec};
use crate::meta::Kind;
use crate::patterns;
use crate::relay::{Replicas, ScalingDecision, default_idle, validate_bounds};
use crate::status::{AppliedTags, QueueRef, ServiceRef};
use crate::validate::{Validate, Violations};

/// A Worker document.
pub type Worker = Resource<WorkerSpec, WorkerStatus>;

/// A queue consumer on ECS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkerSpec {
    /// ECS cluster name or ARN.
    #[schemars(regex(pattern = patterns::CLUSTER))]
    pub cluster: String,
    /// Task CPU units (Fargate values: 256 … 16384).
    #[serde(default = "default_cpu")]
    pub cpu: u32,
    /// Task memory in MiB; must be valid for `cpu`.
    #[serde(default = "default_memory")]
    pub memory: u32,
    /// The consumer. Its environment gets `QUEUE_URL`.
    pub container: Container,
    /// Extra containers (log routers, agents).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 9))]
    pub sidecars: Vec<Container>,
    /// The role the application code assumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::ROLE_ARN))]
    pub task_role_arn: Option<String>,
    /// The role ECS uses to pull images, read secrets and write logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::ROLE_ARN))]
    pub execution_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// The queue Mooring owns for this worker.
    #[serde(default)]
    pub queue: Queue,
    #[serde(default)]
    pub scaling: WorkerScaling,
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Tags put on every AWS resource this resource owns (cost allocation);
    /// `mooring:*` tags are Mooring's own and cannot be set here.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tags: crate::common::UserTags,
    /// Where the tasks run: `FARGATE` (on demand), or `FARGATE_SPOT` (up to
    /// 70% cheaper; AWS may reclaim a task with two minutes' notice, and its
    /// message returns to the queue after the visibility timeout). Fixed once
    /// the service exists.
    #[serde(default)]
    pub capacity: Capacity,
    /// With `FARGATE_SPOT`: this many tasks always run on `FARGATE`, the rest on spot.
    #[serde(default)]
    #[schemars(range(min = 0, max = 5000))]
    pub on_demand_base: u32,
    /// Task storage in GiB (ECS gives 20 without it): room for the files a
    /// batch job downloads and converts.
    #[serde(default, rename = "ephemeralStorageGiB", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 21, max = 200))]
    pub ephemeral_storage_gib: Option<u32>,
}

/// The Fargate capacity a worker's tasks run on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Capacity {
    /// On demand (launch type FARGATE).
    #[default]
    Fargate,
    /// Spot capacity (the FARGATE_SPOT capacity provider, with `onDemandBase`
    /// tasks on FARGATE); the cluster must have both capacity providers.
    FargateSpot,
}

fn default_cpu() -> u32 {
    256
}
fn default_memory() -> u32 {
    512
}

/// The SQS queue (and dead-letter queue) of a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Queue {
    /// Queue name; `<namespace>_<name>` when omitted (shortened with a hash past 71 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::QUEUE_NAME))]
    pub name: Option<String>,
    #[serde(default = "default_visibility")]
    #[schemars(range(min = 0, max = 43200))]
    pub visibility_timeout_seconds: u32,
    #[serde(default = "default_retention")]
    #[schemars(range(min = 60, max = 1209600))]
    pub message_retention_seconds: u32,
    #[serde(default)]
    pub fifo: bool,
    /// Move a message to the dead-letter queue after this many receives.
    #[serde(default)]
    pub dead_letter: DeadLetter,
    /// Keep the queues when the worker is deleted (`Retain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}

fn default_visibility() -> u32 {
    30
}
fn default_retention() -> u32 {
    345_600
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            name: None,
            visibility_timeout_seconds: default_visibility(),
            message_retention_seconds: default_retention(),
            fifo: false,
            dead_letter: DeadLetter::default(),
            deletion_policy: None,
        }
    }
}

/// The redrive policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeadLetter {
    #[serde(default = "default_receives")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_receive_count: u32,
}

fn default_receives() -> u32 {
    5
}

impl Default for DeadLetter {
    fn default() -> Self {
        DeadLetter { max_receive_count: default_receives() }
    }
}

/// Autoscaling of a worker: backlog per replica and CPU; `min` may be 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkerScaling {
    #[serde(default)]
    #[schemars(range(min = 0, max = 5000))]
    pub min: u32,
    #[serde(default = "default_worker_max")]
    #[schemars(range(min = 1, max = 5000))]
    pub max: u32,
    /// Backlog (visible + in-flight messages) one replica may carry.
    #[serde(default = "default_depth")]
    #[schemars(range(min = 1))]
    pub queue_depth_target: u32,
    /// Average CPU percent per task to keep, as a second metric beside the
    /// backlog. Off unless set: a worker's load is its queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub cpu_target_percent: Option<u32>,
    #[serde(default = "default_idle")]
    #[schemars(range(min = 0, max = 86400))]
    pub scale_in_after_idle_seconds: u32,
    #[serde(default)]
    pub mode: crate::relay::ScalingMode,
}

fn default_worker_max() -> u32 {
    10
}
fn default_depth() -> u32 {
    500
}

impl Default for WorkerScaling {
    fn default() -> Self {
        WorkerScaling {
            min: 0,
            max: default_worker_max(),
            queue_depth_target: default_depth(),
            cpu_target_percent: None,
            scale_in_after_idle_seconds: default_idle(),
            mode: Default::default(),
        }
    }
}

impl Spec for WorkerSpec {
    const KIND: Kind = Kind::Worker;
}

impl Validate for WorkerSpec {
    fn validate(&self, path: &str, v: &mut Violations) {
        common::validate_task_size(self.cpu, self.memory, path, v);
        common::validate_tags(&self.tags, &format!("{path}.tags"), v);
        let containers: Vec<_> = std::iter::once((format!("{path}.container"), &self.container))
            .chain(self.sidecars.iter().enumerate().map(|(i, c)| (format!("{path}.sidecars[{i}]"), c)))
            .collect();
        common::validate_containers(&containers, self.cpu, self.memory, &format!("{path}.container"), v);
        if self.container.env.contains_key("QUEUE_URL") || self.container.secrets.contains_key("QUEUE_URL") {
            v.push(format!("{path}.container.env.QUEUE_URL"), "is set by Mooring to the worker's queue URL");
        }
        validate_bounds(self.scaling.min, self.scaling.max, self.scaling.mode, &format!("{path}.scaling"), v);
        if let Some(name) = &self.queue.name
            && name.ends_with(".fifo") != self.queue.fifo
        {
            v.push(format!("{path}.queue.name"), "must end in .fifo exactly when queue.fifo is true");
        }
        if self.on_demand_base > 0 && self.capacity != Capacity::FargateSpot {
            v.push(
                format!("{path}.onDemandBase"),
                "is only for capacity FARGATE_SPOT (every task is on demand already)",
            );
        }
    }
}

/// What Mooring observed about a worker, and the identities of what it owns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The queue the worker consumes (recorded before it is created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueRef>,
    /// The queue's dead-letter queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_queue: Option<QueueRef>,
    /// The ECS service (recorded before it is created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceRef>,
    /// Services left behind by a change of `spec.cluster`, drained and deleted
    /// once the new service is steady.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retiring_services: Vec<ServiceRef>,
    /// The task definition family the worker's revisions are registered in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definition_arn: Option<String>,
    /// A task definition whose rollout the circuit breaker stopped: Mooring
    /// does not push it again until the spec changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_task_definition_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<Replicas>,
    /// Visible + in-flight messages at the last look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scaling: Option<ScalingDecision>,
    /// The Application Auto Scaling target Mooring registered on the service
    /// (`service/CLUSTER/NAME`, `scaling.mode: aws-native`), recorded before
    /// it is registered, so it is removed wherever the spec goes next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalable_target: Option<String>,
    /// `spec.tags` as last propagated to the AWS resources.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub applied_tags: AppliedTags,
}

crate::status::impl_status!(WorkerStatus);
