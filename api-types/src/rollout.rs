//! Rollouts of a relay: ECS's native blue/green, canary and linear strategies
//! with Mooring as the verification gate, and what status says about one.
//!
//! ECS owns the traffic shift (listener-rule weights, the bake, the clean-up);
//! Mooring registers PAUSE lifecycle hooks at the stages where a gate sits,
//! runs the gate itself (HTTP checks against the test listener, CloudWatch
//! alarms during the bake, a person's approval) and tells ECS to continue or
//! roll back. The types here are the one definition of those contracts: the
//! spec's settings, the stages and states ECS reports (the runners' facade
//! speaks them too), `status.rollout`, and an operator's request
//! (`mooring rollout promote|abort`).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::patterns;

/// How ECS replaces a relay's tasks with a new revision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeploymentStrategy {
    /// Tasks replaced in place (min healthy / max percent), stopped by the
    /// circuit breaker.
    #[default]
    Rolling,
    /// A full green set next to blue; production moves at once after the gates.
    BlueGreen,
    /// A share of production first, baked, then the rest.
    Canary,
    /// Production moved in equal steps, each baked.
    Linear,
}

impl DeploymentStrategy {
    /// True for the strategies ECS runs as service deployments with stages
    /// and lifecycle hooks (everything but `Rolling`).
    pub fn staged(self) -> bool {
        self != DeploymentStrategy::Rolling
    }

    /// The name ECS gives it (`deploymentConfiguration.strategy`).
    pub fn as_ecs(self) -> &'static str {
        match self {
            DeploymentStrategy::Rolling => "ROLLING",
            DeploymentStrategy::BlueGreen => "BLUE_GREEN",
            DeploymentStrategy::Canary => "CANARY",
            DeploymentStrategy::Linear => "LINEAR",
        }
    }
}

/// `strategy: Canary`: the share of production the new revision gets first,
/// and how long it bakes there before the rest moves.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CanaryShift {
    #[serde(default = "default_canary_percent")]
    #[schemars(range(min = 0.1, max = 100.0))]
    pub percent: f64,
    #[serde(default = "default_canary_bake")]
    #[schemars(range(min = 0, max = 1440))]
    pub bake_minutes: u32,
}

fn default_canary_percent() -> f64 {
    5.0
}
fn default_canary_bake() -> u32 {
    10
}

impl Default for CanaryShift {
    fn default() -> Self {
        CanaryShift { percent: default_canary_percent(), bake_minutes: default_canary_bake() }
    }
}

/// `strategy: Linear`: production moves `stepPercent` at a time, each step
/// baked for `stepBakeMinutes`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinearShift {
    #[serde(default = "default_step_percent")]
    #[schemars(range(min = 3.0, max = 100.0))]
    pub step_percent: f64,
    #[serde(default = "default_step_bake")]
    #[schemars(range(min = 0, max = 1440))]
    pub step_bake_minutes: u32,
}

fn default_step_percent() -> f64 {
    10.0
}
fn default_step_bake() -> u32 {
    6
}

impl Default for LinearShift {
    fn default() -> Self {
        LinearShift { step_percent: default_step_percent(), step_bake_minutes: default_step_bake() }
    }
}

/// The gates Mooring runs before and while production traffic moves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Verify {
    /// Where the test listener answers (`http://internal-gw.example:8443`):
    /// the HTTP checks go here once ECS has pointed the test listener rule at
    /// the new revision, before any production traffic moves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::HTTP_URL))]
    pub test_url: Option<String>,
    /// Checks that must all pass (each `count` times in a row).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub http: Vec<HttpCheck>,
    /// CloudWatch alarms that must stay out of `ALARM` while production
    /// traffic moves and during the bake; one firing rolls the deployment back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub alarms: Vec<AlarmName>,
    /// `Manual`: production traffic waits for `mooring rollout promote`.
    #[serde(default)]
    pub approval: Approval,
    /// How long a gate may wait (for a person, or for Mooring itself) before
    /// ECS takes `onTimeout`.
    #[serde(default = "default_gate_timeout")]
    #[schemars(range(min = 1, max = 1440))]
    pub timeout_minutes: u32,
    /// What ECS does when a gate times out.
    #[serde(default)]
    pub on_timeout: GateTimeout,
}

fn default_gate_timeout() -> u32 {
    60
}

/// A CloudWatch alarm name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct AlarmName(#[schemars(length(min = 1, max = 255))] pub String);

/// One HTTP check against the test listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpCheck {
    #[schemars(regex(pattern = patterns::HTTP_PATH))]
    pub path: String,
    #[serde(default = "default_expect_status")]
    #[schemars(range(min = 100, max = 599))]
    pub expect_status: u16,
    /// Consecutive answers with `expectStatus` needed to pass.
    #[serde(default = "default_check_count")]
    #[schemars(range(min = 1, max = 100))]
    pub count: u32,
}

fn default_expect_status() -> u16 {
    200
}
fn default_check_count() -> u32 {
    3
}

/// Who lets production traffic move once the checks passed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Approval {
    /// Mooring, as soon as its checks pass.
    #[default]
    Automatic,
    /// A person, with `mooring rollout promote` (or `abort`).
    Manual,
}

/// What ECS does with a gate nobody answered in time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum GateTimeout {
    #[default]
    Rollback,
    Continue,
}

/// Where a service deployment is (ECS's lifecycle stages, in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RolloutStage {
    ReconcileService,
    PreScaleUp,
    ScaleUp,
    PostScaleUp,
    TestTrafficShift,
    PostTestTrafficShift,
    PreProductionTrafficShift,
    ProductionTrafficShift,
    PostProductionTrafficShift,
    BakeTime,
    CleanUp,
}

impl RolloutStage {
    /// ECS's name for it.
    pub fn as_ecs(self) -> &'static str {
        match self {
            RolloutStage::ReconcileService => "RECONCILE_SERVICE",
            RolloutStage::PreScaleUp => "PRE_SCALE_UP",
            RolloutStage::ScaleUp => "SCALE_UP",
            RolloutStage::PostScaleUp => "POST_SCALE_UP",
            RolloutStage::TestTrafficShift => "TEST_TRAFFIC_SHIFT",
            RolloutStage::PostTestTrafficShift => "POST_TEST_TRAFFIC_SHIFT",
            RolloutStage::PreProductionTrafficShift => "PRE_PRODUCTION_TRAFFIC_SHIFT",
            RolloutStage::ProductionTrafficShift => "PRODUCTION_TRAFFIC_SHIFT",
            RolloutStage::PostProductionTrafficShift => "POST_PRODUCTION_TRAFFIC_SHIFT",
            RolloutStage::BakeTime => "BAKE_TIME",
            RolloutStage::CleanUp => "CLEAN_UP",
        }
    }

    /// Every stage, in order.
    pub const ALL: [RolloutStage; 11] = [
        RolloutStage::ReconcileService,
        RolloutStage::PreScaleUp,
        RolloutStage::ScaleUp,
        RolloutStage::PostScaleUp,
        RolloutStage::TestTrafficShift,
        RolloutStage::PostTestTrafficShift,
        RolloutStage::PreProductionTrafficShift,
        RolloutStage::ProductionTrafficShift,
        RolloutStage::PostProductionTrafficShift,
        RolloutStage::BakeTime,
        RolloutStage::CleanUp,
    ];

    /// The stage ECS calls `name`.
    pub fn from_ecs(name: &str) -> Option<RolloutStage> {
        RolloutStage::ALL.into_iter().find(|s| s.as_ecs() == name)
    }
}

/// A service deployment's state, as ECS reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentState {
    Pending,
    InProgress,
    Successful,
    StopRequested,
    Stopped,
    RollbackRequested,
    RollbackInProgress,
    RollbackSuccessful,
    RollbackFailed,
}

impl DeploymentState {
    /// ECS's name for it.
    pub fn as_ecs(self) -> &'static str {
        match self {
            DeploymentState::Pending => "PENDING",
            DeploymentState::InProgress => "IN_PROGRESS",
            DeploymentState::Successful => "SUCCESSFUL",
            DeploymentState::StopRequested => "STOP_REQUESTED",
            DeploymentState::Stopped => "STOPPED",
            DeploymentState::RollbackRequested => "ROLLBACK_REQUESTED",
            DeploymentState::RollbackInProgress => "ROLLBACK_IN_PROGRESS",
            DeploymentState::RollbackSuccessful => "ROLLBACK_SUCCESSFUL",
            DeploymentState::RollbackFailed => "ROLLBACK_FAILED",
        }
    }

    /// The state ECS calls `name`.
    pub fn from_ecs(name: &str) -> Option<DeploymentState> {
        use DeploymentState::*;
        [
            Pending,
            InProgress,
            Successful,
            StopRequested,
            Stopped,
            RollbackRequested,
            RollbackInProgress,
            RollbackSuccessful,
            RollbackFailed,
        ]
        .into_iter()
        .find(|s| s.as_ecs() == name)
    }

    /// Moving forward (not finished, not rolling back).
    pub fn advancing(self) -> bool {
        matches!(self, DeploymentState::Pending | DeploymentState::InProgress)
    }

    /// Rolling back or rolled back.
    pub fn rolling_back(self) -> bool {
        matches!(
            self,
            DeploymentState::RollbackRequested
                | DeploymentState::RollbackInProgress
                | DeploymentState::RollbackSuccessful
                | DeploymentState::RollbackFailed
        )
    }

    /// Nothing more will happen to it.
    pub fn finished(self) -> bool {
        matches!(
            self,
            DeploymentState::Successful
                | DeploymentState::Stopped
                | DeploymentState::RollbackSuccessful
                | DeploymentState::RollbackFailed
        )
    }
}

/// The gate a deployment waits at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Gate {
    /// Mooring's HTTP checks against the test listener.
    HttpChecks,
    /// A person: `mooring rollout promote` or `abort`.
    Approval,
}

impl Gate {
    /// The lifecycle stage whose PAUSE hook is this gate.
    pub fn stage(self) -> RolloutStage {
        match self {
            Gate::HttpChecks => RolloutStage::PostTestTrafficShift,
            Gate::Approval => RolloutStage::PreProductionTrafficShift,
        }
    }

    /// The gate whose hook sits at `stage`.
    pub fn at(stage: RolloutStage) -> Option<Gate> {
        [Gate::HttpChecks, Gate::Approval].into_iter().find(|g| g.stage() == stage)
    }
}

/// Mooring's verdict on the gate of one deployment, recorded before it tells
/// ECS (so a crash in between acts on the same verdict, never re-decides).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    /// The hook this verdict answers.
    pub hook_id: String,
    /// Continue (true) or roll back (false).
    pub pass: bool,
    /// What passed or failed, in words (`GET /health answered 503, expected 200`).
    pub message: String,
}

/// `status.rollout`: the service deployment of the current revision, as a
/// person reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    pub strategy: DeploymentStrategy,
    /// ECS's service deployment.
    pub service_deployment_arn: String,
    /// The task definition it deploys.
    pub task_definition_arn: String,
    pub state: DeploymentState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<RolloutStage>,
    /// The new revision's share of production traffic, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production_percent: Option<f64>,
    /// The new revision's share of test traffic, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_percent: Option<f64>,
    pub started: DateTime<Utc>,
    /// When the bake ends (both revisions are kept until then: the window for
    /// an instant rollback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake_ends_at: Option<DateTime<Utc>>,
    /// The gate the deployment waits at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<Gate>,
    /// When ECS takes the gate's timeout action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_expires_at: Option<DateTime<Utc>>,
    /// Mooring's verdict on the current gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Why it rolled back (the failed check or alarm, or who aborted it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_reason: Option<String>,
}

/// What an operator asks of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum RolloutAction {
    /// Pass the manual gate: production traffic moves.
    Promote,
    /// Roll the deployment back now (blue still serves: instant).
    Abort,
}

/// An operator's request about one service deployment
/// (`POST …/relays/{name}/rollout`). Kept beside the resource, neither spec
/// (GitOps would see it as drift) nor status (the controller's to write); the
/// controller honours it only for the deployment it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutRequest {
    pub action: RolloutAction,
    /// The service deployment it is about.
    pub service_deployment_arn: String,
    /// Who asked (the token or user name).
    pub by: String,
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecs_names_round_trip() {
        for s in RolloutStage::ALL {
            assert_eq!(RolloutStage::from_ecs(s.as_ecs()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_ecs());
        }
        for name in ["PENDING", "IN_PROGRESS", "SUCCESSFUL", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED"] {
            let s = DeploymentState::from_ecs(name).unwrap();
            assert_eq!(s.as_ecs(), name);
            assert_eq!(serde_json::to_value(s).unwrap(), name);
        }
        assert_eq!(DeploymentState::from_ecs("SOMETHING_NEW"), None);
    }

    #[test]
    fn gates_sit_before_production_traffic_moves() {
        for gate in [Gate::HttpChecks, Gate::Approval] {
            assert!(gate.stage() < RolloutStage::ProductionTrafficShift);
            assert!(gate.stage() > RolloutStage::TestTrafficShift);
            assert_eq!(Gate::at(gate.stage()), Some(gate));
        }
        assert!(Gate::HttpChecks.stage() < Gate::Approval.stage(), "checks pass before a person is asked");
        assert_eq!(Gate::at(RolloutStage::BakeTime), None);
    }

    #[test]
    fn states_classify() {
        use DeploymentState::*;
        let table = [
            (Pending, true, false, false),
            (InProgress, true, false, false),
            (Successful, false, false, true),
            (RollbackInProgress, false, true, false),
            (RollbackSuccessful, false, true, true),
            (Stopped, false, false, true),
        ];
        for (s, advancing, rolling_back, finished) in table {
            assert_eq!((s.advancing(), s.rolling_back(), s.finished()), (advancing, rolling_back, finished), "{s:?}");
        }
    }
}
