//! Binary upgrade of a node that runs discovery: the successor takes the
//! gossip socket and the DNS interface's UDP and TCP sockets over with the
//! admin API, so the node keeps its gossip address and DNS port, another
//! node goes on seeing it and its services, and its DNS interface answers
//! all along the same port. Before, the successor could not bind them and
//! gave up.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{self, Gateway, wait::eventually};
use crate::discovery::{catalog_services as services, dig, member_state, node_config};
use crate::upgrade::{socket_path, start, upgrade_taking};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_discovery_upgrades_keeping_its_gossip_and_dns_sockets() {
    let users = common::upstream::echo("users-1").await;
    let dir = tempfile::tempdir().unwrap();
    let socket = socket_path(&dir);
    let config = node_config(
        "node-a",
        &[],
        &format!(
            "[[services]]\nname = \"users\"\naddress = \"{}\"\n",
            users.addr
        ),
    );
    let old = start(&config, &socket, false);
    let b = Gateway::start(&node_config("node-b", &[old.addr("gossip")], ""));
    let dns = old.addr("dns");
    let name = "users.service.meshgate.";
    eventually("node-b sees users, node-a's DNS answers for it", || async {
        services(&b) == ["users"] && dig(dns, name, "A") == ["127.0.0.1"]
    })
    .await;

    // The same gossip address and DNS port (and admin API): the successor
    // takes 4 sockets over and binds none, and the old process exits 0.
    let next = upgrade_taking(old, &config, &socket, 4);

    // node-b sees node-a (the successor, at the same address) and its
    // service; the DNS interface answers on the port it always had.
    eventually("node-b still sees node-a and users", || async {
        member_state(&b, "node-a").as_deref() == Some("alive") && services(&b) == ["users"]
    })
    .await;
    assert_eq!(dig(dns, name, "A"), ["127.0.0.1"]);
    assert_eq!(member_state(&next, "node-b").as_deref(), Some("alive"));
}
