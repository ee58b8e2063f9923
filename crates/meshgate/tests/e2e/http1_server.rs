//! meshgate's own HTTP/1.1 server through the real binary, byte by byte:
//! pipelining, keep-alive rules for HTTP/1.0 and 1.1, `Expect:
//! 100-continue`, HEAD, request-smuggling vectors, the `Date` header, and
//! what happens to a request body nobody reads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use tokio::io::AsyncReadExt as _;

use common::Gateway;
use common::raw::{End, Raw, assert_error, find};
use common::upstream::Upstream;

async fn start() -> (Gateway, Upstream, Upstream) {
    let t = common::protocol::start("").await;
    (t.gw, t.echo, t.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order_and_close_is_honoured() {
    let (gw, echo, _body) = start().await;
    let mut raw = Raw::connect(gw.addr("public")).await;
    raw.send(
        b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n\
          GET /direct HTTP/1.1\r\nHost: a\r\n\r\n\
          GET /third HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    .await;
    let first = raw.response().await;
    assert_eq!(first.status, 200);
    assert_eq!(first.json()["path"], "/first");
    let second = raw.response().await;
    assert_eq!(second.text(), "direct");
    let third = raw.response().await;
    assert_eq!(third.json()["path"], "/third");
    assert_eq!(third.header("connection"), Some("close"));
    let (rest, end, _) = raw.read_to_close(Duration::from_secs(5)).await;
    assert!(rest.is_empty(), "bytes after the last response: {rest:?}");
    assert_eq!(end, Some(End::Eof));
    assert_eq!(echo.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http10_closes_unless_keep_alive_is_asked_for() {
    let (gw, _echo, _body) = start().await;
    let mut raw = Raw::connect(gw.addr("public")).await;
    raw.send(b"GET /direct HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await;
    let resp = raw.response().await;
    assert_eq!(resp.header("connection"), Some("keep-alive"));
    assert_eq!(resp.header("content-length"), Some("6"));
    // Still open: a plain HTTP/1.0 request, then the close.
    raw.send(b"GET /direct HTTP/1.0\r\n\r\n").await;
    let resp = raw.response().await;
    assert_eq!(resp.text(), "direct");
    assert_eq!(resp.header("connection"), Some("close"));
    let (_, end, _) = raw.read_to_close(Duration::from_secs(5)).await;
    assert_eq!(end, Some(End::Eof));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_100_continue_gets_the_interim_response_then_the_echo() {
    let (gw, _echo, _body) = start().await;
    let mut raw = Raw::connect(gw.addr("public")).await;
    raw.send(
        b"PUT /upload HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    )
    .await;
    // The client waits for the go-ahead before sending the body.
    let mut interim = Vec::new();
    while find(&interim, b"\r\n\r\n").is_none() {
        let mut chunk = [0u8; 256];
        let n = tokio::time::timeout(common::wait::BOUND, raw.stream.read(&mut chunk))
            .await
            .expect("no 100 Continue in time")
            .unwrap();
        assert!(n > 0, "closed before 100 Continue");
        interim.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    raw.send(b"hello").await;
    let resp = raw.response().await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), "hello");
    assert_eq!(resp.header("x-body-len"), Some("5"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_keeps_the_length_and_sends_no_body() {
    let (gw, _echo, _body) = start().await;
    let mut raw = Raw::connect(gw.addr("public")).await;
    raw.send(b"HEAD /direct HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let resp = raw.response_to(true).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-length"), Some("6"));
    // No body bytes were sent: the next response starts right away.
    raw.send(b"GET /direct HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let next = raw.response().await;
    assert_eq!(next.text(), "direct");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_vectors_get_400_and_a_close() {
    let (gw, echo, _body) = start().await;
    for head in [
        &b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n"[..],
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcd",
        b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        b"POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\nabcd",
    ] {
        let mut raw = Raw::connect(gw.addr("public")).await;
        raw.send(head).await;
        let resp = raw.response().await;
        assert_error(&resp, 400, "bad_request");
        assert_eq!(resp.header("connection"), Some("close"));
        let (_, end, _) = raw.read_to_close(Duration::from_secs(5)).await;
        assert!(end.is_some(), "left open after {:?}", String::from_utf8_lossy(head));
    }
    assert_eq!(echo.hits(), 0, "nothing ambiguous reached the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_has_a_date() {
    let (gw, _echo, _body) = start().await;
    let mut raw = Raw::connect(gw.addr("public")).await;
    for path in ["/direct", "/proxied", "/upload"] {
        raw.send(format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
            .await;
        let resp = raw.response().await;
        let date = resp.header("date").expect("a date header");
        assert!(
            httpdate::parse_http_date(date).is_ok(),
            "an IMF-fixdate: {date:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_small_body_is_skipped_and_the_connection_kept() {
    let (gw, _echo, _body) = start().await;
    let mut raw = Raw::connect(gw.addr("public")).await;
    // The direct response never reads the body; the server skips it.
    let body = vec![b'x'; 10_000];
    let mut req = format!(
        "POST /direct HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    req.extend_from_slice(b"GET /direct HTTP/1.1\r\nHost: a\r\n\r\n");
    raw.send(&req).await;
    let first = raw.response().await;
    assert_eq!(first.text(), "direct");
    assert_eq!(first.header("connection"), None, "kept alive");
    let second = raw.response().await;
    assert_eq!(
        second.text(),
        "direct",
        "the body was not taken for a request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_large_body_closes_after_the_response() {
    let (gw, _echo, _body) = start().await;
    let mut raw = Raw::connect(gw.addr("public")).await;
    // 1 MiB declared, nothing sent: too much to skip, so the answer says
    // close and the connection ends cleanly (no reset eating the response).
    raw.send(b"POST /direct HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n")
        .await;
    let resp = raw.response().await;
    assert_eq!(resp.text(), "direct");
    assert_eq!(resp.header("connection"), Some("close"));
    let (_, end, _) = raw.read_to_close(Duration::from_secs(5)).await;
    assert_eq!(end, Some(End::Eof));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_uploads_are_decoded_and_reframed() {
    let (gw, _echo, _body) = start().await;
    let mut raw = Raw::connect(gw.addr("public")).await;
    raw.send(
        b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-trailer: t\r\n\r\n",
    )
    .await;
    let resp = raw.response().await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), "hello world");
    // A broken chunk size is the client's fault, and ends the connection.
    raw.send(b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
        .await;
    let resp = raw.response().await;
    assert_error(&resp, 400, "bad_request");
    let (_, end, _) = raw.read_to_close(Duration::from_secs(5)).await;
    assert!(end.is_some());
    assert!(find(&raw.buf, b"HTTP/1.1").is_none());
}
