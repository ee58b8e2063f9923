//! A cluster's connection breakers through the real binary:
//! `max_connections` with `max_pending_requests` queueing and then
//! overflowing, a waiting request closing another endpoint's idle
//! connection to get a unit, and a timeout while waiting that is not held
//! against the endpoint. (`max_requests` is in `resilience.rs`.)

#![allow(clippy::unwrap_used)]

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use common::Gateway;
use common::metrics::sample_of;
use common::wait::eventually;
use http::Request;
use http_body_util::Full;

fn get(addr: SocketAddr, path: &str) -> Request<Full<Bytes>> {
    Request::get(format!("http://{addr}{path}"))
        .body(Full::new(Bytes::new()))
        .unwrap()
}

async fn metric(gw: &Gateway, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample_of(gw, name, labels).await.unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_queues_up_to_max_pending_then_overflows() {
    let (up, peak) = common::upstream::slow(Duration::from_millis(800)).await;
    let gw = Gateway::start(&common::simple_config(
        up.addr,
        "",
        "circuit_breakers = { max_connections = 2, max_pending_requests = 2 }",
    ));
    let addr = gw.addr("public");
    const CLIENTS: usize = 8;
    // Each client connects first (a direct response), then all send at once.
    let ready = Arc::new(tokio::sync::Barrier::new(CLIENTS));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CLIENTS {
        let ready = ready.clone();
        tasks.spawn(async move {
            let client = common::client::h1();
            assert_eq!(
                common::client::send(&client, get(addr, "/direct"))
                    .await
                    .status,
                200
            );
            ready.wait().await;
            let reply = common::client::send(&client, get(addr, "/work")).await;
            let overloaded = reply.headers.get("x-meshgate-overloaded").is_some();
            (reply.status.as_u16(), overloaded)
        });
    }
    let (mut ok, mut overflowed) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            (200, _) => ok += 1,
            (503, true) => overflowed += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    // Two on the two connections, two waiting for them, four turned away.
    assert_eq!((ok, overflowed), (4, 4));
    assert!(
        up.connections() <= 2,
        "{} upstream connections",
        up.connections()
    );
    assert!(peak.load(Ordering::SeqCst) <= 2);
    let overflow = |breaker| {
        let gw = &gw;
        async move {
            let labels = [("cluster", "up"), ("breaker", breaker)];
            metric(gw, "meshgate_circuit_breaker_overflow_total", &labels).await
        }
    };
    assert_eq!(overflow("pending").await, 4.0);
    // Everyone past the first two found the connections taken.
    assert_eq!(overflow("connections").await, 6.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_request_closes_another_endpoints_idle_connection() {
    let a = common::upstream::echo("a").await;
    let b = common::upstream::echo("b").await;
    let endpoints = [common::endpoint(a.addr), common::endpoint(b.addr)];
    let gw = Gateway::start(&common::app_config(
        &endpoints,
        // Without the fix the second request waits out the route timeout.
        "retry = { num_retries = 0, per_try_timeout = \"2s\" }",
        "lb = \"round_robin\"\ncircuit_breakers = { max_connections = 1 }",
    ));
    let client = common::client::h1();
    let addr = gw.addr("public");
    let first = common::client::send(&client, get(addr, "/one")).await;
    assert_eq!(first.status, 200);
    // The only unit now sits in an idle connection to the first endpoint;
    // round robin sends the next request to the other one.
    let second = common::client::send(&client, get(addr, "/two")).await;
    assert_eq!(second.status, 200, "{}", second.text());
    let served: Vec<String> = [&first, &second]
        .iter()
        .map(|r| r.json()["instance"].as_str().unwrap().to_owned())
        .collect();
    assert_ne!(served[0], served[1], "round robin used both endpoints");
    assert_eq!((a.hits(), b.hits()), (1, 1));
    let first_up = if served[0] == "a" { &a } else { &b };
    eventually("the idle connection was closed", || async {
        first_up.open() == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_while_waiting_for_a_connection_is_not_the_endpoints_fault() {
    let (up, _) = common::upstream::slow(Duration::from_millis(1500)).await;
    let config = format!(
        r#"
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[routes]]
listener = "public"
match = {{ path = "/slow" }}
cluster = "app"
timeout = "5s"

[[routes]]
listener = "public"
match = {{ path = "/impatient" }}
cluster = "app"
timeout = "300ms"

[[clusters]]
name = "app"
endpoints = [{{ address = "{}" }}]
circuit_breakers = {{ max_connections = 1 }}
outlier_detection = {{ consecutive_gateway_errors = 1 }}
"#,
        up.addr
    );
    let gw = Gateway::start(&config);
    let addr = gw.addr("public");
    // The slow request takes the cluster's only connection ...
    let slow = tokio::spawn(async move {
        common::client::send(&common::client::h1(), get(addr, "/slow")).await
    });
    eventually("the slow request reached the upstream", || async {
        up.hits() == 1
    })
    .await;
    // ... so this one waits for it, and gives up at its route timeout.
    let impatient = common::client::send(&common::client::h1(), get(addr, "/impatient")).await;
    assert_eq!(impatient.status, 504);
    assert!(
        impatient.text().contains("max_connections"),
        "{}",
        impatient.text()
    );
    assert_eq!(slow.await.unwrap().status, 200);
    // The wait was the cluster's congestion, not a gateway error of the
    // endpoint: with one gateway error enough to eject, nothing was.
    let labels = [("cluster", "app")];
    assert_eq!(
        metric(&gw, "meshgate_outlier_ejections_total", &labels).await,
        0.0
    );
    assert_eq!(up.hits(), 1, "the impatient request never reached it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_counting_the_requests_already_admitted() {
    let (up, peak) = common::upstream::slow(Duration::from_millis(1500)).await;
    let config = common::simple_config(up.addr, "", "circuit_breakers = { max_requests = 2 }");
    let gw = Gateway::start(&config);
    let addr = gw.addr("public");
    let slow: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(async move {
                common::client::send(&common::client::h1(), get(addr, "/work")).await
            })
        })
        .collect();
    eventually("both requests reached the upstream", || async {
        up.hits() == 2
    })
    .await;
    // A new generation with the same breakers ...
    std::fs::write(gw.config_path(), format!("{config}\n# reloaded\n")).unwrap();
    let reload = gw.admin_request(http::Method::POST, "/config/reload", "");
    let reloaded = common::client::send(&common::client::h1(), reload).await;
    assert_eq!(reloaded.status, 200, "{}", reloaded.text());
    // ... still counts the two admitted by the old one.
    let third = common::client::send(&common::client::h1(), get(addr, "/work")).await;
    assert_eq!(third.status, 503, "{}", third.text());
    for s in slow {
        assert_eq!(s.await.unwrap().status, 200);
    }
    assert_eq!(peak.load(Ordering::SeqCst), 2);
    // The old generation's units came back to the shared limit.
    let after = common::client::send(&common::client::h1(), get(addr, "/work")).await;
    assert_eq!(after.status, 200);
}
