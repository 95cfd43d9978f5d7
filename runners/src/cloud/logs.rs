//! CloudWatch Logs, as `mooring logs` reads it: the events of a relay's or
//! worker's containers, which the `awslogs` driver writes to the log group
//! every task definition Mooring registers names
//! ([`api_types::names::log_group`]), in streams `<container>/<container>/<task id>`.
//!
//! Contract (both implementations): events in time order, at most `limit` per
//! page, from `start_ms` on; a log group that does not exist (no task has
//! started yet) is [`ErrorKind::NotFound`](super::ErrorKind::NotFound).

use api_types::names;
use async_trait::async_trait;

use super::CloudResult;

/// What to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    /// The log group (`/mooring/<namespace>/<name>`).
    pub group: String,
    /// Only streams whose name starts with this (one container's).
    pub stream_prefix: Option<String>,
    /// Events at or after this time (milliseconds since the epoch).
    pub start_ms: Option<i64>,
    /// The token of the page before.
    pub next_token: Option<String>,
    /// The most events to answer.
    pub limit: i32,
}

/// One line a container wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    /// CloudWatch's id of the event: unique, so a reader that asks again for
    /// an overlapping window prints each line once.
    pub id: String,
    /// Milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// The stream (`<container>/<container>/<task id>`).
    pub stream: String,
    /// The line as the container wrote it.
    pub message: String,
}

/// A page of events, and the token of the next page when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogPage {
    pub events: Vec<LogEvent>,
    pub next_token: Option<String>,
}

/// The stream prefix of one container's streams: the `awslogs` driver names
/// them `<prefix>/<container>/<task id>`, with the prefix
/// [`names::log_stream_prefix`] gives it.
pub fn container_stream_prefix(container: &str) -> String {
    format!("{}/{container}/", names::log_stream_prefix(container))
}

/// The container a stream belongs to (`None` for a stream of another shape).
pub fn container_of(stream: &str) -> Option<&str> {
    stream.split('/').nth(1)
}

/// CloudWatch Logs, as Mooring uses it.
#[async_trait]
pub trait Logs: Send + Sync {
    /// One page of the group's events (FilterLogEvents).
    async fn filter(&self, query: &LogQuery) -> CloudResult<LogPage>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_name_their_container() {
        let cases = [("app/app/0123abcd", Some("app")), ("opa/opa/9f", Some("opa")), ("lonely", None)];
        for (stream, container) in cases {
            assert_eq!(container_of(stream), container, "{stream}");
        }
        assert!("app/app/0123".starts_with(&container_stream_prefix("app")));
        assert!(!"application/application/1".starts_with(&container_stream_prefix("app")));
    }
}
