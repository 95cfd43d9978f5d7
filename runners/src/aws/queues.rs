//! The SQS queue facade over the AWS SDK: the queues workers own (create,
//! inspect and correct attributes and tags, delete).
//!
//! Messages are not handled here: the event trigger's [`super::sqs`] does that.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::QueueAttributeName;

use super::error::cloud_error;
use crate::cloud::queues::{QueueAttributes, Queues};
use crate::cloud::{CloudError, CloudResult, ErrorKind, Tags, ops};

/// SQS through the SDK; the implementation of [`Queues`] that talks to AWS (or moto).
#[derive(Clone, Debug)]
pub struct SdkQueues {
    client: Client,
}

impl SdkQueues {
    /// A facade over a client built from the shared configuration.
    pub fn new(config: &aws_config::SdkConfig) -> SdkQueues {
        SdkQueues { client: Client::new(config) }
    }

    /// A facade over an existing client (tests, custom configuration).
    pub fn from_client(client: Client) -> SdkQueues {
        SdkQueues { client }
    }
}

fn sdk_attributes(attributes: &QueueAttributes) -> HashMap<QueueAttributeName, String> {
    attributes.iter().map(|(k, v)| (QueueAttributeName::from(k.as_str()), v.clone())).collect()
}

#[async_trait]
impl Queues for SdkQueues {
    async fn queue_url(&self, name: &str) -> CloudResult<Option<String>> {
        let op = ops::GET_QUEUE_URL;
        match self.client.get_queue_url().queue_name(name).send().await {
            Ok(out) => Ok(out.queue_url),
            Err(e) => {
                let err = cloud_error(&op, e);
                if err.is(ErrorKind::NotFound) { Ok(None) } else { Err(err) }
            }
        }
    }

    async fn create_queue(&self, name: &str, attributes: &QueueAttributes, tags: &Tags) -> CloudResult<String> {
        let op = ops::CREATE_QUEUE;
        let out = self
            .client
            .create_queue()
            .queue_name(name)
            .set_attributes((!attributes.is_empty()).then(|| sdk_attributes(attributes)))
            .set_tags((!tags.is_empty()).then(|| tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect()))
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        out.queue_url.ok_or_else(|| CloudError::new(&op, ErrorKind::Other, "the answer has no queue URL"))
    }

    async fn queue_attributes(&self, url: &str) -> CloudResult<QueueAttributes> {
        let op = ops::GET_QUEUE_ATTRIBUTES;
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        Ok(out.attributes.unwrap_or_default().into_iter().map(|(k, v)| (k.as_str().to_string(), v)).collect())
    }

    async fn set_queue_attributes(&self, url: &str, attributes: &QueueAttributes) -> CloudResult<()> {
        if attributes.is_empty() {
            return Ok(());
        }
        let op = ops::SET_QUEUE_ATTRIBUTES;
        self.client
            .set_queue_attributes()
            .queue_url(url)
            .set_attributes(Some(sdk_attributes(attributes)))
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        Ok(())
    }

    async fn queue_tags(&self, url: &str) -> CloudResult<Tags> {
        let op = ops::LIST_QUEUE_TAGS;
        let out = self.client.list_queue_tags().queue_url(url).send().await.map_err(|e| cloud_error(&op, e))?;
        Ok(out.tags.unwrap_or_default().into_iter().collect())
    }

    async fn tag_queue(&self, url: &str, tags: &Tags) -> CloudResult<()> {
        if tags.is_empty() {
            return Ok(());
        }
        let op = ops::TAG_QUEUE;
        self.client
            .tag_queue()
            .queue_url(url)
            .set_tags(Some(tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect()))
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        Ok(())
    }

    async fn untag_queue(&self, url: &str, keys: &[String]) -> CloudResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let op = ops::UNTAG_QUEUE;
        self.client
            .untag_queue()
            .queue_url(url)
            .set_tag_keys(Some(keys.to_vec()))
            .send()
            .await
            .map_err(|e| cloud_error(&op, e))?;
        Ok(())
    }

    async fn delete_queue(&self, url: &str) -> CloudResult<()> {
        let op = ops::DELETE_QUEUE;
        match self.client.delete_queue().queue_url(url).send().await {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = cloud_error(&op, e);
                if err.is(ErrorKind::NotFound) { Ok(()) } else { Err(err) }
            }
        }
    }
}
