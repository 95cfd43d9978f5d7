//! ElastiCache Redis replication groups owned by relays.
//!
//! Contract: ids are unique per account and Region; a replication group goes
//! `creating` → `available`, and `deleting` → gone.

use async_trait::async_trait;

use super::{CloudResult, Tags};

/// What CreateReplicationGroup gets (engine Redis, one node group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationGroupInput {
    /// At most 40 characters: lowercase letters, digits, single hyphens.
    pub id: String,
    pub description: String,
    pub node_type: String,
    pub engine_version: String,
    /// Read replicas besides the primary.
    pub replicas: u32,
    pub tags: Tags,
}

/// What ModifyReplicationGroup changes (applied immediately): only the fields
/// that are `Some`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicationGroupChange {
    pub node_type: Option<String>,
    pub engine_version: Option<String>,
}

/// A replication group as DescribeReplicationGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationGroup {
    pub id: String,
    pub arn: String,
    /// `creating`, `available`, `modifying`, `deleting`, ...
    pub status: String,
    /// `host:port` of the primary, once available.
    pub primary_endpoint: Option<String>,
    pub node_type: Option<String>,
    pub members: u32,
}

impl ReplicationGroup {
    pub fn available(&self) -> bool {
        self.status == "available"
    }
}

/// ElastiCache, as Mooring uses it.
#[async_trait]
pub trait Caches: Send + Sync {
    /// The group with `id`, or `None`.
    async fn describe_replication_group(&self, id: &str) -> CloudResult<Option<ReplicationGroup>>;
    /// Creates a group.
    async fn create_replication_group(&self, input: &ReplicationGroupInput) -> CloudResult<ReplicationGroup>;
    /// Deletes a group (a missing group is not an error).
    async fn delete_replication_group(&self, id: &str) -> CloudResult<()>;
    /// Removes tags from the group (by ARN).
    async fn remove_tags(&self, arn: &str, keys: &[String]) -> CloudResult<()>;
    /// Adds (or overwrites) tags on the group (by ARN).
    async fn add_tags(&self, arn: &str, tags: &Tags) -> CloudResult<()>;
    /// The group's tags (by ARN).
    async fn tags(&self, arn: &str) -> CloudResult<Tags>;
    /// Changes the node type or engine version, applied immediately; the group
    /// is `modifying` until ElastiCache is done.
    async fn modify_replication_group(&self, id: &str, change: &ReplicationGroupChange) -> CloudResult<()>;
    /// Changes the number of read replicas from `from` to `to` (Increase or
    /// DecreaseReplicaCount, applied immediately).
    async fn set_replicas(&self, id: &str, from: u32, to: u32) -> CloudResult<()>;
}
