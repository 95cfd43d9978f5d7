//! AWS calls per no-op resync: the real controller (Postgres, Redis leases and
//! budgets, the Relay reconciler over [`Workloads`]) against the simulated
//! cloud, with N relays spread over a few ECS clusters. Once every relay is
//! Synced and Ready and every cached observation has gone stale, one resync
//! pass queues each relay once; the simulated cloud counts the calls it took,
//! beside the lower bound of one DescribeServices per ten services of a cluster.
//! Then the controller is restarted (new runners, empty caches) and its first
//! pass is counted too.
//!
//! With `--nodes N ...`, the same two passes run over N nodes (the Node
//! reconciler, builds running the provisioner in-process), counted against
//! the bounds of one DescribeInstances per 200 nodes and one
//! DescribeInstanceStatus per 100 instances.
//!
//! With `--rollout-budget-scale K`, a third phase rolls a new image out to
//! every relay under Mooring's default AWS budgets multiplied by `K` (the
//! simulated cloud is faster than AWS, so a scale keeps the run short; the
//! bound scales the same way), and compares its wall time with the
//! rate-limit bound: per API family, the calls the rollout made beyond the
//! family's burst divided by its refill rate; the largest of these is the
//! least time any scheduler could have taken with those calls.
//!
//! ```sh
//! cargo run -p controller --example resync_calls -- --services 1000 10000
//! ```
//!
//! Options: `--services N ...` (default 1000 10000), `--clusters C` (4),
//! `--workers W` (concurrent reconciles, 8), `--observe-max-age SECS` (how old
//! an observation of a settled service may be, 60 as in production; the pass
//! starts once every observation is older), `--passes K` (resync passes of
//! the running controller, each once every observation went stale, 1),
//! `--rollout-budget-scale K` (the rollout phase, off by default), `--nodes N ...`
//! (node passes, none by default; with only `--nodes`, no relay passes). Needs Postgres (`DATABASE_URL`; the
//! database `mooring_bench_resync` on its server is dropped and created) and
//! Redis (`REDIS_URL`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use api_types::{Kind, validate_document};
use controller::budget::{Budgets, RedisGate};
use controller::lease::{LeaseConfig, ShardLeases};
use controller::metrics::{AwsCallMetrics, ControllerMetrics};
use controller::retry::BackoffPolicy;
use controller::runtime::{Controller, ControllerConfig};
use desired_state::redis::RedisHandle;
use desired_state::signing::Signer;
use desired_state::store::{ChangeFeed, ChangeSource, ListQuery, Store, WriteMode};
use futures::StreamExt;
use runners::cloud::ops;
use runners::gate::ApiFamily;
use runners::provision::{ProvisionExecutor, ProvisionerConfig};
use runners::sim::{FaultMix, SimCloud, SimConfig};
use runners::workload::{NodeConfig, Nodes, WorkloadConfig, Workloads};
use serde_json::{Value, json};
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::sync::watch;

const DATABASE: &str = "mooring_bench_resync";
const NAMESPACE: &str = "bench";
const SHARDS: u32 = 16;

struct Args {
    services: Vec<usize>,
    nodes: Vec<usize>,
    clusters: usize,
    workers: usize,
    observe_max_age: Duration,
    passes: usize,
    rollout_budget_scale: Option<f64>,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        services: Vec::new(),
        nodes: Vec::new(),
        clusters: 4,
        workers: 8,
        observe_max_age: Duration::from_secs(60),
        passes: 1,
        rollout_budget_scale: None,
    };
    let mut it = std::env::args().skip(1).peekable();
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--services" => {
                args.services.push(value()?.parse().context("--services takes numbers")?);
                while let Some(more) = it.next_if(|v| !v.starts_with("--")) {
                    args.services.push(more.parse().context("--services takes numbers")?);
                }
            }
            "--nodes" => {
                args.nodes.push(value()?.parse().context("--nodes takes numbers")?);
                while let Some(more) = it.next_if(|v| !v.starts_with("--")) {
                    args.nodes.push(more.parse().context("--nodes takes numbers")?);
                }
            }
            "--clusters" => args.clusters = value()?.parse().context("--clusters takes a number")?,
            "--workers" => args.workers = value()?.parse().context("--workers takes a number")?,
            "--passes" => args.passes = value()?.parse().context("--passes takes a number")?,
            "--rollout-budget-scale" => {
                args.rollout_budget_scale = Some(value()?.parse().context("--rollout-budget-scale takes a number")?)
            }
            "--observe-max-age" => {
                args.observe_max_age =
                    Duration::from_secs_f64(value()?.parse().context("--observe-max-age takes seconds")?)
            }
            other => bail!("unknown option {other} (see the example's documentation)"),
        }
    }
    if args.services.is_empty() && args.nodes.is_empty() {
        args.services = vec![1000, 10_000];
    }
    if args.clusters == 0 || args.workers == 0 || args.passes == 0 {
        bail!("--clusters, --workers and --passes must be at least 1");
    }
    Ok(args)
}

fn cluster_name(i: usize) -> String {
    format!("bench-{i}")
}

fn relay(i: usize, clusters: usize, image: &str) -> Value {
    json!({
        "apiVersion": "mooring/v1", "kind": "Relay",
        "metadata": {"name": format!("r{i:05}"), "namespace": NAMESPACE},
        "spec": {
            "cluster": cluster_name(i % clusters),
            "containers": [{"name": "api", "image": image, "port": 8080}],
            // A fixed count: a scaling relay is looked at every scaling interval, which is not a resync.
            "scaling": {"min": 1, "max": 1}
        }
    })
}

fn node(i: usize, instance_type: &str) -> Value {
    json!({
        "apiVersion": "mooring/v1", "kind": "Node",
        "metadata": {"name": format!("n{i:05}"), "namespace": NAMESPACE},
        "spec": {
            "software": {"name": "pulse", "version": "1.4.2", "artifact": "s3://pulse-artifacts/pulse-1.4.2.tar.gz"},
            "instanceType": instance_type, "ami": "ami-1e749f67", "subnetId": "subnet-0a1b2c3d",
            "dataVolume": {"sizeGiB": 10, "type": "gp3"}
        }
    })
}

/// The lower bound of DescribeServices calls for one look at every service:
/// one per ten services of each cluster.
fn lower_bound(services: usize, clusters: usize) -> u64 {
    (0..clusters)
        .map(|c| {
            let in_cluster = services / clusters + usize::from(c < services % clusters);
            in_cluster.div_ceil(10) as u64
        })
        .sum()
}

async fn fresh_database() -> Result<Store> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/mooring".into());
    let server: PgConnectOptions = url.parse().context("DATABASE_URL is not a Postgres URL")?;
    let mut admin = server.connect().await.with_context(|| format!("cannot connect to {url}"))?;
    sqlx::query("DROP DATABASE IF EXISTS mooring_bench_resync WITH (FORCE)").execute(&mut admin).await?;
    sqlx::query("CREATE DATABASE mooring_bench_resync").execute(&mut admin).await?;
    let pool = PgPoolOptions::new().max_connections(24).connect_with(server.database(DATABASE)).await?;
    let store = Store::from_pool(pool, Signer::generate());
    store.migrate().await.context("cannot migrate the benchmark database")?;
    Ok(store)
}

struct Replica {
    kind: Kind,
    controller: Arc<Controller>,
    metrics: Arc<ControllerMetrics>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Replica {
    /// A controller process reconciling `kind`: new runners (empty
    /// observation and task definition caches) over the shared store, Redis
    /// prefix and cloud.
    fn start(
        store: &Store,
        prefix: &str,
        cloud: &SimCloud,
        args: &Args,
        budgets: Budgets,
        kind: Kind,
    ) -> Result<Replica> {
        let reconcilers = if kind == Kind::Node {
            let builds = ProvisionExecutor::simulated(
                cloud,
                ProvisionerConfig { poll: Duration::from_millis(5), timeout: Duration::from_secs(60) },
            );
            let config = NodeConfig {
                poll_in_flight: Duration::from_millis(50),
                // A pass is the resync alone: no health looks of their own in between.
                health_interval: Duration::from_secs(3600),
                observe_max_age: args.observe_max_age,
                // The simulated cloud's instances have no network to probe.
                probe_health: false,
                ..Default::default()
            };
            let slots = Arc::new(controller::slots::StoreBuildSlots::new(store.clone()));
            controller::workloads::reconcilers(None, Some(Nodes::new(builds, config, slots)), None)
        } else {
            let workloads = Workloads::new(
                cloud.cloud(),
                WorkloadConfig {
                    region: "us-east-1".into(),
                    poll_in_flight: Duration::from_millis(100),
                    observe_max_age: args.observe_max_age,
                    ..Default::default()
                },
            );
            controller::workloads::reconcilers(Some(workloads), None, None)
        };
        let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let redis = Arc::new(RedisHandle::new(&redis_url).context("bad REDIS_URL")?);
        let metrics = Arc::new(ControllerMetrics::unregistered());
        let leases = Arc::new(ShardLeases::new(
            LeaseConfig {
                shards: SHARDS,
                lease: Duration::from_secs(10),
                renew_every: Duration::from_secs(2),
                prefix: prefix.into(),
            },
            redis.clone(),
            "bench-replica",
        ));
        let gate = Arc::new(RedisGate::new(redis, prefix, budgets, Arc::new(AwsCallMetrics::unregistered())));
        let config = ControllerConfig {
            workers_per_kind: args.workers,
            resync: Duration::from_secs(3600),
            backoff: BackoffPolicy {
                initial: Duration::from_millis(50),
                max: Duration::from_millis(500),
                ..Default::default()
            },
            shutdown_grace: Duration::from_secs(10),
        };
        let controller = Controller::new(
            store.dedicated(16),
            ChangeFeed::start(store.clone()),
            leases,
            reconcilers,
            gate,
            metrics.clone(),
            config,
        );
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(controller.clone().run(rx));
        Ok(Replica { kind, controller, metrics, stop, task })
    }

    async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    fn successes(&self) -> u64 {
        self.metrics.reconcile_count(self.kind.as_str(), "success")
    }

    fn errors(&self) -> u64 {
        self.metrics.reconcile_count(self.kind.as_str(), "error")
    }

    /// Nothing queued, delayed or being reconciled (a settled node is always
    /// queued again for its next health look, an hour away here).
    fn idle(&self) -> bool {
        let q = self.controller.queue(self.kind);
        q.is_empty() && q.processing_len() == 0 && (self.kind == Kind::Node || q.delayed_len() == 0)
    }

    async fn wait_for_all_shards(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.controller.leases().owned().shards.len() < SHARDS as usize {
            if Instant::now() > deadline {
                bail!("the replica did not acquire all {SHARDS} shards within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Once every observation has gone stale (as with the default resync of
    /// 300 s and observations trusted for `stale`), one resync pass over the
    /// `n` resources, counted from the cloud's reset counters: its wall time.
    async fn resync_pass(&self, cloud: &SimCloud, n: usize, stale: Duration) -> Result<Duration> {
        eprintln!("waiting {stale:?} for every observation to go stale");
        tokio::time::sleep(stale + Duration::from_secs(1)).await;
        cloud.reset_calls();
        let (base, errors) = (self.successes(), self.errors());
        let t = Instant::now();
        self.controller.resync_now().await;
        self.wait_for_pass(base, n).await?;
        let wall = t.elapsed();
        if self.successes() != base + n as u64 || self.errors() != errors {
            bail!(
                "expected {n} successful reconciles, saw {} and {} errors",
                self.successes() - base,
                self.errors() - errors
            );
        }
        Ok(wall)
    }

    /// The first pass of a restarted controller: every shard is gained, so
    /// each of the `n` resources is queued once, with empty caches. Counted
    /// from the cloud's reset counters; the new replica and the pass's wall time.
    async fn restart_pass(
        store: &Store,
        prefix: &str,
        cloud: &SimCloud,
        args: &Args,
        kind: Kind,
        n: usize,
    ) -> Result<(Replica, Duration)> {
        cloud.reset_calls();
        let t = Instant::now();
        let replica = Replica::start(store, prefix, cloud, args, Budgets::unlimited(), kind)?;
        replica.wait_for_all_shards().await?;
        replica.wait_for_pass(0, n).await?;
        let wall = t.elapsed();
        if replica.successes() != n as u64 || replica.errors() != 0 {
            bail!("expected {n} successful reconciles, saw {} and {} errors", replica.successes(), replica.errors());
        }
        Ok((replica, wall))
    }

    /// Waits until `n` more reconciles than `base` succeeded and the queue is idle.
    async fn wait_for_pass(&self, base: u64, n: usize) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(1800);
        while self.successes() < base + n as u64 || !self.idle() {
            if Instant::now() > deadline {
                bail!("the pass did not finish: {} of {n} reconciles", self.successes() - base);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

fn is_true(status: &Value, type_: &str, generation: i64) -> bool {
    status["conditions"].as_array().is_some_and(|cs| {
        cs.iter().any(|c| c["type"] == type_ && c["status"] == "True" && c["observedGeneration"] == generation)
    })
}

/// How many resources of `kind` are not yet Synced and Ready at their generation.
async fn unready(store: &Store, kind: Kind) -> Result<usize> {
    let mut left = 0;
    let mut after = None;
    loop {
        let page = store
            .list(&ListQuery {
                kind: Some(kind),
                namespace: Some(NAMESPACE.into()),
                limit: 1000,
                after,
                ..Default::default()
            })
            .await?;
        left += page
            .items
            .iter()
            .filter(|r| !(is_true(&r.status, "Synced", r.generation) && is_true(&r.status, "Ready", r.generation)))
            .count();
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(left),
        }
    }
}

/// The calls of one pass, from the simulated cloud's counters.
struct Calls {
    describe_services: u64,
    total: u64,
    mutating: u64,
    by_op: BTreeMap<&'static str, u64>,
}

impl Calls {
    fn read(cloud: &SimCloud) -> Calls {
        Calls {
            describe_services: cloud.call_count(&ops::DESCRIBE_SERVICES),
            total: cloud.total_calls(),
            mutating: ops::ALL.iter().filter(|op| op.mutating).map(|op| cloud.call_count(op)).sum(),
            by_op: cloud.calls().into_iter().filter(|(_, n)| *n > 0).collect(),
        }
    }
}

struct Row {
    services: usize,
    variant: String,
    lower_bound: u64,
    calls: Calls,
    wall: Duration,
}

async fn run(n: usize, args: &Args, seed: u64) -> Result<(Vec<Row>, Option<Rollout>)> {
    let store = fresh_database().await?;
    let prefix = format!("bench-resync-{}", uuid::Uuid::new_v4());
    let cloud = SimCloud::new(SimConfig {
        seed,
        faults: FaultMix::none(),
        task_start_delay: Duration::from_millis(10),
        drain_delay: Duration::from_millis(10),
        cache_create_delay: Duration::from_millis(10),
        consistency_window: Duration::from_millis(50),
        clusters: (0..args.clusters).map(cluster_name).collect(),
        ..Default::default()
    });
    let replica = Replica::start(&store, &prefix, &cloud, args, Budgets::unlimited(), Kind::Relay)?;
    replica.wait_for_all_shards().await?;

    let started = Instant::now();
    write_relays(&store, n, args.clusters, "ghcr.io/acme/api:1.0").await?;
    eprintln!("{n} relays written in {:.1} s; converging", started.elapsed().as_secs_f64());
    wait_until_settled(&store, &replica, Duration::from_secs(1)).await?;
    let services = cloud.services().len();
    if services != n {
        bail!("{services} services for {n} relays");
    }
    eprintln!("converged in {:.1} s ({} AWS calls)", started.elapsed().as_secs_f64(), cloud.total_calls());

    // 1. No-op resyncs of a running controller, each once every observation
    // has gone stale (as with the default resync of 300 s and observations
    // trusted for 60 s).
    let mut rows = Vec::new();
    let lower_bound = lower_bound(n, args.clusters);
    for pass in 1..=args.passes {
        let wall = replica.resync_pass(&cloud, n, args.observe_max_age).await?;
        let variant = if args.passes == 1 { "resync".to_string() } else { format!("resync {pass}") };
        rows.push(Row { services: n, variant, lower_bound, calls: Calls::read(&cloud), wall });
    }
    replica.shutdown().await;

    // 2. The first pass of a restarted controller: every shard is gained, so
    // every relay is queued once, with empty caches.
    let (replica, wall) = Replica::restart_pass(&store, &prefix, &cloud, args, Kind::Relay, n).await?;
    rows.push(Row { services: n, variant: "after a restart".into(), lower_bound, calls: Calls::read(&cloud), wall });
    replica.shutdown().await;

    // 3. An image rollout to every relay under scaled default budgets.
    let rollout = match args.rollout_budget_scale {
        Some(scale) => Some(rollout(&store, &prefix, &cloud, args, n, scale).await?),
        None => None,
    };
    store.pool().close().await;
    Ok((rows, rollout))
}

/// One row of the node table: the batched describes of a pass beside their bounds.
struct NodeRow {
    nodes: usize,
    variant: &'static str,
    calls: Calls,
    wall: Duration,
}

/// Node passes: `n` nodes converge (builds run the provisioner in-process),
/// then a resync pass once every observation went stale, then the first pass
/// of a restarted controller.
async fn run_nodes(n: usize, args: &Args, seed: u64) -> Result<Vec<NodeRow>> {
    let store = fresh_database().await?;
    let prefix = format!("bench-resync-{}", uuid::Uuid::new_v4());
    let cloud = SimCloud::new(SimConfig {
        seed,
        faults: FaultMix::none(),
        latency: (Duration::ZERO, Duration::from_millis(1)),
        instance_start_delay: Duration::from_millis(20),
        status_check_delay: Duration::from_millis(20),
        volume_create_delay: Duration::from_millis(10),
        build_queue_delay: Duration::from_millis(10),
        consistency_window: Duration::from_millis(50),
        ..Default::default()
    });
    let replica = Replica::start(&store, &prefix, &cloud, args, Budgets::unlimited(), Kind::Node)?;
    replica.wait_for_all_shards().await?;
    let started = Instant::now();
    write_all(&store, n, |i| node(i, "t3.large")).await?;
    eprintln!("{n} nodes written; converging");
    wait_until_settled(&store, &replica, Duration::from_secs(1)).await?;
    eprintln!("converged in {:.1} s ({} AWS calls)", started.elapsed().as_secs_f64(), cloud.total_calls());
    let wall = replica.resync_pass(&cloud, n, args.observe_max_age).await?;
    let mut rows = vec![NodeRow { nodes: n, variant: "resync", calls: Calls::read(&cloud), wall }];
    replica.shutdown().await;
    let (replica, wall) = Replica::restart_pass(&store, &prefix, &cloud, args, Kind::Node, n).await?;
    rows.push(NodeRow { nodes: n, variant: "after a restart", calls: Calls::read(&cloud), wall });
    replica.shutdown().await;
    store.pool().close().await;
    Ok(rows)
}

/// Writes relays `0..n` with `image`, 16 at a time.
async fn write_relays(store: &Store, n: usize, clusters: usize, image: &str) -> Result<()> {
    write_all(store, n, |i| relay(i, clusters, image)).await
}

/// Writes documents `0..n`, 16 at a time.
async fn write_all(store: &Store, n: usize, doc: impl Fn(usize) -> Value) -> Result<()> {
    let writes = futures::stream::iter(0..n)
        .map(|i| {
            let (store, doc) = (store.clone(), doc(i));
            async move {
                let doc = validate_document(doc).context("invalid document")?;
                store.write(&doc, WriteMode::Upsert, &ChangeSource::api("bench")).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16);
    let results: Vec<Result<()>> = writes.collect().await;
    results.into_iter().collect::<Result<Vec<()>>>()?;
    Ok(())
}

/// Waits until every resource of the replica's kind is Synced and Ready at its generation and the queue is idle.
async fn wait_until_settled(store: &Store, replica: &Replica, poll: Duration) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        let left = unready(store, replica.kind).await?;
        if left == 0 && replica.idle() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{left} of {:?} not Synced and Ready after an hour", replica.kind);
        }
        tokio::time::sleep(poll).await;
    }
}

/// An image rollout's wall time beside its rate-limit bound.
struct Rollout {
    services: usize,
    scale: f64,
    wall: Duration,
    /// Per API family: calls made, and the least time they need under the budget.
    families: BTreeMap<ApiFamily, (u64, f64)>,
}

impl Rollout {
    /// The bound: the slowest family's least time.
    fn bound(&self) -> f64 {
        self.families.values().map(|(_, t)| *t).fold(0.0, f64::max)
    }
}

/// Restarts the controller with the default budgets × `scale`, lets its
/// first pass settle, then writes a new image to every relay and times the
/// rollout until every relay is Ready at the new generation.
async fn rollout(store: &Store, prefix: &str, cloud: &SimCloud, args: &Args, n: usize, scale: f64) -> Result<Rollout> {
    let mut budgets = Budgets::default();
    for b in budgets.0.values_mut() {
        b.burst *= scale;
        b.per_second *= scale;
    }
    let replica = Replica::start(store, prefix, cloud, args, budgets.clone(), Kind::Relay)?;
    replica.wait_for_all_shards().await?;
    replica.wait_for_pass(0, n).await?;
    // The budgets refill to their bursts before the rollout starts.
    let refill = budgets.0.values().map(|b| b.burst / b.per_second).fold(0.0, f64::max);
    tokio::time::sleep(Duration::from_secs_f64(refill + 1.0)).await;
    cloud.reset_calls();
    eprintln!("rolling a new image out to {n} relays (budgets × {scale})");
    let t = Instant::now();
    write_relays(store, n, args.clusters, "ghcr.io/acme/api:2.0").await?;
    wait_until_settled(store, &replica, Duration::from_millis(200)).await?;
    let wall = t.elapsed();
    replica.shutdown().await;
    let mut families: BTreeMap<ApiFamily, (u64, f64)> = BTreeMap::new();
    for (name, calls) in cloud.calls() {
        let op = ops::ALL.iter().find(|op| op.name == name).with_context(|| format!("unknown operation {name}"))?;
        families.entry(op.family).or_default().0 += calls;
    }
    for (family, (calls, least)) in families.iter_mut() {
        let b = budgets.0[family];
        *least = (*calls as f64 - b.burst).max(0.0) / b.per_second;
    }
    Ok(Rollout { services: n, scale, wall, families })
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = parse_args()?;
    let seed = std::env::var("MOORING_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut rows = Vec::new();
    let mut rollouts = Vec::new();
    for &n in &args.services {
        eprintln!("== {n} services in {} clusters, {} workers", args.clusters, args.workers);
        let (these, rollout) = run(n, &args, seed).await?;
        for r in &these {
            eprintln!("{n} services, {}: calls by operation {:?}", r.variant, r.calls.by_op);
        }
        rows.extend(these);
        rollouts.extend(rollout);
    }
    println!(
        "\n{} clusters, {} workers, observations stale after {:?}, simulated cloud seed {seed}\n",
        args.clusters, args.workers, args.observe_max_age
    );
    if !rows.is_empty() {
        println!(
            "{}",
            concat!(
                "| services | pass | DescribeServices | lower bound ⌈n/10⌉ per cluster | ratio | ",
                "DescribeTaskDefinition | total AWS calls | mutating calls | wall time of the pass |"
            )
        );
        println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    }
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {:.2} | {} | {} | {} | {:.1} s |",
            r.services,
            r.variant,
            r.calls.describe_services,
            r.lower_bound,
            r.calls.describe_services as f64 / r.lower_bound as f64,
            r.calls.by_op.get(ops::DESCRIBE_TASK_DEFINITION.name).copied().unwrap_or(0),
            r.calls.total,
            r.calls.mutating,
            r.wall.as_secs_f64(),
        );
    }
    let mut node_rows = Vec::new();
    for &n in &args.nodes {
        eprintln!("== {n} nodes, {} workers", args.workers);
        let these = run_nodes(n, &args, seed).await?;
        for r in &these {
            eprintln!("{n} nodes, {}: calls by operation {:?}", r.variant, r.calls.by_op);
        }
        node_rows.extend(these);
    }
    if !node_rows.is_empty() {
        println!(
            "\n| nodes | pass | DescribeInstances | bound ⌈n/200⌉ | DescribeInstanceStatus | bound ⌈n/100⌉ | \
             one of each per node | total AWS calls | mutating calls | wall time of the pass |"
        );
        println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        for r in &node_rows {
            let calls = |op: &runners::cloud::Op| r.calls.by_op.get(op.name).copied().unwrap_or(0);
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} s |",
                r.nodes,
                r.variant,
                calls(&ops::DESCRIBE_INSTANCES),
                r.nodes.div_ceil(200),
                calls(&ops::DESCRIBE_INSTANCE_STATUS),
                r.nodes.div_ceil(100),
                r.nodes,
                r.calls.total,
                r.calls.mutating,
                r.wall.as_secs_f64(),
            );
        }
    }
    if !rollouts.is_empty() {
        println!(
            "\n| services | budgets | calls per family (least time under the budget) | bound | wall time | ratio |"
        );
        println!("| --- | --- | --- | --- | --- | --- |");
        for r in &rollouts {
            let families: Vec<String> =
                r.families.iter().map(|(f, (calls, t))| format!("{f} {calls} ({t:.1} s)")).collect();
            println!(
                "| {} | default × {} | {} | {:.1} s | {:.1} s | {:.2} |",
                r.services,
                r.scale,
                families.join(", "),
                r.bound(),
                r.wall.as_secs_f64(),
                r.wall.as_secs_f64() / r.bound()
            );
        }
    }
    Ok(())
}
