//! The fleet status line: every interval each replica logs one structured
//! line, `fleet status`, with the shards no replica holds a lease on and the
//! resources that are not `Ready`. On AWS the install's CloudWatch metric
//! filters turn its fields into the metrics the "no shard owner" and
//! "resources not Ready" alarms watch (deploy/aws/mooring.yaml), so the
//! alarms need no extra AWS call and no permission.

use std::sync::Arc;
use std::time::Duration;

use api_types::Kind;
use desired_state::redis::RedisHandle;
use desired_state::store::{Store, StoreError};

/// One measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FleetStatus {
    pub shards: u32,
    /// Shards whose lease key is absent in Redis: nothing reconciles them.
    pub shards_unowned: u32,
    pub resources: i64,
    pub resources_not_ready: i64,
}

/// Why a measurement failed (it is logged and tried again next interval).
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("reading shard leases from Redis: {0}")]
    Redis(#[from] desired_state::redis::RedisOpError),
    #[error("counting resources: {0}")]
    Store(#[from] StoreError),
}

/// What the report reads and how often.
pub struct FleetReport {
    pub store: Store,
    pub redis: Arc<RedisHandle>,
    /// The Redis prefix of the lease keys (`<prefix>:lease:<shard>`).
    pub prefix: String,
    pub shards: u32,
    pub every: Duration,
}

impl FleetReport {
    /// Measures once.
    pub async fn measure(&self) -> Result<FleetStatus, FleetError> {
        let keys: Vec<String> = (0..self.shards).map(|s| format!("{}:lease:{s}", self.prefix)).collect();
        let held: u32 =
            self.redis.run(|mut c| async move { redis::cmd("EXISTS").arg(&keys).query_async(&mut c).await }).await?;
        let kinds: Vec<&str> = Kind::RECONCILED.iter().map(|k| k.as_str()).collect();
        let (resources, resources_not_ready) = self.store.readiness(&kinds).await?;
        Ok(FleetStatus {
            shards: self.shards,
            shards_unowned: self.shards.saturating_sub(held),
            resources,
            resources_not_ready,
        })
    }

    /// Logs a `fleet status` line every interval until `stop` turns true.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.every) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            match self.measure().await {
                Ok(s) => tracing::info!(
                    shards = s.shards,
                    shards_unowned = s.shards_unowned,
                    resources = s.resources,
                    resources_not_ready = s.resources_not_ready,
                    "fleet status"
                ),
                Err(e) => tracing::warn!(error = %e, "fleet status unavailable"),
            }
        }
    }
}
