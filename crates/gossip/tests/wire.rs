//! The sealed wire between two real nodes: every kind of bad datagram is
//! dropped, counted by its reason, and changes nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is the failure report"
)]

use std::net::SocketAddr;
use std::time::Instant;

use meshgate_gossip::wire::{MAX_DATAGRAM, Sealer};
use meshgate_gossip::{DropReason, Node, Settings};

const KEY: [u8; 32] = [9; 32];

fn node(name: &str, port: u16, keys: Vec<[u8; 32]>, now: Instant) -> Node {
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    Node::new(Settings::new(name, addr, keys), u64::from(port), now).unwrap()
}

/// A's first datagram to B (its announce).
fn announce(now: Instant) -> (Node, Vec<u8>) {
    let mut a = node("a", 1, vec![KEY], now);
    a.join(&["127.0.0.1:2".parse().unwrap()], now);
    let (to, d) = a.poll_transmit().unwrap();
    assert_eq!(to.port(), 2);
    (a, d)
}

/// Feeds `datagram` to `b` and asserts it was dropped for `reason` and
/// changed nothing observable.
fn assert_dropped(b: &mut Node, datagram: &[u8], reason: DropReason, now: Instant) {
    let members = b.members();
    let catalog = b.catalog_version();
    let before = b.stats().dropped(reason);
    b.handle_datagram("127.0.0.1:1".parse().unwrap(), datagram, now);
    assert_eq!(
        b.stats().dropped(reason),
        before + 1,
        "not counted as {reason:?}"
    );
    assert_eq!(b.members(), members);
    assert_eq!(b.catalog_version(), catalog);
    assert!(
        b.poll_transmit().is_none(),
        "a dropped datagram was answered"
    );
    let event = b.poll_event();
    assert!(event.is_none(), "a dropped datagram raised {event:?}");
}

#[test]
fn a_good_datagram_is_answered() {
    let now = Instant::now();
    let (_a, d) = announce(now);
    let mut b = node("b", 2, vec![KEY], now);
    b.handle_datagram("127.0.0.1:1".parse().unwrap(), &d, now);
    assert_eq!(b.stats().dropped_total(), 0);
    assert!(b.poll_transmit().is_some(), "an announce gets a feed");
}

#[test]
fn forged_truncated_oversized_and_foreign_datagrams_change_nothing() {
    let now = Instant::now();
    let (_a, d) = announce(now);
    let mut b = node("b", 2, vec![KEY], now);
    let mut forged = d.clone();
    let mid = forged.len() / 2;
    forged[mid] ^= 1;
    assert_dropped(&mut b, &forged, DropReason::Unauthenticated, now);
    let mut header = d.clone();
    header[12] ^= 1; // the counter is authenticated too
    assert_dropped(&mut b, &header, DropReason::Unauthenticated, now);
    assert_dropped(&mut b, &d[..20], DropReason::Truncated, now);
    assert_dropped(&mut b, &[], DropReason::Truncated, now);
    assert_dropped(
        &mut b,
        &vec![1u8; MAX_DATAGRAM + 1],
        DropReason::Oversized,
        now,
    );
    let mut v2 = d.clone();
    v2[0] = 2;
    assert_dropped(&mut b, &v2, DropReason::UnknownVersion, now);
    let mut other = node("b", 2, vec![[3; 32]], now);
    assert_dropped(&mut other, &d, DropReason::Unauthenticated, now);
    // A well-sealed datagram with garbage inside is malformed.
    let mut sealer = Sealer::new(vec![KEY], 77);
    let junk = sealer.seal(&[1, 0xff, 0xff, 0xff]).unwrap();
    assert_dropped(&mut b, &junk, DropReason::Malformed, now);
    let kind = sealer.seal(&[42]).unwrap();
    assert_dropped(&mut b, &kind, DropReason::Malformed, now);
    // After all that, the genuine datagram still works.
    b.handle_datagram("127.0.0.1:1".parse().unwrap(), &d, now);
    assert!(b.poll_transmit().is_some());
}

#[test]
fn a_replayed_datagram_is_dropped() {
    let now = Instant::now();
    let (_a, d) = announce(now);
    let mut b = node("b", 2, vec![KEY], now);
    b.handle_datagram("127.0.0.1:1".parse().unwrap(), &d, now);
    while b.poll_transmit().is_some() {}
    while b.poll_event().is_some() {}
    assert_dropped(&mut b, &d, DropReason::Replayed, now);
}

#[test]
fn our_own_datagram_reflected_back_is_dropped() {
    let now = Instant::now();
    let (mut a, d) = announce(now);
    assert_dropped(&mut a, &d, DropReason::Reflected, now);
}

#[test]
fn any_configured_key_opens_and_the_first_seals() {
    let now = Instant::now();
    let new = [4u8; 32];
    let (mut a, d_old) = announce(now);
    let mut b = node("b", 2, vec![new, KEY], now);
    b.handle_datagram("127.0.0.1:1".parse().unwrap(), &d_old, now);
    assert_eq!(b.stats().dropped_total(), 0, "the second key opens");
    let (_, reply) = b.poll_transmit().unwrap();
    // A only knows the old key: B seals with the new one, so A cannot open.
    a.handle_datagram("127.0.0.1:2".parse().unwrap(), &reply, now);
    assert_eq!(a.stats().dropped(DropReason::Unauthenticated), 1);
    assert!(a.set_keys(vec![KEY, new]).is_ok());
    assert!(a.set_keys(vec![]).is_err());
}

/// Anti-entropy answers go to the UDP source, which nothing authenticates:
/// every datagram a member sent, replayed to another node with a spoofed
/// source address, gets no answer at that address (foca answers the
/// member named inside the sealed message; digests are answered only for
/// members and seeds).
#[test]
fn replayed_datagrams_with_a_spoofed_source_are_never_answered_there() {
    use std::time::Duration;

    use meshgate_catalog::ServiceName;
    use meshgate_gossip::LocalService;

    let service = |name: &str, port: u16| LocalService {
        service: ServiceName::try_new(name).unwrap(),
        id: format!("{name}-{port}"),
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
        tags: Vec::new(),
        meta: Default::default(),
        healthy: true,
    };
    let start = Instant::now();
    let mut a = node("a", 1, vec![KEY], start);
    let mut b = node("b", 2, vec![KEY], start);
    a.set_local_services(vec![service("users", 9001)], start)
        .unwrap();
    a.join(&["127.0.0.1:2".parse().unwrap()], start);
    // Ten simulated seconds of a and b talking (anti-entropy included),
    // keeping everything a sent.
    let mut sent_by_a = Vec::new();
    let mut now = start;
    while now < start + Duration::from_secs(10) {
        now += Duration::from_millis(10);
        a.handle_timeout(now);
        b.handle_timeout(now);
        while let Some((_, d)) = a.poll_transmit() {
            b.handle_datagram("127.0.0.1:1".parse().unwrap(), &d, now);
            sent_by_a.push(d);
        }
        while let Some((_, d)) = b.poll_transmit() {
            a.handle_datagram("127.0.0.1:2".parse().unwrap(), &d, now);
        }
    }
    assert!(b.catalog().instance_count() > 0, "a's catalog reached b");
    // c has a catalog of its own, so every digest of a's differs from it.
    let mut c = node("c", 3, vec![KEY], start);
    c.set_local_services(vec![service("orders", 9002)], start)
        .unwrap();
    let victim: SocketAddr = "10.9.9.9:7".parse().unwrap();
    for d in &sent_by_a {
        c.handle_datagram(victim, d, now);
        while let Some((to, _)) = c.poll_transmit() {
            assert_ne!(to, victim, "c answered a spoofed source");
        }
    }
}
