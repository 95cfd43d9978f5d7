//! The deterministic simulation sweep: for each seed, a random workload over
//! every reconciled kind (relays with and without caches, workers, nodes,
//! node sets) — creates, updates including identity-field changes (a relay or
//! worker moved to another cluster), scaling, deletes — run by two controller
//! replicas (real Postgres and Redis) against a simulated cloud that throttles,
//! fails, times out and answers stale reads, while the workload crashes the
//! controller right after a random AWS call took effect and takes the shard
//! leases away from a replica in the middle of its calls.
//!
//! Checked all along (every few tens of milliseconds):
//! - never two live AWS resources for one spec: per resource, at most one
//!   active ECS service per cluster (two in all only while it moves), one
//!   queue and one dead-letter queue, one cache, one instance per shape
//!   (`mooring:instance-hash`: a Replace launches the new shape before it
//!   retires the old, and a failed build's new instance is retired by the
//!   next build, so only the end of a seed can ask for exactly one);
//! - `observedGeneration` never goes backwards;
//! - no key is reconciled twice at once by one replica, nor by two replicas
//!   that both trust its shard's lease, unless leases were taken away less
//!   than a lease period ago (then fencing keeps the stale writer's status
//!   out, which the generation check above would catch); a replica still
//!   inside a reconcile whose lease lapsed is not acting (its gate refuses
//!   every AWS call);
//!
//! and at the end of each seed:
//! - once the faults stop, everything converges: every resource `Synced` and
//!   `Ready` at its generation, each relay and worker with one service in the
//!   cluster its spec names, each node with one instance and one data
//!   volume, each set with its
//!   members;
//! - once everything is deleted, nothing carrying any of the seed's uids is
//!   left in the cloud (services, task definitions, queues, caches, scalable
//!   targets, instances, volumes, snapshots);
//! - the controller's AWS calls stayed within its budgets (the simulated
//!   cloud audits every arrival against a shadow bucket per API family).
//!
//! Determinism: the workload, the fault each call draws (per object, from the
//! seed) and the crash points follow from the seed, so a failing seed is
//! printed and replays with `MOORING_SWEEP_SEED=<seed>`. Thread interleavings
//! and the real Postgres and Redis are not replayed; their outages belong to
//! the chaos test over real processes (`tests/tests/e2e/chaos.rs`).
//!
//! The suite runs seeds 1..=50 (`MOORING_SWEEP_SEEDS`, default 50), five at
//! a time; the long sweep is documented in docs/BENCHMARKS.md.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_types::Kind;
use common::nodes::{health_server, nodes_and_sets};
use common::sim::{apply, condition, crash};
use common::{Options, Replica, redis_url, start_replica_with};
use controller::budget::Budgets;
use controller::lease::{ShardLeases, shard_of};
use controller::reconcile::{Context, DynReconciler, Reconcilers, Step};
use desired_state::store::{ListQuery, Store, StoredResource};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use runners::cloud::TAG_UID;
use runners::cloud::ec2::InstanceState;
use runners::cloud::ecs::ServiceState;
use runners::provision::{TAG_INSTANCE_HASH, TAG_ROLE};
use runners::reconcile::ReconcileError;
use runners::sim::{FaultMix, SimCloud, SimConfig};
use runners::workload::{WorkloadConfig, Workloads};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// The controller's budgets in the sweep: Mooring's defaults (half of AWS's
/// buckets), ten times faster, because the simulated cloud's tasks, builds and
/// instances are far faster than AWS's.
fn budgets() -> Budgets {
    let mut b = Budgets::default();
    for budget in b.0.values_mut() {
        budget.burst *= 10.0;
        budget.per_second *= 10.0;
    }
    b
}

const CLUSTERS: [&str; 2] = ["prod", "batch"];
const SUBNETS: [&str; 2] = ["subnet-0a1b2c3d", "subnet-0b2c3d4e"];

// ---- the workload ------------------------------------------------------------

/// What the workload wants of one resource; its document is rendered from it.
#[derive(Debug, Clone)]
enum Want {
    Relay { cluster: usize, image: u32, cache: bool, min: u32 },
    Worker { cluster: usize, image: u32, min: u32, native: bool },
    Node { version: u32, instance_type: bool },
    NodeSet { replicas: u32, version: u32 },
}

impl Want {
    fn kind(&self) -> Kind {
        match self {
            Want::Relay { .. } => Kind::Relay,
            Want::Worker { .. } => Kind::Worker,
            Want::Node { .. } => Kind::Node,
            Want::NodeSet { .. } => Kind::NodeSet,
        }
    }

    fn document(&self, ns: &str, name: &str, health_port: u16) -> Value {
        let node_spec = |version: u32, instance_type: &str| {
            json!({
                "software": {"name": "pulse", "version": format!("1.{version}.0"),
                             "artifact": "s3://pulse-artifacts/pulse.tar.gz"},
                "instanceType": instance_type, "ami": "ami-1e749f67", "subnetId": SUBNETS[0],
                "dataVolume": {"sizeGiB": 20, "deleteOnNodeDelete": true},
                "ports": [{"name": "api", "port": health_port}],
                "healthCheck": {"port": health_port, "path": "/health"},
                "updateStrategy": "Replace"
            })
        };
        let spec = match *self {
            Want::Relay { cluster, image, cache, min } => {
                let mut spec = json!({
                    "cluster": CLUSTERS[cluster],
                    "containers": [{"name": "api", "image": format!("ghcr.io/acme/api:{image}"), "port": 8080}],
                    "scaling": {"min": min, "max": 6}
                });
                if cache {
                    spec["cache"] = json!({"nodeType": "cache.t4g.micro"});
                }
                spec
            }
            Want::Worker { cluster, image, min, native } => json!({
                "cluster": CLUSTERS[cluster],
                "container": {"name": "convert", "image": format!("ghcr.io/acme/convert:{image}")},
                "queue": {"visibilityTimeoutSeconds": 60, "deadLetter": {"maxReceiveCount": 4}},
                "scaling": {"min": min, "max": 5, "mode": if native { "aws-native" } else { "controller" }}
            }),
            Want::Node { version, instance_type } => {
                node_spec(version, if instance_type { "t3.xlarge" } else { "t3.large" })
            }
            Want::NodeSet { replicas, version } => json!({
                "replicas": replicas,
                "subnetIds": SUBNETS,
                "updateStrategy": {"maxUnavailable": 1},
                "template": node_spec(version, "t3.large"),
            }),
        };
        json!({"apiVersion": "mooring/v1", "kind": self.kind().as_str(),
               "metadata": {"name": name, "namespace": ns}, "spec": spec})
    }

    /// The same resource with one random change (an image, a cluster move,
    /// a cache added or dropped, scaling, a software version, replicas).
    fn changed(&self, rng: &mut StdRng) -> Want {
        let mut w = self.clone();
        match &mut w {
            Want::Relay { cluster, image, cache, min } => match rng.gen_range(0..4) {
                0 => *image += 1,
                1 => *cluster = 1 - *cluster,
                2 => *cache = !*cache,
                _ => *min = rng.gen_range(1..=3),
            },
            Want::Worker { cluster, image, min, native } => match rng.gen_range(0..4) {
                0 => *image += 1,
                1 => *cluster = 1 - *cluster,
                2 => {
                    *native = !*native;
                    *min = (*min).max(1);
                }
                // AWS target tracking cannot start from zero: only the controller scales to zero.
                _ => *min = rng.gen_range(if *native { 1 } else { 0 }..=2),
            },
            Want::Node { version, instance_type } => {
                if rng.gen_bool(0.5) {
                    *version += 1
                } else {
                    *instance_type = !*instance_type
                }
            }
            Want::NodeSet { replicas, version } => {
                if rng.gen_bool(0.5) {
                    *version += 1
                } else {
                    *replicas = rng.gen_range(1..=3)
                }
            }
        }
        w
    }
}

/// One step of a seed's workload.
#[derive(Debug, Clone)]
enum Action {
    Write {
        name: String,
        want: Want,
    },
    Delete {
        name: String,
    },
    /// Kill every replica right after the n-th controller call from now took
    /// effect, then start them again.
    CrashAfter(u64),
    /// Take every shard lease away from its holder, mid-call for whatever is in flight.
    StealLeases,
}

/// A seed's workload: the fault mix and the steps, each followed by a pause.
#[derive(Debug)]
struct Plan {
    faults: FaultMix,
    steps: Vec<(Action, Duration)>,
}

/// Draws a seed's workload: a fault mix, then 14 steps over at most five live
/// resources (at most two of them nodes or sets), with unique names.
fn plan(seed: u64) -> Plan {
    let mut rng = StdRng::seed_from_u64(seed);
    let faults = FaultMix {
        throttle: rng.gen_range(0.0..0.06),
        server_error: rng.gen_range(0.0..0.04),
        timeout: rng.gen_range(0.0..0.03),
        stale_read: rng.gen_range(0.0..0.15),
    };
    let mut live: BTreeMap<String, Want> = BTreeMap::new();
    let mut steps = Vec::new();
    let mut created = 0;
    for _ in 0..14 {
        let machines = live.values().filter(|w| matches!(w, Want::Node { .. } | Want::NodeSet { .. })).count();
        let roll = rng.gen_range(0..100);
        let action = if live.len() < 2 || (roll < 35 && live.len() < 5) {
            created += 1;
            let want = match rng.gen_range(0..(if machines < 2 { 6 } else { 4 })) {
                0 | 1 => Want::Relay { cluster: rng.gen_range(0..2), image: 1, cache: rng.gen_bool(0.3), min: 1 },
                2 | 3 => Want::Worker { cluster: rng.gen_range(0..2), image: 1, min: 1, native: false },
                4 => Want::Node { version: 1, instance_type: false },
                _ => Want::NodeSet { replicas: rng.gen_range(1..=2), version: 1 },
            };
            let prefix = match want.kind() {
                Kind::Relay => "r",
                Kind::Worker => "w",
                Kind::Node => "n",
                _ => "s",
            };
            let name = format!("{prefix}{created}");
            live.insert(name.clone(), want.clone());
            Action::Write { name, want }
        } else if roll < 75 {
            let name = live.keys().nth(rng.gen_range(0..live.len())).cloned().unwrap_or_default();
            let want = live[&name].changed(&mut rng);
            live.insert(name.clone(), want.clone());
            Action::Write { name, want }
        } else if roll < 87 {
            let name = live.keys().nth(rng.gen_range(0..live.len())).cloned().unwrap_or_default();
            live.remove(&name);
            Action::Delete { name }
        } else if roll < 95 {
            Action::CrashAfter(rng.gen_range(1..40))
        } else {
            Action::StealLeases
        };
        steps.push((action, Duration::from_millis(rng.gen_range(0..150))));
    }
    Plan { faults, steps }
}

// ---- invariants ----------------------------------------------------------------

/// Shards the replicas share.
const SHARDS: u32 = 8;

/// The replicas' lease period.
const LEASE: Duration = Duration::from_secs(2);

/// Reconciles in progress per (replica, key), and per key across replicas.
type InFlightCounts = (HashMap<(String, String), u32>, HashMap<String, u32>);

/// What the checks found, shared by the monitor, the reconciler probes and the test.
#[derive(Default)]
struct Findings {
    violations: Mutex<Vec<String>>,
    /// Reconciles in progress per (replica, key) and per key.
    in_flight: Mutex<InFlightCounts>,
    /// When leases were last taken away: until every hold from before has
    /// lapsed (a lease period later), two replicas may both trust a shard.
    leases_stolen: Mutex<Option<tokio::time::Instant>>,
    /// Each replica's leases by name, to tell whether it still trusts a shard.
    leases: Mutex<HashMap<String, Arc<ShardLeases>>>,
}

impl Findings {
    /// Leases were taken away less than a lease period ago.
    fn stolen_lately(&self) -> bool {
        self.leases_stolen.lock().unwrap().is_some_and(|at| at.elapsed() < LEASE)
    }

    fn violate(&self, what: String) {
        let mut v = self.violations.lock().unwrap();
        if v.len() < 20 {
            v.push(what);
        }
    }
}

/// Wraps a reconciler to catch a key reconciled twice at once.
struct Exclusive {
    inner: Arc<dyn DynReconciler>,
    replica: String,
    findings: Arc<Findings>,
}

/// A reconcile in progress; leaves the count when dropped, also when a
/// crashed replica's tasks are aborted mid-call.
struct InFlight<'a> {
    probe: &'a Exclusive,
    key: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut g = self.probe.findings.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = g.0.get_mut(&(self.probe.replica.clone(), self.key.clone())) {
            *n -= 1;
        }
        if let Some(n) = g.1.get_mut(&self.key) {
            *n -= 1;
        }
    }
}

impl Exclusive {
    /// Counts the reconcile in. Another replica may still be inside a
    /// reconcile of the key — one whose lease lapsed while it ran (its
    /// renewals stalled) and whose AWS calls its gate now refuses — but it
    /// must no longer trust the key's shard: two replicas that both trust
    /// it could both act.
    fn enter(&self, r: &StoredResource) -> InFlight<'_> {
        let key = format!("{}/{}/{}", r.kind, r.namespace, r.name);
        let mut g = self.findings.in_flight.lock().unwrap();
        let here = g.0.entry((self.replica.clone(), key.clone())).or_default();
        *here += 1;
        let here = *here;
        let anywhere = g.1.entry(key.clone()).or_default();
        *anywhere += 1;
        let anywhere = *anywhere;
        let others: Vec<String> =
            g.0.iter()
                .filter(|((replica, k), n)| **n > 0 && k == &key && replica != &self.replica)
                .map(|((replica, _), _)| replica.clone())
                .collect();
        drop(g);
        if here > 1 {
            self.findings.violate(format!("{key} reconciled twice at once by {}", self.replica));
        } else if anywhere > 1 && !self.findings.stolen_lately() {
            let shard = shard_of(r.kind.as_str(), &r.namespace, &r.name, SHARDS);
            let leases = self.findings.leases.lock().unwrap();
            let trusts = |replica: &str| leases.get(replica).is_some_and(|l| l.owned().fence(shard).is_some());
            for other in others.into_iter().filter(|_| trusts(&self.replica)) {
                if trusts(&other) {
                    self.findings.violate(format!(
                        "{key} reconciled by {} while {other}, inside a reconcile of it, still trusts shard {shard}, \
                         with no lease taken away",
                        self.replica
                    ));
                }
            }
        }
        InFlight { probe: self, key }
    }
}

#[async_trait::async_trait]
impl DynReconciler for Exclusive {
    async fn reconcile(&self, ctx: &Context<'_>, r: &StoredResource) -> Result<Step, ReconcileError> {
        let _in_flight = self.enter(r);
        self.inner.reconcile(ctx, r).await
    }

    async fn cleanup(&self, ctx: &Context<'_>, r: &StoredResource) -> Result<Option<Step>, ReconcileError> {
        let _in_flight = self.enter(r);
        self.inner.cleanup(ctx, r).await
    }

    fn expect(&self, r: &StoredResource) {
        self.inner.expect(r)
    }
}

/// Everything a replica of the sweep needs.
struct World {
    store: Store,
    cloud: SimCloud,
    prefix: String,
    ns: String,
    health_port: u16,
    findings: Arc<Findings>,
}

impl World {
    /// A replica running every reconciler (node builds run the provisioner
    /// in-process), each wrapped in the [`Exclusive`] probe. A crashed replica
    /// is replaced by one under a new name.
    fn start(&self, name: &str) -> (Replica, Store) {
        // A pool of its own, as a process has: a crash closes it, so whatever
        // the replica had in flight in Postgres ends as a killed process's
        // connections do, and no connection it used is handed to anyone else.
        let store = self.store.dedicated(12);
        let workloads = Workloads::new(
            self.cloud.cloud(),
            WorkloadConfig {
                poll_in_flight: Duration::from_millis(40),
                observe_max_age: Duration::from_secs(60),
                // Ten times the simulated cloud's consistency window.
                absence_grace: Duration::from_secs(1),
                ..WorkloadConfig::default()
            },
        );
        let (nodes, sets) = nodes_and_sets(&store, &self.cloud, 20);
        let reconcilers: Reconcilers = controller::workloads::reconcilers(Some(workloads), Some(nodes), Some(sets))
            .into_iter()
            .map(|(kind, inner)| {
                let probe: Arc<dyn DynReconciler> =
                    Arc::new(Exclusive { inner, replica: name.to_owned(), findings: self.findings.clone() });
                (kind, probe)
            })
            .collect();
        let opts = Options {
            lease: LEASE,
            renew: Duration::from_millis(300),
            workers: 4,
            // Production resyncs every 300 s as the last line behind the change
            // feed and requeues; the simulated cloud runs far faster, so its
            // replicas resync every 10 s (a requeue lost after a crash or a
            // lease theft is healed by it here as there).
            resync: Duration::from_secs(10),
            budgets: budgets(),
            shards: SHARDS,
            ..Options::default()
        };
        let replica = start_replica_with(&store, &self.prefix, name, reconcilers, &opts);
        self.findings.leases.lock().unwrap().insert(name.to_owned(), replica.controller.leases().clone());
        (replica, store)
    }

    async fn resources(&self) -> Vec<StoredResource> {
        let q = ListQuery { namespace: Some(self.ns.clone()), limit: 1000, ..Default::default() };
        self.store.list(&q).await.map(|p| p.items).unwrap_or_default()
    }

    /// What lives in the cloud per uid: (active services per cluster,
    /// draining services, queues, caches, live instances).
    fn live_by_uid(&self) -> BTreeMap<String, Live> {
        let mut out: BTreeMap<String, Live> = BTreeMap::new();
        for s in self.cloud.services() {
            if let Some(uid) = s.tags.get(TAG_UID) {
                let live = out.entry(uid.clone()).or_default();
                match s.state {
                    ServiceState::Active => *live.services.entry(s.cluster.clone()).or_default() += 1,
                    _ => live.draining += 1,
                }
            }
        }
        for (name, _) in self.cloud.queues() {
            if let Some(uid) = self.cloud.queue_tags(&name).and_then(|t| t.get(TAG_UID).cloned()) {
                out.entry(uid).or_default().queues += 1;
            }
        }
        for g in self.cloud.replication_groups() {
            if g.status != "deleting"
                && let Some(uid) = self.cloud.replication_group_tags(&g.id).and_then(|t| t.get(TAG_UID).cloned())
            {
                out.entry(uid).or_default().caches += 1;
            }
        }
        for i in self.cloud.instances() {
            let role = i.tags.get(TAG_ROLE).map(String::as_str);
            if matches!(i.state, InstanceState::Pending | InstanceState::Running)
                && role == Some("instance")
                && let Some(uid) = i.tags.get(TAG_UID)
            {
                let shape = i.tags.get(TAG_INSTANCE_HASH).cloned().unwrap_or_default();
                *out.entry(uid.clone()).or_default().instances.entry(shape).or_default() += 1;
            }
        }
        for v in self.cloud.volumes() {
            if v.state != "deleting"
                && v.tags.get(TAG_ROLE).map(String::as_str) == Some("data")
                && let Some(uid) = v.tags.get(TAG_UID)
            {
                out.entry(uid.clone()).or_default().volumes += 1;
            }
        }
        out
    }

    /// Every uid that still has something in the cloud (anything but
    /// INACTIVE services, terminated instances and deleted objects).
    fn leftovers(&self, uids: &BTreeSet<String>) -> Vec<String> {
        let ours = |tags: &runners::cloud::Tags| tags.get(TAG_UID).is_some_and(|u| uids.contains(u));
        let mut left = Vec::new();
        for s in self.cloud.services() {
            if ours(&s.tags) {
                left.push(format!("service {}/{} ({:?})", s.cluster, s.name, s.state));
            }
        }
        for (name, _) in self.cloud.queues() {
            if self.cloud.queue_tags(&name).is_some_and(|t| ours(&t)) {
                left.push(format!("queue {name}"));
            }
        }
        for g in self.cloud.replication_groups() {
            if self.cloud.replication_group_tags(&g.id).is_some_and(|t| ours(&t)) {
                left.push(format!("cache {} ({})", g.id, g.status));
            }
        }
        for i in self.cloud.instances() {
            if ours(&i.tags) && i.state != InstanceState::Terminated {
                left.push(format!("instance {} ({:?})", i.id, i.state));
            }
        }
        for v in self.cloud.volumes() {
            if ours(&v.tags) {
                left.push(format!("volume {} ({})", v.id, v.state));
            }
        }
        for s in self.cloud.snapshots() {
            if ours(&s.tags) {
                left.push(format!("snapshot {}", s.id));
            }
        }
        let family = format!("/{}_", self.ns);
        left.extend(self.cloud.active_task_definitions().into_iter().filter(|a| a.contains(&family)));
        left.extend(self.cloud.scalable_targets().into_iter().filter(|t| t.contains(&family)));
        left
    }
}

/// What lives in the cloud for one resource.
#[derive(Debug, Default)]
struct Live {
    services: BTreeMap<String, u32>,
    draining: u32,
    queues: u32,
    caches: u32,
    /// Live instances per shape (`mooring:instance-hash`): a Replace runs
    /// the new shape beside the old until the volume has moved.
    instances: BTreeMap<String, u32>,
    /// Data volumes (not being deleted): one per node once it converged (a
    /// build may briefly make a second one, which the next build deletes).
    volumes: u32,
}

/// Checks the continuous invariants once; `generations` keeps the highest
/// `observedGeneration` seen per uid, `uids` every uid seen.
async fn check_once(w: &World, generations: &mut HashMap<String, i64>, uids: &mut BTreeSet<String>) {
    for r in w.resources().await {
        let uid = r.uid.to_string();
        uids.insert(uid.clone());
        if let Some(g) = r.status["observedGeneration"].as_i64() {
            let seen = generations.entry(uid).or_insert(g);
            if g < *seen {
                w.findings.violate(format!("{}/{}: observedGeneration went back from {seen} to {g}", r.kind, r.name));
            }
            *seen = (*seen).max(g);
        }
    }
    for (uid, live) in w.live_by_uid() {
        let active: u32 = live.services.values().sum();
        if live.services.values().any(|&n| n > 1) || active > 2 {
            w.findings.violate(format!("resource {uid} has two live services: {live:?}"));
        }
        if live.queues > 2 || live.caches > 1 || live.instances.values().any(|&n| n > 1) {
            w.findings.violate(format!("resource {uid} has duplicates: {live:?}"));
        }
    }
}

// ---- one seed ---------------------------------------------------------------------

/// Whether a resource is done: Synced and Ready at its generation.
fn settled(r: &StoredResource) -> bool {
    let ok = |t| condition(&r.status, t).is_some_and(|(s, _, g)| s == "True" && g == r.generation);
    r.deletion_timestamp.is_none() && ok("Synced") && ok("Ready")
}

/// The replicas of a seed, restarted under new names after a crash.
struct Replicas {
    /// Each with its own pool.
    running: Vec<(Replica, Store)>,
    started: u32,
    crash: Option<Arc<Notify>>,
}

impl Replicas {
    fn start(w: &World) -> Replicas {
        let mut r = Replicas { running: vec![], started: 0, crash: None };
        for _ in 0..2 {
            r.spawn(w);
        }
        r
    }

    fn spawn(&mut self, w: &World) {
        self.started += 1;
        self.running.push(w.start(&format!("sweep-{}", self.started)));
    }

    /// If the armed crash fired: every replica dies (the one whose call
    /// hangs among them) and two new ones start. Returns whether it fired.
    async fn crash_if_fired(&mut self, w: &World) -> bool {
        let fired = match &self.crash {
            Some(n) => tokio::time::timeout(Duration::ZERO, n.notified()).await.is_ok(),
            None => false,
        };
        if fired {
            self.crash = None;
            for (r, store) in self.running.drain(..) {
                crash(r, &w.prefix).await;
                close(store).await;
            }
            for _ in 0..2 {
                self.spawn(w);
            }
        }
        fired
    }

    async fn shutdown(self) {
        for (r, store) in self.running {
            r.shutdown().await;
            close(store).await;
        }
    }
}

/// Closes a replica's pool: its connections end, and Postgres rolls back
/// whatever they had open.
async fn close(store: Store) {
    if tokio::time::timeout(Duration::from_secs(10), store.pool().close()).await.is_err() {
        panic!("a crashed replica's connections were not released within 10 s");
    }
}

/// How a seed went, for the sweep's summary line.
#[derive(Debug, Default)]
struct Outcome {
    crashes: u32,
    steals: u32,
    calls: u64,
}

async fn steal_leases(prefix: &str) {
    let mut redis = redis::Client::open(redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}:lease:*")).query_async(&mut redis).await.unwrap();
    for k in keys {
        let _: () = redis::cmd("DEL").arg(k).query_async(&mut redis).await.unwrap();
    }
}

/// Runs one seed to the end; panics naming what broke.
async fn run_seed(store: Store, seed: u64, health_port: u16) -> Outcome {
    let plan = plan(seed);
    let cloud = SimCloud::new(SimConfig {
        seed,
        faults: plan.faults,
        latency: (Duration::ZERO, Duration::from_millis(1)),
        task_start_delay: Duration::from_millis(30),
        drain_delay: Duration::from_millis(20),
        cache_create_delay: Duration::from_millis(30),
        consistency_window: Duration::from_millis(100),
        clusters: CLUSTERS.iter().map(|c| c.to_string()).collect(),
        // The node tests' fast instances, volumes and builds.
        ..common::nodes::sim(seed).config().clone()
    });
    cloud.audit_budgets(budgets().0, 2.0);
    let w = World {
        store,
        cloud,
        prefix: format!("sweep-{seed}-{}", uuid::Uuid::new_v4()),
        ns: format!("seed{seed}"),
        health_port,
        findings: Arc::new(Findings::default()),
    };
    let mut replicas = Replicas::start(&w);
    let mut outcome = Outcome::default();
    let mut generations = HashMap::new();
    let mut uids = BTreeSet::new();
    let mut wants: BTreeMap<String, Want> = BTreeMap::new();

    // The workload, with the invariants checked between steps and during pauses.
    for (action, pause) in &plan.steps {
        match action {
            Action::Write { name, want } => {
                apply(&w.store, want.document(&w.ns, name, w.health_port)).await;
                wants.insert(name.clone(), want.clone());
            }
            Action::Delete { name } => {
                let kind = wants.remove(name).map(|w| w.kind()).unwrap_or(Kind::Relay);
                w.store.request_delete(kind, &w.ns, name).await.unwrap();
            }
            Action::CrashAfter(n) => {
                if replicas.crash.is_none() {
                    replicas.crash = Some(w.cloud.crash_at(*n));
                }
            }
            Action::StealLeases => {
                *w.findings.leases_stolen.lock().unwrap() = Some(tokio::time::Instant::now());
                steal_leases(&w.prefix).await;
                *w.findings.leases_stolen.lock().unwrap() = Some(tokio::time::Instant::now());
                outcome.steals += 1;
            }
        }
        let until = tokio::time::Instant::now() + *pause;
        loop {
            if replicas.crash_if_fired(&w).await {
                outcome.crashes += 1;
            }
            check_once(&w, &mut generations, &mut uids).await;
            if tokio::time::Instant::now() >= until {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    // The faults stop; everything converges.
    w.cloud.set_faults(FaultMix::none());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        if replicas.crash_if_fired(&w).await {
            outcome.crashes += 1;
        }
        check_once(&w, &mut generations, &mut uids).await;
        let resources = w.resources().await;
        let pending: Vec<String> = resources
            .iter()
            .filter(|r| !settled(r) || (r.kind != Kind::Node && !wants.contains_key(&r.name)))
            .map(|r| format!("{}/{}: gen {} {}", r.kind, r.name, r.generation, r.status["conditions"]))
            .collect();
        let aws = aws_mismatches(&w, &resources, &wants);
        if pending.is_empty() && aws.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not converged 90 s after the faults stopped:\n{pending:#?}\nAWS: {aws:#?}"
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    // A crash point the run has not reached yet may still come during the
    // deletion; one that never comes is disarmed at the end.

    // Everything is deleted; nothing is left behind.
    for name in wants.keys() {
        w.store.request_delete(wants[name].kind(), &w.ns, name).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        if replicas.crash_if_fired(&w).await {
            outcome.crashes += 1;
        }
        check_once(&w, &mut generations, &mut uids).await;
        let left = w.resources().await;
        if left.is_empty() {
            break;
        }
        let names: Vec<_> = left.iter().map(|r| format!("{}/{}: {}", r.kind, r.name, r.status)).collect();
        assert!(
            tokio::time::Instant::now() < deadline,
            "not deleted within 90 s: {names:#?}\nin the cloud: {:#?}",
            w.leftovers(&uids)
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = w.leftovers(&uids);
        if left.is_empty() {
            break;
        }
        // Draining services and terminating instances finish by themselves.
        if replicas.crash_if_fired(&w).await {
            outcome.crashes += 1;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "left in the cloud after every resource was deleted: {left:#?}"
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    w.cloud.clear_crash();
    replicas.shutdown().await;

    let violations = w.findings.violations.lock().unwrap().clone();
    assert!(violations.is_empty(), "invariants broken: {violations:#?}");
    let over = w.cloud.over_budget();
    assert!(over.is_empty(), "AWS calls over the controller's budgets, per family: {over:?}");
    outcome.calls = w.cloud.total_calls();
    outcome
}

/// Where AWS differs from the settled specs: each relay and worker has one
/// active service, in the cluster its spec names (and the old one gone once
/// the move finished); caches and instances as the specs say.
fn aws_mismatches(w: &World, resources: &[StoredResource], wants: &BTreeMap<String, Want>) -> Vec<String> {
    let live = w.live_by_uid();
    let mut out = Vec::new();
    for r in resources {
        let uid = r.uid.to_string();
        let empty = Live::default();
        let l = live.get(&uid).unwrap_or(&empty);
        let one_in = |cluster: &str| l.services.len() == 1 && l.services.get(cluster) == Some(&1);
        match wants.get(&r.name) {
            Some(Want::Relay { cluster, cache, .. })
                if !one_in(CLUSTERS[*cluster]) || l.caches != u32::from(*cache) =>
            {
                out.push(format!("relay {} (cache wanted: {cache}): {l:?}; status {}", r.name, r.status))
            }
            Some(Want::Worker { cluster, .. }) if !one_in(CLUSTERS[*cluster]) || l.queues != 2 => {
                out.push(format!("worker {}: {l:?}", r.name))
            }
            _ if r.kind == Kind::Node && (l.instances.values().sum::<u32>() != 1 || l.volumes != 1) => {
                out.push(format!("node {}: {l:?}", r.name))
            }
            _ => {}
        }
    }
    for (name, want) in wants {
        if let Want::NodeSet { replicas, .. } = want {
            let members = resources
                .iter()
                .filter(|r| r.kind == Kind::Node && r.labels.get("mooring/nodeset") == Some(name))
                .count();
            if members != *replicas as usize {
                out.push(format!("set {name}: {members} members, {replicas} wanted"));
            }
        }
    }
    out
}

// ---- the sweep ----------------------------------------------------------------------

/// The seeds to sweep: 1..=`MOORING_SWEEP_SEEDS` (default 50), or the one
/// seed to replay (`MOORING_SWEEP_SEED`).
fn seeds() -> Vec<u64> {
    if let Some(one) = std::env::var("MOORING_SWEEP_SEED").ok().and_then(|s| s.parse::<u64>().ok()) {
        return vec![one];
    }
    let n = std::env::var("MOORING_SWEEP_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(50u64);
    (1..=n).collect()
}

/// Seeds run in this many lanes at once, each lane one seed after another
/// in a database of its own (the replicas of a seed reconcile every
/// resource of their database).
const LANES: usize = 5;

/// A database of a lane: created beside the test's, dropped at the end.
async fn lane_database(pool: &sqlx::PgPool, name: &str) -> (sqlx::PgPool, Store) {
    let options = (*pool.connect_options()).clone();
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(pool).await.unwrap();
    let lane_pool =
        sqlx::postgres::PgPoolOptions::new().max_connections(8).connect_with(options.database(name)).await.unwrap();
    let store = common::store(lane_pool.clone()).await;
    (lane_pool, store)
}

/// One lane: its seeds one after another in a fresh database beside the
/// test's. A failed seed's replicas may still be running, so the lane goes
/// on in a new database. Returns every failure, named with its replay command.
async fn lane(pool: sqlx::PgPool, run: &str, lane: usize, seeds: Vec<u64>, health_port: u16) -> Vec<String> {
    let mut failures = Vec::new();
    let mut databases = Vec::new();
    let mut current: Option<Store> = None;
    for seed in seeds {
        let store = match &current {
            Some(store) => store.clone(),
            None => {
                let name = format!("sweep_{run}_lane{lane}_{}", databases.len());
                let (lane_pool, store) = lane_database(&pool, &name).await;
                databases.push((name, lane_pool));
                current = Some(store.clone());
                store
            }
        };
        let started = std::time::Instant::now();
        match tokio::spawn(run_seed(store, seed, health_port)).await {
            Ok(o) => eprintln!(
                "seed {seed}: passed in {:.1} s ({} calls, {} crashes, {} lease thefts)",
                started.elapsed().as_secs_f64(),
                o.calls,
                o.crashes,
                o.steals
            ),
            Err(e) => {
                let why = e
                    .try_into_panic()
                    .ok()
                    .and_then(|p| {
                        p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    })
                    .unwrap_or_else(|| "cancelled".into());
                eprintln!("seed {seed}: FAILED");
                failures.push(format!(
                    "seed {seed} failed: {why}\nreplay: MOORING_SWEEP_SEED={seed} cargo test --workspace --test sim_sweep -- --nocapture\nplan: {:#?}",
                    plan(seed)
                ));
                current = None;
            }
        }
    }
    drop(current);
    for (name, lane_pool) in databases {
        lane_pool.close().await;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
            .execute(&pool)
            .await
            .unwrap();
    }
    failures
}

#[sqlx::test(migrations = false)]
async fn every_seed_converges_without_duplicates_leaks_or_overspending(pool: sqlx::PgPool) {
    let health_port = health_server(Arc::new(AtomicBool::new(true))).await;
    let seeds = seeds();
    let started = std::time::Instant::now();
    let run = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let lanes = (0..LANES).map(|i| {
        let mine: Vec<u64> = seeds.iter().skip(i).step_by(LANES).copied().collect();
        lane(pool.clone(), &run, i, mine, health_port)
    });
    let failures: Vec<String> = futures::future::join_all(lanes).await.into_iter().flatten().collect();
    assert!(failures.is_empty(), "{} of {} seeds failed:\n{}", failures.len(), seeds.len(), failures.join("\n\n"));
    eprintln!("{} seeds passed in {:.1} s", seeds.len(), started.elapsed().as_secs_f64());
}

/// The workload is a pure function of the seed: the same seed plans the same
/// steps, and different seeds differ.
#[test]
fn a_seed_plans_the_same_workload_every_time() {
    let a = format!("{:?}", plan(7));
    assert_eq!(a, format!("{:?}", plan(7)));
    assert_ne!(a, format!("{:?}", plan(8)));
    let kinds: BTreeSet<&str> = (1..=50)
        .flat_map(|s| plan(s).steps)
        .filter_map(|(a, _)| match a {
            Action::Write { want, .. } => Some(want.kind().as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(kinds.len(), 4, "every reconciled kind appears in the short sweep: {kinds:?}");
}
