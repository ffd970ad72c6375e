//! Condition waits with deadlines: poll every 20 ms, panic with what was awaited when the deadline passes.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often the condition is polled.
const POLL: Duration = Duration::from_millis(20);

/// Calls `f` every 20 ms until it returns true; panics with
/// "timed out after {deadline:?} waiting for {what}" once `deadline` has passed.
/// `f` is always called at least once, and once more at the deadline.
pub fn wait_until<F: FnMut() -> bool>(what: &str, deadline: Duration, mut f: F) {
    let start = Instant::now();
    loop {
        if f() {
            return;
        }
        let elapsed = start.elapsed();
        if elapsed >= deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        std::thread::sleep(POLL.min(deadline - elapsed));
    }
}

/// Async [`wait_until`]: awaits `f()` every 20 ms (tokio timer) until it yields true; panics with
/// "timed out after {deadline:?} waiting for {what}" once `deadline` has passed. A single `f()` still
/// pending at the deadline (give or take 20 ms) is dropped and counts as a timeout.
pub async fn wait_until_async<F, Fut>(what: &str, deadline: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        let left = deadline.saturating_sub(start.elapsed()).max(POLL);
        if let Ok(true) = tokio::time::timeout(left, f()).await {
            return;
        }
        let elapsed = start.elapsed();
        if elapsed >= deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(POLL.min(deadline - elapsed)).await;
    }
}
