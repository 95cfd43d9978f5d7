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
use crate::gitops::{self, MANAGED_BY, SOURCE_LABEL};
use crate::plan::{DiffOp, FieldChange};
use crate::selector::{Requirement, Selector};
use crate::store::{ChangeSource, ListQuery, SourceKind, StoreError, WriteAction, WriteMode};

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
    /// The GitOps source (repository) the documents come from: stored as the
    /// `mooring/source` label, and the scope of pruning.
    source_name: Option<String>,
    /// The share of the source's resources a prune may take without
    /// `allowMassPrune` (default [`gitops::DEFAULT_MAX_PRUNE_PERCENT`]).
    max_prune_percent: Option<u8>,
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
    /// For an update: where the version it replaces came from (`api` there,
    /// in a GitOps plan, is drift: a change made outside git).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced: Option<ChangeSource>,
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
    /// In a dry run of a suspended source: the suspension, since the real sync
    /// would be refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_suspended: Option<crate::store::GitopsSource>,
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
    if params.prune && source.kind != SourceKind::Gitops {
        return Err(ApiError::bad_request("prune=true needs source=gitops: only GitOps-managed resources are pruned"));
    }
    let source_name = match (&params.source_name, source.kind) {
        (Some(name), SourceKind::Gitops) if gitops::valid_source_name(name) => Some(name.as_str()),
        (Some(name), SourceKind::Gitops) => {
            return Err(ApiError::bad_request(format!(
                "sourceName {name:?} is not a valid label value (1-63 letters, digits, '.', '_' or '-', alphanumeric at both ends)"
            )));
        }
        (Some(_), _) => return Err(ApiError::bad_request("sourceName needs source=gitops")),
        (None, _) => None,
    };
    if params.prune && source_name.is_none() {
        return Err(ApiError::bad_request(
            "prune=true needs sourceName: a sync prunes only the resources of its own source",
        ));
    }
    let max_prune_percent = params.max_prune_percent.unwrap_or(gitops::DEFAULT_MAX_PRUNE_PERCENT);
    if max_prune_percent > 100 {
        return Err(ApiError::bad_request(format!("maxPrunePercent {max_prune_percent} is more than 100")));
    }
    let selector =
        Selector::parse(params.selector.as_deref().unwrap_or("")).map_err(|e| ApiError::bad_request(e.to_string()))?;

    // Authorize what can be known before reading the body: a token that may
    // write nowhere is refused without the body being parsed.
    if principal.namespaces(Role::Write).is_some_and(|ns| ns.is_empty()) {
        return Err(ApiError::forbidden(format!("token {:?} may not write in any namespace", principal.name)));
    }
    let docs = body::documents(&headers, &body)?;
    let resources = validate_all(docs, &source, source_name)?;
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
        let scope = PruneScope {
            source_name: source_name.unwrap_or_default(),
            selector: &selector,
            allow_mass_prune: params.allow_mass_prune,
            max_percent: max_prune_percent,
            prune_policies: params.prune_policies,
        };
        prune_candidates(&state, &principal, &scope, &keep).await?
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
        match write_all(&state, &source, source_name, &resources, &order, &doomed, params.dry_run).await {
            Err(StoreError::Contention(e)) if attempt < MAX_ATTEMPTS => {
                tracing::info!(error = %e, attempt, "apply collided with a concurrent write; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(10 * u64::from(attempt))).await;
                attempt += 1;
            }
            other => break other?,
        }
    };
    let mut result = result;
    if let (true, Some(name)) = (params.dry_run, source_name) {
        result.source_suspended = state.store.source(name).await?.filter(|s| s.suspended);
    }
    Ok(respond(&headers, StatusCode::OK, &result))
}

/// Writes (or, for a dry run, plans and rolls back) every document in the
/// order `order` gives, then requests deletion of `doomed`, in one
/// transaction. The plan lists the documents in the body's order. A sync of a
/// named source first records the commit on the source, which is refused while
/// the source is suspended (a dry run is still planned).
async fn write_all(
    state: &SharedState,
    source: &ChangeSource,
    source_name: Option<&str>,
    resources: &[AnyResource],
    order: &[usize],
    doomed: &[(Kind, String, String)],
    dry_run: bool,
) -> Result<ApplyResult, StoreError> {
    let mut tx = state.store.begin().await?;
    if let (Some(name), Some(commit), false) = (source_name, source.commit.as_deref(), dry_run) {
        state.store.record_sync_in(&mut tx, name, commit, source.actor.as_deref()).await?;
    }
    let mut planned: Vec<Option<PlanItem>> = vec![None; resources.len()];
    let mut summary = Summary::default();
    for &i in order {
        let r = &resources[i];
        let out = state.store.write_in(&mut tx, r, WriteMode::Upsert, source).await?;
        if let Some(owner) = taken_from_another_source(&out.diff) {
            return Err(StoreError::Conflict {
                kind: r.kind(),
                namespace: r.metadata().namespace.clone(),
                name: r.metadata().name.clone(),
                reason: format!(
                    "it belongs to GitOps source {owner:?} ({SOURCE_LABEL}); a sync never takes over another source's resources"
                ),
            });
        }
        count(&mut summary, out.action);
        planned[i] = Some(PlanItem {
            kind: r.kind(),
            namespace: r.metadata().namespace.clone(),
            name: r.metadata().name.clone(),
            action: out.action,
            generation: Some(out.resource.generation),
            diff: out.diff,
            replaced: out.replaced,
        });
    }
    let mut items: Vec<PlanItem> = planned.into_iter().flatten().collect();
    for (kind, namespace, name) in doomed {
        state.store.request_delete_in(&mut tx, *kind, namespace, name, None).await?;
        summary.delete += 1;
        items.push(PlanItem {
            kind: *kind,
            namespace: namespace.clone(),
            name: name.clone(),
            action: WriteAction::Delete,
            generation: None,
            diff: vec![],
            replaced: None,
        });
    }
    if dry_run {
        tx.rollback().await?;
    } else {
        state.store.commit(tx).await?;
    }
    Ok(ApplyResult { dry_run, summary, items, source_suspended: None })
}

/// The source that owned a resource, when a write moves its
/// `mooring/source` label from one source to another.
fn taken_from_another_source(diff: &[FieldChange]) -> Option<String> {
    let path = format!("metadata.labels.{SOURCE_LABEL}");
    diff.iter().find(|c| c.op == DiffOp::Replace && c.path == path).map(|c| match &c.from {
        Some(Value::String(s)) => s.clone(),
        other => other.as_ref().map(Value::to_string).unwrap_or_default(),
    })
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
/// the managed-by label and, with a source name, the source label (a document
/// that names another source is invalid).
fn validate_all(
    docs: Vec<Value>,
    source: &ChangeSource,
    source_name: Option<&str>,
) -> Result<Vec<AnyResource>, ApiError> {
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
                if source.kind == SourceKind::Gitops {
                    let labels = &mut r.metadata_mut().labels;
                    labels.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
                    if let Some(name) = source_name {
                        match labels.insert(SOURCE_LABEL.into(), name.into()) {
                            Some(declared) if declared != name => errors.push(FieldError {
                                field: format!("items[{i}].metadata.labels.{SOURCE_LABEL}"),
                                message: format!("names source {declared:?}, but this sync is source {name:?}"),
                            }),
                            _ => {}
                        }
                    }
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

/// What a prune may take: the resources of one source matching a selector,
/// within the share the guard allows.
struct PruneScope<'a> {
    source_name: &'a str,
    selector: &'a Selector,
    allow_mass_prune: bool,
    max_percent: u8,
    prune_policies: bool,
}

/// The resources of the sync's source (labelled `mooring/managed-by=gitops` and
/// `mooring/source=NAME`) matching the selector that the body no longer holds,
/// highest sync wave first. The guard ([`gitops::check_prune`]) refuses to prune
/// all of them, or more than the allowed share, without `allow_mass_prune`: an
/// empty or truncated checkout must not wipe the fleet. Resources annotated
/// `mooring/prune: disabled` are never pruned. Policies are left alone unless
/// `prune_policies` (and then need the admin scope that writing them needs).
async fn prune_candidates(
    state: &SharedState,
    principal: &Principal,
    scope: &PruneScope<'_>,
    keep: &BTreeSet<(Kind, String, String)>,
) -> Result<Vec<(Kind, String, String)>, ApiError> {
    let mut sel = scope.selector.clone();
    sel.0.push(Requirement::Equals(MANAGED_BY.0.into(), MANAGED_BY.1.into()));
    sel.0.push(Requirement::Equals(SOURCE_LABEL.into(), scope.source_name.into()));
    let allowed = principal.namespaces(Role::Write);
    let mut managed = 0usize;
    let mut doomed: Vec<(i32, (Kind, String, String))> = Vec::new();
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
            // Policies only when asked; resources already being deleted are
            // neither candidates nor part of the share.
            if (kind == Kind::Policy && !(scope.prune_policies && principal.allows(Role::Admin, &r.namespace)))
                || r.deletion_timestamp.is_some()
            {
                continue;
            }
            managed += 1;
            let key = (kind, r.namespace.clone(), r.name.clone());
            if !keep.contains(&key) && !gitops::prune_disabled(&r.annotations.0) {
                doomed.push((gitops::sync_wave(&r.annotations.0).unwrap_or(0), key));
            }
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    gitops::check_prune(doomed.len(), managed, scope.max_percent, scope.allow_mass_prune).map_err(|refusal| {
        ApiError::conflict(format!(
            "GitOps source {:?}: {refusal}; if that is intended, pass allowMassPrune=true (mooring sync --allow-mass-prune)",
            scope.source_name
        ))
    })?;
    Ok(gitops::prune_order(doomed))
}
