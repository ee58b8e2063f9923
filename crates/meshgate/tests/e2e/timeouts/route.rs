//! A route's own timeouts through the real binary: `connect_timeout`
//! (overriding the cluster's, against an endpoint whose SYNs are dropped)
//! and `idle_timeout` (a response body that stalls is cut; one that trickles
//! is not), for HTTP/1.1 and h2 upstreams.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Body, Frame, Incoming};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;

use crate::common::Gateway;
use crate::common::limits::SLACK;
use crate::common::metrics::sample_of;
use crate::common::raw::{Raw, assert_error};
use crate::common::upstream::{self, Proto, Upstream};
use crate::common::wait::{BOUND, eventually};

/// The idle timeout under test.
const IDLE: Duration = Duration::from_millis(300);

/// A gateway with an admin API and one listener whose `routes` (each the
/// body of a `[[routes]]` table, listener and cluster filled in) all go to
/// the cluster "app" at `endpoint`.
fn config(endpoint: SocketAddr, protocol: &str, routes: &[&str], cluster_extra: &str) -> String {
    let routes: String = routes
        .iter()
        .map(|r| format!("\n[[routes]]\nlistener = \"public\"\ncluster = \"app\"\n{r}\n"))
        .collect();
    format!(
        r#"
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "public"
address = "127.0.0.1:0"
{routes}
[[clusters]]
name = "app"
protocol = "{protocol}"
endpoints = [{{ address = "{endpoint}" }}]
{cluster_extra}
"#
    )
}

// === connect_timeout ===

/// A listener whose accept queue is full and never drained: the kernel
/// drops further SYNs, so a connect to it neither succeeds nor fails until
/// the connecting side gives up. The returned streams fill the queue and
/// must be kept alive.
async fn black_hole() -> (TcpListener, Vec<TcpStream>) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    for _ in 0..64 {
        match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => queued.push(stream),
            Ok(Err(e)) => panic!("connect to the black hole failed: {e}"),
            // A connect that hangs: the queue is full.
            Err(_) => return (listener, queued),
        }
    }
    panic!("64 connections did not fill a backlog of 0");
}

/// GETs `path` on a new connection; the response and how long it took.
async fn timed_get(gw: &Gateway, path: &str) -> (crate::common::raw::RawResponse, Duration) {
    let mut raw = Raw::connect(gw.addr("public")).await;
    let start = Instant::now();
    raw.send(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .await;
    let resp = raw.response().await;
    (resp, start.elapsed())
}

async fn connect_timeout_is_the_routes_own(protocol: &str) {
    let (hole, _queued) = black_hole().await;
    // Retries off: each request makes exactly one connect attempt.
    let gw = Gateway::start(&config(
        hole.local_addr().unwrap(),
        protocol,
        &[
            r#"match = { path_prefix = "/own" }
timeout = "5s"
connect_timeout = "200ms"
retry = { num_retries = 0 }"#,
            r#"match = { path_prefix = "/" }
timeout = "5s"
retry = { num_retries = 0 }"#,
        ],
        r#"connect_timeout = "2s""#,
    ));

    let (resp, took) = timed_get(&gw, "/own").await;
    assert_error(&resp, 504, "connect_timeout");
    assert!(
        took >= Duration::from_millis(180),
        "gave up after {took:?}, before the route's 200ms"
    );
    assert!(
        took < Duration::from_millis(1500),
        "took {took:?}: the route's 200ms connect_timeout was not used"
    );

    // The same cluster, from a route without an override: the cluster's 2s.
    let (resp, took) = timed_get(&gw, "/other").await;
    assert_error(&resp, 504, "connect_timeout");
    assert!(
        took >= Duration::from_millis(1900),
        "gave up after {took:?}, before the cluster's 2s"
    );
    assert!(took < Duration::from_secs(2) + SLACK, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routes_connect_timeout_overrides_the_clusters_http1() {
    connect_timeout_is_the_routes_own("http1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routes_connect_timeout_overrides_the_clusters_h2() {
    connect_timeout_is_the_routes_own("h2").await;
}

// === idle_timeout ===

/// A response body fed by a channel: a frame per message, ending when the
/// sender is dropped.
struct Fed(mpsc::Receiver<Bytes>);

impl Body for Fed {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|m| m.map(|b| Ok(Frame::data(b))))
    }
}

/// What the upstream saw of a stalled response.
struct Stalls {
    /// Sends the moment the gateway gave up on a stalled body (the
    /// upstream's response was dropped: connection closed or stream reset).
    given_up: mpsc::UnboundedReceiver<Instant>,
}

/// An upstream whose `/stall*` answers send headers and `part1` and then
/// nothing (for 30 s; `/stall-sized` declares a length of 100), and whose
/// `/trickle` answers send `tick` every 100 ms for 1 s, then end.
async fn stalling_upstream(proto: Proto) -> (Upstream, Stalls) {
    let (gave_up, given_up) = mpsc::unbounded_channel();
    let up = upstream::start(
        proto,
        Arc::new(move |req: Request<Incoming>| {
            let gave_up = gave_up.clone();
            Box::pin(async move {
                let (tx, rx) = mpsc::channel(16);
                let stall = req.uri().path().starts_with("/stall");
                let sized = req.uri().path() == "/stall-sized";
                tokio::spawn(async move {
                    if stall {
                        let _ = tx.send(Bytes::from_static(b"part1")).await;
                        // The receiver is dropped when the gateway gives up.
                        if tokio::time::timeout(Duration::from_secs(30), tx.closed())
                            .await
                            .is_ok()
                        {
                            let _ = gave_up.send(Instant::now());
                        }
                        return;
                    }
                    for _ in 0..10 {
                        if tx.send(Bytes::from_static(b"tick")).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                });
                let mut resp = http::Response::new(Fed(rx).boxed());
                if sized {
                    resp.headers_mut()
                        .insert("content-length", http::HeaderValue::from_static("100"));
                }
                resp
            })
        }),
    )
    .await;
    (up, Stalls { given_up })
}

fn idle_config(up: &Upstream, protocol: &str) -> String {
    config(
        up.addr,
        protocol,
        &[
            &format!(
                "match = {{ path_prefix = \"/\" }}\ntimeout = \"5s\"\nidle_timeout = \"{}ms\"",
                IDLE.as_millis()
            ),
            // The same upstream without an idle timeout, for comparison.
            r#"match = { path_prefix = "/stall-forever" }
timeout = "5s""#,
        ],
        "",
    )
}

async fn idle_cuts(gw: &Gateway) -> f64 {
    sample_of(
        gw,
        "meshgate_upstream_idle_timeouts_total",
        &[("cluster", "app")],
    )
    .await
    .unwrap_or_else(|| panic!("no meshgate_upstream_idle_timeouts_total"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_response_body_is_cut_at_the_idle_timeout_http1() {
    let (up, mut stalls) = stalling_upstream(Proto::H1).await;
    let gw = Gateway::start(&idle_config(&up, "http1"));

    // Without an idle timeout the stalled body stays open (the route's
    // timeout ended with the headers).
    let mut forever = Raw::connect(gw.addr("public")).await;
    forever
        .send(b"GET /stall-forever HTTP/1.1\r\nhost: x\r\n\r\n")
        .await;

    let mut raw = Raw::connect(gw.addr("public")).await;
    let sent = Instant::now();
    raw.send(b"GET /stall HTTP/1.1\r\nhost: x\r\n\r\n").await;
    let (bytes, end, at) = raw.read_to_close(IDLE + SLACK).await;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    assert!(end.is_some(), "a stalled body was not cut: {text:?}");
    assert!(
        text.starts_with("HTTP/1.1 200") && text.contains("part1"),
        "the head and the first part come through: {text:?}"
    );
    assert!(
        text.to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
            && !text.ends_with("0\r\n\r\n"),
        "the chunked body must end unterminated: {text:?}"
    );
    let took = at - sent;
    assert!(took >= IDLE.mul_f32(0.9), "cut after only {took:?}");
    assert!(took < IDLE + SLACK, "cut after {took:?}");
    // The upstream connection is given up at once, not pooled.
    let gave_up = tokio::time::timeout(BOUND, stalls.given_up.recv())
        .await
        .expect("the gateway kept the stalled upstream response")
        .unwrap();
    assert!(gave_up - sent < IDLE + SLACK);
    eventually("the upstream connection closes", || async {
        up.open() == 1 // only /stall-forever's
    })
    .await;
    assert_eq!(idle_cuts(&gw).await, 1.0);

    let (bytes, end, _) = forever.read_to_close(Duration::from_millis(200)).await;
    assert_eq!(
        end,
        None,
        "a route without idle_timeout cut its body: {:?}",
        String::from_utf8_lossy(&bytes)
    );
    assert!(String::from_utf8_lossy(&bytes).contains("part1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_of_known_length_is_cut_short_http1() {
    let (up, _stalls) = stalling_upstream(Proto::H1).await;
    let gw = Gateway::start(&idle_config(&up, "http1"));
    let mut raw = Raw::connect(gw.addr("public")).await;
    let sent = Instant::now();
    raw.send(b"GET /stall-sized HTTP/1.1\r\nhost: x\r\n\r\n")
        .await;
    let (bytes, end, at) = raw.read_to_close(IDLE + SLACK).await;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    assert!(end.is_some(), "a stalled body was not cut: {text:?}");
    assert!(
        text.to_ascii_lowercase().contains("content-length: 100")
            && text.ends_with("\r\n\r\npart1"),
        "the head and 5 of the 100 bytes, then the close: {text:?}"
    );
    let took = at - sent;
    assert!(
        took >= IDLE.mul_f32(0.9) && took < IDLE + SLACK,
        "cut after {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_response_body_is_not_cut_http1() {
    let (up, _stalls) = stalling_upstream(Proto::H1).await;
    let gw = Gateway::start(&idle_config(&up, "http1"));
    let mut raw = Raw::connect(gw.addr("public")).await;
    for _ in 0..2 {
        let start = Instant::now();
        raw.send(b"GET /trickle HTTP/1.1\r\nhost: x\r\n\r\n").await;
        let resp = raw.response().await;
        assert_eq!(resp.status, 200);
        assert_eq!(resp.text(), "tick".repeat(10));
        assert!(start.elapsed() >= Duration::from_millis(900));
    }
    assert_eq!(idle_cuts(&gw).await, 0.0);
}

/// GETs `path` over h2c: the status, the body's bytes or error, and when
/// the body ended.
async fn h2_get(addr: SocketAddr, path: &str) -> (u16, Result<Bytes, hyper::Error>, Instant) {
    let (mut sender, _conn) = super::h2_connect(addr).await;
    let req = Request::get(format!("http://{addr}{path}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let fut = async {
        let resp = sender.send_request(req).await.expect("h2 request failed");
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.map(|b| b.to_bytes());
        (status, body, Instant::now())
    };
    tokio::time::timeout(BOUND, fut)
        .await
        .expect("h2 response did not end in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_h2_response_is_reset_at_the_idle_timeout_and_a_trickle_is_not() {
    let (up, mut stalls) = stalling_upstream(Proto::H2).await;
    let gw = Gateway::start(&idle_config(&up, "h2"));
    let addr = gw.addr("public");

    let sent = Instant::now();
    let (status, body, at) = h2_get(addr, "/stall").await;
    assert_eq!(status, 200);
    assert!(body.is_err(), "a stalled h2 body was not reset: {body:?}");
    let took = at - sent;
    assert!(took >= IDLE.mul_f32(0.9), "reset after only {took:?}");
    assert!(took < IDLE + SLACK, "reset after {took:?}");
    // The upstream stream is reset (its response dropped).
    tokio::time::timeout(BOUND, stalls.given_up.recv())
        .await
        .expect("the gateway kept the stalled upstream stream")
        .unwrap();
    assert_eq!(idle_cuts(&gw).await, 1.0);

    let (status, body, _) = h2_get(addr, "/trickle").await;
    assert_eq!(status, 200);
    assert_eq!(body.expect("a trickle must complete"), "tick".repeat(10));
    assert_eq!(idle_cuts(&gw).await, 1.0);
}
