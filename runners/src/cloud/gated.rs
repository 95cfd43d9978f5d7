//! The one place where facade calls meet the caller's gate: take a token from
//! the API family's budget (and prove the lease), make the call, record the
//! outcome for metrics.

use std::future::Future;

use async_trait::async_trait;

use super::caches::{ReplicationGroup, ReplicationGroupInput};
use super::ecs::{Service, ServiceInput, ServiceUpdate, TaskDefinition, TaskDefinitionInput};
use super::queues::QueueAttributes;
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
        gate.record(&op, ErrorKind::NotAllowed.as_str());
        return Err(CloudError::new(&op, ErrorKind::NotAllowed, e.to_string()));
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
}
