//! TLS origination to upstreams through the real binary: verified h1 and
//! h2 clusters, refusals (unknown CA, a name that does not match, a
//! missing client certificate) that never reach the upstream's handler,
//! the SNI and client certificate the upstream sees, one handshake per
//! pooled connection, session resumption, `dangerous_skip_verify` and its warning, health
//! checks and tcp listeners over TLS, reloads, and unusable files.
//!
//! Certificates come from the `openssl` command line (`common::pki`); the
//! upstreams are rustls + hyper in this process (`common::tls_upstream`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::Gateway;
use common::metrics::{created_reused, sample_of};
use common::pki::{Pair, Pki};
use common::tls_upstream::{self, Handshake, TlsUpstream};
use common::wait::eventually;

/// A gateway whose listener "public" sends everything to the cluster "up"
/// (`protocol`, one endpoint at `up`) with `tls = { tls }`, plus `extra`
/// cluster fields. Retries off, so a refusal is one connect.
fn config(protocol: &str, up: &TlsUpstream, tls: &str, extra: &str) -> String {
    format!(
        r#"
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[routes]]
listener = "public"
cluster = "up"
timeout = "5s"
retry = {{ num_retries = 0 }}

[[clusters]]
name = "up"
protocol = "{protocol}"
endpoints = [{{ address = "{}" }}]
tls = {{ {tls} }}
{extra}
"#,
        up.addr
    )
}

fn ca_is(ca: &Pair) -> String {
    format!("ca = \"{}\"", ca.cert.display())
}

async fn get(gw: &Gateway, path: &str) -> common::client::Reply {
    common::client::get(gw.addr("public"), path, &[]).await
}

async fn handshake_failures(gw: &Gateway) -> f64 {
    sample_of(
        gw,
        "meshgate_upstream_tls_handshake_failures_total",
        &[("cluster", "up")],
    )
    .await
    .unwrap_or(0.0)
}

/// A CA and a server certificate for `san` signed by it.
fn server_pki(pki: &Pki, san: &str) -> (Pair, Pair) {
    let ca = pki.ca("ca");
    let server = pki.leaf(&ca, "server", san, false);
    (ca, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_h1_cluster_keeps_one_tls_connection_for_many_requests() {
    let pki = Pki::new();
    let (ca, server) = server_pki(&pki, "IP:127.0.0.1");
    let up = tls_upstream::start(&server, None).await;
    let gw = Gateway::start(&config("http1", &up, &ca_is(&ca), ""));
    for i in 0..5 {
        let r = get(&gw, &format!("/h1/{i}")).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let seen = r.json();
        assert_eq!(seen["path"], format!("/h1/{i}"));
        assert_eq!(seen["version"], "HTTP/1.1");
        assert_eq!(seen["alpn"], "http/1.1");
        // An IP endpoint without `sni`: no SNI, the IP SAN is verified.
        assert!(seen["sni"].is_null(), "{seen}");
    }
    assert_eq!(up.hits(), 5);
    assert_eq!(up.accepted(), 1, "one TCP connection");
    assert_eq!(up.handshakes().len(), 1, "one handshake for five requests");
    assert_eq!(created_reused(&gw, "up").await, (1.0, 4.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_h2_cluster_negotiates_h2_and_shares_its_connection() {
    let pki = Pki::new();
    let (ca, server) = server_pki(&pki, "DNS:api.internal");
    let up = tls_upstream::start(&server, None).await;
    let tls = format!("{}, sni = \"api.internal\"", ca_is(&ca));
    let gw = Gateway::start(&config("h2", &up, &tls, ""));
    for _ in 0..3 {
        let r = get(&gw, "/over-h2").await;
        assert_eq!(r.status, 200, "{}", r.text());
        let seen = r.json();
        assert_eq!(seen["version"], "HTTP/2.0");
        assert_eq!(seen["alpn"], "h2");
        assert_eq!(seen["scheme"], "https");
    }
    assert_eq!(up.hits(), 3);
    assert_eq!(
        up.handshakes(),
        vec![Handshake {
            sni: Some("api.internal".into()),
            alpn: Some("h2".into()),
            client_cert: false,
            resumed: false,
        }]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_connections_resume_the_cluster_s_tls_session() {
    let pki = Pki::new();
    let (ca, server) = server_pki(&pki, "IP:127.0.0.1");
    let up = tls_upstream::start(&server, None).await;
    // No pooling: every request needs a new connection.
    let no_pool = "pool = { max_idle_per_endpoint = 0 }";
    let gw = Gateway::start(&config("http1", &up, &ca_is(&ca), no_pool));
    for _ in 0..3 {
        assert_eq!(get(&gw, "/").await.status, 200);
    }
    let resumed: Vec<bool> = up.handshakes().iter().map(|h| h.resumed).collect();
    assert_eq!(
        resumed,
        [false, true, true],
        "one full handshake, then resumptions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_ca_is_a_502_and_no_request_reaches_the_upstream() {
    let pki = Pki::new();
    let (_, server) = server_pki(&pki, "IP:127.0.0.1");
    let other = pki.ca("other");
    let up = tls_upstream::start(&server, None).await;
    let gw = Gateway::start(&config("http1", &up, &ca_is(&other), ""));
    let r = get(&gw, "/secret").await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.json()["error"], "upstream_tls_failed");
    assert!(up.accepted() >= 1, "the connect itself happened");
    assert_eq!(up.hits(), 0, "the handler never ran");
    assert!(up.handshakes().is_empty());
    assert!(handshake_failures(&gw).await >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_sees_the_configured_sni_and_a_mismatch_is_refused() {
    let pki = Pki::new();
    let (ca, server) = server_pki(&pki, "DNS:api.internal");
    let up = tls_upstream::start(&server, None).await;

    let right = format!("{}, sni = \"API.internal\"", ca_is(&ca));
    let gw = Gateway::start(&config("http1", &up, &right, ""));
    let r = get(&gw, "/").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["sni"], "api.internal");

    // The certificate does not name this server: refused.
    let wrong = format!("{}, sni = \"other.internal\"", ca_is(&ca));
    let gw = Gateway::start(&config("http1", &up, &wrong, ""));
    let before = up.hits();
    let r = get(&gw, "/").await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.json()["error"], "upstream_tls_failed");
    // Without sni the IP address is checked, and this certificate has none.
    let gw = Gateway::start(&config("http1", &up, &ca_is(&ca), ""));
    let r = get(&gw, "/").await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(up.hits(), before, "no refused request reached the handler");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_is_presented_to_an_upstream_that_requires_one() {
    let pki = Pki::new();
    let (ca, server) = server_pki(&pki, "IP:127.0.0.1");
    let clients = pki.ca("clients");
    let me = pki.leaf(&clients, "gateway", "URI:spiffe://example.org/svc/gw", true);
    let up = tls_upstream::start(&server, Some(&clients)).await;

    let with = format!(
        "{}, cert = \"{}\", key = \"{}\"",
        ca_is(&ca),
        me.cert.display(),
        me.key.display()
    );
    let gw = Gateway::start(&config("http1", &up, &with, ""));
    let r = get(&gw, "/mtls").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["client_cert"], true);
    assert_eq!(up.hits(), 1);

    let gw = Gateway::start(&config("http1", &up, &ca_is(&ca), ""));
    let r = get(&gw, "/mtls").await;
    assert_eq!(r.status, 502, "without a client certificate: {}", r.text());
    assert_eq!(up.hits(), 1, "refused before the handler");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dangerous_skip_verify_accepts_a_self_signed_upstream_and_warns() {
    let pki = Pki::new();
    let selfsigned = pki.ca("selfsigned");
    let up = tls_upstream::start(&selfsigned, None).await;

    // `tls = {}` verifies against the system's trust store: refused.
    let gw = Gateway::start(&config("http1", &up, "", ""));
    assert_eq!(get(&gw, "/").await.status, 502);
    assert!(!gw.logs().contains("dangerous_skip_verify"));

    let gw = Gateway::start(&config("http1", &up, "dangerous_skip_verify = true", ""));
    let r = get(&gw, "/").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.hits(), 1);
    let logs = gw.logs();
    let warning = logs
        .lines()
        .find(|l| l.contains("dangerous_skip_verify"))
        .unwrap_or_else(|| panic!("no warning: {logs}"));
    assert!(
        warning.contains("WARN") && warning.contains("cluster=\"up\""),
        "names the cluster: {warning}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_of_a_tls_cluster_use_tls() {
    let pki = Pki::new();
    let (ca, server) = server_pki(&pki, "IP:127.0.0.1");
    let up = tls_upstream::start(&server, None).await;
    let check = r#"health_check = { kind = "http", path = "/healthz", interval = "200ms", timeout = "200ms" }"#;
    let gw = Gateway::start(&config("http1", &up, &ca_is(&ca), check));
    eventually("a probe passes over TLS", || async {
        sample_of(
            &gw,
            "meshgate_health_checks_total",
            &[("cluster", "up"), ("result", "success")],
        )
        .await
        .unwrap_or(0.0)
            >= 2.0
    })
    .await;
    let probes = up.handshakes();
    assert!(probes.len() >= 2, "{probes:?}");
    assert!(probes.iter().all(|h| h.alpn.as_deref() == Some("http/1.1")));

    // A probe that cannot verify the endpoint fails.
    let other = pki.ca("other");
    let gw = Gateway::start(&config("http1", &up, &ca_is(&other), check));
    eventually("probes fail the handshake", || async {
        sample_of(
            &gw,
            "meshgate_health_checks_total",
            &[("cluster", "up"), ("result", "failure")],
        )
        .await
        .unwrap_or(0.0)
            >= 2.0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_listener_originates_tls_to_its_cluster() {
    let pki = Pki::new();
    let (ca, server) = server_pki(&pki, "DNS:api.internal");
    let up = tls_upstream::start(&server, None).await;
    let gw = Gateway::start(&format!(
        r#"
[[listeners]]
name = "tcp"
address = "127.0.0.1:0"
protocol = "tcp"
cluster = "up"

[[clusters]]
name = "up"
endpoints = [{{ address = "{}" }}]
tls = {{ {}, sni = "api.internal" }}
"#,
        up.addr,
        ca_is(&ca)
    ));
    // Plaintext HTTP in, TLS out: the upstream's answer comes back.
    let r = common::client::get(gw.addr("tcp"), "/l4", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = r.json();
    assert_eq!(seen["path"], "/l4");
    assert_eq!(seen["sni"], "api.internal");
    assert!(seen["alpn"].is_null(), "no ALPN for raw bytes: {seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_unchanged_tls_connections_and_applies_changed_settings() {
    let pki = Pki::new();
    let (ca, server) = server_pki(&pki, "DNS:a.internal,DNS:b.internal");
    let up = tls_upstream::start(&server, None).await;
    let tls = |sni: &str| format!("{}, sni = \"{sni}\"", ca_is(&ca));
    let gw = Gateway::start(&config("http1", &up, &tls("a.internal"), ""));
    assert_eq!(get(&gw, "/").await.json()["sni"], "a.internal");

    // Unrelated change (the route's timeout): the pooled TLS connection
    // stays in use.
    let unrelated = config("http1", &up, &tls("a.internal"), "")
        .replace("timeout = \"5s\"", "timeout = \"6s\"");
    std::fs::write(gw.config_path(), unrelated).unwrap();
    gw.signal(libc::SIGHUP);
    eventually("the reload is applied", || async {
        sample_of(&gw, "meshgate_config_reloads_total", &[("result", "ok")])
            .await
            .unwrap_or(0.0)
            >= 1.0
    })
    .await;
    assert_eq!(get(&gw, "/").await.json()["sni"], "a.internal");
    assert_eq!(up.handshakes().len(), 1, "the same connection");

    // Changed sni: new connections use it (the old pool goes with its
    // generation).
    std::fs::write(
        gw.config_path(),
        config("http1", &up, &tls("b.internal"), ""),
    )
    .unwrap();
    gw.signal(libc::SIGHUP);
    eventually("requests go out with the new sni", || async {
        get(&gw, "/").await.json()["sni"] == "b.internal"
    })
    .await;
    assert_eq!(up.handshakes().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_files_name_config_line_and_field() {
    let pki = Pki::new();
    let (ca, server) = server_pki(&pki, "IP:127.0.0.1");
    let up = tls_upstream::start(&server, None).await;
    let missing = pki.dir().join("nope.pem");
    let cases = [
        (
            format!("ca = \"{}\"", missing.display()),
            "clusters[0].tls.ca",
            "cannot read it",
        ),
        (
            format!(
                "{}, cert = \"{}\", key = \"{}\"",
                ca_is(&ca),
                server.cert.display(),
                ca.key.display()
            ),
            "clusters[0].tls.key",
            "does not fit",
        ),
    ];
    for (tls, field, why) in cases {
        let file = pki.dir().join("bad.toml");
        std::fs::write(&file, config("http1", &up, &tls, "")).unwrap();
        let name = file.display().to_string();
        for args in [
            vec!["validate", name.as_str()],
            vec!["run", "-c", name.as_str()],
        ] {
            let out = common::run_binary(&args);
            assert!(!out.status.success(), "{args:?}");
            let said = String::from_utf8_lossy(&out.stderr);
            let line = said
                .lines()
                .find(|l| l.contains(field))
                .unwrap_or_else(|| panic!("{args:?}: {said}"));
            assert!(
                line.contains(&format!("{name}:19:")) && line.contains(why),
                "{args:?}: {line}"
            );
        }
    }
}
