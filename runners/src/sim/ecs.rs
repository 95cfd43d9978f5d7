//! Simulated ECS: clusters, task definition revisions, services with
//! deployments that roll out, fail (deployment circuit breaker), roll back,
//! scale and drain as time passes; staged (blue/green, canary, linear)
//! service deployments live in [`staged`].

mod staged;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use tokio::time::Instant;

use self::staged::Staged;
use super::{ACCOUNT, Ctx, Inner, REGION, Slot, check_tags, faults, valid_name};
use crate::cloud::ecs::{
    DeploymentConfig, Ecs, HookAction, LoadBalancerRef, MAX_DESCRIBE_SERVICES, MAX_LISTED_TASKS, MAX_TASK_PROTECTION,
    NetworkConfig, RolloutState, Service, ServiceDeployment, ServiceInput, ServiceState, ServiceUpdate, SpotCapacity,
    StopKind, TaskDefinition, TaskDefinitionInput,
};
use crate::cloud::{CloudError, CloudResult, ErrorKind, Op, Tags, ops};

/// What ECS says when the circuit breaker stops a rollout.
pub(super) const CIRCUIT_BREAKER_REASON: &str = "ECS deployment circuit breaker: tasks failed to start.";

/// AWS refuses more target groups per service than this.
const MAX_LOAD_BALANCERS: usize = 5;

/// The ARN of a service.
pub(super) fn service_arn(cluster: &str, name: &str) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{name}")
}

/// The ARN of a service's `n`th running task (the simulation counts tasks; these name them).
fn task_arn(cluster: &str, service: &str, n: u32) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task/{cluster}/{service}.{n}")
}

/// The ARN of a task definition revision.
pub(super) fn task_definition_arn(family: &str, revision: i32) -> String {
    format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:{revision}")
}

/// The ECS facade of a [`super::SimCloud`].
pub(super) struct SimEcs(pub(super) Arc<Inner>);

/// A registered task definition revision.
#[derive(Debug, Clone)]
pub(super) struct TdRec {
    arn: String,
    family: String,
    revision: i32,
    active: bool,
    tags: Tags,
    images: Vec<String>,
    /// Container name → the port it maps, for load balancer checks.
    containers: Vec<(String, Option<u16>)>,
}

impl TdRec {
    fn to_task_definition(&self) -> TaskDefinition {
        TaskDefinition {
            arn: self.arn.clone(),
            family: self.family.clone(),
            revision: self.revision,
            active: self.active,
            tags: self.tags.clone(),
        }
    }

    fn failing(&self, marker: &str) -> bool {
        !marker.is_empty() && self.images.iter().any(|i| i.contains(marker))
    }
}

/// One deployment; `running` holds from `since` until `target` is reached
/// (after the task start delay).
#[derive(Debug, Clone)]
struct Dep {
    id: String,
    task_definition: String,
    primary: bool,
    target: u32,
    running: u32,
    since: Instant,
    rollout: RolloutState,
    reason: Option<String>,
    /// Its tasks never become healthy.
    failing: bool,
}

/// A service and its deployments (newest first).
#[derive(Debug, Clone)]
pub(super) struct SvcRec {
    arn: String,
    cluster: String,
    name: String,
    state: ServiceState,
    desired: u32,
    task_definition: String,
    network: Option<NetworkConfig>,
    load_balancers: Vec<LoadBalancerRef>,
    deployment: DeploymentConfig,
    grace: Option<u32>,
    tags: Tags,
    client_token: String,
    deployments: Vec<Dep>,
    /// When a DRAINING service becomes INACTIVE.
    inactive_at: Option<Instant>,
    /// Which creation under this name this is (1 for the first), for ids.
    generation: u64,
    deployments_started: u64,
    /// How many of its tasks have scale-in protection on (set from inside
    /// the task; a test sets it with [`super::SimCloud::protect_tasks`]).
    protected: u32,
    /// Service deployments of the staged strategies, oldest first.
    staged: Vec<Staged>,
    spot: Option<SpotCapacity>,
}

impl SvcRec {
    /// Brings the service up to `ctx.now`: tasks started, rollouts completed
    /// or failed (and rolled back), draining finished.
    fn settle(&mut self, ctx: &Ctx<'_>) {
        let now = ctx.now;
        match self.state {
            ServiceState::Inactive => return,
            ServiceState::Draining if self.inactive_at.is_some_and(|at| now >= at) => {
                self.state = ServiceState::Inactive;
                for d in &mut self.deployments {
                    d.running = 0;
                    d.target = 0;
                }
                return;
            }
            _ => {}
        }
        let delay = ctx.cfg.task_start_delay;
        if let Some(i) = self.staged.iter().rposition(Staged::advancing) {
            // Green's tasks start after the delay; blue keeps its own until the clean-up.
            let green = self.staged[i].green.clone();
            if let Some(dep) = self.deployments.iter_mut().find(|x| x.id == green)
                && !dep.failing
                && dep.running != dep.target
                && now >= dep.since + delay
            {
                dep.running = dep.target;
            }
            Staged::settle(self, i, ctx);
            if self.staged[i].advancing() {
                return;
            }
        }
        loop {
            let Some(p) = self.deployments.iter().position(|d| d.primary) else { return };
            let d = &mut self.deployments[p];
            if d.failing && d.target > 0 {
                // Tasks keep failing; the circuit breaker (if on) stops the rollout.
                let due = d.since + delay;
                if d.rollout != RolloutState::InProgress || now < due || !self.deployment.circuit_breaker {
                    return;
                }
                d.rollout = RolloutState::Failed;
                d.reason = Some(CIRCUIT_BREAKER_REASON.to_owned());
                d.running = 0;
                if !self.deployment.rollback {
                    return;
                }
                let failed_id = d.id.clone();
                let Some(q) = self.deployments.iter().position(|x| !x.primary && x.rollout != RolloutState::Failed)
                else {
                    return;
                };
                self.deployments[p].primary = false;
                let prev = &mut self.deployments[q];
                prev.primary = true;
                prev.target = self.desired;
                prev.since = due;
                prev.rollout = RolloutState::InProgress;
                prev.reason = Some(format!(
                    "ECS deployment circuit breaker: rolling back to deploymentId {} from {failed_id}.",
                    prev.id
                ));
                self.task_definition = prev.task_definition.clone();
                continue;
            }
            if d.running == d.target && d.rollout != RolloutState::InProgress {
                return;
            }
            let due = if d.running == d.target { d.since } else { d.since + delay };
            if now < due {
                return;
            }
            // ECS stops unprotected tasks first and keeps protected ones.
            d.running = d.target.max(d.running.min(self.protected));
            if d.rollout == RolloutState::InProgress {
                d.rollout = RolloutState::Completed;
                // The older deployments are drained; a failed one stays listed
                // until the next deployment.
                self.deployments.retain(|x| x.primary || x.rollout == RolloutState::Failed);
            }
            return;
        }
    }

    fn to_service(&self) -> Service {
        let mut deployments: Vec<_> = self.deployments.iter().filter(|d| d.primary).collect();
        deployments.extend(self.deployments.iter().filter(|d| !d.primary));
        Service {
            arn: self.arn.clone(),
            name: self.name.clone(),
            cluster: self.cluster.clone(),
            state: self.state,
            task_definition: self.task_definition.clone(),
            desired_count: self.desired,
            running_count: self.deployments.iter().map(|d| d.running).sum(),
            pending_count: self
                .deployments
                .iter()
                .filter(|d| d.rollout == RolloutState::InProgress)
                .map(|d| d.target.saturating_sub(d.running))
                .sum(),
            network: self.network.clone(),
            load_balancers: self.load_balancers.clone(),
            deployment: Some(self.deployment.clone()),
            health_check_grace_seconds: self.grace,
            current_service_deployment: self.staged.last().map(|d| d.arn.clone()),
            spot: self.spot,
            deployments: deployments
                .into_iter()
                .map(|d| crate::cloud::ecs::Deployment {
                    id: d.id.clone(),
                    primary: d.primary,
                    task_definition: d.task_definition.clone(),
                    desired_count: d.target,
                    running_count: d.running,
                    rollout: d.rollout,
                    rollout_reason: d.reason.clone(),
                })
                .collect(),
            tags: self.tags.clone(),
        }
    }

    /// Starts a new PRIMARY deployment of `task_definition`: the old primary
    /// keeps its tasks until the new one completes; failed ones are dropped.
    fn start_deployment(&mut self, task_definition: String, failing: bool, ctx: &Ctx<'_>) {
        self.deployments.retain(|d| d.rollout != RolloutState::Failed);
        for d in &mut self.deployments {
            d.primary = false;
        }
        self.deployments_started += 1;
        let r = faults::hash(
            ctx.cfg.seed,
            &[
                b"deployment",
                self.arn.as_bytes(),
                &self.generation.to_le_bytes(),
                &self.deployments_started.to_le_bytes(),
            ],
        );
        let dep = Dep {
            id: format!("ecs-svc/{:019}", r[0] % 10_000_000_000_000_000_000),
            task_definition: task_definition.clone(),
            primary: true,
            target: self.desired,
            running: 0,
            since: ctx.now,
            rollout: RolloutState::InProgress,
            reason: None,
            failing,
        };
        let green = dep.id.clone();
        let blue = self.deployments.iter().find(|d| d.rollout != RolloutState::Failed).map(|d| d.id.clone());
        self.deployments.insert(0, dep);
        self.task_definition = task_definition;
        if self.deployment.strategy.staged() {
            self.start_staged(blue, green, ctx);
        } else if let Some(i) = self.staged.iter().rposition(Staged::advancing) {
            // A rolling change ends a staged deployment in flight where it is.
            self.staged[i].supersede();
        }
    }

    /// A staged service deployment to the new primary `green`: one still in
    /// flight is superseded (its green stops; what served production keeps
    /// serving as the new blue).
    fn start_staged(&mut self, previous: Option<String>, green: String, ctx: &Ctx<'_>) {
        let blue = match self.staged.iter().rposition(Staged::advancing) {
            Some(i) => {
                let serving = self.staged[i].serving().map(str::to_owned);
                self.staged[i].supersede();
                serving
            }
            None => previous,
        };
        self.deployments.retain(|d| d.id == green || Some(&d.id) == blue.as_ref());
        let arn = format!(
            "arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/{}/{}/{}",
            self.cluster,
            self.name,
            green.rsplit('/').next().unwrap_or("0")
        );
        let config = self.deployment.clone();
        self.staged.push(Staged::new(arn, &config, blue, green, ctx));
    }

    /// The index of service deployment `arn`.
    fn staged_index(&self, arn: &str) -> Option<usize> {
        self.staged.iter().position(|d| d.arn == arn)
    }

    /// Sets the desired count; the primary deployment follows after the delay.
    fn set_desired(&mut self, n: u32, now: Instant) {
        self.desired = n;
        if let Some(d) = self.deployments.iter_mut().find(|d| d.primary)
            && d.target != n
        {
            d.target = n;
            d.since = now;
        }
    }

    /// DeleteService: DRAINING now, INACTIVE after the drain delay.
    fn begin_drain(&mut self, ctx: &Ctx<'_>) {
        self.set_desired(0, ctx.now);
        self.state = ServiceState::Draining;
        self.inactive_at = Some(ctx.now + ctx.cfg.drain_delay);
    }
}

/// Everything ECS holds.
#[derive(Default)]
pub(super) struct EcsState {
    pub(super) clusters: BTreeSet<String>,
    services: BTreeMap<(String, String), Slot<SvcRec>>,
    /// Services ever created per (cluster, name).
    pub(super) created: BTreeMap<(String, String), u64>,
    tds: BTreeMap<String, Slot<TdRec>>,
    /// ACTIVE revision ARNs per family, newest first.
    families: BTreeMap<String, Slot<Vec<String>>>,
    /// The last revision number used per family (deregistered ones included).
    revisions: BTreeMap<String, i32>,
}

fn invalid(op: &Op, msg: impl Into<String>) -> CloudError {
    CloudError::new(op, ErrorKind::Invalid, msg)
}

/// The name part of a service name or ARN.
fn short_name(name: &str) -> &str {
    if name.starts_with("arn:") { name.rsplit('/').next().unwrap_or(name) } else { name }
}

/// AWS's Fargate task size table.
fn fargate_size_ok(cpu: u32, memory: u32) -> bool {
    let step = |lo: u32, hi: u32, by: u32| (lo..=hi).contains(&memory) && memory.is_multiple_of(by);
    match cpu {
        256 => matches!(memory, 512 | 1024 | 2048),
        512 => step(1024, 4096, 1024),
        1024 => step(2048, 8192, 1024),
        2048 => step(4096, 16384, 1024),
        4096 => step(8192, 30720, 1024),
        8192 => step(16384, 61440, 4096),
        16384 => step(32768, 122880, 8192),
        _ => false,
    }
}

fn check_load_balancers(op: &Op, td: &TdRec, lbs: &[LoadBalancerRef]) -> CloudResult<()> {
    if lbs.len() > MAX_LOAD_BALANCERS {
        return Err(invalid(op, "InvalidParameterException: A service can have at most 5 load balancers."));
    }
    for lb in lbs {
        match td.containers.iter().find(|(n, _)| *n == lb.container_name) {
            None => {
                return Err(invalid(
                    op,
                    format!(
                        "InvalidParameterException: The container {} does not exist in the task definition.",
                        lb.container_name
                    ),
                ));
            }
            Some((_, port)) if *port != Some(lb.container_port) => {
                return Err(invalid(
                    op,
                    format!(
                        "InvalidParameterException: The container {} did not have a container port {} defined.",
                        lb.container_name, lb.container_port
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

impl EcsState {
    fn check_cluster(&self, op: &Op, cluster: &str) -> CloudResult<()> {
        if self.clusters.contains(cluster) {
            Ok(())
        } else {
            Err(CloudError::new(op, ErrorKind::MissingReference, "ClusterNotFoundException: Cluster not found."))
        }
    }

    /// The ARN a task definition reference (ARN, `family:revision` or
    /// `family` for the latest ACTIVE revision) points at, if registered.
    fn td_arn_of(&self, reference: &str) -> Option<String> {
        if reference.starts_with("arn:") {
            return self.tds.contains_key(reference).then(|| reference.to_owned());
        }
        match reference.rsplit_once(':') {
            Some((family, revision)) => {
                let arn = task_definition_arn(family, revision.parse().ok()?);
                self.tds.contains_key(&arn).then_some(arn)
            }
            None => self.families.get(reference)?.cur.as_ref()?.first().cloned(),
        }
    }

    fn td(&self, arn: &str) -> Option<&TdRec> {
        self.tds.get(arn)?.cur.as_ref()
    }

    /// The ACTIVE task definition a service may be pointed at.
    fn usable_td(&self, op: &Op, reference: &str) -> CloudResult<&TdRec> {
        let td = self.td_arn_of(reference).and_then(|arn| self.td(&arn));
        match td {
            Some(td) if td.active => Ok(td),
            Some(_) => Err(invalid(op, format!("ClientException: TaskDefinition is inactive: {reference}"))),
            None => Err(invalid(op, format!("ClientException: Unable to describe task definition {reference}."))),
        }
    }

    /// The service record, settled to now.
    fn settled(&mut self, cluster: &str, name: &str, ctx: &Ctx<'_>) -> Option<&mut Slot<SvcRec>> {
        let slot = self.services.get_mut(&(cluster.to_owned(), name.to_owned()))?;
        if let Some(rec) = slot.cur.as_mut() {
            rec.settle(ctx);
        }
        Some(slot)
    }

    pub(super) fn describe_services(
        &mut self,
        cluster: &str,
        names: &[String],
        ctx: &Ctx<'_>,
    ) -> CloudResult<Vec<Service>> {
        let op = ops::DESCRIBE_SERVICES;
        if names.is_empty() {
            return Err(invalid(&op, "InvalidParameterException: Services cannot be empty."));
        }
        if names.len() > MAX_DESCRIBE_SERVICES {
            return Err(invalid(
                &op,
                format!("InvalidParameterException: At most {MAX_DESCRIBE_SERVICES} services may be described."),
            ));
        }
        self.check_cluster(&op, cluster)?;
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for name in names.iter().map(|n| short_name(n)) {
            if !seen.insert(name) {
                continue;
            }
            if let Some(slot) = self.settled(cluster, name, ctx)
                && let Some(rec) = slot.view(ctx)
                && rec.state != ServiceState::Inactive
            {
                out.push(rec.to_service());
            }
        }
        Ok(out)
    }

    pub(super) fn create_service(&mut self, input: &ServiceInput, ctx: &Ctx<'_>) -> CloudResult<Service> {
        let op = ops::CREATE_SERVICE;
        self.check_cluster(&op, &input.cluster)?;
        if !valid_name(&input.name, 255) {
            return Err(invalid(&op, format!("InvalidParameterException: Invalid service name {:?}.", input.name)));
        }
        if input.client_token.len() > 36 {
            return Err(invalid(&op, "InvalidParameterException: clientToken is longer than 36 characters."));
        }
        check_tags(&op, &input.tags)?;
        if let Some(slot) = self.settled(&input.cluster, &input.name, ctx)
            && let Some(rec) = &slot.cur
        {
            match rec.state {
                ServiceState::Active if !input.client_token.is_empty() && rec.client_token == input.client_token => {
                    return Ok(rec.to_service());
                }
                ServiceState::Active => {
                    return Err(CloudError::new(
                        &op,
                        ErrorKind::AlreadyExists,
                        "InvalidParameterException: Creation of service was not idempotent.",
                    ));
                }
                ServiceState::Draining => {
                    return Err(CloudError::new(
                        &op,
                        ErrorKind::AlreadyExists,
                        "InvalidParameterException: Unable to Start a service that is still Draining.",
                    ));
                }
                ServiceState::Inactive => {}
            }
        }
        let td = self.usable_td(&op, &input.task_definition)?;
        check_load_balancers(&op, td, &input.load_balancers)?;
        let (td_arn, failing) = (td.arn.clone(), td.failing(&ctx.cfg.failing_image_marker));

        let key = (input.cluster.clone(), input.name.clone());
        let generation = {
            let n = self.created.entry(key.clone()).or_default();
            *n += 1;
            *n
        };
        let mut rec = SvcRec {
            arn: service_arn(&input.cluster, &input.name),
            cluster: input.cluster.clone(),
            name: input.name.clone(),
            state: ServiceState::Active,
            desired: input.desired_count,
            task_definition: td_arn.clone(),
            network: input.network.clone(),
            load_balancers: input.load_balancers.clone(),
            deployment: input.deployment.clone(),
            grace: input.health_check_grace_seconds,
            tags: input.tags.clone(),
            client_token: input.client_token.clone(),
            deployments: Vec::new(),
            inactive_at: None,
            generation,
            deployments_started: 0,
            protected: 0,
            staged: Vec::new(),
            spot: input.spot,
        };
        rec.start_deployment(td_arn, failing, ctx);
        rec.settle(ctx);
        let service = rec.to_service();
        *self.services.entry(key).or_default().write(ctx.now) = Some(rec);
        Ok(service)
    }

    pub(super) fn update_service(&mut self, update: &ServiceUpdate, ctx: &Ctx<'_>) -> CloudResult<Service> {
        let op = ops::UPDATE_SERVICE;
        self.check_cluster(&op, &update.cluster)?;
        let current = self.settled(&update.cluster, &update.name, ctx).and_then(|s| s.cur.clone());
        let Some(mut rec) = current.filter(|r| r.state != ServiceState::Inactive) else {
            return Err(CloudError::new(&op, ErrorKind::NotFound, "ServiceNotFoundException: Service not found."));
        };
        if rec.state != ServiceState::Active {
            return Err(CloudError::new(
                &op,
                ErrorKind::NotFound,
                "ServiceNotActiveException: Service was not ACTIVE.",
            ));
        }
        let (td_arn, failing) = match &update.task_definition {
            Some(r) => {
                let td = self.usable_td(&op, r)?;
                (td.arn.clone(), td.failing(&ctx.cfg.failing_image_marker))
            }
            None => {
                let failing = self.td(&rec.task_definition).is_some_and(|t| t.failing(&ctx.cfg.failing_image_marker));
                (rec.task_definition.clone(), failing)
            }
        };
        // The load balancers (new or kept) must fit the task definition (new or kept).
        if (update.load_balancers.is_some() || td_arn != rec.task_definition)
            && let Some(td) = self.td(&td_arn)
        {
            check_load_balancers(&op, td, update.load_balancers.as_deref().unwrap_or(&rec.load_balancers))?;
        }

        let mut redeploy = td_arn != rec.task_definition;
        if let Some(network) = &update.network
            && Some(network) != rec.network.as_ref()
        {
            rec.network = Some(network.clone());
            redeploy = true;
        }
        if let Some(lbs) = &update.load_balancers
            && *lbs != rec.load_balancers
        {
            rec.load_balancers = lbs.clone();
            redeploy = true;
        }
        if let Some(d) = &update.deployment {
            rec.deployment = d.clone();
        }
        if let Some(g) = update.health_check_grace_seconds {
            rec.grace = Some(g);
        }
        if let Some(spot) = update.spot {
            if rec.spot.is_none() {
                return Err(invalid(
                    &op,
                    "InvalidParameterException: a service on a launch type cannot switch to a capacity provider strategy.",
                ));
            }
            rec.spot = Some(spot);
        }
        if let Some(n) = update.desired_count {
            if redeploy {
                rec.desired = n;
            } else {
                rec.set_desired(n, ctx.now);
            }
        }
        if redeploy {
            rec.start_deployment(td_arn, failing, ctx);
        }
        rec.settle(ctx);
        let service = rec.to_service();
        let key = (update.cluster.clone(), update.name.clone());
        *self.services.entry(key).or_default().write(ctx.now) = Some(rec);
        Ok(service)
    }

    pub(super) fn delete_service(&mut self, cluster: &str, name: &str, force: bool, ctx: &Ctx<'_>) -> CloudResult<()> {
        let op = ops::DELETE_SERVICE;
        self.check_cluster(&op, cluster)?;
        let Some(slot) = self.settled(cluster, name, ctx) else {
            return Err(CloudError::new(&op, ErrorKind::NotFound, "ServiceNotFoundException: Service not found."));
        };
        match slot.cur.as_ref().map(|r| (r.state, r.desired)) {
            None | Some((ServiceState::Inactive, _)) => {
                Err(CloudError::new(&op, ErrorKind::NotFound, "ServiceNotFoundException: Service not found."))
            }
            // Already being deleted: AWS answers with the draining service.
            Some((ServiceState::Draining, _)) => Ok(()),
            Some((ServiceState::Active, desired)) if desired > 0 && !force => Err(invalid(
                &op,
                "InvalidParameterException: The service cannot be stopped while it is scaled above 0.",
            )),
            Some((ServiceState::Active, _)) => {
                if let Some(rec) = slot.write(ctx.now) {
                    rec.begin_drain(ctx);
                }
                Ok(())
            }
        }
    }

    pub(super) fn retag(
        &mut self,
        op: &Op,
        arn: &str,
        add: &Tags,
        remove: &[String],
        ctx: &Ctx<'_>,
    ) -> CloudResult<()> {
        check_tags(op, add)?;
        let not_found = || CloudError::new(op, ErrorKind::NotFound, format!("ResourceNotFoundException: {arn}"));
        let tags = if self.tds.contains_key(arn) {
            match self.tds.get_mut(arn).and_then(|td| td.write(ctx.now).as_mut()) {
                Some(rec) => &mut rec.tags,
                None => return Err(not_found()),
            }
        } else {
            let prefix = format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/");
            let Some((cluster, name)) = arn.strip_prefix(&prefix).and_then(|rest| rest.split_once('/')) else {
                return Err(not_found());
            };
            let live = self
                .settled(cluster, name, ctx)
                .is_some_and(|s| s.cur.as_ref().is_some_and(|r| r.state != ServiceState::Inactive));
            if !live {
                return Err(not_found());
            }
            let Some(rec) =
                self.services.get_mut(&(cluster.to_owned(), name.to_owned())).and_then(|s| s.write(ctx.now).as_mut())
            else {
                return Err(not_found());
            };
            &mut rec.tags
        };
        let mut next = tags.clone();
        for k in remove {
            next.remove(k);
        }
        next.extend(add.iter().map(|(k, v)| (k.clone(), v.clone())));
        if next.len() > super::MAX_TAGS {
            return Err(invalid(op, "InvalidParameterException: A resource can have at most 50 tags."));
        }
        *tags = next;
        Ok(())
    }

    pub(super) fn register(&mut self, input: &TaskDefinitionInput, ctx: &Ctx<'_>) -> CloudResult<TaskDefinition> {
        let op = ops::REGISTER_TASK_DEFINITION;
        if !valid_name(&input.family, 255) {
            return Err(invalid(&op, format!("ClientException: Invalid family {:?}.", input.family)));
        }
        if input.containers.is_empty() {
            return Err(invalid(&op, "ClientException: Container list cannot be empty."));
        }
        let mut names = BTreeSet::new();
        for c in &input.containers {
            if !valid_name(&c.name, 255) || !names.insert(c.name.as_str()) {
                return Err(invalid(
                    &op,
                    format!("ClientException: Invalid or duplicate container name {:?}.", c.name),
                ));
            }
            if c.image.trim().is_empty() {
                return Err(invalid(&op, format!("ClientException: Container {} has no image.", c.name)));
            }
        }
        if !fargate_size_ok(input.cpu, input.memory) {
            return Err(invalid(
                &op,
                format!(
                    "ClientException: No Fargate configuration exists for given values: {} CPU, {} memory.",
                    input.cpu, input.memory
                ),
            ));
        }
        check_tags(&op, &input.tags)?;
        let revision = {
            let r = self.revisions.entry(input.family.clone()).or_default();
            *r += 1;
            *r
        };
        let rec = TdRec {
            arn: task_definition_arn(&input.family, revision),
            family: input.family.clone(),
            revision,
            active: true,
            tags: input.tags.clone(),
            images: input.containers.iter().map(|c| c.image.clone()).collect(),
            containers: input.containers.iter().map(|c| (c.name.clone(), c.port)).collect(),
        };
        let out = rec.to_task_definition();
        *self.tds.entry(out.arn.clone()).or_default().write(ctx.now) = Some(rec);
        let family = self.families.entry(input.family.clone()).or_default();
        let mut list = family.cur.clone().unwrap_or_default();
        list.insert(0, out.arn.clone());
        *family.write(ctx.now) = Some(list);
        Ok(out)
    }

    pub(super) fn describe_task_definition(&self, reference: &str, ctx: &Ctx<'_>) -> CloudResult<TaskDefinition> {
        let op = ops::DESCRIBE_TASK_DEFINITION;
        self.td_arn_of(reference)
            .and_then(|arn| self.tds.get(&arn))
            .and_then(|slot| slot.view(ctx))
            .map(TdRec::to_task_definition)
            .ok_or_else(|| {
                CloudError::new(&op, ErrorKind::NotFound, "ClientException: Unable to describe task definition.")
            })
    }

    /// The running tasks of a service, named by [`task_arn`].
    pub(super) fn list_service_tasks(&mut self, cluster: &str, name: &str, ctx: &Ctx<'_>) -> CloudResult<Vec<String>> {
        self.check_cluster(&ops::LIST_TASKS, cluster)?;
        let running =
            self.settled(cluster, name, ctx).and_then(|s| s.view(ctx)).map_or(0, |r| r.to_service().running_count);
        Ok((0..running.min(MAX_LISTED_TASKS as u32)).map(|n| task_arn(cluster, name, n)).collect())
    }

    /// Which of `tasks` are protected: the first `protected` of each service's tasks.
    pub(super) fn protected_tasks(
        &mut self,
        cluster: &str,
        tasks: &[String],
        ctx: &Ctx<'_>,
    ) -> CloudResult<Vec<String>> {
        let op = ops::GET_TASK_PROTECTION;
        self.check_cluster(&op, cluster)?;
        if tasks.len() > MAX_TASK_PROTECTION {
            return Err(invalid(&op, format!("InvalidParameterException: at most {MAX_TASK_PROTECTION} tasks.")));
        }
        let prefix = format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task/{cluster}/");
        let mut out = Vec::new();
        for task in tasks {
            let Some((service, n)) = task.strip_prefix(&prefix).and_then(|t| t.rsplit_once('.')) else { continue };
            let Ok(n) = n.parse::<u32>() else { continue };
            let protected = self.settled(cluster, service, ctx).and_then(|s| s.view(ctx)).map_or(0, |r| r.protected);
            if n < protected {
                out.push(task.clone());
            }
        }
        Ok(out)
    }

    /// Sets how many of a service's tasks are protected from scale-in.
    pub(super) fn protect_tasks(&mut self, cluster: &str, name: &str, protected: u32, ctx: &Ctx<'_>) {
        if let Some(rec) = self.settled(cluster, name, ctx).and_then(|s| s.cur.as_mut()) {
            rec.protected = protected;
        }
    }

    pub(super) fn list_task_definitions(&self, family: &str, ctx: &Ctx<'_>) -> Vec<String> {
        self.families.get(family).and_then(|slot| slot.view(ctx)).cloned().unwrap_or_default()
    }

    pub(super) fn deregister(&mut self, reference: &str, ctx: &Ctx<'_>) -> CloudResult<()> {
        let op = ops::DEREGISTER_TASK_DEFINITION;
        let not_found = || {
            CloudError::new(
                &op,
                ErrorKind::NotFound,
                format!("ClientException: The specified task definition does not exist: {reference}"),
            )
        };
        // DeregisterTaskDefinition wants `family:revision` or an ARN.
        if !reference.contains(':') {
            return Err(invalid(&op, "ClientException: A revision is required."));
        }
        let arn = self.td_arn_of(reference).ok_or_else(not_found)?;
        let Some(slot) = self.tds.get_mut(&arn) else { return Err(not_found()) };
        if !slot.cur.as_ref().is_some_and(|t| t.active) {
            return Ok(());
        }
        let family = match slot.write(ctx.now) {
            Some(rec) => {
                rec.active = false;
                rec.family.clone()
            }
            None => return Err(not_found()),
        };
        if let Some(fam) = self.families.get_mut(&family) {
            let list: Vec<String> = fam.cur.iter().flatten().filter(|a| **a != arn).cloned().collect();
            *fam.write(ctx.now) = Some(list);
        }
        Ok(())
    }

    /// The service a service deployment ARN belongs to, settled.
    fn service_of_deployment(&mut self, op: &Op, arn: &str, ctx: &Ctx<'_>) -> CloudResult<&mut SvcRec> {
        let prefix = format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service-deployment/");
        let not_found =
            || CloudError::new(op, ErrorKind::NotFound, format!("ServiceDeploymentNotFoundException: {arn}"));
        let mut parts = arn.strip_prefix(&prefix).ok_or_else(not_found)?.split('/');
        let (Some(cluster), Some(name)) = (parts.next(), parts.next()) else { return Err(not_found()) };
        let slot = self.settled(cluster, name, ctx).ok_or_else(not_found)?;
        if slot.cur.as_ref().is_none_or(|r| r.staged_index(arn).is_none()) {
            return Err(not_found());
        }
        slot.write(ctx.now).as_mut().ok_or_else(not_found)
    }

    pub(super) fn describe_service_deployment(
        &mut self,
        arn: &str,
        ctx: &Ctx<'_>,
    ) -> CloudResult<Option<ServiceDeployment>> {
        match self.service_of_deployment(&ops::DESCRIBE_SERVICE_DEPLOYMENTS, arn, ctx) {
            Ok(rec) => Ok(rec.staged_index(arn).map(|i| rec.staged[i].describe())),
            Err(e) if e.is(ErrorKind::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) fn continue_service_deployment(
        &mut self,
        arn: &str,
        hook_id: &str,
        action: HookAction,
        ctx: &Ctx<'_>,
    ) -> CloudResult<()> {
        let op = ops::CONTINUE_SERVICE_DEPLOYMENT;
        let rec = self.service_of_deployment(&op, arn, ctx)?;
        let i = rec.staged_index(arn).unwrap_or_default();
        Staged::answer(rec, i, hook_id, action, ctx).map_err(|m| invalid(&op, m))?;
        rec.settle(ctx);
        Ok(())
    }

    pub(super) fn stop_service_deployment(&mut self, arn: &str, kind: StopKind, ctx: &Ctx<'_>) -> CloudResult<()> {
        let op = ops::STOP_SERVICE_DEPLOYMENT;
        let rec = self.service_of_deployment(&op, arn, ctx)?;
        let i = rec.staged_index(arn).unwrap_or_default();
        if !rec.staged[i].advancing() {
            return Err(invalid(&op, "InvalidParameterException: the service deployment is not in progress."));
        }
        match kind {
            StopKind::Rollback => {
                Staged::roll_back(rec, i, "stopped with StopServiceDeployment (ROLLBACK)".to_owned(), ctx)
            }
            StopKind::Abort => rec.staged[i].supersede(),
        }
        rec.settle(ctx);
        Ok(())
    }

    /// The ARNs of the service's staged deployments, oldest first.
    pub(super) fn service_deployment_arns(&mut self, cluster: &str, name: &str, ctx: &Ctx<'_>) -> Vec<String> {
        self.settled(cluster, name, ctx)
            .and_then(|s| s.cur.as_ref())
            .map_or_else(Vec::new, |r| r.staged.iter().map(|d| d.arn.clone()).collect())
    }

    /// Moments a staged deployment of the service sent production traffic to
    /// a revision without a healthy task.
    pub(super) fn dark_moments(&mut self, cluster: &str, name: &str, ctx: &Ctx<'_>) -> u32 {
        self.settled(cluster, name, ctx)
            .and_then(|s| s.cur.as_ref())
            .map_or(0, |r| r.staged.iter().map(|d| d.dark_moments).sum())
    }

    // ---- inspection and out-of-band --------------------------------------

    pub(super) fn all_services(&mut self, ctx: &Ctx<'_>) -> Vec<Service> {
        let mut out = Vec::new();
        for slot in self.services.values_mut() {
            if let Some(rec) = slot.cur.as_mut() {
                rec.settle(ctx);
                if rec.state != ServiceState::Inactive {
                    out.push(rec.to_service());
                }
            }
        }
        out
    }

    pub(super) fn service(&mut self, cluster: &str, name: &str, ctx: &Ctx<'_>) -> Option<Service> {
        self.settled(cluster, name, ctx)?.cur.as_ref().map(SvcRec::to_service)
    }

    pub(super) fn active_task_definitions(&self) -> Vec<String> {
        let mut all: Vec<&TdRec> = self.tds.values().filter_map(|s| s.cur.as_ref()).filter(|t| t.active).collect();
        all.sort_by(|a, b| (&a.family, a.revision).cmp(&(&b.family, b.revision)));
        all.into_iter().map(|t| t.arn.clone()).collect()
    }

    /// The ACTIVE service record for an out-of-band change, settled.
    fn active_mut(&mut self, cluster: &str, name: &str, ctx: &Ctx<'_>) -> Option<&mut SvcRec> {
        let slot = self.settled(cluster, name, ctx)?;
        if slot.cur.as_ref().is_none_or(|r| r.state != ServiceState::Active) {
            return None;
        }
        slot.write(ctx.now).as_mut()
    }

    pub(super) fn oob_set_desired(&mut self, cluster: &str, name: &str, n: u32, ctx: &Ctx<'_>) -> bool {
        let Some(rec) = self.active_mut(cluster, name, ctx) else { return false };
        rec.set_desired(n, ctx.now);
        rec.settle(ctx);
        true
    }

    pub(super) fn oob_set_task_definition(
        &mut self,
        cluster: &str,
        name: &str,
        reference: &str,
        ctx: &Ctx<'_>,
    ) -> bool {
        let arn = self.td_arn_of(reference).unwrap_or_else(|| reference.to_owned());
        let failing = self.td(&arn).is_some_and(|t| t.failing(&ctx.cfg.failing_image_marker));
        let Some(rec) = self.active_mut(cluster, name, ctx) else { return false };
        if rec.task_definition != arn {
            rec.start_deployment(arn, failing, ctx);
            rec.settle(ctx);
        }
        true
    }

    pub(super) fn oob_delete(&mut self, cluster: &str, name: &str, ctx: &Ctx<'_>) -> bool {
        let Some(rec) = self.active_mut(cluster, name, ctx) else { return false };
        rec.begin_drain(ctx);
        true
    }
}

#[async_trait]
impl Ecs for SimEcs {
    async fn describe_services(&self, cluster: &str, names: &[String]) -> CloudResult<Vec<Service>> {
        let key = format!("{cluster}/{}", names.join(","));
        self.0.call(ops::DESCRIBE_SERVICES, &key, |st, ctx| st.ecs.describe_services(cluster, names, ctx)).await
    }

    async fn create_service(&self, input: &ServiceInput) -> CloudResult<Service> {
        let key = format!("{}/{}", input.cluster, input.name);
        self.0.call(ops::CREATE_SERVICE, &key, |st, ctx| st.ecs.create_service(input, ctx)).await
    }

    async fn update_service(&self, update: &ServiceUpdate) -> CloudResult<Service> {
        let key = format!("{}/{}", update.cluster, update.name);
        self.0.call(ops::UPDATE_SERVICE, &key, |st, ctx| st.ecs.update_service(update, ctx)).await
    }

    async fn delete_service(&self, cluster: &str, name: &str, force: bool) -> CloudResult<()> {
        let key = format!("{cluster}/{name}");
        self.0.call(ops::DELETE_SERVICE, &key, |st, ctx| st.ecs.delete_service(cluster, name, force, ctx)).await
    }

    async fn retag(&self, arn: &str, add: &Tags, remove: &[String]) -> CloudResult<()> {
        // One call, named like the gate names it (TagResource unless only removing).
        let op = if add.is_empty() { ops::UNTAG_RESOURCE } else { ops::TAG_RESOURCE };
        self.0.call(op, arn, |st, ctx| st.ecs.retag(&op, arn, add, remove, ctx)).await
    }

    async fn register_task_definition(&self, input: &TaskDefinitionInput) -> CloudResult<TaskDefinition> {
        self.0.call(ops::REGISTER_TASK_DEFINITION, &input.family, |st, ctx| st.ecs.register(input, ctx)).await
    }

    async fn describe_task_definition(&self, arn: &str) -> CloudResult<TaskDefinition> {
        self.0.call(ops::DESCRIBE_TASK_DEFINITION, arn, |st, ctx| st.ecs.describe_task_definition(arn, ctx)).await
    }

    async fn list_task_definitions(&self, family: &str) -> CloudResult<Vec<String>> {
        self.0.call(ops::LIST_TASK_DEFINITIONS, family, |st, ctx| Ok(st.ecs.list_task_definitions(family, ctx))).await
    }

    async fn deregister_task_definition(&self, arn: &str) -> CloudResult<()> {
        self.0.call(ops::DEREGISTER_TASK_DEFINITION, arn, |st, ctx| st.ecs.deregister(arn, ctx)).await
    }

    async fn list_service_tasks(&self, cluster: &str, service: &str) -> CloudResult<Vec<String>> {
        let key = format!("{cluster}/{service}");
        self.0.call(ops::LIST_TASKS, &key, |st, ctx| st.ecs.list_service_tasks(cluster, service, ctx)).await
    }

    async fn protected_tasks(&self, cluster: &str, tasks: &[String]) -> CloudResult<Vec<String>> {
        self.0.call(ops::GET_TASK_PROTECTION, cluster, |st, ctx| st.ecs.protected_tasks(cluster, tasks, ctx)).await
    }

    async fn describe_service_deployment(&self, arn: &str) -> CloudResult<Option<ServiceDeployment>> {
        self.0
            .call(ops::DESCRIBE_SERVICE_DEPLOYMENTS, arn, |st, ctx| st.ecs.describe_service_deployment(arn, ctx))
            .await
    }

    async fn continue_service_deployment(&self, arn: &str, hook_id: &str, action: HookAction) -> CloudResult<()> {
        self.0
            .call(ops::CONTINUE_SERVICE_DEPLOYMENT, arn, |st, ctx| {
                st.ecs.continue_service_deployment(arn, hook_id, action, ctx)
            })
            .await
    }

    async fn stop_service_deployment(&self, arn: &str, kind: StopKind) -> CloudResult<()> {
        self.0.call(ops::STOP_SERVICE_DEPLOYMENT, arn, |st, ctx| st.ecs.stop_service_deployment(arn, kind, ctx)).await
    }
}
