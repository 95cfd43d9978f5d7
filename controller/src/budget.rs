//! AWS call budgets: one token bucket per API family in Redis, shared by every
//! replica, so the fleet stays under the account's throttling limits. A call
//! waits for its token (reservation, FIFO-fair) rather than failing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use desired_state::ratelimit::{RateLimiter, TokenBucket};
use desired_state::redis::RedisHandle;
use runners::gate::{ApiFamily, Budget, CallGate, GateError, Priority};

use crate::metrics::AwsCallMetrics;

/// Budgets per family; defaults are half of AWS's published buckets.
#[derive(Debug, Clone)]
pub struct Budgets(pub HashMap<ApiFamily, Budget>);

impl Default for Budgets {
    fn default() -> Self {
        Budgets(ApiFamily::ALL.into_iter().map(|f| (f, f.default_budget())).collect())
    }
}

/// A budget override that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid AWS budget {0:?}: use FAMILY=BURST/PER_SECOND, e.g. ecs-read=50/10")]
pub struct BudgetParseError(pub String);

impl Budgets {
    /// Budgets so large they never make a caller wait (benchmarks, tests).
    pub fn unlimited() -> Budgets {
        let huge = Budget { burst: 1e9, per_second: 1e9 };
        Budgets(ApiFamily::ALL.into_iter().map(|f| (f, huge)).collect())
    }

    /// Applies overrides like `ecs-read=50/10,ec2-mutate=10/2`.
    pub fn with_overrides(mut self, spec: &str) -> Result<Budgets, BudgetParseError> {
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let err = || BudgetParseError(part.to_string());
            let (family, rest) = part.split_once('=').ok_or_else(err)?;
            let family: ApiFamily = family.trim().parse().map_err(|_| err())?;
            let (burst, rate) = rest.split_once('/').ok_or_else(err)?;
            let burst: f64 = burst.trim().parse().map_err(|_| err())?;
            let per_second: f64 = rate.trim().parse().map_err(|_| err())?;
            if !(burst >= 1.0 && per_second > 0.0) {
                return Err(err());
            }
            self.0.insert(family, Budget { burst, per_second });
        }
        Ok(self)
    }
}

/// How many times longer than routine work urgent work may wait for a token.
pub const URGENT_WAIT_FACTOR: u32 = 10;

/// The controller's [`CallGate`]: Redis token buckets plus metrics.
pub struct RedisGate {
    limiter: RateLimiter,
    budgets: Budgets,
    metrics: Arc<AwsCallMetrics>,
    /// The longest a call waits for its token; a longer wait is not taken
    /// (`GateError::OverBudget`), so the reconcile gives its worker back.
    /// `None`: always wait.
    max_wait: Option<Duration>,
}

impl RedisGate {
    pub fn new(redis: Arc<RedisHandle>, prefix: &str, budgets: Budgets, metrics: Arc<AwsCallMetrics>) -> RedisGate {
        RedisGate { limiter: RateLimiter::new(redis, format!("{prefix}:aws-budget")), budgets, metrics, max_wait: None }
    }

    /// A gate whose calls wait at most `max_wait` for a token (the
    /// controller's: a reconcile that cannot get a token soon is looked at
    /// again when the bucket has refilled instead of holding a worker).
    pub fn with_max_wait(mut self, max_wait: Duration) -> RedisGate {
        self.max_wait = Some(max_wait);
        self
    }
}

#[async_trait::async_trait]
impl CallGate for RedisGate {
    async fn acquire(&self, family: ApiFamily) -> Result<Duration, GateError> {
        self.acquire_as(family, Priority::Urgent).await
    }

    /// With a longest wait: routine work waits up to it, urgent work up to
    /// [`URGENT_WAIT_FACTOR`] times as long, so an urgent call reserves a
    /// token even while routine calls keep the bucket just short of one
    /// (then they find the urgent reservation ahead of them and step aside).
    /// Either is told to come back when the wait it accepts will reach the
    /// token.
    async fn acquire_as(&self, family: ApiFamily, priority: Priority) -> Result<Duration, GateError> {
        let b = self.budgets.0.get(&family).copied().unwrap_or_else(|| family.default_budget());
        let bucket = TokenBucket { capacity: b.burst, refill_per_sec: b.per_second };
        let wait = match self.max_wait {
            None => self.limiter.reserve(family.as_str(), bucket, 1.0).await,
            Some(max) => {
                let max = if priority == Priority::Urgent { max * URGENT_WAIT_FACTOR } else { max };
                match self.limiter.reserve_within(family.as_str(), bucket, 1.0, max).await {
                    Ok(Ok(wait)) => Ok(wait),
                    Ok(Err(due)) => {
                        let retry_after = due.saturating_sub(max).max(Duration::from_millis(10));
                        return Err(GateError::OverBudget { family, retry_after });
                    }
                    Err(e) => Err(e),
                }
            }
        }
        .map_err(|e| GateError::BudgetUnavailable(e.to_string()))?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        self.metrics.observe_budget_wait(family.as_str(), wait);
        Ok(wait)
    }

    fn record(&self, op: &runners::cloud::Op, outcome: &'static str) {
        self.metrics.aws_call(op, outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_and_refuse_garbage() {
        let b = Budgets::default().with_overrides("ecs-read=40/8, ec2-mutate=10/1").unwrap();
        assert_eq!(b.0[&ApiFamily::EcsRead], Budget { burst: 40.0, per_second: 8.0 });
        assert_eq!(b.0[&ApiFamily::Ec2Mutate], Budget { burst: 10.0, per_second: 1.0 });
        assert_eq!(b.0[&ApiFamily::Sqs], ApiFamily::Sqs.default_budget());
        for bad in ["ecs-read", "nope=1/1", "ecs-read=0/1", "ecs-read=5/0", "ecs-read=a/b"] {
            assert!(Budgets::default().with_overrides(bad).is_err(), "{bad}");
        }
    }
}
