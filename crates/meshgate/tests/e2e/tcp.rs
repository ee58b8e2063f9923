//! `protocol = "tcp"` listeners through the real binary: a gibibyte each
//! way with equal SHA-256 at both ends, half-closes carried across, the
//! listener's `max_connections`, failover when an endpoint refuses, and the
//! idle timeout. Upstreams are plain tokio TCP servers on 127.0.0.1:0.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::Gateway;
use common::metrics::scrape;
use common::wait::BOUND;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A gateway with one tcp listener "db" forwarding to `endpoints`, with
/// `listener_extra` lines in the listener table.
fn tcp_config(endpoints: &[SocketAddr], listener_extra: &str, cluster_extra: &str) -> String {
    let list: Vec<String> = endpoints
        .iter()
        .map(|a| format!("{{ address = \"{a}\" }}"))
        .collect();
    format!(
        r#"
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "db"
address = "127.0.0.1:0"
protocol = "tcp"
cluster = "backend"
{listener_extra}

[[clusters]]
name = "backend"
lb = "round_robin"
connect_timeout = "1s"
endpoints = [{}]
{cluster_extra}
"#,
        list.join(", ")
    )
}

/// An upstream that echoes every byte back and half-closes when its client does.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// A port with nothing listening on it: connecting is refused.
async fn refused_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// Writes `total` bytes of a pattern no two 64 KiB chunks share (each
/// starts with its index), hashing what it wrote, then half-closes.
async fn send_pattern(w: &mut (impl AsyncWriteExt + Unpin), total: u64, seed: u8) -> [u8; 32] {
    let mut chunk: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
        .collect();
    let mut hash = Sha256::new();
    let mut sent = 0u64;
    let mut index = 0u64;
    while sent < total {
        chunk[..8].copy_from_slice(&index.to_le_bytes());
        let n = usize::try_from((total - sent).min(chunk.len() as u64)).unwrap();
        w.write_all(&chunk[..n]).await.unwrap();
        hash.update(&chunk[..n]);
        sent += n as u64;
        index += 1;
    }
    w.shutdown().await.unwrap();
    hash.finalize().into()
}

/// Reads to the end, hashing; returns the digest and the byte count.
async fn hash_all(r: &mut (impl AsyncReadExt + Unpin)) -> ([u8; 32], u64) {
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf).await.unwrap();
        if n == 0 {
            return (hash.finalize().into(), total);
        }
        hash.update(&buf[..n]);
        total += n as u64;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gibibyte_each_way_arrives_intact() {
    gibibyte_each_way(&[]).await;
}

/// The same through the portable user-space copy (splice turned off).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gibibyte_each_way_arrives_intact_when_copied() {
    gibibyte_each_way(&[("MESHGATE_TCP_COPY", "1")]).await;
}

async fn gibibyte_each_way(env: &[(&str, &str)]) {
    const GIB: u64 = 1 << 30;
    // The upstream sends its own gibibyte while it receives the client's,
    // and reports what it received.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let (mut r, mut w) = s.into_split();
        let sending = tokio::spawn(async move { send_pattern(&mut w, GIB, 0x5a).await });
        let received = hash_all(&mut r).await;
        (sending.await.unwrap(), received)
    });
    let gw = Gateway::start_env(&tcp_config(&[up], "", ""), env);
    let client = TcpStream::connect(gw.addr("db")).await.unwrap();
    let (mut r, mut w) = client.into_split();
    let started = Instant::now();
    let (sent, received) = tokio::time::timeout(Duration::from_secs(300), async {
        tokio::join!(send_pattern(&mut w, GIB, 0xa5), hash_all(&mut r))
    })
    .await
    .expect("2 GiB through the proxy within 300 s");
    let (up_sent, up_received) = server.await.unwrap();
    eprintln!("2 GiB both ways in {:?}", started.elapsed());
    assert_eq!(up_received.1, GIB, "the upstream got every byte");
    assert_eq!(
        up_received.0, sent,
        "what the client sent arrived unchanged"
    );
    assert_eq!(received.1, GIB, "the client got every byte");
    assert_eq!(
        received.0, up_sent,
        "what the upstream sent arrived unchanged"
    );

    let (_, m) = scrape(&gw).await;
    let to_up = [("listener", "db"), ("direction", "to_upstream")];
    let to_client = [("listener", "db"), ("direction", "to_client")];
    assert_eq!(m.get("meshgate_tcp_bytes_total", &to_up), GIB as f64);
    assert_eq!(m.get("meshgate_tcp_bytes_total", &to_client), GIB as f64);
    let cluster = [("cluster", "backend"), ("direction", "to_upstream")];
    assert_eq!(
        m.get("meshgate_tcp_cluster_bytes_total", &cluster),
        GIB as f64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_close_in_one_direction_leaves_the_other_open() {
    // The upstream reads until the client's FIN, then answers at length:
    // a proxy that closed on the first FIN would lose the answer.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut got = Vec::new();
                s.read_to_end(&mut got).await.unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
                let answer = format!("got {} bytes: {}", got.len(), String::from_utf8_lossy(&got));
                s.write_all(answer.repeat(1000).as_bytes()).await.unwrap();
                s.shutdown().await.unwrap();
            });
        }
    });
    let gw = Gateway::start(&tcp_config(&[up], "", ""));
    let mut client = TcpStream::connect(gw.addr("db")).await.unwrap();
    client.write_all(b"question").await.unwrap();
    client.shutdown().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(BOUND, client.read_to_end(&mut answer))
        .await
        .expect("the answer within the bound")
        .unwrap();
    assert_eq!(answer, "got 8 bytes: question".repeat(1000).as_bytes());

    // The other way round: the upstream half-closes first (it greets, then
    // says it will send nothing more), and the client can still talk.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(b"hello").await.unwrap();
        s.shutdown().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        got
    });
    let gw = Gateway::start(&tcp_config(&[up], "", ""));
    let mut client = TcpStream::connect(gw.addr("db")).await.unwrap();
    let mut greeting = Vec::new();
    tokio::time::timeout(BOUND, client.read_to_end(&mut greeting))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        greeting, b"hello",
        "the upstream's FIN arrives as the end of the stream"
    );
    client
        .write_all(b"still talking after your FIN")
        .await
        .unwrap();
    client.shutdown().await.unwrap();
    let got = tokio::time::timeout(BOUND, server).await.unwrap().unwrap();
    assert_eq!(got, b"still talking after your FIN");
}

/// Sends `msg` and expects it echoed back.
async fn echo_once(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).await.unwrap();
    let mut back = vec![0u8; msg.len()];
    tokio::time::timeout(BOUND, s.read_exact(&mut back))
        .await
        .expect("echo within the bound")
        .unwrap();
    assert_eq!(back, msg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_max_connections_are_refused_and_counted() {
    let up = echo_server().await;
    let gw = Gateway::start(&tcp_config(&[up], "max_connections = 2", ""));
    let addr = gw.addr("db");
    let mut first = TcpStream::connect(addr).await.unwrap();
    echo_once(&mut first, b"one").await;
    let mut second = TcpStream::connect(addr).await.unwrap();
    echo_once(&mut second, b"two").await;

    // The third is accepted by the kernel, then closed before any byte.
    let mut third = TcpStream::connect(addr).await.unwrap();
    let _ = third.write_all(b"three").await;
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(BOUND, third.read(&mut buf))
        .await
        .expect("the refused connection closes within the bound");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "a connection over max_connections got data: {read:?}"
    );
    let (_, m) = scrape(&gw).await;
    assert_eq!(
        m.get(
            "meshgate_tcp_connections_refused_total",
            &[("listener", "db")]
        ),
        1.0
    );

    // Closing one gives its unit back.
    drop(first);
    // The listener learns of the close when the proxy sees its FIN; poll.
    let deadline = Instant::now() + BOUND;
    let _again = loop {
        assert!(Instant::now() < deadline, "no unit came back after a close");
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut back = [0u8; 4];
        let echoed = async {
            s.write_all(b"four").await?;
            s.read_exact(&mut back).await
        };
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(1), echoed).await
            && &back == b"four"
        {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    echo_once(&mut second, b"still two").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_endpoint_is_failed_over_and_ejected() {
    let dead = refused_port().await;
    let live = echo_server().await;
    let gw = Gateway::start(&tcp_config(
        &[dead, live],
        "",
        "outlier_detection = { consecutive_gateway_errors = 3, base_ejection_time = \"30s\" }",
    ));
    let addr = gw.addr("db");
    // Round robin sends every other connection to the dead endpoint first:
    // each must still reach the live one.
    for i in 0..20 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        echo_once(&mut s, format!("connection {i}").as_bytes()).await;
    }
    let (_, m) = scrape(&gw).await;
    assert_eq!(
        m.get("meshgate_tcp_no_upstream_total", &[("listener", "db")]),
        0.0
    );
    let ejected = m.get(
        "meshgate_endpoint_ejected",
        &[("cluster", "backend"), ("endpoint", &dead.to_string())],
    );
    assert_eq!(
        ejected, 1.0,
        "three refused connects in a row eject the endpoint"
    );

    // With every endpoint refusing, the client's connection is closed.
    let gw = Gateway::start(&tcp_config(&[dead], "max_connect_attempts = 2", ""));
    let mut s = TcpStream::connect(gw.addr("db")).await.unwrap();
    let mut buf = [0u8; 8];
    let read = tokio::time::timeout(BOUND, s.read(&mut buf)).await.unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let (_, m) = scrape(&gw).await;
    assert_eq!(
        m.get("meshgate_tcp_no_upstream_total", &[("listener", "db")]),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_idle_for_idle_timeout_is_closed() {
    let up = echo_server().await;
    let gw = Gateway::start(&tcp_config(&[up], "idle_timeout = \"300ms\"", ""));
    let mut s = TcpStream::connect(gw.addr("db")).await.unwrap();
    // Traffic keeps it open past the timeout...
    for i in 0..6 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        echo_once(&mut s, format!("tick {i}").as_bytes()).await;
    }
    // ...and silence closes it.
    let quiet = Instant::now();
    let mut buf = [0u8; 8];
    let read = tokio::time::timeout(BOUND, s.read(&mut buf)).await.unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let waited = quiet.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "closed after {waited:?} of silence, expected about 300 ms"
    );
    let (_, m) = scrape(&gw).await;
    assert_eq!(
        m.get("meshgate_tcp_idle_timeouts_total", &[("listener", "db")]),
        1.0
    );
}
