//! Counters of the registry and the watchers, as plain numbers the
//! application exports as metrics.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by a registry or by watchers; cheap to bump from any
/// task. Read them with [`EtcdStats::snapshot`].
#[derive(Debug, Default)]
pub struct EtcdStats {
    registrations: AtomicU64,
    reregistrations: AtomicU64,
    keepalive_failures: AtomicU64,
    watch_events: AtomicU64,
    malformed: AtomicU64,
    resyncs: AtomicU64,
    compactions: AtomicU64,
    repairs: AtomicU64,
}

/// A copy of [`EtcdStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EtcdCounts {
    /// Registrations completed: a lease granted and every local instance put
    /// under it (the first one and every re-registration).
    pub registrations: u64,
    /// Registrations after the first: each one followed a lost lease or a
    /// lost etcd.
    pub reregistrations: u64,
    /// Keepalive failures: the stream broke or closed, etcd said the lease
    /// was gone, or a keepalive went unanswered for `request_timeout`.
    pub keepalive_failures: u64,
    /// Watch events received (puts and deletes under the watched prefix).
    pub watch_events: u64,
    /// Values under the prefix skipped because they were not a valid
    /// instance record (counted each time one is read).
    pub malformed: u64,
    /// Full resyncs (GET, then WATCH again) after the first sync: after a
    /// lost connection, a cancelled watch or a compaction.
    pub resyncs: u64,
    /// Watches cancelled because their revision had been compacted.
    pub compactions: u64,
    /// Times the registry found some of its keys deleted or overwritten
    /// by someone else and put them back (checked once per TTL).
    pub repairs: u64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Counter {
    Registrations,
    Reregistrations,
    KeepaliveFailures,
    WatchEvents,
    Malformed,
    Resyncs,
    Compactions,
    Repairs,
}

// === impl EtcdStats ===

impl EtcdStats {
    /// The counters now.
    pub fn snapshot(&self) -> EtcdCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        EtcdCounts {
            registrations: get(&self.registrations),
            reregistrations: get(&self.reregistrations),
            keepalive_failures: get(&self.keepalive_failures),
            watch_events: get(&self.watch_events),
            malformed: get(&self.malformed),
            resyncs: get(&self.resyncs),
            compactions: get(&self.compactions),
            repairs: get(&self.repairs),
        }
    }

    pub(crate) fn add(&self, counter: Counter, n: u64) {
        let c = match counter {
            Counter::Registrations => &self.registrations,
            Counter::Reregistrations => &self.reregistrations,
            Counter::KeepaliveFailures => &self.keepalive_failures,
            Counter::WatchEvents => &self.watch_events,
            Counter::Malformed => &self.malformed,
            Counter::Resyncs => &self.resyncs,
            Counter::Compactions => &self.compactions,
            Counter::Repairs => &self.repairs,
        };
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn bump(&self, counter: Counter) {
        self.add(counter, 1);
    }
}
