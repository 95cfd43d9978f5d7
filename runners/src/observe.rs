//! Batched observation of ECS services and cached task definitions.
//!
//! AWS lets one DescribeServices describe ten services of a cluster, and ECS
//! reads share one account bucket, so observing services one call each would
//! make a fleet of 10,000 services cost 10,000 calls per resync. The
//! [`ServiceObserver`] remembers every service it was asked about; when a
//! reconcile needs a service whose last observation is too old, one call
//! describes it together with up to nine other services of the cluster whose
//! observations are the oldest, so a resync sweep costs about ⌈services / 10⌉
//! calls. Mooring's own writes feed the observer with AWS's answer, so a
//! reconcile never reads back an older state than the one it created.
//!
//! Task definitions are immutable, so [`TaskDefinitions`] keeps them by ARN.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::cloud::ecs::{MAX_DESCRIBE_SERVICES, Service, TaskDefinition};
use crate::cloud::{CloudResult, Ecs};

#[derive(Default)]
struct Entry {
    observed: Option<Instant>,
    service: Option<Service>,
}

#[derive(Default)]
struct ClusterView {
    /// One DescribeServices per cluster at a time: callers behind it usually
    /// find their service in the batch that just finished.
    describing: tokio::sync::Mutex<()>,
    entries: Mutex<HashMap<String, Entry>>,
}

impl ClusterView {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fresh(&self, name: &str, max_age: Duration, now: Instant) -> Option<Option<Service>> {
        let entries = self.entries();
        let entry = entries.get(name)?;
        let observed = entry.observed?;
        (now.saturating_duration_since(observed) <= max_age).then(|| entry.service.clone())
    }
}

/// Batches DescribeServices across resources; see the module documentation.
pub struct ServiceObserver {
    clusters: Mutex<HashMap<String, Arc<ClusterView>>>,
    /// Observations older than this are refreshed when a batch has room.
    stale_after: Duration,
}

impl ServiceObserver {
    /// An observer that treats observations older than `stale_after` as due.
    pub fn new(stale_after: Duration) -> ServiceObserver {
        ServiceObserver { clusters: Mutex::new(HashMap::new()), stale_after }
    }

    /// How old an observation may be before it is refreshed.
    pub fn stale_after(&self) -> Duration {
        self.stale_after
    }

    fn cluster(&self, cluster: &str) -> Arc<ClusterView> {
        let mut clusters = self.clusters.lock().unwrap_or_else(|e| e.into_inner());
        clusters.entry(cluster.to_string()).or_default().clone()
    }

    /// The service `name` of `cluster` as observed at most `max_age` ago
    /// (`None`: it does not exist). Describes it, with other due services of
    /// the cluster, when no such observation is at hand.
    pub async fn observe(
        &self,
        ecs: &dyn Ecs,
        cluster: &str,
        name: &str,
        max_age: Duration,
    ) -> CloudResult<Option<Service>> {
        let view = self.cluster(cluster);
        let asked = Instant::now();
        view.entries().entry(name.to_string()).or_default();
        if let Some(found) = view.fresh(name, max_age, asked) {
            return Ok(found);
        }
        let _describing = view.describing.lock().await;
        // A batch that finished while we waited may have described it, but only
        // an observation made after we asked is fresh enough for `max_age` zero.
        if let Some(found) = view.fresh(name, max_age.max(asked.elapsed()), Instant::now()) {
            return Ok(found);
        }
        let batch = self.batch(&view, name);
        let services = ecs.describe_services(cluster, &batch).await?;
        let now = Instant::now();
        let mut entries = view.entries();
        for n in &batch {
            let entry = entries.entry(n.clone()).or_default();
            entry.observed = Some(now);
            entry.service = services.iter().find(|s| &s.name == n).cloned();
        }
        Ok(entries.get(name).and_then(|e| e.service.clone()))
    }

    /// `name` and up to nine due services of the cluster, oldest first.
    fn batch(&self, view: &ClusterView, name: &str) -> Vec<String> {
        let now = Instant::now();
        let entries = view.entries();
        let mut due: Vec<(Option<Instant>, &String)> = entries
            .iter()
            .filter(|(n, e)| {
                n.as_str() != name && e.observed.is_none_or(|o| now.saturating_duration_since(o) > self.stale_after)
            })
            .map(|(n, e)| (e.observed, n))
            .collect();
        let room = MAX_DESCRIBE_SERVICES - 1;
        if due.len() > room {
            due.select_nth_unstable(room);
            due.truncate(room);
        }
        std::iter::once(name.to_string()).chain(due.into_iter().map(|(_, n)| n.clone())).collect()
    }

    /// Records what AWS answered to a create or update.
    pub fn record(&self, service: &Service) {
        let view = self.cluster(&service.cluster);
        let mut entries = view.entries();
        let entry = entries.entry(service.name.clone()).or_default();
        entry.observed = Some(Instant::now());
        entry.service = Some(service.clone());
    }

    /// Forgets a service: the next observation asks AWS. With `stop`, it is no
    /// longer described in other services' batches either (it was deleted).
    pub fn forget(&self, cluster: &str, name: &str, stop: bool) {
        let view = self.cluster(cluster);
        let mut entries = view.entries();
        if stop {
            entries.remove(name);
        } else if let Some(e) = entries.get_mut(name) {
            e.observed = None;
        }
    }
}

/// Task definitions by ARN; they never change once registered.
#[derive(Default)]
pub struct TaskDefinitions {
    by_arn: Mutex<HashMap<String, TaskDefinition>>,
}

/// Entries kept before the cache starts over (a revision is ~200 bytes here).
const TASK_DEFINITIONS_KEPT: usize = 100_000;

impl TaskDefinitions {
    /// The task definition `arn`, described once.
    pub async fn get(&self, ecs: &dyn Ecs, arn: &str) -> CloudResult<TaskDefinition> {
        if let Some(td) = self.lock().get(arn) {
            return Ok(td.clone());
        }
        let td = ecs.describe_task_definition(arn).await?;
        self.remember(&td);
        Ok(td)
    }

    /// Remembers a revision (after registering it).
    pub fn remember(&self, td: &TaskDefinition) {
        let mut map = self.lock();
        if map.len() >= TASK_DEFINITIONS_KEPT {
            map.clear();
        }
        map.insert(td.arn.clone(), td.clone());
    }

    /// Marks a revision deregistered.
    pub fn deregistered(&self, arn: &str) {
        if let Some(td) = self.lock().get_mut(arn) {
            td.active = false;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TaskDefinition>> {
        self.by_arn.lock().unwrap_or_else(|e| e.into_inner())
    }
}
