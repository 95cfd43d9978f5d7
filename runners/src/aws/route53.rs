//! Route53 through the AWS SDK (ListResourceRecordSets,
//! ChangeResourceRecordSets): the DNS records of a node set.

use async_trait::async_trait;
use aws_sdk_route53::Client;
use aws_sdk_route53::types as r53;

use super::error::cloud_error;
use crate::cloud::dns::{Dns, RecordChange, RecordCursor, RecordPage, RecordSet, RecordType, normalize};
use crate::cloud::{CloudError, CloudResult, ErrorKind, Op, ops};

/// The Route53 facade of the SDK.
pub struct SdkDns {
    client: Client,
}

impl SdkDns {
    /// A client from the process's one SDK configuration.
    pub fn new(config: &aws_config::SdkConfig) -> SdkDns {
        SdkDns { client: Client::new(config) }
    }
}

/// The Route53 type of a record set Mooring writes (never [`RecordType::Other`]).
fn record_type(op: &Op, kind: RecordType) -> CloudResult<r53::RrType> {
    match kind {
        RecordType::A => Ok(r53::RrType::A),
        RecordType::Txt => Ok(r53::RrType::Txt),
        RecordType::Other => Err(CloudError::new(op, ErrorKind::Invalid, "Mooring writes only A and TXT record sets")),
    }
}

/// A TXT value as Route53 wants it: in double quotes, quotes and backslashes escaped.
fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A TXT value as Route53 answers it, without its quotes (one string; longer
/// values split into several quoted strings are joined).
fn unquote(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => out.extend(chars.next()),
            c if quoted => out.push(c),
            _ => {}
        }
    }
    if out.is_empty() && !value.contains('"') { value.to_string() } else { out }
}

fn build_error(op: &Op, e: aws_smithy_types::error::operation::BuildError) -> CloudError {
    CloudError::new(op, ErrorKind::Invalid, e.to_string())
}

fn to_sdk(op: &Op, set: &RecordSet) -> CloudResult<r53::ResourceRecordSet> {
    let mut builder =
        r53::ResourceRecordSet::builder().name(&set.name).r#type(record_type(op, set.kind)?).ttl(i64::from(set.ttl));
    for v in &set.values {
        let value = if set.kind == RecordType::Txt { quote(v) } else { v.clone() };
        builder = builder
            .resource_records(r53::ResourceRecord::builder().value(value).build().map_err(|e| build_error(op, e))?);
    }
    builder.build().map_err(|e| build_error(op, e))
}

fn from_sdk(set: &r53::ResourceRecordSet) -> RecordSet {
    let plain = set.set_identifier().is_none() && set.alias_target().is_none();
    let kind = match set.r#type() {
        r53::RrType::A if plain => RecordType::A,
        r53::RrType::Txt if plain => RecordType::Txt,
        _ => return RecordSet { name: normalize(set.name()), kind: RecordType::Other, ttl: 0, values: vec![] },
    };
    let mut values: Vec<String> = set
        .resource_records()
        .iter()
        .map(|r| if kind == RecordType::Txt { unquote(r.value()) } else { r.value().to_string() })
        .collect();
    values.sort();
    let ttl = set.ttl().and_then(|t| u32::try_from(t).ok()).unwrap_or_default();
    RecordSet { name: normalize(set.name()), kind, ttl, values }
}

/// A zone that does not exist is a missing reference (the spec names it).
fn in_zone(zone_id: &str, mut e: CloudError) -> CloudError {
    if e.message.starts_with("NoSuchHostedZone") {
        e.kind = ErrorKind::MissingReference;
        e.message = format!("hosted zone {zone_id} does not exist ({})", e.message);
    }
    e
}

#[async_trait]
impl Dns for SdkDns {
    async fn records(&self, zone_id: &str, from: &RecordCursor) -> CloudResult<RecordPage> {
        let op = ops::LIST_RESOURCE_RECORD_SETS;
        let page = self
            .client
            .list_resource_record_sets()
            .hosted_zone_id(zone_id)
            .start_record_name(&from.name)
            .set_start_record_type(from.kind.as_deref().map(r53::RrType::from))
            .set_start_record_identifier(from.identifier.clone())
            .send()
            .await
            .map_err(|e| in_zone(zone_id, cloud_error(&op, e)))?;
        let records = page.resource_record_sets().iter().map(from_sdk).collect();
        let next = match (page.is_truncated(), page.next_record_name()) {
            (true, Some(name)) => Some(RecordCursor {
                name: name.to_string(),
                kind: page.next_record_type().map(|t| t.as_str().to_string()),
                identifier: page.next_record_identifier().map(str::to_string),
            }),
            _ => None,
        };
        Ok(RecordPage { records, next })
    }

    async fn change(&self, zone_id: &str, changes: &[RecordChange]) -> CloudResult<()> {
        let op = ops::CHANGE_RESOURCE_RECORD_SETS;
        let mut batch = r53::ChangeBatch::builder().comment("mooring");
        for change in changes {
            let (action, set) = match change {
                RecordChange::Create(s) => (r53::ChangeAction::Create, s),
                RecordChange::Upsert(s) => (r53::ChangeAction::Upsert, s),
                RecordChange::Delete(s) => (r53::ChangeAction::Delete, s),
            };
            let change = r53::Change::builder()
                .action(action)
                .resource_record_set(to_sdk(&op, set)?)
                .build()
                .map_err(|e| build_error(&op, e))?;
            batch = batch.changes(change);
        }
        self.client
            .change_resource_record_sets()
            .hosted_zone_id(zone_id)
            .change_batch(batch.build().map_err(|e| build_error(&op, e))?)
            .send()
            .await
            .map_err(|e| in_zone(zone_id, cloud_error(&op, e)))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_values_round_trip_through_quotes() {
        for v in ["mooring:uid=4f0c", "with \"quotes\"", "back\\slash", ""] {
            assert_eq!(unquote(&quote(v)), v, "{v}");
        }
        assert_eq!(unquote("\"part one\" \"part two\""), "part onepart two");
        assert_eq!(unquote("bare"), "bare");
    }
}
