//! TLS termination through the real binary: certificates chosen by SNI,
//! ALPN, the version floor, client certificates, reload of changed files
//! without dropping connections, TLS on a tcp listener, and unusable files
//! reported by config file, line and field.
//!
//! Certificates come from the `openssl` command line (`common::pki`) and
//! clients are curl, `openssl s_client` and a rustls + hyper client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;

use bytes::Bytes;
use common::Gateway;
use common::metrics::sample_of;
use common::pki::{Pair, Pki};
use common::wait::eventually;
use http_body_util::{BodyExt, Full};

/// A gateway whose listener "secure" (http, or `protocol`) has `tls = {
/// tls }` and sends everything to `up`.
fn config(protocol: &str, tls: &str, up: SocketAddr) -> String {
    let forwarding = if protocol == "tcp" {
        "cluster = \"up\"".to_owned()
    } else {
        String::new()
    };
    let routes = if protocol == "tcp" {
        ""
    } else {
        "[[routes]]\nlistener = \"secure\"\ncluster = \"up\"\n"
    };
    format!(
        r#"
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "secure"
address = "127.0.0.1:0"
protocol = "{protocol}"
tls = {{ {tls} }}
{forwarding}

{routes}

[[clusters]]
name = "up"
endpoints = [{{ address = "{up}" }}]
"#
    )
}

fn cert_key(pair: &Pair) -> String {
    format!(
        "cert = \"{}\", key = \"{}\"",
        pair.cert.display(),
        pair.key.display()
    )
}

/// curl to `https://{host}:{port}{path}` resolved to the gateway, trusting
/// `ca`: (exit ok, stdout). `extra` adds arguments (client certificates,
/// `--http2`).
fn curl_https(gw: &Gateway, host: &str, path: &str, ca: &Pair, extra: &[&str]) -> (bool, String) {
    let port = gw.addr("secure").port();
    let resolve = format!("{host}:{port}:127.0.0.1");
    let url = format!("https://{host}:{port}{path}");
    let mut args = vec!["--cacert", ca.cert.to_str().unwrap(), "--resolve", &resolve];
    args.extend_from_slice(extra);
    args.push(&url);
    common::curl(&args)
}

/// `openssl s_client` to the gateway: whether the handshake succeeded, and
/// its output (the peer certificate's subject among it).
fn s_client(addr: SocketAddr, args: &[&str]) -> (bool, String) {
    let out = Command::new("timeout")
        .args(["10", "openssl", "s_client", "-connect"])
        .arg(addr.to_string())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_picks_the_certificate_and_alpn_the_protocol() {
    let pki = Pki::new();
    let ca = pki.ca("ca");
    let a = pki.leaf(&ca, "a", "DNS:a.test", false);
    let b = pki.leaf(&ca, "b", "DNS:b.test,DNS:*.wild.test", false);
    let up = common::upstream::echo("up").await;
    let tls = format!(
        "certificates = [{{ {} }}, {{ {} }}]",
        cert_key(&a),
        cert_key(&b)
    );
    let gw = Gateway::start(&config("http", &tls, up.addr));

    // curl verifies the certificate against the name it asked for.
    let (ok, body) = curl_https(&gw, "a.test", "/x", &ca, &["--http1.1"]);
    assert!(ok, "a.test over HTTP/1.1: {body}");
    let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed["path"], "/x");
    assert_eq!(echoed["headers"]["x-forwarded-proto"], "https");
    for host in ["b.test", "deep.wild.test"] {
        let (ok, version) = curl_https(
            &gw,
            host,
            "/y",
            &ca,
            &[
                "--http2",
                "-o",
                "/dev/null",
                "-w",
                "%{http_version} %{http_code}",
            ],
        );
        assert!(ok, "{host}");
        assert_eq!(version, "2 200", "{host}: ALPN chose h2, and it was served");
    }
    let (ok, version) = curl_https(
        &gw,
        "a.test",
        "/z",
        &ca,
        &[
            "--http1.1",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
        ],
    );
    assert!(ok);
    assert_eq!(version, "1.1 200");

    // The first certificate is the default: no SNI, or a name none covers.
    let addr = gw.addr("secure");
    let (_, b_out) = s_client(addr, &["-servername", "b.test"]);
    assert!(b_out.contains("CN = b"), "{b_out}");
    let (_, none) = s_client(addr, &["-noservername"]);
    assert!(none.contains("CN = a"), "{none}");
    let (_, other) = s_client(addr, &["-servername", "other.test"]);
    assert!(other.contains("CN = a"), "{other}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_below_the_floor_are_refused() {
    let pki = Pki::new();
    let ca = pki.ca("ca");
    let a = pki.leaf(&ca, "a", "DNS:a.test", false);
    let up = common::upstream::echo("up").await;
    let gw = Gateway::start(&config("http", &cert_key(&a), up.addr));
    let addr = gw.addr("secure");
    // SECLEVEL=0 lets openssl offer the old versions at all, so a refusal
    // is the gateway's.
    let old = ["-cipher", "DEFAULT@SECLEVEL=0"];
    for version in ["-tls1", "-tls1_1"] {
        let (ok, out) = s_client(addr, &[&[version][..], &old[..]].concat());
        assert!(!ok, "{version} must be refused: {out}");
        // Refused by the gateway's alert (openssl sent its ClientHello),
        // not by openssl declining to try.
        assert!(out.contains("SSL alert number"), "{version}: {out}");
    }
    for version in ["-tls1_2", "-tls1_3"] {
        let (ok, out) = s_client(addr, &[version]);
        assert!(ok, "{version}: {out}");
    }
    // A TLS 1.2 handshake gets an ECDHE suite with an AEAD.
    let (_, out) = s_client(addr, &["-tls1_2"]);
    assert!(
        out.contains("ECDHE") && (out.contains("GCM") || out.contains("CHACHA20")),
        "{out}"
    );
    assert_eq!(up.hits(), 0);

    let floor = format!("{}, min_version = \"1.3\"", cert_key(&a));
    let gw13 = Gateway::start(&config("http", &floor, up.addr));
    let addr13 = gw13.addr("secure");
    assert!(!s_client(addr13, &["-tls1_2"]).0, "1.2 under a 1.3 floor");
    assert!(s_client(addr13, &["-tls1_3"]).0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_verified_before_any_upstream_work() {
    let pki = Pki::new();
    let ca = pki.ca("ca");
    let server = pki.leaf(&ca, "server", "DNS:api.test", false);
    let clients = pki.ca("clients");
    let good = pki.leaf(&clients, "good", "URI:spiffe://example.org/svc/web", true);
    let foreign_ca = pki.ca("foreign");
    let foreign = pki.leaf(
        &foreign_ca,
        "stranger",
        "URI:spiffe://evil.org/svc/web",
        true,
    );
    let up = common::upstream::echo("up").await;
    let with_cert = |p: &Pair| {
        vec![
            "--cert".to_owned(),
            p.cert.display().to_string(),
            "--key".to_owned(),
            p.key.display().to_string(),
        ]
    };
    let (good_args, foreign_args) = (with_cert(&good), with_cert(&foreign));

    let required = format!(
        "{}, client_ca = \"{}\"",
        cert_key(&server),
        clients.cert.display()
    );
    let gw = Gateway::start(&config("http", &required, up.addr));
    assert!(
        !curl_https(&gw, "api.test", "/", &ca, &[]).0,
        "no client certificate"
    );
    assert!(
        !curl_https(&gw, "api.test", "/", &ca, &as_strs(&foreign_args)).0,
        "a certificate from a foreign CA"
    );
    assert_eq!(up.connections(), 0, "refused before any upstream connect");
    let (ok, body) = curl_https(&gw, "api.test", "/", &ca, &as_strs(&good_args));
    assert!(ok, "{body}");
    assert_eq!(up.hits(), 1);

    let optional = format!("{required}, client_auth = \"optional\"");
    let gw = Gateway::start(&config("http", &optional, up.addr));
    assert!(
        curl_https(&gw, "api.test", "/", &ca, &[]).0,
        "optional: none is fine"
    );
    assert!(
        !curl_https(&gw, "api.test", "/", &ca, &as_strs(&foreign_args)).0,
        "optional: one that is sent must verify"
    );
    assert!(curl_https(&gw, "api.test", "/", &ca, &as_strs(&good_args)).0);
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A keep-alive HTTP/1.1 connection over rustls, trusting `ca`.
async fn tls_client(
    addr: SocketAddr,
    host: &str,
    ca: &Pair,
) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&ca.cert).unwrap();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

async fn get_on(sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>) -> u16 {
    let req = http::Request::get("/held")
        .header("host", "a.test")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    resp.into_body().collect().await.unwrap();
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_files_are_reloaded_and_open_connections_stay() {
    let pki = Pki::new();
    let ca = pki.ca("ca");
    let v1 = pki.leaf(&ca, "v1", "DNS:a.test", false);
    let v2 = pki.leaf(&ca, "v2", "DNS:a.test", false);
    let live = Pair {
        cert: pki.dir().join("live.pem"),
        key: pki.dir().join("live-key.pem"),
    };
    std::fs::copy(&v1.cert, &live.cert).unwrap();
    std::fs::copy(&v1.key, &live.key).unwrap();
    let up = common::upstream::echo("up").await;
    let gw = Gateway::start(&config("http", &cert_key(&live), up.addr));
    let addr = gw.addr("secure");
    assert!(
        s_client(addr, &["-servername", "a.test"])
            .1
            .contains("CN = v1")
    );
    let mut held = tls_client(addr, "a.test", &ca).await;
    assert_eq!(get_on(&mut held).await, 200);

    // Key first, then certificate: files are taken only once they have
    // stopped changing for a poll, so the pair is never read half-written.
    std::fs::copy(&v2.key, &live.key).unwrap();
    std::fs::copy(&v2.cert, &live.cert).unwrap();
    eventually("new handshakes get the new certificate", || async {
        s_client(addr, &["-servername", "a.test"])
            .1
            .contains("CN = v2")
    })
    .await;
    assert_eq!(get_on(&mut held).await, 200, "the open connection stays");
    let ok = sample_of(
        &gw,
        "meshgate_tls_certificate_reloads_total",
        &[("listener", "secure"), ("result", "ok")],
    )
    .await;
    assert!(ok.unwrap_or(0.0) >= 1.0);

    // A broken file keeps the last good certificate.
    let failed = || async {
        sample_of(
            &gw,
            "meshgate_tls_certificate_reloads_total",
            &[("listener", "secure"), ("result", "failed")],
        )
        .await
        .unwrap_or(0.0)
    };
    let before = failed().await;
    std::fs::write(&live.cert, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    eventually("the broken file is noticed", || async {
        failed().await > before
    })
    .await;
    let (ok, out) = s_client(addr, &["-servername", "a.test"]);
    assert!(ok && out.contains("CN = v2"), "still served with v2: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_listener_terminates_tls_and_forwards_plaintext() {
    let pki = Pki::new();
    let ca = pki.ca("ca");
    let a = pki.leaf(&ca, "a", "DNS:a.test", false);
    let up = common::upstream::echo("up").await;
    let gw = Gateway::start(&config("tcp", &cert_key(&a), up.addr));
    for _ in 0..3 {
        let (ok, body) = curl_https(&gw, "a.test", "/through-tcp", &ca, &["--http1.1"]);
        assert!(ok, "{body}");
        let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(echoed["path"], "/through-tcp");
        // L4: the upstream gets the client's bytes, with no forwarded headers.
        assert!(echoed["headers"].get("x-forwarded-proto").is_none());
    }
    assert_eq!(up.hits(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_files_name_config_line_and_field_and_change_nothing() {
    let pki = Pki::new();
    let ca = pki.ca("ca");
    let a = pki.leaf(&ca, "a", "DNS:a.test", false);
    let b = pki.leaf(&ca, "b", "DNS:a.test", false);
    let up = common::upstream::echo("up").await;

    // At start-up: the process says why and exits non-zero.
    let mismatched = format!(
        "cert = \"{}\", key = \"{}\"",
        a.cert.display(),
        b.key.display()
    );
    let bad = pki.dir().join("bad.toml");
    std::fs::write(&bad, config("http", &mismatched, up.addr)).unwrap();
    let out = common::run_binary(&["run", "-c", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(
        logs.contains("listeners[0].tls.key") && logs.contains("does not fit"),
        "{logs}"
    );

    // `meshgate validate` loads the files too.
    let out = common::run_binary(&["validate", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("listeners[0].tls.key") && said.contains("does not fit"),
        "{said}"
    );

    // On reload: rejected with the config file, line and field; the
    // running config keeps serving.
    let gw = Gateway::start(&config("http", &cert_key(&a), up.addr));
    let missing = format!(
        "cert = \"{}\", key = \"{}\"",
        pki.dir().join("nope.pem").display(),
        a.key.display()
    );
    let file = gw.config_path().display().to_string();
    std::fs::write(gw.config_path(), config("http", &missing, up.addr)).unwrap();
    eventually("the reload is rejected", || async {
        sample_of(
            &gw,
            "meshgate_config_reloads_total",
            &[("result", "rejected")],
        )
        .await
        .unwrap_or(0.0)
            >= 1.0
    })
    .await;
    // The log line may trail the metric by a moment.
    eventually("the rejection is logged", || async {
        gw.logs().contains("nope.pem")
    })
    .await;
    let logs = gw.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("nope.pem"))
        .unwrap_or_else(|| panic!("{logs}"));
    assert!(
        line.contains(&format!("{file}:9:")) && line.contains("listeners[0].tls.cert"),
        "{line}"
    );
    assert!(curl_https(&gw, "a.test", "/", &ca, &[]).0, "still serving");
}
