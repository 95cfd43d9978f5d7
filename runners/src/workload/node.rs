//! Nodes: EC2 instances provisioned through builds (CodeBuild, or local
//! subprocesses with `--node-builds local`) that run `mooring-provisioner`.
//!
//! A build is an intent first: the reconcile that decides a build is needed
//! only records `{action, token, hash, project, state: PENDING}` in status; the
//! next one starts the build with that token as CodeBuild's idempotency token
//! and records the build id. A crash between the two starts the same build
//! again (CodeBuild returns the one it started; the local stand-in finds it by
//! token), and the provisioner looks for the instance by tag before creating
//! anything, so a crash at any point leaves exactly one instance.
//!
//! Build slots are counted from what the node statuses record as in flight
//! (through [`BuildSlots`]), plus the builds this process started in the last
//! minute whose status write may not be visible yet: a slot is never held by
//! process memory beyond that. Builds beyond the limit (and builds CodeBuild
//! refuses with its account limit) wait with `Progressing=True`, reason `Queued`.
//!
//! When the node's instance is found gone behind Mooring's back (terminated
//! in the console, a spot interruption), the node's incarnation moves on —
//! it is part of the instance's and the data volume's client tokens, so AWS
//! does not hand back the terminated instance for the old token — and a new
//! build launches exactly one new instance and reattaches the data volume
//! (a `DriftDetected` event says so; a data volume that is gone too is
//! recreated from the node's last good snapshot ([`backup`]) or, without
//! one, from `dataVolume.fromSnapshot` or empty, with a `DataVolumeReplaced`
//! warning that says which).
//!
//! Observation is batched across nodes ([`InstanceObserver`]): a node that
//! is settled (Synced, Ready, not Progressing at its generation) is answered
//! from a DescribeInstances (and DescribeInstanceStatus) made at most
//! `observe_max_age` ago for many nodes at once. Anything else — a node in
//! flight, a spec change, an AWS event — reads afresh, and a decision to act
//! (a build, a recovery) or to record another instance is always made on a
//! fresh read.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_types::Event;
use api_types::common::DeletionPolicy;
use api_types::condition::{Condition, ConditionStatus, ConditionType, reason};
use api_types::node::{AlarmStatus, BuildAction, BuildInputs, BuildState, BuildStatus, NodeSpec, NodeStatus};
use api_types::{Kind, NodeSpec as Spec};
use serde_json::json;
use tokio::time::Instant;

use super::ownership::TAG_INSTALL;
use super::{alarms, backup};
use crate::cloud::codebuild::{Build, BuildRequest, BuildState as CloudBuildState, ProjectInput};
use crate::cloud::ec2::{Instance, InstanceState};
use crate::cloud::gated::Gated;
use crate::cloud::{Alarms, Builds, Ec2, ErrorKind, NodeCloud, Snapshots, TAG_UID, TargetGroups};
use crate::gate::CallGate;
use crate::names;
use crate::observe::InstanceObserver;
use crate::provision::{ProvisionRequest, TAG_INSTANCE_HASH, instance_hash, userdata};
use crate::reconcile::{ADOPT_ANNOTATION, Reconcile, ReconcileError, Reconciled, Retry, Target, Teardown};

/// A node, as the runner sees it.
pub type NodeTarget<'a> = Target<'a, NodeSpec, NodeStatus>;

/// The buildspec of the provisioner project (also in `deploy/codebuild/`).
pub const BUILDSPEC: &str = include_str!("../../../deploy/codebuild/node-provisioner.yml");

/// How long a build this process started counts towards the limit on its
/// own, before the node's status (which records it) is the only count.
const RECENT_START: Duration = Duration::from_secs(60);

/// Settings of the node runner.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Look again this soon while a build runs or the node is not ready yet.
    pub poll_in_flight: Duration,
    /// Look at a ready node's health this often.
    pub health_interval: Duration,
    /// A settled node may be answered from an observation this old, made for
    /// many nodes at once (as for services: `WorkloadConfig::observe_max_age`).
    pub observe_max_age: Duration,
    /// Builds the install runs at once (CodeBuild's account default is 20).
    pub max_concurrent_builds: usize,
    /// Failed builds of one spec before Mooring stops retrying (until the spec changes).
    pub max_failures: u32,
    /// Connect health checks here instead of the instance's private IP (local
    /// development, tests).
    pub health_host: Option<String>,
    /// Probe `spec.healthCheck` over HTTP. Off for the simulated cloud, whose
    /// instances have no network (its private IPs are not to be dialled).
    pub probe_health: bool,
    /// The install's name: the provisioner project carries it as the tag
    /// `mooring:install`, and a project without it is never rewritten.
    pub install: String,
    /// The CodeBuild project's settings (ignored by local builds).
    pub project: ProjectSettings,
}

/// How the provisioner project is created.
#[derive(Debug, Clone)]
pub struct ProjectSettings {
    pub image: String,
    pub compute_type: String,
    pub service_role: String,
    /// `bucket/key` of the zip holding the `mooring-provisioner` binary.
    pub source_location: String,
    pub timeout_minutes: u32,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            poll_in_flight: Duration::from_secs(10),
            health_interval: Duration::from_secs(60),
            observe_max_age: Duration::from_secs(60),
            max_concurrent_builds: 20,
            max_failures: 3,
            health_host: None,
            probe_health: true,
            install: "mooring".into(),
            project: ProjectSettings {
                image: "aws/codebuild/amazonlinux-x86_64-standard:5.0".into(),
                compute_type: "BUILD_GENERAL1_SMALL".into(),
                service_role: "arn:aws:iam::123456789012:role/mooring-node-provisioner".into(),
                source_location: "mooring-artifacts/mooring-provisioner.zip".into(),
                timeout_minutes: 60,
            },
        }
    }
}

/// The provisioner builds in flight across the install, as the node statuses
/// record them (the controller answers from the store).
#[async_trait::async_trait]
pub trait BuildSlots: Send + Sync {
    /// The tokens of builds that were started and have not finished.
    async fn in_flight(&self) -> Result<HashSet<String>, String>;
}

/// Build slots without a store: only what this process started recently
/// counts (tools and tests that run one node at a time).
#[derive(Debug, Default)]
pub struct InMemorySlots;

#[async_trait::async_trait]
impl BuildSlots for InMemorySlots {
    async fn in_flight(&self) -> Result<HashSet<String>, String> {
        Ok(HashSet::new())
    }
}

/// The node reconciler: one per controller.
pub struct Nodes {
    cloud: NodeCloud,
    config: NodeConfig,
    slots: Arc<dyn BuildSlots>,
    /// Tokens of builds this process started, with when: counted for
    /// [`RECENT_START`] in case the status recording them is not visible yet.
    recent: Mutex<HashMap<String, Instant>>,
    /// One check-and-start at a time in this process.
    starting: tokio::sync::Mutex<()>,
    /// Projects known to exist, to be the install's, with the current buildspec.
    projects: Mutex<HashSet<String>>,
    /// Nodes' instances and status checks, observed in batches.
    observer: InstanceObserver,
    http: reqwest::Client,
}

struct Calls<'a> {
    ec2: Gated<'a, dyn Ec2>,
    builds: Gated<'a, dyn Builds>,
    targets: Gated<'a, dyn TargetGroups>,
    alarms: Gated<'a, dyn Alarms>,
    snapshots: Gated<'a, dyn Snapshots>,
}

/// What EC2 must look like for this spec: the instance's shape, the data
/// volume, the target group and the user tags. Labels and the deletion policy
/// are not in it, so changing them starts no build; nor are the volume's
/// backups (the controller takes them) and the snapshot a new volume would
/// start from.
/// `instance` is [`instance_hash`] of the spec (computed once by the caller:
/// it renders the user data).
pub fn provision_hash(instance: &str, spec: &NodeSpec) -> String {
    let data_volume = api_types::node::DataVolume { backup: None, from_snapshot: None, ..spec.data_volume.clone() };
    let json = json!({
        "instance": instance,
        "dataVolume": data_volume,
        "loadBalancer": spec.load_balancer,
        "ports": spec.ports,
        "healthCheck": spec.health_check,
        "tags": spec.tags,
    });
    names::short_hash(&json.to_string(), 16)
}

fn build_state(s: CloudBuildState) -> BuildState {
    match s {
        CloudBuildState::InProgress => BuildState::InProgress,
        CloudBuildState::Succeeded => BuildState::Succeeded,
        CloudBuildState::Failed => BuildState::Failed,
        CloudBuildState::Fault => BuildState::Fault,
        CloudBuildState::Stopped => BuildState::Stopped,
        CloudBuildState::TimedOut => BuildState::TimedOut,
    }
}

/// What a node needs, decided from its status and what EC2 shows (pure, so
/// it is tested as a table).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Need {
    /// The instance for this spec runs: check its health.
    Nothing,
    /// A build for this spec, after `failures` failed ones.
    Build { failures: u32 },
    /// The instance (or its data volume) Mooring recorded is gone: a new
    /// incarnation and a build.
    Recover { why: String },
    /// Builds failed `max` times for this spec: stop until the spec changes.
    GiveUp,
}

/// The node's instance of the wanted `shape`, running or starting.
fn current_instance<'a>(instances: &'a [Instance], shape: &str) -> Option<&'a Instance> {
    instances.iter().find(|i| {
        i.tags.get(TAG_INSTANCE_HASH).is_some_and(|h| h == shape)
            && matches!(i.state, InstanceState::Running | InstanceState::Pending)
    })
}

/// What EC2 shows of a node, for [`need`].
struct Seen<'a> {
    /// An instance of the wanted shape, running or starting.
    current: Option<&'a Instance>,
    /// Every instance of the node that is not terminated.
    all: &'a [Instance],
}

fn need(status: &NodeStatus, want: &str, seen: &Seen<'_>, max_failures: u32) -> Need {
    let applied = status.applied_hash.as_deref() == Some(want);
    if let (true, Some(i)) = (applied, seen.current) {
        // Running, but the data volume Mooring recorded is no longer attached.
        return match &status.volume_id {
            Some(v)
                if i.state == InstanceState::Running && !i.volumes.iter().any(|(d, _)| d == userdata::DATA_DEVICE) =>
            {
                Need::Recover { why: format!("data volume {v} is no longer attached to {}", i.id) }
            }
            _ => Need::Nothing,
        };
    }
    if applied && let Some(id) = &status.instance_id {
        let alive = seen
            .all
            .iter()
            .any(|i| &i.id == id && !matches!(i.state, InstanceState::ShuttingDown | InstanceState::Terminated));
        if !alive {
            return Need::Recover { why: format!("instance {id} was terminated outside Mooring") };
        }
    }
    // Failures of this spec so far; a build that succeeded yet left no
    // instance counts as one (an endpoint whose builds run nothing would
    // otherwise be asked for builds forever).
    let last = status.build.as_ref().filter(|b| b.action == BuildAction::Apply && b.hash.as_deref() == Some(want));
    let vanished = last.is_some_and(|b| b.state == BuildState::Succeeded);
    let failures = last.map_or(0, |b| b.failures + u32::from(vanished));
    if failures >= max_failures { Need::GiveUp } else { Need::Build { failures } }
}

#[async_trait::async_trait]
impl Reconcile for Nodes {
    const KIND: Kind = Kind::Node;
    type Spec = Spec;
    type Status = NodeStatus;

    async fn reconcile(
        &self,
        gate: &dyn CallGate,
        t: &NodeTarget<'_>,
    ) -> Result<Reconciled<NodeStatus>, ReconcileError> {
        self.reconcile_node(gate, t).await
    }

    async fn cleanup(&self, gate: &dyn CallGate, t: &NodeTarget<'_>) -> Result<Teardown<NodeStatus>, ReconcileError> {
        let done = self.cleanup_node(gate, t).await?;
        if matches!(done, Teardown::Done) {
            self.observer.forget(t.uid, &t.status.instance_id.iter().cloned().collect::<Vec<_>>());
        }
        Ok(done)
    }

    fn expect(&self, t: &NodeTarget<'_>) {
        self.observer.expect(t.uid, t.status.instance_id.as_deref());
    }
}

/// How a build start went.
enum Start {
    Started(Build),
    /// No slot (Mooring's limit or CodeBuild's quota): stay queued.
    NoSlot,
}

impl Nodes {
    pub fn new(cloud: NodeCloud, config: NodeConfig, slots: Arc<dyn BuildSlots>) -> Nodes {
        let observer = InstanceObserver::new(config.observe_max_age);
        Nodes {
            cloud,
            config,
            slots,
            recent: Mutex::default(),
            starting: tokio::sync::Mutex::new(()),
            projects: Mutex::default(),
            observer,
            http: reqwest::Client::builder().timeout(Duration::from_secs(3)).no_proxy().build().unwrap_or_default(),
        }
    }

    fn calls<'a>(&'a self, gate: &'a dyn CallGate) -> Calls<'a> {
        Calls {
            ec2: Gated::new(self.cloud.ec2.as_ref(), gate),
            builds: Gated::new(self.cloud.builds.as_ref(), gate),
            targets: Gated::new(self.cloud.targets.as_ref(), gate),
            alarms: Gated::new(self.cloud.alarms.as_ref(), gate),
            snapshots: Gated::new(self.cloud.snapshots.as_ref(), gate),
        }
    }

    /// The StartBuild request of a build intent: the environment
    /// `mooring-provisioner` reads, and the intent's token.
    pub fn build_request(target: &NodeTarget<'_>, b: &BuildStatus) -> BuildRequest {
        let (generation, incarnation, spec) = match &b.request {
            Some(r) => (r.generation, r.incarnation, (*r.spec).clone()),
            None => (target.generation, target.status.incarnation, target.spec.clone()),
        };
        let req = ProvisionRequest {
            action: b.action,
            token: b.token.clone(),
            uid: target.uid.to_string(),
            namespace: target.namespace.to_string(),
            name: target.name.to_string(),
            generation,
            incarnation,
            spec,
            restore_from: b.restore_from.clone(),
            owner: target.owner.map(str::to_string),
        };
        BuildRequest {
            project: b.project.clone().unwrap_or_else(|| target.spec.provisioner.codebuild_project.clone()),
            env: req.to_env(),
            idempotency_token: b.token.clone(),
        }
    }

    /// Makes sure the provisioner project exists and is the install's: created
    /// when missing; its buildspec kept current when it carries the install's
    /// tag; never rewritten otherwise, unless the node asks to adopt it.
    async fn ensure_project(
        &self,
        calls: &Calls<'_>,
        t: &NodeTarget<'_>,
        name: &str,
        events: &mut Vec<Event>,
    ) -> Result<(), ReconcileError> {
        if self.projects.lock().unwrap_or_else(|e| e.into_inner()).contains(name) {
            return Ok(());
        }
        let p = &self.config.project;
        let mut input = ProjectInput {
            name: name.to_string(),
            description: "Mooring node provisioner: runs mooring-provisioner for one node".into(),
            buildspec: BUILDSPEC.to_string(),
            image: p.image.clone(),
            compute_type: p.compute_type.clone(),
            service_role: p.service_role.clone(),
            source_location: p.source_location.clone(),
            timeout_minutes: p.timeout_minutes,
            tags: [
                (TAG_INSTALL.to_string(), self.config.install.clone()),
                ("mooring:component".to_string(), "node-provisioner".to_string()),
            ]
            .into(),
        };
        match calls.builds.project(name).await? {
            None => {
                calls.builds.create_project(&input).await?;
            }
            Some(existing) => match existing.tags.get(TAG_INSTALL) {
                Some(install) if *install == self.config.install => {
                    // An endpoint that does not report the buildspec is taken at its word.
                    if existing.buildspec.as_deref().is_some_and(|b| b != BUILDSPEC) {
                        calls.builds.update_project(&input).await?;
                    }
                }
                Some(other) => {
                    return Err(ReconcileError::Conflict(format!(
                        "CodeBuild project {name} belongs to another Mooring install ({TAG_INSTALL}={other}); nothing was changed"
                    )));
                }
                None if t.adopts() => {
                    let mut tags = existing.tags.clone();
                    tags.extend(std::mem::take(&mut input.tags));
                    input.tags = tags;
                    calls.builds.update_project(&input).await?;
                    events.push(Event::normal(
                        "Adopted",
                        format!("adopted CodeBuild project {name} for install {}", self.config.install),
                    ));
                }
                None => {
                    return Err(ReconcileError::Conflict(format!(
                        "CodeBuild project {name} exists and is not this install's (it has no tag {TAG_INSTALL}={}); \
                         nothing was changed. To take it over, annotate {} with {ADOPT_ANNOTATION}: \"true\"",
                        self.config.install,
                        t.key()
                    )));
                }
            },
        }
        self.projects.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string());
        Ok(())
    }

    /// A new intent: recorded in status now, started by the next reconcile.
    /// `incarnation`: the node's, as this reconcile leaves it. `restore_from`: the snapshot a data volume the build creates starts
    /// from ([`Nodes::restore_source`]).
    fn intent(
        t: &NodeTarget<'_>,
        incarnation: u32,
        action: BuildAction,
        hash: &str,
        failures: u32,
        restore_from: Option<String>,
    ) -> BuildStatus {
        let sequence = t.status.build.as_ref().map_or(0, |b| b.sequence) + 1;
        BuildStatus {
            action,
            token: names::client_token(t.uid, &format!("build/{}/{hash}/{sequence}", action.as_str()), 0, 64),
            project: Some(t.spec.provisioner.codebuild_project.clone()),
            hash: Some(hash.to_string()),
            state: BuildState::Pending,
            sequence,
            failures,
            restore_from,
            request: Some(BuildInputs { generation: t.generation, incarnation, spec: Box::new(t.spec.clone()) }),
            ..Default::default()
        }
    }

    /// Should an apply build have to create the data volume, the snapshot it
    /// starts from: the node's newest completed backup as EC2 lists it now
    /// (one that was deleted behind Mooring's back is not offered), else
    /// `dataVolume.fromSnapshot`. A node that never took a backup makes no
    /// call.
    async fn restore_source(calls: &Calls<'_>, t: &NodeTarget<'_>) -> Result<Option<String>, ReconcileError> {
        let from = t.spec.data_volume.from_snapshot.as_deref();
        if t.status.backup.is_none() {
            return Ok(from.map(str::to_string));
        }
        Ok(backup::restore_source(&calls.snapshots, t.uid, from).await?)
    }

    /// The tokens of builds in flight: what the statuses record plus what this
    /// process started within [`RECENT_START`].
    async fn busy(&self) -> Result<HashSet<String>, ReconcileError> {
        let mut busy = self.slots.in_flight().await.map_err(ReconcileError::Store)?;
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        // What the statuses record is counted from them (and not at all once
        // the node is gone).
        recent.retain(|token, started| started.elapsed() < RECENT_START && !busy.contains(token));
        busy.extend(recent.keys().cloned());
        Ok(busy)
    }

    /// A build whose id the node's status records is counted from the store
    /// (while it runs, and not at all once the node is gone).
    fn recorded(&self, b: &BuildStatus) {
        if b.id.is_some() {
            self.recent.lock().unwrap_or_else(|e| e.into_inner()).remove(&b.token);
        }
    }

    /// Starts the build of intent `b` if a slot is free.
    async fn start(
        &self,
        calls: &Calls<'_>,
        t: &NodeTarget<'_>,
        b: &BuildStatus,
        events: &mut Vec<Event>,
    ) -> Result<Start, ReconcileError> {
        let project = b.project.clone().unwrap_or_else(|| t.spec.provisioner.codebuild_project.clone());
        self.ensure_project(calls, t, &project, events).await?;
        let _one_at_a_time = self.starting.lock().await;
        let busy = self.busy().await?;
        if !busy.contains(&b.token) && busy.len() >= self.config.max_concurrent_builds {
            return Ok(Start::NoSlot);
        }
        match calls.builds.start_build(&Self::build_request(t, b)).await {
            Ok(build) => {
                self.recent.lock().unwrap_or_else(|e| e.into_inner()).insert(b.token.clone(), Instant::now());
                Ok(Start::Started(build))
            }
            Err(e) if e.is(ErrorKind::QuotaExceeded) => Ok(Start::NoSlot),
            Err(e) => Err(e.into()),
        }
    }

    /// Starts or follows the build in `b`; returns the updated record.
    async fn follow(
        &self,
        calls: &Calls<'_>,
        t: &NodeTarget<'_>,
        mut b: BuildStatus,
        events: &mut Vec<Event>,
    ) -> Result<BuildStatus, ReconcileError> {
        self.recorded(&b);
        let build = match &b.id {
            None => match self.start(calls, t, &b, events).await? {
                Start::NoSlot => {
                    b.state = BuildState::Queued;
                    return Ok(b);
                }
                Start::Started(build) => {
                    events.push(Event::normal("BuildStarted", format!("{} build {}", b.action, build.id)));
                    Some(build)
                }
            },
            Some(id) => calls.builds.builds(std::slice::from_ref(id)).await?.into_iter().next(),
        };
        let Some(build) = build else {
            // The build is unknown (its record was lost): count it as failed.
            b.state = BuildState::Failed;
            b.message = Some("the build can no longer be found".into());
            b.failures += 1;
            return Ok(b);
        };
        b.id = Some(build.id.clone());
        b.phase = build.phase.clone();
        b.logs = build.logs.clone().or(b.logs);
        b.state = build_state(build.state);
        match b.state {
            BuildState::Succeeded => {
                // `failures` is reset once the instance is seen: a success that
                // leaves no instance counts as a failure.
                b.message = None;
                events.push(Event::normal("BuildSucceeded", format!("{} build {}", b.action, build.id)));
            }
            s if s.finished() => {
                b.failures += 1;
                b.message = build.message.clone().or_else(|| Some(format!("build {}", s.as_str())));
                events.push(Event::warning(
                    "BuildFailed",
                    format!(
                        "{} build {}: {}; logs: {}",
                        b.action,
                        build.id,
                        b.message.as_deref().unwrap_or(""),
                        b.logs.as_deref().unwrap_or("-")
                    ),
                ));
            }
            _ => {}
        }
        Ok(b)
    }

    /// `Progressing` and `Ready` while a build is queued or runs, and when to look again.
    fn build_conditions(&self, t: &NodeTarget<'_>, b: &BuildStatus, r: &mut Reconciled<NodeStatus>) {
        let (g, now) = (t.generation, t.now);
        let (why, message, after) = match b.state {
            BuildState::Queued => (
                reason::QUEUED,
                format!("waiting for a build slot ({} builds at once)", self.config.max_concurrent_builds),
                self.config.poll_in_flight,
            ),
            BuildState::Pending => (reason::BUILDING, format!("{} build starting", b.action), Duration::ZERO),
            _ => (
                reason::BUILDING,
                format!(
                    "{} build {}: {}",
                    b.action,
                    b.id.as_deref().unwrap_or("starting"),
                    b.phase.as_deref().unwrap_or("STARTING")
                ),
                self.config.poll_in_flight,
            ),
        };
        r.conditions.push(Condition::progressing(why, message.clone(), g, now));
        r.conditions.push(Condition::not_ready(why, message, g, now));
        r.requeue(after);
    }

    /// Observe → build if needed → report, for one node.
    async fn reconcile_node(
        &self,
        gate: &dyn CallGate,
        t: &NodeTarget<'_>,
    ) -> Result<Reconciled<NodeStatus>, ReconcileError> {
        let calls = self.calls(gate);
        let mut r = t.report();
        let (g, now) = (t.generation, t.now);
        let shape = instance_hash(t.namespace, t.name, t.spec);
        let want = provision_hash(&shape, t.spec);

        // 1. A build in flight: start or follow it.
        if let Some(b) = t.status.build.clone().filter(|b| !b.state.finished()) {
            let b = self.follow(&calls, t, b, &mut r.events).await?;
            if b.state == BuildState::Succeeded && b.action == BuildAction::Apply {
                r.status.applied_hash = b.hash.clone();
            }
            r.status.build = Some(b.clone());
            if !b.state.finished() {
                r.conditions.push(Condition::new(
                    ConditionType::Synced,
                    true,
                    reason::BUILD_IN_FLIGHT,
                    format!("generation {g} is being applied"),
                    Some(g),
                    now,
                ));
                self.build_conditions(t, &b, &mut r);
                return Ok(r);
            }
        }

        // 2. Observe the instance and decide. A recent batched observation
        // answers only a settled node, and only to confirm that nothing is to
        // be done with the instance status records; anything else is decided
        // on a fresh read.
        let mut max_age = if t.fresh || !super::settled(&t.status.conditions, g) {
            Duration::ZERO
        } else {
            self.observer.stale_after()
        };
        let (instances, decided) = loop {
            let instances = self.node_instances(&calls, t.uid, max_age).await?;
            let current = current_instance(&instances, &shape);
            let decided = need(&r.status, &want, &Seen { current, all: &instances }, self.config.max_failures);
            let confirms = matches!(decided, Need::Nothing) && current.map(|i| &i.id) == r.status.instance_id.as_ref();
            if max_age.is_zero() || confirms {
                break (instances, decided);
            }
            max_age = Duration::ZERO;
        };
        let current = current_instance(&instances, &shape);
        let failures = match decided {
            Need::Nothing => {
                let Some(instance) = current else { return Ok(r) };
                if let Some(b) = r.status.build.as_mut() {
                    b.failures = 0;
                    b.message = None;
                }
                self.ready(&calls, t, instance, max_age, &mut r).await?;
                return Ok(r);
            }
            Need::GiveUp => {
                let mut b = r.status.build.clone().unwrap_or_default();
                if b.state == BuildState::Succeeded && b.message.is_none() {
                    // It succeeded yet left no instance: that was a failure too.
                    b.failures += 1;
                    b.message = Some(format!(
                        "build {} succeeded but no instance is tagged {TAG_UID}={}",
                        b.id.as_deref().unwrap_or("?"),
                        t.uid
                    ));
                    r.status.build = Some(b.clone());
                }
                let why = format!(
                    "{} builds failed for this spec; last: {}; logs: {}",
                    b.failures,
                    b.message.as_deref().unwrap_or("?"),
                    b.logs.as_deref().unwrap_or("-")
                );
                r.conditions = vec![
                    Condition::sync_failed(reason::BUILD_FAILED, why.clone(), g, now),
                    Condition::degraded(reason::BUILD_FAILED, why.clone(), g, now),
                    Condition::settled(reason::BUILD_FAILED, why.clone(), g, now),
                    Condition::not_ready(reason::BUILD_FAILED, why, g, now),
                ];
                return Ok(r);
            }
            Need::Recover { why } => {
                r.events.push(Event::warning("DriftDetected", format!("{why}; provisioning it again")));
                r.status.incarnation += 1;
                0
            }
            Need::Build { failures } => failures,
        };
        let restore_from = Self::restore_source(&calls, t).await?;
        let intent = Self::intent(t, r.status.incarnation, BuildAction::Apply, &want, failures, restore_from);
        if let Some(b) = r.status.build.clone().filter(|_| failures > 0) {
            let why = format!(
                "build failed ({}); retrying: {}",
                b.message.as_deref().unwrap_or("?"),
                b.logs.as_deref().unwrap_or("-")
            );
            r.conditions.push(Condition::degraded(reason::BUILD_FAILED, why, g, now));
            r.conditions.push(Condition::sync_failed(reason::BUILD_FAILED, "retrying", g, now));
        } else {
            r.conditions.push(Condition::new(
                ConditionType::Synced,
                true,
                reason::BUILD_IN_FLIGHT,
                format!("generation {g} is being applied"),
                Some(g),
                now,
            ));
        }
        // Until the build's instance is seen, no instance is the node's.
        if let Some(old) = r.status.instance_id.take() {
            self.observer.replaced(&old);
        }
        r.status.private_ip = None;
        r.status.build = Some(intent.clone());
        self.build_conditions(t, &intent, &mut r);
        if failures > 0 {
            r.requeue_after = Some(self.config.poll_in_flight);
        }
        Ok(r)
    }

    /// The node's instances (not its data-volume helpers) as observed at
    /// most `max_age` ago, in a batch with other nodes.
    async fn node_instances(
        &self,
        calls: &Calls<'_>,
        uid: &str,
        max_age: Duration,
    ) -> Result<Vec<Instance>, ReconcileError> {
        let all = self.observer.instances(&calls.ec2, uid, max_age).await?;
        Ok(all.into_iter().filter(crate::provision::is_node_instance).collect())
    }

    /// Ready = running, EC2 status checks passed, the health endpoint answers,
    /// and (behind a load balancer) the target is healthy. The status checks
    /// may be answered from an observation `max_age` old.
    async fn ready(
        &self,
        calls: &Calls<'_>,
        t: &NodeTarget<'_>,
        i: &Instance,
        max_age: Duration,
        r: &mut Reconciled<NodeStatus>,
    ) -> Result<(), ReconcileError> {
        let (g, now) = (t.generation, t.now);
        let spec = t.spec;
        if let Some(old) = t.status.instance_id.as_deref().filter(|old| *old != i.id) {
            self.observer.replaced(old);
        }
        r.status.instance_id = Some(i.id.clone());
        r.status.private_ip = i.private_ip.clone();
        if let Some((_, volume)) = i.volumes.iter().find(|(d, _)| d == userdata::DATA_DEVICE) {
            let restored = t.status.build.as_ref().and_then(|b| b.restore_from.as_deref());
            let started = match restored {
                Some(snapshot) => format!("restored from snapshot {snapshot}"),
                None => "it started empty".to_string(),
            };
            match t.status.volume_id.as_ref() {
                Some(old) if old != volume => r.events.push(Event::warning(
                    "DataVolumeReplaced",
                    format!("data volume {old} is gone; {volume} now holds the node's data directory ({started})"),
                )),
                // A set's member may instead have taken back its
                // predecessor's volume (the build does not say which).
                None if restored.is_some() && t.owner.is_none() => {
                    r.events.push(Event::normal("DataVolumeRestored", format!("data volume {volume}: {started}")))
                }
                _ => {}
            }
            r.status.volume_id = Some(volume.clone());
        }
        r.conditions.push(Condition::synced(g, now));
        r.conditions.push(Condition::settled(reason::PROVISIONED, "", g, now));
        let mut problems = vec![];
        // A failed (not merely pending) EC2 status check is a verdict: the
        // instance is impaired, Degraded even if it was never Ready.
        let mut impaired = false;
        if i.state != InstanceState::Running {
            problems.push(format!("instance {} is {:?}", i.id, i.state));
        } else {
            let checks = self.observer.checks(&calls.ec2, &i.id, max_age).await?;
            impaired = checks.as_ref().is_some_and(|c| c.failed());
            if impaired {
                problems.push(format!("instance {} failed its EC2 status checks (impaired)", i.id));
            } else if !checks.as_ref().is_some_and(|c| c.passed()) {
                problems.push("EC2 status checks have not passed yet".to_string());
            }
        }
        if problems.is_empty()
            && self.config.probe_health
            && let Some(hc) = &spec.health_check
        {
            let host = self.config.health_host.clone().or_else(|| i.private_ip.clone()).unwrap_or_default();
            let url = format!("http://{host}:{}{}", hc.port, hc.path);
            match self.http.get(&url).send().await {
                Ok(resp) if resp.status().is_success() => {}
                Ok(resp) => problems.push(format!("{url} answered {}", resp.status())),
                Err(e) => problems.push(format!("{url} did not answer: {e}")),
            }
        }
        if problems.is_empty()
            && let Some(lb) = &spec.load_balancer
        {
            let health = calls.targets.target_health(&lb.target_group_arn).await?;
            match health.iter().find(|h| h.id == i.id) {
                Some(h) if h.state == "healthy" => {}
                Some(h) => problems.push(format!("target {} is {} in its target group", i.id, h.state)),
                None => problems.push(format!("instance {} is not registered in its target group", i.id)),
            }
        }
        // An alarm that cannot be kept does not hide the node's health.
        let firing = match self.alarms(calls, t, i, r).await {
            Ok(firing) => firing,
            Err(e) if matches!(e.retry(), Retry::Drop | Retry::Later(_)) => return Err(e),
            Err(e) => {
                r.events.push(Event::warning(e.reason(), e.to_string()));
                r.conditions.push(Condition::sync_failed(e.reason(), e.to_string(), g, now));
                vec![]
            }
        };
        // Backups follow the same rule: a snapshot that cannot be taken does
        // not hide the node's health.
        match self.backup(calls, t, r).await {
            Ok(()) => {}
            Err(e) if matches!(e.retry(), Retry::Drop | Retry::Later(_)) => return Err(e),
            Err(e) => {
                r.events.push(Event::warning(e.reason(), format!("backup: {e}")));
                r.conditions.push(Condition::sync_failed(e.reason(), format!("backup: {e}"), g, now));
            }
        }
        let was_ready =
            t.status.conditions.iter().any(|c| c.type_ == ConditionType::Ready && c.status == ConditionStatus::True);
        if problems.is_empty() {
            r.conditions.push(Condition::ready(reason::NODE_HEALTHY, format!("{} running and healthy", i.id), g, now));
            r.requeue(self.config.health_interval);
        } else {
            r.conditions.push(Condition::not_ready(reason::NOT_HEALTHY, problems.join("; "), g, now));
            r.requeue(self.config.poll_in_flight);
        }
        // Degraded: an impaired instance or a firing alarm is a verdict (even
        // before the node was ever Ready); failing checks are once it was.
        let degraded = if impaired {
            Some((reason::INSTANCE_IMPAIRED, problems.join("; ")))
        } else if !firing.is_empty() {
            Some((reason::ALARM_FIRING, firing.join("; ")))
        } else if was_ready && !problems.is_empty() {
            Some((reason::HEALTH_CHECK_FAILING, problems.join("; ")))
        } else {
            None
        };
        // Not Degraded once healthy, or once the alarm that made it so
        // stopped; a node failing its checks keeps the Degraded it has (the
        // pass after the one that saw it go down no longer sees it Ready).
        let alarm_cleared = t.status.conditions.iter().any(|c| {
            c.type_ == ConditionType::Degraded && c.status == ConditionStatus::True && c.reason == reason::ALARM_FIRING
        });
        match degraded {
            Some((why, message)) => r.conditions.push(Condition::degraded(why, message, g, now)),
            None if problems.is_empty() || alarm_cleared => r.conditions.push(Condition::not_degraded(g, now)),
            None => {}
        }
        Ok(())
    }

    /// Keeps the node's alarms ([`alarms`]) on instance `i` and says which
    /// fire. The names of alarms not yet recorded are recorded first (this
    /// pass makes no call; the next creates them), so teardown always finds
    /// every alarm from status.
    async fn alarms(
        &self,
        calls: &Calls<'_>,
        t: &NodeTarget<'_>,
        i: &Instance,
        r: &mut Reconciled<NodeStatus>,
    ) -> Result<Vec<String>, ReconcileError> {
        let uid = t.uid.to_string();
        let wanted = alarms::wanted(&uid, &t.key(), t.spec, &i.id);
        let recorded: Vec<String> = t.status.alarms.iter().map(|a| a.name.clone()).collect();
        let new: Vec<&str> =
            wanted.iter().map(|w| w.name.as_str()).filter(|n| !recorded.iter().any(|r| r == n)).collect();
        if !new.is_empty() {
            r.status.alarms.extend(new.into_iter().map(|name| AlarmStatus { name: name.to_string(), state: None }));
            r.requeue(Duration::ZERO);
            return Ok(vec![]);
        }
        if recorded.is_empty() {
            return Ok(vec![]);
        }
        // Read as the node's without another tag check: those it has read before.
        let known: Vec<String> = t.status.alarms.iter().filter(|a| a.state.is_some()).map(|a| a.name.clone()).collect();
        let done = alarms::sync(&calls.alarms, &uid, &t.key(), &wanted, &recorded, &known).await?;
        // Someone else's alarm of a wanted name stays recorded (unread), so
        // its name is not recorded again and again.
        r.status.alarms = done
            .readings
            .iter()
            .map(|a| AlarmStatus { name: a.name.clone(), state: a.state.clone() })
            .chain(
                done.foreign
                    .iter()
                    .filter(|n| wanted.iter().any(|w| &w.name == *n))
                    .map(|n| AlarmStatus { name: n.clone(), state: None }),
            )
            .collect();
        if !done.foreign.is_empty() {
            return Err(ReconcileError::Conflict(format!(
                "CloudWatch alarm(s) {} exist and are not this node's (no tag {TAG_UID}={uid}); nothing was changed",
                done.foreign.join(", ")
            )));
        }
        Ok(done
            .readings
            .iter()
            .filter(|a| a.state.as_deref() == Some("ALARM"))
            .map(|a| format!("alarm {} is in ALARM: {}", a.name, a.state_reason))
            .collect())
    }

    /// Takes and prunes the data volume's snapshots ([`backup`]): on the
    /// schedule, and once per `mooring node snapshot` request.
    async fn backup(
        &self,
        calls: &Calls<'_>,
        t: &NodeTarget<'_>,
        r: &mut Reconciled<NodeStatus>,
    ) -> Result<(), ReconcileError> {
        let spec = t.spec.data_volume.backup.as_ref();
        let status = r.status.backup.clone().unwrap_or_default();
        if spec.is_none() && t.snapshot_request.is_none() && status.in_flight.is_none() {
            return Ok(());
        }
        let Some(volume_id) = r.status.volume_id.clone() else { return Ok(()) };
        let key = t.key();
        let node = backup::Backed { uid: t.uid, key: &key, volume_id: &volume_id, spec, user_tags: &t.spec.tags };
        let pass = backup::sync(&calls.snapshots, &node, &status, t.snapshot_request, t.now).await?;
        r.events.extend(pass.events);
        if let Some(d) = pass.requeue {
            r.requeue(d);
        }
        r.status.backup = Some(pass.status);
        Ok(())
    }

    /// Tears a node down with a `destroy` build (the instance is terminated, the
    /// data volume deleted or kept per `dataVolume.deleteOnNodeDelete`). Under
    /// `deletionPolicy: Retain` nothing in AWS is touched.
    async fn cleanup_node(
        &self,
        gate: &dyn CallGate,
        t: &NodeTarget<'_>,
    ) -> Result<Teardown<NodeStatus>, ReconcileError> {
        if t.spec.deletion_policy == DeletionPolicy::Retain {
            return Ok(Teardown::Done);
        }
        let calls = self.calls(gate);
        let mut r = t.report();
        // The alarms first: they watch the instance that is about to go.
        // Someone else's alarm of a recorded name is left, and forgotten.
        if !t.status.alarms.is_empty() {
            let recorded: Vec<String> = t.status.alarms.iter().map(|a| a.name.clone()).collect();
            let done = alarms::sync(&calls.alarms, t.uid, &t.key(), &[], &recorded, &[]).await?;
            let deleted: Vec<&String> = recorded.iter().filter(|n| !done.foreign.contains(n)).collect();
            r.events.push(Event::normal("AlarmsDeleted", format!("deleted {deleted:?}")));
            if !done.foreign.is_empty() {
                r.events.push(Event::warning(
                    reason::CONFLICT,
                    format!("left alarm(s) {} in place: they are not this node's", done.foreign.join(", ")),
                ));
            }
            r.status.alarms.clear();
        }

        // An apply build that never started (its project is not the install's,
        // so nothing could have run) left nothing to tear down.
        if let Some(b) = t.status.build.as_ref().filter(|b| b.action == BuildAction::Apply && b.id.is_none()) {
            let project = b.project.clone().unwrap_or_else(|| t.spec.provisioner.codebuild_project.clone());
            if let Err(ReconcileError::Conflict(_)) = self.ensure_project(&calls, t, &project, &mut r.events).await
                && self.node_instances(&calls, t.uid, Duration::ZERO).await?.is_empty()
            {
                return Ok(Teardown::Done);
            }
        }
        let build = match t.status.build.clone() {
            Some(b) if !b.state.finished() => self.follow(&calls, t, b, &mut r.events).await?,
            other => other.unwrap_or_default(),
        };
        if !build.state.finished() {
            r.status.build = Some(build.clone());
            self.build_conditions(t, &build, &mut r);
            return Ok(Teardown::Pending(r));
        }
        let destroyed = build.action == BuildAction::Destroy && build.state == BuildState::Succeeded;
        if destroyed && self.node_instances(&calls, t.uid, Duration::ZERO).await?.is_empty() {
            // The backups go once the volume is gone (a destroy that failed
            // leaves both); a kept volume keeps them.
            if t.spec.data_volume.delete_on_node_delete && t.status.backup.is_some() {
                let cleared = backup::delete_all(&calls.snapshots, t.uid).await?;
                if !cleared.deleted.is_empty() {
                    r.events
                        .push(Event::normal("SnapshotDeleted", format!("deleted {:?} with the node", cleared.deleted)));
                }
                if !cleared.left.is_empty() {
                    r.events.push(Event::warning(
                        "SnapshotNotDeleted",
                        format!("left {} in place: {}", cleared.left.len(), cleared.left.join("; ")),
                    ));
                }
                if cleared.pending > 0 {
                    r.requeue(backup::POLL);
                    return Ok(Teardown::Pending(r));
                }
            }
            return Ok(Teardown::Done);
        }
        if build.action == BuildAction::Destroy && build.failures >= self.config.max_failures {
            return Err(ReconcileError::GaveUp(format!(
                "destroy failed {} times: {}; logs: {}",
                build.failures,
                build.message.unwrap_or_default(),
                build.logs.unwrap_or_default()
            )));
        }
        let hash = provision_hash(&instance_hash(t.namespace, t.name, t.spec), t.spec);
        let failures = if build.action == BuildAction::Destroy { build.failures } else { 0 };
        let intent = Self::intent(t, t.status.incarnation, BuildAction::Destroy, &hash, failures, None);
        r.status.build = Some(intent.clone());
        self.build_conditions(t, &intent, &mut r);
        Ok(Teardown::Pending(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::Tags;

    fn instance(id: &str, state: InstanceState, volume: bool) -> Instance {
        Instance {
            id: id.into(),
            state,
            instance_type: "t3.micro".into(),
            ami: "ami-1".into(),
            subnet_id: None,
            private_ip: None,
            availability_zone: None,
            tags: Tags::new(),
            volumes: if volume { vec![(userdata::DATA_DEVICE.to_string(), "vol-1".to_string())] } else { vec![] },
        }
    }

    fn status(applied: bool, instance: Option<&str>, build: Option<(BuildState, u32)>) -> NodeStatus {
        NodeStatus {
            applied_hash: applied.then(|| "h".to_string()),
            instance_id: instance.map(str::to_string),
            volume_id: Some("vol-1".into()),
            build: build.map(|(state, failures)| BuildStatus {
                action: BuildAction::Apply,
                hash: Some("h".into()),
                state,
                failures,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn what_a_node_needs_as_a_table() {
        let running = instance("i-1", InstanceState::Running, true);
        let no_volume = instance("i-1", InstanceState::Running, false);
        let gone = instance("i-1", InstanceState::ShuttingDown, true);
        let recover = |s: &Need| matches!(s, Need::Recover { .. });
        type Case<'a> = (NodeStatus, Option<&'a Instance>, Vec<Instance>, fn(&Need) -> bool);
        let cases: Vec<Case<'_>> = vec![
            // Spec changed (another hash wanted): a build.
            (status(true, Some("i-1"), Some((BuildState::Succeeded, 0))), None, vec![running.clone()], |n| {
                *n == Need::Build { failures: 0 }
            }),
            // Running as wanted.
            (status(true, Some("i-1"), Some((BuildState::Succeeded, 0))), Some(&running), vec![running.clone()], |n| {
                *n == Need::Nothing
            }),
            // Recorded instance terminated out of band: recover (new incarnation).
            (status(true, Some("i-1"), Some((BuildState::Succeeded, 0))), None, vec![gone.clone()], recover),
            (status(true, Some("i-1"), Some((BuildState::Succeeded, 0))), None, vec![], recover),
            // The data volume was detached or deleted: recover.
            (status(true, Some("i-1"), None), Some(&no_volume), vec![no_volume.clone()], recover),
            // A build succeeded but no instance was ever seen: counts as a failure.
            (status(true, None, Some((BuildState::Succeeded, 0))), None, vec![], |n| *n == Need::Build { failures: 1 }),
            (status(true, None, Some((BuildState::Succeeded, 2))), None, vec![], |n| *n == Need::GiveUp),
            (status(false, None, Some((BuildState::Failed, 2))), None, vec![], |n| *n == Need::Build { failures: 2 }),
            (status(false, None, Some((BuildState::Failed, 3))), None, vec![], |n| *n == Need::GiveUp),
        ];
        for (i, (status, current, all, check)) in cases.into_iter().enumerate() {
            let want = if i == 0 { "h2" } else { "h" };
            let got = need(&status, want, &Seen { current, all: &all }, 3);
            assert!(check(&got), "case {i}: {got:?}");
        }
    }
}
