//! The controller runtime: triggers feed per-kind work queues, workers run the
//! reconcilers for keys in shards this replica holds, status goes back to the
//! store with the lease's fencing token.
//!
//! Triggers: the store's change feed (resumed from its position after any
//! database outage), the acquisition of a shard (every resource in it is queued),
//! and a jittered periodic resync of everything owned. Keys of shards held by
//! another replica are dropped; that replica queues them itself.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use api_types::meta::FINALIZER;
use api_types::{Event, Kind};
use desired_state::store::{ChangeFeed, ChangeFilter, ChangeOp, ListQuery, Store, StoreError, StoredResource};
use futures::StreamExt;
use runners::gate::{ApiFamily, CallGate, GateError, Priority};
use runners::reconcile::Retry;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::lease::{Owned, ShardLeases, shard_of};
use crate::metrics::ControllerMetrics;
use crate::queue::{Lane, WorkQueue};
use crate::reconcile::{Context, Reconcilers, failed_status};
use crate::retry::BackoffPolicy;

/// How many times in a row a page of resources to queue is asked for before
/// the periodic resync is left to queue them (about 45 s of backoff).
const ENQUEUE_LIST_ATTEMPTS: u32 = 12;

/// The hold a reconcile works under, and whether it observes afresh.
struct Held {
    shard: u32,
    fence: i64,
    owned_rx: watch::Receiver<Owned>,
    fresh: bool,
}

/// The identity of a resource in the queue.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

impl ResourceKey {
    fn of(r: &StoredResource) -> ResourceKey {
        ResourceKey { kind: r.kind, namespace: r.namespace.clone(), name: r.name.clone() }
    }

    /// The shard this key belongs to.
    pub fn shard(&self, shards: u32) -> u32 {
        shard_of(self.kind.as_str(), &self.namespace, &self.name, shards)
    }
}

/// Runtime settings.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Concurrent reconciles per kind.
    pub workers_per_kind: usize,
    /// Every owned resource is reconciled at least this often (±10% jitter).
    pub resync: Duration,
    /// Per-key backoff after errors.
    pub backoff: BackoffPolicy,
    /// How long in-flight reconciles may run after shutdown was asked.
    pub shutdown_grace: Duration,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            workers_per_kind: 8,
            resync: Duration::from_secs(300),
            backoff: BackoffPolicy::default(),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// A controller replica.
pub struct Controller {
    store: Store,
    feed: ChangeFeed,
    leases: Arc<ShardLeases>,
    reconcilers: Reconcilers,
    gate: Arc<dyn CallGate>,
    metrics: Arc<ControllerMetrics>,
    config: ControllerConfig,
    queues: HashMap<Kind, WorkQueue<ResourceKey>>,
    /// Keys an AWS event arrived for, or whose shard this replica newly
    /// holds, since their last reconcile: those observe AWS afresh instead of
    /// trusting a recent cached observation (one this replica made before it
    /// lost the shard may be older than what the shard's holder since did).
    announced: std::sync::Mutex<std::collections::HashSet<ResourceKey>>,
}

impl Controller {
    pub fn new(
        store: Store,
        feed: ChangeFeed,
        leases: Arc<ShardLeases>,
        reconcilers: Reconcilers,
        gate: Arc<dyn CallGate>,
        metrics: Arc<ControllerMetrics>,
        config: ControllerConfig,
    ) -> Arc<Controller> {
        // Only the kinds reconciled against AWS get a queue: Policy documents are
        // judged at admission, and the controller has nothing to do with them.
        let queues = Kind::RECONCILED.into_iter().map(|k| (k, WorkQueue::new(config.backoff))).collect();
        let announced = Default::default();
        metrics.max_concurrent_reconciles.set(config.workers_per_kind.max(1) as i64);
        for kind in Kind::RECONCILED {
            metrics.init_kind(kind.as_str());
        }
        metrics.shards.set(i64::from(leases.config().shards));
        Arc::new(Controller { store, feed, leases, reconcilers, gate, metrics, config, queues, announced })
    }

    /// The queue of a kind (tests and metrics).
    pub fn queue(&self, kind: Kind) -> &WorkQueue<ResourceKey> {
        &self.queues[&kind]
    }

    /// The lease manager.
    pub fn leases(&self) -> &Arc<ShardLeases> {
        &self.leases
    }

    fn shards(&self) -> u32 {
        self.leases.config().shards
    }

    fn enqueue(&self, key: ResourceKey, lane: Lane) {
        if let Some(queue) = self.queues.get(&key.kind) {
            queue.add_in(key, lane);
            self.metrics.queued(false);
            self.update_depth();
        }
    }

    fn update_depth(&self) {
        let depth: usize = self.queues.values().map(|q| q.len()).sum();
        self.metrics.queue_depth.set(depth as i64);
    }

    /// Runs until `stop` turns true, then stops taking work, lets in-flight
    /// reconciles finish within the grace period, and releases the leases.
    pub async fn run(self: Arc<Self>, stop: watch::Receiver<bool>) {
        let mut tasks = JoinSet::new();
        let start_seq = loop {
            match self.store.current_seq().await {
                Ok(s) => break s,
                Err(e) => {
                    tracing::warn!(error = %e, "controller waiting for the store");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = wait_stop(stop.clone()) => return,
                    }
                }
            }
        };
        tasks.spawn(self.leases.clone().run(stop.clone()));
        tasks.spawn(self.clone().follow_feed(start_seq, stop.clone()));
        tasks.spawn(self.clone().follow_ownership(stop.clone()));
        tasks.spawn(self.clone().resync_loop(stop.clone()));
        let mut workers = JoinSet::new();
        for kind in Kind::RECONCILED {
            for _ in 0..self.config.workers_per_kind.max(1) {
                workers.spawn(self.clone().worker(kind));
            }
        }
        wait_stop(stop.clone()).await;
        tracing::info!(replica = %self.leases.replica(), "controller stopping: no new work");
        for q in self.queues.values() {
            q.shut_down();
        }
        let grace =
            tokio::time::timeout(self.config.shutdown_grace, async { while workers.join_next().await.is_some() {} });
        if grace.await.is_err() {
            tracing::warn!("abandoning reconciles still running after the grace period");
            workers.abort_all();
        }
        // The lease loop releases on stop; wait for it and the triggers.
        let _ =
            tokio::time::timeout(Duration::from_secs(10), async { while tasks.join_next().await.is_some() {} }).await;
        tasks.abort_all();
        tracing::info!(replica = %self.leases.replica(), "controller stopped");
    }

    async fn follow_feed(self: Arc<Self>, since: i64, stop: watch::Receiver<bool>) {
        let mut changes = Box::pin(self.feed.subscribe(since, ChangeFilter::default()));
        let shards = self.shards();
        loop {
            let change = tokio::select! {
                c = changes.next() => c,
                _ = wait_stop(stop.clone()) => return,
            };
            let Some(change) = change else {
                // The feed no longer keeps our position (compacted while this
                // replica was far behind): look at everything held again, and
                // follow from now.
                let now = loop {
                    match self.store.current_seq().await {
                        Ok(seq) => break seq,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot read the feed's position; retrying");
                            tokio::select! {
                                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                                _ = wait_stop(stop.clone()) => return,
                            }
                        }
                    }
                };
                tracing::warn!(resume = now, "the change feed's position expired; resyncing everything held");
                changes = Box::pin(self.feed.subscribe(now, ChangeFilter::default()));
                self.resync_now().await;
                continue;
            };
            // Our own status writes are not a reason to look again.
            if change.op == ChangeOp::Status {
                continue;
            }
            let key = ResourceKey { kind: change.kind, namespace: change.namespace, name: change.name };
            if self.leases.holds(key.shard(shards)) {
                if change.op == ChangeOp::Delete {
                    if let Some(queue) = self.queues.get(&key.kind) {
                        queue.forget(&key);
                    }
                    self.announced.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
                } else {
                    if change.op == ChangeOp::Event {
                        self.announced.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone());
                    }
                    // A first create waits behind changes to what exists already.
                    let lane = if change.op == ChangeOp::Create { Lane::Routine } else { Lane::Urgent };
                    self.enqueue(key, lane);
                }
            }
        }
    }

    async fn follow_ownership(self: Arc<Self>, stop: watch::Receiver<bool>) {
        let mut rx = self.leases.subscribe();
        // Shard → the fencing token it is held with.
        let mut known: BTreeMap<u32, i64> = BTreeMap::new();
        // Every shard this replica has held: only what it observed under an
        // earlier hold can predate another holder's changes.
        let mut held_before: BTreeSet<u32> = BTreeSet::new();
        loop {
            let owned: BTreeMap<u32, i64> =
                rx.borrow_and_update().shards.iter().map(|(&shard, held)| (shard, held.fence)).collect();
            self.metrics.leases_held.set(owned.len() as i64);
            // Newly held: not held before, or held again with another token (the
            // hold lapsed and was taken anew, as after Redis lost the leases).
            // Reconciles of the old hold were dropped (`LeaseNotHeld`, or no
            // hold when they started) expecting the new holder to look again,
            // and the new holder may be this replica.
            let gained: BTreeSet<u32> = owned
                .iter()
                .filter(|&(shard, fence)| known.get(shard) != Some(fence))
                .map(|(&shard, _)| shard)
                .collect();
            if !gained.is_empty() {
                tracing::info!(replica = %self.leases.replica(), shards = ?gained, "queueing every resource of newly held shards");
                // Held before: observe afresh. Never held (a start, a
                // rebalance): nothing of them is cached, and the sweep's
                // observations are batched as usual.
                let again: BTreeSet<u32> = gained.intersection(&held_before).copied().collect();
                self.enqueue_shards(&gained, &again).await;
            }
            held_before.extend(owned.keys().copied());
            known = owned;
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                _ = wait_stop(stop.clone()) => return,
            }
        }
    }

    async fn resync_loop(self: Arc<Self>, stop: watch::Receiver<bool>) {
        loop {
            let jitter = 0.9 + rand::random::<f64>() * 0.2;
            let wait = self.config.resync.mul_f64(jitter);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = wait_stop(stop.clone()) => return,
            }
            self.resync_now().await;
        }
    }

    /// Queues every resource of the shards this replica holds now, once: what
    /// the periodic resync does (benchmarks and tests trigger it themselves).
    /// Returns when the keys are queued, not when they are reconciled.
    pub async fn resync_now(&self) {
        let owned: BTreeSet<u32> = self.leases.owned().shard_ids().collect();
        self.enqueue_shards(&owned, &BTreeSet::new()).await;
    }

    /// Queues every resource whose shard is in `shards`, page by page. A page
    /// the store cannot give (Postgres restarting) is asked for again with
    /// backoff for about 45 s before the periodic resync is left to do
    /// it: the resources of a newly held shard are queued nowhere else.
    /// The first reconciles of the resources of `afresh` (held again) observe AWS afresh.
    async fn enqueue_shards(&self, shards: &BTreeSet<u32>, afresh: &BTreeSet<u32>) {
        if shards.is_empty() {
            return;
        }
        let n = self.shards();
        let mut after = None;
        let mut failures = 0u32;
        loop {
            let page =
                match self.store.list(&ListQuery { limit: 1000, after: after.clone(), ..Default::default() }).await {
                    Ok(p) => {
                        failures = 0;
                        p
                    }
                    Err(e) if failures < ENQUEUE_LIST_ATTEMPTS => {
                        failures += 1;
                        tracing::warn!(error = %e, failures, "cannot list resources to queue; retrying");
                        let delay = Duration::from_millis(200 << failures.min(5)).min(Duration::from_secs(5));
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot list resources to queue; the next resync will");
                        return;
                    }
                };
            for r in &page.items {
                let key = ResourceKey::of(r);
                let shard = key.shard(n);
                if shards.contains(&shard) {
                    if let Some(reconciler) = self.reconcilers.get(&key.kind) {
                        reconciler.expect(r);
                    }
                    if afresh.contains(&shard) {
                        self.announced.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone());
                    }
                    self.enqueue(key, Lane::Routine);
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return,
            }
        }
    }

    async fn worker(self: Arc<Self>, kind: Kind) {
        let queue = self.queues[&kind].clone();
        while let Some((key, wait)) = queue.get().await {
            self.metrics.waited(wait.waited);
            self.update_depth();
            let span = tracing::info_span!("reconcile", resource = %key);
            self.metrics.active_workers.inc();
            let started = tokio::time::Instant::now();
            let (result, lane) = {
                // The shard is not handed back while this reconcile runs.
                let _in_flight = self.leases.in_flight().enter(key.shard(self.shards()));
                self.reconcile_key(&key).instrument(span).await
            };
            self.metrics.active_workers.dec();
            self.metrics.reconciled(kind.as_str(), result.label(), started.elapsed());
            match result {
                Next::Done => queue.forget(&key),
                Next::After(d) => {
                    queue.forget(&key);
                    queue.add_after_in(key.clone(), d, lane);
                }
                Next::Later(d) => queue.add_after_in(key.clone(), d, lane),
                Next::Retry => {
                    queue.add_rate_limited_in(key.clone(), lane);
                    self.metrics.queued(true);
                }
                Next::Drop => {}
            }
            queue.done(&key);
        }
    }

    /// Reconciles one key; says what the queue does with it next, and in which lane.
    async fn reconcile_key(&self, key: &ResourceKey) -> (Next, Lane) {
        // Taken whatever this pass does, so no key stays marked: a key that
        // is gone, or whose shard is held elsewhere, is marked again only if
        // it comes back (an event, this replica holding the shard again).
        let fresh = self.announced.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
        let shard = key.shard(self.shards());
        let owned_rx = self.leases.subscribe();
        let Some(fence) = owned_rx.borrow().fence(shard) else {
            // Another replica holds the shard, or our hold lapsed (Redis down): do nothing.
            return (Next::Drop, Lane::Routine);
        };
        let resource = match self.store.get(key.kind, &key.namespace, &key.name).await {
            Ok(r) => r,
            Err(StoreError::NotFound { .. }) => return (Next::Done, Lane::Routine),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the resource");
                return (Next::Retry, Lane::Routine);
            }
        };
        let lane = lane_of(&resource);
        (self.reconcile_resource(resource, Held { shard, fence, owned_rx, fresh }, key, lane).await, lane)
    }

    async fn reconcile_resource(&self, resource: StoredResource, held: Held, key: &ResourceKey, lane: Lane) -> Next {
        let Held { shard, fence, owned_rx, fresh } = held;
        let Some(reconciler) = self.reconcilers.get(&key.kind).cloned() else {
            return Next::Drop;
        };
        let priority = match lane {
            Lane::Urgent => Priority::Urgent,
            Lane::Routine => Priority::Routine,
        };
        let gate = OwnedGate { inner: self.gate.clone(), owned: owned_rx, shard, fence, priority };
        let ctx = Context { fence, gate: &gate, now: chrono::Utc::now(), fresh };
        let deleting = resource.deletion_timestamp.is_some();
        if deleting && !resource.finalizers.iter().any(|f| f == FINALIZER) {
            return Next::Done;
        }
        let outcome = if deleting {
            reconciler.cleanup(&ctx, &resource).await.map(|step| step.ok_or(Cleaned))
        } else {
            reconciler.reconcile(&ctx, &resource).await.map(Ok)
        };
        let (status, events, result) = match outcome {
            Ok(Ok(step)) => (Some(step.status), step.events, Ok(Some(step.requeue_after))),
            Ok(Err(Cleaned)) => (None, vec![], Ok(None)),
            Err(e) => {
                tracing::warn!(error = %e, reason = e.reason(), "reconcile failed");
                // A lost lease writes nothing; a call deferred for budget is not a failure.
                let quiet = matches!(e.retry(), Retry::Drop | Retry::Later(_));
                let status = (!quiet).then(|| failed_status(&resource.status, resource.generation, &e, ctx.now));
                let events = if quiet { vec![] } else { vec![Event::warning(e.reason(), e.to_string())] };
                (status, events, Err(e.retry()))
            }
        };
        let written = match &status {
            Some(status) => self.write_status(&resource, status, fence).await,
            None => Written::Unchanged,
        };
        if matches!(written, Written::Ok | Written::Unchanged) {
            self.record_events(&resource, &events).await;
        }
        if result == Ok(None) {
            // Cleaned up: the finalizer goes.
            return match self.store.remove_finalizer(resource.uid, FINALIZER).await {
                Ok(_) => {
                    tracing::info!("cleaned up; finalizer removed");
                    Next::Done
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot remove the finalizer");
                    Next::Retry
                }
            };
        }
        next_after(result.map(|r| r.flatten()), written)
    }

    /// Writes status unless it is unchanged, with the lease's fencing token.
    async fn write_status(&self, r: &StoredResource, status: &serde_json::Value, fence: i64) -> Written {
        if &r.status == status {
            return Written::Unchanged;
        }
        match self.store.write_status(r.kind, &r.namespace, &r.name, r.uid, status, Some(fence)).await {
            Ok(_) => Written::Ok,
            Err(StoreError::Fenced { token, seen, .. }) => {
                tracing::warn!(token, seen, "status write refused: another replica holds this shard now");
                Written::Fenced
            }
            Err(StoreError::StaleStatus { generation, stored, .. }) => {
                tracing::info!(generation, stored, "status write refused: a newer generation's status is stored");
                Written::Stale
            }
            Err(StoreError::NotFound { .. }) => Written::Gone,
            Err(e) => {
                tracing::warn!(error = %e, "cannot write status; retrying with backoff");
                Written::Failed
            }
        }
    }

    async fn record_events(&self, r: &StoredResource, events: &[Event]) {
        for e in events {
            self.metrics.event(r.kind.as_str(), e.type_.as_str(), &e.reason);
            if let Err(err) = self.store.record_event(r, e.type_, &e.reason, &e.message).await {
                tracing::warn!(error = %err, "cannot record event");
            }
        }
    }
}

/// The lane a resource's next look waits in: resources that exist — changed
/// since they were created, or applied to AWS (`Synced=True`) — and deletions
/// go ahead of first creates.
fn lane_of(r: &StoredResource) -> Lane {
    let synced = r.status["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Synced" && c["status"] == "True"));
    if synced || r.generation > 1 || r.deletion_timestamp.is_some() { Lane::Urgent } else { Lane::Routine }
}

/// A teardown found AWS clean.
#[derive(Debug)]
struct Cleaned;

/// How a status write went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    Ok,
    /// Nothing to write.
    Unchanged,
    /// A newer lease holder wrote first: this replica no longer owns the resource.
    Fenced,
    /// A status of a newer generation was stored meanwhile: this reconcile
    /// read the resource before its spec changed.
    Stale,
    /// The resource is gone.
    Gone,
    /// The store failed (unavailable, a transient error).
    Failed,
}

/// What the queue does with a key after a reconcile, from its result (when to
/// look again, or how to retry a failure) and how the status write went. Pure,
/// so it is tested as a table.
fn next_after(result: Result<Option<Duration>, Retry>, written: Written) -> Next {
    match (written, result) {
        // Another replica owns it now, or it is gone.
        (Written::Fenced, _) => Next::Drop,
        // Look again at once, at the generation now stored.
        (Written::Stale, _) => Next::After(Duration::ZERO),
        (Written::Gone, _) => Next::Done,
        // AWS may have changed and status does not say so: look again soon.
        (Written::Failed, _) => Next::Retry,
        (_, Ok(None)) => Next::Done,
        (_, Ok(Some(after))) => Next::After(after),
        (_, Err(Retry::Backoff)) => Next::Retry,
        (_, Err(Retry::Later(after))) => Next::Later(after),
        (_, Err(Retry::WhenChanged)) => Next::Done,
        (_, Err(Retry::Drop)) => Next::Drop,
    }
}

/// What the queue does with a key after a reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Done,
    After(Duration),
    /// Not done, not failed: look again then (its AWS budget was exhausted).
    Later(Duration),
    Retry,
    Drop,
}

impl Next {
    fn label(&self) -> &'static str {
        match self {
            Next::Done | Next::After(_) => "success",
            Next::Later(_) => "deferred",
            Next::Retry => "error",
            Next::Drop => "skipped",
        }
    }
}

/// The gate a reconcile's AWS calls pass: the shared budget, and proof that
/// this replica still holds the resource's shard with the fencing token the
/// reconcile started with (a shard lost and taken again is another hold).
struct OwnedGate {
    inner: Arc<dyn CallGate>,
    owned: watch::Receiver<Owned>,
    shard: u32,
    fence: i64,
    /// The reconcile's lane, as budget priority.
    priority: Priority,
}

impl OwnedGate {
    fn check(&self) -> Result<(), GateError> {
        if self.owned.borrow().fence(self.shard) == Some(self.fence) {
            Ok(())
        } else {
            Err(GateError::LeaseNotHeld { shard: self.shard, fence: self.fence })
        }
    }
}

#[async_trait::async_trait]
impl CallGate for OwnedGate {
    async fn acquire(&self, family: ApiFamily) -> Result<Duration, GateError> {
        self.check()?;
        let waited = self.inner.acquire_as(family, self.priority).await?;
        // The wait may have been long: the lease must still be the same.
        self.check()?;
        Ok(waited)
    }

    fn record(&self, op: &runners::cloud::Op, outcome: &'static str) {
        self.inner.record(op, outcome);
    }
}

async fn wait_stop(mut stop: watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_follows_a_reconcile_as_a_table() {
        let d = Duration::from_secs(10);
        let table = [
            (Ok(None), Written::Ok, Next::Done),
            (Ok(None), Written::Unchanged, Next::Done),
            (Ok(Some(d)), Written::Ok, Next::After(d)),
            (Ok(Some(d)), Written::Unchanged, Next::After(d)),
            // Status that could not be written is retried with backoff, even
            // when the reconcile wanted to wait: AWS may have changed.
            (Ok(None), Written::Failed, Next::Retry),
            (Ok(Some(d)), Written::Failed, Next::Retry),
            // Fenced off: another replica holds the shard now.
            (Ok(Some(d)), Written::Fenced, Next::Drop),
            (Err(Retry::Backoff), Written::Fenced, Next::Drop),
            // Read before the spec changed: again, at the new generation.
            (Ok(Some(d)), Written::Stale, Next::After(Duration::ZERO)),
            (Err(Retry::Backoff), Written::Stale, Next::After(Duration::ZERO)),
            // Gone meanwhile.
            (Ok(Some(d)), Written::Gone, Next::Done),
            (Err(Retry::Backoff), Written::Ok, Next::Retry),
            (Err(Retry::WhenChanged), Written::Ok, Next::Done),
            (Err(Retry::Drop), Written::Unchanged, Next::Drop),
            // An AWS budget exhausted: look again when it has refilled, no failure recorded.
            (Err(Retry::Later(d)), Written::Unchanged, Next::Later(d)),
        ];
        for (result, written, want) in table {
            assert_eq!(next_after(result, written), want, "{result:?} / {written:?}");
        }
    }
}
