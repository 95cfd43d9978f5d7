//! Rolling upgrades: migrations run at start-up, so two replicas of a new
//! version starting together on the previous version's schema must apply
//! each migration exactly once (sqlx takes a Postgres advisory lock) and both
//! come up serving.

use sqlx::migrate::Migrator;
use tests::{Stack, relay_yaml};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_start_together_on_the_previous_schema() {
    let stack = Stack::new("upgrade_two_replicas").await;
    let all: Vec<_> = desired_state::store::MIGRATOR.iter().cloned().collect();
    assert!(!all.is_empty());
    // The previous release's schema: every migration but the newest.
    let pool = stack.db.pool().await;
    let old = Migrator::with_migrations(all[..all.len() - 1].to_vec());
    old.run(&pool).await.expect("the previous schema");

    // Both start at once, without waiting for each other.
    let mut a = stack.server().name("new-a").spawn();
    let mut b = stack.server().name("new-b").spawn();
    a.wait_healthy().await;
    b.wait_healthy().await;

    let applied: Vec<(i64, bool)> = sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&pool)
        .await
        .unwrap();
    let versions: Vec<i64> = applied.iter().map(|(v, _)| *v).collect();
    let want: Vec<i64> = all.iter().map(|m| m.version).collect();
    assert_eq!(versions, want, "each migration recorded once");
    assert!(applied.iter().all(|(_, ok)| *ok), "{applied:?}");

    // Both replicas serve the same store.
    let file = stack.write("gw.yaml", &relay_yaml("gateway", "upgrade", "public.ecr.aws/acme/gateway:1"));
    a.cli(&["apply", "-f", file.to_str().expect("a UTF-8 path")]).await.success();
    b.cli(&["get", "relay", "gateway", "-n", "upgrade"]).await.success().stdout_has("gateway");
    for server in [&a, &b] {
        assert!(!server.log().contains("migrating"), "{}: a migration error:\n{}", server.name, server.log());
    }
    stack.run(&["audit", "verify"]).await.success();
}
