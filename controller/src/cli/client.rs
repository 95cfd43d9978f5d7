//! A small HTTP client for the Mooring API (`docs/api.md`).
//!
//! Commands talk to the server only through [`ApiClient`], so the bearer token,
//! timeouts, URL building and error mapping live in one place: an error answer
//! becomes an [`ApiError`], and a server that cannot be reached is reported by its
//! address rather than as a bare socket error.

use std::time::Duration;

use api_types::Kind;
use reqwest::{Method, RequestBuilder, Response, Url};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::error::ApiError;
use super::plan::ApplyOutcome;
use super::server_url::{ServerUrlError, parse_server_url, tls_mistake};
use super::sse::{Change, SseReader};

/// How long one request may take end to end. Generous, because a bulk apply writes
/// every document in one transaction.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How long to wait for a TCP (and TLS) connection before saying the server is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a watch stream may stay open (the request timeout would end it after a minute).
const WATCH_TIMEOUT: Duration = Duration::from_secs(30 * 24 * 3600);

/// At most this many list pages are followed, so a server handing out the same
/// `continue` token forever cannot loop the CLI.
const MAX_PAGES: usize = 10_000;

/// Why a request to the API did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `--server` is not an http(s) URL (with what was probably meant).
    #[error(transparent)]
    InvalidServer(#[from] ServerUrlError),
    /// No HTTP client could be built (the TLS backend failed to start).
    #[error("cannot start an HTTP client: {0}")]
    Setup(String),
    /// No connection could be made (refused, DNS, TLS).
    #[error("could not reach the Mooring server at {server}: {cause}")]
    Unreachable { server: String, cause: String },
    /// An `https://` address names a server that speaks plain HTTP.
    #[error("{0}")]
    TlsToPlainServer(String),
    /// Something answered, but not the Mooring API: a 404 without the API's error body.
    #[error(
        "{server} answered {status} to {path}, without the Mooring API's error body: it does not look like a Mooring server (check --server or the context's server)"
    )]
    NotMooring { server: String, status: u16, path: String },
    /// The server did not answer in time.
    #[error("the Mooring server at {server} did not answer within {}s", REQUEST_TIMEOUT.as_secs())]
    Timeout { server: String },
    /// The server answered with an error.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The server answered 2xx with a body this client cannot read.
    #[error("unexpected answer from {url}: {reason}")]
    Decode { url: String, reason: String },
    /// Anything else reqwest reports (a broken connection mid-body, ...).
    #[error("request to {url} failed: {cause}")]
    Request { url: String, cause: String },
}

impl ClientError {
    /// Whether trying again later may succeed; pollers (`wait`, `delete --wait`) keep
    /// going through these and stop at anything else.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Unreachable { .. } | ClientError::Timeout { .. } | ClientError::Request { .. } => true,
            ClientError::Api(e) => e.is_transient(),
            ClientError::InvalidServer(_)
            | ClientError::Setup(_)
            | ClientError::TlsToPlainServer(_)
            | ClientError::NotMooring { .. }
            | ClientError::Decode { .. } => false,
        }
    }

    /// How long the server asked to wait before retrying (`Retry-After` of a 429 or 503).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ClientError::Api(e) => e.retry_after.map(Duration::from_secs),
            _ => None,
        }
    }

    /// Whether the server said the thing does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Api(e) if e.is_not_found())
    }
}

/// Options of `POST /v1/apply` that the CLI sets.
#[derive(Debug, Clone, Default)]
pub struct ApplyParams {
    /// Only compute the plan; write nothing.
    pub dry_run: bool,
    /// `api` or `gitops`; the server's default (`api`) when `None`.
    pub source: Option<String>,
    /// The git commit the documents come from (with `source=gitops`).
    pub revision: Option<String>,
    /// The GitOps source the documents belong to (`sourceName`, the `mooring/source` label).
    pub source_name: Option<String>,
    /// Prune the source's resources the documents no longer name.
    pub prune: bool,
    /// Limits pruning to resources matching this label selector.
    pub selector: Option<String>,
    /// Let a prune take all of the source's resources, or more than the allowed share.
    pub allow_mass_prune: bool,
    /// The share (percent) of the source's resources a prune may take; the server's default when `None`.
    pub max_prune_percent: Option<u8>,
}

/// A client of one Mooring server, carrying the token every request needs.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    /// The server URL without a trailing slash, as the user gave it (for messages and paths).
    base: String,
    token: Option<String>,
}

impl ApiClient {
    /// A client for `server` (`http://127.0.0.1:8080`), authenticating with `token` when given.
    pub fn new(server: &str, token: Option<&str>) -> Result<Self, ClientError> {
        let url: Url = parse_server_url(server)?;
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("mooring-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Setup(root_cause(&e)))?;
        let token = token.map(str::trim).filter(|t| !t.is_empty()).map(str::to_string);
        let base = url.as_str().trim_end_matches('/').to_string();
        Ok(ApiClient { http, base, token })
    }

    /// The server this client talks to, for messages.
    pub fn server(&self) -> &str {
        &self.base
    }

    /// Every resource of `kind` in `namespace` (or in every namespace the token may
    /// read, when `None`), following `metadata.continue` through all pages.
    pub async fn list(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        selector: Option<&str>,
    ) -> Result<Vec<Value>, ClientError> {
        let url = match namespace {
            Some(ns) => format!("{}/v1/namespaces/{}/{}", self.base, enc(ns), kind.plural()),
            None => format!("{}/v1/{}", self.base, kind.plural()),
        };
        let mut items = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query: Vec<(&str, &str)> = Vec::new();
            if let Some(sel) = selector {
                query.push(("labelSelector", sel));
            }
            if let Some(token) = next.as_deref() {
                query.push(("continue", token));
            }
            let page: Value = self.call(Method::GET, &url, |r| r.query(&query)).await?;
            let cont = page.pointer("/metadata/continue").and_then(Value::as_str).filter(|c| !c.is_empty());
            let cont = cont.map(str::to_string);
            items.extend(list_items(page, &url)?);
            match cont {
                Some(c) if next.as_deref() != Some(c.as_str()) => next = Some(c),
                Some(_) => {
                    return Err(ClientError::Decode { url, reason: "the server repeated a continue token".into() });
                }
                None => return Ok(items),
            }
        }
        Err(ClientError::Decode { url, reason: format!("more than {MAX_PAGES} pages") })
    }

    /// One resource, with status.
    pub async fn get(&self, kind: Kind, namespace: &str, name: &str) -> Result<Value, ClientError> {
        self.call(Method::GET, &self.resource_url(kind, namespace, name, ""), |r| r).await
    }

    /// Requests deletion (the server sets `deletionTimestamp` and answers 202).
    pub async fn delete(&self, kind: Kind, namespace: &str, name: &str) -> Result<(), ClientError> {
        let url = self.resource_url(kind, namespace, name, "");
        self.send(self.request(Method::DELETE, &url), &url).await.map(drop)
    }

    /// The revision history of a resource, newest first.
    pub async fn revisions(&self, kind: Kind, namespace: &str, name: &str) -> Result<Vec<Value>, ClientError> {
        let url = self.resource_url(kind, namespace, name, "/revisions");
        let body: Value = self.call(Method::GET, &url, |r| r).await?;
        list_items(body, &url)
    }

    /// The events of a resource, newest first.
    pub async fn events(&self, kind: Kind, namespace: &str, name: &str) -> Result<Vec<Value>, ClientError> {
        let url = self.resource_url(kind, namespace, name, "/events");
        let body: Value = self.call(Method::GET, &url, |r| r).await?;
        list_items(body, &url)
    }

    /// One page of a relay's or worker's container logs.
    pub async fn logs<T: serde::de::DeserializeOwned>(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        query: &LogsQuery,
    ) -> Result<T, ClientError> {
        let url = self.resource_url(kind, namespace, name, "/logs");
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(c) = &query.container {
            params.push(("container", c.clone()));
        }
        if let Some(t) = query.since_time {
            params.push(("sinceTime", t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)));
        }
        if let Some(n) = &query.next {
            params.push(("next", n.clone()));
        }
        self.call(Method::GET, &url, |r| r.query(&params)).await
    }

    /// Writes a new generation with the spec of `revision`; returns the resource.
    pub async fn rollback(&self, kind: Kind, namespace: &str, name: &str, revision: i64) -> Result<Value, ClientError> {
        let url = self.resource_url(kind, namespace, name, "/rollback");
        self.call(Method::POST, &url, |r| r.json(&json!({ "revision": revision }))).await
    }

    /// Answers a relay's rollout in progress (`promote` or `abort`).
    pub async fn rollout(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        action: api_types::rollout::RolloutAction,
    ) -> Result<Value, ClientError> {
        let url = self.resource_url(kind, namespace, name, "/rollout");
        self.call(Method::POST, &url, |r| r.json(&json!({ "action": action }))).await
    }

    /// Asks for a snapshot of a node's data volume now.
    pub async fn snapshot(&self, namespace: &str, name: &str) -> Result<Value, ClientError> {
        let url = self.resource_url(Kind::Node, namespace, name, "/snapshot");
        self.call(Method::POST, &url, |r| r).await
    }

    /// Sends a YAML stream to `POST /v1/apply` and returns the plan (and results).
    pub async fn apply(&self, yaml_stream: String, params: &ApplyParams) -> Result<ApplyOutcome, ClientError> {
        let url = format!("{}/v1/apply", self.base);
        let mut query: Vec<(&str, &str)> = vec![("dryRun", if params.dry_run { "true" } else { "false" })];
        if let Some(source) = params.source.as_deref() {
            query.push(("source", source));
        }
        if let Some(revision) = params.revision.as_deref() {
            query.push(("revision", revision));
        }
        if let Some(name) = params.source_name.as_deref() {
            query.push(("sourceName", name));
        }
        if params.prune {
            query.push(("prune", "true"));
        }
        if let Some(selector) = params.selector.as_deref() {
            query.push(("selector", selector));
        }
        if params.allow_mass_prune {
            query.push(("allowMassPrune", "true"));
        }
        let percent = params.max_prune_percent.map(|p| p.to_string());
        if let Some(percent) = percent.as_deref() {
            query.push(("maxPrunePercent", percent));
        }
        self.call(Method::POST, &url, |r| {
            r.query(&query).header(reqwest::header::CONTENT_TYPE, "application/yaml").body(yaml_stream)
        })
        .await
    }

    /// Suspends (`Some(reason)`, possibly empty) or resumes (`None`) a GitOps
    /// source's syncs; returns the source as stored.
    pub async fn set_source_suspended(&self, name: &str, suspend: Option<&str>) -> Result<Value, ClientError> {
        let action = if suspend.is_some() { "suspend" } else { "resume" };
        let url = format!("{}/v1/sources/{}/{action}", self.base, enc(name));
        let body = match suspend {
            Some(reason) if !reason.is_empty() => json!({ "reason": reason }),
            _ => json!({}),
        };
        self.call(Method::POST, &url, |r| r.json(&body)).await
    }

    /// The server's version, as its OpenAPI document (`/openapi.json`, no token
    /// needed) states it.
    pub async fn server_version(&self) -> Result<String, ClientError> {
        let url = format!("{}/openapi.json", self.base);
        let doc: Value = self.call(Method::GET, &url, |r| r).await?;
        doc.pointer("/info/version")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ClientError::Decode { url, reason: "no info.version in the OpenAPI document".to_string() })
    }

    /// Opens the change stream (`GET /v1/watch`) for `kind`, in `namespace` or in
    /// every namespace the token may read, from now on.
    pub async fn watch(&self, kind: Kind, namespace: Option<&str>) -> Result<Watch, ClientError> {
        let url = format!("{}/v1/watch", self.base);
        let mut query = vec![("kind", kind.as_str())];
        if let Some(ns) = namespace {
            query.push(("namespace", ns));
        }
        let req = self.request(Method::GET, &url).query(&query).timeout(WATCH_TIMEOUT);
        let response = self.send(req, &url).await?;
        Ok(Watch { client: self.clone(), url, response, reader: SseReader::default(), ready: Default::default() })
    }

    /// Replaces a resource with a YAML document (`PUT`), which must carry the
    /// `metadata.resourceVersion` it was read at; returns the stored resource.
    pub async fn replace_yaml(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        yaml: String,
    ) -> Result<Value, ClientError> {
        let url = self.resource_url(kind, namespace, name, "");
        self.call(Method::PUT, &url, |r| r.header(reqwest::header::CONTENT_TYPE, "application/yaml").body(yaml)).await
    }

    /// Creates an API token; the answer carries the secret once.
    pub async fn create_token(&self, name: &str, scopes: &[String]) -> Result<Value, ClientError> {
        let url = format!("{}/v1/tokens", self.base);
        self.call(Method::POST, &url, |r| r.json(&json!({ "name": name, "scopes": scopes }))).await
    }

    /// Every API token (names and scopes, never the secrets).
    pub async fn list_tokens(&self) -> Result<Vec<Value>, ClientError> {
        let url = format!("{}/v1/tokens", self.base);
        let body: Value = self.call(Method::GET, &url, |r| r).await?;
        list_items(body, &url)
    }

    /// Revokes an API token.
    pub async fn delete_token(&self, name: &str) -> Result<(), ClientError> {
        let url = format!("{}/v1/tokens/{}", self.base, enc(name));
        self.send(self.request(Method::DELETE, &url), &url).await.map(drop)
    }

    /// The URL of one resource; an empty namespace is a cluster-scoped one
    /// (`/v1/policies/NAME`).
    fn resource_url(&self, kind: Kind, namespace: &str, name: &str, suffix: &str) -> String {
        if namespace.is_empty() {
            return format!("{}/v1/{}/{}{suffix}", self.base, kind.plural(), enc(name));
        }
        format!("{}/v1/namespaces/{}/{}/{}{suffix}", self.base, enc(namespace), kind.plural(), enc(name))
    }

    fn request(&self, method: Method, url: &str) -> RequestBuilder {
        let req = self.http.request(method, url).header(reqwest::header::ACCEPT, "application/json");
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// Sends a request built by `build` and reads a JSON answer.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        build: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Result<T, ClientError> {
        let resp = self.send(build(self.request(method, url)), url).await?;
        let bytes = resp.bytes().await.map_err(|e| self.transport_error(url, &e))?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode { url: url.to_string(), reason: e.to_string() })
    }

    /// Sends a request; a non-2xx answer becomes an [`ApiError`].
    async fn send(&self, req: RequestBuilder, url: &str) -> Result<Response, ClientError> {
        let resp = req.send().await.map_err(|e| self.transport_error(url, &e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let body = resp.bytes().await.unwrap_or_default();
        if status == reqwest::StatusCode::NOT_FOUND && !ApiError::is_api_body(&body) {
            let path = url.strip_prefix(self.base.as_str()).unwrap_or(url).to_string();
            return Err(ClientError::NotMooring { server: self.base.clone(), status: status.as_u16(), path });
        }
        let mut err = ApiError::from_body(status.as_u16(), &body);
        err.retry_after = retry_after;
        if status == reqwest::StatusCode::UNAUTHORIZED && self.token.is_none() {
            err.message.push_str(" (no token was sent: pass --token or set MOORING_TOKEN)");
        }
        Err(err.into())
    }

    fn transport_error(&self, url: &str, e: &reqwest::Error) -> ClientError {
        if e.is_timeout() {
            ClientError::Timeout { server: self.base.clone() }
        } else if let Some(explained) = tls_mistake(&self.base, &root_cause(e)) {
            ClientError::TlsToPlainServer(explained)
        } else if e.is_connect() {
            ClientError::Unreachable { server: self.base.clone(), cause: root_cause(e) }
        } else {
            ClientError::Request { url: url.to_string(), cause: root_cause(e) }
        }
    }
}

/// An open change stream, read one change at a time.
pub struct Watch {
    client: ApiClient,
    url: String,
    response: Response,
    reader: SseReader,
    ready: std::collections::VecDeque<Change>,
}

impl Watch {
    /// The next change; `None` when the server ended the stream (it shuts down).
    pub async fn next(&mut self) -> Result<Option<Change>, ClientError> {
        loop {
            if let Some(change) = self.ready.pop_front() {
                return Ok(Some(change));
            }
            let Some(chunk) = self.response.chunk().await.map_err(|e| self.client.transport_error(&self.url, &e))?
            else {
                return Ok(None);
            };
            for data in self.reader.push(&chunk) {
                let change = serde_json::from_str(&data)
                    .map_err(|e| ClientError::Decode { url: self.url.clone(), reason: e.to_string() })?;
                self.ready.push_back(change);
            }
        }
    }
}

/// Percent-encodes one path segment (names are DNS labels, but user input is user input).
fn enc(segment: &str) -> std::borrow::Cow<'_, str> {
    urlencoding::encode(segment)
}

/// The items of a list answer: `{"items": [...]}` or a bare array, leniently.
fn list_items(body: Value, url: &str) -> Result<Vec<Value>, ClientError> {
    match body {
        Value::Array(items) => Ok(items),
        Value::Object(mut m) => match m.remove("items") {
            Some(Value::Array(items)) => Ok(items),
            Some(Value::Null) | None => Ok(Vec::new()),
            Some(_) => Err(ClientError::Decode { url: url.to_string(), reason: "`items` is not a list".into() }),
        },
        _ => Err(ClientError::Decode { url: url.to_string(), reason: "expected a list".into() }),
    }
}

/// The innermost cause of an error ("Connection refused (os error 111)"), which is
/// what a user can act on; reqwest's own message only names the URL.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_a_server_that_is_not_http() {
        assert!(matches!(ApiClient::new("ftp://x", None), Err(ClientError::InvalidServer(_))));
        assert!(matches!(ApiClient::new("not a url", None), Err(ClientError::InvalidServer(_))));
        let c = ApiClient::new("http://127.0.0.1:8080/", Some("  ")).unwrap();
        assert_eq!(c.server(), "http://127.0.0.1:8080");
        assert!(c.token.is_none());
    }

    #[test]
    fn builds_resource_paths() {
        let c = ApiClient::new("http://h:1", None).unwrap();
        assert_eq!(
            c.resource_url(Kind::Relay, "payments", "gw", "/events"),
            "http://h:1/v1/namespaces/payments/relays/gw/events"
        );
        assert_eq!(c.resource_url(Kind::Node, "a b", "n", ""), "http://h:1/v1/namespaces/a%20b/nodes/n");
        assert_eq!(c.resource_url(Kind::Policy, "", "g", "/revisions"), "http://h:1/v1/policies/g/revisions");
    }

    #[test]
    fn reads_lists_leniently() {
        assert_eq!(list_items(json!([{"a": 1}]), "u").unwrap().len(), 1);
        assert_eq!(list_items(json!({"items": [{"a": 1}, {"b": 2}]}), "u").unwrap().len(), 2);
        assert!(list_items(json!({"metadata": {}}), "u").unwrap().is_empty());
        assert!(list_items(json!("x"), "u").is_err());
    }

    #[tokio::test]
    async fn unreachable_server_is_named() {
        // A port that was free a moment ago: nothing listens on it, no server needed.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let server = format!("http://127.0.0.1:{port}");
        let c = ApiClient::new(&server, None).unwrap();
        let err = c.get(Kind::Relay, "default", "gw").await.unwrap_err();
        assert!(err.is_transient());
        assert!(err.to_string().starts_with(&format!("could not reach the Mooring server at {server}: ")), "{err}");
    }
}

/// What `logs` asks the server for (the query of `…/logs`).
#[derive(Debug, Clone, Default)]
pub struct LogsQuery {
    /// One container's lines only.
    pub container: Option<String>,
    /// Lines at or after this time.
    pub since_time: Option<chrono::DateTime<chrono::Utc>>,
    /// The token of the page before.
    pub next: Option<String>,
}
