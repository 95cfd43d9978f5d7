//! Batched observation: one describe call answers many reconciles.
//!
//! AWS's describe calls take many objects at once (DescribeServices ten
//! services of a cluster, DescribeInstances two hundred tag values,
//! DescribeInstanceStatus a hundred instances), and reads share one account
//! bucket per API family, so observing one object per call would make a fleet
//! of 10,000 resources cost 10,000 calls per resync. An [`Observer`]
//! remembers every object it was asked about; when a reconcile needs an object
//! whose last observation is too old, one call describes it together with
//! other objects of the same scope (a cluster; the region): first those other
//! reconciles are waiting for right now, then due ones (observed longer than
//! `stale_after` ago) that were asked about longest ago. A resync queues the
//! same resources in the same order every time, so the objects asked about
//! longest ago are the ones whose reconciles come next, and a batch is used
//! before it goes stale even when the sweep takes longer than `stale_after`:
//! a resync sweep costs about ⌈objects / batch size⌉ calls per scope. An
//! object described many times for other objects' batches without being
//! asked for (its resource moved to another replica, say) goes last in line,
//! so it only fills room no likelier object needs. Mooring's own writes feed
//! the observer with AWS's answer, so a reconcile never reads back an older
//! state than the one it created.
//!
//! Asks and describes of a scope are numbered in the order they happen, so an
//! ask with `max_age` zero is answered only by a describe sent after it
//! (whatever the clock's resolution), and an answer never overwrites a newer
//! one that arrived while its describe was in flight.
//!
//! [`ServiceObserver`] batches ECS services, [`InstanceObserver`] the EC2
//! instances and status checks of nodes; [`TaskDefinitions`] caches immutable
//! task definitions.

mod instances;
mod services;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::cloud::{CloudResult, ErrorKind};

pub use instances::InstanceObserver;
pub use services::{ServiceObserver, TaskDefinitions};

/// How many describes for other objects' batches an object gets without being
/// asked for before it goes last in line for them. Between two resyncs the
/// batches of resources in flight may describe it about once per
/// `stale_after`, and a slow sweep a few times more, so this is well above 5,
/// the default resync / `stale_after` ratio.
const MAX_UNASKED: u8 = 8;

struct Entry<T> {
    /// When the describe that made `seen` was sent (`None`: never, or forgotten).
    observed: Option<Instant>,
    /// The scope's counter when that describe was sent (or the observation
    /// recorded or forgotten): it answers the asks numbered below it.
    made: u64,
    /// What the describe found (`None`: the object does not exist).
    seen: Option<T>,
    /// When a reconcile last asked for this object.
    asked: Option<Instant>,
    /// Asks of this object waiting for the scope's next describe.
    waiting: u32,
    /// The newest of their numbers: a describe sent after it answers them all.
    wants: u64,
    /// Describes made for other objects' asks since this one was last asked for.
    unasked: u8,
}

impl<T> Default for Entry<T> {
    fn default() -> Self {
        Entry { observed: None, made: 0, seen: None, asked: None, waiting: 0, wants: 0, unasked: 0 }
    }
}

impl<T> Entry<T> {
    /// Whether the observation at hand answers ask number `ticket`: it was made
    /// after the ask, or (for a nonzero `max_age`) it is at most `max_age` old.
    fn answers(&self, ticket: u64, max_age: Duration, now: Instant) -> bool {
        self.observed
            .is_some_and(|o| self.made > ticket || (!max_age.is_zero() && now.saturating_duration_since(o) <= max_age))
    }

    fn due(&self, stale_after: Duration, now: Instant) -> bool {
        self.observed.is_none_or(|o| now.saturating_duration_since(o) > stale_after)
    }
}

/// What the observer knows of one scope.
struct Book<T> {
    entries: HashMap<String, Entry<T>>,
    /// Numbers asks, describes, records and forgets in the order they happen.
    counter: u64,
}

impl<T> Book<T> {
    fn tick(&mut self) -> u64 {
        let t = self.counter;
        self.counter += 1;
        t
    }
}

struct Scope<T> {
    /// One describe per scope at a time: callers behind it usually find their
    /// object in the batch that just finished, and those still waiting after
    /// it go together in the next one.
    describing: tokio::sync::Mutex<()>,
    book: Mutex<Book<T>>,
}

impl<T> Default for Scope<T> {
    fn default() -> Self {
        Scope {
            describing: tokio::sync::Mutex::new(()),
            book: Mutex::new(Book { entries: HashMap::new(), counter: 0 }),
        }
    }
}

impl<T> Scope<T> {
    fn book(&self) -> std::sync::MutexGuard<'_, Book<T>> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An ask waiting for the scope's next describe; no longer waiting when dropped.
struct Waiting<'a, T> {
    scope: &'a Scope<T>,
    key: &'a str,
}

impl<T> Drop for Waiting<'_, T> {
    fn drop(&mut self) {
        if let Some(e) = self.scope.book().entries.get_mut(self.key) {
            e.waiting = e.waiting.saturating_sub(1);
        }
    }
}

/// Batches one describe call across resources; see the module documentation.
/// Objects are named by a key (a service name, a node's uid, an instance id)
/// within a scope (a cluster, or the region).
pub struct Observer<T> {
    scopes: Mutex<HashMap<String, Arc<Scope<T>>>>,
    /// Observations older than this are refreshed when a batch has room.
    stale_after: Duration,
    /// The most keys one describe takes (AWS's limit).
    max_batch: usize,
}

impl<T: Clone> Observer<T> {
    /// An observer that treats observations older than `stale_after` as due
    /// and describes at most `max_batch` keys at once (at least one).
    pub fn new(stale_after: Duration, max_batch: usize) -> Observer<T> {
        Observer { scopes: Mutex::new(HashMap::new()), stale_after, max_batch: max_batch.max(1) }
    }

    /// How old an observation may be before it is refreshed.
    pub fn stale_after(&self) -> Duration {
        self.stale_after
    }

    fn scope(&self, scope: &str) -> Arc<Scope<T>> {
        let mut scopes = self.scopes.lock().unwrap_or_else(|e| e.into_inner());
        scopes.entry(scope.to_string()).or_default().clone()
    }

    /// The object `key` of `scope` as observed at most `max_age` ago (`None`:
    /// it does not exist); with `max_age` zero, as observed by a describe sent
    /// after this call began. When no such observation is at hand, calls
    /// `describe` with a batch of keys (`key` first, then others; see the
    /// module documentation); it answers with the objects it found by key.
    ///
    /// A describe that fails with `NotFound` when it carried other keys is
    /// made again for `key` alone, and the other keys the error names (and
    /// nobody waits for) are forgotten: some describes (DescribeInstanceStatus)
    /// fail for an id they do not know, such as an instance long terminated.
    pub async fn observe<F, Fut>(
        &self,
        scope: &str,
        key: &str,
        max_age: Duration,
        describe: F,
    ) -> CloudResult<Option<T>>
    where
        F: Fn(Vec<String>) -> Fut,
        Fut: Future<Output = CloudResult<HashMap<String, T>>>,
    {
        let view = self.scope(scope);
        let ticket = {
            let mut book = view.book();
            let ticket = book.tick();
            let now = Instant::now();
            let entry = book.entries.entry(key.to_string()).or_default();
            entry.asked = Some(now);
            entry.unasked = 0;
            if entry.answers(ticket, max_age, now) {
                return Ok(entry.seen.clone());
            }
            entry.waiting += 1;
            entry.wants = entry.wants.max(ticket);
            ticket
        };
        let waiting = Waiting { scope: &view, key };
        let _describing = view.describing.lock().await;
        drop(waiting);
        let (mut batch, mark, sent) = {
            let mut book = view.book();
            // A batch that finished while we waited may have described it.
            if let Some(e) = book.entries.get(key)
                && e.answers(ticket, max_age, Instant::now())
            {
                return Ok(e.seen.clone());
            }
            let batch = self.batch(&book, key);
            (batch, book.tick(), Instant::now())
        };
        let mut found = match describe(batch.clone()).await {
            Err(e) if e.kind == ErrorKind::NotFound && batch.len() > 1 => {
                {
                    let mut book = view.book();
                    for other in batch[1..].iter().filter(|k| e.message.contains(k.as_str())) {
                        if book.entries.get(other).is_some_and(|e| e.waiting == 0) {
                            book.entries.remove(other);
                        }
                    }
                }
                batch.truncate(1);
                describe(batch.clone()).await?
            }
            found => found?,
        };
        let mut book = view.book();
        for k in &batch {
            // Objects forgotten meanwhile stay forgotten; newer answers stay.
            let Some(entry) = book.entries.get_mut(k) else { continue };
            if entry.made > mark {
                continue;
            }
            entry.observed = Some(sent);
            entry.made = mark;
            entry.seen = found.get(k).cloned();
            if k != key {
                entry.unasked = entry.unasked.saturating_add(1);
            }
        }
        Ok(match book.entries.get(key) {
            Some(e) => e.seen.clone(),
            None => found.remove(key),
        })
    }

    /// `key`, then other keys of the scope: those asks are waiting for and no
    /// describe answered yet, then due ones asked about longest ago, those
    /// described unasked too often last.
    fn batch(&self, book: &Book<T>, key: &str) -> Vec<String> {
        let now = Instant::now();
        let room = self.max_batch - 1;
        let others = || book.entries.iter().filter(|(k, _)| k.as_str() != key);
        let mut waited_for: Vec<(Option<Instant>, &String)> =
            others().filter(|(_, e)| e.waiting > 0 && e.made <= e.wants).map(|(k, e)| (e.asked, k)).collect();
        keep_first(&mut waited_for, room);
        let room = room - waited_for.len();
        let mut likely: Vec<(bool, Option<Instant>, &String)> = Vec::new();
        if room > 0 {
            likely = others()
                .filter(|(_, e)| e.waiting == 0 && e.due(self.stale_after, now))
                .map(|(k, e)| (e.unasked >= MAX_UNASKED, e.asked, k))
                .collect();
            keep_first(&mut likely, room);
        }
        let keys = waited_for.into_iter().map(|(_, k)| k).chain(likely.into_iter().map(|(_, _, k)| k));
        std::iter::once(key.to_string()).chain(keys.cloned()).collect()
    }

    /// Says a reconcile of `key` is coming (the controller queued it). An
    /// object the observer has never been asked about is then known to the
    /// batches, in the order the hints came, so the first sweep after a restart
    /// batches like every other one.
    pub fn expect(&self, scope: &str, key: &str) {
        let view = self.scope(scope);
        let mut book = view.book();
        let entry = book.entries.entry(key.to_string()).or_default();
        if entry.asked.is_none() {
            entry.asked = Some(Instant::now());
        }
    }

    /// Records what AWS answered to a create or update.
    pub fn record(&self, scope: &str, key: &str, seen: T) {
        let view = self.scope(scope);
        let mut book = view.book();
        let mark = book.tick();
        let entry = book.entries.entry(key.to_string()).or_default();
        entry.observed = Some(Instant::now());
        entry.made = mark;
        entry.seen = Some(seen);
    }

    /// Forgets an object: the next observation asks AWS (a describe already in
    /// flight does not count). With `stop`, it is no longer described in other
    /// objects' batches either (it was deleted).
    pub fn forget(&self, scope: &str, key: &str, stop: bool) {
        let view = self.scope(scope);
        let mut book = view.book();
        let mark = book.tick();
        if stop {
            book.entries.remove(key);
        } else if let Some(e) = book.entries.get_mut(key) {
            e.observed = None;
            e.made = mark;
        }
    }
}

/// Keeps the `keep` smallest elements (ranks are tuples: never asked sorts first).
fn keep_first<T: Ord>(v: &mut Vec<T>, keep: usize) {
    if v.len() > keep {
        v.select_nth_unstable(keep);
        v.truncate(keep);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::cloud::{CloudError, ops};

    #[tokio::test(start_paused = true)]
    async fn a_batch_naming_an_object_that_is_gone_is_made_again_for_the_asker_alone() {
        let observer: Observer<u32> = Observer::new(Duration::from_secs(1), 100);
        let batches = Mutex::new(Vec::<Vec<String>>::new());
        let gone = AtomicBool::new(false);
        // Like DescribeInstanceStatus: an id it does not know fails the call.
        let describe = |keys: Vec<String>| {
            batches.lock().unwrap().push(keys.clone());
            let fails = gone.load(Ordering::SeqCst) && keys.iter().any(|k| k == "gone");
            async move {
                if fails {
                    let message = "InvalidInstanceID.NotFound: The instance ID 'gone' does not exist";
                    return Err(CloudError::new(&ops::DESCRIBE_INSTANCE_STATUS, ErrorKind::NotFound, message));
                }
                Ok(keys.into_iter().map(|k| (k, 1)).collect::<HashMap<_, _>>())
            }
        };
        for key in ["a", "b", "gone"] {
            observer.observe("", key, Duration::ZERO, describe).await.unwrap();
        }
        gone.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(observer.observe("", "a", Duration::from_secs(1), describe).await.unwrap(), Some(1));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(observer.observe("", "a", Duration::from_secs(1), describe).await.unwrap(), Some(1));
        let mut batches = batches.lock().unwrap().clone();
        for b in batches.iter_mut() {
            b[1..].sort();
        }
        // The failed batch is made again for the asker alone; only the id the
        // error names is forgotten, so the next batch still takes `b` along.
        assert_eq!(batches, [vec!["a"], vec!["b"], vec!["gone"], vec!["a", "b", "gone"], vec!["a"], vec!["a", "b"]]);
    }
}
