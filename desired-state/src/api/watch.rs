//! `GET /v1/watch`: the change feed as Server-Sent Events, resumable from any
//! sequence number (`since=` or `Last-Event-ID`).
//!
//! With `bookmarks=true`, a filtered watch also says how far it has read
//! (Kubernetes' watch bookmarks): a `bookmark` event whose id is the feed
//! position passed, at most every [`BOOKMARK_EVERY`], when changes that were
//! not the watcher's went by. Its id is the one to resume from, so a quiet
//! filter's position keeps up with the feed and does not fall out of the
//! retention window.

use std::convert::Infallible;
use std::time::Duration;

use tokio::time::Instant;

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
use crate::store::{ChangeFilter, FeedItem};

/// The shortest time between two bookmarks of one watch.
pub const BOOKMARK_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize)]
pub struct WatchParams {
    since: Option<i64>,
    kind: Option<String>,
    namespace: Option<String>,
    #[serde(default)]
    bookmarks: bool,
}

/// Whether a bookmark of the position reached goes out now: bookmarks are
/// asked for, and none went out in the last [`BOOKMARK_EVERY`] (the first one
/// goes at once).
fn bookmark_due(asked: bool, last: Option<Instant>, now: Instant) -> bool {
    asked && last.is_none_or(|t| now.duration_since(t) >= BOOKMARK_EVERY)
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
    let bookmarks = params.bookmarks;
    let mut last_bookmark = None;
    let stream = state.feed.follow(since, filter).take_until(stopping).filter_map(move |item| {
        let event = match item {
            FeedItem::Change(c) => {
                let data = serde_json::to_string(&c).unwrap_or_default();
                Some(Event::default().id(c.seq.to_string()).event("change").data(data))
            }
            FeedItem::Reached(seq) if bookmark_due(bookmarks, last_bookmark, Instant::now()) => {
                last_bookmark = Some(Instant::now());
                Some(Event::default().id(seq.to_string()).event("bookmark").data(format!("{{\"seq\":{seq}}}")))
            }
            FeedItem::Reached(_) => None,
        };
        std::future::ready(event.map(Ok))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bookmarks_go_out_when_asked_for_at_most_every_interval() {
        let now = Instant::now();
        let table = [
            (false, None, false),
            (true, None, true),
            (true, Some(now - BOOKMARK_EVERY / 2), false),
            (true, Some(now - BOOKMARK_EVERY), true),
            (false, Some(now - BOOKMARK_EVERY * 2), false),
        ];
        for (asked, last, due) in table {
            assert_eq!(bookmark_due(asked, last, now), due, "asked {asked}, last {last:?}");
        }
    }
}
