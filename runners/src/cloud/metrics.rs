//! CloudWatch, as the autoscaler and the rollout gates use it: the average
//! CPU of ECS services, and which of a rollout's alarms are firing.
//!
//! Contract (both implementations): one call answers at most
//! [`MAX_METRIC_QUERIES`] services (GetMetricData's limit), in the order
//! asked; a service without a recent datapoint (no tasks, a new service) is
//! `None`, not an error.

use async_trait::async_trait;

use super::CloudResult;

/// GetMetricData takes at most this many queries.
pub const MAX_METRIC_QUERIES: usize = 500;
/// DescribeAlarms takes at most this many names.
pub const MAX_ALARM_NAMES: usize = 100;

/// The contract's batch limit, refused the way GetMetricData refuses it.
pub fn check_batch(services: &[ServiceKey]) -> CloudResult<()> {
    if services.len() > MAX_METRIC_QUERIES {
        return Err(super::CloudError::new(
            &super::ops::GET_METRIC_DATA,
            super::ErrorKind::Invalid,
            format!("ValidationError: {} queries; GetMetricData takes at most {MAX_METRIC_QUERIES}", services.len()),
        ));
    }
    Ok(())
}

/// An ECS service, as CloudWatch's `AWS/ECS` dimensions name it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    pub cluster: String,
    pub service: String,
}

/// CloudWatch, as Mooring uses it.
#[async_trait]
pub trait Metrics: Send + Sync {
    /// The latest average `CPUUtilization` (percent) of each service over the
    /// last minutes; `None` where CloudWatch has no datapoint.
    async fn service_cpu(&self, services: &[ServiceKey]) -> CloudResult<Vec<Option<f64>>>;
    /// Which of the metric alarms `names` (at most [`MAX_ALARM_NAMES`]) are in
    /// state `ALARM`. An alarm that does not exist is not firing.
    async fn alarms_firing(&self, names: &[String]) -> CloudResult<Vec<String>>;
}
