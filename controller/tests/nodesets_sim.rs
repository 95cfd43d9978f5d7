//! NodeSets reconciled by the real controller over the simulated cloud: the
//! set writes its member Nodes through the store, the Node reconciler
//! provisions each (builds run in-process). A set converges with one instance
//! and one volume per member, spread over its subnets; a new template replaces
//! members highest ordinal first with never more than one not Ready; a member
//! whose instance fails its checks stops the rollout with the others
//! untouched; `partition` holds the members below it; scaling down removes
//! the highest ordinal and keeps its volume per the template; members cannot
//! be edited or deleted on their own; deleting the set deletes its members;
//! with discovery, the members' DNS records follow their instances and
//! nobody else's record is touched.
//! Seeds are printed; replay with `MOORING_SIM_SEED`.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use api_types::{Kind, validate_document};
use common::nodes::{World, running, start};
use common::sim::{apply, condition};
use common::*;
use desired_state::store::{ChangeSource, Store, StoreError, WriteMode};
use runners::cloud::TAG_UID;
use runners::cloud::dns::{RecordSet, RecordType};
use serde_json::{Value, json};

const SUBNETS: [&str; 3] = ["subnet-0a1b2c3d", "subnet-0b2c3d4e", "subnet-0c3d4e5f"];

fn set(ns: &str, replicas: u32, version: &str, partition: u32, health_port: u16) -> Value {
    json!({"apiVersion": "mooring/v1", "kind": "NodeSet", "metadata": {"name": "pulse", "namespace": ns},
    "spec": {
        "replicas": replicas,
        "subnetIds": SUBNETS,
        "updateStrategy": {"maxUnavailable": 1, "partition": partition},
        "template": {
            "software": {"name": "pulse", "version": version, "artifact": "s3://pulse-artifacts/pulse.tar.gz"},
            "instanceType": "t3.large", "ami": "ami-1e749f67", "subnetId": SUBNETS[0],
            "dataVolume": {"sizeGiB": 20, "deleteOnNodeDelete": false},
            "ports": [{"name": "p2p", "port": 4001}, {"name": "api", "port": health_port}],
            "healthCheck": {"port": health_port, "path": "/health"}
        }
    }})
}

async fn set_status(store: &Store, ns: &str) -> Value {
    store.get(Kind::NodeSet, ns, "pulse").await.map(|r| r.status).unwrap_or_default()
}

/// Each member: (ordinal, revision annotation, Ready at its generation, instance id, volume id).
type MemberRow = (u32, String, bool, String, String);

async fn members(store: &Store, ns: &str) -> Vec<MemberRow> {
    let mut out = vec![];
    for i in 0..5 {
        let Ok(r) = store.get(Kind::Node, ns, &format!("pulse-{i}")).await else { continue };
        let ready = r.status["observedGeneration"] == r.generation
            && condition(&r.status, "Ready").is_some_and(|(s, _, g)| s == "True" && g == r.generation);
        out.push((
            i,
            r.annotations.0.get("mooring/nodeset-revision").cloned().unwrap_or_default(),
            ready,
            r.status["instanceId"].as_str().unwrap_or_default().to_string(),
            r.status["volumeId"].as_str().unwrap_or_default().to_string(),
        ));
    }
    out
}

/// Waits until the set reports `Ready=True` and `Progressing=False` for
/// `generation`, checking at every look that at most one member is not
/// Ready; returns the order in which members reached the set's revision.
async fn converge(store: &Store, ns: &str, generation: i64, start: &[MemberRow]) -> Vec<u32> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut order: Vec<u32> = vec![];
    let before: BTreeMap<u32, String> = start.iter().map(|m| (m.0, m.1.clone())).collect();
    loop {
        let s = set_status(store, ns).await;
        let now = members(store, ns).await;
        if !start.is_empty() {
            let down: Vec<u32> = now.iter().filter(|m| !m.2).map(|m| m.0).collect();
            assert!(down.len() <= 1, "more than one member not Ready at once: {down:?} {now:?}");
        }
        for m in &now {
            if before.get(&m.0) != Some(&m.1) && !order.contains(&m.0) {
                order.push(m.0);
            }
        }
        let ready = condition(&s, "Ready").is_some_and(|(st, _, g)| st == "True" && g == generation);
        let settled = condition(&s, "Progressing").is_some_and(|(st, _, g)| st == "False" && g == generation);
        if ready && settled {
            return order;
        }
        assert!(tokio::time::Instant::now() < deadline, "the set did not converge at generation {generation}: {s:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[sqlx::test(migrations = false)]
async fn a_set_converges_rolls_one_member_at_a_time_holds_a_partition_and_scales_down(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let w = World::healthy(20).await;
    let replica = start(&store, &prefix, &w);

    apply(&store, set("p2p", 3, "1.0", 0, w.health_port)).await;
    converge(&store, "p2p", 1, &[]).await;
    let owner = store.get(Kind::NodeSet, "p2p", "pulse").await.unwrap();
    assert_eq!(owner.status["readyReplicas"], 3);
    assert_eq!(owner.status["updatedReplicas"], 3);
    let first = members(&store, "p2p").await;
    assert_eq!(first.len(), 3, "{first:?}");
    let mut subnets = vec![];
    let mut uids = vec![];
    for (i, _, _, instance, volume) in &first {
        let r = store.get(Kind::Node, "p2p", &format!("pulse-{i}")).await.unwrap();
        uids.push(r.uid.to_string());
        assert_eq!(r.owner_uid, Some(owner.uid), "member {i} is owned by the set");
        assert_eq!(r.source, "controller");
        assert_eq!(r.source_actor.as_deref(), Some("NodeSet p2p/pulse"));
        assert_eq!(r.spec["env"]["MOORING_ORDINAL"], i.to_string());
        let running = running(&w.cloud, &r.uid.to_string());
        assert_eq!(running.len(), 1, "member {i}: {running:?}");
        assert_eq!(&running[0].id, instance);
        subnets.push(running[0].subnet_id.clone().unwrap());
        assert!(!volume.is_empty(), "member {i} has its data volume");
    }
    subnets.sort();
    assert_eq!(subnets, SUBNETS.map(String::from).to_vec(), "one member per subnet");
    let volumes: std::collections::BTreeSet<&String> = first.iter().map(|m| &m.4).collect();
    assert_eq!(volumes.len(), 3, "a volume per member");

    // Members are the set's: the API's writes and deletes are refused.
    let mut edited = store.get(Kind::Node, "p2p", "pulse-1").await.unwrap().to_document();
    edited["spec"]["instanceType"] = json!("t3.xlarge");
    let doc = validate_document(edited).unwrap();
    let err = store.write(&doc, WriteMode::Upsert, &ChangeSource::api("alice")).await.unwrap_err();
    assert!(matches!(err, StoreError::Owned { .. }) && err.to_string().contains("NodeSet p2p/pulse"), "{err}");
    let err = store.request_delete(Kind::Node, "p2p", "pulse-1").await.unwrap_err();
    assert!(matches!(err, StoreError::Owned { .. }), "{err}");

    // A new version: highest ordinal first, one at a time, volumes kept.
    apply(&store, set("p2p", 3, "1.1", 0, w.health_port)).await;
    let order = converge(&store, "p2p", 2, &first).await;
    assert_eq!(order, [2, 1, 0], "members replaced highest ordinal first");
    let second = members(&store, "p2p").await;
    for (a, b) in first.iter().zip(&second) {
        assert_ne!(a.3, b.3, "member {} has a new instance", a.0);
        assert_eq!(a.4, b.4, "member {} kept its data volume", a.0);
    }
    let events = store.events(Kind::NodeSet, "p2p", "pulse", 50).await.unwrap();
    assert!(events.iter().any(|e| e.reason == "MemberUpdated" && e.message.contains("pulse-2")), "{events:?}");

    // partition 2: only member 2 moves on.
    apply(&store, set("p2p", 3, "1.2", 2, w.health_port)).await;
    converge(&store, "p2p", 3, &second).await;
    let third = members(&store, "p2p").await;
    assert_ne!(third[2].1, second[2].1, "member 2 is on the new revision");
    assert_eq!((&third[0].1, &third[1].1), (&second[0].1, &second[1].1), "members 0 and 1 are held");
    assert_eq!((&third[0].3, &third[1].3), (&second[0].3, &second[1].3), "members 0 and 1 were not replaced");
    let s = set_status(&store, "p2p").await;
    assert_eq!(condition(&s, "Progressing").map(|c| c.1), Some("PartitionHeld".to_string()), "{s:#}");

    // 3 → 2: member 2 goes, its volume stays (deleteOnNodeDelete false).
    apply(&store, set("p2p", 2, "1.2", 2, w.health_port)).await;
    converge(&store, "p2p", 4, &[]).await;
    assert!(store.get(Kind::Node, "p2p", "pulse-2").await.is_err(), "member 2 is gone");
    let kept = w.cloud.volumes().into_iter().find(|v| v.id == third[2].4).expect("member 2's volume is kept");
    assert!(!kept.tags.contains_key(TAG_UID), "released: {kept:?}");
    assert_eq!(kept.tags.get("mooring:owner"), Some(&owner.uid.to_string()), "still the set's: {kept:?}");
    assert_eq!(set_status(&store, "p2p").await["replicas"], 2);

    // 2 → 3: the new member 2 takes back the volume its predecessor left,
    // as a StatefulSet's pod gets its claim back.
    apply(&store, set("p2p", 3, "1.2", 2, w.health_port)).await;
    converge(&store, "p2p", 5, &[]).await;
    let back = members(&store, "p2p").await;
    assert_eq!(back[2].4, third[2].4, "member 2 has its old volume: {back:?}");
    let reborn = store.get(Kind::Node, "p2p", "pulse-2").await.unwrap();
    let volume = w.cloud.volumes().into_iter().find(|v| v.id == third[2].4).unwrap();
    assert_eq!(volume.tags.get(TAG_UID), Some(&reborn.uid.to_string()), "now the new member's: {volume:?}");
    assert!(!volume.tags.contains_key("mooring:released-from"), "{volume:?}");
    uids.push(reborn.uid.to_string());

    // Deleting the set deletes its members first.
    store.request_delete(Kind::NodeSet, "p2p", "pulse").await.unwrap();
    eventually(Duration::from_secs(120), "the set and its members are gone", || async {
        store.get(Kind::NodeSet, "p2p", "pulse").await.is_err()
            && store.get(Kind::Node, "p2p", "pulse-0").await.is_err()
            && store.get(Kind::Node, "p2p", "pulse-1").await.is_err()
            && store.get(Kind::Node, "p2p", "pulse-2").await.is_err()
    })
    .await;
    for (i, uid) in uids.iter().enumerate() {
        assert!(running(&w.cloud, uid).is_empty(), "member {i}'s instance is terminated");
    }
    replica.shutdown().await;
}

#[sqlx::test(migrations = false)]
async fn a_member_failing_its_checks_stops_the_rollout_and_a_new_template_fixes_it(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let w = World::healthy(20).await;
    let replica = start(&store, &prefix, &w);

    apply(&store, set("p2p", 3, "1.0", 0, w.health_port)).await;
    converge(&store, "p2p", 1, &[]).await;
    let before = members(&store, "p2p").await;

    // The simulated cloud impairs instances whose user data holds the marker.
    apply(&store, set("p2p", 3, "2.0+impaired", 0, w.health_port)).await;
    eventually(Duration::from_secs(120), "the set is Degraded naming pulse-2", || async {
        let s = set_status(&store, "p2p").await;
        let degraded = s["conditions"].as_array().and_then(|cs| cs.iter().find(|c| c["type"] == "Degraded").cloned());
        degraded.is_some_and(|c| {
            c["status"] == "True" && c["reason"] == "MemberFailed" && c["message"].as_str().unwrap().contains("pulse-2")
        })
    })
    .await;
    // Nothing else moves while pulse-2 fails.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let now = members(&store, "p2p").await;
    for i in [0, 1] {
        assert_eq!(now[i].1, before[i].1, "member {i} kept its revision");
        assert_eq!(now[i].3, before[i].3, "member {i} kept its instance");
        assert!(now[i].2, "member {i} is still Ready");
    }
    assert!(!now[2].2, "member 2 is not Ready");
    let s = set_status(&store, "p2p").await;
    assert_eq!(condition(&s, "Ready").map(|c| c.0), Some("False".to_string()));
    assert_eq!(condition(&s, "Progressing").map(|c| (c.0, c.1)), Some(("True".into(), "RollingUpdate".into())));

    // A fixed version: the failed member is replaced at once, then the rest.
    apply(&store, set("p2p", 3, "2.1", 0, w.health_port)).await;
    let order = converge(&store, "p2p", 3, &now).await;
    assert_eq!(order, [2, 1, 0]);
    let s = set_status(&store, "p2p").await;
    assert_eq!(condition(&s, "Degraded").map(|c| c.0), Some("False".to_string()), "{s:#}");

    // Reordering the subnets moves no member: volumes cannot change zone.
    let fixed = members(&store, "p2p").await;
    let mut reordered = set("p2p", 3, "2.1", 0, w.health_port);
    reordered["spec"]["subnetIds"] = json!([SUBNETS[2], SUBNETS[1], SUBNETS[0]]);
    apply(&store, reordered).await;
    converge(&store, "p2p", 4, &fixed).await;
    for (a, b) in fixed.iter().zip(members(&store, "p2p").await) {
        assert_ne!(a.1, b.1, "member {} is on the new revision", a.0);
        assert_eq!(a.3, b.3, "member {} kept its instance", a.0);
    }
    replica.shutdown().await;
}

/// The controller dies after one of the AWS calls of a rolling update of a
/// two-member set, and a new replica takes over: every member still ends with
/// exactly one running instance and its own volume. A clean run counts the
/// calls; about ten evenly spaced points of its first half run by default,
/// every point with `MOORING_NODESET_SWEEP=all`.
#[sqlx::test(migrations = false)]
async fn a_crash_during_a_rolling_update_leaves_one_instance_per_member(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let w = World::healthy(20).await;
    let mut replica = start(&store, &prefix, &w);

    // Converge a set, then time (in calls) its rolling update.
    async fn ready_set(store: &Store, ns: &str, w: &World) -> Vec<MemberRow> {
        apply(store, set(ns, 2, "1.0", 0, w.health_port)).await;
        converge(store, ns, 1, &[]).await;
        members(store, ns).await
    }
    let before = ready_set(&store, "clean", &w).await;
    let calls_before = w.cloud.total_calls();
    apply(&store, set("clean", 2, "1.1", 0, w.health_port)).await;
    converge(&store, "clean", 2, &before).await;
    // How many calls an update makes depends on timing (members are polled
    // while their builds run): sweep the first half, which every run reaches.
    let calls = (w.cloud.total_calls() - calls_before) / 2;
    let all = std::env::var("MOORING_NODESET_SWEEP").is_ok_and(|v| v == "all");
    let step = if all { 1 } else { (calls / 10).max(1) };
    let points: Vec<u64> = (1..=calls).step_by(step as usize).collect();

    let mut crashes = 0;
    for at in &points {
        let ns = format!("crash{at}");
        let first = ready_set(&store, &ns, &w).await;
        let crashed = w.cloud.crash_at(*at);
        apply(&store, set(&ns, 2, "1.1", 0, w.health_port)).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        let mut did_crash = false;
        loop {
            if !did_crash && tokio::time::timeout(Duration::from_millis(10), crashed.notified()).await.is_ok() {
                did_crash = true;
                crashes += 1;
                common::sim::crash(replica, &prefix).await;
                w.cloud.clear_crash();
                replica = start(&store, &prefix, &w);
            }
            let s = set_status(&store, &ns).await;
            let done = condition(&s, "Ready").is_some_and(|(st, _, g)| st == "True" && g == 2)
                && condition(&s, "Progressing").is_some_and(|(st, _, g)| st == "False" && g == 2);
            if done {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "crash at call {at}: the set did not converge: {s:#}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        w.cloud.clear_crash();
        let now = members(&store, &ns).await;
        assert_eq!(now.len(), 2, "crash at call {at}: {now:?}");
        for (a, b) in first.iter().zip(&now) {
            assert_eq!(a.4, b.4, "crash at call {at}: member {} kept its volume", a.0);
            let uid = store.get(Kind::Node, &ns, &format!("pulse-{}", a.0)).await.unwrap().uid.to_string();
            let live = running(&w.cloud, &uid);
            assert_eq!(live.len(), 1, "crash at call {at}: member {}: {live:?}", a.0);
            assert_eq!(
                w.cloud.instances_launched(TAG_UID, &uid),
                2,
                "crash at call {at}: member {} launched once per version",
                a.0
            );
        }
    }
    replica.shutdown().await;
    eprintln!(
        "{crashes} of {} crash points reached over {calls} calls; each left one instance per member",
        points.len()
    );
    // A point past the end of a faster run is a run without a crash (still
    // checked); how many runs are faster varies with the machine's load, so
    // this only guards against a sweep that crashes almost nowhere.
    assert!(crashes * 3 >= points.len(), "only {crashes} of {} crash points were reached", points.len());
}

async fn generation(store: &Store, ns: &str) -> i64 {
    store.get(Kind::NodeSet, ns, "pulse").await.unwrap().generation
}

/// The A records of a zone: name → addresses.
fn a_records(w: &World, zone: &str) -> BTreeMap<String, Vec<String>> {
    w.cloud.dns_records(zone).into_iter().filter(|r| r.kind == RecordType::A).map(|r| (r.name, r.values)).collect()
}

/// What the set's records should be from its members' statuses: one per
/// member with its IP, and the domain with every Ready member's.
async fn expected_records(store: &Store, ns: &str, domain: &str, replicas: u32) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let mut all = vec![];
    for i in 0..replicas {
        let Ok(r) = store.get(Kind::Node, ns, &format!("pulse-{i}")).await else { continue };
        if let Some(ip) = r.status["privateIp"].as_str() {
            out.insert(format!("pulse-{i}.{domain}"), vec![ip.to_string()]);
            all.push(ip.to_string());
        }
    }
    all.sort();
    if !all.is_empty() {
        out.insert(domain.to_string(), all);
    }
    out
}

/// Waits until the zone's records under `domain` are what the members say.
async fn records_follow(store: &Store, w: &World, zone: &str, ns: &str, domain: &str, replicas: u32) {
    eventually(Duration::from_secs(60), "the DNS records follow the members", || async {
        let want = expected_records(store, ns, domain, replicas).await;
        let got: BTreeMap<String, Vec<String>> =
            a_records(w, zone).into_iter().filter(|(n, _)| n == domain || n.ends_with(&format!(".{domain}"))).collect();
        want.len() == replicas as usize + 1 && got == want
    })
    .await;
}

fn with_discovery(mut doc: Value, zone: &str, domain: &str) -> Value {
    doc["spec"]["discovery"] = json!({"privateZoneId": zone, "domain": domain, "ttlSeconds": 30});
    doc
}

#[sqlx::test(migrations = false)]
async fn a_set_publishes_its_members_in_dns_follows_replacements_and_leaves_others_records(pool: sqlx::PgPool) {
    let store = store(pool).await;
    let prefix = prefix();
    let w = World::healthy(20).await;
    let replica = start(&store, &prefix, &w);
    let zone = w.cloud.create_private_zone("internal");
    let foreign =
        |name: &str, ip: &str| RecordSet { name: name.into(), kind: RecordType::A, ttl: 300, values: vec![ip.into()] };
    // Someone else's records: one where member 2's would go, one beside.
    w.cloud.put_dns_record(&zone, foreign("pulse-2.pulse.internal", "192.168.9.9"));
    w.cloud.put_dns_record(&zone, foreign("db.internal", "192.168.1.1"));

    apply(&store, with_discovery(set("dns", 3, "1.0", 0, w.health_port), &zone, "pulse.internal")).await;
    converge(&store, "dns", 1, &[]).await;
    let m0 = store.get(Kind::Node, "dns", "pulse-0").await.unwrap();
    assert_eq!(m0.spec["env"]["MOORING_PEERS"], "pulse-0.pulse.internal,pulse-1.pulse.internal,pulse-2.pulse.internal");
    assert_eq!(m0.spec["env"]["MOORING_PEERS_DNS"], "pulse.internal");
    eventually(Duration::from_secs(30), "member 2's name is a conflict", || async {
        let s = set_status(&store, "dns").await;
        condition(&s, "Synced").is_some_and(|(st, reason, _)| st == "False" && reason == "Conflict")
            && a_records(&w, &zone).contains_key("pulse-1.pulse.internal")
    })
    .await;
    let records = a_records(&w, &zone);
    assert_eq!(records["pulse-2.pulse.internal"], ["192.168.9.9"], "someone else's record is untouched");
    let m1 = store.get(Kind::Node, "dns", "pulse-1").await.unwrap();
    assert_eq!(records["pulse-1.pulse.internal"], [m1.status["privateIp"].as_str().unwrap()]);
    let s = set_status(&store, "dns").await;
    let synced = s["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Synced").unwrap().clone();
    assert!(synced["message"].as_str().unwrap().contains("pulse-2.pulse.internal"), "{synced}");

    // Adoption takes the record over, with an event.
    let mut adopting = with_discovery(set("dns", 3, "1.0", 0, w.health_port), &zone, "pulse.internal");
    adopting["metadata"]["annotations"] = json!({"mooring/adopt": "true"});
    apply(&store, adopting.clone()).await;
    records_follow(&store, &w, &zone, "dns", "pulse.internal", 3).await;
    let events = store.events(Kind::NodeSet, "dns", "pulse", 50).await.unwrap();
    assert!(events.iter().any(|e| e.reason == "Adopted" && e.message.contains("pulse-2.pulse.internal")), "{events:?}");
    let s = set_status(&store, "dns").await;
    assert_eq!(s["discovery"]["privateZoneId"], zone.as_str());
    assert_eq!(s["discovery"]["records"].as_array().unwrap().len(), 4, "{s:#}");

    // A new version replaces every member: the records follow the new instances.
    let before = a_records(&w, &zone);
    let first = members(&store, "dns").await;
    let mut upgraded = adopting.clone();
    upgraded["spec"]["template"]["software"]["version"] = json!("1.1");
    apply(&store, upgraded.clone()).await;
    converge(&store, "dns", generation(&store, "dns").await, &first).await;
    records_follow(&store, &w, &zone, "dns", "pulse.internal", 3).await;
    assert_ne!(a_records(&w, &zone)["pulse-0.pulse.internal"], before["pulse-0.pulse.internal"], "a new address");

    // 3 → 2: member 2's record and its marker go.
    upgraded["spec"]["replicas"] = json!(2);
    apply(&store, upgraded.clone()).await;
    converge(&store, "dns", generation(&store, "dns").await, &[]).await;
    records_follow(&store, &w, &zone, "dns", "pulse.internal", 2).await;
    let names: Vec<String> = w.cloud.dns_records(&zone).into_iter().map(|r| r.name).collect();
    assert!(!names.iter().any(|n| n.contains("pulse-2")), "{names:?}");

    // A new domain: the members roll (their MOORING_PEERS change), the records
    // move, and nothing is left under the old name.
    let second = members(&store, "dns").await;
    let moved = with_discovery(upgraded.clone(), &zone, "p2p.internal");
    apply(&store, moved).await;
    converge(&store, "dns", generation(&store, "dns").await, &second).await;
    records_follow(&store, &w, &zone, "dns", "p2p.internal", 2).await;
    let names: Vec<String> = w.cloud.dns_records(&zone).into_iter().map(|r| r.name).collect();
    assert!(!names.iter().any(|n| n.ends_with("pulse.internal")), "{names:?}");
    let m1 = store.get(Kind::Node, "dns", "pulse-1").await.unwrap();
    assert_eq!(m1.spec["env"]["MOORING_PEERS"], "pulse-0.p2p.internal,pulse-1.p2p.internal");

    // Deleting the set removes its records, and only its records.
    store.request_delete(Kind::NodeSet, "dns", "pulse").await.unwrap();
    eventually(Duration::from_secs(120), "the set is gone", || async {
        store.get(Kind::NodeSet, "dns", "pulse").await.is_err()
    })
    .await;
    let left: Vec<String> = w.cloud.dns_records(&zone).into_iter().map(|r| r.name).collect();
    assert_eq!(left, ["db.internal"], "only someone else's record is left");
    replica.shutdown().await;
}
