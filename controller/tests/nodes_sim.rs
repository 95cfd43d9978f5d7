//! Nodes reconciled by the real controller against the simulated cloud, whose
//! builds run the provisioner in-process: create → Ready, Replace keeps the
//! data volume, InPlace keeps the instance, deletion honours the volume policy,
//! builds queue beyond the limit, and a crash after any controller-side AWS
//! call still leaves exactly one instance. Seeds are printed; replay with
//! `MOORING_SIM_SEED`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use api_types::Kind;
use common::nodes::{World, health_server, running, sim, start};
use common::sim::{apply, seed};
use common::*;
use desired_state::store::Store;
use runners::cloud::ec2::InstanceState;
use runners::cloud::{TAG_UID, ops};
use runners::provision::{ProvisionExecutor, ProvisionerConfig};
use runners::workload::{NodeConfig, Nodes};
use serde_json::{Value, json};

fn node(ns: &str, name: &str, instance_type: &str, strategy: &str, delete_volume: bool, health_port: u16) -> Value {
    json!({"apiVersion": "mooring/v1", "kind": "Node", "metadata": {"name": name, "namespace": ns},
    "spec": {
        "software": {"name": "pulse", "version": "1.4.2", "artifact": "s3://pulse-artifacts/pulse-1.4.2.tar.gz",
                     "args": ["--p2p-port=4001"]},
        "instanceType": instance_type, "ami": "ami-1e749f67", "subnetId": "subnet-0a1b2c3d",
        "securityGroupIds": ["sg-0a1b2c3d"],
        "dataVolume": {"sizeGiB": 50, "type": "gp3", "deleteOnNodeDelete": delete_volume},
        "ports": [{"name": "p2p", "port": 4001}, {"name": "api", "port": health_port}],
        "healthCheck": {"port": health_port, "path": "/health"},
        "loadBalancer": {"targetGroupArn": runners::sim::DEFAULT_TARGET_GROUP_ARN},
        "updateStrategy": strategy
    }})
}

async fn ready_at(store: &Store, ns: &str, name: &str, generation: i64) -> bool {
    let Ok(r) = store.get(Kind::Node, ns, name).await else { return false };
    r.generation == generation
        && r.status["conditions"].as_array().is_some_and(|cs| {
            cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True" && c["observedGeneration"] == generation)
        })
}

async fn wait_ready(store: &Store, ns: &str, name: &str, generation: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while !ready_at(store, ns, name, generation).await {
        let r = store.get(Kind::Node, ns, name).await.map(|r| r.status).unwrap_or_default();
        assert!(tokio::time::Instant::now() < deadline, "{ns}/{name} not Ready at generation {generation}: {r:#}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

async fn wait_gone(store: &Store, ns: &str, name: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while store.get(Kind::Node, ns, name).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "{ns}/{name} not deleted");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

#[sqlx::test(migrations = false)]
async fn replace_keeps_the_volume_in_place_keeps_the_instance_and_delete_follows_the_policy(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let healthy = Arc::new(AtomicBool::new(true));
    let w = World { cloud: sim(seed()), health_port: health_server(healthy.clone()).await, max_builds: 20 };
    let replica = start(&store, &prefix, &w);
    let ns = "nodes";

    apply(&store, node(ns, "pulse-1", "t3.large", "Replace", false, w.health_port)).await;
    wait_ready(&store, ns, "pulse-1", 1).await;
    let r = store.get(Kind::Node, ns, "pulse-1").await.unwrap();
    let uid = r.uid.to_string();
    let first = running(&w.cloud, &uid);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].tags["mooring:name"], "nodes/pulse-1");
    let volume = r.status["volumeId"].as_str().expect("volumeId").to_string();
    assert!(first[0].volumes.iter().any(|(_, v)| v == &volume), "{first:?}");
    assert_eq!(r.status["instanceId"], first[0].id.as_str());
    let user_data = w.cloud.instance_user_data(&first[0].id).unwrap();
    assert!(user_data.contains("--data-dir=/var/lib/mooring/pulse"), "{user_data}");

    // A label change starts no build.
    let builds = w.cloud.builds_started().len();
    let mut labelled = node(ns, "pulse-1", "t3.large", "Replace", false, w.health_port);
    labelled["metadata"]["labels"] = json!({"team": "p2p"});
    apply(&store, labelled).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(w.cloud.builds_started().len(), builds, "a label change started a build");

    // Replace: a new instance, the same data volume, exactly one running.
    apply(&store, node(ns, "pulse-1", "t3.xlarge", "Replace", false, w.health_port)).await;
    wait_ready(&store, ns, "pulse-1", 2).await;
    let now = running(&w.cloud, &uid);
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now[0].id, first[0].id);
    assert_eq!(now[0].instance_type, "t3.xlarge");
    assert!(now[0].volumes.iter().any(|(_, v)| v == &volume), "the data volume moved: {now:?}");
    // The target group: the new instance serves, the old one was taken out first.
    let targets = w.cloud.targets(runners::sim::DEFAULT_TARGET_GROUP_ARN);
    assert!(targets.iter().any(|t| t.id == now[0].id && t.state == "healthy"), "{targets:?}");
    assert!(targets.iter().all(|t| t.id != first[0].id || t.state == "draining"), "{targets:?}");

    // Back to the first shape (a rollback, say): a fresh instance of it, not
    // the terminated first one, which its old client token would hand back.
    apply(&store, node(ns, "pulse-1", "t3.large", "Replace", false, w.health_port)).await;
    wait_ready(&store, ns, "pulse-1", 3).await;
    let back = running(&w.cloud, &uid);
    assert_eq!(back.len(), 1, "{back:?}");
    assert!(back[0].id != first[0].id && back[0].id != now[0].id, "{back:?}");
    assert_eq!(back[0].instance_type, "t3.large");
    apply(&store, node(ns, "pulse-1", "t3.xlarge", "Replace", false, w.health_port)).await;
    wait_ready(&store, ns, "pulse-1", 4).await;
    let now = running(&w.cloud, &uid);
    assert_eq!((now.len(), now[0].instance_type.as_str()), (1, "t3.xlarge"), "{now:?}");

    // InPlace: the same instance, a new type.
    apply(&store, node(ns, "pulse-1", "t3.2xlarge", "InPlace", false, w.health_port)).await;
    wait_ready(&store, ns, "pulse-1", 5).await;
    let after = running(&w.cloud, &uid);
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].id, now[0].id, "in place keeps the instance");
    assert_eq!(after[0].instance_type, "t3.2xlarge");

    // Health failing after Ready: Degraded.
    healthy.store(false, Ordering::SeqCst);
    let r = store.get(Kind::Node, ns, "pulse-1").await.unwrap();
    store.touch(&r).await.unwrap();
    eventually(Duration::from_secs(30), "Degraded after the health check fails", || async {
        let r = store.get(Kind::Node, ns, "pulse-1").await.unwrap();
        r.status["conditions"].as_array().unwrap().iter().any(|c| c["type"] == "Degraded" && c["status"] == "True")
    })
    .await;
    healthy.store(true, Ordering::SeqCst);

    // Delete: terminated; the volume is kept (deleteOnNodeDelete false).
    store.request_delete(Kind::Node, ns, "pulse-1").await.unwrap();
    wait_gone(&store, ns, "pulse-1").await;
    assert!(running(&w.cloud, &uid).is_empty());
    let kept = w.cloud.volumes().into_iter().find(|v| v.id == volume).expect("the volume is kept");
    assert_eq!(kept.tags.get("mooring:released-from").map(String::as_str), Some("nodes/pulse-1"));
    assert!(!kept.tags.contains_key(TAG_UID));

    // With deleteOnNodeDelete the volume goes too.
    apply(&store, node(ns, "pulse-2", "t3.large", "Replace", true, w.health_port)).await;
    wait_ready(&store, ns, "pulse-2", 1).await;
    let r = store.get(Kind::Node, ns, "pulse-2").await.unwrap();
    let volume = r.status["volumeId"].as_str().unwrap().to_string();
    store.request_delete(Kind::Node, ns, "pulse-2").await.unwrap();
    wait_gone(&store, ns, "pulse-2").await;
    assert!(w.cloud.volumes().iter().all(|v| v.id != volume), "the volume was deleted");
    replica.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn builds_beyond_the_limit_queue(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let w = World::healthy(1).await;
    let replica = start(&store, &prefix, &w);
    let ns = "queue";
    for i in 0..3 {
        apply(&store, node(ns, &format!("n{i}"), "t3.large", "Replace", true, w.health_port)).await;
    }
    let mut saw_queued = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let mut ready = 0;
        for i in 0..3 {
            let r = store.get(Kind::Node, ns, &format!("n{i}")).await.unwrap();
            let conds = r.status["conditions"].as_array().cloned().unwrap_or_default();
            saw_queued |= conds.iter().any(|c| c["type"] == "Progressing" && c["reason"] == "Queued");
            ready += usize::from(ready_at(&store, ns, &format!("n{i}"), 1).await);
        }
        assert!(w.cloud.builds_in_progress() <= 1, "more builds at once than the limit");
        if ready == 3 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "nodes not ready");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(saw_queued, "no node ever showed Progressing=Queued");
    replica.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn a_crash_after_any_controller_call_leaves_exactly_one_instance(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let w = World::healthy(20).await;
    // A clean run counts the controller's calls for create → Ready.
    let replica = start(&store, &prefix, &w);
    let before = w.cloud.total_calls();
    apply(&store, node("clean", "n", "t3.large", "Replace", true, w.health_port)).await;
    wait_ready(&store, "clean", "n", 1).await;
    replica.shutdown().await;
    let calls = (w.cloud.total_calls() - before).min(40);
    let mut crashes = 0;
    for at in 1..=calls {
        let ns = format!("crash{at}");
        let crashed = w.cloud.crash_at(at);
        let mut replica = start(&store, &prefix, &w);
        apply(&store, node(&ns, "n", "t3.large", "Replace", true, w.health_port)).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        let mut did_crash = false;
        while !ready_at(&store, &ns, "n", 1).await {
            if !did_crash && tokio::time::timeout(Duration::from_millis(10), crashed.notified()).await.is_ok() {
                did_crash = true;
                crashes += 1;
                common::sim::crash(replica, &prefix).await;
                w.cloud.clear_crash();
                replica = start(&store, &prefix, &w);
            }
            if tokio::time::Instant::now() >= deadline {
                let r = store.get(Kind::Node, &ns, "n").await.map(|r| r.status).unwrap_or_default();
                let events = store.events(Kind::Node, &ns, "n", 20).await.unwrap_or_default();
                let events: Vec<String> = events.iter().map(|e| format!("{}: {}", e.reason, e.message)).collect();
                let uid = store.get(Kind::Node, &ns, "n").await.map(|r| r.uid.to_string()).unwrap_or_default();
                panic!(
                    "crash at call {at} (crashed: {did_crash}): not Ready: {r:#}\nevents: {events:#?}\n{}",
                    diagnosis(&store, &replica, &w, &uid).await
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        w.cloud.clear_crash();
        let uid = store.get(Kind::Node, &ns, "n").await.unwrap().uid.to_string();
        let live = running(&w.cloud, &uid);
        assert_eq!(live.len(), 1, "crash at call {at}: {live:?}");
        assert_eq!(w.cloud.instances_launched(TAG_UID, &uid), 1, "crash at call {at}: a second instance was launched");
        assert!(live[0].state == InstanceState::Running);
        replica.shutdown().await;
    }
    eprintln!("{crashes} of {calls} crash points reached; each left exactly one instance");
    assert!(crashes * 10 >= calls * 8, "only {crashes} of {calls} crash points were reached");
}

/// What a stuck crash test prints: the replica's reconciles and queue, the
/// cloud's builds and the node's instances, and the store's pool.
async fn diagnosis(store: &Store, replica: &common::Replica, w: &World, uid: &str) -> String {
    use sqlx::Connection;
    // On a connection of its own: the pool may be what is stuck.
    let sessions: Vec<String> = match sqlx::PgConnection::connect_with(&store.pool().connect_options()).await {
        Ok(mut c) => sqlx::query_scalar(
            "SELECT format('%s %s (waiting: %s %s): %s', pid, state, wait_event_type, wait_event, left(query, 120)) \
             FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() ORDER BY pid",
        )
        .fetch_all(&mut c)
        .await
        .unwrap_or_default(),
        Err(_) => vec![],
    };
    let counts: Vec<String> = ["success", "deferred", "error", "skipped"]
        .iter()
        .map(|r| format!("{r} {}", replica.metrics.reconcile_count("Node", r)))
        .collect();
    let q = replica.controller.queue(Kind::Node);
    let builds: Vec<String> = w
        .cloud
        .builds_started()
        .into_iter()
        .filter(|(_, env)| env.values().any(|v| v.contains(uid)))
        .map(|(id, _)| id)
        .collect();
    format!(
        "reconciles: {counts:?}; queue: {} waiting, {} in flight; shards held: {}; builds of the node: {builds:?} \
         ({} in progress in all); instances: {:?}; launched: {}; pool: {} open, {} idle; calls: {:?}\n\
         database sessions: {sessions:#?}",
        q.len(),
        q.processing_len(),
        replica.owned(),
        w.cloud.builds_in_progress(),
        running(&w.cloud, uid),
        w.cloud.instances_launched(TAG_UID, uid),
        store.pool().size(),
        store.pool().num_idle(),
        w.cloud.calls(),
    )
}

#[sqlx::test(migrations = false)]
async fn an_instance_terminated_out_of_band_is_replaced_with_the_same_volume(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let w = World::healthy(20).await;
    let replica = start(&store, &prefix, &w);
    let ns = "drift";
    apply(&store, node(ns, "pulse", "t3.large", "Replace", false, w.health_port)).await;
    wait_ready(&store, ns, "pulse", 1).await;
    let r = store.get(Kind::Node, ns, "pulse").await.unwrap();
    let uid = r.uid.to_string();
    let volume = r.status["volumeId"].as_str().expect("volumeId").to_string();
    let first = running(&w.cloud, &uid);
    assert_eq!(first.len(), 1);

    // Someone terminates it in the console; EventBridge tells Mooring.
    assert!(w.cloud.terminate_instance_out_of_band(&first[0].id));
    store.touch(&r).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let r = store.get(Kind::Node, ns, "pulse").await.unwrap();
        let replaced = r.status["instanceId"].as_str().is_some_and(|id| id != first[0].id);
        if replaced && ready_at(&store, ns, "pulse", 1).await {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not Ready on a new instance: {:#}", r.status);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let now = running(&w.cloud, &uid);
    assert_eq!(now.len(), 1, "exactly one instance runs: {now:?}");
    assert!(now[0].volumes.iter().any(|(_, v)| v == &volume), "the data volume came along: {now:?}");
    assert_eq!(w.cloud.instances_launched(TAG_UID, &uid), 2, "one replacement, no more");
    let r = store.get(Kind::Node, ns, "pulse").await.unwrap();
    assert_eq!(r.status["incarnation"], 1, "{:#}", r.status);
    assert_eq!(r.status["volumeId"], volume.as_str());
    let events = store.events(Kind::Node, ns, "pulse", 100).await.unwrap();
    assert!(events.iter().any(|e| e.reason == "DriftDetected" && e.message.contains(&first[0].id)), "{events:?}");
    assert!(events.iter().all(|e| e.reason != "DataVolumeReplaced"), "{events:?}");
    replica.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn a_resync_of_settled_nodes_observes_them_in_batches(pool: sqlx::PgPool) {
    const N: usize = 30;
    let store = store(pool).await;
    let prefix = prefix();
    let w = World::healthy(20).await;
    let nodes = Nodes::new(
        ProvisionExecutor::simulated(
            &w.cloud,
            ProvisionerConfig { poll: Duration::from_millis(5), timeout: Duration::from_secs(60) },
        ),
        NodeConfig {
            poll_in_flight: Duration::from_millis(30),
            // The pass below is the resync alone.
            health_interval: Duration::from_secs(3600),
            observe_max_age: Duration::from_secs(1),
            health_host: Some("127.0.0.1".into()),
            ..Default::default()
        },
        Arc::new(controller::slots::StoreBuildSlots::new(store.clone())),
    );
    let reconcilers = controller::workloads::reconcilers(None, Some(nodes), None);
    let opts = Options { workers: 4, ..Default::default() };
    let replica = start_replica_with(&store, &prefix, "batched", reconcilers, &opts);
    let ns = "fleet";
    for i in 0..N {
        apply(&store, node(ns, &format!("n{i:02}"), "t3.large", "Replace", false, w.health_port)).await;
    }
    for i in 0..N {
        wait_ready(&store, ns, &format!("n{i:02}"), 1).await;
    }
    // Nothing to do now (each settled node waits an hour for its next health look).
    let idle = || {
        let q = replica.controller.queue(Kind::Node);
        q.is_empty() && q.processing_len() == 0
    };
    eventually(Duration::from_secs(30), "the queue is idle", || async { idle() }).await;

    // Every observation is older than `observe_max_age`: the resync reads
    // them again, many nodes per call.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    w.cloud.reset_calls();
    let builds = w.cloud.builds_started().len();
    let base = replica.metrics.reconcile_count("Node", "success");
    replica.controller.resync_now().await;
    eventually(Duration::from_secs(60), "every node reconciled once more", || async {
        replica.metrics.reconcile_count("Node", "success") >= base + N as u64 && idle()
    })
    .await;
    let instances = w.cloud.call_count(&ops::DESCRIBE_INSTANCES);
    let checks = w.cloud.call_count(&ops::DESCRIBE_INSTANCE_STATUS);
    // One of each per node before; a worker or two may ask before the first batch answers.
    assert!((1..=4).contains(&instances), "{instances} DescribeInstances for {N} nodes: {:?}", w.cloud.calls());
    assert!((1..=4).contains(&checks), "{checks} DescribeInstanceStatus for {N} nodes: {:?}", w.cloud.calls());
    assert_eq!(w.cloud.builds_started().len(), builds, "a resync of settled nodes starts no build");
    for i in 0..N {
        assert!(ready_at(&store, ns, &format!("n{i:02}"), 1).await, "n{i:02} is still Ready");
    }
    replica.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn a_node_deleted_mid_build_does_not_keep_its_build_slot(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let w = World::healthy(1).await;
    let replica = start(&store, &prefix, &w);
    let ns = "slots";
    // Retained: its deletion releases it at once, build or no build.
    let mut first = node(ns, "n0", "t3.large", "Replace", false, w.health_port);
    first["spec"]["deletionPolicy"] = json!("Retain");
    apply(&store, first).await;
    eventually(Duration::from_secs(30), "n0's build runs", || async {
        let s = store.get(Kind::Node, ns, "n0").await.map(|r| r.status).unwrap_or_default();
        s["build"]["state"] == "IN_PROGRESS" && s["build"]["id"].is_string()
    })
    .await;
    store.request_delete(Kind::Node, ns, "n0").await.unwrap();
    wait_gone(&store, ns, "n0").await;
    // The slot follows the statuses: n1 gets it although n0's build never
    // finished on this replica's watch.
    apply(&store, node(ns, "n1", "t3.large", "Replace", false, w.health_port)).await;
    wait_ready(&store, ns, "n1", 1).await;
    replica.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn a_codebuild_project_that_is_not_the_installs_is_a_conflict_until_adopted(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let w = World::healthy(20).await;
    let foreign = runners::cloud::codebuild::ProjectInput {
        name: "team-builds".into(),
        description: "someone else's".into(),
        buildspec: "version: 0.2\nphases:\n  build:\n    commands: [make]\n".into(),
        image: "aws/codebuild/standard:7.0".into(),
        compute_type: "BUILD_GENERAL1_SMALL".into(),
        service_role: "arn:aws:iam::000000000000:role/team".into(),
        source_location: "s3://team/src.zip".into(),
        timeout_minutes: 30,
        tags: [("team".to_string(), "data".to_string())].into(),
    };
    w.cloud.create_project_out_of_band(&foreign).unwrap();
    let replica = start(&store, &prefix, &w);
    let ns = "project";
    let mut doc = node(ns, "pulse", "t3.large", "Replace", false, w.health_port);
    doc["spec"]["provisioner"] = json!({"codebuildProject": "team-builds"});
    apply(&store, doc.clone()).await;
    eventually(Duration::from_secs(30), "Synced=False, Conflict", || async {
        let s = store.get(Kind::Node, ns, "pulse").await.map(|r| r.status).unwrap_or_default();
        s["conditions"].as_array().is_some_and(|cs| {
            cs.iter().any(|c| {
                c["type"] == "Synced"
                    && c["reason"] == "Conflict"
                    && c["message"].as_str().is_some_and(|m| m.contains("mooring:install"))
            })
        })
    })
    .await;
    let p = w.cloud.project("team-builds").unwrap();
    assert_eq!(p.buildspec.as_deref(), Some(foreign.buildspec.as_str()), "the project was not rewritten");
    assert!(w.cloud.builds_started().is_empty(), "no build in someone else's project");

    doc["metadata"]["annotations"] = json!({"mooring/adopt": "true"});
    apply(&store, doc).await;
    wait_ready(&store, ns, "pulse", 1).await;
    let p = w.cloud.project("team-builds").unwrap();
    assert_eq!(p.tags.get("mooring:install").map(String::as_str), Some("mooring"));
    assert_eq!(p.tags.get("team").map(String::as_str), Some("data"), "the owner's tags stay");
    assert_eq!(p.buildspec.as_deref(), Some(runners::workload::BUILDSPEC));
    let events = store.events(Kind::Node, ns, "pulse", 100).await.unwrap();
    assert!(events.iter().any(|e| e.reason == "Adopted" && e.message.contains("team-builds")), "{events:?}");
    replica.shutdown().await;
}

/// The node's alarms as the simulated account holds them: name → (instance
/// dimension, `mooring:uid` tag).
fn alarms_of(w: &World, uid: &str) -> std::collections::BTreeMap<String, (String, String)> {
    w.cloud
        .metric_alarms()
        .into_iter()
        .filter(|(name, _)| name.contains(uid))
        .map(|(name, (alarm, tags))| {
            let instance = alarm.dimensions.iter().find(|(k, _)| k == "InstanceId").map(|(_, v)| v.clone());
            (name, (instance.unwrap_or_default(), tags.get(TAG_UID).cloned().unwrap_or_default()))
        })
        .collect()
}

async fn degraded(store: &Store, ns: &str, name: &str) -> Option<(String, String)> {
    let r = store.get(Kind::Node, ns, name).await.ok()?;
    let c = r.status["conditions"].as_array()?.iter().find(|c| c["type"] == "Degraded")?.clone();
    Some((c["status"].as_str()?.to_string(), c["reason"].as_str()?.to_string()))
}

#[sqlx::test(migrations = false)]
async fn a_nodes_alarms_follow_its_instance_degrade_it_when_firing_and_go_with_it(pool: sqlx::PgPool) {
    // The node also runs with an instance profile and ships its journal.
    let store = store(pool).await;
    let prefix = prefix();
    let w = World::healthy(20).await;
    let replica = start(&store, &prefix, &w);
    let ns = "alarms";
    let with_alarms = |version: &str, custom: bool| {
        let mut doc = node(ns, "pulse-a", "t3.large", "Replace", true, w.health_port);
        doc["spec"]["software"]["version"] = json!(version);
        doc["spec"]["instanceProfile"] = json!("pulse-node");
        doc["spec"]["logs"] = json!("cloudwatch");
        doc["spec"]["alarms"] = if custom {
            json!({"custom": {"namespace": "CWAgent", "metricName": "disk_used_percent",
                "comparison": "GreaterThanThreshold", "threshold": 90}})
        } else {
            json!({})
        };
        doc
    };

    apply(&store, with_alarms("1.0", true)).await;
    wait_ready(&store, ns, "pulse-a", 1).await;
    let r = store.get(Kind::Node, ns, "pulse-a").await.unwrap();
    let uid = r.uid.to_string();
    let instance = r.status["instanceId"].as_str().unwrap().to_string();
    assert_eq!(w.cloud.instance_profile(&instance).as_deref(), Some("pulse-node"), "launched with the profile");
    let boot = w.cloud.instance_user_data(&instance).unwrap();
    assert!(
        boot.contains("\"log_group_name\": \"/mooring/alarms/nodes/pulse-a\""),
        "the agent ships the journal: {boot}"
    );
    eventually(Duration::from_secs(30), "both alarms exist and read OK", || async {
        let s = store.get(Kind::Node, ns, "pulse-a").await.unwrap().status;
        s["alarms"].as_array().is_some_and(|a| a.len() == 2 && a.iter().all(|x| x["state"] == "OK"))
    })
    .await;
    let status_check = format!("mooring-node-{uid}-status-check");
    let custom = format!("mooring-node-{uid}-custom");
    let alarms = alarms_of(&w, &uid);
    assert_eq!(alarms[&status_check], (instance.clone(), uid.clone()), "on the instance, tagged");
    assert_eq!(alarms[&custom], (instance.clone(), uid.clone()));

    // A firing alarm degrades the node without taking it out of Ready. A
    // Ready node is looked at every health interval (a minute here); a label
    // change makes the controller look now.
    let nudge = |n: u32| {
        let mut doc = with_alarms("1.0", true);
        doc["metadata"]["labels"] = json!({"look": n.to_string()});
        doc
    };
    w.cloud.set_alarm(&custom, true);
    apply(&store, nudge(1)).await;
    eventually(Duration::from_secs(30), "Degraded AlarmFiring", || async {
        degraded(&store, ns, "pulse-a").await == Some(("True".into(), "AlarmFiring".into()))
    })
    .await;
    assert!(ready_at(&store, ns, "pulse-a", 1).await, "still Ready");
    w.cloud.set_alarm(&custom, false);
    apply(&store, nudge(2)).await;
    eventually(Duration::from_secs(30), "no longer Degraded", || async {
        degraded(&store, ns, "pulse-a").await.is_some_and(|d| d.0 == "False")
    })
    .await;

    // A replacement moves the alarms to the new instance; dropping the
    // custom alarm from the spec deletes it.
    apply(&store, with_alarms("1.1", false)).await;
    wait_ready(&store, ns, "pulse-a", 2).await;
    let next = store.get(Kind::Node, ns, "pulse-a").await.unwrap().status["instanceId"].as_str().unwrap().to_string();
    assert_ne!(next, instance);
    eventually(Duration::from_secs(30), "the status-check alarm follows, the custom one is gone", || async {
        let alarms = alarms_of(&w, &uid);
        alarms.len() == 1 && alarms.get(&status_check).is_some_and(|a| a.0 == next)
    })
    .await;

    store.request_delete(Kind::Node, ns, "pulse-a").await.unwrap();
    wait_gone(&store, ns, "pulse-a").await;
    assert!(alarms_of(&w, &uid).is_empty(), "the alarms go with the node");
    replica.shutdown().await;
}

fn snapshots_of(w: &World, uid: &str) -> Vec<runners::cloud::snapshots::Snapshot> {
    w.cloud.snapshots().into_iter().filter(|s| s.tags.get(TAG_UID).map(String::as_str) == Some(uid)).collect()
}

async fn last_good(store: &Store, ns: &str, name: &str) -> Option<String> {
    let s = store.get(Kind::Node, ns, name).await.ok()?.status;
    Some(s.pointer("/backup/lastGood/id")?.as_str()?.to_string())
}

#[sqlx::test(migrations = false)]
async fn a_nodes_volume_is_snapshotted_pruned_restored_when_lost_and_its_snapshots_go_with_it(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let w = World::healthy(20).await;
    let replica = start(&store, &prefix, &w);
    let ns = "backups";
    let mut doc = node(ns, "ledger", "t3.large", "Replace", true, w.health_port);
    doc["spec"]["dataVolume"]["backup"] = json!({"every": "6h", "keep": 2});
    apply(&store, doc).await;
    wait_ready(&store, ns, "ledger", 1).await;
    let r = store.get(Kind::Node, ns, "ledger").await.unwrap();
    let uid = r.uid.to_string();
    let volume = r.status["volumeId"].as_str().expect("volumeId").to_string();

    // The schedule's first snapshot is taken at once, tagged, and recorded.
    eventually(Duration::from_secs(30), "the first snapshot completes", || async {
        last_good(&store, ns, "ledger").await.is_some()
    })
    .await;
    let first = last_good(&store, ns, "ledger").await.unwrap();
    let snaps = snapshots_of(&w, &uid);
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    assert_eq!((snaps[0].id.as_str(), snaps[0].volume_id.as_str()), (first.as_str(), volume.as_str()));
    assert_eq!(snaps[0].tags.get("mooring:snapshot").map(String::as_str), Some("1"));

    // Two requests (`mooring node snapshot`) later, retention keeps two.
    let mut latest = first.clone();
    for by in ["alice", "bob"] {
        let request = api_types::node::SnapshotRequest { by: by.into(), at: chrono::Utc::now() };
        store.request_snapshot(ns, "ledger", &request).await.unwrap();
        eventually(Duration::from_secs(30), "the requested snapshot completes", || async {
            last_good(&store, ns, "ledger").await.is_some_and(|id| id != latest)
        })
        .await;
        latest = last_good(&store, ns, "ledger").await.unwrap();
    }
    eventually(Duration::from_secs(30), "pruned to keep=2", || async { snapshots_of(&w, &uid).len() == 2 }).await;
    let kept: Vec<String> = snapshots_of(&w, &uid).into_iter().map(|s| s.id).collect();
    assert!(!kept.contains(&first) && kept.contains(&latest), "the oldest went: {kept:?}");
    // The event is written with the status, after the DeleteSnapshot call.
    eventually(Duration::from_secs(30), "a SnapshotDeleted event for the oldest", || async {
        let events = store.events(Kind::Node, ns, "ledger", 100).await.unwrap();
        events.iter().any(|e| e.reason == "SnapshotDeleted" && e.message.contains(&first))
    })
    .await;

    // The instance and its volume are lost: the new volume is restored from
    // the last good snapshot.
    let instance = r.status["instanceId"].as_str().unwrap().to_string();
    assert!(w.cloud.terminate_instance_out_of_band(&instance));
    eventually(Duration::from_secs(30), "the volume is detached", || async {
        w.cloud.volumes().iter().any(|v| v.id == volume && v.attached_to.is_none())
    })
    .await;
    w.cloud.ec2().delete_volume(&volume).await.expect("the volume is deleted out of band");
    eventually(Duration::from_secs(30), "the volume is gone", || async {
        !w.cloud.volumes().iter().any(|v| v.id == volume)
    })
    .await;
    store.touch(&r).await.unwrap();
    eventually(Duration::from_secs(60), "Ready on a restored volume", || async {
        let r = store.get(Kind::Node, ns, "ledger").await.unwrap();
        r.status["volumeId"].as_str().is_some_and(|v| v != volume) && ready_at(&store, ns, "ledger", 1).await
    })
    .await;
    let r = store.get(Kind::Node, ns, "ledger").await.unwrap();
    let restored = r.status["volumeId"].as_str().unwrap().to_string();
    let from = w.cloud.volume_restored_from(&restored);
    assert_eq!(from.as_deref(), r.status.pointer("/build/restoreFrom").and_then(Value::as_str), "{:#}", r.status);
    assert!(from.as_ref().is_some_and(|s| kept.contains(s)), "restored from a kept snapshot: {from:?} {kept:?}");
    let events = store.events(Kind::Node, ns, "ledger", 100).await.unwrap();
    assert!(
        events.iter().any(|e| e.reason == "DataVolumeReplaced" && e.message.contains("restored from snapshot")),
        "{events:?}"
    );

    // Its volume goes with the node (deleteOnNodeDelete), and so do its snapshots.
    store.request_delete(Kind::Node, ns, "ledger").await.unwrap();
    wait_gone(&store, ns, "ledger").await;
    assert!(snapshots_of(&w, &uid).is_empty(), "{:?}", snapshots_of(&w, &uid));
    replica.shutdown().await;
}
