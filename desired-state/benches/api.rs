//! API write/read throughput and latency with 16 concurrent clients, beside a
//! pgbench baseline of a single-row insert on the same Postgres.
//!
//! `cargo bench --workspace --bench api` (needs the local stack; see
//! docs/BENCHMARKS.md). Set `BENCH_SECONDS` (default 10) and `BENCH_CLIENTS`
//! (default 16).
//!
//! The API server runs in another process (this program again, with
//! `BENCH_SERVE_DATABASE_URL` set), as it does in production, so the load
//! generator's work is not counted against the server's runtime.

use std::sync::Arc;
use std::time::{Duration, Instant};

use desired_state::api::{self, ApiConfig, AppState};
use desired_state::redis::RedisHandle;
use desired_state::signing::Signer;
use desired_state::store::{ChangeFeed, Store};
use serde_json::json;
use tokio::io::AsyncBufReadExt;

struct Phase {
    name: &'static str,
    ops: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    errors: usize,
    cpu: Cpu,
}

/// CPU time (user + system, in clock ticks of 10 ms) of the server process,
/// of every Postgres process, and of this load generator.
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    server: u64,
    postgres: u64,
    load: u64,
}

impl Cpu {
    /// Reads the counters now (Linux `/proc`; zero elsewhere).
    fn now(server: u32) -> Cpu {
        let ticks = |pid: &str| -> Option<(String, u64)> {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (head, rest) = stat.rsplit_once(')')?;
            let comm = head.split_once('(')?.1.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            // Fields 14 to 17 (utime, stime, and those of exited children,
            // which counts the Postgres backends that ended), counted from
            // the state (field 3).
            let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            Some((comm, field(11) + field(12) + field(13) + field(14)))
        };
        let postgres = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| ticks(e.file_name().to_str()?))
            .filter(|(comm, _)| comm == "postgres")
            .map(|(_, t)| t)
            .sum();
        Cpu { server: ticks(&server.to_string()).map_or(0, |t| t.1), postgres, load: ticks("self").map_or(0, |t| t.1) }
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            server: self.server.saturating_sub(before.server),
            postgres: self.postgres.saturating_sub(before.postgres),
            load: self.load.saturating_sub(before.load),
        }
    }

    /// Microseconds of CPU per operation, for each part.
    fn per_op(self, ops: usize) -> String {
        let us = |t: u64| t as f64 * 10_000.0 / ops.max(1) as f64;
        format!(
            "server {:.0} µs, Postgres {:.0} µs, load generator {:.0} µs",
            us(self.server),
            us(self.postgres),
            us(self.load)
        )
    }
}

impl Phase {
    fn row(&self) -> String {
        let mut l = self.latencies.clone();
        l.sort();
        let pct =
            |p: f64| l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1))).copied().unwrap_or_default();
        format!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {} |",
            self.name,
            self.ops,
            self.ops as f64 / self.elapsed.as_secs_f64(),
            pct(0.50).as_secs_f64() * 1000.0,
            pct(0.99).as_secs_f64() * 1000.0,
            self.errors
        )
    }
}

fn relay(name: &str, image: &str) -> serde_json::Value {
    json!({"apiVersion": "mooring/v1", "kind": "Relay", "metadata": {"name": name, "namespace": "bench"},
           "spec": {"cluster": "prod", "containers": [{"name": "app", "image": image, "port": 8000}], "scaling": {"min": 1, "max": 4}}})
}

/// The server process: the store and the API on a free port, which it
/// prints; it runs until its parent kills it.
async fn serve(url: &str) {
    let store = Store::connect_lazy(
        &desired_state::store::StoreConfig { max_connections: 40, ..desired_state::store::StoreConfig::new(url) },
        Signer::generate(),
    )
    .expect("a store");
    store.migrate().await.expect("migrations");
    store.ensure_token("bench", "bench-token", &["admin:*".into()]).await.expect("a token");
    let feed = ChangeFeed::start(store.dedicated(4));
    let redis = Arc::new(
        RedisHandle::new(&std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()))
            .expect("redis"),
    );
    let state = Arc::new(AppState::new(store, feed, Some(redis), ApiConfig { rate_limit: None, ..Default::default() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    println!("http://{}", listener.local_addr().expect("an address"));
    api::serve(listener, state, std::future::pending()).await.expect("the server");
}

/// The writes per committed transaction, from the server's `/metrics`.
async fn writes_per_commit(http: &reqwest::Client, base: &str) -> Option<(f64, f64)> {
    let text = http.get(format!("{base}/metrics")).bearer_auth("bench-token").send().await.ok()?.text().await.ok()?;
    let value = |name: &str| {
        text.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
    };
    Some((value("mooring_store_write_batch_writes_sum")?, value("mooring_store_write_batch_writes_count")?))
}

#[tokio::main]
async fn main() {
    if let Ok(url) = std::env::var("BENCH_SERVE_DATABASE_URL") {
        return serve(&url).await;
    }
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let clients: usize = std::env::var("BENCH_CLIENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(16);
    let base_url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/mooring".into());
    let server_url = base_url.rsplit_once('/').map(|(s, _)| s.to_string()).unwrap_or(base_url.clone());
    let db = format!("mooring_bench_{}", std::process::id());
    let admin = sqlx::PgPool::connect(&format!("{server_url}/postgres")).await.expect("connect to postgres");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}"))).execute(&admin).await.expect("create db");
    let url = format!("{server_url}/{db}");

    let mut server = tokio::process::Command::new(std::env::current_exe().expect("this program"))
        .env("BENCH_SERVE_DATABASE_URL", &url)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the server process");
    let mut lines = tokio::io::BufReader::new(server.stdout.take().expect("its stdout")).lines();
    let base = lines.next_line().await.expect("the server's address").expect("the server started");
    let http = reqwest::Client::builder().pool_max_idle_per_host(clients * 2).build().unwrap();

    let server_pid = server.id().unwrap_or_default();
    let run = |name: &'static str, op: u8| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let start = Instant::now();
            let cpu_before = Cpu::now(server_pid);
            let mut tasks = Vec::new();
            for c in 0..clients {
                let http = http.clone();
                let base = base.clone();
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut errors = 0;
                    let mut i = 0usize;
                    let mut versions: Vec<String> = Vec::new();
                    if op == 1 {
                        // Learn the versions of this client's first 200 resources (untimed).
                        for k in 0..200 {
                            let r = http
                                .get(format!("{base}/v1/namespaces/bench/relays/c{c}-{k}"))
                                .bearer_auth("bench-token")
                                .send()
                                .await;
                            let Ok(r) = r else { break };
                            if !r.status().is_success() {
                                break;
                            }
                            let body: serde_json::Value = r.json().await.unwrap_or_default();
                            versions.push(body["metadata"]["resourceVersion"].as_str().unwrap_or_default().to_string());
                        }
                    }
                    let deadline = Instant::now() + Duration::from_secs(seconds);
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        let resp = match op {
                            0 => {
                                http.post(format!("{base}/v1/namespaces/bench/relays"))
                                    .bearer_auth("bench-token")
                                    .json(&relay(&format!("c{c}-{i}"), "nginx:1"))
                                    .send()
                                    .await
                            }
                            1 => {
                                // Update this client's own resources round-robin, with their versions.
                                let n = 200.min(versions.len().max(1));
                                let k = i % n;
                                let mut d = relay(&format!("c{c}-{k}"), &format!("nginx:{}", i + 2));
                                if let Some(v) = versions.get(k) {
                                    d["metadata"]["resourceVersion"] = json!(v);
                                }
                                http.put(format!("{base}/v1/namespaces/bench/relays/c{c}-{k}"))
                                    .bearer_auth("bench-token")
                                    .json(&d)
                                    .send()
                                    .await
                            }
                            _ => {
                                http.get(format!("{base}/v1/namespaces/bench/relays/c{c}-{}", i % 200))
                                    .bearer_auth("bench-token")
                                    .send()
                                    .await
                            }
                        };
                        match resp {
                            Ok(r) if r.status().is_success() => {
                                let body: serde_json::Value = r.json().await.unwrap_or_default();
                                lat.push(t.elapsed());
                                if op == 1 {
                                    let k = i % 200.min(versions.len().max(1));
                                    if let Some(slot) = versions.get_mut(k) {
                                        *slot = body["metadata"]["resourceVersion"]
                                            .as_str()
                                            .unwrap_or_default()
                                            .to_string();
                                    }
                                }
                            }
                            _ => errors += 1,
                        }
                        i += 1;
                    }
                    (lat, errors, versions)
                }));
            }
            let mut latencies = Vec::new();
            let mut errors = 0;
            for t in tasks {
                let (l, e, _) = t.await.unwrap();
                latencies.extend(l);
                errors += e;
            }
            // Each client measures for exactly `seconds` after its own preparation.
            let _ = start.elapsed();
            let cpu = Cpu::now(server_pid).since(cpu_before);
            Phase { name, ops: latencies.len(), elapsed: Duration::from_secs(seconds), latencies, errors, cpu }
        }
    };
    let creates = run("create (POST)", 0).await;
    let after_creates = writes_per_commit(&http, &base).await;
    let updates = run("update (PUT)", 1).await;
    let after_updates = writes_per_commit(&http, &base).await;
    let reads = run("read (GET)", 2).await;

    // pgbench baseline: a single-row insert transaction, same clients, same time.
    let script = std::env::temp_dir().join("mooring-pgbench.sql");
    std::fs::write(&script, "INSERT INTO bench_baseline (k, v) VALUES ('x', '{\"a\": 1}');\n").unwrap();
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_baseline (id bigserial PRIMARY KEY, k text, v jsonb, at timestamptz DEFAULT now())")
        .execute(&sqlx::PgPool::connect(&url).await.expect("connect to the bench database"))
        .await
        .unwrap();
    let host_port = server_url.rsplit_once('@').map(|(_, h)| h).unwrap_or("127.0.0.1:5432");
    let (host, port) = host_port.split_once(':').unwrap_or((host_port, "5432"));
    let pgbench = std::process::Command::new("pgbench")
        .args([
            "-h",
            host,
            "-p",
            port,
            "-U",
            "postgres",
            "-n",
            "-c",
            // Within Postgres's default 100 connections beside the server's pool.
            &clients.min(32).to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            "-f",
        ])
        .arg(&script)
        .arg(&db)
        .output();
    let baseline = match pgbench {
        Ok(out) => String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with("tps"))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|t| t.parse::<f64>().ok()),
        Err(_) => None,
    };

    println!("clients: {clients}, seconds per phase: {seconds}");
    println!("| operation | ops | ops/s | p50 ms | p99 ms | errors |");
    println!("|---|---|---|---|---|---|");
    for p in [&creates, &updates, &reads] {
        println!("{}", p.row());
    }
    for p in [&creates, &updates, &reads] {
        println!("CPU per {}: {}", p.name, p.cpu.per_op(p.ops));
    }
    match baseline {
        Some(tps) => {
            println!("| pgbench single-row insert | | {tps:.0} | | | |");
            println!(
                "API creates at {:.0}% and updates at {:.0}% of the pgbench baseline",
                creates.ops as f64 / creates.elapsed.as_secs_f64() / tps * 100.0,
                updates.ops as f64 / updates.elapsed.as_secs_f64() / tps * 100.0
            );
        }
        None => println!("pgbench not found: no baseline"),
    }
    if let (Some((s1, c1)), Some((s2, c2))) = (after_creates, after_updates) {
        println!(
            "writes per committed transaction: creates {:.1}, updates {:.1}",
            s1 / c1.max(1.0),
            (s2 - s1) / (c2 - c1).max(1.0)
        );
    }
    drop(server);
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {db} WITH (FORCE)"))).execute(&admin).await;
}
