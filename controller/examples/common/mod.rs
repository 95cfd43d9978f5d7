//! What the fleet-scale examples share: their `--resources N` flag, a fresh
//! benchmark database with Mooring's schema, and memory readings from `/proc`.
//! Each example uses part of it.
#![allow(dead_code)]

use anyhow::{Context as _, Result, bail};
use desired_state::signing::Signer;
use desired_state::store::Store;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgConnection, PgPool};

/// `--resources N` (default 100,000), the only flag.
pub fn resources_arg() -> Result<usize> {
    let mut resources = 100_000usize;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--resources" => resources = args.next().context("--resources needs a number")?.parse()?,
            other => bail!("unknown option {other}"),
        }
    }
    Ok(resources)
}

/// A benchmark database, dropped first if it exists, migrated.
pub struct BenchDatabase {
    /// A connection to the server's default database, to drop it at the end.
    pub admin: PgConnection,
    /// Its URL.
    pub url: String,
    pub pool: PgPool,
    pub store: Store,
}

/// Creates `name` on the server of `DATABASE_URL` (dropping it first).
pub async fn fresh_database(name: &str) -> Result<BenchDatabase> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/mooring".into());
    let server: PgConnectOptions = url.parse().context("DATABASE_URL is not a Postgres URL")?;
    let mut admin = server.connect().await.with_context(|| format!("cannot connect to {url}"))?;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
        .execute(&mut admin)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await?;
    let pool = PgPoolOptions::new().max_connections(2).connect_with(server.database(name)).await?;
    let store = Store::from_pool(pool.clone(), Signer::generate());
    store.migrate().await.context("cannot migrate the benchmark database")?;
    let url = format!("{}/{name}", url.rsplit_once('/').map_or(url.as_str(), |(s, _)| s));
    Ok(BenchDatabase { admin, url, pool, store })
}

impl BenchDatabase {
    /// Writes `resources` rows with `insert`, one SQL statement whose `$1`
    /// is the count (the write path is not what the examples measure).
    pub async fn write_resources(&self, insert: &'static str, resources: usize) -> Result<()> {
        let started = std::time::Instant::now();
        sqlx::query(insert).bind(resources as i64).execute(&self.pool).await.context("inserting the resources")?;
        println!("{resources} resources written in {:.1} s", started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Drops the database.
    pub async fn drop_database(mut self, name: &str) -> Result<()> {
        drop(self.store);
        self.pool.close().await;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
            .execute(&mut self.admin)
            .await?;
        Ok(())
    }
}

/// A line of `/proc/<pid>/status` (this process without a pid) in MiB:
/// `VmRSS`, `VmHWM`.
pub fn memory_mib(pid: Option<u32>, field: &str) -> f64 {
    let path = pid.map_or_else(|| "/proc/self/status".to_string(), |p| format!("/proc/{p}/status"));
    let status = std::fs::read_to_string(path).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
