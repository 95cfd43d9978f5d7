//! What every kind's status has in common, and the identities of the AWS
//! resources a resource owns.
//!
//! Identities are recorded, not derived: a reconciler writes the identity of
//! what it is about to create into status (an intent) before the create, and
//! every later update and the teardown work from that record. A name
//! recomputed from today's spec could point elsewhere after the spec changed
//! (a new cluster), and what the old name pointed at would be orphaned.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::common::DeletionPolicy;
use crate::condition::Condition;

/// The part of status the runtime owns for every kind: conditions and the
/// generation they were computed from. Kind-specific outputs live beside them.
pub trait Status: Default + Clone + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The conditions.
    fn conditions(&self) -> &[Condition];
    /// The conditions, to set one.
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
    /// Stamps the generation the status speaks of.
    fn set_observed_generation(&mut self, generation: i64);
}

/// Implements [`Status`] for a struct with `conditions` and `observed_generation` fields.
macro_rules! impl_status {
    ($($t:ty),* $(,)?) => {$(
        impl $crate::status::Status for $t {
            fn conditions(&self) -> &[$crate::condition::Condition] {
                &self.conditions
            }
            fn conditions_mut(&mut self) -> &mut Vec<$crate::condition::Condition> {
                &mut self.conditions
            }
            fn set_observed_generation(&mut self, generation: i64) {
                self.observed_generation = Some(generation);
            }
        }
    )*};
}
pub(crate) use impl_status;

/// An ECS service of a relay or worker: where it is (recorded before it is
/// created) and its ARN (once created or adopted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRef {
    /// The cluster the service is in.
    pub cluster: String,
    /// The service name (unique in its cluster).
    pub name: String,
    /// Set once the service exists and is known to be this resource's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// Set once Mooring deleted the service (or saw it draining): from then
    /// on, a describe that finds no service means it is gone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleting: bool,
    /// While retiring it: when a describe first found no such service although
    /// none was being deleted. ECS's reads are eventually consistent, so a
    /// service created moments ago may not be listed yet: the record is
    /// forgotten only once the service has stayed absent for a while.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_since: Option<chrono::DateTime<chrono::Utc>>,
}

impl ServiceRef {
    /// A service about to be created: only its cluster and name are known.
    pub fn named(cluster: impl Into<String>, name: impl Into<String>) -> ServiceRef {
        ServiceRef { cluster: cluster.into(), name: name.into(), arn: None, deleting: false, missing_since: None }
    }
}

/// An SQS queue of a worker: its name (recorded before it is created), its URL
/// and ARN (once created or adopted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueRef {
    /// The queue name.
    pub name: String,
    /// Set once the queue exists and is known to be this worker's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The queue's ARN (a redrive policy names the dead-letter queue by it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// During teardown: when the queue was first not found. SQS's reads are
    /// eventually consistent, so a queue created moments ago may not be
    /// listed yet: the record is forgotten only once the queue has stayed
    /// absent for a while.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_since: Option<chrono::DateTime<chrono::Utc>>,
}

impl QueueRef {
    /// A queue about to be created or looked up: only its name is known.
    pub fn named(name: impl Into<String>) -> QueueRef {
        QueueRef { name: name.into(), url: None, arn: None, missing_since: None }
    }
}

/// The ElastiCache replication group of a relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CacheRef {
    /// The replication group id.
    pub id: String,
    /// Set once the group exists and is known to be this relay's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// `host:port` of the primary, once available (also the tasks' `CACHE_ENDPOINT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The engine version last applied (ElastiCache does not report it per group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_version: Option<String>,
    /// What happens to the group when the relay is deleted or `spec.cache` is
    /// removed: recorded, because a removed `spec.cache` no longer says.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Set once Mooring asked ElastiCache to delete the group (or saw it
    /// deleting): from then on, a describe that finds no group means it is gone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleting: bool,
    /// When a describe first found no such group while none was being
    /// deleted. ElastiCache's reads are eventually consistent, so a group
    /// created moments ago may not be listed yet: the record is forgotten only
    /// once the group has stayed absent for a while.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_since: Option<chrono::DateTime<chrono::Utc>>,
    /// Creations ElastiCache failed (`create-failed`) in a row, and the
    /// settings they asked for: after a few, Mooring stops creating the group
    /// until the settings change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_creations: Option<FailedCreations>,
    /// `nodeType engineVersion replicas` of the last creation Mooring asked
    /// for: a failure of that creation counts against these settings, not
    /// against a spec changed while ElastiCache was creating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_with: Option<String>,
}

/// Failed creations in a row of a relay's cache with the same settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedCreations {
    pub count: u32,
    /// `nodeType engineVersion replicas` of the failed creations.
    pub settings: String,
}

/// User tags last propagated to every AWS resource a resource owns (from
/// `spec.tags`); compared with the spec to know when to tag again.
pub type AppliedTags = BTreeMap<String, String>;
