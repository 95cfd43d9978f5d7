//! Controller benchmarks (needs the local stack; see docs/BENCHMARKS.md):
//! 1. latency from an API write to the start of its reconcile, with writes
//!    paced at `BENCH_RATE` per second (default 1,000) for `BENCH_SECONDS` (15);
//! 2. no-op resync throughput over `BENCH_RESOURCES` resources (10,000).
//!
//! `cargo bench --workspace --bench controller`

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use api_types::Kind;
use controller::budget::{Budgets, RedisGate};
use controller::lease::{LeaseConfig, ShardLeases};
use controller::metrics::{AwsCallMetrics, ControllerMetrics};
use controller::reconcile::{Context, DynReconciler, Step};
use controller::runtime::{Controller, ControllerConfig, ResourceKey};
use desired_state::api::{self, ApiConfig, AppState};
use desired_state::redis::RedisHandle;
use desired_state::signing::Signer;
use desired_state::store::{ChangeFeed, ChangeSource, Store, StoreConfig, StoredResource, WriteMode};
use runners::reconcile::ReconcileError;
use serde_json::json;
use tokio::sync::{Mutex, watch};

/// Records when each (name, generation) reconcile started; does nothing else.
struct Stopwatch {
    started: Mutex<HashMap<String, Instant>>,
    count: AtomicUsize,
}

#[async_trait::async_trait]
impl DynReconciler for Stopwatch {
    async fn reconcile(&self, _ctx: &Context<'_>, r: &StoredResource) -> Result<Step, ReconcileError> {
        let now = Instant::now();
        self.count.fetch_add(1, Ordering::Relaxed);
        self.started.lock().await.entry(r.name.clone()).or_insert(now);
        Ok(Step { status: r.status.clone(), events: vec![], requeue_after: None })
    }
    async fn cleanup(&self, _ctx: &Context<'_>, _r: &StoredResource) -> Result<Option<Step>, ReconcileError> {
        Ok(None)
    }
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn relay(name: &str) -> serde_json::Value {
    json!({"apiVersion": "mooring/v1", "kind": "Relay", "metadata": {"name": name, "namespace": "bench"},
           "spec": {"cluster": "prod", "containers": [{"name": "app", "image": "nginx:1", "port": 80}], "scaling": {"min": 1, "max": 2}}})
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

#[tokio::main]
async fn main() {
    let rate: u64 = env("BENCH_RATE", 1000);
    let seconds: u64 = env("BENCH_SECONDS", 15);
    let resources: usize = env("BENCH_RESOURCES", 10_000);
    let base_url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/mooring".into());
    let server_url = base_url.rsplit_once('/').map(|(s, _)| s.to_string()).unwrap_or(base_url.clone());
    let db = format!("mooring_bench_ctl_{}", std::process::id());
    let admin = sqlx::PgPool::connect(&format!("{server_url}/postgres")).await.expect("postgres");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}"))).execute(&admin).await.unwrap();
    let store = Store::connect_lazy(
        &StoreConfig { max_connections: 40, ..StoreConfig::new(format!("{server_url}/{db}")) },
        Signer::generate(),
    )
    .unwrap();
    store.migrate().await.unwrap();
    store.ensure_token("bench", "bench-token", &["admin:*".into()]).await.unwrap();
    let redis = Arc::new(
        RedisHandle::new(&std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())).unwrap(),
    );
    let prefix = format!("bench-{}", std::process::id());

    let feed = ChangeFeed::start(store.dedicated(4));
    let feed_probe = feed.clone();
    let state = Arc::new(AppState::new(
        store.clone(),
        feed.clone(),
        Some(redis.clone()),
        ApiConfig { rate_limit: None, ..Default::default() },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { api::serve(listener, state, std::future::pending()).await.unwrap() });

    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Arc::new(ControllerMetrics::new(&mut registry));
    let stopwatch = Arc::new(Stopwatch { started: Mutex::new(HashMap::new()), count: AtomicUsize::new(0) });
    let leases = Arc::new(ShardLeases::new(
        LeaseConfig { shards: 16, prefix: prefix.clone(), ..Default::default() },
        redis.clone(),
        "bench",
    ));
    let gate =
        Arc::new(RedisGate::new(redis.clone(), &prefix, Budgets::default(), Arc::new(AwsCallMetrics::unregistered())));
    let rec: Arc<dyn DynReconciler> = stopwatch.clone();
    let reconcilers = Kind::RECONCILED.into_iter().map(|k| (k, rec.clone())).collect();
    let ctl = Controller::new(
        store.dedicated(16),
        feed,
        leases,
        reconcilers,
        gate,
        metrics.clone(),
        ControllerConfig { workers_per_kind: 16, resync: Duration::from_secs(3600), ..Default::default() },
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let ctl_task = tokio::spawn(ctl.clone().run(stop_rx));
    while ctl.leases().owned().shards.len() < 16 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Where the time goes: when each change reaches a reader of the feed.
    let fed: Arc<Mutex<HashMap<String, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    {
        let fed = fed.clone();
        let since = store.current_seq().await.unwrap();
        let stream = feed_probe.subscribe(since, desired_state::store::ChangeFilter::default());
        tokio::spawn(async move {
            use futures::StreamExt;
            let mut stream = Box::pin(stream);
            while let Some(c) = stream.next().await {
                fed.lock().await.entry(c.name).or_insert_with(Instant::now);
            }
        });
    }

    // 1. Write → reconcile start, paced.
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap();
    let total = (rate * seconds) as usize;
    let written: Arc<Mutex<HashMap<String, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let errors = Arc::new(AtomicUsize::new(0));
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        ticker.tick().await;
        let (http, base, written, errors) = (http.clone(), base.clone(), written.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let name = format!("lat-{i}");
            let r = http
                .post(format!("{base}/v1/namespaces/bench/relays"))
                .bearer_auth("bench-token")
                .json(&relay(&name))
                .send()
                .await;
            match r {
                Ok(r) if r.status().is_success() => {
                    written.lock().await.insert(name, Instant::now());
                }
                _ => {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let write_time = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = stopwatch.started.lock().await.keys().filter(|k| k.starts_with("lat-")).count();
        if done >= total - errors.load(Ordering::Relaxed) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut lat: Vec<Duration> = {
        let w = written.lock().await;
        let s = stopwatch.started.lock().await;
        // The API answers after commit; the reconcile may start before the client
        // sees the answer, so such latencies count as zero.
        w.iter().filter_map(|(n, t)| s.get(n).map(|st| st.saturating_duration_since(*t))).collect()
    };
    lat.sort();
    let mut feed_lat: Vec<Duration> = {
        let w = written.lock().await;
        let f = fed.lock().await;
        w.iter().filter_map(|(n, t)| f.get(n).map(|ft| ft.saturating_duration_since(*t))).collect()
    };
    feed_lat.sort();
    println!("## write → reconcile start");
    println!(
        "target {rate}/s for {seconds} s: {} writes in {:.2} s = {:.0}/s achieved, {} errors",
        total - errors.load(Ordering::Relaxed),
        write_time.as_secs_f64(),
        (total - errors.load(Ordering::Relaxed)) as f64 / write_time.as_secs_f64(),
        errors.load(Ordering::Relaxed)
    );
    println!(
        "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}  (n = {})",
        pct(&lat, 0.5),
        pct(&lat, 0.9),
        pct(&lat, 0.99),
        pct(&lat, 1.0),
        lat.len()
    );

    println!(
        "of which write → change feed ms: p50 {:.2}  p90 {:.2}  p99 {:.2}",
        pct(&feed_lat, 0.5),
        pct(&feed_lat, 0.9),
        pct(&feed_lat, 0.99)
    );
    // Where the rest goes: the mean time a key waited in the work queue once
    // ready, and the mean reconcile (the resource's read, the no-op, the rest).
    let mut text = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
    let mean = |name: &str| {
        let value = |suffix: &str| {
            text.lines()
                .find(|l| l.starts_with(&format!("{name}_{suffix}")))
                .and_then(|l| l.split_whitespace().last()?.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        value("sum") / value("count").max(1.0) * 1000.0
    };
    println!(
        "mean ms: queue wait {:.2}, reconcile {:.2}",
        mean("workqueue_queue_duration_seconds"),
        mean("reconcile_time_seconds")
    );

    // 2. No-op resync of N resources.
    let existing = total - errors.load(Ordering::Relaxed);
    let extra = resources.saturating_sub(existing);
    let t = Instant::now();
    let mut writers = Vec::new();
    for w in 0..16 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for i in (w..extra).step_by(16) {
                let doc = api_types::validate_document(relay(&format!("bulk-{i}"))).unwrap();
                store.write(&doc, WriteMode::Create, &ChangeSource::api("bench")).await.unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    println!("\n## no-op resync of {resources} resources");
    println!("created {extra} more resources in {:.1} s (store writes, 16 writers)", t.elapsed().as_secs_f64());
    // Wait until the first reconcile of everything (status written once) settles.
    let settle = Instant::now() + Duration::from_secs(120);
    while stopwatch.started.lock().await.len() < resources && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    while ctl.queue(Kind::Relay).len() + ctl.queue(Kind::Relay).processing_len() > 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = stopwatch.count.load(Ordering::Relaxed);
    let cpu0 = cpu_seconds();
    let t = Instant::now();
    let mut after = None;
    loop {
        let page = store
            .list(&desired_state::store::ListQuery { limit: 1000, after: after.clone(), ..Default::default() })
            .await
            .unwrap();
        for r in &page.items {
            ctl.queue(Kind::Relay).add(ResourceKey {
                kind: Kind::Relay,
                namespace: r.namespace.clone(),
                name: r.name.clone(),
            });
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    while stopwatch.count.load(Ordering::Relaxed) < before + resources && t.elapsed() < Duration::from_secs(300) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = t.elapsed();
    let n = stopwatch.count.load(Ordering::Relaxed) - before;
    let cpu = cpu_seconds() - cpu0;
    println!(
        "{n} no-op reconciles in {:.2} s = {:.0} reconciles/s; process CPU {:.2} s ({:.0} µs per reconcile)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        cpu,
        cpu / n as f64 * 1e6
    );

    let _ = stop_tx.send(true);
    let _ = ctl_task.await;
    drop(store);
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {db} WITH (FORCE)"))).execute(&admin).await;
}

/// User + system CPU seconds of this process (from /proc/self/stat).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks: f64 = fields.get(11).and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / 100.0
}
