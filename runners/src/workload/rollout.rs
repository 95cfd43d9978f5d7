//! Staged rollouts of a relay (BlueGreen, Canary, Linear): ECS shifts the
//! traffic; Mooring is the verification gate. This module renders the
//! strategy and its PAUSE hooks, follows the service deployment ECS reports,
//! and at each gate decides: run the HTTP checks against the test listener,
//! continue, wait for a person, or roll back (a failed check, an alarm that
//! fired after production traffic moved, an `abort`).
//!
//! Crash safety: a new service deployment starts only when UpdateService gets
//! a new task definition, which the service diff never sends twice; a check's
//! verdict is written to status before ECS is told, so a restart acts on the
//! same verdict instead of deciding again. Listener-rule weights are ECS's
//! during a deployment and are never compared or "corrected" here.

use std::time::Duration;

use api_types::Event;
use api_types::condition::{Condition, ConditionType, reason};
use api_types::relay::RelaySpec;
use api_types::rollout::{
    Approval, DeploymentState, Gate, GateTimeout, RolloutAction, RolloutRequest, RolloutStage, RolloutStatus, Verdict,
    Verify,
};

use super::relay::RelayTarget;
use super::service::ServiceReport;
use super::{Calls, Workloads};
use crate::cloud::ecs::{DeploymentConfig, HookAction, LifecycleHook, ServiceDeployment, StopKind};
use crate::cloud::{Ecs, ErrorKind, Metrics};
use crate::reconcile::{ReconcileError, Reconciled};
use api_types::relay::RelayStatus;

/// The stages a rollout reports as events, with what happens there.
const MILESTONES: [(RolloutStage, &str); 5] = [
    (RolloutStage::ScaleUp, "starting the new revision's tasks next to the old ones"),
    (RolloutStage::TestTrafficShift, "test traffic moves to the new revision"),
    (RolloutStage::ProductionTrafficShift, "production traffic moves to the new revision"),
    (RolloutStage::BakeTime, "all traffic moved; both revisions kept for the bake"),
    (RolloutStage::CleanUp, "the old revision's tasks stop"),
];

/// How long one HTTP check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The deployment configuration a relay's spec asks ECS for.
pub(super) fn deployment_config(spec: &RelaySpec) -> DeploymentConfig {
    let d = &spec.deployment;
    let strategy = d.strategy;
    let hooks = match (&d.verify, strategy.staged()) {
        (Some(v), true) => hooks(v),
        _ => vec![],
    };
    DeploymentConfig {
        strategy,
        circuit_breaker: d.circuit_breaker,
        rollback: d.rollback,
        min_healthy_percent: d.min_healthy_percent,
        max_percent: d.max_percent,
        bake_minutes: if strategy.staged() { d.bake_minutes } else { 0 },
        canary: (strategy == api_types::rollout::DeploymentStrategy::Canary).then(|| d.canary.unwrap_or_default()),
        linear: (strategy == api_types::rollout::DeploymentStrategy::Linear).then(|| d.linear.unwrap_or_default()),
        hooks,
    }
}

/// The PAUSE hooks of the gates the spec asks for, each at its stage.
fn hooks(v: &Verify) -> Vec<LifecycleHook> {
    let action = match v.on_timeout {
        GateTimeout::Rollback => HookAction::Rollback,
        GateTimeout::Continue => HookAction::Continue,
    };
    let mut gates = vec![];
    if !v.http.is_empty() {
        gates.push(Gate::HttpChecks);
    }
    if v.approval == Approval::Manual {
        gates.push(Gate::Approval);
    }
    gates
        .into_iter()
        .map(|g| LifecycleHook { stage: g.stage(), timeout_minutes: v.timeout_minutes, timeout_action: action })
        .collect()
}

/// What to do about a service deployment now.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Step {
    /// Nothing to do until ECS moves (or a person answers).
    Wait,
    /// Run the HTTP checks for the hook awaiting at the checks gate.
    Check { hook_id: String },
    /// Let the deployment go on past the hook.
    Continue { hook_id: String, why: String },
    /// Answer the hook with ROLLBACK.
    RollBackAtHook { hook_id: String, why: String },
    /// StopServiceDeployment(ROLLBACK): no hook is waiting.
    Stop { why: String },
}

/// The decision, free of I/O: the deployment as ECS reports it, what status
/// recorded (the verdict), an operator's request, and the alarms firing.
pub(super) fn decide(
    sd: &ServiceDeployment,
    recorded: Option<&RolloutStatus>,
    request: Option<&RolloutRequest>,
    manual: bool,
    firing: &[String],
) -> Step {
    if !sd.state.advancing() {
        return Step::Wait;
    }
    let awaiting = sd.hooks.iter().find(|h| h.awaiting).map(|h| h.hook_id.clone());
    let request = request.filter(|r| r.service_deployment_arn == sd.arn);
    if let Some(r) = request.filter(|r| r.action == RolloutAction::Abort) {
        let why = format!("aborted by {}", r.by);
        return match awaiting {
            Some(hook_id) => Step::RollBackAtHook { hook_id, why },
            None => Step::Stop { why },
        };
    }
    if watching_alarms(sd)
        && let Some(alarm) = firing.first()
    {
        let stage = sd.stage.map_or("?", RolloutStage::as_ecs);
        return Step::Stop { why: format!("alarm {alarm} fired during {stage}") };
    }
    let Some(hook_id) = awaiting else { return Step::Wait };
    match sd.stage.and_then(Gate::at) {
        Some(Gate::HttpChecks) => match recorded.and_then(|r| r.verdict.as_ref()).filter(|v| v.hook_id == hook_id) {
            Some(v) if v.pass => Step::Continue { hook_id, why: v.message.clone() },
            Some(v) => Step::RollBackAtHook { hook_id, why: v.message.clone() },
            None => Step::Check { hook_id },
        },
        Some(Gate::Approval) => match request {
            Some(r) if r.action == RolloutAction::Promote => {
                Step::Continue { hook_id, why: format!("promoted by {}", r.by) }
            }
            // The spec no longer asks for a person (changed mid-rollout).
            _ if !manual => Step::Continue { hook_id, why: "approval is no longer required by the spec".into() },
            _ => Step::Wait,
        },
        // A hook at a known stage without a gate (a spec from before): let it go.
        None if sd.stage.is_some() => Step::Continue { hook_id, why: "no gate at this stage".into() },
        // A stage this version does not know: wait for its timeout rather than skip a gate.
        None => Step::Wait,
    }
}

/// Production traffic is moving or baking: the alarms are watched.
fn watching_alarms(sd: &ServiceDeployment) -> bool {
    sd.state.advancing()
        && sd.stage.is_some_and(|s| (RolloutStage::ProductionTrafficShift..=RolloutStage::BakeTime).contains(&s))
}

/// Whether the service must not be pointed at `td_arn` now: a staged
/// deployment of it is in flight (ECS's to finish; pushing it again would
/// start a second one), or the one in flight is being rolled back or aborted
/// (its old revision serves again first).
pub(super) fn hold_task_definition(
    recorded: Option<&RolloutStatus>,
    request: Option<&RolloutRequest>,
    td_arn: &str,
) -> bool {
    let Some(r) = recorded.filter(|r| !r.state.finished()) else { return false };
    let aborted = request
        .is_some_and(|q| q.service_deployment_arn == r.service_deployment_arn && q.action == RolloutAction::Abort);
    r.task_definition_arn == td_arn || r.state.rolling_back() || r.rollback_reason.is_some() || aborted
}

/// Sets `c`, replacing a condition of the same type.
fn set(conditions: &mut Vec<Condition>, c: Condition) {
    conditions.retain(|x| x.type_ != c.type_);
    conditions.push(c);
}

/// The longest a gate's checks may take together.
const CHECKS_DEADLINE: Duration = Duration::from_secs(30);

/// Runs the checks against the test listener, within [`CHECKS_DEADLINE`].
async fn run_checks(http: &reqwest::Client, verify: &Verify, hook_id: &str) -> Verdict {
    match tokio::time::timeout(CHECKS_DEADLINE, checks(http, verify, hook_id)).await {
        Ok(v) => v,
        Err(_) => Verdict {
            hook_id: hook_id.to_string(),
            pass: false,
            message: format!("the checks took longer than {} s", CHECKS_DEADLINE.as_secs()),
        },
    }
}

/// Each check: `count` answers in a row with the expected status.
async fn checks(http: &reqwest::Client, verify: &Verify, hook_id: &str) -> Verdict {
    let base = verify.test_url.as_deref().unwrap_or_default().trim_end_matches('/');
    for check in &verify.http {
        let url = format!("{base}{}", check.path);
        for n in 1..=check.count {
            let got = http.get(&url).timeout(CHECK_TIMEOUT).send().await;
            let fail = match got {
                Ok(resp) if resp.status().as_u16() == check.expect_status => None,
                Ok(resp) => Some(format!("answered {}", resp.status().as_u16())),
                Err(e) => Some(format!("failed: {e}")),
            };
            if let Some(what) = fail {
                return Verdict {
                    hook_id: hook_id.to_string(),
                    pass: false,
                    message: format!(
                        "check GET {} {what} (attempt {n} of {}), expected {}",
                        check.path, check.count, check.expect_status
                    ),
                };
            }
        }
    }
    let paths: Vec<&str> = verify.http.iter().map(|c| c.path.as_str()).collect();
    Verdict { hook_id: hook_id.to_string(), pass: true, message: format!("checks passed: GET {}", paths.join(", ")) }
}

impl Workloads {
    /// Follows the relay's current service deployment (staged strategies
    /// only): records `status.rollout`, acts at the gates, and sets
    /// Progressing/Degraded from it.
    pub(super) async fn follow_rollout(
        &self,
        calls: &Calls<'_>,
        t: &RelayTarget<'_>,
        td_arn: &str,
        report: &mut ServiceReport,
        r: &mut Reconciled<RelayStatus>,
    ) -> Result<(), ReconcileError> {
        let strategy = t.spec.deployment.strategy;
        let unfinished = t.status.rollout.as_deref().filter(|x| !x.state.finished());
        // A rolling relay has no staged rollout, unless one it started before
        // the spec changed is still in flight: that one is followed to its end.
        let arn = match (strategy.staged(), unfinished) {
            (false, None) => {
                r.status.rollout = None;
                return Ok(());
            }
            (false, Some(rec)) => Some(rec.service_deployment_arn.clone()),
            (true, _) => report.current_service_deployment.clone(),
        };
        let Some(arn) = arn else { return Ok(()) };
        let recorded = t.status.rollout.as_deref().filter(|x| x.service_deployment_arn == arn);
        let sd = match recorded {
            // Over and recorded as over: nothing more to ask ECS.
            Some(rec) if rec.state.finished() => None,
            _ => calls.ecs.describe_service_deployment(&arn).await?,
        };
        // ECS does not know it (yet): nothing to record or act on.
        if recorded.is_none() && sd.is_none() {
            return Ok(());
        }
        let strategy = recorded.map_or(strategy, |r| r.strategy);
        let mut rollout = recorded.cloned().unwrap_or_else(|| RolloutStatus {
            strategy,
            service_deployment_arn: arn.clone(),
            task_definition_arn: td_arn.to_string(),
            state: DeploymentState::Pending,
            stage: None,
            production_percent: None,
            test_percent: None,
            started: t.now,
            bake_ends_at: None,
            waiting_for: None,
            gate_expires_at: None,
            verdict: None,
            rollback_reason: None,
        });
        if let Some(sd) = &sd {
            self.observe_rollout(t, sd, &mut rollout, &mut r.events);
            let verify = t.spec.deployment.verify.as_ref();
            let alarms: Vec<String> =
                verify.map(|v| v.alarms.iter().map(|a| a.0.clone()).collect()).unwrap_or_default();
            let firing = if watching_alarms(sd) && !alarms.is_empty() {
                calls.metrics.alarms_firing(&alarms).await?
            } else {
                vec![]
            };
            let manual = verify.is_some_and(|v| v.approval == Approval::Manual);
            match decide(sd, Some(&rollout), t.request, manual, &firing) {
                Step::Wait => {}
                Step::Check { hook_id } => {
                    let verdict = match verify {
                        Some(v) => run_checks(&self.http, v, &hook_id).await,
                        None => Verdict { hook_id, pass: true, message: "no checks in the spec".into() },
                    };
                    let kind = if verdict.pass { "ChecksPassed" } else { "ChecksFailed" };
                    r.events.push(if verdict.pass {
                        Event::normal(kind, verdict.message.clone())
                    } else {
                        Event::warning(kind, verdict.message.clone())
                    });
                    // Recorded first; the next pass tells ECS.
                    rollout.verdict = Some(verdict);
                    r.requeue(Duration::ZERO);
                }
                Step::Continue { hook_id, why } => {
                    if answer(calls, &arn, &hook_id, HookAction::Continue).await? {
                        r.events.push(Event::normal("RolloutContinued", format!("{}: {why}", stage_name(sd))));
                        rollout.waiting_for = None;
                        r.requeue(Duration::ZERO);
                    }
                }
                Step::RollBackAtHook { hook_id, why } => {
                    if answer(calls, &arn, &hook_id, HookAction::Rollback).await? {
                        r.events.push(Event::warning("RollingBack", format!("{}: {why}", stage_name(sd))));
                        rollout.rollback_reason = Some(why);
                        rollout.waiting_for = None;
                        r.requeue(Duration::ZERO);
                    }
                }
                Step::Stop { why } => match calls.ecs.stop_service_deployment(&arn, StopKind::Rollback).await {
                    Ok(()) => {
                        r.events.push(Event::warning("RollingBack", format!("{}: {why}", stage_name(sd))));
                        rollout.rollback_reason = Some(why);
                        r.requeue(Duration::ZERO);
                    }
                    // Already over (it finished or rolled back meanwhile): the next look says which.
                    Err(e) if e.is(ErrorKind::Invalid) => {}
                    Err(e) => return Err(e.into()),
                },
            }
        }
        // A finished deployment of a revision the spec no longer asks for is
        // history: the service's own conditions speak for now.
        if rollout.task_definition_arn == td_arn || !rollout.state.finished() {
            self.rollout_conditions(t, &rollout, report, r);
        }
        r.status.rollout = Some(Box::new(rollout));
        Ok(())
    }

    /// Copies what ECS reports into the record, with an event per new stage.
    fn observe_rollout(
        &self,
        t: &RelayTarget<'_>,
        sd: &ServiceDeployment,
        rollout: &mut RolloutStatus,
        events: &mut Vec<Event>,
    ) {
        // One event per milestone reached since the last look (ECS may pass
        // several stages between two looks).
        let reached = match sd.state {
            DeploymentState::Successful => Some(RolloutStage::CleanUp),
            _ => sd.stage,
        };
        if let Some(to) = reached {
            for (stage, what) in MILESTONES {
                if rollout.stage.is_none_or(|from| stage > from) && stage <= to && rollout.stage != Some(to) {
                    events.push(Event::normal(
                        "RolloutStage",
                        format!("{} {}: {what} ({})", rollout.strategy.as_ecs(), stage.as_ecs(), sd.arn),
                    ));
                }
            }
        }
        if rollout.state != sd.state && sd.state.finished() {
            events.push(Event::normal("RolloutFinished", format!("{}: {}", sd.arn, sd.state.as_ecs())));
        }
        if sd.stage == Some(RolloutStage::BakeTime) && rollout.bake_ends_at.is_none() {
            let bake = sd.bake_minutes.unwrap_or(t.spec.deployment.bake_minutes);
            rollout.bake_ends_at = Some(t.now + chrono::Duration::minutes(i64::from(bake)));
        }
        if let Some(started) = sd.started_at {
            rollout.started = started;
        }
        if sd.state.rolling_back() && rollout.rollback_reason.is_none() {
            rollout.rollback_reason = sd.status_reason.clone();
        }
        rollout.state = sd.state;
        rollout.stage = sd.stage;
        rollout.production_percent = sd.production_percent;
        rollout.test_percent = sd.test_percent;
        let awaiting = sd.hooks.iter().find(|h| h.awaiting);
        rollout.waiting_for = awaiting.and(sd.stage).and_then(Gate::at);
        rollout.gate_expires_at = awaiting.and_then(|h| h.expires_at);
    }

    /// Progressing and Degraded from the rollout, over what the service said.
    fn rollout_conditions(
        &self,
        t: &RelayTarget<'_>,
        rollout: &RolloutStatus,
        report: &mut ServiceReport,
        r: &mut Reconciled<RelayStatus>,
    ) {
        let (g, now) = (t.generation, t.now);
        let c = &mut report.conditions;
        let why = || rollout.rollback_reason.clone().unwrap_or_else(|| "ECS rolled the deployment back".to_string());
        match rollout.state {
            s if s.advancing() => {
                r.requeue(self.config.poll_in_flight);
                let share = rollout.production_percent.unwrap_or(0.0);
                let (reason, message) = match (rollout.waiting_for, rollout.stage) {
                    (Some(Gate::Approval), _) => (
                        reason::AWAITING_APPROVAL,
                        format!("checks passed; run `mooring rollout promote relay {}` (or `abort`) to go on", t.name),
                    ),
                    (Some(Gate::HttpChecks), _) => {
                        (reason::VERIFYING, "running the HTTP checks against the test listener".to_string())
                    }
                    (None, Some(RolloutStage::ProductionTrafficShift)) => {
                        (reason::TRAFFIC_SHIFTING, format!("{share}% of production traffic on the new revision"))
                    }
                    (None, Some(RolloutStage::BakeTime)) => (
                        reason::BAKING,
                        format!(
                            "all traffic moved; baking until {}",
                            rollout.bake_ends_at.map_or("the bake ends".to_string(), |t| t.to_rfc3339())
                        ),
                    ),
                    (None, stage) => {
                        (reason::ROLLING_OUT, format!("stage {}", stage.map_or("PENDING", RolloutStage::as_ecs)))
                    }
                };
                set(c, Condition::progressing(reason, message, g, now));
            }
            s if s.rolling_back() => {
                // Remembered at once, so the revision is not pushed again.
                report.failed_task_definition_arn = Some(rollout.task_definition_arn.clone());
                set(c, Condition::degraded(reason::ROLLED_BACK, why(), g, now));
                if s.finished() {
                    set(c, Condition::settled(reason::ROLLED_BACK, why(), g, now));
                } else {
                    set(c, Condition::progressing(reason::ROLLING_BACK, why(), g, now));
                    r.requeue(self.config.poll_in_flight);
                }
            }
            s if !s.finished() => {
                // Stopping (STOP_REQUESTED): look again until it is over.
                set(c, Condition::progressing(reason::ROLLING_OUT, format!("deployment {}", s.as_ecs()), g, now));
                r.requeue(self.config.poll_in_flight);
            }
            _ => {
                if !c.iter().any(|x| x.type_ == ConditionType::Degraded && x.status == api_types::ConditionStatus::True)
                {
                    set(c, Condition::not_degraded(g, now));
                }
            }
        }
    }
}

fn stage_name(sd: &ServiceDeployment) -> &'static str {
    sd.stage.map_or("PENDING", RolloutStage::as_ecs)
}

/// Answers a hook: `false` when ECS refused because it no longer awaits one
/// (answered before a crash, or timed out), which is not an error: the next
/// look says where the deployment went.
async fn answer(calls: &Calls<'_>, arn: &str, hook_id: &str, action: HookAction) -> Result<bool, ReconcileError> {
    match calls.ecs.continue_service_deployment(arn, hook_id, action).await {
        Ok(()) => Ok(true),
        Err(e) if e.is(ErrorKind::Invalid) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::ecs::HookDetail;
    use api_types::rollout::CanaryShift;

    fn sd(state: DeploymentState, stage: RolloutStage, awaiting: bool) -> ServiceDeployment {
        ServiceDeployment {
            arn: "arn:sd:1".into(),
            state,
            stage: Some(stage),
            status_reason: None,
            production_percent: Some(0.0),
            test_percent: Some(0.0),
            started_at: None,
            bake_minutes: Some(5),
            hooks: vec![HookDetail { hook_id: "h1".into(), awaiting, expires_at: None }],
        }
    }

    fn request(action: RolloutAction, arn: &str) -> RolloutRequest {
        RolloutRequest { action, service_deployment_arn: arn.into(), by: "alice".into(), at: chrono::Utc::now() }
    }

    fn recorded(verdict: Option<(&str, bool)>) -> RolloutStatus {
        RolloutStatus {
            strategy: api_types::rollout::DeploymentStrategy::BlueGreen,
            service_deployment_arn: "arn:sd:1".into(),
            task_definition_arn: "arn:td:2".into(),
            state: DeploymentState::InProgress,
            stage: None,
            production_percent: None,
            test_percent: None,
            started: chrono::Utc::now(),
            bake_ends_at: None,
            waiting_for: None,
            gate_expires_at: None,
            verdict: verdict.map(|(hook, pass)| Verdict {
                hook_id: hook.into(),
                pass,
                message: if pass { "ok" } else { "GET /health answered 503" }.into(),
            }),
            rollback_reason: None,
        }
    }

    #[test]
    fn the_gates_decide_from_what_ecs_reports_and_what_was_recorded() {
        use DeploymentState::*;
        use RolloutStage::*;
        let checks = PostTestTrafficShift;
        let approval = PreProductionTrafficShift;
        let promote = request(RolloutAction::Promote, "arn:sd:1");
        let abort = request(RolloutAction::Abort, "arn:sd:1");
        let stale_promote = request(RolloutAction::Promote, "arn:sd:0");
        let alarm = vec!["gw-5xx".to_string()];
        let h = || "h1".to_string();
        // (deployment, recorded, request, alarms firing, expected)
        type Row<'a> = (ServiceDeployment, Option<RolloutStatus>, Option<&'a RolloutRequest>, &'a [String], Step);
        let table: Vec<Row> = vec![
            (sd(InProgress, ScaleUp, false), None, None, &[], Step::Wait),
            (sd(InProgress, checks, true), None, None, &[], Step::Check { hook_id: h() }),
            (
                sd(InProgress, checks, true),
                Some(recorded(Some(("h1", true)))),
                None,
                &[],
                Step::Continue { hook_id: h(), why: "ok".into() },
            ),
            (
                sd(InProgress, checks, true),
                Some(recorded(Some(("h1", false)))),
                None,
                &[],
                Step::RollBackAtHook { hook_id: h(), why: "GET /health answered 503".into() },
            ),
            // A verdict for another hook (an earlier deployment) is not this one's.
            (sd(InProgress, checks, true), Some(recorded(Some(("h0", true)))), None, &[], Step::Check { hook_id: h() }),
            (sd(InProgress, approval, true), None, None, &[], Step::Wait),
            (sd(InProgress, approval, true), None, Some(&stale_promote), &[], Step::Wait),
            (
                sd(InProgress, approval, true),
                None,
                Some(&promote),
                &[],
                Step::Continue { hook_id: h(), why: "promoted by alice".into() },
            ),
            (
                sd(InProgress, approval, true),
                None,
                Some(&abort),
                &[],
                Step::RollBackAtHook { hook_id: h(), why: "aborted by alice".into() },
            ),
            (sd(InProgress, BakeTime, false), None, Some(&abort), &[], Step::Stop { why: "aborted by alice".into() }),
            // Alarms count only once production traffic moves.
            (sd(InProgress, PostScaleUp, false), None, None, &alarm, Step::Wait),
            (
                sd(InProgress, BakeTime, false),
                None,
                None,
                &alarm,
                Step::Stop { why: "alarm gw-5xx fired during BAKE_TIME".into() },
            ),
            (sd(InProgress, ProductionTrafficShift, false), None, None, &[], Step::Wait),
            // Over: nothing to do, whatever is asked.
            (sd(Successful, CleanUp, false), None, Some(&abort), &alarm, Step::Wait),
            (sd(RollbackSuccessful, ScaleUp, false), None, None, &[], Step::Wait),
            // A hook at a stage with no gate is let go.
            (
                sd(InProgress, PostScaleUp, true),
                None,
                None,
                &[],
                Step::Continue { hook_id: h(), why: "no gate at this stage".into() },
            ),
            // Clean-up: alarms no longer count (nothing left to roll back to).
            (sd(InProgress, CleanUp, false), None, None, &alarm, Step::Wait),
        ];
        for (i, (d, rec, req, firing, want)) in table.into_iter().enumerate() {
            assert_eq!(decide(&d, rec.as_ref(), req, true, firing), want, "row {i}");
        }
    }

    #[test]
    fn unknown_stages_wait_and_a_dropped_approval_lets_go() {
        let mut unknown = sd(DeploymentState::InProgress, RolloutStage::PostScaleUp, true);
        unknown.stage = None;
        assert_eq!(decide(&unknown, None, None, true, &[]), Step::Wait, "never skip a gate it cannot see");
        let gate = sd(DeploymentState::InProgress, RolloutStage::PreProductionTrafficShift, true);
        assert_eq!(decide(&gate, None, None, true, &[]), Step::Wait);
        assert!(matches!(decide(&gate, None, None, false, &[]), Step::Continue { .. }));
    }

    #[test]
    fn a_revision_is_held_while_its_deployment_or_a_rollback_is_in_flight() {
        let abort = request(RolloutAction::Abort, "arn:sd:1");
        let other_abort = request(RolloutAction::Abort, "arn:sd:0");
        let mut rolling_back = recorded(None);
        rolling_back.state = DeploymentState::RollbackInProgress;
        let mut decided = recorded(None);
        decided.rollback_reason = Some("alarm".into());
        let mut over = recorded(None);
        over.state = DeploymentState::Successful;
        // (recorded, request, wanted task definition, held)
        let table = [
            (None, None, "arn:td:2", false),
            (Some(recorded(None)), None, "arn:td:2", true),
            (Some(recorded(None)), None, "arn:td:3", false),
            (Some(recorded(None)), Some(&abort), "arn:td:1", true),
            (Some(recorded(None)), Some(&other_abort), "arn:td:1", false),
            (Some(rolling_back), None, "arn:td:1", true),
            (Some(decided), None, "arn:td:3", true),
            (Some(over), None, "arn:td:2", false),
        ];
        for (i, (rec, req, td, held)) in table.into_iter().enumerate() {
            assert_eq!(hold_task_definition(rec.as_ref(), req, td), held, "row {i}");
        }
    }

    #[test]
    fn the_spec_renders_its_strategy_and_one_hook_per_gate() {
        let spec: RelaySpec = serde_json::from_value(serde_json::json!({
            "cluster": "prod",
            "containers": [{"name": "api", "image": "ghcr.io/acme/api:1", "port": 8080}],
            "deployment": {"strategy": "Canary", "verify": {"testUrl": "http://t.example", "http": [{"path": "/health"}],
                           "approval": "Manual", "timeoutMinutes": 30, "onTimeout": "Continue"}}
        }))
        .unwrap();
        let d = deployment_config(&spec);
        assert_eq!(d.canary, Some(CanaryShift::default()), "the default canary is explicit");
        assert_eq!(d.linear, None);
        assert_eq!(
            d.hooks,
            vec![
                LifecycleHook {
                    stage: RolloutStage::PostTestTrafficShift,
                    timeout_minutes: 30,
                    timeout_action: HookAction::Continue
                },
                LifecycleHook {
                    stage: RolloutStage::PreProductionTrafficShift,
                    timeout_minutes: 30,
                    timeout_action: HookAction::Continue
                },
            ]
        );
        let rolling: RelaySpec = serde_json::from_value(serde_json::json!({
            "cluster": "prod", "containers": [{"name": "api", "image": "ghcr.io/acme/api:1", "port": 8080}]
        }))
        .unwrap();
        let d = deployment_config(&rolling);
        assert_eq!((d.bake_minutes, d.hooks.len(), d.canary), (0, 0, None), "rolling: no stages");
    }
}
