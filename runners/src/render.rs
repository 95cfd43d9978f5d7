//! Renders specs into what ECS registers: a Fargate task definition with the
//! containers (sidecars included), ports, environment, secrets by ARN, the
//! `awslogs` driver and the task and execution roles.
//!
//! The rendering is canonical (maps are sorted, defaults spelled out), and its
//! hash is tagged onto the registered revision, so Mooring registers a new
//! revision only when the rendering changed and, after a crash, recognises the
//! revision it registered before.

use std::collections::BTreeMap;

use api_types::common::{Container, UserTags};
use api_types::relay::RelaySpec;
use api_types::worker::WorkerSpec;

use crate::cloud::ecs::{ContainerDefinition, LogConfig, TaskDefinitionInput};
use crate::cloud::{TAG_NAME, TAG_RENDER_HASH, TAG_UID, Tags};
use crate::names;

/// Who a rendering is for: the resource's identity, the task definition
/// family recorded in its status, its user tags and the AWS Region.
#[derive(Debug, Clone)]
pub struct Owner<'a> {
    pub uid: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub family: &'a str,
    pub user_tags: &'a UserTags,
    pub region: &'a str,
}

impl Owner<'_> {
    /// The tags every AWS resource of this owner carries: the user's
    /// `spec.tags`, then Mooring's own (which win).
    pub fn tags(&self) -> Tags {
        let mut tags = self.user_tags.clone();
        tags.extend([
            (TAG_UID.to_string(), self.uid.to_string()),
            (TAG_NAME.to_string(), format!("{}/{}", self.namespace, self.name)),
        ]);
        tags
    }
}

/// The environment variable a relay with a cache gets (`host:port` of the primary).
pub const CACHE_ENDPOINT_ENV: &str = "CACHE_ENDPOINT";
/// The environment variable a worker gets with its queue URL.
pub const QUEUE_URL_ENV: &str = "QUEUE_URL";

fn container(owner: &Owner<'_>, c: &Container, extra_env: &BTreeMap<String, String>) -> ContainerDefinition {
    let mut environment = c.env.clone();
    for (k, v) in extra_env {
        // What the spec sets explicitly wins over what Mooring adds.
        if !c.secrets.contains_key(k) {
            environment.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    ContainerDefinition {
        name: c.name.clone(),
        image: c.image.clone(),
        cpu: c.cpu,
        memory: c.memory,
        port: c.port,
        command: c.command.clone(),
        environment,
        secrets: c.secrets.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect(),
        essential: c.essential,
        stop_timeout: None,
        log: LogConfig {
            group: names::log_group(owner.namespace, owner.name),
            region: owner.region.to_string(),
            stream_prefix: names::log_stream_prefix(&c.name).to_string(),
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn task_definition(
    owner: &Owner<'_>,
    cpu: u32,
    memory: u32,
    ephemeral_storage_gib: Option<u32>,
    task_role: Option<&String>,
    execution_role: Option<&String>,
    containers: Vec<ContainerDefinition>,
) -> TaskDefinitionInput {
    let mut input = TaskDefinitionInput {
        family: owner.family.to_string(),
        cpu,
        memory,
        task_role_arn: task_role.cloned(),
        execution_role_arn: execution_role.cloned(),
        containers,
        ephemeral_storage_gib,
        tags: owner.tags(),
    };
    let hash = render_hash(&input);
    input.tags.insert(TAG_RENDER_HASH.to_string(), hash);
    input
}

/// The hash of a rendering's canonical JSON (tags excluded).
pub fn render_hash(input: &TaskDefinitionInput) -> String {
    let json = serde_json::to_string(input).unwrap_or_default();
    names::short_hash(&json, 16)
}

/// The task definition of a relay; `cache_endpoint` is injected as
/// [`CACHE_ENDPOINT_ENV`] into every container once the cache is available,
/// and `deployment.drainSeconds` becomes every container's `stopTimeout`.
pub fn relay_task(owner: &Owner<'_>, spec: &RelaySpec, cache_endpoint: Option<&str>) -> TaskDefinitionInput {
    let extra: BTreeMap<String, String> =
        cache_endpoint.map(|e| (CACHE_ENDPOINT_ENV.to_string(), e.to_string())).into_iter().collect();
    let drain = spec.deployment.drain_seconds;
    let containers = spec
        .containers
        .iter()
        .map(|c| ContainerDefinition { stop_timeout: drain, ..container(owner, c, &extra) })
        .collect();
    task_definition(
        owner,
        spec.cpu,
        spec.memory,
        None,
        spec.task_role_arn.as_ref(),
        spec.execution_role_arn.as_ref(),
        containers,
    )
}

/// The task definition of a worker: its container gets [`QUEUE_URL_ENV`].
pub fn worker_task(owner: &Owner<'_>, spec: &WorkerSpec, queue_url: &str) -> TaskDefinitionInput {
    let extra = BTreeMap::from([(QUEUE_URL_ENV.to_string(), queue_url.to_string())]);
    let containers = std::iter::once(container(owner, &spec.container, &extra))
        .chain(spec.sidecars.iter().map(|c| container(owner, c, &BTreeMap::new())))
        .collect();
    task_definition(
        owner,
        spec.cpu,
        spec.memory,
        spec.ephemeral_storage_gib,
        spec.task_role_arn.as_ref(),
        spec.execution_role_arn.as_ref(),
        containers,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay() -> RelaySpec {
        serde_json::from_value(serde_json::json!({
            "cluster": "apps",
            "containers": [
                {"name": "api", "image": "ghcr.io/acme/api:1.0", "port": 8080, "env": {"B": "2", "A": "1"},
                 "secrets": {"TOKEN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:tok-AbCdEf"}},
                {"name": "opa", "image": "openpolicyagent/opa:0.60.0", "port": 8181, "essential": false}
            ]
        }))
        .unwrap()
    }

    fn owner() -> Owner<'static> {
        static NO_TAGS: UserTags = UserTags::new();
        Owner {
            uid: "u-1",
            namespace: "default",
            name: "gateway",
            family: "default_gateway",
            user_tags: &NO_TAGS,
            region: "us-east-1",
        }
    }

    #[test]
    fn drain_seconds_become_every_containers_stop_timeout_and_change_the_hash() {
        let plain = relay_task(&owner(), &relay(), None);
        assert!(plain.containers.iter().all(|c| c.stop_timeout.is_none()));
        let json = serde_json::to_string(&plain).unwrap();
        assert!(!json.contains("stop_timeout"), "unset, it is not rendered (existing hashes stay): {json}");
        let mut spec = relay();
        spec.deployment.drain_seconds = Some(60);
        let draining = relay_task(&owner(), &spec, None);
        assert!(draining.containers.iter().all(|c| c.stop_timeout == Some(60)));
        assert_ne!(render_hash(&draining), render_hash(&plain), "a new drain time is a new revision");
    }

    #[test]
    fn relay_renders_sidecars_logs_and_hash() {
        let td = relay_task(&owner(), &relay(), None);
        assert_eq!(td.family, "default_gateway");
        assert_eq!(td.containers.len(), 2);
        assert_eq!(td.containers[1].name, "opa");
        assert_eq!(td.containers[0].log.group, "/mooring/default/gateway");
        assert_eq!(
            td.containers[0].secrets["TOKEN"],
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:tok-AbCdEf"
        );
        assert_eq!(td.tags[TAG_RENDER_HASH], render_hash(&td));
        assert_eq!(td.tags[TAG_UID], "u-1");
        // Same spec, same hash; an image change, another hash.
        assert_eq!(render_hash(&relay_task(&owner(), &relay(), None)), render_hash(&td));
        let mut changed = relay();
        changed.containers[0].image = "ghcr.io/acme/api:1.1".into();
        assert_ne!(render_hash(&relay_task(&owner(), &changed, None)), render_hash(&td));
        let with_cache = relay_task(&owner(), &relay(), Some("c.example:6379"));
        assert_eq!(with_cache.containers[1].environment[CACHE_ENDPOINT_ENV], "c.example:6379");
    }

    #[test]
    fn worker_gets_its_queue_url() {
        let spec: WorkerSpec = serde_json::from_value(serde_json::json!({
            "cluster": "jobs", "container": {"name": "convert", "image": "acme/convert:2"}
        }))
        .unwrap();
        let td = worker_task(&owner(), &spec, "https://sqs/q");
        assert_eq!(td.containers[0].environment[QUEUE_URL_ENV], "https://sqs/q");
    }
}
