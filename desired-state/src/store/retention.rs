//! Retention: the change feed and the events do not grow without bound.
//!
//! - **Changes** older than [`Retention::changes`] are deleted, oldest first,
//!   and `change_sequence.compacted_through` records the last sequence number
//!   gone. A reader whose position is older is told so
//!   ([`StoreError::Expired`](super::StoreError::Expired); the API answers
//!   410) rather than silently skipping what was compacted, and lists again —
//!   Kubernetes' "resource version too old". The controller follows the feed
//!   from the moment it starts, so only a reader more than the window behind
//!   ever meets this.
//! - **Events** last seen longer ago than [`Retention::events`] are deleted,
//!   a live resource's as well as a deleted one's (Kubernetes keeps events an
//!   hour; here the default is a week).
//! - **Revisions** are never compacted: they are the signed audit trail.
//!
//! Compaction runs in batches, each its own transaction, under an advisory
//! lock: one replica compacts at a time, and writers are never blocked for
//! long.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;

use super::{Store, StoreError};

/// Advisory lock key of compaction ("compact" in ASCII).
const COMPACTION_LOCK: i64 = 0x0063_6f6d_7061_6374;

/// Rows deleted per transaction.
const BATCH: i64 = 5_000;

/// How long the change feed and events are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Changes are kept this long: a watcher can resume within it.
    pub changes: Duration,
    /// Events are kept this long after they were last seen.
    pub events: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention { changes: Duration::from_secs(24 * 3600), events: Duration::from_secs(7 * 24 * 3600) }
    }
}

/// What one compaction removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compacted {
    pub changes: u64,
    pub events: u64,
    /// The feed keeps the changes after this sequence number.
    pub compacted_through: i64,
    /// Another replica was compacting: this one did nothing.
    pub skipped: bool,
}

fn cutoff(now: DateTime<Utc>, keep: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(keep).ok().and_then(|d| now.checked_sub_signed(d)).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl Store {
    /// Deletes changes and events older than `retention` allows, as of `now`.
    pub async fn compact(&self, retention: &Retention, now: DateTime<Utc>) -> Result<Compacted, StoreError> {
        let mut out = Compacted::default();
        let changes_before = cutoff(now, retention.changes);
        loop {
            let mut tx = self.begin().await?;
            let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                .bind(COMPACTION_LOCK)
                .fetch_one(&mut *tx)
                .await?;
            if !locked {
                out.skipped = true;
                return Ok(out);
            }
            // The oldest numbered changes; they go up to the first one still
            // within the window, so what is kept has no holes.
            let (through, deleted): (i64, i64) = sqlx::query_as(
                "WITH head AS ( \
                     SELECT seq, created_at FROM changes WHERE seq IS NOT NULL ORDER BY seq LIMIT $2 \
                 ), upto AS ( \
                     SELECT CASE WHEN EXISTS (SELECT 1 FROM head WHERE created_at >= $1) \
                                 THEN (SELECT min(seq) FROM head WHERE created_at >= $1) - 1 \
                                 ELSE (SELECT max(seq) FROM head) END AS t \
                 ), gone AS ( \
                     DELETE FROM changes WHERE seq IS NOT NULL AND seq <= (SELECT t FROM upto) RETURNING seq \
                 ) \
                 UPDATE change_sequence \
                 SET compacted_through = greatest(compacted_through, coalesce((SELECT t FROM upto), compacted_through)) \
                 WHERE id = 1 RETURNING compacted_through, (SELECT count(*) FROM gone)",
            )
            .bind(changes_before)
            .bind(BATCH)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            out.changes += deleted as u64;
            out.compacted_through = through;
            if deleted < BATCH {
                break;
            }
        }
        let events_before = cutoff(now, retention.events);
        loop {
            let deleted =
                sqlx::query("DELETE FROM events WHERE id IN (SELECT id FROM events WHERE last_seen < $1 LIMIT $2)")
                    .bind(events_before)
                    .bind(BATCH)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
            out.events += deleted;
            if (deleted as i64) < BATCH {
                break;
            }
        }
        Ok(out)
    }

    /// The feed keeps the changes after this sequence number.
    pub async fn compacted_through(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT compacted_through FROM change_sequence WHERE id = 1")
            .fetch_one(&self.pool)
            .await?)
    }
}

/// Compacts every `every` (the first time after one interval), for as long
/// as the task runs. Failures are logged and tried again next time.
pub fn spawn(store: Store, retention: Retention, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match store.compact(&retention, Utc::now()).await {
                Ok(c) if c.skipped => tracing::debug!("another replica is compacting"),
                Ok(c) => tracing::info!(
                    changes = c.changes,
                    events = c.events,
                    compacted_through = c.compacted_through,
                    "compacted the change feed and events"
                ),
                Err(e) => tracing::warn!(error = %e, "compaction failed; will try again"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoffs_never_overflow() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert_eq!(cutoff(now, Duration::from_secs(3600)), DateTime::from_timestamp(1_799_996_400, 0).unwrap());
        assert_eq!(cutoff(now, Duration::MAX), DateTime::<Utc>::MIN_UTC);
    }
}
