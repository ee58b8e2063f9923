//! The `{ mdns = "_http._tcp" }` endpoint source: the instances that any
//! device on the LAN advertises under a service type, as a cluster's
//! endpoint set and as catalog instances.
//!
//! Imported addresses never include loopback ones: a LAN device announcing
//! `127.0.0.1` would otherwise point the gateway at its own local ports.

use std::net::SocketAddr;

use meshgate_catalog::{Instance, Origin, ServiceName};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::daemon::Snapshot;
use crate::table::{self, Resolved};
use crate::{Mdns, MdnsError, names};

/// A running import: its task and the instances it sees.
#[derive(Debug)]
pub struct MdnsSource {
    /// The task; it ends on shutdown, when the endpoint receivers are all
    /// gone, or when the responder shuts down.
    pub task: JoinHandle<()>,
    /// The imported instances as catalog entries (origin `Mdns`, service
    /// named after the type: `_http._tcp` -> `http`, healthy), one per
    /// address, sorted by id (`FULLNAME/ADDR`); updated with the endpoints.
    pub instances: watch::Receiver<Vec<Instance>>,
}

/// An import may use `addr` of `r`.
fn importable(_: &Resolved, addr: &SocketAddr) -> bool {
    !addr.ip().is_loopback()
}

/// The endpoints in `snapshot`, sorted, deduped.
pub(crate) fn endpoints(snapshot: &Snapshot) -> Vec<SocketAddr> {
    table::addresses(snapshot.iter(), importable)
}

/// The catalog instances in `snapshot`, sorted by id.
pub(crate) fn instances(snapshot: &Snapshot, service: &ServiceName) -> Vec<Instance> {
    let mut out: Vec<Instance> = snapshot
        .iter()
        .flat_map(|r| {
            let node = r.txt.node.clone().unwrap_or_else(|| {
                let host = r.host.strip_suffix('.').unwrap_or(&r.host);
                host.strip_suffix(".local").unwrap_or(host).to_owned()
            });
            r.addrs
                .iter()
                .filter(|a| importable(r, a))
                .map(move |addr| Instance {
                    service: service.clone(),
                    id: format!("{}/{addr}", r.fullname),
                    node: node.clone(),
                    addr: *addr,
                    tags: r.txt.tags.clone(),
                    meta: r.txt.meta.clone(),
                    healthy: true,
                    origin: Origin::Mdns,
                })
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// Imports the instances of `service_type` (`_http._tcp`, `.local.`
/// optional) that anything on the selected interfaces advertises:
/// publishes their addresses with their SRV port to `tx` (sorted,
/// deduplicated, sent only when the set changes) as instances are
/// resolved, say goodbye or expire, until `shutdown` turns true, `tx` has
/// no receiver left, or the responder shuts down. At most
/// [`MAX_INSTANCES`](crate::MAX_INSTANCES) instances of
/// [`MAX_ADDRS`](crate::MAX_ADDRS) addresses each; loopback, unspecified
/// and multicast addresses and port 0 are never imported. MUST be called
/// within a tokio runtime.
pub fn mdns_source(
    mdns: &Mdns,
    service_type: &str,
    tx: watch::Sender<Vec<SocketAddr>>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<MdnsSource, MdnsError> {
    let runtime =
        tokio::runtime::Handle::try_current().map_err(|_| MdnsError::NoRuntime("mdns_source"))?;
    let ty = names::parse_service_type(service_type).map_err(MdnsError::Settings)?;
    let service = names::catalog_name_of(&ty).ok_or_else(|| {
        MdnsError::Settings(format!("{service_type:?} does not name a catalog service"))
    })?;
    let mut seen = mdns.subscribe(&ty)?;
    let (instances_tx, instances_rx) = watch::channel(Vec::new());
    let mut closed = mdns.closed();
    let task = runtime.spawn(async move {
        loop {
            let snapshot = seen.borrow_and_update().clone();
            let current = endpoints(&snapshot);
            tx.send_if_modified(|set| {
                if *set == current {
                    return false;
                }
                tracing::debug!(%ty, endpoints = ?current, "mdns: imported endpoints changed");
                *set = current;
                true
            });
            let listed = instances(&snapshot, &service);
            instances_tx.send_if_modified(|old| {
                let changed = *old != listed;
                if changed {
                    *old = listed;
                }
                changed
            });
            tokio::select! {
                changed = seen.changed() => if changed.is_err() { return },
                changed = shutdown.changed() => if changed.is_err() || *shutdown.borrow() { return },
                () = tx.closed() => return,
                changed = closed.changed() => if changed.is_err() || *closed.borrow() { return },
            }
        }
    });
    Ok(MdnsSource {
        task,
        instances: instances_rx,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::table::{SeenIp, Table};
    use crate::txt::Txt;

    #[test]
    fn imports_skip_loopback_and_become_catalog_instances() {
        let mut t = Table::default();
        let ips = ["10.0.0.7", "127.0.0.1"].map(|ip| SeenIp {
            ip: ip.parse().unwrap(),
            if_index: 0,
        });
        let txt = Txt {
            tags: vec!["a".into()],
            ..Txt::default()
        };
        t.upsert(
            table::resolve("printer._http._tcp.local.", "printer.local.", 631, ips, txt).unwrap(),
        )
        .unwrap();
        let snap = Arc::new(t);
        assert_eq!(
            endpoints(&snap),
            vec!["10.0.0.7:631".parse::<SocketAddr>().unwrap()]
        );
        let http = ServiceName::try_new("http").unwrap();
        let list = instances(&snap, &http);
        assert_eq!(list.len(), 1);
        let i = &list[0];
        assert_eq!(i.id, "printer._http._tcp.local./10.0.0.7:631");
        assert_eq!(i.node, "printer");
        assert_eq!(i.service, http);
        assert_eq!(i.tags, vec!["a"]);
        assert_eq!(i.origin, Origin::Mdns);
        assert!(i.healthy);
    }
}
