//! The CloudWatch facade over the AWS SDK: service CPU for the autoscaler,
//! batched (up to 500 services per GetMetricData), and the alarms a rollout
//! watches (DescribeAlarms by name).
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
use crate::cloud::metrics::{MAX_ALARM_NAMES, Metrics, ServiceKey, check_batch};
use crate::cloud::{CloudError, CloudResult, ErrorKind, ops};

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
        let op = ops::DESCRIBE_ALARMS;
        if names.len() > MAX_ALARM_NAMES {
            return Err(CloudError::new(&op, ErrorKind::Invalid, "ValidationError: at most 100 alarm names"));
        }
        if names.is_empty() {
            return Ok(vec![]);
        }
        let mut firing = vec![];
        let mut next: Option<String> = None;
        loop {
            let resp = self
                .client
                .describe_alarms()
                .set_alarm_names(Some(names.to_vec()))
                .alarm_types(aws_sdk_cloudwatch::types::AlarmType::MetricAlarm)
                .alarm_types(aws_sdk_cloudwatch::types::AlarmType::CompositeAlarm)
                .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| cloud_error(&op, e))?;
            firing.extend(resp.metric_alarms().iter().filter_map(|a| a.alarm_name().map(str::to_string)));
            firing.extend(resp.composite_alarms().iter().filter_map(|a| a.alarm_name().map(str::to_string)));
            match resp.next_token() {
                Some(t) if !t.is_empty() => next = Some(t.to_string()),
                _ => return Ok(firing),
            }
        }
    }
}
