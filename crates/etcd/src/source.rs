//! The `{ etcd = "users" }` endpoint source: one service's healthy
//! instances, as the sorted, deduplicated addresses a cluster balances over.

use std::net::SocketAddr;
use std::sync::Arc;

use meshgate_catalog::ServiceName;
use tokio::sync::watch;

use crate::EtcdSettings;
use crate::backoff::stopped;
use crate::stats::EtcdStats;
use crate::watcher::{Entries, watch_prefix};

/// Publishes the addresses of `service`'s healthy instances registered
/// under `settings.prefix` into `tx`, until `shutdown` holds true (or its
/// sender is dropped) or every receiver of `tx` is gone.
///
/// The set is sorted and deduplicated and sent only when it changes. It
/// starts from a GET of `PREFIX/SERVICE/` and follows a WATCH from the
/// revision after it; when etcd is unreachable the last known set stands
/// while the source reconnects with backoff and resyncs. Unhealthy
/// instances are left out; malformed values are skipped and counted in
/// `stats`.
pub async fn etcd_source(
    settings: EtcdSettings,
    service: ServiceName,
    tx: watch::Sender<Vec<SocketAddr>>,
    mut shutdown: watch::Receiver<bool>,
    stats: Arc<EtcdStats>,
) {
    let prefix = settings.service_prefix(service.as_str());
    let stop = async {
        tokio::select! {
            () = stopped(&mut shutdown) => {}
            () = tx.closed() => {}
        }
    };
    watch_prefix(&settings, &prefix, &stats, stop, |entries| {
        let next = healthy_addrs(entries);
        tx.send_if_modified(|current| {
            if *current == next {
                return false;
            }
            tracing::info!(service = %service, endpoints = next.len(), "etcd endpoints changed");
            current.clone_from(&next);
            true
        });
    })
    .await;
}

/// The healthy instances' addresses, sorted and deduplicated.
fn healthy_addrs(entries: &Entries) -> Vec<SocketAddr> {
    let mut addrs: Vec<SocketAddr> = entries
        .values()
        .filter(|i| i.healthy)
        .map(|i| i.addr)
        .collect();
    addrs.sort_unstable();
    addrs.dedup();
    addrs
}
