//! The change feed: every write appends a change in its own transaction; a
//! sequencer numbers committed changes gap-free in commit order; readers resume
//! from any sequence number and see every later change exactly once, in order.
//!
//! Why a sequencer: a Postgres sequence hands out numbers at insert time, so a
//! transaction holding number 5 can commit after one holding 6, and a reader
//! that already moved past 6 would miss 5. Numbering rows only once they are
//! committed (and visible) closes that hole without serializing writers. NOTIFY
//! wakes readers quickly; a short poll covers lost notifications, and readers
//! keep their cursor across database outages.

use std::sync::Arc;
use std::time::Duration;

use api_types::Kind;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use sqlx::{Postgres, QueryBuilder};
use tokio::sync::{Notify, watch};

use tokio::task::JoinHandle;
use uuid::Uuid;

use super::{Store, StoreError, StoredResource};

/// What happened to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeOp {
    /// Created.
    Create,
    /// Spec, labels, annotations or finalizers changed.
    Update,
    /// Status changed.
    Status,
    /// Deletion was requested (`deletionTimestamp` set).
    DeleteRequested,
    /// The row is gone.
    Delete,
    /// Nothing changed in the store, but AWS reported an event about the
    /// resource (an ECS task stopped, an instance changed state): look again.
    Event,
}

impl ChangeOp {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Create => "create",
            ChangeOp::Update => "update",
            ChangeOp::Status => "status",
            ChangeOp::DeleteRequested => "delete-requested",
            ChangeOp::Delete => "delete",
            ChangeOp::Event => "event",
        }
    }

    fn parse(s: &str) -> Option<ChangeOp> {
        [
            ChangeOp::Create,
            ChangeOp::Update,
            ChangeOp::Status,
            ChangeOp::DeleteRequested,
            ChangeOp::Delete,
            ChangeOp::Event,
        ]
        .into_iter()
        .find(|op| op.as_str() == s)
    }
}

/// One entry of the change feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    pub seq: i64,
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub uid: Uuid,
    pub op: ChangeOp,
    pub generation: i64,
    #[serde(with = "string_i64")]
    pub resource_version: i64,
    pub time: DateTime<Utc>,
}

mod string_i64 {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(sqlx::FromRow)]
struct ChangeRow {
    seq: i64,
    kind: String,
    namespace: String,
    name: String,
    uid: Uuid,
    op: String,
    generation: i64,
    resource_version: i64,
    created_at: DateTime<Utc>,
}

impl TryFrom<ChangeRow> for Change {
    type Error = StoreError;
    fn try_from(r: ChangeRow) -> Result<Change, StoreError> {
        Ok(Change {
            seq: r.seq,
            kind: r.kind.parse().map_err(|_| StoreError::Corrupt(format!("change {}: kind {:?}", r.seq, r.kind)))?,
            op: ChangeOp::parse(&r.op)
                .ok_or_else(|| StoreError::Corrupt(format!("change {}: op {:?}", r.seq, r.op)))?,
            namespace: r.namespace,
            name: r.name,
            uid: r.uid,
            generation: r.generation,
            resource_version: r.resource_version,
            time: r.created_at,
        })
    }
}

/// What a follower of the feed reads: a change, or how far it has read when
/// the changes it passed were not its own.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedItem {
    Change(Change),
    /// Every change up to this sequence number has been read; none after the
    /// last [`FeedItem::Change`] passed the filter.
    Reached(i64),
}

/// Which changes a reader wants.
#[derive(Debug, Clone, Default)]
pub struct ChangeFilter {
    pub kind: Option<Kind>,
    pub namespace: Option<String>,
    /// The namespaces the reader may see (None: all).
    pub allowed_namespaces: Option<Vec<String>>,
}

pub(crate) async fn append_change(
    tx: &mut sqlx::PgConnection,
    row: &StoredResource,
    op: ChangeOp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO changes (kind, namespace, name, uid, op, generation, resource_version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(row.kind.as_str())
    .bind(&row.namespace)
    .bind(&row.name)
    .bind(row.uid)
    .bind(op.as_str())
    .bind(row.generation)
    .bind(row.resource_version)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Advisory lock key of the sequencer ("mooring" in ASCII).
const SEQUENCER_LOCK: i64 = 0x006d_6f6f_7269_6e67;

/// The most changes one sequencer transaction numbers.
const SEQUENCE_BATCH: i64 = 10_000;

impl Store {
    /// Numbers every committed, unnumbered change, in one transaction under an
    /// advisory lock (several processes may run sequencers; they take turns),
    /// and tells the other processes (NOTIFY) when it numbered any. Returns
    /// the last sequence number and whether a full batch was numbered (more
    /// may be waiting).
    ///
    /// Four round trips — `BEGIN`, the lock, one statement that numbers and
    /// notifies, the commit — since the feed's latency is the sequencer's.
    /// (The lock is its own statement so the numbering's snapshot is taken
    /// after it, and `BEGIN` is its own so a failed lock rolls back.)
    pub async fn sequence_pending(&self) -> Result<(i64, bool), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(SEQUENCER_LOCK).execute(&mut *tx).await?;
        let (last, numbered): (i64, i64) = sqlx::query_as(sql!(
            "WITH pending AS ( \
                 SELECT id, row_number() OVER (ORDER BY id) AS rn FROM changes WHERE seq IS NULL ORDER BY id LIMIT {SEQUENCE_BATCH} \
             ), base AS (SELECT last FROM change_sequence WHERE id = 1), \
             upd AS ( \
                 UPDATE changes c SET seq = base.last + pending.rn FROM pending, base WHERE c.id = pending.id RETURNING c.seq \
             ), n AS (SELECT count(*) AS numbered FROM upd), \
             s AS ( \
                 UPDATE change_sequence SET last = last + n.numbered FROM n WHERE id = 1 AND n.numbered > 0 RETURNING last \
             ) \
             SELECT COALESCE((SELECT last FROM s), base.last) AS last, n.numbered, \
                 CASE WHEN n.numbered > 0 THEN pg_notify('mooring_changes', (SELECT last FROM s)::text) END IS NULL AS quiet \
             FROM base, n"
        ))
        .fetch_one(&mut *tx)
        .await
        .map(|(last, numbered, _quiet): (i64, i64, bool)| (last, numbered))?;
        tx.commit().await?;
        Ok((last, numbered >= SEQUENCE_BATCH))
    }

    async fn has_pending(&self) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM changes WHERE seq IS NULL)").fetch_one(&self.pool).await?)
    }

    /// Up to `limit` changes after `after` that pass `filter`, and how far the
    /// read got (so a filtered reader does not rescan what it skipped).
    pub async fn changes_after(
        &self,
        after: i64,
        filter: &ChangeFilter,
        limit: i64,
    ) -> Result<(Vec<Change>, i64), StoreError> {
        let mut b: QueryBuilder<Postgres> = QueryBuilder::new(
            "SELECT c.seq, c.kind, c.namespace, c.name, c.uid, c.op, c.generation, c.resource_version, c.created_at, \
             hw.last AS high_water, hw.compacted_through FROM change_sequence hw LEFT JOIN changes c ON c.seq > ",
        );
        b.push_bind(after).push(" AND c.seq <= hw.last");
        if let Some(kind) = filter.kind {
            b.push(" AND c.kind = ").push_bind(kind.as_str());
        }
        if let Some(ns) = &filter.namespace {
            b.push(" AND c.namespace = ").push_bind(ns.clone());
        }
        if let Some(allowed) = &filter.allowed_namespaces {
            b.push(" AND c.namespace = ANY(").push_bind(allowed.clone()).push(")");
        }
        b.push(" WHERE hw.id = 1 ORDER BY c.seq LIMIT ").push_bind(limit);
        #[derive(sqlx::FromRow)]
        struct Row {
            seq: Option<i64>,
            kind: Option<String>,
            namespace: Option<String>,
            name: Option<String>,
            uid: Option<Uuid>,
            op: Option<String>,
            generation: Option<i64>,
            resource_version: Option<i64>,
            created_at: Option<DateTime<Utc>>,
            high_water: i64,
            compacted_through: i64,
        }
        let rows: Vec<Row> = b.build_query_as().fetch_all(&self.pool).await?;
        // Changes after `after` were compacted away: reading on would skip them.
        if let Some(through) = rows.first().map(|r| r.compacted_through).filter(|t| after < *t) {
            return Err(StoreError::Expired { since: after, compacted_through: through });
        }
        let high_water = rows.first().map(|r| r.high_water).unwrap_or(after);
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let (
                Some(seq),
                Some(kind),
                Some(namespace),
                Some(name),
                Some(uid),
                Some(op),
                Some(generation),
                Some(rv),
                Some(t),
            ) = (r.seq, r.kind, r.namespace, r.name, r.uid, r.op, r.generation, r.resource_version, r.created_at)
            else {
                continue;
            };
            out.push(Change::try_from(ChangeRow {
                seq,
                kind,
                namespace,
                name,
                uid,
                op,
                generation,
                resource_version: rv,
                created_at: t,
            })?);
        }
        let reached = if out.len() as i64 >= limit { out.last().map(|c| c.seq).unwrap_or(after) } else { high_water };
        Ok((out, reached.max(after)))
    }
}

/// The running change feed of one process: a listener for NOTIFY, a sequencer,
/// and a wake-up signal for readers. Tasks stop when the last handle is dropped.
#[derive(Clone)]
pub struct ChangeFeed {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    latest: watch::Receiver<i64>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// How often the sequencer and readers look even without a notification.
const POLL: Duration = Duration::from_millis(250);

impl ChangeFeed {
    /// Starts the listener and the sequencer for `store`. Give it a store on
    /// a small pool of its own ([`Store::dedicated`]) so that sequencing and
    /// reading keep up under write load.
    pub fn start(store: Store) -> ChangeFeed {
        let (tx, rx) = watch::channel(0i64);
        let wake_sequencer = store.pending();
        let listener = tokio::spawn(listen(store.clone(), tx.clone(), wake_sequencer.clone()));
        let sequencer = tokio::spawn(sequence(store.clone(), tx, wake_sequencer));
        ChangeFeed { inner: Arc::new(Inner { store, latest: rx, tasks: vec![listener, sequencer] }) }
    }

    /// Every change after `since` that passes `filter`, in order, exactly once.
    /// Database errors are logged and retried with backoff, keeping the
    /// position; the stream ends only when its position is older than the
    /// feed keeps ([`Store::compact`]): then its owner must list again.
    pub fn subscribe(&self, since: i64, filter: ChangeFilter) -> impl Stream<Item = Change> + Send + 'static + use<> {
        self.follow(since, filter).filter_map(|item| {
            std::future::ready(match item {
                FeedItem::Change(c) => Some(c),
                FeedItem::Reached(_) => None,
            })
        })
    }

    /// [`ChangeFeed::subscribe`], with the positions the reader got past in
    /// between: a filtered reader that saw no change of its own for a while
    /// still knows how far it has read (a watch's bookmarks).
    pub fn follow(&self, since: i64, filter: ChangeFilter) -> impl Stream<Item = FeedItem> + Send + 'static + use<> {
        let store = self.inner.store.clone();
        let mut latest = self.inner.latest.clone();
        // Keep the feed's tasks alive while a subscriber exists.
        let keep = self.inner.clone();
        async_stream::stream! {
            let _keep = keep;
            let mut cursor = since;
            let mut failures = 0u32;
            loop {
                match store.changes_after(cursor, &filter, 500).await {
                    Ok((changes, reached)) => {
                        failures = 0;
                        let full = changes.len() >= 500;
                        for c in changes {
                            cursor = c.seq;
                            yield FeedItem::Change(c);
                        }
                        if reached > cursor {
                            cursor = reached;
                            yield FeedItem::Reached(cursor);
                        }
                        if full {
                            continue;
                        }
                    }
                    Err(e @ StoreError::Expired { .. }) => {
                        // The reader fell further behind than the feed keeps:
                        // the stream ends, and its owner lists again.
                        tracing::warn!(error = %e, cursor, "change feed position expired; ending the stream");
                        return;
                    }
                    Err(e) => {
                        failures += 1;
                        let delay = Duration::from_millis((100u64 << failures.min(6)).min(5_000));
                        tracing::warn!(error = %e, cursor, ?delay, "change feed read failed; retrying");
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                }
                if *latest.borrow_and_update() > cursor {
                    continue;
                }
                let _ = tokio::time::timeout(POLL * 4, latest.changed()).await;
            }
        }
    }
}

async fn listen(store: Store, latest: watch::Sender<i64>, wake: Arc<Notify>) {
    let mut failures = 0u32;
    loop {
        let mut listener = match PgListener::connect_with(store.pool()).await {
            Ok(l) => l,
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, "change listener cannot connect; retrying");
                tokio::time::sleep(Duration::from_millis((200u64 << failures.min(5)).min(5_000))).await;
                continue;
            }
        };
        if let Err(e) = listener.listen("mooring_changes").await {
            tracing::warn!(error = %e, "LISTEN failed; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        failures = 0;
        // Anything committed while we were not listening.
        wake.notify_one();
        loop {
            match listener.recv().await {
                Ok(n) if n.channel() == "mooring_changes" => {
                    if let Ok(seq) = n.payload().parse::<i64>() {
                        latest.send_if_modified(|v| {
                            let newer = seq > *v;
                            if newer {
                                *v = seq;
                            }
                            newer
                        });
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "change listener lost its connection; reconnecting");
                    break;
                }
            }
        }
    }
}

async fn sequence(store: Store, latest: watch::Sender<i64>, wake: Arc<Notify>) {
    loop {
        // Woken by a commit of this process: there is a change to number.
        // Otherwise (another process's commit, a wake-up that was lost), look
        // first, cheaply.
        let woken = tokio::time::timeout(POLL, wake.notified()).await.is_ok();
        if !woken {
            match store.has_pending().await {
                Ok(false) => continue,
                Ok(true) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "sequencer cannot reach the store");
                    continue;
                }
            }
        }
        match store.sequence_pending().await {
            Ok((last, full)) => {
                if full {
                    // Look again at once: a large backlog is numbered in batches.
                    wake.notify_one();
                }
                latest.send_if_modified(|v| {
                    let newer = last > *v;
                    if newer {
                        *v = last;
                    }
                    newer
                });
            }
            Err(e) => tracing::warn!(error = %e, "sequencing changes failed; will retry"),
        }
    }
}
