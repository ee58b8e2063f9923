//! Hardening regressions through the real binary:
//!
//! 1. protocol detection does not spin on a partial h2 preface;
//! 2. empty-body upstream responses (HEAD, 204, 304, `content-length: 0`)
//!    keep the upstream connection alive for reuse;
//! 3. an early response during a slow upload is never followed by a 408;
//! 4. a chunked body over the limit to an h2 cluster is a 413, not a 502;
//! 5. `Host` validation (RFC 9112 §3.2);
//! 6. `Connection` cannot strip `Host` or `x-request-id` on the way upstream;
//! 7. CONNECT and WebSocket upgrades are a clear 501, `Upgrade: h2c` is served;
//! 8. the demo upstream streams uploads instead of buffering them;
//! 9. `direct_response` rejects 1xx statuses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::pin::Pin;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Gateway;
use common::upstream::{self, Proto, Upstream};
use http::Request;
use http_body_util::BodyExt;
use hyper::Response;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bound on any single wait for the gateway that is not a timeout under test.
const BOUND: Duration = Duration::from_secs(10);
/// Generous allowance for scheduling on a loaded machine when asserting that
/// a timeout fired.
const SLACK: Duration = Duration::from_secs(3);

// === helpers: raw HTTP/1.x client ===

/// One HTTP/1.x response read off a raw socket.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// How a connection ended when read to the end.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Orderly close (FIN).
    Eof,
    /// Connection reset.
    Reset,
}

/// A raw TCP client speaking just enough HTTP/1.x to check the gateway.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> Raw {
        let stream = tokio::time::timeout(BOUND, TcpStream::connect(addr))
            .await
            .unwrap()
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads more bytes into the buffer; 0 on EOF.
    async fn fill(&mut self) -> std::io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Reads one complete response to a non-HEAD request.
    async fn response(&mut self) -> RawResponse {
        self.response_to(false).await
    }

    /// Reads one complete response (content-length, chunked or
    /// close-delimited); a response to HEAD has no body whatever its headers.
    async fn response_to(&mut self, head: bool) -> RawResponse {
        tokio::time::timeout(BOUND, self.response_inner(head))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no complete response in time; have {:?}",
                    String::from_utf8_lossy(&self.buf)
                )
            })
    }

    async fn response_inner(&mut self, head: bool) -> RawResponse {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            let n = self
                .fill()
                .await
                .expect("read failed before a response head");
            assert!(
                n > 0,
                "EOF before a response head; got {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        };
        let (status, headers) = parse_head(&self.buf[..head_end]);
        self.buf.drain(..head_end);
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let body = if head || status == 204 || status == 304 {
            Vec::new()
        } else if let Some(len) = get("content-length") {
            let len: usize = len.parse().unwrap();
            while self.buf.len() < len {
                assert!(self.fill().await.unwrap() > 0, "EOF inside a body");
            }
            self.buf.drain(..len).collect()
        } else if get("transfer-encoding").is_some_and(|te| te.contains("chunked")) {
            let mut body = Vec::new();
            loop {
                let line_end = loop {
                    if let Some(i) = find(&self.buf, b"\r\n") {
                        break i;
                    }
                    assert!(self.fill().await.unwrap() > 0, "EOF inside a chunk size");
                };
                let size_text = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
                let size =
                    usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
                while self.buf.len() < line_end + 2 + size + 2 {
                    assert!(self.fill().await.unwrap() > 0, "EOF inside a chunk");
                }
                body.extend_from_slice(&self.buf[line_end + 2..line_end + 2 + size]);
                self.buf.drain(..line_end + 2 + size + 2);
                if size == 0 {
                    break body;
                }
            }
        } else {
            while self.fill().await.unwrap_or(0) > 0 {}
            std::mem::take(&mut self.buf)
        };
        RawResponse {
            status,
            headers,
            body,
        }
    }

    /// Reads until the peer closes or `within` passes. Returns the bytes read
    /// (including anything already buffered), how it ended (None: still
    /// open), and when.
    async fn read_to_close(&mut self, within: Duration) -> (Vec<u8>, Option<End>, Instant) {
        read_to_close(&mut self.stream, std::mem::take(&mut self.buf), within).await
    }
}

async fn read_to_close<R: AsyncReadExt + Unpin>(
    stream: &mut R,
    mut got: Vec<u8>,
    within: Duration,
) -> (Vec<u8>, Option<End>, Instant) {
    let deadline = tokio::time::Instant::now() + within;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => return (got, None, Instant::now()),
            Ok(Ok(0)) => return (got, Some(End::Eof), Instant::now()),
            Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (got, Some(End::Reset), Instant::now());
            }
            Ok(Err(e)) => panic!("read failed: {e}"),
        }
    }
}

/// Parses a response head (status line and headers, ending in CRLF CRLF).
fn parse_head(head: &[u8]) -> (u16, Vec<(String, String)>) {
    let head = String::from_utf8_lossy(head).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    assert!(
        status_line.starts_with("HTTP/1.1 ") || status_line.starts_with("HTTP/1.0 "),
        "bad status line {status_line:?}"
    );
    let status: u16 = status_line[9..12].parse().unwrap();
    let headers = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    (status, headers)
}

/// Splits a byte stream of complete responses that all carry a
/// content-length (or have no body) into (status, body) pairs.
fn split_responses(mut bytes: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let end = find(bytes, b"\r\n\r\n").unwrap_or_else(|| {
            panic!(
                "trailing bytes are not a response head: {:?}",
                String::from_utf8_lossy(bytes)
            )
        }) + 4;
        let (status, headers) = parse_head(&bytes[..end]);
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        assert!(
            bytes.len() >= end + len,
            "truncated response body: {:?}",
            String::from_utf8_lossy(bytes)
        );
        out.push((status, bytes[end..end + len].to_vec()));
        bytes = &bytes[end + len..];
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

// === helpers: upstreams, metrics, process ===

/// An upstream that reads the whole request body and sends it back, with
/// its length in `x-body-len`; 599 if the body fails.
async fn body_echo(proto: Proto) -> Upstream {
    upstream::start(
        proto,
        Arc::new(|req: Request<Incoming>| {
            Box::pin(async move {
                match req.into_body().collect().await {
                    Ok(body) => {
                        let body = body.to_bytes();
                        Response::builder()
                            .header("x-body-len", body.len().to_string())
                            .body(upstream::full(body))
                            .unwrap()
                    }
                    Err(e) => Response::builder()
                        .status(599)
                        .body(upstream::full(e.to_string()))
                        .unwrap(),
                }
            })
        }),
    )
    .await
}

async fn metrics(gw: &Gateway) -> String {
    let reply = common::client::get(gw.addr("admin"), "/metrics", &[]).await;
    assert_eq!(reply.status, 200);
    reply.text()
}

/// The value of the sample `name{labels...}` (every given label must match).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
        if n != name {
            return None;
        }
        let rest = rest.strip_suffix('}')?;
        let all = labels
            .iter()
            .all(|(k, v)| rest.split(',').any(|kv| kv == format!("{k}=\"{v}\"")));
        if all { value.parse().ok() } else { None }
    })
}

/// `meshgate_http_requests_total` for a route and status class (0 if absent).
fn requests(text: &str, route: &str, class: &str) -> f64 {
    sample(
        text,
        "meshgate_http_requests_total",
        &[("route", route), ("status_class", class)],
    )
    .unwrap_or(0.0)
}

/// Upstream connections (created, reused) of a cluster.
async fn created_reused(gw: &Gateway, cluster: &str) -> (f64, f64) {
    let m = metrics(gw).await;
    let get = |name: &str| {
        sample(&m, name, &[("cluster", cluster)])
            .unwrap_or_else(|| panic!("no {name}{{cluster={cluster:?}}} in\n{m}"))
    };
    (
        get("meshgate_upstream_connections_created_total"),
        get("meshgate_upstream_connections_reused_total"),
    )
}

/// CPU time (user + system) the process has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name may contain spaces; the fields after it start at
    // field 3 (state), so utime (field 14) and stime (15) are at 11 and 12.
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second() as f64)
}

fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// Polls `cond` every 10 ms until it holds or `BOUND` passes.
async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + BOUND;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn assert_408(bytes: &[u8], what: &str) {
    let text = String::from_utf8_lossy(bytes);
    assert!(
        text.starts_with("HTTP/1.1 408"),
        "{what}: expected a 408 before the close, got {text:?}"
    );
    assert!(
        text.contains("request_header_timeout"),
        "{what}: 408 body names the error: {text:?}"
    );
}

/// Checks the JSON error contract of a meshgate-generated error.
fn assert_error(resp: &RawResponse, status: u16, code: &str) {
    assert_eq!(resp.status, status, "body: {}", resp.text());
    assert_eq!(
        resp.header("content-type"),
        Some("application/json"),
        "error bodies are JSON: {resp:?}"
    );
    let body = resp.json();
    assert_eq!(body["error"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
}

/// A gateway with an admin API, a `/direct` direct response, and a
/// catch-all route to `up` (route "main", cluster "up").
fn simple_config(up: SocketAddr, limits: &str, cluster_extra: &str) -> String {
    format!(
        r#"
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "public"
address = "127.0.0.1:0"
limits = {{ {limits} }}

[[routes]]
name = "direct"
listener = "public"
match = {{ path_prefix = "/direct" }}
direct_response = {{ status = 200, body = "direct" }}

[[routes]]
name = "main"
listener = "public"
cluster = "up"
timeout = "5s"

[[clusters]]
name = "up"
endpoints = [{{ address = "{up}" }}]
{cluster_extra}
"#
    )
}

// === 1. protocol detection ===

/// Clients that send only the first byte of what could be the h2 preface and
/// then stall must cost no CPU while they wait (a peek loop would spin), must
/// not hold up other clients, and must get a 408 at the header-read timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_partial_preface_does_not_spin() {
    const STALLED: usize = 20;
    const HEADER_READ: Duration = Duration::from_secs(2);
    const WINDOW: Duration = Duration::from_secs(1);
    let up = upstream::echo("up").await;
    let gw = Gateway::start(&simple_config(
        up.addr,
        r#"header_read_timeout = "2s", idle_timeout = "30s""#,
        "",
    ));
    let addr = gw.addr("public");
    let connected = Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..STALLED {
        let mut raw = Raw::connect(addr).await;
        raw.send(b"P").await;
        stalled.push(raw);
    }
    // All 20 are accepted (and their "P" is waiting in the socket) before
    // the measurement starts.
    eventually("meshgate accepted the stalled connections", || async {
        sample(
            &metrics(&gw).await,
            "meshgate_downstream_connections_active",
            &[("listener", "public")],
        ) == Some(STALLED as f64)
    })
    .await;

    let cpu_before = cpu_time(gw.pid());
    let start = Instant::now();
    let mut served = 0;
    let client = common::client::h1();
    while start.elapsed() < WINDOW {
        // Other clients are served as usual meanwhile, direct and proxied.
        let mut raw = Raw::connect(addr).await;
        raw.send(b"GET /direct HTTP/1.1\r\nhost: x\r\n\r\n").await;
        let resp = raw.response().await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert_eq!(resp.text(), "direct");
        let req = Request::get(gw.url("public", &format!("/proxied/{served}")))
            .body(http_body_util::Full::new(Bytes::new()))
            .unwrap();
        let reply = common::client::send(&client, req).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        served += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = start.elapsed();
    let used = cpu_time(gw.pid()) - cpu_before;
    eprintln!(
        "meshgate used {used:?} CPU in {elapsed:?} with {STALLED} stalled clients; served {served}"
    );
    assert!(served >= 3, "only {served} requests served in {elapsed:?}");
    let allowed = Duration::from_millis(300).mul_f64(elapsed.as_secs_f64().max(1.0));
    assert!(
        used < allowed,
        "meshgate used {used:?} of CPU in {elapsed:?} while {STALLED} clients stalled \
         after one byte (allowed {allowed:?}): protocol detection spins"
    );
    assert_eq!(
        up.hits(),
        served,
        "only the normal requests reached the upstream"
    );

    // Every stalled client gets a 408 once header_read_timeout has passed.
    let deadline = connected + HEADER_READ + SLACK;
    let mut tasks = Vec::new();
    for (i, mut raw) in stalled.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let within = deadline.saturating_duration_since(Instant::now());
            let (bytes, end, at) = raw.read_to_close(within).await;
            (i, bytes, end, at)
        }));
    }
    for t in tasks {
        let (i, bytes, end, at) = t.await.unwrap();
        assert!(
            end.is_some(),
            "stalled connection {i} still open after header_read_timeout + slack"
        );
        assert_408(&bytes, &format!("stalled connection {i}"));
        assert!(
            at - connected >= HEADER_READ.mul_f32(0.9),
            "stalled connection {i} closed after only {:?}",
            at - connected
        );
    }
    assert_eq!(up.hits(), served);
}

/// Each partial preface (`P`, `PR`, `PRI`) is timed out like any other
/// incomplete request head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_preface_gets_408_at_the_header_read_timeout() {
    const HEADER_READ: Duration = Duration::from_millis(500);
    let up = upstream::echo("up").await;
    let gw = Gateway::start(&simple_config(
        up.addr,
        r#"header_read_timeout = "500ms", idle_timeout = "30s""#,
        "",
    ));
    let addr = gw.addr("public");
    let mut tasks = Vec::new();
    for prefix in ["P", "PR", "PRI"] {
        tasks.push(tokio::spawn(async move {
            let start = Instant::now();
            let mut raw = Raw::connect(addr).await;
            raw.send(prefix.as_bytes()).await;
            let (bytes, end, at) = raw.read_to_close(HEADER_READ + SLACK).await;
            (prefix, bytes, end, at - start)
        }));
    }
    for t in tasks {
        let (prefix, bytes, end, took) = t.await.unwrap();
        assert!(
            end.is_some(),
            "{prefix:?}: still open after header_read_timeout + slack"
        );
        assert_408(&bytes, prefix);
        assert!(
            took >= HEADER_READ.mul_f32(0.9),
            "{prefix:?}: 408 after only {took:?}"
        );
    }
    assert_eq!(up.hits(), 0);
    let resp = common::client::get(addr, "/direct", &[]).await;
    assert_eq!(resp.status, 200);
}

/// Bytes consumed while telling HTTP/1.1 from h2 are not lost: a request
/// whose first byte arrives alone is still served, and so is an h2 preface
/// that arrives in pieces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_bytes_arriving_alone_reach_the_right_protocol() {
    let up = upstream::echo("up").await;
    let gw = Gateway::start(&simple_config(up.addr, r#"header_read_timeout = "5s""#, ""));
    let addr = gw.addr("public");

    // HTTP/1.1: "P" (could be "PRI "), a pause, then the rest of a POST.
    let mut raw = Raw::connect(addr).await;
    raw.send(b"P").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    raw.send(b"OST /split HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nhi")
        .await;
    let resp = raw.response().await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let v = resp.json();
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/split");
    // And the connection goes on as usual.
    raw.send(b"GET /split2 HTTP/1.1\r\nhost: x\r\n\r\n").await;
    let resp = raw.response().await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["path"], "/split2");

    // h2: the preface in two pieces, then an empty SETTINGS frame. The
    // server's first frame must be its own SETTINGS (type 4 on stream 0),
    // not an HTTP/1.1 error.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(b"PR").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.write_all(b"I * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    s.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    let mut frame = [0u8; 9];
    tokio::time::timeout(BOUND, s.read_exact(&mut frame))
        .await
        .expect("no h2 frame in time")
        .expect("connection closed instead of an h2 SETTINGS frame");
    assert_ne!(&frame[..5], b"HTTP/", "answered as HTTP/1.1");
    assert_eq!(frame[3], 4, "first frame is SETTINGS: {frame:?}");
    assert_eq!(&frame[5..9], &[0, 0, 0, 0], "on stream 0: {frame:?}");
    assert_eq!(up.hits(), 2);
}

// === 2. empty-body responses and upstream keep-alive ===

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

// === 3. early response during a slow upload ===

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

// === 4. body limit through an h2 cluster ===

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
    let up = body_echo(Proto::H2).await;
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

// === 5. Host validation ===

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

// === 6. Connection cannot strip Host or x-request-id ===

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

// === 7. CONNECT, WebSocket and h2c upgrades ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_and_websocket_are_501_and_h2c_upgrade_is_served() {
    let up = upstream::echo("up").await;
    let gw = Gateway::start(&simple_config(up.addr, "", ""));
    let addr = gw.addr("public");
    let not_implemented: [(&str, &[u8]); 3] = [
        (
            "CONNECT",
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        ),
        (
            "WebSocket upgrade",
            b"GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        ),
        (
            "WebSocket upgrade, Firefox style",
            b"GET /chat HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\n\
              Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
              Sec-WebSocket-Version: 13\r\n\r\n",
        ),
    ];
    for (what, request) in not_implemented {
        let mut raw = Raw::connect(addr).await;
        raw.send(request).await;
        let resp = raw.response().await;
        assert_eq!(resp.status, 501, "{what}: {}", resp.text());
        assert_error(&resp, 501, "not_implemented");
        assert_eq!(up.hits(), 0, "{what}: the upstream saw the request");
    }

    // What `curl --http2` sends over cleartext: served as plain HTTP/1.1.
    let mut raw = Raw::connect(addr).await;
    raw.send(
        b"GET /h2c HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n\
          Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n",
    )
    .await;
    let resp = raw.response().await;
    assert_eq!(resp.status, 200, "Upgrade: h2c: {}", resp.text());
    let v = resp.json();
    assert_eq!(v["path"], "/h2c");
    for hop in ["upgrade", "http2-settings", "connection"] {
        assert!(v["headers"].get(hop).is_none(), "{hop} forwarded: {v}");
    }
    // The connection is still HTTP/1.1 afterwards.
    raw.send(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let resp = raw.response().await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["path"], "/after");
    assert_eq!(up.hits(), 2);

    // And with curl itself.
    let url = gw.url("public", "/curl");
    let (ok, out) = tokio::task::spawn_blocking(move || {
        common::curl(&[
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{http_version}",
            &url,
        ])
    })
    .await
    .unwrap();
    assert!(ok, "curl --http2 failed: {out}");
    assert_eq!(out, "200 1.1");
    assert_eq!(up.hits(), 3);
}

// === 8. the demo upstream streams ===

/// A body of `total` bytes in 64 KiB frames, with an exact length.
struct Zeros {
    frame: Bytes,
    left: u64,
}

impl Body for Zeros {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(self.frame.len() as u64);
        self.left -= n;
        Poll::Ready(Some(Ok(Frame::data(self.frame.slice(..n as usize)))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

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

// === 9. direct_response statuses ===

/// Runs the binary and waits (bounded) for it to exit.
fn run_meshgate(cwd: &std::path::Path, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshgate"))
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("meshgate {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

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
        let out = run_meshgate(dir.path(), &["validate", &name]);
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
        let out = run_meshgate(dir.path(), &["validate", &name]);
        assert!(
            out.status.success(),
            "direct_response status {status} rejected: {out:?}"
        );
    }
}
