//! Two meshgate nodes in two namespaces find each other's gossip address
//! with no seed list, and a graceful stop takes a node out at once.

use std::net::SocketAddr;
use std::time::Duration;

use meshgate_mdns::lan_bootstrap;
use tokio::sync::watch;

use crate::net::Lan;
use crate::{require_netns, start};

fn addrs(list: &[&str]) -> Vec<SocketAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_find_each_other_with_no_seeds_and_see_a_graceful_leave() {
    require_netns!();
    let lan = Lan::new("boot", 2);
    // One node names its interface, the other takes the default (every
    // non-loopback interface): both selections must work.
    let a = start(&lan.nodes[0].ns, "node-a", "10.77.0.1:7946", &["lan0"]);
    let b = start(&lan.nodes[1].ns, "node-b", "10.77.0.2:7946", &[]);
    let (stop_a, stop_a_rx) = watch::channel(false);
    let (stop_b, stop_b_rx) = watch::channel(false);
    let (seeds_a, mut seen_by_a) = watch::channel(Vec::new());
    let (seeds_b, mut seen_by_b) = watch::channel(Vec::new());
    let task_a = lan_bootstrap(&a, seeds_a, stop_a_rx).unwrap();
    let task_b = lan_bootstrap(&b, seeds_b, stop_b_rx).unwrap();

    let want_a = addrs(&["10.77.0.2:7946"]);
    let want_b = addrs(&["10.77.0.1:7946"]);
    tokio::time::timeout(
        Duration::from_secs(20),
        seen_by_a.wait_for(|s| *s == want_a),
    )
    .await
    .expect("node-a never saw node-b")
    .unwrap();
    tokio::time::timeout(
        Duration::from_secs(20),
        seen_by_b.wait_for(|s| *s == want_b),
    )
    .await
    .expect("node-b never saw node-a")
    .unwrap();
    // Never itself, never anything else.
    assert_eq!(*seen_by_a.borrow(), want_a);
    assert_eq!(*seen_by_b.borrow(), want_b);

    // node-b stops its bootstrap: its goodbye (TTL 0) reaches node-a, which
    // drops the seed now rather than when the record would expire (2 min).
    stop_b.send_replace(true);
    tokio::time::timeout(Duration::from_secs(5), task_b)
        .await
        .expect("node-b's bootstrap did not stop")
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), seen_by_a.wait_for(|s| s.is_empty()))
        .await
        .expect("node-a kept node-b after its goodbye")
        .unwrap();

    stop_a.send_replace(true);
    tokio::time::timeout(Duration::from_secs(5), task_a)
        .await
        .unwrap()
        .unwrap();
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_starts_later_is_found_and_a_shut_down_responder_says_goodbye() {
    require_netns!();
    let lan = Lan::new("late", 2);
    let a = start(&lan.nodes[0].ns, "node-a", "10.77.0.1:7946", &["lan0"]);
    let (_stop_a, stop_a_rx) = watch::channel(false);
    let (seeds_a, mut seen_by_a) = watch::channel(Vec::new());
    let _task_a = lan_bootstrap(&a, seeds_a, stop_a_rx).unwrap();

    // node-b arrives after node-a's browse began: its announcements (not
    // an answer to a query) must be enough.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let b = start(&lan.nodes[1].ns, "node-b", "10.77.0.2:7950", &["lan0"]);
    let (_stop_b, stop_b_rx) = watch::channel(false);
    let (seeds_b, _seen_by_b) = watch::channel(Vec::new());
    let _task_b = lan_bootstrap(&b, seeds_b, stop_b_rx).unwrap();
    let want = addrs(&["10.77.0.2:7950"]);
    tokio::time::timeout(Duration::from_secs(20), seen_by_a.wait_for(|s| *s == want))
        .await
        .expect("node-a never saw the late node-b")
        .unwrap();

    // Shutting the whole responder down (the process exiting cleanly)
    // sends the goodbyes too.
    b.shutdown().await;
    tokio::time::timeout(Duration::from_secs(5), seen_by_a.wait_for(|s| s.is_empty()))
        .await
        .expect("node-a kept node-b after its responder shut down")
        .unwrap();
    a.shutdown().await;
}
