//! GitOps sources: the last commit each source synced, and whether its syncs
//! are suspended. A row appears on a source's first sync or suspension.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;

use super::{Store, StoreError, now_micros};

const COLUMNS: &str =
    "name, suspended, suspended_by, suspended_at, reason, last_revision, last_synced_at, last_synced_by";

/// One GitOps source as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct GitopsSource {
    /// The source's name (the `mooring/source` label of its resources).
    pub name: String,
    /// Whether its syncs are refused.
    pub suspended: bool,
    /// Who suspended it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspended_by: Option<String>,
    /// When.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspended_at: Option<DateTime<Utc>>,
    /// Why, as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The commit of the last sync that wrote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_revision: Option<String>,
    /// When it was synced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_synced_at: Option<DateTime<Utc>>,
    /// By which token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_synced_by: Option<String>,
}

impl Store {
    /// Every source, by name.
    pub async fn sources(&self) -> Result<Vec<GitopsSource>, StoreError> {
        Ok(sqlx::query_as(sql!("SELECT {COLUMNS} FROM gitops_sources ORDER BY name")).fetch_all(&self.pool).await?)
    }

    /// One source, if it ever synced or was suspended.
    pub async fn source(&self, name: &str) -> Result<Option<GitopsSource>, StoreError> {
        Ok(sqlx::query_as(sql!("SELECT {COLUMNS} FROM gitops_sources WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Suspends (with who and why) or resumes a source's syncs.
    pub async fn set_source_suspended(
        &self,
        name: &str,
        suspended: bool,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<GitopsSource, StoreError> {
        let (by, at, reason) = if suspended { (Some(actor), Some(now_micros()), reason) } else { (None, None, None) };
        Ok(sqlx::query_as(sql!(
            "INSERT INTO gitops_sources (name, suspended, suspended_by, suspended_at, reason) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name) DO UPDATE SET suspended = $2, suspended_by = $3, suspended_at = $4, reason = $5 \
             RETURNING {COLUMNS}"
        ))
        .bind(name)
        .bind(suspended)
        .bind(by)
        .bind(at)
        .bind(reason)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Records a sync of `revision` inside the sync's transaction, holding the
    /// source's row until it commits, so a suspension and a sync never
    /// interleave; refuses when the source is suspended.
    pub(crate) async fn record_sync_in(
        &self,
        tx: &mut PgConnection,
        name: &str,
        revision: &str,
        actor: Option<&str>,
    ) -> Result<GitopsSource, StoreError> {
        let row: GitopsSource = sqlx::query_as(sql!(
            "INSERT INTO gitops_sources (name) VALUES ($1) ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name \
             RETURNING {COLUMNS}"
        ))
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        if row.suspended {
            return Err(StoreError::SourceSuspended {
                name: name.to_string(),
                by: row.suspended_by.unwrap_or_default(),
                reason: row.reason.unwrap_or_default(),
            });
        }
        Ok(sqlx::query_as(sql!(
            "UPDATE gitops_sources SET last_revision = $2, last_synced_at = $3, last_synced_by = $4 WHERE name = $1 \
             RETURNING {COLUMNS}"
        ))
        .bind(name)
        .bind(revision)
        .bind(now_micros())
        .bind(actor)
        .fetch_one(&mut *tx)
        .await?)
    }

    /// The namespaces holding resources of a source (who may suspend it must
    /// be able to write in each).
    pub async fn source_namespaces(&self, name: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT namespace FROM resources WHERE labels @> jsonb_build_object('mooring/source', $1::text) \
             ORDER BY namespace",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?)
    }
}
