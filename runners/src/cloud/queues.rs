//! SQS queues: create, inspect and correct attributes, delete.
//!
//! Contract: `create_queue` is idempotent by name when the attributes match (as
//! in AWS); attributes are AWS's names and string values (`VisibilityTimeout`,
//! `RedrivePolicy`, ...).

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{CloudResult, Tags};

/// Queue attributes by AWS name.
pub type QueueAttributes = BTreeMap<String, String>;

/// SQS, as Mooring uses it.
#[async_trait]
pub trait Queues: Send + Sync {
    /// The URL of the queue named `name`, or `None` when there is none.
    async fn queue_url(&self, name: &str) -> CloudResult<Option<String>>;
    /// Creates the queue (or returns the URL of an identical one).
    async fn create_queue(&self, name: &str, attributes: &QueueAttributes, tags: &Tags) -> CloudResult<String>;
    /// Every attribute of the queue (`QueueArn` included).
    async fn queue_attributes(&self, url: &str) -> CloudResult<QueueAttributes>;
    /// Sets the given attributes.
    async fn set_queue_attributes(&self, url: &str, attributes: &QueueAttributes) -> CloudResult<()>;
    /// The queue's tags.
    async fn queue_tags(&self, url: &str) -> CloudResult<Tags>;
    /// Adds (or overwrites) tags.
    async fn tag_queue(&self, url: &str, tags: &Tags) -> CloudResult<()>;
    /// Removes tags.
    async fn untag_queue(&self, url: &str, keys: &[String]) -> CloudResult<()>;
    /// Deletes the queue (a missing queue is not an error).
    async fn delete_queue(&self, url: &str) -> CloudResult<()>;
}
