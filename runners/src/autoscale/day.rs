//! A day of bursty queue load, simulated second by second, to compare
//! scaling policies on the same arrivals: Mooring's decision
//! ([`super::decide`]: activity window, bounded steps) against a
//! KEDA-default-like policy (poll every 30 s, scale straight to the backlog's
//! count, scale in once a cooldown timer that starts at the last scaling
//! action has run out), with that cooldown at Mooring's 600 s and at KEDA's
//! default 300 s.
//!
//! The model: messages arrive on a diurnal curve (a quiet night, a busy
//! afternoon) with seeded bursts; each running task processes
//! `per_task_rate` messages a second; a task runs `start_delay` after the
//! desired count asks for it and stops at once when it is scaled away (its
//! message goes back to the queue). Everything is deterministic from the seed.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use super::decision::{Memory, Observation, Policy, Reading, decide};

/// The simulated day's shape.
#[derive(Debug, Clone)]
pub struct DayConfig {
    pub seed: u64,
    /// Simulated seconds (86,400 for a day).
    pub seconds: u64,
    /// Messages a running task finishes per second.
    pub per_task_rate: f64,
    /// From a desired count's rise to the task running.
    pub start_delay: u64,
    /// Messages arriving per second at the afternoon peak (before bursts).
    pub peak_rate: f64,
    /// A message older than this counts as late.
    pub late_after: u64,
    pub min: u32,
    pub max: u32,
    /// Backlog one replica may carry.
    pub queue_target: u32,
}

impl Default for DayConfig {
    fn default() -> Self {
        DayConfig {
            seed: 1,
            seconds: 86_400,
            per_task_rate: 5.0,
            start_delay: 60,
            peak_rate: 40.0,
            late_after: 300,
            min: 0,
            max: 50,
            queue_target: 500,
        }
    }
}

/// What a policy cost and how well it served.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DayReport {
    /// Task-minutes run (what Fargate bills).
    pub replica_minutes: f64,
    /// Seconds with the backlog per desired replica above the target.
    pub seconds_above_target: u64,
    /// Messages that waited longer than `late_after` before a task took them.
    pub late_messages: u64,
    /// Changes of the desired count.
    pub scaling_actions: u64,
    /// Messages that arrived, and that were processed.
    pub arrived: u64,
    pub processed: u64,
}

/// A scaling policy under simulation: asked every second; answers when it
/// polls.
pub trait DayPolicy {
    /// The name in reports.
    fn name(&self) -> String;
    /// The desired count at second `t`, given the current count and backlog.
    fn desired(&mut self, t: u64, current: u32, backlog: u64) -> u32;
}

/// Mooring's decision, polled every `interval` seconds.
pub struct Mooring {
    pub policy: Policy,
    pub interval: u64,
    memory: Option<Memory>,
    start: Instant,
    /// What sets this variant apart, in reports.
    variant: Option<&'static str>,
}

impl Mooring {
    /// Mooring's defaults on the day's queue: the 600 s window, the 10 % band,
    /// the per-minute step bound, a decision every 15 s.
    pub fn defaults(c: &DayConfig) -> Mooring {
        let policy = Policy {
            min: c.min,
            max: c.max,
            cpu_target: None,
            queue_target: Some(c.queue_target),
            scale_in_after: Duration::from_secs(600),
            tolerance: 0.1,
            step_period: super::STEP_PERIOD,
            max_gap: Duration::from_secs(60),
        };
        Mooring::new(policy, 15)
    }

    pub fn new(policy: Policy, interval: u64) -> Mooring {
        Mooring { policy, interval, memory: None, start: Instant::now(), variant: None }
    }

    /// The same, named as a variant (an ablation) in reports.
    pub fn named(self, variant: &'static str) -> Mooring {
        Mooring { variant: Some(variant), ..self }
    }
}

impl DayPolicy for Mooring {
    fn name(&self) -> String {
        match self.variant {
            None => format!("Mooring (window {} s, step bound)", self.policy.scale_in_after.as_secs()),
            Some(v) => format!("Mooring, {v}"),
        }
    }

    fn desired(&mut self, t: u64, current: u32, backlog: u64) -> u32 {
        if !t.is_multiple_of(self.interval) {
            return current;
        }
        let now = self.start + Duration::from_secs(t);
        let memory = self.memory.get_or_insert_with(|| Memory::new(now));
        let obs = Observation { current, cpu: Reading::Missing, backlog: Reading::Value(backlog), paused: None };
        decide(&self.policy, &obs, memory, now).to
    }
}

/// KEDA-like: poll every `interval` s; out at once to ⌈backlog / target⌉ (no
/// step bound); in only once `cooldown` s have passed since the last scaling
/// action (a timer, not an activity window).
pub struct CooldownTimer {
    pub min: u32,
    pub max: u32,
    pub target: u32,
    pub interval: u64,
    pub cooldown: u64,
    last_action: u64,
}

impl CooldownTimer {
    pub fn new(min: u32, max: u32, target: u32, interval: u64, cooldown: u64) -> CooldownTimer {
        CooldownTimer { min, max, target, interval, cooldown, last_action: 0 }
    }
}

impl DayPolicy for CooldownTimer {
    fn name(&self) -> String {
        format!("cooldown timer {} s (poll {} s, no step bound)", self.cooldown, self.interval)
    }

    fn desired(&mut self, t: u64, current: u32, backlog: u64) -> u32 {
        if !t.is_multiple_of(self.interval) {
            return current;
        }
        let want = (backlog.div_ceil(u64::from(self.target.max(1))) as u32).clamp(self.min, self.max);
        let cooled = t.saturating_sub(self.last_action) >= self.cooldown;
        let to = if want > current || (want < current && cooled) { want } else { current };
        if to != current {
            self.last_action = t;
        }
        to
    }
}

/// SplitMix64: the simulation's only source of randomness.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn unit(seed: u64, t: u64, salt: u64) -> f64 {
    (mix(seed ^ mix(t.wrapping_mul(31).wrapping_add(salt))) >> 11) as f64 / (1u64 << 53) as f64
}

/// Messages arriving in second `t`: a diurnal curve (quiet 0–6 h, a peak mid
/// afternoon) plus seeded bursts of 300–3,000 messages spread over a minute,
/// about one an hour in the day time.
pub fn arrivals(c: &DayConfig, t: u64) -> u64 {
    let hour = (t % 86_400) as f64 / 3600.0;
    let diurnal = if hour < 6.0 { 0.02 } else { (std::f64::consts::PI * (hour - 6.0) / 18.0).sin().max(0.02) };
    let mut rate = c.peak_rate * diurnal;
    // A burst starts in this minute with probability ~1/60 during the day.
    let minute = t / 60;
    if (6.0..22.0).contains(&hour) && unit(c.seed, minute, 1) < 1.0 / 60.0 {
        let size = 300.0 + 2700.0 * unit(c.seed, minute, 2);
        rate += size / 60.0;
    }
    // Poisson-ish: the integer part, plus one with the fractional chance.
    let whole = rate.floor();
    whole as u64 + u64::from(unit(c.seed, t, 3) < rate - whole)
}

/// Runs one policy through the day.
pub fn run(c: &DayConfig, policy: &mut dyn DayPolicy) -> DayReport {
    let mut r = DayReport::default();
    // Waiting messages as (arrival second, count), oldest first.
    let mut queue: VecDeque<(u64, u64)> = VecDeque::new();
    let mut backlog: u64 = 0;
    let mut desired = c.min;
    // Tasks asked for, by the second they start running.
    let mut starting: VecDeque<(u64, u32)> = VecDeque::new();
    let mut running: u32 = 0;
    let mut credit = 0.0;
    for t in 0..c.seconds {
        let a = arrivals(c, t);
        if a > 0 {
            queue.push_back((t, a));
            backlog += a;
            r.arrived += a;
        }
        // Tasks come up after the start delay.
        while starting.front().is_some_and(|(at, _)| *at <= t) {
            if let Some((_, n)) = starting.pop_front() {
                running += n;
            }
        }
        // Process.
        credit += f64::from(running) * c.per_task_rate;
        let mut can = credit.floor() as u64;
        credit -= can as f64;
        while can > 0 {
            let Some(front) = queue.front_mut() else { break };
            let take = front.1.min(can);
            if t.saturating_sub(front.0) > c.late_after {
                r.late_messages += take;
            }
            front.1 -= take;
            can -= take;
            backlog -= take;
            r.processed += take;
            if front.1 == 0 {
                queue.pop_front();
            }
        }
        if running == 0 {
            credit = 0.0;
        }
        // Decide.
        let to = policy.desired(t, desired, backlog).clamp(c.min, c.max);
        if to != desired {
            r.scaling_actions += 1;
            if to > desired {
                starting.push_back((t + c.start_delay, to - desired));
            } else {
                // Scaled away: pending starts go first, then running tasks.
                let mut drop = desired - to;
                while drop > 0 {
                    match starting.back_mut() {
                        Some((_, n)) if *n > drop => {
                            *n -= drop;
                            drop = 0;
                        }
                        Some((_, n)) => {
                            drop -= *n;
                            starting.pop_back();
                        }
                        None => {
                            running = running.saturating_sub(drop);
                            drop = 0;
                        }
                    }
                }
            }
            desired = to;
        }
        r.replica_minutes += f64::from(running) / 60.0;
        if backlog as f64 > f64::from(c.queue_target) * f64::from(desired.max(1)) {
            r.seconds_above_target += 1;
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn short() -> DayConfig {
        DayConfig { seconds: 6 * 3600, ..DayConfig::default() }
    }

    fn mooring(c: &DayConfig) -> Mooring {
        Mooring::defaults(c)
    }

    #[test]
    fn a_day_replays_from_its_seed_and_every_message_is_served() {
        let c = DayConfig { seconds: 14 * 3600, ..DayConfig::default() };
        let a = run(&c, &mut mooring(&c));
        let b = run(&c, &mut mooring(&c));
        assert_eq!(a, b, "the same seed, the same day");
        assert!(a.arrived > 10_000, "{a:?}");
        // What is left at the end is at most a few minutes of work.
        assert!(a.arrived - a.processed < 20_000, "{a:?}");
        let other = run(&DayConfig { seed: 2, ..c.clone() }, &mut mooring(&c));
        assert_ne!(other.arrived, a.arrived, "another seed, another day");
    }

    #[test]
    fn the_cooldown_timer_scales_in_without_an_activity_window() {
        let c = short();
        let mut timer = CooldownTimer::new(0, 10, 500, 30, 300);
        // Busy: 3 replicas at once.
        assert_eq!(timer.desired(0, 0, 1500), 3);
        // Quiet a moment later, but the timer from the last action has not run out.
        assert_eq!(timer.desired(60, 3, 0), 3);
        // Once it has, straight to zero however busy the last minutes were.
        assert_eq!(timer.desired(330, 3, 0), 0);
        assert!(c.seconds > 0);
    }
}
