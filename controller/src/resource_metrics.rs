//! Per-resource gauges on `/metrics`, like kube-state-metrics: each resource's
//! conditions, replica counts and generations, read from the store.
//!
//! Every replica exports the resources of the shards it holds, so across
//! replicas each resource is exported exactly once and the work is split; a
//! shard nobody holds has no gauges (the `shards` / `leases_held` alert says
//! so). A resource's series go with it: each refresh replaces the whole set.
//!
//! `mooring_resource_metrics_refreshed_timestamp_seconds` says when the
//! exported set was read: a refresh that fails keeps the last set, and the
//! timestamp shows it is stale.
//!
//! A condition is one series with its current status and the value 1, not
//! kube-state-metrics' three series (True, False, Unknown, two of them 0): a
//! third of the series at fleet scale, and `== 1` queries read the same. A
//! resource without a `Ready` condition yet shows `Ready` as `Unknown`.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use api_types::Kind;
use desired_state::store::{ResourceSummary, Store, StoreError};
use futures::TryStreamExt;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;

use crate::lease::{ShardLeases, shard_of};

/// The condition every resource shows, `Unknown` until it is reported.
const READY: &str = "Ready";

/// The resources this replica exports, replaced whole on each refresh.
#[derive(Debug, Default)]
pub struct ResourceGauges {
    snapshot: RwLock<Arc<Snapshot>>,
}

/// The exported resources, compact: at 100,000 resources a row is about
/// 150 bytes, with namespaces, condition types and statuses stored once.
#[derive(Debug, Default)]
pub struct Snapshot {
    strings: Vec<Box<str>>,
    rows: Vec<Row>,
    /// When it was read from the store (seconds since the epoch; 0: never).
    taken_at: f64,
}

#[derive(Debug)]
struct Row {
    kind: Kind,
    namespace: u32,
    name: Box<str>,
    generation: i64,
    observed_generation: Option<i64>,
    /// `(type, status)` as indexes into `strings`.
    conditions: Box<[(u32, u32)]>,
    has_ready: bool,
    desired: Option<i64>,
    running: Option<i64>,
}

impl Row {
    /// The series this resource adds: its conditions (at least `Ready`), its
    /// two replica counts when it has them, and its two generations.
    fn series(&self) -> usize {
        let conditions = self.conditions.len() + usize::from(!self.has_ready);
        let replicas = usize::from(self.desired.is_some()) + usize::from(self.running.is_some());
        conditions + replicas + 1 + usize::from(self.observed_generation.is_some())
    }
}

/// Builds a [`Snapshot`] row by row.
#[derive(Debug, Default)]
pub struct SnapshotBuilder {
    snapshot: Snapshot,
    index: HashMap<String, u32>,
}

impl SnapshotBuilder {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(i) = self.index.get(s) {
            return *i;
        }
        let i = self.snapshot.strings.len() as u32;
        self.snapshot.strings.push(s.into());
        self.index.insert(s.to_string(), i);
        i
    }

    /// Adds one resource (one of an unknown kind is left out).
    pub fn push(&mut self, r: &ResourceSummary) {
        let Ok(kind) = r.kind.parse::<Kind>() else { return };
        let conditions: Box<[(u32, u32)]> =
            r.conditions.iter().map(|(t, s)| (self.intern(t), self.intern(s))).collect();
        let row = Row {
            kind,
            namespace: self.intern(&r.namespace),
            name: r.name.as_str().into(),
            generation: r.generation,
            observed_generation: r.observed_generation,
            has_ready: r.conditions.iter().any(|(t, _)| t == READY),
            conditions,
            desired: r.replicas_desired,
            running: r.replicas_running,
        };
        self.snapshot.rows.push(row);
    }

    /// The snapshot built, read from the store at `taken_at`.
    pub fn finish(mut self, taken_at: chrono::DateTime<chrono::Utc>) -> Snapshot {
        self.snapshot.rows.shrink_to_fit();
        self.snapshot.taken_at = taken_at.timestamp_millis() as f64 / 1000.0;
        self.snapshot
    }
}

impl Snapshot {
    fn text(&self, i: u32) -> &str {
        self.strings.get(i as usize).map_or("", |s| s)
    }

    fn labels<'a>(&'a self, r: &'a Row) -> [(&'static str, &'a str); 3] {
        [("namespace", self.text(r.namespace)), ("kind", r.kind.as_str()), ("name", &r.name)]
    }

    /// How many per-resource series it makes.
    pub fn series(&self) -> usize {
        self.rows.iter().map(Row::series).sum()
    }

    /// How many resources it holds.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

impl ResourceGauges {
    /// Replaces what is exported.
    pub fn replace(&self, snapshot: Snapshot) {
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snapshot);
    }

    /// What is exported now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Collector for ResourceGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snapshot = self.snapshot();
        let one = ConstGauge::new(1i64);

        let mut family = encoder.encode_descriptor(
            "resource_condition",
            "A resource's conditions: one series per condition with its current status, value 1",
            None,
            one.metric_type(),
        )?;
        for r in &snapshot.rows {
            let [ns, kind, name] = snapshot.labels(r);
            let conditions = r.conditions.iter().map(|(t, s)| (snapshot.text(*t), snapshot.text(*s)));
            let missing_ready = (!r.has_ready).then_some((READY, "Unknown"));
            for (type_, status) in conditions.chain(missing_ready) {
                one.encode(family.encode_family(&[ns, kind, name, ("type", type_), ("status", status)])?)?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "resource_replicas",
            "A relay's or worker's tasks: desired (the service's desired count) and running",
            None,
            one.metric_type(),
        )?;
        for r in &snapshot.rows {
            let [ns, kind, name] = snapshot.labels(r);
            for (state, value) in [("desired", r.desired), ("running", r.running)] {
                if let Some(v) = value {
                    ConstGauge::new(v).encode(family.encode_family(&[ns, kind, name, ("state", state)])?)?;
                }
            }
        }

        let mut family = encoder.encode_descriptor(
            "resource_generation",
            "A resource's spec generation (bumped by every spec change)",
            None,
            one.metric_type(),
        )?;
        for r in &snapshot.rows {
            ConstGauge::new(r.generation).encode(family.encode_family(&snapshot.labels(r))?)?;
        }

        let mut family = encoder.encode_descriptor(
            "resource_observed_generation",
            "The generation the controller last acted on; below resource_generation while a change is pending",
            None,
            one.metric_type(),
        )?;
        for r in &snapshot.rows {
            if let Some(g) = r.observed_generation {
                ConstGauge::new(g).encode(family.encode_family(&snapshot.labels(r))?)?;
            }
        }

        let count = ConstGauge::new(snapshot.series() as i64);
        let family = encoder.encode_descriptor(
            "resource_metric_series",
            "Per-resource series this replica exports (the mooring_resource_* families)",
            None,
            count.metric_type(),
        )?;
        count.encode(family)?;

        let taken = ConstGauge::new(snapshot.taken_at);
        let family = encoder.encode_descriptor(
            "resource_metrics_refreshed_timestamp_seconds",
            "When this replica last read the resource gauges from the store (stale: the refresh fails)",
            None,
            taken.metric_type(),
        )?;
        taken.encode(family)?;
        Ok(())
    }
}

/// Refreshes [`ResourceGauges`] from the store every `every`, keeping the
/// resources of the shards this replica holds.
pub struct ResourceMetricsRefresh {
    /// Where the resources are read.
    pub store: Store,
    /// Which shards this replica holds.
    pub leases: Arc<ShardLeases>,
    /// What `/metrics` exports.
    pub gauges: Arc<ResourceGauges>,
    /// How often.
    pub every: Duration,
}

impl ResourceMetricsRefresh {
    /// Reads the store once and replaces the gauges with the resources of
    /// the shards held now.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let kinds: Vec<&str> = Kind::RECONCILED.iter().map(|k| k.as_str()).collect();
        let held: BTreeSet<u32> = self.leases.owned().shard_ids().collect();
        let shards = self.leases.config().shards;
        let taken_at = chrono::Utc::now();
        let mut builder = SnapshotBuilder::default();
        // A replica that holds no shard exports nothing, and reads nothing for it.
        if !held.is_empty() {
            let mut rows = self.store.resource_summaries(&kinds);
            while let Some(r) = rows.try_next().await? {
                if is_held(&r, &held, shards) {
                    builder.push(&r);
                }
            }
        }
        self.gauges.replace(builder.finish(taken_at));
        Ok(())
    }

    /// Refreshes every interval until `stop` turns true.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.refresh().await {
                tracing::warn!(error = %e, "cannot refresh the resource gauges; keeping the last ones");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.every) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}

/// Whether the resource's shard is among those held.
fn is_held(r: &ResourceSummary, held: &BTreeSet<u32>, shards: u32) -> bool {
    held.contains(&shard_of(&r.kind, &r.namespace, &r.name, shards))
}

#[cfg(test)]
mod tests {
    use prometheus_client::registry::Registry;
    use sqlx::types::Json;

    use super::*;

    fn row(name: &str, conditions: &[(&str, &str)], replicas: Option<(i64, i64)>) -> ResourceSummary {
        ResourceSummary {
            kind: "Relay".into(),
            namespace: "default".into(),
            name: name.into(),
            generation: 3,
            observed_generation: Some(2),
            conditions: Json(conditions.iter().map(|(t, s)| (t.to_string(), s.to_string())).collect()),
            replicas_desired: replicas.map(|r| r.0),
            replicas_running: replicas.map(|r| r.1),
        }
    }

    fn snapshot_of(rows: &[ResourceSummary]) -> Snapshot {
        let mut builder = SnapshotBuilder::default();
        rows.iter().for_each(|r| builder.push(r));
        builder.finish(chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap())
    }

    fn encoded(rows: Vec<ResourceSummary>) -> String {
        let gauges = Arc::new(ResourceGauges::default());
        gauges.replace(snapshot_of(&rows));
        let mut registry = Registry::with_prefix("mooring");
        registry.register_collector(Box::new(gauges));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn each_resource_exports_its_conditions_replicas_and_generations() {
        let text =
            encoded(vec![row("api", &[("Ready", "True"), ("Synced", "True")], Some((3, 2))), row("new", &[], None)]);
        let expected = [
            "mooring_resource_condition{namespace=\"default\",kind=\"Relay\",name=\"api\",type=\"Ready\",status=\"True\"} 1",
            "mooring_resource_condition{namespace=\"default\",kind=\"Relay\",name=\"api\",type=\"Synced\",status=\"True\"} 1",
            "mooring_resource_condition{namespace=\"default\",kind=\"Relay\",name=\"new\",type=\"Ready\",status=\"Unknown\"} 1",
            "mooring_resource_replicas{namespace=\"default\",kind=\"Relay\",name=\"api\",state=\"desired\"} 3",
            "mooring_resource_replicas{namespace=\"default\",kind=\"Relay\",name=\"api\",state=\"running\"} 2",
            "mooring_resource_generation{namespace=\"default\",kind=\"Relay\",name=\"api\"} 3",
            "mooring_resource_observed_generation{namespace=\"default\",kind=\"Relay\",name=\"api\"} 2",
            // api: 2 conditions + 2 replicas + 2 generations; new: Ready + 2 generations.
            "mooring_resource_metric_series 9",
            "mooring_resource_metrics_refreshed_timestamp_seconds 1700000000.0",
        ];
        for line in expected {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
        assert!(!text.contains("name=\"new\",state="), "no replica series without replica counts");
    }

    #[test]
    fn series_per_resource_stay_few() {
        // Table: conditions, replicas → series.
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<(i64, i64)>, usize);
        let cases: [Case; 4] = [
            (&[], None, 3),
            (&[("Ready", "False")], None, 3),
            (
                &[("Ready", "True"), ("Synced", "True"), ("Progressing", "False"), ("Degraded", "False")],
                Some((1, 1)),
                8,
            ),
            (&[("Synced", "False")], Some((0, 0)), 6),
        ];
        for (conditions, replicas, want) in cases {
            assert_eq!(snapshot_of(&[row("x", conditions, replicas)]).series(), want, "{conditions:?} {replicas:?}");
        }
    }

    #[test]
    fn only_the_held_shards_are_exported() {
        let rows: Vec<ResourceSummary> = (0..64).map(|i| row(&format!("r{i}"), &[], None)).collect();
        let shards = 4;
        let mut seen = 0;
        for shard in 0..shards {
            let held = BTreeSet::from([shard]);
            let mine: Vec<&ResourceSummary> = rows.iter().filter(|r| is_held(r, &held, shards)).collect();
            assert!(mine.iter().all(|r| shard_of(&r.kind, &r.namespace, &r.name, shards) == shard));
            seen += mine.len();
        }
        assert_eq!(seen, rows.len(), "every resource is exported by exactly one shard's holder");
        assert!(!rows.iter().any(|r| is_held(r, &BTreeSet::new(), shards)));
    }

    #[test]
    fn strings_are_stored_once_and_unknown_kinds_left_out() {
        let mut rows: Vec<ResourceSummary> =
            (0..10).map(|i| row(&format!("r{i}"), &[("Ready", "True"), ("Synced", "True")], None)).collect();
        rows.push(ResourceSummary { kind: "Gadget".into(), ..row("odd", &[], None) });
        let snapshot = snapshot_of(&rows);
        assert_eq!(snapshot.len(), 10);
        // default, Ready, True, Synced.
        assert_eq!(snapshot.strings.len(), 4, "{:?}", snapshot.strings);
    }
}
