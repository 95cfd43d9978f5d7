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
use std::sync::{Arc, Mutex};

use api_types::AnyResource;
use tokio::sync::oneshot;

use super::resources::{WriteMode, WriteOutcome};
use super::{ChangeSource, Store, StoreError};

/// The most writes one transaction carries: enough to share a commit among
/// every concurrent writer of a busy API, few enough that the rows a batch
/// keeps locked are released soon.
pub const MAX_BATCH: usize = 64;

/// The most batches in flight at once. While they write and commit, the next
/// writes queue up and become the next batches. Fewer leaders make larger
/// batches (less CPU per write) but fewer writes in flight; four lost nothing
/// against a transaction per write with 16 clients and gained 16 % with 64
/// (docs/BENCHMARKS.md).
pub const MAX_LEADERS: usize = 4;

/// How long a write in a batch waits for a row lock (another transaction's,
/// such as a bulk apply's) before the batch gives up and its writes are made
/// one by one: a contended row holds up the batch's other writes for at most
/// that long (after it, each waits only for what a write on its own would).
const BATCH_LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '1s'";

/// One write waiting for its batch.
pub(super) struct Pending {
    pub(super) doc: AnyResource,
    pub(super) mode: WriteMode,
    pub(super) source: ChangeSource,
    pub(super) reply: oneshot::Sender<Result<WriteOutcome, StoreError>>,
}

/// A resource a write is for.
type Key = (api_types::Kind, String, String);

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

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Pending>,
    /// The resources batches are writing now: their next writes wait.
    writing: BTreeSet<Key>,
    leaders: usize,
}

impl GroupCommit {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a write; a new leader's place when the caller is to start one.
    pub(super) fn push(self: &Arc<Self>, pending: Pending) -> Option<Leading> {
        let mut q = self.lock();
        q.waiting.push_back(pending);
        (q.leaders < MAX_LEADERS).then(|| {
            q.leaders += 1;
            Leading { group: self.clone(), writing: Vec::new(), stopped: false }
        })
    }
}

/// A leader's place: counted among the leaders from the moment it is handed
/// out until it stops or is dropped (its task torn down, even before it ran),
/// with the resources of the batch it is writing.
pub(super) struct Leading {
    group: Arc<GroupCommit>,
    writing: Vec<Key>,
    stopped: bool,
}

impl Leading {
    /// Lets go of the last batch's resources and takes the next batch: up to
    /// `max` waiting writes, the first for each resource no batch is writing
    /// (later ones keep their place), sorted by resource so batches lock rows
    /// in one order. Empty when nothing can be taken, and then this leader
    /// stops, in the same step (a write queued after it starts a new leader;
    /// one queued behind a resource being written is taken by that writer's
    /// leader next).
    pub(super) fn next_batch(&mut self, max: usize) -> Vec<Pending> {
        let mut q = self.group.lock();
        let q = &mut *q;
        for k in self.writing.drain(..) {
            q.writing.remove(&k);
        }
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
            self.stopped = true;
        }
        batch.sort_by_cached_key(Pending::key);
        self.writing = batch.iter().map(Pending::key).collect();
        batch
    }
}

impl Drop for Leading {
    /// A leader torn down mid-batch lets its resources go and leaves the
    /// count, so the next write starts a leader in its place and no resource
    /// stays blocked. (Writes already queued wait for that next write.)
    fn drop(&mut self) {
        let mut q = self.group.lock();
        for k in &self.writing {
            q.writing.remove(k);
        }
        if !self.stopped {
            q.leaders -= 1;
        }
    }
}

/// Why a batch was not committed.
enum Undone {
    /// A statement of one of its writes failed: the writes are made again
    /// one by one, so each gets its own answer.
    Statement(StoreError),
    /// The transaction could not begin or commit (Postgres unreachable, a
    /// commit whose outcome is unknown): every writer gets that failure, and
    /// nothing is made again.
    Transaction(StoreError),
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

    /// The failure of a batch's transaction, for each of its writers (the
    /// driver's error cannot be cloned): a collision at commit stays a
    /// collision (retry), anything else — Postgres unreachable, a commit
    /// whose outcome is unknown — is the store being unavailable (503).
    fn for_each_writer(&self) -> StoreError {
        let what = match self {
            StoreError::Unavailable(e) | StoreError::Contention(e) | StoreError::Database(e) => super::describe(e),
            other => other.to_string(),
        };
        let again = sqlx::Error::Io(std::io::Error::other(what));
        match self {
            StoreError::Contention(_) => StoreError::Contention(again),
            _ => StoreError::Unavailable(again),
        }
    }
}

impl Store {
    /// A leader: writes batches until nothing waits.
    pub(super) async fn lead_batches(self, mut leading: Leading) {
        loop {
            let batch = leading.next_batch(MAX_BATCH);
            if batch.is_empty() {
                return;
            }
            self.write_batch(batch).await;
        }
    }

    /// Writes one batch and answers each of its writers.
    async fn write_batch(&self, batch: Vec<Pending>) {
        if batch.len() > 1 {
            match self.write_together(&batch).await {
                Ok(results) => {
                    metrics::observe_batch(batch.len());
                    for (p, r) in batch.into_iter().zip(results) {
                        let _ = p.reply.send(r);
                    }
                    return;
                }
                Err(Undone::Transaction(e)) => {
                    tracing::warn!(writes = batch.len(), error = %e, "a batch of writes could not be committed");
                    for p in batch {
                        let _ = p.reply.send(Err(e.for_each_writer()));
                    }
                    return;
                }
                Err(Undone::Statement(e)) => {
                    tracing::debug!(writes = batch.len(), error = %e, "a batched write failed; writing the batch one by one");
                }
            }
        }
        for p in batch {
            let r = self.write_alone(&p.doc, p.mode, &p.source).await;
            if r.is_ok() {
                metrics::observe_batch(1);
            }
            let _ = p.reply.send(r);
        }
    }

    /// The batch in one transaction: each write's result, or why nothing of
    /// it was written.
    async fn write_together(&self, batch: &[Pending]) -> Result<Vec<Result<WriteOutcome, StoreError>>, Undone> {
        // `BEGIN` alone, then the setting in the transaction: a begin that
        // failed part way never leaves a pooled connection in a failed
        // transaction, and dropping the transaction rolls it back.
        let mut tx = self.begin().await.map_err(Undone::Transaction)?;
        sqlx::query(BATCH_LOCK_TIMEOUT).execute(&mut *tx).await.map_err(|e| Undone::Transaction(e.into()))?;
        let mut results = Vec::with_capacity(batch.len());
        for p in batch {
            match self.write_in(&mut tx, &p.doc, p.mode.clone(), &p.source).await {
                Err(e) if !e.refused_before_writing() => return Err(Undone::Statement(e)),
                r => results.push(r),
            }
        }
        self.commit(tx).await.map_err(Undone::Transaction)?;
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
        let g = Arc::new(GroupCommit::default());
        let mut leaders = Vec::new();
        let mut rxs = Vec::new();
        for (i, name) in ["b", "a", "b", "c", "a", "d"].into_iter().enumerate() {
            let (p, rx) = pending(name);
            // The first writes start leaders; the writes after them only queue.
            if let Some(l) = g.push(p) {
                leaders.push(l);
            }
            assert_eq!(leaders.len(), (i + 1).min(MAX_LEADERS), "write {i}");
            rxs.push(rx);
        }
        let first = leaders[0].next_batch(3);
        assert_eq!(names(&first), ["a", "b", "c"]);
        // The second writes of `a` and `b` wait until the first are written.
        assert_eq!(names(&leaders[1].next_batch(10)), ["d"]);
        assert!(leaders[2].next_batch(10).is_empty(), "nothing free: this leader stops");
        // The first leader's next batch: what waited behind its resources.
        assert_eq!(names(&leaders[0].next_batch(10)), ["a", "b"]);
        // A stopped leader's place is free again.
        let spare = g.push(pending("e").0);
        assert!(spare.is_some());
        assert!(g.push(pending("f").0).is_none(), "every place is taken");
        // A leader torn down mid-batch lets its resources and its place go.
        drop(leaders.remove(0));
        let again = g.push(pending("a").0);
        assert!(again.is_some());
        assert_eq!(names(&leaders[2].next_batch(10)), ["a", "e", "f"]);
    }

    #[test]
    fn every_writer_of_a_batch_that_could_not_commit_hears_unavailable_or_a_collision() {
        let table = [
            (StoreError::Unavailable(sqlx::Error::PoolTimedOut), "Unavailable"),
            (StoreError::Contention(sqlx::Error::PoolTimedOut), "Contention"),
            (StoreError::Database(sqlx::Error::PoolTimedOut), "Unavailable"),
        ];
        for (e, want) in table {
            let each = e.for_each_writer();
            let got = match each {
                StoreError::Unavailable(_) => "Unavailable",
                StoreError::Contention(_) => "Contention",
                _ => "other",
            };
            assert_eq!(got, want, "{e}");
            // The message is the original's, said once.
            assert_eq!(each.to_string().matches("pool timed out").count(), 1, "{each}");
        }
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
