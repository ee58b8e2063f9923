//! The error model through the binary: each upstream failure becomes the
//! documented status and JSON body (`{"error", "status", "message",
//! "request_id"}`), carries the request id, and counts as a 5xx in /metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Gateway;
use common::client::Reply;
use common::metrics::{metrics, requests};
use common::raw::{RawUpstream, raw_upstream, read_head};
use common::upstream::{self, Proto, Upstream};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ROUTE_TIMEOUT: Duration = Duration::from_millis(300);
const SLACK: Duration = Duration::from_secs(3);

// === helpers ===

/// A port with nothing listening on it.
fn dead_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

struct Setup {
    gw: Gateway,
    _ok: Upstream,
    slow: Upstream,
    reset: RawUpstream,
    garbage: RawUpstream,
    midbody: RawUpstream,
}

async fn setup() -> Setup {
    let ok = upstream::echo("ok").await;
    let slow = upstream::start(
        Proto::H1,
        Arc::new(|_req: Request<Incoming>| {
            Box::pin(async {
                // Never answers: only the route timeout can end this request.
                std::future::pending::<()>().await;
                unreachable!()
            })
        }),
    )
    .await;
    let reset = raw_upstream(|mut s| async move {
        // Reads the request and closes without a word.
        read_head(&mut s).await;
    })
    .await;
    let garbage = raw_upstream(|mut s| async move {
        if read_head(&mut s).await {
            let _ = s.write_all(b"this is not http at all\r\n\r\n").await;
            let _ = s.shutdown().await;
        }
    })
    .await;
    let midbody = raw_upstream(|mut s| async move {
        if read_head(&mut s).await {
            // Promises 1000 bytes, sends 10, then dies.
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n0123456789")
                .await;
            let _ = s.shutdown().await;
        }
    })
    .await;
    let refused = dead_port();
    let mut config = String::from(
        r#"
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "public"
address = "127.0.0.1:0"
"#,
    );
    for (name, addr) in [
        ("ok", ok.addr),
        ("refused", refused),
        ("slow", slow.addr),
        ("reset", reset.addr),
        ("garbage", garbage.addr),
        ("midbody", midbody.addr),
    ] {
        config.push_str(&format!(
            r#"
[[routes]]
name = "{name}"
listener = "public"
match = {{ path_prefix = "/{name}" }}
cluster = "{name}"
timeout = "{}ms"

[[clusters]]
name = "{name}"
connect_timeout = "2s"
endpoints = [{{ address = "{addr}" }}]
"#,
            ROUTE_TIMEOUT.as_millis()
        ));
    }
    let gw = Gateway::start(&config);
    Setup {
        gw,
        _ok: ok,
        slow,
        reset,
        garbage,
        midbody,
    }
}

async fn get(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> Reply {
    common::client::get(gw.addr("public"), path, headers).await
}

/// Checks the JSON error contract and returns the request id.
fn assert_error(reply: &Reply, status: u16, code: &str) -> String {
    assert_eq!(reply.status.as_u16(), status, "body: {}", reply.text());
    assert_eq!(
        reply
            .headers
            .get("content-type")
            .map(|v| v.to_str().unwrap()),
        Some("application/json"),
        "error bodies are JSON"
    );
    let body = reply.json();
    assert_eq!(body["error"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    let message = body["message"].as_str().expect("message is a string");
    assert!(!message.is_empty(), "message is not empty: {body}");
    let id = body["request_id"]
        .as_str()
        .expect("request_id is a string")
        .to_owned();
    assert!(!id.is_empty(), "a request id is generated: {body}");
    let header = reply
        .headers
        .get("x-request-id")
        .expect("x-request-id response header")
        .to_str()
        .unwrap();
    assert_eq!(header, id, "body and header carry the same request id");
    id
}

// === tests ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_refused_is_502_connect_refused() {
    let s = setup().await;
    let reply = get(&s.gw, "/refused", &[]).await;
    assert_error(&reply, 502, "connect_refused");
    let m = metrics(&s.gw).await;
    assert_eq!(requests(&m, "refused", "5xx"), 1.0, "{m}");
    assert_eq!(requests(&m, "refused", "2xx"), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_upstream_is_504_upstream_timeout_at_the_route_timeout() {
    let s = setup().await;
    let start = Instant::now();
    let reply = get(&s.gw, "/slow", &[]).await;
    let took = start.elapsed();
    assert_error(&reply, 504, "upstream_timeout");
    assert!(
        took >= ROUTE_TIMEOUT.mul_f32(0.9),
        "504 after only {took:?}"
    );
    assert!(took < ROUTE_TIMEOUT + SLACK, "504 after {took:?}");
    assert_eq!(s.slow.hits(), 1, "the request did reach the upstream");
    let m = metrics(&s.gw).await;
    assert_eq!(requests(&m, "slow", "5xx"), 1.0, "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_closing_without_answer_is_502_upstream_reset() {
    let s = setup().await;
    let reply = get(&s.gw, "/reset", &[]).await;
    assert_error(&reply, 502, "upstream_reset");
    assert_eq!(
        s.reset.connections.load(Ordering::SeqCst),
        1,
        "not retried: the upstream may have acted on it"
    );
    let m = metrics(&s.gw).await;
    assert_eq!(requests(&m, "reset", "5xx"), 1.0, "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_answering_garbage_is_502_upstream_protocol_error() {
    let s = setup().await;
    let reply = get(&s.gw, "/garbage", &[]).await;
    assert_error(&reply, 502, "upstream_protocol_error");
    assert_eq!(s.garbage.connections.load(Ordering::SeqCst), 1);
    let m = metrics(&s.gw).await;
    assert_eq!(requests(&m, "garbage", "5xx"), 1.0, "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_request_id_is_echoed_in_error_bodies() {
    let s = setup().await;
    for path in ["/refused", "/slow", "/reset", "/garbage"] {
        let id = format!("req-{}", path.trim_start_matches('/'));
        let reply = get(&s.gw, path, &[("x-request-id", &id)]).await;
        assert!(reply.status.is_server_error(), "{path}: {}", reply.status);
        assert_eq!(reply.json()["request_id"], id.as_str(), "{path}");
        assert_eq!(reply.headers["x-request-id"], id.as_str(), "{path}");
    }
    // Generated ids differ from request to request.
    let a = assert_error(&get(&s.gw, "/refused", &[]).await, 502, "connect_refused");
    let b = assert_error(&get(&s.gw, "/refused", &[]).await, 502, "connect_refused");
    assert_ne!(a, b, "generated request ids must be unique");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_counts_as_5xx_and_successes_do_not() {
    let s = setup().await;
    let before = metrics(&s.gw).await;
    for route in ["ok", "refused", "slow", "reset", "garbage"] {
        assert_eq!(requests(&before, route, "5xx"), 0.0, "{route} starts at 0");
    }
    assert_eq!(get(&s.gw, "/ok", &[]).await.status, 200);
    for path in ["/refused", "/refused", "/slow", "/reset", "/garbage"] {
        assert!(get(&s.gw, path, &[]).await.status.is_server_error());
    }
    let m = metrics(&s.gw).await;
    assert_eq!(requests(&m, "ok", "2xx"), 1.0, "{m}");
    assert_eq!(requests(&m, "ok", "5xx"), 0.0);
    assert_eq!(requests(&m, "refused", "5xx"), 2.0);
    for route in ["slow", "reset", "garbage"] {
        assert_eq!(requests(&m, route, "5xx"), 1.0, "{route}");
        assert_eq!(requests(&m, route, "2xx"), 0.0, "{route}");
    }
    // And the gateway is still healthy after all that.
    assert_eq!(get(&s.gw, "/ok", &[]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_over_h2c_have_the_same_shape() {
    let s = setup().await;
    let req = Request::get(s.gw.url("public", "/refused"))
        .header("x-request-id", "h2-id")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let reply = common::client::send(&common::client::h2(), req).await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.json()["error"], "connect_refused");
    assert_eq!(reply.json()["request_id"], "h2-id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_with_curl() {
    let s = setup().await;
    let url = s.gw.url("public", "/reset");
    let (ok, out) = tokio::task::spawn_blocking(move || {
        common::curl(&["-H", "x-request-id: curl-1", "-w", "\n%{http_code}", &url])
    })
    .await
    .unwrap();
    assert!(ok, "curl failed: {out}");
    let (body, code) = out.rsplit_once('\n').unwrap();
    assert_eq!(code, "502");
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"], "upstream_reset");
    assert_eq!(body["request_id"], "curl-1");
}

/// An upstream that dies mid-body cannot be turned into an error status any
/// more once its head is forwarded; the client must see the exchange fail
/// (at the head, if meshgate had not flushed it yet, or in the body), never a
/// short body that looks complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_dying_mid_body_aborts_the_client_response() {
    let s = setup().await;
    let client = common::client::h1();
    let req = Request::get(s.gw.url("public", "/midbody"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(10), async {
        let resp = client.request(req).await.map_err(|e| e.to_string())?;
        assert_eq!(
            resp.status(),
            200,
            "only the upstream's own head may be forwarded"
        );
        resp.into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap();
    assert!(
        outcome.is_err(),
        "a truncated upstream body must not end cleanly downstream: got {outcome:?}"
    );
    assert_eq!(s.midbody.connections.load(Ordering::SeqCst), 1);
}

/// A response the client abandons halfway leaves unread bytes on the
/// upstream connection, which stays open: that connection must not go back
/// to the pool, or the next request would read the previous body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_abandoned_mid_body_is_not_pooled() {
    // 8 MiB cannot sit in socket buffers, so the upstream stays mid-body.
    let big = upstream::start(
        Proto::H1,
        Arc::new(|_req: Request<Incoming>| {
            Box::pin(async move { http::Response::new(upstream::full(vec![b'x'; 8 << 20])) })
        }),
    )
    .await;
    let gw = Gateway::start(&format!(
        r#"
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[routes]]
listener = "public"
cluster = "big"

[[clusters]]
name = "big"
endpoints = [{{ address = "{}" }}]
"#,
        big.addr
    ));
    let addr = gw.addr("public");
    {
        let mut raw = TcpStream::connect(addr).await.unwrap();
        raw.write_all(b"GET /big HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), raw.read(&mut head))
            .await
            .unwrap()
            .unwrap();
        assert!(
            head[..n].starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&head[..n])
        );
        // Drop the client connection with most of the body unread.
    }
    // Wait until meshgate has torn the abandoned exchange down.
    let admin = gw.addr("admin");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = common::client::get(admin, "/metrics", &[]).await.text();
        if m.contains("meshgate_downstream_connections_active{listener=\"public\"} 0") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the abandoned connection never closed:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reply = common::client::get(addr, "/small", &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body.len(),
        8 << 20,
        "the second response is whole and its own"
    );
    assert_eq!(
        big.connections(),
        2,
        "the half-read connection was not reused"
    );
}
