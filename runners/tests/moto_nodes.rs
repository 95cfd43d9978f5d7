//! The node facades of the AWS SDK (`runners::aws::{ec2, codebuild, targets}`)
//! against moto, the local AWS endpoint, over HTTP with the real SDK: every
//! facade method, and the error mapping for the failures reconcilers act on.
//!
//! Needs moto at `MOORING_AWS_ENDPOINT` (default `http://127.0.0.1:4566`); start
//! it with `eval "$(deploy/local/stack.sh up)"`. Every test uses names and tag
//! values with a random suffix, so tests run in parallel and against a
//! long-lived moto.
//!
//! Where moto differs from AWS the test asserts moto's behaviour and says
//! "moto:" in a comment, with what AWS does instead (see also
//! /work/shared/LOCAL-AWS.md).

mod common;

use common::{require_moto, settings};
use std::collections::BTreeMap;

use aws_sdk_ec2::types::Filter;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use runners::cloud::codebuild::{BuildRequest, BuildState, ProjectInput};
use runners::cloud::ec2::{InstanceInput, InstanceState, VolumeInput};
use runners::cloud::{ErrorKind, NodeCloud, TAG_NAME, TAG_UID, Tags};

/// A real moto image (Ubuntu); moto accepts any id, AWS needs a real one.
const AMI: &str = "ami-1e749f67";

/// The node facades of the AWS SDK, and the raw SDK configuration for setup
/// and checks the facades do not do (default VPC, target groups, user data).
async fn moto() -> (NodeCloud, aws_config::SdkConfig) {
    let settings = settings();
    require_moto(&settings);
    let config = runners::aws::sdk_config(&settings).await;
    (runners::aws::node_cloud_from(&config), config)
}

fn suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

fn pairs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The default VPC, one of its subnets (with its zone) and its default
/// security group: moto checks that subnets and groups exist.
struct Network {
    vpc: String,
    subnet: String,
    zone: String,
    group: String,
}

async fn default_network(config: &aws_config::SdkConfig) -> Network {
    let ec2 = aws_sdk_ec2::Client::new(config);
    let vpcs = ec2.describe_vpcs().filters(Filter::builder().name("isDefault").values("true").build()).send().await;
    let vpc = vpcs.unwrap().vpcs()[0].vpc_id.clone().unwrap();
    let subnets = ec2.describe_subnets().filters(Filter::builder().name("vpc-id").values(&vpc).build()).send().await;
    let subnets = subnets.unwrap();
    let subnet = &subnets.subnets()[0];
    let groups = ec2
        .describe_security_groups()
        .filters(Filter::builder().name("vpc-id").values(&vpc).build())
        .filters(Filter::builder().name("group-name").values("default").build())
        .send()
        .await
        .unwrap();
    Network {
        vpc: vpc.clone(),
        subnet: subnet.subnet_id.clone().unwrap(),
        zone: subnet.availability_zone.clone().unwrap(),
        group: groups.security_groups()[0].group_id.clone().unwrap(),
    }
}

fn instance_input(network: &Network, uid: &str, user_data: &str) -> InstanceInput {
    InstanceInput {
        ami: AMI.into(),
        instance_type: "t3.micro".into(),
        subnet_id: network.subnet.clone(),
        security_group_ids: vec![network.group.clone()],
        user_data: user_data.into(),
        instance_profile: None,
        tags: pairs(&[(TAG_UID, uid), (TAG_NAME, "default/node-a")]),
        client_token: uuid::Uuid::new_v4().to_string(),
    }
}

/// The user data EC2 holds for an instance, decoded.
async fn user_data(config: &aws_config::SdkConfig, id: &str) -> String {
    let out = aws_sdk_ec2::Client::new(config)
        .describe_instance_attribute()
        .instance_id(id)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await
        .unwrap();
    let encoded = out.user_data().and_then(|v| v.value()).unwrap_or_default();
    String::from_utf8(BASE64.decode(encoded).unwrap()).unwrap()
}

#[tokio::test]
async fn instances_run_observe_stop_modify_start_terminate() {
    let (cloud, config) = moto().await;
    let network = default_network(&config).await;
    let uid = format!("uid-{}", suffix());
    let script = "#!/bin/sh\necho one > /tmp/mooring\n";
    let input = instance_input(&network, &uid, script);

    let run = cloud.ec2.run_instance(&input).await.unwrap();
    assert!(run.id.starts_with("i-"), "{}", run.id);
    // As in AWS, RunInstances answers `pending` (moto: `running` at the next
    // read; AWS: after a while).
    assert_eq!(run.state, InstanceState::Pending);
    assert_eq!((run.instance_type.as_str(), run.ami.as_str()), ("t3.micro", AMI));
    assert_eq!(run.subnet_id.as_deref(), Some(network.subnet.as_str()));
    assert_eq!(run.availability_zone.as_deref(), Some(network.zone.as_str()));
    assert!(run.private_ip.is_some(), "{run:?}");
    assert_eq!(run.tags, input.tags);
    assert_eq!(user_data(&config, &run.id).await, script, "user data is sent base64-encoded once");

    let other = format!("uid-{}", suffix());
    let found = cloud.ec2.instances_tagged(TAG_UID, &[uid.clone(), other.clone()]).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let found = &found[0];
    assert_eq!(
        (&found.id, found.state, &found.tags, &found.availability_zone),
        (&run.id, InstanceState::Running, &input.tags, &run.availability_zone)
    );
    // The root volume, made from the image's block device mapping.
    assert!(found.volumes.iter().all(|(device, volume)| device.starts_with("/dev/") && volume.starts_with("vol-")));
    assert!(!found.volumes.is_empty(), "moto makes a root volume from the image: {found:?}");
    let root_volumes: Vec<String> = found.volumes.iter().map(|(_, v)| v.clone()).collect();
    let root = cloud.ec2.volumes_tagged(TAG_UID, std::slice::from_ref(&uid)).await.unwrap();
    assert_eq!(
        root.iter().map(|v| v.id.clone()).collect::<Vec<_>>(),
        root_volumes,
        "the volume tag specification tags the root volume"
    );

    // The same client token again. AWS returns the instance it made; moto
    // does not honour tokens and makes a second instance, which is why callers
    // look by tag before they run an instance.
    let again = cloud.ec2.run_instance(&input).await.unwrap();
    assert_ne!(again.id, run.id, "moto: a second instance (AWS: the first one)");
    assert_eq!(cloud.ec2.instances_tagged(TAG_UID, std::slice::from_ref(&uid)).await.unwrap().len(), 2);
    cloud.ec2.terminate_instance(&again.id).await.unwrap();

    // moto: both checks `ok` at once (AWS: `initializing` for minutes).
    let health = cloud.ec2.instance_health(std::slice::from_ref(&run.id)).await.unwrap();
    assert_eq!(health.len(), 1);
    assert_eq!(health[0].instance_id, run.id);
    assert!(health[0].passed(), "{health:?}");
    assert!(cloud.ec2.instance_health(&[]).await.unwrap().is_empty(), "no ids: no call (AWS would list all)");
    let many: Vec<String> = (0..101).map(|i| format!("i-{i:017x}")).collect();
    let refused = cloud.ec2.instance_health(&many).await.unwrap_err();
    assert_eq!((refused.kind, refused.op), (ErrorKind::Invalid, "ec2:DescribeInstanceStatus"), "{refused}");

    cloud.ec2.stop_instance(&run.id).await.unwrap();
    let stopped = cloud.ec2.instances_tagged(TAG_UID, std::slice::from_ref(&uid)).await.unwrap();
    // moto: stopped at once (AWS: stopping first).
    assert_eq!(stopped.iter().map(|i| i.state).collect::<Vec<_>>(), vec![InstanceState::Stopped]);
    let health = cloud.ec2.instance_health(std::slice::from_ref(&run.id)).await.unwrap();
    assert_eq!((health[0].system_ok, health[0].instance_ok), (None, None), "not-applicable when stopped");

    cloud.ec2.modify_instance_type(&run.id, "t3.small").await.unwrap();
    let script2 = "#!/bin/sh\necho two > /tmp/mooring\n";
    cloud.ec2.modify_user_data(&run.id, script2).await.unwrap();
    assert_eq!(user_data(&config, &run.id).await, script2, "user data is replaced, encoded once");
    cloud.ec2.start_instance(&run.id).await.unwrap();
    let started = cloud.ec2.instances_tagged(TAG_UID, std::slice::from_ref(&uid)).await.unwrap();
    assert_eq!(started.len(), 1);
    assert_eq!((started[0].state, started[0].instance_type.as_str()), (InstanceState::Running, "t3.small"));

    assert_eq!(cloud.ec2.subnet_zone(&network.subnet).await.unwrap(), network.zone);
    let e = cloud.ec2.subnet_zone("subnet-0000000000000000").await.unwrap_err();
    assert_eq!((e.kind, e.op), (ErrorKind::MissingReference, "ec2:DescribeSubnets"), "{e}");
    assert!(e.message.contains("InvalidSubnetID.NotFound"), "{e}");

    let too_many: Vec<String> = (0..201).map(|i| format!("v{i}")).collect();
    let e = cloud.ec2.instances_tagged(TAG_UID, &too_many).await.unwrap_err();
    assert_eq!((e.kind, e.op), (ErrorKind::Invalid, "ec2:DescribeInstances"), "{e}");
    assert!(cloud.ec2.instances_tagged(TAG_UID, &[]).await.unwrap().is_empty());

    cloud.ec2.terminate_instance(&run.id).await.unwrap();
    // moto: terminated at once (AWS: shutting-down first); terminated
    // instances are left out.
    assert!(cloud.ec2.instances_tagged(TAG_UID, std::slice::from_ref(&uid)).await.unwrap().is_empty());

    let e = cloud.ec2.stop_instance("i-00000000000000000").await.unwrap_err();
    assert_eq!((e.kind, e.op), (ErrorKind::NotFound, "ec2:StopInstances"), "{e}");
    let bad = InstanceInput { subnet_id: "subnet-0000000000000000".into(), ..input.clone() };
    let e = cloud.ec2.run_instance(&bad).await.unwrap_err();
    assert_eq!((e.kind, e.op), (ErrorKind::MissingReference, "ec2:RunInstances"), "{e}");
}

#[tokio::test]
async fn volumes_create_attach_tag_detach_delete() {
    let (cloud, config) = moto().await;
    let network = default_network(&config).await;
    let instance = cloud.ec2.run_instance(&instance_input(&network, &format!("uid-{}", suffix()), "")).await.unwrap();
    let zone = instance.availability_zone.clone().unwrap();
    assert_eq!(user_data(&config, &instance.id).await, "", "no user data is sent as none");

    let uid = format!("uid-{}", suffix());
    let input = VolumeInput {
        availability_zone: zone.clone(),
        size_gib: 20,
        volume_type: "gp3".into(),
        iops: Some(3000),
        tags: pairs(&[(TAG_UID, &uid), (TAG_NAME, "default/node-a")]),
        snapshot_id: None,
        client_token: uuid::Uuid::new_v4().to_string(),
    };
    let volume = cloud.ec2.create_volume(&input).await.unwrap();
    assert!(volume.id.starts_with("vol-"), "{}", volume.id);
    // moto: available at once (AWS: creating first).
    assert_eq!(volume.state, "available");
    assert_eq!(
        (volume.availability_zone.as_str(), volume.size_gib, volume.attached_to.as_deref()),
        (zone.as_str(), 20, None)
    );
    assert_eq!(volume.tags, input.tags);
    assert_eq!(cloud.ec2.volumes_tagged(TAG_UID, std::slice::from_ref(&uid)).await.unwrap(), vec![volume.clone()]);

    cloud.ec2.attach_volume(&volume.id, &instance.id, "/dev/sdf").await.unwrap();
    let attached = cloud.ec2.volumes_tagged(TAG_UID, std::slice::from_ref(&uid)).await.unwrap();
    assert_eq!(
        (attached[0].state.as_str(), attached[0].attached_to.as_deref()),
        ("in-use", Some(instance.id.as_str()))
    );
    let with_volume = cloud.ec2.instances_tagged(TAG_UID, &[instance.tags[TAG_UID].clone()]).await.unwrap();
    assert!(with_volume[0].volumes.contains(&("/dev/sdf".to_string(), volume.id.clone())), "{with_volume:?}");

    let e = cloud.ec2.delete_volume(&volume.id).await.unwrap_err();
    assert_eq!((e.kind, e.op), (ErrorKind::Invalid, "ec2:DeleteVolume"), "{e}");
    assert!(e.message.contains("VolumeInUse"), "{e}");

    cloud.ec2.create_tags(&volume.id, &pairs(&[("extra", "x"), (TAG_NAME, "default/node-b")])).await.unwrap();
    cloud.ec2.delete_tags(&volume.id, &[]).await.unwrap();
    cloud.ec2.create_tags(&volume.id, &Tags::new()).await.unwrap();
    let tagged = cloud.ec2.volumes_tagged(TAG_UID, std::slice::from_ref(&uid)).await.unwrap();
    assert_eq!(tagged[0].tags, pairs(&[(TAG_UID, &uid), (TAG_NAME, "default/node-b"), ("extra", "x")]));
    cloud.ec2.delete_tags(&volume.id, &["extra".to_string()]).await.unwrap();
    let tagged = cloud.ec2.volumes_tagged(TAG_UID, std::slice::from_ref(&uid)).await.unwrap();
    assert_eq!(tagged[0].tags, pairs(&[(TAG_UID, &uid), (TAG_NAME, "default/node-b")]));

    // moto needs the instance id to detach (AWS does not) and fails without
    // one: the facade describes the volume and detaches again naming it.
    cloud.ec2.detach_volume(&volume.id, false).await.unwrap();
    let detached = cloud.ec2.volumes_tagged(TAG_UID, std::slice::from_ref(&uid)).await.unwrap();
    assert_eq!((detached[0].state.as_str(), detached[0].attached_to.as_deref()), ("available", None));

    cloud.ec2.delete_volume(&volume.id).await.unwrap();
    assert!(cloud.ec2.volumes_tagged(TAG_UID, std::slice::from_ref(&uid)).await.unwrap().is_empty());
    let e = cloud.ec2.delete_volume(&volume.id).await.unwrap_err();
    assert_eq!((e.kind, e.op), (ErrorKind::NotFound, "ec2:DeleteVolume"), "{e}");
    assert!(e.message.contains("InvalidVolume.NotFound"), "{e}");
    let e = cloud.ec2.attach_volume(&volume.id, &instance.id, "/dev/sdg").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");

    cloud.ec2.terminate_instance(&instance.id).await.unwrap();
}

fn project_input(name: &str) -> ProjectInput {
    ProjectInput {
        name: name.to_string(),
        description: "Mooring node provisioner".into(),
        buildspec: "version: 0.2\nphases:\n  build:\n    commands:\n      - mooring-provisioner\n".into(),
        image: "aws/codebuild/amazonlinux-x86_64-standard:5.0".into(),
        compute_type: "BUILD_GENERAL1_SMALL".into(),
        // moto checks the account of the role (AWS: that the role exists).
        service_role: "arn:aws:iam::123456789012:role/mooring-provisioner".into(),
        // moto: no bucket needed (AWS checks that the object exists at build time).
        source_location: format!("s3://mooring-{}/provisioner.zip", suffix()),
        timeout_minutes: 30,
        tags: pairs(&[(TAG_NAME, "mooring/provisioner")]),
    }
}

#[tokio::test]
async fn codebuild_project_and_builds() {
    let (cloud, _) = moto().await;
    let name = format!("mooring-provisioner-{}", suffix());
    assert_eq!(cloud.builds.project(&name).await.unwrap(), None);

    let input = project_input(&name);
    let created = cloud.builds.create_project(&input).await.unwrap();
    assert_eq!(created.name, name);
    assert!(created.arn.ends_with(&format!(":project/{name}")), "{}", created.arn);
    assert_eq!(created.buildspec.as_deref(), Some(input.buildspec.as_str()));
    assert_eq!(cloud.builds.project(&name).await.unwrap(), Some(created.clone()));
    let e = cloud.builds.create_project(&input).await.unwrap_err();
    assert_eq!((e.kind, e.op), (ErrorKind::AlreadyExists, "codebuild:CreateProject"), "{e}");

    // moto: UpdateProject is not implemented (a 500, retried by the SDK);
    // AWS updates the project.
    let update = ProjectInput { buildspec: format!("{}# v2\n", input.buildspec), ..input.clone() };
    let e = cloud.builds.update_project(&update).await.unwrap_err();
    assert_eq!((e.kind, e.op), (ErrorKind::Server, "codebuild:UpdateProject"), "{e}");

    let request = BuildRequest {
        project: name.clone(),
        env: pairs(&[("MOORING_ACTION", "apply"), ("MOORING_NODE", "{\"name\":\"node-a\"}")]),
        idempotency_token: uuid::Uuid::new_v4().to_string(),
    };
    let started = cloud.builds.start_build(&request).await.unwrap();
    assert!(started.id.starts_with(&format!("{name}:")), "{}", started.id);
    // moto: queued, then SUCCEEDED at the first read (nothing runs).
    assert_eq!((started.state, started.phase.as_deref()), (BuildState::InProgress, Some("QUEUED")));

    // moto: the token is ignored, a second build starts (AWS: the same build
    // within five minutes).
    let again = cloud.builds.start_build(&request).await.unwrap();
    assert_ne!(again.id, started.id, "moto: AWS would return the first build");

    let missing = format!("{name}:00000000-0000-0000-0000-000000000000");
    let builds = cloud.builds.builds(&[started.id.clone(), missing]).await.unwrap();
    assert_eq!(builds.len(), 1, "an unknown build is left out: {builds:?}");
    let build = &builds[0];
    assert_eq!(build.id, started.id);
    assert_eq!((build.state, build.phase.as_deref()), (BuildState::Succeeded, Some("COMPLETED")));
    assert!(build.logs.as_deref().is_some_and(|l| l.starts_with("https://")), "{build:?}");
    assert_eq!(build.message, None);
    assert!(cloud.builds.builds(&[]).await.unwrap().is_empty());
    let many: Vec<String> = (0..101).map(|i| format!("{name}:{i}")).collect();
    let e = cloud.builds.builds(&many).await.unwrap_err();
    assert_eq!((e.kind, e.op), (ErrorKind::Invalid, "codebuild:BatchGetBuilds"), "{e}");

    let nowhere = BuildRequest { project: format!("missing-{}", suffix()), ..request };
    let e = cloud.builds.start_build(&nowhere).await.unwrap_err();
    assert_eq!((e.kind, e.op), (ErrorKind::NotFound, "codebuild:StartBuild"), "{e}");
}

#[tokio::test]
async fn target_groups_register_health_deregister() {
    let (cloud, config) = moto().await;
    let network = default_network(&config).await;
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);
    let group = elb
        .create_target_group()
        .name(format!("mooring-{}", suffix()))
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(80)
        .vpc_id(&network.vpc)
        .target_type(aws_sdk_elasticloadbalancingv2::types::TargetTypeEnum::Instance)
        .send()
        .await
        .unwrap();
    let arn = group.target_groups()[0].target_group_arn.clone().unwrap();
    let instance = cloud.ec2.run_instance(&instance_input(&network, &format!("uid-{}", suffix()), "")).await.unwrap();

    cloud.targets.register_targets(&arn, &[(instance.id.clone(), Some(8080))]).await.unwrap();
    cloud.targets.register_targets(&arn, &[]).await.unwrap();
    let health = cloud.targets.target_health(&arn).await.unwrap();
    assert_eq!(health.len(), 1, "{health:?}");
    // moto: healthy at once, no reason (AWS: `initial` until checks pass).
    assert_eq!(
        (health[0].id.as_str(), health[0].port, health[0].state.as_str()),
        (instance.id.as_str(), Some(8080), "healthy")
    );
    assert_eq!(health[0].reason, None);

    cloud.targets.deregister_targets(&arn, &[(instance.id.clone(), Some(8080))]).await.unwrap();
    // moto: gone at once (AWS: `draining` for the deregistration delay).
    assert!(cloud.targets.target_health(&arn).await.unwrap().is_empty());

    let missing = arn.replace("targetgroup/mooring-", "targetgroup/missing-");
    let e = cloud.targets.target_health(&missing).await.unwrap_err();
    assert_eq!((e.kind, e.op), (ErrorKind::MissingReference, "elasticloadbalancing:DescribeTargetHealth"), "{e}");
    let e = cloud.targets.register_targets(&missing, &[(instance.id.clone(), None)]).await.unwrap_err();
    assert_eq!((e.kind, e.op), (ErrorKind::MissingReference, "elasticloadbalancing:RegisterTargets"), "{e}");

    cloud.ec2.terminate_instance(&instance.id).await.unwrap();
}
