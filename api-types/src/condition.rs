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
}

impl ConditionType {
    /// Every condition type, in the order dashboards show them.
    pub const ALL: [ConditionType; 4] =
        [ConditionType::Ready, ConditionType::Synced, ConditionType::Progressing, ConditionType::Degraded];

    /// The name in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::Ready => "Ready",
            ConditionType::Synced => "Synced",
            ConditionType::Progressing => "Progressing",
            ConditionType::Degraded => "Degraded",
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
