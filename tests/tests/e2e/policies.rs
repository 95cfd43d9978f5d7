//! Admission policies through the real binary: the guardrails policy keeps a
//! namespace-scoped token to its namespace's AWS resources, over HTTP and
//! through the CLI, dry runs included; `policy test` and `policy audit`
//! evaluate locally; a Policy change lands in the signed history.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::Stack;

const ACCOUNT: &str = "123456789012";

const GUARDRAILS: &str = r#"apiVersion: mooring/v1
kind: Policy
metadata:
  name: guardrails
spec:
  guardrails:
    namespaces:
      team-a:
        roleArns: ["arn:aws:iam::123456789012:role/team-a-*"]
        secretArnPrefixes: ["arn:aws:secretsmanager:us-east-1:123456789012:secret:team-a/"]
        targetGroupArns: ["arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/team-a-*"]
        clusters: [default]
        maxReplicas: 8
"#;

/// A relay in team-a that uses this role, secret and target group.
fn relay(name: &str, role: &str, secret: &str, target_group: &str) -> String {
    format!(
        r#"apiVersion: mooring/v1
kind: Relay
metadata: {{name: {name}, namespace: team-a}}
spec:
  cluster: default
  executionRoleArn: arn:aws:iam::{ACCOUNT}:role/{role}
  containers:
    - name: app
      image: public.ecr.aws/acme/gw:1
      port: 8000
      secrets: {{DB: "arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{secret}"}}
  network: {{subnets: [subnet-0a1b2c3d]}}
  loadBalancer:
    targetGroupArn: arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:targetgroup/{target_group}/0123456789abcdef
    containerPort: 8000
  scaling: {{min: 1, max: 4}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guardrails_over_http_and_the_cli() {
    let stack = Stack::new("policies_guardrails").await;
    let server = stack.server().start().await;
    let path = |p: &std::path::Path| p.to_str().expect("a UTF-8 path").to_string();

    // Before any policy, team-a's relay with production's role is stored (the
    // single-team install behaves as before).
    let legacy = stack.write("legacy.yaml", &relay("legacy", "prod-exec", "team-a/db", "team-a-gw"));
    server.cli(&["apply", "-f", &path(&legacy)]).await.success();

    // The platform admin applies the guardrails; a team-a token cannot.
    let team_a = server.cli(&["token", "create", "--name", "team-a", "--scope", "write:team-a"]).await;
    let team_a = team_a.success().stdout.trim().to_string();
    let policy = stack.write("guardrails.yaml", GUARDRAILS);
    server.cli_as(&team_a, &["apply", "-f", &path(&policy)]).await.failure().stderr_has("cluster-wide");
    server.cli(&["apply", "-f", &path(&policy)]).await.success().stdout_has("policy.mooring/");
    server.cli(&["get", "policies"]).await.success().stdout_has("guardrails");

    // Outside team-a's lists: refused with the field path and the policy's name,
    // over HTTP, and the store is unchanged.
    let cases = [
        ("role", relay("gw", "prod-exec", "team-a/db", "team-a-gw"), "spec.executionRoleArn"),
        ("secret", relay("gw", "team-a-exec", "payments/db", "team-a-gw"), "spec.containers[0].secrets.DB"),
        ("target group", relay("gw", "team-a-exec", "team-a/db", "prod-web"), "spec.loadBalancer.targetGroupArn"),
    ];
    for (what, doc, field) in &cases {
        for (dry_run, path) in [(false, "/v1/namespaces/team-a/relays"), (true, "/v1/apply?dryRun=true")] {
            let resp = server
                .http(Method::POST, path)
                .bearer_auth(&team_a)
                .header("Content-Type", "application/yaml")
                .body(doc.clone())
                .send()
                .await
                .expect("POST");
            assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY, "{what}, dry run {dry_run}");
            let body: Value = resp.json().await.expect("a JSON error");
            assert_eq!(body["error"]["code"], "PolicyViolation", "{body:#}");
            let detail = &body["error"]["details"][0];
            let expected = if dry_run { format!("items[0].{field}") } else { field.to_string() };
            assert_eq!(detail["field"], json!(expected), "{what}: {body:#}");
            assert_eq!(detail["policy"], "guardrails", "{what}: {body:#}");
        }
    }
    let gone = server.api(Method::GET, "/v1/namespaces/team-a/relays/gw").send().await.expect("GET");
    assert_eq!(gone.status(), StatusCode::NOT_FOUND, "a refused relay was stored");

    // The CLI says the same.
    let bad = stack.write("bad.yaml", &cases[0].1);
    server
        .cli_as(&team_a, &["apply", "-f", &path(&bad)])
        .await
        .failure()
        .stderr_has("[policy guardrails] spec.executionRoleArn");
    // Inside the lists: accepted, dry run and for real.
    let good = stack.write("good.yaml", &relay("gw", "team-a-exec", "team-a/db", "team-a-gw"));
    server.cli_as(&team_a, &["apply", "-f", &path(&good), "--dry-run"]).await.success();
    server
        .cli_as(&team_a, &["apply", "-f", &path(&good)])
        .await
        .success()
        .stdout_has("relay.mooring/team-a/gw created");

    // `policy test` evaluates locally: against the server's policies, or files.
    server
        .cli_as(&team_a, &["policy", "test", "-f", &path(&bad)])
        .await
        .code_is(2)
        .stdout_has("relay.mooring/team-a/gw: refused")
        .stdout_has("[policy guardrails] spec.executionRoleArn");
    server.cli_as(&team_a, &["policy", "test", "-f", &path(&good)]).await.success().stdout_has("allowed");
    server.cli(&["policy", "test", "-f", &path(&bad), "-p", &path(&policy)]).await.code_is(2);

    // `policy audit` names the relay stored before the policy existed.
    let audit = server.cli(&["policy", "audit"]).await;
    audit.code_is(2).stdout_has("legacy").stdout_has("spec.executionRoleArn").stdout_has("guardrails");
    assert!(!audit.stdout.contains(" gw "), "the compliant relay is not listed\n{audit}");

    // A Policy change is recorded in the signed history.
    let tighter = GUARDRAILS.replace("maxReplicas: 8", "maxReplicas: 3");
    let tighter = stack.write("tighter.yaml", &tighter);
    server.cli(&["apply", "-f", &path(&tighter)]).await.success().stdout_has("configured");
    let history = server.cli(&["history", "policy", "guardrails"]).await;
    history.success().stdout_has("bootstrap");
    assert_eq!(history.stdout.lines().filter(|l| l.trim_start().starts_with(['1', '2'])).count(), 2, "{history}");
    stack.run(&["audit", "verify"]).await.success();
    // The tighter ceiling now refuses the relay's 4 replicas on its next change.
    server.cli(&["policy", "audit", "-n", "team-a"]).await.code_is(2).stdout_has("spec.scaling.max");
}
