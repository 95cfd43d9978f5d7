//! AWS events from an SQS queue (moto, over HTTP with the real SDK) trigger a
//! reconcile of the resource they name.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use api_types::Kind;
use common::*;
use controller::events::EventTrigger;
use controller::metrics::ControllerMetrics;
use runners::aws::sqs::SqsQueue;
use runners::aws::{AwsSettings, sdk_config};
use runners::gate::Ungated;
use serde_json::json;
use sqlx::PgPool;

fn moto() -> String {
    std::env::var("MOORING_AWS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:4566".into())
}

#[sqlx::test(migrations = false)]
async fn an_ec2_event_in_sqs_makes_the_owner_look_again(pool: PgPool) {
    let store = store(pool).await;
    let sdk = sdk_config(&AwsSettings { endpoint: Some(moto()), region: Some("us-east-1".into()) }).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let name = format!("mooring-events-{}", uuid::Uuid::new_v4().simple());
    let url = sqs.create_queue().queue_name(&name).send().await.expect("moto answers").queue_url.unwrap();

    let probe = Arc::new(Probe::default());
    let replica = start_replica(&store, &prefix(), "r", probe.clone(), &Options::default());
    eventually(Duration::from_secs(10), "leases held", || async { replica.owned() == 8 }).await;
    let r = create(&store, "node-ish").await;
    // Wait for the first reconciles and their status write to settle, so ours
    // below is not overwritten and the count after it is a clean baseline.
    eventually(Duration::from_secs(10), "first reconcile written", || async {
        let q = replica.controller.queue(Kind::Relay);
        status_writer(&store, "node-ish").await.is_some() && q.is_empty() && q.processing_len() == 0
    })
    .await;
    // The resource's status records its instance.
    let current = store.get(Kind::Relay, "default", "node-ish").await.unwrap();
    let mut status = current.status.clone();
    status["instanceId"] = json!("i-0abc123");
    store.write_status(Kind::Relay, "default", "node-ish", r.uid, &status, None).await.unwrap();

    let baseline = probe.reconciles.load(Ordering::SeqCst);
    // EventBridge delivers an instance state change, and an unrelated event.
    let event = json!({
        "version": "0", "id": "e1", "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2",
        "account": "123456789012", "region": "us-east-1",
        "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-0abc123"],
        "detail": {"instance-id": "i-0abc123", "state": "stopping"}
    });
    sqs.send_message().queue_url(&url).message_body(event.to_string()).send().await.unwrap();
    sqs.send_message().queue_url(&url).message_body("{\"hello\": 1}").send().await.unwrap();

    let trigger = EventTrigger {
        store: store.clone(),
        queue: Arc::new(SqsQueue::new(&sdk, url.clone())),
        gate: Arc::new(Ungated),
    };
    let mut poked = 0;
    for _ in 0..5 {
        poked += trigger.poll_once(1).await.unwrap();
        if poked > 0 {
            break;
        }
    }
    assert_eq!(poked, 1);
    eventually(Duration::from_secs(10), "reconciled again because of the event", || async {
        probe.reconciles.load(Ordering::SeqCst) > baseline
    })
    .await;
    // Both messages were consumed.
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap();
    let a = attrs.attributes.unwrap_or_default();
    let visible: u32 =
        a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages).unwrap().parse().unwrap();
    let hidden: u32 =
        a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible).unwrap().parse().unwrap();
    assert_eq!((visible, hidden), (0, 0));
    let _ = ControllerMetrics::unregistered();
    sqs.delete_queue().queue_url(&url).send().await.unwrap();
    replica.shutdown().await;
}
