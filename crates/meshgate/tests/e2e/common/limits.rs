//! The listener used by the limit and timeout tests: a body-echo upstream
//! behind tight limits, and the checks those tests share.

use std::time::Duration;

use super::Gateway;
use super::upstream::{self, Proto, Upstream};

pub const HEADER_READ: Duration = Duration::from_millis(300);
pub const IDLE: Duration = Duration::from_millis(500);
/// Generous allowance for scheduling on a loaded machine when asserting that
/// a timeout fired.
pub const SLACK: Duration = Duration::from_secs(3);
pub const MAX_BODY: usize = 1000;

pub fn config(upstream: &Upstream, limits: &str) -> String {
    format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"
limits = {{ {limits} }}

[[routes]]
listener = "public"
match = {{ path_prefix = "/direct" }}
direct_response = {{ status = 200, body = "direct" }}

[[routes]]
listener = "public"
cluster = "up"
timeout = "5s"

[[clusters]]
name = "up"
endpoints = [{{ address = "{}" }}]
"#,
        upstream.addr
    )
}

pub fn default_limits() -> String {
    format!(
        r#"max_header_bytes = "4KiB", max_headers = 20, max_body_bytes = {MAX_BODY}, header_read_timeout = "{}ms", idle_timeout = "{}ms""#,
        HEADER_READ.as_millis(),
        IDLE.as_millis()
    )
}

pub async fn start() -> (Gateway, Upstream) {
    let up = upstream::body_echo(Proto::H1).await;
    let gw = Gateway::start(&config(&up, &default_limits()));
    (gw, up)
}

/// A normal request through the proxy still works: the process is alive and serving.
pub async fn assert_still_serving(gw: &Gateway) {
    let reply = super::client::get(gw.addr("public"), "/direct", &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "direct");
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", gw.pid())).unwrap();
    let state = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    assert!(
        !matches!(state, "Z" | "X"),
        "meshgate exited; log:\n{}",
        gw.logs()
    );
}

pub fn assert_408(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    assert!(
        text.starts_with("HTTP/1.1 408"),
        "expected a 408 before the close, got {text:?}"
    );
    assert!(
        text.contains("request_header_timeout"),
        "408 body names the error: {text:?}"
    );
}
