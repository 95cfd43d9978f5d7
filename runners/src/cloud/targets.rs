//! ELBv2 target groups: nodes behind an ALB (as in the Pulse deployment).

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
}
