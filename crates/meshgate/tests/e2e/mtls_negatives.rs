//! The identity negatives of issue 5 against one mTLS listener
//! (`client_auth = "required"`) whose route allows only the trust domain
//! `example.org`: a foreign CA, an expired certificate, a wrong trust
//! domain, no client certificate, TLS 1.0 and TLS 1.1. Every one is
//! refused, all before any upstream connection; a good certificate then
//! passes, so the refusals are the gateway's judgement and not a broken
//! setup. Clients are `openssl s_client`; the expired certificate is made by
//! Python's `cryptography`, signed by the same CA as the good one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

use common::Gateway;
use common::pki::{Pair, Pki};

/// Sends one HTTP/1.1 request over `openssl s_client` with `args`; returns
/// the status line if a response came back.
fn request(addr: SocketAddr, ca: &Pair, args: &[&str]) -> Option<String> {
    // `timeout` bounds a handshake that neither side finishes.
    let mut child = Command::new("timeout")
        .args(["20", "openssl", "s_client", "-connect", &addr.to_string()])
        .args([
            "-servername",
            "localhost",
            "-CAfile",
            ca.cert.to_str().unwrap(),
        ])
        .args(["-quiet", "-ign_eof"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET /orders HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find(|l| l.starts_with("HTTP/1.1 "))
        .map(|l| l.trim().to_owned())
}

/// A client certificate for `uri` signed by `ca` that expired yesterday.
fn expired(dir: &Path, ca: &Pair, uri: &str) -> Pair {
    const SCRIPT: &str = r#"
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
ca_cert = x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read())
ca_key = serialization.load_pem_private_key(open(sys.argv[2], "rb").read(), None)
key = ec.generate_private_key(ec.SECP256R1())
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder()
    .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expired")]))
    .issuer_name(ca_cert.subject)
    .public_key(key.public_key())
    .serial_number(x509.random_serial_number())
    .not_valid_before(now - datetime.timedelta(days=2))
    .not_valid_after(now - datetime.timedelta(days=1))
    .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(sys.argv[3])]), False)
    .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
    .sign(ca_key, hashes.SHA256()))
open(sys.argv[4], "wb").write(cert.public_bytes(serialization.Encoding.PEM))
open(sys.argv[5], "wb").write(key.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
"#;
    let pair = Pair {
        cert: dir.join("expired.pem"),
        key: dir.join("expired-key.pem"),
    };
    let out = Command::new("python3")
        .args(["-c", SCRIPT])
        .args([&ca.cert, &ca.key, Path::new(uri), &pair.cert, &pair.key])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "cryptography (pip install cryptography): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    pair
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_identity_negative_is_refused_before_any_upstream_connect() {
    let up = common::upstream::echo("up").await;
    let pki = Pki::new();
    let ca = pki.ca("mesh");
    let foreign_ca = pki.ca("foreign");
    let server = pki.leaf(&ca, "gateway", "DNS:localhost,IP:127.0.0.1", false);
    let good = pki.leaf(&ca, "web", "URI:spiffe://example.org/svc/web", true);
    let foreign = pki.leaf(
        &foreign_ca,
        "intruder",
        "URI:spiffe://example.org/svc/web",
        true,
    );
    let other_domain = pki.leaf(&ca, "other", "URI:spiffe://evil.org/svc/web", true);
    let old = expired(pki.dir(), &ca, "spiffe://example.org/svc/web");
    let config = format!(
        r#"
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "mesh"
address = "127.0.0.1:0"
tls = {{ cert = "{}", key = "{}", client_ca = "{}", client_auth = "required" }}

[[routes]]
name = "orders"
listener = "mesh"
cluster = "up"
[[routes.authz]]
action = "allow"
identities = ["spiffe://example.org/*"]

[[clusters]]
name = "up"
endpoints = [{{ address = "{}" }}]
"#,
        server.cert.display(),
        server.key.display(),
        ca.cert.display(),
        up.addr
    );
    let gw = Gateway::start(&config);
    let addr = gw.addr("mesh");
    let with = |pair: &Pair| {
        vec![
            "-cert".to_owned(),
            pair.cert.display().to_string(),
            "-key".to_owned(),
            pair.key.display().to_string(),
        ]
    };
    let strs = |v: &[String]| {
        v.iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\u{0}")
    };
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("a certificate from a foreign CA", with(&foreign)),
        ("an expired certificate", with(&old)),
        ("no client certificate", Vec::new()),
        (
            "TLS 1.0",
            [
                with(&good),
                vec![
                    "-tls1".into(),
                    "-cipher".into(),
                    "DEFAULT@SECLEVEL=0".into(),
                ],
            ]
            .concat(),
        ),
        (
            "TLS 1.1",
            [
                with(&good),
                vec![
                    "-tls1_1".into(),
                    "-cipher".into(),
                    "DEFAULT@SECLEVEL=0".into(),
                ],
            ]
            .concat(),
        ),
    ];
    for (what, args) in &cases {
        let joined = strs(args);
        let args: Vec<&str> = joined.split('\u{0}').filter(|a| !a.is_empty()).collect();
        assert_eq!(request(addr, &ca, &args), None, "{what} got an HTTP answer");
    }
    // The wrong trust domain completes the handshake (same CA) and is
    // refused by the route's authorization.
    let other = with(&other_domain);
    let other: Vec<&str> = other.iter().map(String::as_str).collect();
    assert_eq!(
        request(addr, &ca, &other).as_deref(),
        Some("HTTP/1.1 403 Forbidden")
    );
    assert_eq!(up.connections(), 0, "no negative reached the upstream");
    assert_eq!(
        common::metrics::sample_of(
            &gw,
            "meshgate_tls_handshake_failures_total",
            &[("listener", "mesh")]
        )
        .await,
        Some(cases.len() as f64),
        "each refused handshake is counted"
    );

    let ok = with(&good);
    let ok: Vec<&str> = ok.iter().map(String::as_str).collect();
    assert_eq!(request(addr, &ca, &ok).as_deref(), Some("HTTP/1.1 200 OK"));
    assert_eq!(up.hits(), 1);
}
