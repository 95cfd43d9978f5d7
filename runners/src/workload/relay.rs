//! Relays: HTTP services on ECS, optionally with an ElastiCache Redis
//! replication group of their own. The cache comes first: the service is
//! created once the cache is available, with its endpoint in the containers'
//! environment, so tasks never start without the cache they were promised.
//! Cache changes (node type, engine version, replicas) are applied with
//! ModifyReplicationGroup and Increase/DecreaseReplicaCount; removing
//! `spec.cache` tears the group down per the deletion policy recorded for it.

use std::sync::Arc;
use std::time::Duration;

use api_types::Event;
use api_types::common::DeletionPolicy;
use api_types::condition::{Condition, reason};
use api_types::relay::{Cache, RelaySpec, RelayStatus};
use api_types::status::{CacheRef, FailedCreations};
use api_types::{Kind, RelaySpec as Spec};

use super::ownership::{Claim, claim};
use super::service::{EcsRecord, ServiceWant, ecs_intent, network};
use super::{Calls, Workloads, absent_long_enough, native, rollout, tags};
use crate::autoscale::{Policy, Reading, Rules, ScaleConfig};
use crate::cloud::caches::{ReplicationGroup, ReplicationGroupChange, ReplicationGroupInput};
use crate::cloud::ecs::{AdvancedLoadBalancer, LoadBalancerRef};
use crate::cloud::{Caches, ErrorKind, TAG_NAME, TAG_UID, Tags};
use crate::gate::CallGate;
use crate::names;
use crate::reconcile::{Reconcile, ReconcileError, Reconciled, Target, Teardown};
use crate::render::{self, Owner};
use api_types::relay::ScalingMode;

/// A relay, as the runner sees it.
pub type RelayTarget<'a> = Target<'a, RelaySpec, RelayStatus>;

/// The relay reconciler.
pub struct Relays(pub(super) Arc<Workloads>);

fn want(spec: &RelaySpec) -> ServiceWant {
    let staged = spec.deployment.strategy.staged();
    let load_balancers = spec
        .load_balancer
        .iter()
        .map(|lb| LoadBalancerRef {
            target_group_arn: lb.target_group_arn.clone(),
            container_name: lb
                .container_name
                .clone()
                .or_else(|| spec.containers.first().map(|c| c.name.clone()))
                .unwrap_or_default(),
            container_port: lb.container_port,
            advanced: match (staged, &lb.alternate_target_group_arn, &lb.production_listener_rule_arn, &lb.role_arn) {
                (true, Some(alternate), Some(production), Some(role)) => Some(AdvancedLoadBalancer {
                    alternate_target_group_arn: alternate.clone(),
                    production_listener_rule: production.clone(),
                    test_listener_rule: lb.test_listener_rule_arn.clone(),
                    role_arn: role.clone(),
                }),
                _ => None,
            },
        })
        .collect();
    ServiceWant {
        min: spec.scaling.min,
        max: spec.scaling.max,
        network: network(spec.network.as_ref()),
        load_balancers,
        deployment: rollout::deployment_config(spec),
        grace: spec.health_check.as_ref().map(|h| h.grace_period_seconds),
        spot: None,
    }
}

/// The autoscaler's policy for a relay, when Mooring's controller scales it.
fn scaling(spec: &RelaySpec, config: &ScaleConfig, paused: bool) -> Option<Policy> {
    let s = &spec.scaling;
    let rules = Rules {
        min: s.min,
        max: s.max,
        cpu_target_percent: Some(s.cpu_target_percent),
        queue_depth_target: None,
        scale_in_after_idle_seconds: s.scale_in_after_idle_seconds,
    };
    config.policy(rules, paused).filter(|_| s.mode == ScalingMode::Controller)
}

fn record(status: &RelayStatus) -> EcsRecord<'_> {
    EcsRecord {
        service: status.service.as_ref(),
        retiring: &status.retiring_services,
        task_family: status.task_family.as_deref(),
        task_definition_arn: status.task_definition_arn.as_deref(),
        failed_task_definition_arn: status.failed_task_definition_arn.as_deref(),
        hold_task_definition: false,
    }
}

/// The cache's recorded deletion policy: the cache's own, else the relay's.
fn cache_policy(spec: &RelaySpec, cache: &Cache) -> DeletionPolicy {
    cache.deletion_policy.unwrap_or(spec.deletion_policy)
}

#[async_trait::async_trait]
impl Reconcile for Relays {
    const KIND: Kind = Kind::Relay;
    type Spec = Spec;
    type Status = RelayStatus;

    async fn reconcile(
        &self,
        gate: &dyn CallGate,
        target: &RelayTarget<'_>,
    ) -> Result<Reconciled<RelayStatus>, ReconcileError> {
        self.0.reconcile_relay(gate, target).await
    }

    async fn cleanup(
        &self,
        gate: &dyn CallGate,
        target: &RelayTarget<'_>,
    ) -> Result<Teardown<RelayStatus>, ReconcileError> {
        self.0.cleanup_relay(gate, target).await
    }

    fn expect(&self, target: &RelayTarget<'_>) {
        if let Some(s) = &target.status.service {
            self.0.observer.expect(&s.cluster, &s.name);
        }
    }
}

impl Workloads {
    /// Observe → diff → apply for one relay.
    async fn reconcile_relay(
        &self,
        gate: &dyn CallGate,
        t: &RelayTarget<'_>,
    ) -> Result<Reconciled<RelayStatus>, ReconcileError> {
        let calls = self.calls(gate);
        let mut r = t.report();
        let (g, now) = (t.generation, t.now);

        // 1. What will be created is recorded before anything is.
        let intent = ecs_intent(t, &t.spec.cluster, &record(t.status), &mut r.events);
        let cache = match (&t.spec.cache, &t.status.cache) {
            (Some(c), None) => Some(CacheRef {
                id: names::cache_id(t.name, t.uid),
                arn: None,
                endpoint: None,
                engine_version: None,
                deletion_policy: cache_policy(t.spec, c),
                deleting: false,
                missing_since: None,
                failed_creations: None,
                created_with: None,
            }),
            // Wanted again: the removal's policy and absence no longer apply
            // (a group being deleted is created again once gone).
            (Some(c), Some(rec)) => {
                Some(CacheRef { deletion_policy: cache_policy(t.spec, c), missing_since: None, ..rec.clone() })
            }
            (None, rec) => rec.clone(),
        };
        let cache_recorded = t.status.cache.is_some() || t.spec.cache.is_none();
        if intent.changed || !cache_recorded {
            if t.status.service.is_none() {
                r.status.applied_tags = t.spec.tags.clone();
            }
            r.status.service = Some(intent.service);
            r.status.retiring_services = intent.retiring;
            r.status.task_family = Some(intent.task_family);
            r.status.cache = cache;
            r.conditions.push(Condition::progressing(reason::CREATING, "recording what will be created", g, now));
            r.requeue(Duration::ZERO);
            return Ok(r);
        }
        r.status.cache = cache;

        // 2. The cache, when the spec has one.
        let mut cache_changing = false;
        let endpoint = match (&t.spec.cache, r.status.cache.clone()) {
            (Some(spec), Some(rec)) => {
                let (rec, state) = self.ensure_cache(&calls, t, spec, rec, &mut r.events).await?;
                r.status.cache = Some(rec.clone());
                match state {
                    CacheState::Creating => {
                        let message = "waiting for the ElastiCache replication group to become available";
                        r.conditions.push(Condition::synced(g, now));
                        r.conditions.push(Condition::progressing(reason::CACHE_CREATING, message, g, now));
                        r.conditions.push(Condition::not_ready(reason::CACHE_CREATING, message, g, now));
                        r.requeue(self.config.poll_in_flight);
                        return Ok(r);
                    }
                    CacheState::Failed => {
                        let message = format!(
                            "ElastiCache could not create replication group {} (create-failed); deleting it{}",
                            rec.id,
                            again(&rec)
                        );
                        r.conditions.push(Condition::synced(g, now));
                        r.conditions.push(Condition::progressing(reason::CACHE_CREATING, &message, g, now));
                        r.conditions.push(Condition::degraded(reason::CACHE_CREATE_FAILED, &message, g, now));
                        r.conditions.push(Condition::not_ready(reason::CACHE_CREATE_FAILED, message, g, now));
                        r.requeue(self.config.poll_in_flight);
                        return Ok(r);
                    }
                    CacheState::GaveUp => {
                        let message = format!(
                            "ElastiCache failed to create replication group {} {MAX_CACHE_CREATIONS} times in a row \
                             with these settings; change spec.cache (nodeType, engineVersion or replicas) to try again",
                            rec.id
                        );
                        r.conditions.push(Condition::sync_failed(reason::CACHE_CREATE_FAILED, &message, g, now));
                        r.conditions.push(Condition::settled(reason::CACHE_CREATE_FAILED, &message, g, now));
                        r.conditions.push(Condition::degraded(reason::CACHE_CREATE_FAILED, &message, g, now));
                        r.conditions.push(Condition::not_ready(reason::CACHE_CREATE_FAILED, message, g, now));
                        return Ok(r);
                    }
                    CacheState::Deleting => {
                        let message =
                            format!("replication group {} is being deleted; it is created again once gone", rec.id);
                        r.conditions.push(Condition::synced(g, now));
                        r.conditions.push(Condition::progressing(reason::CACHE_CREATING, &message, g, now));
                        r.conditions.push(Condition::not_ready(reason::CACHE_CREATING, message, g, now));
                        r.requeue(self.config.poll_in_flight);
                        return Ok(r);
                    }
                    CacheState::Modifying => cache_changing = true,
                    CacheState::Available => {}
                }
                rec.endpoint
            }
            _ => None,
        };

        // 3. The task definition and the service.
        let owner = Owner {
            uid: t.uid,
            namespace: t.namespace,
            name: t.name,
            family: &intent.task_family,
            user_tags: &t.spec.tags,
            region: &self.config.region,
        };
        let input = render::relay_task(&owner, t.spec, endpoint.as_deref());
        let td_arn =
            self.task_definition(&calls, t, &input, t.status.task_definition_arn.as_deref(), &mut r.events).await?;
        let initial = self.initial_count(&calls, t, &intent.service, &intent.retiring, t.spec.scaling.min).await?;
        let memory = EcsRecord {
            hold_task_definition: rollout::hold_task_definition(t.status.rollout.as_deref(), t.request, &td_arn),
            ..record(t.status)
        };
        let mut report = self
            .ensure_service(
                &calls,
                t,
                &intent.service,
                &want(t.spec),
                initial,
                &td_arn,
                &memory,
                &t.status.conditions,
                &t.spec.tags,
                &mut r.events,
            )
            .await?;
        self.follow_rollout(&calls, t, &td_arn, &mut report, &mut r).await?;
        self.drain_check(&calls, t, &mut r).await?;
        let paused = crate::autoscale::paused(t.annotations).is_some();
        match scaling(t.spec, self.scaler.config(), paused) {
            Some(policy) => {
                if let Some(d) = self.autoscale(&calls, t, &mut report, &policy, Reading::Missing, &mut r).await? {
                    r.status.last_scaling = Some(d);
                }
            }
            None => self.scaler.forget(t.uid),
        }
        let native = (t.spec.scaling.mode == ScalingMode::AwsNative).then(|| {
            let s = &t.spec.scaling;
            let svc = &report.service;
            native::rules(
                &svc.cluster,
                &svc.name,
                (s.min, s.max),
                Some(s.cpu_target_percent),
                None,
                s.scale_in_after_idle_seconds,
            )
        });
        r.status.scalable_target = self
            .native_scaling(&calls, t, t.status.scalable_target.as_deref(), native.as_ref(), &t.spec.tags, &mut r)
            .await?;
        report.fill(&mut r, self.config.poll_in_flight);
        r.status.service = Some(report.service.clone());
        r.status.task_definition_arn = Some(report.task_definition_arn.clone());
        r.status.failed_task_definition_arn = report.failed_task_definition_arn.clone();
        r.status.replicas = Some(report.replicas.clone());

        // 4. A move to another cluster finishes; a removed cache goes.
        let mut retiring = intent.retiring;
        self.retire(&calls, t, &mut retiring, report.steady, &mut r).await?;
        r.status.retiring_services = retiring;
        if cache_changing {
            r.conditions.push(Condition::progressing(
                reason::CACHE_MODIFYING,
                "ElastiCache is applying a change to the replication group",
                g,
                now,
            ));
            r.requeue(self.config.poll_in_flight);
        }
        if t.spec.cache.is_none()
            && let Some(rec) = r.status.cache.clone()
        {
            r.status.cache = self.remove_cache(&calls, t, rec, &mut r.events).await?;
            if r.status.cache.is_some() {
                r.requeue(self.config.poll_in_flight);
            }
        }

        // 5. User tags, when `spec.tags` changed.
        let (put, remove) = tags::diff(&t.status.applied_tags, &t.spec.tags);
        if !put.is_empty() || !remove.is_empty() {
            let service_arn = r.status.service.as_ref().and_then(|s| s.arn.clone());
            self.retag_ecs(&calls, service_arn.as_deref(), Some(&td_arn), &put, &remove).await?;
            if let Some(arn) = r.status.cache.as_ref().and_then(|c| c.arn.clone()) {
                calls.caches.add_tags(&arn, &put).await?;
                calls.caches.remove_tags(&arn, &remove).await?;
            }
            r.events.push(Event::normal("TagsUpdated", "spec.tags put on the service, task definition and cache"));
            r.status.applied_tags = t.spec.tags.clone();
        }
        Ok(r)
    }

    /// Creates, adopts or changes the replication group the status records.
    async fn ensure_cache(
        &self,
        calls: &Calls<'_>,
        t: &RelayTarget<'_>,
        spec: &Cache,
        mut rec: CacheRef,
        events: &mut Vec<Event>,
    ) -> Result<(CacheRef, CacheState), ReconcileError> {
        let Some(group) = calls.caches.describe_replication_group(&rec.id).await? else {
            let settings = creation_settings(spec);
            if rec.failed_creations.as_ref().is_some_and(|f| f.settings != settings) {
                // The settings changed since the failures: try again.
                rec.failed_creations = None;
            }
            if rec.failed_creations.as_ref().is_some_and(|f| f.count >= MAX_CACHE_CREATIONS) {
                // `deleting` stays: Mooring deleted the last failed group, so
                // a late read of it is no drift, and teardown knows it gone.
                rec.arn = None;
                rec.endpoint = None;
                return Ok((rec, CacheState::GaveUp));
            }
            if let Some(arn) = rec.arn.as_ref().filter(|_| !rec.deleting) {
                events.push(Event::warning(
                    "DriftDetected",
                    format!("replication group {arn} was deleted outside Mooring; creating it again"),
                ));
            }
            let input = ReplicationGroupInput {
                id: rec.id.clone(),
                description: format!("cache of relay {}", t.key()),
                node_type: spec.node_type.clone(),
                engine_version: spec.engine_version.clone(),
                replicas: spec.replicas,
                tags: owner_tags(t),
            };
            rec.created_with = match calls.caches.create_replication_group(&input).await {
                Ok(g) => {
                    events.push(Event::normal("CacheCreated", format!("created replication group {}", g.id)));
                    rec.arn = Some(g.arn);
                    rec.engine_version = Some(spec.engine_version.clone());
                    rec.deleting = false;
                    Some(settings)
                }
                // A lost answer to an earlier create, whose settings are not
                // known: the next look finds it.
                Err(e) if e.is(ErrorKind::AlreadyExists) => None,
                // Refused at once (no capacity, a parameter ElastiCache
                // rejects): nothing was created, so nothing is counted; the
                // reconcile fails (Synced=False) and is retried with backoff.
                Err(e) => return Err(e.into()),
            };
            rec.endpoint = None;
            return Ok((rec, CacheState::Creating));
        };
        if rec.arn.is_none() {
            let what = format!("replication group {}", group.id);
            if claim(t, &calls.caches.tags(&group.arn).await?, &what)? == Claim::Adopt {
                calls.caches.add_tags(&group.arn, &owner_tags(t)).await?;
                events.push(Event::normal("Adopted", format!("adopted {what} ({})", group.arn)));
            }
            rec.arn = Some(group.arn.clone());
            rec.engine_version.get_or_insert_with(|| spec.engine_version.clone());
            // Not a creation this record asked for (or one whose answer was lost).
            rec.created_with = None;
        }
        rec.endpoint = group.primary_endpoint.clone();
        // Seen alive: a deletion noted earlier (of a failed group) is over.
        if !matches!(group.status.as_str(), "deleting" | "create-failed") {
            rec.deleting = false;
        }
        if group.status == "available" {
            rec.failed_creations = None;
        }
        let state = match group.status.as_str() {
            "available" => self.change_cache(calls, &group, spec, &mut rec, events).await?,
            "creating" if rec.endpoint.is_none() => CacheState::Creating,
            // Useless and billed: delete it; once gone it is created again
            // (up to MAX_CACHE_CREATIONS times with the same settings).
            "create-failed" => {
                if !rec.deleting {
                    // Counted against what the creation asked for.
                    let settings = rec.created_with.clone().unwrap_or_else(|| creation_settings(spec));
                    match &mut rec.failed_creations {
                        Some(failed) if failed.settings == settings => failed.count += 1,
                        _ => rec.failed_creations = Some(FailedCreations { count: 1, settings }),
                    }
                }
                match calls.caches.delete_replication_group(&group.id).await {
                    // A stale read: it is being deleted (or gone) already.
                    Err(e) if e.is(ErrorKind::NotFound) || e.is(ErrorKind::Invalid) => {}
                    other => other?,
                }
                events.push(Event::warning(
                    reason::CACHE_CREATE_FAILED,
                    format!("ElastiCache could not create replication group {}; deleting it{}", group.id, again(&rec)),
                ));
                rec.deleting = true;
                CacheState::Failed
            }
            "deleting" => {
                if !rec.deleting {
                    events.push(Event::warning(
                        "DriftDetected",
                        format!(
                            "replication group {} is being deleted outside Mooring; it is created again once gone",
                            group.id
                        ),
                    ));
                }
                rec.deleting = true;
                CacheState::Deleting
            }
            _ => CacheState::Modifying,
        };
        Ok((rec, state))
    }

    /// Applies what differs between an available group and the spec.
    async fn change_cache(
        &self,
        calls: &Calls<'_>,
        group: &ReplicationGroup,
        spec: &Cache,
        rec: &mut CacheRef,
        events: &mut Vec<Event>,
    ) -> Result<CacheState, ReconcileError> {
        let mut change = ReplicationGroupChange::default();
        if group.node_type.as_deref().is_some_and(|t| t != spec.node_type) {
            change.node_type = Some(spec.node_type.clone());
        }
        if rec.engine_version.as_deref() != Some(spec.engine_version.as_str()) {
            change.engine_version = Some(spec.engine_version.clone());
        }
        if change != ReplicationGroupChange::default() {
            calls.caches.modify_replication_group(&group.id, &change).await?;
            events.push(Event::normal(
                "CacheModified",
                format!(
                    "replication group {}: nodeType {} → {}, engineVersion {} → {}",
                    group.id,
                    group.node_type.as_deref().unwrap_or("?"),
                    spec.node_type,
                    rec.engine_version.as_deref().unwrap_or("?"),
                    spec.engine_version
                ),
            ));
            rec.engine_version = Some(spec.engine_version.clone());
            return Ok(CacheState::Modifying);
        }
        let replicas = group.members.saturating_sub(1);
        if group.members > 0 && replicas != spec.replicas {
            calls.caches.set_replicas(&group.id, replicas, spec.replicas).await?;
            events.push(Event::normal(
                "CacheModified",
                format!("replication group {}: replicas {replicas} → {}", group.id, spec.replicas),
            ));
            return Ok(CacheState::Modifying);
        }
        Ok(CacheState::Available)
    }

    /// One step of removing the recorded cache (after `spec.cache` was removed,
    /// or on deletion) per its recorded policy. `None` once it is gone or released.
    async fn remove_cache(
        &self,
        calls: &Calls<'_>,
        t: &RelayTarget<'_>,
        rec: CacheRef,
        events: &mut Vec<Event>,
    ) -> Result<Option<CacheRef>, ReconcileError> {
        let Some(group) = calls.caches.describe_replication_group(&rec.id).await? else {
            if !rec.deleting && !absent_long_enough(rec.missing_since, t.now, self.config.absence_grace) {
                // Perhaps only not listed yet: look again before forgetting it.
                return Ok(Some(CacheRef { missing_since: rec.missing_since.or(Some(t.now)), ..rec }));
            }
            if rec.arn.is_some() {
                events.push(Event::normal("CacheDeleted", format!("replication group {} is gone", rec.id)));
            }
            return Ok(None);
        };
        let rec = CacheRef { missing_since: None, ..rec };
        if rec.arn.is_none() && claim(t, &calls.caches.tags(&group.arn).await?, "").is_err() {
            // Never became ours (a crash before the create, and someone else's group).
            return Ok(None);
        }
        // A group that failed to create holds nothing worth keeping, and is billed.
        let policy = if group.status == "create-failed" { DeletionPolicy::Delete } else { rec.deletion_policy };
        match policy {
            DeletionPolicy::Retain => {
                calls.caches.remove_tags(&group.arn, &[TAG_UID.to_string(), TAG_NAME.to_string()]).await?;
                events.push(Event::normal("CacheReleased", format!("left replication group {} in place", group.id)));
                Ok(None)
            }
            DeletionPolicy::Delete => {
                let deleting = match group.status.as_str() {
                    "deleting" => true,
                    "available" | "create-failed" => match calls.caches.delete_replication_group(&group.id).await {
                        Ok(()) => true,
                        Err(e) if e.is(ErrorKind::NotFound) => return Ok(None),
                        Err(e) => return Err(e.into()),
                    },
                    // Creating or modifying: ElastiCache deletes only available (or failed) groups.
                    _ => false,
                };
                Ok(Some(CacheRef { deleting, ..rec }))
            }
        }
    }

    /// Tears a relay down: every service its status records per
    /// `deletionPolicy`, its task definitions, then the cache per the policy
    /// recorded for it.
    async fn cleanup_relay(
        &self,
        gate: &dyn CallGate,
        t: &RelayTarget<'_>,
    ) -> Result<Teardown<RelayStatus>, ReconcileError> {
        let calls = self.calls(gate);
        let policy = t.spec.deletion_policy;
        self.scaler.forget(t.uid);
        if let Some(id) = &t.status.scalable_target
            && policy == DeletionPolicy::Delete
        {
            self.remove_native_scaling(&calls, id, &mut vec![]).await?;
        }
        let (service, retiring) = (&t.status.service, &t.status.retiring_services);
        let keep = |s: &mut RelayStatus, service, retiring| (s.service, s.retiring_services) = (service, retiring);
        if let Some(waiting) = self.retire_recorded(&calls, t, service, retiring, policy, keep).await? {
            return Ok(waiting);
        }
        if policy == DeletionPolicy::Delete
            && let Some(family) = &t.status.task_family
        {
            self.deregister_task_definitions(&calls, t, family).await?;
        }
        let Some(rec) = t.status.cache.clone() else { return Ok(Teardown::Done) };
        let mut events = vec![];
        match self.remove_cache(&calls, t, rec, &mut events).await? {
            None => Ok(Teardown::Done),
            Some(rec) => {
                let message = format!("replication group {} is being deleted", rec.id);
                match Teardown::pending(t, message, self.config.poll_in_flight) {
                    Teardown::Pending(mut r) => {
                        r.events = events;
                        r.status.cache = Some(rec);
                        Ok(Teardown::Pending(r))
                    }
                    done => Ok(done),
                }
            }
        }
    }
}

/// Where a relay's cache is.
enum CacheState {
    /// Being created: the service waits.
    Creating,
    /// ElastiCache failed to create it: it is being deleted, to be created
    /// again, and the service waits.
    Failed,
    /// Being deleted (after a failed creation, a removal of `spec.cache`
    /// undone, or by someone else): created again once gone; the service waits.
    Deleting,
    /// ElastiCache failed to create it [`MAX_CACHE_CREATIONS`] times in a
    /// row with these settings: not created again until they change.
    GaveUp,
    /// Available but ElastiCache is applying a change.
    Modifying,
    Available,
}

/// How many creations of a relay's cache ElastiCache may fail in a row,
/// with the same settings, before Mooring stops creating it (each one is
/// minutes of ElastiCache's time, and a capacity shortage rarely passes in
/// minutes). A change of `spec.cache` tries again.
pub const MAX_CACHE_CREATIONS: u32 = 3;

/// What follows the deletion of a failed group: another creation, or none
/// after the last one allowed.
fn again(rec: &CacheRef) -> String {
    match &rec.failed_creations {
        Some(f) if f.count >= MAX_CACHE_CREATIONS => format!(
            " ({} failed creations in a row: it is not created again until spec.cache's nodeType, engineVersion or replicas change)",
            f.count
        ),
        _ => " to create it again".to_string(),
    }
}

/// The settings a creation asks ElastiCache for, as recorded with its
/// failures: a change of any starts the count again.
fn creation_settings(spec: &Cache) -> String {
    format!("{} {} {}", spec.node_type, spec.engine_version, spec.replicas)
}

/// The tags of everything a relay owns: its user tags, then Mooring's.
fn owner_tags(t: &RelayTarget<'_>) -> Tags {
    let mut tags = t.spec.tags.clone();
    tags.insert(TAG_UID.to_string(), t.uid.to_string());
    tags.insert(TAG_NAME.to_string(), t.key());
    tags
}
