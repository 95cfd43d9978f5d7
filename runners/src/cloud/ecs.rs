//! ECS: task definitions and services, in the terms Mooring needs.
//!
//! Contract (both implementations): `describe_services` takes at most
//! [`MAX_DESCRIBE_SERVICES`] names and omits names that do not exist (or are
//! INACTIVE); task definitions are immutable, so a description may be cached by
//! ARN forever; `create_service` with a `client_token` already used for the same
//! service returns that service instead of failing.

use std::collections::BTreeMap;

use async_trait::async_trait;

use api_types::rollout::{CanaryShift, DeploymentState, DeploymentStrategy, LinearShift, RolloutStage};

use super::{CloudResult, Tags};

/// AWS refuses a DescribeServices with more names than this.
pub const MAX_DESCRIBE_SERVICES: usize = 10;
/// GetTaskProtection takes at most this many tasks per call.
pub const MAX_TASK_PROTECTION: usize = 10;
/// The tasks of a service looked at for scale-in protection (one ListTasks page).
pub const MAX_LISTED_TASKS: usize = 100;

/// `awslogs` settings of a container.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct LogConfig {
    pub group: String,
    pub region: String,
    pub stream_prefix: String,
}

/// One container of a task definition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct ContainerDefinition {
    pub name: String,
    pub image: String,
    pub cpu: Option<u32>,
    pub memory: Option<u32>,
    pub port: Option<u16>,
    pub command: Vec<String>,
    pub environment: BTreeMap<String, String>,
    /// Variable name → Secrets Manager ARN.
    pub secrets: BTreeMap<String, String>,
    pub essential: bool,
    pub log: LogConfig,
    /// Seconds between SIGTERM and SIGKILL when ECS stops the task (a relay's
    /// `deployment.drainSeconds`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u32>,
}

/// What RegisterTaskDefinition gets: always Fargate, network mode `awsvpc`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct TaskDefinitionInput {
    pub family: String,
    pub cpu: u32,
    pub memory: u32,
    pub task_role_arn: Option<String>,
    pub execution_role_arn: Option<String>,
    pub containers: Vec<ContainerDefinition>,
    /// Task storage in GiB (`ephemeralStorage`; ECS's 20 when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage_gib: Option<u32>,
    #[serde(skip)]
    pub tags: Tags,
}

/// A registered task definition revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDefinition {
    pub arn: String,
    pub family: String,
    pub revision: i32,
    pub active: bool,
    pub tags: Tags,
}

/// A service's network configuration (Fargate tasks get their own ENI).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetworkConfig {
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub assign_public_ip: bool,
}

/// A target group the service registers its tasks in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancerRef {
    pub target_group_arn: String,
    pub container_name: String,
    pub container_port: u16,
    /// The second target group and the listener rules of a staged strategy
    /// (`loadBalancers[].advancedConfiguration`).
    pub advanced: Option<AdvancedLoadBalancer>,
}

/// What ECS needs to shift traffic between two target groups itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvancedLoadBalancer {
    pub alternate_target_group_arn: String,
    pub production_listener_rule: String,
    pub test_listener_rule: Option<String>,
    pub role_arn: String,
}

/// What ECS does when a hook answers (or times out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookAction {
    Continue,
    Rollback,
}

/// A PAUSE lifecycle hook: the deployment stops at `stage` until
/// ContinueServiceDeployment answers, or `timeout_minutes` pass and ECS takes
/// `timeout_action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleHook {
    pub stage: RolloutStage,
    pub timeout_minutes: u32,
    pub timeout_action: HookAction,
}

/// Deployment settings: the strategy, the circuit breaker, the rolling
/// percentages, and for the staged strategies their shift, bake and hooks.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentConfig {
    pub strategy: DeploymentStrategy,
    pub circuit_breaker: bool,
    pub rollback: bool,
    pub min_healthy_percent: u32,
    pub max_percent: u32,
    /// Staged strategies: minutes both revisions are kept after the shift.
    pub bake_minutes: u32,
    pub canary: Option<CanaryShift>,
    pub linear: Option<LinearShift>,
    pub hooks: Vec<LifecycleHook>,
}

impl Default for DeploymentConfig {
    /// Mooring's default rollout: rolling, the circuit breaker with rollback,
    /// never below the running count, up to double during a rollout (ECS's
    /// percentages).
    fn default() -> Self {
        DeploymentConfig {
            strategy: DeploymentStrategy::Rolling,
            circuit_breaker: true,
            rollback: true,
            min_healthy_percent: 100,
            max_percent: 200,
            bake_minutes: 0,
            canary: None,
            linear: None,
            hooks: vec![],
        }
    }
}

/// How StopServiceDeployment stops one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopKind {
    /// Back to the previous revision.
    Rollback,
    /// Stop where it is.
    Abort,
}

/// A lifecycle hook of a service deployment, as ECS reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookDetail {
    pub hook_id: String,
    /// `AWAITING_ACTION` for a PAUSE hook waiting for an answer.
    pub awaiting: bool,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A service deployment (DescribeServiceDeployments), in the terms status uses.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDeployment {
    pub arn: String,
    pub state: DeploymentState,
    pub stage: Option<RolloutStage>,
    pub status_reason: Option<String>,
    /// The new revision's requested share of production and test traffic.
    pub production_percent: Option<f64>,
    pub test_percent: Option<f64>,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub bake_minutes: Option<u32>,
    pub hooks: Vec<HookDetail>,
}

/// Tasks on the FARGATE_SPOT capacity provider, `on_demand_base` of them on
/// FARGATE (a service without it runs on launch type FARGATE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpotCapacity {
    pub on_demand_base: u32,
}

/// What CreateService gets (launch type Fargate, or spot capacity).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceInput {
    pub cluster: String,
    pub name: String,
    pub task_definition: String,
    pub desired_count: u32,
    pub network: Option<NetworkConfig>,
    pub load_balancers: Vec<LoadBalancerRef>,
    pub deployment: DeploymentConfig,
    pub health_check_grace_seconds: Option<u32>,
    pub spot: Option<SpotCapacity>,
    pub tags: Tags,
    /// Idempotency token (at most 36 characters).
    pub client_token: String,
}

/// What UpdateService gets: only the fields that differ are `Some`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceUpdate {
    pub cluster: String,
    pub name: String,
    pub task_definition: Option<String>,
    pub desired_count: Option<u32>,
    pub network: Option<NetworkConfig>,
    pub load_balancers: Option<Vec<LoadBalancerRef>>,
    pub deployment: Option<DeploymentConfig>,
    pub health_check_grace_seconds: Option<u32>,
    /// A new on-demand base for a spot service.
    pub spot: Option<SpotCapacity>,
}

impl ServiceUpdate {
    /// True when nothing would change.
    pub fn is_empty(&self) -> bool {
        self.task_definition.is_none()
            && self.desired_count.is_none()
            && self.network.is_none()
            && self.load_balancers.is_none()
            && self.deployment.is_none()
            && self.health_check_grace_seconds.is_none()
            && self.spot.is_none()
    }
}

/// A service's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceState {
    Active,
    Draining,
    Inactive,
}

/// Where a deployment's rollout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutState {
    InProgress,
    Completed,
    Failed,
}

/// One deployment of a service (`PRIMARY` is the newest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub id: String,
    pub primary: bool,
    pub task_definition: String,
    pub desired_count: u32,
    pub running_count: u32,
    pub rollout: RolloutState,
    pub rollout_reason: Option<String>,
}

/// A service as DescribeServices reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub arn: String,
    pub name: String,
    pub cluster: String,
    pub state: ServiceState,
    pub task_definition: String,
    pub desired_count: u32,
    pub running_count: u32,
    pub pending_count: u32,
    pub network: Option<NetworkConfig>,
    pub load_balancers: Vec<LoadBalancerRef>,
    /// `None` when the endpoint does not report it (moto drops it).
    pub deployment: Option<DeploymentConfig>,
    pub health_check_grace_seconds: Option<u32>,
    pub deployments: Vec<Deployment>,
    /// The service deployment of the newest change (staged strategies are
    /// followed through it).
    pub current_service_deployment: Option<String>,
    /// Spot capacity, when the service runs on FARGATE_SPOT.
    pub spot: Option<SpotCapacity>,
    pub tags: Tags,
}

impl Service {
    /// The newest deployment.
    pub fn primary(&self) -> Option<&Deployment> {
        self.deployments.iter().find(|d| d.primary)
    }
}

/// ECS, as Mooring uses it.
#[async_trait]
pub trait Ecs: Send + Sync {
    /// Services of `cluster` by name (at most [`MAX_DESCRIBE_SERVICES`]), with
    /// tags; names that do not exist or are INACTIVE are left out.
    async fn describe_services(&self, cluster: &str, names: &[String]) -> CloudResult<Vec<Service>>;
    /// Creates a service; the same `client_token` for the same service returns it.
    async fn create_service(&self, input: &ServiceInput) -> CloudResult<Service>;
    /// Changes what `update` sets.
    async fn update_service(&self, update: &ServiceUpdate) -> CloudResult<Service>;
    /// Deletes a service (`force`: even with running tasks). It drains, then goes INACTIVE.
    async fn delete_service(&self, cluster: &str, name: &str, force: bool) -> CloudResult<()>;
    /// Replaces tags `add` and removes `remove` on a service or task definition.
    async fn retag(&self, arn: &str, add: &Tags, remove: &[String]) -> CloudResult<()>;
    /// Registers a new revision of a family.
    async fn register_task_definition(&self, input: &TaskDefinitionInput) -> CloudResult<TaskDefinition>;
    /// One revision, with its tags.
    async fn describe_task_definition(&self, arn: &str) -> CloudResult<TaskDefinition>;
    /// ACTIVE revisions of a family, newest first.
    async fn list_task_definitions(&self, family: &str) -> CloudResult<Vec<String>>;
    /// Marks a revision INACTIVE.
    async fn deregister_task_definition(&self, arn: &str) -> CloudResult<()>;
    /// The ARNs of a service's running tasks (at most [`MAX_LISTED_TASKS`]).
    async fn list_service_tasks(&self, cluster: &str, service: &str) -> CloudResult<Vec<String>>;
    /// Which of `tasks` (at most [`MAX_TASK_PROTECTION`]) have scale-in
    /// protection on: a busy worker sets it from inside its task, and ECS does
    /// not stop such a task when the desired count drops.
    async fn protected_tasks(&self, cluster: &str, tasks: &[String]) -> CloudResult<Vec<String>>;
    /// One service deployment; `None` when ECS does not know the ARN.
    async fn describe_service_deployment(&self, arn: &str) -> CloudResult<Option<ServiceDeployment>>;
    /// Answers a PAUSE hook that is awaiting action.
    async fn continue_service_deployment(&self, arn: &str, hook_id: &str, action: HookAction) -> CloudResult<()>;
    /// Stops a deployment in progress (rolling back, or where it is).
    async fn stop_service_deployment(&self, arn: &str, kind: StopKind) -> CloudResult<()>;
}
