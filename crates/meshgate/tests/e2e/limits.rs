//! Listener limits through the real binary: header size and count (431),
//! body size (413) and malformed input (400). (The header-read and idle
//! timeouts are in `timeouts.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use bytes::Bytes;
use common::bodies::Frames;
use common::limits::{MAX_BODY, assert_still_serving, start};
use common::raw::Raw;
use common::wait::BOUND;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioExecutor;

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
