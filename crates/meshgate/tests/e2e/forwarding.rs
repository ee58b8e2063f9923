//! The headers meshgate adds and strips on the way through: X-Forwarded-For
//! (joined across repeated lines), -Proto and -Host, the request id, `Host`
//! for absolute-form targets, and hop-by-hop headers in both directions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use bytes::Bytes;
use common::Gateway;
use common::client;
use common::routes::{LISTENER, call, cluster, direct_route, echoed, is_uuid_v4, proxy_route};
use common::upstream;
use http::Request;
use http_body_util::Full;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_sees_forwarded_headers_request_id_and_the_original_host() {
    let up = upstream::echo("backend").await;
    let config = format!(
        "{LISTENER}{}{}",
        proxy_route("all", "", "backend", ""),
        cluster("backend", &up)
    );
    let g = Gateway::start(&config);
    let addr = g.addr("public");
    let c = client::h1();

    // A fresh request: everything generated.
    let r = call(
        &c,
        addr,
        "GET",
        "/a?b=c",
        &[("host", "app.example.com:1234")],
    )
    .await;
    let v = echoed(&r, "backend");
    let h = &v["headers"];
    assert_eq!(v["path"], "/a");
    assert_eq!(v["query"], "b=c");
    assert_eq!(h["host"], "app.example.com:1234", "Host is kept by default");
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "app.example.com:1234");
    let id = h["x-request-id"].as_str().expect("x-request-id added");
    assert!(is_uuid_v4(id), "generated x-request-id {id:?} is a UUID v4");

    let r = call(&c, addr, "GET", "/a", &[]).await;
    let id2 = echoed(&r, "backend")["headers"]["x-request-id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        is_uuid_v4(&id2) && id2 != id,
        "each request gets its own id: {id} {id2}"
    );

    // A request that already went through a proxy.
    let r = call(
        &c,
        addr,
        "GET",
        "/a",
        &[
            ("x-forwarded-for", "203.0.113.7, 10.1.2.3"),
            ("x-request-id", "abc-123"),
            ("host", "h.example"),
        ],
    )
    .await;
    let v = echoed(&r, "backend");
    let h = &v["headers"];
    assert_eq!(
        h["x-forwarded-for"], "203.0.113.7, 10.1.2.3, 127.0.0.1",
        "the client is appended"
    );
    assert_eq!(
        h["x-request-id"], "abc-123",
        "a client's request id is preserved"
    );
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["host"], "h.example");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_headers_are_stripped_in_both_directions() {
    let up = upstream::echo("backend").await;
    let config = format!(
        "{LISTENER}{}{}",
        proxy_route("all", "", "backend", ""),
        cluster("backend", &up)
    );
    let g = Gateway::start(&config);
    let addr = g.addr("public");

    let req = Request::get("/hop")
        .header("host", "hop.example")
        .header("connection", "x-secret")
        .header("x-secret", "1")
        .header("keep-alive", "timeout=5")
        .header("proxy-connection", "keep-alive")
        .header("te", "trailers")
        .header("x-end-to-end", "kept")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = client::send_fresh(tokio::net::TcpStream::connect(addr), req).await;
    let v = echoed(&r, "backend");
    let h = v["headers"].as_object().unwrap();
    for name in ["connection", "x-secret", "keep-alive", "proxy-connection"] {
        assert!(!h.contains_key(name), "{name} reached the upstream: {h:?}");
    }
    assert_eq!(
        h.get("te").and_then(Value::as_str),
        Some("trailers"),
        "TE: trailers survives: {h:?}"
    );
    assert_eq!(h.get("x-end-to-end").and_then(Value::as_str), Some("kept"));

    // The upstream answered with `connection: x-hop` and `x-hop: ...`.
    assert!(
        r.headers.get("x-hop").is_none(),
        "x-hop reached the client: {:?}",
        r.headers
    );
    for v in r.headers.get_all("connection") {
        assert!(
            !v.to_str().unwrap().contains("x-hop"),
            "connection: {v:?} reached the client"
        );
    }
    assert_eq!(
        r.headers["content-type"], "application/json",
        "end-to-end response headers are kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_for_joins_every_incoming_line() {
    let up = upstream::echo("backend").await;
    let config = format!(
        "{LISTENER}{}{}",
        proxy_route("all", "", "backend", ""),
        cluster("backend", &up)
    );
    let g = Gateway::start(&config);
    // Two field lines mean the same as one comma-joined line (RFC 9110 §5.3).
    let req = Request::get("/x")
        .header("host", "h.example")
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-forwarded-for", "10.1.2.3")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = client::send_fresh(tokio::net::TcpStream::connect(g.addr("public")), req).await;
    let v = echoed(&r, "backend");
    assert_eq!(
        v["headers"]["x-forwarded-for"],
        "203.0.113.7, 10.1.2.3, 127.0.0.1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absolute_form_request_is_forwarded_with_the_target_host() {
    let up = upstream::echo("backend").await;
    let config = format!(
        "{LISTENER}{}{}{}",
        proxy_route("api", r#"host = "api.example.com""#, "backend", ""),
        direct_route("other", ""),
        cluster("backend", &up)
    );
    let g = Gateway::start(&config);
    // RFC 9112 §3.2.2: the target's host wins over the Host header, for the
    // routing decision and for what the upstream is told alike.
    let req = Request::get("http://api.example.com/abs?q=1")
        .header("host", "other.example")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = client::send_fresh(tokio::net::TcpStream::connect(g.addr("public")), req).await;
    let v = echoed(&r, "backend");
    assert_eq!(v["path"], "/abs");
    assert_eq!(v["headers"]["host"], "api.example.com");
    assert_eq!(v["headers"]["x-forwarded-host"], "api.example.com");
}
