//! Bounded polling.

use std::time::Duration;

use tokio::time::Instant;

/// How often [`eventually`] looks again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Calls `check` every [`POLL_INTERVAL`] until it returns `Ok`, and returns that
/// value. `Err` carries where things stand; after `timeout` the test fails with
/// "timed out after ... waiting for {what}; last: {the last Err}". The check always
/// runs at least once, and once more at the deadline.
pub async fn eventually<T>(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check().await {
            Ok(v) => return v,
            Err(e) => e,
        };
        let now = Instant::now();
        if now >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}; last: {last}");
        }
        tokio::time::sleep(POLL_INTERVAL.min(deadline - now)).await;
    }
}
