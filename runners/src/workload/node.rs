//! Nodes: EC2 instances provisioned through builds (CodeBuild, or local
//! subprocesses with `--node-builds local`) that run `mooring-provisioner`.
//!
//! A build is an intent first: the reconcile that decides a build is needed
//! only records `{action, token, hash, state: PENDING}` in status; the next one
//! starts the build with that token as CodeBuild's idempotency token and records
//! the build id. A crash between the two starts the same build again (CodeBuild
//! returns the one it started; the local stand-in finds it by token), and the
//! provisioner looks for the instance by tag before creating anything, so a
//! crash at any point leaves exactly one instance.
//!
//! Builds beyond the concurrency limit (and builds CodeBuild refuses with its
//! account limit) wait with `Progressing=True`, reason `Queued`.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use api_types::common::DeletionPolicy;
use api_types::condition::{ConditionStatus, ConditionType};
use api_types::node::{BuildStatus, NodeSpec, NodeStatus};
use serde_json::json;

use super::{Event, Report, RunError, Target, Teardown, condition};
use crate::cloud::codebuild::{Build, BuildRequest, BuildState, ProjectInput};
use crate::cloud::ec2::{Instance, InstanceState};
use crate::cloud::gated::Gated;
use crate::cloud::{Builds, Ec2, ErrorKind, NodeCloud, TAG_UID, TargetGroups};
use crate::gate::CallGate;
use crate::names;
use crate::provision::{Action, ProvisionRequest, TAG_INSTANCE_HASH, instance_hash, userdata};

/// A node, as the runner sees it.
pub type NodeTarget<'a> = Target<'a, NodeSpec, NodeStatus>;

/// The buildspec of the provisioner project (also in `deploy/codebuild/`).
pub const BUILDSPEC: &str = include_str!("../../../deploy/codebuild/node-provisioner.yml");

/// Settings of the node runner.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Look again this soon while a build runs or the node is not ready yet.
    pub poll_in_flight: Duration,
    /// Look at a ready node's health this often.
    pub health_interval: Duration,
    /// Builds this replica runs at once (CodeBuild's account default is 20).
    pub max_concurrent_builds: usize,
    /// Failed builds of one spec before Mooring stops retrying (until the spec changes).
    pub max_failures: u32,
    /// Connect health checks here instead of the instance's private IP (local
    /// development, tests).
    pub health_host: Option<String>,
    /// Probe `spec.healthCheck` over HTTP. Off for the simulated cloud, whose
    /// instances have no network (its private IPs are not to be dialled).
    pub probe_health: bool,
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
            max_concurrent_builds: 20,
            max_failures: 3,
            health_host: None,
            probe_health: true,
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

/// The node runner: one per controller.
pub struct Nodes {
    cloud: NodeCloud,
    config: NodeConfig,
    /// Tokens of builds this replica started and has not seen finish.
    running: Mutex<HashSet<String>>,
    /// Projects known to exist with the current buildspec.
    projects: Mutex<HashSet<String>>,
    http: reqwest::Client,
}

struct Calls<'a> {
    ec2: Gated<'a, dyn Ec2>,
    builds: Gated<'a, dyn Builds>,
    targets: Gated<'a, dyn TargetGroups>,
}

/// What EC2 must look like for this spec: the instance's shape, the data
/// volume and the target group. Labels and the deletion policy are not in it,
/// so changing them starts no build.
/// `instance` is [`instance_hash`] of the spec (computed once by the caller:
/// it renders the user data).
pub fn provision_hash(instance: &str, spec: &NodeSpec) -> String {
    let json = json!({
        "instance": instance,
        "dataVolume": spec.data_volume,
        "loadBalancer": spec.load_balancer,
        "ports": spec.ports,
        "healthCheck": spec.health_check,
    });
    names::short_hash(&json.to_string(), 16)
}

fn finished(b: &BuildStatus) -> bool {
    !matches!(b.state.as_deref(), None | Some("PENDING") | Some("IN_PROGRESS"))
}

impl Nodes {
    pub fn new(cloud: NodeCloud, config: NodeConfig) -> Nodes {
        Nodes {
            cloud,
            config,
            running: Mutex::default(),
            projects: Mutex::default(),
            http: reqwest::Client::builder().timeout(Duration::from_secs(3)).no_proxy().build().unwrap_or_default(),
        }
    }

    fn calls<'a>(&'a self, gate: &'a dyn CallGate) -> Calls<'a> {
        Calls {
            ec2: Gated::new(self.cloud.ec2.as_ref(), gate),
            builds: Gated::new(self.cloud.builds.as_ref(), gate),
            targets: Gated::new(self.cloud.targets.as_ref(), gate),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The StartBuild request of a build intent: the environment
    /// `mooring-provisioner` reads, and the intent's token.
    pub fn build_request(target: &NodeTarget<'_>, action: Action, token: &str) -> BuildRequest {
        let req = ProvisionRequest {
            action,
            token: token.to_string(),
            uid: target.uid.to_string(),
            namespace: target.namespace.to_string(),
            name: target.name.to_string(),
            generation: target.generation,
            spec: target.spec.clone(),
        };
        BuildRequest {
            project: target.spec.provisioner.codebuild_project.clone(),
            env: req.to_env(),
            idempotency_token: token.to_string(),
        }
    }

    async fn ensure_project(&self, calls: &Calls<'_>, name: &str) -> Result<(), RunError> {
        if self.projects.lock().unwrap_or_else(|e| e.into_inner()).contains(name) {
            return Ok(());
        }
        let p = &self.config.project;
        let input = ProjectInput {
            name: name.to_string(),
            description: "Mooring node provisioner: runs mooring-provisioner for one node".into(),
            buildspec: BUILDSPEC.to_string(),
            image: p.image.clone(),
            compute_type: p.compute_type.clone(),
            service_role: p.service_role.clone(),
            source_location: p.source_location.clone(),
            timeout_minutes: p.timeout_minutes,
            tags: [("mooring:component".to_string(), "node-provisioner".to_string())].into(),
        };
        match calls.builds.project(name).await? {
            None => {
                calls.builds.create_project(&input).await?;
            }
            // An endpoint that does not report the buildspec is taken at its word.
            Some(existing) if existing.buildspec.as_deref().is_some_and(|b| b != BUILDSPEC) => {
                calls.builds.update_project(&input).await?;
            }
            Some(_) => {}
        }
        self.projects.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string());
        Ok(())
    }

    /// A new intent: recorded in status now, started by the next reconcile.
    fn intent(target: &NodeTarget<'_>, action: Action, hash: &str, failures: u32) -> BuildStatus {
        let sequence = target.status.build.as_ref().map_or(0, |b| b.sequence) + 1;
        BuildStatus {
            action: action.as_str().to_string(),
            token: names::client_token(target.uid, &format!("build/{}/{hash}/{sequence}", action.as_str()), 0, 64),
            hash: Some(hash.to_string()),
            state: Some("PENDING".into()),
            sequence,
            failures,
            ..Default::default()
        }
    }

    /// Starts or follows the build in `b`; returns the updated record.
    async fn follow(
        &self,
        calls: &Calls<'_>,
        target: &NodeTarget<'_>,
        mut b: BuildStatus,
        events: &mut Vec<Event>,
    ) -> Result<BuildStatus, RunError> {
        let action = if b.action == "destroy" { Action::Destroy } else { Action::Apply };
        let build: Option<Build> = match &b.id {
            None => {
                // Take a slot before starting, atomically, so concurrent
                // reconciles cannot overshoot the limit.
                {
                    let mut running = self.running();
                    if !running.contains(&b.token) && running.len() >= self.config.max_concurrent_builds {
                        b.phase = Some("QUEUED".into());
                        return Ok(b);
                    }
                    running.insert(b.token.clone());
                }
                let started = match self.ensure_project(calls, &target.spec.provisioner.codebuild_project).await {
                    Ok(()) => calls.builds.start_build(&Self::build_request(target, action, &b.token)).await,
                    Err(e) => {
                        self.running().remove(&b.token);
                        return Err(e);
                    }
                };
                match started {
                    Ok(build) => {
                        events.push(Event::normal("BuildStarted", format!("{} build {}", b.action, build.id)));
                        Some(build)
                    }
                    Err(e) => {
                        self.running().remove(&b.token);
                        if e.is(ErrorKind::QuotaExceeded) {
                            b.phase = Some("QUEUED".into());
                            return Ok(b);
                        }
                        return Err(e.into());
                    }
                }
            }
            Some(id) => calls.builds.builds(std::slice::from_ref(id)).await?.into_iter().next(),
        };
        let Some(build) = build else {
            // The build is unknown (its record was lost): count it as failed.
            self.running().remove(&b.token);
            b.state = Some("FAILED".into());
            b.message = Some("the build can no longer be found".into());
            b.failures += 1;
            return Ok(b);
        };
        b.id = Some(build.id.clone());
        b.phase = build.phase.clone();
        b.logs = build.logs.clone().or(b.logs);
        b.state = Some(build.state.as_str().to_string());
        if build.state.finished() {
            self.running().remove(&b.token);
            if build.state == BuildState::Succeeded {
                // `failures` is reset once the instance is seen: a success that
                // leaves no instance counts as a failure.
                b.message = None;
                events.push(Event::normal("BuildSucceeded", format!("{} build {}", b.action, build.id)));
            } else {
                b.failures += 1;
                b.message = build.message.clone().or_else(|| Some(format!("build {}", build.state.as_str())));
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
        }
        Ok(b)
    }

    fn build_conditions(&self, target: &NodeTarget<'_>, b: &BuildStatus, report: &mut Report) {
        let (g, now) = (target.generation, target.now);
        let queued = b.id.is_none() && b.phase.as_deref() == Some("QUEUED");
        let (reason, message) = if queued {
            ("Queued", format!("waiting for a build slot ({} builds at once)", self.config.max_concurrent_builds))
        } else {
            let phase = b.phase.as_deref().unwrap_or("STARTING");
            ("Building", format!("{} build {}: {phase}", b.action, b.id.as_deref().unwrap_or("starting")))
        };
        report.conditions.push(condition(ConditionType::Progressing, true, reason, message.clone(), g, now));
        report.conditions.push(condition(ConditionType::Ready, ConditionStatus::False, reason, message, g, now));
        report.requeue_after =
            Some(if b.id.is_none() && !queued { Duration::ZERO } else { self.config.poll_in_flight });
    }

    /// Observe → build if needed → report, for one node.
    pub async fn reconcile_node(&self, gate: &dyn CallGate, target: &NodeTarget<'_>) -> Result<Report, RunError> {
        let calls = self.calls(gate);
        let mut report = Report::default();
        let (g, now) = (target.generation, target.now);
        let shape = instance_hash(target.namespace, target.name, target.spec);
        let want = provision_hash(&shape, target.spec);
        let mut applied = target.status.applied_hash.clone();
        let mut build = target.status.build.clone();
        if let Some(b) = build.take() {
            let b = if finished(&b) { b } else { self.follow(&calls, target, b, &mut report.events).await? };
            if b.state.as_deref() == Some("SUCCEEDED")
                && b.action == "apply"
                && target.status.build.as_ref().is_some_and(|old| !finished(old))
            {
                applied = b.hash.clone();
            }
            build = Some(b);
        }
        report.outputs.insert("build".into(), json!(build));
        report.outputs.insert("appliedHash".into(), json!(applied));
        if let Some(b) = build.as_ref().filter(|b| !finished(b)) {
            report.conditions.push(condition(
                ConditionType::Synced,
                true,
                "BuildInFlight",
                format!("generation {g} is being applied"),
                g,
                now,
            ));
            self.build_conditions(target, b, &mut report);
            return Ok(report);
        }
        let instances = self.instances(&calls, target.uid).await?;
        let current = instances.iter().find(|i| {
            i.tags.get(TAG_INSTANCE_HASH) == Some(&shape)
                && matches!(i.state, InstanceState::Running | InstanceState::Pending)
        });
        if applied.as_deref() != Some(want.as_str()) || current.is_none() {
            // Failures of this spec so far; a build that succeeded yet left no
            // instance counts as one (an endpoint whose builds run nothing
            // would otherwise be asked for builds forever).
            let last = build.as_ref().filter(|b| b.action == "apply" && b.hash.as_deref() == Some(&want));
            let vanished = last.is_some_and(|b| b.state.as_deref() == Some("SUCCEEDED"));
            let failures = last.map_or(0, |b| b.failures + u32::from(vanished));
            let mut failed_here = last.filter(|_| failures > 0).cloned();
            if let Some(b) = failed_here.as_mut().filter(|_| vanished) {
                b.failures = failures;
                b.message = Some(format!(
                    "build {} succeeded but no instance is tagged {TAG_UID}={}",
                    b.id.as_deref().unwrap_or("?"),
                    target.uid
                ));
                report.outputs.insert("build".into(), json!(b));
            }
            if let Some(b) = failed_here.as_ref().filter(|b| b.failures >= self.config.max_failures) {
                let why = format!(
                    "{} builds failed for this spec; last: {}; logs: {}",
                    b.failures,
                    b.message.as_deref().unwrap_or("?"),
                    b.logs.as_deref().unwrap_or("-")
                );
                report.conditions = vec![
                    condition(ConditionType::Synced, false, "BuildFailed", why.clone(), g, now),
                    condition(ConditionType::Degraded, true, "BuildFailed", why.clone(), g, now),
                    condition(ConditionType::Progressing, false, "BuildFailed", why.clone(), g, now),
                    condition(ConditionType::Ready, ConditionStatus::False, "BuildFailed", why, g, now),
                ];
                return Ok(report);
            }
            if applied.as_deref() == Some(want.as_str()) && !vanished {
                report.events.push(Event::warning(
                    "DriftDetected",
                    "the node's instance is gone or stopped; provisioning it again",
                ));
            }
            let intent = Self::intent(target, Action::Apply, &want, failures);
            report.outputs.insert("build".into(), json!(intent));
            if let Some(b) = failed_here {
                let why = format!(
                    "build failed ({}); retrying: {}",
                    b.message.as_deref().unwrap_or("?"),
                    b.logs.as_deref().unwrap_or("-")
                );
                report.conditions.push(condition(ConditionType::Degraded, true, "BuildFailed", why, g, now));
                report.conditions.push(condition(ConditionType::Synced, false, "BuildFailed", "retrying", g, now));
                self.build_conditions(target, &intent, &mut report);
                report.requeue_after = Some(self.config.poll_in_flight);
            } else {
                report.conditions.push(condition(
                    ConditionType::Synced,
                    true,
                    "BuildInFlight",
                    format!("generation {g} is being applied"),
                    g,
                    now,
                ));
                self.build_conditions(target, &intent, &mut report);
            }
            return Ok(report);
        }
        let Some(instance) = current else { return Ok(report) };
        if let Some(b) = build.as_ref().filter(|b| b.failures > 0) {
            report.outputs.insert("build".into(), json!(BuildStatus { failures: 0, message: None, ..b.clone() }));
        }
        self.ready(&calls, target, instance, &mut report).await?;
        Ok(report)
    }

    async fn instances(&self, calls: &Calls<'_>, uid: &str) -> Result<Vec<Instance>, RunError> {
        Ok(crate::provision::node_instances(&calls.ec2, uid).await?)
    }

    /// Ready = running, EC2 status checks passed, the health endpoint answers,
    /// and (behind a load balancer) the target is healthy.
    async fn ready(
        &self,
        calls: &Calls<'_>,
        target: &NodeTarget<'_>,
        i: &Instance,
        report: &mut Report,
    ) -> Result<(), RunError> {
        let (g, now) = (target.generation, target.now);
        let spec = target.spec;
        report.outputs.insert("instanceId".into(), json!(i.id));
        report.outputs.insert("privateIp".into(), json!(i.private_ip));
        let volume = i.volumes.iter().find(|(d, _)| d == userdata::DATA_DEVICE).map(|(_, v)| v.clone());
        if volume.is_some() {
            report.outputs.insert("volumeId".into(), json!(volume));
        }
        report.conditions.push(condition(
            ConditionType::Synced,
            true,
            "ReconcileSuccess",
            format!("generation {g} applied"),
            g,
            now,
        ));
        report.conditions.push(condition(ConditionType::Progressing, false, "Provisioned", "", g, now));
        let mut problems = vec![];
        if i.state != InstanceState::Running {
            problems.push(format!("instance {} is {:?}", i.id, i.state));
        } else {
            let checks = calls.ec2.instance_health(std::slice::from_ref(&i.id)).await?;
            if !checks.iter().any(|c| c.passed()) {
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
                Ok(r) if r.status().is_success() => {}
                Ok(r) => problems.push(format!("{url} answered {}", r.status())),
                Err(e) => problems.push(format!("{url} did not answer: {e}")),
            }
        }
        if problems.is_empty()
            && let Some(lb) = &spec.load_balancer
        {
            let health = calls.targets.target_health(&lb.target_group_arn).await?;
            match health.iter().find(|t| t.id == i.id) {
                Some(t) if t.state == "healthy" => {}
                Some(t) => problems.push(format!("target {} is {} in its target group", i.id, t.state)),
                None => problems.push(format!("instance {} is not registered in its target group", i.id)),
            }
        }
        let was_ready = target
            .status
            .conditions
            .iter()
            .any(|c| c.type_ == ConditionType::Ready && c.status == ConditionStatus::True);
        if problems.is_empty() {
            report.conditions.push(condition(
                ConditionType::Ready,
                true,
                "NodeHealthy",
                format!("{} running and healthy", i.id),
                g,
                now,
            ));
            report.conditions.push(condition(ConditionType::Degraded, false, "AsExpected", "", g, now));
            report.requeue_after = Some(self.config.health_interval);
        } else {
            let why = problems.join("; ");
            report.conditions.push(condition(
                ConditionType::Ready,
                ConditionStatus::False,
                "NotHealthy",
                why.clone(),
                g,
                now,
            ));
            if was_ready {
                report.conditions.push(condition(ConditionType::Degraded, true, "HealthCheckFailing", why, g, now));
            }
            report.requeue_after = Some(self.config.poll_in_flight);
        }
        Ok(())
    }

    /// Tears a node down with a `destroy` build (the instance is terminated, the
    /// data volume deleted or kept per `dataVolume.deleteOnNodeDelete`). Under
    /// `deletionPolicy: Retain` nothing in AWS is touched.
    pub async fn cleanup_node(&self, gate: &dyn CallGate, target: &NodeTarget<'_>) -> Result<Teardown, RunError> {
        if target.spec.deletion_policy == DeletionPolicy::Retain {
            return Ok(Teardown::Done);
        }
        let calls = self.calls(gate);
        let mut report = Report::default();
        let build = match target.status.build.clone() {
            Some(b) if !finished(&b) => self.follow(&calls, target, b, &mut report.events).await?,
            other => other.unwrap_or_default(),
        };
        if !finished(&build) {
            let b = build.clone();
            report.outputs.insert("build".into(), json!(b));
            self.build_conditions(target, &b, &mut report);
            return Ok(Teardown::Progress(report));
        }
        let destroyed = build.action == "destroy" && build.state.as_deref() == Some("SUCCEEDED");
        if destroyed && self.instances(&calls, target.uid).await?.is_empty() {
            return Ok(Teardown::Done);
        }
        if build.action == "destroy" && build.failures >= self.config.max_failures {
            return Err(RunError::Cloud(crate::cloud::CloudError::new(
                &crate::cloud::ops::START_BUILD,
                ErrorKind::Other,
                format!("destroy failed {} times: {}", build.failures, build.message.unwrap_or_default()),
            )));
        }
        let hash = provision_hash(&instance_hash(target.namespace, target.name, target.spec), target.spec);
        let failures = if build.action == "destroy" { build.failures } else { 0 };
        let intent = Self::intent(target, Action::Destroy, &hash, failures);
        report.outputs.insert("build".into(), json!(intent));
        self.build_conditions(target, &intent, &mut report);
        Ok(Teardown::Progress(report))
    }
}
