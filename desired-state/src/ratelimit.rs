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
-- KEYS[1]: bucket; ARGV: capacity, refill per second, cost, mode (0 try, 1 reserve)
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local reserve = ARGV[4] == '1'
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
  if reserve then
    tokens = tokens - cost
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

    async fn run(&self, key: &str, bucket: TokenBucket, cost: f64, reserve: bool) -> Result<u64, RateLimitError> {
        let mut invocation = self.script.key(format!("{}:{key}", self.prefix));
        invocation.arg(bucket.capacity).arg(bucket.refill_per_sec).arg(cost).arg(if reserve { "1" } else { "0" });
        let wait: u64 = self.redis.run(|mut conn| async move { invocation.invoke_async(&mut conn).await }).await?;
        Ok(wait)
    }

    /// Takes `cost` tokens if there are enough.
    pub async fn try_take(&self, key: &str, bucket: TokenBucket, cost: f64) -> Result<Decision, RateLimitError> {
        let wait = self.run(key, bucket, cost, false).await?;
        Ok(if wait == 0 { Decision::Allowed } else { Decision::Limited { retry_after: Duration::from_millis(wait) } })
    }

    /// Takes `cost` tokens, going into debt if needed, and returns how long the
    /// caller must wait before acting.
    pub async fn reserve(&self, key: &str, bucket: TokenBucket, cost: f64) -> Result<Duration, RateLimitError> {
        Ok(Duration::from_millis(self.run(key, bucket, cost, true).await?))
    }
}
