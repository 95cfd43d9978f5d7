//! Simulated CloudWatch: a service's CPU follows the load set on it (in
//! percent of one task's CPU), shared by its running tasks, so scaling out
//! brings the average down as it would in AWS. Metric alarms are stored as
//! put; an alarm on `AWS/EC2 StatusCheckFailed` of an instance is `ALARM`
//! while that instance's checks fail, any other while a test says so
//! ([`super::SimCloud::set_alarm`]), else `OK`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::Inner;
use crate::cloud::alarms::{Alarms, MetricAlarm, ObservedAlarm, check_names};
use crate::cloud::metrics::{Metrics, ServiceKey, check_batch};
use crate::cloud::{CloudError, CloudResult, ErrorKind, Tags, ops};

/// The CloudWatch facade of a [`super::SimCloud`].
pub(super) struct SimMetrics(pub(super) Arc<Inner>);

/// The load of each service, by (cluster, service).
#[derive(Default)]
pub(super) struct MetricsState {
    pub(super) load: BTreeMap<(String, String), f64>,
    /// Alarms in state `ALARM` (set by a test with [`super::SimCloud::set_alarm`]).
    pub(super) firing: std::collections::BTreeSet<String>,
    /// Metric alarms put, by name, with their tags (set when created).
    pub(super) alarms: BTreeMap<String, (MetricAlarm, Tags)>,
}

/// An alarm's state and its reason: `ALARM` for a put alarm on `AWS/EC2
/// StatusCheckFailed` of an instance whose checks fail, or for any name a
/// test set firing; else `OK`.
fn alarm_state(st: &mut super::State, ctx: &super::Ctx<'_>, name: &str) -> (&'static str, &'static str) {
    let instance = st.metrics.alarms.get(name).and_then(|(alarm, _)| {
        let status_check = alarm.namespace == "AWS/EC2" && alarm.metric_name == "StatusCheckFailed";
        let id = alarm.dimensions.iter().find(|(k, _)| k == "InstanceId").map(|(_, v)| v.clone());
        id.filter(|_| status_check)
    });
    let impaired =
        instance.is_some_and(|id| st.ec2.instance_health(&[id], ctx).is_ok_and(|h| h.iter().any(|c| c.failed())));
    if impaired {
        ("ALARM", "Threshold Crossed: the instance's status check failed (simulated)")
    } else if st.metrics.firing.contains(name) {
        ("ALARM", "Threshold Crossed (simulated)")
    } else {
        ("OK", "Threshold not crossed (simulated)")
    }
}

fn alarm_arn(name: &str) -> String {
    format!("arn:aws:cloudwatch:{}:{}:alarm:{name}", super::REGION, super::ACCOUNT)
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
        check_names(&op, names)?;
        self.0
            .call(op, "alarms", |st, ctx| {
                Ok(names.iter().filter(|n| alarm_state(st, ctx, n).0 == "ALARM").cloned().collect())
            })
            .await
    }
}

#[async_trait]
impl Alarms for SimMetrics {
    async fn metric_alarms(&self, names: &[String]) -> CloudResult<Vec<ObservedAlarm>> {
        let op = ops::DESCRIBE_ALARMS;
        check_names(&op, names)?;
        self.0
            .call(op, "alarms", |st, ctx| {
                let mut out = vec![];
                for name in names {
                    let Some((alarm, _)) = st.metrics.alarms.get(name).cloned() else { continue };
                    let (state, reason) = alarm_state(st, ctx, name);
                    out.push(ObservedAlarm {
                        alarm,
                        arn: alarm_arn(name),
                        state: state.into(),
                        state_reason: reason.into(),
                    });
                }
                Ok(out)
            })
            .await
    }

    async fn put_metric_alarm(&self, alarm: &MetricAlarm, tags: &Tags) -> CloudResult<()> {
        let op = ops::PUT_METRIC_ALARM;
        self.0
            .call(op, &alarm.name, |st, _| {
                super::check_tags(&op, tags)?;
                let tags = st.metrics.alarms.get(&alarm.name).map_or_else(|| tags.clone(), |(_, t)| t.clone());
                st.metrics.alarms.insert(alarm.name.clone(), (alarm.clone(), tags));
                Ok(())
            })
            .await
    }

    async fn alarm_tags(&self, arn: &str) -> CloudResult<Tags> {
        let op = ops::LIST_ALARM_TAGS;
        self.0
            .call(op, arn, |st, _| {
                let name = arn.rsplit_once(":alarm:").map(|(_, n)| n).unwrap_or_default();
                st.metrics.alarms.get(name).map(|(_, t)| t.clone()).ok_or_else(|| {
                    CloudError::new(
                        &op,
                        ErrorKind::NotFound,
                        format!("ResourceNotFoundException: {arn} does not exist"),
                    )
                })
            })
            .await
    }

    async fn delete_alarms(&self, names: &[String]) -> CloudResult<()> {
        let op = ops::DELETE_ALARMS;
        check_names(&op, names)?;
        self.0
            .call(op, "alarms", |st, _| {
                for n in names {
                    st.metrics.alarms.remove(n);
                }
                Ok(())
            })
            .await
    }
}
