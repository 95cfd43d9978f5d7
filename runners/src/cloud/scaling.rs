//! Application Auto Scaling, as Mooring uses it for `scaling.mode:
//! aws-native`: the same rules as the controller's autoscaler, rendered as a
//! scalable target on the ECS service's desired count and target-tracking
//! policies, so AWS keeps scaling while Mooring is down.
//!
//! Contract (both implementations): a scalable target is named by its
//! resource id (`service/CLUSTER/SERVICE`); registering an existing one
//! updates its bounds; deregistering one deletes its policies; policies are
//! put by name (an existing one is replaced).

use async_trait::async_trait;

use super::{CloudResult, Tags};

/// The scalable dimension of every target Mooring registers.
pub const ECS_DESIRED_COUNT: &str = "ecs:service:DesiredCount";

/// The prefix of the policies Mooring puts; others on the same target are left alone.
pub const POLICY_PREFIX: &str = "mooring-";

/// The resource id of an ECS service's scalable target (the cluster by name,
/// even when the spec gives its ARN).
pub fn resource_id(cluster: &str, service: &str) -> String {
    format!("service/{}/{service}", crate::names::cluster_name(cluster))
}

/// A scalable target: the bounds AWS keeps the desired count in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalableTarget {
    pub resource_id: String,
    pub min: u32,
    pub max: u32,
}

/// What a target-tracking policy tracks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackedMetric {
    /// `ECSServiceAverageCPUUtilization`.
    EcsCpu,
    /// Backlog per task by metric math: (visible + in-flight messages of the
    /// queue) / the service's running tasks (Container Insights'
    /// `RunningTaskCount`).
    BacklogPerTask { queue: String, cluster: String, service: String },
    /// A policy in a form Mooring does not render (someone else's, or one of
    /// Mooring's edited by hand): it never equals a rendered one.
    Unrecognized,
}

/// A target-tracking policy on a scalable target.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackingPolicy {
    /// Starts with [`POLICY_PREFIX`].
    pub name: String,
    pub metric: TrackedMetric,
    pub target: f64,
    /// Seconds after a scale-in before the next (the idle rule).
    pub scale_in_cooldown: u32,
    /// Seconds after a scale-out before the next.
    pub scale_out_cooldown: u32,
}

/// Application Auto Scaling, as Mooring uses it.
#[async_trait]
pub trait AppScaling: Send + Sync {
    /// The scalable target of `resource_id`, if registered.
    async fn describe_target(&self, resource_id: &str) -> CloudResult<Option<ScalableTarget>>;
    /// Registers the target, or updates the bounds of a registered one.
    async fn register_target(&self, target: &ScalableTarget, tags: &Tags) -> CloudResult<()>;
    /// Deregisters the target and with it its policies. Not found is an error
    /// of kind `NotFound`.
    async fn deregister_target(&self, resource_id: &str) -> CloudResult<()>;
    /// Every scaling policy on `resource_id` (Mooring's are named with
    /// [`POLICY_PREFIX`]; a policy not in a form Mooring renders reads as
    /// [`TrackedMetric::Unrecognized`]).
    async fn describe_policies(&self, resource_id: &str) -> CloudResult<Vec<TrackingPolicy>>;
    /// Puts (creates or replaces) a policy.
    async fn put_policy(&self, resource_id: &str, policy: &TrackingPolicy) -> CloudResult<()>;
    /// Deletes a policy by name.
    async fn delete_policy(&self, resource_id: &str, name: &str) -> CloudResult<()>;
}
