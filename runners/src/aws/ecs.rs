//! The ECS facade over the AWS SDK: Fargate services and their task
//! definitions, translated between Mooring's terms and ECS's.
//!
//! Every call is one AWS request (no retries or budgets here beyond the SDK's
//! own retry mode: [`Gated`](crate::cloud::gated::Gated) does that).

use async_trait::async_trait;
use aws_sdk_ecs::Client;
use aws_sdk_ecs::types as ecs;

use super::ecs_rollout::{
    advanced_configuration, advanced_of, continue_action, count, deployment_config_of, deployment_configuration, int,
    service_deployment_of,
};
use super::error::{cloud_error, in_cluster};
use crate::cloud::ecs::{
    ContainerDefinition, Deployment, Ecs, HookAction, LoadBalancerRef, MAX_DESCRIBE_SERVICES, MAX_LISTED_TASKS,
    MAX_TASK_PROTECTION, NetworkConfig, RolloutState, Service, ServiceDeployment, ServiceInput, ServiceState,
    ServiceUpdate, SpotCapacity, StopKind, TaskDefinition, TaskDefinitionInput,
};
use crate::cloud::{CloudError, CloudResult, ErrorKind, Op, Tags, ops};

/// ECS through the SDK; the implementation of [`Ecs`] that talks to AWS (or moto).
#[derive(Clone, Debug)]
pub struct SdkEcs {
    client: Client,
}

impl SdkEcs {
    /// A facade over a client built from the shared configuration.
    pub fn new(config: &aws_config::SdkConfig) -> SdkEcs {
        SdkEcs { client: Client::new(config) }
    }

    /// A facade over an existing client (tests, custom configuration).
    pub fn from_client(client: Client) -> SdkEcs {
        SdkEcs { client }
    }
}

fn sdk_tags(tags: &Tags) -> Option<Vec<ecs::Tag>> {
    (!tags.is_empty()).then(|| tags.iter().map(|(k, v)| ecs::Tag::builder().key(k).value(v).build()).collect())
}

fn tags_of(tags: Option<&[ecs::Tag]>) -> Tags {
    tags.unwrap_or_default()
        .iter()
        .filter_map(|t| Some((t.key.clone()?, t.value.clone().unwrap_or_default())))
        .collect()
}

fn invalid(op: &Op, e: impl std::fmt::Display) -> CloudError {
    CloudError::new(op, ErrorKind::Invalid, e.to_string())
}

fn container(op: &Op, c: &ContainerDefinition) -> CloudResult<ecs::ContainerDefinition> {
    let log = ecs::LogConfiguration::builder()
        .log_driver(ecs::LogDriver::Awslogs)
        .options("awslogs-group", &c.log.group)
        .options("awslogs-region", &c.log.region)
        .options("awslogs-stream-prefix", &c.log.stream_prefix)
        .build()
        .map_err(|e| invalid(op, e))?;
    let secrets = c
        .secrets
        .iter()
        .map(|(name, arn)| ecs::Secret::builder().name(name).value_from(arn).build().map_err(|e| invalid(op, e)))
        .collect::<CloudResult<Vec<_>>>()?;
    let environment: Vec<_> =
        c.environment.iter().map(|(k, v)| ecs::KeyValuePair::builder().name(k).value(v).build()).collect();
    let port = c.port.map(|p| {
        ecs::PortMapping::builder().container_port(i32::from(p)).protocol(ecs::TransportProtocol::Tcp).build()
    });
    Ok(ecs::ContainerDefinition::builder()
        .name(&c.name)
        .image(&c.image)
        .set_cpu(c.cpu.map(|v| int(op, "container cpu", v)).transpose()?)
        .set_memory(c.memory.map(|v| int(op, "container memory", v)).transpose()?)
        .set_port_mappings(port.map(|p| vec![p]))
        .set_command((!c.command.is_empty()).then(|| c.command.clone()))
        .set_environment((!environment.is_empty()).then_some(environment))
        .set_secrets((!secrets.is_empty()).then_some(secrets))
        .essential(c.essential)
        .set_stop_timeout(c.stop_timeout.map(|s| int(op, "stop timeout", s)).transpose()?)
        .log_configuration(log)
        .build())
}

fn network(op: &Op, n: &NetworkConfig) -> CloudResult<ecs::NetworkConfiguration> {
    let vpc = ecs::AwsVpcConfiguration::builder()
        .set_subnets(Some(n.subnets.clone()))
        // Always sent, even empty (AWS then uses the VPC's default group):
        // moto fails with a 500 when the field is absent.
        .set_security_groups(Some(n.security_groups.clone()))
        .assign_public_ip(if n.assign_public_ip { ecs::AssignPublicIp::Enabled } else { ecs::AssignPublicIp::Disabled })
        .build()
        .map_err(|e| invalid(op, e))?;
    Ok(ecs::NetworkConfiguration::builder().awsvpc_configuration(vpc).build())
}

fn load_balancers(lbs: &[LoadBalancerRef]) -> Vec<ecs::LoadBalancer> {
    lbs.iter()
        .map(|lb| {
            ecs::LoadBalancer::builder()
                .target_group_arn(&lb.target_group_arn)
                .container_name(&lb.container_name)
                .container_port(i32::from(lb.container_port))
                .set_advanced_configuration(lb.advanced.as_ref().map(advanced_configuration))
                .build()
        })
        .collect()
}

fn network_of(n: Option<&ecs::NetworkConfiguration>) -> Option<NetworkConfig> {
    let vpc = n?.awsvpc_configuration.as_ref()?;
    Some(NetworkConfig {
        subnets: vpc.subnets.clone(),
        security_groups: vpc.security_groups.clone().unwrap_or_default(),
        assign_public_ip: vpc.assign_public_ip == Some(ecs::AssignPublicIp::Enabled),
    })
}

fn deployment_of(d: &ecs::Deployment) -> Deployment {
    Deployment {
        id: d.id.clone().unwrap_or_default(),
        primary: d.status.as_deref() == Some("PRIMARY"),
        task_definition: d.task_definition.clone().unwrap_or_default(),
        desired_count: count(d.desired_count),
        running_count: count(d.running_count),
        rollout: match d.rollout_state {
            Some(ecs::DeploymentRolloutState::Completed) => RolloutState::Completed,
            Some(ecs::DeploymentRolloutState::Failed) => RolloutState::Failed,
            // Missing (moto may leave it unset) or IN_PROGRESS.
            _ => RolloutState::InProgress,
        },
        rollout_reason: d.rollout_state_reason.clone(),
    }
}

/// The contract's service. `cluster` is the cluster as the caller named it
/// (not AWS's ARN), so callers can key by what they asked for.
fn service_of(cluster: &str, s: &ecs::Service) -> Service {
    Service {
        arn: s.service_arn.clone().unwrap_or_default(),
        name: s.service_name.clone().unwrap_or_default(),
        cluster: cluster.to_string(),
        state: match s.status.as_deref() {
            Some("DRAINING") => ServiceState::Draining,
            Some("INACTIVE") => ServiceState::Inactive,
            _ => ServiceState::Active,
        },
        task_definition: s.task_definition.clone().unwrap_or_default(),
        desired_count: count(s.desired_count),
        running_count: count(s.running_count),
        pending_count: count(s.pending_count),
        network: network_of(s.network_configuration.as_ref()),
        load_balancers: s
            .load_balancers
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter_map(|lb| {
                Some(LoadBalancerRef {
                    target_group_arn: lb.target_group_arn.clone()?,
                    container_name: lb.container_name.clone().unwrap_or_default(),
                    container_port: lb.container_port.and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
                    advanced: advanced_of(lb.advanced_configuration.as_ref()),
                })
            })
            .collect(),
        deployment: deployment_config_of(s.deployment_configuration.as_ref()),
        health_check_grace_seconds: s.health_check_grace_period_seconds.map(count),
        deployments: s.deployments.as_deref().unwrap_or_default().iter().map(deployment_of).collect(),
        current_service_deployment: s.current_service_deployment.clone(),
        spot: spot_of(s.capacity_provider_strategy.as_deref()),
        tags: tags_of(s.tags.as_deref()),
    }
}

fn task_definition_of(op: &Op, td: Option<ecs::TaskDefinition>, tags: Tags) -> CloudResult<TaskDefinition> {
    let td = td.ok_or_else(|| CloudError::new(op, ErrorKind::Other, "the answer has no task definition"))?;
    Ok(TaskDefinition {
        arn: td.task_definition_arn.unwrap_or_default(),
        family: td.family.unwrap_or_default(),
        revision: td.revision,
        active: td.status == Some(ecs::TaskDefinitionStatus::Active),
        tags,
    })
}

/// The family of a task definition ARN (`...:task-definition/family:3` → `family`).
fn family_of_arn(arn: &str) -> Option<&str> {
    let (_, tail) = arn.rsplit_once('/')?;
    Some(tail.rsplit_once(':').map_or(tail, |(family, _)| family))
}

/// The revision of a task definition ARN (`...:task-definition/family:3` → 3).
fn revision_of_arn(arn: &str) -> Option<i32> {
    arn.rsplit_once(':')?.1.parse().ok()
}

/// FARGATE_SPOT for every task beyond `on_demand_base` on FARGATE.
fn capacity_strategy(op: &Op, s: SpotCapacity) -> CloudResult<Vec<ecs::CapacityProviderStrategyItem>> {
    let item = |provider: &str, base: u32, weight: u32| {
        ecs::CapacityProviderStrategyItem::builder()
            .capacity_provider(provider)
            .base(int(op, "on-demand base", base)?)
            .weight(int(op, "weight", weight)?)
            .build()
            .map_err(|e| invalid(op, e))
    };
    Ok(vec![item("FARGATE", s.on_demand_base, 0)?, item("FARGATE_SPOT", 0, 1)?])
}

/// Spot capacity as the service reports it (`None`: launch type, or no FARGATE_SPOT).
fn spot_of(strategy: Option<&[ecs::CapacityProviderStrategyItem]>) -> Option<SpotCapacity> {
    let items = strategy?;
    items.iter().any(|i| i.capacity_provider == "FARGATE_SPOT").then(|| SpotCapacity {
        on_demand_base: items.iter().find(|i| i.capacity_provider == "FARGATE").map_or(0, |i| count(i.base)),
    })
}

fn no_service(op: &Op) -> CloudError {
    CloudError::new(op, ErrorKind::Other, "the answer has no service")
}

#[async_trait]
impl Ecs for SdkEcs {
    async fn describe_services(&self, cluster: &str, names: &[String]) -> CloudResult<Vec<Service>> {
        let op = ops::DESCRIBE_SERVICES;
        // AWS refuses more than ten (moto does not): the contract is AWS's.
        if names.len() > MAX_DESCRIBE_SERVICES {
            return Err(CloudError::new(
                &op,
                ErrorKind::Invalid,
                format!("DescribeServices takes at most {MAX_DESCRIBE_SERVICES} services, not {}", names.len()),
            ));
        }
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let out = self
            .client
            .describe_services()
            .cluster(cluster)
            .set_services(Some(names.to_vec()))
            .include(ecs::ServiceField::Tags)
            .send()
            .await
            .map_err(|e| in_cluster(cloud_error(&op, e), cluster))?;
        // MISSING means "no such service", which the contract expresses by
        // omission; any other failure says nothing about existence.
        if let Some(f) = out.failures().iter().find(|f| f.reason.as_deref() != Some("MISSING")) {
            return Err(CloudError::new(
                &op,
                ErrorKind::Other,
                format!(
                    "{}: {} {}",
                    f.arn.as_deref().unwrap_or("?"),
                    f.reason.as_deref().unwrap_or("failure"),
                    f.detail.as_deref().unwrap_or_default()
                ),
            ));
        }
        Ok(out
            .services()
            .iter()
            .map(|s| service_of(cluster, s))
            .filter(|s| s.state != ServiceState::Inactive)
            .collect())
    }

    async fn create_service(&self, input: &ServiceInput) -> CloudResult<Service> {
        let op = ops::CREATE_SERVICE;
        let out = self
            .client
            .create_service()
            .cluster(&input.cluster)
            .service_name(&input.name)
            .task_definition(&input.task_definition)
            .client_token(&input.client_token)
            .set_launch_type(input.spot.is_none().then_some(ecs::LaunchType::Fargate))
            .set_capacity_provider_strategy(input.spot.map(|s| capacity_strategy(&op, s)).transpose()?)
            .desired_count(int(&op, "desired count", input.desired_count)?)
            .set_network_configuration(input.network.as_ref().map(|n| network(&op, n)).transpose()?)
            .set_load_balancers((!input.load_balancers.is_empty()).then(|| load_balancers(&input.load_balancers)))
            .set_health_check_grace_period_seconds(
                input.health_check_grace_seconds.map(|s| int(&op, "health check grace period", s)).transpose()?,
            )
            .deployment_configuration(deployment_configuration(&op, &input.deployment)?)
            .set_tags(sdk_tags(&input.tags))
            .propagate_tags(ecs::PropagateTags::Service)
            .send()
            .await
            .map_err(|e| in_cluster(cloud_error(&op, e), &input.cluster))?;
        out.service().map(|s| service_of(&input.cluster, s)).ok_or_else(|| no_service(&op))
    }

    async fn update_service(&self, update: &ServiceUpdate) -> CloudResult<Service> {
        let op = ops::UPDATE_SERVICE;
        let out = self
            .client
            .update_service()
            .cluster(&update.cluster)
            .service(&update.name)
            .set_task_definition(update.task_definition.clone())
            .set_desired_count(update.desired_count.map(|c| int(&op, "desired count", c)).transpose()?)
            .set_network_configuration(update.network.as_ref().map(|n| network(&op, n)).transpose()?)
            // `Some(empty)` removes every load balancer, as in AWS.
            .set_load_balancers(update.load_balancers.as_deref().map(load_balancers))
            .set_deployment_configuration(
                update.deployment.as_ref().map(|d| deployment_configuration(&op, d)).transpose()?,
            )
            .set_health_check_grace_period_seconds(
                update.health_check_grace_seconds.map(|s| int(&op, "health check grace period", s)).transpose()?,
            )
            .set_capacity_provider_strategy(update.spot.map(|s| capacity_strategy(&op, s)).transpose()?)
            // A new capacity strategy takes effect with a new deployment.
            .force_new_deployment(update.spot.is_some())
            .send()
            .await
            .map_err(|e| in_cluster(cloud_error(&op, e), &update.cluster))?;
        out.service().map(|s| service_of(&update.cluster, s)).ok_or_else(|| no_service(&op))
    }

    async fn delete_service(&self, cluster: &str, name: &str, force: bool) -> CloudResult<()> {
        let op = ops::DELETE_SERVICE;
        self.client
            .delete_service()
            .cluster(cluster)
            .service(name)
            .force(force)
            .send()
            .await
            .map_err(|e| in_cluster(cloud_error(&op, e), cluster))?;
        Ok(())
    }

    async fn retag(&self, arn: &str, add: &Tags, remove: &[String]) -> CloudResult<()> {
        if let Some(tags) = sdk_tags(add) {
            let op = ops::TAG_RESOURCE;
            self.client
                .tag_resource()
                .resource_arn(arn)
                .set_tags(Some(tags))
                .send()
                .await
                .map_err(|e| cloud_error(&op, e))?;
        }
        if !remove.is_empty() {
            let op = ops::UNTAG_RESOURCE;
            self.client
                .untag_resource()
                .resource_arn(arn)
                .set_tag_keys(Some(remove.to_vec()))
                .send()
                .await
                .map_err(|e| cloud_error(&op, e))?;
        }
        Ok(())
    }

    async fn register_task_definition(&self, input: &TaskDefinitionInput) -> CloudResult<TaskDefinition> {
        let op = ops::REGISTER_TASK_DEFINITION;
        let containers = input.containers.iter().map(|c| container(&op, c)).collect::<CloudResult<Vec<_>>>()?;
        let out = self
            .client
            .register_task_definition()
            .family(&input.family)
            .network_mode(ecs::NetworkMode::Awsvpc)
            .set_requires_compatibilities(Some(vec![ecs::Compatibility::Fargate]))
            .cpu(input.cpu.to_string())
            .memory(input.memory.to_string())
            .set_task_role_arn(input.task_role_arn.clone())
            .set_execution_role_arn(input.execution_role_arn.clone())
            .set_container_definitions(Some(containers))
            .set_ephemeral_storage(
                input
                    .ephemeral_storage_gib
                    .map(|g| {
                        int(&op, "ephemeral storage", g)
                            .map(|g| ecs::EphemeralStorage::builder().size_in_gib(g).build())
                    })
                    .transpose()?,
            )
            .set_tags(sdk_tags(&input.tags))
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        // AWS echoes the tags; moto does not. They were set by this very call,
        // so the input's tags are the revision's tags either way.
        let tags = match out.tags.as_deref() {
            Some(tags) if !tags.is_empty() => tags_of(Some(tags)),
            _ => input.tags.clone(),
        };
        task_definition_of(&op, out.task_definition, tags)
    }

    async fn describe_task_definition(&self, arn: &str) -> CloudResult<TaskDefinition> {
        let op = ops::DESCRIBE_TASK_DEFINITION;
        let out = self
            .client
            .describe_task_definition()
            .task_definition(arn)
            .include(ecs::TaskDefinitionField::Tags)
            .send()
            .await
            .map_err(|e| {
                // ECS answers an unknown revision with a generic
                // ClientException ("Unable to describe task definition.").
                let missing = aws_sdk_ecs::error::ProvideErrorMetadata::code(&e) == Some("ClientException");
                let mut err = cloud_error(&op, e);
                if missing {
                    err.kind = ErrorKind::NotFound;
                }
                err
            })?;
        let tags = tags_of(out.tags.as_deref());
        task_definition_of(&op, out.task_definition, tags)
    }

    async fn list_task_definitions(&self, family: &str) -> CloudResult<Vec<String>> {
        let op = ops::LIST_TASK_DEFINITIONS;
        let mut arns = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = self
                .client
                .list_task_definitions()
                .family_prefix(family)
                .status(ecs::TaskDefinitionStatus::Active)
                .sort(ecs::SortOrder::Desc)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| cloud_error(&op, e))?;
            // AWS documents `familyPrefix` as the full family name (moto compares
            // exactly); the name says prefix, so never let `web` list `web-canary`.
            arns.extend(out.task_definition_arns().iter().filter(|a| family_of_arn(a) == Some(family)).cloned());
            match out.next_token {
                Some(token) if !token.is_empty() => next = Some(token),
                _ => break,
            }
        }
        // Newest first whatever the endpoint did with `sort` (moto ignores it).
        arns.sort_by_key(|a| std::cmp::Reverse(revision_of_arn(a)));
        Ok(arns)
    }

    async fn deregister_task_definition(&self, arn: &str) -> CloudResult<()> {
        let op = ops::DEREGISTER_TASK_DEFINITION;
        self.client.deregister_task_definition().task_definition(arn).send().await.map_err(|e| cloud_error(&op, e))?;
        Ok(())
    }

    async fn list_service_tasks(&self, cluster: &str, service: &str) -> CloudResult<Vec<String>> {
        let op = ops::LIST_TASKS;
        let out = self
            .client
            .list_tasks()
            .cluster(cluster)
            .service_name(service)
            .desired_status(ecs::DesiredStatus::Running)
            .max_results(MAX_LISTED_TASKS as i32)
            .send()
            .await
            .map_err(|e| in_cluster(cloud_error(&op, e), cluster))?;
        Ok(out.task_arns().to_vec())
    }

    async fn protected_tasks(&self, cluster: &str, tasks: &[String]) -> CloudResult<Vec<String>> {
        let op = ops::GET_TASK_PROTECTION;
        if tasks.len() > MAX_TASK_PROTECTION {
            return Err(CloudError::new(
                &op,
                ErrorKind::Invalid,
                format!("GetTaskProtection takes at most {MAX_TASK_PROTECTION} tasks, not {}", tasks.len()),
            ));
        }
        if tasks.is_empty() {
            return Ok(Vec::new());
        }
        let out = self
            .client
            .get_task_protection()
            .cluster(cluster)
            .set_tasks(Some(tasks.to_vec()))
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        Ok(out
            .protected_tasks()
            .iter()
            .filter(|t| t.protection_enabled())
            .filter_map(|t| t.task_arn().map(String::from))
            .collect())
    }

    async fn describe_service_deployment(&self, arn: &str) -> CloudResult<Option<ServiceDeployment>> {
        let op = ops::DESCRIBE_SERVICE_DEPLOYMENTS;
        let out = self
            .client
            .describe_service_deployments()
            .service_deployment_arns(arn)
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        Ok(out.service_deployments().iter().filter_map(service_deployment_of).find(|d| d.arn == arn))
    }

    async fn continue_service_deployment(&self, arn: &str, hook_id: &str, action: HookAction) -> CloudResult<()> {
        let op = ops::CONTINUE_SERVICE_DEPLOYMENT;
        self.client
            .continue_service_deployment()
            .service_deployment_arn(arn)
            .hook_id(hook_id)
            .action(continue_action(action))
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        Ok(())
    }

    async fn stop_service_deployment(&self, arn: &str, kind: StopKind) -> CloudResult<()> {
        let op = ops::STOP_SERVICE_DEPLOYMENT;
        let stop = match kind {
            StopKind::Rollback => ecs::StopServiceDeploymentStopType::Rollback,
            StopKind::Abort => ecs::StopServiceDeploymentStopType::Abort,
        };
        self.client
            .stop_service_deployment()
            .service_deployment_arn(arn)
            .stop_type(stop)
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_of_an_arn() {
        assert_eq!(family_of_arn("arn:aws:ecs:us-east-1:123456789012:task-definition/web:12"), Some("web"));
        assert_eq!(
            family_of_arn("arn:aws:ecs:us-east-1:123456789012:task-definition/web-canary:1"),
            Some("web-canary")
        );
        assert_eq!(family_of_arn("web"), None);
        assert_eq!(revision_of_arn("arn:aws:ecs:us-east-1:123456789012:task-definition/web:12"), Some(12));
    }

    #[test]
    fn a_deployment_without_rollout_state_is_in_progress() {
        let d = ecs::Deployment::builder().id("ecs-svc/1").status("PRIMARY").desired_count(2).running_count(2).build();
        let d = deployment_of(&d);
        assert!(d.primary);
        assert_eq!(d.rollout, RolloutState::InProgress);
        let failed = ecs::Deployment::builder()
            .status("ACTIVE")
            .rollout_state(ecs::DeploymentRolloutState::Failed)
            .rollout_state_reason("circuit breaker")
            .build();
        let failed = deployment_of(&failed);
        assert!(!failed.primary);
        assert_eq!(failed.rollout, RolloutState::Failed);
        assert_eq!(failed.rollout_reason.as_deref(), Some("circuit breaker"));
    }
}
