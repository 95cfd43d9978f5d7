//! The facades: one narrow trait per AWS service Mooring uses, in domain terms.
//!
//! Each has two implementations, the AWS SDK ([`crate::aws`]) and the simulated
//! cloud ([`crate::sim`]); the reconcilers see only these traits. AWS's batch
//! limits are part of the contract (a `describe_services` with more than
//! [`ecs::MAX_DESCRIBE_SERVICES`] names is refused by both). Every call a
//! reconciler makes goes through [`gated::Gated`], which takes a token from the
//! caller's [`CallGate`](crate::gate::CallGate) first and records the outcome.

pub mod alarms;
pub mod caches;
pub mod codebuild;
pub mod dns;
pub mod ec2;
pub mod ecs;
pub mod gated;
pub mod logs;
pub mod metrics;
pub mod ops;
pub mod queues;
pub mod scaling;
pub mod snapshots;
pub mod targets;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

pub use alarms::Alarms;
pub use caches::Caches;
pub use codebuild::Builds;
pub use dns::Dns;
pub use ec2::Ec2;
pub use ecs::Ecs;
pub use logs::Logs;
pub use metrics::Metrics;
pub use ops::Op;
pub use queues::Queues;
pub use scaling::AppScaling;
pub use snapshots::Snapshots;
pub use targets::TargetGroups;

/// AWS tags as a map (key → value).
pub type Tags = BTreeMap<String, String>;

/// The tag that marks a resource as owned by a Mooring resource (its uid).
pub const TAG_UID: &str = "mooring:uid";
/// The tag with the owning resource's `namespace/name`, for people reading the console.
pub const TAG_NAME: &str = "mooring:name";
/// The tag with the hash of a task definition's canonical rendering.
pub const TAG_RENDER_HASH: &str = "mooring:render-hash";

/// The clients of one cloud, real or simulated.
#[derive(Clone)]
pub struct Cloud {
    pub ecs: Arc<dyn Ecs>,
    pub queues: Arc<dyn Queues>,
    pub caches: Arc<dyn Caches>,
    /// CloudWatch, for the autoscaler's CPU reads.
    pub metrics: Arc<dyn Metrics>,
    /// Application Auto Scaling, for `scaling.mode: aws-native`.
    pub scaling: Arc<dyn AppScaling>,
    /// CloudWatch Logs, for `mooring logs`.
    pub logs: Arc<dyn Logs>,
    /// ELBv2 target groups, read (never changed) for a relay's drain check.
    pub targets: Arc<dyn TargetGroups>,
}

/// The clients a node needs: EC2 for the instance and volume, builds (CodeBuild
/// or local subprocesses) for the provisioner, and target groups; and a node
/// set's: Route53 for its members' DNS records; CloudWatch for the nodes'
/// alarms; EBS snapshots for their data volumes' backups.
#[derive(Clone)]
pub struct NodeCloud {
    pub ec2: Arc<dyn Ec2>,
    pub builds: Arc<dyn Builds>,
    pub targets: Arc<dyn TargetGroups>,
    pub dns: Arc<dyn Dns>,
    pub alarms: Arc<dyn Alarms>,
    pub snapshots: Arc<dyn Snapshots>,
}

/// What kind of failure a call met; decides retry and the `Synced` reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// AWS throttled the call (ThrottlingException, RequestLimitExceeded, ...).
    Throttled,
    /// The thing asked about does not exist (a service, queue, replication group).
    NotFound,
    /// Something the call needs does not exist (a cluster, a target group, a subnet).
    MissingReference,
    /// A create met an existing resource of that name.
    AlreadyExists,
    /// AWS refused the request as invalid.
    Invalid,
    /// AWS failed (5xx).
    Server,
    /// No answer in time: the call may or may not have taken effect.
    Timeout,
    /// The reconcile's lease is no longer held: the call was not made.
    LeaseNotHeld,
    /// The AWS call budget (Redis) is unreachable: the call was not made.
    BudgetUnavailable,
    /// The AWS call budget is spent for now: the call was not made; try again
    /// after `CloudError::retry_after`.
    OverBudget,
    /// An account quota is used up (CodeBuild's concurrent builds,
    /// AccountLimitExceededException): retrying soon will not help, waiting
    /// for capacity (or raising the quota) will.
    QuotaExceeded,
    /// Anything else (network, parse errors).
    Other,
}

impl ErrorKind {
    /// The metrics label of the outcome.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Throttled => "throttled",
            ErrorKind::NotFound => "not_found",
            ErrorKind::MissingReference => "missing_reference",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Server => "server_error",
            ErrorKind::Timeout => "timeout",
            ErrorKind::LeaseNotHeld => "lease_not_held",
            ErrorKind::BudgetUnavailable => "budget_unavailable",
            ErrorKind::OverBudget => "over_budget",
            ErrorKind::QuotaExceeded => "quota_exceeded",
            ErrorKind::Other => "error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed facade call: which operation, what kind of failure, AWS's message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{op} failed ({kind}): {message}")]
pub struct CloudError {
    pub op: &'static str,
    pub kind: ErrorKind,
    pub message: String,
    /// When trying again makes sense ([`ErrorKind::OverBudget`]).
    pub retry_after: Option<std::time::Duration>,
}

impl CloudError {
    pub fn new(op: &Op, kind: ErrorKind, message: impl Into<String>) -> CloudError {
        CloudError { op: op.name, kind, message: message.into(), retry_after: None }
    }

    pub fn is(&self, kind: ErrorKind) -> bool {
        self.kind == kind
    }
}

/// The result of a facade call.
pub type CloudResult<T> = Result<T, CloudError>;
