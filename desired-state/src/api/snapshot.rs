//! `POST /v1/namespaces/{ns}/nodes/{name}/snapshot`: an operator asks for a
//! snapshot of a node's data volume now (`mooring node snapshot`). The request
//! is kept beside the resource (neither spec, which GitOps would see as drift,
//! nor status), recorded as an event and announced on the change feed; the
//! controller takes the snapshot once, and its status says when it handled
//! the request (`status.backup.requestHandled`).

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use api_types::node::SnapshotRequest;
use api_types::{EventType, Kind};

use super::SharedState;
use super::body::{P, respond};
use super::error::ApiError;
use super::resources::authorize;
use crate::auth::{Principal, Role};

/// Records a snapshot request for a node. The write role on the namespace is
/// needed; 404 for another kind; 409 for a node being deleted.
pub async fn snapshot(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    P((namespace, plural, name)): P<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let kind = authorize(&principal, &plural, &namespace, Role::Write)?;
    if kind != Kind::Node {
        return Err(ApiError::not_found(format!("{plural} have no data volume to snapshot (nodes do)")));
    }
    let current = state.store.get(kind, &namespace, &name).await?;
    if current.deletion_timestamp.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "BeingDeleted",
            format!("node {namespace}/{name} is being deleted; no snapshot is taken now"),
        ));
    }
    let request = SnapshotRequest { by: principal.name.clone(), at: chrono::Utc::now() };
    let row = state.store.request_snapshot(&namespace, &name, &request).await?;
    let volume = current.status.get("volumeId").and_then(serde_json::Value::as_str);
    let message = match volume {
        Some(v) => format!("{} asked for a snapshot of {v}", principal.name),
        None => format!("{} asked for a snapshot (taken once the node has its data volume)", principal.name),
    };
    state.store.record_event(&row, EventType::Normal, "SnapshotRequested", &message).await?;
    Ok(respond(&headers, StatusCode::ACCEPTED, &serde_json::json!({"request": request, "volumeId": volume})))
}
