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

use anyhow::Result;
use api_types::Kind;
use controller::resource_metrics::{ResourceGauges, SnapshotBuilder};
use futures::TryStreamExt;
use prometheus_client::registry::Registry;

const DATABASE: &str = "mooring_bench_metrics";

mod common;

use common::memory_mib;

#[tokio::main]
async fn main() -> Result<()> {
    let resources = common::resources_arg()?;
    let db = common::fresh_database(DATABASE).await?;
    let store = db.store.clone();

    db.write_resources(
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
        resources,
    )
    .await?;

    let rss_start = memory_mib(None, "VmRSS");
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
        let rss_held = memory_mib(None, "VmRSS");
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
            memory_mib(None, "VmRSS"),
            memory_mib(None, "VmHWM"),
        );
    }
    drop(store);
    db.drop_database(DATABASE).await
}
