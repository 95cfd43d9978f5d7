//! Admission policies over real HTTP and real Postgres: who may write them,
//! what the built-in guardrails policy refuses, and that every write path —
//! create, replace, patch, apply (dry run too), rollback, GitOps sync — passes
//! through the same admission.

mod common;

use common::{TestApi, relay, start};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

const ACCOUNT: &str = "123456789012";

fn role(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

fn secret(path: &str) -> String {
    format!("arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{path}")
}

fn target_group(name: &str) -> String {
    format!("arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:targetgroup/{name}/0123456789abcdef")
}

/// The cluster-wide guardrails: team-a may use its own roles, secrets, target
/// groups and cluster, and at most 10 replicas; other namespaces are not
/// restricted.
fn guardrails() -> Value {
    json!({
        "apiVersion": "mooring/v1",
        "kind": "Policy",
        "metadata": {"name": "guardrails"},
        "spec": {"guardrails": {"namespaces": {"team-a": {
            "roleArns": [role("team-a-*")],
            "secretArnPrefixes": [secret("team-a/")],
            "targetGroupArns": [target_group("team-a-*")],
            "clusters": ["team-a"],
            "maxReplicas": 10
        }}}}
    })
}

/// A relay in `namespace` naming these AWS resources.
fn relay_with(name: &str, namespace: &str, exec_role: &str, db_secret: &str, tg: &str) -> Value {
    json!({
        "apiVersion": "mooring/v1",
        "kind": "Relay",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "cluster": "team-a",
            "executionRoleArn": exec_role,
            "containers": [{"name": "app", "image": "public.ecr.aws/acme/gw:1", "port": 8000,
                            "secrets": {"DB": db_secret}}],
            "network": {"subnets": ["subnet-0a1b2c3d"]},
            "loadBalancer": {"targetGroupArn": tg, "containerPort": 8000},
            "scaling": {"min": 1, "max": 4}
        }
    })
}

fn good_relay(name: &str) -> Value {
    relay_with(name, "team-a", &role("team-a-exec"), &secret("team-a/db-AbCdEf"), &target_group("team-a-gw"))
}

async fn send(api: &TestApi, method: Method, path: &str, token: &str, body: &Value) -> common::Resp {
    api.call(method, path, Some(token), Some(("application/json", body.to_string()))).await
}

/// The (field, policy) pairs of a PolicyViolation answer.
fn violations(r: &common::Resp) -> Vec<(String, String)> {
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "PolicyViolation", "{}", r.text);
    r.body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["field"].as_str().unwrap().to_string(), d["policy"].as_str().unwrap().to_string()))
        .collect()
}

#[sqlx::test(migrations = false)]
async fn guardrails_keep_a_namespace_to_its_own_aws_resources(pool: PgPool) {
    let api = start(pool).await;
    let team_a = api.token("team-a-ci", &["write:team-a"]).await;
    let team_a_admin = api.token("team-a-admin", &["admin:team-a"]).await;

    // Only admin:* writes a cluster-scoped policy; a namespace writer or admin may not.
    for token in [&team_a, &team_a_admin] {
        let r = send(&api, Method::POST, "/v1/policies", token, &guardrails()).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    }
    let created = send(&api, Method::POST, "/v1/policies", &api.admin.clone(), &guardrails()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert!(created.body["metadata"]["namespace"].is_null(), "cluster-scoped: {}", created.text);
    assert!(created.body["metadata"]["finalizers"].is_null(), "policies wait for no controller");

    // Outside team-a's lists: refused, with the field path and the policy's name, and nothing changes.
    let before = api.snapshot().await;
    let relays = "/v1/namespaces/team-a/relays";
    let cases = [
        (
            "role",
            relay_with("gw", "team-a", &role("prod-exec"), &secret("team-a/db"), &target_group("team-a-gw")),
            "spec.executionRoleArn",
        ),
        (
            "secret",
            relay_with("gw", "team-a", &role("team-a-exec"), &secret("prod/db-password"), &target_group("team-a-gw")),
            "spec.containers[0].secrets.DB",
        ),
        (
            "target group",
            relay_with("gw", "team-a", &role("team-a-exec"), &secret("team-a/db"), &target_group("prod-web")),
            "spec.loadBalancer.targetGroupArn",
        ),
    ];
    for (what, doc, field) in &cases {
        let r = send(&api, Method::POST, relays, &team_a, doc).await;
        assert_eq!(violations(&r), vec![(field.to_string(), "guardrails".to_string())], "{what}");
        assert!(r.body["error"]["message"].as_str().unwrap().contains("guardrails"), "{}", r.text);
        // The dry run of an apply says the same, at the document's index.
        let dry = send(&api, Method::POST, "/v1/apply?dryRun=true", &team_a, &json!([good_relay("ok"), doc])).await;
        assert_eq!(violations(&dry), vec![(format!("items[1].{field}"), "guardrails".to_string())], "{what}");
    }
    let mut ceiling = good_relay("gw");
    ceiling["spec"]["scaling"]["max"] = json!(50);
    assert_eq!(
        violations(&send(&api, Method::POST, relays, &team_a, &ceiling).await),
        vec![("spec.scaling.max".to_string(), "guardrails".to_string())]
    );
    assert_eq!(api.snapshot().await, before, "a refused write changed the store");

    // Inside the lists: accepted (dry run, then for real).
    let dry = send(&api, Method::POST, "/v1/apply?dryRun=true", &team_a, &json!([good_relay("gw")])).await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.text);
    let ok = send(&api, Method::POST, relays, &team_a, &good_relay("gw")).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);

    // Replace and patch are judged too.
    let mut bad = relay_with("gw", "team-a", &role("prod-exec"), &secret("team-a/db"), &target_group("team-a-gw"));
    bad["metadata"]["resourceVersion"] = ok.body["metadata"]["resourceVersion"].clone();
    let put = send(&api, Method::PUT, &format!("{relays}/gw"), &team_a, &bad).await;
    assert_eq!(violations(&put), vec![("spec.executionRoleArn".to_string(), "guardrails".to_string())]);
    let patch = api
        .call(
            Method::PATCH,
            &format!("{relays}/gw"),
            Some(&team_a),
            Some(("application/merge-patch+json", json!({"spec": {"taskRoleArn": role("admin")}}).to_string())),
        )
        .await;
    assert_eq!(violations(&patch), vec![("spec.taskRoleArn".to_string(), "guardrails".to_string())]);

    // Namespaces without an entry are not restricted by this policy.
    let anywhere = relay_with("gw", "default", &role("prod-exec"), &secret("prod/db"), &target_group("prod-web"));
    let r = send(&api, Method::POST, "/v1/namespaces/default/relays", &api.admin.clone(), &anywhere).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    // Everyone may read the cluster policies that judge them; team-a's token
    // lists them beside its own namespace's.
    let list = api.call(Method::GET, "/v1/policies", Some(&team_a), None).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.body["items"][0]["metadata"]["name"], "guardrails");
    let read = api.call(Method::GET, "/v1/policies/guardrails", Some(&team_a), None).await;
    assert_eq!(read.body["spec"]["guardrails"]["namespaces"]["team-a"]["maxReplicas"], 10, "{}", read.text);
}

#[sqlx::test(migrations = false)]
async fn policy_changes_are_signed_history_and_rollbacks_are_judged(pool: PgPool) {
    let api = start(pool).await;
    let admin = api.admin.clone();
    // team-b, unrestricted so far, runs a relay with production's role.
    let team_b = |exec: &str| relay_with("gw", "team-b", &role(exec), &secret("team-b/db"), &target_group("team-b-gw"));
    assert_eq!(
        send(&api, Method::POST, "/v1/namespaces/team-b/relays", &admin, &team_b("prod-exec")).await.status,
        StatusCode::CREATED
    );

    // The platform team adds team-b to the guardrails; the fixed relay is generation 2.
    let mut policy = guardrails();
    assert_eq!(send(&api, Method::POST, "/v1/policies", &admin, &policy).await.status, StatusCode::CREATED);
    policy["spec"]["guardrails"]["namespaces"]["team-b"] = json!({"roleArns": [role("team-b-*")]});
    let updated = api
        .call(Method::POST, "/v1/apply", Some(&admin), Some(("application/json", json!([policy]).to_string())))
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert_eq!(updated.body["items"][0]["action"], "update");
    let mut fixed = team_b("team-b-exec");
    fixed["metadata"]["resourceVersion"] =
        api.get("/v1/namespaces/team-b/relays/gw").await.body["metadata"]["resourceVersion"].clone();
    assert_eq!(send(&api, Method::PUT, "/v1/namespaces/team-b/relays/gw", &admin, &fixed).await.status, StatusCode::OK);

    // Rolling back to generation 1 would bring production's role back: refused, and it says why.
    let back =
        send(&api, Method::POST, "/v1/namespaces/team-b/relays/gw/rollback", &admin, &json!({"revision": 1})).await;
    assert_eq!(violations(&back), vec![("spec.executionRoleArn".to_string(), "guardrails".to_string())]);
    assert!(
        back.body["error"]["message"].as_str().unwrap().starts_with("revision 1 cannot be restored"),
        "{}",
        back.text
    );
    assert_eq!(api.get("/v1/namespaces/team-b/relays/gw").await.body["metadata"]["generation"], 2);

    // The policy's two versions are in the signed history, and the history verifies.
    let revs = api.get("/v1/policies/guardrails/revisions").await;
    let items = revs.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", revs.text);
    assert_eq!(items[0]["generation"], 2);
    assert_eq!(items[0]["actor"], "bootstrap");
    let report = api.store.audit_verify(None).await.unwrap();
    assert_eq!(report.failure, None);

    // Rolling the policy itself back (admin:*) restores generation 1's lists: team-b is free again.
    let policy_back =
        send(&api, Method::POST, "/v1/policies/guardrails/rollback", &admin, &json!({"revision": 1})).await;
    assert_eq!(policy_back.status, StatusCode::OK, "{}", policy_back.text);
    assert_eq!(policy_back.body["metadata"]["generation"], 3);
    let back =
        send(&api, Method::POST, "/v1/namespaces/team-b/relays/gw/rollback", &admin, &json!({"revision": 1})).await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.text);

    // A policy goes at once on delete: nothing in AWS to clean up.
    let gone = api.call(Method::DELETE, "/v1/policies/guardrails", Some(&admin), None).await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.text);
    assert_eq!(api.get("/v1/policies/guardrails").await.status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrations = false)]
async fn a_sync_is_judged_by_the_policies_stored_before_it_and_keeps_policies_unless_told(pool: PgPool) {
    let api = start(pool).await;
    let admin = api.admin.clone();
    let sync = |docs: Vec<Value>, extra: &str| {
        let path = format!("/v1/apply?source=gitops&sourceName=platform&revision=0123abcd{extra}");
        let body = Value::Array(docs).to_string();
        let admin = admin.clone();
        let api = &api;
        async move { api.call(Method::POST, &path, Some(&admin), Some(("application/json", body))).await }
    };
    let offender = relay_with("gw", "team-a", &role("prod-exec"), &secret("team-a/db"), &target_group("team-a-gw"));
    // The commit that adds the guardrails also carries a relay they would refuse:
    // the sync is judged by the policies stored before it, so both land.
    let first = sync(vec![guardrails(), offender.clone(), relay("keep", "default", "nginx:1")], "").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    // The next commit is judged by them.
    let mut changed = offender.clone();
    changed["spec"]["scaling"]["max"] = json!(5);
    let second = sync(vec![guardrails(), changed, relay("keep", "default", "nginx:1")], "").await;
    assert_eq!(violations(&second), vec![("items[1].spec.executionRoleArn".to_string(), "guardrails".to_string())]);

    // A commit without the policy prunes the relay it dropped, never the policy...
    let pruned = sync(vec![good_relay("gw"), relay("keep", "default", "nginx:1")], "&prune=true").await;
    assert_eq!(pruned.status, StatusCode::OK, "{}", pruned.text);
    assert_eq!(pruned.body["summary"]["delete"], 0, "{}", pruned.text);
    assert_eq!(api.get("/v1/policies/guardrails").await.status, StatusCode::OK);
    // ...unless asked to.
    let pruned = sync(
        vec![good_relay("gw"), relay("keep", "default", "nginx:1")],
        "&prune=true&prunePolicies=true&maxPrunePercent=50",
    )
    .await;
    assert_eq!(pruned.status, StatusCode::OK, "{}", pruned.text);
    let deleted: Vec<&str> = pruned.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["action"] == "delete")
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(deleted, vec!["Policy"]);
    assert_eq!(api.get("/v1/policies/guardrails").await.status, StatusCode::NOT_FOUND);
}

#[sqlx::test(migrations = false)]
async fn custom_rego_policies_in_a_namespace(pool: PgPool) {
    let api = start(pool).await;
    let team_a_admin = api.token("team-a-admin", &["admin:team-a"]).await;
    let team_a = api.token("team-a-ci", &["write:team-a"]).await;
    let policy = |rego: &str| {
        json!({"apiVersion": "mooring/v1", "kind": "Policy",
               "metadata": {"name": "images", "namespace": "team-a"},
               "spec": {"kinds": ["Relay"], "rego": rego, "data": {"registry": "public.ecr.aws/"}}})
    };
    let rego = r#"package mooring.admission

deny contains {"field": sprintf("spec.containers[%d].image", [i]), "message": "images come from our registry"} if {
	some i, c in input.document.spec.containers
	not startswith(c.image, data.policy.registry)
}
"#;
    let path = "/v1/namespaces/team-a/policies";
    // A namespace writer may not write policies; its admin may.
    assert_eq!(send(&api, Method::POST, path, &team_a, &policy(rego)).await.status, StatusCode::FORBIDDEN);
    // Modules that do not compile, or declare another package, are refused at spec.rego.
    for bad in ["package mooring.admission\ndeny contains x if {", "package other\ndeny contains \"x\" if { true }"] {
        let r = send(&api, Method::POST, path, &team_a_admin, &policy(bad)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
        assert_eq!(r.body["error"]["details"][0]["field"], "spec.rego", "{}", r.text);
    }
    let created = send(&api, Method::POST, path, &team_a_admin, &policy(rego)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);

    let r = send(&api, Method::POST, "/v1/namespaces/team-a/relays", &team_a, &relay("gw", "team-a", "nginx:1")).await;
    assert_eq!(violations(&r), vec![("spec.containers[0].image".to_string(), "team-a/images".to_string())]);
    let ok = relay("gw", "team-a", "public.ecr.aws/acme/gw:1");
    assert_eq!(
        send(&api, Method::POST, "/v1/namespaces/team-a/relays", &team_a, &ok).await.status,
        StatusCode::CREATED
    );
    // Its namespace only, and its kinds only.
    let elsewhere = relay("gw", "team-b", "nginx:1");
    assert_eq!(
        send(&api, Method::POST, "/v1/namespaces/team-b/relays", &api.admin.clone(), &elsewhere).await.status,
        StatusCode::CREATED
    );
    let worker = common::worker("w", "team-a");
    assert_eq!(
        send(&api, Method::POST, "/v1/namespaces/team-a/workers", &team_a, &worker).await.status,
        StatusCode::CREATED
    );
}

#[sqlx::test(migrations = false)]
async fn guardrails_hold_node_sets_to_their_zones_and_nodes_to_their_instance_profiles(pool: PgPool) {
    let api = start(pool).await;
    let admin = api.admin.clone();
    let policy = json!({"apiVersion": "mooring/v1", "kind": "Policy", "metadata": {"name": "nodes"},
        "spec": {"guardrails": {"namespaces": {"chain": {
            "hostedZones": ["ZCHAIN*"], "instanceProfiles": ["chain-*"]}}}}});
    let r = send(&api, Method::POST, "/v1/policies", &admin, &policy).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let node = |profile: &str| {
        json!({"apiVersion": "mooring/v1", "kind": "Node", "metadata": {"name": "pulse-x", "namespace": "chain"},
        "spec": {"software": {"name": "pulse", "version": "1", "artifact": "s3://pulse-artifacts/p.tar.gz"},
            "instanceType": "t3.large", "ami": "ami-1e749f67", "subnetId": "subnet-0a1b2c3d",
            "instanceProfile": profile, "logs": "cloudwatch"}})
    };
    let set = |zone: &str| {
        json!({"apiVersion": "mooring/v1", "kind": "NodeSet", "metadata": {"name": "pulse", "namespace": "chain"},
        "spec": {"replicas": 2, "discovery": {"privateZoneId": zone, "domain": "pulse.internal"},
            "template": {"software": {"name": "pulse", "version": "1", "artifact": "s3://pulse-artifacts/p.tar.gz"},
                "instanceType": "t3.large", "ami": "ami-1e749f67", "subnetId": "subnet-0a1b2c3d"}}})
    };
    let cases = [
        ("/v1/namespaces/chain/nodes", node("admin-profile"), Some("spec.instanceProfile")),
        ("/v1/namespaces/chain/nodesets", set("ZOTHERTEAM1"), Some("spec.discovery.privateZoneId")),
        ("/v1/namespaces/chain/nodes", node("chain-pulse"), None),
        ("/v1/namespaces/chain/nodesets", set("ZCHAIN01"), None),
    ];
    for (path, doc, field) in cases {
        let r = send(&api, Method::POST, path, &admin, &doc).await;
        match field {
            Some(field) => assert_eq!(violations(&r), vec![(field.to_string(), "nodes".to_string())], "{}", r.text),
            None => assert_eq!(r.status, StatusCode::CREATED, "{}", r.text),
        }
    }
    // logs: cloudwatch without a profile is refused before any policy.
    let mut bare = node("chain-pulse");
    bare["metadata"]["name"] = json!("pulse-y");
    bare["spec"].as_object_mut().unwrap().remove("instanceProfile");
    let r = send(&api, Method::POST, "/v1/namespaces/chain/nodes", &admin, &bare).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body["error"]["details"][0]["field"], "spec.instanceProfile", "{}", r.text);
}
