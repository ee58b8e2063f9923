//! Restricting interfaces works: a node that may use only `lan0` sends no
//! mDNS packet on its other link, while one left on the default (every
//! non-loopback interface) does, which shows the counter would see a leak.

use std::net::SocketAddr;
use std::time::Duration;

use meshgate_catalog::{Instance, Origin, ServiceName};
use meshgate_mdns::lan_bootstrap;
use tokio::sync::watch;

use crate::net::Lan;
use crate::peer::{Lines, python};
use crate::{require_netns, start};

fn service() -> Instance {
    Instance {
        service: ServiceName::try_new("users").unwrap(),
        id: "node-a/users".into(),
        node: "node-a".into(),
        // Unspecified: announced at the selected interfaces' addresses.
        addr: "0.0.0.0:9001".parse().unwrap(),
        tags: Vec::new(),
        meta: Default::default(),
        healthy: true,
        origin: Origin::Local,
    }
}

/// Counts the mDNS packets on the side link while `node` (in the node
/// namespace attached to it) bootstraps and advertises, until node-b has
/// seen it plus a window of 3 s for repeated announcements.
async fn packets_on_the_side_link(
    lan: &mut Lan,
    side: &str,
    interfaces: &[&str],
    node: &str,
    port: u16,
) -> (u64, Vec<SocketAddr>) {
    let counter = lan.spawn(python(side, &["count", "side0", "60"]));
    let mut counter = Lines::of(counter, "packet counter");
    counter
        .wait_for(Duration::from_secs(10), |v| v["event"] == "counting")
        .await;

    let a = start(
        &lan.nodes[0].ns,
        node,
        &format!("0.0.0.0:{port}"),
        interfaces,
    );
    let b = start(&lan.nodes[1].ns, "node-b", "10.77.0.2:7946", &["lan0"]);
    let (_stop, stop_rx) = watch::channel(false);
    let (seeds_a, _seen_by_a) = watch::channel(Vec::<SocketAddr>::new());
    let (seeds_b, mut seen_by_b) = watch::channel(Vec::new());
    let _ta = lan_bootstrap(&a, seeds_a, stop_rx.clone()).unwrap();
    let _tb = lan_bootstrap(&b, seeds_b, stop_rx).unwrap();
    a.advertise(&[service()]).await;

    tokio::time::timeout(
        Duration::from_secs(20),
        seen_by_b.wait_for(|s| !s.is_empty()),
    )
    .await
    .expect("node-b never saw the node")
    .unwrap();
    // The observation window: probes and announcements repeat for ~2 s.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let seen = seen_by_b.borrow().clone();
    a.shutdown().await;
    b.shutdown().await;
    counter.close_stdin();
    let count = counter
        .wait_for(Duration::from_secs(10), |v| v.get("mdns_packets").is_some())
        .await;
    (count["mdns_packets"].as_u64().unwrap(), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_sent_on_interfaces_that_are_not_selected() {
    require_netns!();
    let mut lan = Lan::new("iso", 2);
    let side = lan.add_side(0, "side");

    let (packets, seen) =
        packets_on_the_side_link(&mut lan, &side, &["lan0"], "node-a", 7946).await;
    assert_eq!(packets, 0, "mDNS packets leaked onto the unselected link");
    // Its gossip address (0.0.0.0) was announced as lan0's IPv4 address
    // only: not side0's, and no IPv6 address nothing listens on.
    assert_eq!(seen, vec!["10.77.0.1:7946".parse::<SocketAddr>().unwrap()]);

    // The control: the same node on the default selection does use the
    // side link, and the counter sees it.
    let (packets, _) = packets_on_the_side_link(&mut lan, &side, &[], "node-a2", 7947).await;
    assert!(
        packets > 0,
        "the counter saw nothing even without a restriction"
    );
}
