//! Hardening regressions through the real binary, request bodies:
//!
//! 1. an early response during a slow upload is never followed by a 408;
//! 2. a chunked body over the limit to an h2 cluster is a 413, not a 502;
//! 3. the demo upstream streams uploads instead of buffering them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Gateway;
use common::bodies::Zeros;
use common::metrics::{metrics, requests};
use common::raw::{End, Raw, assert_error, find, split_responses};
use common::simple_config;
use common::upstream::{self, Proto};
use common::wait::BOUND;
use http::Request;
use http_body_util::BodyExt;
use hyper::Response;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous allowance for scheduling on a loaded machine when asserting that
/// a timeout fired.
const SLACK: Duration = Duration::from_secs(3);

// === 1. early response during a slow upload ===

/// How the upstream of an early response treats the request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EarlyUpstream {
    /// Never reads it (hyper then closes the connection).
    Ignores,
    /// Keeps reading it in the background after answering.
    Drains,
}

/// The upstream answers at once without waiting for the body; the client
/// keeps uploading for longer than header_read_timeout. Once the response
/// is done, the connection may still be reading the request body: that is
/// not a request head arriving late, and must never be answered with a 408.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_response_during_a_slow_upload_gets_no_408() {
    early_response_during_a_slow_upload(EarlyUpstream::Ignores).await;
}

/// As above, with an upstream that drains the body after answering: the
/// gateway keeps forwarding the upload after the response has ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_response_during_a_slow_upload_gets_no_408_when_the_upstream_drains() {
    early_response_during_a_slow_upload(EarlyUpstream::Drains).await;
}

async fn early_response_during_a_slow_upload(mode: EarlyUpstream) {
    const CHUNK: usize = 1000;
    const CHUNKS: usize = 10;
    const EVERY: Duration = Duration::from_millis(200);
    const IDLE: Duration = Duration::from_secs(1);
    let (drained_tx, mut drained_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let up = upstream::start(
        Proto::H1,
        Arc::new(move |req: Request<Incoming>| {
            let drained = drained_tx.clone();
            Box::pin(async move {
                if mode == EarlyUpstream::Drains && req.method() == http::Method::POST {
                    tokio::spawn(async move {
                        // Counted up to the declared length: after an early
                        // response, hyper's server body yields the last byte
                        // but not its end until the connection closes.
                        let declared: usize = req
                            .headers()
                            .get("content-length")
                            .and_then(|v| v.to_str().ok()?.parse().ok())
                            .unwrap_or(usize::MAX);
                        let mut body = req.into_body();
                        let mut n = 0;
                        while n < declared {
                            match body.frame().await {
                                Some(Ok(f)) => n += f.data_ref().map_or(0, |d| d.len()),
                                Some(Err(_)) | None => break,
                            }
                        }
                        let _ = drained.send(n);
                    });
                }
                Response::new(upstream::full("early"))
            })
        }),
    )
    .await;
    let gw = Gateway::start(&simple_config(
        up.addr,
        r#"header_read_timeout = "500ms", idle_timeout = "1s""#,
        "",
    ));
    let stream = TcpStream::connect(gw.addr("public")).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut rd, mut wr) = stream.into_split();

    // Read everything the gateway sends, noting when the first response
    // head arrived, until it closes (bounded).
    let total_bound = EVERY * CHUNKS as u32 + IDLE + SLACK * 2;
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut first_head_at = None;
        let deadline = tokio::time::Instant::now() + total_bound;
        let mut chunk = [0u8; 16 * 1024];
        let end = loop {
            match tokio::time::timeout_at(deadline, rd.read(&mut chunk)).await {
                Err(_) => break None,
                Ok(Ok(0)) => break Some(End::Eof),
                Ok(Ok(n)) => {
                    got.extend_from_slice(&chunk[..n]);
                    if first_head_at.is_none() && find(&got, b"\r\n\r\n").is_some() {
                        first_head_at = Some(Instant::now());
                    }
                }
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    break Some(End::Reset);
                }
                Ok(Err(e)) => panic!("read failed: {e}"),
            }
        };
        (got, first_head_at, end)
    });

    let total = CHUNK * CHUNKS;
    wr.write_all(
        format!("POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: {total}\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    // A server that stops reading may close or reset: both end the upload.
    let mut sent = 0;
    let mut write_error = None;
    for _ in 0..CHUNKS {
        tokio::time::sleep(EVERY).await;
        if let Err(e) = wr.write_all(&[b'u'; CHUNK]).await {
            write_error = Some(e);
            break;
        }
        sent += CHUNK;
    }
    let upload_done = Instant::now();
    // If the connection survived the upload, it must serve another request.
    let next_sent = write_error.is_none()
        && wr
            .write_all(b"GET /next HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .is_ok();

    let (got, first_head_at, end) = reader.await.unwrap();
    let text = String::from_utf8_lossy(&got).into_owned();
    eprintln!(
        "uploaded {sent} of {total} bytes (write error: {write_error:?}); \
         next request sent: {next_sent}; connection end: {end:?}; got {text:?}"
    );
    assert!(
        !text.contains("408") && !text.contains("request_header_timeout"),
        "a client still uploading its body was sent a 408: {text:?}"
    );
    let responses = split_responses(&got);
    assert!(!responses.is_empty(), "no response at all: {text:?}");
    for (status, body) in &responses {
        assert_eq!(
            *status, 200,
            "every response is the upstream's 200: {text:?}"
        );
        assert_eq!(body, b"early", "{text:?}");
    }
    assert!(
        first_head_at.is_some_and(|at| at < upload_done),
        "the early response was forwarded only after the upload ended"
    );
    // One response for the upload, plus one for /next if the connection
    // was kept open for it; never a second answer to the upload.
    let want = if next_sent { 1..=2 } else { 1..=1 };
    assert!(
        want.contains(&responses.len()),
        "{} responses: {text:?}",
        responses.len()
    );
    // Served or not, the connection ends: closed at once, or by the
    // keep-alive idle timeout after its last response.
    assert!(
        end.is_some(),
        "after {} response(s) the connection stayed open for more than \
         idle_timeout ({IDLE:?}) + {:?}: the idle timeout was never enforced",
        responses.len(),
        SLACK * 2
    );
    if mode == EarlyUpstream::Drains {
        // The scenario really happened: the upstream read the upload to its
        // end after the response had been forwarded.
        let n = tokio::time::timeout(BOUND, drained_rx.recv())
            .await
            .expect("the upstream never finished reading the upload")
            .unwrap();
        assert_eq!(n, total, "the upstream got the whole upload");
        assert_eq!(sent, total);
    }
}

/// The keep-alive idle timeout starts when a response ends, however long
/// the request took: a response slower than header_read_timeout (here the
/// upstream takes 1 s, header_read_timeout is 500 ms) must not leave the
/// connection open for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_applies_after_a_response_slower_than_header_read_timeout() {
    const SLOW: Duration = Duration::from_secs(1);
    const IDLE: Duration = Duration::from_secs(1);
    let up = upstream::start(
        Proto::H1,
        Arc::new(|_req: Request<Incoming>| {
            Box::pin(async {
                tokio::time::sleep(SLOW).await;
                Response::new(upstream::full("slow"))
            })
        }),
    )
    .await;
    let gw = Gateway::start(&simple_config(
        up.addr,
        r#"header_read_timeout = "500ms", idle_timeout = "1s""#,
        "",
    ));
    let mut raw = Raw::connect(gw.addr("public")).await;
    raw.send(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n").await;
    let resp = raw.response().await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), "slow");
    let answered = Instant::now();
    let (bytes, end, at) = raw.read_to_close(IDLE + SLACK).await;
    assert!(
        bytes.is_empty(),
        "an idle keep-alive connection must close quietly, got {:?}",
        String::from_utf8_lossy(&bytes)
    );
    assert_eq!(
        end,
        Some(End::Eof),
        "connection still open {:?} after its last response (idle_timeout {IDLE:?})",
        at - answered
    );
}

// === 2. body limit through an h2 cluster ===

fn h2_limit_config(up: SocketAddr) -> String {
    simple_config(up, r#"max_body_bytes = 1000"#, r#"protocol = "h2""#)
        .replace(r#"timeout = "5s""#, r#"timeout = "1s""#)
}

/// A chunked request of `chunks` × `size` bytes, in one buffer.
fn chunked_request(chunks: usize, size: usize) -> Vec<u8> {
    let mut req =
        b"POST /upload HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nx-request-id: h2-413\r\n\r\n"
            .to_vec();
    for i in 0..chunks {
        req.extend_from_slice(format!("{size:x}\r\n").as_bytes());
        req.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, size));
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_over_the_limit_to_an_h2_cluster_gets_413() {
    let up = upstream::body_echo(Proto::H2).await;
    let gw = Gateway::start(&h2_limit_config(up.addr));
    let addr = gw.addr("public");

    // At the limit: passes intact (so the cluster really works over h2).
    let mut raw = Raw::connect(addr).await;
    let at_limit = chunked_request(4, 250);
    raw.send(&at_limit).await;
    let resp = raw.response().await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("x-body-len"), Some("1000"));
    assert_eq!(up.hits(), 1);

    // 5000 bytes in 10 chunks, no content-length: only counting the
    // streamed bytes can catch it, after the upstream has the head.
    let mut raw = Raw::connect(addr).await;
    raw.send(&chunked_request(10, 500)).await;
    let resp = raw.response().await;
    assert_error(&resp, 413, "request_body_too_large");
    assert_eq!(resp.json()["request_id"], "h2-413");
    let m = metrics(&gw).await;
    assert_eq!(requests(&m, "main", "5xx"), 0.0, "{m}");
    assert_eq!(requests(&m, "main", "4xx"), 1.0, "{m}");
    assert_eq!(requests(&m, "main", "2xx"), 1.0, "{m}");

    // The h2 connection to the upstream survives the reset stream.
    let mut raw = Raw::connect(addr).await;
    raw.send(&at_limit).await;
    assert_eq!(raw.response().await.status, 200);
}

/// A client that gives up mid-upload is not an upstream failure: if the
/// request is counted at all, it is not a 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_abort_mid_upload_to_an_h2_cluster_is_not_an_upstream_5xx() {
    let (called_tx, mut called_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let up = upstream::start(
        Proto::H2,
        Arc::new(move |req: Request<Incoming>| {
            let called = called_tx.clone();
            Box::pin(async move {
                let _ = called.send(());
                match req.into_body().collect().await {
                    Ok(b) => Response::new(upstream::full(b.to_bytes())),
                    Err(e) => Response::builder()
                        .status(599)
                        .body(upstream::full(e.to_string()))
                        .unwrap(),
                }
            })
        }),
    )
    .await;
    let gw = Gateway::start(&h2_limit_config(up.addr));
    let mut raw = Raw::connect(gw.addr("public")).await;
    raw.send(b"POST /upload HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n64\r\n")
        .await;
    raw.send(&[b'x'; 100]).await;
    raw.send(b"\r\n").await;
    // Once the upstream has the request, the client vanishes.
    tokio::time::timeout(BOUND, called_rx.recv())
        .await
        .expect("the upstream never saw the request")
        .unwrap();
    drop(raw);
    // The route timeout is 1 s: within it plus slack the request is either
    // counted or dropped for good.
    let deadline = Instant::now() + Duration::from_secs(1) + SLACK;
    let mut m = metrics(&gw).await;
    while Instant::now() < deadline
        && ["1xx", "2xx", "3xx", "4xx", "5xx"]
            .iter()
            .all(|c| requests(&m, "main", c) == 0.0)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        m = metrics(&gw).await;
    }
    assert_eq!(
        requests(&m, "main", "5xx"),
        0.0,
        "a client abort was counted as a 5xx:\n{m}"
    );
    // Still healthy.
    let mut raw = Raw::connect(gw.addr("public")).await;
    raw.send(&chunked_request(2, 10)).await;
    assert_eq!(raw.response().await.status, 200);
}

// === 3. the demo upstream streams ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_upstream_streams_a_256_mib_upload() {
    const TOTAL: u64 = 256 << 20;
    const RSS_LIMIT_KIB: u64 = 96 * 1024;
    let gw = Gateway::spawn(&["run", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"]);
    let client = Client::builder(TokioExecutor::new()).build_http::<Zeros>();
    let req = Request::post(gw.url("public", "/demo/upload"))
        .body(Zeros {
            frame: Bytes::from(vec![0u8; 64 * 1024]),
            left: TOTAL,
        })
        .unwrap();
    let start = Instant::now();
    let (status, body) = tokio::time::timeout(Duration::from_secs(180), async {
        let resp = client.request(req).await.expect("upload failed");
        let status = resp.status();
        (status, resp.into_body().collect().await.unwrap().to_bytes())
    })
    .await
    .expect("upload did not finish in time");
    let (now, peak) = gw.rss_kib();
    eprintln!(
        "demo upload: {TOTAL} bytes in {:?}; meshgate RSS now {now} KiB, peak {peak} KiB",
        start.elapsed()
    );
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 200, "{text}");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["method"], "POST", "{v}");
    assert_eq!(v["body_bytes"], TOTAL, "{v}");
    assert!(peak > 0, "could not read /proc/{}/status", gw.pid());
    assert!(
        peak < RSS_LIMIT_KIB,
        "meshgate peak RSS {peak} KiB >= {RSS_LIMIT_KIB} KiB: the demo buffers uploads"
    );
}
