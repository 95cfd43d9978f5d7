//! Simulated EC2: instances that go `pending` → `running`, `stopping` →
//! `stopped` and `shutting-down` → `terminated` as time passes, with status
//! checks that initialize after the instance runs; EBS volumes that are
//! `creating` → `available`, attach in one availability zone to one instance,
//! and detach when their instance terminates; RunInstances and CreateVolume
//! idempotency by client token (IdempotentParameterMismatch as in AWS).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{Ctx, Inner, Slot, check_tags, faults};
use crate::cloud::ec2::{
    Ec2, Instance, InstanceHealth, InstanceInput, InstanceState, MAX_FILTER_VALUES, MAX_INSTANCE_STATUS_IDS, Volume,
    VolumeInput,
};
use crate::cloud::snapshots::{Snapshot, SnapshotState, Snapshots};
use crate::cloud::{CloudError, CloudResult, ErrorKind, Op, Tags, ops};

/// AWS's limit of user data, in bytes before base64 encoding.
const MAX_USER_DATA: usize = 16 * 1024;

/// AWS's limit of a client token (ASCII characters).
const MAX_CLIENT_TOKEN: usize = 64;

/// AWS's limit of tags per EC2 resource.
const MAX_EC2_TAGS: usize = 50;

/// Tries to find a private IP no live instance uses before giving up on uniqueness.
const IP_ATTEMPTS: u64 = 512;

/// The EC2 facade of a [`super::SimCloud`].
pub(super) struct SimEc2(pub(super) Arc<Inner>);

/// The name EC2 gives a state.
fn state_name(s: InstanceState) -> &'static str {
    match s {
        InstanceState::Pending => "pending",
        InstanceState::Running => "running",
        InstanceState::Stopping => "stopping",
        InstanceState::Stopped => "stopped",
        InstanceState::ShuttingDown => "shutting-down",
        InstanceState::Terminated => "terminated",
    }
}

/// One instance; `state` holds since `since`.
#[derive(Debug, Clone)]
struct InstanceRec {
    id: String,
    /// Launch order, for listings.
    seq: u64,
    /// What RunInstances got (token idempotency compares against it).
    launch: InstanceInput,
    instance_type: String,
    user_data: String,
    tags: Tags,
    az: String,
    private_ip: String,
    state: InstanceState,
    since: Instant,
    /// When it last became running (status checks count from here).
    running_since: Option<Instant>,
    /// It was running at least once (the private IP shows from then on).
    ever_running: bool,
    /// Attached volumes: (device, volume id).
    volumes: Vec<(String, String)>,
}

impl InstanceRec {
    /// A state that changes by itself as time passes.
    fn transitional(&self) -> bool {
        matches!(self.state, InstanceState::Pending | InstanceState::Stopping | InstanceState::ShuttingDown)
    }

    /// Brings the instance up to `ctx.now`; true when it terminated just now
    /// (its volumes are to be detached).
    fn settle(&mut self, ctx: &Ctx<'_>) -> bool {
        let (next, delay) = match self.state {
            InstanceState::Pending => (InstanceState::Running, ctx.cfg.instance_start_delay),
            InstanceState::Stopping => (InstanceState::Stopped, ctx.cfg.instance_stop_delay),
            InstanceState::ShuttingDown => (InstanceState::Terminated, ctx.cfg.instance_stop_delay),
            _ => return false,
        };
        let due = self.since + delay;
        if ctx.now < due {
            return false;
        }
        self.state = next;
        self.since = due;
        if next == InstanceState::Running {
            self.running_since = Some(due);
            self.ever_running = true;
        }
        next == InstanceState::Terminated
    }

    /// Moves to a new state now (not running any more unless it is `Running`).
    fn enter(&mut self, state: InstanceState, now: Instant) {
        self.state = state;
        self.since = now;
        self.running_since = None;
    }

    fn to_instance(&self) -> Instance {
        let terminated = self.state == InstanceState::Terminated;
        Instance {
            id: self.id.clone(),
            state: self.state,
            instance_type: self.instance_type.clone(),
            ami: self.launch.ami.clone(),
            subnet_id: (!terminated).then(|| self.launch.subnet_id.clone()),
            private_ip: (self.ever_running && !terminated).then(|| self.private_ip.clone()),
            availability_zone: Some(self.az.clone()),
            tags: self.tags.clone(),
            volumes: self.volumes.clone(),
        }
    }

    /// Its status checks, as DescribeInstanceStatus with IncludeAllInstances
    /// reports them: passed once it has run for the status check delay,
    /// `None` (initializing, not applicable) before and when not running.
    fn health(&self, ctx: &Ctx<'_>) -> InstanceHealth {
        let checked = self.state == InstanceState::Running
            && self.running_since.is_some_and(|t| ctx.now >= t + ctx.cfg.status_check_delay);
        let marker = &ctx.cfg.impaired_instance_marker;
        let impaired = !marker.is_empty() && self.user_data.contains(marker.as_str());
        // An impaired instance's system is fine; the instance check fails.
        InstanceHealth {
            instance_id: self.id.clone(),
            system_ok: checked.then_some(true),
            instance_ok: checked.then_some(!impaired),
        }
    }
}

/// One volume; `state` holds since `since`.
#[derive(Debug, Clone)]
struct VolumeRec {
    id: String,
    seq: u64,
    launch: VolumeInput,
    /// `creating`, `available`, `in-use`, `deleting`.
    state: &'static str,
    since: Instant,
    attached_to: Option<String>,
    tags: Tags,
}

impl VolumeRec {
    fn transitional(&self) -> bool {
        matches!(self.state, "creating" | "deleting")
    }

    /// Brings the volume up to now; false when it is gone.
    fn settle(&mut self, ctx: &Ctx<'_>) -> bool {
        let due = ctx.now >= self.since + ctx.cfg.volume_create_delay;
        match self.state {
            "creating" if due => {
                self.state = "available";
                true
            }
            "deleting" if due => false,
            _ => true,
        }
    }

    fn to_volume(&self) -> Volume {
        Volume {
            id: self.id.clone(),
            state: self.state.to_owned(),
            availability_zone: self.launch.availability_zone.clone(),
            size_gib: self.launch.size_gib,
            attached_to: self.attached_to.clone(),
            tags: self.tags.clone(),
        }
    }
}

/// One EBS snapshot: `pending` for a volume-create delay, then `completed`
/// (or `error`, when a test says so).
#[derive(Debug, Clone)]
struct SnapshotRec {
    id: String,
    volume_id: String,
    since: Instant,
    started: chrono::DateTime<chrono::Utc>,
    failed: bool,
    tags: Tags,
}

impl SnapshotRec {
    fn to_snapshot(&self, ctx: &Ctx<'_>) -> Snapshot {
        let state = if self.failed {
            SnapshotState::Error
        } else if ctx.now >= self.since + ctx.cfg.volume_create_delay {
            SnapshotState::Completed
        } else {
            SnapshotState::Pending
        };
        Snapshot {
            id: self.id.clone(),
            volume_id: self.volume_id.clone(),
            state,
            started: Some(self.started),
            tags: self.tags.clone(),
        }
    }
}

/// Everything EC2 holds.
#[derive(Default)]
pub(super) struct Ec2State {
    /// EBS snapshots (read-after-write consistent here).
    snapshots: BTreeMap<String, SnapshotRec>,
    /// Volume id → the snapshot it was created from.
    restored: HashMap<String, String>,
    /// Every instance ever launched (terminated ones stay).
    instances: BTreeMap<String, Slot<InstanceRec>>,
    volumes: BTreeMap<String, Slot<VolumeRec>>,
    /// Client token → instance id.
    instance_tokens: HashMap<String, String>,
    /// Client token → volume id.
    volume_tokens: HashMap<String, String>,
    /// Ids drawn per (kind, client token), so ids replay per object.
    draws: HashMap<(&'static str, String), u64>,
    /// Private IPs of instances not terminated.
    ips: HashSet<String>,
    /// Resources created so far (instances and volumes), for listing order.
    seq: u64,
}

fn invalid(op: &Op, msg: impl Into<String>) -> CloudError {
    CloudError::new(op, ErrorKind::Invalid, msg)
}

fn no_instance(op: &Op, id: &str) -> CloudError {
    CloudError::new(
        op,
        ErrorKind::NotFound,
        format!("InvalidInstanceID.NotFound: The instance ID '{id}' does not exist"),
    )
}

fn no_volume(op: &Op, id: &str) -> CloudError {
    CloudError::new(op, ErrorKind::NotFound, format!("InvalidVolume.NotFound: The volume '{id}' does not exist."))
}

fn incorrect_state(op: &Op, id: &str, state: InstanceState, wanted: &str) -> CloudError {
    invalid(
        op,
        format!("IncorrectInstanceState: The instance '{id}' is in the '{}' state, not {wanted}.", state_name(state)),
    )
}

/// `family.size` (`t3.micro`, `m7g.2xlarge`).
fn valid_instance_type(t: &str) -> bool {
    t.split_once('.').is_some_and(|(family, size)| {
        !family.is_empty()
            && !size.is_empty()
            && family.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && size.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

fn check_client_token(op: &Op, token: &str) -> CloudResult<()> {
    if token.len() > MAX_CLIENT_TOKEN || !token.is_ascii() {
        return Err(invalid(
            op,
            format!("InvalidParameterValue: ClientToken must be at most {MAX_CLIENT_TOKEN} ASCII characters."),
        ));
    }
    Ok(())
}

/// EBS's size and IOPS rules per volume type.
fn check_volume(op: &Op, input: &VolumeInput) -> CloudResult<()> {
    let (min_size, iops_range): (u32, Option<(u32, u32, bool)>) = match input.volume_type.as_str() {
        "gp3" => (1, Some((3000, 16000, false))),
        "gp2" => (1, None),
        "io1" | "io2" => (4, Some((100, 64000, true))),
        "st1" | "sc1" => (125, None),
        other => {
            return Err(invalid(op, format!("InvalidParameterValue: Invalid volume type {other:?}.")));
        }
    };
    if input.size_gib < min_size || input.size_gib > 16384 {
        return Err(invalid(
            op,
            format!(
                "InvalidParameterValue: Volume of {} GiB is out of range for {} ({min_size}-16384 GiB).",
                input.size_gib, input.volume_type
            ),
        ));
    }
    match (iops_range, input.iops) {
        (None, Some(_)) => Err(invalid(
            op,
            format!(
                "InvalidParameterCombination: The parameter iops is not supported for {} volumes.",
                input.volume_type
            ),
        )),
        (Some((_, _, true)), None) => Err(invalid(
            op,
            format!("MissingParameter: The request must contain the parameter iops for {} volumes.", input.volume_type),
        )),
        (Some((lo, hi, _)), Some(n)) if n < lo || n > hi => Err(invalid(
            op,
            format!("InvalidParameterValue: iops {n} is out of range for {} ({lo}-{hi}).", input.volume_type),
        )),
        _ => Ok(()),
    }
}

/// At most [`MAX_FILTER_VALUES`] values in one tag filter.
fn check_filter(op: &Op, key: &str, values: &[String]) -> CloudResult<()> {
    if values.len() > MAX_FILTER_VALUES {
        return Err(invalid(
            op,
            format!(
                "InvalidParameterValue: The filter 'tag:{key}' has {} values; at most {MAX_FILTER_VALUES} are allowed.",
                values.len()
            ),
        ));
    }
    Ok(())
}

impl Ec2State {
    /// A fresh id (`i-` or `vol-` and 17 hex digits), a hash of the seed, the
    /// kind, the client token and how many ids that token drew before.
    fn new_id(&mut self, kind: &'static str, token: &str, ctx: &Ctx<'_>) -> String {
        loop {
            let n = {
                let d = self.draws.entry((kind, token.to_owned())).or_default();
                *d += 1;
                *d
            };
            let r = faults::hash(ctx.cfg.seed, &[kind.as_bytes(), token.as_bytes(), &n.to_le_bytes()]);
            let id = format!("{kind}-{:016x}{:x}", r[0], r[1] & 0xf);
            if !self.instances.contains_key(&id) && !self.volumes.contains_key(&id) && !self.snapshots.contains_key(&id)
            {
                return id;
            }
        }
    }

    /// A private IP `10.0.x.y` for a new instance, seeded by its id, unused
    /// by live instances where possible.
    fn new_ip(&mut self, id: &str, ctx: &Ctx<'_>) -> String {
        let mut ip = String::new();
        for attempt in 0..IP_ATTEMPTS {
            let r = faults::hash(ctx.cfg.seed, &[b"private-ip", id.as_bytes(), &attempt.to_le_bytes()]);
            ip = format!("10.0.{}.{}", r[0] % 256, 1 + r[1] % 254);
            if !self.ips.contains(&ip) {
                break;
            }
        }
        self.ips.insert(ip.clone());
        ip
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Brings one instance up to now; when it terminated, frees its IP and
    /// detaches its volumes (a settle, not a write).
    fn settle_instance(&mut self, id: &str, ctx: &Ctx<'_>) {
        let Some(rec) = self.instances.get_mut(id).and_then(|s| s.cur.as_mut()) else { return };
        if !rec.settle(ctx) {
            return;
        }
        self.ips.remove(&rec.private_ip);
        for (_, vol) in std::mem::take(&mut rec.volumes) {
            if let Some(v) = self.volumes.get_mut(&vol).and_then(|s| s.cur.as_mut())
                && v.attached_to.as_deref() == Some(id)
            {
                v.attached_to = None;
                v.state = "available";
            }
        }
    }

    /// Brings one volume (and the instance it is attached to) up to now; a
    /// volume whose deletion finished is removed (not a write).
    fn settle_volume(&mut self, id: &str, ctx: &Ctx<'_>) {
        let attached = self.volumes.get(id).and_then(|s| s.cur.as_ref()).and_then(|v| v.attached_to.clone());
        if let Some(instance) = attached {
            self.settle_instance(&instance, ctx);
        }
        if let Some(slot) = self.volumes.get_mut(id)
            && let Some(v) = slot.cur.as_mut()
            && !v.settle(ctx)
        {
            slot.cur = None;
        }
    }

    /// Brings every instance whose state changes by itself up to now.
    fn settle_instances(&mut self, ctx: &Ctx<'_>) {
        let due: Vec<String> = self
            .instances
            .iter()
            .filter(|(_, s)| s.cur.as_ref().is_some_and(InstanceRec::transitional))
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            self.settle_instance(&id, ctx);
        }
    }

    /// Brings every instance and volume up to now.
    fn settle_all(&mut self, ctx: &Ctx<'_>) {
        self.settle_instances(ctx);
        let due: Vec<String> = self
            .volumes
            .iter()
            .filter(|(_, s)| s.cur.as_ref().is_some_and(VolumeRec::transitional))
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            self.settle_volume(&id, ctx);
        }
    }

    /// The current record of an instance, settled; `NotFound` when there is none.
    fn instance_now(&mut self, op: &Op, id: &str, ctx: &Ctx<'_>) -> CloudResult<&InstanceRec> {
        self.settle_instance(id, ctx);
        self.instances.get(id).and_then(|s| s.cur.as_ref()).ok_or_else(|| no_instance(op, id))
    }

    /// Writes an instance (keeping the old state for stale reads).
    fn write_instance(&mut self, id: &str, now: Instant, f: impl FnOnce(&mut InstanceRec)) {
        if let Some(rec) = self.instances.get_mut(id).and_then(|s| s.write(now).as_mut()) {
            f(rec);
        }
    }

    /// Writes a volume (keeping the old state for stale reads).
    fn write_volume(&mut self, id: &str, now: Instant, f: impl FnOnce(&mut VolumeRec)) {
        if let Some(rec) = self.volumes.get_mut(id).and_then(|s| s.write(now).as_mut()) {
            f(rec);
        }
    }

    /// The current record of a volume, settled; `NotFound` when there is none.
    fn volume_now(&mut self, op: &Op, id: &str, ctx: &Ctx<'_>) -> CloudResult<&VolumeRec> {
        self.settle_volume(id, ctx);
        self.volumes.get(id).and_then(|s| s.cur.as_ref()).ok_or_else(|| no_volume(op, id))
    }

    pub(super) fn instances_tagged(
        &mut self,
        key: &str,
        values: &[String],
        ctx: &Ctx<'_>,
    ) -> CloudResult<Vec<Instance>> {
        check_filter(&ops::DESCRIBE_INSTANCES, key, values)?;
        self.settle_instances(ctx);
        let wanted: HashSet<&str> = values.iter().map(String::as_str).collect();
        let mut found: Vec<&InstanceRec> = self
            .instances
            .values()
            .filter_map(|s| s.view(ctx))
            .filter(|r| r.state != InstanceState::Terminated)
            .filter(|r| r.tags.get(key).is_some_and(|v| wanted.contains(v.as_str())))
            .collect();
        found.sort_by_key(|r| r.seq);
        Ok(found.into_iter().map(InstanceRec::to_instance).collect())
    }

    pub(super) fn run_instance(&mut self, input: &InstanceInput, ctx: &Ctx<'_>) -> CloudResult<Instance> {
        let op = ops::RUN_INSTANCES;
        check_client_token(&op, &input.client_token)?;
        if !input.client_token.is_empty()
            && let Some(id) = self.instance_tokens.get(&input.client_token).cloned()
        {
            let rec = self.instance_now(&op, &id, ctx)?;
            if rec.launch != *input {
                return Err(invalid(
                    &op,
                    format!(
                        "IdempotentParameterMismatch: The client token {:?} was used with different parameters.",
                        input.client_token
                    ),
                ));
            }
            return Ok(rec.to_instance());
        }
        let Some(az) = ctx.cfg.subnets.iter().find(|(s, _)| *s == input.subnet_id).map(|(_, az)| az.clone()) else {
            return Err(CloudError::new(
                &op,
                ErrorKind::MissingReference,
                format!("InvalidSubnetID.NotFound: The subnet ID '{}' does not exist", input.subnet_id),
            ));
        };
        if !input.ami.starts_with("ami-") || input.ami.len() < 5 {
            return Err(invalid(&op, format!("InvalidAMIID.Malformed: Invalid id: \"{}\"", input.ami)));
        }
        if !valid_instance_type(&input.instance_type) {
            return Err(invalid(
                &op,
                format!("InvalidParameterValue: Invalid value '{}' for InstanceType.", input.instance_type),
            ));
        }
        if let Some(sg) = input.security_group_ids.iter().find(|g| !g.starts_with("sg-")) {
            return Err(invalid(&op, format!("InvalidGroupId.Malformed: Invalid id: \"{sg}\"")));
        }
        if input.user_data.len() > MAX_USER_DATA {
            return Err(invalid(&op, format!("InvalidParameterValue: User data is limited to {MAX_USER_DATA} bytes.")));
        }
        check_tags(&op, &input.tags)?;
        let id = self.new_id("i", &input.client_token, ctx);
        let private_ip = self.new_ip(&id, ctx);
        let rec = InstanceRec {
            id: id.clone(),
            seq: self.next_seq(),
            launch: input.clone(),
            instance_type: input.instance_type.clone(),
            user_data: input.user_data.clone(),
            tags: input.tags.clone(),
            az,
            private_ip,
            state: InstanceState::Pending,
            since: ctx.now,
            running_since: None,
            ever_running: false,
            volumes: Vec::new(),
        };
        let out = rec.to_instance();
        *self.instances.entry(id.clone()).or_default().write(ctx.now) = Some(rec);
        if !input.client_token.is_empty() {
            self.instance_tokens.insert(input.client_token.clone(), id);
        }
        Ok(out)
    }

    pub(super) fn stop(&mut self, id: &str, ctx: &Ctx<'_>) -> CloudResult<()> {
        let op = ops::STOP_INSTANCES;
        match self.instance_now(&op, id, ctx)?.state {
            InstanceState::Running => {
                self.write_instance(id, ctx.now, |r| r.enter(InstanceState::Stopping, ctx.now));
                Ok(())
            }
            InstanceState::Stopping | InstanceState::Stopped => Ok(()),
            s => Err(incorrect_state(&op, id, s, "'running'")),
        }
    }

    pub(super) fn start(&mut self, id: &str, ctx: &Ctx<'_>) -> CloudResult<()> {
        let op = ops::START_INSTANCES;
        match self.instance_now(&op, id, ctx)?.state {
            InstanceState::Stopped => {
                self.write_instance(id, ctx.now, |r| r.enter(InstanceState::Pending, ctx.now));
                Ok(())
            }
            InstanceState::Pending | InstanceState::Running => Ok(()),
            s => Err(incorrect_state(&op, id, s, "'stopped'")),
        }
    }

    pub(super) fn terminate(&mut self, id: &str, ctx: &Ctx<'_>) -> CloudResult<()> {
        let op = ops::TERMINATE_INSTANCES;
        match self.instance_now(&op, id, ctx)?.state {
            InstanceState::ShuttingDown | InstanceState::Terminated => Ok(()),
            _ => {
                self.write_instance(id, ctx.now, |r| r.enter(InstanceState::ShuttingDown, ctx.now));
                Ok(())
            }
        }
    }

    /// ModifyInstanceAttribute (type or user data): only on a stopped instance.
    pub(super) fn modify(
        &mut self,
        id: &str,
        instance_type: Option<&str>,
        user_data: Option<&str>,
        ctx: &Ctx<'_>,
    ) -> CloudResult<()> {
        let op = ops::MODIFY_INSTANCE_ATTRIBUTE;
        if let Some(t) = instance_type
            && !valid_instance_type(t)
        {
            return Err(invalid(&op, format!("InvalidParameterValue: Invalid value '{t}' for InstanceType.")));
        }
        if user_data.is_some_and(|u| u.len() > MAX_USER_DATA) {
            return Err(invalid(&op, format!("InvalidParameterValue: User data is limited to {MAX_USER_DATA} bytes.")));
        }
        let state = self.instance_now(&op, id, ctx)?.state;
        if state != InstanceState::Stopped {
            return Err(incorrect_state(&op, id, state, "'stopped'"));
        }
        self.write_instance(id, ctx.now, |r| {
            if let Some(t) = instance_type {
                r.instance_type = t.to_owned();
            }
            if let Some(u) = user_data {
                r.user_data = u.to_owned();
            }
        });
        Ok(())
    }

    pub(super) fn instance_health(&mut self, ids: &[String], ctx: &Ctx<'_>) -> CloudResult<Vec<InstanceHealth>> {
        let op = ops::DESCRIBE_INSTANCE_STATUS;
        if ids.len() > MAX_INSTANCE_STATUS_IDS {
            return Err(invalid(
                &op,
                format!(
                    "InvalidParameterValue: DescribeInstanceStatus takes at most {MAX_INSTANCE_STATUS_IDS} instance \
                     ids, not {}.",
                    ids.len()
                ),
            ));
        }
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for id in ids {
            if !seen.insert(id.as_str()) {
                continue;
            }
            self.settle_instance(id, ctx);
            // As in AWS, an id DescribeInstanceStatus does not know (yet) fails the call.
            let rec = self.instances.get(id).and_then(|s| s.view(ctx)).ok_or_else(|| no_instance(&op, id))?;
            out.push(rec.health(ctx));
        }
        Ok(out)
    }

    pub(super) fn subnet_zone(&self, subnet_id: &str, ctx: &Ctx<'_>) -> CloudResult<String> {
        ctx.cfg.subnets.iter().find(|(s, _)| s == subnet_id).map(|(_, az)| az.clone()).ok_or_else(|| {
            CloudError::new(
                &ops::DESCRIBE_SUBNETS,
                ErrorKind::MissingReference,
                format!("InvalidSubnetID.NotFound: The subnet ID '{subnet_id}' does not exist"),
            )
        })
    }

    pub(super) fn volumes_tagged(&mut self, key: &str, values: &[String], ctx: &Ctx<'_>) -> CloudResult<Vec<Volume>> {
        check_filter(&ops::DESCRIBE_VOLUMES, key, values)?;
        self.settle_all(ctx);
        let wanted: HashSet<&str> = values.iter().map(String::as_str).collect();
        let mut found: Vec<&VolumeRec> = self
            .volumes
            .values()
            .filter_map(|s| s.view(ctx))
            .filter(|v| v.tags.get(key).is_some_and(|x| wanted.contains(x.as_str())))
            .collect();
        found.sort_by_key(|v| v.seq);
        Ok(found.into_iter().map(VolumeRec::to_volume).collect())
    }

    pub(super) fn create_volume(&mut self, input: &VolumeInput, ctx: &Ctx<'_>) -> CloudResult<Volume> {
        let op = ops::CREATE_VOLUME;
        check_client_token(&op, &input.client_token)?;
        if !input.client_token.is_empty()
            && let Some(id) = self.volume_tokens.get(&input.client_token).cloned()
        {
            self.settle_volume(&id, ctx);
            if let Some(v) = self.volumes.get(&id).and_then(|s| s.cur.as_ref()) {
                if v.launch != *input {
                    return Err(invalid(
                        &op,
                        format!(
                            "IdempotentParameterMismatch: The client token {:?} was used with different parameters.",
                            input.client_token
                        ),
                    ));
                }
                return Ok(v.to_volume());
            }
        }
        if !ctx.cfg.subnets.iter().any(|(_, az)| *az == input.availability_zone) {
            return Err(CloudError::new(
                &op,
                ErrorKind::MissingReference,
                format!("InvalidZone.NotFound: The zone '{}' does not exist.", input.availability_zone),
            ));
        }
        check_volume(&op, input)?;
        check_tags(&op, &input.tags)?;
        if let Some(snapshot) = &input.snapshot_id
            && !self.snapshots.get(snapshot).is_some_and(|s| s.to_snapshot(ctx).state == SnapshotState::Completed)
        {
            return Err(CloudError::new(
                &op,
                ErrorKind::MissingReference,
                format!("InvalidSnapshot.NotFound: The snapshot '{snapshot}' does not exist (or is not completed)."),
            ));
        }
        let id = self.new_id("vol", &input.client_token, ctx);
        if let Some(snapshot) = &input.snapshot_id {
            self.restored.insert(id.clone(), snapshot.clone());
        }
        let rec = VolumeRec {
            id: id.clone(),
            seq: self.next_seq(),
            launch: input.clone(),
            state: "creating",
            since: ctx.now,
            attached_to: None,
            tags: input.tags.clone(),
        };
        let out = rec.to_volume();
        *self.volumes.entry(id.clone()).or_default().write(ctx.now) = Some(rec);
        if !input.client_token.is_empty() {
            self.volume_tokens.insert(input.client_token.clone(), id);
        }
        Ok(out)
    }

    pub(super) fn snapshots_tagged(
        &mut self,
        key: &str,
        values: &[String],
        ctx: &Ctx<'_>,
    ) -> CloudResult<Vec<Snapshot>> {
        check_filter(&ops::DESCRIBE_SNAPSHOTS, key, values)?;
        Ok(self
            .snapshots
            .values()
            .filter(|s| s.tags.get(key).is_some_and(|v| values.contains(v)))
            .map(|s| s.to_snapshot(ctx))
            .collect())
    }

    pub(super) fn create_snapshot(&mut self, volume_id: &str, tags: &Tags, ctx: &Ctx<'_>) -> CloudResult<Snapshot> {
        let op = ops::CREATE_SNAPSHOT;
        check_tags(&op, tags)?;
        self.settle_volume(volume_id, ctx);
        if self.volumes.get(volume_id).is_none_or(|s| s.cur.is_none()) {
            return Err(no_volume(&op, volume_id));
        }
        let token = format!("{volume_id}/{}", self.snapshots.len());
        let id = self.new_id("snap", &token, ctx);
        let started = chrono::DateTime::from_timestamp(ctx.epoch_secs() as i64, 0).unwrap_or_default();
        let rec = SnapshotRec {
            id: id.clone(),
            volume_id: volume_id.to_string(),
            since: ctx.now,
            started,
            failed: false,
            tags: tags.clone(),
        };
        let out = rec.to_snapshot(ctx);
        self.snapshots.insert(id, rec);
        Ok(out)
    }

    pub(super) fn delete_snapshot(&mut self, id: &str) -> CloudResult<()> {
        match self.snapshots.remove(id) {
            Some(_) => Ok(()),
            None => Err(CloudError::new(
                &ops::DELETE_SNAPSHOT,
                ErrorKind::NotFound,
                format!("InvalidSnapshot.NotFound: The snapshot '{id}' does not exist."),
            )),
        }
    }

    /// Every snapshot, as it is now.
    pub(super) fn all_snapshots(&self, ctx: &Ctx<'_>) -> Vec<Snapshot> {
        self.snapshots.values().map(|s| s.to_snapshot(ctx)).collect()
    }

    /// The snapshot volume `id` was created from.
    pub(super) fn restored_from(&self, id: &str) -> Option<String> {
        self.restored.get(id).cloned()
    }

    /// Makes a snapshot fail (a test's fault).
    pub(super) fn fail_snapshot(&mut self, id: &str) -> bool {
        self.snapshots.get_mut(id).map(|s| s.failed = true).is_some()
    }

    pub(super) fn attach(
        &mut self,
        volume_id: &str,
        instance_id: &str,
        device: &str,
        ctx: &Ctx<'_>,
    ) -> CloudResult<()> {
        let op = ops::ATTACH_VOLUME;
        let (v_state, v_az, v_to) = {
            let v = self.volume_now(&op, volume_id, ctx)?;
            (v.state, v.launch.availability_zone.clone(), v.attached_to.clone())
        };
        let inst = self.instance_now(&op, instance_id, ctx)?;
        match v_state {
            "available" => {}
            "in-use" => {
                return Err(invalid(
                    &op,
                    format!(
                        "VolumeInUse: {volume_id} is already attached to an instance ({}).",
                        v_to.unwrap_or_default()
                    ),
                ));
            }
            s => {
                return Err(invalid(&op, format!("IncorrectState: Volume '{volume_id}' is '{s}', not 'available'.")));
            }
        }
        if !matches!(inst.state, InstanceState::Running | InstanceState::Stopped) {
            return Err(invalid(
                &op,
                format!(
                    "IncorrectState: Instance '{instance_id}' is '{}', not 'running' or 'stopped'.",
                    state_name(inst.state)
                ),
            ));
        }
        if inst.az != v_az {
            return Err(invalid(
                &op,
                format!(
                    "InvalidVolume.ZoneMismatch: The volume '{volume_id}' is in {v_az}, not in the same availability \
                     zone as instance '{instance_id}' ({}).",
                    inst.az
                ),
            ));
        }
        if !device.starts_with("/dev/") || device.len() <= "/dev/".len() {
            return Err(invalid(
                &op,
                format!("InvalidParameterValue: Value ({device}) for parameter device is invalid."),
            ));
        }
        if inst.volumes.iter().any(|(d, _)| d == device) {
            return Err(invalid(&op, format!("InvalidParameterValue: Attachment point {device} is already in use.")));
        }
        self.write_volume(volume_id, ctx.now, |v| {
            v.state = "in-use";
            v.since = ctx.now;
            v.attached_to = Some(instance_id.to_owned());
        });
        self.write_instance(instance_id, ctx.now, |r| r.volumes.push((device.to_owned(), volume_id.to_owned())));
        Ok(())
    }

    pub(super) fn detach(&mut self, volume_id: &str, ctx: &Ctx<'_>) -> CloudResult<()> {
        let op = ops::DETACH_VOLUME;
        let v = self.volume_now(&op, volume_id, ctx)?;
        let (state, attached) = (v.state, v.attached_to.clone());
        let Some(instance_id) = attached.filter(|_| state == "in-use") else {
            return Err(invalid(&op, format!("IncorrectState: Volume '{volume_id}' is in the '{state}' state.")));
        };
        self.write_volume(volume_id, ctx.now, |v| {
            v.state = "available";
            v.since = ctx.now;
            v.attached_to = None;
        });
        self.write_instance(&instance_id, ctx.now, |r| r.volumes.retain(|(_, v)| v != volume_id));
        Ok(())
    }

    pub(super) fn delete_volume(&mut self, volume_id: &str, ctx: &Ctx<'_>) -> CloudResult<()> {
        let op = ops::DELETE_VOLUME;
        let v = self.volume_now(&op, volume_id, ctx)?;
        match v.state {
            "available" => {
                self.write_volume(volume_id, ctx.now, |v| {
                    v.state = "deleting";
                    v.since = ctx.now;
                });
                Ok(())
            }
            "deleting" => Ok(()),
            "in-use" => Err(invalid(
                &op,
                format!(
                    "VolumeInUse: Volume {volume_id} is currently attached to {}",
                    v.attached_to.as_deref().unwrap_or("an instance")
                ),
            )),
            s => Err(invalid(&op, format!("IncorrectState: Volume '{volume_id}' is '{s}', not 'available'."))),
        }
    }

    /// CreateTags / DeleteTags on an instance or a volume.
    pub(super) fn retag(
        &mut self,
        op: &Op,
        resource_id: &str,
        add: &Tags,
        remove: &[String],
        ctx: &Ctx<'_>,
    ) -> CloudResult<()> {
        check_tags(op, add)?;
        let current = if self.instances.contains_key(resource_id) {
            self.instance_now(op, resource_id, ctx)?.tags.clone()
        } else if self.volumes.contains_key(resource_id) {
            self.volume_now(op, resource_id, ctx)?.tags.clone()
        } else {
            return Err(CloudError::new(
                op,
                ErrorKind::NotFound,
                format!("InvalidID.NotFound: The ID '{resource_id}' does not exist"),
            ));
        };
        let mut next = current;
        for k in remove {
            next.remove(k);
        }
        next.extend(add.iter().map(|(k, v)| (k.clone(), v.clone())));
        if next.len() > MAX_EC2_TAGS {
            return Err(invalid(
                op,
                format!(
                    "TagLimitExceeded: The maximum number of tags ({MAX_EC2_TAGS}) for {resource_id} was exceeded."
                ),
            ));
        }
        if self.instances.contains_key(resource_id) {
            self.write_instance(resource_id, ctx.now, |r| r.tags = next);
        } else {
            self.write_volume(resource_id, ctx.now, |v| v.tags = next);
        }
        Ok(())
    }

    // ---- for target groups -------------------------------------------------

    /// An instance's state now and since when it runs, if it exists.
    pub(super) fn instance_state(&mut self, id: &str, ctx: &Ctx<'_>) -> Option<(InstanceState, Option<Instant>)> {
        self.settle_instance(id, ctx);
        self.instances.get(id).and_then(|s| s.cur.as_ref()).map(|r| (r.state, r.running_since))
    }

    // ---- inspection and out-of-band --------------------------------------

    pub(super) fn all_instances(&mut self, ctx: &Ctx<'_>) -> Vec<Instance> {
        self.settle_instances(ctx);
        let mut all: Vec<&InstanceRec> = self.instances.values().filter_map(|s| s.cur.as_ref()).collect();
        all.sort_by_key(|r| r.seq);
        all.into_iter().map(InstanceRec::to_instance).collect()
    }

    pub(super) fn running_tagged(&mut self, key: &str, value: &str, ctx: &Ctx<'_>) -> Vec<Instance> {
        self.all_instances(ctx)
            .into_iter()
            .filter(|i| i.state == InstanceState::Running && i.tags.get(key).is_some_and(|v| v == value))
            .collect()
    }

    pub(super) fn launched(&self, key: &str, value: &str) -> u64 {
        let n = self
            .instances
            .values()
            .filter_map(|s| s.cur.as_ref())
            .filter(|r| r.launch.tags.get(key).is_some_and(|v| v == value))
            .count();
        n as u64
    }

    pub(super) fn user_data(&self, id: &str) -> Option<String> {
        self.instances.get(id)?.cur.as_ref().map(|r| r.user_data.clone())
    }

    pub(super) fn instance_profile(&self, id: &str) -> Option<String> {
        self.instances.get(id)?.cur.as_ref()?.launch.instance_profile.clone()
    }

    pub(super) fn all_volumes(&mut self, ctx: &Ctx<'_>) -> Vec<Volume> {
        self.settle_all(ctx);
        let mut all: Vec<&VolumeRec> = self.volumes.values().filter_map(|s| s.cur.as_ref()).collect();
        all.sort_by_key(|v| v.seq);
        all.into_iter().map(VolumeRec::to_volume).collect()
    }

    pub(super) fn oob_terminate(&mut self, id: &str, ctx: &Ctx<'_>) -> bool {
        self.settle_instance(id, ctx);
        let live = self
            .instances
            .get(id)
            .and_then(|s| s.cur.as_ref())
            .is_some_and(|r| !matches!(r.state, InstanceState::ShuttingDown | InstanceState::Terminated));
        if live {
            self.write_instance(id, ctx.now, |r| r.enter(InstanceState::ShuttingDown, ctx.now));
        }
        live
    }

    pub(super) fn oob_stop(&mut self, id: &str, ctx: &Ctx<'_>) -> bool {
        self.settle_instance(id, ctx);
        let running =
            self.instances.get(id).and_then(|s| s.cur.as_ref()).is_some_and(|r| r.state == InstanceState::Running);
        if running {
            self.write_instance(id, ctx.now, |r| r.enter(InstanceState::Stopping, ctx.now));
        }
        running
    }
}

/// The fault key of a tag query: the filter, so the same query replays.
fn filter_key(key: &str, values: &[String]) -> String {
    format!("{key}={}", values.join(","))
}

#[async_trait]
impl Snapshots for SimEc2 {
    async fn snapshots_tagged(&self, key: &str, values: &[String]) -> CloudResult<Vec<Snapshot>> {
        let k = filter_key(key, values);
        self.0.call(ops::DESCRIBE_SNAPSHOTS, &k, |st, ctx| st.ec2.snapshots_tagged(key, values, ctx)).await
    }

    async fn create_snapshot(&self, volume_id: &str, _description: &str, tags: &Tags) -> CloudResult<Snapshot> {
        self.0.call(ops::CREATE_SNAPSHOT, volume_id, |st, ctx| st.ec2.create_snapshot(volume_id, tags, ctx)).await
    }

    async fn delete_snapshot(&self, id: &str) -> CloudResult<()> {
        self.0.call(ops::DELETE_SNAPSHOT, id, |st, _| st.ec2.delete_snapshot(id)).await
    }
}

#[async_trait]
impl Ec2 for SimEc2 {
    async fn instances_tagged(&self, key: &str, values: &[String]) -> CloudResult<Vec<Instance>> {
        let k = filter_key(key, values);
        self.0.call(ops::DESCRIBE_INSTANCES, &k, |st, ctx| st.ec2.instances_tagged(key, values, ctx)).await
    }

    async fn run_instance(&self, input: &InstanceInput) -> CloudResult<Instance> {
        self.0.call(ops::RUN_INSTANCES, &input.client_token, |st, ctx| st.ec2.run_instance(input, ctx)).await
    }

    async fn stop_instance(&self, id: &str) -> CloudResult<()> {
        self.0.call(ops::STOP_INSTANCES, id, |st, ctx| st.ec2.stop(id, ctx)).await
    }

    async fn start_instance(&self, id: &str) -> CloudResult<()> {
        self.0.call(ops::START_INSTANCES, id, |st, ctx| st.ec2.start(id, ctx)).await
    }

    async fn terminate_instance(&self, id: &str) -> CloudResult<()> {
        self.0.call(ops::TERMINATE_INSTANCES, id, |st, ctx| st.ec2.terminate(id, ctx)).await
    }

    async fn modify_instance_type(&self, id: &str, instance_type: &str) -> CloudResult<()> {
        self.0
            .call(ops::MODIFY_INSTANCE_ATTRIBUTE, id, |st, ctx| st.ec2.modify(id, Some(instance_type), None, ctx))
            .await
    }

    async fn modify_user_data(&self, id: &str, user_data: &str) -> CloudResult<()> {
        self.0.call(ops::MODIFY_INSTANCE_ATTRIBUTE, id, |st, ctx| st.ec2.modify(id, None, Some(user_data), ctx)).await
    }

    async fn instance_health(&self, ids: &[String]) -> CloudResult<Vec<InstanceHealth>> {
        let k = ids.join(",");
        self.0.call(ops::DESCRIBE_INSTANCE_STATUS, &k, |st, ctx| st.ec2.instance_health(ids, ctx)).await
    }

    async fn subnet_zone(&self, subnet_id: &str) -> CloudResult<String> {
        self.0.call(ops::DESCRIBE_SUBNETS, subnet_id, |st, ctx| st.ec2.subnet_zone(subnet_id, ctx)).await
    }

    async fn volumes_tagged(&self, key: &str, values: &[String]) -> CloudResult<Vec<Volume>> {
        let k = filter_key(key, values);
        self.0.call(ops::DESCRIBE_VOLUMES, &k, |st, ctx| st.ec2.volumes_tagged(key, values, ctx)).await
    }

    async fn create_volume(&self, input: &VolumeInput) -> CloudResult<Volume> {
        self.0.call(ops::CREATE_VOLUME, &input.client_token, |st, ctx| st.ec2.create_volume(input, ctx)).await
    }

    async fn attach_volume(&self, volume_id: &str, instance_id: &str, device: &str) -> CloudResult<()> {
        self.0.call(ops::ATTACH_VOLUME, volume_id, |st, ctx| st.ec2.attach(volume_id, instance_id, device, ctx)).await
    }

    async fn detach_volume(&self, volume_id: &str, _force: bool) -> CloudResult<()> {
        // Detaching is immediate here, so forcing changes nothing.
        self.0.call(ops::DETACH_VOLUME, volume_id, |st, ctx| st.ec2.detach(volume_id, ctx)).await
    }

    async fn delete_volume(&self, volume_id: &str) -> CloudResult<()> {
        self.0.call(ops::DELETE_VOLUME, volume_id, |st, ctx| st.ec2.delete_volume(volume_id, ctx)).await
    }

    async fn create_tags(&self, resource_id: &str, tags: &Tags) -> CloudResult<()> {
        let op = ops::CREATE_TAGS;
        self.0.call(op, resource_id, |st, ctx| st.ec2.retag(&op, resource_id, tags, &[], ctx)).await
    }

    async fn delete_tags(&self, resource_id: &str, keys: &[String]) -> CloudResult<()> {
        let op = ops::DELETE_TAGS;
        self.0.call(op, resource_id, |st, ctx| st.ec2.retag(&op, resource_id, &Tags::new(), keys, ctx)).await
    }
}
