//! What a tcp listener reads before forwarding, through the real binary:
//! TLS passthrough routed by SNI (openssl s_client and a rustls client
//! against two Python TLS backends; the bytes stay encrypted end to end),
//! and the PROXY protocol, sent to a backend that parses it on its own and
//! accepted from a client, with malformed headers refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::Gateway;
use common::metrics::scrape;
use common::wait::BOUND;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/e2e/common/l4_backend.py"
);

/// A Python backend process, killed on drop.
struct Backend {
    child: Child,
    addr: SocketAddr,
}

impl Backend {
    fn start(args: &[&str]) -> Backend {
        let mut child = Command::new("python3")
            .arg(SCRIPT)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line.trim().parse().expect("the backend prints its port");
        Backend {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A self-signed certificate for api.example.com and *.example.com.
fn certificate(dir: &std::path::Path) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=api.example.com"])
        .args([
            "-addext",
            "subjectAltName=DNS:api.example.com,DNS:*.example.com",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        cert.to_str().unwrap().to_owned(),
        key.to_str().unwrap().to_owned(),
    )
}

/// openssl s_client through `addr` naming `sni`: sends one line, returns
/// what came back.
fn s_client(addr: SocketAddr, sni: &str, line: &str) -> String {
    let mut child = Command::new("timeout")
        .args(["10", "openssl", "s_client", "-quiet", "-connect"])
        .arg(addr.to_string())
        .args(["-servername", sni])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Sent before the handshake ends: s_client buffers it until then.
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(format!("{line}\n").as_bytes())
        .unwrap();
    let mut answer = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut answer)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    answer.trim().to_owned()
}

/// Accepts any certificate: the test checks where the connection went by
/// the backend's answer, and this keeps the self-signed setup small.
#[derive(Debug)]
struct AnyCert;

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A rustls client through `addr` naming `sni`: one line out, one back.
async fn rustls_client(addr: SocketAddr, sni: &str, line: &str) -> std::io::Result<String> {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AnyCert))
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    let mut tls = tokio::time::timeout(BOUND, connector.connect(name, tcp)).await??;
    tls.write_all(format!("{line}\n").as_bytes()).await?;
    let mut answer = String::new();
    tokio::io::BufReader::new(tls)
        .read_line(&mut answer)
        .await?;
    Ok(answer.trim().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_routes_tls_to_the_named_backend_without_terminating_it() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(dir.path());
    let api = Backend::start(&["tls", "api", &cert, &key]);
    let web = Backend::start(&["tls", "web", &cert, &key]);
    let gw = Gateway::start(&format!(
        r#"
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "tls"
address = "127.0.0.1:0"
protocol = "tcp"
sni = [
  {{ server_names = ["api.example.com"], cluster = "api" }},
  {{ server_names = ["*.example.com"], cluster = "web" }},
]

[[clusters]]
name = "api"
endpoints = [{{ address = "{}" }}]

[[clusters]]
name = "web"
endpoints = [{{ address = "{}" }}]
"#,
        api.addr, web.addr
    ));
    let addr = gw.addr("tls");
    // The backends see the client's own SNI: the handshake is theirs.
    let answer = tokio::task::spawn_blocking(move || s_client(addr, "api.example.com", "one"))
        .await
        .unwrap();
    assert_eq!(answer, "api saw SNI api.example.com: one");
    let answer = tokio::task::spawn_blocking(move || s_client(addr, "www.example.com", "two"))
        .await
        .unwrap();
    assert_eq!(answer, "web saw SNI www.example.com: two");
    assert_eq!(
        rustls_client(addr, "API.example.com", "three")
            .await
            .unwrap(),
        "api saw SNI API.example.com: three",
        "routing matches names case-insensitively; the backend sees the client's bytes untouched"
    );
    assert_eq!(
        rustls_client(addr, "shop.example.com", "four")
            .await
            .unwrap(),
        "web saw SNI shop.example.com: four"
    );
    // A name no entry matches, with no fallback cluster: closed, counted.
    assert!(rustls_client(addr, "other.test", "five").await.is_err());
    // Not TLS at all: no fallback either.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 8];
    let read = tokio::time::timeout(BOUND, plain.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    // A malformed ClientHello (a handshake record whose message is cut
    // short by its own length fields) is refused, and nothing panics.
    let mut bad = TcpStream::connect(addr).await.unwrap();
    bad.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0xff])
        .await
        .unwrap();
    let read = tokio::time::timeout(BOUND, bad.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");

    let (_, m) = scrape(&gw).await;
    let refused = |reason| {
        m.get(
            "meshgate_preamble_refused_total",
            &[("listener", "tls"), ("reason", reason)],
        )
    };
    assert_eq!(
        refused("no_sni_match"),
        2.0,
        "other.test and the plain connection"
    );
    assert_eq!(refused("bad_client_hello"), 1.0);
    // And it still routes after all that.
    assert_eq!(
        rustls_client(addr, "api.example.com", "six").await.unwrap(),
        "api saw SNI api.example.com: six"
    );
}

/// A gateway with a tcp listener "l4" to the cluster "backend" at `up`.
fn proxy_config(up: SocketAddr, listener_extra: &str, cluster_extra: &str) -> String {
    format!(
        r#"
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "l4"
address = "127.0.0.1:0"
protocol = "tcp"
cluster = "backend"
{listener_extra}

[[clusters]]
name = "backend"
endpoints = [{{ address = "{up}" }}]
{cluster_extra}
"#
    )
}

/// Connects to `addr`, sends `first`, reads the one-line answer.
async fn exchange(addr: SocketAddr, first: &[u8]) -> (SocketAddr, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let me = s.local_addr().unwrap();
    s.write_all(first).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(BOUND, tokio::io::BufReader::new(s).read_line(&mut answer))
        .await
        .unwrap()
        .unwrap();
    (me, answer.trim().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_gets_a_proxy_header_naming_the_client() {
    let backend = Backend::start(&["proxy"]);
    for (version, v) in [("v2", 2), ("v1", 1)] {
        let gw = Gateway::start(&proxy_config(
            backend.addr,
            "",
            &format!("send_proxy_protocol = \"{version}\""),
        ));
        let addr = gw.addr("l4");
        let (me, answer) = exchange(addr, b"payload").await;
        assert_eq!(
            answer,
            format!("src={me} dst={addr} v={v} then payload"),
            "the backend parsed the {version} header itself"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_takes_the_client_from_a_proxy_header_and_refuses_bad_ones() {
    let backend = Backend::start(&["proxy"]);
    let gw = Gateway::start(&proxy_config(
        backend.addr,
        "proxy_protocol = \"required\"",
        "send_proxy_protocol = \"v2\"",
    ));
    let addr = gw.addr("l4");
    // A balancer in front says the client is 203.0.113.7:4444: that is who
    // the backend hears about, and the bytes after the header follow.
    let (_, answer) = exchange(
        addr,
        b"PROXY TCP4 203.0.113.7 198.51.100.1 4444 5432\r\nafter the header",
    )
    .await;
    assert_eq!(
        answer,
        "src=203.0.113.7:4444 dst=198.51.100.1:5432 v=2 then after the header"
    );

    // Malformed, missing, or cut short: closed before anything is forwarded.
    let bad: [&[u8]; 4] = [
        b"PROXY TCP4 203.0.113.7 198.51.100.1 99999 5432\r\n",
        b"PROXY TCP4 not-an-address 198.51.100.1 1 2\r\n",
        b"\r\n\r\n\x00\r\nQUIT\n\x2f\x11\x00\x0c",
        b"hello without a header\r\n",
    ];
    for first in bad {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(first).await.unwrap();
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(BOUND, s.read(&mut buf)).await.unwrap();
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "{:?} got {read:?}",
            String::from_utf8_lossy(first)
        );
    }
    let (_, m) = scrape(&gw).await;
    let refused = |reason| {
        m.get(
            "meshgate_preamble_refused_total",
            &[("listener", "l4"), ("reason", reason)],
        )
    };
    assert_eq!(refused("bad_proxy_header"), 3.0);
    assert_eq!(refused("missing_proxy_header"), 1.0);

    // `optional`: with a header it is used, without one the socket's peer is.
    let gw = Gateway::start(&proxy_config(
        backend.addr,
        "proxy_protocol = \"optional\"",
        "send_proxy_protocol = \"v1\"",
    ));
    let addr = gw.addr("l4");
    let (_, answer) = exchange(addr, b"PROXY TCP4 192.0.2.9 192.0.2.1 1000 2000\r\nx").await;
    assert_eq!(answer, "src=192.0.2.9:1000 dst=192.0.2.1:2000 v=1 then x");
    let (me, answer) = exchange(addr, b"no header").await;
    assert_eq!(answer, format!("src={me} dst={addr} v=1 then no header"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_listener_forwards_the_proxy_headers_client_as_x_forwarded_for() {
    let up = common::upstream::echo("app").await;
    let gw = Gateway::start(&format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"
proxy_protocol = "required"

[[routes]]
listener = "public"
cluster = "app"

[[clusters]]
name = "app"
endpoints = [{{ address = "{}" }}]
"#,
        up.addr
    ));
    let mut s = TcpStream::connect(gw.addr("public")).await.unwrap();
    s.write_all(b"PROXY TCP4 203.0.113.50 198.51.100.1 5555 80\r\nGET /echo-headers HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut resp))
        .await
        .unwrap()
        .unwrap();
    let resp = String::from_utf8_lossy(&resp).to_ascii_lowercase();
    assert!(resp.starts_with("http/1.1 200"), "{resp}");
    // The echo upstream answers with the headers it got, as JSON.
    assert!(
        resp.contains(r#""x-forwarded-for":"203.0.113.50""#),
        "{resp}"
    );
}
