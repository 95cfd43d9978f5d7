//! The HTTP API over real HTTP, real Postgres (a fresh database per test) and
//! the local Redis.

mod common;

use common::{Resp, TestApi, relay, start, worker};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

const RELAYS: &str = "/v1/namespaces/default/relays";

#[sqlx::test(migrations = false)]
async fn crud_cycle(pool: PgPool) {
    let api = start(pool).await;
    // Create.
    let r = api.post_json(RELAYS, &relay("gw", "default", "nginx:1.27")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["metadata"]["generation"], 1);
    assert_eq!(r.body["spec"]["cpu"], 256, "defaults are filled in");
    assert_eq!(r.body["metadata"]["finalizers"], json!(["mooring.io/cleanup"]));
    let uid = r.body["metadata"]["uid"].as_str().unwrap().to_string();
    let rv1 = r.body["metadata"]["resourceVersion"].as_str().unwrap().to_string();

    // Create again: 409.
    let again = api.post_json(RELAYS, &relay("gw", "default", "nginx:1.27")).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.body["error"]["code"], "AlreadyExists");

    // Read.
    let got = api.get(&format!("{RELAYS}/gw")).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["metadata"]["uid"], uid);

    // Replace with a new image: generation 2, a revision per generation.
    let mut doc = relay("gw", "default", "nginx:1.28");
    doc["metadata"]["resourceVersion"] = json!(rv1);
    let put = api.put_json(&format!("{RELAYS}/gw"), &doc).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.text);
    assert_eq!(put.body["metadata"]["generation"], 2);
    assert_eq!(put.body["spec"]["containers"][0]["image"], "nginx:1.28");

    // The same spec again is a no-op: no generation, no revision.
    let mut same = relay("gw", "default", "nginx:1.28");
    same["metadata"]["resourceVersion"] = put.body["metadata"]["resourceVersion"].clone();
    let noop = api.put_json(&format!("{RELAYS}/gw"), &same).await;
    assert_eq!(noop.status, StatusCode::OK);
    assert_eq!(noop.body["metadata"]["generation"], 2);
    assert_eq!(noop.body["metadata"]["resourceVersion"], put.body["metadata"]["resourceVersion"]);

    // Patch a label: resourceVersion moves, generation does not.
    let patch = api
        .call(
            Method::PATCH,
            &format!("{RELAYS}/gw"),
            Some(&api.admin),
            Some(("application/merge-patch+json", json!({"metadata": {"labels": {"tier": "edge"}}}).to_string())),
        )
        .await;
    assert_eq!(patch.status, StatusCode::OK, "{}", patch.text);
    assert_eq!(patch.body["metadata"]["generation"], 2);
    assert_eq!(patch.body["metadata"]["labels"]["tier"], "edge");
    assert_ne!(patch.body["metadata"]["resourceVersion"], put.body["metadata"]["resourceVersion"]);

    // Patch the spec: generation 3.
    let patch = api
        .call(
            Method::PATCH,
            &format!("{RELAYS}/gw"),
            Some(&api.admin),
            Some(("application/merge-patch+json", json!({"spec": {"scaling": {"max": 6}}}).to_string())),
        )
        .await;
    assert_eq!(patch.body["metadata"]["generation"], 3, "{}", patch.text);
    assert_eq!(patch.body["spec"]["scaling"]["max"], 6);

    // History: three signed revisions, newest first.
    let revs = api.get(&format!("{RELAYS}/gw/revisions")).await;
    let gens: Vec<i64> =
        revs.body["items"].as_array().unwrap().iter().map(|r| r["generation"].as_i64().unwrap()).collect();
    assert_eq!(gens, vec![3, 2, 1]);
    assert_eq!(revs.body["items"][0]["source"], "api");
    assert_eq!(revs.body["items"][0]["actor"], "bootstrap");

    // Rollback to generation 1: a new generation 4 with the old spec.
    let rb = api.post_json(&format!("{RELAYS}/gw/rollback"), &json!({"revision": 1})).await;
    assert_eq!(rb.status, StatusCode::OK, "{}", rb.text);
    assert_eq!(rb.body["metadata"]["generation"], 4);
    assert_eq!(rb.body["spec"]["containers"][0]["image"], "nginx:1.27");
    let revs = api.get(&format!("{RELAYS}/gw/revisions")).await;
    assert_eq!(revs.body["items"][0]["source"], "rollback");
    let events = api.get(&format!("{RELAYS}/gw/events")).await;
    assert_eq!(events.body["items"][0]["reason"], "RolledBack");

    // List.
    api.post_json(RELAYS, &relay("gw2", "default", "nginx:1")).await;
    let list = api.get(RELAYS).await;
    assert_eq!(list.body["kind"], "RelayList");
    assert_eq!(list.body["items"].as_array().unwrap().len(), 2);

    // Delete: 202 with deletionTimestamp; the finalizer keeps it until the
    // controller releases it.
    let del = api.call(Method::DELETE, &format!("{RELAYS}/gw"), Some(&api.admin), None).await;
    assert_eq!(del.status, StatusCode::ACCEPTED);
    assert!(del.body["metadata"]["deletionTimestamp"].is_string());
    let row = api.store.get(api_types::Kind::Relay, "default", "gw").await.unwrap();
    let gone = api.store.remove_finalizer(row.uid, api_types::meta::FINALIZER).await.unwrap();
    assert!(gone.is_none());
    assert_eq!(api.get(&format!("{RELAYS}/gw")).await.status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrations = false)]
async fn two_writers_with_the_same_version_exactly_one_wins(pool: PgPool) {
    let api = start(pool).await;
    let r = api.post_json(RELAYS, &relay("gw", "default", "nginx:1")).await;
    let rv = r.body["metadata"]["resourceVersion"].clone();
    let mut futures = Vec::new();
    for i in 0..8 {
        let mut doc = relay("gw", "default", &format!("nginx:{}", 10 + i));
        doc["metadata"]["resourceVersion"] = rv.clone();
        let api = &api;
        futures.push(async move { api.put_json(&format!("{RELAYS}/gw"), &doc).await });
    }
    let results: Vec<Resp> = futures::future::join_all(futures).await;
    let ok = results.iter().filter(|r| r.status == StatusCode::OK).count();
    let conflict = results.iter().filter(|r| r.status == StatusCode::CONFLICT).count();
    assert_eq!((ok, conflict), (1, 7), "{:?}", results.iter().map(|r| r.status).collect::<Vec<_>>());
    let now = api.get(&format!("{RELAYS}/gw")).await;
    assert_eq!(now.body["metadata"]["generation"], 2);
    let revisions: i64 =
        sqlx::query_scalar("SELECT count(*) FROM revisions").fetch_one(api.store.pool()).await.unwrap();
    assert_eq!(revisions, 2);
}

#[sqlx::test(migrations = false)]
async fn namespace_scoped_tokens_stay_in_their_namespace(pool: PgPool) {
    let api = start(pool).await;
    let team = api.token("payments-ci", &["write:payments"]).await;
    let reader = api.token("viewer", &["read:payments"]).await;
    api.post_json(RELAYS, &relay("other", "default", "nginx:1")).await;

    let ok = api
        .call(
            Method::POST,
            "/v1/namespaces/payments/relays",
            Some(&team),
            Some(("application/json", relay("gw", "payments", "nginx:1").to_string())),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);

    let before = api.snapshot().await;
    let write_elsewhere = api
        .call(
            Method::POST,
            RELAYS,
            Some(&team),
            Some(("application/json", relay("x", "default", "nginx:1").to_string())),
        )
        .await;
    assert_eq!(write_elsewhere.status, StatusCode::FORBIDDEN);
    assert_eq!(write_elsewhere.body["error"]["code"], "Forbidden");
    let read_elsewhere = api.call(Method::GET, &format!("{RELAYS}/other"), Some(&team), None).await;
    assert_eq!(read_elsewhere.status, StatusCode::FORBIDDEN);
    let list_elsewhere = api.call(Method::GET, RELAYS, Some(&team), None).await;
    assert_eq!(list_elsewhere.status, StatusCode::FORBIDDEN);
    // Listing across namespaces shows only its own.
    let all = api.call(Method::GET, "/v1/relays", Some(&team), None).await;
    let names: Vec<&str> =
        all.body["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["gw"]);
    // Apply into another namespace is refused as a whole.
    let apply = api
        .call(
            Method::POST,
            "/v1/apply",
            Some(&team),
            Some((
                "application/json",
                json!([relay("gw", "payments", "nginx:2"), relay("y", "default", "nginx:1")]).to_string(),
            )),
        )
        .await;
    assert_eq!(apply.status, StatusCode::FORBIDDEN);
    // A reader cannot write, even in its namespace; nor manage tokens.
    let w = api
        .call(
            Method::POST,
            "/v1/namespaces/payments/relays",
            Some(&reader),
            Some(("application/json", relay("z", "payments", "nginx:1").to_string())),
        )
        .await;
    assert_eq!(w.status, StatusCode::FORBIDDEN);
    let t = api.call(Method::GET, "/v1/tokens", Some(&team), None).await;
    assert_eq!(t.status, StatusCode::FORBIDDEN);
    assert_eq!(api.snapshot().await, before, "refused requests changed nothing");

    // No token, a wrong token: 401.
    assert_eq!(api.call(Method::GET, RELAYS, None, None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(api.call(Method::GET, RELAYS, Some("nope"), None).await.status, StatusCode::UNAUTHORIZED);
}

#[sqlx::test(migrations = false)]
async fn rate_limit_answers_429_with_retry_after(pool: PgPool) {
    let api = common::start_with(
        pool,
        desired_state::api::ApiConfig {
            rate_limit: Some(desired_state::ratelimit::TokenBucket { capacity: 5.0, refill_per_sec: 0.5 }),
            redis_prefix: common::unique_prefix(),
            ..Default::default()
        },
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..8 {
        statuses.push(api.get(RELAYS).await);
    }
    let ok = statuses.iter().filter(|r| r.status == StatusCode::OK).count();
    assert_eq!(ok, 5, "the burst is 5: {:?}", statuses.iter().map(|r| r.status).collect::<Vec<_>>());
    let limited = statuses.iter().find(|r| r.status == StatusCode::TOO_MANY_REQUESTS).expect("a 429");
    let retry: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "retry-after {retry}");
    assert_eq!(limited.body["error"]["code"], "TooManyRequests");
    // Another token has its own bucket.
    let other = "other-token-secret";
    api.store.ensure_token("other", other, &["read:*".to_string()]).await.unwrap();
    assert_eq!(api.call(Method::GET, RELAYS, Some(other), None).await.status, StatusCode::OK);
}

#[sqlx::test(migrations = false)]
async fn bad_input_gets_its_code_and_changes_nothing(pool: PgPool) {
    let api = start(pool).await;
    let created = api.post_json(RELAYS, &relay("gw", "default", "nginx:1")).await;
    let rv = created.body["metadata"]["resourceVersion"].clone();
    let before = api.snapshot().await;
    let admin = api.admin.clone();
    type Case<'a> = (&'a str, Method, String, Option<(&'a str, String)>, StatusCode, &'a str);
    let cases: Vec<Case> = vec![
        ("malformed JSON", Method::POST, RELAYS.into(), Some(("application/json", "{\"kind\": ".into())), StatusCode::BAD_REQUEST, "BadRequest"),
        ("malformed YAML", Method::POST, RELAYS.into(), Some(("application/yaml", "kind: [".into())), StatusCode::BAD_REQUEST, "BadRequest"),
        ("not an object", Method::POST, RELAYS.into(), Some(("application/json", "[1]".into())), StatusCode::BAD_REQUEST, "BadRequest"),
        ("two documents to create", Method::POST, RELAYS.into(), Some(("application/yaml", "a: 1\n---\nb: 2\n".into())), StatusCode::BAD_REQUEST, "BadRequest"),
        ("form body", Method::POST, RELAYS.into(), Some(("application/x-www-form-urlencoded", "a=b".into())), StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType"),
        ("over 1 MiB", Method::POST, "/v1/apply".into(), Some(("application/yaml", format!("# {}\n", "x".repeat(1024 * 1024 + 10)))), StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge"),
        ("validation", Method::POST, RELAYS.into(), Some(("application/json", json!({"kind": "Relay", "metadata": {"name": "Bad_Name"}, "spec": {"cluster": "prod", "containers": [], "scaling": {"min": 5, "max": 1}}}).to_string())), StatusCode::UNPROCESSABLE_ENTITY, "Invalid"),
        ("kind mismatch", Method::POST, RELAYS.into(), Some(("application/json", worker("w", "default").to_string())), StatusCode::BAD_REQUEST, "BadRequest"),
        ("namespace mismatch", Method::POST, RELAYS.into(), Some(("application/json", relay("x", "other", "nginx:1").to_string())), StatusCode::BAD_REQUEST, "BadRequest"),
        ("create existing", Method::POST, RELAYS.into(), Some(("application/json", relay("gw", "default", "nginx:9").to_string())), StatusCode::CONFLICT, "AlreadyExists"),
        ("stale version", Method::PUT, format!("{RELAYS}/gw"), Some(("application/json", { let mut d = relay("gw", "default", "nginx:2"); d["metadata"]["resourceVersion"] = json!("123456789"); d.to_string() })), StatusCode::CONFLICT, "Conflict"),
        ("replace without version", Method::PUT, format!("{RELAYS}/gw"), Some(("application/json", relay("gw", "default", "nginx:2").to_string())), StatusCode::UNPROCESSABLE_ENTITY, "Invalid"),
        ("replace renames", Method::PUT, format!("{RELAYS}/gw"), Some(("application/json", { let mut d = relay("other", "default", "nginx:2"); d["metadata"]["resourceVersion"] = rv.clone(); d.to_string() })), StatusCode::BAD_REQUEST, "BadRequest"),
        ("replace missing", Method::PUT, format!("{RELAYS}/nope"), Some(("application/json", { let mut d = relay("nope", "default", "nginx:2"); d["metadata"]["resourceVersion"] = rv.clone(); d.to_string() })), StatusCode::NOT_FOUND, "NotFound"),
        ("patch invalid", Method::PATCH, format!("{RELAYS}/gw"), Some(("application/merge-patch+json", json!({"spec": {"scaling": {"min": 9, "max": 2}}}).to_string())), StatusCode::UNPROCESSABLE_ENTITY, "Invalid"),
        ("patch renames", Method::PATCH, format!("{RELAYS}/gw"), Some(("application/merge-patch+json", json!({"metadata": {"name": "x"}}).to_string())), StatusCode::UNPROCESSABLE_ENTITY, "Invalid"),
        ("patch as YAML", Method::PATCH, format!("{RELAYS}/gw"), Some(("application/yaml", "spec: {}".into())), StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType"),
        ("patch not JSON", Method::PATCH, format!("{RELAYS}/gw"), Some(("application/merge-patch+json", "{".into())), StatusCode::BAD_REQUEST, "BadRequest"),
        ("unknown kind", Method::GET, "/v1/namespaces/default/pods".into(), None, StatusCode::NOT_FOUND, "NotFound"),
        ("unknown resource", Method::GET, format!("{RELAYS}/nope"), None, StatusCode::NOT_FOUND, "NotFound"),
        ("unknown path", Method::GET, "/v2/anything".into(), None, StatusCode::NOT_FOUND, "NotFound"),
        ("bad namespace", Method::GET, "/v1/namespaces/Bad_NS/relays".into(), None, StatusCode::BAD_REQUEST, "BadRequest"),
        ("bad selector", Method::GET, format!("{RELAYS}?labelSelector=a%20in%20(x"), None, StatusCode::BAD_REQUEST, "BadRequest"),
        ("bad limit", Method::GET, format!("{RELAYS}?limit=abc"), None, StatusCode::BAD_REQUEST, "BadRequest"),
        ("limit out of range", Method::GET, format!("{RELAYS}?limit=0"), None, StatusCode::BAD_REQUEST, "BadRequest"),
        ("bad continue", Method::GET, format!("{RELAYS}?continue=%%%"), None, StatusCode::BAD_REQUEST, "BadRequest"),
        ("rollback to a missing revision", Method::POST, format!("{RELAYS}/gw/rollback"), Some(("application/json", json!({"revision": 99}).to_string())), StatusCode::NOT_FOUND, "NotFound"),
        ("rollback with a bad body", Method::POST, format!("{RELAYS}/gw/rollback"), Some(("application/json", json!({"rev": 1}).to_string())), StatusCode::BAD_REQUEST, "BadRequest"),
        ("apply with one invalid document", Method::POST, "/v1/apply".into(), Some(("application/json", json!([relay("new-one", "default", "nginx:1"), {"apiVersion": "mooring/v1", "kind": "Relay", "metadata": {"name": "bad"}, "spec": {}}]).to_string())), StatusCode::UNPROCESSABLE_ENTITY, "Invalid"),
        ("apply duplicates", Method::POST, "/v1/apply".into(), Some(("application/json", json!([relay("dup", "default", "nginx:1"), relay("dup", "default", "nginx:2")]).to_string())), StatusCode::UNPROCESSABLE_ENTITY, "Invalid"),
        ("gitops without revision", Method::POST, "/v1/apply?source=gitops".into(), Some(("application/json", json!([relay("g", "default", "nginx:1")]).to_string())), StatusCode::BAD_REQUEST, "BadRequest"),
        ("prune without gitops", Method::POST, "/v1/apply?prune=true".into(), Some(("application/json", json!([relay("g", "default", "nginx:1")]).to_string())), StatusCode::BAD_REQUEST, "BadRequest"),
        ("watch with a bad kind", Method::GET, "/v1/watch?kind=pods".into(), None, StatusCode::BAD_REQUEST, "BadRequest"),
        ("token with a bad scope", Method::POST, "/v1/tokens".into(), Some(("application/json", json!({"name": "t", "scopes": ["root"]}).to_string())), StatusCode::UNPROCESSABLE_ENTITY, "Invalid"),
        ("schema of an unknown kind", Method::GET, "/v1/schemas/pod".into(), None, StatusCode::NOT_FOUND, "NotFound"),
        ("NUL in an annotation", Method::POST, RELAYS.into(), Some(("application/json", { let mut d = relay("nul", "default", "nginx:1"); d["metadata"]["annotations"] = json!({"note": "a\u{0}b"}); d.to_string() })), StatusCode::UNPROCESSABLE_ENTITY, "Invalid"),
        ("NUL in a spec value, apply", Method::POST, "/v1/apply".into(), Some(("application/json", { let mut d = relay("nul", "default", "nginx:1"); d["spec"]["containers"][0]["env"] = json!({"A": "\u{0}"}); json!([d]).to_string() })), StatusCode::UNPROCESSABLE_ENTITY, "Invalid"),
        ("NUL in YAML", Method::POST, RELAYS.into(), Some(("application/yaml", "kind: Relay\nmetadata: {name: nul, annotations: {note: \"a\\0b\"}}\nspec: {cluster: prod, containers: [{name: app, image: 'nginx:1'}]}\n".into())), StatusCode::UNPROCESSABLE_ENTITY, "Invalid"),
        ("NUL through a patch", Method::PATCH, format!("{RELAYS}/gw"), Some(("application/merge-patch+json", json!({"metadata": {"annotations": {"n": "\u{0}"}}}).to_string())), StatusCode::UNPROCESSABLE_ENTITY, "Invalid"),
        ("alias bomb", Method::POST, "/v1/apply".into(), Some(("application/yaml", format!("a0: &a0 [{}x]\n{}", "x, ".repeat(999), (1..10).map(|i| format!("a{i}: &a{i} [{}]\n", vec![format!("*a{}", i - 1); 10].join(", "))).collect::<String>()))), StatusCode::BAD_REQUEST, "BadRequest"),
        ("nesting too deep", Method::POST, "/v1/apply".into(), Some(("application/json", format!("[{}]", "[".repeat(100) + &"]".repeat(100)))), StatusCode::BAD_REQUEST, "BadRequest"),
    ];
    for (what, method, path, body, status, code) in cases {
        let r = api.call(method, &path, Some(&admin), body).await;
        assert_eq!(r.status, status, "{what}: {}", r.text);
        assert_eq!(r.body["error"]["code"], code, "{what}: {}", r.text);
        assert!(r.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: no message");
    }
    assert_eq!(api.snapshot().await, before, "a refused request changed the store");
}

#[sqlx::test(migrations = false)]
async fn validation_errors_list_every_field_path(pool: PgPool) {
    let api = start(pool).await;
    let bad = json!({
        "apiVersion": "mooring/v1", "kind": "Relay",
        "metadata": {"name": "gw"},
        "spec": {"cluster": "prod", "cpu": 256, "memory": 4096,
                 "containers": [{"name": "app", "image": "nginx:1", "port": 80}],
                 "scaling": {"min": 5, "max": 1}, "colour": "blue"}
    });
    let r = api.post_json(RELAYS, &bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> =
        r.body["error"]["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"spec.colour"), "{fields:?}");
    let apply = api
        .call(Method::POST, "/v1/apply", Some(&api.admin), Some(("application/json", json!([relay("ok", "default", "nginx:1"), {"apiVersion": "mooring/v1", "kind": "Worker", "metadata": {"name": "w"}, "spec": {"cluster": "c", "container": {"name": "w", "image": "x:1"}, "scaling": {"min": 3, "max": 1}}}]).to_string())))
        .await;
    let fields: Vec<&str> =
        apply.body["error"]["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    assert_eq!(fields, vec!["items[1].spec.scaling.max"]);
}

#[sqlx::test(migrations = false)]
async fn yaml_in_and_out(pool: PgPool) {
    let api = start(pool).await;
    let yaml = "apiVersion: mooring/v1\nkind: Worker\nmetadata:\n  name: conv\nspec:\n  cluster: batch\n  container: {name: c, image: 'ghcr.io/acme/c:1'}\n";
    let r = api
        .call(Method::POST, "/v1/namespaces/default/workers", Some(&api.admin), Some(("application/yaml", yaml.into())))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let resp = api
        .http
        .get(api.url("/v1/namespaces/default/workers/conv"))
        .bearer_auth(&api.admin)
        .header("accept", "application/yaml")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/yaml");
    let text = resp.text().await.unwrap();
    let v: Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(v["spec"]["scaling"]["queueDepthTarget"], 500);
}

#[sqlx::test(migrations = false)]
async fn labels_select_and_pages_continue(pool: PgPool) {
    let api = start(pool).await;
    for i in 0..7 {
        let mut d = relay(&format!("r{i}"), "default", "nginx:1");
        d["metadata"]["labels"] = json!({"tier": if i % 2 == 0 { "edge" } else { "core" }, "idx": i.to_string()});
        assert_eq!(api.post_json(RELAYS, &d).await.status, StatusCode::CREATED);
    }
    let names = |r: &Resp| -> Vec<String> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&api.get(&format!("{RELAYS}?labelSelector=tier%3Dedge")).await), vec!["r0", "r2", "r4", "r6"]);
    assert_eq!(names(&api.get(&format!("{RELAYS}?labelSelector=tier!%3Dedge")).await), vec!["r1", "r3", "r5"]);
    assert_eq!(names(&api.get(&format!("{RELAYS}?labelSelector=idx%20in%20(1,2),tier")).await), vec!["r1", "r2"]);
    assert_eq!(names(&api.get(&format!("{RELAYS}?labelSelector=!tier")).await), Vec::<String>::new());
    // Pages of 3.
    let mut all = Vec::new();
    let mut path = format!("{RELAYS}?limit=3");
    loop {
        let page = api.get(&path).await;
        all.extend(names(&page));
        match page.body["metadata"]["continue"].as_str() {
            Some(c) => path = format!("{RELAYS}?limit=3&continue={c}"),
            None => break,
        }
    }
    assert_eq!(all, (0..7).map(|i| format!("r{i}")).collect::<Vec<_>>());
}

#[sqlx::test(migrations = false)]
async fn apply_plans_then_applies_atomically(pool: PgPool) {
    let api = start(pool).await;
    api.post_json(RELAYS, &relay("a", "default", "nginx:1")).await;
    api.post_json(RELAYS, &relay("b", "default", "nginx:1")).await;
    let body =
        json!([relay("a", "default", "nginx:1"), relay("b", "default", "nginx:2"), worker("c", "default")]).to_string();
    let before = api.snapshot().await;
    let plan = api
        .call(Method::POST, "/v1/apply?dryRun=true", Some(&api.admin), Some(("application/json", body.clone())))
        .await;
    assert_eq!(plan.status, StatusCode::OK, "{}", plan.text);
    assert_eq!(plan.body["summary"], json!({"create": 1, "update": 1, "unchanged": 1, "delete": 0}));
    let update = plan.body["items"].as_array().unwrap().iter().find(|i| i["name"] == "b").unwrap();
    assert_eq!(
        update["diff"],
        json!([{"path": "spec.containers[0].image", "op": "replace", "from": "nginx:1", "to": "nginx:2"}])
    );
    assert_eq!(api.snapshot().await, before, "a dry run writes nothing");

    let applied = api.call(Method::POST, "/v1/apply", Some(&api.admin), Some(("application/json", body.clone()))).await;
    assert_eq!(applied.body["summary"], json!({"create": 1, "update": 1, "unchanged": 1, "delete": 0}));
    let again = api.call(Method::POST, "/v1/apply", Some(&api.admin), Some(("application/json", body))).await;
    assert_eq!(again.body["summary"], json!({"create": 0, "update": 0, "unchanged": 3, "delete": 0}));
}

#[sqlx::test(migrations = false)]
async fn gitops_apply_records_the_commit_and_prunes_safely(pool: PgPool) {
    let api = start(pool).await;
    let sha = "0123456789abcdef0123456789abcdef01234567";
    // "d" is protected in the source itself.
    let docs = |names: &[&str]| {
        let items: Vec<Value> = names
            .iter()
            .map(|n| {
                let mut d = relay(n, "default", "nginx:1");
                if *n == "d" {
                    d["metadata"]["annotations"] = json!({"mooring/prune": "disabled"});
                }
                d
            })
            .collect();
        Some(("application/json", Value::Array(items).to_string()))
    };
    let apply = |names: &'static [&'static str], extra: &'static str| {
        let api = &api;
        let docs = &docs;
        async move {
            api.call(
                Method::POST,
                &format!("/v1/apply?source=gitops&sourceName=platform&revision={sha}{extra}"),
                Some(&api.admin),
                docs(names),
            )
            .await
        }
    };
    let r = apply(&["a", "b", "c", "d", "e"], "").await;
    assert_eq!(r.body["summary"]["create"], 5, "{}", r.text);
    let revs = api.get(&format!("{RELAYS}/a/revisions")).await;
    assert_eq!(revs.body["items"][0]["commit"], sha);
    assert_eq!(revs.body["items"][0]["source"], "gitops");
    let a = api.get(&format!("{RELAYS}/a")).await;
    assert_eq!(a.body["metadata"]["labels"]["mooring/managed-by"], "gitops");
    // A resource created by hand is never pruned.
    api.post_json(RELAYS, &relay("manual", "default", "nginx:1")).await;

    // Pruning everything (an empty checkout) or most of it is refused.
    let before = api.snapshot().await;
    let wipe = api
        .call(
            Method::POST,
            &format!("/v1/apply?source=gitops&sourceName=platform&revision={sha}&prune=true"),
            Some(&api.admin),
            Some(("application/json", "[]".into())),
        )
        .await;
    assert_eq!(wipe.status, StatusCode::BAD_REQUEST, "no documents at all is not a plan: {}", wipe.text);
    let most = apply(&["a"], "&prune=true").await;
    assert_eq!(most.status, StatusCode::CONFLICT, "{}", most.text);
    assert!(most.body["error"]["message"].as_str().unwrap().contains("allowMassPrune"));
    assert_eq!(api.snapshot().await, before);

    let deleted = |r: &Resp| -> Vec<String> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["action"] == "delete")
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect()
    };
    // Dropping one of five prunes it, and only it.
    let one = apply(&["a", "b", "d", "e"], "&prune=true").await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.text);
    assert_eq!(deleted(&one), vec!["c"]);
    // The explicit flag allows a mass prune; protected and hand-made ones stay.
    let mass = apply(&["a"], "&prune=true&allowMassPrune=true").await;
    assert_eq!(deleted(&mass), vec!["b", "e"], "{}", mass.text);
    assert_eq!(api.get(&format!("{RELAYS}/d")).await.status, StatusCode::OK);
    assert!(api.get(&format!("{RELAYS}/manual")).await.body["metadata"]["deletionTimestamp"].is_null());
    assert_eq!(api.get(&format!("{RELAYS}/a")).await.body["metadata"]["appliedRevision"], sha);

    // Another source: may neither take over "a" nor declare itself as "platform",
    // prunes nothing of "platform", and a prune must name its source.
    let other = |extra: &str, docs: Value| {
        let path = format!("/v1/apply?source=gitops&sourceName=payments&revision={sha}{extra}");
        let api = &api;
        async move { api.call(Method::POST, &path, Some(&api.admin), Some(("application/json", docs.to_string()))).await }
    };
    let steal = other("", json!([relay("a", "default", "nginx:1")])).await;
    assert_eq!(steal.status, StatusCode::CONFLICT, "{}", steal.text);
    assert!(steal.text.contains("platform"), "{}", steal.text);
    let mut claims = relay("p1", "default", "nginx:1");
    claims["metadata"]["labels"] = json!({"mooring/source": "platform"});
    let claimed = other("", json!([claims])).await;
    assert_eq!(claimed.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", claimed.text);
    assert_eq!(claimed.body["error"]["details"][0]["field"], "items[0].metadata.labels.mooring/source");
    let own = other("&prune=true", json!([relay("p1", "default", "nginx:1"), relay("p2", "default", "nginx:1")])).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    assert_eq!(
        own.body["summary"]["delete"], 0,
        "another source's resources are not this one's to prune: {}",
        own.text
    );
    let unscoped = api
        .call(
            Method::POST,
            &format!("/v1/apply?source=gitops&revision={sha}&prune=true"),
            Some(&api.admin),
            Some(("application/json", json!([relay("p1", "default", "nginx:1")]).to_string())),
        )
        .await;
    assert_eq!(unscoped.status, StatusCode::BAD_REQUEST, "{}", unscoped.text);
}

#[sqlx::test(migrations = false)]
async fn openapi_lists_only_routes_that_exist(pool: PgPool) {
    let api = start(pool).await;
    let doc = api.get("/openapi.json").await;
    assert_eq!(doc.body["openapi"], "3.1.0");
    assert!(doc.body["components"]["schemas"]["Relay"].is_object());
    for op in desired_state::api::openapi::OPERATIONS {
        let path = op
            .path
            .replace("{namespace}", "default")
            .replace("{plural}", "relays")
            .replace("{name}", "x")
            .replace("{kind}", "relay");
        let method = Method::from_bytes(op.method.to_uppercase().as_bytes()).unwrap();
        let r = api.call(method, &path, None, None).await;
        if op.authenticated {
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{} {path} is not routed", op.method);
        } else if path != "/v1/watch" {
            assert!(r.status.is_success(), "{} {path}: {}", op.method, r.status);
        }
    }
    // Every $ref resolves.
    let text = doc.text.clone();
    for cap in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = cap.split('"').next().unwrap();
        assert!(doc.body["components"]["schemas"][name].is_object(), "dangling $ref {name}");
    }
}

#[sqlx::test(migrations = false)]
async fn health_readiness_metrics_and_schemas(pool: PgPool) {
    let api: TestApi = start(pool).await;
    assert_eq!(api.get("/healthz").await.status, StatusCode::OK);
    let ready = api.get("/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    assert_eq!(ready.body["postgres"], "ok");
    assert_eq!(ready.body["redis"], "ok");
    let schema = api.get("/v1/schemas/workers").await;
    assert_eq!(schema.body["title"], "Worker");
    api.get(RELAYS).await;
    let metrics = api.get("/metrics").await;
    assert!(
        metrics.text.contains(
            "mooring_http_requests_total{method=\"GET\",route=\"/v1/namespaces/{namespace}/{plural}\",status=\"200\"}"
        ),
        "{}",
        metrics.text
    );
}

/// `/metrics` names resources of every namespace: it needs a cluster-wide
/// scope, and a `metrics` token reads nothing else.
#[sqlx::test(migrations = false)]
async fn metrics_need_a_cluster_wide_token(pool: PgPool) {
    let api: TestApi = start(pool).await;
    let scraper = api.token("prometheus", &["metrics"]).await;
    let team = api.token("team", &["admin:payments"]).await;
    let reader = api.token("reader", &["read:*"]).await;
    let cases = [
        (None, "/metrics", StatusCode::UNAUTHORIZED),
        (Some(team.as_str()), "/metrics", StatusCode::FORBIDDEN),
        (Some(scraper.as_str()), "/metrics", StatusCode::OK),
        (Some(reader.as_str()), "/metrics", StatusCode::OK),
        (Some(api.admin.as_str()), "/metrics", StatusCode::OK),
        (Some(scraper.as_str()), RELAYS, StatusCode::FORBIDDEN),
        (Some(scraper.as_str()), "/v1/policies", StatusCode::FORBIDDEN),
        (Some(scraper.as_str()), "/v1/tokens", StatusCode::FORBIDDEN),
    ];
    for (token, path, want) in cases {
        let r = api.call(Method::GET, path, token, None).await;
        assert_eq!(r.status, want, "{path} with {token:?}: {}", r.text);
    }
    let listed = api.call(Method::GET, "/v1/relays", Some(&scraper), None).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert_eq!(listed.body["items"], serde_json::json!([]), "a metrics token lists nothing");
    let refused = api.call(Method::GET, "/metrics", Some(&team), None).await;
    assert!(refused.text.contains("metrics"), "the refusal names the scope: {}", refused.text);
}

#[sqlx::test(migrations = false)]
async fn two_documents_never_map_to_one_aws_resource(pool: PgPool) {
    let api = start(pool).await;
    let r = api.post_json(RELAYS, &relay("gw", "default", "nginx:1")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // A worker of the same name would take the relay's ECS service and family.
    let w = api.post_json("/v1/namespaces/default/workers", &worker("gw", "default")).await;
    assert_eq!(w.status, StatusCode::CONFLICT, "{}", w.text);
    let message = w.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("Relay default/gw") && message.contains("ecs:default_gw"), "{message}");
    // Nothing was written.
    assert_eq!(api.get("/v1/namespaces/default/workers/gw").await.status, StatusCode::NOT_FOUND);
    // Two workers naming the same queue, in different namespaces.
    let mut a = worker("a", "team-a");
    a["spec"]["queue"] = json!({"name": "jobs"});
    let mut b = worker("b", "team-b");
    b["spec"]["queue"] = json!({"name": "jobs"});
    assert_eq!(api.post_json("/v1/namespaces/team-a/workers", &a).await.status, StatusCode::CREATED);
    let clash = api.post_json("/v1/namespaces/team-b/workers", &b).await;
    assert_eq!(clash.status, StatusCode::CONFLICT, "{}", clash.text);
    assert!(clash.text.contains("Worker team-a/a"), "{}", clash.text);
    // Bulk apply is refused the same way, and writes nothing of the batch.
    let body = serde_json::to_string(&json!([relay("ok", "team-b", "nginx:1"), b])).unwrap();
    let applied = api.call(Method::POST, "/v1/apply", Some(&api.admin), Some(("application/json", body))).await;
    assert_eq!(applied.status, StatusCode::CONFLICT, "{}", applied.text);
    assert_eq!(api.get("/v1/namespaces/team-b/relays/ok").await.status, StatusCode::NOT_FOUND);
    // Once the first is gone (the controller released its finalizer), its names are free again.
    let deleted = api.call(Method::DELETE, &format!("{RELAYS}/gw"), Some(&api.admin), None).await;
    assert!(deleted.status.is_success(), "{}", deleted.text);
    let uid = r.body["metadata"]["uid"].as_str().unwrap().parse().unwrap();
    api.store.remove_finalizer(uid, "mooring.io/cleanup").await.unwrap();
    let w = api.post_json("/v1/namespaces/default/workers", &worker("gw", "default")).await;
    assert_eq!(w.status, StatusCode::CREATED, "{}", w.text);
}

#[sqlx::test(migrations = false)]
async fn identity_fields_are_immutable(pool: PgPool) {
    let api = start(pool).await;
    let path = "/v1/namespaces/default/workers/w";
    let created = api.post_json("/v1/namespaces/default/workers", &worker("w", "default")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let patch = |spec: Value| {
        let body = json!({"spec": spec}).to_string();
        api.call(Method::PATCH, path, Some(&api.admin), Some(("application/merge-patch+json", body)))
    };
    // Spelling out the default name is not a change.
    let same = patch(json!({"queue": {"name": "default_w"}})).await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.text);
    for (spec, field) in [
        (json!({"queue": {"name": "other"}}), "spec.queue.name"),
        (json!({"queue": {"name": "default_w.fifo", "fifo": true}}), "spec.queue.fifo"),
    ] {
        let r = patch(spec).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
        assert_eq!(r.body["error"]["details"][0]["field"], field, "{}", r.text);
    }
    // Unchanged in the store; the cluster may change (the service migrates).
    assert_eq!(api.get(path).await.body["metadata"]["generation"], 2);
    let moved = patch(json!({"cluster": "prod"})).await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text);
    // A cache engine version only goes up.
    let mut r = relay("c", "default", "nginx:1");
    r["spec"]["cache"] = json!({"engineVersion": "7.1"});
    assert_eq!(api.post_json(RELAYS, &r).await.status, StatusCode::CREATED);
    let down = api
        .call(
            Method::PATCH,
            &format!("{RELAYS}/c"),
            Some(&api.admin),
            Some(("application/merge-patch+json", json!({"spec": {"cache": {"engineVersion": "6.2"}}}).to_string())),
        )
        .await;
    assert_eq!(down.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", down.text);
    assert_eq!(down.body["error"]["details"][0]["field"], "spec.cache.engineVersion");
}

#[sqlx::test(migrations = false)]
async fn a_suspended_source_refuses_syncs_and_only_its_writers_may_suspend_it(pool: PgPool) {
    let api = start(pool).await;
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let sync = |token: String, dry_run: bool, image: &'static str| {
        let api = &api;
        async move {
            let path = format!("/v1/apply?source=gitops&sourceName=payments&revision={sha}&dryRun={dry_run}");
            let body = json!([relay("gw", "team-a", image)]).to_string();
            api.call(Method::POST, &path, Some(&token), Some(("application/json", body))).await
        }
    };
    let first = sync(api.admin.clone(), false, "nginx:1").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let source = api.get("/v1/sources/payments").await;
    assert_eq!(source.body["lastRevision"], sha, "{}", source.text);
    assert_eq!(source.body["suspended"], false);

    // Only a token that may write where the source's resources are may suspend it.
    let other_team = api.token("team-b-writer", &["write:team-b"]).await;
    let refused = api.call(Method::POST, "/v1/sources/payments/suspend", Some(&other_team), None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    let oncall = api.token("oncall", &["write:team-a"]).await;
    let body = Some(("application/json", json!({"reason": "incident 42"}).to_string()));
    let suspended = api.call(Method::POST, "/v1/sources/payments/suspend", Some(&oncall), body).await;
    assert_eq!(suspended.status, StatusCode::OK, "{}", suspended.text);
    assert_eq!(
        (suspended.body["suspended"].as_bool(), suspended.body["suspendedBy"].as_str()),
        (Some(true), Some("oncall"))
    );

    // A sync is refused with who and why, and writes nothing; a dry run still plans.
    let before = api.snapshot().await;
    let blocked = sync(api.admin.clone(), false, "nginx:2").await;
    assert_eq!(blocked.status, StatusCode::CONFLICT, "{}", blocked.text);
    let message = blocked.body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("suspended") && message.contains("oncall") && message.contains("incident 42"),
        "{message}"
    );
    assert_eq!(api.snapshot().await, before);
    let plan = sync(api.admin.clone(), true, "nginx:2").await;
    assert_eq!((plan.status, plan.body["summary"]["update"].as_u64()), (StatusCode::OK, Some(1)), "{}", plan.text);

    let resumed = api.call(Method::POST, "/v1/sources/payments/resume", Some(&oncall), None).await;
    assert_eq!(resumed.body["suspended"], false, "{}", resumed.text);
    assert_eq!(sync(api.admin.clone(), false, "nginx:2").await.status, StatusCode::OK);
    let list = api.get("/v1/sources").await;
    assert_eq!(list.body["items"][0]["name"], "payments", "{}", list.text);
    assert_eq!(api.get("/v1/sources/unknown").await.status, StatusCode::NOT_FOUND);
    let bad = api.call(Method::POST, "/v1/sources/not%20a%20label/suspend", Some(&api.admin), None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
}

#[sqlx::test(migrations = false)]
async fn the_status_page_shell_is_public_and_the_rendering_needs_a_renderer(pool: PgPool) {
    let api = start(pool).await;
    // The shell and its files need no token and carry the page's headers.
    for (path, content_type) in [("/", "text/html"), ("/ui/app.js", "text/javascript"), ("/ui/app.css", "text/css")] {
        let r = api.call(Method::GET, path, None, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(r.headers["content-type"].to_str().unwrap().starts_with(content_type), "{path}");
        assert_eq!(r.headers["content-security-policy"], desired_state::api::ui::CONTENT_SECURITY_POLICY, "{path}");
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
        assert_eq!(r.headers["referrer-policy"], "no-referrer");
    }
    // The rendering: authenticated, and a clear 404 on a server without the runners.
    let path = format!("{RELAYS}/gw/rendered");
    assert_eq!(api.call(Method::GET, &path, None, None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(api.post_json(RELAYS, &relay("gw", "default", "nginx:1")).await.status, StatusCode::CREATED);
    let r = api.get(&path).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    assert!(r.body["error"]["message"].as_str().unwrap().contains("no renderer is configured"), "{}", r.text);
    let missing = api.get(&format!("{RELAYS}/absent/rendered")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(!missing.text.contains("renderer"), "a missing resource says so first: {}", missing.text);
}

/// A staged relay (blue/green; `approval` as given) whose status says a
/// rollout is in `state`, written through the controller's status path.
async fn relay_in_rollout(api: &TestApi, name: &str, approval: &str, state: &str) -> String {
    let mut doc = relay(name, "default", "nginx:1");
    doc["spec"]["network"] = json!({"subnets": ["subnet-0a1b2c3d"], "securityGroups": []});
    doc["spec"]["loadBalancer"] = json!({
        "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/gw-blue/0123456789abcdef",
        "containerPort": 80,
        "alternateTargetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/gw-green/fedcba9876543210",
        "productionListenerRuleArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/gw/0123456789abcdef/0123456789abcdef/0000000000000001",
        "roleArn": "arn:aws:iam::123456789012:role/ecs-lb"});
    doc["spec"]["containers"][0]["port"] = json!(80);
    doc["spec"]["deployment"] = json!({"strategy": "BlueGreen", "verify": {"approval": approval}});
    let r = api.post_json(RELAYS, &doc).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let arn = format!("arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/default_{name}/1");
    let stored = api.store.get(api_types::Kind::Relay, "default", name).await.unwrap();
    let status = json!({"rollout": {"strategy": "BlueGreen", "serviceDeploymentArn": arn,
        "taskDefinitionArn": "arn:td:2", "state": state, "started": "2026-11-30T12:00:00Z", "waitingFor": "Approval"}});
    api.store.write_status(api_types::Kind::Relay, "default", name, stored.uid, &status, None).await.unwrap();
    arn
}

#[sqlx::test(migrations = false)]
async fn rollout_answers_are_kept_beside_the_resource_for_the_deployment_in_progress(pool: PgPool) {
    let api = start(pool).await;
    let arn = relay_in_rollout(&api, "gw", "Manual", "IN_PROGRESS").await;
    let before = api.get(&format!("{RELAYS}/gw")).await.body;
    let r = api.post_json(&format!("{RELAYS}/gw/rollout"), &json!({"action": "promote"})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body["request"]["serviceDeploymentArn"], arn.as_str());
    assert_eq!(r.body["gateWaiting"], true);
    // Neither spec nor generation moved: GitOps sees no drift.
    let after = api.get(&format!("{RELAYS}/gw")).await.body;
    assert_eq!(after["spec"], before["spec"]);
    assert_eq!(after["metadata"]["generation"], before["metadata"]["generation"]);
    let stored = api.store.get(api_types::Kind::Relay, "default", "gw").await.unwrap();
    let request = stored.rollout_request.expect("the request is kept").0;
    assert_eq!(
        (request.action, request.service_deployment_arn.as_str()),
        (api_types::rollout::RolloutAction::Promote, arn.as_str())
    );
    let events = api.get(&format!("{RELAYS}/gw/events")).await;
    assert!(events.text.contains("RolloutPromoteRequested"), "{}", events.text);

    // (relay, approval, state, action, status, code in the answer)
    let table = [
        ("auto", "Automatic", "IN_PROGRESS", "promote", StatusCode::CONFLICT, "NoManualGate"),
        ("auto2", "Automatic", "IN_PROGRESS", "abort", StatusCode::ACCEPTED, ""),
        ("done", "Manual", "SUCCESSFUL", "abort", StatusCode::CONFLICT, "NoRolloutInProgress"),
        ("back", "Manual", "ROLLBACK_SUCCESSFUL", "promote", StatusCode::CONFLICT, "NoRolloutInProgress"),
    ];
    for (name, approval, state, action, status, code) in table {
        relay_in_rollout(&api, name, approval, state).await;
        let r = api.post_json(&format!("{RELAYS}/{name}/rollout"), &json!({ "action": action })).await;
        assert_eq!(r.status, status, "{name}: {}", r.text);
        assert!(r.text.contains(code), "{name}: {}", r.text);
    }
}

fn node_set(replicas: u32, instance_type: &str) -> Value {
    json!({"apiVersion": "mooring/v1", "kind": "NodeSet", "metadata": {"name": "pulse"},
        "spec": {"replicas": replicas, "subnetIds": ["subnet-0a1b2c3d", "subnet-0b2c3d4e"],
            "template": {"software": {"name": "pulse", "version": "1.0", "artifact": "s3://pulse-artifacts/pulse.tar.gz"},
                "instanceType": instance_type, "ami": "ami-1e749f67", "subnetId": "subnet-0a1b2c3d"}}})
}

#[sqlx::test(migrations = false)]
async fn node_sets_are_validated_and_their_members_are_the_controllers(pool: PgPool) {
    let api = start(pool).await;
    const SETS: &str = "/v1/namespaces/default/nodesets";
    // The template is a Node spec, checked under spec.template.
    let mut bad = node_set(101, "not a type");
    bad["metadata"]["name"] = json!("a".repeat(60));
    bad["spec"]["subnetIds"] = json!(["subnet-0a1b2c3d", "subnet-0a1b2c3d"]);
    let r = api.post_json(SETS, &bad).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let fields: Vec<&str> =
        r.body["error"]["details"].as_array().unwrap().iter().filter_map(|d| d["field"].as_str()).collect();
    for f in ["spec.replicas", "spec.template.instanceType", "metadata.name", "spec.subnetIds[1]"] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
    let r = api.post_json(SETS, &node_set(2, "t3.large")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["spec"]["updateStrategy"], json!({"maxUnavailable": 1, "partition": 0}), "defaults");
    assert_eq!(r.body["metadata"]["finalizers"], json!(["mooring.io/cleanup"]));
    assert_eq!(api.get("/v1/nodesets").await.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(api.get("/v1/schemas/NodeSet").await.status, StatusCode::OK);

    // A member, as the controller writes it: the API may read it, not change or delete it.
    let set = api.store.get(api_types::Kind::NodeSet, "default", "pulse").await.unwrap();
    let spec: api_types::NodeSetSpec = serde_json::from_value(set.spec.clone()).unwrap();
    let member = json!({"apiVersion": "mooring/v1", "kind": "Node",
        "metadata": {"name": "pulse-0", "labels": {"mooring/nodeset": "pulse", "mooring/ordinal": "0"}},
        "spec": spec.member_spec("pulse", 0)});
    let doc = api_types::validate_document(member).unwrap();
    let written = api.store.write_owned(&doc, set.uid, "NodeSet default/pulse").await.unwrap();
    assert_eq!(written.resource.owner_uid, Some(set.uid));
    let path = "/v1/namespaces/default/nodes/pulse-0";
    assert_eq!(api.get(path).await.status, StatusCode::OK);
    let patch = api
        .call(
            Method::PATCH,
            path,
            Some(&api.admin),
            Some(("application/merge-patch+json", json!({"spec": {"instanceType": "t3.xlarge"}}).to_string())),
        )
        .await;
    assert_eq!(patch.status, StatusCode::CONFLICT, "{}", patch.text);
    assert_eq!(patch.body["error"]["code"], "Owned", "{}", patch.text);
    assert!(patch.text.contains("member of NodeSet default/pulse"), "{}", patch.text);
    let delete = api.call(Method::DELETE, path, Some(&api.admin), None).await;
    assert_eq!(delete.status, StatusCode::CONFLICT, "{}", delete.text);
    let rollback = api.post_json(&format!("{path}/rollback"), &json!({"revision": 1})).await;
    assert_eq!(rollback.status, StatusCode::CONFLICT, "{}", rollback.text);
    let revs = api.get(&format!("{path}/revisions")).await;
    assert_eq!(revs.body["items"][0]["source"], "controller", "{}", revs.text);
    // A node of a member's name that is not the set's is never taken over.
    let other = api
        .post_json(
            "/v1/namespaces/default/nodes",
            &json!({"apiVersion": "mooring/v1", "kind": "Node",
        "metadata": {"name": "pulse-1"}, "spec": spec.member_spec("pulse", 1)}),
        )
        .await;
    assert_eq!(other.status, StatusCode::CREATED, "{}", other.text);
    let doc = api_types::validate_document(other.body.clone()).unwrap();
    let err = api.store.write_owned(&doc, set.uid, "NodeSet default/pulse").await.unwrap_err();
    assert!(err.to_string().contains("not created by this NodeSet"), "{err}");
    let err = api.store.request_delete_owned(api_types::Kind::Node, "default", "pulse-1", set.uid).await.unwrap_err();
    assert!(err.to_string().contains("not created by this NodeSet"), "{err}");
    assert!(api.store.get(api_types::Kind::Node, "default", "pulse-1").await.is_ok(), "the user's node stays");
}

#[sqlx::test(migrations = false)]
async fn snapshot_requests_are_kept_beside_the_node_and_recorded_as_events(pool: PgPool) {
    let api = start(pool).await;
    const NODES: &str = "/v1/namespaces/default/nodes";
    let node = json!({"apiVersion": "mooring/v1", "kind": "Node", "metadata": {"name": "ledger"},
        "spec": {"software": {"name": "pulse", "version": "1.0", "artifact": "s3://pulse-artifacts/pulse.tar.gz"},
            "instanceType": "t3.large", "ami": "ami-1e749f67", "subnetId": "subnet-0a1b2c3d",
            "dataVolume": {"backup": {"every": "6h"}}}});
    let r = api.post_json(NODES, &node).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["spec"]["dataVolume"]["backup"], json!({"every": "6h", "keep": 7}), "keep defaults to 7");
    let before = api.get(&format!("{NODES}/ledger")).await.body;

    let r = api.post_json(&format!("{NODES}/ledger/snapshot"), &json!({})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert!(r.body["request"]["at"].is_string() && r.body["volumeId"].is_null(), "{}", r.text);
    // Neither spec nor generation moved: GitOps sees no drift.
    let after = api.get(&format!("{NODES}/ledger")).await.body;
    assert_eq!(
        (&after["spec"], &after["metadata"]["generation"]),
        (&before["spec"], &before["metadata"]["generation"])
    );
    let stored = api.store.get(api_types::Kind::Node, "default", "ledger").await.unwrap();
    assert!(stored.snapshot_request.is_some(), "the request is kept");
    let events = api.get(&format!("{NODES}/ledger/events")).await;
    assert!(events.text.contains("SnapshotRequested"), "{}", events.text);

    // Other kinds have no snapshots; a missing node is a 404; bad schedules are 422s.
    let r = api.post_json(RELAYS, &relay("gw", "default", "nginx:1")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(api.post_json(&format!("{RELAYS}/gw/snapshot"), &json!({})).await.status, StatusCode::NOT_FOUND);
    assert_eq!(api.post_json(&format!("{NODES}/nope/snapshot"), &json!({})).await.status, StatusCode::NOT_FOUND);
    for (every, snapshot) in [("6s", "snap-0123456789abcdef0"), ("6h", "vol-0123456789abcdef0")] {
        let mut bad = node.clone();
        bad["metadata"]["name"] = json!("bad");
        bad["spec"]["dataVolume"] = json!({"backup": {"every": every, "keep": 0}, "fromSnapshot": snapshot});
        let r = api.post_json(NODES, &bad).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
        let fields: Vec<&str> =
            r.body["error"]["details"].as_array().unwrap().iter().filter_map(|d| d["field"].as_str()).collect();
        assert!(fields.contains(&"spec.dataVolume.backup.keep"), "{fields:?}");
        let wrong = if every == "6s" { "spec.dataVolume.backup.every" } else { "spec.dataVolume.fromSnapshot" };
        assert!(fields.contains(&wrong), "{wrong} missing from {fields:?}");
    }
}

#[sqlx::test(migrations = false)]
async fn the_labels_of_node_set_members_are_the_controllers(pool: PgPool) {
    let api = start(pool).await;
    for label in ["mooring/nodeset", "mooring/ordinal"] {
        let node = json!({"apiVersion": "mooring/v1", "kind": "Node",
            "metadata": {"name": "lookalike", "labels": {label: "pulse"}},
            "spec": {"software": {"name": "pulse", "version": "1.0", "artifact": "s3://pulse-artifacts/pulse.tar.gz"},
                "instanceType": "t3.large", "ami": "ami-1e749f67", "subnetId": "subnet-0a1b2c3d"}});
        let r = api.post_json("/v1/namespaces/default/nodes", &node).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
        assert_eq!(r.body["error"]["details"][0]["field"], format!("metadata.labels.{label}"), "{}", r.text);
        // Through apply as well, and nothing is written.
        let r = api.post_json("/v1/apply", &json!([node])).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
        assert_eq!(api.get("/v1/namespaces/default/nodes/lookalike").await.status, StatusCode::NOT_FOUND);
    }
}
