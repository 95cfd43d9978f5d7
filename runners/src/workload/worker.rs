//! Workers: SQS consumers on ECS. Mooring owns the queue and its dead-letter
//! queue (redrive policy included), corrects attribute drift, and hands the
//! queue URL to the container as `QUEUE_URL`.

use api_types::common::DeletionPolicy;
use api_types::worker::{WorkerSpec, WorkerStatus};
use serde_json::json;

use super::service::{ServiceMemory, ServiceWant, network};
use super::{Calls, Event, Report, RunError, Target, Teardown, Workloads};
use crate::cloud::ecs::DeploymentConfig;
use crate::cloud::queues::QueueAttributes;
use crate::cloud::{ErrorKind, Queues, TAG_NAME, TAG_UID};
use crate::names;
use crate::render::{self, Owner};

/// A worker, as the runner sees it.
pub type WorkerTarget<'a> = Target<'a, WorkerSpec, WorkerStatus>;

/// Dead letters are kept as long as SQS allows (14 days).
const DEAD_LETTER_RETENTION: &str = "1209600";

fn want(spec: &WorkerSpec) -> ServiceWant {
    ServiceWant {
        cluster: spec.cluster.clone(),
        min: spec.scaling.min,
        max: spec.scaling.max,
        network: network(spec.network.as_ref()),
        load_balancers: vec![],
        // Workers roll like relays: circuit breaker with rollback, never below the running count.
        deployment: DeploymentConfig::default(),
        grace: None,
    }
}

/// The attributes Mooring sets on a queue, by AWS name.
fn queue_attributes(spec: &WorkerSpec, dead_letter_arn: Option<&str>) -> QueueAttributes {
    let q = &spec.queue;
    let mut a = QueueAttributes::new();
    a.insert("VisibilityTimeout".into(), q.visibility_timeout_seconds.to_string());
    a.insert("MessageRetentionPeriod".into(), q.message_retention_seconds.to_string());
    match dead_letter_arn {
        Some(arn) => {
            let policy = json!({"deadLetterTargetArn": arn, "maxReceiveCount": q.dead_letter.max_receive_count});
            a.insert("RedrivePolicy".into(), policy.to_string());
        }
        None => {
            a.insert("MessageRetentionPeriod".into(), DEAD_LETTER_RETENTION.into());
        }
    }
    a
}

/// The attributes of `have` that differ from `want`. A redrive policy is
/// compared as JSON (AWS may write the count as a string).
fn drifted(want: &QueueAttributes, have: &QueueAttributes) -> QueueAttributes {
    want.iter()
        .filter(|(k, v)| match (k.as_str(), have.get(*k)) {
            (_, None) => true,
            ("RedrivePolicy", Some(h)) => !same_redrive(v, h),
            (_, Some(h)) => h != *v,
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn same_redrive(a: &str, b: &str) -> bool {
    let parse = |s: &str| -> Option<(String, String)> {
        let v: serde_json::Value = serde_json::from_str(s).ok()?;
        let count = match &v["maxReceiveCount"] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        Some((v["deadLetterTargetArn"].as_str()?.to_string(), count))
    };
    parse(a).is_some() && parse(a) == parse(b)
}

impl Workloads {
    /// Observe → diff → apply for one worker: queues first, then the service.
    pub async fn reconcile_worker(
        &self,
        gate: &dyn crate::gate::CallGate,
        target: &WorkerTarget<'_>,
    ) -> Result<Report, RunError> {
        let calls = self.calls(gate);
        let mut report = Report::default();
        let spec = target.spec;
        let name = names::queue_name(target.namespace, target.name, spec.queue.name.as_deref(), spec.queue.fifo);
        let dead_letter = names::dead_letter_name(&name);
        let dlq_want = queue_attributes(spec, None);
        let (dlq_url, dlq_attrs) = self
            .ensure_queue(
                &calls,
                target,
                &dead_letter,
                target.status.dead_letter_queue_url.as_deref(),
                &dlq_want,
                &mut report.events,
            )
            .await?;
        let dlq_arn = dlq_attrs.get("QueueArn").cloned().unwrap_or_default();
        let queue_want = queue_attributes(spec, Some(&dlq_arn));
        let (queue_url, _) = self
            .ensure_queue(&calls, target, &name, target.status.queue_url.as_deref(), &queue_want, &mut report.events)
            .await?;
        report.outputs.insert("queueUrl".into(), json!(queue_url));
        report.outputs.insert("deadLetterQueueUrl".into(), json!(dlq_url));

        let owner =
            Owner { uid: target.uid, namespace: target.namespace, name: target.name, region: &self.config.region };
        let input = render::worker_task(&owner, spec, &queue_url);
        let memory = ServiceMemory {
            task_definition_arn: target.status.task_definition_arn.as_deref(),
            failed_task_definition_arn: target.status.failed_task_definition_arn.as_deref(),
            conditions: &target.status.conditions,
        };
        let service = self.ensure_service(&calls, target, &want(spec), &input, &memory, &mut report.events).await?;
        service.fill(&mut report, self.config.poll_in_flight);
        Ok(report)
    }

    /// The queue's URL and attributes after creating it or correcting drift.
    /// The URL in status is tried first (one call when nothing changed).
    async fn ensure_queue(
        &self,
        calls: &Calls<'_>,
        target: &WorkerTarget<'_>,
        name: &str,
        known_url: Option<&str>,
        want: &QueueAttributes,
        events: &mut Vec<Event>,
    ) -> Result<(String, QueueAttributes), RunError> {
        let mut found = None;
        if let Some(url) = known_url.filter(|u| u.ends_with(&format!("/{name}"))) {
            match calls.queues.queue_attributes(url).await {
                Ok(attrs) => found = Some((url.to_string(), attrs)),
                Err(e) if e.is(ErrorKind::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if found.is_none()
            && let Some(url) = calls.queues.queue_url(name).await?
        {
            let tags = calls.queues.queue_tags(&url).await?;
            if tags.get(TAG_UID).is_some_and(|u| u != target.uid) {
                return Err(RunError::Conflict(format!("queue {name} belongs to another resource")));
            }
            found = Some((url.clone(), calls.queues.queue_attributes(&url).await?));
        }
        let Some((url, have)) = found else {
            let mut attributes = want.clone();
            if name.ends_with(".fifo") {
                attributes.insert("FifoQueue".into(), "true".into());
            }
            let tags = Owner { uid: target.uid, namespace: target.namespace, name: target.name, region: "" }.tags();
            let url = calls.queues.create_queue(name, &attributes, &tags).await?;
            events.push(Event::normal("QueueCreated", format!("created {url}")));
            let attrs = calls.queues.queue_attributes(&url).await?;
            return Ok((url, attrs));
        };
        let drift = drifted(want, &have);
        if drift.is_empty() {
            return Ok((url, have));
        }
        calls.queues.set_queue_attributes(&url, &drift).await?;
        let fields: Vec<String> =
            drift.keys().map(|k| format!("{k} was {}", have.get(k).map_or("unset", |v| v.as_str()))).collect();
        events.push(Event::warning("DriftCorrected", format!("queue {name}: {}; set back", fields.join(", "))));
        let mut attrs = have;
        attrs.extend(drift);
        Ok((url, attrs))
    }

    /// Tears a worker down: the service per `deletionPolicy`, then the queue
    /// and its dead-letter queue per `queue.deletionPolicy` (default: the worker's).
    pub async fn cleanup_worker(
        &self,
        gate: &dyn crate::gate::CallGate,
        target: &WorkerTarget<'_>,
    ) -> Result<Teardown, RunError> {
        let calls = self.calls(gate);
        let spec = target.spec;
        if let pending @ (Teardown::Pending(..) | Teardown::Progress(_)) =
            self.teardown_service(&calls, target, &spec.cluster, spec.deletion_policy).await?
        {
            return Ok(pending);
        }
        let name = names::queue_name(target.namespace, target.name, spec.queue.name.as_deref(), spec.queue.fifo);
        for queue in [name.clone(), names::dead_letter_name(&name)] {
            let Some(url) = calls.queues.queue_url(&queue).await? else { continue };
            let tags = calls.queues.queue_tags(&url).await?;
            if tags.get(TAG_UID).is_some_and(|u| u != target.uid) {
                continue;
            }
            match spec.queue.deletion_policy.unwrap_or(spec.deletion_policy) {
                DeletionPolicy::Retain => {
                    calls.queues.untag_queue(&url, &[TAG_UID.to_string(), TAG_NAME.to_string()]).await?
                }
                DeletionPolicy::Delete => calls.queues.delete_queue(&url).await?,
            }
        }
        Ok(Teardown::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redrive_policies_compare_as_json() {
        let want = r#"{"deadLetterTargetArn":"arn:q-dlq","maxReceiveCount":5}"#;
        assert!(same_redrive(want, r#"{"maxReceiveCount":"5","deadLetterTargetArn":"arn:q-dlq"}"#));
        assert!(!same_redrive(want, r#"{"deadLetterTargetArn":"arn:q-dlq","maxReceiveCount":6}"#));
        let w =
            QueueAttributes::from([("RedrivePolicy".into(), want.into()), ("VisibilityTimeout".into(), "30".into())]);
        let h = QueueAttributes::from([
            ("RedrivePolicy".into(), r#"{"deadLetterTargetArn":"arn:q-dlq","maxReceiveCount":"5"}"#.into()),
            ("VisibilityTimeout".into(), "45".into()),
        ]);
        assert_eq!(drifted(&w, &h).keys().collect::<Vec<_>>(), vec!["VisibilityTimeout"]);
    }
}
