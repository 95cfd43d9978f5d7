//! Workers: SQS consumers on ECS. Mooring owns the queue and its dead-letter
//! queue (redrive policy included), corrects attribute drift, and hands the
//! queue URL to the container as `QUEUE_URL`. A queue is the worker's when it
//! carries its `mooring:uid` tag; an untagged queue of the same name is
//! adopted only on request (`mooring/adopt: "true"`), never silently.

use std::sync::Arc;
use std::time::Duration;

use api_types::Event;
use api_types::common::DeletionPolicy;
use api_types::condition::{Condition, reason};
use api_types::status::QueueRef;
use api_types::worker::{WorkerSpec, WorkerStatus};
use api_types::{Kind, WorkerSpec as Spec};
use serde_json::json;

use super::ownership::{Claim, claim};
use super::service::{EcsRecord, ServiceWant, ecs_intent, network};
use super::{Calls, Workloads, absent_long_enough, native, tags};
use crate::autoscale::{Policy, Reading, Rules, ScaleConfig};
use crate::cloud::ecs::{DeploymentConfig, SpotCapacity};
use crate::cloud::queues::QueueAttributes;
use crate::cloud::{ErrorKind, Queues, TAG_NAME, TAG_UID, Tags};
use crate::gate::CallGate;
use crate::names;
use crate::reconcile::{Reconcile, ReconcileError, Reconciled, Target, Teardown};
use crate::render::{self, Owner};
use api_types::relay::ScalingMode;
use api_types::worker::Capacity;

/// A worker, as the runner sees it.
pub type WorkerTarget<'a> = Target<'a, WorkerSpec, WorkerStatus>;

/// The worker reconciler.
pub struct Workers(pub(super) Arc<Workloads>);

/// Dead letters are kept as long as SQS allows (14 days).
const DEAD_LETTER_RETENTION: &str = "1209600";

fn want(spec: &WorkerSpec) -> ServiceWant {
    ServiceWant {
        min: spec.scaling.min,
        max: spec.scaling.max,
        network: network(spec.network.as_ref()),
        load_balancers: vec![],
        // Workers roll like relays: circuit breaker with rollback, never below the running count.
        deployment: DeploymentConfig::default(),
        grace: None,
        spot: (spec.capacity == Capacity::FargateSpot).then_some(SpotCapacity { on_demand_base: spec.on_demand_base }),
    }
}

/// The autoscaler's policy for a worker, when Mooring's controller scales it.
fn scaling(spec: &WorkerSpec, config: &ScaleConfig, paused: bool) -> Option<Policy> {
    let s = &spec.scaling;
    let rules = Rules {
        min: s.min,
        max: s.max,
        cpu_target_percent: s.cpu_target_percent,
        queue_depth_target: Some(s.queue_depth_target),
        scale_in_after_idle_seconds: s.scale_in_after_idle_seconds,
    };
    config.policy(rules, paused).filter(|_| s.mode == ScalingMode::Controller)
}

/// Visible + in-flight messages (in-flight ones are work not yet done: a
/// worker busy with them must not be scaled away).
fn backlog(attrs: &QueueAttributes) -> Reading<u64> {
    let count = |k: &str| attrs.get(k).and_then(|v| v.parse::<u64>().ok());
    match (count("ApproximateNumberOfMessages"), count("ApproximateNumberOfMessagesNotVisible")) {
        (Some(visible), Some(in_flight)) => Reading::Value(visible + in_flight),
        _ => Reading::Missing,
    }
}

fn record(status: &WorkerStatus) -> EcsRecord<'_> {
    EcsRecord {
        service: status.service.as_ref(),
        retiring: &status.retiring_services,
        task_family: status.task_family.as_deref(),
        task_definition_arn: status.task_definition_arn.as_deref(),
        failed_task_definition_arn: status.failed_task_definition_arn.as_deref(),
        hold_task_definition: false,
    }
}

/// The attributes Mooring sets on a queue, by AWS name.
/// Whether a reconcile reads the dead-letter queue again. Its queue is read
/// every time (the backlog is the scaling input); the dead-letter queue only
/// when its identity is not recorded yet, the spec changed since it was last
/// read (`last`: that generation and when), an AWS event arrived (`fresh`), or
/// that read is older than `max_age`: so a settled worker costs one
/// GetQueueAttributes per reconcile, and a dead-letter queue deleted or
/// changed behind Mooring's back is found within `max_age`. Pure.
pub(crate) fn dead_letter_due(
    last: Option<(i64, tokio::time::Instant)>,
    generation: i64,
    fresh: bool,
    known: bool,
    now: tokio::time::Instant,
    max_age: Duration,
) -> bool {
    match last {
        _ if !known || fresh => true,
        None => true,
        Some((g, at)) => g != generation || now.saturating_duration_since(at) >= max_age,
    }
}

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

/// The tags of everything a worker owns: its user tags, then Mooring's.
fn owner_tags(t: &WorkerTarget<'_>) -> Tags {
    let mut tags = t.spec.tags.clone();
    tags.insert(TAG_UID.to_string(), t.uid.to_string());
    tags.insert(TAG_NAME.to_string(), t.key());
    tags
}

#[async_trait::async_trait]
impl Reconcile for Workers {
    const KIND: Kind = Kind::Worker;
    type Spec = Spec;
    type Status = WorkerStatus;

    async fn reconcile(
        &self,
        gate: &dyn CallGate,
        target: &WorkerTarget<'_>,
    ) -> Result<Reconciled<WorkerStatus>, ReconcileError> {
        self.0.reconcile_worker(gate, target).await
    }

    async fn cleanup(
        &self,
        gate: &dyn CallGate,
        target: &WorkerTarget<'_>,
    ) -> Result<Teardown<WorkerStatus>, ReconcileError> {
        self.0.cleanup_worker(gate, target).await
    }

    fn expect(&self, target: &WorkerTarget<'_>) {
        if let Some(s) = &target.status.service {
            self.0.observer.expect(&s.cluster, &s.name);
        }
    }
}

impl Workloads {
    /// Observe → diff → apply for one worker: queues first, then the service.
    async fn reconcile_worker(
        &self,
        gate: &dyn CallGate,
        t: &WorkerTarget<'_>,
    ) -> Result<Reconciled<WorkerStatus>, ReconcileError> {
        let calls = self.calls(gate);
        let mut r = t.report();
        let (g, now, spec) = (t.generation, t.now, t.spec);

        // 1. What will be created is recorded before anything is. The queue
        // name is immutable (the API refuses a change), so it is recorded once.
        let intent = ecs_intent(t, &spec.cluster, &record(t.status), &mut r.events);
        if intent.changed || t.status.queue.is_none() || t.status.dead_letter_queue.is_none() {
            let queue = names::queue_name(t.namespace, t.name, spec.queue.name.as_deref(), spec.queue.fifo);
            if t.status.service.is_none() {
                r.status.applied_tags = spec.tags.clone();
            }
            r.status.dead_letter_queue.get_or_insert_with(|| QueueRef::named(names::dead_letter_name(&queue)));
            r.status.queue.get_or_insert_with(|| QueueRef::named(queue));
            r.status.service = Some(intent.service);
            r.status.retiring_services = intent.retiring;
            r.status.task_family = Some(intent.task_family);
            r.conditions.push(Condition::progressing(reason::CREATING, "recording what will be created", g, now));
            r.requeue(Duration::ZERO);
            return Ok(r);
        }

        // 2. The dead-letter queue, then the queue with its redrive policy.
        let (Some(dlq), Some(queue)) = (t.status.dead_letter_queue.clone(), t.status.queue.clone()) else {
            return Ok(r);
        };
        let last = self.dead_letter_checks.lock().unwrap_or_else(|e| e.into_inner()).get(t.uid).copied();
        let known = dlq.url.is_some() && dlq.arn.is_some();
        let now_i = tokio::time::Instant::now();
        let dlq = if dead_letter_due(last, t.generation, t.fresh, known, now_i, self.config.observe_max_age) {
            let (dlq, _) = self.ensure_queue(&calls, t, dlq, &queue_attributes(spec, None), &mut r.events).await?;
            self.dead_letter_checks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(t.uid.to_string(), (t.generation, now_i));
            dlq
        } else {
            dlq
        };
        let queue_want = queue_attributes(spec, dlq.arn.as_deref());
        let (queue, attrs) = self.ensure_queue(&calls, t, queue, &queue_want, &mut r.events).await?;
        let backlog = backlog(&attrs);
        if let Reading::Value(b) = backlog {
            r.status.backlog = Some(b);
        }
        let queue_url = queue.url.clone().unwrap_or_default();
        let queue_name = queue.name.clone();
        r.status.dead_letter_queue = Some(dlq);
        r.status.queue = Some(queue);

        // 3. The task definition and the service.
        let owner = Owner {
            uid: t.uid,
            namespace: t.namespace,
            name: t.name,
            family: &intent.task_family,
            user_tags: &spec.tags,
            region: &self.config.region,
        };
        let input = render::worker_task(&owner, spec, &queue_url);
        let td_arn =
            self.task_definition(&calls, t, &input, t.status.task_definition_arn.as_deref(), &mut r.events).await?;
        let initial = self.initial_count(&calls, t, &intent.service, &intent.retiring, spec.scaling.min).await?;
        let mut report = self
            .ensure_service(
                &calls,
                t,
                &intent.service,
                &want(spec),
                initial,
                &td_arn,
                &record(t.status),
                &t.status.conditions,
                &spec.tags,
                &mut r.events,
            )
            .await?;
        let paused = crate::autoscale::paused(t.annotations).is_some();
        match scaling(spec, self.scaler.config(), paused) {
            Some(policy) => {
                if let Some(d) = self.autoscale(&calls, t, &mut report, &policy, backlog, &mut r).await? {
                    r.status.last_scaling = Some(d);
                }
            }
            None => self.scaler.forget(t.uid),
        }
        let native = (spec.scaling.mode == ScalingMode::AwsNative).then(|| {
            let s = &spec.scaling;
            let svc = &report.service;
            let backlog = Some((queue_name.as_str(), s.queue_depth_target));
            native::rules(
                &svc.cluster,
                &svc.name,
                (s.min, s.max),
                s.cpu_target_percent,
                backlog,
                s.scale_in_after_idle_seconds,
            )
        });
        r.status.scalable_target = self
            .native_scaling(&calls, t, t.status.scalable_target.as_deref(), native.as_ref(), &spec.tags, &mut r)
            .await?;
        report.fill(&mut r, self.config.poll_in_flight);
        r.status.service = Some(report.service.clone());
        r.status.task_definition_arn = Some(report.task_definition_arn.clone());
        r.status.failed_task_definition_arn = report.failed_task_definition_arn.clone();
        r.status.replicas = Some(report.replicas.clone());

        // 4. A move to another cluster finishes.
        let mut retiring = intent.retiring;
        self.retire(&calls, t, &mut retiring, report.steady, &mut r).await?;
        r.status.retiring_services = retiring;

        // 5. User tags, when `spec.tags` changed.
        let (put, remove) = tags::diff(&t.status.applied_tags, &spec.tags);
        if !put.is_empty() || !remove.is_empty() {
            let service_arn = r.status.service.as_ref().and_then(|s| s.arn.clone());
            self.retag_ecs(&calls, service_arn.as_deref(), Some(&td_arn), &put, &remove).await?;
            for q in [&r.status.queue, &r.status.dead_letter_queue].into_iter().flatten() {
                if let Some(url) = &q.url {
                    calls.queues.tag_queue(url, &put).await?;
                    calls.queues.untag_queue(url, &remove).await?;
                }
            }
            r.events.push(Event::normal("TagsUpdated", "spec.tags put on the service, task definition and queues"));
            r.status.applied_tags = spec.tags.clone();
        }
        Ok(r)
    }

    /// The queue `rec` names, created, adopted or found again, with its
    /// attributes corrected. The URL in status is tried first (one call when
    /// nothing changed).
    async fn ensure_queue(
        &self,
        calls: &Calls<'_>,
        t: &WorkerTarget<'_>,
        mut rec: QueueRef,
        want: &QueueAttributes,
        events: &mut Vec<Event>,
    ) -> Result<(QueueRef, QueueAttributes), ReconcileError> {
        let name = rec.name.clone();
        let mut found = None;
        if let Some(url) = &rec.url {
            match calls.queues.queue_attributes(url).await {
                Ok(attrs) => found = Some((url.clone(), attrs)),
                Err(e) if e.is(ErrorKind::NotFound) => events.push(Event::warning(
                    "DriftDetected",
                    format!("queue {name} was deleted outside Mooring; creating it again"),
                )),
                Err(e) => return Err(e.into()),
            }
        } else if let Some(url) = calls.queues.queue_url(&name).await? {
            let what = format!("queue {name}");
            if claim(t, &calls.queues.queue_tags(&url).await?, &what)? == Claim::Adopt {
                calls.queues.tag_queue(&url, &owner_tags(t)).await?;
                events.push(Event::normal("Adopted", format!("adopted {what} ({url})")));
            }
            found = Some((url.clone(), calls.queues.queue_attributes(&url).await?));
        }
        let (url, have) = match found {
            Some(f) => f,
            None => {
                let mut attributes = want.clone();
                if name.ends_with(".fifo") {
                    attributes.insert("FifoQueue".into(), "true".into());
                }
                let url = calls.queues.create_queue(&name, &attributes, &owner_tags(t)).await?;
                events.push(Event::normal("QueueCreated", format!("created {url}")));
                let attrs = calls.queues.queue_attributes(&url).await?;
                rec.arn = attrs.get("QueueArn").cloned();
                rec.url = Some(url);
                return Ok((rec, attrs));
            }
        };
        rec.arn = have.get("QueueArn").cloned();
        rec.url = Some(url.clone());
        let drift = drifted(want, &have);
        if !drift.is_empty() {
            calls.queues.set_queue_attributes(&url, &drift).await?;
            let fields: Vec<String> =
                drift.keys().map(|k| format!("{k} was {}", have.get(k).map_or("unset", |v| v.as_str()))).collect();
            events.push(Event::warning("DriftCorrected", format!("queue {name}: {}; set back", fields.join(", "))));
        }
        Ok((rec, have))
    }

    /// Tears a worker down: every service its status records per
    /// `deletionPolicy`, its task definitions, then the queue and its
    /// dead-letter queue per `queue.deletionPolicy` (default: the worker's).
    async fn cleanup_worker(
        &self,
        gate: &dyn CallGate,
        t: &WorkerTarget<'_>,
    ) -> Result<Teardown<WorkerStatus>, ReconcileError> {
        let calls = self.calls(gate);
        let spec = t.spec;
        self.scaler.forget(t.uid);
        self.dead_letter_checks.lock().unwrap_or_else(|e| e.into_inner()).remove(t.uid);
        if let Some(id) = &t.status.scalable_target
            && spec.deletion_policy == DeletionPolicy::Delete
        {
            self.remove_native_scaling(&calls, id, &mut vec![]).await?;
        }
        let (service, retiring) = (&t.status.service, &t.status.retiring_services);
        let keep = |s: &mut WorkerStatus, service, retiring| (s.service, s.retiring_services) = (service, retiring);
        if let Some(waiting) = self.retire_recorded(&calls, t, service, retiring, spec.deletion_policy, keep).await? {
            return Ok(waiting);
        }
        if spec.deletion_policy == DeletionPolicy::Delete
            && let Some(family) = &t.status.task_family
        {
            self.deregister_task_definitions(&calls, t, family).await?;
        }
        // Each queue is forgotten once deleted, released or surely absent;
        // the others stay recorded for the next pass.
        let mut recs = [t.status.queue.clone(), t.status.dead_letter_queue.clone()];
        let mut unsure = vec![];
        for slot in &mut recs {
            let Some(rec) = slot.as_mut() else { continue };
            // A queue recorded by name only may have been created by a
            // reconcile that crashed before recording its URL: look it up.
            let url = match &rec.url {
                Some(u) => Some(u.clone()),
                None => calls.queues.queue_url(&rec.name).await?,
            };
            let tags = match &url {
                Some(url) => match calls.queues.queue_tags(url).await {
                    Ok(tags) => Some(tags),
                    Err(e) if e.is(ErrorKind::NotFound) => None,
                    Err(e) => return Err(e.into()),
                },
                None => None,
            };
            let (Some(url), Some(tags)) = (url, tags) else {
                if !absent_long_enough(rec.missing_since, t.now, self.config.absence_grace) {
                    rec.missing_since.get_or_insert(t.now);
                    unsure.push(rec.name.clone());
                    continue;
                }
                *slot = None;
                continue;
            };
            if tags.get(TAG_UID).map(String::as_str) == Some(t.uid) {
                match spec.queue.deletion_policy.unwrap_or(spec.deletion_policy) {
                    DeletionPolicy::Retain => {
                        calls.queues.untag_queue(&url, &[TAG_UID.to_string(), TAG_NAME.to_string()]).await?
                    }
                    DeletionPolicy::Delete => calls.queues.delete_queue(&url).await?,
                }
            }
            *slot = None;
        }
        if unsure.is_empty() {
            return Ok(Teardown::Done);
        }
        let message = format!("queue {} not found yet: looking again before forgetting it", unsure.join(", "));
        Ok(match Teardown::pending(t, message, self.config.poll_in_flight) {
            Teardown::Pending(mut r) => {
                let [queue, dead_letter_queue] = recs;
                r.status.queue = queue;
                r.status.dead_letter_queue = dead_letter_queue;
                Teardown::Pending(r)
            }
            done => done,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_the_dead_letter_queue_is_read_again_as_a_table() {
        let now = tokio::time::Instant::now();
        let minute = Duration::from_secs(60);
        let ago = |s: u64| now - Duration::from_secs(s);
        // (last read: generation, seconds ago), generation, fresh, known → read
        let cases = [
            (None, 1, false, true, true),
            (Some((1, 10)), 1, false, true, false),
            (Some((1, 59)), 1, false, true, false),
            (Some((1, 60)), 1, false, true, true),
            (Some((1, 10)), 2, false, true, true),
            (Some((1, 10)), 1, true, true, true),
            (Some((1, 10)), 1, false, false, true),
        ];
        for (last, generation, fresh, known, want) in cases {
            let last = last.map(|(g, s)| (g, ago(s)));
            assert_eq!(
                dead_letter_due(last, generation, fresh, known, now, minute),
                want,
                "{last:?} {generation} {fresh} {known}"
            );
        }
    }

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
