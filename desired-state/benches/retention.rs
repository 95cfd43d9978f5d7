//! Compaction of the change feed and events (`Store::compact`), beside its
//! bound: one plain `DELETE` of the same rows in a single statement, on the
//! same Postgres in the same run.
//!
//! `cargo bench --workspace --bench retention` (needs the local stack;
//! see docs/BENCHMARKS.md). `BENCH_CHANGES` (default 200000) changes and
//! `BENCH_EVENTS` (default 100000) events older than the window, plus 1,000
//! of each within it (which must stay).

use std::time::{Duration, Instant};

use desired_state::signing::Signer;
use desired_state::store::Store;
use desired_state::store::retention::Retention;

async fn count(pool: &sqlx::PgPool, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}"))).fetch_one(pool).await.unwrap()
}

/// `old` changes two days old and 1,000 from now; `old` events eight days
/// old and 1,000 from now.
async fn fill(pool: &sqlx::PgPool, old: i64, old_events: i64, from: i64) {
    sqlx::query(
        "INSERT INTO changes (seq, kind, namespace, name, uid, op, generation, resource_version, created_at) \
         SELECT g, 'Relay', 'bench', 'r' || g, gen_random_uuid(), 'update', 1, g, \
                CASE WHEN g < $1 + $2 THEN now() - interval '2 days' ELSE now() END \
         FROM generate_series($1, $1 + $2 + 999) g",
    )
    .bind(from)
    .bind(old)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("UPDATE change_sequence SET last = $1 WHERE id = 1")
        .bind(from + old + 999)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO events (uid, kind, namespace, name, type, reason, message, first_seen, last_seen) \
         SELECT gen_random_uuid(), 'Relay', 'bench', 'r' || g, 'Normal', 'ScaledOut', 'to ' || g, \
                t, t FROM generate_series(1, $1 + 1000) g, \
                LATERAL (SELECT CASE WHEN g <= $1 THEN now() - interval '8 days' ELSE now() END AS t) x",
    )
    .bind(old_events)
    .execute(pool)
    .await
    .unwrap();
}

#[tokio::main]
async fn main() {
    let changes: i64 = std::env::var("BENCH_CHANGES").ok().and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let events: i64 = std::env::var("BENCH_EVENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let base_url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/mooring".into());
    let server_url = base_url.rsplit_once('/').map(|(s, _)| s.to_string()).unwrap_or(base_url.clone());
    let db = format!("mooring_bench_retention_{}", std::process::id());
    let admin = sqlx::PgPool::connect(&format!("{server_url}/postgres")).await.expect("connect to postgres");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}"))).execute(&admin).await.expect("create db");
    let url = format!("{server_url}/{db}");
    let store = Store::connect_lazy(&desired_state::store::StoreConfig::new(&url), Signer::generate()).unwrap();
    store.migrate().await.unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();

    fill(&pool, changes, events, 1).await;
    let day = Duration::from_secs(86_400);
    let retention = Retention { changes: day, events: 7 * day };
    let started = Instant::now();
    let c = store.compact(&retention, chrono::Utc::now()).await.unwrap();
    let compaction = started.elapsed();
    assert_eq!((c.changes as i64, c.events as i64), (changes, events), "{c:?}");
    assert_eq!((count(&pool, "changes").await, count(&pool, "events").await), (1000, 1000), "the window stays");

    // The bound: the same rows, one statement each, no batches, no lock.
    sqlx::query("DELETE FROM changes").execute(&pool).await.unwrap();
    sqlx::query("DELETE FROM events").execute(&pool).await.unwrap();
    fill(&pool, changes, events, changes + 1000 + 1).await;
    let started = Instant::now();
    sqlx::query("DELETE FROM changes WHERE created_at < now() - interval '1 day'").execute(&pool).await.unwrap();
    sqlx::query("DELETE FROM events WHERE last_seen < now() - interval '7 days'").execute(&pool).await.unwrap();
    let plain = started.elapsed();

    let rows = (changes + events) as f64;
    println!("| run | rows deleted | seconds | rows/s |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| `Store::compact` (batches of 5,000, advisory lock) | {} | {:.2} | {:.0} |",
        changes + events,
        compaction.as_secs_f64(),
        rows / compaction.as_secs_f64()
    );
    println!(
        "| one plain `DELETE` per table (the bound) | {} | {:.2} | {:.0} |",
        changes + events,
        plain.as_secs_f64(),
        rows / plain.as_secs_f64()
    );
    println!(
        "compaction / bound: {:.2}x; kept within the window: 1000 changes, 1000 events",
        compaction.as_secs_f64() / plain.as_secs_f64()
    );
    drop(store);
    pool.close().await;
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {db} WITH (FORCE)"))).execute(&admin).await;
}
