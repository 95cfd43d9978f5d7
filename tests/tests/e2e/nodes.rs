//! Nodes on moto through a real `mooring serve`: with `--node-builds local`
//! the provisioner runs as a subprocess against moto (instance, tags, data
//! volume, Replace, deletion, crashes of the controller and of the
//! provisioner); with CodeBuild, the project and builds Mooring makes.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use runners::cloud::{TAG_UID, ec2::Instance};
use serde_json::Value;
use tests::{Moto, Server, Stack, WAIT, condition, eventually};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A `/health` endpoint on loopback (moto's instances are not reachable, so
/// the server checks health here: `--node-health-host 127.0.0.1`).
async fn health_server(healthy: Arc<AtomicBool>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let port = listener.local_addr().expect("an address").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let ok = healthy.load(Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let status = if ok { "200 OK" } else { "503 Service Unavailable" };
                let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = socket.write_all(reply.as_bytes()).await;
            });
        }
    });
    port
}

fn node_yaml(ns: &str, name: &str, subnet: &str, instance_type: &str, health_port: u16) -> String {
    format!(
        r#"apiVersion: mooring/v1
kind: Node
metadata:
  name: {name}
  namespace: {ns}
spec:
  software:
    name: pulse
    version: 1.4.2
    artifact: s3://pulse-artifacts/pulse-1.4.2.tar.gz
    args: ["--p2p-port=4001", "--api-port={health_port}"]
  instanceType: {instance_type}
  ami: ami-1e749f67
  subnetId: {subnet}
  dataVolume: {{sizeGiB: 20, type: gp3}}
  ports:
    - {{name: p2p, port: 4001}}
    - {{name: api, port: {health_port}}}
  healthCheck: {{port: {health_port}, path: /health}}
"#
    )
}

async fn node(server: &Server, ns: &str, name: &str) -> Value {
    server.get_json(&format!("/v1/namespaces/{ns}/nodes/{name}")).await.unwrap_or(Value::Null)
}

async fn ready_at(server: &Server, ns: &str, name: &str, generation: i64) -> Value {
    eventually(&format!("node {name} Ready at generation {generation}"), WAIT, async || {
        let r = node(server, ns, name).await;
        let c = condition(&r, "Ready").cloned().unwrap_or(Value::Null);
        if c["status"] == "True" && c["observedGeneration"] == generation {
            Ok(r)
        } else {
            Err(format!("{}", r["status"]))
        }
    })
    .await
}

async fn running(moto: &Moto, uid: &str) -> Vec<Instance> {
    let cloud = moto.node_cloud();
    let all = cloud.ec2.instances_tagged(TAG_UID, &[uid.to_string()]).await.expect("describe instances");
    all.into_iter()
        .filter(|i| i.state == runners::cloud::ec2::InstanceState::Running)
        .filter(|i| i.tags.get("mooring:role").map(String::as_str) == Some("instance"))
        .collect()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

async fn local_server(stack: &Stack, moto: &Moto) -> Server {
    stack
        .server()
        .env("MOORING_CLOUD", "aws")
        .env("MOORING_AWS_ENDPOINT", &moto.endpoint)
        .env("MOORING_NODE_BUILDS", "local")
        .env("MOORING_NODE_HEALTH_HOST", "127.0.0.1")
        .env("MOORING_POLL_SECONDS", "0.5")
        .env("MOORING_PROVISION_POLL_MS", "200")
        .env("MOORING_LEASE_SECONDS", "2")
        .start()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_with_local_builds_on_moto() {
    let moto = Moto::connect().await;
    let subnet = moto.default_subnet().await;
    let port = health_server(Arc::new(AtomicBool::new(true))).await;
    let stack = Stack::new("node_with_local_builds_on_moto").await;
    let server = local_server(&stack, &moto).await;
    let ns = unique("nodes");
    let file = stack.write("node.yaml", &node_yaml(&ns, "pulse-1", &subnet, "t3.large", port));
    let file = file.to_str().expect("a UTF-8 path");

    server.cli(&["apply", "-f", file]).await.success();
    let r = ready_at(&server, &ns, "pulse-1", 1).await;
    let uid = r["metadata"]["uid"].as_str().expect("uid").to_string();
    let first = running(&moto, &uid).await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].tags["mooring:name"], format!("{ns}/pulse-1"));
    let volume = r["status"]["volumeId"].as_str().expect("volumeId in status").to_string();
    assert!(first[0].volumes.iter().any(|(_, v)| v == &volume), "{first:?}");
    assert_eq!(r["status"]["build"]["state"], "SUCCEEDED", "{r:#}");

    // A snapshot on request: taken by the controller, tagged as the node's.
    server
        .cli(&["node", "snapshot", "pulse-1", "-n", &ns, "--wait"])
        .await
        .success()
        .stdout_has(&format!("snapshot of {volume} requested"))
        .stdout_has("completed");
    let snapshots = moto.node_cloud().snapshots;
    let taken = snapshots.snapshots_tagged("mooring:uid", std::slice::from_ref(&uid)).await.expect("snapshots");
    assert_eq!(taken.len(), 1, "{taken:?}");
    assert_eq!(taken[0].volume_id, volume);
    let r = node(&server, &ns, "pulse-1").await;
    assert_eq!(r["status"]["backup"]["lastGood"]["id"], taken[0].id.as_str(), "{r:#}");

    // Replace: exactly one running instance, the same data volume.
    stack.write("node.yaml", &node_yaml(&ns, "pulse-1", &subnet, "t3.xlarge", port));
    server.cli(&["apply", "-f", file]).await.success();
    ready_at(&server, &ns, "pulse-1", 2).await;
    let now = running(&moto, &uid).await;
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now[0].id, first[0].id);
    assert_eq!(now[0].instance_type, "t3.xlarge");
    assert!(now[0].volumes.iter().any(|(_, v)| v == &volume), "the data volume moved: {now:?}");

    // Delete: terminated; the volume is kept (deleteOnNodeDelete defaults to false).
    server.cli(&["delete", "node", "pulse-1", "-n", &ns, "--wait", "--timeout", "60s"]).await.success();
    assert!(running(&moto, &uid).await.is_empty());
    let cloud = moto.node_cloud();
    let kept = cloud.ec2.volumes_tagged("mooring:released-from", &[format!("{ns}/pulse-1")]).await.expect("volumes");
    assert_eq!(kept.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(), [volume.as_str()]);
}

/// The directory of a local build (`<cache>/builds/<token>`), once it exists.
async fn build_dir(stack: &Stack, server: &Server, ns: &str, name: &str) -> PathBuf {
    eventually("a local build to start", WAIT, async || {
        let r = node(server, ns, name).await;
        let token = r["status"]["build"]["token"].as_str().ok_or("no build intent yet")?.to_string();
        let dir = stack.dir.join("cache/builds").join(&token);
        if dir.join("pid").exists() { Ok(dir) } else { Err(format!("no {}", dir.display())) }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_of_the_controller_and_the_provisioner_leave_one_instance() {
    let moto = Moto::connect().await;
    let subnet = moto.default_subnet().await;
    let port = health_server(Arc::new(AtomicBool::new(true))).await;
    let stack = Stack::new("node_crashes_on_moto").await;
    let mut server = local_server(&stack, &moto).await;
    let ns = unique("crash");

    // The controller dies right after starting a build (before or after it
    // recorded the build id); the restarted one finds the build by its token.
    let file = stack.write("a.yaml", &node_yaml(&ns, "a", &subnet, "t3.large", port));
    server.cli(&["apply", "-f", file.to_str().expect("a UTF-8 path")]).await.success();
    build_dir(&stack, &server, &ns, "a").await;
    server.kill();
    server.restart().await;
    let r = ready_at(&server, &ns, "a", 1).await;
    let uid = r["metadata"]["uid"].as_str().expect("uid").to_string();
    assert_eq!(running(&moto, &uid).await.len(), 1);

    // The provisioner dies mid-build: the build fails, a new one converges.
    let file = stack.write("b.yaml", &node_yaml(&ns, "b", &subnet, "t3.large", port));
    server.cli(&["apply", "-f", file.to_str().expect("a UTF-8 path")]).await.success();
    let dir = build_dir(&stack, &server, &ns, "b").await;
    let pid = std::fs::read_to_string(dir.join("pid")).expect("pid").trim().to_string();
    let _ = std::process::Command::new("kill").args(["-KILL", &pid]).status();
    let r = ready_at(&server, &ns, "b", 1).await;
    let uid = r["metadata"]["uid"].as_str().expect("uid").to_string();
    assert_eq!(running(&moto, &uid).await.len(), 1, "exactly one instance after the provisioner was killed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_builds_in_codebuild_on_moto() {
    let moto = Moto::connect().await;
    let subnet = moto.default_subnet().await;
    let stack = Stack::new("node_codebuild_on_moto").await;
    let server = stack
        .server()
        .env("MOORING_CLOUD", "aws")
        .env("MOORING_AWS_ENDPOINT", &moto.endpoint)
        .env("MOORING_NODE_BUILDS", "codebuild")
        .env("MOORING_POLL_SECONDS", "0.5")
        .start()
        .await;
    let ns = unique("cb");
    let project = format!("prov-{ns}");
    let yaml = node_yaml(&ns, "pulse", &subnet, "t3.large", 8080)
        .replace("  healthCheck:", &format!("  provisioner: {{codebuildProject: {project}}}\n  healthCheck:"));
    let file = stack.write("node.yaml", &yaml);
    server.cli(&["apply", "-f", file.to_str().expect("a UTF-8 path")]).await.success();

    // moto reports every build SUCCEEDED at once and runs nothing, so no
    // instance appears: after three such builds Mooring stops asking for more
    // and says why (Degraded, BuildFailed), instead of starting builds forever.
    let r = eventually("the builds followed to an honest Degraded", WAIT, async || {
        let r = node(&server, &ns, "pulse").await;
        let c = condition(&r, "Degraded").cloned().unwrap_or(Value::Null);
        let p = condition(&r, "Progressing").cloned().unwrap_or(Value::Null);
        if c["status"] == "True" && c["reason"] == "BuildFailed" && p["reason"] == "BuildFailed" {
            Ok(r)
        } else {
            Err(format!("{}", r["status"]))
        }
    })
    .await;
    let b = &r["status"]["build"];
    assert_eq!(
        (b["action"].as_str(), b["state"].as_str(), b["sequence"].as_u64()),
        (Some("apply"), Some("SUCCEEDED"), Some(3)),
        "{r:#}"
    );
    assert!(b["message"].as_str().is_some_and(|m| m.contains("no instance is tagged")), "{r:#}");
    assert!(b["id"].as_str().is_some_and(|id| id.starts_with(&format!("{project}:"))), "{r:#}");
    let cloud = moto.node_cloud();
    let p = cloud.builds.project(&project).await.expect("project").expect("the project exists");
    assert_eq!(p.buildspec.as_deref(), Some(runners::workload::BUILDSPEC));
    let events = server.get_json(&format!("/v1/namespaces/{ns}/nodes/pulse/events")).await.expect("events");
    let reasons: Vec<&str> =
        events["items"].as_array().into_iter().flatten().filter_map(|e| e["reason"].as_str()).collect();
    assert!(reasons.contains(&"BuildStarted") && reasons.contains(&"BuildSucceeded"), "{reasons:?}");

    // Deleting starts a destroy build; once it succeeded (and nothing is
    // tagged with the node's uid), the node is gone.
    server.cli(&["delete", "node", "pulse", "-n", &ns, "--wait", "--timeout", "60s"]).await.success();
}
