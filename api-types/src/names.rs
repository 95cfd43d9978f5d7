//! The AWS names of what a resource owns, derived from its namespace, name and
//! uid when the resource is first reconciled, then recorded in its status (see
//! [`crate::status`]): later reconciles and the teardown work from the record.
//! The derivation never changes for an existing resource (renaming would
//! orphan what the old names point at), and the store claims the names a
//! document would take so two documents never map to one AWS resource
//! ([`claims`]).
//!
//! Namespaces and names are DNS-1123 labels (no `_`), so `{namespace}_{name}`
//! is unambiguous for ECS services and task definition families (letters,
//! digits, `-`, `_`, up to 255) and for SQS queues (up to 80). ElastiCache ids
//! are short (40) and lowercase, so they carry a hash of the uid instead.

use sha2::{Digest, Sha256};

use crate::document::AnyResource;

/// The first `n` hex digits of the SHA-256 of `input`.
pub fn short_hash(input: &str, n: usize) -> String {
    let digest = hex::encode(Sha256::digest(input.as_bytes()));
    digest[..n.min(digest.len())].to_string()
}

/// `{namespace}_{name}`, shortened with a hash when longer than `max`.
fn joined(namespace: &str, name: &str, max: usize) -> String {
    let full = format!("{namespace}_{name}");
    if full.len() <= max {
        return full;
    }
    let hash = short_hash(&full, 8);
    format!("{}-{hash}", &full[..max - 9])
}

/// The ECS service name (unique per cluster).
pub fn service_name(namespace: &str, name: &str) -> String {
    joined(namespace, name, 255)
}

/// The task definition family.
pub fn task_family(namespace: &str, name: &str) -> String {
    joined(namespace, name, 255)
}

/// The CloudWatch Logs group the containers log to.
pub fn log_group(namespace: &str, name: &str) -> String {
    format!("/mooring/{namespace}/{name}")
}

/// The CloudWatch Logs group a node with `logs: cloudwatch` ships its journal
/// to. Under `nodes/`, so a node and a relay or worker of the same name never
/// share a group (names are DNS labels, so `nodes/x` is no workload's).
pub fn node_log_group(namespace: &str, name: &str) -> String {
    format!("/mooring/{namespace}/nodes/{name}")
}

/// The `awslogs-stream-prefix` of a container: its name, so its streams are
/// `<container>/<container>/<task id>` and `mooring logs --container` finds them.
pub fn log_stream_prefix(container: &str) -> &str {
    container
}

/// The worker's queue name: `spec.queue.name`, or derived (room is left for
/// the `-dlq` and `.fifo` suffixes).
pub fn queue_name(namespace: &str, name: &str, explicit: Option<&str>, fifo: bool) -> String {
    match explicit {
        Some(n) => n.to_string(),
        None => {
            let base = joined(namespace, name, 80 - "-dlq.fifo".len());
            if fifo { format!("{base}.fifo") } else { base }
        }
    }
}

/// The dead-letter queue of `queue`.
pub fn dead_letter_name(queue: &str) -> String {
    match queue.strip_suffix(".fifo") {
        Some(base) => format!("{}-dlq.fifo", truncate(base, 80 - "-dlq.fifo".len())),
        None => format!("{}-dlq", truncate(queue, 80 - "-dlq".len())),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    &s[..s.len().min(max)]
}

/// An ECS cluster's name from `spec.cluster`, which may be its name or its
/// ARN (`arn:aws:ecs:REGION:ACCOUNT:cluster/NAME`): CloudWatch dimensions and
/// Application Auto Scaling resource ids take the name only.
pub fn cluster_name(cluster: &str) -> &str {
    if cluster.starts_with("arn:") { cluster.rsplit('/').next().unwrap_or(cluster) } else { cluster }
}

/// The ElastiCache replication group id: a readable prefix of the name and 8
/// hex digits of the uid (lowercase, starts with a letter, no `--`, ≤ 40).
pub fn cache_id(name: &str, uid: &str) -> String {
    let mut prefix = String::from("m-");
    for c in name.chars().take(28) {
        if c == '-' && prefix.ends_with('-') {
            continue;
        }
        prefix.push(c);
    }
    if !prefix.ends_with('-') {
        prefix.push('-');
    }
    format!("{prefix}{}", short_hash(uid, 8))
}

/// A token for idempotent creates: stable for one resource and generation, at
/// most `max` characters (ECS takes 36, EC2 64).
pub fn client_token(uid: &str, purpose: &str, generation: i64, max: usize) -> String {
    short_hash(&format!("{uid}/{purpose}/{generation}"), max.min(64))
}

/// The account-wide AWS names a document takes, as `service:name` claims: the
/// ECS service name and task definition family of a relay or worker (one name
/// for both), a worker's queue and dead-letter queue. Two documents whose
/// claims overlap would fight over one AWS resource, so the store refuses the
/// second. Names carry no cluster: a service may move between clusters.
pub fn claims(doc: &AnyResource) -> Vec<String> {
    let m = doc.metadata();
    match doc {
        AnyResource::Node(_) | AnyResource::NodeSet(_) | AnyResource::Policy(_) => vec![],
        AnyResource::Relay(_) => vec![format!("ecs:{}", service_name(&m.namespace, &m.name))],
        AnyResource::Worker(w) => {
            let q = &w.spec.queue;
            let queue = queue_name(&m.namespace, &m.name, q.name.as_deref(), q.fifo);
            vec![
                format!("ecs:{}", service_name(&m.namespace, &m.name)),
                format!("sqs:{}", dead_letter_name(&queue)),
                format!("sqs:{queue}"),
            ]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_by_name_or_arn() {
        assert_eq!(cluster_name("prod"), "prod");
        assert_eq!(cluster_name("arn:aws:ecs:us-east-1:123456789012:cluster/prod"), "prod");
    }

    #[test]
    fn names_fit_aws_limits() {
        let long = "a".repeat(63);
        assert_eq!(service_name("default", "web"), "default_web");
        let q = queue_name(&long, &long, None, true);
        assert!(q.len() <= 80 - 4 && q.ends_with(".fifo"), "{q}");
        let dlq = dead_letter_name(&q);
        assert!(dlq.len() <= 80 && dlq.ends_with("-dlq.fifo"), "{dlq}");
        assert_eq!(dead_letter_name("jobs"), "jobs-dlq");
        let id = cache_id(&long, "7c9e6679-7425-40de-944b-e07fc1f90ae7");
        assert!(id.len() <= 40 && !id.contains("--") && id.starts_with("m-"), "{id}");
        assert_eq!(cache_id("a--b", "u"), format!("m-a-b-{}", short_hash("u", 8)));
        assert_eq!(client_token("u", "service", 3, 36).len(), 36);
        assert_ne!(client_token("u", "service", 3, 36), client_token("u", "service", 4, 36));
    }
}
