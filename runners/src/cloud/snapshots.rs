//! EBS snapshots: the backups of a node's data volume, found by tag.
//!
//! Contract (both implementations): `snapshots_tagged` answers only the
//! account's own snapshots and takes at most
//! [`MAX_FILTER_VALUES`](super::ec2::MAX_FILTER_VALUES) values; a snapshot
//! is tagged at birth (CreateSnapshot's tag specification), so one without
//! the node's tag was never the node's; CreateSnapshot has no client token,
//! so callers record an intent and look by tag before creating.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{CloudResult, Tags};

/// Where a snapshot is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotState {
    Pending,
    Completed,
    Error,
    /// Any state this version does not know (`recoverable`, `recovering`).
    Other,
}

impl SnapshotState {
    /// From EC2's name.
    pub fn from_aws(name: &str) -> SnapshotState {
        match name {
            "pending" => SnapshotState::Pending,
            "completed" => SnapshotState::Completed,
            "error" => SnapshotState::Error,
            _ => SnapshotState::Other,
        }
    }
}

/// A snapshot as DescribeSnapshots reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub id: String,
    pub volume_id: String,
    pub state: SnapshotState,
    pub started: Option<DateTime<Utc>>,
    pub tags: Tags,
}

/// EBS snapshots, as Mooring uses them.
#[async_trait]
pub trait Snapshots: Send + Sync {
    /// The account's snapshots whose tag `key` has one of `values`.
    async fn snapshots_tagged(&self, key: &str, values: &[String]) -> CloudResult<Vec<Snapshot>>;
    /// Starts a snapshot of a volume, tagged with `tags` at birth.
    async fn create_snapshot(&self, volume_id: &str, description: &str, tags: &Tags) -> CloudResult<Snapshot>;
    async fn delete_snapshot(&self, id: &str) -> CloudResult<()>;
}
