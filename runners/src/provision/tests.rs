//! The provisioner's launch against the simulated cloud, which honours
//! client tokens as AWS does. The clock is paused.

use super::*;
use crate::sim::{FaultMix, SimCloud, SimConfig};

fn spec(instance_type: &str) -> NodeSpec {
    serde_json::from_value(serde_json::json!({
        "software": {"name": "pulse", "version": "1.4.2", "artifact": "s3://pulse-artifacts/pulse-1.4.2.tar.gz"},
        "instanceType": instance_type, "ami": "ami-1e749f67", "subnetId": "subnet-0a1b2c3d"
    }))
    .unwrap()
}

fn request(generation: i64, instance_type: &str) -> ProvisionRequest {
    ProvisionRequest {
        action: Action::Apply,
        token: format!("build-{generation}"),
        uid: "2f1c9a4e-0000-4000-8000-000000000001".into(),
        namespace: "chain".into(),
        name: "pulse-1".into(),
        generation,
        incarnation: 0,
        spec: spec(instance_type),
        restore_from: None,
        owner: None,
    }
}

/// Launches `req`'s shape directly: what a build does when DescribeInstances
/// does not list the node's instance (yet).
async fn launch(p: &Provisioner<'_>, req: &ProvisionRequest) -> Instance {
    let want = instance_hash(&req.namespace, &req.name, &req.spec);
    p.launch(req, &want, &base_hash(&req.spec)).await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_shape_gets_its_launched_instance_back_and_a_new_one_only_once_the_last_is_gone() {
    let sim = SimCloud::new(SimConfig { seed: 3, faults: FaultMix::none(), ..Default::default() });
    let (ec2, targets) = (sim.ec2(), sim.target_groups());
    let p = Provisioner::new(ec2.as_ref(), targets.as_ref(), ProvisionerConfig::default());
    let uid = request(1, "t3.large").uid;
    let launched = || sim.instances_launched(TAG_UID, &uid);

    // Generation 1 launches; its build fails before the instance is listed.
    // Generation 2, the same shape, gets that instance back: no second one.
    let first = launch(&p, &request(1, "t3.large")).await;
    assert_eq!(launch(&p, &request(2, "t3.large")).await.id, first.id);
    assert_eq!(launched(), 1);

    // Another shape, then back to the first once its instance is gone (a
    // rollback): a new instance, and a retried build gets that one back.
    let other = launch(&p, &request(3, "t3.xlarge")).await;
    ec2.terminate_instance(&first.id).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let back = launch(&p, &request(4, "t3.large")).await;
    assert!(back.id != first.id && back.id != other.id, "{back:?}");
    assert_eq!(launch(&p, &request(4, "t3.large")).await.id, back.id);
    assert_eq!(launched(), 3);

    // And once more: the walk goes past both gone instances.
    ec2.terminate_instance(&back.id).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let again = launch(&p, &request(6, "t3.large")).await;
    assert!(![&first.id, &other.id, &back.id].contains(&&again.id), "{again:?}");
    assert_eq!(launched(), 4);
}
