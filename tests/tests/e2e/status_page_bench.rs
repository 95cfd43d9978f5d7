//! How the status page copes with a large fleet, measured in headless
//! Chromium: the time from signing in to every row being on the page, and
//! from a status write to its row showing it. A benchmark, not a test: it
//! asserts nothing about time and runs only when asked:
//!
//! ```sh
//! cargo test --workspace --test e2e -- --ignored --nocapture status_page_benchmark
//! ```
//!
//! `MOORING_BENCH_RESOURCES` changes the fleet's size (5,000). The figures
//! are recorded in docs/BENCHMARKS.md.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use desired_state::Store;
use desired_state::signing::Signer;
use desired_state::store::{ChangeFeed, StoreConfig};
use reqwest::Method;
use serde_json::{Value, json};
use tests::{Stack, relay_json};

use super::browser::Browser;

/// Documents per `/v1/apply` request (well under the 1 MiB body limit).
const BATCH: usize = 400;
/// Measured rounds of each figure.
const ROUNDS: usize = 5;

fn now_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
}

fn summary(name: &str, mut ms: Vec<f64>) {
    ms.sort_by(|a, b| a.total_cmp(b));
    let median = ms[ms.len() / 2];
    let max = ms[ms.len() - 1];
    let all: Vec<String> = ms.iter().map(|m| format!("{m:.0}")).collect();
    println!("{name}: median {median:.0} ms, max {max:.0} ms (runs: {} ms)", all.join(", "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test --workspace --test e2e -- --ignored --nocapture status_page_benchmark"]
async fn status_page_benchmark() {
    let n: usize = std::env::var("MOORING_BENCH_RESOURCES").ok().and_then(|v| v.parse().ok()).unwrap_or(5000);
    let stack = Stack::new("status_page_benchmark").await;
    // No controller: the fleet stays as written, and the only status writes
    // are the benchmark's.
    let api = stack.server().arg("--api-only").env("MOORING_RATE_LIMIT", "0").start().await;

    let namespaces = ["shop", "payments", "search", "batch", "edge"];
    let docs: Vec<Value> = (0..n)
        .map(|i| {
            let mut d = relay_json(
                &format!("relay-{i:05}"),
                namespaces[i % namespaces.len()],
                "public.ecr.aws/acme/gateway:1.0",
            );
            d["metadata"]["labels"]["tier"] = json!(if i % 3 == 0 { "gold" } else { "standard" });
            d
        })
        .collect();
    for chunk in docs.chunks(BATCH) {
        let r = api.api(Method::POST, "/v1/apply").json(&chunk).send().await.expect("apply");
        assert!(r.status().is_success(), "apply: {} {}", r.status(), r.text().await.unwrap_or_default());
    }
    println!("{n} relays created");

    // Status writes through the store's own write path, sequenced by this
    // process's change feed (as the controller's are by its own).
    let store = Store::connect_lazy(&StoreConfig::new(stack.db.url.clone()), Signer::generate()).expect("a store");
    let _feed = ChangeFeed::start(store.clone());

    let browser = Browser::start(1400, 900).await;
    browser.client.goto(&api.url("/")).await.expect("opening the page");

    let sign_in = r#"
        const [token, n, done] = arguments;
        const t0 = performance.now();
        window.mooringStatus.signInAt = t0;
        document.getElementById('token').value = token;
        document.getElementById('login-form').requestSubmit();
        const tick = () => {
          if (window.mooringStatus.rows() >= n && document.querySelectorAll('#tables tbody tr').length >= n) {
            requestAnimationFrame(() => done(performance.now() - t0));
          } else {
            setTimeout(tick, 5);
          }
        };
        tick();
    "#;
    let (mut first_render, mut fetch, mut render, mut before_lists) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        browser.js("sessionStorage.clear(); location.reload(); return null").await;
        tests::eventually("the sign-in form", tests::WAIT, async || {
            let shown = browser.js("const l = document.getElementById('login'); return !!l && !l.hidden").await;
            if shown == json!(true) { Ok(()) } else { Err("not yet".into()) }
        })
        .await;
        let ms = browser
            .client
            .execute_async(sign_in, vec![json!(api.token()), json!(n)])
            .await
            .expect("signing in and waiting for every row");
        first_render.push(ms.as_f64().expect("a number"));
        let split = browser
            .js("const s = window.mooringStatus; return Object.assign({signInAt: s.signInAt}, s.lastLoad)")
            .await;
        fetch.push(split["fetchMs"].as_f64().unwrap_or(0.0));
        before_lists.push(split["startedAt"].as_f64().unwrap_or(0.0) - split["signInAt"].as_f64().unwrap_or(0.0));
        render.push(split["renderMs"].as_f64().unwrap_or(0.0));
    }

    // Wait for the watch to be live before writing.
    tests::eventually("the live indicator", tests::WAIT, async || {
        let t = browser.text("#live").await.unwrap_or_default();
        if t == "live" { Ok(()) } else { Err(t) }
    })
    .await;
    let wait_row = r#"
        const [key, status, done] = arguments;
        const sel = 'tr[data-key="' + key + '"] .badge[data-condition="Ready"]';
        const tick = () => {
          const b = document.querySelector(sel);
          if (b && b.dataset.status === status) requestAnimationFrame(() => done(Date.now()));
          else setTimeout(tick, 2);
        };
        tick();
    "#;
    let mut live = Vec::new();
    for round in 0..ROUNDS * 2 {
        let i = (round * 977) % n;
        let (ns, name) = (namespaces[i % namespaces.len()], format!("relay-{i:05}"));
        let r = store.get(api_types::Kind::Relay, ns, &name).await.expect("the relay");
        let status = if round % 2 == 0 { "True" } else { "False" };
        let doc = json!({"conditions": [{
            "type": "Ready", "status": status, "reason": if status == "True" { "Steady" } else { "TasksStopped" },
            "message": "written by the benchmark", "observedGeneration": 1,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }], "replicas": {"running": 2, "desired": 2}});
        let key = format!("Relay/{ns}/{name}");
        let waiting = browser.client.execute_async(wait_row, vec![json!(key), json!(status)]);
        let writing = async {
            // Let the page start watching the row first.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let t0 = now_ms();
            store.write_status(api_types::Kind::Relay, ns, &name, r.uid, &doc, None).await.expect("status write");
            t0
        };
        let (seen, t0) = tokio::join!(waiting, writing);
        let seen = seen.expect("waiting for the row").as_f64().expect("a number");
        live.push(seen - t0);
    }

    println!("status page with {n} resources (headless Chromium, {} cores):", num_cores());
    summary("  sign-in to all rows rendered", first_render);
    summary("    of which opening the watch", before_lists);
    summary("    of which reading the lists, each page's rows built as it arrives", fetch);
    summary("    (building rows and tables, within the above)", render);
    summary("  status write to row updated", live);
    browser.close().await;
}

fn num_cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
