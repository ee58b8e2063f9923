//! Bounded polling: nothing in these tests sleeps to wait for a state.

use std::future::Future;
use std::time::{Duration, Instant};

/// Bound on any single wait for the gateway that is not a timeout under test.
pub const BOUND: Duration = Duration::from_secs(10);

/// Polls `cond` every 10 ms until it holds or `BOUND` passes.
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + BOUND;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
