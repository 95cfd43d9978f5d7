//! The gate every AWS call passes: which API family it draws from, and the
//! trait the controller implements with token buckets in Redis.

use std::fmt;
use std::time::Duration;

/// AWS throttles by API family; Mooring budgets the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApiFamily {
    Ec2Describe,
    Ec2Mutate,
    Ec2RunInstances,
    Ec2TerminateInstances,
    EcsRead,
    EcsServiceWrite,
    EcsRegisterTaskDefinition,
    CodeBuild,
    Sqs,
    CloudWatch,
    CloudWatchLogs,
    ElastiCache,
    AutoScaling,
    ElasticLoadBalancing,
    Route53,
}

/// A bucket: burst and refill per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub burst: f64,
    pub per_second: f64,
}

impl ApiFamily {
    /// Every family.
    pub const ALL: [ApiFamily; 15] = [
        ApiFamily::Ec2Describe,
        ApiFamily::Ec2Mutate,
        ApiFamily::Ec2RunInstances,
        ApiFamily::Ec2TerminateInstances,
        ApiFamily::EcsRead,
        ApiFamily::EcsServiceWrite,
        ApiFamily::EcsRegisterTaskDefinition,
        ApiFamily::CodeBuild,
        ApiFamily::Sqs,
        ApiFamily::CloudWatch,
        ApiFamily::CloudWatchLogs,
        ApiFamily::ElastiCache,
        ApiFamily::AutoScaling,
        ApiFamily::ElasticLoadBalancing,
        ApiFamily::Route53,
    ];

    /// The name used in configuration and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiFamily::Ec2Describe => "ec2-describe",
            ApiFamily::Ec2Mutate => "ec2-mutate",
            ApiFamily::Ec2RunInstances => "ec2-run-instances",
            ApiFamily::Ec2TerminateInstances => "ec2-terminate-instances",
            ApiFamily::EcsRead => "ecs-read",
            ApiFamily::EcsServiceWrite => "ecs-service-write",
            ApiFamily::EcsRegisterTaskDefinition => "ecs-register-task-definition",
            ApiFamily::CodeBuild => "codebuild",
            ApiFamily::Sqs => "sqs",
            ApiFamily::CloudWatch => "cloudwatch",
            ApiFamily::CloudWatchLogs => "logs",
            ApiFamily::ElastiCache => "elasticache",
            ApiFamily::AutoScaling => "autoscaling",
            ApiFamily::ElasticLoadBalancing => "elasticloadbalancing",
            ApiFamily::Route53 => "route53",
        }
    }

    /// AWS's published bucket for the family (burst, refill per second, per
    /// account and Region), or a conservative figure where AWS publishes none.
    pub fn aws_bucket(self) -> Budget {
        let (burst, per_second) = match self {
            ApiFamily::Ec2Describe => (100.0, 20.0),
            ApiFamily::Ec2Mutate => (50.0, 5.0),
            ApiFamily::Ec2RunInstances => (5.0, 2.0),
            ApiFamily::Ec2TerminateInstances => (100.0, 5.0),
            ApiFamily::EcsRead => (100.0, 20.0),
            ApiFamily::EcsServiceWrite => (50.0, 5.0),
            ApiFamily::EcsRegisterTaskDefinition => (20.0, 1.0),
            ApiFamily::CodeBuild => (20.0, 2.0),
            ApiFamily::Sqs => (200.0, 100.0),
            ApiFamily::CloudWatch => (50.0, 20.0),
            // FilterLogEvents: 25 requests per second per account and Region.
            ApiFamily::CloudWatchLogs => (25.0, 25.0),
            ApiFamily::ElastiCache => (20.0, 2.0),
            ApiFamily::AutoScaling => (20.0, 2.0),
            ApiFamily::ElasticLoadBalancing => (40.0, 10.0),
            // Route53: five requests per second per account, for every API.
            ApiFamily::Route53 => (5.0, 5.0),
        };
        Budget { burst, per_second }
    }

    /// Mooring's default: half of AWS's bucket, because the console, the CLI
    /// and other tools draw from the same account bucket.
    pub fn default_budget(self) -> Budget {
        let b = self.aws_bucket();
        Budget { burst: (b.burst / 2.0).max(1.0), per_second: b.per_second / 2.0 }
    }
}

impl fmt::Display for ApiFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ApiFamily {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ApiFamily::ALL.into_iter().find(|f| f.as_str() == s).ok_or_else(|| format!("unknown API family {s:?}"))
    }
}

/// Why a call may not proceed.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The caller no longer holds the lease it started with (it lapsed, moved
    /// to another replica, or is being handed back): no AWS call is made, and
    /// the newer holder reconciles the resource.
    #[error("the lease of shard {shard} is no longer held with fencing token {fence}")]
    LeaseNotHeld { shard: u32, fence: i64 },
    /// The budget store (Redis) is unreachable: no AWS call is made, since the
    /// caller cannot prove its budget.
    #[error("AWS call budget unavailable: {0}")]
    BudgetUnavailable(String),
    /// The family's budget is spent for longer than a caller should hold its
    /// worker: no call is made, and the reconcile is looked at again once the
    /// bucket has refilled, leaving the worker free for other keys meanwhile.
    #[error("the {family} budget is spent; tokens again in {retry_after:?}")]
    OverBudget { family: ApiFamily, retry_after: Duration },
}

/// How urgent the work making a call is. When a budget is short, urgent work
/// (a change to something that exists, a scaling decision, a deletion) may
/// wait longer for a token than routine work (a first create, a resync), so
/// it reserves the next token while routine work steps aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Priority {
    /// Changes to what exists, scaling decisions, deletions.
    Urgent,
    /// First creates, resyncs.
    Routine,
}

/// What every AWS call passes first. Implementations wait for a token rather
/// than fail, and report how long they waited.
#[async_trait::async_trait]
pub trait CallGate: Send + Sync {
    /// Waits until a call of `family` may be made.
    async fn acquire(&self, family: ApiFamily) -> Result<Duration, GateError>;
    /// [`CallGate::acquire`] for work of `priority` (gates without budgets
    /// treat every priority alike).
    async fn acquire_as(&self, family: ApiFamily, priority: Priority) -> Result<Duration, GateError> {
        let _ = priority;
        self.acquire(family).await
    }
    /// Records the outcome of a call (for metrics): `outcome` is `ok`,
    /// `throttled`, `not_found`, ... ([`crate::cloud::ErrorKind::as_str`]).
    fn record(&self, op: &crate::cloud::Op, outcome: &'static str);
}

/// A gate that never waits (tests and tools outside the controller).
#[derive(Debug, Default, Clone, Copy)]
pub struct Ungated;

#[async_trait::async_trait]
impl CallGate for Ungated {
    async fn acquire(&self, _family: ApiFamily) -> Result<Duration, GateError> {
        Ok(Duration::ZERO)
    }
    fn record(&self, _op: &crate::cloud::Op, _outcome: &'static str) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_take_half_of_aws() {
        let b = ApiFamily::Ec2RunInstances.default_budget();
        assert_eq!((b.burst, b.per_second), (2.5, 1.0));
        let b = ApiFamily::EcsRegisterTaskDefinition.default_budget();
        assert_eq!((b.burst, b.per_second), (10.0, 0.5));
        for f in ApiFamily::ALL {
            assert_eq!(f.as_str().parse::<ApiFamily>().unwrap(), f);
            assert!(f.default_budget().per_second <= f.aws_bucket().per_second / 2.0);
        }
    }
}
