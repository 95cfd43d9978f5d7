//! Kubernetes-style status conditions.
//!
//! A condition says one thing about a resource (`Ready`, `Synced`, ...) with a
//! machine-readable `reason` and a human `message`. `lastTransitionTime` moves only
//! when `status` flips, so dashboards can say "Ready for 3 days" and alert on how
//! long something has been False, not on how often the controller looked.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The condition types every kind reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ConditionType {
    /// The thing works: service steady at its desired count, node running and healthy.
    Ready,
    /// The latest generation has been applied to AWS without error.
    Synced,
    /// A rollout or a build is in flight.
    Progressing,
    /// A rollout rolled back, a build failed, or health failed after being Ready.
    Degraded,
    /// Only on resources a GitOps sync manages: `True` when the spec was last
    /// changed outside git (through the API, or a rollback), so the next sync
    /// restores git's version; `False` when the spec is the one git applied.
    Drifted,
    /// Advice that does not stop anything from working (as ACK's
    /// `ACK.Advisory`): `True` with what to change, e.g. a target group that
    /// deregisters tasks sooner than they drain. Set only where checked.
    Advisory,
}

impl ConditionType {
    /// Every condition type, in the order dashboards show them.
    pub const ALL: [ConditionType; 6] = [
        ConditionType::Ready,
        ConditionType::Synced,
        ConditionType::Progressing,
        ConditionType::Degraded,
        ConditionType::Drifted,
        ConditionType::Advisory,
    ];

    /// The name in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::Ready => "Ready",
            ConditionType::Synced => "Synced",
            ConditionType::Progressing => "Progressing",
            ConditionType::Degraded => "Degraded",
            ConditionType::Drifted => "Drifted",
            ConditionType::Advisory => "Advisory",
        }
    }
}

/// `True`, `False` or `Unknown`, as in Kubernetes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl ConditionStatus {
    /// The name in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

impl From<bool> for ConditionStatus {
    fn from(b: bool) -> Self {
        if b { ConditionStatus::True } else { ConditionStatus::False }
    }
}

/// One observation about a resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: ConditionType,
    pub status: ConditionStatus,
    /// CamelCase, machine-readable (`ApplyFailed`, `Throttled`, `RolloutComplete`).
    pub reason: String,
    /// For humans.
    #[serde(default)]
    pub message: String,
    /// The generation this condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When `status` last changed.
    pub last_transition_time: DateTime<Utc>,
}

impl Condition {
    /// A condition as of `now`.
    pub fn new(
        type_: ConditionType,
        status: impl Into<ConditionStatus>,
        reason: impl Into<String>,
        message: impl Into<String>,
        observed_generation: Option<i64>,
        now: DateTime<Utc>,
    ) -> Self {
        Condition {
            type_,
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            observed_generation,
            last_transition_time: now,
        }
    }
}

/// The reasons Mooring's conditions carry, in one place so reconcilers,
/// dashboards and tests agree on the spelling (crossplane-runtime's
/// `ReconcileSuccess()`, `Creating()` ... idea).
pub mod reason {
    /// `Synced=True`: the generation was applied.
    pub const RECONCILE_SUCCESS: &str = "ReconcileSuccess";
    /// `Synced=False`: AWS refused or failed.
    pub const APPLY_FAILED: &str = "ApplyFailed";
    /// `Synced=False`: AWS throttled Mooring.
    pub const THROTTLED: &str = "Throttled";
    /// `Synced=False`: the spec names an AWS resource that does not exist.
    pub const INVALID_REFERENCE: &str = "InvalidReference";
    /// `Synced=False`: the AWS resource Mooring would manage is someone else's.
    pub const CONFLICT: &str = "Conflict";
    /// `Synced=False`: the AWS call budget (Redis) is unreachable: nothing was changed.
    pub const BUDGET_UNAVAILABLE: &str = "BudgetUnavailable";
    /// `Synced=False`: the store could not answer what the reconcile needed.
    pub const STORE_UNAVAILABLE: &str = "StoreUnavailable";
    /// `Synced=False`: the stored document cannot be read by this version.
    pub const UNREADABLE: &str = "Unreadable";
    /// `Synced=False`, `Ready=Unknown`: no cloud backend is configured for the kind.
    pub const NO_CLOUD_BACKEND: &str = "NoCloudBackend";
    /// `Ready=False`, `Progressing=True`: the identities of what will be created are being recorded.
    pub const CREATING: &str = "Creating";
    /// `Ready=False`: teardown in flight.
    pub const DELETING: &str = "Deleting";
    /// `Degraded=False`.
    pub const AS_EXPECTED: &str = "AsExpected";
    /// `Progressing=True`: a service moves to another cluster.
    pub const MIGRATING: &str = "Migrating";
    /// `Progressing=True`, `Ready=False`: the relay's cache is being created or changed.
    pub const CACHE_CREATING: &str = "CacheCreating";
    /// `Progressing=True`: ElastiCache applies a change to the cache.
    pub const CACHE_MODIFYING: &str = "CacheModifying";
    /// `Degraded=True`, `Ready=False`: ElastiCache could not create the
    /// relay's cache (`create-failed`); Mooring deletes it and creates it again.
    pub const CACHE_CREATE_FAILED: &str = "CacheCreateFailed";
    /// `Progressing=True`: ECS rolls out a new task definition.
    pub const ROLLING_OUT: &str = "RollingOut";
    /// `Progressing=False`: the rollout completed.
    pub const ROLLOUT_COMPLETE: &str = "RolloutComplete";
    /// `Degraded=True`, `Progressing=False`: the circuit breaker stopped the rollout.
    pub const ROLLOUT_FAILED: &str = "RolloutFailed";
    /// `Advisory=True`: a target group deregisters tasks sooner than `deployment.drainSeconds`.
    pub const DEREGISTRATION_DELAY_SHORT: &str = "DeregistrationDelayShort";
    /// `Progressing=True`: Mooring runs its HTTP checks against the test listener.
    pub const VERIFYING: &str = "Verifying";
    /// `Progressing=True`: the deployment waits for `mooring rollout promote` (or `abort`).
    pub const AWAITING_APPROVAL: &str = "AwaitingApproval";
    /// `Progressing=True`: ECS moves production traffic to the new revision.
    pub const TRAFFIC_SHIFTING: &str = "TrafficShifting";
    /// `Progressing=True`: all traffic moved; both revisions are kept for the bake.
    pub const BAKING: &str = "Baking";
    /// `Progressing=True`: ECS is rolling the deployment back.
    pub const ROLLING_BACK: &str = "RollingBack";
    /// `Degraded=True`: a staged deployment rolled back (the message names the
    /// failed check, the alarm, or who aborted it).
    pub const ROLLED_BACK: &str = "RolledBack";
    /// `Ready=True`: running = desired, rollout complete.
    pub const SERVICE_STEADY: &str = "ServiceSteady";
    /// `Ready=True`: the desired count is zero.
    pub const SCALED_TO_ZERO: &str = "ScaledToZero";
    /// `Ready=False`: tasks are starting.
    pub const TASKS_STARTING: &str = "TasksStarting";
    /// Tasks above the desired count keep running because they set ECS
    /// scale-in protection (busy workers finishing a message).
    pub const SCALE_IN_PROTECTED: &str = "ScaleInProtected";
    /// `Synced=True` while a build applies the generation.
    pub const BUILD_IN_FLIGHT: &str = "BuildInFlight";
    /// `Progressing=True`: a provisioner build runs.
    pub const BUILDING: &str = "Building";
    /// `Progressing=True`: the build waits for a slot.
    pub const QUEUED: &str = "Queued";
    /// `Synced=False`, `Degraded=True`: builds failed.
    pub const BUILD_FAILED: &str = "BuildFailed";
    /// `Progressing=False`: the node's instance is provisioned.
    pub const PROVISIONED: &str = "Provisioned";
    /// `Ready=True`: the node is running and healthy.
    pub const NODE_HEALTHY: &str = "NodeHealthy";
    /// `Ready=False`: a node's checks fail.
    pub const NOT_HEALTHY: &str = "NotHealthy";
    /// `Degraded=True`: health failing after being Ready.
    pub const HEALTH_CHECK_FAILING: &str = "HealthCheckFailing";
    /// `Degraded=True`: the node's instance failed its EC2 status checks.
    pub const INSTANCE_IMPAIRED: &str = "InstanceImpaired";
    /// `Degraded=True`: one of the node's CloudWatch alarms is in `ALARM`.
    pub const ALARM_FIRING: &str = "AlarmFiring";
}

impl Condition {
    /// `Synced=True`, reason `ReconcileSuccess`: `generation` was applied.
    pub fn synced(generation: i64, now: DateTime<Utc>) -> Condition {
        Condition::new(
            ConditionType::Synced,
            true,
            reason::RECONCILE_SUCCESS,
            format!("generation {generation} applied"),
            Some(generation),
            now,
        )
    }

    /// `Synced=False` with `reason`: `generation` could not be applied.
    pub fn sync_failed(reason: &str, message: impl Into<String>, generation: i64, now: DateTime<Utc>) -> Condition {
        Condition::new(ConditionType::Synced, false, reason, message, Some(generation), now)
    }

    /// `Ready=True` with `reason`.
    pub fn ready(reason: &str, message: impl Into<String>, generation: i64, now: DateTime<Utc>) -> Condition {
        Condition::new(ConditionType::Ready, true, reason, message, Some(generation), now)
    }

    /// `Ready=False` with `reason`.
    pub fn not_ready(reason: &str, message: impl Into<String>, generation: i64, now: DateTime<Utc>) -> Condition {
        Condition::new(ConditionType::Ready, false, reason, message, Some(generation), now)
    }

    /// `Progressing=True` with `reason`: something is in flight.
    pub fn progressing(reason: &str, message: impl Into<String>, generation: i64, now: DateTime<Utc>) -> Condition {
        Condition::new(ConditionType::Progressing, true, reason, message, Some(generation), now)
    }

    /// `Progressing=False` with `reason`: nothing is in flight.
    pub fn settled(reason: &str, message: impl Into<String>, generation: i64, now: DateTime<Utc>) -> Condition {
        Condition::new(ConditionType::Progressing, false, reason, message, Some(generation), now)
    }

    /// `Degraded=True` with `reason`.
    pub fn degraded(reason: &str, message: impl Into<String>, generation: i64, now: DateTime<Utc>) -> Condition {
        Condition::new(ConditionType::Degraded, true, reason, message, Some(generation), now)
    }

    /// `Degraded=False`, reason `AsExpected`.
    pub fn not_degraded(generation: i64, now: DateTime<Utc>) -> Condition {
        Condition::new(ConditionType::Degraded, false, reason::AS_EXPECTED, "", Some(generation), now)
    }

    /// `Advisory=True` with what to change, or `False` when there is nothing to advise.
    pub fn advisory(advice: Option<(&str, String)>, generation: i64, now: DateTime<Utc>) -> Condition {
        match advice {
            Some((why, message)) => Condition::new(ConditionType::Advisory, true, why, message, Some(generation), now),
            None => Condition::new(ConditionType::Advisory, false, reason::AS_EXPECTED, "", Some(generation), now),
        }
    }
}

/// Helpers over a status's `conditions` list.
pub trait Conditions {
    /// Sets `cond`, replacing the condition of the same type. The previous
    /// `lastTransitionTime` is kept unless `status` flipped. Returns whether anything
    /// observable changed (status, reason, message or observed generation), so a
    /// caller can skip a status write that would change nothing.
    fn set_condition(&mut self, cond: Condition) -> bool;
    /// The condition of a type, if set.
    fn condition(&self, type_: ConditionType) -> Option<&Condition>;
    /// Whether the condition of a type is set and `True`.
    fn is_true(&self, type_: ConditionType) -> bool {
        self.condition(type_).is_some_and(|c| c.status == ConditionStatus::True)
    }
}

impl Conditions for Vec<Condition> {
    fn set_condition(&mut self, mut cond: Condition) -> bool {
        match self.iter_mut().find(|c| c.type_ == cond.type_) {
            Some(existing) => {
                if existing.status == cond.status {
                    cond.last_transition_time = existing.last_transition_time;
                }
                let changed = *existing != cond;
                *existing = cond;
                changed
            }
            None => {
                self.push(cond);
                // Keep a stable order so equal status documents serialize equally.
                self.sort_by_key(|c| ConditionType::ALL.iter().position(|t| *t == c.type_));
                true
            }
        }
    }

    fn condition(&self, type_: ConditionType) -> Option<&Condition> {
        self.iter().find(|c| c.type_ == type_)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let mut conds: Vec<Condition> = Vec::new();
        assert!(conds.set_condition(Condition::new(ConditionType::Ready, false, "Creating", "", Some(1), t(0))));
        assert_eq!(conds[0].last_transition_time, t(0));

        // Same status, new reason: changed, but the transition time stays.
        assert!(conds.set_condition(Condition::new(ConditionType::Ready, false, "Provisioning", "", Some(1), t(10))));
        assert_eq!(conds[0].last_transition_time, t(0));
        assert_eq!(conds[0].reason, "Provisioning");

        // Identical apart from the time: nothing observable changed.
        assert!(!conds.set_condition(Condition::new(ConditionType::Ready, false, "Provisioning", "", Some(1), t(20))));
        assert_eq!(conds[0].last_transition_time, t(0));

        // Flip: the transition time moves.
        assert!(conds.set_condition(Condition::new(ConditionType::Ready, true, "Available", "", Some(1), t(30))));
        assert_eq!(conds[0].last_transition_time, t(30));
        assert!(conds.is_true(ConditionType::Ready));
        assert_eq!(conds[0].last_transition_time - t(0), Duration::seconds(30));
    }

    #[test]
    fn conditions_keep_a_stable_order() {
        let mut conds: Vec<Condition> = Vec::new();
        conds.set_condition(Condition::new(ConditionType::Degraded, false, "AsExpected", "", None, t(0)));
        conds.set_condition(Condition::new(ConditionType::Ready, true, "Available", "", None, t(0)));
        conds.set_condition(Condition::new(ConditionType::Synced, true, "ReconcileSuccess", "", None, t(0)));
        let types: Vec<_> = conds.iter().map(|c| c.type_).collect();
        assert_eq!(types, vec![ConditionType::Ready, ConditionType::Synced, ConditionType::Degraded]);
        assert!(conds.condition(ConditionType::Progressing).is_none());
    }

    #[test]
    fn serializes_like_kubernetes() {
        let c = Condition::new(ConditionType::Synced, ConditionStatus::Unknown, "Pending", "waiting", Some(3), t(0));
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["type"], "Synced");
        assert_eq!(v["status"], "Unknown");
        assert_eq!(v["observedGeneration"], 3);
        assert!(v["lastTransitionTime"].as_str().unwrap().starts_with("2023-11-14T22:13:20"));
    }
}
