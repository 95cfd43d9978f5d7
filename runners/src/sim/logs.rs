//! Simulated CloudWatch Logs: log groups with their events, written by tests
//! ([`super::SimCloud::write_log`]); the simulated tasks themselves write
//! nothing. Pages are `limit` events long; the token is the index of the next.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::Inner;
use crate::cloud::logs::{LogEvent, LogPage, LogQuery, Logs};
use crate::cloud::{CloudError, CloudResult, ErrorKind, ops};

/// The CloudWatch Logs facade of a [`super::SimCloud`].
pub(super) struct SimLogs(pub(super) Arc<Inner>);

/// Each log group's events, in the order written.
#[derive(Default)]
pub(super) struct LogsState {
    pub(super) groups: BTreeMap<String, Vec<LogEvent>>,
}

#[async_trait]
impl Logs for SimLogs {
    async fn filter(&self, query: &LogQuery) -> CloudResult<LogPage> {
        let op = ops::FILTER_LOG_EVENTS;
        self.0
            .call(op, &query.group, |st, _| {
                let Some(events) = st.logs.groups.get(&query.group) else {
                    return Err(CloudError::new(
                        &op,
                        ErrorKind::NotFound,
                        format!("ResourceNotFoundException: log group {} does not exist", query.group),
                    ));
                };
                let from: usize = query.next_token.as_deref().and_then(|t| t.parse().ok()).unwrap_or(0);
                let mut matching = events.iter().enumerate().skip(from).filter(|(_, e)| {
                    query.start_ms.is_none_or(|s| e.timestamp_ms >= s)
                        && query.stream_prefix.as_deref().is_none_or(|p| e.stream.starts_with(p))
                });
                let limit = usize::try_from(query.limit.max(1)).unwrap_or(1);
                let page: Vec<(usize, &LogEvent)> = matching.by_ref().take(limit).collect();
                let next_token = match (page.last(), matching.next()) {
                    (Some((i, _)), Some(_)) => Some((i + 1).to_string()),
                    _ => None,
                };
                Ok(LogPage { events: page.into_iter().map(|(_, e)| e.clone()).collect(), next_token })
            })
            .await
    }
}
