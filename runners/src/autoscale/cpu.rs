//! Batched CPU reads: one GetMetricData answers up to 500 services, and
//! CloudWatch calls share a budget, so the autoscaler never reads one service
//! per call. The observer remembers every service a reconcile asked about;
//! when one needs a value older than `fresh_for`, a single call reads it
//! together with every other remembered service whose value is due (up to
//! the batch limit), the same way [`crate::observe::ServiceObserver`]
//! batches DescribeServices.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::decision::Reading;
use crate::cloud::metrics::{MAX_METRIC_QUERIES, Metrics, ServiceKey};

#[derive(Debug, Clone)]
struct Entry {
    /// The last answer and when it was read (`None`: never, or it failed).
    read: Option<(Instant, Option<f64>)>,
    /// When a reconcile last asked.
    asked: Instant,
}

/// Services not asked about for this many `fresh_for` periods are forgotten.
const FORGET_AFTER: u32 = 20;

/// The CPU reads of one controller, shared by its reconciles.
pub struct CpuObserver {
    entries: Mutex<HashMap<ServiceKey, Entry>>,
    /// One GetMetricData at a time: callers behind it find their value in it.
    fetching: tokio::sync::Mutex<()>,
    fresh_for: Duration,
}

impl CpuObserver {
    /// An observer whose values are good for `fresh_for` (the scaling interval).
    pub fn new(fresh_for: Duration) -> CpuObserver {
        CpuObserver { entries: Mutex::default(), fetching: tokio::sync::Mutex::new(()), fresh_for }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ServiceKey, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fresh(&self, key: &ServiceKey, now: Instant) -> Option<Option<f64>> {
        let entries = self.lock();
        let (at, value) = entries.get(key)?.read?;
        (now.saturating_duration_since(at) < self.fresh_for).then_some(value)
    }

    /// The service's CPU, read with others when due. `metrics` is the caller's
    /// gated facade (budget and lease).
    pub async fn cpu(&self, metrics: &dyn Metrics, key: &ServiceKey) -> Reading<f64> {
        let now = Instant::now();
        self.lock().entry(key.clone()).and_modify(|e| e.asked = now).or_insert(Entry { read: None, asked: now });
        if let Some(v) = self.fresh(key, now) {
            return v.map_or(Reading::Missing, Reading::Value);
        }
        let _one = self.fetching.lock().await;
        let now = Instant::now();
        if let Some(v) = self.fresh(key, now) {
            return v.map_or(Reading::Missing, Reading::Value);
        }
        let batch: Vec<ServiceKey> = {
            let mut entries = self.lock();
            let forget = self.fresh_for * FORGET_AFTER;
            entries.retain(|k, e| k == key || now.saturating_duration_since(e.asked) < forget);
            let mut due: Vec<(&ServiceKey, &Entry)> = entries
                .iter()
                .filter(|(k, e)| {
                    *k != key && e.read.is_none_or(|(at, _)| now.saturating_duration_since(at) >= self.fresh_for)
                })
                .collect();
            // The ones asked about most recently are the likeliest to be needed next.
            due.sort_by_key(|(_, e)| std::cmp::Reverse(e.asked));
            std::iter::once(key.clone())
                .chain(due.into_iter().map(|(k, _)| k.clone()))
                .take(MAX_METRIC_QUERIES)
                .collect()
        };
        match metrics.service_cpu(&batch).await {
            Ok(values) => {
                {
                    let mut entries = self.lock();
                    for (k, v) in batch.iter().zip(values) {
                        if let Some(e) = entries.get_mut(k) {
                            e.read = Some((now, v));
                        }
                    }
                }
                self.fresh(key, now).flatten().map_or(Reading::Missing, Reading::Value)
            }
            // Out of CloudWatch budget for now: no reading, not a failure.
            Err(e) if e.is(crate::cloud::ErrorKind::OverBudget) => Reading::Missing,
            Err(e) => {
                tracing::warn!(error = %e, services = batch.len(), "cannot read service CPU");
                Reading::Failed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::CloudResult;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// CPU = 10 × the service's number; counts calls and batch sizes.
    #[derive(Default)]
    struct Fake {
        calls: AtomicUsize,
        largest: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Metrics for Fake {
        async fn service_cpu(&self, services: &[ServiceKey]) -> CloudResult<Vec<Option<f64>>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.largest.fetch_max(services.len(), Ordering::SeqCst);
            Ok(services.iter().map(|s| s.service.parse::<f64>().ok().map(|n| n * 10.0)).collect())
        }
        async fn alarms_firing(&self, _: &[String]) -> CloudResult<Vec<String>> {
            Ok(vec![])
        }
    }

    fn key(n: usize) -> ServiceKey {
        ServiceKey { cluster: "c".into(), service: n.to_string() }
    }

    #[tokio::test(start_paused = true)]
    async fn one_call_reads_every_due_service() {
        let fake = Fake::default();
        let cpu = CpuObserver::new(Duration::from_secs(15));
        // First asks: one call each (nothing else is known yet)...
        for n in 0..3 {
            assert_eq!(cpu.cpu(&fake, &key(n)).await, Reading::Value(n as f64 * 10.0));
        }
        let first = fake.calls.load(Ordering::SeqCst);
        // ...fresh values cost nothing...
        for n in 0..3 {
            cpu.cpu(&fake, &key(n)).await;
        }
        assert_eq!(fake.calls.load(Ordering::SeqCst), first);
        // ...and once they are due, the first ask reads all three in one call.
        tokio::time::advance(Duration::from_secs(16)).await;
        for n in 0..3 {
            cpu.cpu(&fake, &key(n)).await;
        }
        assert_eq!(fake.calls.load(Ordering::SeqCst), first + 1);
        assert_eq!(fake.largest.load(Ordering::SeqCst), 3);
        // No datapoint is Missing, not Failed.
        let none = ServiceKey { cluster: "c".into(), service: "new".into() };
        assert_eq!(cpu.cpu(&fake, &none).await, Reading::Missing);
    }
}
