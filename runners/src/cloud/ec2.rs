//! EC2: the instance of a node and its data volume, found by tag.
//!
//! Contract (both implementations): `instances_tagged` leaves out terminated
//! instances and takes at most [`MAX_FILTER_VALUES`] values, so one call
//! observes many nodes; `run_instance` with a `client_token` already used
//! returns the instance it made (AWS; moto does not honour tokens, which is why
//! callers look by tag first); user data is given as plain text.

use async_trait::async_trait;

use super::{CloudResult, Tags};

/// AWS accepts at most this many values in one DescribeInstances filter.
pub const MAX_FILTER_VALUES: usize = 200;

/// AWS takes at most this many instance ids in one DescribeInstanceStatus.
pub const MAX_INSTANCE_STATUS_IDS: usize = 100;

/// An instance's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstanceState {
    Pending,
    Running,
    Stopping,
    Stopped,
    ShuttingDown,
    Terminated,
}

/// What RunInstances gets (one instance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceInput {
    pub ami: String,
    pub instance_type: String,
    pub subnet_id: String,
    pub security_group_ids: Vec<String>,
    /// Plain text; the implementation encodes it.
    pub user_data: String,
    /// The IAM instance profile (name or ARN), if any.
    pub instance_profile: Option<String>,
    pub tags: Tags,
    /// At most 64 ASCII characters.
    pub client_token: String,
}

/// An instance as DescribeInstances reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub state: InstanceState,
    pub instance_type: String,
    pub ami: String,
    pub subnet_id: Option<String>,
    pub private_ip: Option<String>,
    pub availability_zone: Option<String>,
    pub tags: Tags,
    /// Attached EBS volumes: (device name, volume id).
    pub volumes: Vec<(String, String)>,
}

/// What CreateVolume gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInput {
    pub availability_zone: String,
    pub size_gib: u32,
    /// `gp3`, `gp2`, `io1`, `io2`, `st1`, `sc1`.
    pub volume_type: String,
    pub iops: Option<u32>,
    pub tags: Tags,
    /// The snapshot the volume starts from (a restore), if any.
    pub snapshot_id: Option<String>,
    pub client_token: String,
}

/// A volume as DescribeVolumes reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub id: String,
    /// `creating`, `available`, `in-use`, `deleting`, ...
    pub state: String,
    pub availability_zone: String,
    pub size_gib: u32,
    /// The instance it is attached to, if any.
    pub attached_to: Option<String>,
    pub tags: Tags,
}

/// EC2 status checks of a running instance (`None`: still initializing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceHealth {
    pub instance_id: String,
    pub system_ok: Option<bool>,
    pub instance_ok: Option<bool>,
}

impl InstanceHealth {
    /// Both checks passed.
    pub fn passed(&self) -> bool {
        self.system_ok == Some(true) && self.instance_ok == Some(true)
    }

    /// A check reported `impaired` (not merely still initializing).
    pub fn failed(&self) -> bool {
        self.system_ok == Some(false) || self.instance_ok == Some(false)
    }
}

/// EC2, as Mooring uses it.
#[async_trait]
pub trait Ec2: Send + Sync {
    /// Instances (not terminated) whose tag `key` has one of `values`.
    async fn instances_tagged(&self, key: &str, values: &[String]) -> CloudResult<Vec<Instance>>;
    /// Launches one instance.
    async fn run_instance(&self, input: &InstanceInput) -> CloudResult<Instance>;
    async fn stop_instance(&self, id: &str) -> CloudResult<()>;
    async fn start_instance(&self, id: &str) -> CloudResult<()>;
    async fn terminate_instance(&self, id: &str) -> CloudResult<()>;
    /// Changes the type of a stopped instance.
    async fn modify_instance_type(&self, id: &str, instance_type: &str) -> CloudResult<()>;
    /// Replaces the user data of a stopped instance (plain text).
    async fn modify_user_data(&self, id: &str, user_data: &str) -> CloudResult<()>;
    /// Status checks of running instances.
    async fn instance_health(&self, ids: &[String]) -> CloudResult<Vec<InstanceHealth>>;
    /// The availability zone of a subnet (`MissingReference` when there is none).
    async fn subnet_zone(&self, subnet_id: &str) -> CloudResult<String>;
    /// Volumes whose tag `key` has one of `values`.
    async fn volumes_tagged(&self, key: &str, values: &[String]) -> CloudResult<Vec<Volume>>;
    async fn create_volume(&self, input: &VolumeInput) -> CloudResult<Volume>;
    async fn attach_volume(&self, volume_id: &str, instance_id: &str, device: &str) -> CloudResult<()>;
    async fn detach_volume(&self, volume_id: &str, force: bool) -> CloudResult<()>;
    async fn delete_volume(&self, volume_id: &str) -> CloudResult<()>;
    /// Adds or replaces tags on an instance or volume.
    async fn create_tags(&self, resource_id: &str, tags: &Tags) -> CloudResult<()>;
    /// Removes tags from an instance or volume.
    async fn delete_tags(&self, resource_id: &str, keys: &[String]) -> CloudResult<()>;
}
