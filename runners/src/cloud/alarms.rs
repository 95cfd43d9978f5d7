//! CloudWatch metric alarms Mooring keeps itself (a node's, on its
//! instance): described, put, their tags read, deleted.
//!
//! Contract (both implementations): at most [`MAX_ALARM_NAMES`] names per
//! call; alarms that do not exist are left out of [`Alarms::metric_alarms`]
//! and ignored by [`Alarms::delete_alarms`]; tags given to
//! [`Alarms::put_metric_alarm`] are applied when it creates the alarm (AWS
//! ignores them on an update).

use async_trait::async_trait;

use super::metrics::MAX_ALARM_NAMES;
use super::{CloudResult, Tags};

/// A metric alarm's configuration: what PutMetricAlarm gets and
/// DescribeAlarms answers (compared to decide whether to put it again).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricAlarm {
    /// Unique in the account and Region.
    pub name: String,
    /// Says whose it is, for people reading the console.
    pub description: String,
    /// The metric's namespace (`AWS/EC2`).
    pub namespace: String,
    /// The metric (`StatusCheckFailed`).
    pub metric_name: String,
    /// (name, value), sorted.
    pub dimensions: Vec<(String, String)>,
    /// `Average`, `Maximum`, ...
    pub statistic: String,
    /// `GreaterThanThreshold`, ...
    pub comparison: String,
    /// What the statistic is compared with.
    pub threshold: f64,
    /// The length of one period.
    pub period_seconds: u32,
    /// How many periods in a row must breach.
    pub evaluation_periods: u32,
}

/// An alarm as DescribeAlarms answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedAlarm {
    /// Its configuration as CloudWatch holds it.
    pub alarm: MetricAlarm,
    /// Its ARN (what ListTagsForResource takes).
    pub arn: String,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
    /// CloudWatch's reason for the state.
    pub state_reason: String,
}

/// CloudWatch alarms, as Mooring keeps them.
#[async_trait]
pub trait Alarms: Send + Sync {
    /// The metric alarms among `names` that exist (DescribeAlarms).
    async fn metric_alarms(&self, names: &[String]) -> CloudResult<Vec<ObservedAlarm>>;
    /// Creates or replaces a metric alarm (PutMetricAlarm).
    async fn put_metric_alarm(&self, alarm: &MetricAlarm, tags: &Tags) -> CloudResult<()>;
    /// The tags of an alarm (ListTagsForResource).
    async fn alarm_tags(&self, arn: &str) -> CloudResult<Tags>;
    /// Deletes alarms (DeleteAlarms).
    async fn delete_alarms(&self, names: &[String]) -> CloudResult<()>;
}

/// The contract's batch limit, refused the way CloudWatch refuses it.
pub fn check_names(op: &super::Op, names: &[String]) -> CloudResult<()> {
    if names.len() > MAX_ALARM_NAMES {
        return Err(super::CloudError::new(
            op,
            super::ErrorKind::Invalid,
            format!("ValidationError: at most {MAX_ALARM_NAMES} alarm names"),
        ));
    }
    Ok(())
}
