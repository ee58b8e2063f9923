//! LAN bootstrap: advertise this node's gossip address as
//! `NODE._meshgate._udp.local.` and turn the other nodes' advertisements
//! into the gossip driver's seeds.
//!
//! The seed set follows the LAN: a node's goodbye (graceful stop) or the
//! expiry of its records (it vanished) takes its address out. Membership
//! itself stays gossip's business; these are only places to knock.

use std::net::SocketAddr;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::advertise::Ad;
use crate::daemon::Snapshot;
use crate::table::{self, Resolved};
use crate::txt::{self, BOOTSTRAP_VERSION};
use crate::{BOOTSTRAP_TYPE, Mdns, MdnsError, names};

/// Whether a resolved `_meshgate._udp` instance is another node we can
/// gossip with: it speaks our bootstrap version and is not us (by our full
/// name, or by our node name in its TXT: node names are unique per LAN).
fn is_peer(r: &Resolved, node: &str, own_fullname: &str) -> bool {
    r.txt.proto == Some(BOOTSTRAP_VERSION)
        && !r.fullname.eq_ignore_ascii_case(own_fullname)
        && r.txt.node.as_deref() != Some(node)
}

/// The seeds in `snapshot`: the peers' gossip addresses, sorted, deduped.
pub(crate) fn seeds(snapshot: &Snapshot, node: &str, own_fullname: &str) -> Vec<SocketAddr> {
    table::addresses(snapshot.iter(), |r, _| is_peer(r, node, own_fullname))
}

/// Advertises this node's gossip address and publishes the other nodes'
/// gossip addresses to `seeds_tx` (sorted, deduplicated, sent only when the
/// set changes) until `shutdown` turns true or its sender is dropped, or
/// the responder shuts down. On the way out it unregisters the
/// advertisement (goodbye packets). The advertisement does not depend on
/// anyone reading the seeds. MUST be called within a tokio runtime.
///
/// The advertisement: type `_meshgate._udp.local.`, instance the node name,
/// host `mg-NODE.local.`, port and address from
/// [`MdnsSettings::gossip_addr`](crate::MdnsSettings::gossip_addr), TXT
/// `txtvers=1`, `node=NODE`, `proto=1`.
pub fn lan_bootstrap(
    mdns: &Mdns,
    seeds_tx: watch::Sender<Vec<SocketAddr>>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, MdnsError> {
    let runtime =
        tokio::runtime::Handle::try_current().map_err(|_| MdnsError::NoRuntime("lan_bootstrap"))?;
    let settings = mdns.settings();
    let node = settings.node.clone();
    if settings.gossip_addr.port() == 0 {
        return Err(MdnsError::Settings(
            "the gossip address has port 0; advertise the bound address".into(),
        ));
    }
    let ad = Ad {
        ty: BOOTSTRAP_TYPE.to_owned(),
        instance: names::instance_label(&node),
        ip: settings.gossip_addr.ip(),
        port: settings.gossip_addr.port(),
        txt: txt::bootstrap_txt(&node),
    };
    let info = ad.to_info(&mdns.inner.host)?;
    let own = info.get_fullname().to_owned();
    // Subscribe first: our own announcement then shows up (and is
    // excluded) rather than racing the browse.
    let mut peers = mdns.subscribe(BOOTSTRAP_TYPE)?;
    mdns.register(info)?;
    tracing::info!(fullname = %own, addr = %settings.gossip_addr, "mdns: advertising this node for LAN bootstrap");

    let mdns = mdns.clone();
    let mut closed = mdns.closed();
    Ok(runtime.spawn(async move {
        loop {
            let current = seeds(&peers.borrow_and_update(), &node, &own);
            seeds_tx.send_if_modified(|seeds| {
                if *seeds == current {
                    return false;
                }
                tracing::debug!(seeds = ?current, "mdns: LAN bootstrap seeds changed");
                *seeds = current;
                true
            });
            tokio::select! {
                changed = peers.changed() => if changed.is_err() { break },
                changed = shutdown.changed() => if changed.is_err() || *shutdown.borrow() { break },
                changed = closed.changed() => if changed.is_err() || *closed.borrow() { return },
            }
        }
        drop(peers);
        if !mdns.inner.is_closed() {
            mdns.unregister(&own).await;
        }
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::table::{SeenIp, Table};
    use crate::txt::Txt;

    fn peer(fullname: &str, node: &str, proto: Option<u32>, ip: &str) -> Resolved {
        let txt = Txt {
            node: Some(node.into()),
            proto,
            ..Txt::default()
        };
        let ip = SeenIp {
            ip: ip.parse().unwrap(),
            if_index: 0,
        };
        table::resolve(fullname, "h.local.", 7946, [ip], txt).unwrap()
    }

    #[test]
    fn seeds_are_the_other_nodes_that_speak_our_version() {
        let mut t = Table::default();
        for r in [
            peer(
                "node-a._meshgate._udp.local.",
                "node-a",
                Some(1),
                "10.0.0.1",
            ),
            peer(
                "node-b._meshgate._udp.local.",
                "node-b",
                Some(1),
                "10.0.0.2",
            ),
            peer(
                "node-c._meshgate._udp.local.",
                "node-c",
                Some(1),
                "10.0.0.3",
            ),
            peer(
                "node-d._meshgate._udp.local.",
                "node-d",
                Some(2),
                "10.0.0.4",
            ),
            peer("node-e._meshgate._udp.local.", "node-e", None, "10.0.0.5"),
            // Probing renamed our instance, but the TXT still names us.
            peer(
                "node-a (2)._meshgate._udp.local.",
                "node-a",
                Some(1),
                "10.0.0.6",
            ),
        ] {
            t.upsert(r).unwrap();
        }
        let seeds = seeds(&Arc::new(t), "node-a", "node-a._meshgate._udp.local.");
        let want: Vec<SocketAddr> = vec![
            "10.0.0.2:7946".parse().unwrap(),
            "10.0.0.3:7946".parse().unwrap(),
        ];
        assert_eq!(seeds, want);
    }
}
