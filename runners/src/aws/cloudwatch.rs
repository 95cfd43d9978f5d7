//! The CloudWatch facades over the AWS SDK: service CPU for the autoscaler,
//! batched (up to 500 services per GetMetricData), the alarms a rollout
//! watches (DescribeAlarms by name), and the alarms Mooring keeps for nodes.
//!
//! `aws-sdk-cloudwatch` is pinned to `=1.99.0` in the workspace: newer versions
//! speak Smithy RPC v2 CBOR, which moto (the local AWS of the tests) cannot
//! answer; AWS still serves the Query protocol 1.99 speaks.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
use aws_smithy_types::DateTime;

use super::error::cloud_error;
use crate::cloud::alarms::{Alarms, MetricAlarm, ObservedAlarm, check_names};
use crate::cloud::metrics::{Metrics, ServiceKey, check_batch};
use crate::cloud::{CloudResult, Tags, ops};

/// How far back a datapoint may be (ECS publishes every minute).
const LOOKBACK: Duration = Duration::from_secs(300);

/// CloudWatch through the SDK; the implementation of [`Metrics`] that talks to AWS (or moto).
#[derive(Clone, Debug)]
pub struct SdkMetrics {
    client: Client,
}

impl SdkMetrics {
    /// A facade over a client built from the shared configuration.
    pub fn new(config: &aws_config::SdkConfig) -> SdkMetrics {
        SdkMetrics { client: Client::new(config) }
    }
}

fn query(i: usize, s: &ServiceKey) -> MetricDataQuery {
    let metric = Metric::builder()
        .namespace("AWS/ECS")
        .metric_name("CPUUtilization")
        .dimensions(Dimension::builder().name("ClusterName").value(&s.cluster).build())
        .dimensions(Dimension::builder().name("ServiceName").value(&s.service).build())
        .build();
    MetricDataQuery::builder()
        .id(format!("m{i}"))
        .metric_stat(MetricStat::builder().metric(metric).period(60).stat("Average").build())
        .return_data(true)
        .build()
}

#[async_trait]
impl Metrics for SdkMetrics {
    async fn service_cpu(&self, services: &[ServiceKey]) -> CloudResult<Vec<Option<f64>>> {
        let op = ops::GET_METRIC_DATA;
        check_batch(services)?;
        let mut out = vec![None; services.len()];
        if services.is_empty() {
            return Ok(out);
        }
        let now = SystemTime::now();
        let queries: Vec<MetricDataQuery> = services.iter().enumerate().map(|(i, s)| query(i, s)).collect();
        let mut next: Option<String> = None;
        loop {
            let resp = self
                .client
                .get_metric_data()
                .set_metric_data_queries(Some(queries.clone()))
                .start_time(DateTime::from(now - LOOKBACK))
                .end_time(DateTime::from(now))
                .scan_by(ScanBy::TimestampDescending)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| cloud_error(&op, e))?;
            for r in resp.metric_data_results() {
                let Some(i) = r.id().and_then(|id| id.strip_prefix('m')).and_then(|n| n.parse::<usize>().ok()) else {
                    continue;
                };
                // Newest first: the first value of the first page that has one.
                if let (Some(slot), Some(v)) = (out.get_mut(i), r.values().first())
                    && slot.is_none()
                {
                    *slot = Some(*v);
                }
            }
            match resp.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }

    async fn alarms_firing(&self, names: &[String]) -> CloudResult<Vec<String>> {
        use aws_sdk_cloudwatch::types::StateValue;
        let pages = self.describe_alarms(names, true).await?;
        // The state is checked here too: AWS filters by it, moto does not.
        let firing = |state: Option<&StateValue>, name: Option<&str>| {
            name.filter(|_| state == Some(&StateValue::Alarm)).map(str::to_string)
        };
        Ok(pages
            .iter()
            .flat_map(|p| {
                let metric = p.metric_alarms().iter().filter_map(|a| firing(a.state_value(), a.alarm_name()));
                metric.chain(p.composite_alarms().iter().filter_map(|a| firing(a.state_value(), a.alarm_name())))
            })
            .collect())
    }
}

impl SdkMetrics {
    /// Every page of DescribeAlarms for `names` (at most
    /// [`MAX_ALARM_NAMES`](crate::cloud::metrics::MAX_ALARM_NAMES)):
    /// metric and composite alarms in state `ALARM` when `firing`, else metric
    /// alarms in any state.
    async fn describe_alarms(
        &self,
        names: &[String],
        firing: bool,
    ) -> CloudResult<Vec<aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput>> {
        use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
        let op = ops::DESCRIBE_ALARMS;
        check_names(&op, names)?;
        let mut pages = vec![];
        if names.is_empty() {
            return Ok(pages);
        }
        let mut next: Option<String> = None;
        loop {
            let mut req = self
                .client
                .describe_alarms()
                .set_alarm_names(Some(names.to_vec()))
                .alarm_types(AlarmType::MetricAlarm)
                .set_next_token(next.take());
            if firing {
                req = req.alarm_types(AlarmType::CompositeAlarm).state_value(StateValue::Alarm);
            }
            let resp = req.send().await.map_err(|e| cloud_error(&op, e))?;
            next = resp.next_token().filter(|t| !t.is_empty()).map(str::to_string);
            pages.push(resp);
            if next.is_none() {
                return Ok(pages);
            }
        }
    }
}

#[async_trait]
impl Alarms for SdkMetrics {
    async fn metric_alarms(&self, names: &[String]) -> CloudResult<Vec<ObservedAlarm>> {
        let pages = self.describe_alarms(names, false).await?;
        Ok(pages.iter().flat_map(|p| p.metric_alarms().iter().map(observed)).collect())
    }

    async fn put_metric_alarm(&self, alarm: &MetricAlarm, tags: &Tags) -> CloudResult<()> {
        let op = ops::PUT_METRIC_ALARM;
        let mut req = self
            .client
            .put_metric_alarm()
            .alarm_name(&alarm.name)
            .alarm_description(&alarm.description)
            .namespace(&alarm.namespace)
            .metric_name(&alarm.metric_name)
            .statistic(aws_sdk_cloudwatch::types::Statistic::from(alarm.statistic.as_str()))
            .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::from(alarm.comparison.as_str()))
            .threshold(alarm.threshold)
            .period(i32::try_from(alarm.period_seconds).unwrap_or(i32::MAX))
            .evaluation_periods(i32::try_from(alarm.evaluation_periods).unwrap_or(i32::MAX));
        for (name, value) in &alarm.dimensions {
            req = req.dimensions(Dimension::builder().name(name).value(value).build());
        }
        for (key, value) in tags {
            req = req.tags(aws_sdk_cloudwatch::types::Tag::builder().key(key).value(value).build());
        }
        req.send().await.map_err(|e| cloud_error(&op, e))?;
        Ok(())
    }

    async fn alarm_tags(&self, arn: &str) -> CloudResult<Tags> {
        let op = ops::LIST_ALARM_TAGS;
        let out =
            self.client.list_tags_for_resource().resource_arn(arn).send().await.map_err(|e| cloud_error(&op, e))?;
        Ok(out
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
            .collect())
    }

    async fn delete_alarms(&self, names: &[String]) -> CloudResult<()> {
        let op = ops::DELETE_ALARMS;
        check_names(&op, names)?;
        if names.is_empty() {
            return Ok(());
        }
        self.client
            .delete_alarms()
            .set_alarm_names(Some(names.to_vec()))
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        Ok(())
    }
}

/// A metric alarm as the facade describes it.
fn observed(a: &aws_sdk_cloudwatch::types::MetricAlarm) -> ObservedAlarm {
    let mut dimensions: Vec<(String, String)> = a
        .dimensions()
        .iter()
        .map(|d| (d.name().unwrap_or_default().to_string(), d.value().unwrap_or_default().to_string()))
        .collect();
    dimensions.sort();
    ObservedAlarm {
        alarm: MetricAlarm {
            name: a.alarm_name().unwrap_or_default().to_string(),
            description: a.alarm_description().unwrap_or_default().to_string(),
            namespace: a.namespace().unwrap_or_default().to_string(),
            metric_name: a.metric_name().unwrap_or_default().to_string(),
            dimensions,
            statistic: a.statistic().map(|s| s.as_str().to_string()).unwrap_or_default(),
            comparison: a.comparison_operator().map(|c| c.as_str().to_string()).unwrap_or_default(),
            threshold: a.threshold().unwrap_or_default(),
            period_seconds: a.period().and_then(|p| u32::try_from(p).ok()).unwrap_or_default(),
            evaluation_periods: a.evaluation_periods().and_then(|p| u32::try_from(p).ok()).unwrap_or_default(),
        },
        arn: a.alarm_arn().unwrap_or_default().to_string(),
        state: a.state_value().map(|s| s.as_str().to_string()).unwrap_or_default(),
        state_reason: a.state_reason().unwrap_or_default().to_string(),
    }
}
