//! What each kind references in AWS: the list admission policies judge.

use api_types::{ReferenceKind, validate_document};
use serde_json::json;

fn refs(doc: serde_json::Value) -> Vec<(String, ReferenceKind, String)> {
    validate_document(doc).unwrap().references().into_iter().map(|r| (r.field, r.kind, r.value)).collect()
}

fn owned(v: &[(&str, ReferenceKind, &str)]) -> Vec<(String, ReferenceKind, String)> {
    v.iter().map(|(f, k, x)| (f.to_string(), *k, x.to_string())).collect()
}

#[test]
fn relay_worker_and_node_references() {
    use ReferenceKind::*;
    let relay = json!({
        "apiVersion": "mooring/v1", "kind": "Relay", "metadata": {"name": "gw", "namespace": "team-a"},
        "spec": {
            "cluster": "prod", "taskRoleArn": "arn:aws:iam::123456789012:role/task",
            "executionRoleArn": "arn:aws:iam::123456789012:role/exec",
            "containers": [{"name": "app", "image": "nginx:1", "port": 80,
                            "secrets": {"DB": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"}}],
            "network": {"subnets": ["subnet-0a1b2c3d"], "securityGroups": ["sg-0a1b2c3d"]},
            "loadBalancer": {"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg/0123456789abcdef", "containerPort": 80}
        }
    });
    assert_eq!(
        refs(relay),
        owned(&[
            ("spec.cluster", Cluster, "prod"),
            ("spec.taskRoleArn", Role, "arn:aws:iam::123456789012:role/task"),
            ("spec.executionRoleArn", Role, "arn:aws:iam::123456789012:role/exec"),
            ("spec.containers[0].secrets.DB", Secret, "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"),
            ("spec.network.subnets[0]", Subnet, "subnet-0a1b2c3d"),
            ("spec.network.securityGroups[0]", SecurityGroup, "sg-0a1b2c3d"),
            (
                "spec.loadBalancer.targetGroupArn",
                TargetGroup,
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg/0123456789abcdef"
            ),
        ])
    );
    let worker = json!({
        "apiVersion": "mooring/v1", "kind": "Worker", "metadata": {"name": "w"},
        "spec": {"cluster": "batch", "container": {"name": "w", "image": "ghcr.io/acme/w:1"},
                 "sidecars": [{"name": "log", "image": "ghcr.io/acme/log:1", "essential": false,
                               "secrets": {"KEY": "arn:aws:ssm:us-east-1:123456789012:parameter/log-key"}}]}
    });
    assert_eq!(
        refs(worker),
        owned(&[
            ("spec.cluster", Cluster, "batch"),
            ("spec.sidecars[0].secrets.KEY", Secret, "arn:aws:ssm:us-east-1:123456789012:parameter/log-key"),
        ])
    );
    let node = json!({
        "apiVersion": "mooring/v1", "kind": "Node", "metadata": {"name": "n"},
        "spec": {"software": {"name": "pulse", "version": "1", "artifact": "s3://pulse-artifacts/pulse-1.tar.gz"}, "instanceType": "t3.large",
                 "ami": "ami-1e749f67", "subnetId": "subnet-0a1b2c3d", "securityGroupIds": ["sg-0a1b2c3d"]}
    });
    assert_eq!(
        refs(node),
        owned(&[
            ("spec.instanceType", InstanceType, "t3.large"),
            ("spec.subnetId", Subnet, "subnet-0a1b2c3d"),
            ("spec.securityGroupIds[0]", SecurityGroup, "sg-0a1b2c3d"),
            ("spec.provisioner.codebuildProject", CodebuildProject, "mooring-node-provisioner"),
        ])
    );
}

#[test]
fn a_policy_without_namespace_is_cluster_scoped() {
    let doc = |meta: serde_json::Value| json!({"apiVersion": "mooring/v1", "kind": "Policy", "metadata": meta, "spec": {"guardrails": {}}});
    let cluster = validate_document(doc(json!({"name": "g"}))).unwrap();
    assert_eq!(cluster.metadata().namespace, "");
    let namespaced = validate_document(doc(json!({"name": "g", "namespace": "team-a"}))).unwrap();
    assert_eq!(namespaced.metadata().namespace, "team-a");
    // Other kinds still default to `default`.
    let relay = json!({"apiVersion": "mooring/v1", "kind": "Worker", "metadata": {"name": "w"},
                       "spec": {"cluster": "c", "container": {"name": "w", "image": "x:1"}}});
    assert_eq!(validate_document(relay).unwrap().metadata().namespace, "default");
}
