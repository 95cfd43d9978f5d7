//! `GET /v1/namespaces/{ns}/{plural}/{name}/rendered`: what the controller
//! would hand AWS for a resource (task definition or user data), through the
//! [`crate::preview::Preview`] the server was assembled with.

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Serialize;

use super::SharedState;
use super::body::{P, respond};
use super::error::ApiError;
use super::resources::authorize;
use crate::auth::{Principal, Role};
use crate::preview::{PreviewError, Rendered};

/// The answer: which resource, and its rendering.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RenderedResource<'a> {
    kind: api_types::Kind,
    namespace: &'a str,
    name: &'a str,
    generation: i64,
    #[serde(flatten)]
    rendered: Rendered,
}

/// The rendering of one resource; the read role is enough. 404 for a kind
/// without a rendering and on a server without a renderer; 409 when the stored
/// spec or status no longer reads as the kind's.
pub async fn rendered(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    P((namespace, plural, name)): P<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let kind = authorize(&principal, &plural, &namespace, Role::Read)?;
    let r = state.store.get(kind, &namespace, &name).await?;
    let Some(preview) = &state.preview else {
        return Err(ApiError::not_found(
            "this server renders nothing: no renderer is configured (API started without the runners)",
        ));
    };
    let rendered = preview.render(&r).map_err(|e| match e {
        PreviewError::NotRendered(_) => ApiError::not_found(e.to_string()),
        PreviewError::Unreadable { .. } => ApiError::new(StatusCode::CONFLICT, "Unrenderable", e.to_string()),
    })?;
    let body = RenderedResource { kind, namespace: &namespace, name: &name, generation: r.generation, rendered };
    Ok(respond(&headers, StatusCode::OK, &body))
}
