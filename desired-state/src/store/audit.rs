//! `mooring audit verify`: walks every revision chain and names the first row
//! that does not verify.

use std::collections::HashMap;

use serde::Serialize;
use uuid::Uuid;

use super::revisions::{REVISION_COLUMNS, Revision};
use super::{Store, StoreError};
use crate::signing;

/// The first row that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditFailure {
    /// The row's `id` in `revisions`.
    pub id: i64,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub generation: i64,
    pub reason: String,
}

impl std::fmt::Display for AuditFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "revision id {} ({} {}/{} generation {}): {}",
            self.id, self.kind, self.namespace, self.name, self.generation, self.reason
        )
    }
}

/// What `audit verify` checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    pub rows: u64,
    pub chains: u64,
    pub keys: Vec<String>,
    pub failure: Option<AuditFailure>,
}

impl Store {
    /// Verifies every revision: the spec hash matches the spec, the row hash
    /// matches the row, each row links to the previous generation's hash with no
    /// gap, and the signature verifies with a known key. `trusted_keys` (hex public
    /// keys), when given, replaces the keys recorded in the database.
    pub async fn audit_verify(&self, trusted_keys: Option<Vec<String>>) -> Result<AuditReport, StoreError> {
        let keys: HashMap<String, String> = match trusted_keys {
            Some(list) => list
                .into_iter()
                .filter_map(|pk| {
                    let bytes: [u8; 32] = hex::decode(&pk).ok()?.try_into().ok()?;
                    let vk = ed25519_dalek::VerifyingKey::from_bytes(&bytes).ok()?;
                    Some((signing::key_id(&vk), pk))
                })
                .collect(),
            None => sqlx::query_as::<_, (String, String)>("SELECT key_id, public_key FROM signing_keys")
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .collect(),
        };
        let mut key_ids: Vec<String> = keys.keys().cloned().collect();
        key_ids.sort();
        let mut report = AuditReport { rows: 0, chains: 0, keys: key_ids, failure: None };

        // Stream in (uid, generation) order, page by page, so the walk is bounded in memory.
        let mut after: (Uuid, i64) = (Uuid::nil(), i64::MIN);
        let mut prev: Option<Revision> = None;
        loop {
            let page: Vec<Revision> = sqlx::query_as(sql!(
                "SELECT {REVISION_COLUMNS} FROM revisions WHERE (uid, generation) > ($1, $2) \
                 ORDER BY uid, generation LIMIT 1000"
            ))
            .bind(after.0)
            .bind(after.1)
            .fetch_all(&self.pool)
            .await?;
            let Some(last) = page.last() else { break };
            after = (last.uid, last.generation);
            for row in page {
                report.rows += 1;
                let same_chain = prev.as_ref().is_some_and(|p| p.uid == row.uid);
                if !same_chain {
                    report.chains += 1;
                }
                if let Some(reason) = check_row(&row, prev.as_ref().filter(|_| same_chain), &keys) {
                    report.failure = Some(AuditFailure {
                        id: row.id,
                        kind: row.kind.clone(),
                        namespace: row.namespace.clone(),
                        name: row.name.clone(),
                        generation: row.generation,
                        reason,
                    });
                    return Ok(report);
                }
                prev = Some(row);
            }
        }
        report.failure = self.check_heads().await?;
        Ok(report)
    }

    /// Every resource's row names the newest revision of its chain (its
    /// generation and hash): deleting the newest revisions, which leaves a
    /// chain that verifies on its own, is caught here.
    async fn check_heads(&self) -> Result<Option<AuditFailure>, StoreError> {
        let row: Option<HeadMismatch> = sqlx::query_as(
            "SELECT r.kind, r.namespace, r.name, r.generation, h.id, h.generation \
                 FROM resources r LEFT JOIN LATERAL ( \
                     SELECT id, generation, hash FROM revisions v WHERE v.uid = r.uid ORDER BY generation DESC LIMIT 1 \
                 ) h ON TRUE \
                 WHERE h.hash IS DISTINCT FROM r.revision_hash OR h.generation IS DISTINCT FROM r.generation \
                 ORDER BY r.kind, r.namespace, r.name LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(kind, namespace, name, generation, id, head)| AuditFailure {
            id: id.unwrap_or(0),
            kind,
            namespace,
            name,
            generation,
            reason: match head {
                Some(h) => format!(
                    "the resource is at generation {generation} but its newest revision is generation {h} \
                     (revisions were deleted or the row was altered)"
                ),
                None => "the resource has no revisions (its history was deleted)".into(),
            },
        }))
    }
}

/// A resource whose row and newest revision disagree: kind, namespace, name,
/// the row's generation, and the newest revision's id and generation.
type HeadMismatch = (String, String, String, i64, Option<i64>, Option<i64>);

fn check_row(row: &Revision, prev: Option<&Revision>, keys: &HashMap<String, String>) -> Option<String> {
    let spec_hash = api_types::hash::spec_hash(&row.spec).0;
    if spec_hash != row.spec_hash {
        return Some("the spec does not match its recorded hash (the spec was altered)".into());
    }
    match prev {
        None if row.generation != 1 || row.prev_hash.is_some() => {
            return Some(format!("the chain starts at generation {} (earlier revisions are missing)", row.generation));
        }
        Some(p) if row.generation != p.generation + 1 => {
            return Some(format!("generation {} follows {} (a revision is missing)", row.generation, p.generation));
        }
        Some(p) if row.prev_hash.as_deref() != Some(p.hash.as_str()) => {
            return Some("prevHash does not match the previous revision's hash (the chain was broken)".into());
        }
        _ => {}
    }
    if row.expected_hash() != row.hash {
        return Some("the row does not match its hash (a field was altered)".into());
    }
    let Some(pk) = keys.get(&row.key_id) else {
        return Some(format!("signed with unknown key {}", row.key_id));
    };
    if !signing::verify(pk, row.hash.as_bytes(), &row.signature) {
        return Some(format!("the signature does not verify with key {}", row.key_id));
    }
    None
}
