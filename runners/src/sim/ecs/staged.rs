//! Simulated ECS service deployments of the staged strategies (BLUE_GREEN,
//! CANARY, LINEAR): the green tasks start next to blue, the test listener
//! moves, PAUSE hooks stop the deployment where they are registered until
//! ContinueServiceDeployment (or their timeout), production traffic moves
//! (at once, canary then the rest, or in linear steps, each baked), the bake
//! keeps both, and the clean-up stops blue. A rollback at any stage before
//! the clean-up points production back at blue, which never stopped.
//!
//! The simulation also watches the promise a staged rollout makes: the
//! production rule never sends traffic to a revision with no healthy task.
//! Every moment it would is counted ([`Staged::dark_moments`]) for tests.

use api_types::rollout::{DeploymentState, RolloutStage};
use tokio::time::{Duration, Instant};

use super::{Ctx, SvcRec};
use crate::cloud::ecs::{DeploymentConfig, HookAction, HookDetail, RolloutState, ServiceDeployment};

/// A hook's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HookState {
    /// Its stage has not been reached.
    Pending,
    Awaiting {
        expires: Instant,
    },
    Done,
}

/// A PAUSE hook of one deployment.
#[derive(Debug, Clone)]
struct Hook {
    id: String,
    stage: RolloutStage,
    timeout: Duration,
    timeout_action: HookAction,
    state: HookState,
}

/// One service deployment of a staged strategy.
#[derive(Debug, Clone)]
pub(in crate::sim) struct Staged {
    pub(super) arn: String,
    state: DeploymentState,
    stage: RolloutStage,
    /// When the current stage (or step of the shift) began.
    since: Instant,
    config: DeploymentConfig,
    /// The deployment (task set) serving production when this one started;
    /// `None` for a service's first deployment.
    blue: Option<String>,
    pub(super) green: String,
    /// The green revision's share of production and test traffic (percent).
    production: f64,
    test: f64,
    hooks: Vec<Hook>,
    reason: Option<String>,
    started_epoch: u64,
    /// Moments the production rule pointed at a revision with no healthy task.
    pub(super) dark_moments: u32,
}

impl Staged {
    /// A deployment from `blue` to `green` that starts scaling up now.
    pub(super) fn new(
        arn: String,
        config: &DeploymentConfig,
        blue: Option<String>,
        green: String,
        ctx: &Ctx<'_>,
    ) -> Staged {
        let minute = ctx.cfg.minute;
        let hooks = config
            .hooks
            .iter()
            .enumerate()
            .map(|(i, h)| Hook {
                id: format!("{}-hook-{i}", arn.rsplit('/').next().unwrap_or("sd")),
                stage: h.stage,
                timeout: minute * h.timeout_minutes,
                timeout_action: h.timeout_action,
                state: HookState::Pending,
            })
            .collect();
        Staged {
            arn,
            state: DeploymentState::InProgress,
            stage: RolloutStage::ScaleUp,
            since: ctx.now,
            config: config.clone(),
            blue,
            green,
            production: 0.0,
            test: 0.0,
            hooks,
            reason: None,
            started_epoch: ctx.epoch_secs(),
            dark_moments: 0,
        }
    }

    /// What DescribeServiceDeployments says.
    pub(super) fn describe(&self) -> ServiceDeployment {
        ServiceDeployment {
            arn: self.arn.clone(),
            state: self.state,
            stage: self.state.advancing().then_some(self.stage),
            status_reason: self.reason.clone(),
            production_percent: Some(self.production),
            test_percent: Some(self.test),
            started_at: chrono::DateTime::from_timestamp(self.started_epoch as i64, 0),
            bake_minutes: Some(self.config.bake_minutes),
            hooks: self
                .hooks
                .iter()
                .filter(|h| h.state != HookState::Pending)
                .map(|h| HookDetail {
                    hook_id: h.id.clone(),
                    awaiting: matches!(h.state, HookState::Awaiting { .. }),
                    expires_at: None,
                })
                .collect(),
        }
    }

    pub(super) fn advancing(&self) -> bool {
        self.state.advancing()
    }

    /// A newer deployment (or StopServiceDeployment ABORT) ends this one where it is.
    pub(super) fn supersede(&mut self) {
        if self.state.advancing() {
            self.state = DeploymentState::Stopped;
            self.reason = Some("stopped: a newer deployment replaced it".to_owned());
            for h in &mut self.hooks {
                h.state = HookState::Done;
            }
        }
    }

    /// The deployment that serves production once this one is over (green
    /// unless it rolled back or stopped short of production).
    pub(super) fn serving(&self) -> Option<&str> {
        if self.production >= 100.0 { Some(&self.green) } else { self.blue.as_deref() }
    }

    /// The green share after the next step of the production shift, or
    /// `None` when all traffic has moved.
    fn next_share(&self) -> Option<f64> {
        if self.production >= 100.0 {
            return None;
        }
        let step = match (self.config.canary, self.config.linear) {
            (Some(c), _) if self.production == 0.0 => c.percent,
            (_, Some(l)) => l.step_percent,
            _ => 100.0,
        };
        Some((self.production + step).min(100.0))
    }

    /// Rolls back now: production and test go back to blue; green's tasks stop.
    pub(super) fn roll_back(svc: &mut SvcRec, i: usize, reason: String, ctx: &Ctx<'_>) {
        let d = &mut svc.staged[i];
        if !d.state.advancing() {
            return;
        }
        d.state = DeploymentState::RollbackSuccessful;
        d.production = 0.0;
        d.test = 0.0;
        d.reason = Some(reason.clone());
        d.since = ctx.now;
        for h in &mut d.hooks {
            h.state = HookState::Done;
        }
        let (blue, green) = (d.blue.clone(), d.green.clone());
        svc.restore(blue.as_deref(), &green, &reason);
    }

    /// Answers an awaiting hook.
    pub(super) fn answer(
        svc: &mut SvcRec,
        i: usize,
        hook_id: &str,
        action: HookAction,
        ctx: &Ctx<'_>,
    ) -> Result<(), String> {
        let d = &mut svc.staged[i];
        let Some(h) = d.hooks.iter_mut().find(|h| h.id == hook_id) else {
            return Err(format!("InvalidParameterException: no hook {hook_id} in {}", d.arn));
        };
        if !matches!(h.state, HookState::Awaiting { .. }) || !d.state.advancing() {
            return Err(format!("InvalidParameterException: hook {hook_id} is not awaiting action"));
        }
        h.state = HookState::Done;
        match action {
            HookAction::Continue => {
                d.since = ctx.now;
                Ok(())
            }
            HookAction::Rollback => {
                let reason = format!("rolled back by lifecycle hook {hook_id}");
                Staged::roll_back(svc, i, reason, ctx);
                Ok(())
            }
        }
    }

    /// Drives deployment `i` of `svc` up to `ctx.now`.
    pub(super) fn settle(svc: &mut SvcRec, i: usize, ctx: &Ctx<'_>) {
        let minute = ctx.cfg.minute;
        let delay = ctx.cfg.task_start_delay;
        for _ in 0..64 {
            if !svc.staged[i].state.advancing() {
                return;
            }
            let health = svc_health(svc, &svc.staged[i]);
            svc.staged[i].watch(health);
            let d = &svc.staged[i];
            let stage = d.stage;
            // A PAUSE hook at this stage holds it until answered or timed out.
            if let Some(h) = d.hooks.iter().position(|h| h.stage == stage && h.state != HookState::Done) {
                let d = &mut svc.staged[i];
                match d.hooks[h].state {
                    HookState::Pending => {
                        d.hooks[h].state = HookState::Awaiting { expires: d.since + d.hooks[h].timeout };
                        continue;
                    }
                    HookState::Awaiting { expires } if ctx.now >= expires => {
                        d.hooks[h].state = HookState::Done;
                        d.since = expires;
                        if d.hooks[h].timeout_action == HookAction::Rollback {
                            let reason = format!("lifecycle hook {} timed out at {}", d.hooks[h].id, stage.as_ecs());
                            Staged::roll_back(svc, i, reason, ctx);
                            return;
                        }
                        continue;
                    }
                    _ => return,
                }
            }
            let since = d.since;
            match stage {
                RolloutStage::ScaleUp => {
                    let Some(green) = svc.deployments.iter().find(|x| x.id == d.green) else { return };
                    if green.failing {
                        if ctx.now < since + delay {
                            return;
                        }
                        if d.config.circuit_breaker {
                            Staged::roll_back(svc, i, super::CIRCUIT_BREAKER_REASON.to_owned(), ctx);
                        }
                        return;
                    }
                    if green.running < green.target {
                        return;
                    }
                    svc.staged[i].enter(RolloutStage::PostScaleUp, since + delay);
                }
                RolloutStage::TestTrafficShift => {
                    let d = &mut svc.staged[i];
                    d.test = 100.0;
                    d.enter(RolloutStage::PostTestTrafficShift, since);
                }
                RolloutStage::ProductionTrafficShift => {
                    let d = &mut svc.staged[i];
                    match d.next_share() {
                        None => d.enter(RolloutStage::PostProductionTrafficShift, since),
                        Some(share) => {
                            // The first step moves at once; each later one after the bake of the one before.
                            let due = if d.production == 0.0 { since } else { since + d.step_bake(minute) };
                            if ctx.now < due {
                                return;
                            }
                            d.production = share;
                            d.since = due;
                        }
                    }
                }
                RolloutStage::BakeTime => {
                    let due = since + minute * d.config.bake_minutes;
                    if ctx.now < due {
                        return;
                    }
                    svc.staged[i].enter(RolloutStage::CleanUp, due);
                }
                RolloutStage::CleanUp => {
                    let (blue, green) = (d.blue.clone(), d.green.clone());
                    svc.finish(blue.as_deref(), &green);
                    let d = &mut svc.staged[i];
                    d.state = DeploymentState::Successful;
                    return;
                }
                other => {
                    let next = RolloutStage::ALL.iter().copied().find(|s| *s > other).unwrap_or(RolloutStage::CleanUp);
                    svc.staged[i].enter(next, since);
                }
            }
        }
    }

    /// The bake of the step just taken.
    fn step_bake(&self, minute: Duration) -> Duration {
        match (self.config.canary, self.config.linear) {
            (Some(c), _) => minute * c.bake_minutes,
            (_, Some(l)) => minute * l.step_bake_minutes,
            _ => Duration::ZERO,
        }
    }

    fn enter(&mut self, stage: RolloutStage, at: Instant) {
        self.stage = stage;
        self.since = at;
    }

    /// Counts a moment where production points at a revision without a
    /// healthy task (blue's share with blue gone, or green's with none up).
    fn watch(&mut self, (blue_up, green_up): (bool, bool)) {
        let to_green = self.production > 0.0;
        let to_blue = self.production < 100.0 && self.blue.is_some();
        if (to_green && !green_up) || (to_blue && !blue_up) {
            self.dark_moments += 1;
        }
    }
}

/// Whether blue and green have healthy tasks.
fn svc_health(svc: &SvcRec, d: &Staged) -> (bool, bool) {
    let up =
        |id: Option<&str>| svc.deployments.iter().any(|x| Some(x.id.as_str()) == id && x.running > 0 && !x.failing);
    (up(d.blue.as_deref()), up(Some(&d.green)))
}

impl SvcRec {
    /// After a rollback: blue is primary again with the service's count, green's tasks stop.
    fn restore(&mut self, blue: Option<&str>, green: &str, reason: &str) {
        for dep in &mut self.deployments {
            if dep.id == green {
                dep.primary = false;
                dep.rollout = RolloutState::Failed;
                dep.reason = Some(reason.to_owned());
                dep.running = 0;
                dep.target = 0;
            } else if Some(dep.id.as_str()) == blue {
                // Blue never stopped: it is primary again at the service's count.
                dep.primary = true;
                dep.target = self.desired;
                self.task_definition = dep.task_definition.clone();
            }
        }
    }

    /// After the clean-up: green is the only deployment left.
    fn finish(&mut self, blue: Option<&str>, green: &str) {
        self.deployments.retain(|x| Some(x.id.as_str()) != blue);
        if let Some(dep) = self.deployments.iter_mut().find(|x| x.id == green) {
            dep.rollout = RolloutState::Completed;
        }
    }
}
