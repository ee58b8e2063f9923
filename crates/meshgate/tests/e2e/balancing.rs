//! Load balancing through the real binary: which echo upstream answered each
//! request, for every policy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::Gateway;
use common::client::{self, Reply};
use common::upstream::{self, Proto, Upstream};
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper::Response;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

type H1 = Client<HttpConnector, Full<Bytes>>;

/// One listener, one catch-all route to cluster `pool` with this `lb`.
/// `route_extra` goes into the route (e.g. a `hash_key`).
fn config(lb: &str, endpoints: &[(&Upstream, u32)], route_extra: &str) -> String {
    let endpoints: Vec<String> = endpoints
        .iter()
        .map(|(u, w)| format!(r#"{{ address = "{}", weight = {w} }}"#, u.addr))
        .collect();
    format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[routes]]
name = "all"
listener = "public"
cluster = "pool"
{route_extra}

[[clusters]]
name = "pool"
lb = "{lb}"
endpoints = [{}]
"#,
        endpoints.join(", ")
    )
}

/// The instance that answered (the echo upstream's name).
fn instance(r: &Reply) -> String {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["instance"]
        .as_str()
        .expect("an echo reply")
        .to_owned()
}

async fn get(c: &H1, addr: SocketAddr, headers: &[(&str, &str)]) -> String {
    let mut b = Request::get(format!("http://{addr}/lb"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    instance(&client::send(c, b.body(Full::new(Bytes::new())).unwrap()).await)
}

/// `n` sequential requests; the answering instance of each, in order.
async fn sequence(addr: SocketAddr, n: usize) -> Vec<String> {
    let c = client::h1();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(get(&c, addr, &[]).await);
    }
    out
}

/// `total` requests spread over `workers` concurrent clients; counts by instance.
async fn counts_concurrent(
    addr: SocketAddr,
    total: usize,
    workers: usize,
) -> BTreeMap<String, usize> {
    let mut tasks = Vec::new();
    for w in 0..workers {
        let n = total / workers + usize::from(w < total % workers);
        tasks.push(tokio::spawn(async move {
            let c = client::h1();
            let mut seen = Vec::with_capacity(n);
            for _ in 0..n {
                seen.push(get(&c, addr, &[]).await);
            }
            seen
        }));
    }
    let mut counts = BTreeMap::new();
    for t in tasks {
        for i in t.await.unwrap() {
            *counts.entry(i).or_insert(0) += 1;
        }
    }
    counts
}

fn count(seq: &[String], name: &str) -> usize {
    seq.iter().filter(|s| *s == name).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_alternates_exactly_and_ignores_weights() {
    let (a, b) = (upstream::echo("a").await, upstream::echo("b").await);
    let g = Gateway::start(&config("round_robin", &[(&a, 1), (&b, 3)], ""));
    let seq = sequence(g.addr("public"), 100).await;
    for (i, w) in seq.windows(2).enumerate() {
        assert_ne!(
            w[0],
            w[1],
            "requests {i} and {} went to the same endpoint: {seq:?}",
            i + 1
        );
    }
    assert_eq!((count(&seq, "a"), count(&seq, "b")), (50, 50));
    assert_eq!((a.hits(), b.hits()), (50, 50));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_round_robin_one_to_three_is_exact_and_interleaved() {
    let (a, b) = (upstream::echo("a").await, upstream::echo("b").await);
    let g = Gateway::start(&config("weighted_round_robin", &[(&a, 1), (&b, 3)], ""));
    let seq = sequence(g.addr("public"), 400).await;
    assert_eq!((count(&seq, "a"), count(&seq, "b")), (100, 300));
    assert_eq!((a.hits(), b.hits()), (100, 300));
    // Smooth WRR repeats with period 4: any 4 consecutive picks hold exactly one "a",
    // so the light endpoint is never skipped for long and "b" never gets 4 in a row.
    for (i, w) in seq.windows(4).enumerate() {
        assert_eq!(count(w, "a"), 1, "window at {i}: {w:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_one_to_three_splits_by_weight() {
    let (a, b) = (upstream::echo("a").await, upstream::echo("b").await);
    let g = Gateway::start(&config("random", &[(&a, 1), (&b, 3)], ""));
    let counts = counts_concurrent(g.addr("public"), 2000, 4).await;
    let (na, nb) = (
        counts.get("a").copied().unwrap_or(0),
        counts.get("b").copied().unwrap_or(0),
    );
    assert_eq!(na + nb, 2000);
    let share = na as f64 / 2000.0;
    eprintln!(
        "random 1:3 over 2000: a={na} b={nb} (share of a {:.1}%)",
        share * 100.0
    );
    // 25% expected; ±5 points is about five standard deviations.
    assert!(
        (0.20..=0.30).contains(&share),
        "share of the weight-1 endpoint: {na}/2000"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_request_sends_most_traffic_to_the_fast_endpoint() {
    // The slow endpoint is listed first, so "always the first" would fail too.
    let slow = upstream::start(
        Proto::H1,
        Arc::new(|_req| {
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Response::builder()
                    .header("content-type", "application/json")
                    .body(upstream::full(r#"{"instance":"slow"}"#))
                    .unwrap()
            })
        }),
    )
    .await;
    let fast = upstream::echo("fast").await;
    let g = Gateway::start(&config("least_request", &[(&slow, 1), (&fast, 1)], ""));
    let counts = counts_concurrent(g.addr("public"), 160, 8).await;
    let (ns, nf) = (
        counts.get("slow").copied().unwrap_or(0),
        counts.get("fast").copied().unwrap_or(0),
    );
    eprintln!("least_request with one slow endpoint: slow={ns} fast={nf}");
    assert_eq!(ns + nf, 160);
    assert!(
        nf >= 3 * ns,
        "the fast endpoint should get clearly more: slow={ns} fast={nf}"
    );
}

// === consistent hashing ===

/// Three echo upstreams `e0`..`e2`.
async fn three() -> Vec<Upstream> {
    vec![
        upstream::echo("e0").await,
        upstream::echo("e1").await,
        upstream::echo("e2").await,
    ]
}

fn endpoints(ups: &[Upstream]) -> Vec<(&Upstream, u32)> {
    ups.iter().map(|u| (u, 1)).collect()
}

/// Sends 5 requests per key (each key given as request headers), asserts
/// each key always reached the same instance, and returns that instance per key.
async fn sticky(addr: SocketAddr, keys: &[Vec<(String, String)>]) -> Vec<String> {
    let c = client::h1();
    let mut out = Vec::new();
    for headers in keys {
        let h: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let first = get(&c, addr, &h).await;
        for _ in 0..4 {
            assert_eq!(
                get(&c, addr, &h).await,
                first,
                "key {headers:?} moved between endpoints"
            );
        }
        out.push(first);
    }
    out
}

fn assert_spread(picks: &[String]) {
    let distinct: BTreeSet<&String> = picks.iter().collect();
    // 20 keys on 3 equal endpoints all on one: probability about 3^-19.
    assert!(
        distinct.len() >= 2,
        "20 keys should spread over the endpoints: {picks:?}"
    );
}

fn header_keys() -> Vec<Vec<(String, String)>> {
    (0..20)
        .map(|i| vec![("x-user".to_owned(), format!("user-{i}"))])
        .collect()
}

async fn header_hash_is_sticky_spread_and_agrees_across_processes(lb: &str) {
    let ups = three().await;
    let cfg = config(lb, &endpoints(&ups), r#"hash_key = { header = "x-user" }"#);
    let g = Gateway::start(&cfg);
    let keys = header_keys();
    let picks = sticky(g.addr("public"), &keys).await;
    eprintln!("{lb} by header: {picks:?}");
    assert_spread(&picks);
    let total: usize = ups.iter().map(Upstream::hits).sum();
    assert_eq!(total, 100);

    // A second meshgate process over the same endpoints agrees on every key:
    // the hash is not seeded per process.
    let g2 = Gateway::start(&cfg);
    let again = sticky(g2.addr("public"), &keys).await;
    assert_eq!(picks, again, "two processes disagree on where keys go");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_hash_on_a_header_is_sticky_and_spreads() {
    header_hash_is_sticky_spread_and_agrees_across_processes("ring_hash").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maglev_on_a_header_is_sticky_and_spreads() {
    header_hash_is_sticky_spread_and_agrees_across_processes("maglev").await;
}

async fn cookie_hash_is_sticky(lb: &str) {
    let ups = three().await;
    let g = Gateway::start(&config(
        lb,
        &endpoints(&ups),
        r#"hash_key = { cookie = "session" }"#,
    ));
    // The session cookie among others, in varying positions.
    let keys: Vec<Vec<(String, String)>> = (0..20)
        .map(|i| {
            let cookie = match i % 3 {
                0 => format!("session=s{i}"),
                1 => format!("theme=dark; session=s{i}"),
                _ => format!("a=1; session=s{i}; b=2"),
            };
            vec![("cookie".to_owned(), cookie)]
        })
        .collect();
    let picks = sticky(g.addr("public"), &keys).await;
    eprintln!("{lb} by cookie: {picks:?}");
    assert_spread(&picks);
    // Only the session cookie counts: other cookies around it change nothing.
    let c = client::h1();
    for (i, pick) in picks.iter().enumerate() {
        let alone = get(
            &c,
            g.addr("public"),
            &[("cookie", &format!("session=s{i}; other={}", i * 7))],
        )
        .await;
        assert_eq!(&alone, pick, "key s{i} with other cookies");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_hash_on_a_cookie_is_sticky() {
    cookie_hash_is_sticky("ring_hash").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maglev_on_a_cookie_is_sticky() {
    cookie_hash_is_sticky("maglev").await;
}

/// One GET on a new connection from `local` (a loopback address other than
/// 127.0.0.1 works on Linux: all of 127/8 is local).
async fn get_from(local: IpAddr, addr: SocketAddr) -> String {
    let connect = async move {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(local, 0))?;
        socket.connect(addr).await
    };
    let req = Request::get("/lb")
        .header("host", "lb.test")
        .body(Full::new(Bytes::new()))
        .unwrap();
    instance(&client::send_fresh(connect, req).await)
}

async fn source_ip_hash_is_sticky(lb: &str) {
    let ups = three().await;
    let g = Gateway::start(&config(
        lb,
        &endpoints(&ups),
        "hash_key = { source_ip = true }",
    ));
    let addr = g.addr("public");
    let mut picks = Vec::new();
    for i in 0..20u8 {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + i));
        let first = get_from(ip, addr).await;
        for _ in 0..4 {
            assert_eq!(
                get_from(ip, addr).await,
                first,
                "client {ip} moved between endpoints"
            );
        }
        picks.push(first);
    }
    eprintln!("{lb} by source ip: {picks:?}");
    assert_spread(&picks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_hash_on_the_source_ip_is_sticky() {
    source_ip_hash_is_sticky("ring_hash").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maglev_on_the_source_ip_is_sticky() {
    source_ip_hash_is_sticky("maglev").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hashing_route_without_its_key_still_spreads_by_weight() {
    // No x-user header: weighted random over the endpoints, not all on one.
    let ups = three().await;
    let g = Gateway::start(&config(
        "maglev",
        &endpoints(&ups),
        r#"hash_key = { header = "x-user" }"#,
    ));
    let counts = counts_concurrent(g.addr("public"), 300, 3).await;
    eprintln!("maglev without a key: {counts:?}");
    assert_eq!(counts.values().sum::<usize>(), 300);
    for name in ["e0", "e1", "e2"] {
        let n = counts.get(name).copied().unwrap_or(0);
        // 100 expected each; 50 is more than seven standard deviations away.
        assert!(
            n >= 50,
            "{name} got {n} of 300 keyless requests: {counts:?}"
        );
    }
}
