//! The simulated cloud's own tests. The clock is paused (tokio test-util), so
//! delays cost nothing and cannot flake on a busy machine.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::cloud::caches::ReplicationGroupInput;
use crate::cloud::ecs::{
    ContainerDefinition, DeploymentConfig, LoadBalancerRef, LogConfig, RolloutState, ServiceInput, ServiceState,
    ServiceUpdate, TaskDefinitionInput,
};
use crate::cloud::{Tags, ops};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Fast delays, no latency, no faults.
fn cfg() -> SimConfig {
    SimConfig {
        latency: (Duration::ZERO, Duration::ZERO),
        task_start_delay: ms(20),
        drain_delay: ms(10),
        cache_create_delay: ms(20),
        consistency_window: ms(50),
        ..SimConfig::default()
    }
}

fn td_input(family: &str, image: &str) -> TaskDefinitionInput {
    TaskDefinitionInput {
        family: family.into(),
        cpu: 256,
        memory: 512,
        task_role_arn: None,
        execution_role_arn: None,
        containers: vec![ContainerDefinition {
            name: "app".into(),
            image: image.into(),
            cpu: None,
            memory: None,
            port: Some(8080),
            command: vec![],
            environment: BTreeMap::new(),
            secrets: BTreeMap::new(),
            essential: true,
            stop_timeout: None,
            log: LogConfig { group: "g".into(), region: "us-east-1".into(), stream_prefix: "p".into() },
        }],
        ephemeral_storage_gib: None,
        tags: Tags::new(),
    }
}

fn svc_input(name: &str, td: &str, desired: u32, token: &str) -> ServiceInput {
    ServiceInput {
        cluster: "default".into(),
        name: name.into(),
        task_definition: td.into(),
        desired_count: desired,
        network: None,
        load_balancers: vec![],
        deployment: DeploymentConfig::default(),
        health_check_grace_seconds: None,
        spot: None,
        tags: [("mooring:uid".to_string(), "u1".to_string())].into(),
        client_token: token.into(),
    }
}

fn update(name: &str) -> ServiceUpdate {
    ServiceUpdate { cluster: "default".into(), name: name.into(), ..ServiceUpdate::default() }
}

async fn describe(cloud: &Cloud, name: &str) -> Option<Service> {
    cloud.ecs.describe_services("default", &[name.to_owned()]).await.unwrap().into_iter().next()
}

#[tokio::test(start_paused = true)]
async fn describe_services_enforces_the_batch_limit_and_cluster() {
    let sim = SimCloud::new(cfg());
    let cloud = sim.cloud();
    let names: Vec<String> = (0..11).map(|i| format!("s{i}")).collect();
    let err = cloud.ecs.describe_services("default", &names).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert_eq!(err.op, "ecs:DescribeServices");
    assert!(cloud.ecs.describe_services("default", &names[..10]).await.unwrap().is_empty());
    assert_eq!(cloud.ecs.describe_services("default", &[]).await.unwrap_err().kind, ErrorKind::Invalid);
    let err = cloud.ecs.describe_services("nope", &names[..1]).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::MissingReference);
    let td = cloud.ecs.register_task_definition(&td_input("web", "nginx:1")).await.unwrap();
    let elsewhere = ServiceInput { cluster: "nope".into(), ..svc_input("s1", &td.arn, 1, "t") };
    let err = cloud.ecs.create_service(&elsewhere).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::MissingReference);
    sim.create_cluster("nope");
    cloud.ecs.create_service(&elsewhere).await.unwrap();
    cloud.ecs.create_service(&svc_input("s3", &td.arn, 1, "t")).await.unwrap();
    let found = cloud.ecs.describe_services("default", &names[..10]).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].arn, "arn:aws:ecs:us-east-1:000000000000:service/default/s3");
    assert_eq!(found[0].tags.get("mooring:uid").map(String::as_str), Some("u1"));
    assert_eq!(sim.call_count(&ops::DESCRIBE_SERVICES), 5);
}

#[tokio::test(start_paused = true)]
async fn create_service_is_idempotent_by_client_token_only() {
    let sim = SimCloud::new(cfg());
    let cloud = sim.cloud();
    let td = cloud.ecs.register_task_definition(&td_input("web", "nginx:1")).await.unwrap();
    assert_eq!(td.arn, "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1");
    let a = cloud.ecs.create_service(&svc_input("web", &td.arn, 2, "tok-1")).await.unwrap();
    let b = cloud.ecs.create_service(&svc_input("web", &td.arn, 2, "tok-1")).await.unwrap();
    assert_eq!(a.arn, b.arn);
    let err = cloud.ecs.create_service(&svc_input("web", &td.arn, 2, "tok-2")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::AlreadyExists);
    assert!(err.message.contains("not idempotent"), "{err}");
    assert_eq!(sim.services_created("default", "web"), 1);
    assert_eq!(sim.call_count(&ops::CREATE_SERVICE), 3);
    // Unknown or inactive task definitions are refused.
    let err = cloud.ecs.create_service(&svc_input("other", "web:9", 1, "t")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    // A load balancer must name a container port of the task definition.
    let mut input = svc_input("lb", &td.arn, 1, "t");
    input.load_balancers = vec![LoadBalancerRef {
        target_group_arn: "tg".into(),
        container_name: "app".into(),
        container_port: 9,
        advanced: None,
    }];
    assert_eq!(cloud.ecs.create_service(&input).await.unwrap_err().kind, ErrorKind::Invalid);
    input.load_balancers[0].container_port = 8080;
    assert_eq!(cloud.ecs.create_service(&input).await.unwrap().load_balancers.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn tasks_follow_the_desired_count_after_the_delay() {
    let sim = SimCloud::new(cfg());
    let cloud = sim.cloud();
    let td = cloud.ecs.register_task_definition(&td_input("web", "nginx:1")).await.unwrap();
    let s = cloud.ecs.create_service(&svc_input("web", &td.arn, 2, "t")).await.unwrap();
    assert_eq!((s.desired_count, s.running_count, s.pending_count), (2, 0, 2));
    assert_eq!(s.primary().unwrap().rollout, RolloutState::InProgress);
    tokio::time::sleep(ms(10)).await;
    assert_eq!(describe(&cloud, "web").await.unwrap().running_count, 0);
    tokio::time::sleep(ms(15)).await;
    let s = describe(&cloud, "web").await.unwrap();
    assert_eq!((s.running_count, s.pending_count), (2, 0));
    assert_eq!(s.primary().unwrap().rollout, RolloutState::Completed);

    let s = cloud.ecs.update_service(&ServiceUpdate { desired_count: Some(5), ..update("web") }).await.unwrap();
    assert_eq!((s.desired_count, s.running_count), (5, 2));
    assert_eq!(s.deployments.len(), 1, "a scale is not a deployment");
    tokio::time::sleep(ms(25)).await;
    assert_eq!(describe(&cloud, "web").await.unwrap().running_count, 5);

    // Someone scales it in the console.
    assert!(sim.set_desired_count("default", "web", 1));
    assert_eq!(sim.service("default", "web").unwrap().desired_count, 1);
    tokio::time::sleep(ms(25)).await;
    assert_eq!(sim.services()[0].running_count, 1);
    assert!(!sim.set_desired_count("default", "nope", 1));
    // A missing service cannot be updated.
    let err = cloud.ecs.update_service(&ServiceUpdate { desired_count: Some(1), ..update("nope") }).await;
    assert_eq!(err.unwrap_err().kind, ErrorKind::NotFound);
}

#[tokio::test(start_paused = true)]
async fn a_new_task_definition_rolls_out_and_the_old_deployment_goes() {
    let sim = SimCloud::new(cfg());
    let cloud = sim.cloud();
    let v1 = cloud.ecs.register_task_definition(&td_input("web", "nginx:1")).await.unwrap();
    let v2 = cloud.ecs.register_task_definition(&td_input("web", "nginx:2")).await.unwrap();
    cloud.ecs.create_service(&svc_input("web", &v1.arn, 2, "t")).await.unwrap();
    tokio::time::sleep(ms(25)).await;
    let to_v2 = ServiceUpdate { task_definition: Some(v2.arn.clone()), ..update("web") };
    let s = cloud.ecs.update_service(&to_v2).await.unwrap();
    assert_eq!(s.task_definition, v2.arn);
    assert_eq!(s.deployments.len(), 2);
    assert!(s.deployments[0].primary && s.deployments[0].task_definition == v2.arn);
    assert_eq!(s.deployments[0].rollout, RolloutState::InProgress);
    assert_eq!(s.deployments[1].running_count, 2, "old tasks keep serving during the rollout");
    tokio::time::sleep(ms(25)).await;
    let s = describe(&cloud, "web").await.unwrap();
    assert_eq!(s.deployments.len(), 1);
    assert_eq!(s.primary().unwrap().rollout, RolloutState::Completed);
    assert_eq!((s.running_count, s.task_definition.as_str()), (2, v2.arn.as_str()));

    // A console change of the task definition starts a deployment too.
    assert!(sim.set_service_task_definition("default", "web", "web:1"));
    let s = sim.service("default", "web").unwrap();
    assert_eq!(s.task_definition, v1.arn);
    assert_eq!(s.deployments.len(), 2);
}

/// A blue/green configuration whose minute lasts 10 ms.
fn blue_green(bake_minutes: u32) -> DeploymentConfig {
    DeploymentConfig {
        strategy: api_types::rollout::DeploymentStrategy::BlueGreen,
        bake_minutes,
        ..DeploymentConfig::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_blue_green_deployment_keeps_blue_until_the_bake_ends_and_counts_dark_moments() {
    use api_types::rollout::{DeploymentState, RolloutStage};
    let sim = SimCloud::new(SimConfig { minute: ms(10), ..cfg() });
    let cloud = sim.cloud();
    let v1 = cloud.ecs.register_task_definition(&td_input("bg", "nginx:1")).await.unwrap();
    let v2 = cloud.ecs.register_task_definition(&td_input("bg", "nginx:2")).await.unwrap();
    let mut input = svc_input("bg", &v1.arn, 2, "t");
    input.deployment = blue_green(10);
    cloud.ecs.create_service(&input).await.unwrap();
    tokio::time::sleep(ms(200)).await;
    let first = describe(&cloud, "bg").await.unwrap().current_service_deployment.expect("a service deployment");
    assert_eq!(sim.service_deployment(&first).unwrap().state, DeploymentState::Successful);

    let to_v2 = ServiceUpdate { task_definition: Some(v2.arn.clone()), ..update("bg") };
    cloud.ecs.update_service(&to_v2).await.unwrap();
    tokio::time::sleep(ms(30)).await;
    let arn = describe(&cloud, "bg").await.unwrap().current_service_deployment.unwrap();
    assert_ne!(arn, first, "a new revision is a new service deployment");
    let sd = sim.service_deployment(&arn).unwrap();
    assert_eq!((sd.stage, sd.production_percent), (Some(RolloutStage::BakeTime), Some(100.0)), "{sd:?}");
    let s = describe(&cloud, "bg").await.unwrap();
    assert_eq!(s.running_count, 4, "blue and green both run during the bake: {s:?}");
    assert_eq!(sim.dark_moments("default", "bg"), 0);

    // Green scaled to nothing while production points at it: a dark moment.
    let zero = ServiceUpdate { desired_count: Some(0), ..update("bg") };
    cloud.ecs.update_service(&zero).await.unwrap();
    tokio::time::sleep(ms(30)).await;
    describe(&cloud, "bg").await.unwrap();
    assert!(sim.dark_moments("default", "bg") > 0, "the counter sees production on a revision with no task");
    tokio::time::sleep(ms(200)).await;
    assert_eq!(sim.service_deployment(&arn).unwrap().state, DeploymentState::Successful);
    let s = describe(&cloud, "bg").await.unwrap();
    assert_eq!((s.deployments.len(), s.task_definition.as_str()), (1, v2.arn.as_str()), "blue is gone after the bake");
}

#[tokio::test(start_paused = true)]
async fn a_rollback_puts_blue_back_and_a_new_deployment_supersedes_one_in_flight() {
    use crate::cloud::ecs::StopKind;
    use api_types::rollout::DeploymentState;
    let sim = SimCloud::new(SimConfig { minute: ms(10), ..cfg() });
    let cloud = sim.cloud();
    let v1 = cloud.ecs.register_task_definition(&td_input("rb", "nginx:1")).await.unwrap();
    let v2 = cloud.ecs.register_task_definition(&td_input("rb", "nginx:2")).await.unwrap();
    let mut input = svc_input("rb", &v1.arn, 2, "t");
    input.deployment = blue_green(50);
    cloud.ecs.create_service(&input).await.unwrap();
    tokio::time::sleep(ms(700)).await;
    cloud.ecs.update_service(&ServiceUpdate { task_definition: Some(v2.arn.clone()), ..update("rb") }).await.unwrap();
    tokio::time::sleep(ms(30)).await;
    let arn = describe(&cloud, "rb").await.unwrap().current_service_deployment.unwrap();
    cloud.ecs.stop_service_deployment(&arn, StopKind::Rollback).await.unwrap();
    let s = describe(&cloud, "rb").await.unwrap();
    assert_eq!(s.task_definition, v1.arn, "blue serves again at once");
    assert_eq!(sim.service_deployment(&arn).unwrap().state, DeploymentState::RollbackSuccessful);
    let again = cloud.ecs.stop_service_deployment(&arn, StopKind::Rollback).await.unwrap_err();
    assert!(again.is(crate::cloud::ErrorKind::Invalid), "{again:?}");

    // A rolling change while a staged deployment is in flight ends that one.
    cloud.ecs.update_service(&ServiceUpdate { task_definition: Some(v2.arn.clone()), ..update("rb") }).await.unwrap();
    tokio::time::sleep(ms(30)).await;
    let in_flight = describe(&cloud, "rb").await.unwrap().current_service_deployment.unwrap();
    let rolling = ServiceUpdate {
        task_definition: Some(v1.arn.clone()),
        deployment: Some(DeploymentConfig::default()),
        ..update("rb")
    };
    cloud.ecs.update_service(&rolling).await.unwrap();
    assert_eq!(sim.service_deployment(&in_flight).unwrap().state, DeploymentState::Stopped);
    tokio::time::sleep(ms(50)).await;
    let s = describe(&cloud, "rb").await.unwrap();
    assert_eq!((s.task_definition.as_str(), s.running_count), (v1.arn.as_str(), 2), "{s:?}");
}

#[tokio::test(start_paused = true)]
async fn a_failing_image_trips_the_circuit_breaker_and_rolls_back() {
    let sim = SimCloud::new(cfg());
    let cloud = sim.cloud();
    let v1 = cloud.ecs.register_task_definition(&td_input("web", "nginx:1")).await.unwrap();
    let bad = cloud.ecs.register_task_definition(&td_input("web", "nginx:fail")).await.unwrap();
    let v3 = cloud.ecs.register_task_definition(&td_input("web", "nginx:3")).await.unwrap();
    cloud.ecs.create_service(&svc_input("web", &v1.arn, 2, "t")).await.unwrap();
    tokio::time::sleep(ms(25)).await;
    cloud.ecs.update_service(&ServiceUpdate { task_definition: Some(bad.arn.clone()), ..update("web") }).await.unwrap();
    tokio::time::sleep(ms(25)).await;
    let s = describe(&cloud, "web").await.unwrap();
    assert_eq!(s.task_definition, v1.arn, "rolled back");
    assert_eq!(s.primary().unwrap().task_definition, v1.arn);
    let failed = s.deployments.iter().find(|d| d.task_definition == bad.arn).unwrap();
    assert!(!failed.primary);
    assert_eq!(failed.rollout, RolloutState::Failed);
    assert!(failed.rollout_reason.as_deref().unwrap().contains("circuit breaker"));
    assert_eq!(s.running_count, 2);
    // The rollback deployment completes (its tasks were still running); the failed one stays listed.
    assert_eq!(s.primary().unwrap().rollout, RolloutState::Completed);
    tokio::time::sleep(ms(100)).await;
    assert_eq!(describe(&cloud, "web").await.unwrap().deployments.len(), 2);
    // The next deployment drops it.
    let to_v3 = ServiceUpdate { task_definition: Some(v3.arn.clone()), ..update("web") };
    let s = cloud.ecs.update_service(&to_v3).await.unwrap();
    assert!(s.deployments.iter().all(|d| d.rollout != RolloutState::Failed));

    // Without rollback the failed deployment stays primary.
    let mut input = svc_input("nr", &bad.arn, 1, "t");
    input.deployment.rollback = false;
    cloud.ecs.create_service(&input).await.unwrap();
    tokio::time::sleep(ms(25)).await;
    let s = describe(&cloud, "nr").await.unwrap();
    assert_eq!(s.task_definition, bad.arn);
    assert_eq!(s.primary().unwrap().rollout, RolloutState::Failed);
    assert_eq!(s.running_count, 0);

    // Without the circuit breaker ECS keeps trying forever, as in AWS.
    let mut input = svc_input("nb", &bad.arn, 1, "t");
    input.deployment = DeploymentConfig { circuit_breaker: false, rollback: false, ..input.deployment.clone() };
    cloud.ecs.create_service(&input).await.unwrap();
    tokio::time::sleep(ms(100)).await;
    let s = describe(&cloud, "nb").await.unwrap();
    assert_eq!((s.primary().unwrap().rollout, s.running_count), (RolloutState::InProgress, 0));
}

#[tokio::test(start_paused = true)]
async fn delete_drains_then_the_service_is_gone() {
    let sim = SimCloud::new(cfg());
    let cloud = sim.cloud();
    let td = cloud.ecs.register_task_definition(&td_input("web", "nginx:1")).await.unwrap();
    cloud.ecs.create_service(&svc_input("web", &td.arn, 1, "t1")).await.unwrap();
    assert_eq!(cloud.ecs.delete_service("default", "web", false).await.unwrap_err().kind, ErrorKind::Invalid);
    cloud.ecs.delete_service("default", "web", true).await.unwrap();
    let s = describe(&cloud, "web").await.unwrap();
    assert_eq!((s.state, s.desired_count), (ServiceState::Draining, 0));
    // Draining: a second delete is accepted, a create is refused, an update finds nothing active.
    cloud.ecs.delete_service("default", "web", true).await.unwrap();
    let err = cloud.ecs.create_service(&svc_input("web", &td.arn, 1, "t1")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::AlreadyExists);
    let err = cloud.ecs.update_service(&ServiceUpdate { desired_count: Some(1), ..update("web") }).await;
    assert_eq!(err.unwrap_err().kind, ErrorKind::NotFound);
    assert_eq!(sim.services().len(), 1);
    tokio::time::sleep(ms(15)).await;
    assert!(describe(&cloud, "web").await.is_none());
    assert!(sim.services().is_empty());
    assert_eq!(cloud.ecs.delete_service("default", "web", true).await.unwrap_err().kind, ErrorKind::NotFound);
    // The name is free again.
    cloud.ecs.create_service(&svc_input("web", &td.arn, 0, "t2")).await.unwrap();
    assert_eq!(sim.services_created("default", "web"), 2);
    // Out of band.
    assert!(sim.delete_service_out_of_band("default", "web"));
    assert_eq!(sim.services()[0].state, ServiceState::Draining);
}

#[tokio::test(start_paused = true)]
async fn task_definitions_have_revisions_and_deregister() {
    let sim = SimCloud::new(cfg());
    let cloud = sim.cloud();
    for i in 1..=3 {
        let td = cloud.ecs.register_task_definition(&td_input("web", &format!("nginx:{i}"))).await.unwrap();
        assert_eq!(td.revision, i);
    }
    let arn = |r: i32| format!("arn:aws:ecs:us-east-1:000000000000:task-definition/web:{r}");
    assert_eq!(cloud.ecs.list_task_definitions("web").await.unwrap(), vec![arn(3), arn(2), arn(1)]);
    cloud.ecs.deregister_task_definition(&arn(2)).await.unwrap();
    assert_eq!(cloud.ecs.list_task_definitions("web").await.unwrap(), vec![arn(3), arn(1)]);
    assert!(!cloud.ecs.describe_task_definition(&arn(2)).await.unwrap().active);
    assert_eq!(sim.active_task_definitions(), vec![arn(1), arn(3)]);
    let err = cloud.ecs.deregister_task_definition(&arn(9)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert_eq!(cloud.ecs.describe_task_definition(&arn(9)).await.unwrap_err().kind, ErrorKind::NotFound);
    assert!(cloud.ecs.list_task_definitions("other").await.unwrap().is_empty());
    // A deregistered revision cannot start a service; the revision counter never reuses numbers.
    let err = cloud.ecs.create_service(&svc_input("web", &arn(2), 1, "t")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Invalid);
    assert_eq!(cloud.ecs.register_task_definition(&td_input("web", "x")).await.unwrap().revision, 4);
    // Fargate sizes are checked.
    let odd = TaskDefinitionInput { memory: 300, ..td_input("web", "x") };
    assert_eq!(cloud.ecs.register_task_definition(&odd).await.unwrap_err().kind, ErrorKind::Invalid);
}

#[tokio::test(start_paused = true)]
async fn retag_services_and_task_definitions() {
    let sim = SimCloud::new(cfg());
    let cloud = sim.cloud();
    let td = cloud.ecs.register_task_definition(&td_input("web", "nginx:1")).await.unwrap();
    let s = cloud.ecs.create_service(&svc_input("web", &td.arn, 0, "t")).await.unwrap();
    let add: Tags = [("a".to_string(), "1".to_string())].into();
    cloud.ecs.retag(&s.arn, &add, &["mooring:uid".to_string()]).await.unwrap();
    assert_eq!(describe(&cloud, "web").await.unwrap().tags, add);
    cloud.ecs.retag(&td.arn, &add, &[]).await.unwrap();
    assert_eq!(cloud.ecs.describe_task_definition(&td.arn).await.unwrap().tags, add);
    cloud.ecs.retag(&td.arn, &Tags::new(), &["a".to_string()]).await.unwrap();
    assert!(cloud.ecs.describe_task_definition(&td.arn).await.unwrap().tags.is_empty());
    let err = cloud.ecs.retag("arn:aws:ecs:us-east-1:000000000000:service/default/x", &add, &[]).await;
    assert_eq!(err.unwrap_err().kind, ErrorKind::NotFound);
    let reserved: Tags = [("aws:x".to_string(), "1".to_string())].into();
    assert_eq!(cloud.ecs.retag(&s.arn, &reserved, &[]).await.unwrap_err().kind, ErrorKind::Invalid);
    assert_eq!(sim.call_count(&ops::TAG_RESOURCE), 4);
    assert_eq!(sim.call_count(&ops::UNTAG_RESOURCE), 1);
}

#[tokio::test(start_paused = true)]
async fn queues_are_idempotent_by_name_and_attributes() {
    let sim = SimCloud::new(cfg());
    let cloud = sim.cloud();
    let attrs: QueueAttributes = [("VisibilityTimeout".to_string(), "60".to_string())].into();
    let url = cloud.queues.create_queue("jobs", &attrs, &Tags::new()).await.unwrap();
    assert_eq!(url, "https://sqs.us-east-1.amazonaws.com/000000000000/jobs");
    assert_eq!(cloud.queues.create_queue("jobs", &attrs, &Tags::new()).await.unwrap(), url);
    // Defaults count as values: asking for the default is the same queue.
    let same: QueueAttributes = [("DelaySeconds".to_string(), "0".to_string())].into();
    assert_eq!(cloud.queues.create_queue("jobs", &same, &Tags::new()).await.unwrap(), url);
    let other: QueueAttributes = [("VisibilityTimeout".to_string(), "30".to_string())].into();
    let err = cloud.queues.create_queue("jobs", &other, &Tags::new()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::AlreadyExists);
    assert_eq!(sim.queues(), vec![("jobs".to_string(), url.clone())]);

    let a = cloud.queues.queue_attributes(&url).await.unwrap();
    assert_eq!(a["VisibilityTimeout"], "60");
    assert_eq!(a["MessageRetentionPeriod"], "345600");
    assert_eq!(a["MaximumMessageSize"], "262144");
    assert_eq!(a["DelaySeconds"], "0");
    assert_eq!(a["ReceiveMessageWaitTimeSeconds"], "0");
    assert_eq!(a["ApproximateNumberOfMessages"], "0");
    assert_eq!(a["QueueArn"], "arn:aws:sqs:us-east-1:000000000000:jobs");
    assert_eq!(cloud.queues.queue_url("jobs").await.unwrap(), Some(url.clone()));
    assert_eq!(cloud.queues.queue_url("nope").await.unwrap(), None);

    // A redrive policy needs an existing dead-letter queue and comes back normalised.
    let dlq_arn = "arn:aws:sqs:us-east-1:000000000000:jobs-dlq";
    let redrive = format!(r#"{{"maxReceiveCount": "5", "deadLetterTargetArn": "{dlq_arn}"}}"#);
    let set: QueueAttributes = [("RedrivePolicy".to_string(), redrive)].into();
    assert_eq!(cloud.queues.set_queue_attributes(&url, &set).await.unwrap_err().kind, ErrorKind::Invalid);
    cloud.queues.create_queue("jobs-dlq", &QueueAttributes::new(), &Tags::new()).await.unwrap();
    cloud.queues.set_queue_attributes(&url, &set).await.unwrap();
    let a = cloud.queues.queue_attributes(&url).await.unwrap();
    assert_eq!(a["RedrivePolicy"], format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":5}}"#));
    let bad: QueueAttributes = [("VisibilityTimeout".to_string(), "99999".to_string())].into();
    assert_eq!(cloud.queues.set_queue_attributes(&url, &bad).await.unwrap_err().kind, ErrorKind::Invalid);
    let ro: QueueAttributes = [("QueueArn".to_string(), "x".to_string())].into();
    assert_eq!(cloud.queues.set_queue_attributes(&url, &ro).await.unwrap_err().kind, ErrorKind::Invalid);

    // A backlog, out of band.
    assert!(sim.set_queue_attribute("jobs", "ApproximateNumberOfMessages", "1200"));
    assert_eq!(cloud.queues.queue_attributes(&url).await.unwrap()["ApproximateNumberOfMessages"], "1200");
    assert_eq!(sim.queue_attributes("jobs").unwrap()["ApproximateNumberOfMessages"], "1200");

    // Tags.
    let tags: Tags = [("mooring:uid".to_string(), "u".to_string()), ("k".to_string(), "v".to_string())].into();
    let tagged = cloud.queues.create_queue("tagged", &QueueAttributes::new(), &tags).await.unwrap();
    cloud.queues.untag_queue(&tagged, &["k".to_string()]).await.unwrap();
    assert_eq!(cloud.queues.queue_tags(&tagged).await.unwrap().len(), 1);

    // Missing queues.
    let gone = "https://sqs.us-east-1.amazonaws.com/000000000000/gone";
    assert_eq!(cloud.queues.queue_attributes(gone).await.unwrap_err().kind, ErrorKind::NotFound);
    assert_eq!(cloud.queues.set_queue_attributes(gone, &attrs).await.unwrap_err().kind, ErrorKind::NotFound);
    assert_eq!(cloud.queues.untag_queue(gone, &[]).await.unwrap_err().kind, ErrorKind::NotFound);
    assert_eq!(cloud.queues.queue_tags(gone).await.unwrap_err().kind, ErrorKind::NotFound);
    cloud.queues.delete_queue(gone).await.unwrap();
    cloud.queues.delete_queue(&url).await.unwrap();
    assert_eq!(cloud.queues.queue_url("jobs").await.unwrap(), None);
    assert!(sim.queue_attributes("jobs").is_none());
}

#[tokio::test(start_paused = true)]
async fn replication_groups_are_created_and_deleted_over_time() {
    let sim = SimCloud::new(cfg());
    let cloud = sim.cloud();
    let input = ReplicationGroupInput {
        id: "relay-cache".into(),
        description: "d".into(),
        node_type: "cache.t4g.micro".into(),
        engine_version: "7.1".into(),
        replicas: 1,
        tags: Tags::new(),
    };
    let g = cloud.caches.create_replication_group(&input).await.unwrap();
    assert_eq!(g.status, "creating");
    assert_eq!(g.arn, "arn:aws:elasticache:us-east-1:000000000000:replicationgroup:relay-cache");
    assert_eq!((g.primary_endpoint.as_deref(), g.members), (None, 2));
    let err = cloud.caches.create_replication_group(&input).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::AlreadyExists);
    // Only an available group can be deleted, as in AWS.
    assert_eq!(cloud.caches.delete_replication_group("relay-cache").await.unwrap_err().kind, ErrorKind::Invalid);
    tokio::time::sleep(ms(25)).await;
    let g = cloud.caches.describe_replication_group("relay-cache").await.unwrap().unwrap();
    assert!(g.available());
    assert_eq!(g.primary_endpoint.as_deref(), Some("relay-cache.sim.cache.amazonaws.com:6379"));
    cloud.caches.delete_replication_group("relay-cache").await.unwrap();
    assert_eq!(sim.replication_groups()[0].status, "deleting");
    tokio::time::sleep(ms(25)).await;
    assert!(cloud.caches.describe_replication_group("relay-cache").await.unwrap().is_none());
    assert!(sim.replication_groups().is_empty());
    cloud.caches.delete_replication_group("relay-cache").await.unwrap();
    let err = cloud.caches.remove_tags(&g.arn, &["x".to_string()]).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    let bad = ReplicationGroupInput { id: "Bad--id".into(), ..input };
    assert_eq!(cloud.caches.create_replication_group(&bad).await.unwrap_err().kind, ErrorKind::Invalid);
}

/// The outcome of each call, per object, for a sequence of calls.
async fn trace(seed: u64, order: &[&str]) -> BTreeMap<String, Vec<&'static str>> {
    let faults = FaultMix { throttle: 0.2, server_error: 0.2, timeout: 0.2, stale_read: 0.0 };
    let sim = SimCloud::new(SimConfig { seed, faults, ..cfg() });
    let cloud = sim.cloud();
    let mut out: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    for name in order {
        let r = cloud.queues.queue_url(name).await;
        out.entry(name.to_string()).or_default().push(r.map_or_else(|e| e.kind.as_str(), |_| "ok"));
    }
    assert_eq!(sim.total_calls(), order.len() as u64);
    out
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_replays_the_same_faults_per_object() {
    let a = ["a", "a", "a", "a", "a", "a", "a", "a", "b", "b", "b", "b", "b", "b", "b", "b"];
    let b = ["a", "b", "b", "a", "b", "a", "a", "b", "a", "b", "a", "b", "b", "a", "a", "b"];
    let first = trace(7, &a).await;
    assert_eq!(first, trace(7, &a).await);
    assert_eq!(first, trace(7, &b).await, "interleaving across objects does not change the faults");
    let all: Vec<_> = first.values().flatten().collect();
    assert!(all.iter().any(|k| **k == "ok") && all.iter().any(|k| **k != "ok"), "{first:?}");
    let mut differs = false;
    for seed in 8..20 {
        differs |= trace(seed, &a).await != first;
    }
    assert!(differs, "other seeds give other faults");
}

#[tokio::test(start_paused = true)]
async fn faulted_calls_are_counted_and_have_no_effect() {
    let faults = FaultMix { throttle: 0.5, server_error: 0.5, ..FaultMix::none() };
    let sim = SimCloud::new(SimConfig { faults, ..cfg() });
    let cloud = sim.cloud();
    for i in 0..20 {
        let err = cloud.queues.create_queue(&format!("q{i}"), &QueueAttributes::new(), &Tags::new()).await;
        assert!(matches!(err.unwrap_err().kind, ErrorKind::Throttled | ErrorKind::Server));
    }
    assert!(sim.queues().is_empty());
    assert_eq!(sim.call_count(&ops::CREATE_QUEUE), 20);
    assert_eq!(sim.calls().get("sqs:CreateQueue"), Some(&20));
    sim.reset_calls();
    assert_eq!(sim.total_calls(), 0);
    // Out-of-band helpers and inspection are never faulted nor counted.
    sim.create_cluster("x");
    assert!(sim.services().is_empty());
    assert_eq!(sim.total_calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn timeouts_may_or_may_not_have_taken_effect() {
    let faults = FaultMix { timeout: 1.0, ..FaultMix::none() };
    let sim = SimCloud::new(SimConfig { faults, ..cfg() });
    let cloud = sim.cloud();
    for i in 0..40 {
        let err = cloud.queues.create_queue(&format!("q{i}"), &QueueAttributes::new(), &Tags::new()).await;
        assert_eq!(err.unwrap_err().kind, ErrorKind::Timeout);
    }
    let applied = sim.queues().len();
    assert!(applied > 5 && applied < 35, "{applied} of 40 applied");
}

#[tokio::test(start_paused = true)]
async fn stale_reads_show_the_state_before_a_recent_write() {
    let faults = FaultMix { stale_read: 1.0, ..FaultMix::none() };
    let sim = SimCloud::new(SimConfig { faults, ..cfg() });
    let cloud = sim.cloud();
    let td = cloud.ecs.register_task_definition(&td_input("web", "nginx:1")).await.unwrap();
    assert!(cloud.ecs.list_task_definitions("web").await.unwrap().is_empty());
    cloud.ecs.create_service(&svc_input("web", &td.arn, 1, "t")).await.unwrap();
    assert!(describe(&cloud, "web").await.is_none(), "a fresh create is not yet visible");
    cloud.queues.create_queue("jobs", &QueueAttributes::new(), &Tags::new()).await.unwrap();
    assert_eq!(cloud.queues.queue_url("jobs").await.unwrap(), None);
    tokio::time::sleep(ms(60)).await;
    assert!(describe(&cloud, "web").await.is_some());
    assert!(cloud.queues.queue_url("jobs").await.unwrap().is_some());
    assert_eq!(cloud.ecs.list_task_definitions("web").await.unwrap(), vec![td.arn.clone()]);
    // Inspection is never stale.
    assert_eq!(sim.services().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn aws_buckets_throttle_bursts() {
    let sim = SimCloud::new(SimConfig { enforce_aws_buckets: true, ..cfg() });
    let cloud = sim.cloud();
    let mut throttled = 0;
    for _ in 0..25 {
        if let Err(e) = cloud.ecs.register_task_definition(&td_input("web", "nginx:1")).await {
            assert_eq!(e.kind, ErrorKind::Throttled);
            throttled += 1;
        }
    }
    assert_eq!(throttled, 5, "RegisterTaskDefinition bursts 20");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(cloud.ecs.list_task_definitions("web").await.unwrap().len(), 20);
    cloud.ecs.register_task_definition(&td_input("web", "nginx:1")).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_budget_audit_counts_calls_over_a_budget_and_faults_can_stop() {
    let sim = SimCloud::new(SimConfig { faults: FaultMix { server_error: 1.0, ..FaultMix::none() }, ..cfg() });
    let cloud = sim.cloud();
    let budget = crate::gate::Budget { burst: 3.0, per_second: 1.0 };
    sim.audit_budgets([(ApiFamily::EcsRegisterTaskDefinition, budget)], 1.0);
    for _ in 0..6 {
        let e = cloud.ecs.register_task_definition(&td_input("web", "nginx:1")).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Server);
    }
    // Burst 3 plus 1 of slack: the last two calls were over, faulted or not.
    assert_eq!(sim.over_budget(), BTreeMap::from([(ApiFamily::EcsRegisterTaskDefinition, 2)]));
    sim.set_faults(FaultMix::none());
    tokio::time::sleep(Duration::from_secs(1)).await;
    cloud.ecs.register_task_definition(&td_input("web", "nginx:1")).await.unwrap();
    cloud.queues.queue_url("jobs").await.unwrap();
    // One token came back in a second; other families are not audited.
    assert_eq!(sim.over_budget(), BTreeMap::from([(ApiFamily::EcsRegisterTaskDefinition, 2)]));
}

#[tokio::test(start_paused = true)]
async fn crash_at_applies_the_call_notifies_and_never_returns() {
    let sim = SimCloud::new(cfg());
    let cloud = sim.cloud();
    let td = cloud.ecs.register_task_definition(&td_input("web", "nginx:1")).await.unwrap();
    let crashed = sim.crash_at(2);
    let c = cloud.clone();
    let input = svc_input("web", &td.arn, 1, "tok");
    let task = tokio::spawn(async move {
        c.ecs.describe_services("default", &["web".to_string()]).await.unwrap();
        c.ecs.create_service(&input).await
    });
    crashed.notified().await;
    assert_eq!(sim.services().len(), 1, "AWS acted");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!task.is_finished(), "the caller never learns");
    task.abort();
    // The "restarted" controller retries with the same token and gets the same service.
    let s = cloud.ecs.create_service(&svc_input("web", &td.arn, 1, "tok")).await.unwrap();
    assert_eq!(s.name, "web");
    assert_eq!(sim.services_created("default", "web"), 1);
    // A crash can be disarmed.
    let _ = sim.crash_at(1);
    sim.clear_crash();
    cloud.queues.queue_url("x").await.unwrap();
}
