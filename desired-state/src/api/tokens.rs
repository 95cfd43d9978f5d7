//! Token management over the API (admin only).

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::SharedState;
use super::body::{self, LimitedBody, P, respond};
use super::error::ApiError;
use crate::auth::{Principal, Role, Scope};

fn require_admin(p: &Principal) -> Result<(), ApiError> {
    if p.allows_everywhere(Role::Admin) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("token {:?} may not manage tokens (needs admin:*)", p.name)))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    name: String,
    scopes: Vec<String>,
}

pub async fn create(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Result<Response, ApiError> {
    require_admin(&principal)?;
    let doc = body::one_document(&headers, &body)?;
    let req: CreateToken = serde_json::from_value(doc)
        .map_err(|e| ApiError::bad_request(format!("expected {{\"name\": ..., \"scopes\": [...]}}: {e}")))?;
    let mut errors = Vec::new();
    let name_ok = !req.name.is_empty()
        && req.name.len() <= 63
        && req.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !name_ok {
        errors.push(api_types::FieldError {
            field: "name".into(),
            message: "must be 1-63 letters, digits, '-', '_' or '.'".into(),
        });
    }
    if req.scopes.is_empty() {
        errors.push(api_types::FieldError { field: "scopes".into(), message: "must not be empty".into() });
    }
    for (i, s) in req.scopes.iter().enumerate() {
        if let Err(e) = s.parse::<Scope>() {
            errors.push(api_types::FieldError { field: format!("scopes[{i}]"), message: e.to_string() });
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(api_types::ValidationErrors(errors)));
    }
    let scopes: Vec<String> =
        req.scopes.iter().filter_map(|s| s.parse::<Scope>().ok()).map(|s| s.to_string()).collect();
    let secret = state.store.create_token(&req.name, &scopes).await?;
    Ok(respond(&headers, StatusCode::CREATED, &json!({"name": req.name, "scopes": scopes, "token": secret})))
}

pub async fn list(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_admin(&principal)?;
    let tokens = state.store.list_tokens().await?;
    Ok(respond(&headers, StatusCode::OK, &json!({"items": tokens})))
}

pub async fn delete(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    P(name): P<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_admin(&principal)?;
    state.store.delete_token(&name).await?;
    Ok(respond(&headers, StatusCode::OK, &json!({"name": name, "deleted": true})))
}
