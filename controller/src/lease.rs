//! Shard leases in Redis: several replicas share the work, and a dead replica's
//! shards move to the living within a lease period.
//!
//! Resources hash into a fixed number of shards. Each replica announces itself
//! (a heartbeat in a sorted set), computes its fair share (`ceil(shards /
//! live replicas)`), takes free shards with an atomic SET-if-absent with expiry,
//! renews what it holds every `renew_every`, gives back shards above its share,
//! and releases everything on shutdown with a compare-and-delete. Each take draws
//! a fencing token from one global counter, never below Redis's clock in
//! milliseconds, so tokens only grow, even across a Redis that lost its data;
//! status writes carry the token and the store refuses an older one (see
//! `Store::write_status`), so a replica that lost a shard cannot overwrite newer
//! status.
//!
//! A replica trusts a lease only until `last successful renew + lease - margin`
//! by its own clock. When Redis is unreachable, its leases lapse locally and it
//! stops mutating AWS: it cannot prove it owns anything.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use desired_state::redis::RedisHandle;
use redis::Script;
use tokio::sync::watch;
use tokio::time::Instant;

/// Lease settings.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// Number of shards; keep it the same on every replica.
    pub shards: u32,
    /// Time to live of a lease in Redis.
    pub lease: Duration,
    /// How often leases are renewed and shares rebalanced.
    pub renew_every: Duration,
    /// Prefix of the Redis keys.
    pub prefix: String,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            shards: 32,
            lease: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
            prefix: "mooring".into(),
        }
    }
}

impl LeaseConfig {
    /// How long before expiry a replica stops trusting its lease.
    fn margin(&self) -> Duration {
        self.lease / 5
    }
}

/// One held shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// The fencing token of this hold.
    pub fence: i64,
    /// Trusted until then (local clock).
    pub valid_until: Instant,
}

/// The shards a replica holds, published on every change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owned {
    pub shards: BTreeMap<u32, Held>,
}

impl Owned {
    /// The fencing token for `shard` if the hold is still trusted now.
    pub fn fence(&self, shard: u32) -> Option<i64> {
        self.shards.get(&shard).filter(|h| h.valid_until > Instant::now()).map(|h| h.fence)
    }

    /// The shards held (trusted or not).
    pub fn shard_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.shards.keys().copied()
    }
}

/// Reconciles in flight per shard. A shard being handed to another replica
/// (a rebalance) leaves the published holds at once — the gates of running
/// reconciles refuse their next AWS call — but its lease in Redis is released
/// only when none of its reconciles still runs, so two replicas never act on
/// one resource at once.
#[derive(Debug, Default)]
pub struct InFlight {
    counts: std::sync::Mutex<std::collections::HashMap<u32, usize>>,
}

/// Marks one reconcile of a shard in flight until dropped.
pub struct InFlightGuard<'a> {
    in_flight: &'a InFlight,
    shard: u32,
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<u32, usize>> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A reconcile of `shard` starts; it ends when the guard is dropped.
    pub fn enter(&self, shard: u32) -> InFlightGuard<'_> {
        *self.lock().entry(shard).or_default() += 1;
        InFlightGuard { in_flight: self, shard }
    }

    /// Whether a reconcile of `shard` runs.
    pub fn busy(&self, shard: u32) -> bool {
        self.lock().get(&shard).is_some_and(|n| *n > 0)
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        let mut counts = self.in_flight.lock();
        if let Some(n) = counts.get_mut(&self.shard) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.shard);
            }
        }
    }
}

/// The shard of a resource: FNV-1a of `kind/namespace/name`, stable across
/// processes and releases.
pub fn shard_of(kind: &str, namespace: &str, name: &str, shards: u32) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [kind, "/", namespace, "/", name] {
        for b in part.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    (h % u64::from(shards.max(1))) as u32
}

const HEARTBEAT: &str = r#"
-- KEYS[1]: replicas zset; ARGV: replica id, ttl ms. Returns the number of live replicas.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return redis.call('ZCARD', KEYS[1])
"#;

/// The fencing token is the counter plus one, or Redis's clock in
/// milliseconds when that is larger. A bare counter would start again at 1
/// after Redis lost its data (a restart without persistence, a failover to a
/// replica that missed the last increments), and the store would then refuse
/// every status write as older than the tokens it has already seen, until the
/// counter climbed back. Milliseconds (13 digits), not microseconds: replicas
/// of an earlier version, still running during a rolling upgrade, print the
/// token with Lua's default number format, which writes 13 digits exactly but
/// 16 in exponent notation, and their renewals would never match. Formatted
/// with `%d` here all the same.
const ACQUIRE: &str = r#"
-- KEYS[1]: lease, KEYS[2]: global fence counter; ARGV: replica id, ttl ms.
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fence = redis.call('INCR', KEYS[2])
if fence < now then
  fence = now
  redis.call('SET', KEYS[2], string.format('%d', fence))
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. string.format('%d', fence), 'NX', 'PX', ARGV[2])
return fence
"#;

const RENEW: &str = r#"
-- KEYS[1]: lease; ARGV: expected value, ttl ms.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"#;

const RELEASE: &str = r#"
-- KEYS[1]: lease; ARGV: expected value. Compare-and-delete.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

const LEAVE: &str = r#"
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
"#;

/// The lease manager of one replica.
pub struct ShardLeases {
    config: LeaseConfig,
    redis: Arc<RedisHandle>,
    replica: String,
    tx: watch::Sender<Owned>,
    scripts: Scripts,
    /// One round at a time (the loop, and callers of [`ShardLeases::tick`]).
    round: tokio::sync::Mutex<()>,
    /// Reconciles running per shard.
    in_flight: InFlight,
    /// Shards given up in a rebalance whose reconciles still run: no longer
    /// published as held, still renewed, released once idle.
    releasing: std::sync::Mutex<BTreeMap<u32, Held>>,
}

struct Scripts {
    heartbeat: Script,
    acquire: Script,
    renew: Script,
    release: Script,
    leave: Script,
}

impl ShardLeases {
    /// A manager for `replica` (unique per process).
    pub fn new(config: LeaseConfig, redis: Arc<RedisHandle>, replica: impl Into<String>) -> ShardLeases {
        let (tx, _) = watch::channel(Owned::default());
        ShardLeases {
            config,
            redis,
            replica: replica.into(),
            tx,
            scripts: Scripts {
                heartbeat: Script::new(HEARTBEAT),
                acquire: Script::new(ACQUIRE),
                renew: Script::new(RENEW),
                release: Script::new(RELEASE),
                leave: Script::new(LEAVE),
            },
            round: tokio::sync::Mutex::new(()),
            in_flight: InFlight::default(),
            releasing: std::sync::Mutex::default(),
        }
    }

    /// The reconciles in flight per shard (the runtime marks them).
    pub fn in_flight(&self) -> &InFlight {
        &self.in_flight
    }

    fn releasing(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, Held>> {
        self.releasing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The replica's id.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// The configuration.
    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// Follows the held shards.
    pub fn subscribe(&self) -> watch::Receiver<Owned> {
        self.tx.subscribe()
    }

    /// Whether `shard` is among the held shards (trusted or not), without
    /// copying the set: the change feed asks this for every change.
    pub fn holds(&self, shard: u32) -> bool {
        self.tx.borrow().shards.contains_key(&shard)
    }

    /// The shards held now.
    pub fn owned(&self) -> Owned {
        self.tx.borrow().clone()
    }

    fn lease_key(&self, shard: u32) -> String {
        format!("{}:lease:{shard}", self.config.prefix)
    }

    fn value(&self, fence: i64) -> String {
        format!("{}|{fence}", self.replica)
    }

    /// One round: heartbeat, renew, rebalance, publish. Errors leave the held
    /// shards to lapse by their local deadline.
    pub async fn tick(&self) -> Result<(), redis::RedisError> {
        let _round = self.round.lock().await;
        let started = Instant::now();
        let ttl = self.config.lease.as_millis() as u64;
        let mut conn = self.redis.connection()?;
        let live: u32 = self
            .scripts
            .heartbeat
            .key(format!("{}:replicas", self.config.prefix))
            .arg(&self.replica)
            .arg(ttl)
            .invoke_async(&mut conn)
            .await?;
        let fair = self.config.shards.div_ceil(live.max(1));
        let valid_until = started + self.config.lease - self.config.margin();
        let mut owned = self.owned();
        // Drop holds that already lapsed locally: they must be taken anew.
        owned.shards.retain(|_, h| h.valid_until > started);

        let mut lost = Vec::new();
        for (&shard, held) in owned.shards.iter_mut() {
            let ok: i64 = self
                .scripts
                .renew
                .key(self.lease_key(shard))
                .arg(self.value(held.fence))
                .arg(ttl)
                .invoke_async(&mut conn)
                .await?;
            if ok == 1 {
                held.valid_until = valid_until;
            } else {
                lost.push(shard);
            }
        }
        for shard in lost {
            tracing::warn!(shard, replica = %self.replica, "lease lost to another replica");
            owned.shards.remove(&shard);
        }

        // Give back shards above the fair share (a replica joined): unpublish
        // them now, release each once its reconciles have ended.
        let mut releasing = self.releasing().clone();
        while owned.shards.len() as u32 > fair {
            let Some((&shard, &held)) = owned.shards.iter().next_back() else { break };
            owned.shards.remove(&shard);
            releasing.insert(shard, held);
        }
        self.tx.send_if_modified(|cur| {
            let before = cur.shards.len();
            cur.shards.retain(|s, _| !releasing.contains_key(s));
            before != cur.shards.len()
        });
        let mut still = BTreeMap::new();
        for (shard, held) in releasing {
            let value = self.value(held.fence);
            if self.in_flight.busy(shard) {
                // Keep it ours in Redis until its reconciles end.
                let _: i64 =
                    self.scripts.renew.key(self.lease_key(shard)).arg(&value).arg(ttl).invoke_async(&mut conn).await?;
                still.insert(shard, held);
            } else {
                let _: i64 = self.scripts.release.key(self.lease_key(shard)).arg(value).invoke_async(&mut conn).await?;
                tracing::debug!(shard, replica = %self.replica, "lease released to rebalance");
            }
        }
        *self.releasing() = still;

        // Take free shards up to the fair share, starting at a replica-specific
        // offset so replicas do not all race for shard 0.
        if (owned.shards.len() as u32) < fair {
            let offset = shard_of("replica", "", &self.replica, self.config.shards);
            for i in 0..self.config.shards {
                if owned.shards.len() as u32 >= fair {
                    break;
                }
                let shard = (offset + i) % self.config.shards;
                if owned.shards.contains_key(&shard) || self.releasing().contains_key(&shard) {
                    continue;
                }
                let fence: Option<i64> = self
                    .scripts
                    .acquire
                    .key(self.lease_key(shard))
                    .key(format!("{}:fence", self.config.prefix))
                    .arg(&self.replica)
                    .arg(ttl)
                    .invoke_async(&mut conn)
                    .await?;
                if let Some(fence) = fence {
                    tracing::debug!(shard, fence, replica = %self.replica, "lease acquired");
                    owned.shards.insert(shard, Held { fence, valid_until });
                }
            }
        }
        self.tx.send_if_modified(|cur| {
            let changed = cur.shards.keys().ne(owned.shards.keys())
                || cur.shards.values().zip(owned.shards.values()).any(|(a, b)| a.fence != b.fence);
            if changed {
                tracing::info!(
                    replica = %self.replica,
                    held = owned.shards.len(),
                    fair_share = fair,
                    live_replicas = live,
                    shards = ?owned.shards.keys().collect::<Vec<_>>(),
                    "shard leases changed"
                );
            }
            *cur = owned.clone();
            changed
        });
        Ok(())
    }

    /// Renews and rebalances every `renew_every` until `stop` fires, then
    /// releases every lease.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut failures = 0u32;
        loop {
            match self.tick().await {
                Ok(()) => failures = 0,
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, failures, replica = %self.replica, "lease round failed; holds lapse unless renewed");
                    self.expire_lapsed();
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.renew_every) => {}
                _ = stop.changed() => break,
            }
            if *stop.borrow() {
                break;
            }
        }
        self.release_all().await;
    }

    /// Publishes the removal of holds whose local deadline passed.
    fn expire_lapsed(&self) {
        let now = Instant::now();
        self.tx.send_if_modified(|cur| {
            let before = cur.shards.len();
            cur.shards.retain(|_, h| h.valid_until > now);
            before != cur.shards.len()
        });
    }

    /// Gives every lease back (compare-and-delete) and leaves the replica set.
    pub async fn release_all(&self) {
        let _round = self.round.lock().await;
        let mut owned = self.owned();
        owned.shards.extend(std::mem::take(&mut *self.releasing()));
        self.tx.send_replace(Owned::default());
        let Ok(mut conn) = self.redis.connection() else { return };
        for (shard, held) in owned.shards {
            let r: Result<i64, _> = self
                .scripts
                .release
                .key(self.lease_key(shard))
                .arg(self.value(held.fence))
                .invoke_async(&mut conn)
                .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, shard, "cannot release lease; it will expire");
            }
        }
        let _: Result<i64, _> = self
            .scripts
            .leave
            .key(format!("{}:replicas", self.config.prefix))
            .arg(&self.replica)
            .invoke_async(&mut conn)
            .await;
        tracing::info!(replica = %self.replica, "leases released");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(shard_of("Relay", "default", "gw", 32), shard_of("Relay", "default", "gw", 32));
        let mut counts = [0u32; 8];
        for i in 0..8000 {
            counts[shard_of("Worker", "default", &format!("w{i}"), 8) as usize] += 1;
        }
        assert!(counts.iter().all(|&c| (800..1200).contains(&c)), "{counts:?}");
    }
}
