//! Staged rollouts of relays (BlueGreen, Canary, Linear) reconciled by the
//! real controller (Postgres, Redis, leases, budgets) against the simulated
//! cloud, whose ECS runs service deployments with stages, PAUSE hooks, bakes
//! and rollbacks. Mooring's HTTP checks go over real HTTP to a test server
//! standing in for the test listener. Each test prints its seed; rerun a
//! failure with `MOORING_SIM_SEED=<seed>`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use api_types::Kind;
use api_types::rollout::{RolloutAction, RolloutRequest};
use common::sim::*;
use common::*;
use desired_state::store::Store;
use runners::cloud::ops;
use runners::sim::{FaultMix, SimCloud, SimConfig};
use runners::workload::WorkloadConfig;
use serde_json::{Value, json};

const TARGET_GROUP: &str = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/gw-blue/0123456789abcdef";
const ALTERNATE: &str = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/gw-green/fedcba9876543210";
const PROD_RULE: &str = "arn:aws:elasticloadbalancing:us-east-1:000000000000:listener-rule/app/gw/0123456789abcdef/0123456789abcdef/0000000000000001";
const TEST_RULE: &str = "arn:aws:elasticloadbalancing:us-east-1:000000000000:listener-rule/app/gw/0123456789abcdef/0123456789abcdef/0000000000000002";

/// A simulated cloud where an ECS "minute" (bake, hook timeout) lasts 50 ms.
fn sim(seed: u64) -> SimCloud {
    SimCloud::new(SimConfig {
        seed,
        faults: FaultMix::none(),
        latency: (Duration::ZERO, Duration::from_millis(1)),
        task_start_delay: Duration::from_millis(30),
        drain_delay: Duration::from_millis(20),
        consistency_window: Duration::from_millis(100),
        clusters: vec!["prod".into()],
        target_groups: vec![TARGET_GROUP.into(), ALTERNATE.into()],
        minute: Duration::from_millis(50),
        ..Default::default()
    })
}

fn start(store: &Store, prefix: &str, cloud: &SimCloud) -> Replica {
    start_workloads(store, prefix, cloud, WorkloadConfig::default(), Options::default())
}

/// The test listener: answers every path with the status it is set to.
struct TestListener {
    url: String,
    status: Arc<AtomicU16>,
}

impl TestListener {
    async fn start() -> TestListener {
        let status = Arc::new(AtomicU16::new(200));
        let answer = status.clone();
        let app = axum::Router::new().fallback(move || {
            let code = answer.load(Ordering::SeqCst);
            async move { axum::http::StatusCode::from_u16(code).unwrap_or(axum::http::StatusCode::OK) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        TestListener { url, status }
    }

    fn answer(&self, code: u16) {
        self.status.store(code, Ordering::SeqCst);
    }
}

/// A relay rolled out with `deployment` (strategy and gates), image `image`.
fn relay(ns: &str, name: &str, image: &str, deployment: Value) -> Value {
    json!({"apiVersion": "mooring/v1", "kind": "Relay", "metadata": {"name": name, "namespace": ns},
    "spec": {
        "cluster": "prod",
        "containers": [{"name": "api", "image": image, "port": 8080}],
        "network": {"subnets": ["subnet-0a1b2c3d"], "securityGroups": ["sg-0a1b2c3d"]},
        "loadBalancer": {"targetGroupArn": TARGET_GROUP, "containerPort": 8080,
                         "alternateTargetGroupArn": ALTERNATE, "productionListenerRuleArn": PROD_RULE,
                         "testListenerRuleArn": TEST_RULE, "roleArn": "arn:aws:iam::000000000000:role/ecs-lb"},
        "scaling": {"min": 2, "max": 4},
        "deployment": deployment
    }})
}

fn blue_green(test_url: &str) -> Value {
    json!({"strategy": "BlueGreen", "bakeMinutes": 2,
           "verify": {"testUrl": test_url, "http": [{"path": "/health", "count": 2}]}})
}

async fn status(store: &Store, ns: &str, name: &str) -> Value {
    store.get(Kind::Relay, ns, name).await.map(|r| r.status).unwrap_or_default()
}

/// Waits until the relay's status satisfies `ok`; shows the status otherwise.
async fn until(store: &Store, ns: &str, name: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = status(store, ns, name).await;
        if ok(&s) {
            return s;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}: {s:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Ready and Synced at `generation`, with its rollout finished successfully.
fn rolled_out(generation: i64) -> impl Fn(&Value) -> bool {
    move |s| {
        let at = |t| condition(s, t).is_some_and(|(st, _, g)| st == "True" && g == generation);
        at("Ready") && at("Synced") && s["rollout"]["state"] == "SUCCESSFUL"
    }
}

fn rolled_back(generation: i64) -> impl Fn(&Value) -> bool {
    move |s| {
        condition(s, "Degraded").is_some_and(|(st, r, g)| st == "True" && r == "RolledBack" && g == generation)
            && s["rollout"]["state"] == "ROLLBACK_SUCCESSFUL"
    }
}

async fn reasons(store: &Store, ns: &str, name: &str) -> Vec<(String, String)> {
    store.events(Kind::Relay, ns, name, 200).await.unwrap().into_iter().map(|e| (e.reason, e.message)).collect()
}

async fn request(store: &Store, ns: &str, name: &str, action: RolloutAction) {
    let s = status(store, ns, name).await;
    let arn = s["rollout"]["serviceDeploymentArn"].as_str().expect("a rollout in status").to_string();
    let req = RolloutRequest { action, service_deployment_arn: arn, by: "alice".into(), at: chrono::Utc::now() };
    store.request_rollout(Kind::Relay, ns, name, &req).await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn blue_green_with_passing_checks_reaches_production_without_a_dark_moment(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = sim(seed());
    let listener = TestListener::start().await;
    let replica = start(&store, &prefix, &cloud);
    let (ns, svc) = ("bg", "bg_gateway");
    apply(&store, relay(ns, "gateway", "ghcr.io/acme/api:1.0", blue_green(&listener.url))).await;
    until(&store, ns, "gateway", "v1 rolled out", rolled_out(1)).await;
    let v1 = cloud.service("prod", svc).unwrap().task_definition;

    apply(&store, relay(ns, "gateway", "ghcr.io/acme/api:2.0", blue_green(&listener.url))).await;
    let s = until(&store, ns, "gateway", "v2 rolled out", rolled_out(2)).await;
    let service = cloud.service("prod", svc).unwrap();
    assert_ne!(service.task_definition, v1, "v2 serves");
    assert_eq!(s["taskDefinitionArn"], service.task_definition.as_str());
    assert_eq!(s["rollout"]["productionPercent"], 100.0);
    assert_eq!(s["rollout"]["strategy"], "BlueGreen");
    assert_eq!(cloud.service_deployment_arns("prod", svc).len(), 2, "one service deployment per revision");
    assert_eq!(cloud.dark_moments("prod", svc), 0, "production never pointed at a revision without healthy tasks");
    let events = reasons(&store, ns, "gateway").await;
    assert!(events.iter().any(|(r, m)| r == "ChecksPassed" && m.contains("/health")), "{events:#?}");
    for stage in ["SCALE_UP", "TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME", "CLEAN_UP"] {
        assert!(
            events.iter().any(|(r, m)| r == "RolloutStage" && m.contains(stage)),
            "no event for {stage}: {events:#?}"
        );
    }
    replica.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn a_failing_check_rolls_back_before_production_traffic_moves(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = sim(seed());
    let listener = TestListener::start().await;
    let replica = start(&store, &prefix, &cloud);
    let (ns, svc) = ("bgfail", "bgfail_gateway");
    apply(&store, relay(ns, "gateway", "ghcr.io/acme/api:1.0", blue_green(&listener.url))).await;
    until(&store, ns, "gateway", "v1 rolled out", rolled_out(1)).await;
    let v1 = cloud.service("prod", svc).unwrap().task_definition;

    listener.answer(503);
    apply(&store, relay(ns, "gateway", "ghcr.io/acme/api:2.0", blue_green(&listener.url))).await;
    let s = until(&store, ns, "gateway", "rolled back", rolled_back(2)).await;
    let (_, _, _) = condition(&s, "Degraded").unwrap();
    let message = s["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Degraded").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("GET /health answered 503"), "the failed check is named: {message}");
    assert_eq!(cloud.service("prod", svc).unwrap().task_definition, v1, "blue serves again");
    let arn = s["rollout"]["serviceDeploymentArn"].as_str().unwrap();
    let sd = cloud.service_deployment(arn).unwrap();
    assert_eq!(sd.production_percent, Some(0.0), "production traffic never moved");
    assert_eq!(cloud.dark_moments("prod", svc), 0);
    assert_eq!(s["failedTaskDefinitionArn"], s["rollout"]["taskDefinitionArn"]);

    // The rolled-back revision is not pushed again until the spec changes.
    let deployments = cloud.service_deployment_arns("prod", svc).len();
    let r = store.get(Kind::Relay, ns, "gateway").await.unwrap();
    store.touch(&r).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cloud.service_deployment_arns("prod", svc).len(), deployments, "the failed revision was pushed again");
    // A fixed revision goes through and clears Degraded.
    listener.answer(200);
    apply(&store, relay(ns, "gateway", "ghcr.io/acme/api:2.1", blue_green(&listener.url))).await;
    let s = until(&store, ns, "gateway", "v2.1 rolled out", rolled_out(3)).await;
    assert_eq!(condition(&s, "Degraded").map(|c| c.0), Some("False".to_string()));
    replica.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn a_canary_whose_alarm_fires_during_the_bake_rolls_back(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = sim(seed());
    let replica = start(&store, &prefix, &cloud);
    let (ns, svc) = ("canary", "canary_gateway");
    let canary = json!({"strategy": "Canary", "canary": {"percent": 10.0, "bakeMinutes": 40}, "bakeMinutes": 1,
                        "verify": {"alarms": ["gw-5xx"]}});
    apply(&store, relay(ns, "gateway", "ghcr.io/acme/api:1.0", canary.clone())).await;
    // The first revision bakes its canary too (no alarm: it goes through).
    until(&store, ns, "gateway", "v1 rolled out", rolled_out(1)).await;
    let v1 = cloud.service("prod", svc).unwrap().task_definition;

    apply(&store, relay(ns, "gateway", "ghcr.io/acme/api:2.0", canary)).await;
    let s = until(&store, ns, "gateway", "10% on the canary", |s| {
        s["rollout"]["stage"] == "PRODUCTION_TRAFFIC_SHIFT"
            && s["rollout"]["productionPercent"] == 10.0
            && condition(s, "Progressing").is_some_and(|(st, r, g)| st == "True" && r == "TrafficShifting" && g == 2)
    })
    .await;
    assert_eq!(s["rollout"]["strategy"], "Canary");
    cloud.set_alarm("gw-5xx", true);
    let s = until(&store, ns, "gateway", "rolled back", rolled_back(2)).await;
    let degraded = s["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Degraded").unwrap().clone();
    assert!(degraded["message"].as_str().unwrap().contains("alarm gw-5xx fired"), "{degraded}");
    assert_eq!(cloud.service("prod", svc).unwrap().task_definition, v1);
    assert!(cloud.call_count(&ops::STOP_SERVICE_DEPLOYMENT) >= 1);
    assert_eq!(cloud.dark_moments("prod", svc), 0);
    replica.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn a_manual_gate_waits_for_promote_and_abort_rolls_back(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = sim(seed());
    let listener = TestListener::start().await;
    let replica = start(&store, &prefix, &cloud);
    let (ns, svc) = ("manual", "manual_gateway");
    let manual = json!({"strategy": "BlueGreen", "bakeMinutes": 1,
        "verify": {"testUrl": listener.url, "http": [{"path": "/ready"}], "approval": "Manual"}});
    apply(&store, relay(ns, "gateway", "ghcr.io/acme/api:1.0", manual.clone())).await;
    let awaiting = |generation: i64| {
        move |s: &Value| {
            s["rollout"]["waitingFor"] == "Approval"
                && condition(s, "Progressing")
                    .is_some_and(|(st, r, g)| st == "True" && r == "AwaitingApproval" && g == generation)
        }
    };
    until(&store, ns, "gateway", "waiting for approval", awaiting(1)).await;
    // It waits: nothing moves production while nobody answers.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = status(&store, ns, "gateway").await;
    assert_eq!(s["rollout"]["waitingFor"], "Approval", "{s:#}");
    assert_eq!(s["rollout"]["productionPercent"], 0.0);
    request(&store, ns, "gateway", RolloutAction::Promote).await;
    until(&store, ns, "gateway", "v1 rolled out after promote", rolled_out(1)).await;
    let v1 = cloud.service("prod", svc).unwrap().task_definition;
    let events = reasons(&store, ns, "gateway").await;
    assert!(events.iter().any(|(r, m)| r == "RolloutContinued" && m.contains("promoted by alice")), "{events:#?}");

    apply(&store, relay(ns, "gateway", "ghcr.io/acme/api:2.0", manual)).await;
    until(&store, ns, "gateway", "v2 waiting for approval", awaiting(2)).await;
    request(&store, ns, "gateway", RolloutAction::Abort).await;
    let s = until(&store, ns, "gateway", "aborted", rolled_back(2)).await;
    let degraded = s["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Degraded").unwrap().clone();
    assert!(degraded["message"].as_str().unwrap().contains("aborted by alice"), "{degraded}");
    assert_eq!(cloud.service("prod", svc).unwrap().task_definition, v1);
    assert_eq!(cloud.dark_moments("prod", svc), 0);
    replica.shutdown().await;
}

/// One run of a v1 → v2 blue/green rollout with the process killed right
/// after the `at`-th facade call following the v2 apply. Returns whether the
/// crash happened.
async fn rollout_with_crash(store: &Store, prefix: &str, cloud: &SimCloud, listener: &TestListener, at: u64) -> bool {
    let ns = format!("crash{at}");
    let svc = format!("{ns}_gateway");
    let mut replica = Some(start(store, prefix, cloud));
    apply(store, relay(&ns, "gateway", "ghcr.io/acme/api:1.0", blue_green(&listener.url))).await;
    until(store, &ns, "gateway", "v1 rolled out", rolled_out(1)).await;
    let crashed = cloud.crash_at(at);
    apply(store, relay(&ns, "gateway", "ghcr.io/acme/api:2.0", blue_green(&listener.url))).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut did_crash = false;
    loop {
        if rolled_out(2)(&status(store, &ns, "gateway").await) {
            break;
        }
        if !did_crash && tokio::time::timeout(Duration::from_millis(20), crashed.notified()).await.is_ok() {
            did_crash = true;
            crash(replica.take().unwrap(), prefix).await;
            cloud.clear_crash();
            replica = Some(start(store, prefix, cloud));
            continue;
        }
        assert!(tokio::time::Instant::now() < deadline, "crash at {at}: v2 never rolled out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cloud.clear_crash();
    let deployments = cloud.service_deployment_arns("prod", &svc);
    assert_eq!(deployments.len(), 2, "crash at {at}: one deployment per revision, never a second: {deployments:?}");
    assert_eq!(cloud.services_created("prod", &svc), 1, "crash at {at}");
    assert_eq!(cloud.dark_moments("prod", &svc), 0, "crash at {at}");
    replica.take().unwrap().shutdown().await;
    did_crash
}

#[sqlx::test(migrations = false)]
async fn a_crash_in_any_stage_resumes_the_same_deployment(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = sim(seed());
    let listener = TestListener::start().await;
    // Counts the calls of the v2 rollout in a clean run, then kills the
    // process after each of them in turn.
    let ns = "clean";
    let replica = start(&store, &prefix, &cloud);
    apply(&store, relay(ns, "gateway", "ghcr.io/acme/api:1.0", blue_green(&listener.url))).await;
    until(&store, ns, "gateway", "v1 rolled out", rolled_out(1)).await;
    replica.shutdown().await;
    cloud.reset_calls();
    let replica = start(&store, &prefix, &cloud);
    apply(&store, relay(ns, "gateway", "ghcr.io/acme/api:2.0", blue_green(&listener.url))).await;
    until(&store, ns, "gateway", "v2 rolled out", rolled_out(2)).await;
    replica.shutdown().await;
    // Every call point when few, else an even sample of about 30 over the
    // whole rollout (`MOORING_ROLLOUT_SWEEP=all` takes every one).
    let calls = cloud.total_calls();
    assert!(calls >= 4, "a rollout makes {calls} calls");
    let every = std::env::var("MOORING_ROLLOUT_SWEEP").is_ok_and(|v| v == "all");
    let step = if every { 1 } else { (calls / 30).max(1) };
    let points: Vec<u64> = (1..=calls).step_by(step as usize).collect();
    let mut crashes = 0;
    for &at in &points {
        if rollout_with_crash(&store, &prefix, &cloud, &listener, at).await {
            crashes += 1;
        }
    }
    let calls = points.len();
    eprintln!("{crashes} of {calls} crash points reached; each resumed the same deployment");
    // A point late in the sample may come after the rollout converged (the
    // rollout's own pace decides): at least half must be reached.
    assert!(crashes * 2 >= calls, "only {crashes} of {calls} crash points were reached");
}

#[sqlx::test(migrations = false)]
async fn scale_in_waits_while_a_new_revision_replaces_the_old(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = sim(seed());
    let scale = runners::autoscale::ScaleConfig { interval: Duration::from_millis(100), ..Default::default() };
    let replica =
        start_workloads(&store, &prefix, &cloud, WorkloadConfig { scale, ..Default::default() }, Options::default());
    let (ns, svc) = ("hold", "hold_gateway");
    let manual = json!({"strategy": "BlueGreen", "bakeMinutes": 0, "verify": {"approval": "Manual"}});
    let doc = |image: &str| {
        let mut d = relay(ns, "gateway", image, manual.clone());
        d["spec"]["scaling"] = json!({"min": 2, "max": 4, "scaleInAfterIdleSeconds": 0});
        d
    };
    // Busy: 360 % of one task's CPU, above the 70 % target even at 4 tasks (90 % each).
    cloud.set_service_load("prod", svc, 4.0 * 90.0);
    apply(&store, doc("ghcr.io/acme/api:1.0")).await;
    until(&store, ns, "gateway", "v1 at the gate", |s| s["rollout"]["waitingFor"] == "Approval").await;
    request(&store, ns, "gateway", RolloutAction::Promote).await;
    until(&store, ns, "gateway", "v1 out and scaled to 4", |s| rolled_out(1)(s) && s["replicas"]["desired"] == 4).await;
    // v2 waits for approval with both revisions running; the load goes away.
    apply(&store, doc("ghcr.io/acme/api:2.0")).await;
    until(&store, ns, "gateway", "v2 at the gate", |s| {
        s["rollout"]["waitingFor"] == "Approval" && s["observedGeneration"] == 2
    })
    .await;
    cloud.set_service_load("prod", svc, 0.0);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(cloud.service("prod", svc).unwrap().desired_count, 4, "scaled in during the deployment");
    // Once the new revision serves alone, the idle service goes back to min.
    request(&store, ns, "gateway", RolloutAction::Promote).await;
    until(&store, ns, "gateway", "v2 out and scaled in", |s| rolled_out(2)(s) && s["replicas"]["desired"] == 2).await;
    assert_eq!(cloud.dark_moments("prod", svc), 0);
    replica.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn undo_during_a_rollout_rolls_back_first_and_deploys_nothing_new(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = sim(seed());
    let replica = start(&store, &prefix, &cloud);
    let (ns, svc) = ("undo", "undo_gateway");
    let manual = json!({"strategy": "BlueGreen", "bakeMinutes": 0, "verify": {"approval": "Manual"}});
    apply(&store, relay(ns, "gateway", "ghcr.io/acme/api:1.0", manual.clone())).await;
    until(&store, ns, "gateway", "v1 at the gate", |s| s["rollout"]["waitingFor"] == "Approval").await;
    request(&store, ns, "gateway", RolloutAction::Promote).await;
    until(&store, ns, "gateway", "v1 rolled out", rolled_out(1)).await;
    let v1 = cloud.service("prod", svc).unwrap().task_definition;
    apply(&store, relay(ns, "gateway", "ghcr.io/acme/api:2.0", manual.clone())).await;
    until(&store, ns, "gateway", "v2 at the gate", |s| {
        s["rollout"]["waitingFor"] == "Approval" && s["observedGeneration"] == 2
    })
    .await;
    // What `mooring rollout undo` does: abort the rollout in progress, then
    // write the previous spec as a new generation, back to back.
    request(&store, ns, "gateway", RolloutAction::Abort).await;
    apply(&store, relay(ns, "gateway", "ghcr.io/acme/api:1.0", manual)).await;
    until(&store, ns, "gateway", "generation 3 ready on v1", |s| {
        let at = |t| condition(s, t).is_some_and(|(st, _, g)| st == "True" && g == 3);
        at("Ready") && at("Synced") && condition(s, "Degraded").is_some_and(|(st, _, g)| st == "False" && g == 3)
    })
    .await;
    assert_eq!(cloud.service("prod", svc).unwrap().task_definition, v1);
    let deployments = cloud.service_deployment_arns("prod", svc);
    assert_eq!(deployments.len(), 2, "v1's and the aborted v2's; the undo deployed nothing new: {deployments:?}");
    replica.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn a_target_group_that_deregisters_sooner_than_tasks_drain_is_advised(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let cloud = sim(seed());
    let replica = start(&store, &prefix, &cloud);
    let ns = "drain";
    cloud.set_deregistration_delay(ALTERNATE, 10);
    let deployment = |drain: u32| json!({"strategy": "BlueGreen", "bakeMinutes": 0, "drainSeconds": drain});
    apply(&store, relay(ns, "gateway", "ghcr.io/acme/api:1.0", deployment(60))).await;
    let s = until(&store, ns, "gateway", "advised", |s| {
        condition(s, "Advisory").is_some_and(|(st, r, g)| st == "True" && r == "DeregistrationDelayShort" && g == 1)
    })
    .await;
    let advisory = s["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Advisory").unwrap().clone();
    let message = advisory["message"].as_str().unwrap();
    assert!(message.contains("gw-green") && message.contains("(10 s)") && !message.contains("gw-blue"), "{message}");
    // The relay works all the same: advice, not a failure.
    until(&store, ns, "gateway", "rolled out", rolled_out(1)).await;
    assert_eq!(cloud.dark_moments("prod", "drain_gateway"), 0);
    // The group is the user's: Mooring changed nothing; a drain time within it clears the advice.
    apply(&store, relay(ns, "gateway", "ghcr.io/acme/api:1.0", deployment(5))).await;
    until(&store, ns, "gateway", "no advice", |s| {
        condition(s, "Advisory").is_some_and(|(st, _, g)| st == "False" && g == 2)
    })
    .await;
    replica.shutdown().await;
}
