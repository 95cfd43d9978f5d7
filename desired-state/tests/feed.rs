//! The change feed: gap-free, in commit order, resumable; over SSE too.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use api_types::Kind;
use common::{relay, start};
use desired_state::store::{ChangeFilter, ChangeOp};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

const RELAYS: &str = "/v1/namespaces/default/relays";

/// Reads SSE events from a response until `n` events arrived (bounded by a timeout).
async fn read_events(resp: reqwest::Response, n: usize) -> Vec<(i64, Value)> {
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut stream = resp.bytes_stream();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while out.len() < n {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("events in time")
            .expect("stream open")
            .unwrap();
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let mut id = None;
            let mut data = None;
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = serde_json::from_str(v.trim()).ok();
                }
            }
            if let (Some(id), Some(data)) = (id, data) {
                out.push((id, data));
            }
        }
    }
    out
}

#[sqlx::test(migrations = false)]
async fn watch_resumes_after_a_disconnect_with_every_change_once_in_order(pool: PgPool) {
    let api = start(pool).await;
    let watch = |since: i64| {
        api.http.get(api.url(&format!("/v1/watch?since={since}&kind=relay"))).bearer_auth(&api.admin).send()
    };
    // Connect, see the first three changes, disconnect.
    let resp = watch(0).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    for i in 0..3 {
        api.post_json(RELAYS, &relay(&format!("r{i}"), "default", "nginx:1")).await;
    }
    let first = read_events(resp, 3).await;
    let last_seen = first.last().unwrap().0;
    // Writes while disconnected: updates, a status write, a delete request, and other kinds.
    for i in 0..3 {
        let cur = api.get(&format!("{RELAYS}/r{i}")).await;
        let mut d = relay(&format!("r{i}"), "default", "nginx:2");
        d["metadata"]["resourceVersion"] = cur.body["metadata"]["resourceVersion"].clone();
        api.put_json(&format!("{RELAYS}/r{i}"), &d).await;
    }
    api.post_json("/v1/namespaces/default/workers", &common::worker("w", "default")).await;
    let r0 = api.store.get(Kind::Relay, "default", "r0").await.unwrap();
    api.store
        .write_status(Kind::Relay, "default", "r0", r0.uid, &json!({"observedGeneration": 2}), None)
        .await
        .unwrap();
    api.http.delete(api.url(&format!("{RELAYS}/r1"))).bearer_auth(&api.admin).send().await.unwrap();
    // Resume from the last id seen: exactly the missed relay changes, in order.
    let resumed = read_events(watch(last_seen).await.unwrap(), 5).await;
    let ops: Vec<(String, String)> = resumed
        .iter()
        .map(|(_, d)| (d["name"].as_str().unwrap().to_string(), d["op"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        ops,
        vec![
            ("r0".into(), "update".into()),
            ("r1".into(), "update".into()),
            ("r2".into(), "update".into()),
            ("r0".into(), "status".into()),
            ("r1".into(), "delete-requested".into()),
        ]
    );
    let ids: Vec<i64> = first.iter().chain(resumed.iter()).map(|(id, _)| *id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids strictly increase: {ids:?}");
    // Last-Event-ID works like since=.
    let via_header = api
        .http
        .get(api.url("/v1/watch?kind=relays"))
        .bearer_auth(&api.admin)
        .header("last-event-id", last_seen.to_string())
        .send()
        .await
        .unwrap();
    let again = read_events(via_header, 5).await;
    assert_eq!(again.iter().map(|e| e.0).collect::<Vec<_>>(), resumed.iter().map(|e| e.0).collect::<Vec<_>>());
}

#[sqlx::test(migrations = false)]
async fn concurrent_writers_produce_a_gap_free_feed_in_commit_order(pool: PgPool) {
    let api = start(pool).await;
    let feed = desired_state::store::ChangeFeed::start(api.store.clone());
    let stream = feed.subscribe(0, ChangeFilter::default());
    let writers = 8;
    let per_writer = 25;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = api.store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_writer {
                let doc = api_types::validate_document(relay(&format!("w{w}-{i}"), "default", "nginx:1")).unwrap();
                store
                    .write(&doc, desired_state::store::WriteMode::Create, &desired_state::store::ChangeSource::api("t"))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total = writers * per_writer;
    let changes: Vec<_> = tokio::time::timeout(Duration::from_secs(30), stream.take(total).collect::<Vec<_>>())
        .await
        .expect("all changes arrive");
    let seqs: Vec<i64> = changes.iter().map(|c| c.seq).collect();
    assert_eq!(seqs, (1..=total as i64).collect::<Vec<_>>(), "gap-free and in order");
    let names: HashSet<&str> = changes.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), total, "each change exactly once");
    assert!(changes.iter().all(|c| c.op == ChangeOp::Create));
}

#[sqlx::test(migrations = false)]
async fn a_subscriber_survives_a_lost_database_connection(pool: PgPool) {
    let api = start(pool).await;
    let feed = desired_state::store::ChangeFeed::start(api.store.clone());
    let mut stream = Box::pin(feed.subscribe(0, ChangeFilter::default()));
    api.post_json(RELAYS, &relay("a", "default", "nginx:1")).await;
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.unwrap().unwrap();
    assert_eq!(first.name, "a");
    // Kill every connection of this database (the listener's and the pool's).
    let db: String = sqlx::query_scalar("SELECT current_database()").fetch_one(api.store.pool()).await.unwrap();
    let admin = sqlx::PgPool::connect(&std::env::var("DATABASE_URL").unwrap()).await.unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&db)
    .execute(&admin)
    .await
    .unwrap();
    // A write after the outage is still delivered.
    let mut created = false;
    for _ in 0..50 {
        if api.post_json(RELAYS, &relay("b", "default", "nginx:1")).await.status == StatusCode::CREATED {
            created = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(created);
    let second = tokio::time::timeout(Duration::from_secs(20), stream.next()).await.unwrap().unwrap();
    assert_eq!((second.name.as_str(), second.seq), ("b", 2));
}

#[sqlx::test(migrations = false)]
async fn status_writes_are_fenced_and_skip_no_ops(pool: PgPool) {
    let api = start(pool).await;
    api.post_json(RELAYS, &relay("gw", "default", "nginx:1")).await;
    let r = api.store.get(Kind::Relay, "default", "gw").await.unwrap();
    let s1 = json!({"observedGeneration": 1, "conditions": []});
    let a = api.store.write_status(Kind::Relay, "default", "gw", r.uid, &s1, Some(5)).await.unwrap();
    assert_eq!(a.generation, 1, "status never bumps generation");
    assert!(a.resource_version > r.resource_version);
    // The same status again changes nothing.
    let b = api.store.write_status(Kind::Relay, "default", "gw", r.uid, &s1, Some(5)).await.unwrap();
    assert_eq!(b.resource_version, a.resource_version);
    // An older fencing token is refused; a newer one is accepted.
    let stale =
        api.store.write_status(Kind::Relay, "default", "gw", r.uid, &json!({"observedGeneration": 0}), Some(4)).await;
    assert!(matches!(stale, Err(desired_state::StoreError::Fenced { token: 4, seen: 5, .. })), "{stale:?}");
    let newer = api
        .store
        .write_status(Kind::Relay, "default", "gw", r.uid, &json!({"observedGeneration": 1, "x": 1}), Some(6))
        .await;
    assert!(newer.is_ok());
    // A status of an older generation is refused, whatever its token: a
    // reconcile that read the resource before its spec changed finished last.
    let at2 = json!({"observedGeneration": 2, "conditions": []});
    api.store.write_status(Kind::Relay, "default", "gw", r.uid, &at2, Some(6)).await.unwrap();
    let older = api.store.write_status(Kind::Relay, "default", "gw", r.uid, &s1, Some(7)).await;
    assert!(matches!(older, Err(desired_state::StoreError::StaleStatus { generation: 1, stored: 2, .. })), "{older:?}");
    let stored = api.store.get(Kind::Relay, "default", "gw").await.unwrap();
    assert_eq!((stored.status["observedGeneration"].as_i64(), stored.status_fence), (Some(2), 6));
    let newer = api
        .store
        .write_status(Kind::Relay, "default", "gw", r.uid, &json!({"observedGeneration": 2, "x": 1}), Some(6))
        .await;
    assert!(newer.is_ok());
    // The API ignores status sent by clients.
    let mut d = relay("gw", "default", "nginx:1");
    d["status"] = json!({"observedGeneration": 99});
    d["metadata"]["resourceVersion"] = json!(newer.unwrap().resource_version.to_string());
    let put = api.put_json(&format!("{RELAYS}/gw"), &d).await;
    assert_eq!(put.body["status"]["x"], 1, "{}", put.text);
}

#[sqlx::test(migrations = false)]
async fn compaction_keeps_a_window_and_an_older_position_is_told_to_list_again(pool: PgPool) {
    use desired_state::StoreError;
    use desired_state::store::EventType;
    use desired_state::store::retention::Retention;

    let api = start(pool.clone()).await;
    for i in 0..10 {
        let r = api.post_json(RELAYS, &relay(&format!("r{i}"), "default", "nginx:1")).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while api.store.current_seq().await.unwrap() < 10 {
        assert!(tokio::time::Instant::now() < deadline, "the changes are numbered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The first six changes are two days old; one event is eight days old.
    sqlx::query("UPDATE changes SET created_at = now() - interval '2 days' WHERE seq <= 6")
        .execute(&pool)
        .await
        .unwrap();
    let row = api.store.get(Kind::Relay, "default", "r0").await.unwrap();
    api.store.record_event(&row, EventType::Normal, "Old", "from last week").await.unwrap();
    api.store.record_event(&row, EventType::Normal, "Recent", "from today").await.unwrap();
    sqlx::query("UPDATE events SET last_seen = now() - interval '8 days' WHERE reason = 'Old'")
        .execute(&pool)
        .await
        .unwrap();

    let day = Duration::from_secs(86_400);
    let retention = Retention { changes: day, events: 7 * day };
    let c = api.store.compact(&retention, chrono::Utc::now()).await.unwrap();
    assert_eq!((c.changes, c.events, c.compacted_through, c.skipped), (6, 1, 6, false), "{c:?}");
    let events = api.get(&format!("{RELAYS}/r0/events")).await;
    assert!(!events.text.contains("from last week") && events.text.contains("from today"), "{}", events.text);

    // A reader behind the window is told so; one within it reads on.
    let filter = ChangeFilter::default();
    let err = api.store.changes_after(3, &filter, 100).await.unwrap_err();
    assert!(matches!(err, StoreError::Expired { since: 3, compacted_through: 6 }), "{err}");
    let (kept, _) = api.store.changes_after(6, &filter, 100).await.unwrap();
    assert_eq!(kept.iter().map(|c| c.seq).collect::<Vec<_>>(), (7..=10).collect::<Vec<_>>());
    let watch = |since: i64| api.http.get(api.url(&format!("/v1/watch?since={since}"))).bearer_auth(&api.admin).send();
    let gone = watch(3).await.unwrap();
    assert_eq!(gone.status(), StatusCode::GONE);
    let body: Value = gone.json().await.unwrap();
    assert_eq!(body["error"]["code"], "Expired", "{body}");
    assert_eq!(watch(6).await.unwrap().status(), StatusCode::OK);

    // A stream that falls behind the window ends (its owner lists again).
    let feed = desired_state::store::ChangeFeed::start(api.store.clone());
    let mut stale = Box::pin(feed.subscribe(2, ChangeFilter::default()));
    let ended = tokio::time::timeout(Duration::from_secs(10), stale.next()).await.expect("the stream ends at once");
    assert!(ended.is_none(), "{ended:?}");

    // Compacting again changes nothing; new changes flow on.
    let again = api.store.compact(&retention, chrono::Utc::now()).await.unwrap();
    assert_eq!((again.changes, again.compacted_through), (0, 6));
    api.post_json(RELAYS, &relay("r10", "default", "nginx:1")).await;
    let mut fresh = Box::pin(feed.subscribe(6, ChangeFilter::default()));
    let mut got = vec![];
    for _ in 0..5 {
        let c = tokio::time::timeout(Duration::from_secs(10), fresh.next()).await.expect("in time").expect("a change");
        got.push(c.seq);
    }
    assert_eq!(got, (7..=11).collect::<Vec<_>>());
}

#[sqlx::test(migrations = false)]
async fn a_quiet_filtered_watch_with_bookmarks_learns_how_far_it_has_read(pool: PgPool) {
    let api = start(pool).await;
    for i in 0..3 {
        api.post_json(RELAYS, &relay(&format!("r{i}"), "default", "nginx:1")).await;
    }
    // The sequencer numbers the three creates.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let seq = loop {
        let seq = api.store.current_seq().await.unwrap();
        if seq >= 3 || tokio::time::Instant::now() > deadline {
            break seq;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(seq, 3);
    let watch = |query: String| api.http.get(api.url(&format!("/v1/watch?{query}"))).bearer_auth(&api.admin).send();

    // A watch of workers from the start: no change of its own, but a
    // bookmark of the position it got past.
    let resp = watch("since=0&kind=worker&bookmarks=true".into()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let first = read_events(resp, 1).await;
    assert_eq!(first, vec![(seq, json!({"seq": seq}))], "a bookmark, not a change");

    // Resuming from the bookmark: the worker created since is the next event.
    api.post_json("/v1/namespaces/default/workers", &common::worker("w", "default")).await;
    let resp = watch(format!("since={seq}&kind=worker&bookmarks=true")).await.unwrap();
    let next = read_events(resp, 1).await;
    assert_eq!(next[0].0, seq + 1);
    assert_eq!(next[0].1["op"], "create");
    assert_eq!(next[0].1["name"], "w");
}

#[sqlx::test(migrations = false)]
async fn the_sequencer_numbers_in_one_pass_and_tells_other_processes(pool: PgPool) {
    let store = desired_state::store::Store::from_pool(pool.clone(), desired_state::signing::Signer::generate());
    store.migrate().await.unwrap();
    let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await.unwrap();
    listener.listen("mooring_changes").await.unwrap();
    let api = desired_state::store::ChangeSource::api("test");
    for i in 0..3 {
        let doc = api_types::validate_document(relay(&format!("r{i}"), "default", "nginx:1")).unwrap();
        store.write(&doc, desired_state::store::WriteMode::Create, &api).await.unwrap();
    }
    // No feed runs here: this is the only sequencer.
    assert_eq!(store.sequence_pending().await.unwrap(), (3, false), "three numbered, not a full batch");
    let told = tokio::time::timeout(Duration::from_secs(10), listener.recv()).await.expect("a NOTIFY").unwrap();
    assert_eq!(told.payload(), "3");
    // Nothing left: the same position, and no one is told again.
    assert_eq!(store.sequence_pending().await.unwrap(), (3, false));
    for i in 3..5 {
        let doc = api_types::validate_document(relay(&format!("r{i}"), "default", "nginx:1")).unwrap();
        store.write(&doc, desired_state::store::WriteMode::Create, &api).await.unwrap();
    }
    assert_eq!(store.sequence_pending().await.unwrap(), (5, false));
    let told = tokio::time::timeout(Duration::from_secs(10), listener.recv()).await.expect("a NOTIFY").unwrap();
    assert_eq!(told.payload(), "5", "the next notification is the next numbering's, none came between");
}
