//! Relays: HTTP services on ECS, optionally with an ElastiCache Redis
//! replication group of their own. The cache comes first: the service is
//! created once the cache is available, with its endpoint in the containers'
//! environment, so tasks never start without the cache they were promised.

use api_types::common::DeletionPolicy;
use api_types::condition::{ConditionStatus, ConditionType};
use api_types::relay::{RelaySpec, RelayStatus};
use serde_json::{Value, json};

use super::service::{ServiceMemory, ServiceWant, network};
use super::{Calls, Event, Report, RunError, Target, Teardown, Workloads, condition};
use crate::cloud::caches::ReplicationGroupInput;
use crate::cloud::ecs::{DeploymentConfig, LoadBalancerRef};
use crate::cloud::{ErrorKind, TAG_NAME, TAG_UID};
use crate::names;
use crate::render::{self, Owner};

/// A relay, as the runner sees it.
pub type RelayTarget<'a> = Target<'a, RelaySpec, RelayStatus>;

fn want(spec: &RelaySpec) -> ServiceWant {
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
        })
        .collect();
    ServiceWant {
        cluster: spec.cluster.clone(),
        min: spec.scaling.min,
        max: spec.scaling.max,
        network: network(spec.network.as_ref()),
        load_balancers,
        deployment: DeploymentConfig {
            circuit_breaker: spec.deployment.circuit_breaker,
            rollback: spec.deployment.rollback,
            min_healthy_percent: spec.deployment.min_healthy_percent,
            max_percent: spec.deployment.max_percent,
        },
        grace: spec.health_check.as_ref().map(|h| h.grace_period_seconds),
    }
}

impl Workloads {
    /// Observe → diff → apply for one relay.
    pub async fn reconcile_relay(
        &self,
        gate: &dyn crate::gate::CallGate,
        target: &RelayTarget<'_>,
    ) -> Result<Report, RunError> {
        let calls = self.calls(gate);
        let mut report = Report::default();
        let (g, now) = (target.generation, target.now);
        let cache_endpoint = match &target.spec.cache {
            None => {
                report.outputs.insert("cacheEndpoint".into(), Value::Null);
                None
            }
            Some(cache) => match self.ensure_cache(&calls, target, cache, &mut report.events).await? {
                Some(endpoint) => {
                    report.outputs.insert("cacheEndpoint".into(), json!(endpoint));
                    Some(endpoint)
                }
                None => {
                    let message = "waiting for the ElastiCache replication group to become available";
                    report.conditions = vec![
                        condition(
                            ConditionType::Synced,
                            true,
                            "ReconcileSuccess",
                            format!("generation {g} applied"),
                            g,
                            now,
                        ),
                        condition(ConditionType::Progressing, true, "CacheCreating", message, g, now),
                        condition(ConditionType::Ready, ConditionStatus::False, "CacheCreating", message, g, now),
                    ];
                    report.requeue_after = Some(self.config.poll_in_flight);
                    return Ok(report);
                }
            },
        };
        let owner =
            Owner { uid: target.uid, namespace: target.namespace, name: target.name, region: &self.config.region };
        let input = render::relay_task(&owner, target.spec, cache_endpoint.as_deref());
        let memory = ServiceMemory {
            task_definition_arn: target.status.task_definition_arn.as_deref(),
            failed_task_definition_arn: target.status.failed_task_definition_arn.as_deref(),
            conditions: &target.status.conditions,
        };
        let service =
            self.ensure_service(&calls, target, &want(target.spec), &input, &memory, &mut report.events).await?;
        service.fill(&mut report, self.config.poll_in_flight);
        Ok(report)
    }

    /// The cache's endpoint once available; creates the replication group when
    /// it does not exist. Its id carries the relay's uid, so existing = ours.
    async fn ensure_cache(
        &self,
        calls: &Calls<'_>,
        target: &RelayTarget<'_>,
        cache: &api_types::relay::Cache,
        events: &mut Vec<Event>,
    ) -> Result<Option<String>, RunError> {
        use crate::cloud::Caches;
        let id = names::cache_id(target.name, target.uid);
        let group = match calls.caches.describe_replication_group(&id).await? {
            Some(g) => g,
            None => {
                let input = ReplicationGroupInput {
                    id: id.clone(),
                    description: format!("cache of relay {}/{}", target.namespace, target.name),
                    node_type: cache.node_type.clone(),
                    engine_version: cache.engine_version.clone(),
                    replicas: cache.replicas,
                    tags: Owner { uid: target.uid, namespace: target.namespace, name: target.name, region: "" }.tags(),
                };
                match calls.caches.create_replication_group(&input).await {
                    Ok(g) => {
                        events.push(Event::normal("CacheCreated", format!("created replication group {id}")));
                        g
                    }
                    // A lost answer to an earlier create: it is there.
                    Err(e) if e.is(ErrorKind::AlreadyExists) => return Ok(None),
                    Err(e) => return Err(e.into()),
                }
            }
        };
        Ok(if group.available() { group.primary_endpoint } else { None })
    }

    /// Tears a relay down: the service per `deletionPolicy`, then the cache
    /// per `cache.deletionPolicy` (default: the relay's).
    pub async fn cleanup_relay(
        &self,
        gate: &dyn crate::gate::CallGate,
        target: &RelayTarget<'_>,
    ) -> Result<Teardown, RunError> {
        use crate::cloud::Caches;
        let calls = self.calls(gate);
        let policy = target.spec.deletion_policy;
        if let pending @ (Teardown::Pending(..) | Teardown::Progress(_)) =
            self.teardown_service(&calls, target, &target.spec.cluster, policy).await?
        {
            return Ok(pending);
        }
        let Some(cache) = &target.spec.cache else { return Ok(Teardown::Done) };
        let id = names::cache_id(target.name, target.uid);
        let Some(group) = calls.caches.describe_replication_group(&id).await? else { return Ok(Teardown::Done) };
        match cache.deletion_policy.unwrap_or(policy) {
            DeletionPolicy::Retain => {
                calls.caches.remove_tags(&group.arn, &[TAG_UID.to_string(), TAG_NAME.to_string()]).await?;
                Ok(Teardown::Done)
            }
            DeletionPolicy::Delete => {
                if group.status != "deleting" {
                    match calls.caches.delete_replication_group(&id).await {
                        Ok(()) => {}
                        Err(e) if super::service::gone(&e) => return Ok(Teardown::Done),
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(Teardown::Pending(self.config.poll_in_flight, format!("replication group {id} is being deleted")))
            }
        }
    }
}
