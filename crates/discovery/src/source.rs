//! An endpoint source fed by the gossip catalog: a cluster with
//! `discovery = { catalog = "users" }` gets the healthy instances of
//! `users`, sorted and deduped, sent only when the set changes.

use std::net::SocketAddr;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::GossipHandle;

/// Publishes the healthy addresses of `service` into `tx` now and after
/// every catalog change, until the driver stops or every receiver of `tx`
/// is dropped. While the driver runs the last known set is kept.
pub fn catalog_source(
    handle: GossipHandle,
    service: &str,
    tx: watch::Sender<Vec<SocketAddr>>,
) -> JoinHandle<()> {
    let service = service.to_owned();
    tokio::spawn(async move {
        let mut changes = handle.changes();
        loop {
            let addrs = handle.snapshot().healthy_addrs(&service);
            tx.send_if_modified(|cur| {
                if *cur == addrs {
                    false
                } else {
                    *cur = addrs;
                    true
                }
            });
            tokio::select! {
                r = changes.changed() => {
                    if r.is_err() {
                        return;
                    }
                }
                () = tx.closed() => return,
            }
        }
    })
}
