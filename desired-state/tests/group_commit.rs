//! Group commit: writes that wait together are written in one transaction, and
//! each keeps its own answer — a refusal answers only its writer, a failed
//! statement sends the batch's writes one by one.
//!
//! To make a batch on purpose, a transaction of the test's own holds a row
//! locked for each of the store's leaders: the writes to them occupy every
//! leader, so the writes after them queue. When the test lets go, the queued
//! writes are taken as one batch.

mod common;

use std::future::Future;
use std::pin::Pin;

use api_types::{AnyResource, Kind, validate_document};
use common::{relay, worker};
use desired_state::signing::Signer;
use desired_state::store::group_commit::MAX_LEADERS;
use desired_state::store::{ChangeSource, Store, StoreError, WriteAction, WriteMode, WriteOutcome};
use serde_json::Value;
use sqlx::{ConnectOptions, PgConnection, PgPool};

type Write<'a> = Pin<Box<dyn Future<Output = Result<WriteOutcome, StoreError>> + Send + 'a>>;

fn doc(v: Value) -> AnyResource {
    validate_document(v).expect("a valid document")
}

async fn store(pool: PgPool) -> Store {
    let store = Store::from_pool(pool, Signer::generate());
    store.migrate().await.expect("migrate");
    store
}

/// A connection of the test's own, outside the store's pool (which the
/// waiting leaders fill).
async fn connection(pool: &PgPool) -> PgConnection {
    pool.connect_options().connect().await.expect("a connection")
}

/// How many sessions wait for a row lock.
async fn waiting_for_locks(probe: &mut PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
    )
    .fetch_one(probe)
    .await
    .expect("pg_stat_activity")
}

/// Starts `write` (it joins the queue when first polled) and returns it.
async fn started<'a>(mut write: Write<'a>) -> Write<'a> {
    assert!(futures::poll!(&mut write).is_pending(), "the write waits for its batch");
    write
}

/// Holds the rows of relays `held-0`, `held-1`, … locked, and has every
/// leader wait for one of them (a write to each); returns the lock and those
/// writes.
async fn occupy_every_leader<'a>(store: &'a Store, pool: &PgPool) -> (PgConnection, Vec<Write<'a>>) {
    let api = ChangeSource::api("test");
    let names: Vec<String> = (0..MAX_LEADERS).map(|i| format!("held-{i}")).collect();
    for name in &names {
        store.write(&doc(relay(name, "default", "nginx:1")), WriteMode::Create, &api).await.expect("created");
    }
    let mut lock = connection(pool).await;
    let mut probe = connection(pool).await;
    sqlx::query("BEGIN").execute(&mut lock).await.expect("begin");
    sqlx::query("SELECT 1 FROM resources WHERE name = ANY($1) FOR UPDATE")
        .bind(&names)
        .execute(&mut lock)
        .await
        .expect("lock the rows");
    let mut held = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let d = doc(relay(name, "default", "nginx:2"));
        held.push(
            started(Box::pin(async move { store.write(&d, WriteMode::Upsert, &ChangeSource::api("test")).await }))
                .await,
        );
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while waiting_for_locks(&mut probe).await < i as i64 + 1 {
            assert!(tokio::time::Instant::now() < deadline, "the write to {name} waits for its row");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    (lock, held)
}

/// The transactions that last wrote these relays' rows.
async fn transactions_of(pool: &PgPool, names: &[&str]) -> usize {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let xids: Vec<String> = sqlx::query_scalar("SELECT DISTINCT xmin::text FROM resources WHERE name = ANY($1)")
        .bind(&names)
        .fetch_all(pool)
        .await
        .expect("xmin");
    xids.len()
}

#[sqlx::test(migrations = false)]
async fn queued_writes_share_one_transaction_and_a_refusal_answers_only_its_writer(pool: PgPool) {
    let store = &store(pool.clone()).await;
    let api = ChangeSource::api("test");
    let existing = store.write(&doc(relay("c", "default", "nginx:1")), WriteMode::Create, &api).await.unwrap();
    let (mut lock, held) = occupy_every_leader(store, &pool).await;

    // Queued behind them: three creates, an update of `c` with its version,
    // a second update of `c` with the same (soon stale) version, and a create
    // of a name that exists.
    let rv = existing.resource.resource_version;
    let mut queued = Vec::new();
    for name in ["d", "e", "f"] {
        let d = doc(relay(name, "default", "nginx:1"));
        queued.push(
            started(Box::pin(async move { store.write(&d, WriteMode::Create, &ChangeSource::api("t")).await })).await,
        );
    }
    for image in ["nginx:2", "nginx:3"] {
        let d = doc(relay("c", "default", image));
        queued.push(
            started(Box::pin(async move {
                store.write(&d, WriteMode::Replace { resource_version: rv }, &ChangeSource::api("t")).await
            }))
            .await,
        );
    }
    let dup = doc(relay("d", "default", "nginx:9"));
    queued.push(
        started(Box::pin(async move { store.write(&dup, WriteMode::Create, &ChangeSource::api("t")).await })).await,
    );

    sqlx::query("COMMIT").execute(&mut lock).await.expect("release the rows");
    for w in futures::future::join_all(held).await {
        assert_eq!(w.expect("the held write").action, WriteAction::Update);
    }
    let results = futures::future::join_all(queued).await;
    let actions: Vec<_> = results.iter().map(|r| r.as_ref().map(|o| o.action).map_err(|e| e.to_string())).collect();
    assert_eq!(
        actions[..4],
        [Ok(WriteAction::Create), Ok(WriteAction::Create), Ok(WriteAction::Create), Ok(WriteAction::Update)]
    );
    // The second update of `c` waited for the next batch and found the
    // version it named replaced by the first.
    assert!(matches!(results[4], Err(StoreError::Conflict { .. })), "{:?}", actions[4]);
    assert!(matches!(results[5], Err(StoreError::AlreadyExists { .. })), "{:?}", actions[5]);
    // The first five queued writes went in one transaction; the refusals
    // wrote nothing.
    assert_eq!(transactions_of(&pool, &["c", "d", "e", "f"]).await, 1);
    assert_eq!(store.get(Kind::Relay, "default", "d").await.unwrap().spec["containers"][0]["image"], "nginx:1");
    assert_eq!(store.get(Kind::Relay, "default", "c").await.unwrap().generation, 2);

    // Each write kept its change and its signed revision.
    let changes: i64 = sqlx::query_scalar("SELECT count(*) FROM changes").fetch_one(&pool).await.unwrap();
    let held = MAX_LEADERS as i64;
    assert_eq!(
        changes,
        held + 1 + held + 3 + 1,
        "creates of the held relays and c, their updates, creates of d e f, update of c"
    );
    let report = store.audit_verify(None).await.expect("audit");
    assert!(report.failure.is_none(), "{:?}", report.failure);
}

#[sqlx::test(migrations = false)]
async fn a_statement_that_fails_in_a_batch_sends_its_writes_one_by_one(pool: PgPool) {
    let store = &store(pool.clone()).await;
    let api = ChangeSource::api("test");
    let mut jobs = worker("jobs", "default");
    jobs["spec"]["queue"] = serde_json::json!({"name": "shared"});
    store.write(&doc(jobs), WriteMode::Create, &api).await.expect("the first worker of queue `shared`");
    let (mut lock, held) = occupy_every_leader(store, &pool).await;

    // Queued: two creates, and a worker whose queue name is taken. Its
    // insert fails inside the batch's transaction and undoes it.
    let mut queued = Vec::new();
    for name in ["d", "e"] {
        let d = doc(relay(name, "default", "nginx:1"));
        queued.push(
            started(Box::pin(async move { store.write(&d, WriteMode::Create, &ChangeSource::api("t")).await })).await,
        );
    }
    let mut thief = worker("thief", "default");
    thief["spec"]["queue"] = serde_json::json!({"name": "shared"});
    let thief = doc(thief);
    queued.push(
        started(Box::pin(async move { store.write(&thief, WriteMode::Create, &ChangeSource::api("t")).await })).await,
    );

    sqlx::query("COMMIT").execute(&mut lock).await.expect("release the rows");
    futures::future::join_all(held).await;
    let results = futures::future::join_all(queued).await;
    assert_eq!(results[0].as_ref().map(|o| o.action).ok(), Some(WriteAction::Create));
    assert_eq!(results[1].as_ref().map(|o| o.action).ok(), Some(WriteAction::Create));
    match &results[2] {
        Err(StoreError::NameTaken { claim, holder, .. }) => {
            assert!(claim.contains("shared"), "{claim}");
            assert!(holder.contains("jobs"), "{holder}");
        }
        other => panic!("expected NameTaken, got {other:?}"),
    }
    // Written again one by one: a transaction each.
    assert_eq!(transactions_of(&pool, &["d", "e"]).await, 2);
    assert!(matches!(store.get(Kind::Worker, "default", "thief").await, Err(StoreError::NotFound { .. })));
    let report = store.audit_verify(None).await.expect("audit");
    assert!(report.failure.is_none(), "{:?}", report.failure);
}

/// A caller that goes away while its transaction begins (a client that
/// disconnected, an aborted task, a timeout) leaves no transaction open on
/// the pooled connection: the next borrower's statements are its own, and
/// commit. With one connection in the pool, every borrower gets the same one.
#[sqlx::test(migrations = false)]
async fn a_caller_dropped_while_its_transaction_begins_leaves_no_transaction_open(pool: PgPool) {
    let one = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with((*pool.connect_options()).clone())
        .await
        .unwrap();
    let store = Store::from_pool(one.clone(), Signer::generate());
    store.migrate().await.unwrap();
    sqlx::query("CREATE TABLE probe (attempt bigint)").execute(&one).await.unwrap();
    let mut outside = connection(&pool).await;
    let plan = doc(relay("gw", "default", "nginx:1"));
    let mut cancelled = 0;
    for i in 0..400i64 {
        // Cancelled somewhere between taking the connection and the plan's end.
        let wait = std::time::Duration::from_micros((i as u64 * 37) % 1500);
        cancelled += usize::from(tokio::time::timeout(wait, store.plan(&plan)).await.is_err());
        // A statement of the next borrower commits: another session sees it.
        sqlx::query("INSERT INTO probe VALUES ($1)").bind(i).execute(&one).await.unwrap();
        let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM probe WHERE attempt = $1")
            .bind(i)
            .fetch_one(&mut outside)
            .await
            .unwrap();
        assert_eq!(seen, 1, "after attempt {i}, the pooled connection is inside a transaction nothing ends");
    }
    assert!(cancelled > 0, "no attempt was cancelled");
}
