//! Tests of the simulated node facades (EC2, CodeBuild, target groups). The
//! clock is paused, as in the other sim tests.

use std::collections::BTreeMap;
use std::sync::Mutex as StdMutex;
use std::time::Duration;

use async_trait::async_trait;

use super::*;
use crate::cloud::codebuild::{BuildRequest, BuildState, ProjectInput};
use crate::cloud::ec2::{InstanceInput, InstanceState, VolumeInput};
use crate::cloud::{Tags, ops};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Fast delays, no latency, no faults.
fn cfg() -> SimConfig {
    SimConfig {
        latency: (Duration::ZERO, Duration::ZERO),
        drain_delay: ms(10),
        consistency_window: ms(50),
        instance_start_delay: ms(20),
        status_check_delay: ms(40),
        instance_stop_delay: ms(20),
        volume_create_delay: ms(10),
        build_queue_delay: ms(10),
        target_healthy_delay: ms(20),
        ..SimConfig::default()
    }
}

const SUBNET_A: &str = "subnet-0a1b2c3d";

fn tags(uid: &str) -> Tags {
    [("mooring:uid".to_string(), uid.to_string())].into()
}

fn instance_input(uid: &str, token: &str) -> InstanceInput {
    InstanceInput {
        ami: "ami-0123456789abcdef0".into(),
        instance_type: "t3.micro".into(),
        subnet_id: SUBNET_A.into(),
        security_group_ids: vec!["sg-01".into()],
        user_data: "#!/bin/sh\necho hi\n".into(),
        instance_profile: None,
        tags: tags(uid),
        client_token: token.into(),
    }
}

fn volume_input(uid: &str, az: &str, token: &str) -> VolumeInput {
    VolumeInput {
        availability_zone: az.into(),
        size_gib: 20,
        volume_type: "gp3".into(),
        iops: None,
        tags: tags(uid),
        snapshot_id: None,
        client_token: token.into(),
    }
}

fn project_input(name: &str) -> ProjectInput {
    ProjectInput {
        name: name.into(),
        description: "runs mooring-provisioner".into(),
        buildspec: "version: 0.2\nphases:\n  build:\n    commands: [mooring-provisioner]\n".into(),
        image: "aws/codebuild/amazonlinux-x86_64-standard:5.0".into(),
        compute_type: "BUILD_GENERAL1_SMALL".into(),
        service_role: "arn:aws:iam::000000000000:role/mooring-provisioner".into(),
        source_location: "s3://mooring/provisioner.zip".into(),
        timeout_minutes: 60,
        tags: Tags::new(),
    }
}

fn request(project: &str, node: &str, token: &str) -> BuildRequest {
    BuildRequest {
        project: project.into(),
        env: [("MOORING_ACTION".to_string(), "apply".to_string()), ("NODE".to_string(), node.to_string())].into(),
        idempotency_token: token.into(),
    }
}

fn uid_values(uid: &str) -> Vec<String> {
    vec![uid.to_owned()]
}

/// A build that does nothing and succeeds.
struct Noop;

#[async_trait]
impl BuildExecutor for Noop {
    async fn execute(&self, _env: &BTreeMap<String, String>) -> Result<(), String> {
        Ok(())
    }
}

/// A build that takes `took`, then fails with `fail` if set; records the
/// environments it ran with.
struct Scripted {
    took: Duration,
    fail: Option<String>,
    ran: StdMutex<Vec<BTreeMap<String, String>>>,
}

impl Scripted {
    fn new(took: Duration, fail: Option<&str>) -> Arc<Scripted> {
        Arc::new(Scripted { took, fail: fail.map(str::to_owned), ran: StdMutex::new(Vec::new()) })
    }
}

#[async_trait]
impl BuildExecutor for Scripted {
    async fn execute(&self, env: &BTreeMap<String, String>) -> Result<(), String> {
        self.ran.lock().unwrap().push(env.clone());
        tokio::time::sleep(self.took).await;
        match &self.fail {
            Some(m) => Err(m.clone()),
            None => Ok(()),
        }
    }
}

/// A provisioner stand-in: launches the node's instance (by token) against
/// the same simulated account, as the real provisioner does from CodeBuild.
struct Provision(SimCloud);

#[async_trait]
impl BuildExecutor for Provision {
    async fn execute(&self, env: &BTreeMap<String, String>) -> Result<(), String> {
        let ec2 = self.0.node_cloud(Arc::new(Noop)).ec2;
        let node = env.get("NODE").ok_or("no NODE")?;
        if !ec2.instances_tagged("mooring:uid", &uid_values(node)).await.map_err(|e| e.to_string())?.is_empty() {
            return Ok(());
        }
        ec2.run_instance(&instance_input(node, &format!("{node}-1"))).await.map_err(|e| e.to_string())?;
        Ok(())
    }
}

fn node_sim(config: SimConfig) -> (SimCloud, NodeCloud) {
    let sim = SimCloud::new(config);
    let nodes = sim.node_cloud(Arc::new(Noop));
    (sim, nodes)
}

#[tokio::test(start_paused = true)]
async fn run_instance_is_idempotent_by_client_token() {
    let (sim, nodes) = node_sim(cfg());
    let a = nodes.ec2.run_instance(&instance_input("u1", "tok-1")).await.unwrap();
    assert!(a.id.starts_with("i-") && a.id.len() == 19, "{}", a.id);
    assert!(a.id[2..].chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(a.state, InstanceState::Pending);
    assert_eq!(a.availability_zone.as_deref(), Some("us-east-1a"));
    let b = nodes.ec2.run_instance(&instance_input("u1", "tok-1")).await.unwrap();
    assert_eq!(a.id, b.id, "same token, same parameters: the same instance");
    let other = InstanceInput { instance_type: "t3.large".into(), ..instance_input("u1", "tok-1") };
    let err = nodes.ec2.run_instance(&other).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(err.message.starts_with("IdempotentParameterMismatch"), "{err}");
    assert_eq!(sim.instances_launched("mooring:uid", "u1"), 1);
    // A new token is a new instance: a duplicate, which the sim lets tests see.
    let c = nodes.ec2.run_instance(&instance_input("u1", "tok-2")).await.unwrap();
    assert_ne!(a.id, c.id);
    assert_eq!(sim.instances_launched("mooring:uid", "u1"), 2);
    assert_eq!(sim.instances_launched("mooring:uid", "u2"), 0);
    assert_eq!(sim.call_count(&ops::RUN_INSTANCES), 4);
    // The same seed draws the same ids.
    let (_, again) = node_sim(cfg());
    assert_eq!(again.ec2.run_instance(&instance_input("u1", "tok-1")).await.unwrap().id, a.id);

    // Subnets: known ones have a zone, unknown ones are a missing reference.
    assert_eq!(nodes.ec2.subnet_zone("subnet-0b2c3d4e").await.unwrap(), "us-east-1b");
    assert_eq!(nodes.ec2.subnet_zone("subnet-nope").await.unwrap_err().kind, ErrorKind::MissingReference);
    let elsewhere = InstanceInput { subnet_id: "subnet-nope".into(), ..instance_input("u3", "tok-3") };
    assert_eq!(nodes.ec2.run_instance(&elsewhere).await.unwrap_err().kind, ErrorKind::MissingReference);
    let long = InstanceInput { client_token: "x".repeat(65), ..instance_input("u3", "") };
    assert_eq!(nodes.ec2.run_instance(&long).await.unwrap_err().kind, ErrorKind::Invalid);

    // Observation by tag, at most 200 values; terminated instances are left out.
    let found = nodes.ec2.instances_tagged("mooring:uid", &uid_values("u1")).await.unwrap();
    assert_eq!(found.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), vec![a.id.as_str(), c.id.as_str()]);
    let many: Vec<String> = (0..201).map(|i| format!("u{i}")).collect();
    assert_eq!(nodes.ec2.instances_tagged("mooring:uid", &many).await.unwrap_err().kind, ErrorKind::Invalid);
    assert_eq!(nodes.ec2.instances_tagged("mooring:uid", &many[..200]).await.unwrap().len(), 2);
    nodes.ec2.terminate_instance(&c.id).await.unwrap();
    tokio::time::sleep(ms(25)).await;
    let found = nodes.ec2.instances_tagged("mooring:uid", &uid_values("u1")).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(sim.instances().len(), 2, "inspection lists terminated instances too");
    // Still the same instance for its token, terminated.
    let c2 = nodes.ec2.run_instance(&instance_input("u1", "tok-2")).await.unwrap();
    assert_eq!((c2.id, c2.state), (c.id, InstanceState::Terminated));
}

#[tokio::test(start_paused = true)]
async fn instances_start_running_then_pass_status_checks() {
    let (sim, nodes) = node_sim(cfg());
    let i = nodes.ec2.run_instance(&instance_input("u1", "t")).await.unwrap();
    assert_eq!(i.private_ip, None);
    let h = nodes.ec2.instance_health(std::slice::from_ref(&i.id)).await.unwrap();
    assert_eq!((h.len(), h[0].system_ok, h[0].instance_ok), (1, None, None), "not running yet");
    tokio::time::sleep(ms(25)).await;
    let now = &nodes.ec2.instances_tagged("mooring:uid", &uid_values("u1")).await.unwrap()[0];
    assert_eq!(now.state, InstanceState::Running);
    let ip = now.private_ip.clone().unwrap();
    assert!(ip.starts_with("10.0."), "{ip}");
    let h = nodes.ec2.instance_health(std::slice::from_ref(&i.id)).await.unwrap();
    assert_eq!((h.len(), h[0].system_ok, h[0].instance_ok), (1, None, None), "initializing");
    assert!(!h[0].passed());
    tokio::time::sleep(ms(40)).await;
    let h = nodes.ec2.instance_health(std::slice::from_ref(&i.id)).await.unwrap();
    assert_eq!((h[0].system_ok, h[0].instance_ok), (Some(true), Some(true)));
    assert!(h[0].passed());
    assert_eq!(sim.running_instances_tagged("mooring:uid", "u1").len(), 1);
    assert!(sim.running_instances_tagged("mooring:uid", "u2").is_empty());
    // An id EC2 does not know fails the call, as in AWS.
    let err = nodes.ec2.instance_health(&["i-00000000000000000".to_string()]).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    let many: Vec<String> = (0..101).map(|n| format!("i-{n:017x}")).collect();
    assert_eq!(nodes.ec2.instance_health(&many).await.unwrap_err().kind, ErrorKind::Invalid);
    assert!(nodes.ec2.instance_health(&[]).await.unwrap().is_empty());
    assert_eq!(sim.call_count(&ops::DESCRIBE_INSTANCE_STATUS), 6);
}

#[tokio::test(start_paused = true)]
async fn stopped_instances_can_be_modified_and_started() {
    let (sim, nodes) = node_sim(cfg());
    let id = nodes.ec2.run_instance(&instance_input("u1", "t")).await.unwrap().id;
    let state = |sim: &SimCloud| sim.instances()[0].state;
    // Not while pending or running.
    let err = nodes.ec2.stop_instance(&id).await.unwrap_err();
    assert!(err.message.starts_with("IncorrectInstanceState"), "{err}");
    tokio::time::sleep(ms(25)).await;
    let err = nodes.ec2.modify_instance_type(&id, "t3.large").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(err.message.starts_with("IncorrectInstanceState"), "{err}");
    let err = nodes.ec2.modify_user_data(&id, "new").await.unwrap_err();
    assert!(err.message.starts_with("IncorrectInstanceState"), "{err}");

    nodes.ec2.stop_instance(&id).await.unwrap();
    assert_eq!(state(&sim), InstanceState::Stopping);
    nodes.ec2.stop_instance(&id).await.unwrap();
    assert!(nodes.ec2.start_instance(&id).await.unwrap_err().message.starts_with("IncorrectInstanceState"));
    tokio::time::sleep(ms(25)).await;
    assert_eq!(state(&sim), InstanceState::Stopped);
    assert!(sim.instances()[0].private_ip.is_some(), "a stopped instance keeps its private IP");
    nodes.ec2.modify_instance_type(&id, "t3.large").await.unwrap();
    nodes.ec2.modify_user_data(&id, "#!/bin/sh\necho v2\n").await.unwrap();
    assert_eq!(nodes.ec2.modify_instance_type(&id, "large").await.unwrap_err().kind, ErrorKind::Invalid);
    assert_eq!(sim.instance_user_data(&id).as_deref(), Some("#!/bin/sh\necho v2\n"));
    nodes.ec2.start_instance(&id).await.unwrap();
    assert_eq!(state(&sim), InstanceState::Pending);
    tokio::time::sleep(ms(25)).await;
    let i = &sim.instances()[0];
    assert_eq!((i.state, i.instance_type.as_str()), (InstanceState::Running, "t3.large"));
    // Status checks start over after a start.
    let h = nodes.ec2.instance_health(std::slice::from_ref(&id)).await.unwrap();
    assert_eq!(h[0].system_ok, None);
    assert_eq!(sim.call_count(&ops::MODIFY_INSTANCE_ATTRIBUTE), 5);

    // Out of band: stopped by someone else, then terminated.
    assert!(sim.stop_instance_out_of_band(&id));
    assert!(!sim.stop_instance_out_of_band(&id));
    assert!(sim.terminate_instance_out_of_band(&id));
    assert!(!sim.terminate_instance_out_of_band(&id));
    assert!(!sim.terminate_instance_out_of_band("i-nope"));
    assert_eq!(state(&sim), InstanceState::ShuttingDown);
    tokio::time::sleep(ms(25)).await;
    assert_eq!(state(&sim), InstanceState::Terminated);
    assert!(nodes.ec2.start_instance(&id).await.unwrap_err().message.starts_with("IncorrectInstanceState"));
    nodes.ec2.terminate_instance(&id).await.unwrap();
    assert_eq!(nodes.ec2.stop_instance("i-nope").await.unwrap_err().kind, ErrorKind::NotFound);
}

#[tokio::test(start_paused = true)]
async fn volumes_attach_in_one_zone_to_one_instance() {
    let (sim, nodes) = node_sim(cfg());
    let i1 = nodes.ec2.run_instance(&instance_input("u1", "t1")).await.unwrap().id;
    let i2 = nodes.ec2.run_instance(&instance_input("u2", "t2")).await.unwrap().id;
    let v = nodes.ec2.create_volume(&volume_input("u1", "us-east-1a", "v1")).await.unwrap();
    assert!(v.id.starts_with("vol-") && v.id.len() == 21, "{}", v.id);
    assert_eq!(v.state, "creating");
    assert_eq!(nodes.ec2.create_volume(&volume_input("u1", "us-east-1a", "v1")).await.unwrap().id, v.id);
    let err = nodes.ec2.create_volume(&volume_input("u1", "us-east-1b", "v1")).await.unwrap_err();
    assert!(err.message.starts_with("IdempotentParameterMismatch"), "{err}");
    let err = nodes.ec2.create_volume(&volume_input("u1", "eu-west-1a", "v9")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::MissingReference);
    let bad = VolumeInput { iops: Some(100), volume_type: "gp2".into(), ..volume_input("u1", "us-east-1a", "") };
    assert_eq!(nodes.ec2.create_volume(&bad).await.unwrap_err().kind, ErrorKind::Invalid);

    // Not while creating, nor to a pending instance.
    let err = nodes.ec2.attach_volume(&v.id, &i1, "/dev/sdf").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    tokio::time::sleep(ms(15)).await;
    assert_eq!(nodes.ec2.volumes_tagged("mooring:uid", &uid_values("u1")).await.unwrap()[0].state, "available");
    assert_eq!(nodes.ec2.attach_volume(&v.id, &i1, "/dev/sdf").await.unwrap_err().kind, ErrorKind::Invalid);
    tokio::time::sleep(ms(10)).await;
    // Not across zones.
    let other = nodes.ec2.create_volume(&volume_input("u3", "us-east-1b", "v3")).await.unwrap();
    tokio::time::sleep(ms(15)).await;
    let err = nodes.ec2.attach_volume(&other.id, &i1, "/dev/sdg").await.unwrap_err();
    assert!(err.message.starts_with("InvalidVolume.ZoneMismatch"), "{err}");

    nodes.ec2.attach_volume(&v.id, &i1, "/dev/sdf").await.unwrap();
    let vol = &nodes.ec2.volumes_tagged("mooring:uid", &uid_values("u1")).await.unwrap()[0];
    assert_eq!((vol.state.as_str(), vol.attached_to.as_deref()), ("in-use", Some(i1.as_str())));
    let inst = &nodes.ec2.instances_tagged("mooring:uid", &uid_values("u1")).await.unwrap()[0];
    assert_eq!(inst.volumes, vec![("/dev/sdf".to_string(), v.id.clone())]);
    // One instance only; not deletable while attached.
    let err = nodes.ec2.attach_volume(&v.id, &i2, "/dev/sdf").await.unwrap_err();
    assert!(err.message.starts_with("VolumeInUse"), "{err}");
    let err = nodes.ec2.delete_volume(&v.id).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(err.message.starts_with("VolumeInUse"), "{err}");

    nodes.ec2.detach_volume(&v.id, false).await.unwrap();
    assert_eq!(sim.volumes()[0].state, "available");
    assert!(sim.instances()[0].volumes.is_empty());
    assert_eq!(nodes.ec2.detach_volume(&v.id, true).await.unwrap_err().kind, ErrorKind::Invalid);
    nodes.ec2.attach_volume(&v.id, &i2, "/dev/sdf").await.unwrap();
    nodes.ec2.detach_volume(&v.id, true).await.unwrap();

    // Tags on volumes and instances.
    let extra: Tags = [("k".to_string(), "v".to_string())].into();
    nodes.ec2.create_tags(&v.id, &extra).await.unwrap();
    nodes.ec2.create_tags(&i1, &extra).await.unwrap();
    assert_eq!(sim.volumes()[0].tags.get("k").map(String::as_str), Some("v"));
    nodes.ec2.delete_tags(&i1, &["k".to_string(), "absent".to_string()]).await.unwrap();
    assert_eq!(sim.instances()[0].tags, tags("u1"));
    assert_eq!(nodes.ec2.create_tags("vol-nope", &extra).await.unwrap_err().kind, ErrorKind::NotFound);
    assert_eq!(nodes.ec2.delete_tags("i-nope", &[]).await.unwrap_err().kind, ErrorKind::NotFound);

    nodes.ec2.delete_volume(&v.id).await.unwrap();
    assert_eq!(sim.volumes()[0].state, "deleting");
    tokio::time::sleep(ms(15)).await;
    assert!(nodes.ec2.volumes_tagged("mooring:uid", &uid_values("u1")).await.unwrap().is_empty());
    assert_eq!(sim.volumes().len(), 1, "only the other one is left");
    assert_eq!(nodes.ec2.delete_volume(&v.id).await.unwrap_err().kind, ErrorKind::NotFound);
    assert_eq!(nodes.ec2.attach_volume("vol-nope", &i1, "/dev/sdf").await.unwrap_err().kind, ErrorKind::NotFound);
    let many: Vec<String> = (0..201).map(|i| format!("u{i}")).collect();
    assert_eq!(nodes.ec2.volumes_tagged("mooring:uid", &many).await.unwrap_err().kind, ErrorKind::Invalid);
}

#[tokio::test(start_paused = true)]
async fn a_terminated_instance_detaches_its_volumes() {
    let (sim, nodes) = node_sim(cfg());
    let id = nodes.ec2.run_instance(&instance_input("u1", "t")).await.unwrap().id;
    let v = nodes.ec2.create_volume(&volume_input("u1", "us-east-1a", "v")).await.unwrap();
    tokio::time::sleep(ms(25)).await;
    nodes.ec2.attach_volume(&v.id, &id, "/dev/sdf").await.unwrap();
    nodes.ec2.terminate_instance(&id).await.unwrap();
    assert_eq!(sim.instances()[0].state, InstanceState::ShuttingDown);
    assert_eq!(sim.volumes()[0].state, "in-use", "attached while shutting down");
    let err = nodes.ec2.attach_volume(&v.id, &id, "/dev/sdg").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    tokio::time::sleep(ms(25)).await;
    // Seen through the volume first: the instance's termination detached it.
    let vol = &nodes.ec2.volumes_tagged("mooring:uid", &uid_values("u1")).await.unwrap()[0];
    assert_eq!((vol.state.as_str(), vol.attached_to.as_deref()), ("available", None));
    let i = &sim.instances()[0];
    assert_eq!(i.state, InstanceState::Terminated);
    assert!(i.volumes.is_empty() && i.private_ip.is_none());
    assert!(nodes.ec2.instances_tagged("mooring:uid", &uid_values("u1")).await.unwrap().is_empty());
    assert!(sim.running_instances_tagged("mooring:uid", "u1").is_empty());
    // The data volume survives for the replacement instance.
    let next = nodes.ec2.run_instance(&instance_input("u1", "t-2")).await.unwrap().id;
    let err = nodes.ec2.attach_volume(&v.id, &id, "/dev/sdf").await.unwrap_err();
    assert!(err.message.contains("terminated"), "{err}");
    tokio::time::sleep(ms(25)).await;
    nodes.ec2.attach_volume(&v.id, &next, "/dev/sdf").await.unwrap();
    assert_eq!(sim.volumes()[0].attached_to.as_deref(), Some(next.as_str()));
    assert_eq!(sim.instances_launched("mooring:uid", "u1"), 2);
}

#[tokio::test(start_paused = true)]
async fn projects_are_created_once_and_updated() {
    let (sim, nodes) = node_sim(cfg());
    assert_eq!(nodes.builds.project("prov").await.unwrap(), None);
    let p = nodes.builds.create_project(&project_input("prov")).await.unwrap();
    assert_eq!(p.arn, "arn:aws:codebuild:us-east-1:000000000000:project/prov");
    let err = nodes.builds.create_project(&project_input("prov")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::AlreadyExists);
    let changed = ProjectInput { buildspec: "version: 0.2\n".into(), ..project_input("prov") };
    nodes.builds.update_project(&changed).await.unwrap();
    assert_eq!(nodes.builds.project("prov").await.unwrap().unwrap().buildspec.as_deref(), Some("version: 0.2\n"));
    assert_eq!(nodes.builds.update_project(&project_input("other")).await.unwrap_err().kind, ErrorKind::NotFound);
    let bad = ProjectInput { timeout_minutes: 1, ..project_input("bad") };
    assert_eq!(nodes.builds.create_project(&bad).await.unwrap_err().kind, ErrorKind::Invalid);
    let err = nodes.builds.start_build(&request("other", "n1", "t")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert_eq!(sim.call_count(&ops::BATCH_GET_PROJECTS), 2);
}

#[tokio::test(start_paused = true)]
async fn builds_run_their_executor_through_the_phases() {
    let sim = SimCloud::new(cfg());
    let ok = Scripted::new(ms(100), None);
    let nodes = sim.node_cloud(ok.clone());
    nodes.builds.create_project(&project_input("prov")).await.unwrap();
    let b = nodes.builds.start_build(&request("prov", "n1", "t1")).await.unwrap();
    let uuid = b.id.strip_prefix("prov:").unwrap();
    assert_eq!(uuid.split('-').map(str::len).collect::<Vec<_>>(), vec![8, 4, 4, 4, 12], "{uuid}");
    assert_eq!((b.state, b.phase.as_deref()), (BuildState::InProgress, Some("QUEUED")));
    assert_eq!(b.logs, Some(format!("sim://codebuild/{}", b.id)));
    let ids = std::slice::from_ref(&b.id);
    tokio::time::sleep(ms(7)).await;
    assert_eq!(nodes.builds.builds(ids).await.unwrap()[0].phase.as_deref(), Some("PROVISIONING"));
    assert!(ok.ran.lock().unwrap().is_empty(), "not run while queued");
    tokio::time::sleep(ms(10)).await;
    let now = &nodes.builds.builds(ids).await.unwrap()[0];
    assert_eq!((now.state, now.phase.as_deref()), (BuildState::InProgress, Some("BUILD")));
    assert_eq!(ok.ran.lock().unwrap()[0]["NODE"], "n1");
    assert_eq!(sim.builds_in_progress(), 1);
    tokio::time::sleep(ms(100)).await;
    let done = &nodes.builds.builds(ids).await.unwrap()[0];
    assert_eq!(
        (done.state, done.phase.as_deref(), done.message.as_deref()),
        (BuildState::Succeeded, Some("COMPLETED"), None)
    );
    assert_eq!(sim.builds_in_progress(), 0);
    assert_eq!(sim.builds_started(), vec![(b.id.clone(), request("prov", "n1", "t1").env)]);

    // A failing build says why.
    let failing = Scripted::new(ms(5), Some("provisioner: subnet not found"));
    let nodes = sim.node_cloud(failing);
    let f = nodes.builds.start_build(&request("prov", "n2", "t2")).await.unwrap();
    tokio::time::sleep(ms(30)).await;
    let done = &nodes.builds.builds(std::slice::from_ref(&f.id)).await.unwrap()[0];
    assert_eq!((done.state, done.phase.as_deref()), (BuildState::Failed, Some("COMPLETED")));
    assert_eq!(done.message.as_deref(), Some("provisioner: subnet not found"));

    // BatchGetBuilds: unknown ids are left out, at most 100 ids.
    let mut asked = vec!["prov:nope".to_string(), b.id.clone(), f.id.clone()];
    assert_eq!(nodes.builds.builds(&asked).await.unwrap().len(), 2);
    asked.resize(101, "prov:x".to_string());
    assert_eq!(nodes.builds.builds(&asked).await.unwrap_err().kind, ErrorKind::Invalid);
    assert_eq!(sim.call_count(&ops::START_BUILD), 2);
}

#[tokio::test(start_paused = true)]
async fn a_build_provisions_against_the_same_account() {
    let sim = SimCloud::new(cfg());
    let nodes = sim.node_cloud(Arc::new(Provision(sim.clone())));
    nodes.builds.create_project(&project_input("prov")).await.unwrap();
    let b = nodes.builds.start_build(&request("prov", "n1", "t1")).await.unwrap();
    tokio::time::sleep(ms(20)).await;
    assert_eq!(nodes.builds.builds(std::slice::from_ref(&b.id)).await.unwrap()[0].state, BuildState::Succeeded);
    assert_eq!(sim.instances_launched("mooring:uid", "n1"), 1);
    // The build's calls are AWS calls too.
    assert_eq!(sim.call_count(&ops::RUN_INSTANCES), 1);
    assert_eq!(sim.call_count(&ops::DESCRIBE_INSTANCES), 1);
    // Another apply finds the instance by tag.
    nodes.builds.start_build(&request("prov", "n1", "t2")).await.unwrap();
    tokio::time::sleep(ms(20)).await;
    assert_eq!(sim.instances_launched("mooring:uid", "n1"), 1);
}

#[tokio::test(start_paused = true)]
async fn a_builds_calls_are_retried_like_the_sdk_and_the_controllers_are_not() {
    let sim = SimCloud::new(cfg());
    let nodes = sim.node_cloud(Arc::new(Provision(sim.clone())));
    nodes.builds.create_project(&project_input("prov")).await.unwrap();
    let b = nodes.builds.start_build(&request("prov", "n1", "t1")).await.unwrap();
    // Every call fails from now on: the build's DescribeInstances is tried
    // three times, as the SDK's standard retry mode would, then the build fails.
    sim.set_faults(FaultMix { server_error: 1.0, ..FaultMix::none() });
    tokio::time::sleep(ms(50)).await;
    assert_eq!(sim.call_count(&ops::DESCRIBE_INSTANCES), 3);
    assert!(sim.instances().is_empty());
    let err = nodes.ec2.instances_tagged("mooring:uid", &uid_values("n1")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Server);
    assert_eq!(sim.call_count(&ops::DESCRIBE_INSTANCES), 4, "the controller's own call is tried once");
    sim.set_faults(FaultMix::none());
    assert_eq!(nodes.builds.builds(std::slice::from_ref(&b.id)).await.unwrap()[0].state, BuildState::Failed);
}

#[tokio::test(start_paused = true)]
async fn start_build_is_idempotent_for_five_minutes() {
    let sim = SimCloud::new(cfg());
    let nodes = sim.node_cloud(Scripted::new(ms(5), None));
    nodes.builds.create_project(&project_input("prov")).await.unwrap();
    let a = nodes.builds.start_build(&request("prov", "n1", "tok")).await.unwrap();
    let b = nodes.builds.start_build(&request("prov", "n1", "tok")).await.unwrap();
    assert_eq!(a.id, b.id);
    let err = nodes.builds.start_build(&request("prov", "n2", "tok")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(err.message.starts_with("IdempotentParameterMismatch"), "{err}");
    tokio::time::sleep(Duration::from_secs(60)).await;
    let c = nodes.builds.start_build(&request("prov", "n1", "tok")).await.unwrap();
    assert_eq!((c.id.as_str(), c.state), (a.id.as_str(), BuildState::Succeeded), "finished, still the same build");
    tokio::time::sleep(Duration::from_secs(4 * 60 + 1)).await;
    let d = nodes.builds.start_build(&request("prov", "n1", "tok")).await.unwrap();
    assert_ne!(d.id, a.id, "the token expired");
    let e = nodes.builds.start_build(&request("prov", "n1", "")).await.unwrap();
    let f = nodes.builds.start_build(&request("prov", "n1", "")).await.unwrap();
    assert_ne!(e.id, f.id, "no token, no idempotency");
    assert_eq!(sim.builds_started().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn the_concurrent_build_quota_refuses_more() {
    let sim = SimCloud::new(SimConfig { codebuild_concurrency: 2, ..cfg() });
    let nodes = sim.node_cloud(Scripted::new(ms(100), None));
    nodes.builds.create_project(&project_input("prov")).await.unwrap();
    nodes.builds.start_build(&request("prov", "n1", "t1")).await.unwrap();
    nodes.builds.start_build(&request("prov", "n2", "t2")).await.unwrap();
    assert_eq!(sim.builds_in_progress(), 2);
    let err = nodes.builds.start_build(&request("prov", "n3", "t3")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::QuotaExceeded);
    assert_eq!(err.kind.as_str(), "quota_exceeded");
    assert!(err.message.starts_with("AccountLimitExceededException"), "{err}");
    // The same token still answers with its build.
    nodes.builds.start_build(&request("prov", "n1", "t1")).await.unwrap();
    tokio::time::sleep(ms(120)).await;
    assert_eq!(sim.builds_in_progress(), 0);
    nodes.builds.start_build(&request("prov", "n3", "t3")).await.unwrap();
    assert_eq!(sim.builds_started().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn targets_become_healthy_when_their_instance_runs() {
    let (sim, nodes) = node_sim(cfg());
    let tg = DEFAULT_TARGET_GROUP_ARN;
    let up = nodes.ec2.run_instance(&instance_input("u1", "t1")).await.unwrap().id;
    let down = nodes.ec2.run_instance(&instance_input("u2", "t2")).await.unwrap().id;
    tokio::time::sleep(ms(25)).await;
    nodes.ec2.stop_instance(&down).await.unwrap();
    nodes.targets.register_targets(tg, &[(up.clone(), Some(8080)), (down.clone(), Some(8080))]).await.unwrap();
    let h = nodes.targets.target_health(tg).await.unwrap();
    assert_eq!(h.len(), 2);
    assert!(h.iter().all(|t| t.state == "initial"), "{h:?}");
    tokio::time::sleep(ms(25)).await;
    let state = |h: &[TargetHealth], id: &str| h.iter().find(|t| t.id == id).map(|t| t.state.clone());
    let h = nodes.targets.target_health(tg).await.unwrap();
    assert_eq!(state(&h, &up).as_deref(), Some("healthy"));
    assert_eq!(state(&h, &down).as_deref(), Some("unhealthy"));
    assert_eq!(h.iter().find(|t| t.id == up).unwrap().port, Some(8080));
    // Registering again changes nothing; nothing to register is nothing to do.
    nodes.targets.register_targets(tg, &[]).await.unwrap();
    nodes.targets.register_targets(tg, &[(up.clone(), Some(8080))]).await.unwrap();
    assert_eq!(state(&sim.targets(tg), &up).as_deref(), Some("healthy"));

    nodes.targets.deregister_targets(tg, &[(up.clone(), Some(8080))]).await.unwrap();
    assert_eq!(state(&sim.targets(tg), &up).as_deref(), Some("draining"));
    tokio::time::sleep(ms(15)).await;
    assert_eq!(state(&nodes.targets.target_health(tg).await.unwrap(), &up), None);
    assert_eq!(sim.targets(tg).len(), 1);

    let missing = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/x/1";
    let err = nodes.targets.register_targets(missing, &[(up.clone(), None)]).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::MissingReference);
    assert_eq!(nodes.targets.target_health(missing).await.unwrap_err().kind, ErrorKind::MissingReference);
    assert_eq!(
        nodes.targets.deregister_targets(missing, &[(up, None)]).await.unwrap_err().kind,
        ErrorKind::MissingReference
    );
    let err = nodes.targets.register_targets(tg, &[("i-nope".to_string(), None)]).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert!(sim.targets(missing).is_empty());
    assert_eq!(sim.call_count(&ops::REGISTER_TARGETS), 5);
}

#[tokio::test(start_paused = true)]
async fn stale_reads_cover_instances_volumes_and_builds() {
    let faults = FaultMix { stale_read: 1.0, ..FaultMix::none() };
    let sim = SimCloud::new(SimConfig { faults, ..cfg() });
    let nodes = sim.node_cloud(Arc::new(Noop));
    let i = nodes.ec2.run_instance(&instance_input("u1", "t")).await.unwrap();
    nodes.ec2.create_volume(&volume_input("u1", "us-east-1a", "v")).await.unwrap();
    assert!(nodes.ec2.instances_tagged("mooring:uid", &uid_values("u1")).await.unwrap().is_empty());
    assert!(nodes.ec2.volumes_tagged("mooring:uid", &uid_values("u1")).await.unwrap().is_empty());
    let err = nodes.ec2.instance_health(std::slice::from_ref(&i.id)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "not yet known to DescribeInstanceStatus");
    nodes.builds.create_project(&project_input("prov")).await.unwrap();
    assert_eq!(nodes.builds.project("prov").await.unwrap(), None);
    let b = nodes.builds.start_build(&request("prov", "n", "t")).await.unwrap();
    assert!(nodes.builds.builds(std::slice::from_ref(&b.id)).await.unwrap().is_empty());
    assert_eq!(sim.instances().len(), 1, "inspection is never stale");
    tokio::time::sleep(ms(70)).await;
    assert_eq!(nodes.ec2.instances_tagged("mooring:uid", &uid_values("u1")).await.unwrap().len(), 1);
    assert_eq!(nodes.ec2.volumes_tagged("mooring:uid", &uid_values("u1")).await.unwrap().len(), 1);
    assert_eq!(nodes.builds.builds(std::slice::from_ref(&b.id)).await.unwrap()[0].state, BuildState::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn faults_hit_the_node_facades_too() {
    let faults = FaultMix { throttle: 0.5, server_error: 0.5, ..FaultMix::none() };
    let sim = SimCloud::new(SimConfig { faults, ..cfg() });
    let nodes = sim.node_cloud(Arc::new(Noop));
    for i in 0..10 {
        let err = nodes.ec2.run_instance(&instance_input("u1", &format!("t{i}"))).await.unwrap_err();
        assert!(matches!(err.kind, ErrorKind::Throttled | ErrorKind::Server));
        let err = nodes.targets.target_health(DEFAULT_TARGET_GROUP_ARN).await.unwrap_err();
        assert!(matches!(err.kind, ErrorKind::Throttled | ErrorKind::Server));
    }
    assert!(sim.instances().is_empty());
    assert_eq!(sim.call_count(&ops::RUN_INSTANCES), 10);
    assert_eq!(sim.call_count(&ops::DESCRIBE_TARGET_HEALTH), 10);
}

#[tokio::test(start_paused = true)]
async fn crash_at_counts_node_calls_and_builds_run_on() {
    let sim = SimCloud::new(cfg());
    let nodes = sim.node_cloud(Arc::new(Provision(sim.clone())));
    let cloud = sim.cloud();
    // The second call from now, across old and new facades, crashes: RunInstances.
    let crashed = sim.crash_at(2);
    let n = nodes.clone();
    let c = cloud.clone();
    let task = tokio::spawn(async move {
        c.queues.queue_url("jobs").await.unwrap();
        n.ec2.run_instance(&instance_input("u1", "tok")).await
    });
    crashed.notified().await;
    assert_eq!(sim.instances().len(), 1, "AWS acted");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!task.is_finished(), "the caller never learns");
    task.abort();
    // The restarted controller retries with the same token: no duplicate.
    let again = nodes.ec2.run_instance(&instance_input("u1", "tok")).await.unwrap();
    assert_eq!(again.id, sim.instances()[0].id);
    assert_eq!(sim.instances_launched("mooring:uid", "u1"), 1);

    // A crash right after StartBuild: the build runs on, and its own calls
    // (DescribeInstances, RunInstances) are not the controller's.
    nodes.builds.create_project(&project_input("prov")).await.unwrap();
    let crashed = sim.crash_at(1);
    let n = nodes.clone();
    let task = tokio::spawn(async move { n.builds.start_build(&request("prov", "n1", "b1")).await });
    crashed.notified().await;
    let next = sim.crash_at(2);
    tokio::time::sleep(ms(50)).await;
    task.abort();
    let (id, _) = sim.builds_started()[0].clone();
    assert_eq!(sim.instances_launched("mooring:uid", "n1"), 1, "the build provisioned");
    let b = nodes.builds.builds(std::slice::from_ref(&id)).await.unwrap();
    assert_eq!(b[0].state, BuildState::Succeeded, "the build ran on after the crash");
    // The build's two calls did not set off the armed crash; the controller's
    // second call from arming does.
    let t = nodes.targets.clone();
    let task = tokio::spawn(async move { t.target_health(DEFAULT_TARGET_GROUP_ARN).await });
    next.notified().await;
    tokio::time::sleep(ms(10)).await;
    assert!(!task.is_finished());
    task.abort();
    // The restarted controller asks again with the same token and follows the same build.
    assert_eq!(nodes.builds.start_build(&request("prov", "n1", "b1")).await.unwrap().id, id);
    assert_eq!(sim.builds_started().len(), 1);
}
