//! The AWS-event trigger: reads EventBridge events from an SQS queue, maps them
//! to Mooring resources by the identifiers their status records (service ARN,
//! task definition ARN, instance id) or a `mooring:uid` tag, and announces them
//! on the change feed so the replica holding each resource looks again at once.
//! Messages are deleted only after the announcement committed (at least once;
//! a duplicate only causes one more reconcile, which is idempotent).

use std::sync::Arc;
use std::time::Duration;

use desired_state::store::Store;
use runners::events::{EventQueue, parse_event};
use runners::gate::CallGate;
use tokio::sync::watch;

/// Reads the event queue until `stop`.
pub struct EventTrigger {
    pub store: Store,
    pub queue: Arc<dyn EventQueue>,
    pub gate: Arc<dyn CallGate>,
}

impl EventTrigger {
    /// Handles one batch; returns how many resources were poked.
    pub async fn poll_once(&self, wait_seconds: i32) -> Result<usize, String> {
        let messages = self.queue.receive(self.gate.as_ref(), 10, wait_seconds).await.map_err(|e| e.to_string())?;
        let mut handled = Vec::with_capacity(messages.len());
        let mut poked = 0;
        for m in messages {
            match parse_event(&m.body) {
                Some(refs) if !refs.is_empty() => {
                    let arns: Vec<String> = refs.arns.iter().chain(refs.service_arns.iter()).cloned().collect();
                    let uids: Vec<uuid::Uuid> = refs.uids.iter().filter_map(|u| u.parse().ok()).collect();
                    let targets = match self.store.find_by_aws_refs(&arns, &refs.instance_ids, &uids).await {
                        Ok(t) => t,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot map an AWS event; it stays in the queue");
                            continue;
                        }
                    };
                    let mut ok = true;
                    for r in &targets {
                        if let Err(e) = self.store.touch(r).await {
                            tracing::warn!(error = %e, "cannot announce an AWS event; it stays in the queue");
                            ok = false;
                            break;
                        }
                        tracing::info!(resource = %format!("{}/{}/{}", r.kind, r.namespace, r.name), event = %refs.detail_type, "AWS event");
                        poked += 1;
                    }
                    if ok {
                        handled.push(m.receipt);
                    }
                }
                // Not an event Mooring follows: drop it rather than read it forever.
                _ => handled.push(m.receipt),
            }
        }
        if !handled.is_empty() {
            self.queue.delete(self.gate.as_ref(), &handled).await.map_err(|e| e.to_string())?;
        }
        Ok(poked)
    }

    /// Long-polls the queue until `stop` turns true; errors back off.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut failures = 0u32;
        loop {
            if *stop.borrow() {
                return;
            }
            let round = tokio::select! {
                r = self.poll_once(10) => r,
                _ = stop.changed() => return,
            };
            match round {
                Ok(_) => failures = 0,
                Err(e) => {
                    failures += 1;
                    let delay = Duration::from_millis((500u64 << failures.min(6)).min(30_000));
                    tracing::warn!(error = %e, ?delay, "reading AWS events failed");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        }
    }
}
