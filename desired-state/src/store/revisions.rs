//! The append-only, signed revision history.
//!
//! One row per generation of a resource. Each row's `hash` covers its identity,
//! spec hash, source and time, and the `hash` of the previous revision of the same
//! resource; `signature` is Ed25519 over that hash. Triggers refuse UPDATE, DELETE
//! and TRUNCATE, and `audit verify` re-derives every hash and checks every
//! signature, so an edit made by someone who bypassed the triggers is found.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Store, StoreError, rfc3339};
use api_types::Kind;
use api_types::hash::canonical_json;

/// One stored revision.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    pub id: i64,
    pub uid: Uuid,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub generation: i64,
    pub spec: Value,
    pub spec_hash: String,
    pub source: String,
    pub actor: Option<String>,
    #[serde(rename = "commit")]
    pub source_commit: Option<String>,
    pub created_at: DateTime<Utc>,
    pub prev_hash: Option<String>,
    pub hash: String,
    pub key_id: String,
    pub signature: String,
}

pub(crate) const REVISION_COLUMNS: &str = "id, uid, kind, namespace, name, generation, spec, spec_hash, source, actor, \
     source_commit, created_at, prev_hash, hash, key_id, signature";

/// The hash of a revision row: SHA-256 over the canonical JSON of everything
/// the row asserts, including the previous row's hash.
#[allow(clippy::too_many_arguments)]
pub(crate) fn revision_hash(
    uid: Uuid,
    kind: &str,
    namespace: &str,
    name: &str,
    generation: i64,
    spec_hash: &str,
    source: &str,
    actor: Option<&str>,
    commit: Option<&str>,
    created_at: DateTime<Utc>,
    prev_hash: Option<&str>,
) -> String {
    let body = json!({
        "uid": uid.to_string(),
        "kind": kind,
        "namespace": namespace,
        "name": name,
        "generation": generation,
        "specHash": spec_hash,
        "source": source,
        "actor": actor,
        "commit": commit,
        "createdAt": rfc3339(created_at),
        "prevHash": prev_hash,
    });
    hex::encode(Sha256::digest(canonical_json(&body).as_bytes()))
}

impl Revision {
    /// Re-derives this row's hash from its contents.
    pub(crate) fn expected_hash(&self) -> String {
        revision_hash(
            self.uid,
            &self.kind,
            &self.namespace,
            &self.name,
            self.generation,
            &self.spec_hash,
            &self.source,
            self.actor.as_deref(),
            self.source_commit.as_deref(),
            self.created_at,
            self.prev_hash.as_deref(),
        )
    }
}

impl Store {
    /// The revisions of the resource that now has this name, newest first.
    pub async fn revisions(&self, kind: Kind, namespace: &str, name: &str) -> Result<Vec<Revision>, StoreError> {
        let current = self.get(kind, namespace, name).await?;
        Ok(sqlx::query_as(sql!("SELECT {REVISION_COLUMNS} FROM revisions WHERE uid = $1 ORDER BY generation DESC"))
            .bind(current.uid)
            .fetch_all(&self.pool)
            .await?)
    }

    /// One revision of the resource that now has this name.
    pub async fn revision(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        generation: i64,
    ) -> Result<Revision, StoreError> {
        let current = self.get(kind, namespace, name).await?;
        sqlx::query_as(sql!("SELECT {REVISION_COLUMNS} FROM revisions WHERE uid = $1 AND generation = $2"))
            .bind(current.uid)
            .bind(generation)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::RevisionNotFound {
                kind,
                namespace: namespace.into(),
                name: name.into(),
                generation,
            })
    }
}
