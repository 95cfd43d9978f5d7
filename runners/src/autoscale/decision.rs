//! The scaling decision: a pure function of the policy (from the spec), what
//! was observed (the service's desired count, CPU, queue backlog), what the
//! scaler remembers of the last minutes, and the time. No I/O, an injected
//! clock: tested as a table.
//!
//! HPA's rule per metric — desired = ⌈current × metric / target⌉, nothing
//! inside a 10% tolerance band — and KEDA's for queues — ⌈backlog / target per
//! replica⌉, activation from zero at the first message; the largest proposal
//! wins, clamped to `[min, max]`.
//! - Out at once, bounded per step like HPA's default: within a minute, at most
//!   double, at least +4, of the count the minute started at.
//! - In only after an *activity window*: when every proposal of the last
//!   `scaleInAfterIdleSeconds` was lower than the current count, to the
//!   highest of them (a window of zeros takes a worker with `min: 0` to zero).
//!   The window needs a full window of observations, so a new owner (a
//!   restarted or another replica) never scales in on history it lacks.
//! - A missing or failing metric never scales in; after three failures in a
//!   row the count holds until a metric answers again (KEDA's fallback).
//! - `mooring/scaling-paused: "N"` pins N replicas.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

/// How many failed metric reads in a row make the count hold.
pub const FAILURES_BEFORE_HOLD: u32 = 3;

/// What the spec asks of the scaler.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// The fewest replicas.
    pub min: u32,
    /// The most replicas.
    pub max: u32,
    /// Average CPU percent per task to keep (relays; workers when they ask).
    pub cpu_target: Option<f64>,
    /// Backlog (visible + in-flight messages) one replica may carry (workers).
    pub queue_target: Option<u32>,
    /// The activity window: scale in only when it was all lower.
    pub scale_in_after: Duration,
    /// No action while a metric is within this share of its target (0.1).
    pub tolerance: f64,
    /// The period a scale-out step is bounded over (60 s); zero: no bound
    /// (for comparisons, such as the scaling day's).
    pub step_period: Duration,
    /// The longest gap between two observations that still counts as
    /// watching (a few decision intervals); a longer one starts the activity
    /// window over.
    pub max_gap: Duration,
}

/// One metric as read this time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reading<T> {
    Value(T),
    /// Not reported (no datapoint yet, no tasks running).
    Missing,
    /// The read failed.
    Failed,
}

/// What was observed for one decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The service's desired count (running lags behind it).
    pub current: u32,
    /// Average CPU percent (ignored without a CPU target).
    pub cpu: Reading<f64>,
    /// Visible + in-flight messages (ignored without a queue target).
    pub backlog: Reading<u64>,
    /// `mooring/scaling-paused: "N"`.
    pub paused: Option<u32>,
}

/// What the scaler remembers of one service between decisions. Kept in
/// memory: a replica that takes the service over starts empty and therefore
/// waits a full window before any scale-in.
#[derive(Debug, Clone)]
pub struct Memory {
    /// When observation started.
    since: Instant,
    /// Proposals of the activity window, oldest first.
    proposals: VecDeque<(Instant, u32)>,
    /// Failed reads in a row.
    failures: u32,
    /// The scale-out step period under way: when it started and its base count.
    step: Option<(Instant, u32)>,
}

impl Memory {
    /// Nothing remembered yet, from `now`.
    pub fn new(now: Instant) -> Memory {
        Memory { since: now, proposals: VecDeque::new(), failures: 0, step: None }
    }
}

/// Why the count is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Metrics say the count is right (or within tolerance).
    Steady,
    /// A metric is above its target: more replicas.
    ScaleOut,
    /// The first message woke a worker at zero.
    Activate,
    /// Every proposal of the activity window was lower.
    ScaleIn,
    /// Lower proposals, but the activity window is not over (or not observed in full).
    AwaitingIdleWindow,
    /// A metric is missing or failing: no scale-in.
    MetricsIncomplete,
    /// Three failed reads in a row: the count holds.
    MetricsFailing,
    /// Pinned by `mooring/scaling-paused`.
    Paused,
    /// Outside `[min, max]` (the bounds changed): brought inside.
    Bounds,
}

impl Reason {
    /// CamelCase, for events and status.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Steady => "Steady",
            Reason::ScaleOut => "ScaleOut",
            Reason::Activate => "ActivatedByBacklog",
            Reason::ScaleIn => "ScaleInAfterIdle",
            Reason::AwaitingIdleWindow => "AwaitingIdleWindow",
            Reason::MetricsIncomplete => "MetricsIncomplete",
            Reason::MetricsFailing => "MetricsFailing",
            Reason::Paused => "Paused",
            Reason::Bounds => "Bounds",
        }
    }
}

/// The decision, with the numbers that led to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The desired count before.
    pub from: u32,
    /// The desired count decided (equal to `from`: no change).
    pub to: u32,
    /// Why.
    pub reason: Reason,
    /// Metric name → value (`cpuPercent`, `backlog`, `proposal`, ...).
    pub inputs: BTreeMap<String, f64>,
}

impl Decision {
    /// Whether the count changes.
    pub fn changes(&self) -> bool {
        self.from != self.to
    }
}

fn clamp(n: u32, p: &Policy) -> u32 {
    n.clamp(p.min, p.max.max(p.min))
}

/// Decides the desired count. `memory` is updated (the window, failures, the
/// step period); the caller keeps it for the next decision.
pub fn decide(policy: &Policy, obs: &Observation, memory: &mut Memory, now: Instant) -> Decision {
    let current = obs.current;
    let mut inputs = BTreeMap::new();
    let decision =
        |to: u32, reason: Reason, inputs: BTreeMap<String, f64>| Decision { from: current, to, reason, inputs };
    if let Some(n) = obs.paused {
        // The window starts over when the pause ends.
        *memory = Memory { failures: memory.failures, ..Memory::new(now) };
        return decision(clamp(n, policy), Reason::Paused, inputs);
    }
    // A gap in the observations (an outage, another owner for a while) starts
    // the window over: it must be watched in full before a scale-in.
    if memory.proposals.back().is_some_and(|(t, _)| now.saturating_duration_since(*t) > policy.max_gap) {
        *memory = Memory { failures: memory.failures, ..Memory::new(now) };
    }

    // One proposal per metric that answered. An empty queue (nothing visible,
    // nothing in flight) means no work, whatever the CPU says.
    let queue_idle = policy.queue_target.is_some() && obs.backlog == Reading::Value(0);
    let mut proposals = vec![];
    let mut incomplete = false;
    let mut failed = false;
    if let Some(target) = policy.cpu_target {
        inputs.insert("cpuTargetPercent".into(), target);
        match obs.cpu {
            Reading::Value(cpu) => {
                inputs.insert("cpuPercent".into(), cpu);
                if current > 0 && !queue_idle {
                    let ratio = cpu / target;
                    let p = if (ratio - 1.0).abs() <= policy.tolerance {
                        current
                    } else {
                        (f64::from(current) * ratio).ceil() as u32
                    };
                    proposals.push(p);
                }
            }
            Reading::Missing => incomplete = true,
            Reading::Failed => failed = true,
        }
    }
    if let Some(target) = policy.queue_target {
        let target = target.max(1);
        inputs.insert("queueDepthTarget".into(), f64::from(target));
        match obs.backlog {
            Reading::Value(backlog) => {
                inputs.insert("backlog".into(), backlog as f64);
                let per_replica = backlog as f64 / f64::from(target);
                let p = if current > 0 && (per_replica / f64::from(current) - 1.0).abs() <= policy.tolerance {
                    current
                } else {
                    per_replica.ceil() as u32
                };
                proposals.push(p);
            }
            Reading::Missing => incomplete = true,
            Reading::Failed => failed = true,
        }
    }
    memory.failures = if failed { memory.failures + 1 } else { 0 };
    // Failing reads with no other metric answering: the count holds. (With
    // another metric answering, it still scales out; the failure only blocks
    // scale-in, below.)
    if memory.failures >= FAILURES_BEFORE_HOLD && proposals.is_empty() {
        inputs.insert("failures".into(), f64::from(memory.failures));
        return decision(current, Reason::MetricsFailing, inputs);
    }
    let Some(raw) = proposals.iter().copied().max() else {
        // Nothing answered: the count stays (inside the bounds).
        let to = clamp(current, policy);
        let reason = if to != current { Reason::Bounds } else { Reason::MetricsIncomplete };
        return decision(to, reason, inputs);
    };
    let proposal = clamp(raw, policy);
    inputs.insert("proposal".into(), f64::from(proposal));

    // The activity window.
    memory.proposals.push_back((now, proposal));
    while memory.proposals.front().is_some_and(|(t, _)| now.saturating_duration_since(*t) > policy.scale_in_after) {
        memory.proposals.pop_front();
    }
    let window_max = memory.proposals.iter().map(|(_, p)| *p).max().unwrap_or(proposal);
    inputs.insert("windowMax".into(), f64::from(window_max));

    if current < policy.min || current > policy.max.max(policy.min) {
        return decision(clamp(current.max(proposal.min(policy.max)), policy), Reason::Bounds, inputs);
    }
    if proposal > current && policy.step_period.is_zero() {
        let reason = if current == 0 { Reason::Activate } else { Reason::ScaleOut };
        return decision(proposal, reason, inputs);
    }
    if proposal > current {
        // Out at once, at most double or +4 of the count the step period began with.
        let base = match memory.step {
            Some((started, base)) if now.saturating_duration_since(started) < policy.step_period => base,
            _ => {
                memory.step = Some((now, current));
                current
            }
        };
        let cap = (base.saturating_mul(2)).max(base.saturating_add(4));
        let to = proposal.min(cap).max(current);
        let reason = if current == 0 { Reason::Activate } else { Reason::ScaleOut };
        return decision(to, reason, inputs);
    }
    if proposal < current {
        let observed_full_window = now.saturating_duration_since(memory.since) >= policy.scale_in_after;
        if incomplete || failed || !observed_full_window || window_max >= current {
            let reason = if incomplete || failed { Reason::MetricsIncomplete } else { Reason::AwaitingIdleWindow };
            return decision(current, reason, inputs);
        }
        return decision(window_max, Reason::ScaleIn, inputs);
    }
    decision(current, Reason::Steady, inputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            min: 1,
            max: 20,
            cpu_target: Some(70.0),
            queue_target: Some(500),
            scale_in_after: Duration::from_secs(600),
            tolerance: 0.1,
            step_period: Duration::from_secs(60),
            max_gap: Duration::from_secs(60),
        }
    }

    fn obs(current: u32, cpu: Reading<f64>, backlog: Reading<u64>) -> Observation {
        Observation { current, cpu, backlog, paused: None }
    }

    use Reading::{Failed, Missing, Value};

    #[test]
    fn single_decisions_as_a_table() {
        let t0 = Instant::now();
        let cpu_only = Policy { queue_target: None, ..policy() };
        let queue_only = Policy { cpu_target: None, min: 0, ..policy() };
        let cases: Vec<(&str, Policy, Observation, u32, Reason)> = vec![
            ("inside the tolerance band", cpu_only.clone(), obs(4, Value(75.0), Missing), 4, Reason::Steady),
            ("cpu 85% of 70 at 2 → 3", cpu_only.clone(), obs(2, Value(85.0), Missing), 3, Reason::ScaleOut),
            (
                "cpu far above: bounded to double",
                cpu_only.clone(),
                obs(10, Value(700.0), Missing),
                20,
                Reason::ScaleOut,
            ),
            ("cpu far above from 1: +4", cpu_only.clone(), obs(1, Value(700.0), Missing), 5, Reason::ScaleOut),
            (
                "clamped to max",
                Policy { max: 6, ..cpu_only.clone() },
                obs(4, Value(140.0), Missing),
                6,
                Reason::ScaleOut,
            ),
            ("backlog 2.4× target at 1 → 3", queue_only.clone(), obs(1, Missing, Value(1200)), 3, Reason::ScaleOut),
            (
                "first message wakes a worker at zero",
                queue_only.clone(),
                obs(0, Missing, Value(1)),
                1,
                Reason::Activate,
            ),
            ("zero stays zero on an empty queue", queue_only.clone(), obs(0, Missing, Value(0)), 0, Reason::Steady),
            ("the largest proposal wins", policy(), obs(2, Value(90.0), Value(2000)), 4, Reason::ScaleOut),
            (
                "lower, but no window observed yet",
                cpu_only.clone(),
                obs(5, Value(10.0), Missing),
                5,
                Reason::AwaitingIdleWindow,
            ),
            ("a missing metric never scales in", policy(), obs(5, Value(10.0), Missing), 5, Reason::MetricsIncomplete),
            ("nothing answered", cpu_only.clone(), obs(3, Missing, Missing), 3, Reason::MetricsIncomplete),
            (
                "paused pins N",
                policy(),
                Observation { paused: Some(7), ..obs(3, Value(200.0), Value(0)) },
                7,
                Reason::Paused,
            ),
            (
                "paused within bounds",
                policy(),
                Observation { paused: Some(70), ..obs(3, Missing, Missing) },
                20,
                Reason::Paused,
            ),
            (
                "below min after a bounds change",
                Policy { min: 3, ..cpu_only.clone() },
                obs(1, Value(70.0), Missing),
                3,
                Reason::Bounds,
            ),
        ];
        for (what, p, o, to, reason) in cases {
            let d = decide(&p, &o, &mut Memory::new(t0), t0);
            assert_eq!((d.to, d.reason), (to, reason), "{what}: {d:?}");
        }
    }

    #[test]
    fn scale_in_waits_for_a_full_idle_window_then_takes_its_highest_proposal() {
        // Sparse readings here: a gap of minutes still counts as watching.
        let p = Policy { cpu_target: None, min: 0, max_gap: Duration::from_secs(3600), ..policy() };
        let t0 = Instant::now();
        let mut m = Memory::new(t0);
        let at = |s: u64| t0 + Duration::from_secs(s);
        // Busy, then quiet: 5 replicas; backlog drops to one replica's worth, then to nothing.
        assert_eq!(decide(&p, &obs(5, Missing, Value(2500)), &mut m, at(0)).to, 5);
        assert_eq!(decide(&p, &obs(5, Missing, Value(400)), &mut m, at(300)).reason, Reason::AwaitingIdleWindow);
        // 600 s after the last busy proposal the window holds only lower ones: to the highest (1).
        let d = decide(&p, &obs(5, Missing, Value(0)), &mut m, at(601));
        assert_eq!((d.to, d.reason), (1, Reason::ScaleIn), "{d:?}");
        // A burst inside the next window resets it (an activity window, not a timer).
        assert_eq!(decide(&p, &obs(1, Missing, Value(0)), &mut m, at(700)).to, 1);
        assert_eq!(decide(&p, &obs(1, Missing, Value(450)), &mut m, at(800)).to, 1, "within tolerance of 1");
        assert_eq!(decide(&p, &obs(1, Missing, Value(0)), &mut m, at(1300)).reason, Reason::AwaitingIdleWindow);
        // 600 s with no message, visible or in flight: back to zero.
        let d = decide(&p, &obs(1, Missing, Value(0)), &mut m, at(1401));
        assert_eq!((d.to, d.reason), (0, Reason::ScaleIn), "{d:?}");
    }

    #[test]
    fn failing_metrics_hold_the_count() {
        let p = policy();
        let t0 = Instant::now();
        let mut m = Memory::new(t0 - Duration::from_secs(3600));
        for i in 0..2 {
            let d = decide(&p, &obs(6, Failed, Value(0)), &mut m, t0 + Duration::from_secs(i));
            assert_eq!((d.to, d.reason), (6, Reason::MetricsIncomplete), "a failing metric never scales in");
        }
        let d = decide(&p, &obs(6, Failed, Value(9000)), &mut m, t0 + Duration::from_secs(3));
        assert_eq!((d.to, d.reason), (12, Reason::ScaleOut), "the queue still scales out while CPU fails");
        // With no other metric, the third failure in a row holds the count.
        let cpu_only = Policy { queue_target: None, ..policy() };
        let mut m = Memory::new(t0 - Duration::from_secs(3600));
        for i in 0..2 {
            assert_eq!(decide(&cpu_only, &obs(6, Failed, Missing), &mut m, t0 + Duration::from_secs(i)).to, 6);
        }
        let d = decide(&cpu_only, &obs(6, Failed, Missing), &mut m, t0 + Duration::from_secs(3));
        assert_eq!((d.to, d.reason), (6, Reason::MetricsFailing), "the third failure in a row holds");
        let d = decide(&cpu_only, &obs(6, Value(140.0), Missing), &mut m, t0 + Duration::from_secs(4));
        assert_eq!((d.to, d.reason), (12, Reason::ScaleOut), "a good read clears the hold");
    }

    #[test]
    fn a_gap_in_the_observations_starts_the_window_over() {
        let p = Policy { cpu_target: None, min: 0, ..policy() };
        let t0 = Instant::now();
        let mut m = Memory::new(t0);
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(decide(&p, &obs(4, Missing, Value(2000)), &mut m, at(0)).to, 4);
        // Nothing observed for half an hour (an outage), then one quiet reading: no scale-in yet.
        let d = decide(&p, &obs(4, Missing, Value(0)), &mut m, at(1800));
        assert_eq!((d.to, d.reason), (4, Reason::AwaitingIdleWindow), "{d:?}");
        // A full window of quiet readings later, it goes.
        for s in (1815..2400).step_by(15) {
            decide(&p, &obs(4, Missing, Value(0)), &mut m, at(s));
        }
        assert_eq!(decide(&p, &obs(4, Missing, Value(0)), &mut m, at(2401)).to, 0);
    }

    #[test]
    fn an_idle_queue_takes_a_worker_with_a_cpu_target_to_zero() {
        let p = Policy { min: 0, ..policy() };
        let t0 = Instant::now();
        let mut m = Memory::new(t0);
        let at = |s: u64| t0 + Duration::from_secs(s);
        for s in (0..600).step_by(15) {
            decide(&p, &obs(1, Value(3.0), Value(0)), &mut m, at(s));
        }
        let d = decide(&p, &obs(1, Value(3.0), Value(0)), &mut m, at(601));
        assert_eq!((d.to, d.reason), (0, Reason::ScaleIn), "idle CPU does not keep a worker with no messages: {d:?}");
    }

    #[test]
    fn scale_out_is_bounded_per_minute_not_per_decision() {
        let p = Policy { cpu_target: None, max: 100, ..policy() };
        let t0 = Instant::now();
        let mut m = Memory::new(t0);
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(decide(&p, &obs(2, Missing, Value(50_000)), &mut m, at(0)).to, 6, "2 → +4");
        assert_eq!(decide(&p, &obs(6, Missing, Value(50_000)), &mut m, at(15)).to, 6, "still the same minute");
        assert_eq!(decide(&p, &obs(6, Missing, Value(50_000)), &mut m, at(61)).to, 12, "next minute: double");
        let unbounded = Policy { step_period: Duration::ZERO, ..p };
        assert_eq!(decide(&unbounded, &obs(2, Missing, Value(50_000)), &mut m, at(62)).to, 100, "no step bound");
    }
}
