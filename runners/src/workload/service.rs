//! The ECS part shared by relays and workers: the task definition (registered
//! only when its rendering changed, found again after a crash), the service
//! (created once with a client token, updated only where it differs, its
//! desired count left to the autoscaler within min/max), the conditions read
//! from its deployments, and its teardown.

use std::time::Duration;

use api_types::common::DeletionPolicy;
use api_types::condition::{Condition, ConditionStatus, ConditionType};
use api_types::relay::Replicas;

use super::{Calls, Event, RunError, Target, Teardown, Workloads, condition};
use crate::cloud::ecs::{
    DeploymentConfig, LoadBalancerRef, NetworkConfig, RolloutState, Service, ServiceInput, ServiceState, ServiceUpdate,
    TaskDefinitionInput,
};
use crate::cloud::{CloudError, Ecs, ErrorKind, TAG_NAME, TAG_RENDER_HASH, TAG_UID, Tags};
use crate::names;

/// How many of a family's newest revisions are searched for an already
/// registered rendering (after a crash between register and status write).
const ADOPT_SEARCH_DEPTH: usize = 3;

/// What the service should look like, from the spec.
#[derive(Debug, Clone)]
pub(super) struct ServiceWant {
    pub cluster: String,
    pub min: u32,
    pub max: u32,
    pub network: Option<NetworkConfig>,
    pub load_balancers: Vec<LoadBalancerRef>,
    pub deployment: DeploymentConfig,
    pub grace: Option<u32>,
}

/// What the service part produced.
pub(super) struct ServiceReport {
    pub conditions: Vec<Condition>,
    pub service_arn: String,
    pub task_definition_arn: String,
    pub failed_task_definition_arn: Option<String>,
    pub replicas: Replicas,
    pub in_flight: bool,
}

impl ServiceReport {
    /// Adds the service's conditions and status fields to `report`, and a
    /// look again after `poll` while something is in flight.
    pub(super) fn fill(self, report: &mut super::Report, poll: Duration) {
        report.conditions.extend(self.conditions);
        report.outputs.insert("serviceArn".into(), serde_json::json!(self.service_arn));
        report.outputs.insert("taskDefinitionArn".into(), serde_json::json!(self.task_definition_arn));
        report.outputs.insert("failedTaskDefinitionArn".into(), serde_json::json!(self.failed_task_definition_arn));
        report.outputs.insert("replicas".into(), serde_json::json!(self.replicas));
        if self.in_flight {
            report.requeue_after = Some(poll);
        }
    }
}

/// The status fields the service part reads back.
pub(super) struct ServiceMemory<'a> {
    pub task_definition_arn: Option<&'a str>,
    pub failed_task_definition_arn: Option<&'a str>,
    pub conditions: &'a [Condition],
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

fn owned_by(tags: &Tags, uid: &str) -> bool {
    tags.get(TAG_UID).is_some_and(|u| u == uid)
}

impl Workloads {
    /// The ARN of a revision with exactly this rendering: the one in status if
    /// it matches, else one registered before (a crash lost its ARN), else a
    /// new registration.
    async fn task_definition<S, St>(
        &self,
        calls: &Calls<'_>,
        target: &Target<'_, S, St>,
        input: &TaskDefinitionInput,
        known: Option<&str>,
        events: &mut Vec<Event>,
    ) -> Result<String, RunError> {
        let hash = input.tags.get(TAG_RENDER_HASH).cloned().unwrap_or_default();
        let matches = |tags: &Tags| tags.get(TAG_RENDER_HASH) == Some(&hash) && owned_by(tags, target.uid);
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

    /// Creates or corrects the service and reads its conditions.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn ensure_service<S, St>(
        &self,
        calls: &Calls<'_>,
        target: &Target<'_, S, St>,
        want: &ServiceWant,
        input: &TaskDefinitionInput,
        memory: &ServiceMemory<'_>,
        events: &mut Vec<Event>,
    ) -> Result<ServiceReport, RunError> {
        let td_arn = self.task_definition(calls, target, input, memory.task_definition_arn, events).await?;
        let name = names::service_name(target.namespace, target.name);
        let max_age = if target.fresh || !super::settled(memory.conditions, target.generation) {
            Duration::ZERO
        } else {
            self.observer.stale_after()
        };
        let observed = self.observer.observe(&calls.ecs, &want.cluster, &name, max_age).await?;
        let mut changed = false;
        let service = match observed {
            None => {
                let service = self.create_service(calls, target, want, &name, &td_arn).await?;
                events.push(Event::normal("ServiceCreated", format!("created {} in {}", service.arn, want.cluster)));
                changed = true;
                service
            }
            Some(s) if !owned_by(&s.tags, target.uid) => {
                return Err(RunError::Conflict(format!(
                    "service {name} in cluster {} exists and is not managed by this resource (tag {TAG_UID} is {:?})",
                    want.cluster,
                    s.tags.get(TAG_UID)
                )));
            }
            Some(s) => {
                let failed = rollout_failed(&s, &td_arn) || memory.failed_task_definition_arn == Some(td_arn.as_str());
                let update = diff(&s, want, &td_arn, failed);
                if let Some(td) = &update.task_definition
                    && memory.task_definition_arn == Some(td_arn.as_str())
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
        Ok(self.read_service(target, &service, &td_arn, memory, changed, events))
    }

    async fn create_service<S, St>(
        &self,
        calls: &Calls<'_>,
        target: &Target<'_, S, St>,
        want: &ServiceWant,
        name: &str,
        td_arn: &str,
    ) -> Result<Service, RunError> {
        let input = ServiceInput {
            cluster: want.cluster.clone(),
            name: name.to_string(),
            task_definition: td_arn.to_string(),
            desired_count: want.min,
            network: want.network.clone(),
            load_balancers: want.load_balancers.clone(),
            deployment: want.deployment,
            health_check_grace_seconds: want.grace,
            tags: Tags::from([
                (TAG_UID.to_string(), target.uid.to_string()),
                (TAG_NAME.to_string(), format!("{}/{}", target.namespace, target.name)),
            ]),
            client_token: names::client_token(target.uid, "service", target.generation, 36),
        };
        let service = match calls.ecs.create_service(&input).await {
            Ok(s) => s,
            // An earlier attempt (whose answer was lost) created it: look it up.
            Err(e) if e.is(ErrorKind::AlreadyExists) || e.is(ErrorKind::Timeout) => {
                self.observer.forget(&want.cluster, name, false);
                match self.observer.observe(&calls.ecs, &want.cluster, name, Duration::ZERO).await? {
                    Some(s) if owned_by(&s.tags, target.uid) => s,
                    Some(_) => {
                        return Err(RunError::Conflict(format!(
                            "service {name} in cluster {} exists and is not managed by this resource",
                            want.cluster
                        )));
                    }
                    None => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        self.observer.record(&service);
        Ok(service)
    }

    fn read_service<S, St>(
        &self,
        target: &Target<'_, S, St>,
        s: &Service,
        td_arn: &str,
        memory: &ServiceMemory<'_>,
        changed: bool,
        events: &mut Vec<Event>,
    ) -> ServiceReport {
        let (g, now) = (target.generation, target.now);
        let failed = rollout_failed(s, td_arn) || memory.failed_task_definition_arn == Some(td_arn);
        let primary = s.primary();
        let rolling = !failed && (changed || primary.is_none_or(|p| p.rollout == RolloutState::InProgress));
        let running = format!("{}/{} tasks running", s.running_count, s.desired_count);
        let mut conditions =
            vec![condition(ConditionType::Synced, true, "ReconcileSuccess", format!("generation {g} applied"), g, now)];
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
            conditions.push(condition(ConditionType::Degraded, true, "RolloutFailed", why.clone(), g, now));
            conditions.push(condition(ConditionType::Progressing, false, "RolloutFailed", why, g, now));
        } else {
            conditions.push(condition(ConditionType::Degraded, false, "AsExpected", "", g, now));
            if rolling {
                conditions.push(condition(ConditionType::Progressing, true, "RollingOut", running.clone(), g, now));
            } else {
                conditions.push(condition(ConditionType::Progressing, false, "RolloutComplete", "", g, now));
            }
        }
        let steady = !rolling && s.running_count == s.desired_count && s.state == ServiceState::Active;
        conditions.push(if steady {
            let reason = if s.desired_count == 0 { "ScaledToZero" } else { "ServiceSteady" };
            condition(ConditionType::Ready, true, reason, running, g, now)
        } else {
            condition(ConditionType::Ready, ConditionStatus::False, "TasksStarting", running, g, now)
        });
        ServiceReport {
            conditions,
            service_arn: s.arn.clone(),
            task_definition_arn: td_arn.to_string(),
            failed_task_definition_arn: failed.then(|| td_arn.to_string()),
            replicas: Replicas {
                desired: s.desired_count,
                running: s.running_count,
                pending: (s.pending_count > 0).then_some(s.pending_count),
            },
            in_flight: !steady,
        }
    }

    /// Scales the service to zero and deletes it (or, under `Retain`, removes
    /// Mooring's tags and leaves it), deregisters the task definitions, and
    /// reports `Done` once ECS no longer lists the service.
    pub(super) async fn teardown_service<S, St>(
        &self,
        calls: &Calls<'_>,
        target: &Target<'_, S, St>,
        cluster: &str,
        policy: DeletionPolicy,
    ) -> Result<Teardown, RunError> {
        let name = names::service_name(target.namespace, target.name);
        let observed = match self.observer.observe(&calls.ecs, cluster, &name, Duration::ZERO).await {
            Ok(s) => s,
            // A cluster that is gone holds no service of ours.
            Err(e) if e.is(ErrorKind::MissingReference) => None,
            Err(e) => return Err(e.into()),
        };
        match observed {
            Some(s) if owned_by(&s.tags, target.uid) => match (policy, s.state) {
                (DeletionPolicy::Retain, _) => {
                    calls.ecs.retag(&s.arn, &Tags::new(), &[TAG_UID.to_string(), TAG_NAME.to_string()]).await?;
                    self.observer.forget(cluster, &name, true);
                }
                (DeletionPolicy::Delete, ServiceState::Active) => {
                    if s.desired_count > 0 {
                        let zero = ServiceUpdate {
                            cluster: cluster.to_string(),
                            name: name.clone(),
                            desired_count: Some(0),
                            ..Default::default()
                        };
                        calls.ecs.update_service(&zero).await?;
                    }
                    match calls.ecs.delete_service(cluster, &name, true).await {
                        Ok(()) => {}
                        Err(e) if e.is(ErrorKind::NotFound) => {}
                        Err(e) => return Err(e.into()),
                    }
                    self.observer.forget(cluster, &name, false);
                    return Ok(Teardown::Pending(self.config.poll_in_flight, format!("service {name} is draining")));
                }
                (DeletionPolicy::Delete, _) => {
                    return Ok(Teardown::Pending(self.config.poll_in_flight, format!("service {name} is draining")));
                }
            },
            _ => self.observer.forget(cluster, &name, true),
        }
        if policy == DeletionPolicy::Delete {
            let family = names::task_family(target.namespace, target.name);
            for arn in calls.ecs.list_task_definitions(&family).await? {
                let td = self.task_definitions.get(&calls.ecs, &arn).await?;
                if owned_by(&td.tags, target.uid) {
                    match calls.ecs.deregister_task_definition(&arn).await {
                        Ok(()) => self.task_definitions.deregistered(&arn),
                        Err(e) if e.is(ErrorKind::NotFound) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Ok(Teardown::Done)
    }
}

/// True when a deployment of `td_arn` was stopped by the circuit breaker.
fn rollout_failed(s: &Service, td_arn: &str) -> bool {
    s.deployments.iter().any(|d| d.task_definition == td_arn && d.rollout == RolloutState::Failed)
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
    if s.load_balancers != want.load_balancers {
        update.load_balancers = Some(want.load_balancers.clone());
    }
    if let Some(have) = s.deployment
        && have != want.deployment
    {
        update.deployment = Some(want.deployment);
    }
    if let (Some(w), Some(have)) = (want.grace, s.health_check_grace_seconds)
        && w != have
    {
        update.health_check_grace_seconds = Some(w);
    }
    update
}

/// Whether a cloud error means "it is gone already".
pub(super) fn gone(e: &CloudError) -> bool {
    e.is(ErrorKind::NotFound)
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
            tags: Tags::new(),
        }
    }

    fn want() -> ServiceWant {
        ServiceWant {
            cluster: "apps".into(),
            min: 2,
            max: 10,
            network: None,
            load_balancers: vec![],
            deployment: DeploymentConfig::default(),
            grace: None,
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
}
