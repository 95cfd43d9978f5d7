//! Simulated Route53: private hosted zones (made by tests,
//! [`super::SimCloud::create_private_zone`]) holding A and TXT record sets,
//! changed in atomic batches with Route53's CREATE / UPSERT / DELETE rules.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::Inner;
use crate::cloud::dns::{
    Dns, MAX_CHANGES, PAGE_SIZE, RecordChange, RecordCursor, RecordPage, RecordSet, RecordType, order_key, under,
};
use crate::cloud::{CloudError, CloudResult, ErrorKind, Op, ops};

/// The Route53 facade of a [`super::SimCloud`].
pub(super) struct SimDns(pub(super) Arc<Inner>);

/// One hosted zone: its name and record sets by (name, type).
#[derive(Debug, Clone, Default)]
pub(super) struct Zone {
    pub(super) name: String,
    pub(super) records: BTreeMap<(String, RecordType), RecordSet>,
}

/// Every hosted zone, by id.
#[derive(Default)]
pub(super) struct DnsState {
    pub(super) zones: BTreeMap<String, Zone>,
}

fn invalid(op: &Op, message: String) -> CloudError {
    CloudError::new(op, ErrorKind::Invalid, format!("InvalidChangeBatch: {message}"))
}

impl DnsState {
    fn zone(&mut self, op: &Op, zone_id: &str) -> CloudResult<&mut Zone> {
        self.zones.get_mut(zone_id).ok_or_else(|| {
            CloudError::new(
                op,
                ErrorKind::MissingReference,
                format!("NoSuchHostedZone: No hosted zone found with ID: {zone_id}"),
            )
        })
    }

    /// Applies a batch to a copy of the zone and keeps it only when every
    /// change is valid, as Route53 does.
    pub(super) fn change(&mut self, op: &Op, zone_id: &str, changes: &[RecordChange]) -> CloudResult<()> {
        if changes.is_empty() || changes.len() > MAX_CHANGES {
            return Err(CloudError::new(
                op,
                ErrorKind::Invalid,
                format!("InvalidInput: a batch holds 1 to {MAX_CHANGES} changes, got {}", changes.len()),
            ));
        }
        let zone = self.zone(op, zone_id)?;
        let mut records = zone.records.clone();
        for change in changes {
            let (RecordChange::Create(set) | RecordChange::Upsert(set) | RecordChange::Delete(set)) = change;
            if !under(&set.name, &zone.name) {
                return Err(invalid(
                    op,
                    format!("RRSet with DNS name {} is not permitted in zone {}", set.name, zone.name),
                ));
            }
            if set.values.is_empty() && !matches!(change, RecordChange::Delete(_)) {
                return Err(invalid(op, format!("RRSet {} {} has no values", set.name, set.kind.as_str())));
            }
            let key = (set.name.clone(), set.kind);
            match change {
                RecordChange::Create(_) if records.contains_key(&key) => {
                    return Err(invalid(
                        op,
                        format!(
                            "Tried to create resource record set [name='{}.', type='{}'] but it already exists",
                            set.name,
                            set.kind.as_str()
                        ),
                    ));
                }
                RecordChange::Create(_) | RecordChange::Upsert(_) => {
                    records.insert(key, set.clone());
                }
                RecordChange::Delete(_) => match records.get(&key) {
                    Some(existing) if existing == set => {
                        records.remove(&key);
                    }
                    _ => {
                        return Err(invalid(
                            op,
                            format!(
                                "Tried to delete resource record set [name='{}.', type='{}'] but the values provided do not match the current values",
                                set.name,
                                set.kind.as_str()
                            ),
                        ));
                    }
                },
            }
        }
        zone.records = records;
        Ok(())
    }
}

#[async_trait]
impl Dns for SimDns {
    async fn records(&self, zone_id: &str, from: &RecordCursor) -> CloudResult<RecordPage> {
        let op = ops::LIST_RESOURCE_RECORD_SETS;
        self.0
            .call(op, zone_id, |st, _| {
                let zone = st.dns.zone(&op, zone_id)?;
                // Route53's order: by name (labels reversed), then type.
                let mut all: Vec<&RecordSet> = zone.records.values().collect();
                all.sort_by_key(|r| (order_key(&r.name), r.kind.as_str()));
                let start = (order_key(&from.name), from.kind.clone().unwrap_or_default());
                let mut rest =
                    all.into_iter().filter(|r| (order_key(&r.name), r.kind.as_str().to_string()) >= start).peekable();
                let records: Vec<RecordSet> = rest.by_ref().take(PAGE_SIZE).cloned().collect();
                let next = rest.peek().map(|r| RecordCursor {
                    name: r.name.clone(),
                    kind: Some(r.kind.as_str().to_string()),
                    identifier: None,
                });
                Ok(RecordPage { records, next })
            })
            .await
    }

    async fn change(&self, zone_id: &str, changes: &[RecordChange]) -> CloudResult<()> {
        let op = ops::CHANGE_RESOURCE_RECORD_SETS;
        self.0.call(op, zone_id, |st, _| st.dns.change(&op, zone_id, changes)).await
    }
}
