//! `protocol = "udp"` listeners through the real binary: many clients at
//! once each getting every reply, sessions expiring after `idle_timeout`
//! (a client's next datagram comes from a new upstream port), the
//! `max_sessions` and `max_datagram_size` limits, spreading sessions over
//! endpoints, and an endpoint that refuses (ICMP port unreachable).
//! Upstreams are plain tokio UDP sockets on 127.0.0.1:0.
//!
//! UDP may drop datagrams, so every wait for a reply is bounded and
//! retried a few times; on loopback none should be needed, and the tests
//! print how many were.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::Gateway;
use common::metrics::scrape;
use common::wait::{BOUND, eventually};
use tokio::net::UdpSocket;

/// How long one try waits for its reply.
const TRY: Duration = Duration::from_millis(500);
/// How many times a datagram is sent before the test gives up on it.
const TRIES: usize = 5;
/// How long a datagram that must be dropped is given to come back anyway.
const SILENCE: Duration = Duration::from_millis(300);

/// A gateway with one udp listener "dns" forwarding to `endpoints`, with
/// `listener_extra` lines in the listener table.
fn udp_config(endpoints: &[SocketAddr], listener_extra: &str, cluster_extra: &str) -> String {
    let list: Vec<String> = endpoints
        .iter()
        .map(|a| format!("{{ address = \"{a}\" }}"))
        .collect();
    format!(
        r#"
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "dns"
address = "127.0.0.1:0"
protocol = "udp"
cluster = "resolvers"
{listener_extra}

[[clusters]]
name = "resolvers"
lb = "round_robin"
endpoints = [{}]
{cluster_extra}
"#,
        list.join(", ")
    )
}

/// An upstream that answers each datagram with `answer(payload, source)`.
async fn udp_server(answer: impl Fn(&[u8], SocketAddr) -> Vec<u8> + Send + 'static) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let reply = answer(&buf[..n], from);
            // A reply the kernel refuses is a lost datagram, which the
            // client's retry covers.
            let _ = socket.send_to(&reply, from).await;
        }
    });
    addr
}

/// An upstream echoing each datagram as `"<tag> <source port> <payload>"`:
/// the client learns which endpoint answered and which session socket
/// (source port) the gateway used.
async fn tagged_echo(tag: &'static str) -> SocketAddr {
    udp_server(move |payload, from| {
        let mut reply = format!("{tag} {} ", from.port()).into_bytes();
        reply.extend_from_slice(payload);
        reply
    })
    .await
}

/// A tagged reply, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tagged {
    tag: String,
    port: u16,
    payload: Vec<u8>,
}

fn untag(reply: &[u8]) -> Option<Tagged> {
    let text = std::str::from_utf8(reply).ok()?;
    let mut parts = text.splitn(3, ' ');
    Some(Tagged {
        tag: parts.next()?.to_owned(),
        port: parts.next()?.parse().ok()?,
        payload: parts.next()?.as_bytes().to_vec(),
    })
}

/// A client socket connected to the gateway's listener.
async fn client(gw: &Gateway) -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.connect(gw.addr("dns")).await.unwrap();
    s
}

/// Sends `msg` until a reply `accept` takes arrives (replies it does not
/// take, late answers to earlier tries, are skipped); bounded by
/// [`TRIES`] tries of [`TRY`]. Returns the reply and the retries it took.
async fn ask_with<T>(s: &UdpSocket, msg: &[u8], accept: impl Fn(&[u8]) -> Option<T>) -> (T, usize) {
    let mut buf = vec![0u8; 65_536];
    for attempt in 0..TRIES {
        s.send(msg).await.unwrap();
        let deadline = tokio::time::Instant::now() + TRY;
        while let Ok(received) = tokio::time::timeout_at(deadline, s.recv(&mut buf)).await {
            // ECONNREFUSED from an earlier try is as good as a loss.
            let Ok(n) = received else { continue };
            if let Some(answer) = accept(&buf[..n]) {
                return (answer, attempt);
            }
        }
    }
    panic!(
        "no reply to {:?} in {TRIES} tries",
        String::from_utf8_lossy(&msg[..msg.len().min(64)])
    );
}

/// [`ask_with`] for a tagged echo of `msg`.
async fn ask(s: &UdpSocket, msg: &[u8]) -> (Tagged, usize) {
    ask_with(s, msg, |reply| untag(reply).filter(|t| t.payload == msg)).await
}

/// Asserts that nothing comes back within [`SILENCE`].
async fn expect_silence(s: &UdpSocket) {
    let mut buf = vec![0u8; 65_536];
    let got = tokio::time::timeout(SILENCE, s.recv(&mut buf)).await;
    assert!(
        !matches!(got, Ok(Ok(_))),
        "a datagram that should have been dropped got an answer"
    );
}

/// A metric of the "dns" listener, with extra labels.
async fn metric(gw: &Gateway, name: &str, extra: &[(&str, &str)]) -> f64 {
    let mut labels = vec![("listener", "dns")];
    labels.extend_from_slice(extra);
    scrape(gw).await.1.get(name, &labels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_at_once_each_get_every_reply() {
    const CLIENTS: usize = 50;
    const DATAGRAMS: usize = 20;
    let up = tagged_echo("up").await;
    let gw = Gateway::start(&udp_config(&[up], "", ""));
    let gw = Arc::new(gw);
    let retries = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let s = client(&gw).await;
        let retries = retries.clone();
        clients.push(tokio::spawn(async move {
            let mut ports = BTreeSet::new();
            for i in 0..DATAGRAMS {
                // Distinct per client and datagram, of varying length.
                let msg = format!("client {c} datagram {i} {}", "x".repeat((c * 7 + i) % 300));
                let (reply, retried) = ask(&s, msg.as_bytes()).await;
                assert_eq!(reply.tag, "up");
                assert_eq!(reply.payload, msg.as_bytes());
                ports.insert(reply.port);
                retries.fetch_add(retried, Ordering::Relaxed);
            }
            assert_eq!(
                ports.len(),
                1,
                "one session (upstream port) per client: {ports:?}"
            );
            ports.into_iter().next().unwrap()
        }));
    }
    let mut ports = BTreeSet::new();
    for c in clients {
        ports.insert(tokio::time::timeout(BOUND * 3, c).await.unwrap().unwrap());
    }
    let retries = retries.load(Ordering::Relaxed);
    eprintln!("{} datagrams, {retries} retried", CLIENTS * DATAGRAMS);
    assert_eq!(
        ports.len(),
        CLIENTS,
        "each client has its own session socket"
    );

    let (_, m) = scrape(&gw).await;
    let dns = |extra: &[(&'static str, &'static str)]| {
        let mut labels = vec![("listener", "dns")];
        labels.extend_from_slice(extra);
        labels
    };
    assert_eq!(
        m.get("meshgate_udp_sessions_total", &dns(&[])),
        CLIENTS as f64
    );
    assert_eq!(
        m.get("meshgate_udp_sessions_active", &dns(&[])),
        CLIENTS as f64
    );
    let sent = (CLIENTS * DATAGRAMS) as f64;
    let to_up = m.get(
        "meshgate_udp_datagrams_total",
        &dns(&[("direction", "to_upstream")]),
    );
    let to_client = m.get(
        "meshgate_udp_datagrams_total",
        &dns(&[("direction", "to_client")]),
    );
    assert!(to_up >= sent && to_up <= sent + retries as f64, "{to_up}");
    assert!(to_client >= sent, "{to_client}");
    let bytes_up = m.get(
        "meshgate_udp_bytes_total",
        &dns(&[("direction", "to_upstream")]),
    );
    let bytes_back = m.get(
        "meshgate_udp_bytes_total",
        &dns(&[("direction", "to_client")]),
    );
    assert!(
        bytes_back > bytes_up,
        "replies carry a tag: {bytes_up} < {bytes_back}"
    );
    for reason in ["too_large", "max_sessions", "no_upstream", "send_error"] {
        assert_eq!(
            m.get("meshgate_udp_dropped_total", &dns(&[("reason", reason)])),
            0.0,
            "{reason}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_session_expires_and_the_client_gets_a_new_one() {
    let up = tagged_echo("up").await;
    let gw = Gateway::start(&udp_config(&[up], "idle_timeout = \"300ms\"", ""));
    let s = client(&gw).await;
    let (first, _) = ask(&s, b"hello").await;
    // Traffic keeps the session (and its upstream port) past the timeout.
    for i in 0..6 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (reply, _) = ask(&s, format!("tick {i}").as_bytes()).await;
        assert_eq!(reply.port, first.port, "tick {i} came from another session");
    }
    assert_eq!(metric(&gw, "meshgate_udp_sessions_active", &[]).await, 1.0);

    // Silence ends it.
    let quiet = Instant::now();
    eventually("the session to expire", || async {
        metric(&gw, "meshgate_udp_sessions_active", &[]).await == 0.0
    })
    .await;
    let waited = quiet.elapsed();
    assert!(
        waited >= Duration::from_millis(250),
        "expired after {waited:?} of silence, expected about 300 ms"
    );

    // The same client starts over with a new session and upstream socket.
    let (again, _) = ask(&s, b"hello again").await;
    assert_ne!(
        again.port, first.port,
        "a new session has a new upstream port"
    );
    assert_eq!(metric(&gw, "meshgate_udp_sessions_total", &[]).await, 2.0);
    assert_eq!(metric(&gw, "meshgate_udp_sessions_active", &[]).await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_client_beyond_max_sessions_is_dropped_and_counted() {
    let up = tagged_echo("up").await;
    let gw = Gateway::start(&udp_config(&[up], "max_sessions = 2", ""));
    let (a, b, c) = (client(&gw).await, client(&gw).await, client(&gw).await);
    ask(&a, b"from a").await;
    ask(&b, b"from b").await;

    c.send(b"from c").await.unwrap();
    expect_silence(&c).await;
    assert_eq!(
        metric(
            &gw,
            "meshgate_udp_dropped_total",
            &[("reason", "max_sessions")]
        )
        .await,
        1.0
    );
    // The two sessions it has go on being served.
    ask(&a, b"a again").await;
    ask(&b, b"b again").await;
    assert_eq!(metric(&gw, "meshgate_udp_sessions_total", &[]).await, 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagrams_over_max_datagram_size_are_dropped_either_way() {
    // A plain echo, except that "grow" is answered with 1500 bytes.
    let up = udp_server(|payload, _| {
        if payload == b"grow" {
            vec![b'g'; 1500]
        } else {
            payload.to_vec()
        }
    })
    .await;
    let gw = Gateway::start(&udp_config(&[up], "max_datagram_size = \"1000B\"", ""));
    let s = client(&gw).await;
    let fits = vec![b'a'; 1000];
    ask_with(&s, &fits, |r| (r == fits.as_slice()).then_some(())).await;

    s.send(&[b'b'; 1001]).await.unwrap();
    expect_silence(&s).await;
    assert_eq!(
        metric(
            &gw,
            "meshgate_udp_dropped_total",
            &[("reason", "too_large")]
        )
        .await,
        1.0
    );
    // The upstream's answer over the limit is dropped too.
    s.send(b"grow").await.unwrap();
    expect_silence(&s).await;
    assert_eq!(
        metric(
            &gw,
            "meshgate_udp_dropped_total",
            &[("reason", "too_large")]
        )
        .await,
        2.0
    );
    // And the session still works.
    let small = b"small".to_vec();
    ask_with(&s, &small, |r| (r == small.as_slice()).then_some(())).await;
    let to_up = metric(
        &gw,
        "meshgate_udp_datagrams_total",
        &[("direction", "to_upstream")],
    )
    .await;
    assert!(to_up >= 3.0, "1000 bytes, grow, small: {to_up}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_spread_over_both_endpoints_and_each_sticks_to_one() {
    let (one, two) = (tagged_echo("one").await, tagged_echo("two").await);
    let gw = Gateway::start(&udp_config(&[one, two], "", ""));
    let mut per_endpoint: BTreeMap<String, usize> = BTreeMap::new();
    for c in 0..10 {
        let s = client(&gw).await;
        let mut tags = BTreeSet::new();
        for i in 0..3 {
            let (reply, _) = ask(&s, format!("client {c} datagram {i}").as_bytes()).await;
            tags.insert(reply.tag);
        }
        assert_eq!(tags.len(), 1, "client {c}'s session moved: {tags:?}");
        *per_endpoint.entry(tags.pop_first().unwrap()).or_default() += 1;
    }
    // Round robin over sessions: five each.
    assert_eq!(per_endpoint.get("one"), Some(&5), "{per_endpoint:?}");
    assert_eq!(per_endpoint.get("two"), Some(&5), "{per_endpoint:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_refuses_ends_its_sessions_and_is_ejected() {
    // A port with nothing bound: the kernel answers ICMP port unreachable.
    let dead = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    let live = tagged_echo("live").await;
    let gw = Gateway::start(&udp_config(
        &[dead, live],
        "",
        "outlier_detection = { consecutive_gateway_errors = 3, base_ejection_time = \"30s\" }",
    ));
    // Every client is answered in the end: a refused session ends, and the
    // client's next try opens one with the next endpoint.
    for c in 0..10 {
        let s = client(&gw).await;
        let (reply, _) = ask(&s, format!("client {c}").as_bytes()).await;
        assert_eq!(reply.tag, "live");
    }
    let (_, m) = scrape(&gw).await;
    let ejected = m.get(
        "meshgate_endpoint_ejected",
        &[("cluster", "resolvers"), ("endpoint", &dead.to_string())],
    );
    assert_eq!(ejected, 1.0, "three refusals eject the endpoint");
    // Sessions to the dead endpoint ended on their own.
    let sessions = m.get("meshgate_udp_sessions_total", &[("listener", "dns")]);
    let active = m.get("meshgate_udp_sessions_active", &[("listener", "dns")]);
    assert_eq!(active, 10.0, "one live session per client");
    assert!(sessions > active, "{sessions} sessions, {active} active");
}

/// Writes `config` over the gateway's file and reloads it through the
/// admin API; the reload must be applied.
async fn reload(gw: &Gateway, config: &str) {
    std::fs::write(gw.config_path(), config).unwrap();
    let req = gw.admin_request(http::Method::POST, "/config/reload", "");
    let reply = common::client::send(&common::client::h1(), req).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

/// Where the listener "dns" is bound now, from the admin API's `/stats`.
async fn bound(gw: &Gateway) -> SocketAddr {
    let stats = common::client::get(gw.addr("admin"), "/stats", &[])
        .await
        .json();
    let listeners = stats["config"]["listeners"].as_array().unwrap();
    let dns = listeners.iter().find(|l| l["name"] == "dns").unwrap();
    dns["address"].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_sessions_applies_limits_and_swaps_the_socket_on_a_protocol_change() {
    let up = tagged_echo("up").await;
    let gw = Gateway::start(&udp_config(&[up], "", ""));
    let s = client(&gw).await;
    let (first, _) = ask(&s, b"before").await;

    // New limits, same socket and session.
    reload(&gw, &udp_config(&[up], "max_datagram_size = \"100B\"", "")).await;
    assert_eq!(bound(&gw).await, gw.addr("dns"));
    let (kept, _) = ask(&s, b"after").await;
    assert_eq!(kept.port, first.port, "the session survived the reload");
    s.send(&[b'x'; 200]).await.unwrap();
    expect_silence(&s).await;
    assert_eq!(
        metric(
            &gw,
            "meshgate_udp_dropped_total",
            &[("reason", "too_large")]
        )
        .await,
        1.0,
        "the new max_datagram_size applies"
    );

    // udp -> http: a TCP socket is bound, the UDP one closes.
    let http = udp_config(&[up], "", "").replace(
        "protocol = \"udp\"\ncluster = \"resolvers\"",
        "protocol = \"http\"",
    );
    reload(&gw, &http).await;
    let tcp = bound(&gw).await;
    let reply = common::client::get(tcp, "/anything", &[]).await;
    assert_eq!(reply.status, 404, "an http listener with no route");
    s.send(b"anyone?").await.unwrap();
    expect_silence(&s).await;
    // No UDP listener holds sessions any more: once the old generation is
    // gone, its sessions gauge leaves /metrics with it.
    eventually("the udp sessions gauge to leave", || async {
        let labels = [("listener", "dns")];
        common::metrics::sample_of(&gw, "meshgate_udp_sessions_active", &labels)
            .await
            .is_none()
    })
    .await;

    // And back: a new UDP socket serves.
    reload(&gw, &udp_config(&[up], "", "")).await;
    let udp = bound(&gw).await;
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.connect(udp).await.unwrap();
    let (reply, _) = ask(&s, b"back").await;
    assert_eq!(reply.tag, "up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_upgrade_hands_the_udp_socket_over() {
    let up = tagged_echo("up").await;
    let config = udp_config(&[up], "", "");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meshgate.sock");
    let path = path.to_str().unwrap();
    let mut old = Gateway::start_with(&config, &["--upgrade-socket", path]);
    let s = client(&old).await;
    ask(&s, b"to the old process").await;

    let next = Gateway::start_with(&config, &["--upgrade-socket", path, "--takeover"]);
    assert_eq!(next.listeners, old.listeners, "the same sockets serve");
    assert!(
        next.logs()
            .contains(&format!("took over 2 listeners from PID {}", old.pid())),
        "{}",
        next.logs()
    );
    let status = tokio::task::spawn_blocking(move || {
        let status = old.wait_exit(Duration::from_secs(20));
        (status, old)
    })
    .await
    .unwrap();
    let (status, old) = status;
    assert!(
        status.expect("the old process exits").success(),
        "{}",
        old.logs()
    );

    // The same client, on the same address, is served by the successor.
    let (reply, _) = ask(&s, b"to the successor").await;
    assert_eq!(reply.payload, b"to the successor");
    assert_eq!(
        metric(&next, "meshgate_udp_sessions_active", &[]).await,
        1.0
    );
}
