//! Watching a prefix: the one loop behind [`crate::etcd_source`] and
//! [`crate::EtcdDirectory`].
//!
//! A session GETs the prefix, publishes what it found, then WATCHes from
//! the revision right after the GET's, so no change falls between the two.
//! Each watch response updates the entries and publishes them if anything
//! changed. When the session fails (connection lost, watch cancelled,
//! revision compacted) a new one starts, after a backoff unless the cause
//! was compaction, with a full GET + WATCH; until it succeeds the last
//! published entries stand. Values that are not instance records are
//! skipped, counted and logged; a key that turns malformed is dropped from
//! the entries (its old value no longer describes anything).

use std::collections::BTreeMap;
use std::future::Future;

use etcd_client::{GetOptions, KeyValue, WatchOptions, WatchResponse};
use meshgate_catalog::Instance;
use tracing::{debug, info, warn};

use crate::backoff::Backoff;
use crate::record;
use crate::stats::{Counter, EtcdStats};
use crate::{EtcdSettings, Failure};

/// What is under the watched prefix: key -> instance, valid records only.
pub(crate) type Entries = BTreeMap<Vec<u8>, Instance>;

/// Test hook: the next session watches from revision 1 instead of the
/// GET's, which etcd refuses once it compacted, to drive the compaction
/// path deterministically.
#[cfg(test)]
pub(crate) static WATCH_FROM_START: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Watches `prefix` until `stop` resolves, calling `publish` with the whole
/// entry set after the first sync and after every change.
pub(crate) async fn watch_prefix(
    settings: &EtcdSettings,
    prefix: &str,
    stats: &EtcdStats,
    stop: impl Future<Output = ()>,
    mut publish: impl FnMut(&Entries),
) {
    tokio::pin!(stop);
    let mut w = Watch {
        settings,
        prefix,
        stats,
        entries: Entries::new(),
        backoff: Backoff::default(),
        synced: false,
    };
    loop {
        let failure = {
            let session = w.session(&mut publish);
            tokio::pin!(session);
            tokio::select! {
                f = &mut session => f,
                () = &mut stop => return,
            }
        };
        match failure {
            Failure::Compacted(revision) => {
                stats.bump(Counter::Compactions);
                info!(
                    prefix,
                    revision, "etcd watch fell behind a compaction; resyncing"
                );
            }
            failure => {
                if w.backoff.retrying() {
                    debug!(prefix, error = %failure, "etcd watch failed again; retrying");
                } else {
                    warn!(prefix, error = %failure, "etcd watch lost; keeping the last known instances, resyncing");
                }
                tokio::select! {
                    () = tokio::time::sleep(w.backoff.next_delay()) => {}
                    () = &mut stop => return,
                }
            }
        }
    }
}

/// One watcher's state across sessions.
struct Watch<'a> {
    settings: &'a EtcdSettings,
    prefix: &'a str,
    stats: &'a EtcdStats,
    /// The last published entries; kept while etcd is away.
    entries: Entries,
    backoff: Backoff,
    /// Whether a session ever synced (later syncs count as resyncs).
    synced: bool,
}

// === impl Watch ===

impl Watch<'_> {
    /// One session; it only ends when the watch can no longer be trusted.
    async fn session(&mut self, publish: &mut impl FnMut(&Entries)) -> Failure {
        match self.sync_and_watch(publish).await {
            Ok(never) => match never {},
            Err(failure) => failure,
        }
    }

    /// GET + WATCH, then apply watch responses until something fails.
    async fn sync_and_watch(
        &mut self,
        publish: &mut impl FnMut(&Entries),
    ) -> Result<std::convert::Infallible, Failure> {
        let (settings, prefix) = (self.settings, self.prefix);
        let mut client = settings.connect().await?;
        let listing = settings
            .bounded(
                "get",
                client.get(prefix, Some(GetOptions::new().with_prefix())),
            )
            .await?;
        let revision = listing
            .header()
            .map(|h| h.revision())
            .ok_or(Failure::Lost("a GET response without a header"))?;
        let fresh: Entries = listing
            .kvs()
            .iter()
            .filter_map(|kv| Some((kv.key().to_vec(), self.decode(kv)?)))
            .collect();
        if self.synced {
            self.stats.bump(Counter::Resyncs);
        }
        if self.entries != fresh || !self.synced {
            self.entries = fresh;
            publish(&self.entries);
        }
        self.synced = true;
        debug!(
            prefix,
            revision,
            instances = self.entries.len(),
            "etcd prefix synced"
        );

        #[cfg(test)]
        let revision = if WATCH_FROM_START.swap(false, std::sync::atomic::Ordering::SeqCst) {
            0
        } else {
            revision
        };
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(revision + 1);
        let mut stream = settings
            .bounded("watch", client.watch(prefix, Some(options)))
            .await?;
        self.backoff.reset();
        loop {
            let response = match stream.message().await {
                Ok(Some(r)) => r,
                Ok(None) => return Err(Failure::Lost("the watch stream closed")),
                Err(error) => return Err(Failure::Etcd("watch", error)),
            };
            if response.canceled() {
                return Err(cancelled(&response));
            }
            if self.apply(&response) {
                publish(&self.entries);
            }
        }
    }

    /// Applies one watch response's events; true when the entries changed.
    fn apply(&mut self, response: &WatchResponse) -> bool {
        let mut changed = false;
        for event in response.events() {
            self.stats.bump(Counter::WatchEvents);
            let Some(kv) = event.kv() else {
                self.stats.bump(Counter::Malformed);
                continue;
            };
            // etcd marks a delete by a zero create revision (a tombstone
            // holds only the key); reading that, instead of `event_type()`,
            // spares a panic on an event type this client does not know.
            let next = if kv.create_revision() == 0 {
                None
            } else {
                self.decode(kv)
            };
            changed |= match next {
                Some(instance) if self.entries.get(kv.key()) == Some(&instance) => false,
                Some(instance) => {
                    self.entries.insert(kv.key().to_vec(), instance);
                    true
                }
                None => self.entries.remove(kv.key()).is_some(),
            };
        }
        changed
    }

    /// The instance in `kv`, or None (counted and logged) when malformed.
    fn decode(&self, kv: &KeyValue) -> Option<Instance> {
        match record::decode(self.settings.base(), kv.key(), kv.value()) {
            Ok(instance) => Some(instance),
            Err(error) => {
                self.stats.bump(Counter::Malformed);
                let key = String::from_utf8_lossy(kv.key());
                warn!(%key, %error, "skipping a malformed etcd registry value");
                None
            }
        }
    }
}

fn cancelled(response: &WatchResponse) -> Failure {
    if response.compact_revision() > 0 {
        Failure::Compacted(response.compact_revision())
    } else {
        Failure::Cancelled(response.cancel_reason().to_owned())
    }
}
