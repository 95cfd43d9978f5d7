//! The Application Auto Scaling facade over the AWS SDK (ECS services' desired
//! count only).

use async_trait::async_trait;
use aws_sdk_applicationautoscaling::Client;
use aws_sdk_applicationautoscaling::types::CustomizedMetricSpecification;
use aws_sdk_applicationautoscaling::types::{
    MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension, ServiceNamespace, TargetTrackingMetric,
    TargetTrackingMetricDataQuery, TargetTrackingMetricDimension, TargetTrackingMetricStat,
    TargetTrackingScalingPolicyConfiguration,
};

use super::error::cloud_error;
use crate::cloud::scaling::{AppScaling, ScalableTarget, TrackedMetric, TrackingPolicy};
use crate::cloud::{CloudError, CloudResult, ErrorKind, Op, Tags, ops};

/// Application Auto Scaling through the SDK.
#[derive(Clone, Debug)]
pub struct SdkAppScaling {
    client: Client,
}

impl SdkAppScaling {
    /// A facade over a client built from the shared configuration.
    pub fn new(config: &aws_config::SdkConfig) -> SdkAppScaling {
        SdkAppScaling { client: Client::new(config) }
    }
}

fn count(op: &Op, what: &str, n: u32) -> CloudResult<i32> {
    i32::try_from(n).map_err(|_| CloudError::new(op, ErrorKind::Invalid, format!("{what} {n} is too large")))
}

fn built<T, E: std::fmt::Display>(op: &Op, r: Result<T, E>) -> CloudResult<T> {
    r.map_err(|e| CloudError::new(op, ErrorKind::Invalid, e.to_string()))
}

/// "Not found" as AWS (ObjectNotFoundException) and moto (a
/// ValidationException that says so) answer it.
fn not_found(e: CloudError) -> CloudError {
    let m = e.message.to_ascii_lowercase();
    if m.contains("objectnotfound") || m.contains("no scalable target found") || m.contains("no scaling policy found") {
        CloudError { kind: ErrorKind::NotFound, ..e }
    } else {
        e
    }
}

fn stat(
    op: &Op,
    namespace: &str,
    name: &str,
    dims: &[(&str, &str)],
    statistic: &str,
) -> CloudResult<TargetTrackingMetricStat> {
    let metric = TargetTrackingMetric::builder()
        .namespace(namespace)
        .metric_name(name)
        .set_dimensions(Some(
            dims.iter()
                .map(|(n, v)| built(op, TargetTrackingMetricDimension::builder().name(*n).value(*v).build()))
                .collect::<CloudResult<Vec<_>>>()?,
        ))
        .build();
    built(op, TargetTrackingMetricStat::builder().metric(metric).stat(statistic).build())
}

/// The metric math of [`TrackedMetric::BacklogPerTask`].
fn backlog_queries(
    op: &Op,
    queue: &str,
    cluster: &str,
    service: &str,
) -> CloudResult<Vec<TargetTrackingMetricDataQuery>> {
    let q = [("QueueName", queue)];
    let svc = [("ClusterName", cluster), ("ServiceName", service)];
    let metric = |id: &str, s: TargetTrackingMetricStat| {
        built(op, TargetTrackingMetricDataQuery::builder().id(id).metric_stat(s).return_data(false).build())
    };
    Ok(vec![
        metric("visible", stat(op, "AWS/SQS", "ApproximateNumberOfMessagesVisible", &q, "Sum")?)?,
        metric("inflight", stat(op, "AWS/SQS", "ApproximateNumberOfMessagesNotVisible", &q, "Sum")?)?,
        metric("tasks", stat(op, "ECS/ContainerInsights", "RunningTaskCount", &svc, "Average")?)?,
        built(
            op,
            TargetTrackingMetricDataQuery::builder()
                .id("backlog")
                .expression("(visible + inflight) / tasks")
                .label("backlog per task")
                .return_data(true)
                .build(),
        )?,
    ])
}

/// Reads a described policy back into the domain type (None: not one Mooring renders).
fn policy_of(name: &str, c: &TargetTrackingScalingPolicyConfiguration) -> Option<TrackingPolicy> {
    let metric = if let Some(p) = c.predefined_metric_specification() {
        (p.predefined_metric_type() == &MetricType::EcsServiceAverageCpuUtilization).then_some(TrackedMetric::EcsCpu)?
    } else {
        let queries = c.customized_metric_specification()?.metrics();
        let dim = |id: &str, name: &str| {
            queries
                .iter()
                .find(|q| q.id() == id)
                .and_then(|q| q.metric_stat())
                .and_then(|s| s.metric())
                .and_then(|m| m.dimensions().iter().find(|d| d.name() == name).map(|d| d.value().to_string()))
        };
        TrackedMetric::BacklogPerTask {
            queue: dim("visible", "QueueName")?,
            cluster: dim("tasks", "ClusterName")?,
            service: dim("tasks", "ServiceName")?,
        }
    };
    Some(TrackingPolicy {
        name: name.to_string(),
        metric,
        target: c.target_value(),
        scale_in_cooldown: c.scale_in_cooldown().and_then(|s| u32::try_from(s).ok()).unwrap_or(0),
        scale_out_cooldown: c.scale_out_cooldown().and_then(|s| u32::try_from(s).ok()).unwrap_or(0),
    })
}

#[async_trait]
impl AppScaling for SdkAppScaling {
    async fn describe_target(&self, resource_id: &str) -> CloudResult<Option<ScalableTarget>> {
        let op = ops::DESCRIBE_SCALABLE_TARGETS;
        let out = self
            .client
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_ids(resource_id)
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        Ok(out.scalable_targets().iter().find(|t| t.resource_id() == resource_id).map(|t| ScalableTarget {
            resource_id: resource_id.to_string(),
            min: u32::try_from(t.min_capacity()).unwrap_or(0),
            max: u32::try_from(t.max_capacity()).unwrap_or(0),
        }))
    }

    async fn register_target(&self, target: &ScalableTarget, tags: &Tags) -> CloudResult<()> {
        let op = ops::REGISTER_SCALABLE_TARGET;
        self.client
            .register_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(&target.resource_id)
            .min_capacity(count(&op, "min", target.min)?)
            .max_capacity(count(&op, "max", target.max)?)
            .set_tags((!tags.is_empty()).then(|| tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect()))
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        Ok(())
    }

    async fn deregister_target(&self, resource_id: &str) -> CloudResult<()> {
        let op = ops::DEREGISTER_SCALABLE_TARGET;
        self.client
            .deregister_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(resource_id)
            .send()
            .await
            .map_err(|e| not_found(cloud_error(&op, e)))?;
        Ok(())
    }

    async fn describe_policies(&self, resource_id: &str) -> CloudResult<Vec<TrackingPolicy>> {
        let op = ops::DESCRIBE_SCALING_POLICIES;
        let out = self
            .client
            .describe_scaling_policies()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(resource_id)
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        Ok(out
            .scaling_policies()
            .iter()
            .map(|p| {
                let rendered = p
                    .target_tracking_scaling_policy_configuration()
                    .filter(|_| p.policy_type() == &PolicyType::TargetTrackingScaling)
                    .and_then(|c| policy_of(p.policy_name(), c));
                rendered.unwrap_or(TrackingPolicy {
                    name: p.policy_name().to_string(),
                    metric: TrackedMetric::Unrecognized,
                    target: 0.0,
                    scale_in_cooldown: 0,
                    scale_out_cooldown: 0,
                })
            })
            .collect())
    }

    async fn put_policy(&self, resource_id: &str, policy: &TrackingPolicy) -> CloudResult<()> {
        let op = ops::PUT_SCALING_POLICY;
        let config = TargetTrackingScalingPolicyConfiguration::builder()
            .target_value(policy.target)
            .scale_in_cooldown(count(&op, "scale-in cooldown", policy.scale_in_cooldown)?)
            .scale_out_cooldown(count(&op, "scale-out cooldown", policy.scale_out_cooldown)?);
        let config = match &policy.metric {
            TrackedMetric::EcsCpu => config.predefined_metric_specification(built(
                &op,
                PredefinedMetricSpecification::builder()
                    .predefined_metric_type(MetricType::EcsServiceAverageCpuUtilization)
                    .build(),
            )?),
            TrackedMetric::BacklogPerTask { queue, cluster, service } => config.customized_metric_specification(
                CustomizedMetricSpecification::builder()
                    .set_metrics(Some(backlog_queries(&op, queue, cluster, service)?))
                    .build(),
            ),
            TrackedMetric::Unrecognized => {
                return Err(CloudError::new(&op, ErrorKind::Invalid, "a policy Mooring does not render cannot be put"));
            }
        };
        self.client
            .put_scaling_policy()
            .policy_name(&policy.name)
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(resource_id)
            .policy_type(PolicyType::TargetTrackingScaling)
            .target_tracking_scaling_policy_configuration(built(&op, config.build())?)
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        Ok(())
    }

    async fn delete_policy(&self, resource_id: &str, name: &str) -> CloudResult<()> {
        let op = ops::DELETE_SCALING_POLICY;
        self.client
            .delete_scaling_policy()
            .policy_name(name)
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(resource_id)
            .send()
            .await
            .map_err(|e| not_found(cloud_error(&op, e)))?;
        Ok(())
    }
}
