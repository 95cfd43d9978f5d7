//! The one Redis connection of a process, shared by the API's rate limits and
//! the controller's shard leases and AWS budgets.
//!
//! Redis is never allowed to stall a caller for long. The connection is
//! multiplexed (one TCP connection, requests pipelined on it; no lock is held
//! while connecting or waiting for an answer) and made lazily: the first user
//! starts the connection attempt and every concurrent user waits on that same
//! attempt, each for at most its own operation timeout. Every operation through
//! [`RedisHandle::run`] is bounded by [`RedisSettings::op_timeout`]; when it
//! runs out the caller gets an error and decides how to fail:
//!
//! * the API's per-token rate limit **fails open** (the request is served, not
//!   limited, and a warning is logged), as the API is documented to keep
//!   serving without Redis;
//! * shard leases and AWS budgets **fail closed**: a lease that cannot be
//!   renewed lapses and a budget token that cannot be drawn makes no AWS call,
//!   so a replica that cannot prove it owns a shard does not act on it.
//!
//! A Redis that silently drops packets therefore costs each request at most one
//! operation timeout (250 ms by default), never a connection timeout, and
//! requests never queue behind one another.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// How long Redis may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisSettings {
    /// The longest one operation (a script, a PING) may take, connecting
    /// included. On the request path this is what a stalled Redis costs.
    pub op_timeout: Duration,
    /// The longest one connection attempt may take. Attempts are shared by all
    /// callers and retried in the background; callers never wait this long.
    pub connect_timeout: Duration,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings { op_timeout: Duration::from_millis(250), connect_timeout: Duration::from_secs(2) }
    }
}

/// A Redis operation that did not succeed, and why.
#[derive(Debug, thiserror::Error)]
pub enum RedisOpError {
    /// No answer within the operation timeout (Redis down, unreachable or
    /// dropping packets).
    #[error("Redis did not answer within {} ms", .0.as_millis())]
    TimedOut(Duration),
    /// Redis answered with an error, or the connection failed.
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// A lazily connected, multiplexed connection to Redis with bounded operations.
/// The API starts and serves when Redis is down; see the module documentation
/// for what each user does when an operation fails.
pub struct RedisHandle {
    client: redis::Client,
    settings: RedisSettings,
    manager: OnceLock<ConnectionManager>,
}

impl std::fmt::Debug for RedisHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHandle").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl RedisHandle {
    /// A handle with the default timeouts. Only parses the URL: nothing is
    /// connected until the first operation.
    pub fn new(url: &str) -> Result<RedisHandle, redis::RedisError> {
        Self::with_settings(url, RedisSettings::default())
    }

    /// A handle with explicit timeouts.
    pub fn with_settings(url: &str, settings: RedisSettings) -> Result<RedisHandle, redis::RedisError> {
        Ok(RedisHandle { client: redis::Client::open(url)?, settings, manager: OnceLock::new() })
    }

    /// The timeouts in force.
    pub fn settings(&self) -> RedisSettings {
        self.settings
    }

    /// The shared connection. Creating it connects nothing; the first command
    /// does, and concurrent commands share that attempt. Must be called on a
    /// Tokio runtime (the connection's reconnect task runs there).
    pub fn connection(&self) -> Result<ConnectionManager, redis::RedisError> {
        if let Some(m) = self.manager.get() {
            return Ok(m.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.settings.connect_timeout))
            .set_response_timeout(Some(self.settings.op_timeout))
            .set_number_of_retries(1);
        let made = ConnectionManager::new_lazy_with_config(self.client.clone(), config)?;
        Ok(self.manager.get_or_init(|| made).clone())
    }

    /// Runs one operation on the shared connection, bounded by the operation
    /// timeout (connecting included).
    pub async fn run<T, F, Fut>(&self, op: F) -> Result<T, RedisOpError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, redis::RedisError>>,
    {
        let conn = self.connection()?;
        match tokio::time::timeout(self.settings.op_timeout, op(conn)).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(RedisOpError::TimedOut(self.settings.op_timeout)),
        }
    }

    /// Whether Redis answers PING within the operation timeout.
    pub async fn ping(&self) -> Result<(), RedisOpError> {
        self.run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await.map(|_| ()) }).await
    }
}
