//! `POST /v1/apply`: many documents, validated together, written in one
//! transaction (or planned and rolled back for a dry run), with optional pruning
//! of GitOps-managed resources that left the source.

use std::collections::{BTreeMap, BTreeSet};

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use api_types::{AnyResource, FieldError, Kind, ValidationErrors, validate_document};

use super::admit::{Paths, admit};
use super::body::{self, LimitedBody, Q, respond};
use super::error::ApiError;
use super::{SharedState, require};
use crate::auth::{Principal, Role};
use crate::plan::FieldChange;
use crate::selector::{Requirement, Selector};
use crate::store::{ChangeSource, ListQuery, StoreError, WriteAction, WriteMode};

/// The label GitOps puts on what it manages; only such resources are pruned.
pub const MANAGED_BY: (&str, &str) = ("mooring/managed-by", "gitops");
/// The annotation that protects a resource from pruning.
pub const PRUNE_ANNOTATION: (&str, &str) = ("mooring/prune", "disabled");

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyParams {
    #[serde(default)]
    dry_run: bool,
    source: Option<String>,
    revision: Option<String>,
    #[serde(default)]
    prune: bool,
    selector: Option<String>,
    #[serde(default)]
    allow_mass_prune: bool,
    /// Policies are pruned only when asked: removing one loosens admission.
    #[serde(default)]
    prune_policies: bool,
}

/// One line of the plan.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanItem {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub action: WriteAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diff: Vec<FieldChange>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub create: u32,
    pub update: u32,
    pub unchanged: u32,
    pub delete: u32,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyResult {
    pub dry_run: bool,
    pub summary: Summary,
    pub items: Vec<PlanItem>,
}

pub async fn apply(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    Q(params): Q<ApplyParams>,
    headers: HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Result<Response, ApiError> {
    let source = match params.source.as_deref().unwrap_or("api") {
        "api" => ChangeSource::api(&principal.name),
        "gitops" => {
            let commit = params.revision.clone().ok_or_else(|| {
                ApiError::bad_request("source=gitops needs revision=<commit SHA>, recorded on every revision written")
            })?;
            if !(7..=64).contains(&commit.len()) || !commit.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(ApiError::bad_request(format!("revision {commit:?} is not a git commit SHA")));
            }
            ChangeSource::gitops(&principal.name, commit)
        }
        other => return Err(ApiError::bad_request(format!("unknown source {other:?}: use api or gitops"))),
    };
    if params.prune && source.kind != crate::store::SourceKind::Gitops {
        return Err(ApiError::bad_request("prune=true needs source=gitops: only GitOps-managed resources are pruned"));
    }
    let selector =
        Selector::parse(params.selector.as_deref().unwrap_or("")).map_err(|e| ApiError::bad_request(e.to_string()))?;

    // Authorize what can be known before reading the body: a token that may
    // write nowhere is refused without the body being parsed.
    if principal.namespaces(Role::Write).is_some_and(|ns| ns.is_empty()) {
        return Err(ApiError::forbidden(format!("token {:?} may not write in any namespace", principal.name)));
    }
    let docs = body::documents(&headers, &body)?;
    let resources = validate_all(docs, &source)?;
    for r in &resources {
        // Policies are written with admin scope only (cluster-scoped ones: admin:*).
        let role = if r.kind() == Kind::Policy { Role::Admin } else { Role::Write };
        require(&principal, role, &r.metadata().namespace)?;
    }
    // Judged by the policies stored before this apply, dry runs included.
    let refs: Vec<&AnyResource> = resources.iter().collect();
    admit(&state, &refs, &source, Paths::Indexed).await?;

    let doomed = if params.prune {
        let keep: BTreeSet<(Kind, String, String)> =
            resources.iter().map(|r| (r.kind(), r.metadata().namespace.clone(), r.metadata().name.clone())).collect();
        prune_candidates(&state, &principal, &selector, &keep, params.allow_mass_prune, params.prune_policies).await?
    } else {
        Vec::new()
    };

    // Rows are written, and so locked, in one canonical order whatever the
    // body's order, so two applies of overlapping documents wait for each
    // other instead of deadlocking. A collision that still happens (pruning
    // locks rows outside the body) is retried a bounded number of times, then
    // answered 409.
    let mut order: Vec<usize> = (0..resources.len()).collect();
    order.sort_by(|&a, &b| key_of(&resources[a]).cmp(&key_of(&resources[b])));
    let mut attempt = 1;
    let result = loop {
        match write_all(&state, &source, &resources, &order, &doomed, params.dry_run).await {
            Err(StoreError::Contention(e)) if attempt < MAX_ATTEMPTS => {
                tracing::info!(error = %e, attempt, "apply collided with a concurrent write; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(10 * u64::from(attempt))).await;
                attempt += 1;
            }
            other => break other?,
        }
    };
    Ok(respond(&headers, StatusCode::OK, &result))
}

/// Writes (or, for a dry run, plans and rolls back) every document in the
/// order `order` gives, then requests deletion of `doomed`, in one
/// transaction. The plan lists the documents in the body's order.
async fn write_all(
    state: &SharedState,
    source: &ChangeSource,
    resources: &[AnyResource],
    order: &[usize],
    doomed: &[(Kind, String, String)],
    dry_run: bool,
) -> Result<ApplyResult, StoreError> {
    let mut tx = state.store.pool().begin().await?;
    let mut planned: Vec<Option<PlanItem>> = vec![None; resources.len()];
    let mut summary = Summary::default();
    for &i in order {
        let r = &resources[i];
        let out = state.store.write_in(&mut tx, r, WriteMode::Upsert, source).await?;
        count(&mut summary, out.action);
        planned[i] = Some(PlanItem {
            kind: r.kind(),
            namespace: r.metadata().namespace.clone(),
            name: r.metadata().name.clone(),
            action: out.action,
            generation: Some(out.resource.generation),
            diff: out.diff,
        });
    }
    let mut items: Vec<PlanItem> = planned.into_iter().flatten().collect();
    for (kind, namespace, name) in doomed {
        state.store.request_delete_in(&mut tx, *kind, namespace, name).await?;
        summary.delete += 1;
        items.push(PlanItem {
            kind: *kind,
            namespace: namespace.clone(),
            name: name.clone(),
            action: WriteAction::Delete,
            generation: None,
            diff: vec![],
        });
    }
    if dry_run {
        tx.rollback().await?;
    } else {
        state.store.commit(tx).await?;
    }
    Ok(ApplyResult { dry_run, summary, items })
}

/// How often an apply that collided with a concurrent one is tried.
const MAX_ATTEMPTS: u32 = 4;

/// (kind, namespace, name): the canonical order in which rows are locked.
fn key_of(r: &AnyResource) -> (Kind, &str, &str) {
    (r.kind(), r.metadata().namespace.as_str(), r.metadata().name.as_str())
}

fn count(s: &mut Summary, a: WriteAction) {
    match a {
        WriteAction::Create => s.create += 1,
        WriteAction::Update => s.update += 1,
        WriteAction::Unchanged => s.unchanged += 1,
        WriteAction::Delete => s.delete += 1,
    }
}

/// Validates every document; on failure reports every violation of every
/// document, prefixed with its index (`items[2].spec.x`). GitOps documents get
/// the managed-by label.
fn validate_all(docs: Vec<Value>, source: &ChangeSource) -> Result<Vec<AnyResource>, ApiError> {
    let mut errors: Vec<FieldError> = Vec::new();
    let mut out = Vec::with_capacity(docs.len());
    let mut seen: BTreeMap<(Kind, String, String), usize> = BTreeMap::new();
    for (i, doc) in docs.into_iter().enumerate() {
        match validate_document(doc) {
            Ok(mut r) => {
                let key = (r.kind(), r.metadata().namespace.clone(), r.metadata().name.clone());
                if let Some(first) = seen.insert(key.clone(), i) {
                    errors.push(FieldError {
                        field: format!("items[{i}].metadata.name"),
                        message: format!("{} {}/{} is also items[{first}]", key.0, key.1, key.2),
                    });
                }
                if source.kind == crate::store::SourceKind::Gitops {
                    r.metadata_mut().labels.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
                }
                out.push(r);
            }
            Err(e) => errors.extend(e.0.into_iter().map(|f| FieldError {
                field: if f.field.is_empty() { format!("items[{i}]") } else { format!("items[{i}].{}", f.field) },
                message: f.message,
            })),
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(ApiError::invalid(ValidationErrors(errors))) }
}

/// GitOps-managed resources matching `selector` that the body no longer holds.
/// Refuses to prune all of them, or more than half, without `allow_mass_prune`:
/// an empty or truncated checkout must not wipe the fleet. Policies are left
/// alone unless `prune_policies` (and then need the admin scope that writing
/// them needs).
async fn prune_candidates(
    state: &SharedState,
    principal: &Principal,
    selector: &Selector,
    keep: &BTreeSet<(Kind, String, String)>,
    allow_mass_prune: bool,
    prune_policies: bool,
) -> Result<Vec<(Kind, String, String)>, ApiError> {
    let mut sel = selector.clone();
    sel.0.push(Requirement::Equals(MANAGED_BY.0.into(), MANAGED_BY.1.into()));
    let allowed = principal.namespaces(Role::Write);
    let mut managed = 0usize;
    let mut doomed = Vec::new();
    let mut after = None;
    loop {
        let page = state
            .store
            .list(&ListQuery {
                kind: None,
                namespace: None,
                allowed_namespaces: allowed.clone(),
                selector: sel.clone(),
                limit: 1000,
                after: after.clone(),
            })
            .await?;
        for r in &page.items {
            let kind = r.kind;
            if kind == Kind::Policy && !(prune_policies && principal.allows(Role::Admin, &r.namespace)) {
                continue;
            }
            managed += 1;
            let key = (kind, r.namespace.clone(), r.name.clone());
            let protected = r.annotations.0.get(PRUNE_ANNOTATION.0).map(String::as_str) == Some(PRUNE_ANNOTATION.1);
            if !keep.contains(&key) && !protected && r.deletion_timestamp.is_none() {
                doomed.push(key);
            }
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    if !allow_mass_prune && !doomed.is_empty() && (doomed.len() == managed || doomed.len() * 2 > managed) {
        return Err(ApiError::conflict(format!(
            "refusing to prune {} of {} GitOps-managed resources ({}); if that is intended, pass allowMassPrune=true",
            doomed.len(),
            managed,
            if doomed.len() == managed { "all of them" } else { "more than half" }
        )));
    }
    Ok(doomed)
}
