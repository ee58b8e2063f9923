//! Graceful shutdown of the real process: on SIGTERM or SIGINT meshgate
//! stops accepting, reports not-ready, lets in-flight requests finish within
//! `runtime.drain_timeout`, and exits 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::net::SocketAddr;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Gateway;
use common::upstream::{self, Proto, Upstream};
use common::wait::{BOUND, eventually};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

const SLACK: Duration = Duration::from_secs(3);
const BODY_LEN: usize = 256 * 1024;

// === helpers ===

fn body_bytes() -> Bytes {
    (0..BODY_LEN)
        .map(|i| (i % 253) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// An upstream that reports each request it receives and answers only once
/// the test opens the gate (`None` gate: never answers).
async fn gated_upstream(
    gate: Option<watch::Receiver<bool>>,
) -> (Upstream, mpsc::UnboundedReceiver<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let up = upstream::start(
        Proto::H1,
        Arc::new(move |_req: Request<Incoming>| {
            let tx = tx.clone();
            let gate = gate.clone();
            Box::pin(async move {
                let _ = tx.send(());
                match gate {
                    Some(mut gate) => {
                        let _ = gate.wait_for(|open| *open).await;
                    }
                    None => std::future::pending::<()>().await,
                }
                http::Response::new(upstream::full(body_bytes()))
            })
        }),
    )
    .await;
    (up, rx)
}

fn config(up: &Upstream, drain: &str, limits: &str) -> String {
    format!(
        r#"
[runtime]
drain_timeout = "{drain}"

[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "public"
address = "127.0.0.1:0"
limits = {{ {limits} }}

[[routes]]
listener = "public"
match = {{ path = "/healthz" }}
direct_response = {{ status = 200, body = "ok" }}

[[routes]]
listener = "public"
cluster = "up"
timeout = "60s"

[[clusters]]
name = "up"
endpoints = [{{ address = "{}" }}]
"#,
        up.addr
    )
}

/// Starts a GET to `/slow` in the background (HTTP/1.1, or h2c with
/// `http2`), returning (status, body) or the error.
fn spawn_request(
    gw: &Gateway,
    http2: bool,
) -> tokio::task::JoinHandle<Result<(u16, Bytes), String>> {
    let url = gw.url("public", "/slow");
    tokio::spawn(async move {
        let client = if http2 {
            common::client::h2()
        } else {
            common::client::h1()
        };
        let req = Request::get(url).body(Full::new(Bytes::new())).unwrap();
        let resp = client.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    })
}

async fn wait_received(rx: &mut mpsc::UnboundedReceiver<()>) {
    tokio::time::timeout(BOUND, rx.recv())
        .await
        .expect("upstream never got the request")
        .unwrap();
}

async fn refused(addr: SocketAddr) -> bool {
    match tokio::time::timeout(BOUND, TcpStream::connect(addr))
        .await
        .expect("connect hung")
    {
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
        Ok(_) => false,
    }
}

/// GET /ready on the admin API; None if the admin API did not answer.
async fn ready_status(admin: SocketAddr) -> Option<u16> {
    let client = common::client::h1();
    let req = Request::get(format!("http://{admin}/ready"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = tokio::time::timeout(BOUND, client.request(req))
        .await
        .ok()?
        .ok()?;
    Some(resp.status().as_u16())
}

fn wait_exit(gw: &mut Gateway, within: Duration) -> Option<ExitStatus> {
    tokio::task::block_in_place(|| gw.wait_exit(within))
}

fn assert_clean_exit(gw: &Gateway, status: Option<ExitStatus>) {
    let status =
        status.unwrap_or_else(|| panic!("meshgate did not exit in time; log:\n{}", gw.logs()));
    assert_eq!(
        status.code(),
        Some(0),
        "meshgate exit status {status:?}; log:\n{}",
        gw.logs()
    );
}

// === tests ===

async fn in_flight_request_completes(signal: i32, http2: bool) {
    let (open, gate) = watch::channel(false);
    let (up, mut received) = gated_upstream(Some(gate)).await;
    let mut gw = Gateway::start(&config(&up, "10s", ""));
    let (public, admin) = (gw.addr("public"), gw.addr("admin"));
    assert_eq!(ready_status(admin).await, Some(200));

    let request = spawn_request(&gw, http2);
    wait_received(&mut received).await;
    gw.signal(signal);

    // While the request is held open: not ready, and no new connections.
    eventually("/ready turns 503 during the drain", || async {
        ready_status(admin).await == Some(503)
    })
    .await;
    eventually("new connections are refused", || refused(public)).await;
    assert!(
        !request.is_finished(),
        "the in-flight request was cut off by the signal"
    );

    // Let the upstream answer: the in-flight request completes in full.
    let released = Instant::now();
    open.send_replace(true);
    let (status, body) = tokio::time::timeout(BOUND, request)
        .await
        .expect("in-flight request hung")
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        body.len(),
        BODY_LEN,
        "the in-flight response must arrive whole"
    );
    assert_eq!(body, body_bytes());

    // Nothing left to drain: exit 0 promptly, well before the 10 s drain timeout.
    let status = wait_exit(&mut gw, SLACK);
    assert_clean_exit(&gw, status);
    assert!(
        released.elapsed() < Duration::from_secs(5),
        "exit took {:?} after the last request",
        released.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_request_then_exits_0() {
    in_flight_request_completes(libc::SIGTERM, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_an_in_flight_h2c_stream_then_exits_0() {
    in_flight_request_completes(libc::SIGTERM, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_drains_in_flight_request_then_exits_0() {
    in_flight_request_completes(libc::SIGINT, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_timeout_bounds_a_request_that_never_ends() {
    let (up, mut received) = gated_upstream(None).await;
    let mut gw = Gateway::start(&config(&up, "500ms", ""));
    let request = spawn_request(&gw, false);
    wait_received(&mut received).await;
    let signalled = Instant::now();
    gw.signal(libc::SIGTERM);
    let status = wait_exit(&mut gw, Duration::from_millis(500) + SLACK);
    let took = signalled.elapsed();
    assert_clean_exit(&gw, status);
    assert!(
        took >= Duration::from_millis(450),
        "exited after {took:?}, before the drain timeout"
    );
    // The abandoned client is told (its connection ends), not left hanging.
    let outcome = tokio::time::timeout(BOUND, request)
        .await
        .expect("client left hanging after exit")
        .unwrap();
    assert!(
        outcome.is_err() || outcome.as_ref().is_ok_and(|(s, _)| *s >= 500),
        "{outcome:?}"
    );
    assert!(
        gw.logs().contains("drain timeout reached"),
        "log:\n{}",
        gw.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_do_not_hold_up_shutdown() {
    let (up, _received) = gated_upstream(None).await;
    let mut gw = Gateway::start(&config(&up, "30s", r#"idle_timeout = "60s""#));
    // An HTTP/1.1 keep-alive connection, idle after one request.
    let mut h1 = TcpStream::connect(gw.addr("public")).await.unwrap();
    h1.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(BOUND, h1.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    // An idle h2c connection after one stream.
    let stream = TcpStream::connect(gw.addr("public")).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    let h2 = tokio::spawn(conn);
    let req = Request::get(gw.url("public", "/healthz"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = tokio::time::timeout(BOUND, sender.send_request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);

    let signalled = Instant::now();
    gw.signal(libc::SIGTERM);
    // Both are closed at once rather than waited for (drain_timeout is 30 s).
    let mut rest = Vec::new();
    let end = tokio::time::timeout(SLACK, h1.read_to_end(&mut rest)).await;
    assert!(
        end.is_ok(),
        "idle HTTP/1.1 connection not closed on shutdown"
    );
    assert!(
        rest.is_empty(),
        "unexpected bytes: {:?}",
        String::from_utf8_lossy(&rest)
    );
    assert!(
        tokio::time::timeout(SLACK, h2).await.is_ok(),
        "idle h2c connection not closed on shutdown"
    );
    let status = wait_exit(&mut gw, SLACK);
    assert_clean_exit(&gw, status);
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "exit took {:?}",
        signalled.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connection_does_not_hold_up_shutdown() {
    let (up, _received) = gated_upstream(None).await;
    let mut gw = Gateway::start(&config(&up, "30s", r#"header_read_timeout = "8s""#));
    // Connected, nothing sent yet (a browser's pre-connect, a load balancer probe).
    let mut silent = TcpStream::connect(gw.addr("public")).await.unwrap();
    // Make sure meshgate has accepted it: a request on another connection
    // goes through the same accept loop after it.
    assert_eq!(
        common::client::get(gw.addr("public"), "/healthz", &[])
            .await
            .status,
        200
    );
    let signalled = Instant::now();
    gw.signal(libc::SIGTERM);
    let status = wait_exit(&mut gw, SLACK);
    assert_clean_exit(&gw, status);
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "exit took {:?}",
        signalled.elapsed()
    );
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(BOUND, silent.read_to_end(&mut rest))
        .await
        .expect("silent connection left open");
}

/// "meshgate is ready" promises a graceful stop from then on. The window is
/// narrow, so this tries 100 times; each try sends SIGTERM the moment the
/// ready line is read.
#[test]
fn signal_right_after_ready_still_exits_0() {
    let cfg = r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[routes]]
listener = "public"
direct_response = { status = 200 }
"#;
    for attempt in 0..100 {
        let mut gw = Gateway::start(cfg);
        gw.signal(libc::SIGTERM);
        let status = gw.wait_exit(BOUND);
        assert!(
            status.is_some_and(|s| s.code() == Some(0)),
            "attempt {attempt}: exit status {status:?}; log:\n{}",
            gw.logs()
        );
    }
}
