//! The SQS facade over the AWS SDK: what the event trigger needs (and, later,
//! the worker queues).

use aws_sdk_sqs::Client;

use crate::events::{EventQueue, QueueError, QueueMessage};
use crate::gate::{ApiFamily, CallGate};

/// SQS through the SDK.
#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
}

impl SqsQueue {
    pub fn new(config: &aws_config::SdkConfig, url: impl Into<String>) -> SqsQueue {
        SqsQueue { client: Client::new(config), url: url.into() }
    }
}

fn err(operation: &str, e: impl std::fmt::Display) -> QueueError {
    QueueError(format!("SQS {operation}: {e}"))
}

#[async_trait::async_trait]
impl EventQueue for SqsQueue {
    async fn receive(&self, gate: &dyn CallGate, max: i32, wait_seconds: i32) -> Result<Vec<QueueMessage>, QueueError> {
        gate.acquire(ApiFamily::Sqs).await.map_err(|e| err("ReceiveMessage", e))?;
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10))
            .wait_time_seconds(wait_seconds.clamp(0, 20))
            .send()
            .await;
        gate.record(&crate::cloud::ops::RECEIVE_MESSAGE, if out.is_ok() { "ok" } else { "error" });
        let out = out.map_err(|e| err("ReceiveMessage", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| Some(QueueMessage { receipt: m.receipt_handle?, body: m.body.unwrap_or_default() }))
            .collect())
    }

    async fn delete(&self, gate: &dyn CallGate, receipts: &[String]) -> Result<(), QueueError> {
        // DeleteMessageBatch takes at most 10 entries.
        for chunk in receipts.chunks(10) {
            gate.acquire(ApiFamily::Sqs).await.map_err(|e| err("DeleteMessageBatch", e))?;
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(r)
                        .build()
                        .ok()
                })
                .collect();
            let out = self.client.delete_message_batch().queue_url(&self.url).set_entries(Some(entries)).send().await;
            gate.record(&crate::cloud::ops::DELETE_MESSAGE_BATCH, if out.is_ok() { "ok" } else { "error" });
            out.map_err(|e| err("DeleteMessageBatch", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        }
        Ok(())
    }
}
