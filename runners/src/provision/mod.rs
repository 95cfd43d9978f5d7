//! The EC2 work of a node, done idempotently by `mooring-provisioner` inside a
//! CodeBuild build (or a local subprocess, or the simulated cloud's build):
//! the instance, its data volume kept across replacement, the user data, the
//! target group registration; and the teardown.
//!
//! Every step looks before it acts: the instance and the volume are found by
//! their `mooring:uid` tag before anything is created (moto ignores client
//! tokens, and a build may run twice after a controller crash), and creates
//! carry client tokens derived from the node's uid and the instance's hash
//! for AWS's own idempotency.

mod executor;
pub mod local;
mod request;
pub mod userdata;

use std::time::Duration;

use api_types::common::DeletionPolicy;
use api_types::node::{NodeSpec, UpdateStrategy, VolumeType};

pub use executor::ProvisionExecutor;
pub use request::{Action, ProvisionRequest, RequestError, env};

use crate::cloud::ec2::{Instance, InstanceInput, InstanceState, Volume, VolumeInput};
use crate::cloud::{CloudError, Ec2, ErrorKind, TAG_NAME, TAG_UID, Tags, TargetGroups};
use crate::names;

/// `instance` or `data`: what a tagged EC2 resource is to its node.
pub const TAG_ROLE: &str = "mooring:role";
/// The hash of everything that shapes an instance (AMI, type, network, user data).
pub const TAG_INSTANCE_HASH: &str = "mooring:instance-hash";
/// The hash of what cannot change in place (AMI, subnet, security groups).
pub const TAG_BASE_HASH: &str = "mooring:base-hash";
/// The node generation an instance was launched or changed for.
pub const TAG_GENERATION: &str = "mooring:generation";
/// The NodeSet (uid) a member's instance and volume belong to.
pub const TAG_OWNER: &str = "mooring:owner";
/// Where a kept data volume came from (`namespace/name`), once it is no
/// longer a node's.
pub const TAG_RELEASED_FROM: &str = "mooring:released-from";

/// How the provisioner waits for EC2.
#[derive(Debug, Clone, Copy)]
pub struct ProvisionerConfig {
    /// Between looks at an instance or volume in transition.
    pub poll: Duration,
    /// Longest wait for one transition.
    pub timeout: Duration,
}

impl Default for ProvisionerConfig {
    fn default() -> Self {
        ProvisionerConfig { poll: Duration::from_secs(2), timeout: Duration::from_secs(600) }
    }
}

/// What a successful run leaves behind.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Provisioned {
    pub instance_id: Option<String>,
    pub private_ip: Option<String>,
    pub volume_id: Option<String>,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{0}")]
    Cloud(#[from] CloudError),
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
    #[error("{0}")]
    Request(#[from] RequestError),
    #[error("none of the {0} client tokens of this shape and incarnation could launch an instance of it")]
    Relaunches(u32),
}

/// Instances one shape of one incarnation may go through (returns to an
/// earlier shape) before its builds fail with [`ProvisionError::Relaunches`].
const MAX_RELAUNCHES: u32 = 32;

/// The hash of everything that shapes the instance.
pub fn instance_hash(namespace: &str, name: &str, spec: &NodeSpec) -> String {
    let json = serde_json::json!({
        "base": base_hash(spec),
        "instanceType": spec.instance_type,
        "userData": userdata::render(namespace, name, spec),
    });
    names::short_hash(&json.to_string(), 16)
}

/// The hash of what an in-place update cannot change.
pub fn base_hash(spec: &NodeSpec) -> String {
    let mut groups = spec.security_group_ids.clone();
    groups.sort();
    let mut json = serde_json::json!({"ami": spec.ami, "subnet": spec.subnet_id, "securityGroups": groups});
    // Only when set, so the hash of a node without one stays what it was.
    if let Some(profile) = &spec.instance_profile {
        json["instanceProfile"] = serde_json::json!(profile);
    }
    names::short_hash(&json.to_string(), 16)
}

fn volume_type(t: VolumeType) -> &'static str {
    match t {
        VolumeType::Gp3 => "gp3",
        VolumeType::Gp2 => "gp2",
        VolumeType::Io1 => "io1",
        VolumeType::Io2 => "io2",
        VolumeType::St1 => "st1",
        VolumeType::Sc1 => "sc1",
    }
}

fn tag<'a>(tags: &'a Tags, key: &str) -> Option<&'a str> {
    tags.get(key).map(String::as_str)
}

/// The instances (not terminated) of the node with `uid`, found by tag: what
/// the provisioner works on.
pub async fn node_instances(ec2: &dyn Ec2, uid: &str) -> Result<Vec<Instance>, CloudError> {
    let all = ec2.instances_tagged(TAG_UID, &[uid.to_string()]).await?;
    Ok(all.into_iter().filter(is_node_instance).collect())
}

/// Whether an instance tagged with a node's uid is the node's own (not a
/// helper that works on its data volume).
pub fn is_node_instance(i: &Instance) -> bool {
    tag(&i.tags, TAG_ROLE) != Some("data")
}

/// Does the EC2 work of one request.
pub struct Provisioner<'a> {
    ec2: &'a dyn Ec2,
    targets: &'a dyn TargetGroups,
    config: ProvisionerConfig,
}

impl<'a> Provisioner<'a> {
    pub fn new(ec2: &'a dyn Ec2, targets: &'a dyn TargetGroups, config: ProvisionerConfig) -> Self {
        Provisioner { ec2, targets, config }
    }

    /// Runs the request to the end.
    pub async fn run(&self, req: &ProvisionRequest) -> Result<Provisioned, ProvisionError> {
        tracing::info!(node = %format!("{}/{}", req.namespace, req.name), action = req.action.as_str(), token = %req.token, "provisioning");
        match req.action {
            Action::Apply => self.apply(req).await,
            Action::Destroy => self.destroy(req).await,
        }
    }

    /// The user's `spec.tags`, then Mooring's own (which win).
    fn tags(req: &ProvisionRequest, role: &str) -> Tags {
        let mut tags: Tags = req.spec.tags.clone();
        tags.extend([
            (TAG_UID.to_string(), req.uid.clone()),
            (TAG_NAME.to_string(), format!("{}/{}", req.namespace, req.name)),
            (TAG_ROLE.to_string(), role.to_string()),
        ]);
        if let Some(owner) = &req.owner {
            tags.insert(TAG_OWNER.to_string(), owner.clone());
        }
        tags
    }

    /// A NodeSet member created again (after a scale-down that kept its
    /// predecessor's volume) takes that volume back, as a StatefulSet's pod
    /// gets its claim: a volume released from a node of the same name that
    /// still carries the set's uid, available, in the subnet's zone. Only
    /// Mooring's keys are put first (the tags adoption may add); the spec's
    /// tags follow once the volume is the node's.
    ///
    /// Only for the member's first volume (a member that lost its own volume
    /// is restored from its snapshots instead), and only when the member
    /// would keep the volume too: a kept volume is never handed to a member
    /// whose deletion would delete it.
    async fn reclaim(&self, req: &ProvisionRequest, zone: &str) -> Result<Option<Volume>, ProvisionError> {
        let Some(owner) = &req.owner else { return Ok(None) };
        let deletes = req.spec.data_volume.delete_on_node_delete && req.spec.deletion_policy == DeletionPolicy::Delete;
        if req.incarnation > 0 || deletes {
            return Ok(None);
        }
        let released = format!("{}/{}", req.namespace, req.name);
        let candidates = self.ec2.volumes_tagged(TAG_RELEASED_FROM, std::slice::from_ref(&released)).await?;
        // Unclaimed, or claimed by an earlier build of this node that did not
        // attach it: the release mark stays until the volume is attached
        // (see `apply`), so a build whose read by the node's uid does not yet
        // show the claim (EC2's reads are eventually consistent) finds the
        // volume here again instead of creating an empty one beside it.
        let Some(v) = candidates.into_iter().find(|v| {
            tag(&v.tags, TAG_OWNER) == Some(owner.as_str())
                && tag(&v.tags, TAG_UID).is_none_or(|uid| uid == req.uid)
                && v.state == "available"
                && v.availability_zone == zone
        }) else {
            return Ok(None);
        };
        let mine: Tags = Self::tags(req, "data").into_iter().filter(|(k, _)| k.starts_with("mooring:")).collect();
        self.ec2.create_tags(&v.id, &mine).await?;
        tracing::info!(volume = %v.id, "took back the data volume of the member's predecessor");
        Ok(self.volumes(&req.uid).await?.into_iter().find(|found| found.id == v.id).or(Some(v)))
    }

    /// Puts `spec.tags` on an existing instance or volume where they differ
    /// (a tag removed from the spec stays: EC2 resources collect tags from
    /// other tools too, and Mooring removes only what it knows it set).
    async fn apply_user_tags(&self, req: &ProvisionRequest, id: &str, have: &Tags) -> Result<(), CloudError> {
        let missing: Tags = req
            .spec
            .tags
            .iter()
            .filter(|(k, v)| have.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        self.ec2.create_tags(id, &missing).await
    }

    async fn instances(&self, uid: &str) -> Result<Vec<Instance>, CloudError> {
        node_instances(self.ec2, uid).await
    }

    async fn volumes(&self, uid: &str) -> Result<Vec<Volume>, CloudError> {
        let all = self.ec2.volumes_tagged(TAG_UID, &[uid.to_string()]).await?;
        Ok(all.into_iter().filter(|v| tag(&v.tags, TAG_ROLE) == Some("data")).collect())
    }

    /// Polls until `check` says yes (returns its value) or the timeout passes.
    async fn wait_for<T, F, Fut>(&self, what: &str, mut check: F) -> Result<T, ProvisionError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, CloudError>>,
    {
        let deadline = tokio::time::Instant::now() + self.config.timeout;
        loop {
            match check().await {
                Ok(Some(v)) => return Ok(v),
                Ok(None) => {}
                // Eventual consistency: what was just created may not be visible yet.
                Err(e) if e.is(ErrorKind::NotFound) || e.is(ErrorKind::Throttled) || e.is(ErrorKind::Server) => {}
                Err(e) => return Err(e.into()),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ProvisionError::Timeout(self.config.timeout, what.to_string()));
            }
            tokio::time::sleep(self.config.poll).await;
        }
    }

    async fn wait_instance(&self, uid: &str, id: &str, want: &[InstanceState]) -> Result<Instance, ProvisionError> {
        let what = format!("instance {id} to be {want:?}");
        self.wait_for(&what, || async {
            Ok(self.instances(uid).await?.into_iter().find(|i| i.id == id && want.contains(&i.state)))
        })
        .await
    }

    async fn wait_gone(&self, uid: &str, id: &str) -> Result<(), ProvisionError> {
        self.wait_for(&format!("instance {id} to terminate"), || async {
            Ok((!self.instances(uid).await?.iter().any(|i| i.id == id)).then_some(()))
        })
        .await
    }

    async fn wait_volume(&self, uid: &str, id: &str, state: &str) -> Result<Volume, ProvisionError> {
        self.wait_for(&format!("volume {id} to be {state}"), || async {
            Ok(self.volumes(uid).await?.into_iter().find(|v| v.id == id && v.state == state))
        })
        .await
    }

    /// The node's data volume: found by tag, else created once in the
    /// subnet's zone (from the request's snapshot, if it names one).
    async fn ensure_volume(&self, req: &ProvisionRequest, zone: &str) -> Result<Volume, ProvisionError> {
        let mut volumes = self.volumes(&req.uid).await?;
        // The one that holds the data first: the attached one, then one taken
        // back from a predecessor and not attached yet, then the rest.
        volumes.sort_by_key(|v| (v.attached_to.is_none(), !v.tags.contains_key(TAG_RELEASED_FROM)));
        if let Some(v) = volumes.first() {
            // Two volumes come from an endpoint that ignores client tokens:
            // the extra one is unattached and empty, and goes. Beside a
            // volume taken back from a predecessor (which holds that member's
            // data), or an attached one, nothing is deleted: either may hold
            // data, and the node's teardown deals with both.
            let may_hold_data = |x: &Volume| x.attached_to.is_some() || x.tags.contains_key(TAG_RELEASED_FROM);
            let keep_all = v.tags.contains_key(TAG_RELEASED_FROM) || volumes.iter().skip(1).any(may_hold_data);
            for extra in volumes.iter().skip(1) {
                if keep_all {
                    tracing::warn!(volume = %extra.id, kept = %v.id, "a second data volume that may hold data; left in place");
                    continue;
                }
                tracing::warn!(volume = %extra.id, "deleting a duplicate data volume");
                self.ec2.delete_volume(&extra.id).await?;
            }
            if let Some(owner) = req.owner.as_ref().filter(|o| tag(&v.tags, TAG_OWNER) != Some(o.as_str())) {
                self.ec2.create_tags(&v.id, &Tags::from([(TAG_OWNER.to_string(), owner.clone())])).await?;
            }
            return Ok(v.clone());
        }
        if let Some(v) = self.reclaim(req, zone).await? {
            return Ok(v);
        }
        let dv = &req.spec.data_volume;
        let input = VolumeInput {
            availability_zone: zone.to_string(),
            size_gib: dv.size_gi_b,
            volume_type: volume_type(dv.type_).to_string(),
            iops: dv.iops,
            tags: Self::tags(req, "data"),
            snapshot_id: req.restore_from.clone(),
            client_token: names::client_token(&req.uid, "data-volume", i64::from(req.incarnation), 64),
        };
        let v = self.ec2.create_volume(&input).await?;
        tracing::info!(volume = %v.id, from_snapshot = ?input.snapshot_id, "created the data volume");
        self.wait_volume(&req.uid, &v.id, "available").await
    }

    async fn apply(&self, req: &ProvisionRequest) -> Result<Provisioned, ProvisionError> {
        let spec = &req.spec;
        let zone = self.ec2.subnet_zone(&spec.subnet_id).await?;
        let volume = self.ensure_volume(req, &zone).await?;
        let want = instance_hash(&req.namespace, &req.name, spec);
        let base = base_hash(spec);
        let live: Vec<Instance> = self
            .instances(&req.uid)
            .await?
            .into_iter()
            .filter(|i| !matches!(i.state, InstanceState::ShuttingDown | InstanceState::Terminated))
            .collect();
        // The current instance: one already of this shape (the one holding the
        // volume first), else an in-place change of the only old one, else a new one.
        let mut current: Vec<&Instance> =
            live.iter().filter(|i| tag(&i.tags, TAG_INSTANCE_HASH) == Some(&want)).collect();
        current.sort_by_key(|i| volume.attached_to.as_deref() != Some(i.id.as_str()));
        let instance = match (current.first(), spec.update_strategy, live.as_slice()) {
            (Some(i), _, _) => (*i).clone(),
            (None, UpdateStrategy::InPlace, [old]) if tag(&old.tags, TAG_BASE_HASH) == Some(&base) => {
                self.in_place(req, old, &want).await?
            }
            (None, _, _) => self.launch(req, &want, &base).await?,
        };
        let instance = match instance.state {
            InstanceState::Running => instance,
            InstanceState::Stopped | InstanceState::Stopping => {
                self.wait_instance(&req.uid, &instance.id, &[InstanceState::Stopped]).await?;
                self.ec2.start_instance(&instance.id).await?;
                self.wait_instance(&req.uid, &instance.id, &[InstanceState::Running]).await?
            }
            _ => self.wait_instance(&req.uid, &instance.id, &[InstanceState::Running]).await?,
        };
        let retired: Vec<&Instance> = live.iter().filter(|i| i.id != instance.id).collect();
        let port = spec
            .load_balancer
            .as_ref()
            .map(|lb| lb.port.or(spec.health_check.as_ref().map(|h| h.port)).or(spec.ports.first().map(|p| p.port)));
        // Take the old instances out of the target group, stop them so the
        // data is flushed, move the volume, then terminate them.
        for old in &retired {
            if let (Some(lb), Some(port)) = (&spec.load_balancer, port) {
                self.targets.deregister_targets(&lb.target_group_arn, &[(old.id.clone(), port)]).await?;
            }
            if old.state == InstanceState::Running || old.state == InstanceState::Pending {
                if old.state == InstanceState::Pending {
                    self.wait_instance(&req.uid, &old.id, &[InstanceState::Running]).await?;
                }
                self.ec2.stop_instance(&old.id).await?;
            }
            self.wait_instance(&req.uid, &old.id, &[InstanceState::Stopped]).await?;
        }
        let volume = self.attach(req, &volume, &instance).await?;
        // A volume taken back from a predecessor is the node's once attached.
        if volume.tags.contains_key(TAG_RELEASED_FROM) {
            self.ec2.delete_tags(&volume.id, &[TAG_RELEASED_FROM.to_string()]).await?;
        }
        self.apply_user_tags(req, &instance.id, &instance.tags).await?;
        if tag(&instance.tags, TAG_GENERATION) != Some(req.generation.to_string().as_str()) {
            let generation = Tags::from([(TAG_GENERATION.to_string(), req.generation.to_string())]);
            self.ec2.create_tags(&instance.id, &generation).await?;
        }
        self.apply_user_tags(req, &volume.id, &volume.tags).await?;
        for old in &retired {
            tracing::info!(instance = %old.id, "terminating the replaced instance");
            self.ec2.terminate_instance(&old.id).await?;
        }
        if let (Some(lb), Some(port)) = (&spec.load_balancer, port) {
            self.targets.register_targets(&lb.target_group_arn, &[(instance.id.clone(), port)]).await?;
        }
        Ok(Provisioned { instance_id: Some(instance.id), private_ip: instance.private_ip, volume_id: Some(volume.id) })
    }

    /// Launches the node's instance of shape `want`, idempotently.
    ///
    /// The client token is the uid, the shape, the incarnation and a
    /// relaunch number `k`, tried from 0: a token whose instance is gone or
    /// no longer of this shape (the node returned to an earlier shape: a
    /// rollback; an in-place update changed it), or that AWS refuses as used
    /// with other parameters, moves on to `k + 1`. So a build retried after a
    /// crash, or a later generation of the same shape after a build that
    /// launched and then failed, gets back the instance already launched even
    /// when DescribeInstances does not list it yet; only a shape whose every
    /// earlier instance is gone gets a new one. The launch carries only
    /// Mooring's own tags, which never change for a node; `spec.tags` and
    /// the generation are put on right after (a parameter that changes
    /// between builds would make the token's instance unreachable).
    async fn launch(&self, req: &ProvisionRequest, want: &str, base: &str) -> Result<Instance, ProvisionError> {
        let spec = &req.spec;
        let mut tags: Tags =
            Self::tags(req, "instance").into_iter().filter(|(k, _)| k.starts_with("mooring:")).collect();
        tags.insert(TAG_INSTANCE_HASH.into(), want.to_string());
        tags.insert(TAG_BASE_HASH.into(), base.to_string());
        let mut input = InstanceInput {
            ami: spec.ami.clone(),
            instance_type: spec.instance_type.clone(),
            subnet_id: spec.subnet_id.clone(),
            security_group_ids: spec.security_group_ids.clone(),
            user_data: userdata::render(&req.namespace, &req.name, spec),
            instance_profile: spec.instance_profile.clone(),
            tags,
            client_token: String::new(),
        };
        for k in 0..MAX_RELAUNCHES {
            let purpose = if k == 0 { format!("instance-{want}") } else { format!("instance-{want}-{k}") };
            input.client_token = names::client_token(&req.uid, &purpose, i64::from(req.incarnation), 64);
            match self.ec2.run_instance(&input).await {
                Ok(i)
                    if matches!(i.state, InstanceState::ShuttingDown | InstanceState::Terminated)
                        || i.tags.get(TAG_INSTANCE_HASH).is_some_and(|h| h != want) =>
                {
                    tracing::info!(instance = %i.id, relaunch = k, "this token's instance is gone or reshaped; the next token");
                }
                Ok(i) => {
                    tracing::info!(instance = %i.id, instance_type = %spec.instance_type, relaunch = k, "launched an instance");
                    return Ok(i);
                }
                Err(e) if e.is(ErrorKind::Invalid) && e.message.contains("IdempotentParameterMismatch") => {
                    tracing::info!(relaunch = k, "this token was used with other parameters; the next token");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ProvisionError::Relaunches(MAX_RELAUNCHES))
    }

    /// Stop, change the type and user data, start: same instance, same volume.
    async fn in_place(&self, req: &ProvisionRequest, old: &Instance, want: &str) -> Result<Instance, ProvisionError> {
        let spec = &req.spec;
        tracing::info!(instance = %old.id, instance_type = %spec.instance_type, "updating the instance in place");
        if old.state != InstanceState::Stopped {
            if old.state == InstanceState::Pending {
                self.wait_instance(&req.uid, &old.id, &[InstanceState::Running]).await?;
            }
            self.ec2.stop_instance(&old.id).await?;
            self.wait_instance(&req.uid, &old.id, &[InstanceState::Stopped]).await?;
        }
        if old.instance_type != spec.instance_type {
            self.ec2.modify_instance_type(&old.id, &spec.instance_type).await?;
        }
        self.ec2.modify_user_data(&old.id, &userdata::render(&req.namespace, &req.name, spec)).await?;
        let tags = Tags::from([
            (TAG_INSTANCE_HASH.to_string(), want.to_string()),
            (TAG_GENERATION.to_string(), req.generation.to_string()),
        ]);
        self.ec2.create_tags(&old.id, &tags).await?;
        self.ec2.start_instance(&old.id).await?;
        self.wait_instance(&req.uid, &old.id, &[InstanceState::Running]).await
    }

    /// Attaches the volume to `instance`, detaching it from a stopped old one first.
    async fn attach(
        &self,
        req: &ProvisionRequest,
        volume: &Volume,
        instance: &Instance,
    ) -> Result<Volume, ProvisionError> {
        let volume =
            self.volumes(&req.uid).await?.into_iter().find(|v| v.id == volume.id).unwrap_or_else(|| volume.clone());
        match volume.attached_to.as_deref() {
            Some(id) if id == instance.id => return Ok(volume),
            Some(other) => {
                tracing::info!(volume = %volume.id, from = %other, to = %instance.id, "moving the data volume");
                self.ec2.detach_volume(&volume.id, false).await?;
                self.wait_volume(&req.uid, &volume.id, "available").await?;
            }
            None => {}
        }
        self.ec2.attach_volume(&volume.id, &instance.id, userdata::DATA_DEVICE).await?;
        self.wait_volume(&req.uid, &volume.id, "in-use").await
    }

    async fn destroy(&self, req: &ProvisionRequest) -> Result<Provisioned, ProvisionError> {
        let spec = &req.spec;
        let instances = self.instances(&req.uid).await?;
        if let Some(lb) = &spec.load_balancer {
            let port = lb.port.or(spec.health_check.as_ref().map(|h| h.port)).or(spec.ports.first().map(|p| p.port));
            let targets: Vec<_> = instances.iter().map(|i| (i.id.clone(), port)).collect();
            match self.targets.deregister_targets(&lb.target_group_arn, &targets).await {
                Ok(()) => {}
                Err(e) if e.is(ErrorKind::MissingReference) || e.is(ErrorKind::Invalid) => {}
                Err(e) => return Err(e.into()),
            }
        }
        for i in &instances {
            if i.state != InstanceState::ShuttingDown {
                self.ec2.terminate_instance(&i.id).await?;
            }
        }
        for i in &instances {
            self.wait_gone(&req.uid, &i.id).await?;
        }
        for v in self.volumes(&req.uid).await? {
            // A predecessor's volume this node claimed but never attached
            // still holds the predecessor's data: given back, never deleted.
            let unused_claim = v.tags.contains_key(TAG_RELEASED_FROM) && v.attached_to.is_none();
            if spec.data_volume.delete_on_node_delete && spec.deletion_policy == DeletionPolicy::Delete && !unused_claim
            {
                let v = self.wait_volume(&req.uid, &v.id, "available").await?;
                self.ec2.delete_volume(&v.id).await?;
                tracing::info!(volume = %v.id, "deleted the data volume");
            } else {
                // Kept: no longer Mooring's, but it says where it came from.
                // A set's member's volume keeps the set's uid, so that a
                // member created again can take it back.
                let mut released =
                    Tags::from([(TAG_RELEASED_FROM.to_string(), format!("{}/{}", req.namespace, req.name))]);
                if let Some(owner) = &req.owner {
                    released.insert(TAG_OWNER.to_string(), owner.clone());
                }
                self.ec2.create_tags(&v.id, &released).await?;
                self.ec2.delete_tags(&v.id, &[TAG_UID.to_string()]).await?;
                tracing::info!(volume = %v.id, "kept the data volume");
            }
        }
        Ok(Provisioned::default())
    }
}

#[cfg(test)]
mod tests;
