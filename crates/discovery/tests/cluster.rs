//! Four real drivers on loopback UDP sockets: join, catalog spread into an
//! endpoint source, a node dropped without a goodbye detected down and its
//! instance removed, and a graceful leave.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is the failure report"
)]

use std::net::SocketAddr;
use std::time::Duration;

use meshgate_catalog::ServiceName;
use meshgate_discovery::{Gossip, GossipHandle, catalog_source};
use meshgate_gossip::{LocalService, MemberState, Settings, Timing};
use tokio::net::UdpSocket;
use tokio::sync::watch;

const KEY: [u8; 32] = [42; 32];

fn fast() -> Timing {
    Timing {
        probe_period: Duration::from_millis(200),
        probe_rtt: Duration::from_millis(80),
        gossip_interval: Duration::from_millis(50),
        anti_entropy_interval: Duration::from_secs(1),
        rejoin_interval: Duration::from_millis(300),
        ..Timing::lan()
    }
}

fn users(port: u16) -> LocalService {
    LocalService {
        service: ServiceName::try_new("users").unwrap(),
        id: format!("users-{port}"),
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        tags: vec![],
        meta: Default::default(),
        healthy: true,
    }
}

async fn start(name: &str, seeds: Vec<SocketAddr>, services: Vec<LocalService>) -> GossipHandle {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut s = Settings::new(name, socket.local_addr().unwrap(), vec![KEY]);
    s.timing = fast();
    Gossip::start(s, Some(socket), seeds, services)
        .await
        .unwrap()
}

async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn alive(h: &GossipHandle) -> usize {
    h.members()
        .iter()
        .filter(|m| m.state == MemberState::Alive)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drivers_join_spread_the_catalog_detect_a_dead_node_and_leave() {
    let a = start("a", vec![], vec![]).await;
    let seed = vec![a.local_addr()];
    let b = start("b", seed.clone(), vec![users(9001)]).await;
    let c = start("c", seed.clone(), vec![users(9002)]).await;
    let d = start("d", seed.clone(), vec![]).await;
    let all = [&a, &b, &c, &d];
    wait_for("4 members everywhere", Duration::from_secs(10), || {
        all.iter().all(|h| alive(h) == 4)
    })
    .await;

    // The endpoint source on `d` sees both instances.
    let (tx, mut rx) = watch::channel(Vec::new());
    let source = catalog_source(d.clone(), "users", tx);
    let both = vec![
        SocketAddr::from(([127, 0, 0, 1], 9001)),
        SocketAddr::from(([127, 0, 0, 1], 9002)),
    ];
    tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|v| *v == both))
        .await
        .expect("catalog did not spread")
        .unwrap();
    assert_eq!(d.directory().instances("users").len(), 2);

    // An unhealthy instance leaves the endpoint set but stays listed.
    b.set_health("users-9001", false).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|v| *v == both[1..]))
        .await
        .expect("health did not spread")
        .unwrap();
    b.set_health("users-9001", true).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|v| *v == both))
        .await
        .unwrap()
        .unwrap();

    // `c` vanishes without a goodbye: every handle dropped, its socket closed.
    let c_addr = c.local_addr();
    drop(c);
    wait_for("c declared down", Duration::from_secs(15), || {
        [&a, &b, &d].iter().all(|h| {
            h.members()
                .iter()
                .any(|m| m.addr == c_addr && m.state == MemberState::Down)
        })
    })
    .await;
    tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|v| *v == both[..1]))
        .await
        .expect("the dead node's instance stayed in the endpoint set")
        .unwrap();

    // `b` leaves gracefully: seen as left, quickly, and its instance goes.
    let b_addr = b.local_addr();
    let started = tokio::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(3), b.leave_and_stop())
        .await
        .expect("leave_and_stop is bounded");
    wait_for("b seen as left", Duration::from_secs(5), || {
        [&a, &d].iter().all(|h| {
            h.members()
                .iter()
                .any(|m| m.addr == b_addr && m.state == MemberState::Left)
        })
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a leave waits for no timeout"
    );
    tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|v| v.is_empty()))
        .await
        .unwrap()
        .unwrap();

    let s = d.stats();
    assert!(s.messages_in > 0 && s.bytes_out > 0);
    assert_eq!(s.dropped_total(), 0);
    assert!(s.down >= 1 && s.left >= 1);
    source.abort();
    a.leave_and_stop().await;
    d.leave_and_stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_key_over_real_sockets_drops_nothing() {
    let a = start("a", vec![], vec![]).await;
    let seed = vec![a.local_addr()];
    let b = start("b", seed.clone(), vec![]).await;
    let c = start("c", seed, vec![]).await;
    let all = [&a, &b, &c];
    wait_for("3 members everywhere", Duration::from_secs(10), || {
        all.iter().all(|h| alive(h) == 3)
    })
    .await;
    let new = [43u8; 32];
    for keys in [vec![KEY, new], vec![new, KEY], vec![new]] {
        for h in all {
            h.set_keys(keys.clone()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for h in all {
        let s = h.stats();
        assert_eq!(
            s.dropped_total(),
            0,
            "a datagram failed to open: {:?}",
            s.dropped
        );
        assert_eq!(s.down, 0, "a member was declared down during the rotation");
        assert_eq!(alive(h), 3);
    }
    assert!(a.set_keys(vec![]).await.is_err());
    for h in all {
        h.leave_and_stop().await;
    }
}
