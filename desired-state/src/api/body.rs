//! Request bodies (JSON or YAML) and response formats.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use super::error::ApiError;

/// The largest body accepted.
pub const MAX_BODY: usize = 1024 * 1024;

/// What a write body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Yaml,
    MergePatchJson,
}

/// Reads the media type of a write. A missing Content-Type is read as JSON.
pub fn body_format(headers: &HeaderMap) -> Result<BodyFormat, ApiError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else { return Ok(BodyFormat::Json) };
    let ct = ct.to_str().unwrap_or_default().split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match ct.as_str() {
        "application/json" => Ok(BodyFormat::Json),
        "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => Ok(BodyFormat::Yaml),
        "application/merge-patch+json" => Ok(BodyFormat::MergePatchJson),
        other => Err(ApiError::unsupported_media_type(format!(
            "unsupported Content-Type {other:?}: send application/json, application/yaml or, for PATCH, application/merge-patch+json"
        ))),
    }
}

/// Parses a body holding exactly one document.
pub fn one_document(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    let mut docs = documents(headers, body)?;
    if docs.len() != 1 {
        return Err(ApiError::bad_request(format!(
            "expected one document, got {}; use POST /v1/apply for several",
            docs.len()
        )));
    }
    Ok(docs.remove(0))
}

/// Parses a body holding one or more documents.
pub fn documents(headers: &HeaderMap, body: &Bytes) -> Result<Vec<Value>, ApiError> {
    if body.len() > MAX_BODY {
        return Err(ApiError::payload_too_large());
    }
    let format = body_format(headers)?;
    let text = std::str::from_utf8(body).map_err(|e| ApiError::bad_request(format!("the body is not UTF-8: {e}")))?;
    if format != BodyFormat::Yaml {
        let t = text.trim_start();
        if !(t.starts_with('{') || t.starts_with('[')) {
            return Err(ApiError::bad_request("the body is not a JSON object or list (send YAML as application/yaml)"));
        }
    }
    api_types::parse_documents(text).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Parses a JSON merge patch: an object, within the parse limits.
pub fn merge_patch(body: &Bytes) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(body).map_err(|e| ApiError::bad_request(format!("the body is not UTF-8: {e}")))?;
    if !text.trim_start().starts_with('{') {
        return Err(ApiError::bad_request("a merge patch must be a JSON object"));
    }
    api_types::parse_json_within(text, api_types::ParseLimits::DEFAULT)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON merge patch: {e}")))
}

/// Whether the client asked for YAML.
pub fn wants_yaml(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/yaml") || a.contains("application/x-yaml") || a.contains("text/yaml"))
}

/// Answers JSON, or YAML when asked.
pub fn respond<T: Serialize>(headers: &HeaderMap, status: StatusCode, value: &T) -> Response {
    if wants_yaml(headers) {
        match serde_norway::to_string(value) {
            Ok(text) => {
                let mut r = (status, text).into_response();
                r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/yaml"));
                r
            }
            Err(e) => ApiError::internal("cannot render YAML", &e).into_response(),
        }
    } else {
        (status, axum::Json(value)).into_response()
    }
}

/// A request body read up to [`MAX_BODY`]; larger bodies are refused with 413
/// before they are buffered whole.
pub struct LimitedBody(pub Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for LimitedBody {
    type Rejection = ApiError;
    async fn from_request(req: axum::extract::Request, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(len) =
            req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
            && len > MAX_BODY
        {
            return Err(ApiError::payload_too_large());
        }
        axum::body::to_bytes(req.into_body(), MAX_BODY).await.map(LimitedBody).map_err(|e| {
            if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.to_string().contains("length limit")
            {
                ApiError::payload_too_large()
            } else {
                ApiError::bad_request(format!("cannot read the body: {e}"))
            }
        })
    }
}

/// Query parameters, with a JSON 400 when they do not parse.
pub struct Q<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(t)| Q(t))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// Path parameters, with a JSON 400 when they do not parse.
pub struct P<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> axum::extract::FromRequestParts<S> for P<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(t)| P(t))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}
