//! `scaling.mode: aws-native`: the scaling rules rendered as an Application
//! Auto Scaling target on the service's desired count and target-tracking
//! policies, so AWS keeps scaling while Mooring is down; Mooring keeps them as
//! rendered and reports the count AWS chose.
//!
//! The rendering, per rule of the controller's autoscaler:
//! - bounds → the scalable target's min and max capacity;
//! - CPU (relays; workers that set `cpuTargetPercent`) → a policy on
//!   `ECSServiceAverageCPUUtilization`;
//! - queue backlog (workers) → a policy on backlog per task by metric math,
//!   (visible + in-flight messages) / running tasks (Container Insights'
//!   `RunningTaskCount`: the cluster needs Container Insights on);
//! - the idle rule → each policy's scale-in cooldown of
//!   `scaleInAfterIdleSeconds` (a cooldown after the last scaling action, not
//!   Mooring's activity window); scale-out cooldown 60 s (the step period).
//!
//! Target tracking never scales a service up from zero, so `min: 0` with
//! `aws-native` is refused at validation.
//!
//! Ownership follows the service: the target is on the recorded service,
//! which is Mooring's, and its identity (`service/CLUSTER/NAME`) is recorded
//! in status before it is registered. Only policies named `mooring-*` are
//! touched; others a person put on the same target stay.

use std::time::Duration;

use api_types::event::Event;

use super::service::service_tags;
use super::{Calls, Workloads};
use crate::cloud::scaling::{POLICY_PREFIX, ScalableTarget, TrackedMetric, TrackingPolicy, resource_id};
use crate::cloud::{AppScaling, ErrorKind, Tags};
use crate::reconcile::{ReconcileError, Reconciled, Target};

/// The scale-out cooldown of every rendered policy: the step period of the
/// controller's autoscaler.
pub const SCALE_OUT_COOLDOWN: u32 = crate::autoscale::STEP_PERIOD.as_secs() as u32;

/// What AWS should hold for one service.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct NativeRules {
    pub target: ScalableTarget,
    pub policies: Vec<TrackingPolicy>,
}

/// The rules for a service: bounds, a CPU target, a backlog target (workers:
/// the queue's name).
pub(super) fn rules(
    cluster: &str,
    service: &str,
    (min, max): (u32, u32),
    cpu_target: Option<u32>,
    backlog: Option<(&str, u32)>,
    scale_in_after: u32,
) -> NativeRules {
    let policy = |name: &str, metric: TrackedMetric, target: f64| TrackingPolicy {
        name: name.to_string(),
        metric,
        target,
        scale_in_cooldown: scale_in_after,
        scale_out_cooldown: SCALE_OUT_COOLDOWN,
    };
    let mut policies = vec![];
    if let Some(cpu) = cpu_target {
        policies.push(policy("mooring-cpu", TrackedMetric::EcsCpu, f64::from(cpu)));
    }
    if let Some((queue, per_task)) = backlog {
        let metric = TrackedMetric::BacklogPerTask {
            queue: queue.to_string(),
            cluster: crate::names::cluster_name(cluster).to_string(),
            service: service.to_string(),
        };
        policies.push(policy("mooring-backlog", metric, f64::from(per_task)));
    }
    NativeRules {
        target: ScalableTarget { resource_id: resource_id(cluster, service), min, max: max.max(min) },
        policies,
    }
}

/// Mooring's policies among a target's (others are left alone).
fn ours(policies: Vec<TrackingPolicy>) -> Vec<TrackingPolicy> {
    policies.into_iter().filter(|p| p.name.starts_with(POLICY_PREFIX)).collect()
}

impl Workloads {
    /// One reconcile's step of native scaling, from the status record: with
    /// `want` (mode `aws-native`) the target is recorded first, then kept as
    /// rendered; a record on another service (a cluster move) is removed
    /// first; without `want` a recorded target is removed. Returns the record.
    pub(super) async fn native_scaling<S, St>(
        &self,
        calls: &Calls<'_>,
        target: &Target<'_, S, St>,
        recorded: Option<&str>,
        want: Option<&NativeRules>,
        user_tags: &Tags,
        r: &mut Reconciled<St>,
    ) -> Result<Option<String>, ReconcileError> {
        match (recorded, want) {
            (None, None) => Ok(None),
            (Some(old), None) => {
                self.remove_native_scaling(calls, old, &mut r.events).await?;
                Ok(None)
            }
            (Some(old), Some(rules)) if old != rules.target.resource_id => {
                self.remove_native_scaling(calls, old, &mut r.events).await?;
                r.requeue(Duration::ZERO);
                Ok(None)
            }
            (None, Some(rules)) => {
                // Recorded before it is registered: the next pass registers it.
                r.requeue(Duration::ZERO);
                Ok(Some(rules.target.resource_id.clone()))
            }
            (Some(id), Some(rules)) => {
                self.ensure_native_scaling(calls, rules, &service_tags(target, user_tags), &mut r.events).await?;
                Ok(Some(id.to_string()))
            }
        }
    }

    /// Registers the target and puts the policies where AWS differs from
    /// `rules`; deletes `mooring-*` policies the rules no longer have.
    pub(super) async fn ensure_native_scaling(
        &self,
        calls: &Calls<'_>,
        rules: &NativeRules,
        tags: &Tags,
        events: &mut Vec<Event>,
    ) -> Result<(), ReconcileError> {
        let id = &rules.target.resource_id;
        let registered = calls.scaling.describe_target(id).await?;
        if registered.as_ref() != Some(&rules.target) {
            calls.scaling.register_target(&rules.target, tags).await?;
            let what = format!("{id} between {} and {} tasks", rules.target.min, rules.target.max);
            events.push(match registered {
                None => Event::normal("ScalableTargetRegistered", what),
                Some(_) => Event::normal("ScalableTargetUpdated", what),
            });
        }
        let current = ours(calls.scaling.describe_policies(id).await?);
        for want in &rules.policies {
            if !current.iter().any(|p| p == want) {
                calls.scaling.put_policy(id, want).await?;
                events
                    .push(Event::normal("ScalingPolicyPut", format!("{} on {id}: target {}", want.name, want.target)));
            }
        }
        for old in current.iter().filter(|p| !rules.policies.iter().any(|w| w.name == p.name)) {
            match calls.scaling.delete_policy(id, &old.name).await {
                Ok(()) => events.push(Event::normal("ScalingPolicyDeleted", format!("{} on {id}", old.name))),
                Err(e) if e.is(ErrorKind::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Deletes Mooring's policies on a recorded target and deregisters it
    /// (idempotent: a target already gone is fine).
    pub(super) async fn remove_native_scaling(
        &self,
        calls: &Calls<'_>,
        recorded: &str,
        events: &mut Vec<Event>,
    ) -> Result<(), ReconcileError> {
        let gone = |e: &crate::cloud::CloudError| e.is(ErrorKind::NotFound);
        let policies = match calls.scaling.describe_policies(recorded).await {
            Ok(p) => p,
            Err(e) if gone(&e) => vec![],
            Err(e) => return Err(e.into()),
        };
        let others = policies.iter().filter(|p| !p.name.starts_with(POLICY_PREFIX)).count();
        for p in ours(policies) {
            match calls.scaling.delete_policy(recorded, &p.name).await {
                Ok(()) => {}
                Err(e) if gone(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if others > 0 {
            // Deregistering would delete someone else's policies with it.
            events.push(Event::normal(
                "ScalableTargetKept",
                format!("{recorded}: Mooring's policies deleted; {others} other policies keep the target"),
            ));
            return Ok(());
        }
        match calls.scaling.deregister_target(recorded).await {
            Ok(()) => events.push(Event::normal("ScalableTargetDeregistered", format!("{recorded} and its policies"))),
            Err(e) if gone(&e) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_as_a_table() {
        let relay = rules("prod", "web", (2, 10), Some(70), None, 600);
        assert_eq!(relay.target, ScalableTarget { resource_id: "service/prod/web".into(), min: 2, max: 10 });
        assert_eq!(relay.policies.len(), 1);
        assert_eq!((relay.policies[0].name.as_str(), relay.policies[0].target), ("mooring-cpu", 70.0));
        assert_eq!(relay.policies[0].scale_in_cooldown, 600);

        let worker = rules("batch", "jobs", (1, 20), None, Some(("jobs-q", 500)), 300);
        assert_eq!(worker.policies.len(), 1);
        let p = &worker.policies[0];
        assert_eq!(
            (p.name.as_str(), p.target, p.scale_in_cooldown, p.scale_out_cooldown),
            ("mooring-backlog", 500.0, 300, 60)
        );
        assert_eq!(
            p.metric,
            TrackedMetric::BacklogPerTask { queue: "jobs-q".into(), cluster: "batch".into(), service: "jobs".into() }
        );

        let both = rules("batch", "jobs", (1, 20), Some(80), Some(("q", 10)), 600);
        assert_eq!(
            both.policies.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["mooring-cpu", "mooring-backlog"]
        );
    }
}
