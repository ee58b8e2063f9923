//! Hardening regressions through the real binary, requests and responses:
//!
//! 1. empty-body upstream responses (HEAD, 204, 304, `content-length: 0`)
//!    keep the upstream connection alive for reuse;
//! 2. `Host` validation (RFC 9112 §3.2);
//! 3. `Connection` cannot strip `Host` or `x-request-id` on the way upstream;
//! 4. `direct_response` rejects 1xx statuses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::sync::Arc;

use bytes::Bytes;
use common::Gateway;
use common::metrics::created_reused;
use common::raw::{Raw, assert_error};
use common::upstream::{self, Proto, Upstream};
use common::{run_binary_in, simple_config};
use http::Request;
use hyper::Response;
use hyper::body::Incoming;

// === 1. empty-body responses and upstream keep-alive ===

/// An upstream answering by path: `/head` (to HEAD) with `content-length: 5`
/// and no body, `/no-content` 204, `/not-modified` 304, `/empty` a 200 with
/// `content-length: 0`.
async fn empty_body_upstream() -> Upstream {
    upstream::start(
        Proto::H1,
        Arc::new(|req: Request<Incoming>| {
            Box::pin(async move {
                let path = req.uri().path().to_owned();
                let b = Response::builder();
                let b = if path.starts_with("/head") {
                    b.status(200)
                        .header("content-length", "5")
                        .header("content-type", "text/plain")
                } else if path.starts_with("/no-content") {
                    b.status(204)
                } else if path.starts_with("/not-modified") {
                    b.status(304).header("etag", "\"v1\"")
                } else {
                    b.status(200)
                };
                b.body(upstream::full(Bytes::new())).unwrap()
            })
        }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_body_responses_keep_the_upstream_connection() {
    const N: usize = 10;
    // (cluster and path prefix, method, expected status)
    let kinds = [
        ("head", "HEAD", 200),
        ("no-content", "GET", 204),
        ("not-modified", "GET", 304),
        ("empty", "GET", 200),
    ];
    let mut ups = Vec::new();
    for _ in &kinds {
        ups.push(empty_body_upstream().await);
    }

    // Sanity: the upstream really sends a HEAD response that announces 5
    // bytes and sends none.
    let mut raw = Raw::connect(ups[0].addr).await;
    raw.send(b"HEAD /head HTTP/1.1\r\nhost: x\r\n\r\n").await;
    let resp = raw.response_to(true).await;
    assert_eq!(resp.header("content-length"), Some("5"), "{resp:?}");
    drop(raw);
    let direct_probe_connections = 1;

    let mut config = String::from(
        r#"
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "public"
address = "127.0.0.1:0"
"#,
    );
    for ((name, _, _), up) in kinds.iter().zip(&ups) {
        config.push_str(&format!(
            r#"
[[routes]]
name = "{name}"
listener = "public"
match = {{ path_prefix = "/{name}" }}
cluster = "{name}"
timeout = "5s"

[[clusters]]
name = "{name}"
endpoints = [{{ address = "{}" }}]
"#,
            up.addr
        ));
    }
    let gw = Gateway::start(&config);

    // Every request of every kind on one client connection.
    let mut raw = Raw::connect(gw.addr("public")).await;
    for (name, method, status) in kinds {
        for i in 0..N {
            raw.send(
                format!(
                    "{method} /{name}/{i} HTTP/1.1\r\nhost: x\r\nif-none-match: \"v1\"\r\n\r\n"
                )
                .as_bytes(),
            )
            .await;
            let resp = raw.response_to(method == "HEAD").await;
            assert_eq!(resp.status, status, "{name} #{i}: {resp:?}");
        }
    }
    assert!(
        raw.buf.is_empty(),
        "unexpected bytes after the responses: {:?}",
        String::from_utf8_lossy(&raw.buf)
    );

    let mut failures = Vec::new();
    for ((name, _, _), up) in kinds.iter().zip(&ups) {
        let probes = if *name == "head" {
            direct_probe_connections
        } else {
            0
        };
        let hits = up.hits() - probes;
        let conns = up.connections() - probes;
        let (created, reused) = created_reused(&gw, name).await;
        if hits != N || conns != 1 || (created, reused) != (1.0, (N - 1) as f64) {
            failures.push(format!(
                "{name}: {hits} requests on {conns} upstream connections, \
                 metrics created={created} reused={reused} (want {N} on 1, created=1 reused={})",
                N - 1
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "empty-body responses must leave the upstream connection reusable:\n{}",
        failures.join("\n")
    );
}

// === 2. Host validation ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_header_is_validated() {
    let up = upstream::echo("up").await;
    let gw = Gateway::start(&simple_config(up.addr, "", ""));
    let addr = gw.addr("public");
    let bad: [(&str, &[u8]); 3] = [
        (
            "two different Host headers",
            b"GET /two HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
        ),
        (
            "two identical Host headers",
            b"GET /same HTTP/1.1\r\nHost: a.example\r\nHost: a.example\r\n\r\n",
        ),
        ("HTTP/1.1 without Host", b"GET /none HTTP/1.1\r\n\r\n"),
    ];
    for (what, request) in bad {
        let mut raw = Raw::connect(addr).await;
        raw.send(request).await;
        let resp = raw.response().await;
        assert_eq!(resp.status, 400, "{what}: {}", resp.text());
        assert_error(&resp, 400, "bad_request");
        assert_eq!(up.hits(), 0, "{what}: the upstream saw the request");
    }

    // HTTP/1.0 has no Host requirement.
    let mut raw = Raw::connect(addr).await;
    raw.send(b"GET /old HTTP/1.0\r\n\r\n").await;
    let resp = raw.response().await;
    assert_eq!(resp.status, 200, "HTTP/1.0 without Host: {}", resp.text());
    assert_eq!(resp.json()["path"], "/old");
    assert_eq!(up.hits(), 1);

    // And one Host on HTTP/1.1 is of course fine.
    let mut raw = Raw::connect(addr).await;
    raw.send(b"GET /one HTTP/1.1\r\nHost: a.example\r\n\r\n")
        .await;
    let resp = raw.response().await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["headers"]["host"], "a.example");
    assert_eq!(up.hits(), 2);
}

// === 3. Connection cannot strip Host or x-request-id ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_header_cannot_strip_host_or_request_id() {
    let up = upstream::echo("up").await;
    let gw = Gateway::start(&simple_config(up.addr, "", ""));
    let addr = gw.addr("public");

    let mut raw = Raw::connect(addr).await;
    raw.send(
        b"GET /conn HTTP/1.1\r\nHost: client.example:8443\r\n\
          Connection: host, x-request-id, x-secret\r\n\
          x-request-id: abc\r\nx-secret: s\r\nx-keep: k\r\n\r\n",
    )
    .await;
    let resp = raw.response().await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let v = resp.json();
    let h = &v["headers"];
    assert_eq!(
        h["host"], "client.example:8443",
        "Host reaches the upstream: {v}"
    );
    assert_eq!(
        h["x-request-id"], "abc",
        "the client's request id is kept: {v}"
    );
    assert_eq!(h["x-forwarded-host"], "client.example:8443", "{v}");
    assert!(
        h.get("x-secret").is_none(),
        "a named hop-by-hop header is still removed: {v}"
    );
    assert!(h.get("connection").is_none(), "{v}");
    assert_eq!(h["x-keep"], "k", "{v}");

    // Without a client id, meshgate's own id still reaches the upstream.
    let mut raw = Raw::connect(addr).await;
    raw.send(b"GET /conn2 HTTP/1.1\r\nHost: c.example\r\nConnection: x-request-id, host\r\n\r\n")
        .await;
    let resp = raw.response().await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let v = resp.json();
    assert_eq!(v["headers"]["host"], "c.example", "{v}");
    let id = v["headers"]["x-request-id"]
        .as_str()
        .unwrap_or_else(|| panic!("no generated x-request-id upstream: {v}"));
    assert!(!id.is_empty(), "{v}");
}

// === 4. direct_response statuses ===

#[test]
fn direct_response_rejects_informational_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let config = |status: u16| {
        format!(
            r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[routes]]
listener = "public"
direct_response = {{ status = {status}, body = "x" }}
"#
        )
    };
    for status in [100u16, 101, 103, 199] {
        let name = format!("direct_{status}.toml");
        std::fs::write(dir.path().join(&name), config(status)).unwrap();
        let out = run_binary_in(dir.path(), &["validate", &name]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "direct_response status {status} accepted: {out:?}"
        );
        assert!(
            stderr.contains("routes[0].direct_response.status"),
            "{status}: the error names the field: {stderr}"
        );
        assert!(
            stderr.contains("200") && stderr.contains("599"),
            "{status}: the error names the valid range 200..=599: {stderr}"
        );
    }
    for status in [200u16, 204, 599] {
        let name = format!("direct_{status}.toml");
        std::fs::write(dir.path().join(&name), config(status)).unwrap();
        let out = run_binary_in(dir.path(), &["validate", &name]);
        assert!(
            out.status.success(),
            "direct_response status {status} rejected: {out:?}"
        );
    }
}
