//! A real API server on a loopback port over a fresh test database and the
//! local Redis, and a client for it.

#![allow(dead_code)]

use std::sync::Arc;

use desired_state::api::{self, ApiConfig, AppState};
use desired_state::redis::RedisHandle;
use desired_state::signing::Signer;
use desired_state::store::{ChangeFeed, Store};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::PgPool;

pub struct TestApi {
    pub base: String,
    pub http: reqwest::Client,
    pub admin: String,
    pub store: Store,
    _server: tokio::task::JoinHandle<()>,
}

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A unique Redis key prefix per test, so parallel tests never share buckets.
pub fn unique_prefix() -> String {
    format!("mooring-test-{}", uuid::Uuid::new_v4())
}

pub async fn start(pool: PgPool) -> TestApi {
    start_with(pool, ApiConfig { redis_prefix: unique_prefix(), ..ApiConfig::default() }).await
}

pub async fn start_with(pool: PgPool, config: ApiConfig) -> TestApi {
    let redis = Arc::new(RedisHandle::new(&redis_url()).unwrap());
    start_with_redis(pool, config, redis).await
}

/// A server whose Redis is `redis` (a stalled one, say).
pub async fn start_with_redis(pool: PgPool, config: ApiConfig, redis: Arc<RedisHandle>) -> TestApi {
    let store = Store::from_pool(pool, Signer::generate());
    store.migrate().await.expect("migrate");
    let admin = format!("admin-{}", uuid::Uuid::new_v4());
    store.ensure_token("bootstrap", &admin, &["admin:*".to_string()]).await.unwrap();
    let feed = ChangeFeed::start(store.clone());
    let state = Arc::new(AppState::new(store.clone(), feed, Some(redis), config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        api::serve(listener, state, std::future::pending()).await.unwrap();
    });
    TestApi { base, http: reqwest::Client::new(), admin, store, _server: server }
}

/// A response, decoded.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl TestApi {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<(&str, String)>) -> Resp {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some((ct, b)) = body {
            req = req.header("content-type", ct).body(b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, headers, body, text }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, Some(&self.admin.clone()), None).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Resp {
        self.call(Method::POST, path, Some(&self.admin.clone()), Some(("application/json", body.to_string()))).await
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Resp {
        self.call(Method::PUT, path, Some(&self.admin.clone()), Some(("application/json", body.to_string()))).await
    }

    pub async fn token(&self, name: &str, scopes: &[&str]) -> String {
        let r = self.post_json("/v1/tokens", &serde_json::json!({"name": name, "scopes": scopes})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.body["token"].as_str().unwrap().to_string()
    }

    /// A snapshot of everything a client can change, to prove a refused request
    /// changed nothing.
    pub async fn snapshot(&self) -> Value {
        let rows: Vec<(String, String, String, Value, i64, i64)> = sqlx::query_as(
            "SELECT kind, namespace, name, spec, generation, resource_version FROM resources ORDER BY kind, namespace, name",
        )
        .fetch_all(self.store.pool())
        .await
        .unwrap();
        let revisions: i64 =
            sqlx::query_scalar("SELECT count(*) FROM revisions").fetch_one(self.store.pool()).await.unwrap();
        let changes: i64 =
            sqlx::query_scalar("SELECT count(*) FROM changes").fetch_one(self.store.pool()).await.unwrap();
        serde_json::json!({"resources": rows.iter().map(|r| serde_json::json!([r.0, r.1, r.2, r.3, r.4, r.5])).collect::<Vec<_>>(), "revisions": revisions, "changes": changes})
    }
}

pub fn relay(name: &str, namespace: &str, image: &str) -> Value {
    serde_json::json!({
        "apiVersion": "mooring/v1",
        "kind": "Relay",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "cluster": "prod",
            "containers": [{"name": "app", "image": image, "port": 8000}],
            "scaling": {"min": 1, "max": 4}
        }
    })
}

pub fn worker(name: &str, namespace: &str) -> Value {
    serde_json::json!({
        "apiVersion": "mooring/v1",
        "kind": "Worker",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"cluster": "batch", "container": {"name": "w", "image": "ghcr.io/acme/w:1"}}
    })
}
