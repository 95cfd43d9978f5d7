//! Spec documents the tests apply, and reading them back.

use serde_json::{Value, json};

/// A Relay: an app container on port 8000 with `image`, and an OPA sidecar.
pub fn relay_yaml(name: &str, namespace: &str, image: &str) -> String {
    format!(
        r#"apiVersion: mooring/v1
kind: Relay
metadata:
  name: {name}
  namespace: {namespace}
  labels:
    app: {name}
spec:
  cluster: prod
  cpu: 512
  memory: 1024
  containers:
    - name: app
      image: {image}
      port: 8000
      env:
        LOG_LEVEL: info
      secrets:
        DB_PASSWORD: arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf
    - name: opa
      image: openpolicyagent/opa:0.68.0
      port: 8181
      essential: false
  healthCheck:
    path: /healthz
  scaling:
    min: 2
    max: 8
"#
    )
}

/// The same Relay as [`relay_yaml`], as JSON (for the HTTP API).
pub fn relay_json(name: &str, namespace: &str, image: &str) -> Value {
    json!({
        "apiVersion": "mooring/v1",
        "kind": "Relay",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "cluster": "prod",
            "cpu": 512,
            "memory": 1024,
            "containers": [
                {"name": "app", "image": image, "port": 8000, "env": {"LOG_LEVEL": "info"},
                 "secrets": {"DB_PASSWORD": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"}},
                {"name": "opa", "image": "openpolicyagent/opa:0.68.0", "port": 8181, "essential": false}
            ],
            "healthCheck": {"path": "/healthz"},
            "scaling": {"min": 2, "max": 8}
        }
    })
}

/// A queue Worker that may scale to zero.
pub fn worker_yaml(name: &str, namespace: &str, image: &str) -> String {
    format!(
        r#"apiVersion: mooring/v1
kind: Worker
metadata:
  name: {name}
  namespace: {namespace}
spec:
  cluster: batch
  container:
    name: convert
    image: {image}
  queue:
    visibilityTimeoutSeconds: 300
    deadLetter:
      maxReceiveCount: 3
  scaling:
    min: 0
    max: 20
    queueDepthTarget: 500
"#
    )
}

/// The Worker of [`worker_yaml`] as JSON (for the HTTP API), in `cluster`.
pub fn worker_json(name: &str, namespace: &str, cluster: &str, image: &str) -> Value {
    json!({
        "apiVersion": "mooring/v1",
        "kind": "Worker",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "cluster": cluster,
            "container": {"name": "convert", "image": image},
            "queue": {"visibilityTimeoutSeconds": 300, "deadLetter": {"maxReceiveCount": 3}},
            "scaling": {"min": 0, "max": 20, "queueDepthTarget": 500}
        }
    })
}

/// The condition of `type_` in a resource's `status.conditions`.
pub fn condition<'a>(resource: &'a Value, type_: &str) -> Option<&'a Value> {
    resource.pointer("/status/conditions")?.as_array()?.iter().find(|c| c["type"] == type_)
}
