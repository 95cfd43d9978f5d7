//! In-process controller replicas over a fresh test database and a Redis.

#![allow(dead_code)]

pub mod nodes;
pub mod sim;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use api_types::Kind;
use controller::budget::{Budgets, RedisGate};
use controller::lease::{LeaseConfig, ShardLeases};
use controller::metrics::{AwsCallMetrics, ControllerMetrics};
use controller::reconcile::{Context, DynReconciler, Reconcilers, Step};
use controller::retry::BackoffPolicy;
use controller::runtime::{Controller, ControllerConfig};
use desired_state::redis::RedisHandle;
use desired_state::signing::Signer;
use desired_state::store::{ChangeFeed, ChangeSource, Store, StoredResource, WriteMode};
use runners::gate::ApiFamily;
use runners::reconcile::ReconcileError;
use serde_json::json;
use tokio::sync::{Mutex, watch};

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn prefix() -> String {
    format!("ctl-test-{}", uuid::Uuid::new_v4())
}

pub async fn store(pool: sqlx::PgPool) -> Store {
    let s = Store::from_pool(pool, Signer::generate());
    s.migrate().await.unwrap();
    s
}

/// What the test reconciler saw and did.
#[derive(Default)]
pub struct Probe {
    pub reconciles: AtomicUsize,
    pub cleanups: AtomicUsize,
    /// AWS "mutations": reconciles that got through the gate.
    pub mutations: AtomicUsize,
    pub current: Mutex<HashMap<String, usize>>,
    pub max_concurrent_same_key: AtomicUsize,
    /// The last labels each key was reconciled with.
    pub last_seen: Mutex<HashMap<String, serde_json::Value>>,
    /// Fail this many reconciles before succeeding.
    pub fail_first: AtomicUsize,
    /// Report a status the store cannot keep (a NUL character, which jsonb
    /// refuses) this many times before a good one.
    pub bad_status_first: AtomicUsize,
    /// Whether each reconcile was told to observe AWS afresh, in order.
    pub fresh: std::sync::Mutex<Vec<bool>>,
}

/// A reconciler that records what it sees, takes a little time, and "mutates
/// AWS" through the gate (an `ec2-mutate` budget) like a real one.
pub struct TestReconciler {
    pub name: String,
    pub probe: Arc<Probe>,
    pub work: Duration,
}

#[async_trait::async_trait]
impl DynReconciler for TestReconciler {
    async fn reconcile(&self, ctx: &Context<'_>, r: &StoredResource) -> Result<Step, ReconcileError> {
        let key = format!("{}/{}/{}", r.kind, r.namespace, r.name);
        {
            let mut cur = self.probe.current.lock().await;
            let n = cur.entry(key.clone()).or_default();
            *n += 1;
            self.probe.max_concurrent_same_key.fetch_max(*n, Ordering::SeqCst);
        }
        self.probe.reconciles.fetch_add(1, Ordering::SeqCst);
        self.probe.fresh.lock().unwrap().push(ctx.fresh);
        tokio::time::sleep(self.work).await;
        self.probe.last_seen.lock().await.insert(key.clone(), serde_json::to_value(&r.labels.0).unwrap());
        let gate = ctx.gate.acquire(ApiFamily::Ec2Mutate).await;
        *self.probe.current.lock().await.get_mut(&key).unwrap() -= 1;
        gate.map_err(|e| {
            ReconcileError::Cloud(runners::cloud::CloudError::new(
                &runners::cloud::ops::RUN_INSTANCES,
                runners::cloud::ErrorKind::LeaseNotHeld,
                e.to_string(),
            ))
        })?;
        if self
            .probe
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| if n > 0 { Some(n - 1) } else { None })
            .is_ok()
        {
            return Err(ReconcileError::Cloud(runners::cloud::CloudError::new(
                &runners::cloud::ops::RUN_INSTANCES,
                runners::cloud::ErrorKind::Server,
                "injected failure",
            )));
        }
        self.probe.mutations.fetch_add(1, Ordering::SeqCst);
        // Kind-agnostic status: the writer, and Synced set on the old conditions
        // (its transition time moves only when it flips).
        use api_types::Conditions;
        let mut conditions: Vec<api_types::Condition> =
            serde_json::from_value(r.status["conditions"].clone()).unwrap_or_default();
        conditions.set_condition(api_types::Condition::synced(r.generation, ctx.now));
        let mut status = json!({
            "observedGeneration": r.generation,
            "writer": self.name,
            "conditions": conditions,
        });
        if self
            .probe
            .bad_status_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| if n > 0 { Some(n - 1) } else { None })
            .is_ok()
        {
            status["note"] = json!("\u{0}");
        }
        Ok(Step { status, events: vec![], requeue_after: None })
    }

    async fn cleanup(&self, _ctx: &Context<'_>, _r: &StoredResource) -> Result<Option<Step>, ReconcileError> {
        self.probe.cleanups.fetch_add(1, Ordering::SeqCst);
        Ok(None)
    }
}

/// A running replica.
pub struct Replica {
    pub controller: Arc<Controller>,
    pub metrics: Arc<ControllerMetrics>,
    pub stop: watch::Sender<bool>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Replica {
    pub fn owned(&self) -> usize {
        self.controller.leases().owned().shards.len()
    }

    /// Stops gracefully (releases leases).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Dies: no release, leases expire by themselves.
    pub fn crash(self) {
        self.task.abort();
    }
}

pub struct Options {
    pub shards: u32,
    pub lease: Duration,
    pub renew: Duration,
    pub resync: Duration,
    pub redis_url: String,
    /// How long each test reconcile takes.
    pub work: Duration,
    /// Concurrent reconciles per kind.
    pub workers: usize,
    /// AWS budgets (default: unlimited) and the longest a call waits for one.
    pub budgets: Budgets,
    pub budget_max_wait: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            shards: 8,
            lease: Duration::from_secs(3),
            renew: Duration::from_secs(1),
            resync: Duration::from_secs(600),
            redis_url: redis_url(),
            work: Duration::from_millis(5),
            workers: 4,
            budgets: Budgets::unlimited(),
            budget_max_wait: None,
        }
    }
}

pub fn start_replica(store: &Store, prefix: &str, name: &str, probe: Arc<Probe>, opts: &Options) -> Replica {
    let reconciler: Arc<dyn DynReconciler> = Arc::new(TestReconciler { name: name.into(), probe, work: opts.work });
    let reconcilers = Kind::RECONCILED.into_iter().map(|k| (k, reconciler.clone())).collect();
    start_replica_with(store, prefix, name, reconcilers, opts)
}

/// A replica running the given reconcilers.
pub fn start_replica_with(
    store: &Store,
    prefix: &str,
    name: &str,
    reconcilers: Reconcilers,
    opts: &Options,
) -> Replica {
    let redis = Arc::new(RedisHandle::new(&opts.redis_url).unwrap());
    let metrics = Arc::new(ControllerMetrics::unregistered());
    let leases = Arc::new(ShardLeases::new(
        LeaseConfig { shards: opts.shards, lease: opts.lease, renew_every: opts.renew, prefix: prefix.into() },
        redis.clone(),
        name,
    ));
    let mut gate = RedisGate::new(redis, prefix, opts.budgets.clone(), Arc::new(AwsCallMetrics::unregistered()));
    if let Some(max) = opts.budget_max_wait {
        gate = gate.with_max_wait(max);
    }
    let gate = Arc::new(gate);
    let config = ControllerConfig {
        workers_per_kind: opts.workers,
        resync: opts.resync,
        backoff: BackoffPolicy {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(500),
            ..Default::default()
        },
        shutdown_grace: Duration::from_secs(5),
    };
    let controller = Controller::new(
        store.clone(),
        ChangeFeed::start(store.clone()),
        leases,
        reconcilers,
        gate,
        metrics.clone(),
        config,
    );
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(controller.clone().run(rx));
    Replica { controller, metrics, stop, task }
}

pub async fn create(store: &Store, name: &str) -> StoredResource {
    let doc = api_types::validate_document(json!({
        "apiVersion": "mooring/v1", "kind": "Relay",
        "metadata": {"name": name},
        "spec": {"cluster": "prod", "containers": [{"name": "app", "image": "nginx:1", "port": 80}], "scaling": {"min": 1, "max": 2}}
    }))
    .unwrap();
    store.write(&doc, WriteMode::Create, &ChangeSource::api("test")).await.unwrap().resource
}

pub async fn relabel(store: &Store, name: &str, value: &str) {
    let doc = api_types::validate_document(json!({
        "apiVersion": "mooring/v1", "kind": "Relay",
        "metadata": {"name": name, "labels": {"v": value}},
        "spec": {"cluster": "prod", "containers": [{"name": "app", "image": "nginx:1", "port": 80}], "scaling": {"min": 1, "max": 2}}
    }))
    .unwrap();
    store.write(&doc, WriteMode::Upsert, &ChangeSource::api("test")).await.unwrap();
}

/// Polls `check` every 50 ms until it holds or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {within:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn status_writer(store: &Store, name: &str) -> Option<String> {
    store.get(Kind::Relay, "default", name).await.ok()?.status.get("writer")?.as_str().map(str::to_string)
}
