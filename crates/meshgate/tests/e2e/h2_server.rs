//! meshgate's own h2c server, frame by frame, against Python's `h2` (an
//! independent implementation): SETTINGS and PING, malformed header lists
//! that reset one stream only, CONTINUATION, the header-list limit (431),
//! flow control with a small client window, client resets, and a bad
//! preface. The scenarios live in `common/h2_client.py`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::net::SocketAddr;
use std::time::Duration;

use common::Gateway;
use common::upstream::Upstream;
use serde_json::Value;

async fn start(limits: &str) -> (Gateway, Upstream, Upstream) {
    let t = common::protocol::start(limits).await;
    (t.gw, t.echo, t.body)
}

/// Runs one scenario of `h2_client.py` and returns its JSON report.
async fn scenario(name: &str, addr: SocketAddr) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/common/h2_client.py");
    let (name_, addr_) = (name.to_owned(), addr);
    // The script bounds every read itself (10 s), so it cannot hang; the
    // outer timeout is a second guard.
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .arg(script)
            .arg(&name_)
            .arg(addr_.ip().to_string())
            .arg(addr_.port().to_string())
            .output()
    });
    let out = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("scenario timed out")
        .unwrap()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{name}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{name}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

const PROTOCOL_ERROR: u64 = 1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_ping_and_requests() {
    let (gw, echo, _body) = start(r#"max_header_bytes = "64KiB""#).await;
    let r = scenario("basics", gw.addr("public")).await;
    assert_eq!(r["direct"]["status"], 200, "{r}");
    assert_eq!(r["direct"]["body"], "direct");
    assert!(r["direct"]["headers"]["date"].is_string(), "{r}");
    assert_eq!(r["proxied"]["status"], 200);
    let seen: Value = serde_json::from_str(r["proxied"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(seen["path"], "/proxied");
    assert_eq!(seen["query"], "q=1");
    assert_eq!(seen["headers"]["x-test"], "yes");
    assert_eq!(
        seen["headers"]["host"], "test",
        ":authority becomes Host upstream"
    );
    // SETTINGS_MAX_CONCURRENT_STREAMS (3) and the header-list size (6).
    assert_eq!(r["settings"]["3"], 256);
    assert_eq!(r["settings"]["6"], 64 * 1024);
    let events: Vec<&str> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(events.contains(&"PingAckReceived"), "{events:?}");
    assert_eq!(echo.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_header_list_resets_only_its_stream() {
    let (gw, echo, _body) = start(r#"max_header_bytes = "64KiB""#).await;
    let r = scenario("malformed", gw.addr("public")).await;
    assert_eq!(r["bad"]["reset"], PROTOCOL_ERROR, "{r}");
    assert_eq!(r["good"]["status"], 200, "the connection goes on: {r}");
    assert_eq!(echo.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_block_split_over_continuation_frames_arrives_whole() {
    let (gw, _echo, _body) = start(r#"max_header_bytes = "64KiB""#).await;
    let r = scenario("continuation", gw.addr("public")).await;
    assert_eq!(r["big"]["status"], 200, "{r}");
    let seen: Value = serde_json::from_str(r["big"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        seen["headers"]["x-big"].as_str().map(str::len),
        Some(40_000),
        "the upstream saw the whole 40 kB header"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_list_over_the_limit_gets_431_and_the_connection_goes_on() {
    let (gw, echo, _body) = start(r#"max_header_bytes = "4KiB""#).await;
    let r = scenario("too_large", gw.addr("public")).await;
    assert_eq!(r["big"]["status"], 431, "{r}");
    assert!(
        r["big"]["body"]
            .as_str()
            .unwrap()
            .contains("request_headers_too_large"),
        "{r}"
    );
    assert_eq!(r["after"]["status"], 200);
    assert_eq!(echo.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_client_window_is_respected_both_ways() {
    let (gw, _echo, _body) = start(r#"max_header_bytes = "64KiB""#).await;
    let r = scenario("flow", gw.addr("public")).await;
    assert_eq!(r["flow"]["status"], 200, "{r}");
    assert_eq!(r["flow"]["body_len"], 3 * 1024 * 1024);
    assert_eq!(r["same"], true, "the 3 MiB came back intact");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reset_ends_the_stream_and_not_the_connection() {
    let (gw, _echo, _body) = start(r#"max_header_bytes = "64KiB""#).await;
    let r = scenario("reset", gw.addr("public")).await;
    assert_eq!(r["after"]["status"], 200, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_preface_gets_goaway_and_a_close() {
    let (gw, _echo, _body) = start(r#"max_header_bytes = "64KiB""#).await;
    let r = scenario("bad_preface", gw.addr("public")).await;
    assert_eq!(r["closed"], true);
    // Our SETTINGS, then GOAWAY (type 7) with PROTOCOL_ERROR (1).
    let hex = r["bytes"].as_str().unwrap();
    assert!(hex.contains("000008070000000000"), "no GOAWAY in {hex}");
    assert!(hex.ends_with("00000001"), "not PROTOCOL_ERROR: {hex}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rapid_reset_flood_ends_the_connection() {
    let (gw, _echo, _body) = start(r#"max_header_bytes = "64KiB""#).await;
    let r = scenario("rapid_reset", gw.addr("public")).await;
    // GOAWAY with ENHANCE_YOUR_CALM (0xb).
    assert_eq!(r["events"], serde_json::json!(["goaway:11"]), "{r}");
    // The gateway itself is fine.
    let resp = common::client::get(gw.addr("public"), "/direct", &[]).await;
    assert_eq!(resp.status, 200);
}
