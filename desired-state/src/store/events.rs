//! Kubernetes-style events: what happened to a resource, for humans. Repeats of
//! the same (type, reason, message) bump a count instead of adding rows; AWS
//! request ids are taken out of the message first, or no two AWS failures
//! would ever be the same.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Store, StoreError, StoredResource};
use api_types::Kind;

pub use api_types::EventType;

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub uid: Uuid,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub message: String,
    pub count: i32,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

impl Store {
    /// Records an event about a resource (its message without AWS request ids).
    pub async fn record_event(
        &self,
        resource: &StoredResource,
        type_: EventType,
        reason: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO events (uid, kind, namespace, name, type, reason, message) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (uid, type, reason, message) DO UPDATE SET count = events.count + 1, last_seen = now()",
        )
        .bind(resource.uid)
        .bind(resource.kind.as_str())
        .bind(&resource.namespace)
        .bind(&resource.name)
        .bind(type_.as_str())
        .bind(reason)
        .bind(api_types::event::without_request_ids(message).as_ref())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Events of the resource that now has this name, newest first.
    pub async fn events(&self, kind: Kind, namespace: &str, name: &str, limit: i64) -> Result<Vec<Event>, StoreError> {
        let current = self.get(kind, namespace, name).await?;
        Ok(sqlx::query_as(
            "SELECT uid, kind, namespace, name, type, reason, message, count, first_seen, last_seen FROM events \
             WHERE uid = $1 ORDER BY last_seen DESC, id DESC LIMIT $2",
        )
        .bind(current.uid)
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?)
    }
}
