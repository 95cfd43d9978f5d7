//! Spec pieces shared by several kinds: containers, networking, deletion policy,
//! and the ECS task sizes.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::patterns;
use crate::validate::Violations;

/// Tags the user wants on every AWS resource a Mooring resource owns (cost
/// allocation, ownership for humans). Mooring's own tags (`mooring:*`) always
/// win: a user tag may not use that prefix, nor AWS's reserved `aws:`.
pub type UserTags = BTreeMap<String, String>;

/// AWS allows 50 tags per resource; Mooring keeps room for its own.
pub const MAX_USER_TAGS: usize = 40;

/// Checks `spec.tags`: count, key and value lengths and characters, and the
/// reserved prefixes.
pub(crate) fn validate_tags(tags: &UserTags, path: &str, v: &mut Violations) {
    if tags.len() > MAX_USER_TAGS {
        v.push(
            path.to_string(),
            format!("at most {MAX_USER_TAGS} tags (AWS allows 50; Mooring keeps room for its own)"),
        );
    }
    let allowed = |c: char| c.is_alphanumeric() || " _.:/=+-@".contains(c);
    for (k, val) in tags {
        let field = format!("{path}.{k}");
        let lower = k.to_ascii_lowercase();
        if lower.starts_with("mooring:") || lower.starts_with("aws:") {
            v.push(field.clone(), "the prefixes mooring: and aws: are reserved");
        }
        if k.is_empty() || k.chars().count() > 128 || !k.chars().all(allowed) {
            v.push(field.clone(), "a tag key is 1 to 128 letters, digits, spaces and _ . : / = + - @");
        }
        if val.chars().count() > 256 || !val.chars().all(allowed) {
            v.push(field, "a tag value is at most 256 letters, digits, spaces and _ . : / = + - @");
        }
    }
}

/// What happens to the AWS resources when the Mooring resource is deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Tear the AWS resources down.
    #[default]
    Delete,
    /// Leave them in place, untagged from Mooring.
    Retain,
}

/// One container of an ECS task (the main container or a sidecar such as OPA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Container {
    /// Unique within the task.
    #[schemars(regex(pattern = patterns::CONTAINER_NAME))]
    pub name: String,
    /// Image reference, e.g. `public.ecr.aws/org/app:1.2.3`.
    #[schemars(regex(pattern = patterns::IMAGE))]
    pub image: String,
    /// CPU units reserved for this container (1024 = one vCPU); must fit in the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 196608))]
    pub cpu: Option<u32>,
    /// Hard memory limit in MiB; must fit in the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 6, max = 983040))]
    pub memory: Option<u32>,
    /// The TCP port the container listens on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u16>,
    /// Overrides the image's command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Plain environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Environment variables read from Secrets Manager or SSM at task start, by ARN.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretArn>,
    /// A task stops when an essential container stops. Sidecars may set false.
    #[serde(default = "yes")]
    pub essential: bool,
}

/// A Secrets Manager secret ARN or an SSM parameter ARN.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct SecretArn(#[schemars(regex(pattern = patterns::SECRET_ARN))] pub String);

pub(crate) fn yes() -> bool {
    true
}

/// Task networking for `awsvpc` mode (Fargate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Network {
    #[schemars(length(min = 1, max = 16), inner(regex(pattern = patterns::SUBNET_ID)))]
    pub subnets: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5), inner(regex(pattern = patterns::SECURITY_GROUP_ID)))]
    pub security_groups: Vec<String>,
    #[serde(default)]
    pub assign_public_ip: bool,
}

/// The Fargate task sizes ECS accepts: for each CPU value, the memory range (MiB)
/// and its step.
const FARGATE_SIZES: &[(u32, u32, u32, u32)] = &[
    // (cpu, min memory, max memory, step)
    (256, 512, 2048, 512), // only 512, 1024 and 2048
    (512, 1024, 4096, 1024),
    (1024, 2048, 8192, 1024),
    (2048, 4096, 16384, 1024),
    (4096, 8192, 30720, 1024),
    (8192, 16384, 61440, 4096),
    (16384, 32768, 122880, 8192),
];

/// Checks a task-level cpu/memory pair against the Fargate table. `256/512`,
/// `256/1024` and `256/2048` are the smallest valid pairs; `256/1536` is not one.
pub fn validate_task_size(cpu: u32, memory: u32, path: &str, v: &mut Violations) {
    match FARGATE_SIZES.iter().find(|(c, ..)| *c == cpu) {
        None => v.push(
            format!("{path}.cpu"),
            format!("{cpu} is not a Fargate CPU value; use one of 256, 512, 1024, 2048, 4096, 8192, 16384"),
        ),
        Some(&(_, lo, hi, step)) => {
            let ok = if cpu == 256 {
                matches!(memory, 512 | 1024 | 2048)
            } else {
                memory >= lo && memory <= hi && (memory - lo).is_multiple_of(step)
            };
            if !ok {
                let allowed = if cpu == 256 {
                    "512, 1024 or 2048".to_string()
                } else {
                    format!("{lo} to {hi} in steps of {step}")
                };
                v.push(format!("{path}.memory"), format!("{memory} MiB is not valid with cpu {cpu}; use {allowed}"));
            }
        }
    }
}

/// Checks one container and the names of its variables.
pub(crate) fn validate_container(c: &Container, path: &str, v: &mut Violations) {
    for (name, field) in c.env.keys().map(|k| (k, "env")).chain(c.secrets.keys().map(|k| (k, "secrets"))) {
        if !crate::validate::matches(patterns::ENV_NAME, name) {
            v.push(format!("{path}.{field}.{name}"), patterns::describe(patterns::ENV_NAME).unwrap_or("invalid name"));
        }
    }
    for name in c.env.keys() {
        if c.secrets.contains_key(name) {
            v.push(format!("{path}.secrets.{name}"), "is also set in env; a variable comes from one place");
        }
    }
}

/// Checks the containers of one task: unique names and ports, at least one
/// essential container, and reservations that fit in the task size. Each container
/// comes with its field path; problems of the whole set are reported at `path`.
pub(crate) fn validate_containers(
    containers: &[(String, &Container)],
    cpu: u32,
    memory: u32,
    path: &str,
    v: &mut Violations,
) {
    let mut names = std::collections::BTreeSet::new();
    let mut ports = std::collections::BTreeSet::new();
    for (p, c) in containers {
        validate_container(c, p, v);
        if !names.insert(c.name.as_str()) {
            v.push(format!("{p}.name"), format!("duplicate container name {:?}", c.name));
        }
        if let Some(port) = c.port
            && !ports.insert(port)
        {
            v.push(format!("{p}.port"), format!("port {port} is already used by another container"));
        }
    }
    if !containers.is_empty() && !containers.iter().any(|(_, c)| c.essential) {
        v.push(path.to_string(), "at least one container must be essential");
    }
    let cpu_sum: u32 = containers.iter().filter_map(|(_, c)| c.cpu).sum();
    if cpu_sum > cpu {
        v.push(path.to_string(), format!("containers reserve {cpu_sum} CPU units, more than the task's {cpu}"));
    }
    let mem_sum: u32 = containers.iter().filter_map(|(_, c)| c.memory).sum();
    if mem_sum > memory {
        v.push(path.to_string(), format!("containers reserve {mem_sum} MiB, more than the task's {memory}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fargate_pairs() {
        let ok = [
            (256, 512),
            (256, 1024),
            (256, 2048),
            (512, 4096),
            (1024, 3072),
            (4096, 30720),
            (8192, 20480),
            (16384, 122880),
        ];
        for (c, m) in ok {
            let mut v = Violations::default();
            validate_task_size(c, m, "spec", &mut v);
            assert!(v.is_empty(), "{c}/{m}: {v:?}");
        }
        let bad = [(256, 1536), (256, 4096), (300, 512), (512, 512), (8192, 18432), (1024, 9216)];
        for (c, m) in bad {
            let mut v = Violations::default();
            validate_task_size(c, m, "spec", &mut v);
            assert_eq!(v.len(), 1, "{c}/{m} should be refused");
        }
    }
}
