//! AWS call budgets: one token bucket per API family in Redis, shared by every
//! replica, so the fleet stays under the account's throttling limits. A call
//! waits for its token (reservation, FIFO-fair) rather than failing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use desired_state::ratelimit::{RateLimiter, TokenBucket};
use desired_state::redis::RedisHandle;
use runners::gate::{ApiFamily, Budget, CallGate, GateError};

use crate::metrics::ControllerMetrics;

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

/// The controller's [`CallGate`]: Redis token buckets plus metrics.
pub struct RedisGate {
    limiter: RateLimiter,
    budgets: Budgets,
    metrics: Arc<ControllerMetrics>,
}

impl RedisGate {
    pub fn new(redis: Arc<RedisHandle>, prefix: &str, budgets: Budgets, metrics: Arc<ControllerMetrics>) -> RedisGate {
        RedisGate { limiter: RateLimiter::new(redis, format!("{prefix}:aws-budget")), budgets, metrics }
    }
}

#[async_trait::async_trait]
impl CallGate for RedisGate {
    async fn acquire(&self, family: ApiFamily) -> Result<Duration, GateError> {
        let b = self.budgets.0.get(&family).copied().unwrap_or_else(|| family.default_budget());
        let wait = self
            .limiter
            .reserve(family.as_str(), TokenBucket { capacity: b.burst, refill_per_sec: b.per_second }, 1.0)
            .await
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
