//! Admission and parsing costs per document, in process (no database):
//!
//! * the built-in guardrails policy judging a Relay (allowed, and refused on
//!   three references), a custom Rego policy, and both together, beside the
//!   schema validation every write already pays (the peer) and the aim of
//!   well under a millisecond per document;
//! * how long a request body that expands without bound (a YAML alias bomb, a
//!   deeply nested JSON document) takes to be refused, beside parsing an
//!   ordinary 100-document YAML stream.
//!
//! `cargo bench --workspace --bench admission` (see docs/BENCHMARKS.md).
//! `BENCH_ITERATIONS` (default 20000) evaluations per row.

use std::hint::black_box;
use std::time::{Duration, Instant};

use api_types::{AnyResource, validate_document};
use desired_state::admission::{CompiledPolicy, PolicySet};
use desired_state::store::ChangeSource;
use serde_json::{Value, json};

fn arn(service: &str, rest: &str) -> String {
    format!("arn:aws:{service}:us-east-1:123456789012:{rest}")
}

fn guardrails() -> Value {
    let team = |t: &str| {
        json!({
            "roleArns": [format!("arn:aws:iam::123456789012:role/{t}-*")],
            "secretArnPrefixes": [arn("secretsmanager", &format!("secret:{t}/"))],
            "targetGroupArns": [arn("elasticloadbalancing", &format!("targetgroup/{t}-*"))],
            "clusters": [t], "subnets": ["subnet-0a1b2c3d", "subnet-0a1b2c3e"], "securityGroups": ["sg-0a1b2c3d"],
            "codebuildProjects": ["mooring-node-provisioner"], "instanceTypes": ["t3.*", "m7g.*"], "maxReplicas": 20
        })
    };
    json!({"apiVersion": "mooring/v1", "kind": "Policy", "metadata": {"name": "guardrails"},
           "spec": {"guardrails": {"namespaces": {"team-a": team("team-a"), "team-b": team("team-b"), "team-c": team("team-c")},
                                   "otherNamespaces": {"roleArns": [], "secretArnPrefixes": []}}}})
}

fn images() -> Value {
    let rego = r#"package mooring.admission

deny contains {"field": sprintf("spec.containers[%d].image", [i]), "message": "images come from our registry"} if {
	some i, c in input.document.spec.containers
	not startswith(c.image, data.policy.registry)
}
"#;
    json!({"apiVersion": "mooring/v1", "kind": "Policy", "metadata": {"name": "images", "namespace": "team-a"},
           "spec": {"kinds": ["Relay"], "rego": rego, "data": {"registry": "public.ecr.aws/"}}})
}

fn relay(role: &str, secret: &str, tg: &str) -> Value {
    json!({"apiVersion": "mooring/v1", "kind": "Relay", "metadata": {"name": "gw", "namespace": "team-a"},
           "spec": {"cluster": "team-a", "executionRoleArn": format!("arn:aws:iam::123456789012:role/{role}"),
                    "taskRoleArn": "arn:aws:iam::123456789012:role/team-a-task",
                    "containers": [{"name": "app", "image": "public.ecr.aws/acme/gw:1", "port": 8000,
                                    "secrets": {"DB": arn("secretsmanager", &format!("secret:{secret}")),
                                                "API_KEY": arn("secretsmanager", "secret:team-a/api-key")}},
                                   {"name": "opa", "image": "public.ecr.aws/openpolicyagent/opa:0.68.0", "port": 8181, "essential": false}],
                    "network": {"subnets": ["subnet-0a1b2c3d", "subnet-0a1b2c3e"], "securityGroups": ["sg-0a1b2c3d"]},
                    "loadBalancer": {"targetGroupArn": arn("elasticloadbalancing", &format!("targetgroup/{tg}/0123456789abcdef")), "containerPort": 8000},
                    "scaling": {"min": 2, "max": 10}}})
}

fn policy(doc: Value) -> api_types::Policy {
    match validate_document(doc) {
        Ok(AnyResource::Policy(p)) => p,
        other => panic!("not a policy: {other:?}"),
    }
}

/// Mean, p50 and p99 of `f`, timed one call at a time, in microseconds.
fn measure(iterations: usize, mut f: impl FnMut()) -> (f64, f64, f64) {
    for _ in 0..iterations / 10 {
        f();
    }
    let mut samples = Vec::with_capacity(iterations);
    let start = Instant::now();
    for _ in 0..iterations {
        let t = Instant::now();
        f();
        samples.push(t.elapsed());
    }
    let total = start.elapsed();
    samples.sort();
    let at = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    (us(total) / iterations as f64, us(at(0.50)), us(at(0.99)))
}

fn row(name: &str, iterations: usize, (mean, p50, p99): (f64, f64, f64)) {
    println!("| {name} | {iterations} | {mean:.1} | {p50:.1} | {p99:.1} |");
}

fn alias_bomb() -> String {
    let mut text = format!("a0: &a0 [{}x]\n", "x, ".repeat(999));
    for i in 1..10 {
        let p = i - 1;
        text.push_str(&format!("a{i}: &a{i} [{}]\n", vec![format!("*a{p}"); 10].join(", ")));
    }
    text
}

fn main() {
    let iterations: usize = std::env::var("BENCH_ITERATIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let source = ChangeSource::api("bench");
    let allowed = validate_document(relay("team-a-exec", "team-a/db", "team-a-gw")).expect("a valid relay");
    let refused = validate_document(relay("prod-exec", "prod/db", "prod-web")).expect("a valid relay");
    let guardrails_policy = policy(guardrails());
    let images_policy = policy(images());
    let guardrails = PolicySet::compile(std::slice::from_ref(&guardrails_policy)).expect("compiles");
    let both = PolicySet::compile(&[guardrails_policy.clone(), images_policy.clone()]).expect("compiles");
    let custom = PolicySet::compile(std::slice::from_ref(&images_policy)).expect("compiles");
    assert!(guardrails.review(&allowed, &source).is_empty());
    assert_eq!(guardrails.review(&refused, &source).len(), 3);

    println!("| per document | evaluations | mean µs | p50 µs | p99 µs |");
    println!("| --- | --- | --- | --- | --- |");
    let doc = relay("team-a-exec", "team-a/db", "team-a-gw");
    row(
        "schema validation + rules (the peer: every write pays it)",
        iterations,
        measure(iterations, || {
            black_box(validate_document(black_box(doc.clone())).is_ok());
        }),
    );
    row(
        "guardrails, allowed",
        iterations,
        measure(iterations, || {
            black_box(guardrails.review(black_box(&allowed), &source));
        }),
    );
    row(
        "guardrails, refused (3 violations)",
        iterations,
        measure(iterations, || {
            black_box(guardrails.review(black_box(&refused), &source));
        }),
    );
    row(
        "custom Rego (image registry)",
        iterations,
        measure(iterations, || {
            black_box(custom.review(black_box(&allowed), &source));
        }),
    );
    row(
        "guardrails + custom Rego",
        iterations,
        measure(iterations, || {
            black_box(both.review(black_box(&allowed), &source));
        }),
    );
    let compiles = iterations / 20;
    row(
        "compiling the guardrails policy (once per policy version)",
        compiles,
        measure(compiles, || {
            black_box(CompiledPolicy::compile(&guardrails_policy).is_ok());
        }),
    );

    println!();
    println!("| body | requests | mean µs | p50 µs | p99 µs |");
    println!("| --- | --- | --- | --- | --- |");
    let bomb = alias_bomb();
    let deep = format!("{{\"kind\": \"Relay\", \"spec\": {}1{}}}", "[".repeat(5000), "]".repeat(5000));
    let stream: String = (0..100)
        .map(|i| {
            let mut d = relay("team-a-exec", "team-a/db", "team-a-gw");
            d["metadata"]["name"] = json!(format!("gw-{i}"));
            format!("---\n{}", serde_norway::to_string(&d).expect("YAML"))
        })
        .collect();
    let n = (iterations / 100).max(20);
    row(
        &format!("alias bomb ({} bytes, 10^12 values) → 400", bomb.len()),
        n,
        measure(n, || {
            assert!(api_types::parse_documents(black_box(&bomb)).is_err());
        }),
    );
    row(
        &format!("JSON nested 5000 deep ({} bytes) → 400", deep.len()),
        n,
        measure(n, || {
            assert!(api_types::parse_documents(black_box(&deep)).is_err());
        }),
    );
    row(
        &format!("100 ordinary relays, YAML ({} bytes) → parsed (the peer)", stream.len()),
        n,
        measure(n, || {
            assert_eq!(api_types::parse_documents(black_box(&stream)).map(|d| d.len()).ok(), Some(100));
        }),
    );
}
