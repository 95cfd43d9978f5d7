//! Every validation rule, with a document that breaks it and one that passes.

use api_types::{FieldError, Kind, parse_documents, validate_document};
use serde_json::{Value, json};

fn node() -> Value {
    json!({
        "apiVersion": "mooring/v1",
        "kind": "Node",
        "metadata": {"name": "pulse-1", "labels": {"app": "pulse"}},
        "spec": {
            "software": {"name": "pulse", "version": "1.4.2", "artifact": "s3://pulse-artifacts/pulse-1.4.2.tar.gz"},
            "instanceType": "t3.large",
            "ami": "ami-1e749f67",
            "subnetId": "subnet-0a1b2c3d",
            "securityGroupIds": ["sg-0a1b2c3d"],
            "dataVolume": {"sizeGiB": 200, "type": "gp3", "iops": 3000},
            "ports": [{"name": "p2p", "port": 4001}, {"name": "api", "port": 8080}],
            "healthCheck": {"port": 8080, "path": "/health"},
            "env": {"RUST_LOG": "info"}
        }
    })
}

fn relay() -> Value {
    json!({
        "apiVersion": "mooring/v1",
        "kind": "Relay",
        "metadata": {"name": "gateway", "namespace": "payments"},
        "spec": {
            "cluster": "prod",
            "cpu": 512,
            "memory": 1024,
            "containers": [
                {"name": "app", "image": "public.ecr.aws/acme/gateway:2.1.0", "port": 8000,
                 "secrets": {"DB_PASSWORD": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"}},
                {"name": "opa", "image": "openpolicyagent/opa:0.68.0", "port": 8181, "essential": false}
            ],
            "executionRoleArn": "arn:aws:iam::123456789012:role/gateway-exec",
            "network": {"subnets": ["subnet-0a1b2c3d"], "securityGroups": ["sg-0a1b2c3d"]},
            "loadBalancer": {"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/gw/0123456789abcdef", "containerPort": 8000},
            "healthCheck": {"path": "/healthz"},
            "scaling": {"min": 2, "max": 8}
        }
    })
}

fn worker() -> Value {
    json!({
        "apiVersion": "mooring/v1",
        "kind": "Worker",
        "metadata": {"name": "converter"},
        "spec": {
            "cluster": "batch",
            "container": {"name": "convert", "image": "ghcr.io/acme/proton-beam:0.9"},
            "queue": {"visibilityTimeoutSeconds": 300, "deadLetter": {"maxReceiveCount": 3}},
            "scaling": {"min": 0, "max": 20, "queueDepthTarget": 500}
        }
    })
}

/// RFC 7386 merge patch, enough for building test documents.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

fn errors(doc: Value) -> Vec<FieldError> {
    match validate_document(doc) {
        Ok(_) => vec![],
        Err(e) => e.0,
    }
}

fn with(base: Value, patch: Value) -> Value {
    let mut d = base;
    merge(&mut d, &patch);
    d
}

#[track_caller]
fn assert_refused(doc: Value, field: &str, needle: &str) {
    let errs = errors(doc);
    assert!(
        errs.iter().any(|e| e.field == field && e.message.contains(needle)),
        "expected a violation at {field} containing {needle:?}, got {errs:#?}"
    );
}

#[track_caller]
fn assert_accepted(doc: Value) {
    let errs = errors(doc);
    assert!(errs.is_empty(), "expected no violation, got {errs:#?}");
}

#[test]
fn the_example_documents_are_valid() {
    assert_accepted(node());
    assert_accepted(relay());
    assert_accepted(worker());
}

#[test]
fn defaults_are_filled_in() {
    let r = validate_document(worker()).unwrap();
    let spec = r.spec_value();
    assert_eq!(spec["cpu"], 256);
    assert_eq!(spec["memory"], 512);
    assert_eq!(spec["scaling"]["queueDepthTarget"], 500);
    assert!(spec["scaling"].get("cpuTargetPercent").is_none(), "a worker scales on CPU only when asked");
    assert_eq!(spec["scaling"]["scaleInAfterIdleSeconds"], 600);
    assert_eq!(spec["queue"]["messageRetentionSeconds"], 345600);
    assert_eq!(spec["deletionPolicy"], "Delete");
    assert_eq!(r.metadata().namespace, "default");
    let r = validate_document(node()).unwrap();
    assert_eq!(r.spec_value()["updateStrategy"], "Replace");
    assert_eq!(r.spec_value()["provisioner"]["codebuildProject"], "mooring-node-provisioner");
}

#[test]
fn api_version_and_kind_must_be_known() {
    assert_refused(with(node(), json!({"apiVersion": "v1"})), "apiVersion", "unsupported apiVersion");
    let mut d = node();
    d.as_object_mut().unwrap().remove("apiVersion");
    assert_refused(d, "apiVersion", "is required");
    assert_refused(with(node(), json!({"kind": "Pod"})), "kind", "unknown kind");
    assert_refused(json!([1, 2]), "", "must be an object");
}

#[test]
fn names_are_dns_1123_labels() {
    for bad in ["Pulse", "pulse_1", "-pulse", "pulse-", "a.b", ""] {
        let errs = errors(with(node(), json!({"metadata": {"name": bad}})));
        assert!(errs.iter().any(|e| e.field == "metadata.name"), "{bad:?} accepted: {errs:?}");
    }
    let long = "a".repeat(64);
    assert_refused(with(node(), json!({"metadata": {"name": long}})), "metadata.name", "at most 63");
    assert_refused(with(node(), json!({"metadata": {"namespace": "Prod"}})), "metadata.namespace", "DNS-1123");
    assert_accepted(with(node(), json!({"metadata": {"name": "a".repeat(63), "namespace": "team-7"}})));
    let mut d = node();
    d["metadata"].as_object_mut().unwrap().remove("name");
    assert_refused(d, "metadata.name", "is required");
}

#[test]
fn labels_must_be_label_shaped() {
    assert_refused(
        with(node(), json!({"metadata": {"labels": {"bad key!": "x"}}})),
        "metadata.labels.bad key!",
        "label key",
    );
    assert_refused(
        with(node(), json!({"metadata": {"labels": {"team": "not ok"}}})),
        "metadata.labels.team",
        "label value",
    );
    assert_accepted(with(
        node(),
        json!({"metadata": {"labels": {"mooring/managed-by": "gitops", "app.kubernetes.io/name": "x"}}}),
    ));
}

#[test]
fn unknown_fields_are_refused_everywhere() {
    assert_refused(with(node(), json!({"spec": {"instanceTyp": "t3.large"}})), "spec.instanceTyp", "unknown field");
    assert_refused(with(node(), json!({"metadata": {"lables": {}}})), "metadata.lables", "unknown field");
    assert_refused(with(relay(), json!({"spec": {"scaling": {"maxx": 3}}})), "spec.scaling.maxx", "unknown field");
    let mut d = relay();
    d["spec"]["containers"][1]["imagePullPolicy"] = json!("Always");
    assert_refused(d, "spec.containers[1].imagePullPolicy", "unknown field");
    assert_refused(with(node(), json!({"extra": 1})), "extra", "unknown field");
}

#[test]
fn types_and_required_fields() {
    assert_refused(with(relay(), json!({"spec": {"scaling": {"min": "two"}}})), "spec.scaling.min", "integer");
    assert_refused(with(relay(), json!({"spec": {"scaling": {"min": -1}}})), "spec.scaling.min", "≥ 0");
    let mut d = relay();
    d["spec"].as_object_mut().unwrap().remove("cluster");
    assert_refused(d, "spec.cluster", "is required");
    assert_refused(
        with(node(), json!({"spec": {"updateStrategy": "Rolling"}})),
        "spec.updateStrategy",
        "must be one of",
    );
    assert_refused(with(relay(), json!({"spec": {"containers": []}})), "spec.containers", "at least 1");
}

#[test]
fn min_must_not_exceed_max() {
    assert_refused(
        with(relay(), json!({"spec": {"scaling": {"min": 5, "max": 3}}})),
        "spec.scaling.max",
        "must be ≥ spec.scaling.min",
    );
    assert_refused(with(worker(), json!({"spec": {"scaling": {"min": 30}}})), "spec.scaling.max", "must be ≥");
    assert_accepted(with(relay(), json!({"spec": {"scaling": {"min": 3, "max": 3}}})));
    assert_accepted(with(worker(), json!({"spec": {"scaling": {"min": 0, "max": 1}}})));
}

#[test]
fn aws_native_scaling_cannot_start_from_zero() {
    assert_refused(
        with(worker(), json!({"spec": {"scaling": {"mode": "aws-native", "min": 0}}})),
        "spec.scaling.min",
        "aws-native",
    );
    assert_accepted(with(worker(), json!({"spec": {"scaling": {"mode": "aws-native", "min": 1}}})));
    assert_accepted(with(relay(), json!({"spec": {"scaling": {"mode": "aws-native"}}})));
}

#[test]
fn cpu_and_memory_must_be_an_ecs_pair() {
    assert_refused(
        with(relay(), json!({"spec": {"cpu": 256, "memory": 1536}})),
        "spec.memory",
        "not valid with cpu 256",
    );
    assert_refused(with(relay(), json!({"spec": {"cpu": 300}})), "spec.cpu", "not a Fargate CPU value");
    assert_refused(with(worker(), json!({"spec": {"cpu": 1024, "memory": 1024}})), "spec.memory", "2048 to 8192");
    assert_accepted(with(worker(), json!({"spec": {"cpu": 1024, "memory": 8192}})));
    assert_accepted(with(relay(), json!({"spec": {"cpu": 256, "memory": 2048}})));
}

#[test]
fn containers_fit_the_task_and_are_unique() {
    let mut d = relay();
    d["spec"]["containers"][0]["cpu"] = json!(400);
    d["spec"]["containers"][1]["cpu"] = json!(200);
    assert_refused(d, "spec.containers", "reserve 600 CPU units");
    let mut d = relay();
    d["spec"]["containers"][1]["name"] = json!("app");
    assert_refused(d, "spec.containers[1].name", "duplicate container name");
    let mut d = relay();
    d["spec"]["containers"][1]["port"] = json!(8000);
    assert_refused(d, "spec.containers[1].port", "already used");
    let mut d = relay();
    d["spec"]["containers"][0]["essential"] = json!(false);
    assert_refused(d, "spec.containers", "at least one container must be essential");
    let mut d = worker();
    d["spec"]["sidecars"] = json!([{"name": "convert", "image": "fluent/fluent-bit:3"}]);
    assert_refused(d, "spec.sidecars[0].name", "duplicate");
}

#[test]
fn ports_are_in_range() {
    let mut d = node();
    d["spec"]["ports"][0]["port"] = json!(70000);
    assert_refused(d, "spec.ports[0].port", "≤ 65535");
    let mut d = node();
    d["spec"]["ports"][1]["port"] = json!(0);
    assert_refused(d, "spec.ports[1].port", "≥ 1");
    let mut d = node();
    d["spec"]["ports"][1]["port"] = json!(4001);
    assert_refused(d, "spec.ports[1].port", "listed twice");
    let mut d = node();
    d["spec"]["ports"][1] = json!({"port": 4001, "protocol": "udp"});
    assert_accepted(d);
    assert_refused(
        with(relay(), json!({"spec": {"loadBalancer": {"containerPort": 0}}})),
        "spec.loadBalancer.containerPort",
        "≥ 1",
    );
}

#[test]
fn arns_are_shaped_like_arns() {
    let mut d = relay();
    d["spec"]["containers"][0]["secrets"]["DB_PASSWORD"] = json!("my-secret");
    assert_refused(d, "spec.containers[0].secrets.DB_PASSWORD", "Secrets Manager secret ARN");
    assert_refused(
        with(relay(), json!({"spec": {"executionRoleArn": "gateway-exec"}})),
        "spec.executionRoleArn",
        "IAM role ARN",
    );
    assert_refused(
        with(relay(), json!({"spec": {"taskRoleArn": "arn:aws:s3:::bucket"}})),
        "spec.taskRoleArn",
        "IAM role ARN",
    );
    assert_refused(
        with(
            relay(),
            json!({"spec": {"loadBalancer": {"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123:tg"}}}),
        ),
        "spec.loadBalancer.targetGroupArn",
        "target group ARN",
    );
    let mut d = relay();
    d["spec"]["containers"][0]["secrets"]["API_KEY"] = json!("arn:aws:ssm:eu-west-1:123456789012:parameter/gw/api-key");
    assert_accepted(d);
}

#[test]
fn ec2_ids_and_types() {
    assert_refused(with(node(), json!({"spec": {"ami": "ubuntu"}})), "spec.ami", "AMI id");
    assert_refused(with(node(), json!({"spec": {"subnetId": "subnet-xyz"}})), "spec.subnetId", "subnet id");
    assert_refused(
        with(node(), json!({"spec": {"securityGroupIds": ["sg-1"]}})),
        "spec.securityGroupIds[0]",
        "security group id",
    );
    assert_refused(with(node(), json!({"spec": {"instanceType": "large"}})), "spec.instanceType", "instance type");
    assert_refused(
        with(node(), json!({"spec": {"software": {"artifact": "ftp://x/y"}}})),
        "spec.software.artifact",
        "S3 URL",
    );
    assert_accepted(with(node(), json!({"spec": {"software": {"artifact": "ghcr.io/pulse/pulse:1.4.2"}}})));
}

#[test]
fn volumes_iops_and_sizes() {
    assert_refused(
        with(node(), json!({"spec": {"dataVolume": {"iops": 100}}})),
        "spec.dataVolume.iops",
        "3000 to 80000",
    );
    assert_refused(
        with(node(), json!({"spec": {"dataVolume": {"type": "io2", "iops": null}}})),
        "spec.dataVolume.iops",
        "required for io1",
    );
    assert_refused(
        with(node(), json!({"spec": {"dataVolume": {"type": "gp2"}}})),
        "spec.dataVolume.iops",
        "only be set",
    );
    assert_refused(
        with(node(), json!({"spec": {"dataVolume": {"type": "st1", "iops": null, "sizeGiB": 100}}})),
        "spec.dataVolume.sizeGiB",
        "125",
    );
    assert_refused(with(node(), json!({"spec": {"dataVolume": {"sizeGiB": 0}}})), "spec.dataVolume.sizeGiB", "≥ 1");
    assert_accepted(with(node(), json!({"spec": {"dataVolume": {"type": "io2", "iops": 10000}}})));
}

#[test]
fn load_balancer_must_point_at_a_listening_container() {
    assert_refused(
        with(relay(), json!({"spec": {"loadBalancer": {"containerPort": 9000}}})),
        "spec.loadBalancer.containerPort",
        "does not listen",
    );
    assert_refused(
        with(relay(), json!({"spec": {"loadBalancer": {"containerName": "nginx"}}})),
        "spec.loadBalancer.containerName",
        "no container",
    );
    assert_refused(with(relay(), json!({"spec": {"network": null}})), "spec.network", "required with a load balancer");
    assert_accepted(with(relay(), json!({"spec": {"loadBalancer": {"containerName": "opa", "containerPort": 8181}}})));
    assert_refused(
        with(relay(), json!({"spec": {"loadBalancer": null, "scaling": {"requestsPerTargetPerMinute": 1000}}})),
        "spec.scaling.requestsPerTargetPerMinute",
        "needs a loadBalancer",
    );
}

#[test]
fn env_names_and_secret_collisions() {
    let mut d = relay();
    d["spec"]["containers"][0]["env"] = json!({"1BAD": "x"});
    assert_refused(d, "spec.containers[0].env.1BAD", "environment variable name");
    let mut d = relay();
    d["spec"]["containers"][0]["env"] = json!({"DB_PASSWORD": "plain"});
    assert_refused(d, "spec.containers[0].secrets.DB_PASSWORD", "also set in env");
    assert_refused(
        with(worker(), json!({"spec": {"container": {"env": {"QUEUE_URL": "x"}}}})),
        "spec.container.env.QUEUE_URL",
        "set by Mooring",
    );
    assert_refused(
        with(node(), json!({"spec": {"env": {"BAD-NAME": "x"}}})),
        "spec.env.BAD-NAME",
        "environment variable name",
    );
}

#[test]
fn queues() {
    assert_refused(
        with(worker(), json!({"spec": {"queue": {"name": "jobs.fifo"}}})),
        "spec.queue.name",
        "must end in .fifo",
    );
    assert_refused(
        with(worker(), json!({"spec": {"queue": {"name": "jobs", "fifo": true}}})),
        "spec.queue.name",
        "must end in .fifo",
    );
    assert_refused(
        with(worker(), json!({"spec": {"queue": {"visibilityTimeoutSeconds": 50000}}})),
        "spec.queue.visibilityTimeoutSeconds",
        "≤ 43200",
    );
    assert_refused(
        with(worker(), json!({"spec": {"queue": {"deadLetter": {"maxReceiveCount": 0}}}})),
        "spec.queue.deadLetter.maxReceiveCount",
        "≥ 1",
    );
    assert_accepted(with(worker(), json!({"spec": {"queue": {"name": "jobs.fifo", "fifo": true}}})));
}

#[test]
fn deployment_settings() {
    assert_refused(
        with(relay(), json!({"spec": {"deployment": {"minHealthyPercent": 150}}})),
        "spec.deployment.minHealthyPercent",
        "≤ 100",
    );
    assert_refused(
        with(relay(), json!({"spec": {"deployment": {"maxPercent": 50}}})),
        "spec.deployment.maxPercent",
        "≥ 100",
    );
    assert_refused(
        with(relay(), json!({"spec": {"deployment": {"circuitBreaker": false}}})),
        "spec.deployment.rollback",
        "circuitBreaker",
    );
    assert_accepted(with(relay(), json!({"spec": {"deployment": {"circuitBreaker": false, "rollback": false}}})));
}

const ALTERNATE_TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/gw-green/fedcba9876543210";
const PROD_RULE: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/gw/0123456789abcdef/0123456789abcdef/0000000000000001";
const TEST_RULE: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/gw/0123456789abcdef/0123456789abcdef/0000000000000002";

/// The relay with a load balancer ready for a staged strategy.
fn staged(deployment: Value) -> Value {
    with(
        relay(),
        json!({"spec": {
            "loadBalancer": {"alternateTargetGroupArn": ALTERNATE_TG, "productionListenerRuleArn": PROD_RULE,
                             "testListenerRuleArn": TEST_RULE, "roleArn": "arn:aws:iam::123456789012:role/ecs-lb"},
            "deployment": deployment}}),
    )
}

#[test]
fn rollout_strategies_and_their_gates() {
    let checks = json!({"testUrl": "http://internal-gw.example:8443", "http": [{"path": "/health"}],
                        "alarms": ["gw-5xx"], "approval": "Manual"});
    // Accepted: each strategy with what it needs.
    assert_accepted(staged(json!({"strategy": "BlueGreen", "bakeMinutes": 10, "verify": checks})));
    assert_accepted(staged(json!({"strategy": "Canary", "canary": {"percent": 10.0, "bakeMinutes": 5}})));
    assert_accepted(staged(json!({"strategy": "Linear", "linear": {"stepPercent": 25.0, "stepBakeMinutes": 2}})));
    let doc = validate_document(staged(json!({"strategy": "Canary", "verify": {"alarms": ["a"]}}))).unwrap();
    let api_types::AnyResource::Relay(r) = doc else { panic!("a relay") };
    assert_eq!(r.spec.deployment.bake_minutes, 5, "the default bake");
    let verify = r.spec.deployment.verify.unwrap();
    assert_eq!((verify.timeout_minutes, verify.approval), (60, api_types::rollout::Approval::Automatic));

    // (patch, field, message): every combination that cannot work.
    let table: Vec<(Value, &str, &str)> = vec![
        (
            with(relay(), json!({"spec": {"loadBalancer": null, "deployment": {"strategy": "BlueGreen"}}})),
            "spec.loadBalancer",
            "is required with strategy BlueGreen",
        ),
        (
            with(relay(), json!({"spec": {"deployment": {"strategy": "BlueGreen"}}})),
            "spec.loadBalancer.alternateTargetGroupArn",
            "is required with strategy BlueGreen",
        ),
        (
            with(relay(), json!({"spec": {"deployment": {"strategy": "Linear"}}})),
            "spec.loadBalancer.productionListenerRuleArn",
            "is required",
        ),
        (
            with(relay(), json!({"spec": {"deployment": {"strategy": "Canary"}}})),
            "spec.loadBalancer.roleArn",
            "is required",
        ),
        (
            with(
                staged(json!({"strategy": "BlueGreen"})),
                json!({"spec": {"loadBalancer": {"testListenerRuleArn": null}, "deployment": {"verify": {"testUrl": "http://t.example", "http": [{"path": "/"}]}}}}),
            ),
            "spec.loadBalancer.testListenerRuleArn",
            "HTTP checks",
        ),
        (
            staged(json!({"strategy": "BlueGreen", "verify": {"http": [{"path": "/health"}]}})),
            "spec.deployment.verify.testUrl",
            "is required for HTTP checks",
        ),
        (
            with(relay(), json!({"spec": {"deployment": {"verify": {"alarms": ["a"]}}}})),
            "spec.deployment.verify",
            "needs strategy BlueGreen, Canary or Linear",
        ),
        (
            staged(json!({"strategy": "BlueGreen", "canary": {"percent": 5.0}})),
            "spec.deployment.canary",
            "only for strategy Canary",
        ),
        (staged(json!({"strategy": "Canary", "linear": {}})), "spec.deployment.linear", "only for strategy Linear"),
        (staged(json!({"strategy": "Canary", "canary": {"percent": 0.0}})), "spec.deployment.canary.percent", "≥ 0.1"),
        (
            staged(json!({"strategy": "Linear", "linear": {"stepPercent": 1.0}})),
            "spec.deployment.linear.stepPercent",
            "≥ 3",
        ),
        (staged(json!({"strategy": "BlueGreen", "bakeMinutes": 2000})), "spec.deployment.bakeMinutes", "≤ 1440"),
        (staged(json!({"strategy": "Sideways"})), "spec.deployment.strategy", "Rolling"),
        (
            staged(json!({"strategy": "BlueGreen", "verify": {"testUrl": "ftp://x", "http": [{"path": "/"}]}})),
            "spec.deployment.verify.testUrl",
            "http:// or https://",
        ),
        (
            staged(json!({"strategy": "BlueGreen", "verify": {"approval": "Maybe"}})),
            "spec.deployment.verify.approval",
            "Manual",
        ),
        (
            with(
                staged(json!({"strategy": "BlueGreen"})),
                json!({"spec": {"loadBalancer": {"alternateTargetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/gw/0123456789abcdef"}}}),
            ),
            "spec.loadBalancer.alternateTargetGroupArn",
            "must differ",
        ),
        (
            with(
                staged(json!({"strategy": "BlueGreen"})),
                json!({"spec": {"loadBalancer": {"productionListenerRuleArn": "rule-1"}}}),
            ),
            "spec.loadBalancer.productionListenerRuleArn",
            "listener rule ARN",
        ),
    ];
    for (doc, field, needle) in table {
        assert_refused(doc, field, needle);
    }
}

#[test]
fn every_violation_is_reported_at_once() {
    let d = with(
        relay(),
        json!({
            "metadata": {"name": "Bad_Name"},
            "spec": {"cpu": 256, "memory": 4096, "scaling": {"min": 9, "max": 2}, "bogus": true, "executionRoleArn": "nope"}
        }),
    );
    let errs = errors(d);
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    for f in ["metadata.name", "spec.bogus", "spec.executionRoleArn"] {
        assert!(fields.contains(&f), "missing {f} in {fields:?}");
    }
    // The schema pass found problems; the rule pass still ran where it could.
    let rule_errs =
        errors(with(relay(), json!({"spec": {"cpu": 256, "memory": 4096, "scaling": {"min": 9, "max": 2}}})));
    let rule_fields: Vec<&str> = rule_errs.iter().map(|e| e.field.as_str()).collect();
    assert!(rule_fields.contains(&"spec.memory") && rule_fields.contains(&"spec.scaling.max"), "{rule_fields:?}");
}

#[test]
fn explicit_nulls_count_as_absent() {
    assert_accepted(with(worker(), json!({"spec": {"sidecars": null}})));
    let mut d = worker();
    d["spec"]["network"] = Value::Null;
    assert_accepted(d);
}

#[test]
fn yaml_documents_validate_like_json() {
    let text = r#"
apiVersion: mooring/v1
kind: Worker
metadata:
  name: converter
spec:
  cluster: batch
  container:
    name: convert
    image: ghcr.io/acme/proton-beam:0.9
---
apiVersion: mooring/v1
kind: Relay
metadata: {name: gw}
spec:
  cluster: prod
  containers: [{name: app, image: "nginx:1.27", port: 80}]
  scaling: {min: 1, max: 2}
"#;
    let docs = parse_documents(text).unwrap();
    let kinds: Vec<Kind> = docs.into_iter().map(|d| validate_document(d).unwrap().kind()).collect();
    assert_eq!(kinds, vec![Kind::Worker, Kind::Relay]);
}

#[test]
fn strings_postgres_cannot_store_are_refused_with_their_path() {
    let mut doc = relay();
    doc["metadata"]["annotations"] = json!({"note": "a\u{0}b", "bad\u{0}key": "x"});
    doc["spec"]["containers"][0]["env"] = json!({"MODE": "x\u{0}"});
    let errors = validate_document(doc).unwrap_err().0;
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    for expected in ["metadata.annotations.note", "metadata.annotations.bad\\u0000key", "spec.containers[0].env.MODE"] {
        assert!(fields.contains(&expected), "{expected} missing from {fields:?}");
    }
    assert!(errors.iter().any(|e| e.message.contains("NUL")), "{errors:?}");
}

#[test]
fn messages_that_help() {
    // A mistyped field names the field it probably meant.
    let errs = errors(with(relay(), json!({"spec": {"scalling": {"max": 3}}})));
    assert!(
        errs.iter().any(|e| e.field == "spec.scalling" && e.message == "unknown field (did you mean \"scaling\"?)"),
        "{errs:?}"
    );
    let errs = errors(with(relay(), json!({"spec": {"scaling": {"maximum": 3}}})));
    assert!(errs.iter().any(|e| e.field == "spec.scaling.maximum" && e.message == "unknown field"), "{errs:?}");
    let mut d = relay();
    d["spec"]["containers"][0]["imagee"] = json!("x");
    let errs = errors(d);
    assert!(
        errs.iter().any(|e| e.field == "spec.containers[0].imagee" && e.message.contains("did you mean \"image\"")),
        "{errs:?}"
    );

    // An unknown field does not hide the rule errors of the same document.
    let errs = errors(with(relay(), json!({"spec": {"bogus": true, "scaling": {"min": 9, "max": 2}}})));
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    assert!(fields.contains(&"spec.bogus") && fields.contains(&"spec.scaling.max"), "{errs:?}");

    // Each error once: a wrong apiVersion is reported by one message, not also by the schema.
    let errs = errors(with(relay(), json!({"apiVersion": "mooring/v2"})));
    assert_eq!(errs.iter().filter(|e| e.field == "apiVersion").count(), 1, "{errs:?}");

    // `kind` in any case or plural, as the CLI reads it; a typo gets a suggestion.
    for kind in ["relay", "RELAY", "relays"] {
        let r = validate_document(with(relay(), json!({"kind": kind}))).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(r.kind(), api_types::Kind::Relay);
    }
    assert_refused(with(relay(), json!({"kind": "Relya"})), "kind", "unknown kind \"Relya\" (did you mean \"Relay\"?)");
}

#[test]
fn worker_capacity_and_storage() {
    assert_accepted(with(
        worker(),
        json!({"spec": {"capacity": "FARGATE_SPOT", "onDemandBase": 1, "ephemeralStorageGiB": 100}}),
    ));
    let doc = validate_document(with(worker(), json!({"spec": {"capacity": "FARGATE_SPOT"}}))).unwrap();
    let api_types::AnyResource::Worker(w) = doc else { panic!("a worker") };
    assert_eq!((w.spec.on_demand_base, w.spec.ephemeral_storage_gib), (0, None), "defaults");
    // (patch, field, message)
    let table = [
        (json!({"spec": {"onDemandBase": 2}}), "spec.onDemandBase", "only for capacity FARGATE_SPOT"),
        (json!({"spec": {"capacity": "SPOT"}}), "spec.capacity", "FARGATE_SPOT"),
        (json!({"spec": {"ephemeralStorageGiB": 20}}), "spec.ephemeralStorageGiB", "≥ 21"),
        (json!({"spec": {"ephemeralStorageGiB": 500}}), "spec.ephemeralStorageGiB", "≤ 200"),
    ];
    for (patch, field, needle) in table {
        assert_refused(with(worker(), patch), field, needle);
    }
    // Fixed once created: ECS does not move a service between launch type and capacity providers.
    let old = worker()["spec"].clone();
    let new = validate_document(with(worker(), json!({"spec": {"capacity": "FARGATE_SPOT"}}))).unwrap();
    let errs = api_types::validate::validate_update(Kind::Worker, "default", "converter", &old, &new).unwrap_err();
    assert!(errs.0.iter().any(|e| e.field == "spec.capacity" && e.message.contains("cannot change")), "{errs:?}");
    let same = validate_document(with(worker(), json!({"spec": {"ephemeralStorageGiB": 50}}))).unwrap();
    assert!(api_types::validate::validate_update(Kind::Worker, "default", "converter", &old, &same).is_ok());
}
