//! The HTTP API (axum): CRUD per kind, bulk apply with plans, watch, history,
//! schemas, OpenAPI, health and metrics, and the status page. See `docs/api.md`.

mod admit;
mod apply;
mod body;
pub mod error;
pub mod logs;
mod meta;
pub mod metrics;
pub mod openapi;
mod rendered;
mod resources;
mod rollout;
mod snapshot;
mod sources;
mod tokens;
pub mod ui;
mod watch;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

pub use body::MAX_BODY;
pub use error::ApiError;

use crate::auth::{AuthError, Authenticator, OidcConfig, Principal};
use crate::ratelimit::{Decision, RateLimiter, TokenBucket};
use crate::redis::RedisHandle;
use crate::store::{ChangeFeed, Store};

/// Settings of the API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub oidc: Option<OidcConfig>,
    /// Per-token budget; `None` disables rate limiting.
    pub rate_limit: Option<TokenBucket>,
    /// Prefix of Redis keys (several installations, or tests, can share a Redis).
    pub redis_prefix: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            oidc: None,
            rate_limit: Some(TokenBucket { capacity: 100.0, refill_per_sec: 50.0 }),
            redis_prefix: "mooring".into(),
        }
    }
}

/// The AWS account, principal and region a replica acts in, as it established
/// them at start-up: `/readyz` shows them, so "which account is this?" has an
/// answer on every replica. Plain data: the API never calls AWS.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CloudIdentity {
    pub account: String,
    pub principal: String,
    pub region: String,
}

/// Everything a handler needs.
pub struct AppState {
    pub store: Store,
    pub feed: ChangeFeed,
    pub redis: Option<Arc<RedisHandle>>,
    pub auth: Authenticator,
    pub limiter: Option<(RateLimiter, TokenBucket)>,
    pub metrics: metrics::Metrics,
    /// The stored admission policies, compiled.
    pub admission: crate::admission::Admission,
    /// Turns true when the server is shutting down; long-lived responses
    /// (watch streams) end then, so a graceful shutdown does not wait on them.
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// Where this replica acts in AWS (`None` on the simulated cloud).
    pub cloud: Option<CloudIdentity>,
    /// Reads workloads' container logs (`None`: `/logs` answers 404).
    pub logs: Option<logs::SharedLogReader>,
    /// Renders resources the way the controller applies them (`…/rendered`);
    /// `None` when the server was assembled without the runners.
    pub preview: Option<Arc<dyn crate::preview::Preview>>,
}

pub type SharedState = Arc<AppState>;

impl AppState {
    pub fn new(store: Store, feed: ChangeFeed, redis: Option<Arc<RedisHandle>>, config: ApiConfig) -> AppState {
        let limiter = match (&redis, config.rate_limit) {
            (Some(r), Some(bucket)) => {
                Some((RateLimiter::new(r.clone(), format!("{}:ratelimit:api", config.redis_prefix)), bucket))
            }
            _ => None,
        };
        AppState {
            auth: Authenticator::new(store.clone(), config.oidc),
            admission: crate::admission::Admission::new(store.clone()),
            store,
            feed,
            redis,
            limiter,
            metrics: metrics::Metrics::new(),
            shutdown: tokio::sync::watch::channel(false).0,
            cloud: None,
            logs: None,
            preview: None,
        }
    }
}

/// The router of the whole API.
pub fn router(state: SharedState) -> Router {
    let resource = "/v1/namespaces/{namespace}/{plural}/{name}";
    let authenticated = Router::new()
        .route("/v1/{plural}", get(resources::list_all))
        .route("/v1/namespaces/{namespace}/{plural}", get(resources::list_namespaced).post(resources::create))
        .route(resource, get(resources::read).put(resources::replace).patch(resources::patch).delete(resources::delete))
        .route(&format!("{resource}/revisions"), get(resources::revisions))
        .route(&format!("{resource}/rollback"), post(resources::rollback))
        .route(&format!("{resource}/events"), get(resources::events))
        .route(&format!("{resource}/logs"), get(logs::logs))
        .route(&format!("{resource}/rendered"), get(rendered::rendered))
        .route(&format!("{resource}/rollout"), post(rollout::rollout))
        .route(&format!("{resource}/snapshot"), post(snapshot::snapshot))
        .route("/v1/policies", get(resources::list_policies).post(resources::create_cluster))
        .route(
            "/v1/policies/{name}",
            get(resources::read_cluster)
                .put(resources::replace_cluster)
                .patch(resources::patch_cluster)
                .delete(resources::delete_cluster),
        )
        .route("/v1/policies/{name}/revisions", get(resources::revisions_cluster))
        .route("/v1/policies/{name}/rollback", post(resources::rollback_cluster))
        .route("/v1/policies/{name}/events", get(resources::events_cluster))
        .route("/v1/apply", post(apply::apply))
        .route("/v1/watch", get(watch::watch))
        .route("/v1/sources", get(sources::list))
        .route("/v1/sources/{name}", get(sources::read))
        .route("/v1/sources/{name}/suspend", post(sources::suspend))
        .route("/v1/sources/{name}/resume", post(sources::resume))
        .route("/v1/tokens", get(tokens::list).post(tokens::create))
        .route("/v1/tokens/{name}", axum::routing::delete(tokens::delete))
        .route("/metrics", get(meta::metrics_authorized))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    Router::new()
        .merge(authenticated)
        .merge(ui::routes())
        .route("/v1/schemas/{kind}", get(meta::schema))
        .route("/openapi.json", get(meta::openapi))
        .route("/healthz", get(meta::healthz))
        .route("/readyz", get(meta::readyz))
        .fallback(meta::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// `/healthz`, `/readyz` and `/metrics` (with a token, as on the API): what a
/// controller-only replica serves.
pub fn ops_router(state: SharedState) -> Router {
    Router::new()
        .route("/metrics", get(meta::metrics_authorized))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .route("/healthz", get(meta::healthz))
        .route("/readyz", get(meta::readyz))
        .fallback(meta::not_found)
        .with_state(state)
}

/// `/metrics` without a token, and `/healthz`: what `--metrics-listen` serves,
/// on an address only the scraper reaches (the metrics name every namespace's
/// resources, so on the API's own address they need a `metrics` token).
pub fn metrics_router(state: SharedState) -> Router {
    Router::new()
        .route("/metrics", get(meta::metrics))
        .route("/healthz", get(meta::healthz))
        .fallback(meta::not_found)
        .with_state(state)
}

/// Counts and times every request by method, route and status. Every label
/// comes from a bounded set, so no request can add series at will: the route
/// is the route table's pattern (`unmatched` for anything else) and the method
/// one of [`metrics::method_label`]'s.
async fn observe(State(state): State<SharedState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = metrics::method_label(req.method());
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string());
    let resp = next.run(req).await;
    let route = route.as_deref().unwrap_or(metrics::UNMATCHED_ROUTE);
    state.metrics.observe_request(method, route, resp.status().as_u16(), start.elapsed());
    resp
}

/// Authenticates the bearer token and applies the per-token rate limit.
async fn authenticate(State(state): State<SharedState>, mut req: Request, next: Next) -> Response {
    let header = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_string);
    let principal = match state.auth.authenticate(header.as_deref()).await {
        Ok(p) => p,
        Err(AuthError::Store(e)) => return ApiError::from(e).into_response(),
        Err(e) => return ApiError::unauthorized(e.to_string()).into_response(),
    };
    if let Some((limiter, bucket)) = &state.limiter {
        match limiter.try_take(&principal.name, *bucket, 1.0).await {
            Ok(Decision::Allowed) => {}
            Ok(Decision::Limited { retry_after }) => {
                state.metrics.rate_limited.inc();
                let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
                return ApiError::too_many_requests(secs).into_response();
            }
            Err(e) => {
                // Fail open: the API keeps serving without Redis.
                tracing::warn!(error = %e, "rate limiter unavailable; request not limited");
            }
        }
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// Refuses unless the caller may act with `role` in `namespace`; the cluster
/// namespace (cluster-scoped policies) needs the role everywhere (`ROLE:*`).
pub(crate) fn require(principal: &Principal, role: crate::auth::Role, namespace: &str) -> Result<(), ApiError> {
    if principal.allows(role, namespace) {
        return Ok(());
    }
    let verb = match role {
        crate::auth::Role::Metrics => "read metrics",
        crate::auth::Role::Read => "read",
        crate::auth::Role::Write => "write",
        crate::auth::Role::Admin => "administer",
    };
    let place = if namespace.is_empty() {
        format!("cluster-wide (needs {}:*)", role.as_str())
    } else {
        format!("in namespace {namespace:?}")
    };
    Err(ApiError::forbidden(format!("token {:?} may not {verb} {place}", principal.name)))
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: SharedState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone());
    serve_router(listener, app, async move {
        shutdown.await;
        state.shutdown.send_replace(true);
    })
    .await
}

/// Serves any router (the full API, or [`ops_router`]).
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app.layer(tower_http::trace::TraceLayer::new_for_http());
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
