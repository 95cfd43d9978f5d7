//! The revision history is append-only in the database and tamper-evident:
//! `audit verify` names the first row that does not verify.

mod common;

use api_types::Kind;
use common::{relay, start};
use serde_json::json;
use sqlx::PgPool;

const RELAYS: &str = "/v1/namespaces/default/relays";

async fn three_generations(api: &common::TestApi) {
    api.post_json(RELAYS, &relay("gw", "default", "nginx:1")).await;
    for image in ["nginx:2", "nginx:3"] {
        let cur = api.get(&format!("{RELAYS}/gw")).await;
        let mut d = relay("gw", "default", image);
        d["metadata"]["resourceVersion"] = cur.body["metadata"]["resourceVersion"].clone();
        assert!(api.put_json(&format!("{RELAYS}/gw"), &d).await.status.is_success());
    }
    api.post_json(RELAYS, &relay("other", "default", "nginx:1")).await;
}

#[sqlx::test(migrations = false)]
async fn the_database_refuses_update_and_delete_of_revisions(pool: PgPool) {
    let api = start(pool).await;
    three_generations(&api).await;
    let pool = api.store.pool();
    let update = sqlx::query("UPDATE revisions SET spec = '{}' WHERE generation = 2").execute(pool).await;
    let err = update.expect_err("UPDATE must be refused").to_string();
    assert!(err.contains("append-only"), "{err}");
    let delete = sqlx::query("DELETE FROM revisions WHERE generation = 1").execute(pool).await;
    assert!(delete.expect_err("DELETE must be refused").to_string().contains("append-only"));
    let truncate = sqlx::query("TRUNCATE revisions").execute(pool).await;
    assert!(truncate.is_err(), "TRUNCATE must be refused");
    let report = api.store.audit_verify(None).await.unwrap();
    assert_eq!(report.failure, None);
    assert_eq!((report.rows, report.chains), (4, 2));
}

/// Edits a row the way an attacker with table-owner rights would: around the trigger.
async fn tamper(pool: &PgPool, sql: &str) {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("ALTER TABLE revisions DISABLE TRIGGER revisions_append_only").execute(&mut *tx).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).execute(&mut *tx).await.unwrap();
    sqlx::query("ALTER TABLE revisions ENABLE TRIGGER revisions_append_only").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
}

async fn id_of(pool: &PgPool, name: &str, generation: i64) -> i64 {
    sqlx::query_scalar("SELECT id FROM revisions WHERE name = $1 AND generation = $2")
        .bind(name)
        .bind(generation)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = false)]
async fn a_tampered_spec_is_named(pool: PgPool) {
    let api = start(pool).await;
    three_generations(&api).await;
    let id = id_of(api.store.pool(), "gw", 2).await;
    let spec = json!({"cluster": "evil"}).to_string();
    tamper(api.store.pool(), &format!("UPDATE revisions SET spec = '{spec}' WHERE id = {id}")).await;
    let report = api.store.audit_verify(None).await.unwrap();
    let failure = report.failure.expect("the tampered row is found");
    assert_eq!((failure.id, failure.name.as_str(), failure.generation), (id, "gw", 2));
    assert!(failure.reason.contains("spec"), "{}", failure.reason);
}

#[sqlx::test(migrations = false)]
async fn a_rehashed_row_fails_its_signature_or_chain(pool: PgPool) {
    let api = start(pool).await;
    three_generations(&api).await;
    // Change the actor: the row hash no longer matches.
    let id = id_of(api.store.pool(), "gw", 3).await;
    tamper(api.store.pool(), &format!("UPDATE revisions SET actor = 'someone-else' WHERE id = {id}")).await;
    let f = api.store.audit_verify(None).await.unwrap().failure.unwrap();
    assert_eq!(f.id, id);
    assert!(f.reason.contains("altered"), "{}", f.reason);
}

#[sqlx::test(migrations = false)]
async fn a_forged_hash_fails_the_signature(pool: PgPool) {
    let api = start(pool).await;
    three_generations(&api).await;
    let id = id_of(api.store.pool(), "gw", 3).await;
    // Recompute a consistent hash for an altered row (as a forger would), but
    // without the key the signature cannot follow.
    let (uid, created, prev, spec_hash): (uuid::Uuid, chrono::DateTime<chrono::Utc>, Option<String>, String) =
        sqlx::query_as("SELECT uid, created_at, prev_hash, spec_hash FROM revisions WHERE id = $1")
            .bind(id)
            .fetch_one(api.store.pool())
            .await
            .unwrap();
    let body = json!({
        "uid": uid.to_string(), "kind": "Relay", "namespace": "default", "name": "gw", "generation": 3,
        "specHash": spec_hash, "source": "api", "actor": "forger", "commit": null,
        "createdAt": created.to_rfc3339_opts(chrono::SecondsFormat::Micros, true), "prevHash": prev,
    });
    use sha2::Digest;
    let hash = hex::encode(sha2::Sha256::digest(api_types::hash::canonical_json(&body).as_bytes()));
    tamper(api.store.pool(), &format!("UPDATE revisions SET actor = 'forger', hash = '{hash}' WHERE id = {id}")).await;
    let f = api.store.audit_verify(None).await.unwrap().failure.unwrap();
    assert_eq!(f.id, id);
    assert!(f.reason.contains("signature"), "{}", f.reason);
}

#[sqlx::test(migrations = false)]
async fn a_removed_revision_breaks_the_chain(pool: PgPool) {
    let api = start(pool).await;
    three_generations(&api).await;
    let id = id_of(api.store.pool(), "gw", 2).await;
    let mut tx = api.store.pool().begin().await.unwrap();
    sqlx::query("ALTER TABLE revisions DISABLE TRIGGER revisions_append_only").execute(&mut *tx).await.unwrap();
    sqlx::query("DELETE FROM revisions WHERE id = $1").bind(id).execute(&mut *tx).await.unwrap();
    sqlx::query("ALTER TABLE revisions ENABLE TRIGGER revisions_append_only").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    let f = api.store.audit_verify(None).await.unwrap().failure.unwrap();
    assert_eq!(f.generation, 3);
    assert!(f.reason.contains("missing"), "{}", f.reason);
}

#[sqlx::test(migrations = false)]
async fn only_trusted_keys_verify(pool: PgPool) {
    let api = start(pool).await;
    three_generations(&api).await;
    let stranger = desired_state::signing::Signer::generate().public_key_hex();
    let f = api.store.audit_verify(Some(vec![stranger])).await.unwrap().failure.unwrap();
    assert!(f.reason.contains("unknown key"), "{}", f.reason);
    let _ = Kind::Relay;
}

#[sqlx::test(migrations = false)]
async fn removing_the_newest_revisions_is_caught_at_the_head(pool: PgPool) {
    let api = start(pool).await;
    three_generations(&api).await;
    // The chain 1 → 2 still verifies on its own once generation 3 is gone;
    // the resource row, at generation 3, says otherwise.
    let id = id_of(api.store.pool(), "gw", 3).await;
    tamper(api.store.pool(), &format!("DELETE FROM revisions WHERE id = {id}")).await;
    let f = api.store.audit_verify(None).await.unwrap().failure.expect("a failure");
    assert_eq!((f.kind.as_str(), f.name.as_str(), f.generation), ("Relay", "gw", 3), "{f}");
    assert!(f.reason.contains("newest revision is generation 2"), "{}", f.reason);
}

#[sqlx::test(migrations = false)]
async fn names_of_resources_from_before_claims_are_claimed_a_page_at_a_time(pool: PgPool) {
    let api = start(pool.clone()).await;
    // More than one page (500) of relays, written through the API (claimed).
    let docs: Vec<serde_json::Value> = (0..1_100).map(|i| relay(&format!("r{i}"), "claims", "nginx:1")).collect();
    let r = api.post_json("/v1/apply", &serde_json::Value::Array(docs)).await;
    assert!(r.status.is_success(), "{}", r.text);
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(DISTINCT uid) FROM name_claims").fetch_one(&pool).await.unwrap()
    };
    let claimed = count().await;
    assert_eq!(claimed, 1_100, "one claim holder per relay");
    // As before claims existed: none recorded; start-up claims them again.
    sqlx::query("DELETE FROM name_claims").execute(&pool).await.unwrap();
    api.store.migrate().await.unwrap();
    assert_eq!(count().await, claimed, "every relay's names are claimed again");
    // Idempotent: nothing left to claim, nothing changes.
    api.store.migrate().await.unwrap();
    assert_eq!(count().await, claimed);
}
