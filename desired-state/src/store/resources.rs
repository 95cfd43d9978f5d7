//! Resource rows: create, replace, read, list, status, finalizers, delete.

use api_types::meta::FINALIZER;
use api_types::{AnyResource, Kind};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use super::changes::{ChangeOp, append_change};
use super::group_commit::Pending;
use super::revisions::revision_hash;
use super::{ChangeSource, SourceKind, Store, StoreError, StoredResource, now_micros};
use crate::plan::{FieldChange, diff_documents};
use crate::selector::Selector;

const COLUMNS: &str = "uid, kind, namespace, name, labels, annotations, spec, spec_hash, status, generation, \
     resource_version, finalizers, created_at, deletion_timestamp, source, source_actor, source_commit, status_fence, \
     revision_hash, applied_revision, rollout_request, snapshot_request, owner_uid";

/// How a spec write treats an existing resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteMode {
    /// Create only; an existing resource is a conflict (POST).
    Create,
    /// Replace only, if the stored resourceVersion is this one (PUT).
    Replace { resource_version: i64 },
    /// Create or update, whatever the version (bulk apply, rollback).
    Upsert,
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteAction {
    Create,
    Update,
    Unchanged,
    Delete,
}

/// The result of a spec write: what happened, the field changes, and the row.
#[derive(Debug, Clone)]
pub struct WriteOutcome {
    pub action: WriteAction,
    pub diff: Vec<FieldChange>,
    pub resource: StoredResource,
    /// For an update: where the version it replaced came from, so a GitOps
    /// plan can tell drift (a change made through the API) from a new commit.
    pub replaced: Option<ChangeSource>,
}

/// A list request.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub kind: Option<Kind>,
    /// One namespace, or all.
    pub namespace: Option<String>,
    /// The namespaces the caller may read (None: all).
    pub allowed_namespaces: Option<Vec<String>>,
    pub selector: Selector,
    pub limit: i64,
    /// Continue after this (kind, namespace, name).
    pub after: Option<(String, String, String)>,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct ListPage {
    pub items: Vec<StoredResource>,
    /// The key to continue after, when there may be more.
    pub next: Option<(String, String, String)>,
}

impl Store {
    /// Writes a validated document: creates it, or updates spec, labels and
    /// annotations. A write that changes nothing returns `Unchanged` and writes
    /// nothing (no generation, no revision, no change-feed entry).
    ///
    /// Concurrent writes share a transaction (group commit, see
    /// [`super::group_commit`]); each is answered when its batch commits.
    pub async fn write(
        &self,
        doc: &AnyResource,
        mode: WriteMode,
        source: &ChangeSource,
    ) -> Result<WriteOutcome, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let pending = Pending { doc: doc.clone(), mode, source: source.clone(), reply };
        if let Some(leading) = self.group.push(pending) {
            tokio::spawn(self.clone().lead_batches(leading));
        }
        // The leader answers every write it takes; it is gone without an
        // answer only if its task was torn down (the runtime shutting down).
        answer.await.map_err(|_| StoreError::Unavailable(sqlx::Error::WorkerCrashed))?
    }

    /// [`Store::write`] in a transaction of its own.
    pub(super) async fn write_alone(
        &self,
        doc: &AnyResource,
        mode: WriteMode,
        source: &ChangeSource,
    ) -> Result<WriteOutcome, StoreError> {
        if mode == WriteMode::Create {
            // A create is one statement (row, revision, change): atomic on its
            // own, so it needs no transaction round trips.
            let mut conn = self.pool.acquire().await?;
            let out = self.write_in(&mut conn, doc, mode, source).await?;
            self.pending.notify_one();
            return Ok(out);
        }
        let mut tx = self.begin().await?;
        let out = self.write_in(&mut tx, doc, mode, source).await?;
        self.commit(tx).await?;
        Ok(out)
    }

    /// The plan of a write, without writing (dry run).
    pub async fn plan(&self, doc: &AnyResource) -> Result<WriteOutcome, StoreError> {
        let mut tx = self.begin().await?;
        let out = self.write_in(&mut tx, doc, WriteMode::Upsert, &ChangeSource::api("dry-run")).await;
        tx.rollback().await?;
        out
    }

    /// [`Store::write`] inside a caller's transaction (bulk apply).
    pub(crate) async fn write_in(
        &self,
        tx: &mut PgConnection,
        doc: &AnyResource,
        mode: WriteMode,
        source: &ChangeSource,
    ) -> Result<WriteOutcome, StoreError> {
        let kind = doc.kind();
        let meta = doc.metadata();
        let spec = doc.spec_value();
        let spec_hash = doc.spec_hash().0;
        // A create need not look first: the insert itself refuses an existing name.
        let existing = match mode {
            WriteMode::Create => None,
            _ => select_for_update(tx, kind, &meta.namespace, &meta.name).await?,
        };
        // The labels that mark a NodeSet's members are the controller's: a
        // document from anyone else that carries them would read as a member
        // to label selectors and dashboards. (A member itself is refused
        // below as the set's, which says more.)
        if source.kind != SourceKind::Controller
            && existing.as_ref().is_none_or(|old| old.owner_uid.is_none())
            && let Some(label) = RESERVED_LABELS.iter().find(|l| meta.labels.contains_key(**l))
        {
            return Err(StoreError::Invalid {
                kind,
                namespace: meta.namespace.clone(),
                name: meta.name.clone(),
                errors: api_types::ValidationErrors::one(
                    format!("metadata.labels.{label}"),
                    "is set by the controller on a NodeSet's members, and by no one else",
                ),
            });
        }
        let now = now_micros();

        let Some(old) = existing else {
            if let WriteMode::Replace { .. } = mode {
                return Err(StoreError::NotFound { kind, namespace: meta.namespace.clone(), name: meta.name.clone() });
            }
            let uid = Uuid::new_v4();
            let rev_hash = revision_hash(
                uid,
                kind.as_str(),
                &meta.namespace,
                &meta.name,
                1,
                &spec_hash,
                source.kind.as_str(),
                source.actor.as_deref(),
                source.commit.as_deref(),
                now,
                None,
            );
            // One statement: the row, its first signed revision, its change,
            // and its claims on account-wide AWS names.
            let signature = self.signer.sign(rev_hash.as_bytes());
            let claims = api_types::names::claims(doc);
            let inserted: Result<Option<StoredResource>, sqlx::Error> = sqlx::query_as(sql!(
                "WITH r AS ( \
                     INSERT INTO resources (uid, kind, namespace, name, labels, annotations, spec, spec_hash, generation, \
                     resource_version, finalizers, created_at, source, source_actor, source_commit, revision_hash, applied_revision) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, nextval('resource_versions'), $9, $10, $11, $12, $13, $14, $18) \
                     ON CONFLICT (kind, namespace, name) DO NOTHING RETURNING {COLUMNS} \
                 ), rev AS ( \
                     INSERT INTO revisions (uid, kind, namespace, name, generation, spec, spec_hash, source, actor, \
                     source_commit, created_at, prev_hash, hash, key_id, signature) \
                     SELECT uid, kind, namespace, name, generation, spec, spec_hash, source, source_actor, source_commit, \
                     created_at, NULL, revision_hash, $15, $16 FROM r \
                 ), ch AS ( \
                     INSERT INTO changes (kind, namespace, name, uid, op, generation, resource_version) \
                     SELECT kind, namespace, name, uid, 'create', generation, resource_version FROM r \
                 ), cl AS ( \
                     INSERT INTO name_claims (name, uid) SELECT unnest($17::text[]), uid FROM r \
                 ) SELECT {COLUMNS} FROM r"
            ))
            .bind(uid)
            .bind(kind.as_str())
            .bind(&meta.namespace)
            .bind(&meta.name)
            .bind(sqlx::types::Json(&meta.labels))
            .bind(sqlx::types::Json(&meta.annotations))
            .bind(&spec)
            .bind(&spec_hash)
            // Only what the controller reconciles waits for its cleanup.
            .bind(if kind.is_reconciled() { vec![FINALIZER.to_string()] } else { Vec::new() })
            .bind(now)
            .bind(source.kind.as_str())
            .bind(&source.actor)
            .bind(&source.commit)
            .bind(&rev_hash)
            .bind(self.signer.key_id())
            .bind(&signature)
            .bind(&claims)
            .bind(source.applied_revision())
            .fetch_optional(&mut *tx)
            .await;
            let row = match inserted {
                Ok(row) => row,
                Err(sqlx::Error::Database(db)) if db.constraint() == Some("name_claims_pkey") => {
                    return Err(self.name_taken(kind, &meta.namespace, &meta.name, &claims).await);
                }
                Err(e) => return Err(e.into()),
            };
            // Nothing inserted: created concurrently since we looked.
            let row = row.ok_or_else(|| StoreError::AlreadyExists {
                kind,
                namespace: meta.namespace.clone(),
                name: meta.name.clone(),
            })?;
            let diff = diff_documents(&Value::Null, &document_view(&row));
            return Ok(WriteOutcome { action: WriteAction::Create, diff, resource: row, replaced: None });
        };

        match mode {
            WriteMode::Create => {
                return Err(StoreError::AlreadyExists {
                    kind,
                    namespace: meta.namespace.clone(),
                    name: meta.name.clone(),
                });
            }
            WriteMode::Replace { resource_version } if resource_version != old.resource_version => {
                return Err(StoreError::Conflict {
                    kind,
                    namespace: meta.namespace.clone(),
                    name: meta.name.clone(),
                    reason: format!(
                        "resourceVersion {resource_version} is stale; the current one is {}: read it again and retry",
                        old.resource_version
                    ),
                });
            }
            _ => {}
        }
        if let Err(errors) = api_types::validate::validate_update(kind, &meta.namespace, &meta.name, &old.spec, doc) {
            return Err(StoreError::Invalid {
                kind,
                namespace: meta.namespace.clone(),
                name: meta.name.clone(),
                errors,
            });
        }
        if old.deletion_timestamp.is_some() {
            return Err(StoreError::Conflict {
                kind,
                namespace: meta.namespace.clone(),
                name: meta.name.clone(),
                reason: "it is being deleted; wait until it is gone, then create it again".into(),
            });
        }
        if old.owner_uid.is_some() && source.kind != SourceKind::Controller {
            return Err(owned_conflict(&old));
        }
        // Git owns what it declares; operational annotations set through the
        // API that the document does not declare stay.
        let mut annotations = meta.annotations.clone();
        if source.kind == SourceKind::Gitops {
            let kept: Vec<(String, String)> = crate::gitops::kept_annotations(&old.annotations.0, &meta.annotations)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            annotations.extend(kept);
        }
        let spec_changed = old.spec_hash != spec_hash;
        let meta_changed = old.labels.0 != meta.labels || old.annotations.0 != annotations;
        if !spec_changed && !meta_changed {
            return Ok(WriteOutcome { action: WriteAction::Unchanged, diff: vec![], resource: old, replaced: None });
        }
        let generation = old.generation + i64::from(spec_changed);
        let row: StoredResource = if spec_changed {
            let rev_hash = revision_hash(
                old.uid,
                kind.as_str(),
                &meta.namespace,
                &meta.name,
                generation,
                &spec_hash,
                source.kind.as_str(),
                source.actor.as_deref(),
                source.commit.as_deref(),
                now,
                old.revision_hash.as_deref(),
            );
            let signature = self.signer.sign(rev_hash.as_bytes());
            // One statement: the row, its signed revision and its change.
            sqlx::query_as(sql!(
                "WITH r AS ( \
                     UPDATE resources SET labels = $2, annotations = $3, spec = $4, spec_hash = $5, generation = $6, \
                     resource_version = nextval('resource_versions'), source = $7, source_actor = $8, source_commit = $9, \
                     revision_hash = $10, applied_revision = COALESCE($15, applied_revision) WHERE uid = $1 RETURNING {COLUMNS} \
                 ), rev AS ( \
                     INSERT INTO revisions (uid, kind, namespace, name, generation, spec, spec_hash, source, actor, \
                     source_commit, created_at, prev_hash, hash, key_id, signature) \
                     SELECT uid, kind, namespace, name, generation, spec, spec_hash, source, source_actor, source_commit, \
                     $11::timestamptz, $12::text, revision_hash, $13, $14 FROM r \
                 ), ch AS ( \
                     INSERT INTO changes (kind, namespace, name, uid, op, generation, resource_version) \
                     SELECT kind, namespace, name, uid, 'update', generation, resource_version FROM r \
                 ) SELECT {COLUMNS} FROM r"
            ))
            .bind(old.uid)
            .bind(sqlx::types::Json(&meta.labels))
            .bind(sqlx::types::Json(&annotations))
            .bind(&spec)
            .bind(&spec_hash)
            .bind(generation)
            .bind(source.kind.as_str())
            .bind(&source.actor)
            .bind(&source.commit)
            .bind(&rev_hash)
            .bind(now)
            .bind(old.revision_hash.as_deref())
            .bind(self.signer.key_id())
            .bind(&signature)
            .bind(source.applied_revision())
            .fetch_one(&mut *tx)
            .await?
        } else {
            let row = sqlx::query_as(sql!(
                "UPDATE resources SET labels = $2, annotations = $3, resource_version = nextval('resource_versions'), \
                 applied_revision = COALESCE($4, applied_revision) WHERE uid = $1 RETURNING {COLUMNS}"
            ))
            .bind(old.uid)
            .bind(sqlx::types::Json(&meta.labels))
            .bind(sqlx::types::Json(&annotations))
            .bind(source.applied_revision())
            .fetch_one(&mut *tx)
            .await?;
            append_change(tx, &row, ChangeOp::Update).await?;
            row
        };
        let diff = diff_documents(&document_view(&old), &document_view(&row));
        let replaced = Some(old.change_source());
        Ok(WriteOutcome { action: WriteAction::Update, diff, resource: row, replaced })
    }

    /// The error for a create whose AWS names another resource has claimed,
    /// naming that resource (looked up outside the failed statement's transaction).
    async fn name_taken(&self, kind: Kind, namespace: &str, name: &str, claims: &[String]) -> StoreError {
        let holder: Result<Option<(String, String, String, String)>, sqlx::Error> = sqlx::query_as(
            "SELECT c.name, r.kind, r.namespace, r.name FROM name_claims c JOIN resources r ON r.uid = c.uid \
             WHERE c.name = ANY($1) ORDER BY c.name LIMIT 1",
        )
        .bind(claims)
        .fetch_optional(&self.pool)
        .await;
        let (claim, holder) = match holder {
            Ok(Some((claim, k, ns, n))) => (claim, format!("{k} {ns}/{n}")),
            _ => (claims.join(", "), "another resource".to_string()),
        };
        StoreError::NameTaken { kind, namespace: namespace.into(), name: name.into(), claim, holder }
    }

    /// Claims the AWS names of resources created before names were claimed
    /// (first created, first served); resources whose names are taken keep
    /// working as before, and their status says `Conflict` as it did.
    ///
    /// A page at a time (in creation order, by a cursor: a resource whose
    /// names are taken stays unclaimed), so that an upgrade of a large
    /// install does not hold every row in memory at start-up.
    pub(crate) async fn backfill_claims(&self) -> Result<(), StoreError> {
        const PAGE: i64 = 500;
        let mut after: Option<(chrono::DateTime<chrono::Utc>, Uuid)> = None;
        loop {
            let unclaimed: Vec<StoredResource> = sqlx::query_as(sql!(
                "SELECT {COLUMNS} FROM resources r WHERE kind IN ('Relay', 'Worker') \
                 AND NOT EXISTS (SELECT 1 FROM name_claims c WHERE c.uid = r.uid) \
                 AND ($1::timestamptz IS NULL OR (created_at, uid) > ($1, $2)) ORDER BY created_at, uid LIMIT $3"
            ))
            .bind(after.map(|a| a.0))
            .bind(after.map(|a| a.1))
            .bind(PAGE)
            .fetch_all(&self.pool)
            .await?;
            let full = unclaimed.len() as i64 == PAGE;
            after = unclaimed.last().map(|r| (r.created_at, r.uid));
            for r in unclaimed {
                let Ok(doc) = AnyResource::from_value(r.kind, r.to_document()) else { continue };
                sqlx::query("INSERT INTO name_claims (name, uid) SELECT unnest($1::text[]), $2 ON CONFLICT DO NOTHING")
                    .bind(api_types::names::claims(&doc))
                    .bind(r.uid)
                    .execute(&self.pool)
                    .await?;
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Reads one resource.
    pub async fn get(&self, kind: Kind, namespace: &str, name: &str) -> Result<StoredResource, StoreError> {
        sqlx::query_as(sql!("SELECT {COLUMNS} FROM resources WHERE kind = $1 AND namespace = $2 AND name = $3"))
            .bind(kind.as_str())
            .bind(namespace)
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound { kind, namespace: namespace.into(), name: name.into() })
    }

    /// Lists resources in (kind, namespace, name) order, one page at a time.
    pub async fn list(&self, q: &ListQuery) -> Result<ListPage, StoreError> {
        let limit = q.limit.clamp(1, 1000);
        let mut b: QueryBuilder<Postgres> = QueryBuilder::new(format!("SELECT {COLUMNS} FROM resources WHERE TRUE"));
        if let Some(kind) = q.kind {
            b.push(" AND kind = ").push_bind(kind.as_str());
        }
        if let Some(ns) = &q.namespace {
            b.push(" AND namespace = ").push_bind(ns.clone());
        }
        if let Some(allowed) = &q.allowed_namespaces {
            b.push(" AND namespace = ANY(").push_bind(allowed.clone()).push(")");
        }
        q.selector.push_sql(&mut b);
        if let Some((k, ns, name)) = &q.after {
            b.push(" AND (kind, namespace, name) > (")
                .push_bind(k.clone())
                .push(", ")
                .push_bind(ns.clone())
                .push(", ")
                .push_bind(name.clone())
                .push(")");
        }
        b.push(" ORDER BY kind, namespace, name LIMIT ").push_bind(limit + 1);
        let mut items: Vec<StoredResource> = b.build_query_as().fetch_all(&self.pool).await?;
        let next = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().map(|r| (r.kind.as_str().to_string(), r.namespace.clone(), r.name.clone()))
        } else {
            None
        };
        Ok(ListPage { items, next })
    }

    /// Writes status through its own path: never bumps `generation`. A write
    /// that changes nothing is skipped. With a fencing token, the write is refused
    /// when the store has accepted a newer token for this resource, so a replica
    /// that lost its lease cannot overwrite newer status. A status of an older
    /// generation than the stored one is refused too (`StaleStatus`), whatever
    /// its token: a replica whose lease lapsed without its knowing (Redis lost
    /// the lease) may write newer status before the new holder writes what it
    /// read earlier, and `observedGeneration` never goes back.
    pub async fn write_status(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        uid: Uuid,
        status: &Value,
        fence: Option<i64>,
    ) -> Result<StoredResource, StoreError> {
        // The common case in one statement: the status differs, the token is
        // not stale, and the status is not of an older generation than the
        // stored one. The row lock taken by the UPDATE makes the checks see
        // the latest committed row.
        let fast: Option<StoredResource> = sqlx::query_as(sql!(
            "WITH r AS ( \
                 UPDATE resources SET status = $2, resource_version = nextval('resource_versions'), \
                 status_fence = GREATEST(status_fence, COALESCE($3, status_fence)) \
                 WHERE uid = $1 AND kind = $4 AND namespace = $5 AND name = $6 \
                 AND ($3::bigint IS NULL OR $3 >= status_fence) AND status IS DISTINCT FROM $2 \
                 AND COALESCE(($2::jsonb ->> 'observedGeneration')::bigint, 0) \
                     >= COALESCE((status ->> 'observedGeneration')::bigint, 0) \
                 RETURNING {COLUMNS} \
             ), ch AS ( \
                 INSERT INTO changes (kind, namespace, name, uid, op, generation, resource_version) \
                 SELECT kind, namespace, name, uid, 'status', generation, resource_version FROM r \
             ) SELECT {COLUMNS} FROM r"
        ))
        .bind(uid)
        .bind(status)
        .bind(fence)
        .bind(kind.as_str())
        .bind(namespace)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = fast {
            self.pending.notify_one();
            return Ok(row);
        }
        // Otherwise find out why: gone, fenced off, stale, or nothing to change.
        let mut tx = self.begin().await?;
        let old = select_for_update(&mut tx, kind, namespace, name)
            .await?
            .filter(|r| r.uid == uid)
            .ok_or_else(|| StoreError::NotFound { kind, namespace: namespace.into(), name: name.into() })?;
        if let Some(token) = fence
            && token < old.status_fence
        {
            return Err(StoreError::Fenced {
                kind,
                namespace: namespace.into(),
                name: name.into(),
                token,
                seen: old.status_fence,
            });
        }
        let observed = |s: &Value| s["observedGeneration"].as_i64().unwrap_or(0);
        if observed(status) < observed(&old.status) {
            return Err(StoreError::StaleStatus {
                kind,
                namespace: namespace.into(),
                name: name.into(),
                generation: observed(status),
                stored: observed(&old.status),
            });
        }
        let new_fence = fence.unwrap_or(old.status_fence).max(old.status_fence);
        if &old.status == status {
            if new_fence != old.status_fence {
                sqlx::query("UPDATE resources SET status_fence = $2 WHERE uid = $1")
                    .bind(uid)
                    .bind(new_fence)
                    .execute(&mut *tx)
                    .await?;
                self.commit(tx).await?;
            }
            return Ok(old);
        }
        let rv = next_version(&mut tx).await?;
        let row: StoredResource = sqlx::query_as(sql!(
            "UPDATE resources SET status = $2, resource_version = $3, status_fence = $4 WHERE uid = $1 RETURNING {COLUMNS}"
        ))
        .bind(uid)
        .bind(status)
        .bind(rv)
        .bind(new_fence)
        .fetch_one(&mut *tx)
        .await?;
        append_change(&mut tx, &row, ChangeOp::Status).await?;
        self.commit(tx).await?;
        Ok(row)
    }

    /// Asks for deletion: sets `deletionTimestamp` (once). A resource without
    /// finalizers goes at once; otherwise it goes when the last finalizer is
    /// removed. Returns the row as it now is, or `None` when it is gone.
    /// A resource another one owns (a NodeSet's member) is refused
    /// (`Conflict`): it goes when its owner scales down or is deleted.
    pub async fn request_delete(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> Result<Option<StoredResource>, StoreError> {
        let mut tx = self.begin().await?;
        let out = self.request_delete_in(&mut tx, kind, namespace, name, None).await?;
        self.commit(tx).await?;
        Ok(out)
    }

    /// Asks for the deletion of a resource `owner` owns (the controller,
    /// scaling a NodeSet down or deleting it). A resource it does not own is
    /// a `Conflict`.
    pub async fn request_delete_owned(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        owner: Uuid,
    ) -> Result<Option<StoredResource>, StoreError> {
        let mut tx = self.begin().await?;
        let out = self.request_delete_in(&mut tx, kind, namespace, name, Some(owner)).await?;
        self.commit(tx).await?;
        Ok(out)
    }

    /// Writes a document `owner` owns, as the controller (source
    /// `controller`, actor `actor`): creates it owned, or updates it when it
    /// is `owner`'s. A resource of that name that is not `owner`'s is a
    /// `Conflict`: nothing is taken over. History, the change feed and
    /// events work as for any write.
    pub async fn write_owned(&self, doc: &AnyResource, owner: Uuid, actor: &str) -> Result<WriteOutcome, StoreError> {
        let meta = doc.metadata();
        let mut tx = self.begin().await?;
        // The row is locked when it exists; when it does not, the insert
        // itself refuses one created meanwhile (nothing is taken over).
        let mode = match select_for_update(&mut tx, doc.kind(), &meta.namespace, &meta.name).await? {
            Some(old) if old.owner_uid != Some(owner) => return Err(owned_conflict(&old)),
            Some(_) => WriteMode::Upsert,
            None => WriteMode::Create,
        };
        let mut out = self.write_in(&mut tx, doc, mode, &ChangeSource::controller(actor)).await?;
        if out.action == WriteAction::Create {
            out.resource =
                sqlx::query_as(sql!("UPDATE resources SET owner_uid = $2 WHERE uid = $1 RETURNING {COLUMNS}"))
                    .bind(out.resource.uid)
                    .bind(owner)
                    .fetch_one(&mut *tx)
                    .await?;
        }
        self.commit(tx).await?;
        Ok(out)
    }

    /// The resources `owner` owns, by name.
    pub async fn owned_by(&self, owner: Uuid) -> Result<Vec<StoredResource>, StoreError> {
        Ok(sqlx::query_as(sql!("SELECT {COLUMNS} FROM resources WHERE owner_uid = $1 ORDER BY name"))
            .bind(owner)
            .fetch_all(&self.pool)
            .await?)
    }

    /// [`Store::request_delete`] inside a caller's transaction (pruning);
    /// `owner` is the owner deleting what it owns, if that is who asks.
    pub(crate) async fn request_delete_in(
        &self,
        tx: &mut PgConnection,
        kind: Kind,
        namespace: &str,
        name: &str,
        owner: Option<Uuid>,
    ) -> Result<Option<StoredResource>, StoreError> {
        let old = select_for_update(tx, kind, namespace, name).await?.ok_or_else(|| StoreError::NotFound {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        })?;
        if old.owner_uid != owner {
            return Err(owned_conflict(&old));
        }
        if old.deletion_timestamp.is_some() {
            return Ok(Some(old));
        }
        if old.finalizers.is_empty() {
            remove_row(tx, &old).await?;
            return Ok(None);
        }
        let rv = next_version(tx).await?;
        let row: StoredResource = sqlx::query_as(sql!(
            "UPDATE resources SET deletion_timestamp = $2, resource_version = $3 WHERE uid = $1 RETURNING {COLUMNS}"
        ))
        .bind(old.uid)
        .bind(now_micros())
        .bind(rv)
        .fetch_one(&mut *tx)
        .await?;
        append_change(tx, &row, ChangeOp::DeleteRequested).await?;
        Ok(Some(row))
    }

    /// Removes a finalizer (the controller, once the AWS side is clean). When the
    /// resource is being deleted and no finalizer is left, the row goes.
    pub async fn remove_finalizer(&self, uid: Uuid, finalizer: &str) -> Result<Option<StoredResource>, StoreError> {
        let mut tx = self.begin().await?;
        let Some(old) =
            sqlx::query_as::<_, StoredResource>(sql!("SELECT {COLUMNS} FROM resources WHERE uid = $1 FOR UPDATE"))
                .bind(uid)
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Ok(None);
        };
        if !old.finalizers.iter().any(|f| f == finalizer) {
            return Ok(Some(old));
        }
        let rest: Vec<String> = old.finalizers.iter().filter(|f| *f != finalizer).cloned().collect();
        if rest.is_empty() && old.deletion_timestamp.is_some() {
            remove_row(&mut tx, &old).await?;
            self.commit(tx).await?;
            return Ok(None);
        }
        let rv = next_version(&mut tx).await?;
        let row: StoredResource = sqlx::query_as(sql!(
            "UPDATE resources SET finalizers = $2, resource_version = $3 WHERE uid = $1 RETURNING {COLUMNS}"
        ))
        .bind(uid)
        .bind(&rest)
        .bind(rv)
        .fetch_one(&mut *tx)
        .await?;
        append_change(&mut tx, &row, ChangeOp::Update).await?;
        self.commit(tx).await?;
        Ok(Some(row))
    }

    /// The resources whose status records any of these AWS identifiers (service
    /// or task definition ARNs, instance ids) or whose uid is listed: the targets
    /// of an AWS event.
    pub async fn find_by_aws_refs(
        &self,
        arns: &[String],
        instance_ids: &[String],
        uids: &[Uuid],
    ) -> Result<Vec<StoredResource>, StoreError> {
        Ok(sqlx::query_as(sql!(
            "SELECT {COLUMNS} FROM resources WHERE status->'service'->>'arn' = ANY($1) \
             OR status->>'taskDefinitionArn' = ANY($1) OR status->>'instanceId' = ANY($2) OR uid = ANY($3)"
        ))
        .bind(arns)
        .bind(instance_ids)
        .bind(uids)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The tokens of node provisioner builds that node statuses record as
    /// started and not finished: the build slots in use across the install.
    pub async fn node_builds_in_flight(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT status->'build'->>'token' FROM resources WHERE kind = 'Node' \
             AND status->'build'->>'state' = 'IN_PROGRESS' AND status->'build'->>'token' IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Records an operator's request about a resource's rollout (replacing
    /// the previous one) and announces it on the change feed, so the replica
    /// holding the resource acts on it. Neither spec nor status changes.
    pub async fn request_rollout(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        request: &api_types::rollout::RolloutRequest,
    ) -> Result<StoredResource, StoreError> {
        self.set_request(kind, namespace, name, Request::Rollout(request)).await
    }

    /// Records an operator's request for a snapshot of a node's data volume
    /// now (replacing the previous one) and announces it on the change feed,
    /// like [`Store::request_rollout`].
    pub async fn request_snapshot(
        &self,
        namespace: &str,
        name: &str,
        request: &api_types::node::SnapshotRequest,
    ) -> Result<StoredResource, StoreError> {
        self.set_request(Kind::Node, namespace, name, Request::Snapshot(request)).await
    }

    async fn set_request(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        request: Request<'_>,
    ) -> Result<StoredResource, StoreError> {
        let column = match request {
            Request::Rollout(_) => "rollout_request",
            Request::Snapshot(_) => "snapshot_request",
        };
        let mut tx = self.begin().await?;
        let old = select_for_update(&mut tx, kind, namespace, name).await?.ok_or_else(|| StoreError::NotFound {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        })?;
        let rv = next_version(&mut tx).await?;
        let row: StoredResource = sqlx::query_as(sql!(
            "UPDATE resources SET {column} = $2, resource_version = $3 WHERE uid = $1 RETURNING {COLUMNS}"
        ))
        .bind(old.uid)
        .bind(sqlx::types::Json(request))
        .bind(rv)
        .fetch_one(&mut *tx)
        .await?;
        append_change(&mut tx, &row, ChangeOp::Event).await?;
        self.commit(tx).await?;
        Ok(row)
    }

    /// Announces on the change feed that something happened to a resource
    /// outside the store (an AWS event), so its owner looks again. Every replica
    /// reads the feed, so whichever replica received the event, the one holding
    /// the resource's shard reacts.
    pub async fn touch(&self, resource: &StoredResource) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        append_change(&mut tx, resource, ChangeOp::Event).await?;
        self.commit(tx).await
    }

    /// The highest change sequence number so far (the list's snapshot point).
    pub async fn current_seq(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT last FROM change_sequence WHERE id = 1").fetch_one(&self.pool).await?)
    }

    /// How many resources of `kinds` exist (not being deleted), and how many
    /// of them have no `Ready=True` condition: the fleet's health at a glance
    /// (alarms watch it).
    pub async fn readiness(&self, kinds: &[&str]) -> Result<(i64, i64), StoreError> {
        let kinds: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
        Ok(sqlx::query_as(
            "SELECT count(*)::bigint, count(*) FILTER (WHERE NOT EXISTS ( \
                 SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(status->'conditions') = 'array' \
                     THEN status->'conditions' ELSE '[]'::jsonb END) c \
                 WHERE c->>'type' = 'Ready' AND c->>'status' = 'True'))::bigint \
             FROM resources WHERE deletion_timestamp IS NULL AND kind = ANY($1)",
        )
        .bind(kinds)
        .fetch_one(&self.pool)
        .await?)
    }
}

/// The parts of a row a plan compares: labels, annotations and spec.
fn document_view(r: &StoredResource) -> Value {
    let mut metadata = serde_json::Map::new();
    if !r.labels.0.is_empty() {
        metadata.insert("labels".into(), serde_json::to_value(&r.labels.0).unwrap_or_default());
    }
    if !r.annotations.0.is_empty() {
        metadata.insert("annotations".into(), serde_json::to_value(&r.annotations.0).unwrap_or_default());
    }
    serde_json::json!({"metadata": metadata, "spec": r.spec})
}

async fn remove_row(tx: &mut PgConnection, old: &StoredResource) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM resources WHERE uid = $1").bind(old.uid).execute(&mut *tx).await?;
    append_change(tx, old, ChangeOp::Delete).await
}

/// Labels only the controller writes.
const RESERVED_LABELS: [&str; 2] = [api_types::nodeset::SET_LABEL, api_types::nodeset::ORDINAL_LABEL];

/// The refusal of a change to a resource another one owns, or of a
/// controller write to a resource it does not own.
fn owned_conflict(r: &StoredResource) -> StoreError {
    let reason = match (r.owner_uid, r.labels.0.get(api_types::nodeset::SET_LABEL)) {
        (Some(_), Some(set)) => {
            format!("it is a member of NodeSet {}/{set}: change, scale or delete the set instead", r.namespace)
        }
        (Some(_), None) => "it is owned by another resource: change that one instead".to_string(),
        (None, _) => {
            "it exists and was not created by this NodeSet: rename or delete it, nothing is taken over".to_string()
        }
    };
    StoreError::Owned { kind: r.kind, namespace: r.namespace.clone(), name: r.name.clone(), reason }
}

pub(crate) async fn select_for_update(
    tx: &mut PgConnection,
    kind: Kind,
    namespace: &str,
    name: &str,
) -> Result<Option<StoredResource>, StoreError> {
    Ok(sqlx::query_as(sql!(
        "SELECT {COLUMNS} FROM resources WHERE kind = $1 AND namespace = $2 AND name = $3 FOR UPDATE"
    ))
    .bind(kind.as_str())
    .bind(namespace)
    .bind(name)
    .fetch_optional(&mut *tx)
    .await?)
}

async fn next_version(tx: &mut PgConnection) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT nextval('resource_versions')").fetch_one(&mut *tx).await?)
}

/// An operator's request kept beside a resource, each kind in its column.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Request<'a> {
    Rollout(&'a api_types::rollout::RolloutRequest),
    Snapshot(&'a api_types::node::SnapshotRequest),
}
