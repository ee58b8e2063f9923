//! Protocols through the real binary: HTTP/1.1 and h2c (prior knowledge) on
//! one downstream port, HTTP/1.1 and h2 upstreams, request bodies on every
//! path, and h2 upstream connection sharing under concurrency.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use common::client::{self, Reply};
use common::upstream::{self, Proto, Upstream};
use common::{Gateway, curl};
use http::{Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::Response;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::Value;

type C = Client<HttpConnector, Full<Bytes>>;

/// One listener; `/echo` goes to cluster `echo` and `/body` to cluster `body`,
/// both of protocol `proto` (`http1` or `h2`).
fn config(proto: &str, echo: &Upstream, body: &Upstream) -> String {
    format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[routes]]
listener = "public"
match = {{ path_prefix = "/echo" }}
cluster = "echo"

[[routes]]
listener = "public"
match = {{ path_prefix = "/body" }}
cluster = "body"

[[clusters]]
name = "echo"
protocol = "{proto}"
endpoints = [{{ address = "{}" }}]

[[clusters]]
name = "body"
protocol = "{proto}"
endpoints = [{{ address = "{}" }}]
"#,
        echo.addr, body.addr
    )
}

/// An upstream that answers with the request body it received, and the
/// request's version in `x-upstream-version`.
async fn body_echo(proto: Proto) -> Upstream {
    upstream::start(
        proto,
        Arc::new(|req: hyper::Request<hyper::body::Incoming>| {
            Box::pin(async move {
                let version = format!("{:?}", req.version());
                let body = match req.into_body().collect().await {
                    Ok(b) => b.to_bytes(),
                    Err(e) => Bytes::from(format!("body error: {e}")),
                };
                Response::builder()
                    .header("x-upstream-version", version)
                    .header("x-upstream-len", body.len().to_string())
                    .body(upstream::full(body))
                    .unwrap()
            })
        }),
    )
    .await
}

/// Sends a request and returns the response's version with the reply.
async fn send(c: &C, req: Request<Full<Bytes>>) -> (Version, Reply) {
    let reply = client::send(c, req).await;
    (reply.version, reply)
}

async fn get(c: &C, addr: SocketAddr, path: &str) -> (Version, Reply) {
    send(
        c,
        Request::get(format!("http://{addr}{path}"))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await
}

async fn post(c: &C, addr: SocketAddr, path: &str, body: Bytes) -> (Version, Reply) {
    send(
        c,
        Request::post(format!("http://{addr}{path}"))
            .body(Full::new(body))
            .unwrap(),
    )
    .await
}

fn echoed(r: &Reply) -> Value {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

/// Deterministic pseudo-random bytes (every byte value occurs).
fn payload(len: usize, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

/// `curl ... -w '\n%{http_version}' URL`: (ok, body, http version).
fn curl_with_version(args: &[&str]) -> (bool, String, String) {
    let mut all = args.to_vec();
    all.extend_from_slice(&["-w", "\n%{http_version}"]);
    let (ok, out) = curl(&all);
    let (body, version) = out.rsplit_once('\n').unwrap_or((&out, ""));
    (ok, body.to_owned(), version.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_prior_knowledge_from_hyper_and_curl() {
    let (echo, body) = (upstream::echo("h1-up").await, body_echo(Proto::H1).await);
    let g = Gateway::start(&config("http1", &echo, &body));
    let addr = g.addr("public");

    let (version, r) = get(&client::h2(), addr, "/echo/hyper?x=1").await;
    assert_eq!(
        version,
        Version::HTTP_2,
        "the client spoke h2c and meshgate answered in HTTP/2"
    );
    let v = echoed(&r);
    assert_eq!(v["instance"], "h1-up");
    assert_eq!(v["path"], "/echo/hyper");
    assert_eq!(v["query"], "x=1");
    assert_eq!(
        v["version"], "HTTP/1.1",
        "the cluster speaks HTTP/1.1 upstream"
    );
    // An h2 request carries the host as :authority; the HTTP/1.1 upstream needs Host.
    assert_eq!(v["headers"]["host"], addr.to_string());
    assert_eq!(v["headers"]["x-forwarded-host"], addr.to_string());
    assert_eq!(v["headers"]["x-forwarded-proto"], "http");

    let url = g.url("public", "/echo/curl");
    let (ok, out, version) = curl_with_version(&["--http2-prior-knowledge", &url]);
    assert!(ok, "curl failed: {out}");
    assert_eq!(version, "2", "curl saw HTTP version {version}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["instance"], "h1-up");
    assert_eq!(v["path"], "/echo/curl");
    assert_eq!(echo.hits(), 2, "the upstream saw both requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_and_h2c_share_one_port() {
    let (echo, body) = (upstream::echo("up").await, body_echo(Proto::H1).await);
    let g = Gateway::start(&config("http1", &echo, &body));
    let addr = g.addr("public");
    let (h1, h2) = (client::h1(), client::h2());
    // Interleaved on the same listener, each client keeping its connection.
    for i in 0..3 {
        let (v1, r1) = get(&h1, addr, &format!("/echo/one/{i}")).await;
        let (v2, r2) = get(&h2, addr, &format!("/echo/two/{i}")).await;
        assert_eq!(v1, Version::HTTP_11);
        assert_eq!(v2, Version::HTTP_2);
        assert_eq!(echoed(&r1)["path"], format!("/echo/one/{i}"));
        assert_eq!(echoed(&r2)["path"], format!("/echo/two/{i}"));
    }
    let url = g.url("public", "/echo/c");
    let (ok, _, v) = curl_with_version(&["--http1.1", &url]);
    assert!(ok && v == "1.1", "curl --http1.1: ok={ok} version={v}");
    let (ok, _, v) = curl_with_version(&["--http2-prior-knowledge", &url]);
    assert!(
        ok && v == "2",
        "curl --http2-prior-knowledge: ok={ok} version={v}"
    );
    assert_eq!(echo.hits(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2_upstream_is_reached_from_http1_and_h2c_clients() {
    let (echo, body) = (
        upstream::echo_proto("h2-up", Proto::H2).await,
        body_echo(Proto::H2).await,
    );
    let g = Gateway::start(&config("h2", &echo, &body));
    let addr = g.addr("public");

    let (version, r) = get(&client::h1(), addr, "/echo/from-h1?a=b").await;
    assert_eq!(
        version,
        Version::HTTP_11,
        "the client keeps its own protocol"
    );
    let v = echoed(&r);
    assert_eq!(v["instance"], "h2-up");
    assert_eq!(v["version"], "HTTP/2.0", "meshgate spoke h2 upstream");
    assert_eq!(v["path"], "/echo/from-h1");
    assert_eq!(v["query"], "a=b");
    assert_eq!(v["headers"]["x-forwarded-host"], addr.to_string());

    let (version, r) = get(&client::h2(), addr, "/echo/from-h2c").await;
    assert_eq!(version, Version::HTTP_2);
    let v = echoed(&r);
    assert_eq!(v["version"], "HTTP/2.0");
    assert_eq!(v["path"], "/echo/from-h2c");

    let url = g.url("public", "/echo/curl");
    let (ok, out, version) = curl_with_version(&[&url]);
    assert!(
        ok && version == "1.1",
        "curl: ok={ok} version={version} {out}"
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["version"], "HTTP/2.0");
    assert_eq!(echo.hits(), 3);
}

/// 50 requests at once through a cold gateway to one h2 endpoint: all
/// succeed, over one shared upstream connection (at most two tolerated).
async fn concurrent_over_h2_upstream(client: C, label: &str) {
    let (echo, body) = (
        upstream::echo_proto("h2-up", Proto::H2).await,
        body_echo(Proto::H2).await,
    );
    let g = Gateway::start(&config("h2", &echo, &body));
    let addr = g.addr("public");
    let mut tasks = Vec::new();
    for i in 0..50 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            let (_, r) = get(&c, addr, &format!("/echo/{i}")).await;
            (i, r)
        }));
    }
    for t in tasks {
        let (i, r) = t.await.unwrap();
        let v = echoed(&r);
        assert_eq!(v["path"], format!("/echo/{i}"));
        assert_eq!(v["version"], "HTTP/2.0");
    }
    assert_eq!(echo.hits(), 50);
    eprintln!(
        "{label}: 50 concurrent requests used {} upstream h2 connection(s)",
        echo.connections()
    );
    assert!(
        echo.connections() <= 2,
        "{label}: {} upstream connections for 50 requests",
        echo.connections()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_h2c_requests_share_the_h2_upstream_connection() {
    concurrent_over_h2_upstream(client::h2(), "h2c clients").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_http1_requests_share_the_h2_upstream_connection() {
    concurrent_over_h2_upstream(client::h1(), "http/1.1 clients").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_on_a_warm_h2_upstream_reuse_its_connection() {
    let (echo, body) = (
        upstream::echo_proto("h2-up", Proto::H2).await,
        body_echo(Proto::H2).await,
    );
    let g = Gateway::start(&config("h2", &echo, &body));
    let addr = g.addr("public");
    let (_, r) = get(&client::h1(), addr, "/echo/warm").await;
    echoed(&r);
    let c = client::h2();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            get(&c, addr, &format!("/echo/{i}")).await.1
        }));
    }
    for t in tasks {
        assert_eq!(echoed(&t.await.unwrap())["version"], "HTTP/2.0");
    }
    assert_eq!(echo.hits(), 51);
    assert_eq!(
        echo.connections(),
        1,
        "a warm h2 connection carries every request"
    );
}

async fn bodies_arrive_intact(proto: &str, upstream_proto: Proto) {
    let (echo, body) = (
        upstream::echo_proto("e", upstream_proto).await,
        body_echo(upstream_proto).await,
    );
    let g = Gateway::start(&config(proto, &echo, &body));
    let addr = g.addr("public");
    let want_version = if upstream_proto == Proto::H2 {
        "HTTP/2.0"
    } else {
        "HTTP/1.1"
    };
    for (name, c) in [("http/1.1", client::h1()), ("h2c", client::h2())] {
        for (i, len) in [0usize, 1, 1000, 70_000, 1 << 20].into_iter().enumerate() {
            let sent = payload(len, i as u64 + 1);
            let (_, r) = post(&c, addr, "/body", sent.clone()).await;
            assert_eq!(r.status, StatusCode::OK, "{name} {len} bytes: {}", r.text());
            assert_eq!(r.headers["x-upstream-version"], want_version);
            assert_eq!(
                r.headers["x-upstream-len"],
                len.to_string(),
                "{name}: upstream got a different length"
            );
            assert!(
                r.body == sent,
                "{name}: {len}-byte body changed on the way ({} bytes back)",
                r.body.len()
            );
        }
    }
    // A chunked HTTP/1.1 upload (no content-length) from curl.
    let file = tempfile::NamedTempFile::new().unwrap();
    let sent = payload(300_000, 99);
    std::fs::write(file.path(), &sent).unwrap();
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "--http1.1",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
        ])
        .arg(format!("@{}", file.path().display()))
        .arg(g.url("public", "/body"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout == sent.as_ref(),
        "chunked upload changed ({} bytes back)",
        out.stdout.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_arrive_intact_through_an_http1_upstream() {
    bodies_arrive_intact("http1", Proto::H1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_arrive_intact_through_an_h2_upstream() {
    bodies_arrive_intact("h2", Proto::H2).await;
}

/// An h2 upstream that answers with the URI it received (scheme, :authority,
/// path) and whether a `host` header came along too.
async fn authority_echo() -> Upstream {
    upstream::start(
        Proto::H2,
        Arc::new(|req: hyper::Request<hyper::body::Incoming>| {
            Box::pin(async move {
                let body = serde_json::json!({
                    "uri": req.uri().to_string(),
                    "host_header": req.headers().get("host").map(|h| h.to_str().unwrap().to_owned()),
                });
                Response::builder().body(upstream::full(body.to_string())).unwrap()
            })
        }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2_upstream_gets_the_client_host_or_the_rewrite_as_authority() {
    let up = authority_echo().await;
    let config = format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[routes]]
listener = "public"
match = {{ path_prefix = "/rw" }}
cluster = "up"
host_rewrite = "backend.internal:9000"

[[routes]]
listener = "public"
cluster = "up"

[[clusters]]
name = "up"
protocol = "h2"
endpoints = [{{ address = "{}" }}]
"#,
        up.addr
    );
    let g = Gateway::start(&config);
    let addr = g.addr("public");
    let uri = |r: &Reply| {
        let v = echoed(r);
        assert_eq!(
            v["host_header"],
            Value::Null,
            "h2 carries the host as :authority only"
        );
        v["uri"].as_str().unwrap().to_owned()
    };
    let r = client::get(addr, "/rw/x?q=1", &[("host", "www.example.com")]).await;
    assert_eq!(uri(&r), "http://backend.internal:9000/rw/x?q=1");
    let (_, r) = get(&client::h2(), addr, "/rw/x?q=1").await;
    assert_eq!(uri(&r), "http://backend.internal:9000/rw/x?q=1");
    let r = client::get(addr, "/plain", &[("host", "www.example.com")]).await;
    assert_eq!(
        uri(&r),
        "http://www.example.com/plain",
        "the client's Host becomes :authority"
    );
    let (_, r) = get(&client::h2(), addr, "/plain").await;
    assert_eq!(
        uri(&r),
        format!("http://{addr}/plain"),
        "the client's :authority is passed on"
    );
}

#[test]
fn an_h2c_upgrade_request_is_served_over_http1() {
    // Only prior knowledge is supported: `curl --http2` asks to upgrade with
    // `Upgrade: h2c`, and must get a normal HTTP/1.1 answer, not a hang or an error.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (echo, body) =
        rt.block_on(async { (upstream::echo("up").await, body_echo(Proto::H1).await) });
    let g = Gateway::start(&config("http1", &echo, &body));
    let (ok, out, version) = curl_with_version(&["--http2", &g.url("public", "/echo/up")]);
    assert!(ok, "{out}");
    assert_eq!(version, "1.1");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["path"], "/echo/up");
    let h = v["headers"].as_object().unwrap();
    for name in ["upgrade", "http2-settings", "connection"] {
        assert!(!h.contains_key(name), "{name} reached the upstream: {h:?}");
    }
}
