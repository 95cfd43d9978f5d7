//! CloudWatch Logs through the AWS SDK (FilterLogEvents).

use async_trait::async_trait;
use aws_sdk_cloudwatchlogs::Client;

use super::error::cloud_error;
use crate::cloud::logs::{LogEvent, LogPage, LogQuery, Logs};
use crate::cloud::{CloudResult, ErrorKind, ops};

/// The CloudWatch Logs facade of the SDK.
pub struct SdkLogs {
    client: Client,
}

impl SdkLogs {
    /// A client from the process's one SDK configuration.
    pub fn new(config: &aws_config::SdkConfig) -> SdkLogs {
        SdkLogs { client: Client::new(config) }
    }
}

#[async_trait]
impl Logs for SdkLogs {
    async fn filter(&self, query: &LogQuery) -> CloudResult<LogPage> {
        let op = ops::FILTER_LOG_EVENTS;
        let out = self
            .client
            .filter_log_events()
            .log_group_name(&query.group)
            .set_log_stream_name_prefix(query.stream_prefix.clone())
            .set_start_time(query.start_ms)
            .set_next_token(query.next_token.clone())
            .limit(query.limit)
            .send()
            .await
            .map_err(|e| {
                let missing = matches!(e.as_service_error(), Some(err) if err.is_resource_not_found_exception());
                let mut err = cloud_error(&op, e);
                if missing {
                    err.kind = ErrorKind::NotFound;
                }
                err
            })?;
        let events = out
            .events
            .unwrap_or_default()
            .into_iter()
            // AWS applies the prefix; moto ignores it, so it is applied here too.
            .filter(|e| {
                query.stream_prefix.as_deref().is_none_or(|p| e.log_stream_name.as_deref().unwrap_or("").starts_with(p))
            })
            .map(|e| {
                let timestamp_ms = e.timestamp.unwrap_or_default();
                let stream = e.log_stream_name.unwrap_or_default();
                let message = e.message.unwrap_or_default();
                // AWS always sends an id; without one, the line itself is its identity.
                let id = e.event_id.unwrap_or_else(|| format!("{stream}@{timestamp_ms}@{message}"));
                LogEvent { id, timestamp_ms, stream, message }
            })
            .collect();
        Ok(LogPage { events, next_token: out.next_token })
    }
}
