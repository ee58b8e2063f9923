//! Route authentication and authorization at their edges, through the real
//! binary: headers a client must not be able to forge or strip, paths
//! written to slip past a rule, a JWKS served over https (by Python's
//! `http.server` with a certificate from openssl), and a signed request that
//! tries to switch protocols.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::route_auth::{bearer, config, pyjwt_tokens, run};

use std::io::BufRead as _;
use std::process::{Command, Stdio};

use common::Gateway;
use common::client::get;
use common::wait::eventually;

#[tokio::test]
async fn forwarded_claim_headers_cannot_be_forged_or_stripped_under_any_method() {
    let up = common::upstream::echo("up").await;
    let dir = tempfile::tempdir().unwrap();
    let tokens = pyjwt_tokens(dir.path());
    let keys = dir.path().join("keys.toml");
    let key = run(&[
        "apikey",
        "create",
        "--service",
        "billing",
        "--file",
        keys.to_str().unwrap(),
    ]);
    let route = format!(
        r#"
[routes.auth]
api_key = {{ file = "{}" }}
[routes.auth.jwt]
jwks_file = "{}"
algorithms = ["RS256"]
forward_claims = [{{ claim = "sub", header = "x-user" }}]
"#,
        keys.display(),
        dir.path().join("jwks.json").display()
    );
    let gw = Gateway::start(&config(up.addr, "", &route));
    let addr = gw.addr("public");

    // An API key admits the request; the client's x-user does not pass.
    let r = get(addr, "/o", &[("x-api-key", &key), ("x-user", "admin")]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["headers"].get("x-user").is_none(), "{}", r.text());
    // An API key plus a bearer token the route would verify: refused, so
    // an unverified token never reaches the upstream.
    let both = get(
        addr,
        "/o",
        &[
            ("x-api-key", &key),
            ("authorization", "Bearer not.verified.token"),
        ],
    )
    .await;
    assert_eq!(
        (both.status.as_u16(), both.json()["reason"].as_str()),
        (401, Some("malformed"))
    );
    // A client naming the claim header in Connection (to have the
    // hop-by-hop strip delete meshgate's value) is refused.
    let strip = get(
        addr,
        "/o",
        &[
            ("authorization", &bearer(&tokens["good"])),
            ("connection", "x-user"),
        ],
    )
    .await;
    assert_eq!(
        (strip.status.as_u16(), strip.json()["reason"].as_str()),
        (401, Some("malformed"))
    );
    let ok = get(addr, "/o", &[("authorization", &bearer(&tokens["good"]))]).await;
    assert_eq!(ok.json()["headers"]["x-user"], "alice");
    assert_eq!(up.hits(), 2);
}

#[tokio::test]
async fn paths_written_to_slip_past_a_rule_are_judged_as_the_upstream_reads_them() {
    let up = common::upstream::echo("up").await;
    let route = r#"
[[routes.authz]]
action = "deny"
path_prefix = "/admin/"
[[routes.authz]]
action = "allow"
path_prefix = "/api"
"#;
    let gw = Gateway::start(&config(up.addr, "", route));
    let addr = gw.addr("public");
    for path in [
        "/admin/x",
        "//admin/x",
        "/./admin/x",
        "/api/../admin/x",
        "/%61dmin/x",
    ] {
        let r = get(addr, path, &[]).await;
        assert_eq!(r.status, 403, "{path}: {}", r.text());
    }
    for path in ["/admin%2Fx", "/api%2F..%2Fadmin"] {
        let r = get(addr, path, &[]).await;
        assert_eq!(
            (r.status.as_u16(), r.json()["reason"].as_str()),
            (400, Some("ambiguous_path")),
            "{path}"
        );
    }
    assert_eq!(get(addr, "/api/orders", &[]).await.status, 200);
    assert_eq!(get(addr, "/api", &[]).await.status, 200);
    // A prefix matches whole segments.
    assert_eq!(get(addr, "/api-internal/x", &[]).await.status, 403);
    assert_eq!(up.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwks_over_https_is_verified_against_jwks_ca() {
    let up = common::upstream::echo("up").await;
    let dir = tempfile::tempdir().unwrap();
    let tokens = pyjwt_tokens(dir.path());
    let pki = common::pki::Pki::new();
    let ca = pki.ca("idp-ca");
    let server = pki.leaf(&ca, "idp", "DNS:localhost,IP:127.0.0.1", false);
    const SERVE: &str = r#"
import http.server, os, ssl, sys
os.chdir(sys.argv[1])
srv = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;
    let mut idp = Command::new("python3")
        .args(["-c", SERVE])
        .arg(dir.path())
        .arg(&server.cert)
        .arg(&server.key)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(idp.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().expect("the server's port");
    let route = |ca_line: &str| {
        format!(
            "auth = {{ jwt = {{ jwks_url = \"https://localhost:{port}/jwks.json\", algorithms = [\"RS256\"]{ca_line} }} }}"
        )
    };
    let good = bearer(&tokens["good"]);

    let trusted = Gateway::start(&config(
        up.addr,
        "",
        &route(&format!(", jwks_ca = \"{}\"", ca.cert.display())),
    ));
    let addr = trusted.addr("public");
    eventually("the JWKS was fetched over https", || async {
        get(addr, "/o", &[("authorization", &good)]).await.status == 200
    })
    .await;

    // Without jwks_ca the system store does not know this CA: the fetch
    // fails, no key is known, every token is refused.
    let untrusted = Gateway::start(&config(up.addr, "", &route("")));
    let addr = untrusted.addr("public");
    eventually("the fetch was tried and failed", || async {
        common::metrics::sample_of(
            &untrusted,
            "meshgate_jwks_fetches_total",
            &[("result", "failed")],
        )
        .await
        .unwrap_or(0.0)
            >= 1.0
    })
    .await;
    assert_eq!(
        get(addr, "/o", &[("authorization", &good)]).await.status,
        401
    );
    let _ = idp.kill();
    let _ = idp.wait();
}
