//! The connection breakers a cluster's endpoint pools share:
//! `max_connections` and `max_pending_requests`.
//!
//! Every upstream connection holds a [`ConnSlot`], one unit of the
//! cluster's `max_connections`. A request that needs a new connection when
//! all units are taken waits, as one of at most `max_pending_requests`, for
//! a unit to come back (a connection closed) or for a pooled connection to
//! go idle; past that, it overflows with 503 at once. Before it waits, it
//! closes an idle connection at any endpoint of the cluster: an idle
//! connection to one endpoint must not starve requests for another (after
//! a failover, say) until its idle timeout. The wait is bounded by the
//! caller's timeout. While it waits, the caller's `waiting` flag is up: a
//! timeout that fires then is the cluster's congestion, not the endpoint's
//! failure, and is not held against the endpoint.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use meshgate_core::{Error, ErrorKind};
use meshgate_resilience::breaker::{Limit, Permit};
use meshgate_telemetry::Counter;
use tokio::sync::Notify;

use super::EndpointPool;
use crate::h1_client::Conn;

/// Shared by every endpoint pool of one cluster.
pub(crate) struct ConnLimits {
    connections: Arc<Limit>,
    pending: Arc<Limit>,
    /// Signalled when a unit comes back or a connection goes idle, while
    /// requests are pending.
    freed: Notify,
    overflow_connections: Arc<Counter>,
    overflow_pending: Arc<Counter>,
    /// The pools sharing these units (the current config generation's),
    /// whose idle connections a waiter may close.
    pools: Mutex<Vec<Weak<EndpointPool>>>,
}

/// One connection's unit of `max_connections`; dropping it (the connection
/// closed) gives the unit back and wakes pending requests.
pub(crate) struct ConnSlot {
    permit: Option<Permit>,
    limits: Arc<ConnLimits>,
}

/// What a request that needs a connection got.
pub(crate) enum Got {
    /// A unit: open a new connection with it.
    Slot(ConnSlot),
    /// A pooled connection that went idle while the request waited.
    Idle(Conn),
}

impl ConnLimits {
    pub(crate) fn new(
        max_connections: usize,
        max_pending: usize,
        overflow_connections: Arc<Counter>,
        overflow_pending: Arc<Counter>,
    ) -> Arc<Self> {
        Arc::new(Self {
            connections: Limit::new(max_connections),
            pending: Limit::new(max_pending),
            freed: Notify::new(),
            overflow_connections,
            overflow_pending,
            pools: Mutex::new(Vec::new()),
        })
    }

    /// The endpoint pools that share these units now (a reload that keeps
    /// the limits replaces the list).
    pub(crate) fn shared_by(&self, pools: &[Arc<EndpointPool>]) {
        let weak = pools.iter().map(Arc::downgrade).collect();
        *self.pools.lock().unwrap_or_else(PoisonError::into_inner) = weak;
    }

    /// Closes one idle connection at any endpoint, which gives its unit
    /// back; false when none is idle.
    fn reclaim(&self) -> bool {
        // Copied out, so no pool's lock is taken under this one.
        let pools = self
            .pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        pools
            .iter()
            .filter_map(Weak::upgrade)
            .any(|pool| pool.close_idle())
    }

    /// A unit for a new connection. When all are taken, waits as a pending
    /// request (with `waiting` raised) until one comes back or `idle` yields
    /// a pooled connection; when too many already wait, fails with
    /// `Overloaded`.
    pub(crate) async fn acquire(
        self: &Arc<Self>,
        idle: impl Fn() -> Option<Conn>,
        waiting: &AtomicBool,
    ) -> Result<Got, Error> {
        if let Some(permit) = self.connections.try_acquire() {
            return Ok(Got::Slot(self.slot(permit)));
        }
        self.overflow_connections.inc();
        let Some(_pending) = self.pending.try_acquire() else {
            self.overflow_pending.inc();
            return Err(Error::upstream(
                ErrorKind::Overloaded,
                "cluster at max_connections with max_pending_requests waiting",
            ));
        };
        // Lowered only on success: if the caller's timeout drops this
        // future mid-wait, the flag tells it why it timed out.
        waiting.store(true, Ordering::Relaxed);
        let got = loop {
            // Registered before looking, so a wake between the look and the
            // wait is not lost.
            let notified = self.freed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(conn) = idle() {
                break Got::Idle(conn);
            }
            if let Some(permit) = self.connections.try_acquire() {
                break Got::Slot(self.slot(permit));
            }
            if self.reclaim() {
                continue; // a unit came back: look again
            }
            notified.await;
        };
        waiting.store(false, Ordering::Relaxed);
        Ok(got)
    }

    /// A connection went idle (or closed): pending requests look again.
    pub(crate) fn wake(&self) {
        if self.pending.current() > 0 {
            self.freed.notify_waiters();
        }
    }

    fn slot(self: &Arc<Self>, permit: Permit) -> ConnSlot {
        ConnSlot {
            permit: Some(permit),
            limits: self.clone(),
        }
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        // The unit first, so a woken request can take it.
        drop(self.permit.take());
        self.limits.wake();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits(conns: usize, pending: usize) -> Arc<ConnLimits> {
        ConnLimits::new(conns, pending, Arc::default(), Arc::default())
    }

    #[tokio::test]
    async fn a_full_cluster_queues_up_to_max_pending_then_overflows() {
        let l = limits(1, 1);
        let Ok(Got::Slot(first)) = l.acquire(|| None, &AtomicBool::new(false)).await else {
            panic!("the first connection gets a unit");
        };
        // The second waits (pending) ...
        let waiting = tokio::spawn({
            let l = l.clone();
            async move {
                matches!(
                    l.acquire(|| None, &AtomicBool::new(false)).await,
                    Ok(Got::Slot(_))
                )
            }
        });
        tokio::time::timeout(Duration::from_secs(5), async {
            while l.pending.current() == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the second request never started waiting"));
        // ... a third overflows at once ...
        let third = l.acquire(|| None, &AtomicBool::new(false)).await;
        assert!(matches!(third, Err(e) if e.kind() == ErrorKind::Overloaded));
        assert_eq!(l.overflow_pending.get(), 1);
        // ... and the unit coming back wakes the waiter.
        drop(first);
        let got = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert!(matches!(got, Ok(Ok(true))), "the waiter got the freed unit");
        assert_eq!(
            l.connections.current(),
            0,
            "its slot was dropped in the task"
        );
    }
}
