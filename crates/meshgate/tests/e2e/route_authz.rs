//! Authorization rules through the real binary: allow and deny on mTLS
//! identities (client certificates made by openssl, presented by curl) and
//! source networks, first match wins, default deny; denials counted by
//! reason, and none reaches the upstream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::route_auth::config;

use std::process::Command;

use common::Gateway;
use common::metrics::sample_of;

// curl runs on a blocking thread; the upstream needs another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authz_rules_on_mtls_identity_and_source_network() {
    let up = common::upstream::echo("up").await;
    let pki = common::pki::Pki::new();
    let ca = pki.ca("mesh-ca");
    let server = pki.leaf(&ca, "gateway", "DNS:localhost,IP:127.0.0.1", false);
    let web = pki.leaf(&ca, "web", "URI:spiffe://example.org/svc/web", true);
    let evil = pki.leaf(&ca, "evil", "URI:spiffe://evil.org/svc/web", true);
    let listener = format!(
        "tls = {{ cert = \"{}\", key = \"{}\", client_ca = \"{}\", client_auth = \"optional\" }}",
        server.cert.display(),
        server.key.display(),
        ca.cert.display()
    );
    let route = r#"
[[routes.authz]]
action = "deny"
path_prefix = "/admin/"
[[routes.authz]]
action = "allow"
identities = ["spiffe://example.org/svc/*"]
[[routes.authz]]
action = "allow"
sources = ["10.0.0.0/8"]
"#;
    let gw = Gateway::start(&config(up.addr, &listener, route));
    let url = |path: &str| format!("https://127.0.0.1:{}{path}", gw.addr("public").port());
    let curl = |path: &str, cert: Option<&common::pki::Pair>| {
        let mut args = vec![
            "-sS".to_owned(),
            "--cacert".to_owned(),
            ca.cert.display().to_string(),
            "-o".to_owned(),
            "/dev/null".to_owned(),
            "-w".to_owned(),
            "%{http_code}".to_owned(),
        ];
        if let Some(c) = cert {
            args.extend([
                "--cert".into(),
                c.cert.display().to_string(),
                "--key".into(),
                c.key.display().to_string(),
            ]);
        }
        args.push(url(path));
        let out = Command::new("curl").args(&args).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(curl("/orders", Some(&web)), "200");
    assert_eq!(
        curl("/admin/users", Some(&web)),
        "403",
        "the deny rule comes first"
    );
    assert_eq!(curl("/orders", Some(&evil)), "403", "another trust domain");
    assert_eq!(
        curl("/orders", None),
        "403",
        "no certificate, not from 10/8"
    );
    assert_eq!(up.hits(), 1);
    assert_eq!(
        sample_of(
            &gw,
            "meshgate_authz_denied_total",
            &[("route", "api"), ("reason", "no_matching_rule")]
        )
        .await,
        Some(2.0)
    );
    assert_eq!(
        sample_of(
            &gw,
            "meshgate_authz_denied_total",
            &[("route", "api"), ("reason", "denied_by_rule")]
        )
        .await,
        Some(1.0)
    );
}
