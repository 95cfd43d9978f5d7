//! The autoscaler of relays and workers (`scaling.mode: controller`): the
//! controller owns a service's desired count, the spec owns only the bounds
//! and targets, so a spec update never resets the count (the
//! Terraform/Argo CD fight with autoscalers).
//!
//! Each reconcile of a scaling resource reads its metrics — CPU from
//! CloudWatch, batched across services ([`cpu::CpuObserver`]); a worker's
//! backlog from the queue attributes its reconcile reads anyway — and asks
//! the pure [`decision::decide`] for the count, then applies it with one
//! UpdateService through the budgets. What the decision remembers (the
//! activity window) lives in memory per resource: a replica that takes a
//! resource over waits a full window before it scales in.

pub mod cpu;
pub mod day;
pub mod decision;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

pub use decision::{Decision, Memory, Observation, Policy, Reading, Reason, decide};

use crate::cloud::metrics::{Metrics, ServiceKey};

/// The period a scale-out step is bounded over (HPA's default).
pub const STEP_PERIOD: Duration = Duration::from_secs(60);

/// The annotation that pins a scaling resource's count (`"N"`), for incidents.
pub const PAUSE_ANNOTATION: &str = "mooring/scaling-paused";

/// How the autoscaler runs.
#[derive(Debug, Clone)]
pub struct ScaleConfig {
    /// How often a scaling resource's metrics are read and a decision made.
    pub interval: Duration,
    /// No action while a metric is within this share of its target.
    pub tolerance: f64,
    /// The period a scale-out step is bounded over.
    pub step_period: Duration,
}

/// The metrics a spec's scaling block asks for, with its bounds and idle rule.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// `scaling.min`.
    pub min: u32,
    /// `scaling.max`.
    pub max: u32,
    /// `scaling.cpuTargetPercent` (always for relays; workers when set).
    pub cpu_target_percent: Option<u32>,
    /// `scaling.queueDepthTarget` (workers).
    pub queue_depth_target: Option<u32>,
    /// `scaling.scaleInAfterIdleSeconds`: the activity window.
    pub scale_in_after_idle_seconds: u32,
}

impl ScaleConfig {
    /// The decision's policy for a spec's rules: `None` when the controller
    /// does not scale it (a fixed count, `min == max`, unless paused).
    pub fn policy(&self, rules: Rules, paused: bool) -> Option<Policy> {
        (rules.max > rules.min || paused).then(|| Policy {
            min: rules.min,
            max: rules.max,
            cpu_target: rules.cpu_target_percent.map(f64::from),
            queue_target: rules.queue_depth_target,
            scale_in_after: Duration::from_secs(u64::from(rules.scale_in_after_idle_seconds)),
            tolerance: self.tolerance,
            step_period: self.step_period,
            max_gap: self.interval * 4,
        })
    }
}

impl Default for ScaleConfig {
    fn default() -> Self {
        ScaleConfig { interval: Duration::from_secs(15), tolerance: 0.1, step_period: STEP_PERIOD }
    }
}

/// The autoscaler of one controller: CPU reads and decision memory, shared by
/// its reconciles.
pub struct Autoscaler {
    config: ScaleConfig,
    cpu: cpu::CpuObserver,
    memory: Mutex<HashMap<String, Memory>>,
}

/// What a decision needs besides the policy.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// The resource's uid (what the decision memory is kept under).
    pub uid: &'a str,
    /// The service, as CloudWatch names it.
    pub service: ServiceKey,
    /// The service's desired count now.
    pub current: u32,
    /// The queue backlog (workers), or `Missing`.
    pub backlog: Reading<u64>,
    /// `mooring/scaling-paused`.
    pub paused: Option<u32>,
}

impl Autoscaler {
    /// An autoscaler with nothing remembered yet.
    pub fn new(config: ScaleConfig) -> Autoscaler {
        Autoscaler { cpu: cpu::CpuObserver::new(config.interval), memory: Mutex::default(), config }
    }

    /// The configuration.
    pub fn config(&self) -> &ScaleConfig {
        &self.config
    }

    /// Reads what the policy needs and decides. `metrics` is the reconcile's
    /// gated CloudWatch.
    pub async fn decide(&self, metrics: &dyn Metrics, policy: &Policy, inputs: Inputs<'_>) -> Decision {
        let cpu = match policy.cpu_target {
            Some(_) if inputs.current > 0 && inputs.paused.is_none() => self.cpu.cpu(metrics, &inputs.service).await,
            _ => Reading::Missing,
        };
        let now = Instant::now();
        let obs = Observation { current: inputs.current, cpu, backlog: inputs.backlog, paused: inputs.paused };
        let mut all = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        let memory = all.entry(inputs.uid.to_string()).or_insert_with(|| Memory::new(now));
        decide(policy, &obs, memory, now)
    }

    /// Forgets a resource (deleted, or its scaling switched off).
    pub fn forget(&self, uid: &str) {
        self.memory.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
    }
}

/// The pinned count of a `mooring/scaling-paused: "N"` annotation, if any and valid.
pub fn paused(annotations: &std::collections::BTreeMap<String, String>) -> Option<u32> {
    annotations.get(PAUSE_ANNOTATION).and_then(|v| v.trim().parse().ok())
}
