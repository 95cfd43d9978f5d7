//! Simulated ELBv2 target groups: the groups named in the configuration,
//! instance targets that are `initial` after registration, `healthy` once
//! their instance has run for a while and `unhealthy` when it does not run,
//! and `draining` for a while after deregistration.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::time::Instant;

use super::ec2::Ec2State;
use super::{Ctx, Inner, Slot};
use crate::cloud::ec2::InstanceState;
use crate::cloud::targets::{TargetGroups, TargetHealth};
use crate::cloud::{CloudError, CloudResult, ErrorKind, Op, ops};

/// The ELBv2 facade of a [`super::SimCloud`].
pub(super) struct SimTargets(pub(super) Arc<Inner>);

/// A target: (instance id, port).
type TargetKey = (String, Option<u16>);

/// One registered target.
#[derive(Debug, Clone)]
struct TargetRec {
    registered: Instant,
    /// When a deregistered target is gone.
    draining_until: Option<Instant>,
}

/// Everything ELBv2 holds.
#[derive(Default)]
pub(super) struct ElbState {
    groups: BTreeMap<String, Slot<BTreeMap<TargetKey, TargetRec>>>,
    /// `deregistration_delay.timeout_seconds` set on a group (AWS's default, 300, otherwise).
    pub(super) delays: BTreeMap<String, u32>,
}

/// ELBv2's default deregistration delay.
const DEFAULT_DEREGISTRATION_DELAY: u32 = 300;

fn no_group(op: &Op, arn: &str) -> CloudError {
    CloudError::new(
        op,
        ErrorKind::MissingReference,
        format!("TargetGroupNotFound: One or more target groups not found ({arn})."),
    )
}

/// A target's health now.
fn health_of(key: &TargetKey, rec: &TargetRec, ec2: &mut Ec2State, ctx: &Ctx<'_>) -> TargetHealth {
    let (id, port) = key;
    let at = |state: &str, reason: Option<&str>| TargetHealth {
        id: id.clone(),
        port: *port,
        state: state.to_owned(),
        reason: reason.map(str::to_owned),
    };
    if rec.draining_until.is_some() {
        return at("draining", Some("Target.DeregistrationInProgress"));
    }
    let delay = ctx.cfg.target_healthy_delay;
    let running_since = match ec2.instance_state(id, ctx) {
        Some((InstanceState::Running, since)) => Some(since.unwrap_or(rec.registered)),
        _ => None,
    };
    match running_since {
        Some(since) if ctx.now >= since.max(rec.registered) + delay => at("healthy", None),
        _ if ctx.now < rec.registered + delay => at("initial", Some("Elb.RegistrationInProgress")),
        Some(_) => at("initial", Some("Elb.InitialHealthChecking")),
        None => at("unhealthy", Some("Target.InvalidState")),
    }
}

impl ElbState {
    /// A target group that exists from the start.
    pub(super) fn add_group(&mut self, arn: &str) {
        self.groups.entry(arn.to_owned()).or_default().cur = Some(BTreeMap::new());
    }

    /// The group's slot with drained targets gone (a settle, not a write).
    fn settled(&mut self, op: &Op, arn: &str, ctx: &Ctx<'_>) -> CloudResult<&mut Slot<BTreeMap<TargetKey, TargetRec>>> {
        let slot = self.groups.get_mut(arn).filter(|s| s.cur.is_some()).ok_or_else(|| no_group(op, arn))?;
        if let Some(targets) = slot.cur.as_mut() {
            targets.retain(|_, t| t.draining_until.is_none_or(|until| ctx.now < until));
        }
        Ok(slot)
    }

    pub(super) fn register(
        &mut self,
        arn: &str,
        targets: &[(String, Option<u16>)],
        ec2: &mut Ec2State,
        ctx: &Ctx<'_>,
    ) -> CloudResult<()> {
        let op = ops::REGISTER_TARGETS;
        // Nothing to do (AWS wants at least one target; the SDK facade makes no call).
        if targets.is_empty() {
            return Ok(());
        }
        self.settled(&op, arn, ctx)?;
        let invalid: Vec<&str> = targets
            .iter()
            .filter(|(id, _)| ec2.instance_state(id, ctx).is_none_or(|(s, _)| s == InstanceState::Terminated))
            .map(|(id, _)| id.as_str())
            .collect();
        if !invalid.is_empty() {
            return Err(CloudError::new(
                &op,
                ErrorKind::Invalid,
                format!("InvalidTarget: The following targets are not valid instances: {}", invalid.join(", ")),
            ));
        }
        let slot = self.settled(&op, arn, ctx)?;
        if let Some(group) = slot.write(ctx.now) {
            for (id, port) in targets {
                let key = (id.clone(), *port);
                // Registering a registered target changes nothing; a draining one starts over.
                if group.get(&key).is_none_or(|t| t.draining_until.is_some()) {
                    group.insert(key, TargetRec { registered: ctx.now, draining_until: None });
                }
            }
        }
        Ok(())
    }

    pub(super) fn deregister(
        &mut self,
        arn: &str,
        targets: &[(String, Option<u16>)],
        ctx: &Ctx<'_>,
    ) -> CloudResult<()> {
        let op = ops::DEREGISTER_TARGETS;
        // Nothing to do (AWS wants at least one target; the SDK facade makes no call).
        if targets.is_empty() {
            return Ok(());
        }
        let slot = self.settled(&op, arn, ctx)?;
        if let Some(group) = slot.write(ctx.now) {
            for (id, port) in targets {
                if let Some(t) = group.get_mut(&(id.clone(), *port))
                    && t.draining_until.is_none()
                {
                    t.draining_until = Some(ctx.now + ctx.cfg.drain_delay);
                }
            }
        }
        Ok(())
    }

    pub(super) fn health(&mut self, arn: &str, ec2: &mut Ec2State, ctx: &Ctx<'_>) -> CloudResult<Vec<TargetHealth>> {
        let op = ops::DESCRIBE_TARGET_HEALTH;
        let targets: Vec<(TargetKey, TargetRec)> = self
            .settled(&op, arn, ctx)?
            .view(ctx)
            .map(|g| g.iter().map(|(k, t)| (k.clone(), t.clone())).collect())
            .unwrap_or_default();
        Ok(targets.iter().map(|(k, t)| health_of(k, t, ec2, ctx)).collect())
    }

    /// The targets as they are now, for inspection (empty for an unknown group).
    pub(super) fn health_now(&mut self, arn: &str, ec2: &mut Ec2State, ctx: &Ctx<'_>) -> Vec<TargetHealth> {
        self.health(arn, ec2, ctx).unwrap_or_default()
    }
}

#[async_trait]
impl TargetGroups for SimTargets {
    async fn register_targets(&self, target_group_arn: &str, targets: &[(String, Option<u16>)]) -> CloudResult<()> {
        self.0
            .call(ops::REGISTER_TARGETS, target_group_arn, |st, ctx| {
                st.elb.register(target_group_arn, targets, &mut st.ec2, ctx)
            })
            .await
    }

    async fn deregister_targets(&self, target_group_arn: &str, targets: &[(String, Option<u16>)]) -> CloudResult<()> {
        self.0
            .call(ops::DEREGISTER_TARGETS, target_group_arn, |st, ctx| {
                st.elb.deregister(target_group_arn, targets, ctx)
            })
            .await
    }

    async fn target_health(&self, target_group_arn: &str) -> CloudResult<Vec<TargetHealth>> {
        self.0
            .call(ops::DESCRIBE_TARGET_HEALTH, target_group_arn, |st, ctx| {
                st.elb.health(target_group_arn, &mut st.ec2, ctx)
            })
            .await
    }

    async fn deregistration_delay(&self, target_group_arn: &str) -> CloudResult<Option<u32>> {
        self.0
            .call(ops::DESCRIBE_TARGET_GROUP_ATTRIBUTES, target_group_arn, |st, _| {
                let exists = st.elb.groups.get(target_group_arn).is_some_and(|g| g.cur.is_some());
                Ok(exists.then(|| st.elb.delays.get(target_group_arn).copied().unwrap_or(DEFAULT_DEREGISTRATION_DELAY)))
            })
            .await
    }
}
