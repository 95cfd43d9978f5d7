//! API errors: one JSON shape for every failure, with the HTTP status that says
//! whose fault it was. Nothing a client sends produces a 5xx.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use api_types::{FieldError, ValidationErrors};

use crate::store::StoreError;

/// An error answer: status, machine code, message and field details.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Vec<Detail>,
    pub retry_after: Option<u64>,
}

/// One item of `error.details`: a field path and what is wrong there, and for
/// a policy violation the policy that says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detail {
    pub field: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

impl From<FieldError> for Detail {
    fn from(e: FieldError) -> Self {
        Detail { field: e.field, message: e.message, policy: None }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    details: &'a [Detail],
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), details: vec![], retry_after: None }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "Conflict", message)
    }
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType", message)
    }
    pub fn payload_too_large() -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge", "the request body is over 1 MiB")
    }
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            format!("rate limit exceeded; retry in {retry_after_secs} s"),
        );
        e.retry_after = Some(retry_after_secs);
        e
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", message)
    }
    /// 422 with every violation.
    pub fn invalid(errors: ValidationErrors) -> Self {
        let n = errors.0.len();
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "Invalid",
            message: format!("{n} validation error{}", if n == 1 { "" } else { "s" }),
            details: errors.0.into_iter().map(Detail::from).collect(),
            retry_after: None,
        }
    }
    /// 422 `PolicyViolation`: admission policies refused the document(s);
    /// every violation, with its policy and field path.
    pub fn policy_violation(violations: Vec<crate::admission::Violation>) -> Self {
        let first = violations.first().map(|v| {
            let at = if v.field.is_empty() { String::new() } else { format!("{}: ", v.field) };
            format!("refused by policy {}: {at}{}", v.policy, v.message)
        });
        let more = violations.len().saturating_sub(1);
        let message = match (first, more) {
            (Some(f), 0) => f,
            (Some(f), n) => format!("{f} (and {n} more)"),
            (None, _) => "refused by policy".to_string(),
        };
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "PolicyViolation",
            message,
            details: violations
                .into_iter()
                .map(|v| Detail { field: v.field, message: v.message, policy: Some(v.policy) })
                .collect(),
            retry_after: None,
        }
    }
    /// A fault of ours; the cause is logged, not shown.
    pub fn internal(context: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "{context}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal", format!("{context}; see the server log"))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::NotFound { .. } | StoreError::RevisionNotFound { .. } | StoreError::TokenNotFound(_) => {
                ApiError::not_found(e.to_string())
            }
            StoreError::AlreadyExists { .. } | StoreError::TokenExists(_) => {
                ApiError::new(StatusCode::CONFLICT, "AlreadyExists", e.to_string())
            }
            StoreError::Owned { .. } => ApiError::new(StatusCode::CONFLICT, "Owned", e.to_string()),
            StoreError::Expired { .. } => ApiError::new(StatusCode::GONE, "Expired", e.to_string()),
            StoreError::Conflict { .. }
            | StoreError::Fenced { .. }
            | StoreError::StaleStatus { .. }
            | StoreError::NameTaken { .. }
            | StoreError::SourceSuspended { .. } => ApiError::conflict(e.to_string()),
            StoreError::Invalid { errors, .. } => ApiError::invalid(errors.clone()),
            StoreError::Contention(_) => {
                tracing::info!(error = %e, "write contention");
                ApiError::conflict("concurrent writes to the same resources collided; retry the request")
            }
            StoreError::InvalidValue(_) => ApiError::invalid(ValidationErrors::one("", e.to_string())),
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %e, "store unavailable");
                ApiError::unavailable("the store is unavailable; retry shortly")
            }
            StoreError::Database(_) | StoreError::Corrupt(_) => ApiError::internal("store error", &e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body { error: Inner { code: self.code, message: &self.message, details: &self.details } };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        resp
    }
}
