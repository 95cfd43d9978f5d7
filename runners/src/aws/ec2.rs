//! The EC2 facade over the AWS SDK: the instance of a node and its data
//! volume, found by tag.
//!
//! Every call is one AWS request (no retries or budgets here beyond the SDK's
//! own retry mode: [`Gated`](crate::cloud::gated::Gated) does that), except a
//! volume detach against moto (see `detach_volume` below).

use async_trait::async_trait;
use aws_sdk_ec2::Client;
use aws_sdk_ec2::types as ec2;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::error::cloud_error;
use crate::cloud::ec2::{
    Ec2, Instance, InstanceHealth, InstanceInput, InstanceState, MAX_FILTER_VALUES, MAX_INSTANCE_STATUS_IDS, Volume,
    VolumeInput,
};
use crate::cloud::snapshots::{Snapshot, SnapshotState, Snapshots};
use crate::cloud::{CloudError, CloudResult, ErrorKind, Op, Tags, ops};

/// Every state but `terminated`: what `instances_tagged` asks for.
const LIVE_STATES: &[&str] = &["pending", "running", "stopping", "stopped", "shutting-down"];

/// EC2 through the SDK; the implementation of [`Ec2`] that talks to AWS (or moto).
#[derive(Clone, Debug)]
pub struct SdkEc2 {
    client: Client,
}

impl SdkEc2 {
    /// A facade over a client built from the shared configuration.
    pub fn new(config: &aws_config::SdkConfig) -> SdkEc2 {
        SdkEc2 { client: Client::new(config) }
    }

    /// A facade over an existing client (tests, custom configuration).
    pub fn from_client(client: Client) -> SdkEc2 {
        SdkEc2 { client }
    }
}

/// `value` as the `i32` the EC2 API takes, or an `Invalid` error naming `what`.
fn int(op: &Op, what: &str, value: u32) -> CloudResult<i32> {
    i32::try_from(value).map_err(|_| CloudError::new(op, ErrorKind::Invalid, format!("{what} {value} is too large")))
}

/// A size AWS reported, as the contract's `u32` (never negative in practice).
fn count(value: Option<i32>) -> u32 {
    value.and_then(|v| u32::try_from(v).ok()).unwrap_or(0)
}

fn sdk_tags(tags: &Tags) -> Option<Vec<ec2::Tag>> {
    (!tags.is_empty()).then(|| tags.iter().map(|(k, v)| ec2::Tag::builder().key(k).value(v).build()).collect())
}

fn tags_of(tags: Option<&[ec2::Tag]>) -> Tags {
    tags.unwrap_or_default()
        .iter()
        .filter_map(|t| Some((t.key.clone()?, t.value.clone().unwrap_or_default())))
        .collect()
}

/// Tag specifications for the given resource types; `None` without tags (AWS
/// refuses a specification with no tags).
fn tag_specifications(tags: &Tags, types: &[ec2::ResourceType]) -> Option<Vec<ec2::TagSpecification>> {
    let tags = sdk_tags(tags)?;
    Some(
        types
            .iter()
            .map(|t| ec2::TagSpecification::builder().resource_type(t.clone()).set_tags(Some(tags.clone())).build())
            .collect(),
    )
}

fn filter(name: impl Into<String>, values: &[String]) -> ec2::Filter {
    ec2::Filter::builder().name(name).set_values(Some(values.to_vec())).build()
}

/// Refuses more filter values than AWS takes, before any call.
fn check_filter_values(op: &Op, values: &[String]) -> CloudResult<()> {
    if values.len() > MAX_FILTER_VALUES {
        return Err(CloudError::new(
            op,
            ErrorKind::Invalid,
            format!("a filter takes at most {MAX_FILTER_VALUES} values, not {}", values.len()),
        ));
    }
    Ok(())
}

fn state_of(name: Option<&ec2::InstanceStateName>) -> InstanceState {
    match name {
        Some(ec2::InstanceStateName::Running) => InstanceState::Running,
        Some(ec2::InstanceStateName::Stopping) => InstanceState::Stopping,
        Some(ec2::InstanceStateName::Stopped) => InstanceState::Stopped,
        Some(ec2::InstanceStateName::ShuttingDown) => InstanceState::ShuttingDown,
        Some(ec2::InstanceStateName::Terminated) => InstanceState::Terminated,
        // Pending, absent, or a state newer than this SDK: in transition.
        _ => InstanceState::Pending,
    }
}

fn instance_of(i: &ec2::Instance) -> Instance {
    Instance {
        id: i.instance_id.clone().unwrap_or_default(),
        state: state_of(i.state.as_ref().and_then(|s| s.name.as_ref())),
        instance_type: i.instance_type.as_ref().map(|t| t.as_str().to_string()).unwrap_or_default(),
        ami: i.image_id.clone().unwrap_or_default(),
        subnet_id: i.subnet_id.clone().filter(|s| !s.is_empty()),
        private_ip: i.private_ip_address.clone().filter(|s| !s.is_empty()),
        availability_zone: i.placement.as_ref().and_then(|p| p.availability_zone.clone()),
        tags: tags_of(i.tags.as_deref()),
        volumes: i
            .block_device_mappings()
            .iter()
            .filter_map(|m| Some((m.device_name.clone()?, m.ebs.as_ref()?.volume_id.clone()?)))
            .collect(),
    }
}

/// A status check: passed, failed, or not decided yet (`initializing`,
/// `insufficient-data`, `not-applicable` when the instance is not running).
fn check_of(summary: Option<&ec2::InstanceStatusSummary>) -> Option<bool> {
    match summary?.status.as_ref()? {
        ec2::SummaryStatus::Ok => Some(true),
        ec2::SummaryStatus::Impaired => Some(false),
        _ => None,
    }
}

/// The instance a volume is attached to (or being attached to or detached
/// from: until it is `detached` it cannot be attached elsewhere).
fn attached_to(attachments: &[ec2::VolumeAttachment]) -> Option<String> {
    attachments
        .iter()
        .find(|a| a.state.as_ref() != Some(&ec2::VolumeAttachmentState::Detached))
        .and_then(|a| a.instance_id.clone())
}

fn volume_of(v: &ec2::Volume) -> Volume {
    Volume {
        id: v.volume_id.clone().unwrap_or_default(),
        state: v.state.as_ref().map(|s| s.as_str().to_string()).unwrap_or_default(),
        availability_zone: v.availability_zone.clone().unwrap_or_default(),
        size_gib: count(v.size),
        attached_to: attached_to(v.attachments()),
        tags: tags_of(v.tags.as_deref()),
    }
}

#[async_trait]
impl Ec2 for SdkEc2 {
    async fn instances_tagged(&self, key: &str, values: &[String]) -> CloudResult<Vec<Instance>> {
        let op = ops::DESCRIBE_INSTANCES;
        check_filter_values(&op, values)?;
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let states: Vec<String> = LIVE_STATES.iter().map(|s| s.to_string()).collect();
        let filters = vec![filter(format!("tag:{key}"), values), filter("instance-state-name", &states)];
        let mut instances = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = self
                .client
                .describe_instances()
                .set_filters(Some(filters.clone()))
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| cloud_error(&op, e))?;
            instances.extend(
                out.reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .map(instance_of)
                    .filter(|i| i.state != InstanceState::Terminated),
            );
            match out.next_token {
                Some(token) if !token.is_empty() => next = Some(token),
                _ => break,
            }
        }
        Ok(instances)
    }

    async fn run_instance(&self, input: &InstanceInput) -> CloudResult<Instance> {
        let op = ops::RUN_INSTANCES;
        let groups = input.security_group_ids.clone();
        let out = self
            .client
            .run_instances()
            .image_id(&input.ami)
            .instance_type(ec2::InstanceType::from(input.instance_type.as_str()))
            .min_count(1)
            .max_count(1)
            .subnet_id(&input.subnet_id)
            .set_security_group_ids((!groups.is_empty()).then_some(groups))
            // RunInstances takes user data as base64 text (a string field:
            // the SDK does not encode it).
            .set_user_data((!input.user_data.is_empty()).then(|| BASE64.encode(&input.user_data)))
            .client_token(&input.client_token)
            .set_iam_instance_profile(input.instance_profile.as_ref().map(|p| {
                let profile = ec2::IamInstanceProfileSpecification::builder();
                if p.starts_with("arn:") { profile.arn(p) } else { profile.name(p) }.build()
            }))
            .set_tag_specifications(tag_specifications(
                &input.tags,
                &[ec2::ResourceType::Instance, ec2::ResourceType::Volume],
            ))
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        let mut instance = out
            .instances()
            .first()
            .map(instance_of)
            .ok_or_else(|| CloudError::new(&op, ErrorKind::Other, "the answer has no instance"))?;
        // The tags were set by this very call: when the answer leaves them out,
        // the input's tags are the instance's tags.
        if instance.tags.is_empty() {
            instance.tags = input.tags.clone();
        }
        Ok(instance)
    }

    async fn stop_instance(&self, id: &str) -> CloudResult<()> {
        let op = ops::STOP_INSTANCES;
        self.client.stop_instances().instance_ids(id).send().await.map_err(|e| cloud_error(&op, e))?;
        Ok(())
    }

    async fn start_instance(&self, id: &str) -> CloudResult<()> {
        let op = ops::START_INSTANCES;
        self.client.start_instances().instance_ids(id).send().await.map_err(|e| cloud_error(&op, e))?;
        Ok(())
    }

    async fn terminate_instance(&self, id: &str) -> CloudResult<()> {
        let op = ops::TERMINATE_INSTANCES;
        self.client.terminate_instances().instance_ids(id).send().await.map_err(|e| cloud_error(&op, e))?;
        Ok(())
    }

    async fn modify_instance_type(&self, id: &str, instance_type: &str) -> CloudResult<()> {
        let op = ops::MODIFY_INSTANCE_ATTRIBUTE;
        self.client
            .modify_instance_attribute()
            .instance_id(id)
            .instance_type(ec2::AttributeValue::builder().value(instance_type).build())
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        Ok(())
    }

    async fn modify_user_data(&self, id: &str, user_data: &str) -> CloudResult<()> {
        let op = ops::MODIFY_INSTANCE_ATTRIBUTE;
        // `Attribute=userData` with base64 text, as in the EC2 user guide (the
        // same encoding as RunInstances). Not the `UserData` blob: AWS wants
        // the plain bytes there (the SDK encodes blobs), but moto wants base64
        // text inside the blob and refuses plain bytes as malformed.
        self.client
            .modify_instance_attribute()
            .instance_id(id)
            .attribute(ec2::InstanceAttributeName::UserData)
            .value(BASE64.encode(user_data))
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        Ok(())
    }

    async fn instance_health(&self, ids: &[String]) -> CloudResult<Vec<InstanceHealth>> {
        let op = ops::DESCRIBE_INSTANCE_STATUS;
        if ids.len() > MAX_INSTANCE_STATUS_IDS {
            return Err(CloudError::new(
                &op,
                ErrorKind::Invalid,
                format!("DescribeInstanceStatus takes at most {MAX_INSTANCE_STATUS_IDS} instances, not {}", ids.len()),
            ));
        }
        // Without ids DescribeInstanceStatus describes every instance.
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut health = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = self
                .client
                .describe_instance_status()
                .set_instance_ids(Some(ids.to_vec()))
                .include_all_instances(true)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| cloud_error(&op, e))?;
            health.extend(out.instance_statuses().iter().map(|s| InstanceHealth {
                instance_id: s.instance_id.clone().unwrap_or_default(),
                system_ok: check_of(s.system_status.as_ref()),
                instance_ok: check_of(s.instance_status.as_ref()),
            }));
            match out.next_token {
                Some(token) if !token.is_empty() => next = Some(token),
                _ => break,
            }
        }
        Ok(health)
    }

    async fn subnet_zone(&self, subnet_id: &str) -> CloudResult<String> {
        let op = ops::DESCRIBE_SUBNETS;
        let out = self.client.describe_subnets().subnet_ids(subnet_id).send().await.map_err(|e| cloud_error(&op, e))?;
        out.subnets()
            .iter()
            .find(|s| s.subnet_id.as_deref() == Some(subnet_id))
            .and_then(|s| s.availability_zone.clone())
            .ok_or_else(|| CloudError::new(&op, ErrorKind::MissingReference, format!("no subnet {subnet_id}")))
    }

    async fn volumes_tagged(&self, key: &str, values: &[String]) -> CloudResult<Vec<Volume>> {
        let op = ops::DESCRIBE_VOLUMES;
        check_filter_values(&op, values)?;
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let filters = vec![filter(format!("tag:{key}"), values)];
        let mut volumes = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = self
                .client
                .describe_volumes()
                .set_filters(Some(filters.clone()))
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| cloud_error(&op, e))?;
            volumes.extend(out.volumes().iter().map(volume_of));
            match out.next_token {
                Some(token) if !token.is_empty() => next = Some(token),
                _ => break,
            }
        }
        Ok(volumes)
    }

    async fn create_volume(&self, input: &VolumeInput) -> CloudResult<Volume> {
        let op = ops::CREATE_VOLUME;
        let out = self
            .client
            .create_volume()
            .availability_zone(&input.availability_zone)
            .size(int(&op, "volume size", input.size_gib)?)
            .volume_type(ec2::VolumeType::from(input.volume_type.as_str()))
            .set_iops(input.iops.map(|i| int(&op, "iops", i)).transpose()?)
            .set_snapshot_id(input.snapshot_id.clone())
            .set_tag_specifications(tag_specifications(&input.tags, &[ec2::ResourceType::Volume]))
            .client_token(&input.client_token)
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        let tags = match out.tags.as_deref() {
            Some(tags) if !tags.is_empty() => tags_of(Some(tags)),
            // Set by this very call.
            _ => input.tags.clone(),
        };
        Ok(Volume {
            id: out
                .volume_id
                .clone()
                .ok_or_else(|| CloudError::new(&op, ErrorKind::Other, "the answer has no volume"))?,
            state: out.state.as_ref().map(|s| s.as_str().to_string()).unwrap_or_default(),
            availability_zone: out.availability_zone.clone().unwrap_or_else(|| input.availability_zone.clone()),
            size_gib: count(out.size),
            attached_to: attached_to(out.attachments()),
            tags,
        })
    }

    async fn attach_volume(&self, volume_id: &str, instance_id: &str, device: &str) -> CloudResult<()> {
        let op = ops::ATTACH_VOLUME;
        self.client
            .attach_volume()
            .volume_id(volume_id)
            .instance_id(instance_id)
            .device(device)
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        Ok(())
    }

    /// AWS detaches by volume id alone. moto needs the instance id as well and
    /// fails without one (a 500, retried by the SDK, then a server error): on
    /// a server error the volume is described and, if it is attached, the
    /// detach is sent once more naming its instance. (Harmless in AWS: a
    /// detach that did go through makes the second one fail, and the caller
    /// observes the volume again.)
    async fn detach_volume(&self, volume_id: &str, force: bool) -> CloudResult<()> {
        let op = ops::DETACH_VOLUME;
        let detach = self.client.detach_volume().volume_id(volume_id).force(force);
        let first = match detach.clone().send().await {
            Ok(_) => return Ok(()),
            Err(e) => cloud_error(&op, e),
        };
        if !first.is(ErrorKind::Server) {
            return Err(first);
        }
        let describe = ops::DESCRIBE_VOLUMES;
        let out = self.client.describe_volumes().volume_ids(volume_id).send().await;
        let out = out.map_err(|e| cloud_error(&describe, e))?;
        let Some(instance) = out.volumes().first().and_then(|v| attached_to(v.attachments())) else {
            return Err(first);
        };
        detach.instance_id(instance).send().await.map_err(|e| cloud_error(&op, e))?;
        Ok(())
    }

    async fn delete_volume(&self, volume_id: &str) -> CloudResult<()> {
        let op = ops::DELETE_VOLUME;
        self.client.delete_volume().volume_id(volume_id).send().await.map_err(|e| cloud_error(&op, e))?;
        Ok(())
    }

    async fn create_tags(&self, resource_id: &str, tags: &Tags) -> CloudResult<()> {
        let Some(tags) = sdk_tags(tags) else {
            return Ok(());
        };
        let op = ops::CREATE_TAGS;
        self.client
            .create_tags()
            .resources(resource_id)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        Ok(())
    }

    async fn delete_tags(&self, resource_id: &str, keys: &[String]) -> CloudResult<()> {
        // DeleteTags without tags deletes *every* tag of the resource.
        if keys.is_empty() {
            return Ok(());
        }
        let op = ops::DELETE_TAGS;
        self.client
            .delete_tags()
            .resources(resource_id)
            .set_tags(Some(keys.iter().map(|k| ec2::Tag::builder().key(k).build()).collect()))
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        Ok(())
    }
}

fn snapshot_of(s: &ec2::Snapshot) -> Snapshot {
    Snapshot {
        id: s.snapshot_id.clone().unwrap_or_default(),
        volume_id: s.volume_id.clone().unwrap_or_default(),
        state: SnapshotState::from_aws(s.state.as_ref().map(|s| s.as_str()).unwrap_or_default()),
        started: s.start_time.as_ref().and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
        tags: tags_of(s.tags.as_deref()),
    }
}

#[async_trait]
impl Snapshots for SdkEc2 {
    async fn snapshots_tagged(&self, key: &str, values: &[String]) -> CloudResult<Vec<Snapshot>> {
        let op = ops::DESCRIBE_SNAPSHOTS;
        check_filter_values(&op, values)?;
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let filters = vec![filter(format!("tag:{key}"), values)];
        let mut snapshots = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = self
                .client
                .describe_snapshots()
                .owner_ids("self")
                .set_filters(Some(filters.clone()))
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| cloud_error(&op, e))?;
            snapshots.extend(out.snapshots().iter().map(snapshot_of));
            match out.next_token {
                Some(token) if !token.is_empty() => next = Some(token),
                _ => break,
            }
        }
        Ok(snapshots)
    }

    async fn create_snapshot(&self, volume_id: &str, description: &str, tags: &Tags) -> CloudResult<Snapshot> {
        let op = ops::CREATE_SNAPSHOT;
        let out = self
            .client
            .create_snapshot()
            .volume_id(volume_id)
            .description(description)
            .set_tag_specifications(tag_specifications(tags, &[ec2::ResourceType::Snapshot]))
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        Ok(Snapshot {
            id: out
                .snapshot_id
                .clone()
                .ok_or_else(|| CloudError::new(&op, ErrorKind::Other, "the answer has no snapshot"))?,
            volume_id: out.volume_id.clone().unwrap_or_else(|| volume_id.to_string()),
            state: SnapshotState::from_aws(out.state.as_ref().map(|s| s.as_str()).unwrap_or("pending")),
            started: out.start_time.as_ref().and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())),
            tags: match out.tags.as_deref() {
                Some(t) if !t.is_empty() => tags_of(Some(t)),
                _ => tags.clone(),
            },
        })
    }

    async fn delete_snapshot(&self, id: &str) -> CloudResult<()> {
        let op = ops::DELETE_SNAPSHOT;
        self.client.delete_snapshot().snapshot_id(id).send().await.map_err(|e| cloud_error(&op, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_in_domain_terms() {
        let i = ec2::Instance::builder()
            .instance_id("i-1")
            .state(ec2::InstanceState::builder().name(ec2::InstanceStateName::Stopped).build())
            .instance_type(ec2::InstanceType::T3Small)
            .image_id("ami-1")
            .subnet_id("subnet-1")
            .private_ip_address("10.0.0.5")
            .placement(ec2::Placement::builder().availability_zone("us-east-1a").build())
            .tags(ec2::Tag::builder().key("mooring:uid").value("u1").build())
            .block_device_mappings(
                ec2::InstanceBlockDeviceMapping::builder()
                    .device_name("/dev/sdf")
                    .ebs(ec2::EbsInstanceBlockDevice::builder().volume_id("vol-1").build())
                    .build(),
            )
            .block_device_mappings(ec2::InstanceBlockDeviceMapping::builder().device_name("/dev/sdg").build())
            .build();
        let i = instance_of(&i);
        assert_eq!(i.state, InstanceState::Stopped);
        assert_eq!(i.instance_type, "t3.small");
        assert_eq!(i.availability_zone.as_deref(), Some("us-east-1a"));
        assert_eq!(i.tags.get("mooring:uid").map(String::as_str), Some("u1"));
        assert_eq!(i.volumes, vec![("/dev/sdf".to_string(), "vol-1".to_string())], "a mapping without EBS is left out");
        assert_eq!(instance_of(&ec2::Instance::builder().build()).state, InstanceState::Pending);
    }

    #[test]
    fn status_checks() {
        let summary = |s: ec2::SummaryStatus| ec2::InstanceStatusSummary::builder().status(s).build();
        assert_eq!(check_of(Some(&summary(ec2::SummaryStatus::Ok))), Some(true));
        assert_eq!(check_of(Some(&summary(ec2::SummaryStatus::Impaired))), Some(false));
        assert_eq!(check_of(Some(&summary(ec2::SummaryStatus::Initializing))), None);
        assert_eq!(check_of(Some(&summary(ec2::SummaryStatus::InsufficientData))), None);
        assert_eq!(check_of(Some(&summary(ec2::SummaryStatus::NotApplicable))), None);
        assert_eq!(check_of(None), None);
    }

    #[test]
    fn a_detached_attachment_is_no_attachment() {
        let a = |state: ec2::VolumeAttachmentState, id: &str| {
            ec2::VolumeAttachment::builder().state(state).instance_id(id).build()
        };
        assert_eq!(attached_to(&[a(ec2::VolumeAttachmentState::Detached, "i-1")]), None);
        let both = [a(ec2::VolumeAttachmentState::Detached, "i-1"), a(ec2::VolumeAttachmentState::Attaching, "i-2")];
        assert_eq!(attached_to(&both).as_deref(), Some("i-2"));
        assert_eq!(attached_to(&[a(ec2::VolumeAttachmentState::Detaching, "i-3")]).as_deref(), Some("i-3"));
    }

    #[test]
    fn empty_tags_make_no_specification() {
        assert_eq!(tag_specifications(&Tags::new(), &[ec2::ResourceType::Instance]), None);
        let tags = Tags::from([("k".to_string(), "v".to_string())]);
        let specs = tag_specifications(&tags, &[ec2::ResourceType::Instance, ec2::ResourceType::Volume]);
        assert_eq!(specs.map(|s| s.len()), Some(2));
    }
}
