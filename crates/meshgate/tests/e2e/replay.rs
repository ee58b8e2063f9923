//! Retries that resend a request after it may have reached the upstream,
//! through the real binary: a body small enough is kept and replayed to
//! another endpoint, a larger one is not; and hedging on the per-try
//! timeout lets a slow first attempt win where plain retries time out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::killable::Killable;
use common::upstream::{self, Proto};
use common::{Gateway, app_config, endpoint};
use http::{Request, StatusCode};
use http_body_util::Full;

/// The failing endpoint stays in: these tests are about retries.
const NO_EJECTION: &str =
    "outlier_detection = { consecutive_gateway_errors = 0, consecutive_5xx = 0 }";

/// Sends `n` PUTs (or `method`s) with distinct `size`-byte bodies; returns
/// how many came back 200 with their own body, and the other statuses.
async fn send_bodies(gw: &Gateway, method: &str, n: usize, size: usize) -> (usize, Vec<u16>) {
    let client = common::client::h1();
    let mut echoed = 0;
    let mut others = Vec::new();
    for i in 0..n {
        let body: Vec<u8> = (0..size).map(|j| b'a' + ((i + j) % 26) as u8).collect();
        let req = Request::builder()
            .method(method)
            .uri(gw.url("public", "/upload"))
            .body(Full::new(Bytes::from(body.clone())))
            .unwrap();
        let reply = common::client::send(&client, req).await;
        if reply.status == StatusCode::OK {
            assert_eq!(
                &reply.body[..],
                &body[..],
                "request {i} echoed another body"
            );
            echoed += 1;
        } else {
            others.push(reply.status.as_u16());
        }
    }
    (echoed, others)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_body_is_kept_and_replayed_to_another_endpoint() {
    let failing = Killable::start("failing", StatusCode::SERVICE_UNAVAILABLE).await;
    let echo = upstream::body_echo(Proto::H1).await;
    let retry = r#"retry = { retry_on = ["5xx"], num_retries = 1, max_buffered_body = "4KiB" }"#;
    let gw = Gateway::start(&app_config(
        &[endpoint(failing.addr), endpoint(echo.addr)],
        retry,
        NO_EJECTION,
    ));
    let (echoed, others) = send_bodies(&gw, "PUT", 20, 2048).await;
    assert_eq!(
        echoed, 20,
        "every PUT succeeded with its own body: {others:?}"
    );
    assert!(
        failing.hits() >= 10,
        "the failing endpoint was tried: {}",
        failing.hits()
    );
    assert_eq!(echo.hits(), 20);

    // Not idempotent: a POST is sent once, body and all.
    let (_, others) = send_bodies(&gw, "POST", 20, 2048).await;
    assert!(
        others.iter().all(|s| *s == 503) && !others.is_empty(),
        "POSTs that reached the failing endpoint were not retried: {others:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_max_buffered_body_streams_once() {
    let failing = Killable::start("failing", StatusCode::SERVICE_UNAVAILABLE).await;
    let echo = upstream::body_echo(Proto::H1).await;
    let retry = r#"retry = { retry_on = ["5xx"], num_retries = 1, max_buffered_body = "1KiB" }"#;
    let gw = Gateway::start(&app_config(
        &[endpoint(failing.addr), endpoint(echo.addr)],
        retry,
        NO_EJECTION,
    ));
    let (echoed, others) = send_bodies(&gw, "PUT", 20, 2048).await;
    assert!(echoed > 0, "the echo endpoint's share succeeded");
    assert!(
        !others.is_empty() && others.iter().all(|s| *s == 503),
        "a 2 KiB body is not kept under a 1 KiB limit, so its 503 stands: {others:?}"
    );
    // Small bodies on the same route are still replayed.
    let (echoed, others) = send_bodies(&gw, "PUT", 20, 512).await;
    assert_eq!(echoed, 20, "{others:?}");
}

/// Two endpoints that each take `delay` to answer, counting requests.
async fn two_slow(delay: Duration) -> (upstream::Upstream, upstream::Upstream, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let mut ups = Vec::new();
    for _ in 0..2 {
        let seen = seen.clone();
        ups.push(
            upstream::start(
                Proto::H1,
                Arc::new(move |_req| {
                    let seen = seen.clone();
                    Box::pin(async move {
                        seen.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(delay).await;
                        http::Response::new(upstream::full("slow but sure"))
                    })
                }),
            )
            .await,
        );
    }
    let b = ups.pop().unwrap();
    let a = ups.pop().unwrap();
    (a, b, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hedging_lets_a_slow_first_attempt_win_where_retries_time_out() {
    let (a, b, seen) = two_slow(Duration::from_millis(300)).await;
    let endpoints = [endpoint(a.addr), endpoint(b.addr)];
    let policy = r#"retry_on = ["gateway-error"], num_retries = 1, per_try_timeout = "100ms""#;

    // Plain retries: each attempt is cut at 100 ms, so every request fails.
    let plain = Gateway::start(&app_config(
        &endpoints,
        &format!("retry = {{ {policy} }}"),
        "",
    ));
    for _ in 0..5 {
        let reply = common::client::get(plain.addr("public"), "/x", &[]).await;
        assert_eq!(reply.status, 504, "{}", reply.text());
    }
    drop(plain);

    // Hedged: at 100 ms a second attempt starts and the first keeps going.
    let hedged = Gateway::start(&app_config(
        &endpoints,
        &format!("retry = {{ {policy}, hedge_on_per_try_timeout = true }}"),
        "",
    ));
    let before = seen.load(Ordering::SeqCst);
    for i in 0..5 {
        let started = Instant::now();
        let reply = common::client::get(hedged.addr("public"), "/x", &[]).await;
        let took = started.elapsed();
        assert_eq!(reply.status, 200, "request {i}: {}", reply.text());
        assert_eq!(reply.text(), "slow but sure");
        // The first attempt's answer (300 ms), not the hedge's (400 ms),
        // nor a timeout; generous for a loaded machine.
        assert!(
            took < Duration::from_millis(380),
            "request {i} took {took:?}"
        );
    }
    assert_eq!(
        seen.load(Ordering::SeqCst) - before,
        10,
        "each request was hedged once: two attempts each"
    );
    let hedges = common::metrics::sample_of(
        &hedged,
        "meshgate_upstream_retries_total",
        &[("cluster", "app"), ("reason", "per_try_timeout")],
    )
    .await;
    assert_eq!(hedges, Some(5.0), "each hedge counts as a retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_cannot_be_replayed_is_not_cut_on_a_hedging_route() {
    let (a, b, _seen) = two_slow(Duration::from_millis(300)).await;
    let gw = Gateway::start(&app_config(
        &[endpoint(a.addr), endpoint(b.addr)],
        r#"retry = { retry_on = ["gateway-error"], num_retries = 1, per_try_timeout = "100ms", hedge_on_per_try_timeout = true }"#,
        "",
    ));
    // A POST may not be replayed, so it is not hedged; its one attempt
    // runs past the per-try timeout (hedging routes never cut attempts).
    let req = Request::post(gw.url("public", "/x"))
        .body(Full::new(Bytes::from_static(b"once")))
        .unwrap();
    let reply = common::client::send(&common::client::h1(), req).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}
