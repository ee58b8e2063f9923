//! Graceful shutdown: one signal fanned out to every accept loop and
//! connection, and a tracker that tells when the last connection is gone.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};

#[derive(Debug, Default)]
struct Tracker {
    live: AtomicUsize,
    idle: Notify,
}

/// The side that starts a shutdown and waits for the drain.
#[derive(Debug)]
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
    tracker: Arc<Tracker>,
}

/// The side held by accept loops and connections. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
    tracker: Arc<Tracker>,
}

/// Counts one live connection (or task) until dropped.
#[derive(Debug)]
pub struct Tracked(Arc<Tracker>);

// === impl ShutdownTrigger ===

impl ShutdownTrigger {
    /// Creates a trigger and its first receiver.
    pub fn new() -> (Self, Shutdown) {
        let (tx, rx) = watch::channel(false);
        let tracker = Arc::new(Tracker::default());
        (
            Self {
                tx,
                tracker: tracker.clone(),
            },
            Shutdown { rx, tracker },
        )
    }

    /// Tells every holder of a [`Shutdown`] to stop accepting and drain.
    pub fn trigger(&self) {
        // send_replace never fails, even with no receiver left.
        self.tx.send_replace(true);
    }

    /// Number of tracked connections still open.
    pub fn live(&self) -> usize {
        self.tracker.live.load(Ordering::Acquire)
    }

    /// Waits until every tracked connection ended, or `timeout` passed.
    /// Returns whether the drain completed.
    pub async fn drained(&self, timeout: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.tracker.idle.notified();
                if self.live() == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }
}

// === impl Shutdown ===

impl Shutdown {
    /// Resolves once shutdown has been triggered.
    pub async fn signalled(&mut self) {
        // An error means the trigger was dropped: treat that as shutdown too.
        let _ = self.rx.wait_for(|v| *v).await;
    }

    /// Whether shutdown has been triggered (or the trigger dropped).
    pub fn is_signalled(&self) -> bool {
        *self.rx.borrow() || self.rx.has_changed().is_err()
    }

    /// Registers one live connection.
    pub fn track(&self) -> Tracked {
        self.tracker.live.fetch_add(1, Ordering::AcqRel);
        Tracked(self.tracker.clone())
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
