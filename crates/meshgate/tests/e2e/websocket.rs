//! WebSocket (and other HTTP/1.1 upgrades) through the real binary: a real
//! client and server (Python's `websockets`) talk through the gateway; raw
//! sockets check the tunnel's edges (bytes sent with the handshake, half
//! closes, the idle timeout) and the refusals (an upstream that declines,
//! an h2 cluster, upgrades that are not upgrades).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::raw::{Raw, find, parse_head, raw_upstream, read_head};
use common::wait::BOUND;
use common::ws::{Hold, WsServer, talk};
use common::{Gateway, app_config, endpoint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HANDSHAKE: &[u8] = b"GET /chat HTTP/1.1\r\nHost: chat.test\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// Reads until `want` bytes follow the first response head; returns the
/// head's status and headers and the bytes after it.
async fn head_and(stream: &mut TcpStream, want: usize) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = async {
        loop {
            if let Some(i) = find(&buf, b"\r\n\r\n")
                && buf.len() >= i + 4 + want
            {
                let (status, headers) = parse_head(&buf[..i + 4]);
                return (status, headers, buf[i + 4..].to_vec());
            }
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "EOF; got {:?}", String::from_utf8_lossy(&buf));
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(BOUND, read)
        .await
        .expect("a response head in time")
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A raw upstream that accepts any upgrade, sends "WELCOME" with its 101,
/// then echoes every byte until the client half-closes, and then says
/// "BYE" and closes its side.
async fn echo_upgrade_upstream() -> common::raw::RawUpstream {
    raw_upstream(|mut s| async move {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
        if !(head.contains("\r\nupgrade: websocket\r\n") && head.contains("\r\nconnection: upgrade\r\n")) {
            let _ = s
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 13\r\n\r\nno handshake\n")
                .await;
            return;
        }
        let _ = s
            .write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\nWELCOME")
            .await;
        // Bytes that came with the head are the tunnel's first bytes.
        if s.write_all(&buf[end..]).await.is_err() {
            return;
        }
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if s.write_all(&chunk[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = s.write_all(b"BYE").await;
        let _ = s.shutdown().await;
    })
    .await
}

#[test]
fn a_real_websocket_client_and_server_talk_through_the_gateway() {
    let server = WsServer::start();
    let gw = Gateway::start(&app_config(
        &[endpoint(format!("127.0.0.1:{}", server.port))],
        "",
        "",
    ));
    let report = talk(&format!("ws://{}/chat", gw.addr("public")));
    assert_eq!(report["text"], "hello", "{report}");
    assert_eq!(
        report["binary_ok"], true,
        "a 1 MiB frame came back intact: {report}"
    );
    assert_eq!(
        report["close_code"], 4000,
        "the server's close reaches the client: {report}"
    );
    assert_eq!(report["close_reason"], "server-bye", "{report}");
}

#[test]
fn twenty_websockets_stay_alive_and_echo() {
    let server = WsServer::start();
    let gw = Gateway::start(&app_config(
        &[endpoint(format!("127.0.0.1:{}", server.port))],
        "",
        "",
    ));
    let hold = Hold::open(&format!("ws://{}/chat", gw.addr("public")), 20, 1.5);
    let report = hold.finish();
    assert_eq!(report["alive"], 20, "{report}");
    assert!(report["echoes"].as_u64().unwrap() >= 20 * 4, "{report}");
    assert_eq!(report["errors"].as_array().unwrap().len(), 0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_sent_with_the_handshake_and_half_closes_cross_the_tunnel() {
    let up = echo_upgrade_upstream().await;
    let gw = Gateway::start(&app_config(&[endpoint(up.addr)], "", ""));
    let mut c = TcpStream::connect(gw.addr("public")).await.unwrap();
    // The first frame rides in the same write as the handshake.
    let mut first = HANDSHAKE.to_vec();
    first.extend_from_slice(b"EARLY");
    c.write_all(&first).await.unwrap();
    let (status, headers, after) = head_and(&mut c, b"WELCOMEEARLY".len()).await;
    assert_eq!(status, 101);
    assert_eq!(header(&headers, "upgrade"), Some("websocket"));
    assert_eq!(header(&headers, "connection"), Some("upgrade"));
    assert_eq!(
        header(&headers, "sec-websocket-accept"),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "end-to-end handshake headers pass"
    );
    assert!(header(&headers, "content-length").is_none());
    assert_eq!(after, b"WELCOMEEARLY");

    c.write_all(b"ping-1").await.unwrap();
    let mut got = [0u8; 6];
    tokio::time::timeout(BOUND, c.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&got, b"ping-1");

    // Our half-close reaches the upstream, which still answers, then closes.
    c.shutdown().await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(BOUND, c.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rest, b"BYE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_declines_answers_normally_and_keeps_the_connection() {
    let up = raw_upstream(|mut s| async move {
        while read_head(&mut s).await {
            let body = b"{\"error\":\"use https\"}";
            let head = format!(
                "HTTP/1.1 426 Upgrade Required\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            if s.write_all(head.as_bytes()).await.is_err() || s.write_all(body).await.is_err() {
                return;
            }
        }
    })
    .await;
    let gw = Gateway::start(&app_config(&[endpoint(up.addr)], "", ""));
    let mut raw = Raw::connect(gw.addr("public")).await;
    raw.send(HANDSHAKE).await;
    let resp = raw.response().await;
    assert_eq!(resp.status, 426);
    assert_eq!(resp.text(), "{\"error\":\"use https\"}");
    assert!(resp.header("upgrade").is_none());
    // Still HTTP/1.1 on the same connection.
    raw.send(HANDSHAKE).await;
    assert_eq!(raw.response().await.status, 426);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_tunnel_closes_and_a_busy_one_stays() {
    let up = echo_upgrade_upstream().await;
    let plain = app_config(&[endpoint(up.addr)], "", "");
    let config = plain.replace(
        "address = \"127.0.0.1:0\"\n\n[[routes]]",
        "address = \"127.0.0.1:0\"\nlimits = { tunnel_idle_timeout = \"300ms\" }\n\n[[routes]]",
    );
    assert_ne!(config, plain, "the listener got its limits");
    let gw = Gateway::start(&config);

    // Busy: a byte every 100 ms for 1.2 s keeps it open.
    let mut busy = TcpStream::connect(gw.addr("public")).await.unwrap();
    busy.write_all(HANDSHAKE).await.unwrap();
    head_and(&mut busy, b"WELCOME".len()).await;
    for i in 0..12u8 {
        busy.write_all(&[b'a' + i]).await.unwrap();
        let mut b = [0u8; 1];
        tokio::time::timeout(BOUND, busy.read_exact(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(b[0], b'a' + i, "echo {i} through a busy tunnel");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Idle: closed between one and two idle periods after the last byte.
    let start = Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), busy.read_to_end(&mut rest))
        .await
        .expect("an idle tunnel is closed")
        .ok();
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(250),
        "closed after only {took:?}"
    );
    assert!(
        took < Duration::from_millis(1500),
        "closed only after {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2_cluster_cannot_carry_an_upgrade() {
    let up = common::upstream::echo_proto("h2", common::upstream::Proto::H2).await;
    let gw = Gateway::start(&app_config(&[endpoint(up.addr)], "", "protocol = \"h2\""));
    let mut raw = Raw::connect(gw.addr("public")).await;
    raw.send(HANDSHAKE).await;
    let resp = raw.response().await;
    common::raw::assert_error(&resp, 501, "not_implemented");
    assert!(resp.text().contains("HTTP/1.1 cluster"), "{}", resp.text());
    assert_eq!(up.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_headers_without_a_real_upgrade_are_stripped() {
    let up = echo_upgrade_upstream().await;
    let gw = Gateway::start(&app_config(&[endpoint(up.addr)], "", ""));
    for (what, req) in [
        (
            "Upgrade not listed in Connection",
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n",
        ),
        (
            "an upgrade with a body",
            "POST / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\ncontent-length: 2\r\n\r\nhi",
        ),
        (
            "HTTP/1.0",
            "GET / HTTP/1.0\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        ),
    ] {
        let mut raw = Raw::connect(gw.addr("public")).await;
        raw.send(req.as_bytes()).await;
        let resp = raw.response().await;
        // The upstream answers 400 to a request without the handshake:
        // meshgate did not forward an upgrade it would not carry.
        assert_eq!(resp.status, 400, "{what}: {}", resp.text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_is_never_forwarded_and_a_switch_nobody_asked_for_is_502() {
    // "h2c, websocket": only websocket reaches the upstream, which insists
    // on exactly that header line before it switches.
    let up = echo_upgrade_upstream().await;
    let gw = Gateway::start(&app_config(&[endpoint(up.addr)], "", ""));
    let mut c = TcpStream::connect(gw.addr("public")).await.unwrap();
    c.write_all(
        b"GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n\
          Upgrade: h2c, websocket\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n",
    )
    .await
    .unwrap();
    let (status, headers, _) = head_and(&mut c, 0).await;
    assert_eq!(status, 101);
    assert_eq!(header(&headers, "upgrade"), Some("websocket"));

    // An upstream that switches to something else is broken: 502.
    let rogue = raw_upstream(|mut s| async move {
        if read_head(&mut s).await {
            let _ = s
                .write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
                .await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    })
    .await;
    let gw = Gateway::start(&app_config(&[endpoint(rogue.addr)], "", ""));
    let mut raw = Raw::connect(gw.addr("public")).await;
    raw.send(HANDSHAKE).await;
    let resp = raw.response().await;
    common::raw::assert_error(&resp, 502, "upstream_protocol_error");
}
