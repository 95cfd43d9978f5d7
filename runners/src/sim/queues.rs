//! Simulated SQS: queues with AWS's default attributes, validation and value
//! normalisation (a `RedrivePolicy` comes back re-serialised, as from AWS), and
//! CreateQueue's idempotency by name and attributes.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{ACCOUNT, Ctx, Inner, REGION, Slot, check_tags, valid_name};
use crate::cloud::queues::{QueueAttributes, Queues};
use crate::cloud::{CloudError, CloudResult, ErrorKind, Op, Tags, ops};

/// The URL of a queue.
pub(super) fn queue_url(name: &str) -> String {
    format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}")
}

/// The ARN of a queue.
pub(super) fn queue_arn(name: &str) -> String {
    format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")
}

/// The queue name in a URL of this account.
fn name_of(url: &str) -> Option<&str> {
    url.strip_prefix(&format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/"))
        .filter(|n| !n.is_empty() && !n.contains('/'))
}

/// Attributes SQS computes; callers may read but not set them.
const READ_ONLY: &[&str] = &[
    "QueueArn",
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
];

/// Integer attributes and their allowed ranges.
const RANGES: &[(&str, u64, u64)] = &[
    ("DelaySeconds", 0, 900),
    ("MaximumMessageSize", 1024, 1_048_576),
    ("MessageRetentionPeriod", 60, 1_209_600),
    ("ReceiveMessageWaitTimeSeconds", 0, 20),
    ("VisibilityTimeout", 0, 43_200),
    ("KmsDataKeyReusePeriodSeconds", 60, 86_400),
];

/// Attributes only FIFO queues have.
const FIFO_ONLY: &[&str] = &["ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit"];

/// The SQS facade of a [`super::SimCloud`].
pub(super) struct SimQueues(pub(super) Arc<Inner>);

/// One queue.
#[derive(Debug, Clone)]
struct QueueRec {
    url: String,
    attributes: QueueAttributes,
    tags: Tags,
}

/// Everything SQS holds.
#[derive(Default)]
pub(super) struct SqsState {
    queues: BTreeMap<String, Slot<QueueRec>>,
}

fn invalid(op: &Op, msg: impl Into<String>) -> CloudError {
    CloudError::new(op, ErrorKind::Invalid, msg)
}

fn missing(op: &Op) -> CloudError {
    CloudError::new(
        op,
        ErrorKind::NotFound,
        "AWS.SimpleQueueService.NonExistentQueue: The specified queue does not exist.",
    )
}

impl SqsState {
    fn exists(&self, name: &str) -> bool {
        self.queues.get(name).is_some_and(|s| s.cur.is_some())
    }

    /// Validates one attribute and returns the value SQS stores (`None`:
    /// remove it, as an empty `RedrivePolicy` does).
    fn normalize(&self, op: &Op, key: &str, value: &str, fifo: bool, create: bool) -> CloudResult<Option<String>> {
        let bad = |reason: &str| {
            invalid(
                op,
                format!("InvalidParameterValue: Value {value} for parameter {key} is invalid. Reason: {reason}"),
            )
        };
        if let Some((_, lo, hi)) = RANGES.iter().find(|(k, _, _)| *k == key) {
            let n: u64 = value.trim().parse().map_err(|_| bad("must be an integer"))?;
            if n < *lo || n > *hi {
                return Err(bad(&format!("must be between {lo} and {hi}")));
            }
            return Ok(Some(n.to_string()));
        }
        if FIFO_ONLY.contains(&key) && !fifo {
            return Err(invalid(op, format!("InvalidAttributeName: Unknown Attribute {key}.")));
        }
        match key {
            "SqsManagedSseEnabled" | "ContentBasedDeduplication" => match value {
                "true" | "false" => Ok(Some(value.to_owned())),
                _ => Err(bad("must be true or false")),
            },
            "FifoQueue" if !create => Err(invalid(op, "InvalidAttributeName: FifoQueue cannot be changed.")),
            "FifoQueue" => match (value, fifo) {
                ("true", true) | ("false", false) => Ok(Some(value.to_owned())),
                _ => Err(bad("a FIFO queue's name must end with .fifo")),
            },
            "DeduplicationScope" => match value {
                "messageGroup" | "queue" => Ok(Some(value.to_owned())),
                _ => Err(bad("must be messageGroup or queue")),
            },
            "FifoThroughputLimit" => match value {
                "perQueue" | "perMessageGroupId" => Ok(Some(value.to_owned())),
                _ => Err(bad("must be perQueue or perMessageGroupId")),
            },
            "KmsMasterKeyId" => Ok(Some(value.to_owned())),
            "Policy" | "RedriveAllowPolicy" => {
                serde_json::from_str::<serde_json::Value>(value).map_err(|_| bad("not valid JSON"))?;
                Ok(Some(value.to_owned()))
            }
            "RedrivePolicy" if value.is_empty() => Ok(None),
            "RedrivePolicy" => {
                let v: serde_json::Value = serde_json::from_str(value).map_err(|_| bad("not valid JSON"))?;
                let target = v
                    .get("deadLetterTargetArn")
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| bad("no deadLetterTargetArn"))?;
                let count = match v.get("maxReceiveCount") {
                    Some(serde_json::Value::Number(n)) => n.as_u64(),
                    Some(serde_json::Value::String(s)) => s.parse().ok(),
                    _ => None,
                }
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| bad("maxReceiveCount must be between 1 and 1000"))?;
                let dlq = target.strip_prefix(&format!("arn:aws:sqs:{REGION}:{ACCOUNT}:"));
                if !dlq.is_some_and(|n| self.exists(n)) {
                    return Err(bad("Dead-letter target does not exist."));
                }
                Ok(Some(serde_json::json!({"deadLetterTargetArn": target, "maxReceiveCount": count}).to_string()))
            }
            _ => Err(invalid(op, format!("InvalidAttributeName: Unknown Attribute {key}."))),
        }
    }

    fn normalize_all(
        &self,
        op: &Op,
        attributes: &QueueAttributes,
        fifo: bool,
        create: bool,
    ) -> CloudResult<BTreeMap<String, Option<String>>> {
        let mut out = BTreeMap::new();
        for (k, v) in attributes {
            if READ_ONLY.contains(&k.as_str()) {
                return Err(invalid(op, format!("InvalidAttributeName: Unknown Attribute {k}.")));
            }
            out.insert(k.clone(), self.normalize(op, k, v, fifo, create)?);
        }
        Ok(out)
    }

    pub(super) fn queue_url(&self, name: &str, ctx: &Ctx<'_>) -> Option<String> {
        self.queues.get(name).and_then(|s| s.view(ctx)).map(|q| q.url.clone())
    }

    pub(super) fn create(
        &mut self,
        name: &str,
        attributes: &QueueAttributes,
        tags: &Tags,
        ctx: &Ctx<'_>,
    ) -> CloudResult<String> {
        let op = ops::CREATE_QUEUE;
        let fifo = name.ends_with(".fifo");
        if !valid_name(name.strip_suffix(".fifo").unwrap_or(name), 80) || name.len() > 80 {
            return Err(invalid(
                &op,
                "InvalidParameterValue: Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
            ));
        }
        if fifo && attributes.get("FifoQueue").map(String::as_str) != Some("true") {
            return Err(invalid(
                &op,
                "InvalidParameterValue: The name of a FIFO queue must end with .fifo and FifoQueue must be true.",
            ));
        }
        let given = self.normalize_all(&op, attributes, fifo, true)?;
        check_tags(&op, tags)?;
        if let Some(q) = self.queues.get(name).and_then(|s| s.cur.as_ref()) {
            for (k, v) in &given {
                if q.attributes.get(k) != v.as_ref() {
                    return Err(CloudError::new(
                        &op,
                        ErrorKind::AlreadyExists,
                        format!(
                            "QueueAlreadyExists: A queue already exists with the same name and a different value for attribute {k}"
                        ),
                    ));
                }
            }
            return Ok(q.url.clone());
        }
        let now = ctx.epoch_secs().to_string();
        let mut attrs: QueueAttributes = [
            ("QueueArn", queue_arn(name)),
            ("ApproximateNumberOfMessages", "0".into()),
            ("ApproximateNumberOfMessagesNotVisible", "0".into()),
            ("ApproximateNumberOfMessagesDelayed", "0".into()),
            ("CreatedTimestamp", now.clone()),
            ("LastModifiedTimestamp", now),
            ("DelaySeconds", "0".into()),
            ("MaximumMessageSize", "262144".into()),
            ("MessageRetentionPeriod", "345600".into()),
            ("ReceiveMessageWaitTimeSeconds", "0".into()),
            ("VisibilityTimeout", "30".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        if !given.contains_key("KmsMasterKeyId") {
            attrs.insert("SqsManagedSseEnabled".into(), "true".into());
        }
        if fifo {
            for (k, v) in [
                ("FifoQueue", "true"),
                ("ContentBasedDeduplication", "false"),
                ("DeduplicationScope", "queue"),
                ("FifoThroughputLimit", "perQueue"),
            ] {
                attrs.insert(k.into(), v.into());
            }
        }
        for (k, v) in given {
            if let Some(v) = v {
                attrs.insert(k, v);
            }
        }
        let url = queue_url(name);
        let rec = QueueRec { url: url.clone(), attributes: attrs, tags: tags.clone() };
        *self.queues.entry(name.to_owned()).or_default().write(ctx.now) = Some(rec);
        Ok(url)
    }

    fn view(&self, op: &Op, url: &str, ctx: &Ctx<'_>) -> CloudResult<&QueueRec> {
        name_of(url).and_then(|n| self.queues.get(n)).and_then(|s| s.view(ctx)).ok_or_else(|| missing(op))
    }

    /// The queue for a write, after checking it exists.
    fn write(&mut self, op: &Op, url: &str, ctx: &Ctx<'_>) -> CloudResult<&mut QueueRec> {
        let name = name_of(url).ok_or_else(|| missing(op))?;
        match self.queues.get_mut(name) {
            Some(slot) if slot.cur.is_some() => slot.write(ctx.now).as_mut().ok_or_else(|| missing(op)),
            _ => Err(missing(op)),
        }
    }

    pub(super) fn attributes(&self, url: &str, ctx: &Ctx<'_>) -> CloudResult<QueueAttributes> {
        Ok(self.view(&ops::GET_QUEUE_ATTRIBUTES, url, ctx)?.attributes.clone())
    }

    pub(super) fn set(&mut self, url: &str, attributes: &QueueAttributes, ctx: &Ctx<'_>) -> CloudResult<()> {
        let op = ops::SET_QUEUE_ATTRIBUTES;
        let fifo = name_of(url).is_some_and(|n| n.ends_with(".fifo"));
        // Existence first, as SQS does.
        self.view(&op, url, &Ctx { stale: false, ..*ctx })?;
        let given = self.normalize_all(&op, attributes, fifo, false)?;
        let q = self.write(&op, url, ctx)?;
        for (k, v) in given {
            match v {
                Some(v) => q.attributes.insert(k, v),
                None => q.attributes.remove(&k),
            };
        }
        q.attributes.insert("LastModifiedTimestamp".into(), ctx.epoch_secs().to_string());
        Ok(())
    }

    pub(super) fn tags(&self, url: &str, ctx: &Ctx<'_>) -> CloudResult<Tags> {
        Ok(self.view(&ops::LIST_QUEUE_TAGS, url, ctx)?.tags.clone())
    }

    pub(super) fn tag(&mut self, url: &str, tags: &Tags, ctx: &Ctx<'_>) -> CloudResult<()> {
        let op = ops::TAG_QUEUE;
        let mut all = self.view(&op, url, &Ctx { stale: false, ..*ctx })?.tags.clone();
        all.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        check_tags(&op, &all)?;
        self.write(&op, url, ctx)?.tags = all;
        Ok(())
    }

    pub(super) fn untag(&mut self, url: &str, keys: &[String], ctx: &Ctx<'_>) -> CloudResult<()> {
        let q = self.write(&ops::UNTAG_QUEUE, url, ctx)?;
        for k in keys {
            q.tags.remove(k);
        }
        Ok(())
    }

    pub(super) fn delete(&mut self, url: &str, ctx: &Ctx<'_>) -> CloudResult<()> {
        if let Some(slot) = name_of(url).and_then(|n| self.queues.get_mut(n))
            && slot.cur.is_some()
        {
            *slot.write(ctx.now) = None;
        }
        Ok(())
    }

    // ---- inspection and out-of-band --------------------------------------

    pub(super) fn list(&self) -> Vec<(String, String)> {
        self.queues.iter().filter_map(|(n, s)| s.cur.as_ref().map(|q| (n.clone(), q.url.clone()))).collect()
    }

    pub(super) fn attributes_of(&self, name: &str) -> Option<QueueAttributes> {
        self.queues.get(name)?.cur.as_ref().map(|q| q.attributes.clone())
    }

    pub(super) fn tags_of(&self, name: &str) -> Option<Tags> {
        self.queues.get(name)?.cur.as_ref().map(|q| q.tags.clone())
    }

    pub(super) fn oob_set(&mut self, name: &str, key: &str, value: &str, ctx: &Ctx<'_>) -> bool {
        match self.queues.get_mut(name) {
            Some(slot) if slot.cur.is_some() => {
                if let Some(q) = slot.write(ctx.now) {
                    q.attributes.insert(key.to_owned(), value.to_owned());
                }
                true
            }
            _ => false,
        }
    }
}

#[async_trait]
impl Queues for SimQueues {
    async fn queue_url(&self, name: &str) -> CloudResult<Option<String>> {
        self.0.call(ops::GET_QUEUE_URL, name, |st, ctx| Ok(st.sqs.queue_url(name, ctx))).await
    }

    async fn create_queue(&self, name: &str, attributes: &QueueAttributes, tags: &Tags) -> CloudResult<String> {
        self.0.call(ops::CREATE_QUEUE, name, |st, ctx| st.sqs.create(name, attributes, tags, ctx)).await
    }

    async fn queue_attributes(&self, url: &str) -> CloudResult<QueueAttributes> {
        self.0.call(ops::GET_QUEUE_ATTRIBUTES, url, |st, ctx| st.sqs.attributes(url, ctx)).await
    }

    async fn set_queue_attributes(&self, url: &str, attributes: &QueueAttributes) -> CloudResult<()> {
        self.0.call(ops::SET_QUEUE_ATTRIBUTES, url, |st, ctx| st.sqs.set(url, attributes, ctx)).await
    }

    async fn queue_tags(&self, url: &str) -> CloudResult<Tags> {
        self.0.call(ops::LIST_QUEUE_TAGS, url, |st, ctx| st.sqs.tags(url, ctx)).await
    }

    async fn tag_queue(&self, url: &str, tags: &Tags) -> CloudResult<()> {
        self.0.call(ops::TAG_QUEUE, url, |st, ctx| st.sqs.tag(url, tags, ctx)).await
    }

    async fn untag_queue(&self, url: &str, keys: &[String]) -> CloudResult<()> {
        self.0.call(ops::UNTAG_QUEUE, url, |st, ctx| st.sqs.untag(url, keys, ctx)).await
    }

    async fn delete_queue(&self, url: &str) -> CloudResult<()> {
        self.0.call(ops::DELETE_QUEUE, url, |st, ctx| st.sqs.delete(url, ctx)).await
    }
}
