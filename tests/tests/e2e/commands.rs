//! Commands that need no server: `schema` and `migrate`.

use tests::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_and_migrate_commands() {
    let stack = Stack::new("schema_and_migrate").await;

    for (arg, title) in [("worker", "Worker"), ("relays", "Relay"), ("Node", "Node")] {
        let out = stack.run(&["schema", arg]).await;
        let schema = out.success().json();
        assert_eq!(schema["title"], title, "{out}");
        assert!(schema["properties"]["spec"].is_object(), "{out}");
    }
    stack.run(&["schema", "pods"]).await.failure().stderr_has("pods");

    // A fresh database, twice: the second run has nothing to do.
    stack.run(&["migrate"]).await.success().stdout_has("migrations applied");
    stack.run(&["migrate"]).await.success().stdout_has("migrations applied");
    let pool = stack.db.pool().await;
    for table in ["resources", "revisions", "changes", "events", "api_tokens", "signing_keys"] {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(table)
            .fetch_one(&pool)
            .await
            .expect("to_regclass");
        assert!(exists, "table {table} after migrate");
    }
    let keys: i64 = sqlx::query_scalar("SELECT count(*) FROM signing_keys").fetch_one(&pool).await.expect("count");
    assert_eq!(keys, 1, "the signing key is registered once");
    pool.close().await;

    // A database that does not exist: a clear error, exit 1.
    let missing = format!("{}_missing", stack.db.url);
    stack.run_with(&[("DATABASE_URL", &missing)], &["migrate"]).await.code_is(1).stderr_has("does not exist");
}
