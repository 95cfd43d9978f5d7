//! `GET /v1/watch`: the change feed as Server-Sent Events, resumable from any
//! sequence number (`since=` or `Last-Event-ID`).

use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::Deserialize;

use super::body::Q;
use super::error::ApiError;
use super::resources::check_namespace;
use super::{SharedState, require};
use crate::auth::{Principal, Role};
use crate::store::ChangeFilter;

#[derive(Debug, Deserialize)]
pub struct WatchParams {
    since: Option<i64>,
    kind: Option<String>,
    namespace: Option<String>,
}

pub async fn watch(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    Q(params): Q<WatchParams>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let kind = match params.kind.as_deref() {
        None | Some("") => None,
        Some(k) => Some(k.parse().map_err(|e: api_types::meta::UnknownKind| ApiError::bad_request(e.to_string()))?),
    };
    let allowed = match &params.namespace {
        Some(ns) => {
            check_namespace(ns)?;
            require(&principal, Role::Read, ns)?;
            None
        }
        None => principal.namespaces(Role::Read),
    };
    let last_event_id = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|s| s.parse::<i64>().ok());
    let since = match last_event_id.or(params.since) {
        Some(s) if s < 0 => return Err(ApiError::bad_request("since must be ≥ 0")),
        Some(s) => s,
        // Without a position, start from now: only later changes.
        None => state.store.current_seq().await?,
    };
    // A position older than the feed keeps: 410, list again (the stream would
    // end at once anyway).
    let compacted_through = state.store.compacted_through().await?;
    if since < compacted_through {
        return Err(crate::store::StoreError::Expired { since, compacted_through }.into());
    }
    let filter = ChangeFilter { kind, namespace: params.namespace, allowed_namespaces: allowed };
    let mut shutdown = state.shutdown.subscribe();
    let stopping = async move {
        let _ = shutdown.wait_for(|s| *s).await;
    };
    let stream = state.feed.subscribe(since, filter).take_until(stopping).map(|c| {
        let data = serde_json::to_string(&c).unwrap_or_default();
        Ok(Event::default().id(c.seq.to_string()).event("change").data(data))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
