//! The ECS part shared by relays and workers: the identities recorded before
//! anything is created, the task definition (registered only when its
//! rendering changed, found again after a crash), the service (created once
//! with a client token, updated only where it differs, its desired count left
//! to the autoscaler within min/max), a move to another cluster (the new
//! service first, the old one drained and deleted once the new one is
//! steady), the conditions read from its deployments, and its teardown.

use std::time::Duration;

use api_types::Event;
use api_types::common::DeletionPolicy;
use api_types::condition::{Condition, reason};
use api_types::relay::{Replicas, ScalingDecision};
use api_types::status::ServiceRef;

use super::ownership::{Claim, claim};
use super::{Calls, Workloads, absent_long_enough};
use crate::autoscale::{self, Policy, Reading, Reason};
use crate::cloud::ecs::{
    DeploymentConfig, HookAction, LoadBalancerRef, NetworkConfig, RolloutState, Service, ServiceInput, ServiceState,
    ServiceUpdate, SpotCapacity, TaskDefinitionInput,
};
use crate::cloud::metrics::ServiceKey;
use crate::cloud::{Ecs, ErrorKind, TAG_NAME, TAG_RENDER_HASH, TAG_UID, Tags};
use crate::names;
use crate::reconcile::{ReconcileError, Reconciled, Target, Teardown};

/// How many of a family's newest revisions are searched for an already
/// registered rendering (after a crash between register and status write).
const ADOPT_SEARCH_DEPTH: usize = 3;

/// What the service should look like, from the spec.
#[derive(Debug, Clone)]
pub(super) struct ServiceWant {
    pub min: u32,
    pub max: u32,
    pub network: Option<NetworkConfig>,
    pub load_balancers: Vec<LoadBalancerRef>,
    pub deployment: DeploymentConfig,
    pub grace: Option<u32>,
    /// Spot capacity (workers with `capacity: FARGATE_SPOT`).
    pub spot: Option<SpotCapacity>,
}

/// The ECS identities of a relay or worker as its status records them.
pub(super) struct EcsRecord<'a> {
    pub service: Option<&'a ServiceRef>,
    pub retiring: &'a [ServiceRef],
    pub task_family: Option<&'a str>,
    pub task_definition_arn: Option<&'a str>,
    pub failed_task_definition_arn: Option<&'a str>,
    /// Do not point the service at a new task definition now (a staged
    /// deployment of it, or a rollback, is in flight).
    pub hold_task_definition: bool,
}

/// What the intent step decided about the ECS identities.
pub(super) struct EcsIntent {
    pub service: ServiceRef,
    pub retiring: Vec<ServiceRef>,
    pub task_family: String,
    /// Something new was recorded: write it before creating anything.
    pub changed: bool,
}

/// The service and family the resource will use, from what status records:
/// the first reconcile records them; a change of `spec.cluster` records the
/// new service and moves the old one to the retiring list (a migration).
pub(super) fn ecs_intent<S, St: Clone>(
    target: &Target<'_, S, St>,
    cluster: &str,
    record: &EcsRecord<'_>,
    events: &mut Vec<Event>,
) -> EcsIntent {
    let name = names::service_name(target.namespace, target.name);
    let mut retiring = record.retiring.to_vec();
    let (service, moved) = match record.service {
        Some(s) if s.cluster == cluster => (s.clone(), false),
        Some(old) => {
            events.push(Event::normal(
                "ServiceMigrating",
                format!(
                    "spec.cluster changed from {} to {cluster}: creating service {} there; the old one is deleted once the new one is steady",
                    old.cluster, old.name
                ),
            ));
            retiring.push(old.clone());
            (ServiceRef::named(cluster, name.clone()), true)
        }
        None => (ServiceRef::named(cluster, name.clone()), true),
    };
    // Moving back to a cluster it is leaving: that service is current again.
    let before = retiring.len();
    retiring.retain(|r| !(r.cluster == service.cluster && r.name == service.name));
    let service = match (before != retiring.len(), record.retiring.iter().find(|r| r.cluster == service.cluster)) {
        // What retiring it had noted no longer applies.
        (true, Some(r)) => ServiceRef { deleting: false, missing_since: None, ..r.clone() },
        _ => service,
    };
    let task_family =
        record.task_family.map(str::to_string).unwrap_or_else(|| names::task_family(target.namespace, target.name));
    let changed = moved || record.task_family.is_none() || before != retiring.len();
    EcsIntent { service, retiring, task_family, changed }
}

/// What the service part produced.
pub(super) struct ServiceReport {
    pub conditions: Vec<Condition>,
    pub service: ServiceRef,
    pub task_definition_arn: String,
    pub failed_task_definition_arn: Option<String>,
    pub replicas: Replicas,
    /// Running = desired and the rollout completed.
    pub steady: bool,
    /// The service deployment of the newest change (staged strategies follow it).
    pub current_service_deployment: Option<String>,
    /// A new revision is replacing another (two task sets run): scale-in waits.
    pub deploying: bool,
}

impl ServiceReport {
    /// Adds the service's conditions to `report`, and a look again after
    /// `poll` while something is in flight.
    pub(super) fn fill<St>(&self, report: &mut Reconciled<St>, poll: Duration) {
        report.conditions.extend(self.conditions.iter().cloned());
        if !self.steady {
            report.requeue(poll);
        }
    }
}

pub(super) fn network(n: Option<&api_types::common::Network>) -> Option<NetworkConfig> {
    n.map(|n| {
        let mut subnets = n.subnets.clone();
        subnets.sort();
        let mut security_groups = n.security_groups.clone();
        security_groups.sort();
        NetworkConfig { subnets, security_groups, assign_public_ip: n.assign_public_ip }
    })
}

fn same_network(a: &NetworkConfig, b: &NetworkConfig) -> bool {
    let sorted = |v: &Vec<String>| {
        let mut v = v.clone();
        v.sort();
        v
    };
    sorted(&a.subnets) == sorted(&b.subnets)
        && sorted(&a.security_groups) == sorted(&b.security_groups)
        && a.assign_public_ip == b.assign_public_ip
}

/// The tags Mooring puts on a service it creates or adopts.
pub(super) fn service_tags<S, St>(target: &Target<'_, S, St>, user: &Tags) -> Tags {
    let mut tags = user.clone();
    tags.insert(TAG_UID.to_string(), target.uid.to_string());
    tags.insert(TAG_NAME.to_string(), format!("{}/{}", target.namespace, target.name));
    tags
}

/// How many of a service's running tasks have scale-in protection on (of
/// the first [`MAX_LISTED_TASKS`](crate::cloud::ecs::MAX_LISTED_TASKS)).
async fn protected_tasks(calls: &Calls<'_>, cluster: &str, service: &str) -> Result<u32, ReconcileError> {
    let tasks = calls.ecs.list_service_tasks(cluster, service).await?;
    let mut protected = 0;
    for chunk in tasks.chunks(crate::cloud::ecs::MAX_TASK_PROTECTION) {
        protected += calls.ecs.protected_tasks(cluster, chunk).await?.len() as u32;
    }
    Ok(protected)
}

impl Workloads {
    /// The ARN of a revision with exactly this rendering: the one in status if
    /// it matches, else one registered before (a crash lost its ARN), else a
    /// new registration.
    pub(super) async fn task_definition<S, St>(
        &self,
        calls: &Calls<'_>,
        target: &Target<'_, S, St>,
        input: &TaskDefinitionInput,
        known: Option<&str>,
        events: &mut Vec<Event>,
    ) -> Result<String, ReconcileError> {
        let hash = input.tags.get(TAG_RENDER_HASH).cloned().unwrap_or_default();
        let matches = |tags: &Tags| {
            tags.get(TAG_RENDER_HASH) == Some(&hash) && tags.get(TAG_UID).map(String::as_str) == Some(target.uid)
        };
        if let Some(arn) = known {
            match self.task_definitions.get(&calls.ecs, arn).await {
                Ok(td) if td.active && matches(&td.tags) => return Ok(td.arn),
                Ok(_) => {}
                Err(e) if e.is(ErrorKind::NotFound) || e.is(ErrorKind::Invalid) => {}
                Err(e) => return Err(e.into()),
            }
        }
        for arn in calls.ecs.list_task_definitions(&input.family).await?.iter().take(ADOPT_SEARCH_DEPTH) {
            let td = self.task_definitions.get(&calls.ecs, arn).await?;
            if td.active && matches(&td.tags) {
                return Ok(td.arn);
            }
        }
        let td = calls.ecs.register_task_definition(input).await?;
        self.task_definitions.remember(&td);
        events.push(Event::normal("TaskDefinitionRegistered", format!("registered {}", td.arn)));
        Ok(td.arn)
    }

    /// Creates or corrects the service `record` names and reads its
    /// conditions. `initial` is the desired count a new service starts with.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn ensure_service<S, St: Clone>(
        &self,
        calls: &Calls<'_>,
        target: &Target<'_, S, St>,
        record: &ServiceRef,
        want: &ServiceWant,
        initial: u32,
        td_arn: &str,
        memory: &EcsRecord<'_>,
        conditions: &[Condition],
        user_tags: &Tags,
        events: &mut Vec<Event>,
    ) -> Result<ServiceReport, ReconcileError> {
        let (cluster, name) = (&record.cluster, &record.name);
        let max_age = if target.fresh || !super::settled(conditions, target.generation) {
            Duration::ZERO
        } else {
            self.observer.stale_after()
        };
        let observed = self.observer.observe(&calls.ecs, cluster, name, max_age).await?;
        let mut changed = false;
        let service = match observed {
            None => {
                if let Some(arn) = &record.arn {
                    events.push(Event::warning(
                        "DriftDetected",
                        format!("service {arn} was deleted outside Mooring; creating it again"),
                    ));
                }
                let service = self.create_service(calls, target, record, want, initial, td_arn, user_tags).await?;
                events.push(Event::normal("ServiceCreated", format!("created {} in {cluster}", service.arn)));
                changed = true;
                service
            }
            Some(mut s) => {
                let what = format!("service {name} in cluster {cluster}");
                if claim(target, &s.tags, &what)? == Claim::Adopt {
                    calls.ecs.retag(&s.arn, &service_tags(target, user_tags), &[]).await?;
                    s.tags.extend(service_tags(target, user_tags));
                    self.observer.record(&s);
                    events.push(Event::normal("Adopted", format!("adopted {what} ({})", s.arn)));
                }
                let failed = rollout_failed(&s, td_arn) || memory.failed_task_definition_arn == Some(td_arn);
                let update = diff(&s, want, td_arn, failed || memory.hold_task_definition);
                if let Some(td) = &update.task_definition
                    && memory.task_definition_arn == Some(td_arn)
                    && s.task_definition != td_arn
                {
                    events.push(Event::warning(
                        "DriftCorrected",
                        format!("service ran {} instead of {td}; set back", s.task_definition),
                    ));
                }
                if let Some(n) = update.desired_count {
                    events.push(Event::warning(
                        "DriftCorrected",
                        format!(
                            "desired count {} was outside [{}, {}]; set to {n}",
                            s.desired_count, want.min, want.max
                        ),
                    ));
                }
                if update.is_empty() {
                    s
                } else {
                    let s = calls.ecs.update_service(&update).await?;
                    self.observer.record(&s);
                    changed = true;
                    s
                }
            }
        };
        // Tasks beyond the desired count that ECS keeps because they set
        // scale-in protection (a worker busy with a message).
        let protected = if service.running_count > service.desired_count && service.state == ServiceState::Active {
            protected_tasks(calls, cluster, name).await?
        } else {
            0
        };
        Ok(self.read_service(target, record, &service, td_arn, memory, changed, protected, events))
    }

    #[allow(clippy::too_many_arguments)]
    async fn create_service<S, St: Clone>(
        &self,
        calls: &Calls<'_>,
        target: &Target<'_, S, St>,
        record: &ServiceRef,
        want: &ServiceWant,
        initial: u32,
        td_arn: &str,
        user_tags: &Tags,
    ) -> Result<Service, ReconcileError> {
        let (cluster, name) = (&record.cluster, &record.name);
        let input = ServiceInput {
            cluster: cluster.clone(),
            name: name.clone(),
            task_definition: td_arn.to_string(),
            desired_count: initial.clamp(want.min, want.max.max(want.min)),
            network: want.network.clone(),
            load_balancers: want.load_balancers.clone(),
            deployment: want.deployment.clone(),
            health_check_grace_seconds: want.grace,
            spot: want.spot,
            tags: service_tags(target, user_tags),
            client_token: names::client_token(target.uid, &format!("service/{cluster}"), target.generation, 36),
        };
        let service = match calls.ecs.create_service(&input).await {
            Ok(s) => s,
            // An earlier attempt (whose answer was lost) created it: look it up.
            Err(e) if e.is(ErrorKind::AlreadyExists) || e.is(ErrorKind::Timeout) => {
                self.observer.forget(cluster, name, false);
                match self.observer.observe(&calls.ecs, cluster, name, Duration::ZERO).await? {
                    Some(s) => {
                        claim(target, &s.tags, &format!("service {name} in cluster {cluster}"))?;
                        s
                    }
                    None => return Err(e.into()),
                }
            }
            Err(e) if e.is(ErrorKind::MissingReference) => {
                return Err(ReconcileError::Cloud(crate::cloud::CloudError {
                    message: format!(
                        "{} (Mooring never creates ECS clusters: create cluster {cluster} or fix spec.cluster)",
                        e.message
                    ),
                    ..e
                }));
            }
            Err(e) => return Err(e.into()),
        };
        self.observer.record(&service);
        Ok(service)
    }

    #[allow(clippy::too_many_arguments)]
    fn read_service<S, St>(
        &self,
        target: &Target<'_, S, St>,
        record: &ServiceRef,
        s: &Service,
        td_arn: &str,
        memory: &EcsRecord<'_>,
        changed: bool,
        protected: u32,
        events: &mut Vec<Event>,
    ) -> ServiceReport {
        let (g, now) = (target.generation, target.now);
        let failed = rollout_failed(s, td_arn) || memory.failed_task_definition_arn == Some(td_arn);
        let primary = s.primary();
        let rolling = !failed && (changed || primary.is_none_or(|p| p.rollout == RolloutState::InProgress));
        let mut running = format!("{}/{} tasks running", s.running_count, s.desired_count);
        let extra = s.running_count.saturating_sub(s.desired_count);
        if protected > 0 {
            running.push_str(&format!(" ({protected} protected from scale-in)"));
        }
        let mut conditions = vec![Condition::synced(g, now)];
        if failed {
            let why = s
                .deployments
                .iter()
                .find(|d| d.task_definition == td_arn && d.rollout == RolloutState::Failed)
                .and_then(|d| d.rollout_reason.clone())
                .unwrap_or_else(|| "the deployment circuit breaker stopped the rollout".into());
            if memory.failed_task_definition_arn != Some(td_arn) {
                events.push(Event::warning("RolloutFailed", format!("{td_arn}: {why}")));
            }
            conditions.push(Condition::degraded(reason::ROLLOUT_FAILED, why.clone(), g, now));
            conditions.push(Condition::settled(reason::ROLLOUT_FAILED, why, g, now));
        } else {
            conditions.push(Condition::not_degraded(g, now));
            if rolling {
                conditions.push(Condition::progressing(reason::ROLLING_OUT, running.clone(), g, now));
            } else if protected > 0 && extra > 0 {
                // Still in motion: the protected tasks stop when they drop protection.
                conditions.push(Condition::progressing(reason::SCALE_IN_PROTECTED, running.clone(), g, now));
            } else {
                conditions.push(Condition::settled(reason::ROLLOUT_COMPLETE, "", g, now));
            }
        }
        // Protected tasks above the desired count finish their work first: steady all the same.
        let steady =
            !rolling && s.running_count >= s.desired_count && extra <= protected && s.state == ServiceState::Active;
        conditions.push(if steady {
            let why = if s.desired_count == 0 { reason::SCALED_TO_ZERO } else { reason::SERVICE_STEADY };
            Condition::ready(why, running, g, now)
        } else {
            Condition::not_ready(reason::TASKS_STARTING, running, g, now)
        });
        ServiceReport {
            conditions,
            service: ServiceRef { arn: Some(s.arn.clone()), deleting: false, missing_since: None, ..record.clone() },
            task_definition_arn: td_arn.to_string(),
            failed_task_definition_arn: failed.then(|| td_arn.to_string()),
            replicas: Replicas {
                desired: s.desired_count,
                running: s.running_count,
                pending: (s.pending_count > 0).then_some(s.pending_count),
                protected: (protected > 0).then_some(protected),
            },
            steady,
            current_service_deployment: s.current_service_deployment.clone(),
            deploying: s.deployments.iter().filter(|d| d.rollout != RolloutState::Failed).count() > 1,
        }
    }

    /// The desired count a new service starts with: during a move, the count
    /// the old service runs (the autoscaler's), else the minimum.
    pub(super) async fn initial_count<S, St>(
        &self,
        calls: &Calls<'_>,
        t: &Target<'_, S, St>,
        service: &ServiceRef,
        retiring: &[ServiceRef],
        min: u32,
    ) -> Result<u32, ReconcileError> {
        if service.arn.is_some() {
            return Ok(min);
        }
        for old in retiring {
            if let Some(n) = self.desired_count_of(calls, t, old).await? {
                return Ok(n.max(min));
            }
        }
        Ok(min)
    }

    /// Deletes the services a move left behind, once the new one is steady.
    pub(super) async fn retire<S, St: Clone>(
        &self,
        calls: &Calls<'_>,
        t: &Target<'_, S, St>,
        retiring: &mut Vec<ServiceRef>,
        steady: bool,
        r: &mut Reconciled<St>,
    ) -> Result<(), ReconcileError> {
        if retiring.is_empty() {
            return Ok(());
        }
        let (g, now) = (t.generation, t.now);
        if !steady {
            r.conditions.push(Condition::progressing(
                reason::MIGRATING,
                "waiting for the new service to be steady before deleting the old one",
                g,
                now,
            ));
            r.requeue(self.config.poll_in_flight);
            return Ok(());
        }
        let mut left = vec![];
        for mut old in retiring.drain(..) {
            if self.retire_service(calls, t, &mut old, DeletionPolicy::Delete).await? {
                r.events.push(Event::normal(
                    "ServiceRetired",
                    format!("deleted service {} in cluster {} after the move", old.name, old.cluster),
                ));
            } else {
                left.push(old);
            }
        }
        if !left.is_empty() {
            let names: Vec<String> = left.iter().map(|s| format!("{} in {}", s.name, s.cluster)).collect();
            r.conditions.push(Condition::progressing(
                reason::MIGRATING,
                format!("draining the old service: {}", names.join(", ")),
                g,
                now,
            ));
            r.requeue(self.config.poll_in_flight);
        }
        *retiring = left;
        Ok(())
    }

    /// Decides the service's count (`scaling.mode: controller`) and applies a
    /// change with one UpdateService: the decision with its inputs goes into
    /// `lastScaling` and a `ScaledOut`/`ScaledIn` event. Asks to look again
    /// after the scaling interval.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn autoscale<S, St>(
        &self,
        calls: &Calls<'_>,
        t: &Target<'_, S, St>,
        report: &mut ServiceReport,
        policy: &Policy,
        backlog: Reading<u64>,
        r: &mut Reconciled<St>,
    ) -> Result<Option<ScalingDecision>, ReconcileError> {
        let service = &report.service;
        let paused = autoscale::paused(t.annotations);
        r.requeue(self.scaler.config().interval);
        let inputs = autoscale::Inputs {
            uid: t.uid,
            service: ServiceKey {
                cluster: crate::names::cluster_name(&service.cluster).to_string(),
                service: service.name.clone(),
            },
            current: report.replicas.desired,
            backlog,
            paused,
        };
        let d = self.scaler.decide(&calls.metrics, policy, inputs).await;
        // Zero downtime: no scale-in while a new revision replaces the old one
        // (the decision is made again once the deployment is over).
        if !d.changes() || (d.to < d.from && report.deploying) {
            return Ok(None);
        }
        let update = ServiceUpdate {
            cluster: service.cluster.clone(),
            name: service.name.clone(),
            desired_count: Some(d.to),
            ..Default::default()
        };
        let s = calls.ecs.update_service(&update).await?;
        self.observer.record(&s);
        report.replicas.desired = d.to;
        let numbers: Vec<String> = d.inputs.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let why = format!("{} → {} ({}): {}", d.from, d.to, d.reason.as_str(), numbers.join(", "));
        let reason = if d.to > d.from { "ScaledOut" } else { "ScaledIn" };
        r.events.push(if d.reason == Reason::Paused {
            Event::warning("ScalingPaused", format!("pinned by {}: {why}", autoscale::PAUSE_ANNOTATION))
        } else {
            Event::normal(reason, why)
        });
        Ok(Some(ScalingDecision {
            from: d.from,
            to: d.to,
            reason: d.reason.as_str().to_string(),
            inputs: d.inputs,
            time: t.now,
        }))
    }

    /// The desired count of a recorded service, if it exists and is ours (a
    /// migration starts the new service at the old one's count).
    pub(super) async fn desired_count_of<S, St>(
        &self,
        calls: &Calls<'_>,
        target: &Target<'_, S, St>,
        record: &ServiceRef,
    ) -> Result<Option<u32>, ReconcileError> {
        // Fresh: the autoscaler (or a person) may have changed it since the last look.
        match self.observer.observe(&calls.ecs, &record.cluster, &record.name, Duration::ZERO).await {
            Ok(Some(s)) if s.tags.get(TAG_UID).map(String::as_str) == Some(target.uid) => Ok(Some(s.desired_count)),
            Ok(_) => Ok(None),
            Err(e) if e.is(ErrorKind::MissingReference) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// One step of tearing down (or, under `Retain`, releasing) the service a
    /// status records. `Ok(true)` once it is gone (or released, or it never
    /// became ours); otherwise it is draining: look again.
    pub(super) async fn retire_service<S, St>(
        &self,
        calls: &Calls<'_>,
        target: &Target<'_, S, St>,
        record: &mut ServiceRef,
        policy: DeletionPolicy,
    ) -> Result<bool, ReconcileError> {
        let (cluster, name) = (record.cluster.clone(), record.name.clone());
        let (cluster, name) = (&cluster, &name);
        let observed = match self.observer.observe(&calls.ecs, cluster, name, Duration::ZERO).await {
            Ok(s) => s,
            // A cluster that is gone holds no service of ours.
            Err(e) if e.is(ErrorKind::MissingReference) => {
                self.observer.forget(cluster, name, true);
                return Ok(true);
            }
            Err(e) => return Err(e.into()),
        };
        let Some(observed) = observed else {
            // Not listed: gone once deleted, or after staying absent a while
            // (it may have been created too recently to be listed yet).
            if record.deleting || absent_long_enough(record.missing_since, target.now, self.config.absence_grace) {
                self.observer.forget(cluster, name, true);
                return Ok(true);
            }
            record.missing_since.get_or_insert(target.now);
            return Ok(false);
        };
        record.missing_since = None;
        let Some(s) = Some(observed).filter(|s| s.tags.get(TAG_UID).map(String::as_str) == Some(target.uid)) else {
            // Someone else's service under the recorded name: never ours to touch.
            self.observer.forget(cluster, name, true);
            return Ok(true);
        };
        match (policy, s.state) {
            (DeletionPolicy::Retain, _) => {
                calls.ecs.retag(&s.arn, &Tags::new(), &[TAG_UID.to_string(), TAG_NAME.to_string()]).await?;
                self.observer.forget(cluster, name, true);
                Ok(true)
            }
            (DeletionPolicy::Delete, ServiceState::Active) => {
                if s.desired_count > 0 {
                    let zero = ServiceUpdate {
                        cluster: cluster.clone(),
                        name: name.clone(),
                        desired_count: Some(0),
                        ..Default::default()
                    };
                    calls.ecs.update_service(&zero).await?;
                }
                match calls.ecs.delete_service(cluster, name, true).await {
                    Ok(()) => {}
                    Err(e) if e.is(ErrorKind::NotFound) => {}
                    Err(e) => return Err(e.into()),
                }
                record.deleting = true;
                self.observer.forget(cluster, name, false);
                Ok(false)
            }
            (DeletionPolicy::Delete, _) => {
                record.deleting = true;
                Ok(false)
            }
        }
    }

    /// The first step of a relay's or worker's teardown: retires every
    /// service its status records (its service and those still being retired
    /// after a move) per `policy`. While any is not gone yet, the pending
    /// teardown to report, with the records as they now stand put back into
    /// the status by `keep`; `None` once all are gone.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn retire_recorded<S, St: Clone>(
        &self,
        calls: &Calls<'_>,
        target: &Target<'_, S, St>,
        service: &Option<ServiceRef>,
        retiring: &[ServiceRef],
        policy: DeletionPolicy,
        keep: impl FnOnce(&mut St, Option<ServiceRef>, Vec<ServiceRef>),
    ) -> Result<Option<Teardown<St>>, ReconcileError> {
        let (mut service, mut retiring) = (service.clone(), retiring.to_vec());
        let mut left = vec![];
        for s in service.iter_mut().chain(retiring.iter_mut()) {
            if !self.retire_service(calls, target, s, policy).await? {
                let how = if s.deleting { "draining" } else { "not listed yet" };
                left.push(format!("{} in {} ({how})", s.name, s.cluster));
            }
        }
        if left.is_empty() {
            return Ok(None);
        }
        let message = format!("waiting for service {}", left.join(", "));
        let mut waiting = Teardown::pending(target, message, self.config.poll_in_flight);
        if let Teardown::Pending(r) = &mut waiting {
            keep(&mut r.status, service, retiring);
        }
        Ok(Some(waiting))
    }

    /// Deregisters every revision of `family` that carries this resource's
    /// tag (others' revisions in the same family are left alone).
    pub(super) async fn deregister_task_definitions<S, St>(
        &self,
        calls: &Calls<'_>,
        target: &Target<'_, S, St>,
        family: &str,
    ) -> Result<(), ReconcileError> {
        for arn in calls.ecs.list_task_definitions(family).await? {
            let td = self.task_definitions.get(&calls.ecs, &arn).await?;
            if td.tags.get(TAG_UID).map(String::as_str) == Some(target.uid) {
                match calls.ecs.deregister_task_definition(&arn).await {
                    Ok(()) => self.task_definitions.deregistered(&arn),
                    Err(e) if e.is(ErrorKind::NotFound) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// Puts changed user tags on (and removed ones off) the service and its
    /// current task definition.
    pub(super) async fn retag_ecs(
        &self,
        calls: &Calls<'_>,
        service_arn: Option<&str>,
        task_definition_arn: Option<&str>,
        put: &Tags,
        remove: &[String],
    ) -> Result<(), ReconcileError> {
        for arn in [service_arn, task_definition_arn].into_iter().flatten() {
            calls.ecs.retag(arn, put, remove).await?;
        }
        if let Some(arn) = task_definition_arn {
            self.task_definitions.retagged(arn, put, remove);
        }
        Ok(())
    }
}

/// True when a deployment of `td_arn` was stopped by the circuit breaker.
fn rollout_failed(s: &Service, td_arn: &str) -> bool {
    s.deployments.iter().any(|d| d.task_definition == td_arn && d.rollout == RolloutState::Failed)
}

/// Equal load balancers, where the two target groups of a staged strategy
/// count as a pair: ECS swaps which one serves with every deployment.
fn same_load_balancers(have: &[LoadBalancerRef], want: &[LoadBalancerRef]) -> bool {
    let key = |lb: &LoadBalancerRef| {
        let mut groups = vec![lb.target_group_arn.clone()];
        let mut rest = None;
        if let Some(a) = &lb.advanced {
            groups.push(a.alternate_target_group_arn.clone());
            rest = Some((a.production_listener_rule.clone(), a.test_listener_rule.clone(), a.role_arn.clone()));
        }
        groups.sort();
        (groups, lb.container_name.clone(), lb.container_port, rest)
    };
    have.len() == want.len() && have.iter().zip(want).all(|(h, w)| key(h) == key(w))
}

/// Equal deployment settings as far as the strategy uses them: a rolling
/// service has no bake, shift or hooks to compare; hooks compare by stage.
fn same_deployment(have: &DeploymentConfig, want: &DeploymentConfig) -> bool {
    let rolling =
        |d: &DeploymentConfig| (d.strategy, d.circuit_breaker, d.rollback, d.min_healthy_percent, d.max_percent);
    if rolling(have) != rolling(want) {
        return false;
    }
    if !want.strategy.staged() {
        return true;
    }
    let hooks = |d: &DeploymentConfig| {
        let mut h: Vec<_> =
            d.hooks.iter().map(|h| (h.stage, h.timeout_minutes, h.timeout_action == HookAction::Rollback)).collect();
        h.sort();
        h
    };
    have.bake_minutes == want.bake_minutes
        && have.canary == want.canary
        && have.linear == want.linear
        && hooks(have) == hooks(want)
}

/// The smallest update that makes `s` what `want` says. The desired count is
/// the autoscaler's and only clamped into [min, max]; fields the endpoint does
/// not report (`None`) are left alone rather than rewritten on every pass.
fn diff(s: &Service, want: &ServiceWant, td_arn: &str, failed: bool) -> ServiceUpdate {
    let mut update = ServiceUpdate { cluster: s.cluster.clone(), name: s.name.clone(), ..Default::default() };
    if s.task_definition != td_arn && !failed {
        update.task_definition = Some(td_arn.to_string());
    }
    let clamped = s.desired_count.clamp(want.min, want.max.max(want.min));
    if clamped != s.desired_count {
        update.desired_count = Some(clamped);
    }
    if let (Some(w), Some(have)) = (&want.network, &s.network)
        && !same_network(w, have)
    {
        update.network = Some(w.clone());
    }
    if !same_load_balancers(&s.load_balancers, &want.load_balancers) {
        update.load_balancers = Some(want.load_balancers.clone());
    }
    if let Some(have) = &s.deployment
        && !same_deployment(have, &want.deployment)
    {
        update.deployment = Some(want.deployment.clone());
    }
    if let (Some(w), Some(have)) = (want.grace, s.health_check_grace_seconds)
        && w != have
    {
        update.health_check_grace_seconds = Some(w);
    }
    // A new on-demand base of a spot service (not reported: left alone).
    if let (Some(w), Some(have)) = (want.spot, s.spot)
        && w != have
    {
        update.spot = Some(w);
    }
    update
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::ecs::Deployment;

    fn service() -> Service {
        Service {
            arn: "arn:svc".into(),
            name: "default_web".into(),
            cluster: "apps".into(),
            state: ServiceState::Active,
            task_definition: "arn:td:1".into(),
            desired_count: 3,
            running_count: 3,
            pending_count: 0,
            network: None,
            load_balancers: vec![],
            deployment: None,
            health_check_grace_seconds: None,
            deployments: vec![Deployment {
                id: "d1".into(),
                primary: true,
                task_definition: "arn:td:1".into(),
                desired_count: 3,
                running_count: 3,
                rollout: RolloutState::Completed,
                rollout_reason: None,
            }],
            current_service_deployment: None,
            spot: None,
            tags: Tags::new(),
        }
    }

    fn want() -> ServiceWant {
        ServiceWant {
            min: 2,
            max: 10,
            network: None,
            load_balancers: vec![],
            deployment: DeploymentConfig::default(),
            grace: None,
            spot: None,
        }
    }

    #[test]
    fn unchanged_service_needs_no_update_and_count_is_left_alone() {
        assert!(diff(&service(), &want(), "arn:td:1", false).is_empty());
        let mut w = want();
        w.min = 1;
        w.max = 5;
        assert!(diff(&service(), &w, "arn:td:1", false).is_empty(), "3 is within [1, 5]: the autoscaler's");
    }

    #[test]
    fn drift_is_corrected_minimally() {
        let mut s = service();
        s.desired_count = 40;
        let u = diff(&s, &want(), "arn:td:2", false);
        assert_eq!(u.desired_count, Some(10));
        assert_eq!(u.task_definition.as_deref(), Some("arn:td:2"));
        assert!(u.network.is_none() && u.deployment.is_none());
        // A revision the circuit breaker refused is not pushed again.
        assert!(diff(&service(), &want(), "arn:td:2", true).task_definition.is_none());
        s.deployment = Some(DeploymentConfig { circuit_breaker: false, ..want().deployment });
        assert_eq!(diff(&s, &want(), "arn:td:1", false).deployment, Some(want().deployment));
    }

    #[test]
    fn a_staged_service_as_aws_echoes_it_needs_no_update() {
        use crate::cloud::ecs::{AdvancedLoadBalancer, LifecycleHook};
        use api_types::rollout::{DeploymentStrategy, RolloutStage};
        let hook =
            |stage, minutes| LifecycleHook { stage, timeout_minutes: minutes, timeout_action: HookAction::Rollback };
        let lb = |serving: &str, alternate: &str| LoadBalancerRef {
            target_group_arn: serving.into(),
            container_name: "api".into(),
            container_port: 8080,
            advanced: Some(AdvancedLoadBalancer {
                alternate_target_group_arn: alternate.into(),
                production_listener_rule: "rule/prod".into(),
                test_listener_rule: Some("rule/test".into()),
                role_arn: "role".into(),
            }),
        };
        let mut w = want();
        w.deployment = DeploymentConfig {
            strategy: DeploymentStrategy::BlueGreen,
            bake_minutes: 5,
            hooks: vec![
                hook(RolloutStage::PostTestTrafficShift, 60),
                hook(RolloutStage::PreProductionTrafficShift, 60),
            ],
            ..DeploymentConfig::default()
        };
        w.load_balancers = vec![lb("tg/blue", "tg/green")];
        let mut s = service();
        // After a deployment ECS swapped the groups and lists the hooks in another order.
        s.load_balancers = vec![lb("tg/green", "tg/blue")];
        let mut echoed = w.deployment.clone();
        echoed.hooks.reverse();
        s.deployment = Some(echoed);
        assert!(diff(&s, &w, "arn:td:1", false).is_empty(), "{:?}", diff(&s, &w, "arn:td:1", false));
        // A real change is sent: a hook's timeout, another listener rule.
        let mut longer = w.deployment.clone();
        longer.hooks[0].timeout_minutes = 30;
        s.deployment = Some(longer);
        assert_eq!(diff(&s, &w, "arn:td:1", false).deployment, Some(w.deployment.clone()));
        let mut moved = lb("tg/blue", "tg/green");
        if let Some(a) = moved.advanced.as_mut() {
            a.production_listener_rule = "rule/other".into();
        }
        s.load_balancers = vec![moved];
        assert!(diff(&s, &w, "arn:td:1", false).load_balancers.is_some());
        // A rolling service compares only what rolling uses.
        let mut rolling = service();
        rolling.deployment = Some(DeploymentConfig { bake_minutes: 7, ..DeploymentConfig::default() });
        assert!(diff(&rolling, &want(), "arn:td:1", false).is_empty());
    }

    #[test]
    fn the_intent_records_identities_and_migrations() {
        let annotations = std::collections::BTreeMap::new();
        let target = Target {
            uid: "u1",
            namespace: "ns",
            name: "gw",
            generation: 1,
            annotations: &annotations,
            spec: &(),
            status: &(),
            fresh: false,
            now: chrono::Utc::now(),
            request: None,
            snapshot_request: None,
            owner: None,
        };
        let svc = |cluster: &str, arn: Option<&str>| ServiceRef {
            cluster: cluster.into(),
            name: "ns_gw".into(),
            arn: arn.map(str::to_string),
            deleting: false,
            missing_since: None,
        };
        let record = |service, retiring, family| EcsRecord {
            service,
            retiring,
            task_family: family,
            task_definition_arn: None,
            failed_task_definition_arn: None,
            hold_task_definition: false,
        };
        let mut events = vec![];
        // First reconcile: everything is new.
        let i = ecs_intent(&target, "a", &record(None, &[], None), &mut events);
        assert!(i.changed && i.service == svc("a", None) && i.task_family == "ns_gw" && i.retiring.is_empty());
        // Settled: nothing new.
        let current = svc("a", Some("arn:a"));
        let i = ecs_intent(&target, "a", &record(Some(&current), &[], Some("ns_gw")), &mut events);
        assert!(!i.changed && i.service == current);
        // The cluster changed: the old service retires, the new one is recorded.
        let i = ecs_intent(&target, "b", &record(Some(&current), &[], Some("ns_gw")), &mut events);
        assert!(i.changed && i.service == svc("b", None) && i.retiring == vec![current.clone()]);
        assert!(events.iter().any(|e| e.reason == "ServiceMigrating"));
        // Changed back mid-move: the old service is current again, the half-made one retires.
        let half = svc("b", Some("arn:b"));
        let retiring = [current.clone()];
        let i = ecs_intent(&target, "a", &record(Some(&half), &retiring, Some("ns_gw")), &mut events);
        assert!(i.changed && i.service == current && i.retiring == vec![half]);
    }
}
