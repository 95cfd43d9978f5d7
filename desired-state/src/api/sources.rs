//! GitOps sources over the API: list them, read one, suspend and resume their
//! syncs (`mooring sync --suspend NAME` / `--resume NAME`).

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::body::{self, LimitedBody, respond};
use super::error::ApiError;
use super::{SharedState, require};
use crate::auth::{Principal, Role};
use crate::gitops;

/// The body of a suspend: why (optional, shown to whoever's sync is refused).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Suspend {
    #[serde(default)]
    reason: Option<String>,
}

/// Longest reason kept.
pub(crate) const MAX_REASON: usize = 1024;

/// `GET /v1/sources`: every source that synced or was suspended.
pub async fn list(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    may_read(&principal)?;
    let items = state.store.sources().await?;
    Ok(respond(&headers, StatusCode::OK, &json!({ "items": items })))
}

/// `GET /v1/sources/{name}`.
pub async fn read(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    may_read(&principal)?;
    let source =
        state.store.source(&name).await?.ok_or_else(|| {
            ApiError::not_found(format!("GitOps source {name:?} has never synced nor been suspended"))
        })?;
    Ok(respond(&headers, StatusCode::OK, &source))
}

/// `POST /v1/sources/{name}/suspend`: later syncs of the source are refused (409).
pub async fn suspend(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    headers: HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Result<Response, ApiError> {
    may_write(&state, &principal, &name).await?;
    let req: Suspend = if body.iter().all(u8::is_ascii_whitespace) {
        Suspend::default()
    } else {
        serde_json::from_value(body::one_document(&headers, &body)?)
            .map_err(|e| ApiError::bad_request(format!("expected {{\"reason\": \"...\"}}: {e}")))?
    };
    let reason: Option<String> = req.reason.map(|r| r.chars().take(MAX_REASON).collect());
    let source = state.store.set_source_suspended(&name, true, &principal.name, reason.as_deref()).await?;
    Ok(respond(&headers, StatusCode::OK, &source))
}

/// `POST /v1/sources/{name}/resume`.
pub async fn resume(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    may_write(&state, &principal, &name).await?;
    let source = state.store.set_source_suspended(&name, false, &principal.name, None).await?;
    Ok(respond(&headers, StatusCode::OK, &source))
}

/// Reading sources needs read scope somewhere.
fn may_read(principal: &Principal) -> Result<(), ApiError> {
    if principal.namespaces(Role::Read).is_some_and(|ns| ns.is_empty()) {
        return Err(ApiError::forbidden(format!("token {:?} may not read in any namespace", principal.name)));
    }
    Ok(())
}

/// Suspending or resuming a source needs write scope in every namespace its
/// resources are in (and somewhere, when it has none yet).
async fn may_write(state: &SharedState, principal: &Principal, name: &str) -> Result<(), ApiError> {
    if !gitops::valid_source_name(name) {
        return Err(ApiError::bad_request(format!("{name:?} is not a valid source name (a label value)")));
    }
    if principal.namespaces(Role::Write).is_some_and(|ns| ns.is_empty()) {
        return Err(ApiError::forbidden(format!("token {:?} may not write in any namespace", principal.name)));
    }
    for ns in state.store.source_namespaces(name).await? {
        require(principal, Role::Write, &ns)?;
    }
    Ok(())
}
