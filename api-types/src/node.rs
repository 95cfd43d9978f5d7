//! `Node`: one EC2 instance running a piece of software (a blockchain node, say),
//! provisioned through CodeBuild, with a data volume that survives replacement.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::DeletionPolicy;
use crate::condition::Condition;
use crate::document::{Resource, Spec};
use crate::meta::Kind;
use crate::patterns;
use crate::validate::{Validate, Violations};

/// A Node document.
pub type Node = Resource<NodeSpec, NodeStatus>;

/// What a node runs and on what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeSpec {
    /// The software the node runs.
    pub software: Software,
    /// EC2 instance type.
    #[schemars(regex(pattern = patterns::INSTANCE_TYPE))]
    pub instance_type: String,
    /// AMI the instance boots from.
    #[schemars(regex(pattern = patterns::AMI_ID))]
    pub ami: String,
    /// Subnet the instance is placed in.
    #[schemars(regex(pattern = patterns::SUBNET_ID))]
    pub subnet_id: String,
    /// Security groups of the instance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5), inner(regex(pattern = patterns::SECURITY_GROUP_ID)))]
    pub security_group_ids: Vec<String>,
    /// The EBS volume holding the node's data directory; kept across instance
    /// replacement.
    #[serde(default)]
    pub data_volume: DataVolume,
    /// Ports the software listens on (for security groups and target groups).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<NodePort>,
    /// An HTTP endpoint that answers 2xx when the node is healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// Environment of the software's systemd unit.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// How an instance-affecting change is rolled out.
    #[serde(default)]
    pub update_strategy: UpdateStrategy,
    /// Register the instance in an ALB/NLB target group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<NodeLoadBalancer>,
    /// The CodeBuild project that runs the provisioner.
    #[serde(default)]
    pub provisioner: Provisioner,
    /// The IAM instance profile the instance runs with (a name or ARN): the
    /// identity of the node's software, of the boot script's `aws s3 cp` of an
    /// S3 artifact and of the CloudWatch agent. Changing it replaces the
    /// instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::INSTANCE_PROFILE))]
    pub instance_profile: Option<String>,
    /// `cloudwatch`: the boot script installs the CloudWatch agent and ships
    /// the software's journal to the log group `/mooring/<namespace>/<name>`
    /// (one stream per instance). Needs `instanceProfile` with the agent's
    /// permissions (`CloudWatchAgentServerPolicy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<NodeLogs>,
    /// CloudWatch alarms on the node's instance, kept by Mooring with the
    /// node (they follow a replacement to the new instance); one in state
    /// `ALARM` makes the node `Degraded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarms: Option<NodeAlarms>,
    /// What happens to the instance when the Node is deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Tags put on every AWS resource this resource owns (cost allocation);
    /// `mooring:*` tags are Mooring's own and cannot be set here.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tags: crate::common::UserTags,
}

/// The software a node runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Software {
    /// Name of the program (also the systemd unit's name).
    #[schemars(length(min = 1, max = 63), regex(pattern = patterns::DNS_LABEL))]
    pub name: String,
    /// Version, for humans and tags.
    #[schemars(length(min = 1, max = 128))]
    pub version: String,
    /// Where the binary comes from: an S3 URL (`s3://bucket/key`) or a container
    /// image.
    #[schemars(regex(pattern = patterns::ARTIFACT))]
    pub artifact: String,
    /// Arguments of the program; `--data-dir` is added by Mooring.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

/// EBS volume types Mooring supports for data volumes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VolumeType {
    #[default]
    Gp3,
    Gp2,
    Io1,
    Io2,
    St1,
    Sc1,
}

/// The node's data volume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataVolume {
    /// Size in GiB.
    #[serde(default = "default_size")]
    #[schemars(range(min = 1, max = 16384))]
    pub size_gi_b: u32,
    /// EBS volume type.
    #[serde(default, rename = "type")]
    pub type_: VolumeType,
    /// Provisioned IOPS (gp3, io1, io2 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 256000))]
    pub iops: Option<u32>,
    /// Delete the volume when the Node is deleted (default: keep it). The
    /// node's snapshots go with it; a kept volume keeps its snapshots too.
    #[serde(default)]
    pub delete_on_node_delete: bool,
    /// EBS snapshots of the volume on a schedule, pruned to `keep`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<VolumeBackup>,
    /// The snapshot a new data volume is created from (chain data to start
    /// from, or a restore). Used only when the node gets a volume: at its
    /// first provisioning, or when its volume was lost and it has no snapshot
    /// of its own yet (its last snapshot comes first). Its size must not
    /// exceed `sizeGiB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::SNAPSHOT_ID))]
    pub from_snapshot: Option<String>,
}

/// Scheduled snapshots of a data volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeBackup {
    /// How often (`30m`, `6h`, `1d`), counted from the last snapshot started;
    /// the first is taken as soon as the node has its volume.
    #[schemars(regex(pattern = patterns::BACKUP_INTERVAL))]
    pub every: String,
    /// How many of the node's completed snapshots are kept; older ones are
    /// deleted (the last good one never is).
    #[serde(default = "default_keep")]
    #[schemars(range(min = 1, max = 1000))]
    pub keep: u32,
}

fn default_keep() -> u32 {
    7
}

impl VolumeBackup {
    /// `every` as a duration (`None` when it does not parse; validation
    /// refuses such a spec).
    pub fn interval(&self) -> Option<std::time::Duration> {
        // The schema's rule (`BACKUP_INTERVAL`): 1 to 5 digits, no leading
        // zero, then the unit.
        let unit = self.every.chars().last()?;
        let digits = &self.every[..self.every.len() - unit.len_utf8()];
        if digits.is_empty()
            || digits.len() > 5
            || digits.starts_with('0')
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let n: u64 = digits.parse().ok()?;
        let seconds = match unit {
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return None,
        };
        Some(std::time::Duration::from_secs(n.checked_mul(seconds)?))
    }
}

fn default_size() -> u32 {
    100
}

impl Default for DataVolume {
    fn default() -> Self {
        DataVolume {
            size_gi_b: default_size(),
            type_: VolumeType::Gp3,
            iops: None,
            delete_on_node_delete: false,
            backup: None,
            from_snapshot: None,
        }
    }
}

/// Transport protocol of a port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

/// A port the node's software listens on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodePort {
    /// A name for humans (`p2p`, `api`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = patterns::DNS_LABEL))]
    pub name: Option<String>,
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    #[serde(default)]
    pub protocol: Protocol,
}

/// An HTTP health check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    #[serde(default = "default_health_path")]
    #[schemars(regex(pattern = patterns::HTTP_PATH))]
    pub path: String,
}

pub(crate) fn default_health_path() -> String {
    "/health".to_string()
}

/// How an instance-affecting change is rolled out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum UpdateStrategy {
    /// Launch a new instance, move the data volume, terminate the old one.
    #[default]
    Replace,
    /// Stop, modify, start the same instance.
    InPlace,
}

/// A target group the node's instance is registered in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeLoadBalancer {
    #[schemars(regex(pattern = patterns::TARGET_GROUP_ARN))]
    pub target_group_arn: String,
    /// The port registered; the health check port when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u16>,
}

/// Where a node's logs are shipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeLogs {
    /// CloudWatch Logs, by the CloudWatch agent.
    Cloudwatch,
}

/// The alarms of a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeAlarms {
    /// `AWS/EC2 StatusCheckFailed` of the instance at least 1 for two
    /// one-minute periods: the instance or its host is impaired.
    #[serde(default = "yes")]
    pub status_check: bool,
    /// One more alarm on a metric of the instance (dimension `InstanceId`),
    /// such as the CloudWatch agent's `CWAgent mem_used_percent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<CustomAlarm>,
}

fn yes() -> bool {
    true
}

/// A metric alarm on the node's instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomAlarm {
    /// The metric's namespace (`CWAgent`, `AWS/EC2`).
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[^:][^:]*$"))]
    pub namespace: String,
    /// The metric (`disk_used_percent`).
    #[schemars(length(min = 1, max = 255))]
    pub metric_name: String,
    /// How a period's datapoints are combined.
    #[serde(default)]
    pub statistic: AlarmStatistic,
    /// How the statistic is compared with `threshold`.
    pub comparison: AlarmComparison,
    /// The value that breaches.
    pub threshold: f64,
    /// 10, 30, or a multiple of 60.
    #[serde(default = "sixty")]
    #[schemars(range(min = 10, max = 86400))]
    pub period_seconds: u32,
    #[serde(default = "two")]
    #[schemars(range(min = 1, max = 100))]
    pub evaluation_periods: u32,
}

fn sixty() -> u32 {
    60
}

fn two() -> u32 {
    2
}

/// How datapoints of a period are combined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AlarmStatistic {
    /// The mean of the datapoints.
    #[default]
    Average,
    /// The highest datapoint.
    Maximum,
    /// The lowest datapoint.
    Minimum,
    /// Their sum.
    Sum,
    /// How many there are.
    SampleCount,
}

/// How the statistic is compared with the threshold (CloudWatch's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AlarmComparison {
    /// Statistic > threshold.
    GreaterThanThreshold,
    /// Statistic ≥ threshold.
    GreaterThanOrEqualToThreshold,
    /// Statistic < threshold.
    LessThanThreshold,
    /// Statistic ≤ threshold.
    LessThanOrEqualToThreshold,
}

impl AlarmStatistic {
    /// The name as CloudWatch spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmStatistic::Average => "Average",
            AlarmStatistic::Maximum => "Maximum",
            AlarmStatistic::Minimum => "Minimum",
            AlarmStatistic::Sum => "Sum",
            AlarmStatistic::SampleCount => "SampleCount",
        }
    }
}

impl AlarmComparison {
    /// The name as CloudWatch spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmComparison::GreaterThanThreshold => "GreaterThanThreshold",
            AlarmComparison::GreaterThanOrEqualToThreshold => "GreaterThanOrEqualToThreshold",
            AlarmComparison::LessThanThreshold => "LessThanThreshold",
            AlarmComparison::LessThanOrEqualToThreshold => "LessThanOrEqualToThreshold",
        }
    }
}

/// The CodeBuild project that provisions nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Provisioner {
    #[serde(default = "default_codebuild_project")]
    #[schemars(length(min = 2, max = 255), regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_-]{1,254}$"))]
    pub codebuild_project: String,
}

fn default_codebuild_project() -> String {
    "mooring-node-provisioner".to_string()
}

impl Default for Provisioner {
    fn default() -> Self {
        Provisioner { codebuild_project: default_codebuild_project() }
    }
}

impl Spec for NodeSpec {
    const KIND: Kind = Kind::Node;
}

impl Validate for NodeSpec {
    fn validate(&self, path: &str, v: &mut Violations) {
        crate::common::validate_tags(&self.tags, &format!("{path}.tags"), v);
        let dv = &self.data_volume;
        match (dv.type_, dv.iops) {
            (VolumeType::Gp3, Some(i)) if !(3000..=80000).contains(&i) => {
                v.push(format!("{path}.dataVolume.iops"), "gp3 volumes take 3000 to 80000 IOPS")
            }
            (VolumeType::Io1 | VolumeType::Io2, None) => {
                v.push(format!("{path}.dataVolume.iops"), "is required for io1 and io2 volumes")
            }
            (VolumeType::Gp2 | VolumeType::St1 | VolumeType::Sc1, Some(_)) => {
                v.push(format!("{path}.dataVolume.iops"), "can only be set for gp3, io1 and io2 volumes")
            }
            _ => {}
        }
        if let Some(b) = &dv.backup
            && b.interval().is_none()
        {
            v.push(format!("{path}.dataVolume.backup.every"), "must be minutes, hours or days, such as 30m, 6h or 1d");
        }
        if matches!(dv.type_, VolumeType::St1 | VolumeType::Sc1) && dv.size_gi_b < 125 {
            v.push(format!("{path}.dataVolume.sizeGiB"), "st1 and sc1 volumes must be at least 125 GiB");
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, p) in self.ports.iter().enumerate() {
            if !seen.insert((p.port, p.protocol as u8)) {
                v.push(format!("{path}.ports[{i}].port"), format!("port {} is listed twice", p.port));
            }
        }
        for name in self.env.keys() {
            if !crate::validate::matches(patterns::ENV_NAME, name) {
                v.push(format!("{path}.env.{name}"), patterns::describe(patterns::ENV_NAME).unwrap_or("invalid name"));
            }
        }
        if self.logs == Some(NodeLogs::Cloudwatch) && self.instance_profile.is_none() {
            v.push(
                format!("{path}.instanceProfile"),
                "is required with logs: cloudwatch (the CloudWatch agent acts as the instance's role)",
            );
        }
        if let Some(c) = self.alarms.as_ref().and_then(|a| a.custom.as_ref()) {
            if !matches!(c.period_seconds, 10 | 30) && c.period_seconds % 60 != 0 {
                v.push(format!("{path}.alarms.custom.periodSeconds"), "must be 10, 30 or a multiple of 60");
            }
            if !c.threshold.is_finite() {
                v.push(format!("{path}.alarms.custom.threshold"), "must be a finite number");
            }
        }
        if let Some(lb) = &self.load_balancer
            && lb.port.is_none()
            && self.health_check.is_none()
        {
            v.push(
                format!("{path}.loadBalancer.port"),
                "is required when there is no healthCheck to take the port from",
            );
        }
    }
}

/// What Mooring observed about a node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_id: Option<String>,
    /// The provisioning hash the last successful apply build applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_hash: Option<String>,
    /// The build in flight or last run, with its idempotency token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildStatus>,
    /// The CloudWatch alarms Mooring keeps for the node (recorded before
    /// each is first created), with the state last read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarms: Vec<AlarmStatus>,
    /// Snapshots of the data volume (`dataVolume.backup`, `mooring node
    /// snapshot`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupStatus>,
    /// Moves on each time Mooring finds the node's instance (or data volume)
    /// gone behind its back: part of the client tokens of the next launch, so
    /// AWS does not hand back the terminated instance for the old token.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub incarnation: u32,
}

/// One alarm of a node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlarmStatus {
    /// The alarm's name (`mooring-node-<uid>-<which>`).
    pub name: String,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`; absent until first read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// Where a node's backups are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupStatus {
    /// The newest snapshot that completed: a lost volume is restored from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_good: Option<SnapshotRecord>,
    /// The snapshot being taken: recorded before CreateSnapshot (its number
    /// is the snapshot's `mooring:snapshot` tag, so a crash finds it again),
    /// its id once made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<SnapshotAttempt>,
    /// Snapshots started so far (numbers the next).
    #[serde(default)]
    pub sequence: u32,
    /// When the last snapshot started: the schedule counts from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_started: Option<chrono::DateTime<chrono::Utc>>,
    /// The time of the last `mooring node snapshot` request acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_handled: Option<chrono::DateTime<chrono::Utc>>,
    /// The node's completed snapshots after the last pruning.
    #[serde(default)]
    pub kept: u32,
}

/// A completed snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotRecord {
    pub id: String,
    pub started: chrono::DateTime<chrono::Utc>,
    /// The request it answered (`SnapshotRequest::at`), if one asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<chrono::DateTime<chrono::Utc>>,
}

/// A snapshot being taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotAttempt {
    /// Its number (the `mooring:snapshot` tag).
    pub number: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub started: chrono::DateTime<chrono::Utc>,
    /// `schedule`, or who asked (`mooring node snapshot`).
    pub why: String,
    /// The request it answers (`SnapshotRequest::at`), if one asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<chrono::DateTime<chrono::Utc>>,
}

/// An operator's request for a snapshot now (`mooring node snapshot`,
/// `POST …/nodes/{name}/snapshot`): kept beside the resource like a rollout
/// request (not an annotation GitOps would see as drift), acted on once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotRequest {
    /// Who asked (the token or user name).
    pub by: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

crate::status::impl_status!(NodeStatus);

/// What a provisioner build does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BuildAction {
    /// Create or update the instance and its data volume.
    #[default]
    Apply,
    /// Tear them down (the volume per `dataVolume.deleteOnNodeDelete`).
    Destroy,
}

impl BuildAction {
    /// The name in status and in the build's environment.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildAction::Apply => "apply",
            BuildAction::Destroy => "destroy",
        }
    }
}

impl std::fmt::Display for BuildAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for BuildAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "apply" => Ok(BuildAction::Apply),
            "destroy" => Ok(BuildAction::Destroy),
            other => Err(format!("{other:?} is not apply or destroy")),
        }
    }
}

/// Where a provisioner build is, as Mooring records it: its own states before
/// the build exists (`Pending`, `Queued`), then CodeBuild's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BuildState {
    /// The intent is recorded; the next reconcile starts the build with its token.
    #[default]
    Pending,
    /// Waiting for a build slot (Mooring's limit or CodeBuild's account quota).
    Queued,
    /// The build runs.
    InProgress,
    Succeeded,
    Failed,
    Fault,
    Stopped,
    TimedOut,
}

impl BuildState {
    /// The build ended, one way or another.
    pub fn finished(self) -> bool {
        !matches!(self, BuildState::Pending | BuildState::Queued | BuildState::InProgress)
    }

    /// The name CodeBuild uses (and status shows).
    pub fn as_str(self) -> &'static str {
        match self {
            BuildState::Pending => "PENDING",
            BuildState::Queued => "QUEUED",
            BuildState::InProgress => "IN_PROGRESS",
            BuildState::Succeeded => "SUCCEEDED",
            BuildState::Failed => "FAILED",
            BuildState::Fault => "FAULT",
            BuildState::Stopped => "STOPPED",
            BuildState::TimedOut => "TIMED_OUT",
        }
    }
}

/// A provisioner build as recorded in status (the intent is written before the
/// build starts, so a crash can find it again).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildStatus {
    pub action: BuildAction,
    /// The idempotency token the build is started with.
    pub token: String,
    /// The build id, once started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The CodeBuild project the build runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    pub state: BuildState,
    /// CodeBuild's current phase (`PROVISIONING`, `BUILD`, ...), for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
    /// The provisioning hash the build applies (what the spec asks of EC2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Builds started for this node so far (names the next token).
    #[serde(default)]
    pub sequence: u32,
    /// The snapshot a data volume this build creates starts from: the node's
    /// last good snapshot, else `dataVolume.fromSnapshot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<String>,
    /// Consecutive failed builds for `hash`.
    #[serde(default)]
    pub failures: u32,
    /// Why the build failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What the build is started with, fixed when the intent is recorded, so
    /// a StartBuild retried after an answer that never came sends exactly the
    /// first request (CodeBuild refuses an idempotency token with other
    /// parameters); a spec changed meanwhile gets a build of its own after
    /// this one. Absent in intents recorded by older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<BuildInputs>,
}

/// The parts of a build's request that come from the node at the time its
/// intent is recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildInputs {
    /// The node's generation.
    pub generation: i64,
    /// The node's incarnation (see `NodeStatus::incarnation`).
    #[serde(default)]
    pub incarnation: u32,
    /// The node's spec.
    pub spec: Box<NodeSpec>,
}
