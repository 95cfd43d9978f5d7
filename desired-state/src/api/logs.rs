//! `GET /v1/namespaces/{ns}/{relays|workers|nodes}/{name}/logs`: what a
//! relay's or worker's containers wrote, or what a node's software wrote to
//! its journal (with `logs: cloudwatch`), read from CloudWatch Logs by the
//! server — under
//! the token's namespace scopes, with the server's AWS identity and budgets,
//! so users need no AWS credentials of their own (`mooring logs`).
//!
//! The API crate does not talk to AWS: the process that serves it plugs in a
//! [`LogReader`] (`mooring serve` reads through the same facades, budgets and
//! call metrics as its reconciles).

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use api_types::node::{NodeLogs, NodeSpec};
use api_types::relay::RelaySpec;
use api_types::worker::WorkerSpec;
use api_types::{Kind, names};

use super::SharedState;
use super::body::{P, Q, respond};
use super::error::ApiError;
use super::resources::authorize;
use crate::auth::{Principal, Role};

/// The most events one request returns.
pub const MAX_LOG_LIMIT: i32 = 1000;

/// What to read of one workload's log group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRequest {
    /// The workload's log group (`/mooring/<namespace>/<name>`).
    pub group: String,
    /// One container's lines only.
    pub container: Option<String>,
    /// Lines at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// The `next` token of the answer before (a following page).
    pub next: Option<String>,
    /// The most lines to answer.
    pub limit: i32,
}

/// One line a container wrote (the wire shape of `…/logs`, read back by
/// `mooring logs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    /// CloudWatch's id of the line: unique, so overlapping reads print it once.
    pub id: String,
    /// When it was written.
    pub time: DateTime<Utc>,
    /// The container that wrote it (from the stream name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The stream (`<container>/<container>/<task id>`).
    pub stream: String,
    /// The line as written.
    pub message: String,
}

/// A page of lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LogPage {
    /// The lines, oldest first.
    #[serde(default)]
    pub events: Vec<LogLine>,
    /// Pass as `next` for the following page; absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Why there is nothing to read yet (the log group does not exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

/// Why logs could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LogReadError {
    /// CloudWatch Logs refused what was asked (a `next` token of another
    /// read, or one that expired).
    #[error("CloudWatch Logs refused the request: {0}")]
    BadRequest(String),
    /// The AWS budget (or AWS itself) asks to wait.
    #[error("CloudWatch Logs is busy; retry in {retry_after_secs} s")]
    Busy { retry_after_secs: u64 },
    /// CloudWatch Logs failed or could not be reached.
    #[error("cannot read CloudWatch Logs: {0}")]
    Unavailable(String),
}

/// Reads a workload's log group; set on [`super::AppState::logs`].
pub trait LogReader: Send + Sync {
    /// One page of the request's log group.
    fn read<'a>(&'a self, request: &'a LogRequest) -> BoxFuture<'a, Result<LogPage, LogReadError>>;
}

/// The type a reader is shared as.
pub type SharedLogReader = Arc<dyn LogReader>;

/// The query of `…/logs`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogParams {
    container: Option<String>,
    /// Lines of the last N seconds.
    since_seconds: Option<i64>,
    /// Lines at or after this time (RFC 3339).
    since_time: Option<DateTime<Utc>>,
    next: Option<String>,
    limit: Option<i32>,
}

/// The containers of a relay's or worker's spec, by name.
fn containers(kind: Kind, spec: &serde_json::Value) -> Result<Vec<String>, ApiError> {
    let stored = |e: serde_json::Error| ApiError::internal("reading a stored spec", &e);
    Ok(match kind {
        Kind::Relay => {
            let spec: RelaySpec = serde_json::from_value(spec.clone()).map_err(stored)?;
            spec.containers.into_iter().map(|c| c.name).collect()
        }
        Kind::Worker => {
            let spec: WorkerSpec = serde_json::from_value(spec.clone()).map_err(stored)?;
            std::iter::once(spec.container).chain(spec.sidecars).map(|c| c.name).collect()
        }
        // One stream per instance, no containers.
        Kind::Node => {
            let spec: NodeSpec = serde_json::from_value(spec.clone()).map_err(stored)?;
            if spec.logs != Some(NodeLogs::Cloudwatch) {
                return Err(ApiError::bad_request(
                    "this node does not ship its logs: set spec.logs: cloudwatch (and spec.instanceProfile)",
                ));
            }
            vec![]
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "{} have no logs: logs are read for relays, workers and nodes",
                other.plural()
            )));
        }
    })
}

/// Checks the query and turns it into a [`LogRequest`].
fn request(
    group: String,
    containers: &[String],
    params: LogParams,
    now: DateTime<Utc>,
) -> Result<LogRequest, ApiError> {
    if let Some(c) = &params.container
        && !containers.contains(c)
    {
        return Err(ApiError::bad_request(format!(
            "container {c:?} is not one of this workload's: {}",
            containers.join(", ")
        )));
    }
    let since = match (params.since_seconds, params.since_time) {
        (Some(_), Some(_)) => return Err(ApiError::bad_request("give sinceSeconds or sinceTime, not both")),
        (Some(s), None) if s <= 0 => return Err(ApiError::bad_request("sinceSeconds must be > 0")),
        (Some(s), None) => Some(now - chrono::Duration::seconds(s.min(366 * 24 * 3600))),
        (None, Some(t)) if t.timestamp() < 0 => return Err(ApiError::bad_request("sinceTime must be after 1970")),
        (None, t) => t,
    };
    let limit = params.limit.unwrap_or(200);
    if !(1..=MAX_LOG_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit must be between 1 and {MAX_LOG_LIMIT}")));
    }
    if params.next.as_ref().is_some_and(|n| n.is_empty() || n.len() > 2048) {
        return Err(ApiError::bad_request("next must be the token of an earlier answer"));
    }
    Ok(LogRequest { group, container: params.container, since, next: params.next, limit })
}

/// `GET /v1/namespaces/{ns}/{plural}/{name}/logs`.
pub async fn logs(
    State(state): State<SharedState>,
    Extension(principal): Extension<Principal>,
    P((namespace, plural, name)): P<(String, String, String)>,
    Q(params): Q<LogParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let kind = authorize(&principal, &plural, &namespace, Role::Read)?;
    let resource = state.store.get(kind, &namespace, &name).await?;
    let containers = containers(kind, &resource.spec)?;
    let group = match kind {
        Kind::Node => names::node_log_group(&namespace, &name),
        _ => names::log_group(&namespace, &name),
    };
    let request = request(group, &containers, params, Utc::now())?;
    let reader = state
        .logs
        .as_ref()
        .ok_or_else(|| ApiError::not_found("this server reads no logs (it was started without a cloud)"))?;
    let page = reader.read(&request).await.map_err(|e| match e {
        LogReadError::Busy { retry_after_secs } => ApiError::too_many_requests(retry_after_secs),
        LogReadError::BadRequest(_) => ApiError::bad_request(e.to_string()),
        LogReadError::Unavailable(_) => ApiError::unavailable(e.to_string()),
    })?;
    Ok(respond(&headers, StatusCode::OK, &page))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(container: Option<&str>, since_seconds: Option<i64>, limit: Option<i32>) -> LogParams {
        LogParams { container: container.map(str::to_string), since_seconds, since_time: None, next: None, limit }
    }

    #[test]
    fn queries_are_checked() {
        let now = Utc::now();
        let containers = vec!["app".to_string(), "opa".to_string()];
        // Table: container, sinceSeconds, limit → accepted.
        let cases = [
            (None, None, None, true),
            (Some("opa"), Some(600), Some(50), true),
            (Some("web"), None, None, false),
            (None, Some(0), None, false),
            (None, None, Some(0), false),
            (None, None, Some(MAX_LOG_LIMIT + 1), false),
        ];
        for (container, since, limit, ok) in cases {
            let got = request(names::log_group("team", "gw"), &containers, params(container, since, limit), now);
            assert_eq!(got.is_ok(), ok, "{container:?} {since:?} {limit:?}: {got:?}");
        }
        let r = request(names::log_group("team", "gw"), &containers, params(Some("app"), Some(60), None), now).unwrap();
        assert_eq!(r.group, "/mooring/team/gw");
        assert_eq!(r.since, Some(now - chrono::Duration::seconds(60)));
        assert_eq!(r.limit, 200);
        let both = LogParams { since_time: Some(now), ..params(None, Some(5), None) };
        assert!(request(names::log_group("team", "gw"), &containers, both, now).is_err());
        let ancient = LogParams { since_time: DateTime::from_timestamp(-5, 0), ..params(None, None, None) };
        assert!(request(names::log_group("team", "gw"), &containers, ancient, now).is_err());
    }
}
