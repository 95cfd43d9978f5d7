//! Simulated CloudWatch: a service's CPU follows the load set on it (in
//! percent of one task's CPU), shared by its running tasks, so scaling out
//! brings the average down as it would in AWS.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::Inner;
use crate::cloud::metrics::{MAX_ALARM_NAMES, Metrics, ServiceKey, check_batch};
use crate::cloud::{CloudError, CloudResult, ErrorKind, ops};

/// The CloudWatch facade of a [`super::SimCloud`].
pub(super) struct SimMetrics(pub(super) Arc<Inner>);

/// The load of each service, by (cluster, service).
#[derive(Default)]
pub(super) struct MetricsState {
    pub(super) load: BTreeMap<(String, String), f64>,
    /// Alarms in state `ALARM` (set by a test with [`super::SimCloud::set_alarm`]).
    pub(super) firing: std::collections::BTreeSet<String>,
}

#[async_trait]
impl Metrics for SimMetrics {
    async fn service_cpu(&self, services: &[ServiceKey]) -> CloudResult<Vec<Option<f64>>> {
        let op = ops::GET_METRIC_DATA;
        check_batch(services)?;
        self.0
            .call(op, "cpu", |st, ctx| {
                Ok(services
                    .iter()
                    .map(|k| {
                        let running = st.ecs.service(&k.cluster, &k.service, ctx).map_or(0, |s| s.running_count);
                        let load = st.metrics.load.get(&(k.cluster.clone(), k.service.clone())).copied()?;
                        (running > 0).then(|| (load / f64::from(running)).min(100.0))
                    })
                    .collect())
            })
            .await
    }

    async fn alarms_firing(&self, names: &[String]) -> CloudResult<Vec<String>> {
        let op = ops::DESCRIBE_ALARMS;
        if names.len() > MAX_ALARM_NAMES {
            return Err(CloudError::new(&op, ErrorKind::Invalid, "ValidationError: at most 100 alarm names"));
        }
        self.0
            .call(op, "alarms", |st, _| Ok(names.iter().filter(|n| st.metrics.firing.contains(*n)).cloned().collect()))
            .await
    }
}
