//! Token buckets in Redis, shared by every replica.
//!
//! One Lua script keeps a bucket per key (capacity, refill per second) using
//! Redis's own clock, so replicas with skewed clocks agree. Two ways to take:
//! [`RateLimiter::try_take`] refuses when the bucket is empty and says when to
//! retry (the API answers 429 with `Retry-After`); [`RateLimiter::reserve`]
//! always takes and returns how long to wait first, so callers queue fairly
//! instead of hammering (the controller's AWS budgets). Every call is bounded
//! by the Redis operation timeout (see [`crate::redis`]): the API fails open on
//! an error, the AWS budgets fail closed.

use std::time::Duration;

use redis::Script;

/// Where the Redis connection lives now; kept so older imports still resolve.
pub use crate::redis::RedisHandle;
use crate::redis::RedisOpError;

/// A bucket's shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucket {
    /// Burst size.
    pub capacity: f64,
    /// Tokens added per second.
    pub refill_per_sec: f64,
}

/// The outcome of [`RateLimiter::try_take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Empty; a token will be there after this long.
    Limited {
        retry_after: Duration,
    },
}

/// Redis was unreachable, too slow, or answered nonsense.
#[derive(Debug, thiserror::Error)]
#[error("rate limiter: {0}")]
pub struct RateLimitError(#[from] pub RedisOpError);

const SCRIPT: &str = r#"
-- KEYS[1]: bucket; ARGV: capacity, refill per second, cost, the longest wait in
-- ms a caller accepts (-1: any). Returns the wait; a caller that would wait
-- longer than it accepts takes nothing and gets the wait as a negative number.
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then
  tokens = cap
  ts = now
end
tokens = math.min(cap, tokens + (now - ts) * rate / 1000)
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
else
  wait = math.ceil((cost - tokens) * 1000 / rate)
  if max_wait < 0 or wait <= max_wait then
    tokens = tokens - cost
  else
    wait = -wait
  end
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((cap - tokens) * 1000 / rate) + 60000)
return wait
"#;

/// Token buckets under a key prefix.
pub struct RateLimiter {
    redis: std::sync::Arc<RedisHandle>,
    prefix: String,
    script: Script,
}

impl RateLimiter {
    pub fn new(redis: std::sync::Arc<RedisHandle>, prefix: impl Into<String>) -> Self {
        RateLimiter { redis, prefix: prefix.into(), script: Script::new(SCRIPT) }
    }

    /// Runs the script: `Ok(wait)` when the tokens were taken (act after
    /// `wait`), `Err(retry_after)` when the wait would exceed `max_wait`.
    async fn run(
        &self,
        key: &str,
        bucket: TokenBucket,
        cost: f64,
        max_wait: Option<Duration>,
    ) -> Result<Result<Duration, Duration>, RateLimitError> {
        let mut invocation = self.script.key(format!("{}:{key}", self.prefix));
        let max_wait = max_wait.map_or(-1, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        invocation.arg(bucket.capacity).arg(bucket.refill_per_sec).arg(cost).arg(max_wait);
        let wait: i64 = self.redis.run(|mut conn| async move { invocation.invoke_async(&mut conn).await }).await?;
        Ok(if wait >= 0 {
            Ok(Duration::from_millis(wait.unsigned_abs()))
        } else {
            Err(Duration::from_millis(wait.unsigned_abs()))
        })
    }

    /// Takes `cost` tokens if there are enough.
    pub async fn try_take(&self, key: &str, bucket: TokenBucket, cost: f64) -> Result<Decision, RateLimitError> {
        Ok(match self.run(key, bucket, cost, Some(Duration::ZERO)).await? {
            Ok(_) => Decision::Allowed,
            Err(retry_after) => Decision::Limited { retry_after },
        })
    }

    /// Takes `cost` tokens, going into debt if needed, and returns how long the
    /// caller must wait before acting.
    pub async fn reserve(&self, key: &str, bucket: TokenBucket, cost: f64) -> Result<Duration, RateLimitError> {
        Ok(self.run(key, bucket, cost, None).await?.unwrap_or_else(|wait| wait))
    }

    /// Takes `cost` tokens when the caller would wait at most `max_wait` for
    /// them (`Ok(wait)`); otherwise takes nothing and says when the bucket
    /// will have them (`Err(retry_after)`), so the caller can do other work
    /// meanwhile instead of holding its place.
    pub async fn reserve_within(
        &self,
        key: &str,
        bucket: TokenBucket,
        cost: f64,
        max_wait: Duration,
    ) -> Result<Result<Duration, Duration>, RateLimitError> {
        self.run(key, bucket, cost, Some(max_wait)).await
    }
}
