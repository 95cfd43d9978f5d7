//! `Relay`: an HTTP service on ECS (Fargate) behind a load balancer, with sidecars
//! (such as OPA), secrets by ARN, CPU-based autoscaling and an optional Redis cache.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{self, Container, DeletionPolicy, Network};
use crate::condition::Condition;
use crate::document::{Resource, Spec};
use crate::meta::Kind;
use crate::patterns;
use crate::rollout::{CanaryShift, DeploymentStrategy, LinearShift, RolloutStatus, Verify};
use crate::status::{AppliedTags, CacheRef, ServiceRef};
use crate::validate::{Validate, Violations};

/// A Relay document.
pub type Relay = Resource<RelaySpec, RelayStatus>;

/// An HTTP service on ECS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RelaySpec {
    /// ECS cluster name or ARN.
    #[schemars(regex(pattern = patterns::CLUSTER))]
    pub cluster: String,
    /// Task CPU units (Fargate values: 256 … 16384).
    #[serde(default = "default_cpu")]
    pub cpu: u32,
    /// Task memory in MiB; must be valid for `cpu`.
    #[serde(default = "default_memory")]
    pub memory: u32,
    /// The main container first, then sidecars.
    #[schemars(length(min = 1, max = 10))]
    pub containers: Vec<Container>,
    /// The role the application code assumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::ROLE_ARN))]
    pub task_role_arn: Option<String>,
    /// The role ECS uses to pull images, read secrets and write logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::ROLE_ARN))]
    pub execution_role_arn: Option<String>,
    /// awsvpc networking; omitted means the cluster's defaults are not enough on
    /// Fargate, so set it for real deployments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// The target group the service registers its tasks in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancer>,
    /// The container health check (HTTP path on the main container's port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<RelayHealthCheck>,
    #[serde(default)]
    pub scaling: RelayScaling,
    /// A Redis replication group owned by this relay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<Cache>,
    #[serde(default)]
    pub deployment: Deployment,
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Tags put on every AWS resource this resource owns (cost allocation);
    /// `mooring:*` tags are Mooring's own and cannot be set here.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tags: crate::common::UserTags,
}

fn default_cpu() -> u32 {
    256
}
fn default_memory() -> u32 {
    512
}

/// Where the service's tasks are registered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancer {
    #[schemars(regex(pattern = patterns::TARGET_GROUP_ARN))]
    pub target_group_arn: String,
    /// The container registered; the first container when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::CONTAINER_NAME))]
    pub container_name: Option<String>,
    #[schemars(range(min = 1, max = 65535))]
    pub container_port: u16,
    /// The second target group of a blue/green, canary or linear rollout:
    /// ECS registers the new revision's tasks here and moves traffic to it
    /// (the two groups swap roles with every deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::TARGET_GROUP_ARN))]
    pub alternate_target_group_arn: Option<String>,
    /// The listener rule that carries production traffic; ECS rewrites its
    /// weights during a rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::LISTENER_RULE_ARN))]
    pub production_listener_rule_arn: Option<String>,
    /// The listener rule of the test listener: the new revision gets its
    /// traffic first, and Mooring's HTTP checks go through it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::LISTENER_RULE_ARN))]
    pub test_listener_rule_arn: Option<String>,
    /// The role ECS uses to change the listener rules (the managed policy
    /// AmazonECSInfrastructureRolePolicyForLoadBalancers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::ROLE_ARN))]
    pub role_arn: Option<String>,
}

/// An HTTP health check of the main container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RelayHealthCheck {
    #[serde(default = "crate::node::default_health_path")]
    #[schemars(regex(pattern = patterns::HTTP_PATH))]
    pub path: String,
    #[serde(default = "default_interval")]
    #[schemars(range(min = 5, max = 300))]
    pub interval_seconds: u32,
    #[serde(default = "default_grace")]
    #[schemars(range(min = 0, max = 2147483647))]
    pub grace_period_seconds: u32,
}

fn default_interval() -> u32 {
    30
}
fn default_grace() -> u32 {
    60
}

/// Who acts on the scaling rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ScalingMode {
    /// Mooring's controller computes and sets the desired count.
    #[default]
    Controller,
    /// The rules are rendered as Application Auto Scaling policies and alarms.
    AwsNative,
}

/// Autoscaling of a relay. The spec owns the bounds and targets; the controller
/// owns the desired count, so a spec update never resets it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RelayScaling {
    #[serde(default = "default_relay_min")]
    #[schemars(range(min = 0, max = 5000))]
    pub min: u32,
    #[serde(default = "default_relay_max")]
    #[schemars(range(min = 1, max = 5000))]
    pub max: u32,
    #[serde(default = "default_cpu_target")]
    #[schemars(range(min = 1, max = 100))]
    pub cpu_target_percent: u32,
    /// Optional second metric: ALB requests per target per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub requests_per_target_per_minute: Option<u32>,
    #[serde(default = "default_idle")]
    #[schemars(range(min = 0, max = 86400))]
    pub scale_in_after_idle_seconds: u32,
    #[serde(default)]
    pub mode: ScalingMode,
}

pub(crate) fn default_cpu_target() -> u32 {
    70
}
pub(crate) fn default_idle() -> u32 {
    600
}
fn default_relay_min() -> u32 {
    2
}
fn default_relay_max() -> u32 {
    10
}

impl Default for RelayScaling {
    fn default() -> Self {
        RelayScaling {
            min: default_relay_min(),
            max: default_relay_max(),
            cpu_target_percent: default_cpu_target(),
            requests_per_target_per_minute: None,
            scale_in_after_idle_seconds: default_idle(),
            mode: ScalingMode::Controller,
        }
    }
}

/// An ElastiCache Redis replication group owned by the relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cache {
    #[serde(default = "default_node_type")]
    #[schemars(regex(pattern = patterns::CACHE_NODE_TYPE))]
    pub node_type: String,
    #[serde(default = "default_engine_version")]
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)*$"))]
    pub engine_version: String,
    /// Read replicas besides the primary.
    #[serde(default)]
    #[schemars(range(min = 0, max = 5))]
    pub replicas: u32,
    /// Keep the replication group when the relay is deleted (`Retain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}

fn default_node_type() -> String {
    "cache.t4g.micro".to_string()
}
fn default_engine_version() -> String {
    "7.1".to_string()
}

/// How ECS rolls out a new task definition (see docs/rollouts.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deployment {
    /// `Rolling` (the default), or one of ECS's staged strategies, which need
    /// a load balancer with an alternate target group.
    #[serde(default)]
    pub strategy: DeploymentStrategy,
    /// Stop a failing rollout (and roll back, with `rollback`).
    #[serde(default = "crate::common::yes")]
    pub circuit_breaker: bool,
    #[serde(default = "crate::common::yes")]
    pub rollback: bool,
    #[serde(default = "default_min_healthy")]
    #[schemars(range(min = 0, max = 100))]
    pub min_healthy_percent: u32,
    #[serde(default = "default_max_percent")]
    #[schemars(range(min = 100, max = 400))]
    pub max_percent: u32,
    /// Staged strategies: how long both revisions are kept after all
    /// production traffic moved, the window in which a rollback is instant.
    #[serde(default = "default_bake")]
    #[schemars(range(min = 0, max = 1440))]
    pub bake_minutes: u32,
    /// `strategy: Canary`: its share and bake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryShift>,
    /// `strategy: Linear`: its steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear: Option<LinearShift>,
    /// Staged strategies: the gates Mooring runs (HTTP checks, alarms, approval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Verify>,
    /// How long a task gets to finish in-flight requests once ECS stops it
    /// (the containers' `stopTimeout`). The target groups' deregistration
    /// delay should be at least this long; Mooring reads it (never changes
    /// it) and says so in an `Advisory` condition when it is shorter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 2, max = 120))]
    pub drain_seconds: Option<u32>,
}

fn default_min_healthy() -> u32 {
    100
}
fn default_max_percent() -> u32 {
    200
}
fn default_bake() -> u32 {
    5
}

impl Default for Deployment {
    fn default() -> Self {
        Deployment {
            strategy: DeploymentStrategy::Rolling,
            circuit_breaker: true,
            rollback: true,
            min_healthy_percent: default_min_healthy(),
            max_percent: default_max_percent(),
            bake_minutes: default_bake(),
            canary: None,
            linear: None,
            verify: None,
            drain_seconds: None,
        }
    }
}

impl Deployment {
    /// Every combination ECS or Mooring would refuse, with field paths.
    fn validate(&self, lb: Option<&LoadBalancer>, path: &str, v: &mut Violations) {
        if self.rollback && !self.circuit_breaker {
            v.push(format!("{path}.rollback"), "needs circuitBreaker: true (ECS rolls back only a stopped rollout)");
        }
        let strategy = self.strategy;
        if self.canary.is_some() && strategy != DeploymentStrategy::Canary {
            v.push(format!("{path}.canary"), format!("is only for strategy Canary (strategy is {strategy:?})"));
        }
        if self.linear.is_some() && strategy != DeploymentStrategy::Linear {
            v.push(format!("{path}.linear"), format!("is only for strategy Linear (strategy is {strategy:?})"));
        }
        if !strategy.staged() {
            if self.verify.is_some() {
                v.push(
                    format!("{path}.verify"),
                    "needs strategy BlueGreen, Canary or Linear (ECS runs lifecycle hooks only for those)",
                );
            }
            return;
        }
        let lb_path = path.replace(".deployment", ".loadBalancer");
        match lb {
            None => v.push(
                lb_path,
                format!("is required with strategy {strategy:?} (with alternateTargetGroupArn, productionListenerRuleArn and roleArn)"),
            ),
            Some(lb) => {
                let missing = [
                    ("alternateTargetGroupArn", lb.alternate_target_group_arn.is_none()),
                    ("productionListenerRuleArn", lb.production_listener_rule_arn.is_none()),
                    ("roleArn", lb.role_arn.is_none()),
                ];
                for (field, absent) in missing {
                    if absent {
                        v.push(format!("{lb_path}.{field}"), format!("is required with strategy {strategy:?}"));
                    }
                }
                if lb.alternate_target_group_arn.as_deref() == Some(lb.target_group_arn.as_str()) {
                    v.push(format!("{lb_path}.alternateTargetGroupArn"), "must differ from targetGroupArn");
                }
                if lb.test_listener_rule_arn.is_some()
                    && lb.test_listener_rule_arn == lb.production_listener_rule_arn
                {
                    v.push(format!("{lb_path}.testListenerRuleArn"), "must differ from productionListenerRuleArn");
                }
                if let Some(verify) = &self.verify
                    && !verify.http.is_empty()
                {
                    if lb.test_listener_rule_arn.is_none() {
                        v.push(
                            format!("{lb_path}.testListenerRuleArn"),
                            "is required for HTTP checks (they reach the new revision through the test listener)",
                        );
                    }
                    if verify.test_url.is_none() {
                        v.push(format!("{path}.verify.testUrl"), "is required for HTTP checks");
                    }
                }
            }
        }
    }
}

impl Spec for RelaySpec {
    const KIND: Kind = Kind::Relay;
}

impl Validate for RelaySpec {
    fn validate(&self, path: &str, v: &mut Violations) {
        common::validate_task_size(self.cpu, self.memory, path, v);
        common::validate_tags(&self.tags, &format!("{path}.tags"), v);
        let containers: Vec<_> =
            self.containers.iter().enumerate().map(|(i, c)| (format!("{path}.containers[{i}]"), c)).collect();
        common::validate_containers(&containers, self.cpu, self.memory, &format!("{path}.containers"), v);
        validate_bounds(self.scaling.min, self.scaling.max, self.scaling.mode, &format!("{path}.scaling"), v);
        self.deployment.validate(self.load_balancer.as_ref(), &format!("{path}.deployment"), v);
        if let Some(lb) = &self.load_balancer {
            let target = match &lb.container_name {
                Some(name) => self.containers.iter().find(|c| &c.name == name),
                None => self.containers.first(),
            };
            match target {
                None => v.push(
                    format!("{path}.loadBalancer.containerName"),
                    format!("no container is named {:?}", lb.container_name.as_deref().unwrap_or_default()),
                ),
                Some(c) if c.port != Some(lb.container_port) => v.push(
                    format!("{path}.loadBalancer.containerPort"),
                    format!("container {:?} does not listen on port {}", c.name, lb.container_port),
                ),
                Some(_) => {}
            }
            if self.network.is_none() {
                v.push(format!("{path}.network"), "is required with a load balancer (Fargate tasks register by IP)");
            }
        }
        if self.health_check.is_some() && self.containers.first().is_some_and(|c| c.port.is_none()) {
            v.push(format!("{path}.containers[0].port"), "is required for the health check");
        }
        if self.scaling.requests_per_target_per_minute.is_some() && self.load_balancer.is_none() {
            v.push(
                format!("{path}.scaling.requestsPerTargetPerMinute"),
                "needs a loadBalancer (the metric comes from its target group)",
            );
        }
    }
}

/// The bounds of a scaling block: `max ≥ min`, and `aws-native` cannot start
/// from zero (AWS target tracking never leaves a count of 0: refused rather
/// than rendered as something that would never wake up).
pub(crate) fn validate_bounds(min: u32, max: u32, mode: ScalingMode, path: &str, v: &mut Violations) {
    if max < min {
        v.push(format!("{path}.max"), format!("must be ≥ {path}.min ({min})"));
    }
    if mode == ScalingMode::AwsNative && min == 0 {
        v.push(
            format!("{path}.min"),
            "must be ≥ 1 with mode aws-native: AWS target tracking cannot start a service from zero \
             (use mode controller to scale to and from zero)",
        );
    }
}

/// Replica counts and the last scaling decision, with its inputs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Replicas {
    pub desired: u32,
    pub running: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<u32>,
    /// Running tasks with ECS scale-in protection on, reported while more
    /// tasks run than are desired: ECS keeps them until they drop it (a worker
    /// finishing its message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected: Option<u32>,
}

/// One autoscaler decision, recorded with the numbers that led to it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScalingDecision {
    pub from: u32,
    pub to: u32,
    pub reason: String,
    /// Metric name → observed value (CPU percent, backlog per replica, ...).
    #[serde(default)]
    pub inputs: std::collections::BTreeMap<String, f64>,
    pub time: chrono::DateTime<chrono::Utc>,
}

/// What Mooring observed about a relay, and the identities of what it owns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RelayStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The ECS service (recorded before it is created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceRef>,
    /// Services left behind by a change of `spec.cluster`, drained and deleted
    /// once the new service is steady.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retiring_services: Vec<ServiceRef>,
    /// The task definition family the relay's revisions are registered in.
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scaling: Option<ScalingDecision>,
    /// The Application Auto Scaling target Mooring registered on the service
    /// (`service/CLUSTER/NAME`, `scaling.mode: aws-native`), recorded before
    /// it is registered, so it is removed wherever the spec goes next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalable_target: Option<String>,
    /// The ElastiCache replication group (recorded before it is created; kept
    /// until it is gone after `spec.cache` was removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheRef>,
    /// `spec.tags` as last propagated to the AWS resources.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub applied_tags: AppliedTags,
    /// The service deployment of a staged strategy (BlueGreen, Canary,
    /// Linear): stage, traffic, gate, verdict; kept once finished until the next.
    /// (Boxed: most relays roll and have none.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Box<RolloutStatus>>,
}

crate::status::impl_status!(RelayStatus);
