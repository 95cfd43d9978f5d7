//! Group commit: spec writes that arrive together share one transaction.
//!
//! Every [`Store::write`] joins a queue. A leader task takes what is waiting
//! (at most [`MAX_BATCH`] writes, at most one per resource), writes each in
//! turn inside one transaction — the same statements, checks and signed
//! revisions as a write on its own — and answers every writer when that
//! transaction commits. Under load many writes share one commit; a write that
//! arrives alone is written at once, alone, with no added wait.
//!
//! Every per-write guarantee holds inside a batch:
//! - optimistic concurrency and the revision chain: each write locks and reads
//!   its row in the batch's transaction; a resource has one write in flight
//!   at a time, in all batches, so writes to one resource are made in the
//!   order they arrived and each sees the one before;
//! - all or nothing: a write refused before it wrote (a stale
//!   `resourceVersion`, an existing name, an immutable field) answers its
//!   writer and leaves the rest of the batch going; a statement that fails
//!   (a taken AWS name, a deadlock, a value Postgres refuses) undoes the whole
//!   transaction, and its writes are then made again one by one, each in a
//!   transaction of its own, so each gets its own answer;
//! - the change feed: every write appends its change in the batch's
//!   transaction, so the feed sees a batch's writes when it commits;
//! - no deadlock between batches: a batch locks its rows in key order.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Mutex;

use api_types::AnyResource;
use tokio::sync::oneshot;

use super::resources::{WriteMode, WriteOutcome};
use super::{ChangeSource, Store, StoreError};

/// The most writes one transaction carries: enough to share a commit among
/// every concurrent writer of a busy API, few enough that the rows a batch
/// keeps locked are released soon.
pub(super) const MAX_BATCH: usize = 64;

/// The most batches in flight at once. While they write and commit, the next
/// writes queue up and become the next batch; more leaders would only make
/// smaller batches competing for the same two things (Postgres's CPU and its
/// WAL flush).
pub(super) const MAX_LEADERS: usize = 4;

/// One write waiting for its batch.
pub(super) struct Pending {
    pub(super) doc: AnyResource,
    pub(super) mode: WriteMode,
    pub(super) source: ChangeSource,
    pub(super) reply: oneshot::Sender<Result<WriteOutcome, StoreError>>,
}

impl Pending {
    /// The resource it writes: one write per resource is in flight.
    fn key(&self) -> Key {
        let meta = self.doc.metadata();
        (self.doc.kind(), meta.namespace.clone(), meta.name.clone())
    }
}

/// The queue of writes and how many leaders work it.
#[derive(Default)]
pub(super) struct GroupCommit {
    state: Mutex<Queue>,
}

/// A resource a write is for.
type Key = (api_types::Kind, String, String);

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Pending>,
    /// The resources batches are writing now: their next writes wait.
    writing: BTreeSet<Key>,
    leaders: usize,
}

impl GroupCommit {
    /// Queues a write; true when the caller is to start a leader for it.
    pub(super) fn push(&self, pending: Pending) -> bool {
        let mut q = self.state.lock().unwrap_or_else(|e| e.into_inner());
        q.waiting.push_back(pending);
        if q.leaders < MAX_LEADERS {
            q.leaders += 1;
            true
        } else {
            false
        }
    }

    /// The next batch: up to `max` waiting writes, the first for each
    /// resource no batch is writing (later ones keep their place), sorted by
    /// resource so batches lock rows in one order. Its resources count as
    /// being written until [`GroupCommit::finish`]. Empty when nothing can be
    /// taken, and then the leader asking stops: the leader writing what is
    /// left takes it next.
    pub(super) fn take(&self, max: usize) -> Vec<Pending> {
        let mut q = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let q = &mut *q;
        let mut batch = Vec::new();
        let mut rest = VecDeque::new();
        while let Some(p) = q.waiting.pop_front() {
            if batch.len() < max && q.writing.insert(p.key()) {
                batch.push(p);
            } else {
                rest.push_back(p);
                if batch.len() == max {
                    break;
                }
            }
        }
        rest.append(&mut q.waiting);
        q.waiting = rest;
        if batch.is_empty() {
            q.leaders -= 1;
        }
        batch.sort_by_cached_key(Pending::key);
        batch
    }

    /// A batch's resources are written: their next writes may be taken.
    fn finish(&self, keys: &[Key]) {
        let mut q = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            q.writing.remove(k);
        }
    }
}

/// A running leader and the resources it is writing. A leader that stops
/// because nothing waits has left the count already (in the same step that
/// found the queue empty, so a write queued just then starts a new one); one
/// torn down mid-batch leaves it here and lets its resources go, so the next
/// write starts a leader in its place and no resource stays blocked.
struct Leading<'a> {
    group: &'a GroupCommit,
    writing: Vec<Key>,
    stopped: bool,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        let mut q = self.group.state.lock().unwrap_or_else(|e| e.into_inner());
        for k in &self.writing {
            q.writing.remove(k);
        }
        if !self.stopped {
            q.leaders -= 1;
        }
    }
}

impl StoreError {
    /// Whether the write was refused before any of its statements ran, so the
    /// transaction it was part of can go on.
    fn refused_before_writing(&self) -> bool {
        matches!(
            self,
            StoreError::NotFound { .. }
                | StoreError::AlreadyExists { .. }
                | StoreError::Conflict { .. }
                | StoreError::Owned { .. }
                | StoreError::Invalid { .. }
        )
    }
}

impl Store {
    /// A leader: writes batches until nothing waits.
    pub(super) async fn lead_batches(self) {
        let mut leading = Leading { group: &self.group, writing: Vec::new(), stopped: false };
        loop {
            let batch = self.group.take(MAX_BATCH);
            if batch.is_empty() {
                leading.stopped = true;
                return;
            }
            leading.writing = batch.iter().map(Pending::key).collect();
            self.write_batch(batch).await;
            self.group.finish(&std::mem::take(&mut leading.writing));
        }
    }

    /// Writes one batch and answers each of its writers.
    async fn write_batch(&self, batch: Vec<Pending>) {
        metrics::observe_batch(batch.len());
        if batch.len() > 1 {
            match self.write_together(&batch).await {
                Ok(results) => {
                    for (p, r) in batch.into_iter().zip(results) {
                        let _ = p.reply.send(r);
                    }
                    return;
                }
                Err(e) => {
                    tracing::debug!(writes = batch.len(), error = %e, "a batched write failed; writing the batch one by one");
                }
            }
        }
        for p in batch {
            let r = self.write_alone(&p.doc, p.mode, &p.source).await;
            let _ = p.reply.send(r);
        }
    }

    /// The batch in one transaction: each write's result, or the error that
    /// undid the transaction.
    async fn write_together(&self, batch: &[Pending]) -> Result<Vec<Result<WriteOutcome, StoreError>>, StoreError> {
        let mut tx = self.begin().await?;
        let mut results = Vec::with_capacity(batch.len());
        for p in batch {
            match self.write_in(&mut tx, &p.doc, p.mode.clone(), &p.source).await {
                Err(e) if !e.refused_before_writing() => return Err(e),
                r => results.push(r),
            }
        }
        self.commit(tx).await?;
        Ok(results)
    }
}

/// The batch-size histogram, for `/metrics`.
pub mod metrics {
    use std::sync::LazyLock;

    use prometheus_client::metrics::histogram::Histogram;

    /// How many writes each committed batch carried.
    pub static BATCH_WRITES: LazyLock<Histogram> =
        LazyLock::new(|| Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]));

    pub(super) fn observe_batch(writes: usize) {
        BATCH_WRITES.observe(writes as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(name: &str) -> (Pending, oneshot::Receiver<Result<WriteOutcome, StoreError>>) {
        let doc = AnyResource::from_value(
            api_types::Kind::Relay,
            serde_json::json!({"apiVersion": "mooring/v1", "kind": "Relay", "metadata": {"name": name},
                "spec": {"cluster": "c", "containers": [{"name": "app", "image": "i", "port": 80}]}}),
        )
        .expect("a relay");
        let (reply, rx) = oneshot::channel();
        (Pending { doc, mode: WriteMode::Upsert, source: ChangeSource::api("t"), reply }, rx)
    }

    fn names(batch: &[Pending]) -> Vec<String> {
        batch.iter().map(|p| p.doc.metadata().name.clone()).collect()
    }

    #[test]
    fn one_write_per_resource_is_in_flight_batches_are_in_key_order_and_the_rest_keep_their_place() {
        let g = GroupCommit::default();
        let mut rxs = Vec::new();
        for (i, name) in ["b", "a", "b", "c", "a", "d"].into_iter().enumerate() {
            let (p, rx) = pending(name);
            // Two leaders start; the writes after them only queue.
            assert_eq!(g.push(p), i < MAX_LEADERS, "write {i}");
            rxs.push(rx);
        }
        let first = g.take(3);
        assert_eq!(names(&first), ["a", "b", "c"]);
        // The second writes of `a` and `b` wait until the first are written.
        assert_eq!(names(&g.take(10)), ["d"]);
        assert!(g.take(10).is_empty(), "nothing free: this leader stops");
        g.finish(&first.iter().map(Pending::key).collect::<Vec<_>>());
        assert_eq!(names(&g.take(10)), ["a", "b"]);
        // One leader stopped; the next write starts one again.
        assert!(g.push(pending("e").0));
        assert!(!g.push(pending("f").0), "both leaders run");
    }

    #[test]
    fn only_refusals_before_writing_let_a_batch_go_on() {
        let relay = |n: &str| (api_types::Kind::Relay, "default".to_string(), n.to_string());
        let (kind, namespace, name) = relay("r");
        let table = [
            (StoreError::AlreadyExists { kind, namespace: namespace.clone(), name: name.clone() }, true),
            (
                StoreError::Conflict { kind, namespace: namespace.clone(), name: name.clone(), reason: "stale".into() },
                true,
            ),
            (StoreError::NotFound { kind, namespace: namespace.clone(), name: name.clone() }, true),
            (
                StoreError::NameTaken {
                    kind,
                    namespace: namespace.clone(),
                    name: name.clone(),
                    claim: "x".into(),
                    holder: "y".into(),
                },
                false,
            ),
            (StoreError::Contention(sqlx::Error::PoolTimedOut), false),
            (StoreError::Unavailable(sqlx::Error::PoolTimedOut), false),
        ];
        for (e, goes_on) in table {
            assert_eq!(e.refused_before_writing(), goes_on, "{e}");
        }
    }
}
