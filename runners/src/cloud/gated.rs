//! The one place where facade calls meet the caller's gate: take a token from
//! the API family's budget (and prove the lease), make the call, record the
//! outcome for metrics.

use std::future::Future;

use async_trait::async_trait;

use super::alarms::{Alarms, MetricAlarm, ObservedAlarm};
use super::caches::{ReplicationGroup, ReplicationGroupChange, ReplicationGroupInput};
use super::codebuild::{Build, BuildRequest, Project, ProjectInput};
use super::dns::{RecordChange, RecordCursor, RecordPage};
use super::ec2::{Instance, InstanceHealth, InstanceInput, Volume, VolumeInput};
use super::ecs::{
    HookAction, Service, ServiceDeployment, ServiceInput, ServiceUpdate, StopKind, TaskDefinition, TaskDefinitionInput,
};
use super::metrics::ServiceKey;
use super::queues::QueueAttributes;
use super::scaling::{AppScaling, ScalableTarget, TrackingPolicy};
use super::snapshots::Snapshot;
use super::targets::TargetHealth;
use super::{Builds, Dns, Ec2, Metrics, Snapshots, TargetGroups};
use super::{Caches, CloudError, CloudResult, Ecs, ErrorKind, Op, Queues, Tags, ops};
use crate::gate::CallGate;

/// A facade seen through a gate.
pub struct Gated<'a, T: ?Sized> {
    inner: &'a T,
    gate: &'a dyn CallGate,
}

impl<'a, T: ?Sized> Gated<'a, T> {
    pub fn new(inner: &'a T, gate: &'a dyn CallGate) -> Self {
        Gated { inner, gate }
    }

    async fn call<R>(&self, op: Op, fut: impl Future<Output = CloudResult<R>>) -> CloudResult<R> {
        guard(self.gate, op, fut).await
    }
}

/// Takes a token for `op`, runs `fut`, records the outcome.
pub async fn guard<R>(gate: &dyn CallGate, op: Op, fut: impl Future<Output = CloudResult<R>>) -> CloudResult<R> {
    if let Err(e) = gate.acquire(op.family).await {
        let (kind, retry_after) = match e {
            crate::gate::GateError::LeaseNotHeld { .. } => (ErrorKind::LeaseNotHeld, None),
            crate::gate::GateError::BudgetUnavailable(_) => (ErrorKind::BudgetUnavailable, None),
            crate::gate::GateError::OverBudget { retry_after, .. } => (ErrorKind::OverBudget, Some(retry_after)),
        };
        gate.record(&op, kind.as_str());
        return Err(CloudError { retry_after, ..CloudError::new(&op, kind, e.to_string()) });
    }
    let out = fut.await;
    gate.record(&op, out.as_ref().map_or_else(|e| e.kind.as_str(), |_| "ok"));
    out
}

#[async_trait]
impl Ecs for Gated<'_, dyn Ecs> {
    async fn describe_services(&self, cluster: &str, names: &[String]) -> CloudResult<Vec<Service>> {
        self.call(ops::DESCRIBE_SERVICES, self.inner.describe_services(cluster, names)).await
    }
    async fn create_service(&self, input: &ServiceInput) -> CloudResult<Service> {
        self.call(ops::CREATE_SERVICE, self.inner.create_service(input)).await
    }
    async fn update_service(&self, update: &ServiceUpdate) -> CloudResult<Service> {
        self.call(ops::UPDATE_SERVICE, self.inner.update_service(update)).await
    }
    async fn delete_service(&self, cluster: &str, name: &str, force: bool) -> CloudResult<()> {
        self.call(ops::DELETE_SERVICE, self.inner.delete_service(cluster, name, force)).await
    }
    async fn retag(&self, arn: &str, add: &Tags, remove: &[String]) -> CloudResult<()> {
        let op = if add.is_empty() { ops::UNTAG_RESOURCE } else { ops::TAG_RESOURCE };
        self.call(op, self.inner.retag(arn, add, remove)).await
    }
    async fn register_task_definition(&self, input: &TaskDefinitionInput) -> CloudResult<TaskDefinition> {
        self.call(ops::REGISTER_TASK_DEFINITION, self.inner.register_task_definition(input)).await
    }
    async fn describe_task_definition(&self, arn: &str) -> CloudResult<TaskDefinition> {
        self.call(ops::DESCRIBE_TASK_DEFINITION, self.inner.describe_task_definition(arn)).await
    }
    async fn list_service_tasks(&self, cluster: &str, service: &str) -> CloudResult<Vec<String>> {
        self.call(ops::LIST_TASKS, self.inner.list_service_tasks(cluster, service)).await
    }
    async fn protected_tasks(&self, cluster: &str, tasks: &[String]) -> CloudResult<Vec<String>> {
        self.call(ops::GET_TASK_PROTECTION, self.inner.protected_tasks(cluster, tasks)).await
    }
    async fn describe_service_deployment(&self, arn: &str) -> CloudResult<Option<ServiceDeployment>> {
        self.call(ops::DESCRIBE_SERVICE_DEPLOYMENTS, self.inner.describe_service_deployment(arn)).await
    }
    async fn continue_service_deployment(&self, arn: &str, hook_id: &str, action: HookAction) -> CloudResult<()> {
        self.call(ops::CONTINUE_SERVICE_DEPLOYMENT, self.inner.continue_service_deployment(arn, hook_id, action)).await
    }
    async fn stop_service_deployment(&self, arn: &str, kind: StopKind) -> CloudResult<()> {
        self.call(ops::STOP_SERVICE_DEPLOYMENT, self.inner.stop_service_deployment(arn, kind)).await
    }
    async fn list_task_definitions(&self, family: &str) -> CloudResult<Vec<String>> {
        self.call(ops::LIST_TASK_DEFINITIONS, self.inner.list_task_definitions(family)).await
    }
    async fn deregister_task_definition(&self, arn: &str) -> CloudResult<()> {
        self.call(ops::DEREGISTER_TASK_DEFINITION, self.inner.deregister_task_definition(arn)).await
    }
}

#[async_trait]
impl Queues for Gated<'_, dyn Queues> {
    async fn queue_url(&self, name: &str) -> CloudResult<Option<String>> {
        self.call(ops::GET_QUEUE_URL, self.inner.queue_url(name)).await
    }
    async fn create_queue(&self, name: &str, attributes: &QueueAttributes, tags: &Tags) -> CloudResult<String> {
        self.call(ops::CREATE_QUEUE, self.inner.create_queue(name, attributes, tags)).await
    }
    async fn queue_attributes(&self, url: &str) -> CloudResult<QueueAttributes> {
        self.call(ops::GET_QUEUE_ATTRIBUTES, self.inner.queue_attributes(url)).await
    }
    async fn set_queue_attributes(&self, url: &str, attributes: &QueueAttributes) -> CloudResult<()> {
        self.call(ops::SET_QUEUE_ATTRIBUTES, self.inner.set_queue_attributes(url, attributes)).await
    }
    async fn queue_tags(&self, url: &str) -> CloudResult<Tags> {
        self.call(ops::LIST_QUEUE_TAGS, self.inner.queue_tags(url)).await
    }
    async fn tag_queue(&self, url: &str, tags: &Tags) -> CloudResult<()> {
        self.call(ops::TAG_QUEUE, self.inner.tag_queue(url, tags)).await
    }
    async fn untag_queue(&self, url: &str, keys: &[String]) -> CloudResult<()> {
        self.call(ops::UNTAG_QUEUE, self.inner.untag_queue(url, keys)).await
    }
    async fn delete_queue(&self, url: &str) -> CloudResult<()> {
        self.call(ops::DELETE_QUEUE, self.inner.delete_queue(url)).await
    }
}

#[async_trait]
impl Caches for Gated<'_, dyn Caches> {
    async fn describe_replication_group(&self, id: &str) -> CloudResult<Option<ReplicationGroup>> {
        self.call(ops::DESCRIBE_REPLICATION_GROUPS, self.inner.describe_replication_group(id)).await
    }
    async fn create_replication_group(&self, input: &ReplicationGroupInput) -> CloudResult<ReplicationGroup> {
        self.call(ops::CREATE_REPLICATION_GROUP, self.inner.create_replication_group(input)).await
    }
    async fn delete_replication_group(&self, id: &str) -> CloudResult<()> {
        self.call(ops::DELETE_REPLICATION_GROUP, self.inner.delete_replication_group(id)).await
    }
    async fn remove_tags(&self, arn: &str, keys: &[String]) -> CloudResult<()> {
        self.call(ops::REMOVE_TAGS_FROM_RESOURCE, self.inner.remove_tags(arn, keys)).await
    }
    async fn add_tags(&self, arn: &str, tags: &Tags) -> CloudResult<()> {
        self.call(ops::ADD_TAGS_TO_RESOURCE, self.inner.add_tags(arn, tags)).await
    }
    async fn tags(&self, arn: &str) -> CloudResult<Tags> {
        self.call(ops::LIST_TAGS_FOR_RESOURCE, self.inner.tags(arn)).await
    }
    async fn modify_replication_group(&self, id: &str, change: &ReplicationGroupChange) -> CloudResult<()> {
        self.call(ops::MODIFY_REPLICATION_GROUP, self.inner.modify_replication_group(id, change)).await
    }
    async fn set_replicas(&self, id: &str, from: u32, to: u32) -> CloudResult<()> {
        let op = if to >= from { ops::INCREASE_REPLICA_COUNT } else { ops::DECREASE_REPLICA_COUNT };
        self.call(op, self.inner.set_replicas(id, from, to)).await
    }
}

#[async_trait]
impl Metrics for Gated<'_, dyn Metrics> {
    async fn service_cpu(&self, services: &[ServiceKey]) -> CloudResult<Vec<Option<f64>>> {
        self.call(ops::GET_METRIC_DATA, self.inner.service_cpu(services)).await
    }
    async fn alarms_firing(&self, names: &[String]) -> CloudResult<Vec<String>> {
        self.call(ops::DESCRIBE_ALARMS, self.inner.alarms_firing(names)).await
    }
}

#[async_trait]
impl AppScaling for Gated<'_, dyn AppScaling> {
    async fn describe_target(&self, resource_id: &str) -> CloudResult<Option<ScalableTarget>> {
        self.call(ops::DESCRIBE_SCALABLE_TARGETS, self.inner.describe_target(resource_id)).await
    }
    async fn register_target(&self, target: &ScalableTarget, tags: &Tags) -> CloudResult<()> {
        self.call(ops::REGISTER_SCALABLE_TARGET, self.inner.register_target(target, tags)).await
    }
    async fn deregister_target(&self, resource_id: &str) -> CloudResult<()> {
        self.call(ops::DEREGISTER_SCALABLE_TARGET, self.inner.deregister_target(resource_id)).await
    }
    async fn describe_policies(&self, resource_id: &str) -> CloudResult<Vec<TrackingPolicy>> {
        self.call(ops::DESCRIBE_SCALING_POLICIES, self.inner.describe_policies(resource_id)).await
    }
    async fn put_policy(&self, resource_id: &str, policy: &TrackingPolicy) -> CloudResult<()> {
        self.call(ops::PUT_SCALING_POLICY, self.inner.put_policy(resource_id, policy)).await
    }
    async fn delete_policy(&self, resource_id: &str, name: &str) -> CloudResult<()> {
        self.call(ops::DELETE_SCALING_POLICY, self.inner.delete_policy(resource_id, name)).await
    }
}

#[async_trait]
impl Ec2 for Gated<'_, dyn Ec2> {
    async fn instances_tagged(&self, key: &str, values: &[String]) -> CloudResult<Vec<Instance>> {
        self.call(ops::DESCRIBE_INSTANCES, self.inner.instances_tagged(key, values)).await
    }
    async fn run_instance(&self, input: &InstanceInput) -> CloudResult<Instance> {
        self.call(ops::RUN_INSTANCES, self.inner.run_instance(input)).await
    }
    async fn stop_instance(&self, id: &str) -> CloudResult<()> {
        self.call(ops::STOP_INSTANCES, self.inner.stop_instance(id)).await
    }
    async fn start_instance(&self, id: &str) -> CloudResult<()> {
        self.call(ops::START_INSTANCES, self.inner.start_instance(id)).await
    }
    async fn terminate_instance(&self, id: &str) -> CloudResult<()> {
        self.call(ops::TERMINATE_INSTANCES, self.inner.terminate_instance(id)).await
    }
    async fn modify_instance_type(&self, id: &str, instance_type: &str) -> CloudResult<()> {
        self.call(ops::MODIFY_INSTANCE_ATTRIBUTE, self.inner.modify_instance_type(id, instance_type)).await
    }
    async fn modify_user_data(&self, id: &str, user_data: &str) -> CloudResult<()> {
        self.call(ops::MODIFY_INSTANCE_ATTRIBUTE, self.inner.modify_user_data(id, user_data)).await
    }
    async fn instance_health(&self, ids: &[String]) -> CloudResult<Vec<InstanceHealth>> {
        self.call(ops::DESCRIBE_INSTANCE_STATUS, self.inner.instance_health(ids)).await
    }
    async fn subnet_zone(&self, subnet_id: &str) -> CloudResult<String> {
        self.call(ops::DESCRIBE_SUBNETS, self.inner.subnet_zone(subnet_id)).await
    }
    async fn volumes_tagged(&self, key: &str, values: &[String]) -> CloudResult<Vec<Volume>> {
        self.call(ops::DESCRIBE_VOLUMES, self.inner.volumes_tagged(key, values)).await
    }
    async fn create_volume(&self, input: &VolumeInput) -> CloudResult<Volume> {
        self.call(ops::CREATE_VOLUME, self.inner.create_volume(input)).await
    }
    async fn attach_volume(&self, volume_id: &str, instance_id: &str, device: &str) -> CloudResult<()> {
        self.call(ops::ATTACH_VOLUME, self.inner.attach_volume(volume_id, instance_id, device)).await
    }
    async fn detach_volume(&self, volume_id: &str, force: bool) -> CloudResult<()> {
        self.call(ops::DETACH_VOLUME, self.inner.detach_volume(volume_id, force)).await
    }
    async fn delete_volume(&self, volume_id: &str) -> CloudResult<()> {
        self.call(ops::DELETE_VOLUME, self.inner.delete_volume(volume_id)).await
    }
    async fn create_tags(&self, resource_id: &str, tags: &Tags) -> CloudResult<()> {
        self.call(ops::CREATE_TAGS, self.inner.create_tags(resource_id, tags)).await
    }
    async fn delete_tags(&self, resource_id: &str, keys: &[String]) -> CloudResult<()> {
        self.call(ops::DELETE_TAGS, self.inner.delete_tags(resource_id, keys)).await
    }
}

#[async_trait]
impl Snapshots for Gated<'_, dyn Snapshots> {
    async fn snapshots_tagged(&self, key: &str, values: &[String]) -> CloudResult<Vec<Snapshot>> {
        self.call(ops::DESCRIBE_SNAPSHOTS, self.inner.snapshots_tagged(key, values)).await
    }
    async fn create_snapshot(&self, volume_id: &str, description: &str, tags: &Tags) -> CloudResult<Snapshot> {
        self.call(ops::CREATE_SNAPSHOT, self.inner.create_snapshot(volume_id, description, tags)).await
    }
    async fn delete_snapshot(&self, id: &str) -> CloudResult<()> {
        self.call(ops::DELETE_SNAPSHOT, self.inner.delete_snapshot(id)).await
    }
}

#[async_trait]
impl Builds for Gated<'_, dyn Builds> {
    async fn project(&self, name: &str) -> CloudResult<Option<Project>> {
        self.call(ops::BATCH_GET_PROJECTS, self.inner.project(name)).await
    }
    async fn create_project(&self, input: &ProjectInput) -> CloudResult<Project> {
        self.call(ops::CREATE_PROJECT, self.inner.create_project(input)).await
    }
    async fn update_project(&self, input: &ProjectInput) -> CloudResult<Project> {
        self.call(ops::UPDATE_PROJECT, self.inner.update_project(input)).await
    }
    async fn start_build(&self, request: &BuildRequest) -> CloudResult<Build> {
        self.call(ops::START_BUILD, self.inner.start_build(request)).await
    }
    async fn builds(&self, ids: &[String]) -> CloudResult<Vec<Build>> {
        self.call(ops::BATCH_GET_BUILDS, self.inner.builds(ids)).await
    }
}

#[async_trait]
impl Alarms for Gated<'_, dyn Alarms> {
    async fn metric_alarms(&self, names: &[String]) -> CloudResult<Vec<ObservedAlarm>> {
        self.call(ops::DESCRIBE_ALARMS, self.inner.metric_alarms(names)).await
    }
    async fn put_metric_alarm(&self, alarm: &MetricAlarm, tags: &Tags) -> CloudResult<()> {
        self.call(ops::PUT_METRIC_ALARM, self.inner.put_metric_alarm(alarm, tags)).await
    }
    async fn alarm_tags(&self, arn: &str) -> CloudResult<Tags> {
        self.call(ops::LIST_ALARM_TAGS, self.inner.alarm_tags(arn)).await
    }
    async fn delete_alarms(&self, names: &[String]) -> CloudResult<()> {
        self.call(ops::DELETE_ALARMS, self.inner.delete_alarms(names)).await
    }
}

#[async_trait]
impl Dns for Gated<'_, dyn Dns> {
    async fn records(&self, zone_id: &str, from: &RecordCursor) -> CloudResult<RecordPage> {
        self.call(ops::LIST_RESOURCE_RECORD_SETS, self.inner.records(zone_id, from)).await
    }
    async fn change(&self, zone_id: &str, changes: &[RecordChange]) -> CloudResult<()> {
        self.call(ops::CHANGE_RESOURCE_RECORD_SETS, self.inner.change(zone_id, changes)).await
    }
}

#[async_trait]
impl TargetGroups for Gated<'_, dyn TargetGroups> {
    async fn register_targets(&self, target_group_arn: &str, targets: &[(String, Option<u16>)]) -> CloudResult<()> {
        self.call(ops::REGISTER_TARGETS, self.inner.register_targets(target_group_arn, targets)).await
    }
    async fn deregister_targets(&self, target_group_arn: &str, targets: &[(String, Option<u16>)]) -> CloudResult<()> {
        self.call(ops::DEREGISTER_TARGETS, self.inner.deregister_targets(target_group_arn, targets)).await
    }
    async fn target_health(&self, target_group_arn: &str) -> CloudResult<Vec<TargetHealth>> {
        self.call(ops::DESCRIBE_TARGET_HEALTH, self.inner.target_health(target_group_arn)).await
    }
    async fn deregistration_delay(&self, target_group_arn: &str) -> CloudResult<Option<u32>> {
        self.call(ops::DESCRIBE_TARGET_GROUP_ATTRIBUTES, self.inner.deregistration_delay(target_group_arn)).await
    }
}
