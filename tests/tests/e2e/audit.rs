//! The signed, append-only revision history and `mooring audit verify`.

use sqlx::{AssertSqlSafe, PgPool};
use tests::{Stack, relay_yaml, worker_yaml};

/// Edits rows the way someone with table-owner rights could: around the trigger.
async fn tamper(pool: &PgPool, sql: &str) {
    let mut tx = pool.begin().await.expect("BEGIN");
    sqlx::query("ALTER TABLE revisions DISABLE TRIGGER revisions_append_only")
        .execute(&mut *tx)
        .await
        .expect("DISABLE TRIGGER");
    sqlx::query(AssertSqlSafe(sql.to_string())).execute(&mut *tx).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    sqlx::query("ALTER TABLE revisions ENABLE TRIGGER revisions_append_only")
        .execute(&mut *tx)
        .await
        .expect("ENABLE TRIGGER");
    tx.commit().await.expect("COMMIT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_detects_tampering() {
    let stack = Stack::new("audit_verify").await;
    let server = stack.server().start().await;

    // Three generations of a relay and one of a worker: four revisions, two chains.
    for image in ["public.ecr.aws/acme/gateway:1", "public.ecr.aws/acme/gateway:2", "public.ecr.aws/acme/gateway:3"] {
        let file = stack.write("gateway.yaml", &relay_yaml("gateway", "default", image));
        server.cli(&["apply", "-f", file.to_str().expect("a UTF-8 path")]).await.success();
    }
    let file = stack.write("worker.yaml", &worker_yaml("converter", "default", "ghcr.io/acme/proton-beam:0.9"));
    server.cli(&["apply", "-f", file.to_str().expect("a UTF-8 path")]).await.success();

    // The audit runs as its own process with the server's key.
    stack.run(&["audit", "verify"]).await.success().stdout_has("ok: 4 revisions in 2 chains");
    let public_key = stack.public_key();
    stack.run(&["audit", "verify", "--public-key", &public_key]).await.success();
    // Trusting only some other key, no signature verifies.
    let other = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    stack.run(&["audit", "verify", "--public-key", other]).await.code_is(1).output_has("revision id");

    let pool = stack.db.pool().await;
    let id: i64 = sqlx::query_scalar("SELECT id FROM revisions WHERE name = 'gateway' AND generation = 2")
        .fetch_one(&pool)
        .await
        .expect("the revision of generation 2");

    // The table refuses plain edits.
    let refused =
        sqlx::query("UPDATE revisions SET spec = '{\"cluster\":\"evil\"}' WHERE id = $1").bind(id).execute(&pool).await;
    let err = refused.expect_err("an UPDATE of revisions must be refused").to_string();
    assert!(err.contains("append-only"), "{err}");
    stack.run(&["audit", "verify"]).await.success();

    // Around the trigger, the edit goes through, and the audit names the row.
    tamper(&pool, &format!("UPDATE revisions SET spec = '{{\"cluster\":\"evil\"}}' WHERE id = {id}")).await;
    stack.run(&["audit", "verify"]).await.code_is(1).output_has(&format!("revision id {id} "));
    pool.close().await;
}
