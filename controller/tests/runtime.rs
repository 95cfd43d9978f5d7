//! The controller runtime with real Postgres and Redis: de-duplication, never
//! two reconciles of a key at once, shard hand-over, fencing, and behaviour
//! when Redis or the database goes away.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use api_types::Kind;
use common::*;
use sqlx::PgPool;

#[sqlx::test(migrations = false)]
async fn a_burst_of_triggers_gives_few_reconciles_never_two_at_once(pool: PgPool) {
    let store = store(pool).await;
    let probe = Arc::new(Probe::default());
    // Each reconcile takes 50 ms, so many triggers land while one is running.
    let opts = Options { work: Duration::from_millis(50), ..Default::default() };
    let replica = start_replica(&store, &prefix(), "r1", probe.clone(), &opts);
    let r = create(&store, "hot").await;
    eventually(Duration::from_secs(10), "the first reconcile", || async {
        probe.reconciles.load(Ordering::SeqCst) > 0
    })
    .await;

    // 1,000 triggers for one key through the change feed (AWS-event style
    // announcements from 8 concurrent tasks) and 1,000 direct adds.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, r) = (store.clone(), r.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..125 {
                store.touch(&r).await.unwrap();
            }
        }));
    }
    let key = controller::runtime::ResourceKey { kind: Kind::Relay, namespace: "default".into(), name: "hot".into() };
    for _ in 0..1000 {
        replica.controller.queue(Kind::Relay).add(key.clone());
        tokio::task::yield_now().await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    // A last real change after the burst is still reconciled.
    relabel(&store, "hot", "final").await;
    eventually(Duration::from_secs(20), "the final labels are reconciled", || async {
        probe.last_seen.lock().await.get("Relay/default/hot") == Some(&serde_json::json!({"v": "final"}))
    })
    .await;
    let n = probe.reconciles.load(Ordering::SeqCst);
    println!("2,000 triggers gave {n} reconciles");
    assert!(n < 150, "2,000 triggers gave {n} reconciles; expected far fewer");
    assert_eq!(probe.max_concurrent_same_key.load(Ordering::SeqCst), 1, "a key was reconciled twice at once");
    replica.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn shards_spread_and_a_dead_replicas_shards_move_within_a_lease_period(pool: PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let probe = Arc::new(Probe::default());
    let opts = Options { shards: 12, ..Default::default() };
    let a = start_replica(&store, &prefix, "a", probe.clone(), &opts);
    let b = start_replica(&store, &prefix, "b", probe.clone(), &opts);
    let c = start_replica(&store, &prefix, "c", probe.clone(), &opts);
    eventually(Duration::from_secs(15), "4 shards each", || async { (a.owned(), b.owned(), c.owned()) == (4, 4, 4) })
        .await;
    for i in 0..30 {
        create(&store, &format!("r{i}")).await;
    }
    eventually(Duration::from_secs(15), "30 resources reconciled", || async {
        let mut done = 0;
        for i in 0..30 {
            done += status_writer(&store, &format!("r{i}")).await.is_some() as usize;
        }
        done == 30
    })
    .await;
    // Every resource was reconciled by the replica holding its shard.
    let writers: std::collections::BTreeSet<String> = {
        let mut s = std::collections::BTreeSet::new();
        for i in 0..30 {
            s.insert(status_writer(&store, &format!("r{i}")).await.unwrap());
        }
        s
    };
    assert_eq!(writers.len(), 3, "work is shared: {writers:?}");

    // Crash c: no release. Its shards move once its leases expire: within one
    // lease period plus a renew interval.
    let crashed_at = tokio::time::Instant::now();
    c.crash();
    eventually(opts.lease + opts.renew * 3, "a and b take over c's shards", || async {
        (a.owned(), b.owned()) == (6, 6)
    })
    .await;
    let took = crashed_at.elapsed();
    println!("shards moved {took:?} after the crash (lease {:?}, renew {:?})", opts.lease, opts.renew);
    for i in 30..40 {
        create(&store, &format!("r{i}")).await;
    }
    eventually(Duration::from_secs(15), "new resources reconciled by survivors", || async {
        let mut done = 0;
        for i in 30..40 {
            done += matches!(status_writer(&store, &format!("r{i}")).await.as_deref(), Some("a" | "b")) as usize;
        }
        done == 10
    })
    .await;
    // A graceful stop releases at once: the last replica takes everything.
    a.shutdown().await;
    eventually(opts.renew * 4, "b holds all 12", || async { b.owned() == 12 }).await;
    b.shutdown().await;
}

/// One shard, on leases long enough that only the test takes them away.
fn one_long_lease() -> Options {
    Options { shards: 1, lease: Duration::from_secs(60), renew: Duration::from_secs(30), ..Default::default() }
}

/// Replica "a" holding the one shard, and "gw" created and reconciled by it.
async fn a_reconciling_gw(store: &desired_state::store::Store, prefix: &str, probe: &Arc<Probe>) -> Replica {
    let a = start_replica(store, prefix, "a", probe.clone(), &one_long_lease());
    eventually(Duration::from_secs(10), "a holds the shard", || async { a.owned() == 1 }).await;
    create(store, "gw").await;
    eventually(Duration::from_secs(10), "a reconciled", || async {
        status_writer(store, "gw").await.as_deref() == Some("a")
    })
    .await;
    a
}

/// Takes the one shard's lease away in Redis, as if it had expired.
async fn expire_lease(prefix: &str) {
    let redis = redis::Client::open(redis_url()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("DEL").arg(format!("{prefix}:lease:0")).query_async(&mut conn).await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn a_replica_with_a_stale_fencing_token_cannot_overwrite_status(pool: PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let probe = Arc::new(Probe::default());
    // Long leases, so "a" keeps trusting its hold while "b" takes the shard:
    // the situation of a replica that paused (GC, network) past its lease.
    let a = a_reconciling_gw(&store, &prefix, &probe).await;

    let b = start_replica(&store, &prefix, "b", probe.clone(), &one_long_lease());
    // a's lease "expires" in Redis; b takes the shard with a newer token.
    expire_lease(&prefix).await;
    b.controller.leases().tick().await.unwrap();
    assert_eq!(b.owned(), 1);
    relabel(&store, "gw", "new").await;
    eventually(Duration::from_secs(10), "b reconciled", || async {
        status_writer(&store, "gw").await.as_deref() == Some("b")
    })
    .await;

    // a still believes it holds the shard; its status write is refused.
    assert_eq!(a.owned(), 1);
    let before = a.metrics.reconcile_count("Relay", "skipped");
    let key = controller::runtime::ResourceKey { kind: Kind::Relay, namespace: "default".into(), name: "gw".into() };
    a.controller.queue(Kind::Relay).add(key);
    eventually(Duration::from_secs(10), "a tried", || async { a.metrics.reconcile_count("Relay", "skipped") > before })
        .await;
    assert_eq!(status_writer(&store, "gw").await.as_deref(), Some("b"), "the stale replica overwrote status");
    b.shutdown().await;
    a.crash();
}

#[sqlx::test(migrations = false)]
async fn a_replica_that_holds_a_shard_again_observes_its_resources_afresh_once(pool: PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let probe = Arc::new(Probe::default());
    let a = a_reconciling_gw(&store, &prefix, &probe).await;
    let reconciled = |n: usize| {
        let probe = probe.clone();
        async move { probe.fresh.lock().unwrap().len() >= n }
    };
    // Nothing queued or running: every reconcile counted from here is the test's.
    let idle = || async {
        let q = a.controller.queue(Kind::Relay);
        q.is_empty() && q.processing_len() == 0
    };
    eventually(Duration::from_secs(10), "the queue is idle", idle).await;
    // A resync may trust what the replica observed recently.
    let seen = probe.fresh.lock().unwrap().len();
    a.controller.resync_now().await;
    eventually(Duration::from_secs(10), "gw resynced", || reconciled(seen + 1)).await;
    assert!(!probe.fresh.lock().unwrap()[seen], "a resync observed afresh");
    eventually(Duration::from_secs(10), "the queue is idle", idle).await;

    // The hold lapses in Redis (another replica may have held the shard and
    // changed AWS meanwhile); a takes the shard again with a new token.
    expire_lease(&prefix).await;
    let seen = probe.fresh.lock().unwrap().len();
    a.controller.leases().tick().await.unwrap();
    a.controller.leases().tick().await.unwrap();
    assert_eq!(a.owned(), 1);
    eventually(Duration::from_secs(10), "gw reconciled under the new hold", || reconciled(seen + 1)).await;
    let fresh = probe.fresh.lock().unwrap().clone();
    assert!(fresh[seen], "the first reconcile under a new hold trusted the cache: {seen} of {fresh:?}");

    // Once: the next resync trusts recent observations again.
    eventually(Duration::from_secs(10), "the queue is idle", idle).await;
    let seen = probe.fresh.lock().unwrap().len();
    a.controller.resync_now().await;
    eventually(Duration::from_secs(10), "gw resynced", || reconciled(seen + 1)).await;
    assert!(!probe.fresh.lock().unwrap()[seen], "a second reconcile observed afresh");
    a.shutdown().await;
}

/// A private Redis on a free port, to stop and restart without disturbing others.
struct PrivateRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    fn start(port: u16) -> PrivateRedis {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed (deploy/local/stack.sh installs it)");
        PrivateRedis { port, child: Some(child) }
    }
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[sqlx::test(migrations = false)]
async fn without_redis_nothing_mutates_and_work_resumes_when_it_returns(pool: PgPool) {
    let store = store(pool).await;
    let port = free_port();
    let mut redis = PrivateRedis::start(port);
    let probe = Arc::new(Probe::default());
    let opts = Options {
        shards: 4,
        lease: Duration::from_secs(2),
        renew: Duration::from_millis(500),
        redis_url: redis.url(),
        ..Default::default()
    };
    let replica = start_replica(&store, &prefix(), "r", probe.clone(), &opts);
    eventually(Duration::from_secs(10), "leases held", || async { replica.owned() == 4 }).await;
    create(&store, "before").await;
    eventually(Duration::from_secs(10), "reconciled while Redis is up", || async {
        probe.mutations.load(Ordering::SeqCst) == 1
    })
    .await;

    redis.stop();
    // Holds lapse locally within the lease period.
    eventually(opts.lease * 3, "leases lapse without Redis", || async { replica.owned() == 0 }).await;
    let mutations_at_outage = probe.mutations.load(Ordering::SeqCst);
    for i in 0..5 {
        create(&store, &format!("during-{i}")).await;
    }
    // The store (and the API) keep working; nothing reaches AWS.
    tokio::time::sleep(opts.lease).await;
    assert_eq!(probe.mutations.load(Ordering::SeqCst), mutations_at_outage, "an AWS mutation happened without Redis");
    assert!(status_writer(&store, "during-0").await.is_none());

    // Redis returns: leases are taken again and everything converges.
    let _redis_again = PrivateRedis::start(port);
    eventually(Duration::from_secs(20), "everything reconciled after Redis returns", || async {
        let mut done = 0;
        for i in 0..5 {
            done += status_writer(&store, &format!("during-{i}")).await.is_some() as usize;
        }
        done == 5
    })
    .await;
    replica.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn a_change_made_while_the_database_connection_was_down_is_reconciled(pool: PgPool) {
    let store = store(pool).await;
    let probe = Arc::new(Probe::default());
    let replica = start_replica(&store, &prefix(), "r", probe.clone(), &Options::default());
    eventually(Duration::from_secs(10), "leases held", || async { replica.owned() == 8 }).await;
    create(&store, "a").await;
    eventually(Duration::from_secs(10), "a reconciled", || async { status_writer(&store, "a").await.is_some() }).await;
    // Cut every connection to this database: the controller's feed listener and pool.
    let db: String = sqlx::query_scalar("SELECT current_database()").fetch_one(store.pool()).await.unwrap();
    let admin = PgPool::connect(&std::env::var("DATABASE_URL").unwrap()).await.unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&db)
    .execute(&admin)
    .await
    .unwrap();
    // A change lands while the controller is reconnecting.
    let mut written = false;
    for _ in 0..50 {
        let doc = api_types::validate_document(serde_json::json!({
            "apiVersion": "mooring/v1", "kind": "Relay", "metadata": {"name": "b"},
            "spec": {"cluster": "prod", "containers": [{"name": "app", "image": "nginx:1", "port": 80}]}
        }))
        .unwrap();
        if store
            .write(&doc, desired_state::store::WriteMode::Upsert, &desired_state::store::ChangeSource::api("t"))
            .await
            .is_ok()
        {
            written = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(written);
    eventually(Duration::from_secs(20), "b reconciled after the outage", || async {
        status_writer(&store, "b").await.is_some()
    })
    .await;
    replica.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn failures_retry_with_backoff_and_report_synced_false(pool: PgPool) {
    let store = store(pool).await;
    let probe = Arc::new(Probe::default());
    probe.fail_first.store(3, Ordering::SeqCst);
    let replica = start_replica(&store, &prefix(), "r", probe.clone(), &Options::default());
    create(&store, "flaky").await;
    // First it reports the failure...
    eventually(Duration::from_secs(10), "Synced=False ApplyFailed", || async {
        let r = store.get(Kind::Relay, "default", "flaky").await.unwrap();
        r.status["conditions"].as_array().is_some_and(|c| c.iter().any(|c| c["reason"] == "ApplyFailed"))
    })
    .await;
    // ...then, retried, it succeeds and the condition flips.
    eventually(Duration::from_secs(15), "Synced=True after retries", || async {
        let r = store.get(Kind::Relay, "default", "flaky").await.unwrap();
        r.status["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "Synced" && c["status"] == "True"))
    })
    .await;
    let events = store.events(Kind::Relay, "default", "flaky", 10).await.unwrap();
    assert!(events.iter().any(|e| e.reason == "ApplyFailed" && e.type_ == "Warning" && e.count >= 1), "{events:?}");
    // A reconcile that changes nothing writes nothing.
    let rv = store.get(Kind::Relay, "default", "flaky").await.unwrap().resource_version;
    let before = probe.reconciles.load(Ordering::SeqCst);
    let key = controller::runtime::ResourceKey { kind: Kind::Relay, namespace: "default".into(), name: "flaky".into() };
    replica.controller.queue(Kind::Relay).add(key);
    eventually(Duration::from_secs(10), "reconciled again", || async {
        probe.reconciles.load(Ordering::SeqCst) > before
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        store.get(Kind::Relay, "default", "flaky").await.unwrap().resource_version,
        rv,
        "a no-op status write happened"
    );
    replica.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn deletion_runs_cleanup_then_releases_the_finalizer(pool: PgPool) {
    let store = store(pool).await;
    let probe = Arc::new(Probe::default());
    let replica = start_replica(&store, &prefix(), "r", probe.clone(), &Options::default());
    create(&store, "doomed").await;
    eventually(Duration::from_secs(10), "reconciled", || async { status_writer(&store, "doomed").await.is_some() })
        .await;
    store.request_delete(Kind::Relay, "default", "doomed").await.unwrap();
    eventually(Duration::from_secs(10), "gone", || async {
        store.get(Kind::Relay, "default", "doomed").await.is_err()
    })
    .await;
    assert_eq!(probe.cleanups.load(Ordering::SeqCst), 1);
    replica.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn a_shard_is_handed_over_only_after_its_reconciles_end(pool: PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let probe = Arc::new(Probe::default());
    // Long reconciles, quick lease rounds: a rebalance happens while
    // reconciles of the shard being handed over still run.
    let opts = Options {
        shards: 2,
        lease: Duration::from_secs(2),
        renew: Duration::from_millis(200),
        work: Duration::from_millis(2500),
        workers: 8,
        ..Default::default()
    };
    let a = start_replica(&store, &prefix, "a", probe.clone(), &opts);
    eventually(Duration::from_secs(10), "a holds both shards", || async { a.owned() == 2 }).await;
    for i in 0..8 {
        create(&store, &format!("r{i}")).await;
    }
    eventually(Duration::from_secs(10), "a is reconciling", || async {
        probe.current.lock().await.values().any(|n| *n > 0)
    })
    .await;
    let b = start_replica(&store, &prefix, "b", probe.clone(), &opts);
    eventually(Duration::from_secs(20), "one shard each", || async { (a.owned(), b.owned()) == (1, 1) }).await;
    eventually(Duration::from_secs(30), "every resource reconciled", || async {
        let mut done = 0;
        for i in 0..8 {
            done += status_writer(&store, &format!("r{i}")).await.is_some() as usize;
        }
        done == 8
    })
    .await;
    assert_eq!(
        probe.max_concurrent_same_key.load(Ordering::SeqCst),
        1,
        "two replicas reconciled one resource at once during the handover"
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn a_status_write_that_fails_is_retried_with_backoff(pool: PgPool) {
    let store = store(pool).await;
    let probe = Arc::new(Probe::default());
    probe.bad_status_first.store(2, Ordering::SeqCst);
    // The periodic resync is ten minutes away: only a retry writes the status.
    let replica = start_replica(&store, &prefix(), "r", probe.clone(), &Options::default());
    create(&store, "st").await;
    eventually(Duration::from_secs(10), "status written after the failed writes", || async {
        status_writer(&store, "st").await.is_some()
    })
    .await;
    assert!(probe.reconciles.load(Ordering::SeqCst) >= 3, "two failed writes, then one that held");
    assert_eq!(probe.bad_status_first.load(Ordering::SeqCst), 0);
    replica.shutdown().await;
}
