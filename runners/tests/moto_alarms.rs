//! A node's alarms (`runners::workload::alarms`) through the CloudWatch facade
//! of the AWS SDK, against moto over HTTP: created with the node's tag on its
//! instance, read back as put (so a settled alarm is not put again), moved to
//! a new instance in place, refused when someone else's alarm has the name,
//! and deleted.
//!
//! Needs moto at `MOORING_AWS_ENDPOINT` (default `http://127.0.0.1:4566`).
//! moto: alarms are never evaluated and start `OK`; AWS starts them
//! `INSUFFICIENT_DATA`.

mod common;

use api_types::node::NodeSpec;
use common::{require_moto, settings};
use runners::cloud::alarms::MetricAlarm;
use runners::cloud::{TAG_UID, Tags};
use runners::workload::alarms::{self, wanted};

fn spec() -> NodeSpec {
    serde_json::from_value(serde_json::json!({
        "software": {"name": "pulse", "version": "1", "artifact": "s3://pulse-artifacts/p.tar.gz"},
        "instanceType": "t3.large", "ami": "ami-1e749f67", "subnetId": "subnet-0a1b2c3d",
        "alarms": {"custom": {"namespace": "CWAgent", "metricName": "mem_used_percent",
            "statistic": "Maximum", "comparison": "GreaterThanThreshold", "threshold": 90, "periodSeconds": 300}}
    }))
    .unwrap()
}

#[tokio::test]
async fn a_nodes_alarms_round_trip_through_cloudwatch() {
    let settings = settings();
    require_moto(&settings);
    let config = runners::aws::sdk_config(&settings).await;
    let metrics = runners::aws::node_cloud_from(&config).alarms;
    let uid = uuid::Uuid::new_v4().to_string();
    let mine = wanted(&uid, "ns/pulse-0", &spec(), "i-0123456789abcdef0");
    let names: Vec<String> = mine.iter().map(|a| a.name.clone()).collect();

    let first = alarms::sync(metrics.as_ref(), &uid, "ns/pulse-0", &mine, &[], &[]).await.unwrap();
    assert_eq!(first.readings.len(), 2);
    let seen = metrics.metric_alarms(&names).await.unwrap();
    assert_eq!(seen.len(), 2);
    for o in &seen {
        let put = mine.iter().find(|m| m.name == o.alarm.name).unwrap();
        assert_eq!(&o.alarm, put, "read back exactly as put");
        assert_eq!(metrics.alarm_tags(&o.arn).await.unwrap()[TAG_UID], uid);
    }
    let settled = alarms::sync(metrics.as_ref(), &uid, "ns/pulse-0", &mine, &names, &[]).await.unwrap();
    assert!(settled.readings.iter().all(|r| r.state.as_deref() == Some("OK")), "moto: read, not put: {settled:?}");

    // A firing alarm reads as such, for the node and for a rollout's gate.
    aws_sdk_cloudwatch::Client::new(&config)
        .set_alarm_state()
        .alarm_name(&names[0])
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason("set by the test")
        .send()
        .await
        .unwrap();
    let read = alarms::sync(metrics.as_ref(), &uid, "ns/pulse-0", &mine, &names, &names).await.unwrap();
    let states: Vec<Option<&str>> = read.readings.iter().map(|r| r.state.as_deref()).collect();
    assert!(states.contains(&Some("ALARM")), "{read:?}");
    let gate = runners::aws::cloud_from(&config).metrics;
    assert_eq!(gate.alarms_firing(&names).await.unwrap(), [names[0].clone()]);

    // A replacement: the same alarms on the new instance.
    let moved = wanted(&uid, "ns/pulse-0", &spec(), "i-0fedcba9876543210");
    alarms::sync(metrics.as_ref(), &uid, "ns/pulse-0", &moved, &names, &names).await.unwrap();
    let seen = metrics.metric_alarms(&names).await.unwrap();
    assert!(seen.iter().all(|o| o.alarm.dimensions[0].1 == "i-0fedcba9876543210"), "{seen:?}");

    // Deleted with the node.
    alarms::sync(metrics.as_ref(), &uid, "ns/pulse-0", &[], &names, &names).await.unwrap();
    assert!(metrics.metric_alarms(&names).await.unwrap().is_empty());

    // Someone else's alarm of a node's alarm name is neither changed nor deleted.
    let other = uuid::Uuid::new_v4().to_string();
    let theirs = wanted(&other, "ns/pulse-1", &spec(), "i-1");
    metrics.put_metric_alarm(&MetricAlarm { threshold: 1.0, ..theirs[1].clone() }, &Tags::new()).await.unwrap();
    let done = alarms::sync(metrics.as_ref(), &other, "ns/pulse-1", &theirs, &[], &[]).await.unwrap();
    assert_eq!(done.foreign, [theirs[1].name.clone()], "left alone");
    let done = alarms::sync(metrics.as_ref(), &other, "ns/pulse-1", &[], &[theirs[1].name.clone()], &[]).await.unwrap();
    assert_eq!(done.foreign, [theirs[1].name.clone()], "not deleted");
    assert_eq!(metrics.metric_alarms(&[theirs[1].name.clone()]).await.unwrap().len(), 1, "still there");
    metrics.delete_alarms(&theirs.iter().map(|a| a.name.clone()).collect::<Vec<_>>()).await.unwrap();
}
