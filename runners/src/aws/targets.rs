//! The ELBv2 target group facade over the AWS SDK: nodes registered behind an
//! ALB, and their health.
//!
//! Every call is one AWS request (no retries or budgets here beyond the SDK's
//! own retry mode: [`Gated`](crate::cloud::gated::Gated) does that).

use async_trait::async_trait;
use aws_sdk_elasticloadbalancingv2::Client;
use aws_sdk_elasticloadbalancingv2::types as elb;

use super::error::cloud_error;
use crate::cloud::targets::{TargetGroups, TargetHealth};
use crate::cloud::{CloudResult, ErrorKind, ops};

/// ELBv2 through the SDK; the implementation of [`TargetGroups`] that talks to AWS (or moto).
#[derive(Clone, Debug)]
pub struct SdkTargetGroups {
    client: Client,
}

impl SdkTargetGroups {
    /// A facade over a client built from the shared configuration.
    pub fn new(config: &aws_config::SdkConfig) -> SdkTargetGroups {
        SdkTargetGroups { client: Client::new(config) }
    }

    /// A facade over an existing client (tests, custom configuration).
    pub fn from_client(client: Client) -> SdkTargetGroups {
        SdkTargetGroups { client }
    }
}

/// Target descriptions of (instance id, port); without a port the target
/// group's port applies.
fn descriptions(targets: &[(String, Option<u16>)]) -> Vec<elb::TargetDescription> {
    targets
        .iter()
        .map(|(id, port)| elb::TargetDescription::builder().id(id).set_port(port.map(i32::from)).build())
        .collect()
}

fn health_of(d: &elb::TargetHealthDescription) -> TargetHealth {
    let target = d.target.as_ref();
    let health = d.target_health.as_ref();
    TargetHealth {
        id: target.and_then(|t| t.id.clone()).unwrap_or_default(),
        port: target.and_then(|t| t.port).and_then(|p| u16::try_from(p).ok()),
        state: health.and_then(|h| h.state.as_ref()).map(|s| s.as_str().to_string()).unwrap_or_default(),
        reason: health.and_then(|h| h.reason.as_ref()).map(|r| r.as_str().to_string()),
    }
}

#[async_trait]
impl TargetGroups for SdkTargetGroups {
    async fn register_targets(&self, target_group_arn: &str, targets: &[(String, Option<u16>)]) -> CloudResult<()> {
        // AWS wants at least one target.
        if targets.is_empty() {
            return Ok(());
        }
        let op = ops::REGISTER_TARGETS;
        self.client
            .register_targets()
            .target_group_arn(target_group_arn)
            .set_targets(Some(descriptions(targets)))
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        Ok(())
    }

    async fn deregister_targets(&self, target_group_arn: &str, targets: &[(String, Option<u16>)]) -> CloudResult<()> {
        if targets.is_empty() {
            return Ok(());
        }
        let op = ops::DEREGISTER_TARGETS;
        self.client
            .deregister_targets()
            .target_group_arn(target_group_arn)
            .set_targets(Some(descriptions(targets)))
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        Ok(())
    }

    async fn target_health(&self, target_group_arn: &str) -> CloudResult<Vec<TargetHealth>> {
        let op = ops::DESCRIBE_TARGET_HEALTH;
        let out = self
            .client
            .describe_target_health()
            .target_group_arn(target_group_arn)
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        Ok(out.target_health_descriptions().iter().map(health_of).collect())
    }

    async fn deregistration_delay(&self, target_group_arn: &str) -> CloudResult<Option<u32>> {
        let op = ops::DESCRIBE_TARGET_GROUP_ATTRIBUTES;
        let out = match self.client.describe_target_group_attributes().target_group_arn(target_group_arn).send().await {
            Ok(out) => out,
            Err(e) => {
                let e = cloud_error(&op, e);
                // A group that does not exist: nothing to check against.
                return if e.is(ErrorKind::NotFound) || e.is(ErrorKind::MissingReference) { Ok(None) } else { Err(e) };
            }
        };
        Ok(Some(
            out.attributes()
                .iter()
                .find(|a| a.key() == Some("deregistration_delay.timeout_seconds"))
                .and_then(|a| a.value()?.parse().ok())
                .unwrap_or(300),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_in_domain_terms() {
        let d = elb::TargetHealthDescription::builder()
            .target(elb::TargetDescription::builder().id("i-1").port(8080).build())
            .target_health(
                elb::TargetHealth::builder()
                    .state(elb::TargetHealthStateEnum::Unhealthy)
                    .reason(elb::TargetHealthReasonEnum::FailedHealthChecks)
                    .build(),
            )
            .build();
        let h = health_of(&d);
        assert_eq!((h.id.as_str(), h.port, h.state.as_str()), ("i-1", Some(8080), "unhealthy"));
        assert_eq!(h.reason.as_deref(), Some("Target.FailedHealthChecks"));
        let bare = health_of(&elb::TargetHealthDescription::builder().build());
        assert_eq!((bare.port, bare.reason), (None, None));
    }
}
