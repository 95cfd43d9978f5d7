//! A node's backups (`runners::workload::backup`) through the EC2 facade of
//! the AWS SDK, against moto over HTTP, on a short schedule driven by the
//! test's clock: the first snapshot at once, tagged with the node's uid and
//! number; the next only once `every` has passed; a request taken at once;
//! pruning to `keep`; a crash between CreateSnapshot and the status write
//! that finds the snapshot again instead of taking a second; a status that
//! went back (numbers reused) taking a new snapshot; a volume created
//! from a snapshot (a restore); and the node's snapshots deleted with it.
//!
//! Needs moto at `MOORING_AWS_ENDPOINT` (default `http://127.0.0.1:4566`).
//! moto: snapshots complete at once (AWS: `pending` first).

mod common;

use api_types::node::{BackupStatus, SnapshotRequest, VolumeBackup};
use chrono::{DateTime, Utc};
use common::{require_moto, settings};
use runners::cloud::ec2::VolumeInput;
use runners::cloud::snapshots::SnapshotState;
use runners::cloud::{TAG_UID, Tags};
use runners::workload::backup::{self, Backed, TAG_SNAPSHOT};

/// The test's clock: minute 0 is three hours ago, so that what it made
/// "at minute 80" is older than what moto makes now (moto stamps snapshots
/// with its own clock).
fn at(minutes: i64) -> DateTime<Utc> {
    static START: std::sync::LazyLock<DateTime<Utc>> =
        std::sync::LazyLock::new(|| Utc::now() - chrono::Duration::hours(3));
    *START + chrono::Duration::minutes(minutes)
}

/// A 20 GiB volume in moto's first zone, from `snapshot` if given.
fn volume_input(tags: &Tags, snapshot: Option<&str>) -> VolumeInput {
    VolumeInput {
        availability_zone: "us-east-1a".into(),
        size_gib: 20,
        volume_type: "gp3".into(),
        iops: None,
        tags: tags.clone(),
        snapshot_id: snapshot.map(str::to_string),
        client_token: uuid::Uuid::new_v4().to_string(),
    }
}

#[tokio::test]
async fn backups_are_taken_on_schedule_pruned_found_after_a_crash_and_restored() {
    let settings = settings();
    require_moto(&settings);
    let config = runners::aws::sdk_config(&settings).await;
    let cloud = runners::aws::node_cloud_from(&config);
    let snapshots = cloud.snapshots.as_ref();
    let uid = uuid::Uuid::new_v4().to_string();
    let tags = Tags::from([(TAG_UID.to_string(), uid.clone())]);
    let volume = cloud.ec2.create_volume(&volume_input(&tags, None)).await.unwrap();
    let every = VolumeBackup { every: "30m".into(), keep: 2 };
    let user_tags = Tags::from([("team".to_string(), "ledger".to_string())]);
    let node =
        Backed { uid: &uid, key: "backups/ledger", volume_id: &volume.id, spec: Some(&every), user_tags: &user_tags };
    // Two passes take a snapshot: the intent, then the create (completed at once on moto).
    let take = |status: BackupStatus, request: Option<SnapshotRequest>, now: DateTime<Utc>| {
        let node = &node;
        async move {
            let intent = backup::sync(snapshots, node, &status, request.as_ref(), now).await.unwrap();
            assert!(intent.status.in_flight.is_some(), "an intent first: {intent:?}");
            backup::sync(snapshots, node, &intent.status, request.as_ref(), now).await.unwrap()
        }
    };

    let first = take(BackupStatus::default(), None, at(0)).await;
    let good = first.status.last_good.clone().expect("completed at once on moto");
    let mine = snapshots.snapshots_tagged(TAG_UID, std::slice::from_ref(&uid)).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!((mine[0].id.as_str(), mine[0].volume_id.as_str()), (good.id.as_str(), volume.id.as_str()));
    assert_eq!(mine[0].state, SnapshotState::Completed);
    assert_eq!(mine[0].tags[TAG_SNAPSHOT], "1");
    assert_eq!(mine[0].tags["team"], "ledger", "the spec's tags too");

    // Not due within the interval: no call at all.
    let idle = backup::sync(snapshots, &node, &first.status, None, at(29)).await.unwrap();
    assert_eq!(idle.status, first.status);
    assert_eq!(idle.requeue, Some(std::time::Duration::from_secs(60)));

    // A request is taken at once; the schedule's next after 30 minutes.
    let asked = SnapshotRequest { by: "alice".into(), at: at(10) };
    let second = take(first.status.clone(), Some(asked.clone()), at(10)).await;
    assert_eq!(second.status.request_handled, Some(at(10)));
    let third = take(second.status.clone(), Some(asked), at(40)).await;
    assert_eq!(third.status.sequence, 3);
    // keep: 2: the first is gone.
    let mine = snapshots.snapshots_tagged(TAG_UID, std::slice::from_ref(&uid)).await.unwrap();
    let ids: Vec<&str> = mine.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(mine.len(), 2, "{ids:?}");
    assert!(!ids.contains(&good.id.as_str()), "{ids:?}");
    assert_eq!(third.status.kept, 2);

    // A crash after CreateSnapshot, before the status recorded its id: the
    // next pass finds it by its number and takes no second one.
    let intent = backup::sync(snapshots, &node, &third.status, None, at(80)).await.unwrap();
    let number = intent.status.in_flight.as_ref().unwrap().number.to_string();
    let mut crashed_tags = user_tags.clone();
    crashed_tags.extend([(TAG_UID.to_string(), uid.clone()), (TAG_SNAPSHOT.to_string(), number.clone())]);
    let made = snapshots.create_snapshot(&volume.id, "made before the crash", &crashed_tags).await.unwrap();
    let after = backup::sync(snapshots, &node, &intent.status, None, at(80)).await.unwrap();
    assert_eq!(after.status.last_good.as_ref().map(|s| s.id.as_str()), Some(made.id.as_str()));
    let mine = snapshots.snapshots_tagged(TAG_UID, std::slice::from_ref(&uid)).await.unwrap();
    assert_eq!(mine.iter().filter(|s| s.tags[TAG_SNAPSHOT] == number).count(), 1, "no second snapshot");
    assert_eq!(mine.len(), 2, "pruned again");

    // The node's status was lost (restored from an old backup of the store):
    // its numbering goes back, but a snapshot of a reused number from before
    // the attempt is not taken for the attempt's: it takes the next free one.
    let lost = BackupStatus { sequence: 3, ..Default::default() };
    let later = Utc::now() + chrono::Duration::hours(1);
    let asked = SnapshotRequest { by: "bob".into(), at: later };
    let again = take(lost, Some(asked), later).await;
    let good = again.status.last_good.clone().expect("a new snapshot");
    assert_ne!(good.id, made.id, "{again:?}");
    let mine = snapshots.snapshots_tagged(TAG_UID, std::slice::from_ref(&uid)).await.unwrap();
    let fresh = mine.iter().find(|s| s.id == good.id).expect("listed");
    assert_eq!(fresh.tags[TAG_SNAPSHOT], "5", "the next free number");
    assert_eq!(again.status.sequence, 5);

    // A restore: a volume created from the last good snapshot.
    let restored = cloud.ec2.create_volume(&volume_input(&tags, Some(&made.id))).await.unwrap();
    let described = aws_sdk_ec2::Client::new(&config).describe_volumes().volume_ids(&restored.id).send().await.unwrap();
    assert_eq!(described.volumes()[0].snapshot_id(), Some(made.id.as_str()));

    // The node's snapshots go with it; someone else's are left alone.
    let other = snapshots
        .create_snapshot(&volume.id, "not Mooring's", &Tags::from([(TAG_UID.to_string(), uid.clone())]))
        .await
        .unwrap();
    let source = backup::restore_source(snapshots, &uid, Some("snap-0123456789abcdef0")).await.unwrap();
    assert_eq!(source.as_deref(), Some(good.id.as_str()), "the newest completed backup comes first");
    let cleared = backup::delete_all(snapshots, &uid).await.unwrap();
    assert_eq!((cleared.deleted.len(), cleared.left.len(), cleared.pending), (2, 0, 0));
    let source = backup::restore_source(snapshots, &uid, Some("snap-0123456789abcdef0")).await.unwrap();
    assert_eq!(source.as_deref(), Some("snap-0123456789abcdef0"), "then the spec's fromSnapshot");
    let left = snapshots.snapshots_tagged(TAG_UID, std::slice::from_ref(&uid)).await.unwrap();
    assert_eq!(left.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), [other.id.as_str()]);
    snapshots.delete_snapshot(&other.id).await.unwrap();
    cloud.ec2.delete_volume(&restored.id).await.unwrap();
    cloud.ec2.delete_volume(&volume.id).await.unwrap();
}

/// The provisioner against moto: a node set's member created again takes
/// back the volume its predecessor left (released, still the set's), and a
/// node whose volume must be created starts it from the snapshot it is given.
#[tokio::test]
async fn the_provisioner_takes_back_a_members_volume_and_restores_from_a_snapshot() {
    use runners::provision::{Action, ProvisionRequest, Provisioner, ProvisionerConfig, TAG_OWNER};
    let settings = settings();
    require_moto(&settings);
    let config = runners::aws::sdk_config(&settings).await;
    let cloud = runners::aws::node_cloud_from(&config);
    let client = aws_sdk_ec2::Client::new(&config);
    let subnet = client.describe_subnets().send().await.unwrap().subnets()[0].subnet_id.clone().unwrap();
    let provisioner = Provisioner::new(
        cloud.ec2.as_ref(),
        cloud.targets.as_ref(),
        ProvisionerConfig { poll: std::time::Duration::from_millis(100), ..Default::default() },
    );
    let spec: api_types::node::NodeSpec = serde_json::from_value(serde_json::json!({
        "software": {"name": "pulse", "version": "1", "artifact": "s3://pulse-artifacts/p.tar.gz"},
        "instanceType": "t3.large", "ami": "ami-1e749f67", "subnetId": subnet,
        "dataVolume": {"sizeGiB": 20}
    }))
    .unwrap();
    let ns = format!("reclaim-{}", &uuid::Uuid::new_v4().to_string()[..8]);
    let set = uuid::Uuid::new_v4().to_string();
    let request = |action, uid: &str, owner: Option<&str>, restore_from: Option<&str>| ProvisionRequest {
        action,
        token: uuid::Uuid::new_v4().to_string(),
        uid: uid.to_string(),
        namespace: ns.clone(),
        name: "pulse-2".into(),
        generation: 1,
        incarnation: 0,
        spec: spec.clone(),
        restore_from: restore_from.map(str::to_string),
        owner: owner.map(str::to_string),
    };

    // Member pulse-2 of the set, then scaled away: its volume is kept, released.
    let first = uuid::Uuid::new_v4().to_string();
    let made = provisioner.run(&request(Action::Apply, &first, Some(&set), None)).await.unwrap();
    let volume = made.volume_id.clone().unwrap();
    provisioner.run(&request(Action::Destroy, &first, Some(&set), None)).await.unwrap();
    let kept = cloud.ec2.volumes_tagged(TAG_OWNER, std::slice::from_ref(&set)).await.unwrap();
    assert_eq!(kept.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(), [volume.as_str()]);
    assert!(!kept[0].tags.contains_key(TAG_UID), "released: {:?}", kept[0].tags);

    // Another set's member of the same name does not get it.
    let stranger = uuid::Uuid::new_v4().to_string();
    let other = provisioner
        .run(&request(Action::Apply, &stranger, Some(&uuid::Uuid::new_v4().to_string()), None))
        .await
        .unwrap();
    assert_ne!(other.volume_id.as_deref(), Some(volume.as_str()));
    provisioner.run(&request(Action::Destroy, &stranger, None, None)).await.unwrap();

    // pulse-2 again (a new node, a new uid): its old volume, now its own.
    let second = uuid::Uuid::new_v4().to_string();
    let back = provisioner.run(&request(Action::Apply, &second, Some(&set), None)).await.unwrap();
    assert_eq!(back.volume_id.as_deref(), Some(volume.as_str()));
    let tags = &cloud.ec2.volumes_tagged(TAG_UID, std::slice::from_ref(&second)).await.unwrap()[0].tags;
    assert!(!tags.contains_key("mooring:released-from"), "{tags:?}");

    // A node with nothing to take back starts from the snapshot it is given.
    let snapshot = cloud
        .snapshots
        .create_snapshot(&volume, "seed", &Tags::from([("purpose".to_string(), "seed".to_string())]))
        .await
        .unwrap();
    let third = uuid::Uuid::new_v4().to_string();
    let restored = provisioner.run(&request(Action::Apply, &third, None, Some(&snapshot.id))).await.unwrap();
    let restored = restored.volume_id.unwrap();
    let described = client.describe_volumes().volume_ids(&restored).send().await.unwrap();
    assert_eq!(described.volumes()[0].snapshot_id(), Some(snapshot.id.as_str()));

    for uid in [&second, &third] {
        provisioner.run(&request(Action::Destroy, uid, None, None)).await.unwrap();
    }
    for v in cloud.ec2.volumes_tagged("mooring:released-from", &[format!("{ns}/pulse-2")]).await.unwrap() {
        cloud.ec2.delete_volume(&v.id).await.unwrap();
    }
    cloud.snapshots.delete_snapshot(&snapshot.id).await.unwrap();
}
