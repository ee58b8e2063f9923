//! The firewall through the real binary: ordered rules with a default, the
//! block list on the admin API (persisted across a restart), the per-IP
//! connection rate, and a PROXY header's client being the one judged.
//!
//! Clients come from different addresses by binding to other addresses of
//! 127.0.0.0/8 (all loopback on Linux): curl's `--interface`, or a socket
//! bound before connecting.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::Gateway;
use common::client::{Reply, h1, send};
use common::metrics::scrape;
use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

/// curl from `source`: the HTTP status, or `None` when the connection was
/// closed without an answer.
fn curl_from(source: &str, url: &str) -> Option<u16> {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "5",
            "--interface",
            source,
            url,
        ])
        .output()
        .unwrap();
    let code: u16 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    (code != 0).then_some(code)
}

/// Connects from `source` to `to`, sends `send`, and reads until the
/// gateway closes (bounded): what came back.
async fn exchange_from(source: &str, to: SocketAddr, send: &[u8]) -> Vec<u8> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    let mut stream = socket.connect(to).await.unwrap();
    let _ = stream.write_all(send).await;
    let mut back = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut back));
    match read.await {
        Ok(_) => back,
        Err(_) => panic!("the gateway neither answered nor closed within 5 s"),
    }
}

/// One admin API call.
async fn admin(gw: &Gateway, method: Method, path: &str, body: &'static str) -> Reply {
    send(&h1(), gw.admin_request(method, path, body)).await
}

const GET: &[u8] = b"GET /x HTTP/1.1\r\nHost: fw\r\nConnection: close\r\n\r\n";

fn gateway(firewall: &str, proxy_protocol: bool) -> Gateway {
    let pp = if proxy_protocol {
        "proxy_protocol = \"required\""
    } else {
        ""
    };
    Gateway::start(&format!(
        r#"
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "public"
address = "127.0.0.1:0"
protocol = "http"
{pp}

[[routes]]
listener = "public"
match = {{ path_prefix = "/" }}
direct_response = {{ status = 200, body = "ok" }}

{firewall}
"#
    ))
}

#[tokio::test]
async fn the_first_matching_rule_decides_and_the_default_denies_the_rest() {
    let gw = gateway(
        r#"
[firewall]
default = "deny"

[[firewall.rules]]
name = "bad-host"
action = "deny"
sources = ["127.0.0.2"]

[[firewall.rules]]
name = "office"
action = "allow"
protocol = "http"
sources = ["127.0.0.0/29"]

[[firewall.rules]]
name = "tcp-only"
action = "allow"
protocol = "tcp"
sources = ["127.0.0.9"]
"#,
        false,
    );
    let url = gw.url("public", "/x");
    assert_eq!(curl_from("127.0.0.1", &url), Some(200));
    assert_eq!(curl_from("127.0.0.5", &url), Some(200));
    assert_eq!(
        curl_from("127.0.0.2", &url),
        None,
        "an earlier deny wins over a later allow"
    );
    assert_eq!(
        curl_from("127.0.0.9", &url),
        None,
        "a tcp rule does not open an http listener"
    );
    assert_eq!(
        curl_from("127.0.0.20", &url),
        None,
        "no rule: the default denies"
    );

    let (_, m) = scrape(&gw).await;
    let count = |rule: &str, action: &str| {
        m.get(
            "meshgate_firewall_connections_total",
            &[("rule", rule), ("action", action)],
        )
    };
    assert_eq!(count("office", "allow"), 2.0);
    assert_eq!(count("bad-host", "deny"), 1.0);
    assert_eq!(count("default", "deny"), 2.0);
    assert_eq!(count("tcp-only", "allow"), 0.0);
    // Refused connections never reached HTTP.
    let accepted = m.get(
        "meshgate_downstream_connections_total",
        &[("listener", "public")],
    );
    assert_eq!(accepted, 2.0);
}

#[tokio::test]
async fn admin_blocks_close_new_connections_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("blocks.txt");
    let firewall = format!(
        "[firewall]\nstate_file = {:?}\n",
        state.display().to_string()
    );
    let gw = gateway(&firewall, false);
    let url = gw.url("public", "/x");

    assert_eq!(curl_from("127.0.0.3", &url), Some(200));
    let r = admin(
        &gw,
        Method::POST,
        "/firewall/block",
        r#"{"ip": "127.0.0.3", "ttl": "1h"}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["ip"], "127.0.0.3");
    assert_eq!(curl_from("127.0.0.3", &url), None, "blocked");
    assert_eq!(curl_from("127.0.0.1", &url), Some(200), "others are not");

    // Bad requests are refused with a reason, and change nothing.
    for (body, code) in [
        (r#"{"ip": "not-an-ip", "ttl": 60}"#, "bad_ip"),
        (r#"{"ttl": 60}"#, "bad_ip"),
        (r#"{"ip": "127.0.0.4", "ttl": "forever"}"#, "bad_ttl"),
        (r#"{"ip": "127.0.0.4", "ttl": 0}"#, "bad_ttl"),
        ("{not json", "bad_json"),
    ] {
        let r = admin(&gw, Method::POST, "/firewall/block", body).await;
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.json()["error"], code, "{body}");
    }
    let list = admin(&gw, Method::GET, "/firewall/blocks", "").await.json();
    let ips: Vec<_> = list["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["ip"].clone())
        .collect();
    assert_eq!(ips, [serde_json::json!("127.0.0.3")]);
    assert!(
        std::fs::read_to_string(&state)
            .unwrap()
            .contains("127.0.0.3 ")
    );

    // A restart keeps the block.
    drop(gw);
    let gw = gateway(&firewall, false);
    let url = gw.url("public", "/x");
    assert_eq!(
        curl_from("127.0.0.3", &url),
        None,
        "still blocked after a restart"
    );
    let (_, m) = scrape(&gw).await;
    assert_eq!(
        m.get(
            "meshgate_firewall_connections_total",
            &[("rule", "blocklist"), ("action", "deny")]
        ),
        1.0
    );

    // Lifting it lets the client back; lifting it twice is a 404.
    let r = admin(&gw, Method::DELETE, "/firewall/block/127.0.0.3", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(curl_from("127.0.0.3", &url), Some(200));
    let r = admin(&gw, Method::DELETE, "/firewall/block/127.0.0.3", "").await;
    assert_eq!(r.status, 404);
    let r = admin(&gw, Method::DELETE, "/firewall/block/nope", "").await;
    assert_eq!(r.status, 400);
    assert!(
        !std::fs::read_to_string(&state)
            .unwrap()
            .contains("127.0.0.3 ")
    );
}

#[tokio::test]
async fn the_connection_rate_is_per_client_ip() {
    let gw = gateway(
        "[firewall]\nconnection_rate = { limit = 1, per = \"1h\", burst = 3 }\n",
        false,
    );
    let url = gw.url("public", "/x");
    for _ in 0..3 {
        assert_eq!(curl_from("127.0.0.6", &url), Some(200));
    }
    assert_eq!(
        curl_from("127.0.0.6", &url),
        None,
        "the fourth within the hour is refused"
    );
    assert_eq!(
        curl_from("127.0.0.7", &url),
        Some(200),
        "another client has its own burst"
    );
    let (_, m) = scrape(&gw).await;
    let refused = m.get(
        "meshgate_firewall_connections_total",
        &[("rule", "connection_rate"), ("action", "deny")],
    );
    assert_eq!(refused, 1.0);
}

#[tokio::test]
async fn a_proxy_headers_client_is_the_one_judged() {
    let gw = gateway(
        r#"
[firewall]
[[firewall.rules]]
name = "abusers"
action = "deny"
sources = ["192.0.2.0/24"]
"#,
        true,
    );
    let addr = gw.addr("public");
    let from = |client: &str| {
        let mut bytes = format!("PROXY TCP4 {client} 127.0.0.1 5555 80\r\n").into_bytes();
        bytes.extend_from_slice(GET);
        bytes
    };
    // The balancer in front (127.0.0.1) is allowed; the client it names
    // decides.
    let denied = exchange_from("127.0.0.1", addr, &from("192.0.2.7")).await;
    assert!(denied.is_empty(), "{}", String::from_utf8_lossy(&denied));
    let allowed = exchange_from("127.0.0.1", addr, &from("198.51.100.7")).await;
    assert!(
        allowed.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&allowed)
    );
    // A blocked host cannot speak at all, whatever client its header names.
    let r = admin(
        &gw,
        Method::POST,
        "/firewall/block",
        r#"{"ip": "127.0.0.5", "ttl": 60}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    let spoofed = exchange_from("127.0.0.5", addr, &from("198.51.100.7")).await;
    assert!(spoofed.is_empty(), "{}", String::from_utf8_lossy(&spoofed));
    let (_, m) = scrape(&gw).await;
    let count = |rule: &str, action: &str| {
        m.get(
            "meshgate_firewall_connections_total",
            &[("rule", rule), ("action", action)],
        )
    };
    assert_eq!(count("abusers", "deny"), 1.0);
    assert_eq!(count("default", "allow"), 1.0);
    assert_eq!(count("blocklist", "deny"), 1.0);
}

#[tokio::test]
async fn tcp_listeners_are_judged_at_accept() {
    let up = common::upstream::echo("backend").await;
    let gw = Gateway::start(&format!(
        r#"
[[listeners]]
name = "db"
address = "127.0.0.1:0"
protocol = "tcp"
cluster = "backend"

[[clusters]]
name = "backend"
endpoints = [{{ address = "{}" }}]

[firewall]
[[firewall.rules]]
name = "no-tcp-from-2"
action = "deny"
protocol = "tcp"
sources = ["127.0.0.2"]
"#,
        up.addr
    ));
    let addr = gw.addr("db");
    let denied = exchange_from("127.0.0.2", addr, GET).await;
    assert!(denied.is_empty(), "{}", String::from_utf8_lossy(&denied));
    assert_eq!(
        up.connections(),
        0,
        "a refused client never reaches the upstream"
    );
    let allowed = exchange_from("127.0.0.1", addr, GET).await;
    assert!(
        allowed.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&allowed)
    );
}
