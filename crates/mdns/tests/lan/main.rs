//! mDNS on a LAN of network namespaces: meshgate nodes, python-zeroconf and
//! avahi talk over a bridge that no real interface is part of. Each test
//! needs root (namespaces) and says so when it skips; each bounds its time
//! and tears its namespaces down even when it fails.

// A failed unwrap in a test or its helpers is a test failure, which is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod net;
mod peer;

mod advertise;
mod bootstrap;
mod import;
mod isolation;

use meshgate_mdns::{Mdns, MdnsSettings};

/// Starts a responder for `node` gossiping on `gossip` inside `ns`, on the
/// given interfaces (empty: every non-loopback one).
pub(crate) fn start(ns: &str, node: &str, gossip: &str, interfaces: &[&str]) -> Mdns {
    let mut settings = MdnsSettings::new(node, gossip.parse().unwrap());
    settings.interfaces = interfaces.iter().map(|s| s.to_string()).collect();
    net::Lan::within(ns, move || Mdns::start(settings)).expect("start mdns")
}
