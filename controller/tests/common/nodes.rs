//! What the node tests over the simulated cloud share: a cloud with fast
//! instances, a health endpoint on loopback, and a replica running the Node
//! and NodeSet reconcilers, whose builds run the provisioner in-process.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use controller::nodeset::{NodeSetConfig, NodeSets};
use desired_state::store::Store;
use runners::provision::{ProvisionExecutor, ProvisionerConfig};
use runners::sim::{FaultMix, SimCloud, SimConfig};
use runners::workload::{NodeConfig, Nodes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Options, Replica, start_replica_with};

/// A simulated cloud whose instances start, pass checks and stop in tens of ms.
pub fn sim(seed: u64) -> SimCloud {
    SimCloud::new(SimConfig {
        seed,
        faults: FaultMix::none(),
        latency: (Duration::ZERO, Duration::from_millis(1)),
        instance_start_delay: Duration::from_millis(20),
        status_check_delay: Duration::from_millis(20),
        instance_stop_delay: Duration::from_millis(20),
        volume_create_delay: Duration::from_millis(10),
        build_queue_delay: Duration::from_millis(10),
        ..Default::default()
    })
}

/// A health endpoint on loopback that answers 200 while `healthy` holds.
pub async fn health_server(healthy: Arc<AtomicBool>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let healthy = healthy.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let status = if healthy.load(Ordering::SeqCst) { "200 OK" } else { "503 Service Unavailable" };
                let _ = socket
                    .write_all(
                        format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").as_bytes(),
                    )
                    .await;
            });
        }
    });
    port
}

/// The simulated cloud and what the nodes' health checks reach.
pub struct World {
    pub cloud: SimCloud,
    pub health_port: u16,
    pub max_builds: usize,
}

impl World {
    /// A cloud from the test's seed and a health endpoint that always
    /// answers 200, with `max_builds` builds at once.
    pub async fn healthy(max_builds: usize) -> World {
        let health_port = health_server(Arc::new(AtomicBool::new(true))).await;
        World { cloud: sim(super::sim::seed()), health_port, max_builds }
    }
}

/// The instances of the node `uid` that run (its data volume's helper
/// instances, if any, are not counted).
pub fn running(cloud: &SimCloud, uid: &str) -> Vec<runners::cloud::ec2::Instance> {
    cloud
        .running_instances_tagged(runners::cloud::TAG_UID, uid)
        .into_iter()
        .filter(|i| i.tags.get("mooring:role").map(String::as_str) == Some("instance"))
        .collect()
}

/// The Node reconciler (builds run the provisioner in-process, health checks
/// go to loopback) and the NodeSet reconciler over `cloud`, with fast polls.
pub fn nodes_and_sets(store: &Store, cloud: &SimCloud, max_builds: usize) -> (Nodes, NodeSets) {
    let plain = ProvisionExecutor::simulated(
        cloud,
        ProvisionerConfig { poll: Duration::from_millis(5), timeout: Duration::from_secs(60) },
    );
    let dns = plain.dns.clone();
    let nodes = Nodes::new(
        plain,
        NodeConfig {
            poll_in_flight: Duration::from_millis(30),
            health_interval: Duration::from_secs(60),
            max_concurrent_builds: max_builds,
            health_host: Some("127.0.0.1".into()),
            ..Default::default()
        },
        Arc::new(controller::slots::StoreBuildSlots::new(store.clone())),
    );
    let sets = NodeSets::new(
        store.clone(),
        dns,
        NodeSetConfig { poll: Duration::from_millis(30), resync: Duration::from_secs(1) },
    );
    (nodes, sets)
}

/// A replica running the Node reconciler (builds in-process) and the NodeSet
/// reconciler, with fast polls.
pub fn start(store: &Store, prefix: &str, w: &World) -> Replica {
    let (nodes, sets) = nodes_and_sets(store, &w.cloud, w.max_builds);
    let reconcilers = controller::workloads::reconcilers(None, Some(nodes), Some(sets));
    let opts =
        Options { lease: Duration::from_secs(2), renew: Duration::from_millis(500), workers: 4, ..Default::default() };
    start_replica_with(store, prefix, "node-replica", reconcilers, &opts)
}
