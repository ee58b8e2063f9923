//! The wait between reconnection attempts: doubling from 200 ms up to 5 s,
//! reset once a session is established, and cut short by shutdown.

use std::time::Duration;

use tokio::sync::watch;

const FIRST: Duration = Duration::from_millis(200);
const MAX: Duration = Duration::from_secs(5);

/// Consecutive failures so far.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    failures: u32,
}

impl Backoff {
    /// The delay after the failure now being counted.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = FIRST
            .checked_mul(1u32 << self.failures.min(16))
            .unwrap_or(MAX)
            .min(MAX);
        self.failures = self.failures.saturating_add(1);
        delay
    }

    /// Whether the last attempt failed too (so a new failure is old news,
    /// logged at debug rather than warn).
    pub(crate) fn retrying(&self) -> bool {
        self.failures > 0
    }

    /// A session was established: the next failure starts from the bottom.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    /// Sleeps for the next delay. Returns false when shutdown came first.
    pub(crate) async fn wait(&mut self, stop: &mut watch::Receiver<bool>) -> bool {
        let delay = self.next_delay();
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            () = stopped(stop) => false,
        }
    }
}

/// Resolves once `stop` holds true or its sender is gone (the owner was
/// dropped, which is a shutdown too).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    // An Err means the sender is gone: stop as well.
    let _ = stop.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_reset() {
        let mut b = Backoff::default();
        let ms: Vec<u128> = (0..8).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(ms, [200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        b.reset();
        assert_eq!(b.next_delay(), FIRST);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_cuts_the_wait_short() {
        let (tx, mut rx) = watch::channel(false);
        let mut b = Backoff::default();
        assert!(b.wait(&mut rx).await);
        tx.send_replace(true);
        assert!(!b.wait(&mut rx).await);
        drop(tx);
        let (tx, mut rx) = watch::channel(false);
        drop(tx);
        assert!(!b.wait(&mut rx).await, "a dropped owner stops the wait");
    }
}
