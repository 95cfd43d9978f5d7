//! The work queue of resource keys that feeds the reconcile workers.
//!
//! Semantics follow controller-runtime's work queue, with kube-rs's scheduler rule for delays:
//! - a key is queued at most once, however many times it is added;
//! - a key is never handed to two workers at once: a key added while it is being processed is
//!   marked dirty and queued again when its worker calls [`WorkQueue::done`], so a change that
//!   arrived during a reconcile is never lost;
//! - a key has at most one pending delay; when it is scheduled twice the earlier time wins, and an
//!   immediate [`WorkQueue::add`] supersedes a pending delay;
//! - failed keys are retried after a per-key exponential backoff ([`crate::retry`]), reset by
//!   [`WorkQueue::forget`] on success;
//! - ready keys are handed out first in, first out within their [`Lane`], and every ready
//!   `Urgent` key before any `Routine` one: a change to an existing resource, a scaling decision
//!   or a deletion never waits behind a sync of a thousand new resources or a resync sweep.
//!   A key asked for in both lanes is in the urgent one.
//!
//! Waiting is event-driven: a worker in [`WorkQueue::get`] sleeps until a key is added or the
//! earliest delay expires, never polling.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt::{self, Debug};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::retry::{Backoff, BackoffPolicy};

/// How long a key waited between becoming ready and being handed to a worker; feeds the queue
/// wait-time histogram.
///
/// A key becomes ready when it is added, or when its delay expires. A key added while it was being
/// processed counts from that add: the wait includes the rest of the previous reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueWait {
    /// Time from becoming ready to being handed out.
    pub waited: Duration,
}

/// Which line a key waits in. Urgent keys are handed out before routine ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lane {
    /// Changes to existing resources, scaling decisions, deletions, AWS events.
    Urgent,
    /// First creates and periodic resyncs.
    Routine,
}

impl Lane {
    /// The more urgent of two.
    fn most_urgent(self, other: Lane) -> Lane {
        if self == Lane::Urgent || other == Lane::Urgent { Lane::Urgent } else { Lane::Routine }
    }

    fn index(self) -> usize {
        match self {
            Lane::Urgent => 0,
            Lane::Routine => 1,
        }
    }
}

/// A de-duplicating, delay-aware queue of keys shared by the reconcile workers.
///
/// Cloning is cheap and every clone is the same queue. Keys are typically resource identities
/// (kind, namespace, name).
///
/// After [`WorkQueue::shut_down`] the queue stops taking work: adds are ignored and
/// [`WorkQueue::get`] returns `None` at once, even if keys are still queued, so workers finish
/// their current reconcile and exit.
pub struct WorkQueue<K> {
    shared: Arc<Shared<K>>,
}

struct Shared<K> {
    state: Mutex<State<K>>,
    /// Woken once per key that becomes ready or per earlier deadline; all at once on shutdown.
    wakeup: Notify,
    policy: BackoffPolicy,
}

/// Every key is in at most one of `ready`, `dirty` and `delayed`; `dirty` keys are always also in
/// `processing`, `ready` keys never are.
struct State<K> {
    /// Ready keys per lane in the order they became ready. A key moved to the urgent lane
    /// stays in the routine one as a stale entry, skipped when reached.
    order: [VecDeque<K>; 2],
    /// Ready keys, with the time each became ready and its lane.
    ready: HashMap<K, (Instant, Lane)>,
    /// Keys handed to a worker and not yet done.
    processing: HashSet<K>,
    /// Keys added while being processed, with the time they were added and their lane.
    dirty: HashMap<K, (Instant, Lane)>,
    /// Pending delays by deadline; the sequence number keeps equal deadlines in scheduling order.
    deadlines: BTreeMap<(Instant, u64), K>,
    /// The pending delay of each delayed key, to find its entry in `deadlines`, and its lane.
    delayed: HashMap<K, ((Instant, u64), Lane)>,
    next_seq: u64,
    /// Retry state of keys that failed since their last success.
    retries: HashMap<K, Retry>,
    shut_down: bool,
}

struct Retry {
    backoff: Backoff,
    failures: u32,
}

/// What a state change asks of the waiting workers.
#[must_use]
#[derive(Default)]
struct Wake(usize);

impl<K> Clone for WorkQueue<K> {
    fn clone(&self) -> Self {
        Self { shared: Arc::clone(&self.shared) }
    }
}

impl<K> Default for WorkQueue<K>
where
    K: Clone + Eq + Hash + Send + Sync + 'static + Debug,
{
    /// A queue retrying with the default policy (1 s → 60 s, ±20% jitter).
    fn default() -> Self {
        Self::new(BackoffPolicy::default())
    }
}

impl<K> WorkQueue<K>
where
    K: Clone + Eq + Hash + Send + Sync + 'static + Debug,
{
    /// An empty queue whose failed keys are retried according to `policy`.
    pub fn new(policy: BackoffPolicy) -> Self {
        let state = State {
            order: [VecDeque::new(), VecDeque::new()],
            ready: HashMap::new(),
            processing: HashSet::new(),
            dirty: HashMap::new(),
            deadlines: BTreeMap::new(),
            delayed: HashMap::new(),
            next_seq: 0,
            retries: HashMap::new(),
            shut_down: false,
        };
        Self { shared: Arc::new(Shared { state: Mutex::new(state), wakeup: Notify::new(), policy }) }
    }

    /// Asks for `key` to be reconciled as soon as a worker is free, in the urgent lane.
    pub fn add(&self, key: K) {
        self.add_in(key, Lane::Urgent);
    }

    /// Asks for `key` to be reconciled as soon as a worker is free: something about it changed.
    ///
    /// A key already queued stays where it is (moving to the urgent lane if asked for there); a
    /// key being processed is queued again when its worker is done. A pending delay for the key
    /// is dropped: now is earlier.
    pub fn add_in(&self, key: K, lane: Lane) {
        let wake = {
            let mut state = self.lock();
            if state.shut_down {
                return;
            }
            let now = Instant::now();
            let mut wake = state.promote_due(now);
            let lane = state.cancel_delay(&key).map_or(lane, |l| l.most_urgent(lane));
            wake.0 += state.enqueue(key, now, lane).0;
            wake
        };
        self.wake(wake);
    }

    /// Asks for `key` to be reconciled after `delay`: something is in flight and should be looked
    /// at again later.
    ///
    /// If the key is already scheduled, the earlier time wins; if it is already queued (or
    /// waiting for its worker to finish), nothing changes. A key being processed may be scheduled:
    /// that is how a reconcile asks to be run again later.
    pub fn add_after(&self, key: K, delay: Duration) {
        self.add_after_in(key, delay, Lane::Urgent);
    }

    /// [`WorkQueue::add_after`] in `lane`.
    pub fn add_after_in(&self, key: K, delay: Duration, lane: Lane) {
        if delay.is_zero() {
            self.add_in(key, lane);
            return;
        }
        let wake = {
            let mut state = self.lock();
            if state.shut_down {
                return;
            }
            let now = Instant::now();
            let mut wake = state.promote_due(now);
            wake.0 += state.schedule(key, now + delay, lane).0;
            wake
        };
        self.wake(wake);
    }

    /// Asks for `key` to be retried after its next backoff delay: its reconcile failed. Each call
    /// without a [`WorkQueue::forget`] in between doubles the delay (up to the policy's cap).
    pub fn add_rate_limited(&self, key: K) {
        self.add_rate_limited_in(key, Lane::Urgent);
    }

    /// [`WorkQueue::add_rate_limited`] in `lane`.
    pub fn add_rate_limited_in(&self, key: K, lane: Lane) {
        let delay = {
            let mut state = self.lock();
            if state.shut_down {
                return;
            }
            let policy = &self.shared.policy;
            let retry = state
                .retries
                .entry(key.clone())
                .or_insert_with(|| Retry { backoff: Backoff::new(policy), failures: 0 });
            retry.failures = retry.failures.saturating_add(1);
            retry.backoff.next_delay()
        };
        self.add_after_in(key, delay, lane);
    }

    /// Clears the failure history of `key`: its reconcile succeeded, so its next failure starts
    /// again from the initial delay. Does not remove the key from the queue.
    pub fn forget(&self, key: &K) {
        self.lock().retries.remove(key);
    }

    /// How many times in a row `key` was retried after a failure; for logs and status.
    pub fn failures(&self, key: &K) -> u32 {
        self.lock().retries.get(key).map_or(0, |retry| retry.failures)
    }

    /// Waits for the next ready key and marks it as being processed; the caller must call
    /// [`WorkQueue::done`] with it when the reconcile ends, whatever its outcome.
    ///
    /// Returns `None` once the queue is shut down, even if keys are still queued. Cancel-safe: a
    /// dropped call never takes a key.
    pub async fn get(&self) -> Option<(K, QueueWait)> {
        loop {
            // Register for wakeups before looking at the state, so none is lost in between.
            let wakeup = self.shared.wakeup.notified();
            tokio::pin!(wakeup);
            wakeup.as_mut().enable();

            let next_deadline = {
                let mut state = self.lock();
                if state.shut_down {
                    return None;
                }
                let now = Instant::now();
                let mut wake = state.promote_due(now);
                let taken = state.take_ready(now);
                if taken.is_some() && !state.ready.is_empty() {
                    // More work is ready than this worker can take: pass the baton.
                    wake.0 += 1;
                }
                let next_deadline = state.next_deadline();
                drop(state);
                self.wake(wake);
                if let Some(taken) = taken {
                    return Some(taken);
                }
                next_deadline
            };

            match next_deadline {
                Some(deadline) => {
                    tokio::select! {
                        () = &mut wakeup => {}
                        () = tokio::time::sleep_until(deadline) => {}
                    }
                }
                None => wakeup.await,
            }
        }
    }

    /// Marks the reconcile of `key` as finished. If the key was added while it was being
    /// processed it is queued again now.
    pub fn done(&self, key: &K) {
        let wake = {
            let mut state = self.lock();
            if !state.processing.remove(key) {
                return;
            }
            match state.dirty.remove(key) {
                Some((since, lane)) => state.push_ready(key.clone(), since, lane),
                None => Wake::default(),
            }
        };
        self.wake(wake);
    }

    /// Stops the queue taking work: adds are ignored from now on, and every waiting and future
    /// [`WorkQueue::get`] returns `None`. Workers still call [`WorkQueue::done`] for keys they hold.
    pub fn shut_down(&self) {
        self.lock().shut_down = true;
        self.shared.wakeup.notify_waiters();
    }

    /// Whether [`WorkQueue::shut_down`] was called.
    pub fn is_shut_down(&self) -> bool {
        self.lock().shut_down
    }

    /// Number of keys ready to be handed out now (the queue depth gauge). Keys whose delay has
    /// expired count as ready.
    pub fn len(&self) -> usize {
        self.count_after_promoting(|state| state.ready.len())
    }

    /// Whether no key is ready to be handed out now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of keys waiting for their delay (requeue-after or retry backoff) to expire.
    pub fn delayed_len(&self) -> usize {
        self.count_after_promoting(|state| state.delayed.len())
    }

    /// Moves due keys to ready (waking workers for them), then counts.
    fn count_after_promoting(&self, count: impl FnOnce(&State<K>) -> usize) -> usize {
        let (n, wake) = {
            let mut state = self.lock();
            let wake = state.promote_due(Instant::now());
            (count(&state), wake)
        };
        self.wake(wake);
        n
    }

    /// Number of keys handed to workers and not yet done (the active reconciles gauge).
    pub fn processing_len(&self) -> usize {
        self.lock().processing.len()
    }

    /// The state stays consistent across a panic elsewhere (no user code runs under the lock), so
    /// a poisoned lock is still usable.
    fn lock(&self) -> MutexGuard<'_, State<K>> {
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake(&self, Wake(workers): Wake) {
        for _ in 0..workers {
            self.shared.wakeup.notify_one();
        }
    }
}

impl<K> State<K>
where
    K: Clone + Eq + Hash,
{
    /// Moves every key whose delay expired by `now` to the ready queue, earliest first; each
    /// counts as ready since its deadline.
    fn promote_due(&mut self, now: Instant) -> Wake {
        let mut wake = Wake::default();
        while let Some(entry) = self.deadlines.first_entry() {
            let (deadline, _) = *entry.key();
            if deadline > now {
                break;
            }
            let key = entry.remove();
            let lane = self.delayed.remove(&key).map_or(Lane::Urgent, |(_, lane)| lane);
            wake.0 += self.enqueue(key, deadline, lane).0;
        }
        wake
    }

    /// Queues `key` as ready since `since` in `lane`, or marks it dirty if a worker holds it. A
    /// key already ready or dirty keeps its place, moving to the urgent lane if asked for there.
    fn enqueue(&mut self, key: K, since: Instant, lane: Lane) -> Wake {
        if let Some((_, l)) = self.dirty.get_mut(&key) {
            *l = (*l).most_urgent(lane);
            return Wake::default();
        }
        if let Some(&(since, current)) = self.ready.get(&key) {
            if lane == Lane::Urgent && current == Lane::Routine {
                // Moves up; its entry in the routine lane becomes stale.
                self.ready.insert(key.clone(), (since, Lane::Urgent));
                self.order[Lane::Urgent.index()].push_back(key);
            }
            return Wake::default();
        }
        if self.processing.contains(&key) {
            self.dirty.insert(key, (since, lane));
            return Wake::default();
        }
        self.push_ready(key, since, lane)
    }

    fn push_ready(&mut self, key: K, since: Instant, lane: Lane) -> Wake {
        self.order[lane.index()].push_back(key.clone());
        self.ready.insert(key, (since, lane));
        Wake(1)
    }

    /// Sets a delay for `key`, unless it is already queued or has an earlier delay (whose lane
    /// becomes the more urgent of the two).
    fn schedule(&mut self, key: K, deadline: Instant, lane: Lane) -> Wake {
        if let Some((_, l)) = self.dirty.get_mut(&key) {
            *l = (*l).most_urgent(lane);
            return Wake::default();
        }
        if self.ready.contains_key(&key) {
            return Wake::default();
        }
        let mut lane = lane;
        if let Some(&((current, _), current_lane)) = self.delayed.get(&key) {
            if current <= deadline {
                if let Some((_, l)) = self.delayed.get_mut(&key) {
                    *l = (*l).most_urgent(lane);
                }
                return Wake::default();
            }
            lane = lane.most_urgent(current_lane);
            self.cancel_delay(&key);
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        let was_earliest = self.next_deadline().is_none_or(|earliest| deadline < earliest);
        self.deadlines.insert((deadline, seq), key.clone());
        self.delayed.insert(key, ((deadline, seq), lane));
        // A worker may be sleeping until a later deadline: have one look again.
        if was_earliest { Wake(1) } else { Wake::default() }
    }

    /// Drops the pending delay of `key`, returning its lane.
    fn cancel_delay(&mut self, key: &K) -> Option<Lane> {
        let (slot, lane) = self.delayed.remove(key)?;
        self.deadlines.remove(&slot);
        Some(lane)
    }

    /// Hands out the oldest ready key of the most urgent lane that has one, marking it as being
    /// processed.
    fn take_ready(&mut self, now: Instant) -> Option<(K, QueueWait)> {
        for lane in [Lane::Urgent, Lane::Routine] {
            while let Some(key) = self.order[lane.index()].pop_front() {
                // Skip stale entries: handed out already, or moved to the urgent lane.
                match self.ready.get(&key) {
                    Some(&(since, l)) if l == lane => {
                        self.ready.remove(&key);
                        self.processing.insert(key.clone());
                        return Some((key, QueueWait { waited: now.saturating_duration_since(since) }));
                    }
                    _ => continue,
                }
            }
        }
        None
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first_key_value().map(|(&(deadline, _), _)| deadline)
    }
}

impl<K> Debug for WorkQueue<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.state.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("WorkQueue")
            .field("ready", &state.ready.len())
            .field("delayed", &state.delayed.len())
            .field("processing", &state.processing.len())
            .field("shut_down", &state.shut_down)
            .field("policy", &self.shared.policy)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::FutureExt;

    use super::*;

    fn queue() -> WorkQueue<&'static str> {
        WorkQueue::default()
    }

    /// One `get` that must not wait: under the paused clock, time only moves when the test says.
    fn get_now(queue: &WorkQueue<&'static str>) -> Option<&'static str> {
        queue.get().now_or_never().flatten().map(|(key, _)| key)
    }

    #[tokio::test(start_paused = true)]
    async fn adding_a_key_many_times_queues_it_once() {
        let queue = queue();
        for _ in 0..1_000 {
            queue.add("node/a");
        }
        assert_eq!(queue.len(), 1);
        assert_eq!(get_now(&queue), Some("node/a"));
        assert_eq!(queue.len(), 0);
        assert_eq!(get_now(&queue), None);
        queue.done(&"node/a");
        assert_eq!(get_now(&queue), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_added_while_processing_comes_back_once_after_done() {
        let queue = queue();
        queue.add("node/a");
        assert_eq!(get_now(&queue), Some("node/a"));
        for _ in 0..3 {
            queue.add("node/a");
        }
        assert_eq!(queue.len(), 0, "a key being processed is not handed out again");
        assert_eq!(queue.processing_len(), 1);
        assert_eq!(get_now(&queue), None);

        queue.done(&"node/a");
        assert_eq!(queue.len(), 1);
        assert_eq!(get_now(&queue), Some("node/a"));
        queue.done(&"node/a");
        assert_eq!(get_now(&queue), None);
        assert_eq!(queue.processing_len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_workers_never_hold_the_same_key_and_lose_no_change() {
        const ADDS: usize = 1_000;
        let queue = queue();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let max_in_flight = Arc::new(AtomicUsize::new(0));
        let reconciles = Arc::new(AtomicUsize::new(0));
        let last_reconcile_start = Arc::new(Mutex::new(None::<Instant>));

        let workers: Vec<_> = (0..4)
            .map(|_| {
                let queue = queue.clone();
                let in_flight = Arc::clone(&in_flight);
                let max_in_flight = Arc::clone(&max_in_flight);
                let reconciles = Arc::clone(&reconciles);
                let last_reconcile_start = Arc::clone(&last_reconcile_start);
                tokio::spawn(async move {
                    while let Some((key, _)) = queue.get().await {
                        let now_in_flight = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        max_in_flight.fetch_max(now_in_flight, Ordering::SeqCst);
                        reconciles.fetch_add(1, Ordering::SeqCst);
                        *last_reconcile_start.lock().unwrap() = Some(Instant::now());
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        queue.done(&key);
                    }
                })
            })
            .collect();

        for _ in 0..ADDS {
            queue.add("node/a");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let last_add = Instant::now();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!((queue.len(), queue.processing_len()), (0, 0), "everything was processed");
        queue.shut_down();
        for worker in workers {
            worker.await.unwrap();
        }

        assert_eq!(max_in_flight.load(Ordering::SeqCst), 1, "never two workers on one key");
        let reconciles = reconciles.load(Ordering::SeqCst);
        assert!((2..ADDS / 10).contains(&reconciles), "{reconciles} reconciles for {ADDS} adds");
        let last_start = last_reconcile_start.lock().unwrap().unwrap();
        assert!(last_start >= last_add - Duration::from_millis(1), "the last change was reconciled");
    }

    #[tokio::test(start_paused = true)]
    async fn add_after_keeps_the_earliest_deadline() {
        let queue = queue();
        queue.add_after("node/a", Duration::from_secs(10));
        queue.add_after("node/a", Duration::from_secs(5));
        queue.add_after("node/a", Duration::from_secs(20));
        assert_eq!(queue.delayed_len(), 1);

        tokio::time::advance(Duration::from_millis(4_999)).await;
        assert_eq!(get_now(&queue), None);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(get_now(&queue), Some("node/a"));
        queue.done(&"node/a");

        assert_eq!(queue.delayed_len(), 0, "one slot per key: the later deadlines are gone");
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(get_now(&queue), None);
    }

    #[tokio::test(start_paused = true)]
    async fn add_after_on_a_ready_key_does_nothing() {
        let queue = queue();
        queue.add("node/a");
        queue.add_after("node/a", Duration::from_secs(10));
        assert_eq!((queue.len(), queue.delayed_len()), (1, 0));
        assert_eq!(get_now(&queue), Some("node/a"));
        queue.done(&"node/a");
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(get_now(&queue), None);
    }

    #[tokio::test(start_paused = true)]
    async fn add_supersedes_a_pending_delay() {
        let queue = queue();
        queue.add_after("node/a", Duration::from_secs(10));
        queue.add("node/a");
        assert_eq!((queue.len(), queue.delayed_len()), (1, 0));
        assert_eq!(get_now(&queue), Some("node/a"));
        queue.done(&"node/a");
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(get_now(&queue), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reconcile_can_schedule_its_own_key_again() {
        let queue = queue();
        queue.add("node/a");
        assert_eq!(get_now(&queue), Some("node/a"));
        queue.add_after("node/a", Duration::from_secs(30));
        queue.done(&"node/a");
        assert_eq!((queue.len(), queue.delayed_len()), (0, 1));
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(get_now(&queue), Some("node/a"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_delay_expiring_during_processing_requeues_after_done() {
        let queue = queue();
        queue.add("node/a");
        assert_eq!(get_now(&queue), Some("node/a"));
        queue.add_after("node/a", Duration::from_secs(1));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(get_now(&queue), None, "still being processed");
        queue.done(&"node/a");
        let (key, wait) = queue.get().now_or_never().flatten().unwrap();
        assert_eq!(key, "node/a");
        assert_eq!(wait.waited, Duration::from_secs(1), "ready since its deadline");
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limited_delays_grow_until_forget_resets_them() {
        let queue = queue();
        let mut nominal = Duration::from_secs(1);
        for failures in 1..=5 {
            let start = Instant::now();
            queue.add_rate_limited("node/a");
            assert_eq!(queue.failures(&"node/a"), failures);
            assert_eq!(get_now(&queue), None, "not before its backoff");
            let (key, _) = queue.get().await.unwrap();
            let waited = start.elapsed();
            assert_eq!(key, "node/a");
            // Timers have millisecond resolution and round up.
            let band = nominal.mul_f64(0.8)..=nominal.mul_f64(1.2) + Duration::from_millis(1);
            assert!(band.contains(&waited), "failure {failures}: waited {waited:?}, expected {band:?}");
            queue.done(&"node/a");
            nominal *= 2;
        }

        queue.forget(&"node/a");
        assert_eq!(queue.failures(&"node/a"), 0);
        let start = Instant::now();
        queue.add_rate_limited("node/a");
        assert_eq!(queue.failures(&"node/a"), 1);
        queue.get().await.unwrap();
        let waited = start.elapsed();
        assert!(waited <= Duration::from_millis(1_201), "back to the initial delay, waited {waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn keys_have_independent_backoffs() {
        let queue = queue();
        for _ in 0..3 {
            queue.add_rate_limited("node/a");
        }
        queue.add_rate_limited("node/b");
        assert_eq!((queue.failures(&"node/a"), queue.failures(&"node/b")), (3, 1));
        assert_eq!(queue.failures(&"node/c"), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn shut_down_stops_handing_out_work_and_wakes_waiting_workers() {
        let queue = queue();
        let waiting = tokio::spawn({
            let queue = queue.clone();
            async move { queue.get().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());

        queue.shut_down();
        assert_eq!(waiting.await.unwrap(), None);
        assert!(queue.is_shut_down());

        queue.add("node/a");
        assert_eq!(queue.len(), 0, "adds are ignored after shutdown");
        assert_eq!(queue.get().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn shut_down_returns_none_even_with_keys_queued() {
        let queue = queue();
        queue.add("node/a");
        queue.shut_down();
        assert_eq!(queue.len(), 1);
        assert_eq!(queue.get().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn ready_keys_come_out_first_in_first_out() {
        let queue = queue();
        let keys = ["node/d", "node/a", "node/c", "node/b", "node/e"];
        for key in keys {
            queue.add(key);
        }
        queue.add("node/d");
        let order: Vec<_> = std::iter::from_fn(|| get_now(&queue)).collect();
        assert_eq!(order, keys);
    }

    #[tokio::test(start_paused = true)]
    async fn urgent_keys_go_before_routine_ones() {
        let queue = queue();
        for key in ["create/a", "create/b", "create/c"] {
            queue.add_in(key, Lane::Routine);
        }
        queue.add_in("change/x", Lane::Urgent);
        // A routine key asked for again as urgent moves up, once.
        queue.add_in("create/c", Lane::Urgent);
        // A delayed routine key comes out in the routine lane, an urgent one ahead of it.
        queue.add_after_in("resync/r", Duration::from_secs(1), Lane::Routine);
        queue.add_after_in("scale/s", Duration::from_secs(1), Lane::Urgent);
        tokio::time::advance(Duration::from_secs(2)).await;
        let order: Vec<_> = std::iter::from_fn(|| get_now(&queue)).collect();
        assert_eq!(order, ["change/x", "create/c", "scale/s", "create/a", "create/b", "resync/r"]);
        assert_eq!(queue.len(), 0);
        // A key being processed that is asked for as urgent comes back urgent.
        queue.add_in("create/a", Lane::Urgent);
        for key in order {
            queue.done(&key);
        }
        queue.add_in("create/z", Lane::Routine);
        assert_eq!(get_now(&queue), Some("create/a"));
    }

    #[tokio::test(start_paused = true)]
    async fn expired_delays_come_out_in_deadline_order() {
        let queue = queue();
        queue.add_after("node/late", Duration::from_secs(3));
        queue.add_after("node/early", Duration::from_secs(1));
        queue.add_after("node/middle", Duration::from_secs(2));
        tokio::time::advance(Duration::from_secs(5)).await;
        let order: Vec<_> = std::iter::from_fn(|| get_now(&queue)).collect();
        assert_eq!(order, ["node/early", "node/middle", "node/late"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_delayed_key_is_not_returned_before_its_time() {
        let queue = queue();
        let start = Instant::now();
        queue.add_after("node/a", Duration::from_secs(10));

        tokio::time::advance(Duration::from_millis(9_999)).await;
        assert_eq!(get_now(&queue), None);
        assert_eq!((queue.len(), queue.delayed_len()), (0, 1));

        tokio::time::advance(Duration::from_millis(2)).await;
        assert_eq!(get_now(&queue), Some("node/a"));
        assert_eq!(start.elapsed(), Duration::from_millis(10_001));
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_worker_wakes_when_the_delay_expires() {
        let queue = queue();
        let start = Instant::now();
        queue.add_after("node/a", Duration::from_secs(10));
        let early = tokio::time::timeout(Duration::from_secs(9), queue.get()).await;
        assert!(early.is_err(), "nothing before the deadline");
        let (key, wait) = queue.get().await.unwrap();
        assert_eq!(key, "node/a");
        assert_eq!(start.elapsed(), Duration::from_secs(10), "woken at the deadline, not later");
        assert_eq!(wait.waited, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_worker_wakes_for_an_earlier_deadline() {
        let queue = queue();
        let start = Instant::now();
        queue.add_after("node/slow", Duration::from_secs(60));
        let worker = tokio::spawn({
            let queue = queue.clone();
            async move { queue.get().await.map(|(key, _)| (key, Instant::now())) }
        });
        tokio::task::yield_now().await;
        queue.add_after("node/fast", Duration::from_secs(5));
        let (key, at) = worker.await.unwrap().unwrap();
        assert_eq!((key, at - start), ("node/fast", Duration::from_secs(5)));
    }

    #[tokio::test(start_paused = true)]
    async fn every_waiting_worker_gets_a_key_that_becomes_ready() {
        let queue = queue();
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let queue = queue.clone();
                tokio::spawn(async move { queue.get().await.map(|(key, _)| key) })
            })
            .collect();
        tokio::task::yield_now().await;
        for key in ["node/a", "node/b", "node/c"] {
            queue.add_after(key, Duration::from_secs(1));
        }
        let mut keys = Vec::new();
        for worker in workers {
            keys.push(worker.await.unwrap().unwrap());
        }
        keys.sort_unstable();
        assert_eq!(keys, ["node/a", "node/b", "node/c"]);
    }

    #[tokio::test(start_paused = true)]
    async fn queue_wait_measures_time_since_ready() {
        let queue = queue();
        queue.add("node/a");
        tokio::time::advance(Duration::from_secs(3)).await;
        let (_, wait) = queue.get().await.unwrap();
        assert_eq!(wait.waited, Duration::from_secs(3));

        queue.add_after("node/b", Duration::from_secs(5));
        tokio::time::advance(Duration::from_secs(7)).await;
        let (_, wait) = queue.get().await.unwrap();
        assert_eq!(wait.waited, Duration::from_secs(2), "counted from the deadline, not the add_after");
    }

    #[tokio::test(start_paused = true)]
    async fn done_for_a_key_not_being_processed_changes_nothing() {
        let queue = queue();
        queue.add("node/a");
        queue.done(&"node/a");
        queue.done(&"node/b");
        assert_eq!((queue.len(), queue.processing_len()), (1, 0));
    }
}
