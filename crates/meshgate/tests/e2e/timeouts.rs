//! Listener timeouts through the real binary: the header-read timeout (408
//! and close: slowloris) and the keep-alive idle timeout (quiet close) for
//! HTTP/1.1 and h2c, with busy connections left alone. A route's own
//! `connect_timeout` and `idle_timeout` are in `timeouts/route.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
mod route;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Gateway;
use common::limits::{HEADER_READ, IDLE, SLACK, assert_408, assert_still_serving, config, start};
use common::raw::{End, Raw};
use common::upstream::{self, Proto};
use common::wait::BOUND;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

// === header-read timeout (slowloris) ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incomplete_headers_get_408_at_the_header_read_timeout() {
    let (gw, up) = start().await;
    let mut raw = Raw::connect(gw.addr("public")).await;
    let start = Instant::now();
    raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n").await;
    let (bytes, end, at) = raw.read_to_close(HEADER_READ + SLACK).await;
    assert!(
        end.is_some(),
        "connection still open after header_read_timeout + slack"
    );
    assert_408(&bytes);
    let took = at - start;
    assert!(took >= HEADER_READ.mul_f32(0.9), "408 after only {took:?}");
    assert_eq!(up.hits(), 0);
    assert_still_serving(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connection_gets_408_and_close() {
    let (gw, _up) = start().await;
    let start = Instant::now();
    let mut raw = Raw::connect(gw.addr("public")).await;
    let (bytes, end, at) = raw.read_to_close(HEADER_READ + SLACK).await;
    assert!(
        end.is_some(),
        "a connection that sends nothing is never closed"
    );
    assert_408(&bytes);
    assert!(
        at - start >= HEADER_READ.mul_f32(0.9),
        "closed after only {:?}",
        at - start
    );
}

/// The clock for a silent connection starts at accept: the 408 comes one
/// header_read_timeout after connecting, not two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connection_408_comes_after_one_header_read_timeout() {
    let up = upstream::body_echo(Proto::H1).await;
    let gw = Gateway::start(&config(
        &up,
        r#"header_read_timeout = "1s", idle_timeout = "30s""#,
    ));
    let start = Instant::now();
    let mut raw = Raw::connect(gw.addr("public")).await;
    let (bytes, end, at) = raw.read_to_close(Duration::from_secs(5)).await;
    assert!(end.is_some());
    assert_408(&bytes);
    let took = at - start;
    assert!(
        took >= Duration::from_millis(900),
        "408 after only {took:?}"
    );
    assert!(
        took < Duration::from_millis(1700),
        "408 after {took:?}, expected about 1s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dribbled_headers_still_get_408_at_the_deadline() {
    let (gw, up) = start().await;
    let stream = TcpStream::connect(gw.addr("public")).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let start = Instant::now();
    // One header byte every 100 ms, forever: each byte arrives well within
    // the 300 ms timeout, but the headers never complete.
    let writer = tokio::spawn(async move {
        if wr
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .is_err()
        {
            return;
        }
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if wr.write_all(b"a").await.is_err() {
                return;
            }
        }
    });
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let ended = tokio::time::timeout(HEADER_READ + SLACK, async {
        loop {
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    let took = start.elapsed();
    writer.abort();
    assert!(
        ended.is_ok(),
        "a dribbling client is never timed out (per-byte timeout?)"
    );
    assert_408(&got);
    assert!(took >= HEADER_READ.mul_f32(0.9), "408 after only {took:?}");
    assert_eq!(up.hits(), 0);
}

// === keep-alive idle timeout, HTTP/1.1 ===

async fn idle_close_after_one_request(path: &str) {
    let (gw, _up) = start().await;
    let mut raw = Raw::connect(gw.addr("public")).await;
    // The idle period starts after the response, so measuring from before
    // the request gives a lower bound that scheduling delays cannot break.
    let sent = Instant::now();
    raw.send(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .await;
    let resp = raw.response().await;
    assert_eq!(resp.status, 200);
    let (bytes, end, at) = raw.read_to_close(IDLE + SLACK).await;
    assert!(
        bytes.is_empty(),
        "an idle keep-alive connection must close quietly, got {:?}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(
        end,
        Some(End::Eof),
        "idle keep-alive connection not closed in time"
    );
    let idle_for = at - sent;
    assert!(
        idle_for >= IDLE.mul_f32(0.9),
        "closed {idle_for:?} after the request, before idle_timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connection_closes_quietly_after_a_proxied_request() {
    idle_close_after_one_request("/proxied").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connection_closes_quietly_after_a_direct_response() {
    idle_close_after_one_request("/direct").await;
}

async fn busy_connection_stays_open(path: &str) {
    let (gw, _up) = start().await;
    let mut raw = Raw::connect(gw.addr("public")).await;
    let start = Instant::now();
    let mut n = 0;
    // Every 150 ms for 3.5 idle periods: the idle timer must restart after
    // each response, and the header-read timer after each request.
    while start.elapsed() < IDLE * 7 / 2 {
        raw.send(format!("GET {path}?n={n} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
            .await;
        let resp = raw.response().await;
        assert_eq!(
            resp.status,
            200,
            "request {n} after {:?}: {}",
            start.elapsed(),
            resp.text()
        );
        n += 1;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(n >= 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_keep_alive_connection_stays_open_proxied() {
    busy_connection_stays_open("/proxied").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_keep_alive_connection_stays_open_direct() {
    busy_connection_stays_open("/direct").await;
}

// === keep-alive idle timeout, h2c ===

type H2Conn = tokio::task::JoinHandle<Result<(), hyper::Error>>;

async fn h2_connect(
    addr: std::net::SocketAddr,
) -> (
    hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    H2Conn,
) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    (sender, tokio::spawn(conn))
}

async fn h2_get(
    sender: &mut hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    url: &str,
) -> (u16, Bytes) {
    let req = Request::get(url).body(Empty::<Bytes>::new()).unwrap();
    let fut = async {
        let resp = sender.send_request(req).await.expect("h2 request failed");
        let status = resp.status().as_u16();
        (
            status,
            resp.into_body()
                .collect()
                .await
                .expect("h2 body failed")
                .to_bytes(),
        )
    };
    tokio::time::timeout(BOUND, fut)
        .await
        .expect("h2 request timed out")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_connection_without_streams_closes_after_idle_timeout() {
    let (gw, _up) = start().await;
    let addr = gw.addr("public");
    let start = Instant::now();
    let (mut sender, conn) = h2_connect(addr).await;
    // One stream first, so this is a working h2 connection, not a failed handshake.
    let (status, body) = h2_get(&mut sender, &format!("http://{addr}/proxied")).await;
    assert_eq!(status, 200);
    assert!(body.is_empty());
    let ended = tokio::time::timeout(IDLE + SLACK, conn).await;
    assert!(
        ended.is_ok(),
        "idle h2 connection still open after idle_timeout + slack"
    );
    let open_for = start.elapsed();
    assert!(
        open_for >= IDLE.mul_f32(0.9),
        "closed after {open_for:?}, before idle_timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_connection_with_no_stream_at_all_closes_after_idle_timeout() {
    let (gw, _up) = start().await;
    let start = Instant::now();
    let (_sender, conn) = h2_connect(gw.addr("public")).await;
    let ended = tokio::time::timeout(IDLE + SLACK, conn).await;
    assert!(
        ended.is_ok(),
        "idle h2 connection still open after idle_timeout + slack"
    );
    assert!(
        start.elapsed() >= IDLE.mul_f32(0.9),
        "closed after {:?}",
        start.elapsed()
    );
}

async fn h2_busy_connection_stays_open(path: &str) {
    let (gw, _up) = start().await;
    let addr = gw.addr("public");
    let (mut sender, mut conn) = h2_connect(addr).await;
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < IDLE * 7 / 2 {
        assert!(
            !conn.is_finished(),
            "h2 connection closed while in use, after {:?} and {n} requests",
            start.elapsed()
        );
        let (status, _) = h2_get(&mut sender, &format!("http://{addr}{path}?n={n}")).await;
        assert_eq!(status, 200);
        n += 1;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(!conn.is_finished(), "h2 connection closed while in use");
    // And once the client stops, the idle timeout still applies.
    assert!(tokio::time::timeout(IDLE + SLACK, &mut conn).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_busy_connection_stays_open_proxied() {
    h2_busy_connection_stays_open("/proxied").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_busy_connection_stays_open_direct() {
    h2_busy_connection_stays_open("/direct").await;
}
