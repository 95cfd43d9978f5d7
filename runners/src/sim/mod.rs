//! The simulated cloud: an in-process implementation of the facades
//! ([`Ecs`](crate::cloud::Ecs), [`Queues`](crate::cloud::Queues),
//! [`Caches`](crate::cloud::Caches), and for nodes [`Ec2`](crate::cloud::Ec2),
//! [`Builds`](crate::cloud::Builds), [`TargetGroups`](crate::cloud::TargetGroups))
//! with AWS semantics, deterministic from a seed.
//!
//! It exists so the reconcilers can be benchmarked at a scale no AWS account
//! (or moto) allows on one machine, and so crash and fault tests can replay the
//! same failures: throttling, server errors, timeouts whose effect may or may
//! not have happened, eventually consistent reads, and a process crash right
//! after AWS acted but before the caller learned of it ([`SimCloud::crash_at`]).
//!
//! How it works:
//! - One [`std::sync::Mutex`] over the whole state, never held across an await.
//! - No background tasks: time-driven changes (tasks starting, rollouts
//!   completing or failing, services draining, caches becoming available,
//!   instances starting and stopping, volumes and targets changing state) are
//!   computed lazily from timestamps ([`tokio::time::Instant`], so tests may
//!   pause the clock) whenever something looks at the object. The one
//!   exception is a CodeBuild build: it runs its [`BuildExecutor`] in a spawned
//!   task, as the build would run in AWS whatever happens to the controller.
//! - Every decision that looks random is a hash of the seed, the operation, the
//!   object the call is about and how many times that operation was called on
//!   that object before. The same seed therefore replays the same faults per
//!   object however concurrent calls on *different* objects interleave.
//! - Out-of-band helpers ([`SimCloud::set_desired_count`], ...) play "someone
//!   changed it in the console": no faults, no call counting (they are writes,
//!   though, so a stale read right after one may still show the old state).
//!   Inspection methods are never faulted, counted or stale.
//! - Calls a build's executor makes (from inside the build task) are counted
//!   and faulted like any other, but they are not the controller's: they are
//!   neither crash targets nor counted towards one. Like the SDK's standard
//!   retry mode the provisioner runs on, they are retried up to three
//!   attempts when the fault left no effect (throttling, 5xx, a timeout that
//!   did not apply).

mod caches;
mod codebuild;
mod dns;
mod ec2;
mod ecs;
mod faults;
mod logs;
mod metrics;
mod queues;
mod scaling;
mod targets;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_nodes;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::cloud::caches::ReplicationGroup;
use crate::cloud::codebuild::BuildExecutor;
use crate::cloud::ec2::{Instance, Volume};
use crate::cloud::ecs::Service;
use crate::cloud::queues::QueueAttributes;
use crate::cloud::targets::TargetHealth;
use crate::cloud::{Cloud, CloudError, CloudResult, ErrorKind, NodeCloud, Op};
use crate::gate::ApiFamily;
use faults::{Bucket, Fault};

/// The AWS account every simulated ARN and URL is in.
pub const ACCOUNT: &str = "000000000000";
/// The Region every simulated ARN and URL is in.
pub const REGION: &str = "us-east-1";

/// The target group that exists by default, so node tests need no setup.
pub const DEFAULT_TARGET_GROUP_ARN: &str =
    "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/nodes/0123456789abcdef";

/// Attempts the SDK's standard retry mode makes of one call; the simulated
/// cloud applies it to the calls of builds (the provisioner runs on the SDK),
/// while the controller's calls fail at once and are retried by the
/// controller.
const SDK_ATTEMPTS: u32 = 3;

/// How long a call that times out takes before the caller hears of it.
const TIMEOUT_AFTER: Duration = Duration::from_millis(5);

/// How often each kind of fault hits a facade call (probabilities per call,
/// each in `[0, 1]`, summing to at most 1), so fault tests can dial in how hostile
/// the cloud is.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FaultMix {
    /// `ErrorKind::Throttled`, no effect.
    pub throttle: f64,
    /// `ErrorKind::Server`, no effect.
    pub server_error: f64,
    /// `ErrorKind::Timeout`; a mutating call took effect in half of the cases.
    pub timeout: f64,
    /// A read of an object written within the consistency window answers with
    /// the state before that write (read operations only).
    pub stale_read: f64,
}

impl FaultMix {
    /// No faults at all (the default).
    pub fn none() -> FaultMix {
        FaultMix::default()
    }

    /// A bad day in a busy account: 5% throttled, 3% server errors, 2%
    /// timeouts, 10% stale reads.
    pub fn typical() -> FaultMix {
        FaultMix { throttle: 0.05, server_error: 0.03, timeout: 0.02, stale_read: 0.1 }
    }
}

/// Everything that shapes a simulated cloud, so a benchmark or a test picks how
/// fast and how hostile it is, and replays it from the seed.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seeds every pseudo-random decision.
    pub seed: u64,
    /// Fault probabilities per call.
    pub faults: FaultMix,
    /// Latency per call, uniformly in `[min, max]` (no sleep when max is zero).
    pub latency: (Duration, Duration),
    /// A deployment's running count follows its desired count this long after
    /// the last change; a failing deployment fails after it.
    pub task_start_delay: Duration,
    /// A deleted service goes DRAINING → INACTIVE after this; a deregistered
    /// target is `draining` this long before it is gone.
    pub drain_delay: Duration,
    /// A replication group goes creating → available (and deleting → gone) after this.
    pub cache_create_delay: Duration,
    /// A stale read may return an object's state from before its last write when
    /// that write is younger than this.
    pub consistency_window: Duration,
    /// ECS clusters that exist from the start.
    pub clusters: Vec<String>,
    /// Throttle like AWS: a token bucket per API family with AWS's published
    /// burst and refill ([`ApiFamily::aws_bucket`]).
    pub enforce_aws_buckets: bool,
    /// A task definition with a container image containing this string never
    /// becomes healthy, so its rollout fails (empty: nothing fails).
    pub failing_image_marker: String,
    /// An instance whose user data contains this string (a node whose
    /// software version contains it, say) never passes its EC2 status checks,
    /// so the node never becomes `Ready` (empty: every instance passes).
    pub impaired_instance_marker: String,
    /// The EC2 subnets that exist, as (subnet id, availability zone).
    pub subnets: Vec<(String, String)>,
    /// A launched or started instance goes `pending` → `running` after this.
    pub instance_start_delay: Duration,
    /// A running instance's status checks initialize this long before they pass.
    pub status_check_delay: Duration,
    /// An instance goes `stopping` → `stopped` and `shutting-down` →
    /// `terminated` after this.
    pub instance_stop_delay: Duration,
    /// A volume goes `creating` → `available` and `deleting` → gone after this.
    pub volume_create_delay: Duration,
    /// A started build waits this long (QUEUED, then PROVISIONING) before its
    /// executor runs.
    pub build_queue_delay: Duration,
    /// At most this many builds run at once (CodeBuild's account quota); one
    /// more is refused with `ErrorKind::QuotaExceeded`.
    pub codebuild_concurrency: usize,
    /// ELBv2 target group ARNs that exist.
    pub target_groups: Vec<String>,
    /// A registered target of a running instance is `initial` this long before
    /// it is `healthy`.
    pub target_healthy_delay: Duration,
    /// How long one minute of ECS's rollout settings (bake times, hook
    /// timeouts) lasts in the simulation.
    pub minute: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 0,
            faults: FaultMix::default(),
            latency: (Duration::ZERO, Duration::from_millis(1)),
            task_start_delay: Duration::from_millis(200),
            drain_delay: Duration::from_millis(100),
            cache_create_delay: Duration::from_millis(200),
            consistency_window: Duration::from_millis(500),
            clusters: vec!["default".to_owned()],
            enforce_aws_buckets: false,
            failing_image_marker: ":fail".to_owned(),
            impaired_instance_marker: "+impaired".to_owned(),
            subnets: vec![
                ("subnet-0a1b2c3d".to_owned(), "us-east-1a".to_owned()),
                ("subnet-0b2c3d4e".to_owned(), "us-east-1b".to_owned()),
                ("subnet-0c3d4e5f".to_owned(), "us-east-1c".to_owned()),
            ],
            instance_start_delay: Duration::from_millis(100),
            status_check_delay: Duration::from_millis(200),
            instance_stop_delay: Duration::from_millis(100),
            volume_create_delay: Duration::from_millis(50),
            build_queue_delay: Duration::from_millis(50),
            codebuild_concurrency: 20,
            target_groups: vec![DEFAULT_TARGET_GROUP_ARN.to_owned()],
            target_healthy_delay: Duration::from_millis(100),
            minute: Duration::from_secs(60),
        }
    }
}

/// A simulated AWS account: cheap to clone (every clone sees the same state),
/// handed to the controller through [`SimCloud::cloud`] and kept by the test to
/// inspect, change out of band, and inject crashes.
#[derive(Clone)]
pub struct SimCloud {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SimCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCloud").field("seed", &self.inner.config.seed).finish_non_exhaustive()
    }
}

/// The shared part behind every clone and every facade.
struct Inner {
    config: SimConfig,
    /// When the simulation started (queue timestamps count from here).
    started: Instant,
    state: Mutex<State>,
}

/// Everything the simulated account holds, plus the bookkeeping of calls.
#[derive(Default)]
struct State {
    /// Calls from the controller (not from builds) that arrived since the
    /// start (never reset; crash targets count these).
    arrivals: u64,
    /// Calls per operation since the last [`SimCloud::reset_calls`].
    calls: BTreeMap<&'static str, u64>,
    /// How many times each (operation, object) pair was called: the fault ordinal.
    ordinals: HashMap<(&'static str, String), u64>,
    /// The arrival number of the call that "crashes", and whom to tell.
    crash: Option<(u64, Arc<Notify>)>,
    /// The fault mix in force: the config's, until [`SimCloud::set_faults`].
    faults: FaultMix,
    buckets: BTreeMap<ApiFamily, Bucket>,
    /// Shadow buckets with the controller's budgets, and the calls that
    /// arrived when theirs was empty ([`SimCloud::audit_budgets`]).
    audit: BTreeMap<ApiFamily, (Bucket, u64)>,
    ecs: ecs::EcsState,
    sqs: queues::SqsState,
    cache: caches::CacheState,
    ec2: ec2::Ec2State,
    codebuild: codebuild::CodeBuildState,
    elb: targets::ElbState,
    metrics: metrics::MetricsState,
    scaling: scaling::ScalingState,
    logs: logs::LogsState,
    dns: dns::DnsState,
}

/// What a state operation needs to know about the moment and the call.
struct Ctx<'a> {
    now: Instant,
    /// The call drew a stale read.
    stale: bool,
    cfg: &'a SimConfig,
    started: Instant,
}

impl Ctx<'_> {
    /// Wall-clock seconds for timestamps shown to callers (a fixed epoch plus
    /// simulated time, so runs are reproducible).
    fn epoch_secs(&self) -> u64 {
        1_700_000_000 + self.now.saturating_duration_since(self.started).as_secs()
    }
}

/// One object's current state and its state before the last write, for stale reads.
#[derive(Debug, Clone)]
struct Slot<T> {
    cur: Option<T>,
    before: Option<T>,
    written: Option<Instant>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot { cur: None, before: None, written: None }
    }
}

impl<T: Clone> Slot<T> {
    /// What a read sees: the state before the last write when the call drew a
    /// stale read and that write is recent, else the current state.
    fn view(&self, ctx: &Ctx<'_>) -> Option<&T> {
        let recent = self.written.is_some_and(|w| ctx.now.saturating_duration_since(w) < ctx.cfg.consistency_window);
        if ctx.stale && recent { self.before.as_ref() } else { self.cur.as_ref() }
    }

    /// Records a write at `now` (keeping the old state for stale reads) and
    /// hands out the state to change.
    fn write(&mut self, now: Instant) -> &mut Option<T> {
        self.before = self.cur.clone();
        self.written = Some(now);
        &mut self.cur
    }
}

/// How the simulated cloud treats one call.
enum Decision {
    Fault(Fault),
    /// The call takes effect, notifies, and never returns.
    Crash(Arc<Notify>),
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ctx(&self, now: Instant, stale: bool) -> Ctx<'_> {
        Ctx { now, stale, cfg: &self.config, started: self.started }
    }

    /// Counts the call and decides its fate and latency.
    fn arrive(&self, op: &Op, key: &str) -> (Decision, Duration) {
        let now = Instant::now();
        let from_build = codebuild::in_build();
        let mut st = self.lock();
        if !from_build {
            st.arrivals += 1;
        }
        *st.calls.entry(op.name).or_default() += 1;
        let ordinal = {
            let o = st.ordinals.entry((op.name, key.to_owned())).or_default();
            *o += 1;
            *o
        };
        let r = faults::hash(self.config.seed, &[op.name.as_bytes(), key.as_bytes(), &ordinal.to_le_bytes()]);
        let latency =
            if self.config.latency.1.is_zero() { Duration::ZERO } else { faults::between(r[2], self.config.latency) };
        let arrivals = st.arrivals;
        if !from_build
            && st.crash.as_ref().is_some_and(|(at, _)| *at == arrivals)
            && let Some((_, notify)) = st.crash.take()
        {
            return (Decision::Crash(notify), latency);
        }
        if !from_build
            && let Some((bucket, over)) = st.audit.get_mut(&op.family)
            && !bucket.take(now)
        {
            *over += 1;
        }
        if self.config.enforce_aws_buckets {
            let bucket = st.buckets.entry(op.family).or_insert_with(|| Bucket::new(op.family.aws_bucket(), now));
            if !bucket.take(now) {
                return (Decision::Fault(Fault::Throttle), latency);
            }
        }
        (Decision::Fault(faults::decide(&st.faults, op.mutating, r[0], r[1])), latency)
    }

    /// Runs a state operation under the lock.
    fn apply<T>(&self, stale: bool, f: impl FnOnce(&mut State, &Ctx<'_>) -> CloudResult<T>) -> CloudResult<T> {
        let now = Instant::now();
        let mut st = self.lock();
        f(&mut st, &self.ctx(now, stale))
    }

    /// One facade call: count it, decide its fault, wait its latency, apply it.
    /// `key` names the object the call is about (faults replay per object).
    async fn call<T, F>(&self, op: Op, key: &str, f: F) -> CloudResult<T>
    where
        F: FnOnce(&mut State, &Ctx<'_>) -> CloudResult<T> + Send,
        T: Send,
    {
        let mut attempts = 1;
        let decision = loop {
            let (decision, latency) = self.arrive(&op, key);
            if !latency.is_zero() {
                tokio::time::sleep(latency).await;
            }
            // A build's calls go through the SDK's standard retry mode: a
            // fault that had no effect is retried (as a new call), up to
            // SDK_ATTEMPTS in all.
            let retry = codebuild::in_build()
                && attempts < SDK_ATTEMPTS
                && matches!(
                    decision,
                    Decision::Fault(Fault::Throttle | Fault::Server | Fault::Timeout { applied: false })
                );
            if !retry {
                break decision;
            }
            if matches!(decision, Decision::Fault(Fault::Timeout { .. })) {
                tokio::time::sleep(TIMEOUT_AFTER).await;
            }
            attempts += 1;
        };
        match decision {
            Decision::Crash(notify) => {
                let _ = self.apply(false, f);
                notify.notify_one();
                std::future::pending().await
            }
            Decision::Fault(Fault::None) => self.apply(false, f),
            Decision::Fault(Fault::Stale) => self.apply(true, f),
            Decision::Fault(Fault::Throttle) => Err(throttled(&op)),
            Decision::Fault(Fault::Server) => Err(server_error(&op)),
            Decision::Fault(Fault::Timeout { applied }) => {
                tokio::time::sleep(TIMEOUT_AFTER).await;
                if applied {
                    let _ = self.apply(false, f);
                }
                Err(CloudError::new(
                    &op,
                    ErrorKind::Timeout,
                    "dispatch failure: timeout (simulated): the request may or may not have taken effect",
                ))
            }
        }
    }
}

/// AWS's limit of tags per resource (ECS, SQS, ElastiCache alike).
const MAX_TAGS: usize = 50;

/// AWS's tag rules: at most 50, keys of 1–128 and values of at most 256
/// characters, no keys in the reserved `aws:` namespace.
fn check_tags(op: &Op, tags: &crate::cloud::Tags) -> CloudResult<()> {
    let bad = |m: String| Err(CloudError::new(op, ErrorKind::Invalid, m));
    if tags.len() > MAX_TAGS {
        return bad(format!("InvalidParameterException: at most {MAX_TAGS} tags are allowed, got {}", tags.len()));
    }
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return bad(format!("InvalidParameterException: invalid tag {k:?}"));
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            return bad(format!("InvalidParameterException: tag keys may not start with aws: ({k:?})"));
        }
    }
    Ok(())
}

/// A name of 1..=`max` letters, digits, hyphens and underscores (ECS services,
/// families and containers; SQS queues).
fn valid_name(name: &str, max: usize) -> bool {
    !name.is_empty() && name.len() <= max && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The throttling error each service answers with.
fn throttled(op: &Op) -> CloudError {
    let msg = match op.name.split(':').next() {
        Some("sqs") => "RequestThrottled: Rate exceeded (simulated)",
        Some("elasticache") => "Throttling: Rate exceeded (simulated)",
        _ => "ThrottlingException: Rate exceeded (simulated)",
    };
    CloudError::new(op, ErrorKind::Throttled, msg)
}

/// The 5xx each service answers with.
fn server_error(op: &Op) -> CloudError {
    let msg = match op.name.split(':').next() {
        Some("sqs") => "InternalError: We encountered an internal error. Please try again. (simulated)",
        Some("elasticache") => "InternalFailure: The request processing has failed (simulated)",
        _ => "ServerException: Service Unavailable. Please try again later. (simulated)",
    };
    CloudError::new(op, ErrorKind::Server, msg)
}

impl SimCloud {
    /// A fresh account with the configured clusters and nothing else.
    pub fn new(config: SimConfig) -> SimCloud {
        let mut state = State { faults: config.faults, ..State::default() };
        for c in &config.clusters {
            state.ecs.clusters.insert(c.clone());
        }
        for arn in &config.target_groups {
            state.elb.add_group(arn);
        }
        SimCloud { inner: Arc::new(Inner { config, started: Instant::now(), state: Mutex::new(state) }) }
    }

    /// The facades, backed by this account, for the code under test.
    pub fn cloud(&self) -> Cloud {
        Cloud {
            ecs: Arc::new(ecs::SimEcs(self.inner.clone())),
            queues: Arc::new(queues::SimQueues(self.inner.clone())),
            caches: Arc::new(caches::SimCaches(self.inner.clone())),
            metrics: Arc::new(metrics::SimMetrics(self.inner.clone())),
            scaling: Arc::new(scaling::SimAppScaling(self.inner.clone())),
            logs: Arc::new(logs::SimLogs(self.inner.clone())),
            targets: self.target_groups(),
        }
    }

    /// The node facades, backed by this account. `executor` is what a build
    /// does when it runs (in tests, the provisioner against this same account).
    pub fn node_cloud(&self, executor: Arc<dyn BuildExecutor>) -> NodeCloud {
        NodeCloud {
            ec2: self.ec2(),
            builds: Arc::new(codebuild::SimBuilds { inner: self.inner.clone(), executor }),
            targets: self.target_groups(),
            dns: self.dns(),
            alarms: self.alarms(),
            snapshots: Arc::new(ec2::SimEc2(self.inner.clone())),
        }
    }

    /// This account's Route53 (the facade; [`SimCloud::dns_records`] inspects a zone).
    pub fn dns(&self) -> Arc<dyn crate::cloud::Dns> {
        Arc::new(dns::SimDns(self.inner.clone()))
    }

    /// This account's CloudWatch alarms (the facade; [`SimCloud::metric_alarms`] inspects them).
    pub fn alarms(&self) -> Arc<dyn crate::cloud::Alarms> {
        Arc::new(metrics::SimMetrics(self.inner.clone()))
    }

    /// This account's EC2 (what a build executor provisions with).
    pub fn ec2(&self) -> Arc<dyn crate::cloud::Ec2> {
        Arc::new(ec2::SimEc2(self.inner.clone()))
    }

    /// This account's target groups (the facade; [`SimCloud::targets`] inspects one).
    pub fn target_groups(&self) -> Arc<dyn crate::cloud::TargetGroups> {
        Arc::new(targets::SimTargets(self.inner.clone()))
    }

    /// The seed, for a failing test to print so the run can be replayed.
    pub fn seed(&self) -> u64 {
        self.inner.config.seed
    }

    /// The configuration the account runs with.
    pub fn config(&self) -> &SimConfig {
        &self.inner.config
    }

    // ---- call accounting -------------------------------------------------

    /// Calls per operation name (as in [`crate::cloud::ops`]) since the start or
    /// the last [`SimCloud::reset_calls`], faulted calls included.
    pub fn calls(&self) -> BTreeMap<&'static str, u64> {
        self.inner.lock().calls.clone()
    }

    /// Calls of one operation about one object (a queue URL, a service
    /// name: the key the facade counts faults by), faulted ones included,
    /// since the start (not reset).
    pub fn calls_on(&self, op: &Op, key: &str) -> u64 {
        self.inner.lock().ordinals.get(&(op.name, key.to_owned())).copied().unwrap_or(0)
    }

    /// Calls of one operation, faulted ones included.
    pub fn call_count(&self, op: &Op) -> u64 {
        self.inner.lock().calls.get(op.name).copied().unwrap_or(0)
    }

    /// Calls of every operation, faulted ones included.
    pub fn total_calls(&self) -> u64 {
        self.inner.lock().calls.values().sum()
    }

    /// Starts counting calls from zero (e.g. after a warm-up). Fault replay and
    /// crash targets are unaffected.
    pub fn reset_calls(&self) {
        self.inner.lock().calls.clear();
    }

    // ---- crash injection ---------------------------------------------------

    /// Arms a crash: the `n`-th facade call from now (1-based, any facade, in
    /// arrival order) takes its full effect as if it succeeded, then notifies
    /// the returned `Notify` and never completes, as if the process died after
    /// AWS acted but before it learned so. Replaces an armed crash. Calls made
    /// by a running build are not the controller's and do not count; the
    /// builds themselves run on.
    pub fn crash_at(&self, n: u64) -> Arc<Notify> {
        let notify = Arc::new(Notify::new());
        let mut st = self.inner.lock();
        let at = st.arrivals + n.max(1);
        st.crash = Some((at, notify.clone()));
        notify
    }

    /// Disarms a crash that has not happened yet.
    pub fn clear_crash(&self) {
        self.inner.lock().crash = None;
    }

    // ---- faults and budgets --------------------------------------------------

    /// Changes how hostile the cloud is from the next call on (a fault sweep
    /// turns faults off to check that everything converges once they stop).
    /// Which call draws which fault still follows from the seed.
    pub fn set_faults(&self, faults: FaultMix) {
        self.inner.lock().faults = faults;
    }

    /// Starts auditing the controller's call rates: one shadow token bucket
    /// per API family with the given budget (full at the start), drawn from by
    /// every controller call as it arrives (calls from builds are CodeBuild's,
    /// not the controller's). A call that finds its bucket empty is counted in
    /// [`SimCloud::over_budget`]; nothing is refused. `slack` tokens are added
    /// to each burst, for calls whose token was granted in order but which
    /// arrive out of order.
    pub fn audit_budgets(&self, budgets: impl IntoIterator<Item = (ApiFamily, crate::gate::Budget)>, slack: f64) {
        let now = Instant::now();
        let mut st = self.inner.lock();
        st.audit = budgets
            .into_iter()
            .map(|(f, b)| (f, (Bucket::new(crate::gate::Budget { burst: b.burst + slack, ..b }, now), 0)))
            .collect();
    }

    /// Per API family, the controller calls that arrived over the audited
    /// budget ([`SimCloud::audit_budgets`]); families with none are left out.
    pub fn over_budget(&self) -> BTreeMap<ApiFamily, u64> {
        self.inner.lock().audit.iter().filter(|(_, (_, n))| *n > 0).map(|(f, (_, n))| (*f, *n)).collect()
    }

    // ---- inspection (no faults, not counted) -------------------------------

    fn now_ctx<T>(&self, f: impl FnOnce(&mut State, &Ctx<'_>) -> T) -> T {
        let now = Instant::now();
        let mut st = self.inner.lock();
        f(&mut st, &self.inner.ctx(now, false))
    }

    /// Every service that is not INACTIVE, in every cluster, as it is now.
    pub fn services(&self) -> Vec<Service> {
        self.now_ctx(|st, ctx| st.ecs.all_services(ctx))
    }

    /// One service as it is now (INACTIVE ones too), or `None`.
    pub fn service(&self, cluster: &str, name: &str) -> Option<Service> {
        self.now_ctx(|st, ctx| st.ecs.service(cluster, name, ctx))
    }

    /// How many distinct services were ever created under this name: more than
    /// one while the first is still wanted means a duplicate create.
    pub fn services_created(&self, cluster: &str, name: &str) -> u64 {
        self.inner.lock().ecs.created.get(&(cluster.to_owned(), name.to_owned())).copied().unwrap_or(0)
    }

    /// ARNs of every ACTIVE task definition revision (by family, then revision).
    pub fn active_task_definitions(&self) -> Vec<String> {
        self.inner.lock().ecs.active_task_definitions()
    }

    /// Every queue as (name, URL).
    pub fn queues(&self) -> Vec<(String, String)> {
        self.inner.lock().sqs.list()
    }

    /// Every attribute of the queue named `name` (defaults and `QueueArn`
    /// included), or `None` when there is no such queue.
    pub fn queue_attributes(&self, name: &str) -> Option<QueueAttributes> {
        self.inner.lock().sqs.attributes_of(name)
    }

    /// The tags of the queue named `name`.
    pub fn queue_tags(&self, name: &str) -> Option<crate::cloud::Tags> {
        self.inner.lock().sqs.tags_of(name)
    }

    /// Every replication group not yet gone, as it is now.
    pub fn replication_groups(&self) -> Vec<ReplicationGroup> {
        self.now_ctx(|st, ctx| st.cache.all(ctx))
    }

    /// Every instance ever launched, terminated ones included, as it is now
    /// (in launch order).
    pub fn instances(&self) -> Vec<Instance> {
        self.now_ctx(|st, ctx| st.ec2.all_instances(ctx))
    }

    /// Running instances whose tag `key` is `value`: what is actually serving.
    pub fn running_instances_tagged(&self, key: &str, value: &str) -> Vec<Instance> {
        self.now_ctx(|st, ctx| st.ec2.running_tagged(key, value, ctx))
    }

    /// How many instances were ever launched with tag `key` = `value`
    /// (terminated ones included): more than one where one was wanted means a
    /// duplicate launch.
    pub fn instances_launched(&self, tag_key: &str, tag_value: &str) -> u64 {
        self.inner.lock().ec2.launched(tag_key, tag_value)
    }

    /// An instance's user data (plain text), to check what a node boots with.
    pub fn instance_user_data(&self, id: &str) -> Option<String> {
        self.inner.lock().ec2.user_data(id)
    }

    /// The instance profile an instance was launched with.
    pub fn instance_profile(&self, id: &str) -> Option<String> {
        self.inner.lock().ec2.instance_profile(id)
    }

    /// Every volume not yet deleted, as it is now (in creation order).
    pub fn volumes(&self) -> Vec<Volume> {
        self.now_ctx(|st, ctx| st.ec2.all_volumes(ctx))
    }

    /// Every EBS snapshot, as it is now.
    pub fn snapshots(&self) -> Vec<crate::cloud::snapshots::Snapshot> {
        self.now_ctx(|st, ctx| st.ec2.all_snapshots(ctx))
    }

    /// The snapshot a volume was created from, if it was.
    pub fn volume_restored_from(&self, volume_id: &str) -> Option<String> {
        self.inner.lock().ec2.restored_from(volume_id)
    }

    /// Makes a snapshot end in `error` (false: there is none of that id).
    pub fn fail_snapshot(&self, id: &str) -> bool {
        self.inner.lock().ec2.fail_snapshot(id)
    }

    /// Every build started, as (build id, environment), in start order.
    pub fn builds_started(&self) -> Vec<(String, BTreeMap<String, String>)> {
        self.inner.lock().codebuild.started()
    }

    /// How many builds are running now (what the concurrency quota counts).
    pub fn builds_in_progress(&self) -> usize {
        self.inner.lock().codebuild.in_progress()
    }

    /// The targets of a target group as they are now (empty for an unknown ARN).
    pub fn targets(&self, target_group_arn: &str) -> Vec<TargetHealth> {
        self.now_ctx(|st, ctx| {
            let (elb, ec2) = (&mut st.elb, &mut st.ec2);
            elb.health_now(target_group_arn, ec2, ctx)
        })
    }

    // ---- out-of-band changes (no faults, not counted) ----------------------

    /// Creates an ECS cluster (the facades do not create clusters).
    pub fn create_cluster(&self, name: &str) {
        self.inner.lock().ecs.clusters.insert(name.to_owned());
    }

    /// Sets a service's desired count as someone in the console would (an
    /// autoscaler fight, drift). False when there is no ACTIVE service.
    pub fn set_desired_count(&self, cluster: &str, name: &str, n: u32) -> bool {
        self.now_ctx(|st, ctx| st.ecs.oob_set_desired(cluster, name, n, ctx))
    }

    /// Points a service at another task definition (ARN or `family:revision`)
    /// as someone in the console would; starts a deployment. False when there
    /// is no ACTIVE service.
    pub fn set_service_task_definition(&self, cluster: &str, name: &str, task_definition: &str) -> bool {
        self.now_ctx(|st, ctx| st.ecs.oob_set_task_definition(cluster, name, task_definition, ctx))
    }

    /// Sets any queue attribute, read-only ones included (e.g.
    /// `ApproximateNumberOfMessages` to simulate a backlog). False when there
    /// is no such queue.
    pub fn set_queue_attribute(&self, name: &str, key: &str, value: &str) -> bool {
        self.now_ctx(|st, ctx| st.sqs.oob_set(name, key, value, ctx))
    }

    /// Deletes a service (forced) as someone in the console would. False when
    /// there is no ACTIVE service.
    pub fn delete_service_out_of_band(&self, cluster: &str, name: &str) -> bool {
        self.now_ctx(|st, ctx| st.ecs.oob_delete(cluster, name, ctx))
    }

    /// Terminates an instance as someone in the console (or a spot
    /// interruption) would. False when there is no such instance or it is
    /// already shutting down or terminated.
    pub fn terminate_instance_out_of_band(&self, id: &str) -> bool {
        self.now_ctx(|st, ctx| st.ec2.oob_terminate(id, ctx))
    }

    /// The resource ids of every registered scalable target.
    pub fn scalable_targets(&self) -> Vec<String> {
        self.inner.lock().scaling.targets.keys().cloned().collect()
    }

    /// The scalable target registered for `resource_id`
    /// (`service/CLUSTER/NAME`), with its tags, and its policies.
    pub fn scalable_target(
        &self,
        resource_id: &str,
    ) -> Option<(crate::cloud::scaling::ScalableTarget, crate::cloud::Tags, Vec<crate::cloud::scaling::TrackingPolicy>)>
    {
        let st = self.inner.lock();
        let (target, tags) = st.scaling.targets.get(resource_id)?.clone();
        let policies =
            st.scaling.policies.iter().filter(|((rid, _), _)| rid == resource_id).map(|(_, p)| p.clone()).collect();
        Some((target, tags, policies))
    }

    /// Sets how many of a service's tasks have ECS scale-in protection on, as
    /// busy workers do from inside their tasks: ECS keeps those when the
    /// desired count drops, until protection is off again.
    pub fn protect_tasks(&self, cluster: &str, name: &str, protected: u32) {
        self.now_ctx(|st, ctx| st.ecs.protect_tasks(cluster, name, protected, ctx));
    }

    /// Sets a target group's `deregistration_delay.timeout_seconds`.
    pub fn set_deregistration_delay(&self, target_group_arn: &str, seconds: u32) {
        self.inner.lock().elb.delays.insert(target_group_arn.to_owned(), seconds);
    }

    /// Puts a CloudWatch alarm into state `ALARM` (`true`) or `OK`.
    pub fn set_alarm(&self, name: &str, firing: bool) {
        let mut st = self.inner.lock();
        if firing {
            st.metrics.firing.insert(name.to_owned());
        } else {
            st.metrics.firing.remove(name);
        }
    }

    /// How many moments a staged deployment of the service sent production
    /// traffic to a revision with no healthy task (a rollout that keeps its
    /// promise makes none).
    pub fn dark_moments(&self, cluster: &str, name: &str) -> u32 {
        self.now_ctx(|st, ctx| st.ecs.dark_moments(cluster, name, ctx))
    }

    /// Every staged service deployment of a service, oldest first: one per
    /// new revision (a second one for the same change is a duplicate).
    pub fn service_deployment_arns(&self, cluster: &str, name: &str) -> Vec<String> {
        self.now_ctx(|st, ctx| st.ecs.service_deployment_arns(cluster, name, ctx))
    }

    /// A service deployment, as DescribeServiceDeployments would answer now.
    pub fn service_deployment(&self, arn: &str) -> Option<crate::cloud::ecs::ServiceDeployment> {
        self.now_ctx(|st, ctx| st.ecs.describe_service_deployment(arn, ctx).ok().flatten())
    }

    /// Sets the CPU load of a service, in percent of one task's CPU: its
    /// running tasks share it (CloudWatch reports `load / running`, at most 100).
    pub fn set_service_load(&self, cluster: &str, name: &str, load: f64) {
        self.inner.lock().metrics.load.insert((cluster.to_owned(), name.to_owned()), load);
    }

    /// The metric alarms that exist, by name, with their tags.
    pub fn metric_alarms(&self) -> BTreeMap<String, (crate::cloud::alarms::MetricAlarm, crate::cloud::Tags)> {
        self.inner.lock().metrics.alarms.clone()
    }

    /// Creates a private hosted zone for `name` (as its owner would, outside
    /// Mooring) and returns its id.
    pub fn create_private_zone(&self, name: &str) -> String {
        let mut st = self.inner.lock();
        let id = format!("Z{:012}SIM", st.dns.zones.len() + 1);
        let zone = dns::Zone { name: crate::cloud::dns::normalize(name), ..Default::default() };
        st.dns.zones.insert(id.clone(), zone);
        id
    }

    /// The record sets of a hosted zone, by name and type (empty for a zone
    /// that does not exist).
    pub fn dns_records(&self, zone_id: &str) -> Vec<crate::cloud::dns::RecordSet> {
        self.inner.lock().dns.zones.get(zone_id).map(|z| z.records.values().cloned().collect()).unwrap_or_default()
    }

    /// Writes a record set as someone else would (no faults, no counting).
    pub fn put_dns_record(&self, zone_id: &str, record: crate::cloud::dns::RecordSet) {
        let mut st = self.inner.lock();
        if let Some(zone) = st.dns.zones.get_mut(zone_id) {
            zone.records.insert((record.name.clone(), record.kind), record);
        }
    }

    /// Writes a line to a log group, as a container's `awslogs` driver would
    /// (creating the group on the first line).
    pub fn write_log(&self, group: &str, stream: &str, timestamp_ms: i64, message: &str) {
        let mut st = self.inner.lock();
        let events = st.logs.groups.entry(group.to_owned()).or_default();
        events.push(crate::cloud::logs::LogEvent {
            id: events.len().to_string(),
            timestamp_ms,
            stream: stream.to_owned(),
            message: message.to_owned(),
        });
    }

    /// Creates a queue without Mooring's tags, as someone else would (an
    /// adoption or conflict test). Returns its URL.
    pub fn create_queue_out_of_band(&self, name: &str, attributes: &QueueAttributes) -> CloudResult<String> {
        let mut attributes = attributes.clone();
        if name.ends_with(".fifo") {
            attributes.insert("FifoQueue".into(), "true".into());
        }
        self.now_ctx(|st, ctx| st.sqs.create(name, &attributes, &crate::cloud::Tags::new(), ctx))
    }

    /// Deletes a queue as someone in the console would. False when there is none.
    pub fn delete_queue_out_of_band(&self, name: &str) -> bool {
        self.now_ctx(|st, ctx| {
            let url = st.sqs.queue_url(name, ctx);
            url.is_some_and(|u| st.sqs.delete(&u, ctx).is_ok())
        })
    }

    /// The next `times` replication groups created fail: they go
    /// `creating` → `create-failed` (as for insufficient capacity).
    pub fn fail_cache_creations(&self, times: u32) {
        self.inner.lock().cache.fail_creations(times);
    }

    /// The tags of a replication group, or `None` when there is none.
    pub fn replication_group_tags(&self, id: &str) -> Option<crate::cloud::Tags> {
        let arn = caches::group_arn(id);
        self.now_ctx(|st, ctx| st.cache.tags(&arn, ctx).ok())
    }

    /// Creates a CodeBuild project as someone else would (no install tag unless given).
    pub fn create_project_out_of_band(&self, input: &crate::cloud::codebuild::ProjectInput) -> CloudResult<()> {
        self.now_ctx(|st, ctx| st.codebuild.create_project(input, ctx).map(|_| ()))
    }

    /// A CodeBuild project as it is now.
    pub fn project(&self, name: &str) -> Option<crate::cloud::codebuild::Project> {
        self.now_ctx(|st, ctx| st.codebuild.project(name, ctx))
    }

    /// Stops a running instance as someone in the console would. False when
    /// there is no such instance or it is not running.
    pub fn stop_instance_out_of_band(&self, id: &str) -> bool {
        self.now_ctx(|st, ctx| st.ec2.oob_stop(id, ctx))
    }
}
