//! The status page at `/`, in headless Chromium against real servers: the
//! shell's security headers, sign-in (and a refused token), the fleet table
//! with a hostile label value shown as text, a condition turning Ready through
//! the controller without a reload, the detail view (conditions, events,
//! rendered task definition, revision diff) and sign-out.

use std::path::PathBuf;

use super::browser::Browser;
use reqwest::Method;
use serde_json::json;
use tests::{Stack, WAIT, eventually, relay_json, workspace_root};

const HOSTILE: &str = "<script>alert(1)</script>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page() {
    let stack = Stack::new("status_page").await;
    // The API alone first: nothing makes the relay Ready until the controller starts.
    let mut api = stack.server().name("api").arg("--api-only").start().await;

    // The shell is public and strict.
    let shell = api.http(Method::GET, "/").send().await.expect("GET /");
    assert!(shell.status().is_success(), "{}", shell.status());
    let h = shell.headers();
    let csp = h["content-security-policy"].to_str().expect("ASCII");
    for directive in
        ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]
    {
        assert!(csp.contains(directive), "CSP {csp:?} lacks {directive}");
    }
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert!(h["content-type"].to_str().expect("ASCII").starts_with("text/html"));
    let js = api.http(Method::GET, "/ui/app.js").send().await.expect("GET /ui/app.js");
    assert!(js.status().is_success() && js.headers()["content-security-policy"] == csp);

    // The API refuses markup in a label value, so the page's own defence is
    // tested with one written straight into the store (as an older release,
    // or a hand-edited row, could have left), and with an annotation, whose
    // values are free text.
    let mut doc = relay_json("gateway", "shop", "public.ecr.aws/acme/gateway:1.0");
    doc["metadata"]["labels"]["note"] = json!(HOSTILE);
    let refused = api.api(Method::POST, "/v1/namespaces/shop/relays").json(&doc).send().await.expect("create");
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.unwrap_or_default().contains("metadata.labels.note"));
    doc["metadata"]["labels"]["note"] = json!("plain");
    doc["metadata"]["annotations"] = json!({"note": HOSTILE});
    let created = api.api(Method::POST, "/v1/namespaces/shop/relays").json(&doc).send().await.expect("create");
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap_or_default());
    let pool = sqlx::PgPool::connect(&stack.db.url).await.expect("connecting to the test database");
    sqlx::query("UPDATE resources SET labels = labels || jsonb_build_object('note', $1::text) WHERE name = 'gateway'")
        .bind(HOSTILE)
        .execute(&pool)
        .await
        .expect("writing the label");
    pool.close().await;
    let worker = json!({
        "apiVersion": "mooring/v1", "kind": "Worker",
        "metadata": {"name": "converter", "namespace": "batch", "labels": {"app": "proton-beam"}},
        "spec": {"cluster": "batch", "container": {"name": "convert", "image": "ghcr.io/acme/proton-beam:0.9"},
                 "queue": {"visibilityTimeoutSeconds": 300, "deadLetter": {"maxReceiveCount": 3}},
                 "scaling": {"min": 0, "max": 20}}
    });
    let created = api.api(Method::POST, "/v1/namespaces/batch/workers").json(&worker).send().await.expect("create");
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap_or_default());

    let browser = Browser::start(1400, 900).await;
    browser.client.goto(&api.url("/")).await.expect("opening the page");

    // A wrong token returns to the form with a message.
    browser.type_into("#token", "not-a-token").await;
    browser.click("#login-form button[type=submit]").await;
    eventually("the refused token's message", WAIT, async || {
        let msg = browser.text("#login-message").await.unwrap_or_default();
        let form_shown = browser.js("return !document.getElementById('login').hidden").await;
        if msg.contains("401") && form_shown == json!(true) { Ok(()) } else { Err(format!("message {msg:?}")) }
    })
    .await;

    browser.type_into("#token", api.token()).await;
    browser.click("#login-form button[type=submit]").await;
    // The token is in sessionStorage, nowhere in the URL.
    let url = browser.client.current_url().await.expect("the URL");
    assert!(!url.as_str().contains(api.token()), "{url}");
    browser.js("window.__testMarker = 'same page'; return null").await;

    let ready = "#tables tr[data-key='Relay/shop/gateway'] .badge[data-condition='Ready']";
    let before = eventually("the relay's row with its Ready badge", WAIT, async || {
        let status = browser
            .js(&format!("const b = document.querySelector({}); return b ? b.dataset.status : null", json!(ready)))
            .await;
        status.as_str().map(str::to_string).ok_or_else(|| "no row yet".to_string())
    })
    .await;
    assert_eq!(before, "Unknown", "no controller runs yet, so nothing is reported");
    assert_eq!(browser.text("#live").await.as_deref(), Some("live"));

    // The hostile label is text: no element was made from it, no alert opened.
    let label = browser
        .js("return Array.from(document.querySelectorAll('#tables tr[data-key=\"Relay/shop/gateway\"] .label')).map(e => e.textContent)")
        .await;
    assert!(label.as_array().expect("a list").contains(&json!(format!("note={HOSTILE}"))), "{label}");
    assert_eq!(browser.js("return document.querySelectorAll('main script').length").await, json!(0));
    assert_eq!(browser.js("return document.querySelectorAll('script').length").await, json!(1));
    assert!(browser.client.get_alert_text().await.is_err(), "an alert is open");

    // The controller starts; the simulated cloud makes the relay Ready, and the
    // row changes in place.
    let _controller = stack.server().name("controller").arg("--controller-only").start().await;
    eventually("the page to show the relay Ready without a reload", WAIT, async || {
        let b = browser
            .js(&format!(
                "const b = document.querySelector({}); return b ? [b.dataset.status, b.title] : null",
                json!(ready)
            ))
            .await;
        if b[0] == "True" { Ok(()) } else { Err(b.to_string()) }
    })
    .await;
    assert_eq!(browser.js("return window.__testMarker").await, json!("same page"), "the page was reloaded");
    eventually("the counts to follow", WAIT, async || {
        let c = browser.text("#count-total").await.unwrap_or_default();
        if c.starts_with("2 Ready of 2") || c.starts_with("1 Ready of 2") { Ok(c) } else { Err(c) }
    })
    .await;
    let replicas = browser.text("#tables tr[data-key='Relay/shop/gateway'] td.num").await.unwrap_or_default();
    assert!(replicas.ends_with("/2"), "replicas {replicas:?}");

    // Filters: "not ready only" hides the Ready relay.
    browser.click("#f-notready").await;
    let hidden = browser.js("return document.querySelector(\"tr[data-key='Relay/shop/gateway']\").hidden").await;
    assert_eq!(hidden, json!(true));
    browser.click("#f-notready").await;
    browser.type_into("#f-labels", "app=proton-beam").await;
    let shown = browser
        .js("return Array.from(document.querySelectorAll('#tables tbody tr')).filter(r => !r.hidden).map(r => r.dataset.key)")
        .await;
    assert_eq!(shown, json!(["Worker/batch/converter"]));
    browser.js("const f = document.getElementById('f-labels'); f.value = ''; f.dispatchEvent(new Event('input')); return null").await;

    browser.js("document.activeElement.blur(); return null").await;
    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    browser.screenshot(&screenshot).await;
    println!("status page screenshot: {}", screenshot.display());
    if std::env::var("UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        let committed = workspace_root().join("docs/img/status-page.png");
        browser.screenshot(&committed).await;
        println!("updated {}", committed.display());
    }

    // A spec change: a new revision; the detail view diffs the two.
    // (The stored label the API would refuse is replaced in the same write.)
    let patch = json!({"metadata": {"labels": {"note": "plain"}}, "spec": {"containers": [
        {"name": "app", "image": "public.ecr.aws/acme/gateway:1.1", "port": 8000},
        {"name": "opa", "image": "openpolicyagent/opa:0.68.0", "port": 8181, "essential": false}
    ]}});
    let patched = api
        .api(Method::PATCH, "/v1/namespaces/shop/relays/gateway")
        .header("content-type", "application/merge-patch+json")
        .body(patch.to_string())
        .send()
        .await
        .expect("patch");
    assert!(patched.status().is_success(), "{}", patched.text().await.unwrap_or_default());

    browser.click("#tables tr[data-key='Relay/shop/gateway'] th a").await;
    eventually(
        "the detail view with conditions, events, revisions and the rendered task definition",
        WAIT,
        async || {
            let title = browser.text("#detail-title").await.unwrap_or_default();
            let conditions = browser.text("#detail-conditions").await.unwrap_or_default();
            let rendered = browser.text("#detail-rendered").await.unwrap_or_default();
            let diff = browser.text("#detail-diff").await.unwrap_or_default();
            let events = browser.text("#detail-events").await.unwrap_or_default();
            let ok = title == "Relay shop/gateway"
                && conditions.contains("Ready")
                && rendered.contains("public.ecr.aws/acme/gateway:1.1")
                && rendered.contains("\"family\"")
                && diff.contains("spec.containers[0].image")
                && diff.contains("changed")
                && !events.is_empty();
            if ok {
                Ok(())
            } else {
                Err(format!("title {title:?}; diff {diff:?}; rendered {:.80}; events {events:.80}", rendered))
            }
        },
    )
    .await;
    let summary = browser.text("#detail-summary").await.unwrap_or_default();
    assert!(summary.contains(&format!("note={HOSTILE}")), "the annotation, as text: {summary}");
    assert_eq!(browser.js("return document.querySelectorAll('main script').length").await, json!(0));
    let hash = browser.client.current_url().await.expect("the URL");
    assert_eq!(hash.fragment(), Some("/relays/shop/gateway"));
    let aws = browser.text("#detail-aws").await.unwrap_or_default();
    assert!(aws.contains("status.service") && aws.contains("No console links"), "{aws}");
    assert_eq!(browser.js("return window.__testMarker").await, json!("same page"));

    // A token that may read only `shop` sees only `shop`: the lists are the API's.
    let viewer = api
        .api(Method::POST, "/v1/tokens")
        .json(&json!({"name": "viewer", "scopes": ["read:shop"]}))
        .send()
        .await
        .expect("create a token");
    assert_eq!(viewer.status(), 201);
    let viewer: serde_json::Value = viewer.json().await.expect("the token");
    let viewer = viewer["token"].as_str().expect("a token").to_string();
    browser.js("location.hash = '#/'; return null").await;
    browser.click("#signout").await;
    browser.type_into("#token", &viewer).await;
    browser.click("#login-form button[type=submit]").await;
    let keys = "return Array.from(document.querySelectorAll('#tables tbody tr')).map(r => r.dataset.key)";
    eventually("the viewer's fleet: shop only", WAIT, async || {
        let rows = browser.js(keys).await;
        if rows == json!(["Relay/shop/gateway"]) { Ok(()) } else { Err(rows.to_string()) }
    })
    .await;
    browser.click("#signout").await;
    browser.type_into("#token", api.token()).await;
    browser.click("#login-form button[type=submit]").await;

    // A deleted resource leaves the table without a reload.
    eventually("the worker's row", WAIT, async || {
        let n = browser.js("return document.querySelectorAll(\"tr[data-key='Worker/batch/converter']\").length").await;
        if n == json!(1) { Ok(()) } else { Err(n.to_string()) }
    })
    .await;
    let deleted = api.api(Method::DELETE, "/v1/namespaces/batch/workers/converter").send().await.expect("delete");
    assert!(deleted.status().is_success(), "{}", deleted.status());
    eventually("the worker's row to go once it is deleted", WAIT, async || {
        let n = browser.js("return document.querySelectorAll(\"tr[data-key='Worker/batch/converter']\").length").await;
        if n == json!(0) { Ok(()) } else { Err(n.to_string()) }
    })
    .await;
    assert_eq!(browser.js("return window.__testMarker").await, json!("same page"));

    // The server goes away: the page says so, comes back on its own, and shows
    // what changed meanwhile, still without a reload.
    api.kill();
    eventually("the page to say it lost the stream", WAIT, async || {
        let t = browser.text("#live").await.unwrap_or_default();
        if t.starts_with("disconnected — retrying") { Ok(()) } else { Err(t) }
    })
    .await;
    api.restart().await;
    let patched = api
        .api(Method::PATCH, "/v1/namespaces/shop/relays/gateway")
        .header("content-type", "application/merge-patch+json")
        .body(json!({"metadata": {"labels": {"note": "after-restart"}}}).to_string())
        .send()
        .await
        .expect("patch");
    assert!(patched.status().is_success(), "{}", patched.status());
    eventually("the page live again, with the change", WAIT, async || {
        let live = browser.text("#live").await.unwrap_or_default();
        let labels = browser.text("tr[data-key='Relay/shop/gateway'] td.labels").await.unwrap_or_default();
        if live == "live" && labels.contains("note=after-restart") { Ok(()) } else { Err(format!("{live}; {labels}")) }
    })
    .await;
    assert_eq!(browser.js("return window.__testMarker").await, json!("same page"));

    // Sign-out forgets the token.
    browser.click("#signout").await;
    let stored = browser.js("return sessionStorage.getItem('mooring.token')").await;
    assert_eq!(stored, json!(null));
    assert_eq!(browser.js("return document.getElementById('login').hidden").await, json!(false));
    browser.close().await;
}
