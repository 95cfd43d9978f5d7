//! The API's error body as a typed error.
//!
//! Every error answer of the Mooring API has the same shape
//! (`{"error": {"code", "message", "details": [{"field", "message"}]}}`, see
//! `docs/api.md`). Reading it into [`ApiError`] lets commands decide on the status
//! (a 404 while waiting for a delete is success, a 429 is worth retrying) and lets
//! users see every violation with its field path, not just the first line.

use std::fmt;

use serde::Deserialize;

/// One violation the server named, e.g. `spec.scaling.max: must be ≥ spec.scaling.min (5)`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FieldDetail {
    /// The field path (`items[2].spec.scaling.max`); may be empty for a document-wide problem.
    #[serde(default)]
    pub field: String,
    /// What is wrong with it.
    #[serde(default)]
    pub message: String,
    /// The admission policy that refused it (`PolicyViolation` answers).
    #[serde(default)]
    pub policy: Option<String>,
}

/// An error answer from the Mooring API, so callers can branch on the status and
/// users see every detail the server gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status (404, 422, ...).
    pub status: u16,
    /// The machine-readable code (`NotFound`, `Invalid`, ...).
    pub code: String,
    /// The human message.
    pub message: String,
    /// Every violation, for 422 answers.
    pub details: Vec<FieldDetail>,
    /// Seconds from the `Retry-After` header of a 429 or 503.
    pub retry_after: Option<u64>,
}

/// The wire shape of an error body.
#[derive(Deserialize)]
struct Envelope {
    error: Body,
}

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    details: Vec<FieldDetail>,
}

/// How much of a non-JSON error body (say, a proxy's HTML page) is worth showing.
const MAX_RAW_BODY: usize = 200;

impl ApiError {
    /// Reads an error answer. A body in the API's error shape is taken as is; anything
    /// else (a proxy's HTML page, an empty body) still yields a useful message built
    /// from the status and the start of the body.
    pub fn from_body(status: u16, body: &[u8]) -> Self {
        let reason = reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
        if let Ok(Envelope { error }) = serde_json::from_slice::<Envelope>(body) {
            let code = if error.code.is_empty() { reason.replace(' ', "") } else { error.code };
            let message = if error.message.is_empty() { format!("{status} {reason}") } else { error.message };
            return ApiError { status, code, message, details: error.details, retry_after: None };
        }
        let text = String::from_utf8_lossy(body);
        let first_line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
        let message = if first_line.is_empty() {
            format!("{status} {reason}")
        } else {
            let mut snippet: String = first_line.chars().take(MAX_RAW_BODY).collect();
            if first_line.chars().count() > MAX_RAW_BODY {
                snippet.push('…');
            }
            format!("{status} {reason}: {snippet}")
        };
        ApiError { status, code: reason.replace(' ', ""), message, details: Vec::new(), retry_after: None }
    }

    /// Whether `body` is in the API's error shape: a 404 without it came from
    /// something that is not a Mooring server (or a proxy in front of nothing).
    pub fn is_api_body(body: &[u8]) -> bool {
        serde_json::from_slice::<Envelope>(body).is_ok()
    }

    /// Whether the resource (or path) does not exist.
    pub fn is_not_found(&self) -> bool {
        self.status == 404
    }

    /// Whether trying again later may succeed (rate limited, store unavailable, a
    /// proxy in between failing), as opposed to a request that is wrong.
    pub fn is_transient(&self) -> bool {
        self.status == 429 || self.status >= 500
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        for d in &self.details {
            f.write_str("\n  ")?;
            if let Some(policy) = &d.policy {
                write!(f, "[policy {policy}] ")?;
            }
            if !d.field.is_empty() {
                write!(f, "{}: ", d.field)?;
            }
            f.write_str(&d.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_message_and_one_line_per_detail() {
        let body = r#"{"error": {"code": "Invalid", "message": "2 validation errors",
            "details": [{"field": "spec.scaling.max", "message": "must be ≥ spec.scaling.min (5)"},
                        {"field": "metadata.name", "message": "must be a DNS-1123 label"}]}}"#;
        let e = ApiError::from_body(422, body.as_bytes());
        assert_eq!(e.status, 422);
        assert_eq!(e.code, "Invalid");
        assert_eq!(e.details.len(), 2);
        assert_eq!(
            e.to_string(),
            "2 validation errors\n  spec.scaling.max: must be ≥ spec.scaling.min (5)\n  metadata.name: must be a DNS-1123 label"
        );
        assert!(!e.is_transient());
        assert!(!e.is_not_found());
    }

    #[test]
    fn error_without_details() {
        let e = ApiError::from_body(404, br#"{"error":{"code":"NotFound","message":"relay \"gw\" not found"}}"#);
        assert!(e.is_not_found());
        assert_eq!(e.to_string(), "relay \"gw\" not found");
    }

    #[test]
    fn body_that_is_not_the_error_shape() {
        let e = ApiError::from_body(502, b"<html>\n<h1>Bad gateway</h1></html>");
        assert_eq!(e.code, "BadGateway");
        assert_eq!(e.to_string(), "502 Bad Gateway: <html>");
        assert!(e.is_transient());

        let e = ApiError::from_body(429, b"");
        assert_eq!(e.to_string(), "429 Too Many Requests");
        assert!(e.is_transient());
    }

    #[test]
    fn detail_without_field() {
        let e = ApiError::from_body(
            400,
            br#"{"error":{"code":"BadRequest","message":"bad body","details":[{"message":"expected a mapping"}]}}"#,
        );
        assert_eq!(e.to_string(), "bad body\n  expected a mapping");
    }
}
