//! The memory of a whole `mooring serve` (API and controller, one replica
//! holding every shard) with N resources in the store (default 100,000),
//! beside the goal: under 300 MB RSS.
//!
//! ```sh
//! cargo build --workspace --all-targets     # the mooring binary, as the suite builds it
//! cargo run --example serve_memory -- --resources 100000
//! ```
//!
//! Needs Postgres (`DATABASE_URL`; the database `mooring_bench_serve` on its
//! server is dropped and created) and Redis (`REDIS_URL`). The resources are
//! relays written with one SQL statement and annotated
//! `mooring/reconcile: paused`, so the controller lists, queues and reconciles
//! every one (each reconcile reads the row and writes a `Synced=False, Paused`
//! status) without a cloud to talk to (`--cloud sim`, which then holds
//! nothing). Rows written by SQL have no name claims, so the start also
//! claims them, as the first start after an upgrade does. The run samples the
//! server's RSS from `/proc` until every
//! resource carries that status, scrapes `/metrics` once (the resource gauges
//! encode every resource), and reports the steady and peak (VmHWM) figures.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

const DATABASE: &str = "mooring_bench_serve";

/// The `mooring` binary beside this example (`target/<profile>/mooring`).
fn mooring_bin() -> Result<PathBuf> {
    if let Ok(bin) = std::env::var("MOORING_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let exe = std::env::current_exe()?;
    let bin = exe.parent().and_then(|examples| examples.parent()).map(|dir| dir.join("mooring"));
    match bin {
        Some(b) if b.exists() => Ok(b),
        _ => bail!("no mooring binary beside {} (build it, or set MOORING_BIN)", exe.display()),
    }
}

mod common;

use common::memory_mib;

#[tokio::main]
async fn main() -> Result<()> {
    let resources = common::resources_arg()?;
    let db = common::fresh_database(DATABASE).await?;
    let pool = db.pool.clone();
    db.write_resources(
        "INSERT INTO resources (uid, kind, namespace, name, annotations, spec, spec_hash, status, generation, \
             resource_version, source) \
         SELECT gen_random_uuid(), 'Relay', 'team-' || (i % 50), 'relay-' || i, \
             '{\"mooring/reconcile\": \"paused\"}'::jsonb, \
             jsonb_build_object('cluster', 'prod', 'containers', jsonb_build_array(jsonb_build_object( \
                 'name', 'app', 'image', 'public.ecr.aws/acme/app:' || (i % 7), 'port', 8000)), \
                 'scaling', jsonb_build_object('min', 1, 'max', 4)), \
             'h' || i, '{}'::jsonb, 1, 1, 'api' \
         FROM generate_series(1, $1) AS i",
        resources,
    )
    .await?;

    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let token = "bench-serve-memory-token";
    let mut child = tokio::process::Command::new(mooring_bin()?)
        .args(["serve", "--cloud", "sim", "--listen", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", &db.url)
        .env("MOORING_BOOTSTRAP_TOKEN", token)
        .env("MOORING_REDIS_PREFIX", format!("bench-serve-{}", std::process::id()))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting mooring serve")?;
    let pid = child.id().context("the server's pid")?;
    let idle = {
        tokio::time::sleep(Duration::from_secs(3)).await;
        memory_mib(Some(pid), "VmRSS")
    };

    // Until every resource was reconciled once (it then says it is paused).
    let t = Instant::now();
    let mut samples = vec![];
    loop {
        let done: i64 =
            sqlx::query_scalar("SELECT count(*) FROM resources WHERE status ? 'conditions'").fetch_one(&pool).await?;
        samples.push(memory_mib(Some(pid), "VmRSS"));
        if done as usize >= resources {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            bail!("mooring serve exited: {status}");
        }
        if t.elapsed() > Duration::from_secs(1800) {
            bail!("only {done} of {resources} reconciled in 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let reconciled = t.elapsed();
    let settled = memory_mib(Some(pid), "VmRSS");
    let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(120)).build()?;
    // The resource gauges refresh on their own schedule: scrape until they hold everything.
    let mut scraped = 0usize;
    for _ in 0..60 {
        let text = http.get(format!("http://127.0.0.1:{port}/metrics")).bearer_auth(token).send().await?.text().await?;
        scraped = text.lines().filter(|l| l.starts_with("mooring_resource_generation{")).count();
        if scraped >= resources {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let after_scrape = memory_mib(Some(pid), "VmRSS");
    let peak = memory_mib(Some(pid), "VmHWM");
    let during = samples.iter().copied().fold(0.0, f64::max);
    println!(
        "| resources | reconciled once in | RSS 3 s after start → while reconciling (max) → settled → after a scrape | peak (VmHWM) | bound |"
    );
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| {resources} | {:.0} s | {idle:.0} → {during:.0} → {settled:.0} → {after_scrape:.0} MiB | {peak:.0} MiB | 300 MB (286 MiB) |",
        reconciled.as_secs_f64()
    );
    println!("(the scrape held {scraped} resources' generation series)");
    child.kill().await.ok();
    drop(pool);
    db.drop_database(DATABASE).await
}
