//! The ElastiCache facade over the AWS SDK: the Redis replication groups
//! relays own.

use async_trait::async_trait;
use aws_sdk_elasticache::Client;
use aws_sdk_elasticache::types as ec;

use super::error::cloud_error;
use crate::cloud::caches::{Caches, ReplicationGroup, ReplicationGroupChange, ReplicationGroupInput};
use crate::cloud::{CloudError, CloudResult, ErrorKind, Tags, ops};

/// ElastiCache through the SDK; the implementation of [`Caches`] that talks to AWS (or moto).
#[derive(Clone, Debug)]
pub struct SdkCaches {
    client: Client,
}

impl SdkCaches {
    /// A facade over a client built from the shared configuration.
    pub fn new(config: &aws_config::SdkConfig) -> SdkCaches {
        SdkCaches { client: Client::new(config) }
    }

    /// A facade over an existing client (tests, custom configuration).
    pub fn from_client(client: Client) -> SdkCaches {
        SdkCaches { client }
    }
}

fn group_of(g: &ec::ReplicationGroup) -> ReplicationGroup {
    let primary_endpoint = g
        .node_groups()
        .first()
        .and_then(|ng| ng.primary_endpoint.as_ref())
        .and_then(|e| Some(format!("{}:{}", e.address.as_deref()?, e.port.unwrap_or(6379))));
    ReplicationGroup {
        id: g.replication_group_id.clone().unwrap_or_default(),
        arn: g.arn.clone().unwrap_or_default(),
        status: g.status.clone().unwrap_or_default(),
        primary_endpoint,
        node_type: g.cache_node_type.clone(),
        members: u32::try_from(g.member_clusters().len()).unwrap_or(u32::MAX),
    }
}

#[async_trait]
impl Caches for SdkCaches {
    async fn describe_replication_group(&self, id: &str) -> CloudResult<Option<ReplicationGroup>> {
        let op = ops::DESCRIBE_REPLICATION_GROUPS;
        match self.client.describe_replication_groups().replication_group_id(id).send().await {
            Ok(out) => Ok(out
                .replication_groups()
                .iter()
                .find(|g| g.replication_group_id.as_deref() == Some(id))
                .map(group_of)),
            Err(e) => {
                let err = cloud_error(&op, e);
                if err.is(ErrorKind::NotFound) { Ok(None) } else { Err(err) }
            }
        }
    }

    async fn create_replication_group(&self, input: &ReplicationGroupInput) -> CloudResult<ReplicationGroup> {
        let op = ops::CREATE_REPLICATION_GROUP;
        let replicas = i32::try_from(input.replicas)
            .map_err(|_| CloudError::new(&op, ErrorKind::Invalid, format!("{} replicas", input.replicas)))?;
        let tags: Vec<_> = input.tags.iter().map(|(k, v)| ec::Tag::builder().key(k).value(v).build()).collect();
        // One node group (cluster mode disabled) with `replicas` read
        // replicas. (moto honours NumNodeGroups/ReplicasPerNodeGroup but makes
        // a single member whatever NumCacheClusters says.)
        let out = self
            .client
            .create_replication_group()
            .replication_group_id(&input.id)
            .replication_group_description(&input.description)
            .engine("redis")
            .engine_version(&input.engine_version)
            .cache_node_type(&input.node_type)
            .num_node_groups(1)
            .replicas_per_node_group(replicas)
            .set_tags((!tags.is_empty()).then_some(tags))
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        out.replication_group
            .as_ref()
            .map(group_of)
            .ok_or_else(|| CloudError::new(&op, ErrorKind::Other, "the answer has no replication group"))
    }

    async fn delete_replication_group(&self, id: &str) -> CloudResult<()> {
        let op = ops::DELETE_REPLICATION_GROUP;
        match self.client.delete_replication_group().replication_group_id(id).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = cloud_error(&op, e);
                if err.is(ErrorKind::NotFound) { Ok(()) } else { Err(err) }
            }
        }
    }

    async fn remove_tags(&self, arn: &str, keys: &[String]) -> CloudResult<()> {
        self.remove_tags_inner(arn, keys).await
    }

    async fn add_tags(&self, arn: &str, tags: &Tags) -> CloudResult<()> {
        if tags.is_empty() {
            return Ok(());
        }
        let op = ops::ADD_TAGS_TO_RESOURCE;
        let tags: Vec<_> = tags.iter().map(|(k, v)| ec::Tag::builder().key(k).value(v).build()).collect();
        self.client
            .add_tags_to_resource()
            .resource_name(arn)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        Ok(())
    }

    async fn tags(&self, arn: &str) -> CloudResult<Tags> {
        let op = ops::LIST_TAGS_FOR_RESOURCE;
        let out =
            self.client.list_tags_for_resource().resource_name(arn).send().await.map_err(|e| cloud_error(&op, e))?;
        Ok(out.tag_list().iter().filter_map(|t| Some((t.key.clone()?, t.value.clone().unwrap_or_default()))).collect())
    }

    async fn modify_replication_group(&self, id: &str, change: &ReplicationGroupChange) -> CloudResult<()> {
        let op = ops::MODIFY_REPLICATION_GROUP;
        self.client
            .modify_replication_group()
            .replication_group_id(id)
            .set_cache_node_type(change.node_type.clone())
            .set_engine_version(change.engine_version.clone())
            .apply_immediately(true)
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        Ok(())
    }

    async fn set_replicas(&self, id: &str, from: u32, to: u32) -> CloudResult<()> {
        let op = if to >= from { ops::INCREASE_REPLICA_COUNT } else { ops::DECREASE_REPLICA_COUNT };
        let count =
            i32::try_from(to).map_err(|_| CloudError::new(&op, ErrorKind::Invalid, format!("{to} replicas")))?;
        if to >= from {
            self.client
                .increase_replica_count()
                .replication_group_id(id)
                .new_replica_count(count)
                .apply_immediately(true)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| cloud_error(&op, e))
        } else {
            self.client
                .decrease_replica_count()
                .replication_group_id(id)
                .new_replica_count(count)
                .apply_immediately(true)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| cloud_error(&op, e))
        }
    }
}

impl SdkCaches {
    async fn remove_tags_inner(&self, arn: &str, keys: &[String]) -> CloudResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let op = ops::REMOVE_TAGS_FROM_RESOURCE;
        self.client
            .remove_tags_from_resource()
            .resource_name(arn)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_primary_endpoint_is_host_and_port_of_the_first_node_group() {
        let g = ec::ReplicationGroup::builder()
            .replication_group_id("r1")
            .status("available")
            .member_clusters("r1-001")
            .member_clusters("r1-002")
            .node_groups(
                ec::NodeGroup::builder()
                    .primary_endpoint(
                        ec::Endpoint::builder().address("master.r1.cache.amazonaws.com").port(6380).build(),
                    )
                    .build(),
            )
            .build();
        let g = group_of(&g);
        assert_eq!(g.primary_endpoint.as_deref(), Some("master.r1.cache.amazonaws.com:6380"));
        assert_eq!(g.members, 2);
        assert!(g.available());
        let creating = group_of(&ec::ReplicationGroup::builder().replication_group_id("r2").status("creating").build());
        assert_eq!(creating.primary_endpoint, None);
        assert!(!creating.available());
    }
}
