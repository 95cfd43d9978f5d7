//! Deterministic randomness for the simulated cloud: every decision (fault,
//! latency, whether a timed-out write took effect, deployment ids) is a hash of
//! the seed and *what* is being decided, never of a shared generator's position,
//! so concurrent calls on different objects cannot perturb each other's outcome.

use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::FaultMix;
use crate::gate::Budget;

/// Four independent 64-bit values derived from the seed and the parts.
pub(super) fn hash(seed: u64, parts: &[&[u8]]) -> [u64; 4] {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    for p in parts {
        // Length-prefixed so ("ab", "c") and ("a", "bc") differ.
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    let d = h.finalize();
    let mut out = [0u64; 4];
    for (i, chunk) in d.chunks_exact(8).enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        out[i] = u64::from_le_bytes(b);
    }
    out
}

/// A uniform number in `[0, 1)` from 64 random bits.
pub(super) fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// A duration uniformly in `[min, max]`.
pub(super) fn between(x: u64, (min, max): (Duration, Duration)) -> Duration {
    if max <= min {
        return min;
    }
    min + (max - min).mul_f64(unit(x))
}

/// What the simulated cloud does to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    None,
    Throttle,
    Server,
    /// The caller gets a timeout; `applied` says whether the effect happened anyway.
    Timeout {
        applied: bool,
    },
    /// A read answers from the state before the object's last write.
    Stale,
}

/// The fault for one call, from two of its random values.
pub(super) fn decide(mix: &FaultMix, mutating: bool, roll: u64, apply_roll: u64) -> Fault {
    let r = unit(roll);
    let mut edge = mix.throttle;
    if r < edge {
        return Fault::Throttle;
    }
    edge += mix.server_error;
    if r < edge {
        return Fault::Server;
    }
    edge += mix.timeout;
    if r < edge {
        return Fault::Timeout { applied: mutating && apply_roll & 1 == 1 };
    }
    edge += mix.stale_read;
    if !mutating && r < edge {
        return Fault::Stale;
    }
    Fault::None
}

/// A token bucket with AWS's burst and refill, for `enforce_aws_buckets`.
#[derive(Debug, Clone)]
pub(super) struct Bucket {
    budget: Budget,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub(super) fn new(budget: Budget, now: Instant) -> Bucket {
        Bucket { budget, tokens: budget.burst, at: now }
    }

    /// Takes one token if there is one.
    pub(super) fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.budget.per_second).min(self.budget.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
