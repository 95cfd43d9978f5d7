//! AWS events as reconcile triggers.
//!
//! EventBridge rules send ECS task and service events and EC2 instance
//! state-change events to an SQS queue. Each event names AWS resources (ARNs,
//! instance ids, an ECS service); the controller maps them to the Mooring
//! resources whose status records those identifiers and looks at them again
//! at once, instead of waiting for the periodic resync.

use serde_json::Value;

use crate::gate::CallGate;

/// One message from the event queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub receipt: String,
    pub body: String,
}

/// Reading the queue failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct QueueError(pub String);

/// The queue the event trigger reads (SQS, or a test double of the same shape).
#[async_trait::async_trait]
pub trait EventQueue: Send + Sync {
    /// Up to `max` (≤ 10) messages, long-polling up to `wait_seconds` (≤ 20).
    async fn receive(&self, gate: &dyn CallGate, max: i32, wait_seconds: i32) -> Result<Vec<QueueMessage>, QueueError>;
    /// Deletes handled messages (batches of ≤ 10).
    async fn delete(&self, gate: &dyn CallGate, receipts: &[String]) -> Result<(), QueueError>;
}

/// What an event points at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventRefs {
    /// The event's `detail-type`, for logs.
    pub detail_type: String,
    /// Every ARN the event names (tasks, services, clusters, instances).
    pub arns: Vec<String>,
    /// EC2 instance ids.
    pub instance_ids: Vec<String>,
    /// ECS service ARNs derived from a task's `group` (`service:NAME`) and cluster.
    pub service_arns: Vec<String>,
    /// `mooring:uid` values, when the event carries tags.
    pub uids: Vec<String>,
}

impl EventRefs {
    pub fn is_empty(&self) -> bool {
        self.arns.is_empty() && self.instance_ids.is_empty() && self.service_arns.is_empty() && self.uids.is_empty()
    }
}

/// Reads an EventBridge event (as delivered to SQS). Returns `None` for a body
/// that is not an event of a kind Mooring follows.
pub fn parse_event(body: &str) -> Option<EventRefs> {
    let v: Value = serde_json::from_str(body).ok()?;
    let detail_type = v.get("detail-type")?.as_str()?.to_string();
    let source = v.get("source").and_then(Value::as_str).unwrap_or_default();
    if source != "aws.ecs" && source != "aws.ec2" {
        return None;
    }
    let detail = v.get("detail").cloned().unwrap_or(Value::Null);
    let mut refs = EventRefs { detail_type, ..Default::default() };
    if let Some(resources) = v.get("resources").and_then(Value::as_array) {
        refs.arns.extend(resources.iter().filter_map(Value::as_str).map(str::to_string));
    }
    for key in ["taskArn", "serviceArn", "clusterArn", "containerInstanceArn", "taskDefinitionArn"] {
        if let Some(a) = detail.get(key).and_then(Value::as_str) {
            refs.arns.push(a.to_string());
        }
    }
    if let (Some(group), Some(cluster)) =
        (detail.get("group").and_then(Value::as_str), detail.get("clusterArn").and_then(Value::as_str))
        && let Some(service) = group.strip_prefix("service:")
        && let Some((prefix, cluster_name)) = cluster.split_once(":cluster/")
    {
        refs.service_arns.push(format!("{prefix}:service/{cluster_name}/{service}"));
    }
    if let Some(id) = detail.get("instance-id").and_then(Value::as_str) {
        refs.instance_ids.push(id.to_string());
    }
    for arn in &refs.arns {
        if let Some(id) = arn.rsplit_once(":instance/").map(|(_, id)| id) {
            refs.instance_ids.push(id.to_string());
        }
    }
    // Tags, where an event carries them (ECS task events with propagated tags).
    if let Some(tags) = detail.get("tags").and_then(Value::as_array) {
        for t in tags {
            if t.get("key").and_then(Value::as_str) == Some("mooring:uid")
                && let Some(val) = t.get("value").and_then(Value::as_str)
            {
                refs.uids.push(val.to_string());
            }
        }
    }
    refs.arns.sort();
    refs.arns.dedup();
    refs.instance_ids.sort();
    refs.instance_ids.dedup();
    Some(refs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecs_task_state_change_names_its_service() {
        let body = r#"{"version":"0","id":"x","detail-type":"ECS Task State Change","source":"aws.ecs",
          "account":"123456789012","region":"us-east-1",
          "resources":["arn:aws:ecs:us-east-1:123456789012:task/prod/0123abcd"],
          "detail":{"clusterArn":"arn:aws:ecs:us-east-1:123456789012:cluster/prod","group":"service:gateway",
                    "lastStatus":"STOPPED","desiredStatus":"STOPPED","taskArn":"arn:aws:ecs:us-east-1:123456789012:task/prod/0123abcd",
                    "taskDefinitionArn":"arn:aws:ecs:us-east-1:123456789012:task-definition/gateway:3"}}"#;
        let r = parse_event(body).unwrap();
        assert_eq!(r.service_arns, vec!["arn:aws:ecs:us-east-1:123456789012:service/prod/gateway"]);
        assert!(r.arns.contains(&"arn:aws:ecs:us-east-1:123456789012:task-definition/gateway:3".to_string()));
    }

    #[test]
    fn ec2_state_change_names_its_instance() {
        let body = r#"{"detail-type":"EC2 Instance State-change Notification","source":"aws.ec2",
          "resources":["arn:aws:ec2:us-east-1:123456789012:instance/i-0abc"],
          "detail":{"instance-id":"i-0abc","state":"stopping"}}"#;
        let r = parse_event(body).unwrap();
        assert_eq!(r.instance_ids, vec!["i-0abc"]);
    }

    #[test]
    fn other_bodies_are_ignored() {
        assert!(parse_event("not json").is_none());
        assert!(parse_event(r#"{"detail-type":"x","source":"aws.s3"}"#).is_none());
        assert!(parse_event(r#"{"hello":"world"}"#).is_none());
    }
}
