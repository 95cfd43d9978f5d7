//! ELBv2 target groups: nodes behind an ALB (as in the Pulse deployment), and
//! the deregistration delay a relay's drain time is checked against.

use async_trait::async_trait;

use super::CloudResult;

/// A target's health as DescribeTargetHealth reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealth {
    pub id: String,
    pub port: Option<u16>,
    /// `initial`, `healthy`, `unhealthy`, `unused`, `draining`, `unavailable`.
    pub state: String,
    pub reason: Option<String>,
}

/// ELBv2 target groups, as Mooring uses them.
#[async_trait]
pub trait TargetGroups: Send + Sync {
    /// Registers instance targets (id, port).
    async fn register_targets(&self, target_group_arn: &str, targets: &[(String, Option<u16>)]) -> CloudResult<()>;
    /// Deregisters instance targets.
    async fn deregister_targets(&self, target_group_arn: &str, targets: &[(String, Option<u16>)]) -> CloudResult<()>;
    /// Health of every registered target.
    async fn target_health(&self, target_group_arn: &str) -> CloudResult<Vec<TargetHealth>>;
    /// How long the group keeps a deregistered target draining
    /// (`deregistration_delay.timeout_seconds`); `None` when the group does not exist.
    async fn deregistration_delay(&self, target_group_arn: &str) -> CloudResult<Option<u32>>;
}
