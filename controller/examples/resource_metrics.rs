//! The per-resource gauges of `/metrics` at fleet scale: N resources in the
//! store (default 100,000), read as the refresh reads them, held, and encoded
//! as a scrape encodes them — time, text size and the process's memory, beside
//! the goal for `mooring serve` with 100,000 resources (< 300 MB RSS).
//!
//! ```sh
//! cargo run --release --example resource_metrics -- --resources 100000
//! ```
//!
//! Needs Postgres (`DATABASE_URL`; the database `mooring_bench_metrics` on its
//! server is dropped and created). The rows are written with one SQL statement
//! (statuses with four conditions and replica counts, like a settled fleet):
//! the write path is not what this measures.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use api_types::Kind;
use controller::resource_metrics::{ResourceGauges, SnapshotBuilder};
use desired_state::signing::Signer;
use desired_state::store::Store;
use futures::TryStreamExt;
use prometheus_client::registry::Registry;
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const DATABASE: &str = "mooring_bench_metrics";

/// A line of /proc/self/status in MiB (`VmRSS`, `VmHWM`).
fn memory_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut resources = 100_000usize;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--resources" => resources = args.next().context("--resources needs a number")?.parse()?,
            other => bail!("unknown option {other}"),
        }
    }
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/mooring".into());
    let server: PgConnectOptions = url.parse().context("DATABASE_URL is not a Postgres URL")?;
    let mut admin = server.connect().await.with_context(|| format!("cannot connect to {url}"))?;
    sqlx::query("DROP DATABASE IF EXISTS mooring_bench_metrics WITH (FORCE)").execute(&mut admin).await?;
    sqlx::query("CREATE DATABASE mooring_bench_metrics").execute(&mut admin).await?;
    let pool = PgPoolOptions::new().max_connections(2).connect_with(server.database(DATABASE)).await?;
    let store = Store::from_pool(pool.clone(), Signer::generate());
    store.migrate().await.context("cannot migrate the benchmark database")?;

    let started = Instant::now();
    sqlx::query(
        "INSERT INTO resources (uid, kind, namespace, name, spec, spec_hash, status, generation, resource_version, source) \
         SELECT gen_random_uuid(), (ARRAY['Relay','Worker','Node'])[1 + i % 3], 'team-' || (i % 50), 'resource-' || i, \
             jsonb_build_object('cluster', 'prod', 'cpu', 512, 'memory', 1024), 'h' || i, \
             jsonb_build_object('observedGeneration', 2, \
                 'replicas', jsonb_build_object('desired', 3, 'running', 2 + i % 2), \
                 'conditions', jsonb_build_array( \
                     jsonb_build_object('type', 'Ready', 'status', CASE WHEN i % 10 = 0 THEN 'False' ELSE 'True' END, \
                         'reason', 'TasksRunning', 'message', '3/3 tasks running', 'lastTransitionTime', now()), \
                     jsonb_build_object('type', 'Synced', 'status', 'True', 'reason', 'Applied', \
                         'message', 'task definition revision 7 applied', 'lastTransitionTime', now()), \
                     jsonb_build_object('type', 'Progressing', 'status', 'False', 'reason', 'Stable', \
                         'message', 'deployment completed', 'lastTransitionTime', now()), \
                     jsonb_build_object('type', 'Degraded', 'status', 'False', 'reason', 'Healthy', \
                         'message', '', 'lastTransitionTime', now()))), \
             2, 1, 'api' \
         FROM generate_series(1, $1) AS i",
    )
    .bind(resources as i64)
    .execute(&pool)
    .await
    .context("inserting the resources")?;
    println!("{resources} resources written in {:.1} s", started.elapsed().as_secs_f64());

    let rss_start = memory_mib("VmRSS");
    let kinds: Vec<&str> = Kind::RECONCILED.iter().map(|k| k.as_str()).collect();
    let gauges = Arc::new(ResourceGauges::default());
    let mut registry = Registry::with_prefix("mooring");
    registry.register_collector(Box::new(gauges.clone()));
    for round in 1..=3 {
        let t = Instant::now();
        let mut rows = store.resource_summaries(&kinds);
        let mut builder = SnapshotBuilder::default();
        while let Some(r) = rows.try_next().await? {
            builder.push(&r);
        }
        drop(rows);
        gauges.replace(builder.finish(chrono::Utc::now()));
        let read = t.elapsed();
        let rss_held = memory_mib("VmRSS");
        let t = Instant::now();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry)?;
        let encoded = t.elapsed();
        println!(
            "round {round}: refresh (read {resources} summaries) {:.0} ms; scrape encode {:.0} ms, {:.1} MiB of text, \
             {} series; RSS {rss_start:.0} MiB at start → {rss_held:.0} MiB holding the rows → {:.0} MiB after the \
             scrape; peak {:.0} MiB",
            read.as_secs_f64() * 1000.0,
            encoded.as_secs_f64() * 1000.0,
            text.len() as f64 / 1048576.0,
            gauges.snapshot().series(),
            memory_mib("VmRSS"),
            memory_mib("VmHWM"),
        );
    }
    drop(admin);
    Ok(())
}
