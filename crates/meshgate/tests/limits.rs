//! Listener limits through the real binary: header size and count (431),
//! body size (413), header-read timeout (408, slowloris), keep-alive idle
//! timeout (quiet close) for HTTP/1.1 and h2c, and malformed input (400).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Gateway;
use common::bodies::Frames;
use common::raw::{End, Raw};
use common::upstream::{self, Proto, Upstream};
use common::wait::BOUND;
use http::Request;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HEADER_READ: Duration = Duration::from_millis(300);
const IDLE: Duration = Duration::from_millis(500);
/// Generous allowance for scheduling on a loaded machine when asserting that
/// a timeout fired.
const SLACK: Duration = Duration::from_secs(3);
const MAX_BODY: usize = 1000;

// === helpers ===

fn config(upstream: &Upstream, limits: &str) -> String {
    format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"
limits = {{ {limits} }}

[[routes]]
listener = "public"
match = {{ path_prefix = "/direct" }}
direct_response = {{ status = 200, body = "direct" }}

[[routes]]
listener = "public"
cluster = "up"
timeout = "5s"

[[clusters]]
name = "up"
endpoints = [{{ address = "{}" }}]
"#,
        upstream.addr
    )
}

fn default_limits() -> String {
    format!(
        r#"max_header_bytes = "4KiB", max_headers = 20, max_body_bytes = {MAX_BODY}, header_read_timeout = "{}ms", idle_timeout = "{}ms""#,
        HEADER_READ.as_millis(),
        IDLE.as_millis()
    )
}

async fn start() -> (Gateway, Upstream) {
    let up = upstream::body_echo(Proto::H1).await;
    let gw = Gateway::start(&config(&up, &default_limits()));
    (gw, up)
}

/// A normal request through the proxy still works: the process is alive and serving.
async fn assert_still_serving(gw: &Gateway) {
    let reply = common::client::get(gw.addr("public"), "/direct", &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "direct");
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", gw.pid())).unwrap();
    let state = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    assert!(
        !matches!(state, "Z" | "X"),
        "meshgate exited; log:\n{}",
        gw.logs()
    );
}

fn assert_408(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    assert!(
        text.starts_with("HTTP/1.1 408"),
        "expected a 408 before the close, got {text:?}"
    );
    assert!(
        text.contains("request_header_timeout"),
        "408 body names the error: {text:?}"
    );
}

// === header size and count ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_bytes_over_the_limit_get_431_and_close() {
    let (gw, up) = start().await;
    let addr = gw.addr("public");

    // Under the 4 KiB limit (but over any tiny default): forwarded.
    let mut raw = Raw::connect(addr).await;
    let small = format!(
        "GET /ok HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(2000)
    );
    raw.send(small.as_bytes()).await;
    let resp = raw.response().await;
    assert_eq!(resp.status, 200, "{}", resp.text());

    // Over it: 431, then the connection closes. The whole request fits in
    // one read, so the close is orderly and the reply is readable.
    let mut raw = Raw::connect(addr).await;
    let big = format!(
        "GET /big HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(5000)
    );
    raw.send(big.as_bytes()).await;
    let resp = raw.response().await;
    assert_eq!(resp.status, 431);
    let (rest, end, _) = raw.read_to_close(BOUND).await;
    assert!(end.is_some(), "connection left open after 431");
    assert!(
        rest.is_empty(),
        "unexpected bytes after 431: {:?}",
        String::from_utf8_lossy(&rest)
    );
    assert_eq!(
        up.hits(),
        1,
        "the oversized request must not reach the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_bytes_over_the_limit_via_hyper_client() {
    let (gw, up) = start().await;
    let big = "b".repeat(5000);
    let reply = common::client::get(gw.addr("public"), "/big", &[("x-big", &big)]).await;
    assert_eq!(reply.status, 431);
    assert_eq!(up.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_count_over_the_limit_gets_431_and_close() {
    let (gw, up) = start().await;
    let addr = gw.addr("public");
    let request = |n: usize| {
        let mut r = String::from("GET /count HTTP/1.1\r\nhost: x\r\n");
        for i in 0..n {
            r.push_str(&format!("x-h{i}: v\r\n"));
        }
        r.push_str("\r\n");
        r
    };

    // 15 + host = 16 headers, under max_headers = 20.
    let mut raw = Raw::connect(addr).await;
    raw.send(request(15).as_bytes()).await;
    assert_eq!(raw.response().await.status, 200);
    assert_eq!(up.hits(), 1);

    // 30 + host: over. Small in bytes, so only the count can trip.
    let mut raw = Raw::connect(addr).await;
    raw.send(request(30).as_bytes()).await;
    let resp = raw.response().await;
    assert_eq!(resp.status, 431);
    let (rest, end, _) = raw.read_to_close(BOUND).await;
    assert!(end.is_some(), "connection left open after 431");
    assert!(rest.is_empty());
    assert_eq!(
        up.hits(),
        1,
        "the request with too many headers must not reach the upstream"
    );
}

// === body size ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_body_over_the_limit_gets_413_before_the_upstream_sees_it() {
    let (gw, up) = start().await;
    // Headers only: the answer must not wait for a body that is never sent.
    let mut raw = Raw::connect(gw.addr("public")).await;
    raw.send(b"POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 10000000\r\nx-request-id: big-1\r\n\r\n").await;
    let resp = raw.response().await;
    assert_eq!(resp.status, 413, "{}", resp.text());
    let body = resp.json();
    assert_eq!(body["error"], "request_body_too_large");
    assert_eq!(body["status"], 413);
    assert_eq!(body["request_id"], "big-1");
    assert_eq!(resp.header("x-request-id"), Some("big-1"));
    assert_eq!(
        up.hits(),
        0,
        "the upstream must never see an over-limit request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_body_at_the_limit_passes_and_one_byte_over_does_not() {
    let (gw, up) = start().await;
    let addr = gw.addr("public");
    let at_limit: Vec<u8> = (0..MAX_BODY).map(|i| (i % 251) as u8).collect();
    let req = Request::post(format!("http://{addr}/upload"))
        .body(Full::new(Bytes::from(at_limit.clone())))
        .unwrap();
    let reply = common::client::send(&common::client::h1(), req).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.as_ref(), &at_limit[..], "body passes intact");
    assert_eq!(up.hits(), 1);

    let over = vec![b'x'; MAX_BODY + 1];
    let req = Request::post(format!("http://{addr}/upload"))
        .body(Full::new(Bytes::from(over)))
        .unwrap();
    let reply = common::client::send(&common::client::h1(), req).await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.json()["error"], "request_body_too_large");
    assert_eq!(
        up.hits(),
        1,
        "the upstream must not see the over-limit request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declared_body_over_the_limit_with_curl() {
    let (gw, up) = start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body.bin");
    std::fs::write(&file, vec![b'z'; 5000]).unwrap();
    let url = gw.url("public", "/upload");
    let data = format!("@{}", file.display());
    let (ok, out) = tokio::task::spawn_blocking(move || {
        common::curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--data-binary",
            &data,
            &url,
        ])
    })
    .await
    .unwrap();
    assert!(ok, "curl failed: {out}");
    assert_eq!(out, "413");
    assert_eq!(up.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_over_the_limit_gets_413() {
    let (gw, _up) = start().await;
    let mut raw = Raw::connect(gw.addr("public")).await;
    // No content-length: only counting the streamed bytes can catch this.
    // 3 chunks of 400 = 1200 > 1000; all of it in one write, so the gateway
    // has read everything when it answers and the close is orderly.
    let mut req =
        b"POST /upload HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        req.extend_from_slice(b"190\r\n");
        req.extend_from_slice(&[b'c'; 400]);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    raw.send(&req).await;
    let resp = raw.response().await;
    assert_eq!(resp.status, 413, "{}", resp.text());
    assert_eq!(resp.json()["error"], "request_body_too_large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_under_the_limit_passes_intact() {
    let (gw, _up) = start().await;
    let addr = gw.addr("public");
    // A streamed body of 4 frames, 250 bytes each = exactly the limit.
    let mut expected = Vec::new();
    let mut frames = std::collections::VecDeque::new();
    for i in 0..4u8 {
        let frame: Vec<u8> = (0..250)
            .map(|j| i.wrapping_mul(31).wrapping_add(j as u8))
            .collect();
        expected.extend_from_slice(&frame);
        frames.push_back(Bytes::from(frame));
    }
    let body = Frames(frames);
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http();
    let req = Request::post(format!("http://{addr}/upload"))
        .body(body)
        .unwrap();
    let resp = tokio::time::timeout(BOUND, client.request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-body-len"], MAX_BODY.to_string().as_str());
    let got = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(got.as_ref(), &expected[..]);
}

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

// === malformed input ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_request_line_gets_400_and_close() {
    let (gw, up) = start().await;
    for garbage in [
        &b"this is not http\r\n\r\n"[..],
        b"GET /\x01\x02 HTTP/1.1\r\n\r\n",
        b"\x00\xff\xfe\r\n\r\n",
    ] {
        let mut raw = Raw::connect(gw.addr("public")).await;
        raw.send(garbage).await;
        let resp = raw.response().await;
        assert_eq!(resp.status, 400, "for {garbage:?}");
        let (_, end, _) = raw.read_to_close(BOUND).await;
        assert!(
            end.is_some(),
            "connection left open after a 400 for {garbage:?}"
        );
    }
    // A bogus "PRI " preface (h2 detection) with garbage after it: closed, no crash.
    let mut raw = Raw::connect(gw.addr("public")).await;
    raw.send(b"PRI * garbage garbage garbage garbage\r\n\r\n")
        .await;
    let (_, end, _) = raw.read_to_close(BOUND).await;
    assert!(end.is_some(), "connection left open after a bad h2 preface");
    assert_eq!(up.hits(), 0);
    assert_still_serving(&gw).await;
}
