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

/// A NodeSet member taking back its predecessor's volume: a build that does
/// not see its own claim yet (a stale read by the node's uid) finds the volume
/// again by its release mark, and nothing beside the claimed volume is
/// deleted as a duplicate.
#[tokio::test(start_paused = true)]
async fn a_volume_taken_back_from_a_predecessor_is_found_again_and_never_deleted() {
    let sim = SimCloud::new(SimConfig { seed: 5, faults: FaultMix::none(), ..Default::default() });
    let (ec2, targets) = (sim.ec2(), sim.target_groups());
    let p = Provisioner::new(ec2.as_ref(), targets.as_ref(), ProvisionerConfig::default());
    let mut req = request(1, "t3.large");
    req.owner = Some("set-uid".into());
    let zone = ec2.subnet_zone(&req.spec.subnet_id).await.unwrap();
    let volume = |tags: &[(&str, &str)], token: &str| VolumeInput {
        availability_zone: zone.clone(),
        size_gib: 50,
        volume_type: "gp3".into(),
        iops: None,
        tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        snapshot_id: None,
        client_token: token.into(),
    };
    // The predecessor's volume, released when it was scaled away.
    let kept = ec2
        .create_volume(&volume(
            &[(TAG_ROLE, "data"), (TAG_OWNER, "set-uid"), (TAG_RELEASED_FROM, "chain/pulse-1")],
            "predecessor",
        ))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;

    // A build claims it and fails before attaching it; the next build's read
    // by the node's uid may not show the claim, yet it finds the volume again.
    let claimed = p.reclaim(&req, &zone).await.unwrap().expect("the predecessor's volume");
    assert_eq!(claimed.id, kept.id);
    let again = p.reclaim(&req, &zone).await.unwrap().expect("found again by its release mark");
    assert_eq!(again.id, kept.id);

    // Another volume beside it (an empty one made by an endpoint that
    // ignores client tokens, or one an earlier instance used: the
    // provisioner cannot tell): the taken-back one is used, and neither is
    // deleted.
    let empty = ec2.create_volume(&volume(&[(TAG_ROLE, "data"), (TAG_UID, &req.uid)], "extra")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let used = p.ensure_volume(&req, &zone).await.unwrap();
    assert_eq!(used.id, kept.id);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let ids: Vec<String> = sim.volumes().into_iter().map(|v| v.id).collect();
    assert!(ids.contains(&kept.id) && ids.contains(&empty.id), "{ids:?}");

    // The whole build attaches it, and then it is no longer marked released.
    p.run(&req).await.unwrap();
    let now = sim.volumes().into_iter().find(|v| v.id == kept.id).expect("the data volume");
    assert!(now.attached_to.is_some(), "{now:?}");
    assert!(!now.tags.contains_key(TAG_RELEASED_FROM), "{now:?}");
    assert_eq!(now.tags.get(TAG_UID), Some(&req.uid));
}
