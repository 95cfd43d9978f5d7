//! Input that must not hurt the server, over real HTTP and real Postgres: a
//! Redis that never answers, unbounded metric labels, YAML that expands
//! without bound.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::start_with_redis;
use desired_state::api::ApiConfig;
use desired_state::ratelimit::TokenBucket;
use desired_state::redis::{RedisHandle, RedisSettings};
use reqwest::{Method, StatusCode};
use sqlx::PgPool;

/// A "Redis" that accepts connections and never answers: what a client sees of
/// a server behind a network that silently drops its packets. Counts the
/// connections it accepted and keeps them open.
async fn silent_redis() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    (url, accepted)
}

#[sqlx::test(migrations = false)]
async fn a_silent_redis_neither_fails_nor_serialises_requests(pool: PgPool) {
    let (url, accepted) = silent_redis().await;
    // A connection attempt may take 30 s; one operation at most 200 ms.
    let settings = RedisSettings { op_timeout: Duration::from_millis(200), connect_timeout: Duration::from_secs(30) };
    let redis = Arc::new(RedisHandle::with_settings(&url, settings).unwrap());
    let config = ApiConfig {
        rate_limit: Some(TokenBucket { capacity: 5.0, refill_per_sec: 1.0 }),
        redis_prefix: common::unique_prefix(),
        ..Default::default()
    };
    let api = start_with_redis(pool, config, redis).await;

    // 32 requests at once, more than the bucket would allow: the rate limit
    // fails open, so every one is served.
    let requests = (0..32).map(|_| api.call(Method::GET, "/v1/relays", Some(&api.admin), None));
    // The bound is the connection attempt's own timeout: every answer came while
    // the one attempt was still pending, so none waited for it or for another.
    let answers = tokio::time::timeout(Duration::from_secs(25), futures::future::join_all(requests))
        .await
        .expect("requests waited for the stalled connection attempt");
    for r in &answers {
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    // One shared connection attempt, not one per request.
    let attempts = accepted.load(Ordering::SeqCst);
    assert!(attempts <= 1, "{attempts} connections to Redis for 32 requests");

    // Readiness says which dependency is missing, within the same bound.
    let ready = api.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE, "{}", ready.text);
    assert_eq!(ready.body["postgres"], "ok");
    assert!(ready.body["redis"].as_str().unwrap().starts_with("unavailable"), "{}", ready.text);
}

#[sqlx::test(migrations = false)]
async fn a_working_redis_still_limits(pool: PgPool) {
    // The same settings against the real Redis: the limit holds.
    let config = ApiConfig {
        rate_limit: Some(TokenBucket { capacity: 3.0, refill_per_sec: 0.1 }),
        redis_prefix: common::unique_prefix(),
        ..Default::default()
    };
    let api = common::start_with(pool, config).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(api.get("/v1/relays").await.status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 3, "{statuses:?}");
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS));
}

/// The number of request series on `/metrics`.
async fn request_series(api: &common::TestApi) -> usize {
    let text = api.get("/metrics").await.text;
    text.lines().filter(|l| l.starts_with("mooring_http_request")).count()
}

#[sqlx::test(migrations = false)]
async fn made_up_methods_and_paths_add_no_series(pool: PgPool) {
    let api = common::start(pool).await;
    // One of each sort first, so the series they share exist.
    let warm_up =
        [("FOO", "/v1/relays"), ("BAR", "/nowhere"), ("GET", "/nowhere"), ("GET", "/v1/relays"), ("GET", "/metrics")];
    for (method, path) in warm_up {
        api.call(Method::from_bytes(method.as_bytes()).unwrap(), path, Some(&api.admin), None).await;
    }
    let before = request_series(&api).await;
    for i in 0..40 {
        let method = Method::from_bytes(format!("M{i}X").as_bytes()).unwrap();
        let r = api.call(method.clone(), "/v1/relays", Some(&api.admin), None).await;
        assert!(r.status.is_client_error(), "{method}: {}", r.status);
        api.call(method, &format!("/made/up/{i}"), None, None).await;
        api.call(Method::GET, &format!("/nowhere/{i}?x={i}"), None, None).await;
    }
    assert_eq!(request_series(&api).await, before, "unknown methods or paths added series");
    let text = api.get("/metrics").await.text;
    assert!(text.contains(r#"method="other",route="/v1/{plural}""#), "{text}");
    assert!(text.contains(r#"route="unmatched""#), "{text}");
    assert!(!text.contains("M1X") && !text.contains("/made/up"), "{text}");
}

/// A list of a thousand values under nine levels of ten aliases each: 3 KB
/// that expand to 10^12 values.
fn alias_bomb() -> String {
    let mut text = format!("a0: &a0 [{}x]\n", "x, ".repeat(999));
    for i in 1..10 {
        let p = i - 1;
        text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
    }
    text
}

#[sqlx::test(migrations = false)]
async fn bodies_that_expand_without_bound_get_400(pool: PgPool) {
    let api = common::start(pool).await;
    let writer = api.token("writer", &["write:team-a"]).await;
    let reader = api.token("reader", &["read:*"]).await;
    let before = api.snapshot().await;
    let deep_json = format!("{{\"kind\": \"Relay\", \"spec\": {}1{}}}", "[".repeat(100), "]".repeat(100));
    let deep_yaml = format!("kind: Relay\nspec: {}1{}\n", "[".repeat(100), "]".repeat(100));
    let cases = [
        ("alias bomb, apply", Method::POST, "/v1/apply", "application/yaml", alias_bomb(), "values"),
        (
            "alias bomb, create",
            Method::POST,
            "/v1/namespaces/team-a/relays",
            "application/yaml",
            alias_bomb(),
            "values",
        ),
        ("deep JSON", Method::POST, "/v1/apply", "application/json", deep_json, "levels deep"),
        ("deep YAML", Method::POST, "/v1/namespaces/team-a/relays", "application/yaml", deep_yaml, "levels deep"),
    ];
    for (what, method, path, ct, body, why) in cases {
        let r = api.call(method, path, Some(&writer), Some((ct, body))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.text);
        assert_eq!(r.body["error"]["code"], "BadRequest", "{what}");
        assert!(r.body["error"]["message"].as_str().unwrap().contains(why), "{what}: {}", r.text);
    }
    // A token that may write nowhere is refused before its body is read.
    let r = api.call(Method::POST, "/v1/apply", Some(&reader), Some(("application/yaml", alias_bomb()))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = api.call(Method::POST, "/v1/apply", None, Some(("application/yaml", alias_bomb()))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert_eq!(api.snapshot().await, before);
}

#[sqlx::test(migrations = false)]
async fn concurrent_applies_in_opposite_orders_never_answer_500(pool: PgPool) {
    let api = common::start(pool).await;
    let names: Vec<String> = (0..12).map(|i| format!("r{i:02}")).collect();
    let docs =
        |image: &str| -> Vec<serde_json::Value> { names.iter().map(|n| common::relay(n, "default", image)).collect() };
    let apply = |body: Vec<serde_json::Value>| {
        let body = serde_json::Value::Array(body).to_string();
        api.call(Method::POST, "/v1/apply", Some(&api.admin), Some(("application/json", body)))
    };
    let mut statuses = Vec::new();
    for round in 0..8 {
        // Creates in the first round, updates after; the two bodies list the
        // same documents in opposite orders, and a third carries a NUL.
        let forward = docs(&format!("nginx:{round}.1"));
        let mut backward = docs(&format!("nginx:{round}.2"));
        backward.reverse();
        let mut poisoned = docs(&format!("nginx:{round}.3"));
        poisoned[5]["metadata"]["annotations"] = serde_json::json!({"note": "\u{0}"});
        let (a, b, c) = tokio::join!(apply(forward), apply(backward), apply(poisoned));
        assert_eq!(c.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", c.text);
        assert_eq!(c.body["error"]["details"][0]["field"], "items[5].metadata.annotations.note", "{}", c.text);
        for r in [a, b] {
            assert!(r.status == StatusCode::OK || r.status == StatusCode::CONFLICT, "round {round}: {}", r.text);
            statuses.push(r.status);
        }
    }
    assert!(statuses.iter().filter(|s| **s == StatusCode::OK).count() >= statuses.len() / 2, "{statuses:?}");
    // Whatever won, every resource is whole: one spec per name.
    let list = api.get("/v1/namespaces/default/relays").await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), names.len());
}
