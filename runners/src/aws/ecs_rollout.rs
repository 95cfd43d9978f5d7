//! ECS deployment settings and service deployments, translated between
//! Mooring's terms and the SDK's: the strategy with its shift, bake and PAUSE
//! hooks on the way out; what DescribeServiceDeployments reports on the way in.

use api_types::rollout::{DeploymentState, DeploymentStrategy, RolloutStage};
use aws_sdk_ecs::types as ecs;

use crate::cloud::ecs::{
    AdvancedLoadBalancer, DeploymentConfig, HookAction, HookDetail, LifecycleHook, ServiceDeployment,
};
use crate::cloud::{CloudError, CloudResult, ErrorKind, Op};

/// `value` as the `i32` the ECS API takes, or an `Invalid` error naming `what`.
pub(super) fn int(op: &Op, what: &str, value: u32) -> CloudResult<i32> {
    i32::try_from(value).map_err(|_| CloudError::new(op, ErrorKind::Invalid, format!("{what} {value} is too large")))
}

/// A count or duration AWS reported, as the contract's `u32` (never negative in practice).
pub(super) fn count(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

fn hook_action(a: HookAction) -> ecs::DeploymentLifecycleHookAction {
    match a {
        HookAction::Continue => ecs::DeploymentLifecycleHookAction::Continue,
        HookAction::Rollback => ecs::DeploymentLifecycleHookAction::Rollback,
    }
}

/// `deploymentConfiguration` of CreateService / UpdateService.
pub(super) fn deployment_configuration(op: &Op, d: &DeploymentConfig) -> CloudResult<ecs::DeploymentConfiguration> {
    let mut b = ecs::DeploymentConfiguration::builder()
        .strategy(ecs::DeploymentStrategy::from(d.strategy.as_ecs()))
        .deployment_circuit_breaker(
            ecs::DeploymentCircuitBreaker::builder().enable(d.circuit_breaker).rollback(d.rollback).build(),
        )
        .minimum_healthy_percent(int(op, "minimum healthy percent", d.min_healthy_percent)?)
        .maximum_percent(int(op, "maximum percent", d.max_percent)?);
    if d.strategy.staged() {
        b = b.bake_time_in_minutes(int(op, "bake time", d.bake_minutes)?);
    }
    if let Some(c) = d.canary {
        b = b.canary_configuration(
            ecs::CanaryConfiguration::builder()
                .canary_percent(c.percent)
                .canary_bake_time_in_minutes(int(op, "canary bake time", c.bake_minutes)?)
                .build(),
        );
    }
    if let Some(l) = d.linear {
        b = b.linear_configuration(
            ecs::LinearConfiguration::builder()
                .step_percent(l.step_percent)
                .step_bake_time_in_minutes(int(op, "linear step bake time", l.step_bake_minutes)?)
                .build(),
        );
    }
    for h in &d.hooks {
        let timeout = ecs::DeploymentLifecycleHookTimeoutConfiguration::builder()
            .timeout_in_minutes(int(op, "hook timeout", h.timeout_minutes)?)
            .action(hook_action(h.timeout_action))
            .build();
        b = b.lifecycle_hooks(
            ecs::DeploymentLifecycleHook::builder()
                .target_type(ecs::DeploymentLifecycleHookTargetType::Pause)
                .lifecycle_stages(ecs::DeploymentLifecycleHookStage::from(h.stage.as_ecs()))
                .timeout_configuration(timeout)
                .build(),
        );
    }
    Ok(b.build())
}

/// `Some` only when AWS reported a circuit breaker: moto drops the whole
/// deployment configuration, and an absent one must not read as "disabled".
/// PAUSE hooks are read back one per stage (the service diff compares them
/// by stage, in any order).
pub(super) fn deployment_config_of(d: Option<&ecs::DeploymentConfiguration>) -> Option<DeploymentConfig> {
    let d = d?;
    let breaker = d.deployment_circuit_breaker.as_ref()?;
    let strategy = match d.strategy.as_ref().map(|s| s.as_str()) {
        Some("BLUE_GREEN") => DeploymentStrategy::BlueGreen,
        Some("CANARY") => DeploymentStrategy::Canary,
        Some("LINEAR") => DeploymentStrategy::Linear,
        _ => DeploymentStrategy::Rolling,
    };
    Some(DeploymentConfig {
        strategy,
        circuit_breaker: breaker.enable,
        rollback: breaker.rollback,
        min_healthy_percent: d.minimum_healthy_percent.map_or(100, count),
        max_percent: d.maximum_percent.map_or(200, count),
        bake_minutes: d.bake_time_in_minutes.map_or(0, count),
        canary: d.canary_configuration.as_ref().map(|c| api_types::rollout::CanaryShift {
            percent: c.canary_percent.unwrap_or_default(),
            bake_minutes: c.canary_bake_time_in_minutes.map_or(0, count),
        }),
        linear: d.linear_configuration.as_ref().map(|l| api_types::rollout::LinearShift {
            step_percent: l.step_percent.unwrap_or_default(),
            step_bake_minutes: l.step_bake_time_in_minutes.map_or(0, count),
        }),
        hooks: d.lifecycle_hooks.as_deref().unwrap_or_default().iter().flat_map(hooks_of).collect(),
    })
}

/// A PAUSE hook as one [`LifecycleHook`] per stage it is registered for.
fn hooks_of(h: &ecs::DeploymentLifecycleHook) -> Vec<LifecycleHook> {
    if h.target_type.as_ref().map(|t| t.as_str()) != Some("PAUSE") {
        return vec![];
    }
    let timeout = h.timeout_configuration.as_ref();
    let minutes = timeout.and_then(|t| t.timeout_in_minutes).map_or(0, count);
    let action = match timeout.and_then(|t| t.action.as_ref()).map(|a| a.as_str()) {
        Some("CONTINUE") => HookAction::Continue,
        _ => HookAction::Rollback,
    };
    h.lifecycle_stages
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|s| RolloutStage::from_ecs(s.as_str()))
        .map(|stage| LifecycleHook { stage, timeout_minutes: minutes, timeout_action: action })
        .collect()
}

/// `loadBalancers[].advancedConfiguration`.
pub(super) fn advanced_configuration(a: &AdvancedLoadBalancer) -> ecs::AdvancedConfiguration {
    ecs::AdvancedConfiguration::builder()
        .alternate_target_group_arn(&a.alternate_target_group_arn)
        .production_listener_rule(&a.production_listener_rule)
        .set_test_listener_rule(a.test_listener_rule.clone())
        .role_arn(&a.role_arn)
        .build()
}

pub(super) fn advanced_of(a: Option<&ecs::AdvancedConfiguration>) -> Option<AdvancedLoadBalancer> {
    let a = a?;
    Some(AdvancedLoadBalancer {
        alternate_target_group_arn: a.alternate_target_group_arn.clone()?,
        production_listener_rule: a.production_listener_rule.clone()?,
        test_listener_rule: a.test_listener_rule.clone(),
        role_arn: a.role_arn.clone().unwrap_or_default(),
    })
}

fn time(t: Option<&aws_smithy_types::DateTime>) -> Option<chrono::DateTime<chrono::Utc>> {
    let t = t?;
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// A service deployment as status speaks of it.
pub(super) fn service_deployment_of(d: &ecs::ServiceDeployment) -> Option<ServiceDeployment> {
    let target = d.target_service_revision.as_ref();
    Some(ServiceDeployment {
        arn: d.service_deployment_arn.clone()?,
        state: DeploymentState::from_ecs(d.status.as_ref()?.as_str())?,
        stage: d.lifecycle_stage.as_ref().and_then(|s| RolloutStage::from_ecs(s.as_str())),
        status_reason: d.status_reason.clone(),
        production_percent: target.and_then(|t| t.requested_production_traffic_weight),
        test_percent: target.and_then(|t| t.requested_test_traffic_weight),
        started_at: time(d.started_at.as_ref()),
        bake_minutes: d.deployment_configuration.as_ref().and_then(|c| c.bake_time_in_minutes).map(count),
        hooks: d
            .lifecycle_hook_details
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter_map(|h| {
                Some(HookDetail {
                    hook_id: h.hook_id.clone()?,
                    awaiting: h.status.as_ref().is_some_and(|s| s.as_str() == "AWAITING_ACTION"),
                    expires_at: time(h.expires_at.as_ref()),
                })
            })
            .collect(),
    })
}

/// ContinueServiceDeployment's action.
pub(super) fn continue_action(a: HookAction) -> ecs::DeploymentLifecycleHookAction {
    hook_action(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::ops;

    #[test]
    fn a_deployment_configuration_without_a_circuit_breaker_is_unknown() {
        let moto = ecs::DeploymentConfiguration::builder().maximum_percent(200).build();
        assert_eq!(deployment_config_of(Some(&moto)), None);
        assert_eq!(deployment_config_of(None), None);
        let aws = ecs::DeploymentConfiguration::builder()
            .deployment_circuit_breaker(ecs::DeploymentCircuitBreaker::builder().enable(true).rollback(false).build())
            .minimum_healthy_percent(50)
            .maximum_percent(150)
            .build();
        assert_eq!(
            deployment_config_of(Some(&aws)),
            Some(DeploymentConfig {
                circuit_breaker: true,
                rollback: false,
                min_healthy_percent: 50,
                max_percent: 150,
                ..DeploymentConfig::default()
            })
        );
    }

    #[test]
    fn a_staged_configuration_round_trips_its_strategy_and_bake() {
        let d = DeploymentConfig {
            strategy: DeploymentStrategy::Canary,
            bake_minutes: 7,
            canary: Some(api_types::rollout::CanaryShift { percent: 10.0, bake_minutes: 3 }),
            hooks: vec![LifecycleHook {
                stage: RolloutStage::PostTestTrafficShift,
                timeout_minutes: 30,
                timeout_action: HookAction::Rollback,
            }],
            ..DeploymentConfig::default()
        };
        let sdk = deployment_configuration(&ops::CREATE_SERVICE, &d).unwrap();
        assert_eq!(sdk.strategy.as_ref().map(|s| s.as_str()), Some("CANARY"));
        let hook = &sdk.lifecycle_hooks.as_deref().unwrap()[0];
        assert_eq!(hook.target_type.as_ref().map(|t| t.as_str()), Some("PAUSE"));
        assert_eq!(deployment_config_of(Some(&sdk)).unwrap(), d, "what AWS echoes reads back the same");
    }

    #[test]
    fn a_service_deployment_reads_its_stage_weights_and_hooks() {
        let sd = ecs::ServiceDeployment::builder()
            .service_deployment_arn("arn:sd")
            .status(ecs::ServiceDeploymentStatus::InProgress)
            .lifecycle_stage(ecs::ServiceDeploymentLifecycleStage::PostTestTrafficShift)
            .target_service_revision(
                ecs::ServiceRevisionSummary::builder()
                    .arn("arn:rev")
                    .requested_production_traffic_weight(0.0)
                    .requested_test_traffic_weight(100.0)
                    .build(),
            )
            .lifecycle_hook_details(
                ecs::DeploymentLifecycleHookDetail::builder()
                    .hook_id("h1")
                    .status(ecs::DeploymentLifecycleHookStatus::AwaitingAction)
                    .build(),
            )
            .build();
        let d = service_deployment_of(&sd).unwrap();
        assert_eq!(d.state, DeploymentState::InProgress);
        assert_eq!(d.stage, Some(RolloutStage::PostTestTrafficShift));
        assert_eq!((d.production_percent, d.test_percent), (Some(0.0), Some(100.0)));
        assert_eq!(d.hooks, vec![HookDetail { hook_id: "h1".into(), awaiting: true, expires_at: None }]);
    }
}
