//! The API's [`LogReader`] in `mooring serve`: a workload's log group read
//! through the cloud's CloudWatch Logs facade, behind the process's AWS
//! budgets and call metrics like every other AWS call.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use desired_state::api::logs::{LogLine, LogPage, LogReadError, LogReader, LogRequest};
use futures::future::BoxFuture;
use runners::cloud::gated::guard;
use runners::cloud::logs::{LogQuery, Logs, container_of, container_stream_prefix};
use runners::cloud::{CloudError, ErrorKind, ops};
use runners::gate::CallGate;

/// Reads logs with `logs`, drawing tokens from `gate`.
pub struct WorkloadLogs {
    /// The cloud's CloudWatch Logs facade.
    pub logs: Arc<dyn Logs>,
    /// The process's AWS budgets and call metrics.
    pub gate: Arc<dyn CallGate>,
}

impl LogReader for WorkloadLogs {
    fn read<'a>(&'a self, request: &'a LogRequest) -> BoxFuture<'a, Result<LogPage, LogReadError>> {
        Box::pin(async move {
            let query = LogQuery {
                group: request.group.clone(),
                stream_prefix: request.container.as_deref().map(container_stream_prefix),
                start_ms: request.since.map(|t| t.timestamp_millis()),
                next_token: request.next.clone(),
                limit: request.limit,
            };
            match guard(self.gate.as_ref(), ops::FILTER_LOG_EVENTS, self.logs.filter(&query)).await {
                Ok(page) => Ok(LogPage {
                    events: page
                        .events
                        .into_iter()
                        .map(|e| LogLine {
                            id: e.id,
                            time: Utc.timestamp_millis_opt(e.timestamp_ms).single().unwrap_or_default(),
                            container: container_of(&e.stream).map(str::to_string),
                            stream: e.stream,
                            message: e.message,
                        })
                        .collect(),
                    next: page.next_token,
                    notice: None,
                }),
                Err(e) => answer_to(&request.group, e),
            }
        })
    }
}

/// What a failed read means for the caller: a group that does not exist yet
/// is an empty page with a notice, a refused request 400, waiting 429, the
/// rest 503.
fn answer_to(group: &str, e: CloudError) -> Result<LogPage, LogReadError> {
    match e.kind {
        ErrorKind::NotFound => Ok(LogPage {
            notice: Some(format!(
                "log group {group} does not exist yet: nothing has written to it (no task or instance has started, or its logs expired)"
            )),
            ..LogPage::default()
        }),
        ErrorKind::Invalid => Err(LogReadError::BadRequest(e.message)),
        ErrorKind::Throttled | ErrorKind::OverBudget | ErrorKind::BudgetUnavailable => {
            Err(LogReadError::Busy { retry_after_secs: e.retry_after.map_or(1, |d| d.as_secs().max(1)) })
        }
        _ => Err(LogReadError::Unavailable(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_answer_as_the_caller_needs() {
        let group = "/mooring/team/gw";
        let error = |kind| CloudError::new(&ops::FILTER_LOG_EVENTS, kind, "x");
        let missing = answer_to(group, error(ErrorKind::NotFound)).unwrap();
        assert!(missing.events.is_empty() && missing.notice.is_some_and(|n| n.contains(group)));
        assert!(matches!(answer_to(group, error(ErrorKind::Invalid)), Err(LogReadError::BadRequest(_))));
        for kind in [ErrorKind::Throttled, ErrorKind::OverBudget] {
            assert!(matches!(answer_to(group, error(kind)), Err(LogReadError::Busy { .. })), "{kind:?}");
        }
        for kind in [ErrorKind::Server, ErrorKind::Timeout, ErrorKind::Other] {
            assert!(matches!(answer_to(group, error(kind)), Err(LogReadError::Unavailable(_))), "{kind:?}");
        }
    }
}
