//! Endpoints about the API itself: schemas, OpenAPI, health, metrics.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::SharedState;
use super::body::P;
use super::error::ApiError;
use crate::auth::{Principal, Role};

pub async fn schema(P(kind): P<String>) -> Result<Response, ApiError> {
    let kind: api_types::Kind =
        kind.parse().map_err(|e: api_types::meta::UnknownKind| ApiError::not_found(e.to_string()))?;
    Ok(axum::Json(api_types::schema::schema_for_kind(kind)).into_response())
}

pub async fn openapi() -> Response {
    axum::Json(super::openapi::document()).into_response()
}

/// Alive as long as the process answers.
pub async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// Ready when Postgres and Redis answer; also says which AWS account and
/// region this replica acts in.
pub async fn readyz(State(state): State<SharedState>) -> Response {
    let pg = match state.store.ping().await {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("unavailable: {e}"),
    };
    let redis = match &state.redis {
        None => "not configured".to_string(),
        Some(r) => match r.ping().await {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("unavailable: {e}"),
        },
    };
    let ok = pg == "ok" && (redis == "ok" || redis == "not configured");
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let mut body = json!({"status": if ok { "ok" } else { "unavailable" }, "postgres": pg, "redis": redis});
    if let Some(cloud) = &state.cloud {
        body["aws"] = json!(cloud);
    }
    (status, axum::Json(body)).into_response()
}

/// `/metrics` for a caller with a cluster-wide scope (`metrics`, or any role
/// on `*`): the series name resources of every namespace.
pub async fn metrics_authorized(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
) -> Result<Response, ApiError> {
    if !principal.allows_everywhere(Role::Metrics) {
        return Err(ApiError::forbidden(format!(
            "token {:?} may not read metrics (needs the `metrics` scope, or a role on every namespace)",
            principal.name
        )));
    }
    Ok(metrics(State(state)).await)
}

/// The Prometheus text of every metric this replica exports.
pub async fn metrics(State(state): State<SharedState>) -> Response {
    // Encoding a large fleet's gauges takes a while: off the async workers.
    let text = match tokio::task::spawn_blocking(move || state.metrics.encode()).await {
        Ok(text) => text,
        Err(e) => return ApiError::internal("encoding the metrics", &e).into_response(),
    };
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("no such path; see /openapi.json")
}
