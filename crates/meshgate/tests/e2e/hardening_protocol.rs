//! Hardening regressions through the real binary, protocol detection and
//! upgrades:
//!
//! 1. protocol detection does not spin on a partial h2 preface;
//! 2. CONNECT is a clear 501; a WebSocket handshake reaches the upstream
//!    with its upgrade headers (tunnels: `websocket.rs`); `Upgrade: h2c` is
//!    served as HTTP/1.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Gateway;
use common::metrics::{metrics, sample};
use common::raw::{Raw, assert_error};
use common::simple_config;
use common::upstream::{self};
use common::wait::{BOUND, eventually};
use http::Request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous allowance for scheduling on a loaded machine when asserting that
/// a timeout fired.
const SLACK: Duration = Duration::from_secs(3);

// === helpers ===

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

// === 2. CONNECT, WebSocket and h2c upgrades ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_is_501_websocket_is_forwarded_and_h2c_upgrade_is_served() {
    let up = upstream::echo("up").await;
    let gw = Gateway::start(&simple_config(up.addr, "", ""));
    let addr = gw.addr("public");
    let mut raw = Raw::connect(addr).await;
    raw.send(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        .await;
    let resp = raw.response().await;
    assert_error(&resp, 501, "not_implemented");
    assert_eq!(up.hits(), 0, "CONNECT: the upstream saw the request");

    // An upstream that does not switch protocols answers the handshake like
    // any request, and the connection stays HTTP/1.1.
    let handshakes: [(&str, &[u8]); 2] = [
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
    for (what, request) in handshakes {
        let mut raw = Raw::connect(addr).await;
        raw.send(request).await;
        let resp = raw.response().await;
        assert_eq!(resp.status, 200, "{what}: {}", resp.text());
        let v = resp.json();
        assert_eq!(v["headers"]["upgrade"], "websocket", "{what}: {v}");
        assert_eq!(v["headers"]["connection"], "upgrade", "{what}: {v}");
        raw.send(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(raw.response().await.json()["path"], "/after", "{what}");
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
    assert_eq!(
        up.hits(),
        4 + 2,
        "two handshakes and their follow-ups, then these two"
    );

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
    assert_eq!(up.hits(), 4 + 3);
}
