//! The Postgres store: resources, revisions, the change feed, events and tokens.
//!
//! Every write happens in one transaction that also appends to the change feed,
//! so a reader of the feed sees exactly the writes that committed. Spec writes
//! are validated before they reach this module (see `api_types::validate_document`);
//! the store enforces identity, optimistic concurrency and history.

/// A query string built from constants (column lists), never from input.
macro_rules! sql {
    ($($t:tt)*) => {
        sqlx::AssertSqlSafe(format!($($t)*))
    };
}

mod audit;
mod changes;
mod events;
pub mod group_commit;
mod resources;
pub mod retention;
mod revisions;
mod sources;
mod summaries;
mod tokens;

use std::sync::Arc;
use std::time::Duration;

use api_types::Kind;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

pub use audit::{AuditFailure, AuditReport};
pub use changes::{Change, ChangeFeed, ChangeFilter, ChangeOp, FeedItem};
pub use events::{Event, EventType};
pub use resources::{ListPage, ListQuery, WriteAction, WriteMode, WriteOutcome};
pub use revisions::Revision;
pub use sources::GitopsSource;
pub use summaries::ResourceSummary;
pub use tokens::{TokenRecord, token_hash as token_hash_of};

use crate::signing::Signer;

/// The embedded migrations, run at start-up and by `mooring migrate`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What failed in the store, and on which resource.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {namespace}/{name} not found")]
    NotFound { kind: Kind, namespace: String, name: String },
    #[error("{kind} {namespace}/{name} already exists")]
    AlreadyExists { kind: Kind, namespace: String, name: String },
    #[error("conflict on {kind} {namespace}/{name}: {reason}")]
    Conflict { kind: Kind, namespace: String, name: String, reason: String },
    /// The resource is another one's (a NodeSet's member), or not the
    /// owner's that tried to write it: changed by its owner only. Retrying
    /// does not help, unlike a stale `resourceVersion`.
    #[error("{kind} {namespace}/{name} cannot be changed: {reason}")]
    Owned { kind: Kind, namespace: String, name: String, reason: String },
    #[error("{kind} {namespace}/{name}: status write with fencing token {token} refused; the store has seen {seen}")]
    Fenced { kind: Kind, namespace: String, name: String, token: i64, seen: i64 },
    /// A status observed at an older generation than the stored one (a
    /// reconcile that read the resource before its spec changed, finishing
    /// after one that read the change): it would make `observedGeneration`
    /// go back, so it is not written.
    #[error(
        "{kind} {namespace}/{name}: status of generation {generation} refused; the stored status is of generation {stored}"
    )]
    StaleStatus { kind: Kind, namespace: String, name: String, generation: i64, stored: i64 },
    #[error("revision {generation} of {kind} {namespace}/{name} not found")]
    RevisionNotFound { kind: Kind, namespace: String, name: String, generation: i64 },
    #[error("token {0:?} already exists")]
    TokenExists(String),
    #[error("token {0:?} not found")]
    TokenNotFound(String),
    #[error("the store is unavailable: {}", describe(.0))]
    Unavailable(sqlx::Error),
    /// Concurrent transactions collided (a deadlock or a serialization
    /// failure); the same request may succeed when retried.
    #[error("concurrent writes collided: {}", describe(.0))]
    Contention(sqlx::Error),
    /// Postgres refused a value it cannot store (a data exception, SQLSTATE
    /// class 22): the client's input, caught here when validation did not.
    #[error("a value cannot be stored: {}", describe(.0))]
    InvalidValue(sqlx::Error),
    #[error("database error: {}", describe(.0))]
    Database(sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A write the rules that need the stored document refuse (an immutable
    /// field changed): every violation, with its field path.
    #[error("{kind} {namespace}/{name}: {errors}")]
    Invalid { kind: Kind, namespace: String, name: String, errors: api_types::ValidationErrors },
    /// A change-feed position older than the feed keeps: the changes after it
    /// were compacted; list again and resume from the list's position.
    #[error(
        "changes after sequence {since} are no longer kept (the feed keeps changes after {compacted_through}): list again and watch from the list's position"
    )]
    Expired { since: i64, compacted_through: i64 },
    /// A GitOps sync of a source whose syncs are suspended.
    #[error(
        "GitOps source {name:?} is suspended (by {by}{}): its syncs are refused until `mooring sync --resume {name}`",
        if reason.is_empty() { String::new() } else { format!(": {reason}") }
    )]
    SourceSuspended { name: String, by: String, reason: String },
    /// The document would take an AWS name another resource already has.
    #[error("{kind} {namespace}/{name} would use the AWS name {claim}, which {holder} already uses")]
    NameTaken { kind: Kind, namespace: String, name: String, claim: String, holder: String },
}

/// A database error in one line: Postgres's own message, without the server's
/// source location that sqlx appends.
fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_string(),
        other => other.to_string(),
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => {
                StoreError::Unavailable(e)
            }
            sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P")) => {
                StoreError::Unavailable(e)
            }
            sqlx::Error::Database(db) if db.code().is_some_and(|c| c == "40001" || c == "40P01") => {
                StoreError::Contention(e)
            }
            sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("22")) => StoreError::InvalidValue(e),
            _ => StoreError::Database(e),
        }
    }
}

/// Who made a change: the API (with the token's name), GitOps (with the commit),
/// or a rollback (with who asked and the generation restored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSource {
    /// `api`, `gitops` or `rollback`.
    pub kind: SourceKind,
    /// The token or user name.
    pub actor: Option<String>,
    /// The git commit SHA for GitOps.
    pub commit: Option<String>,
}

/// The origin of a spec change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Api,
    Gitops,
    Rollback,
    /// The controller, writing what a resource owns (a NodeSet's members).
    Controller,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Api => "api",
            SourceKind::Gitops => "gitops",
            SourceKind::Rollback => "rollback",
            SourceKind::Controller => "controller",
        }
    }
}

impl ChangeSource {
    /// A change through the API by a token.
    pub fn api(actor: impl Into<String>) -> Self {
        ChangeSource { kind: SourceKind::Api, actor: Some(actor.into()), commit: None }
    }
    /// A change synced from a git commit.
    pub fn gitops(actor: impl Into<String>, commit: impl Into<String>) -> Self {
        ChangeSource { kind: SourceKind::Gitops, actor: Some(actor.into()), commit: Some(commit.into()) }
    }
    /// The commit a write records as the resource's applied revision: the
    /// commit of a GitOps write, nothing for any other.
    pub fn applied_revision(&self) -> Option<&str> {
        match self.kind {
            SourceKind::Gitops => self.commit.as_deref(),
            _ => None,
        }
    }

    /// A write by the controller on behalf of `actor` (`NodeSet ns/name`).
    pub fn controller(actor: impl Into<String>) -> Self {
        ChangeSource { kind: SourceKind::Controller, actor: Some(actor.into()), commit: None }
    }

    /// A rollback asked for by `actor`.
    pub fn rollback(actor: impl Into<String>) -> Self {
        ChangeSource { kind: SourceKind::Rollback, actor: Some(actor.into()), commit: None }
    }
}

/// A resource as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredResource {
    pub uid: Uuid,
    #[sqlx(try_from = "String")]
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub labels: sqlx::types::Json<std::collections::BTreeMap<String, String>>,
    pub annotations: sqlx::types::Json<std::collections::BTreeMap<String, String>>,
    pub spec: Value,
    pub spec_hash: String,
    pub status: Value,
    pub generation: i64,
    pub resource_version: i64,
    pub finalizers: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub deletion_timestamp: Option<DateTime<Utc>>,
    pub source: String,
    pub source_actor: Option<String>,
    pub source_commit: Option<String>,
    pub status_fence: i64,
    pub revision_hash: Option<String>,
    /// The git commit whose documents last created or changed it through a
    /// GitOps sync (kept across later API edits); `metadata.appliedRevision`.
    pub applied_revision: Option<String>,
    /// An operator's latest request about its rollout (`mooring rollout promote|abort`).
    pub rollout_request: Option<sqlx::types::Json<api_types::rollout::RolloutRequest>>,
    /// An operator's latest request for a snapshot of a node's data volume
    /// (`mooring node snapshot`).
    pub snapshot_request: Option<sqlx::types::Json<api_types::node::SnapshotRequest>>,
    /// The resource that owns this one (a NodeSet, for its members).
    pub owner_uid: Option<Uuid>,
}

impl StoredResource {
    /// Where its last spec change came from, as recorded on the row.
    pub fn change_source(&self) -> ChangeSource {
        let kind = match self.source.as_str() {
            "gitops" => SourceKind::Gitops,
            "rollback" => SourceKind::Rollback,
            "controller" => SourceKind::Controller,
            _ => SourceKind::Api,
        };
        ChangeSource { kind, actor: self.source_actor.clone(), commit: self.source_commit.clone() }
    }

    /// The full document as the API shows it.
    pub fn to_document(&self) -> Value {
        let mut metadata = serde_json::Map::new();
        metadata.insert("name".into(), Value::String(self.name.clone()));
        // A cluster-scoped resource (a cluster-wide Policy) has no namespace.
        if !self.namespace.is_empty() {
            metadata.insert("namespace".into(), Value::String(self.namespace.clone()));
        }
        if !self.labels.0.is_empty() {
            metadata.insert("labels".into(), serde_json::to_value(&self.labels.0).unwrap_or_default());
        }
        if !self.annotations.0.is_empty() {
            metadata.insert("annotations".into(), serde_json::to_value(&self.annotations.0).unwrap_or_default());
        }
        metadata.insert("uid".into(), Value::String(self.uid.to_string()));
        metadata.insert("generation".into(), Value::from(self.generation));
        metadata.insert("resourceVersion".into(), Value::String(self.resource_version.to_string()));
        metadata.insert("creationTimestamp".into(), Value::String(rfc3339(self.created_at)));
        if let Some(t) = self.deletion_timestamp {
            metadata.insert("deletionTimestamp".into(), Value::String(rfc3339(t)));
        }
        if !self.finalizers.is_empty() {
            metadata.insert("finalizers".into(), serde_json::to_value(&self.finalizers).unwrap_or_default());
        }
        if let Some(revision) = &self.applied_revision {
            metadata.insert("appliedRevision".into(), Value::String(revision.clone()));
        }
        serde_json::json!({
            "apiVersion": api_types::API_VERSION,
            "kind": self.kind.as_str(),
            "metadata": metadata,
            "spec": self.spec,
            "status": self.status,
        })
    }
}

/// Timestamps as the API writes them (RFC 3339, UTC, microseconds).
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Now, truncated to what Postgres stores (microseconds), so a value hashed
/// before a write equals the value read back.
pub fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// How to reach Postgres.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub database_url: String,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl StoreConfig {
    pub fn new(database_url: impl Into<String>) -> Self {
        StoreConfig { database_url: database_url.into(), max_connections: 32, acquire_timeout: Duration::from_secs(5) }
    }
}

/// The store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    signer: Arc<Signer>,
    /// Signalled after every commit that appended to the change feed, to wake
    /// this process's sequencer at once.
    pending: Arc<tokio::sync::Notify>,
    /// The spec writes waiting to share a transaction (see [`group_commit`]);
    /// one queue per pool.
    group: Arc<group_commit::GroupCommit>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("signer", &self.signer).finish_non_exhaustive()
    }
}

impl Store {
    /// Connects (lazily: the API starts even when Postgres is down and reports
    /// 503 until it comes back).
    pub fn connect_lazy(config: &StoreConfig, signer: Signer) -> Result<Store, StoreError> {
        let opts: PgConnectOptions = config.database_url.parse().map_err(StoreError::Database)?;
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout)
            .connect_lazy_with(opts);
        Ok(Store::from_pool(pool, signer))
    }

    /// The same store over its own pool of `max_connections`, so one component
    /// (the change feed, the controller) is never starved of connections by
    /// another (a burst of API writes). Shares the signer and the sequencer's
    /// wake-up signal.
    pub fn dedicated(&self, max_connections: u32) -> Store {
        let opts = (*self.pool.connect_options()).clone();
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(opts);
        Store { pool, signer: self.signer.clone(), pending: self.pending.clone(), group: Arc::default() }
    }

    /// A store over an existing pool (tests).
    pub fn from_pool(pool: PgPool, signer: Signer) -> Store {
        Store { pool, signer: Arc::new(signer), pending: Arc::new(tokio::sync::Notify::new()), group: Arc::default() }
    }

    /// Runs the embedded migrations, registers the signing key, and records
    /// the AWS names of resources created before names were claimed.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => StoreError::from(e),
            other => StoreError::Corrupt(format!("migration failed: {other}")),
        })?;
        self.register_signing_key().await?;
        self.backfill_claims().await
    }

    /// The connection pool (for the API's readiness check and for tests).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Whether Postgres answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn register_signing_key(&self) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO signing_keys (key_id, public_key) VALUES ($1, $2) ON CONFLICT (key_id) DO NOTHING")
            .bind(self.signer.key_id())
            .bind(self.signer.public_key_hex())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Begins a transaction on a pooled connection; cancel-safe.
    ///
    /// sqlx's own `begin` is not, on Postgres (transact-rs/sqlx#4393, fixed
    /// upstream after 0.9.0): a caller dropped while `BEGIN`'s round trip is in
    /// flight — an aborted task, a client that went away, a timeout — leaves
    /// the session inside a transaction nothing rolls back, and the pool hands
    /// that connection on. Its next borrower's statements then run inside
    /// that transaction: they hold their row locks for ever and are never
    /// committed (found by the crash test of `nodes_sim`). Here `BEGIN` runs
    /// in a task of its own, which finishes it whatever becomes of the
    /// caller; a transaction no caller takes is dropped in that task, once
    /// begun, which rolls it back before the connection is pooled again.
    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        use tracing::Instrument;
        let pool = self.pool.clone();
        match tokio::spawn(async move { pool.begin().await }.in_current_span()).await {
            Ok(begun) => Ok(begun?),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Cancelled: the runtime is shutting down.
            Err(_) => Err(StoreError::Unavailable(sqlx::Error::WorkerCrashed)),
        }
    }

    /// Commits a transaction that appended to the change feed and wakes the
    /// sequencer.
    pub(crate) async fn commit(&self, tx: Transaction<'static, Postgres>) -> Result<(), StoreError> {
        tx.commit().await?;
        self.pending.notify_one();
        Ok(())
    }

    /// The in-process "changes are pending" signal.
    pub(crate) fn pending(&self) -> Arc<tokio::sync::Notify> {
        self.pending.clone()
    }
}
