//! Retry delays: per-key exponential backoff with jitter.
//!
//! A reconcile that fails is retried after a delay that doubles with every consecutive failure of
//! the same key (1 s → 60 s by default, like Crossplane's managed reconciler), with ±20% jitter so
//! that keys which failed together (an AWS outage, a throttling burst) do not retry in lockstep.
//! Retries never give up: a resource is kept converging for as long as it exists.
//!
//! This is the one module that uses the `backoff` crate. That crate is flagged unmaintained
//! upstream; keeping it behind [`Backoff`] means it can be swapped (for `backon`, say) by editing
//! this file alone.

use std::time::Duration;

use backoff::backoff::Backoff as _;
use thiserror::Error;

/// How retry delays grow; shared by every key of a work queue.
///
/// The `n`-th delay (counting from 0) is `initial × multiplierⁿ`, capped at `max`, then scaled by
/// a random factor in `[1 − jitter, 1 + jitter]` and capped at `max` again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffPolicy {
    /// Delay before the first retry.
    pub initial: Duration,
    /// Longest delay between two retries; the growth stops here.
    pub max: Duration,
    /// Factor by which the delay grows after each consecutive failure (at least 1).
    pub multiplier: f64,
    /// Randomization factor in `[0, 1]`: each delay is spread over ±`jitter` of its nominal value.
    pub jitter: f64,
}

impl Default for BackoffPolicy {
    /// 1 s doubling to 60 s with ±20% jitter: Crossplane's per-item backoff, with jitter added.
    fn default() -> Self {
        Self { initial: Duration::from_secs(1), max: Duration::from_secs(60), multiplier: 2.0, jitter: 0.2 }
    }
}

/// Why a [`BackoffPolicy`] taken from configuration cannot be used as given.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum BackoffPolicyError {
    /// A zero initial delay with any multiplier stays zero: a hot retry loop.
    #[error("the initial retry delay must be greater than zero")]
    ZeroInitial,
    /// The cap would be reached before the first retry.
    #[error("the maximum retry delay ({max:?}) is shorter than the initial delay ({initial:?})")]
    MaxBelowInitial {
        /// The configured initial delay.
        initial: Duration,
        /// The configured maximum delay.
        max: Duration,
    },
    /// A multiplier below 1 would shrink delays on repeated failure.
    #[error("the retry delay multiplier must be a number of at least 1, got {0}")]
    Multiplier(f64),
    /// Jitter outside `[0, 1]` could produce negative delays.
    #[error("the retry delay jitter must be between 0 and 1, got {0}")]
    Jitter(f64),
}

impl BackoffPolicy {
    /// Checks a policy read from flags or a config file, so a bad value is reported at startup.
    ///
    /// [`Backoff::new`] never fails: it clamps an invalid policy into range instead.
    pub fn validate(&self) -> Result<(), BackoffPolicyError> {
        if self.initial.is_zero() {
            return Err(BackoffPolicyError::ZeroInitial);
        }
        if self.max < self.initial {
            return Err(BackoffPolicyError::MaxBelowInitial { initial: self.initial, max: self.max });
        }
        if !(self.multiplier >= 1.0 && self.multiplier.is_finite()) {
            return Err(BackoffPolicyError::Multiplier(self.multiplier));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(BackoffPolicyError::Jitter(self.jitter));
        }
        Ok(())
    }

    /// The nearest valid policy: the one [`Backoff::new`] actually applies.
    fn clamped(&self) -> Self {
        let initial = if self.initial.is_zero() { Duration::from_millis(1) } else { self.initial };
        let multiplier = if self.multiplier >= 1.0 && self.multiplier.is_finite() { self.multiplier } else { 1.0 };
        let jitter = if self.jitter.is_nan() { 0.0 } else { self.jitter.clamp(0.0, 1.0) };
        Self { initial, max: self.max.max(initial), multiplier, jitter }
    }
}

/// The retry delays of one key: each call to [`Backoff::next_delay`] is one more consecutive
/// failure, [`Backoff::reset`] forgets them after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    inner: backoff::ExponentialBackoff,
    max: Duration,
}

impl Backoff {
    /// Starts a fresh sequence of delays for one key. An invalid `policy` is clamped into range
    /// (a zero initial delay becomes 1 ms, the multiplier at least 1, jitter within `[0, 1]`, the
    /// maximum at least the initial delay); use [`BackoffPolicy::validate`] to reject it instead.
    pub fn new(policy: &BackoffPolicy) -> Self {
        let policy = policy.clamped();
        let inner = backoff::ExponentialBackoffBuilder::new()
            .with_initial_interval(policy.initial)
            .with_max_interval(policy.max)
            .with_multiplier(policy.multiplier)
            .with_randomization_factor(policy.jitter)
            .with_max_elapsed_time(None)
            .build();
        Self { inner, max: policy.max }
    }

    /// The delay before the next retry, and one step further along the curve. Never gives up and
    /// never exceeds the policy's `max`.
    pub fn next_delay(&mut self) -> Duration {
        // Without a maximum elapsed time the crate always yields a delay; fall back to the cap
        // rather than trusting that. Jitter may push a delay above the cap: clamp it.
        self.inner.next_backoff().unwrap_or(self.max).min(self.max)
    }

    /// Starts over from the initial delay: the key succeeded.
    pub fn reset(&mut self) {
        self.inner.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The crate draws from a closed interval with one nanosecond of slack at the top.
    const SLACK: Duration = Duration::from_nanos(1);

    fn within_jitter(delay: Duration, nominal: Duration, jitter: f64) -> bool {
        delay >= nominal.mul_f64(1.0 - jitter) && delay <= nominal.mul_f64(1.0 + jitter) + SLACK
    }

    #[test]
    fn default_policy_is_one_second_doubling_to_a_minute_with_twenty_percent_jitter() {
        let policy = BackoffPolicy::default();
        assert_eq!(policy.initial, Duration::from_secs(1));
        assert_eq!(policy.max, Duration::from_secs(60));
        assert_eq!(policy.multiplier, 2.0);
        assert_eq!(policy.jitter, 0.2);
        assert_eq!(policy.validate(), Ok(()));
    }

    #[test]
    fn delays_grow_geometrically_within_the_jitter_band_and_cap_at_max() {
        let policy = BackoffPolicy::default();
        for _ in 0..100 {
            let mut backoff = Backoff::new(&policy);
            for step in 0..6 {
                let nominal = Duration::from_secs(1 << step);
                let delay = backoff.next_delay();
                assert!(within_jitter(delay, nominal, 0.2), "step {step}: {delay:?} not within 20% of {nominal:?}");
            }
            // 32 s × 2 passes the cap: from here on the nominal delay is the cap itself.
            for _ in 0..20 {
                let delay = backoff.next_delay();
                assert!(delay <= policy.max, "{delay:?} exceeds the cap");
                assert!(delay >= policy.max.mul_f64(0.8), "{delay:?} below the jitter band of the cap");
            }
        }
    }

    #[test]
    fn never_gives_up() {
        let mut backoff = Backoff::new(&BackoffPolicy::default());
        for _ in 0..10_000 {
            assert!(backoff.next_delay() > Duration::ZERO);
        }
    }

    #[test]
    fn reset_starts_over_from_the_initial_delay() {
        let mut backoff = Backoff::new(&BackoffPolicy::default());
        for _ in 0..10 {
            backoff.next_delay();
        }
        assert!(backoff.next_delay() >= Duration::from_secs(48));
        backoff.reset();
        let first = backoff.next_delay();
        assert!(within_jitter(first, Duration::from_secs(1), 0.2), "{first:?}");
        let second = backoff.next_delay();
        assert!(within_jitter(second, Duration::from_secs(2), 0.2), "{second:?}");
    }

    #[test]
    fn jitter_stays_within_twenty_percent_and_actually_spreads_delays() {
        let policy = BackoffPolicy::default();
        let delays: Vec<Duration> = (0..1_000).map(|_| Backoff::new(&policy).next_delay()).collect();
        for delay in &delays {
            assert!(within_jitter(*delay, Duration::from_secs(1), 0.2), "{delay:?}");
        }
        // With 1,000 uniform draws over ±20%, both outer fifths are hit (a miss has odds ~1e-58).
        assert!(delays.iter().any(|d| *d < Duration::from_millis(920)));
        assert!(delays.iter().any(|d| *d > Duration::from_millis(1080)));
    }

    #[test]
    fn zero_jitter_gives_exact_delays() {
        let policy = BackoffPolicy { jitter: 0.0, ..BackoffPolicy::default() };
        let mut backoff = Backoff::new(&policy);
        let delays: Vec<u64> = (0..8).map(|_| backoff.next_delay().as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60]);
    }

    #[test]
    fn validate_rejects_policies_that_would_misbehave() {
        let base = BackoffPolicy::default();
        assert_eq!(BackoffPolicy { initial: Duration::ZERO, ..base }.validate(), Err(BackoffPolicyError::ZeroInitial));
        assert!(matches!(
            BackoffPolicy { max: Duration::from_millis(10), ..base }.validate(),
            Err(BackoffPolicyError::MaxBelowInitial { .. })
        ));
        assert!(matches!(BackoffPolicy { multiplier: 0.5, ..base }.validate(), Err(BackoffPolicyError::Multiplier(_))));
        assert!(matches!(
            BackoffPolicy { multiplier: f64::NAN, ..base }.validate(),
            Err(BackoffPolicyError::Multiplier(_))
        ));
        assert!(matches!(BackoffPolicy { jitter: 1.5, ..base }.validate(), Err(BackoffPolicyError::Jitter(_))));
        assert!(matches!(BackoffPolicy { jitter: f64::NAN, ..base }.validate(), Err(BackoffPolicyError::Jitter(_))));
    }

    #[test]
    fn an_invalid_policy_is_clamped_rather_than_misbehaving() {
        let policy = BackoffPolicy { initial: Duration::ZERO, max: Duration::ZERO, multiplier: 0.0, jitter: 7.0 };
        let mut backoff = Backoff::new(&policy);
        for _ in 0..10 {
            let delay = backoff.next_delay();
            assert!(delay <= Duration::from_millis(1), "{delay:?}");
        }
    }
}
