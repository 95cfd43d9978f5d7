//! Input that cannot hurt the server, against the real binary: an alias bomb
//! and a deeply nested body get a 400 and the process's memory stays bounded;
//! made-up methods add no metric series.

use std::time::Instant;

use reqwest::{Method, StatusCode};
use tests::Stack;

/// The resident set size of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reading /proc/PID/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("a VmRSS line");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("a number of kB")
}

/// A list of a thousand values under nine levels of ten aliases each: 3 KB of
/// YAML that expands to 10^12 values. Padded with a comment to ~100 KB, the
/// size the attack needs to get past naive size checks.
fn alias_bomb() -> String {
    let mut text = format!("a0: &a0 [{}x]\n", "x, ".repeat(999));
    for i in 1..10 {
        let p = i - 1;
        text.push_str(&format!("a{i}: &a{i} [{}]\n", vec![format!("*a{p}"); 10].join(", ")));
    }
    text.push_str(&format!("# {}\n", "padding ".repeat(12_000)));
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alias_bombs_and_deep_nesting_get_400_with_bounded_memory() {
    let stack = Stack::new("hardening_parse").await;
    let server = stack.server().start().await;
    let writer = server.cli(&["token", "create", "--name", "writer", "--scope", "write:team-a"]).await;
    let writer = writer.success().stdout.trim().to_string();
    let reader = server.cli(&["token", "create", "--name", "reader", "--scope", "read:*"]).await;
    let reader = reader.success().stdout.trim().to_string();

    let bomb = alias_bomb();
    let deep = format!("{{\"kind\": \"Relay\", \"spec\": {}1{}}}", "[".repeat(5000), "]".repeat(5000));
    let before = rss_kib(server.pid());
    let mut timings = Vec::new();
    for round in 0..10 {
        for (what, ct, body) in [("alias bomb", "application/yaml", &bomb), ("deep nesting", "application/json", &deep)]
        {
            let started = Instant::now();
            let resp = server
                .http(Method::POST, "/v1/apply")
                .bearer_auth(&writer)
                .header("Content-Type", ct)
                .body(body.clone())
                .send()
                .await
                .expect("POST /v1/apply");
            let status = resp.status();
            let text = resp.text().await.expect("a body");
            timings.push((what, started.elapsed()));
            assert_eq!(status, StatusCode::BAD_REQUEST, "{what}, round {round}: {text}");
            assert!(text.contains("BadRequest") && (text.contains("values") || text.contains("deep")), "{text}");
        }
        // A read-only token is refused before its body is parsed.
        let resp = server
            .http(Method::POST, "/v1/apply")
            .bearer_auth(&reader)
            .header("Content-Type", "application/yaml")
            .body(bomb.clone())
            .send()
            .await
            .expect("POST /v1/apply");
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    }
    let after = rss_kib(server.pid());
    // Printed for docs/BENCHMARKS.md; not asserted.
    for what in ["alias bomb", "deep nesting"] {
        let mut ms: Vec<f64> =
            timings.iter().filter(|(w, _)| *w == what).map(|(_, d)| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        println!("{what}: {} requests, median {:.1} ms, max {:.1} ms", ms.len(), ms[ms.len() / 2], ms[ms.len() - 1]);
    }
    println!("RSS before {before} KiB, after {after} KiB");
    // Each bomb is stopped at 250,000 values; twenty of them must not grow the
    // process by more than a few tens of MiB (unbounded, one would need TBs).
    assert!(after < before + 64 * 1024, "RSS grew from {before} KiB to {after} KiB");
    // The server still serves.
    let ok = server.api(Method::GET, "/v1/relays").send().await.expect("GET");
    assert_eq!(ok.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_methods_add_no_metric_series() {
    let stack = Stack::new("hardening_metrics").await;
    let server = stack.server().arg("--api-only").start().await;
    let series = || async {
        let text = server.metrics().await.expect("/metrics");
        text.lines().filter(|l| l.starts_with("mooring_http_request")).count()
    };
    for method in ["WARMUP", "GET"] {
        let m = Method::from_bytes(method.as_bytes()).expect("a method");
        server.api(m.clone(), "/v1/relays").send().await.expect("request");
        server.http(m, "/no/such/path").send().await.expect("request");
    }
    let _ = series().await;
    let before = series().await;
    for i in 0..50 {
        let m = Method::from_bytes(format!("X{i}Y").as_bytes()).expect("a method");
        server.api(m.clone(), "/v1/relays").send().await.expect("request");
        server.http(m, &format!("/no/such/path/{i}")).send().await.expect("request");
    }
    assert_eq!(series().await, before, "made-up methods or paths added series");
}
