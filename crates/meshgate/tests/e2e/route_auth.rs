//! Route authentication through the real binary: API
//! keys made by `meshgate apikey create`, JWTs made by Python's PyJWT (from
//! a JWKS file and a JWKS URL), session tokens made by `meshgate token
//! issue`. Refused requests never reach the upstream. Authorization rules
//! are in `route_authz`, the admin API's credential endpoints in
//! `admin_credentials`, the edge cases in `route_auth_edges`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use common::Gateway;
use common::client::get;
use common::metrics::sample_of;
use common::wait::eventually;

/// A gateway whose route "api" (all paths) has `route` (TOML lines inside
/// the route: auth, authz, more routes after it) and forwards to `up`;
/// `listener_extra` is added to the listener.
pub(crate) fn config(up: SocketAddr, listener_extra: &str, route: &str) -> String {
    format!(
        r#"
[admin]
address = "127.0.0.1:0"

[[listeners]]
name = "public"
address = "127.0.0.1:0"
{listener_extra}

[[routes]]
name = "api"
listener = "public"
cluster = "up"
{route}

[[clusters]]
name = "up"
endpoints = [{{ address = "{up}" }}]
"#
    )
}

pub(crate) fn run(args: &[&str]) -> String {
    let out = common::run_binary(args);
    assert!(
        out.status.success(),
        "meshgate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn challenges(reply: &common::client::Reply) -> Vec<String> {
    reply
        .headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn api_keys_from_the_cli_admit_and_revocation_by_file_refuses() {
    let up = common::upstream::echo("up").await;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.toml");
    let keys_path = keys.to_str().unwrap();
    let key = run(&[
        "apikey",
        "create",
        "--service",
        "billing",
        "--file",
        keys_path,
    ]);
    let other = run(&[
        "apikey",
        "create",
        "--service",
        "search",
        "--file",
        keys_path,
    ]);
    let gw = Gateway::start(&config(
        up.addr,
        "",
        &format!("auth = {{ api_key = {{ file = \"{keys_path}\" }} }}"),
    ));
    let addr = gw.addr("public");

    let none = get(addr, "/orders", &[]).await;
    assert_eq!(none.status, 401, "{}", none.text());
    assert_eq!(none.json()["reason"], "missing");
    assert_eq!(challenges(&none), ["ApiKey realm=\"api\""]);
    let wrong = get(
        addr,
        "/orders",
        &[("x-api-key", &format!("{}x", &key[..key.len() - 1]))],
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json()["reason"], "unknown");
    let garbage = get(addr, "/orders", &[("x-api-key", "not-a-key")]).await;
    assert_eq!(
        (garbage.status.as_u16(), garbage.json()["reason"].as_str()),
        (401, Some("malformed"))
    );
    assert_eq!(up.hits(), 0, "refused requests never reach the upstream");

    let ok = get(addr, "/orders", &[("x-api-key", &key)]).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let ok = get(
        addr,
        "/orders",
        &[("authorization", &format!("ApiKey {other}"))],
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(up.hits(), 2);

    // Revoke the first key's id in the file: it is refused within seconds,
    // with no reload; the other key keeps working.
    let text = std::fs::read_to_string(&keys).unwrap();
    let store = meshgate_auth::apikey::KeyStore::parse(&text).unwrap();
    let id = store
        .authenticate(&meshgate_auth::apikey::ApiKey::parse(&key).unwrap())
        .unwrap()
        .id()
        .to_owned();
    let revoked = meshgate_auth::apikey::store::revoke_in_text(&text, &id).unwrap();
    std::fs::write(&keys, revoked).unwrap();
    let admitted = std::sync::atomic::AtomicUsize::new(2);
    eventually("the revoked key is refused", || async {
        let status = get(addr, "/orders", &[("x-api-key", &key)]).await.status;
        if status == 200 {
            admitted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        status == 401
    })
    .await;
    let refused = get(addr, "/orders", &[("x-api-key", &key)]).await;
    assert_eq!(refused.json()["reason"], "revoked");
    assert_eq!(
        get(addr, "/orders", &[("x-api-key", &other)]).await.status,
        200
    );
    let admitted = admitted.into_inner() + 1;
    assert_eq!(
        up.hits(),
        admitted,
        "every admitted request, and only those, went upstream"
    );
    assert_eq!(
        sample_of(&gw, "meshgate_auth_allowed_total", &[("route", "api")]).await,
        Some(admitted as f64)
    );
}

/// Tokens made by PyJWT with a fresh RSA key: its JWKS goes to
/// `dir/jwks.json`, the tokens come back by name.
pub(crate) fn pyjwt_tokens(dir: &Path) -> serde_json::Value {
    const SCRIPT: &str = r#"
import json, sys, time
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
out = sys.argv[1]
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
jwk.update(kid="k1", alg="RS256", use="sig")
open(out + "/jwks.json", "w").write(json.dumps({"keys": [jwk]}))
now = int(time.time())
base = {"iss": "https://issuer.test", "aud": "orders", "sub": "alice", "exp": now + 600,
        "org": {"id": "acme"}}
def tok(claims, k=key, alg="RS256"):
    return jwt.encode(claims, k, algorithm=alg, headers={"kid": "k1"})
other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
print(json.dumps({
    "good": tok(base),
    "expired": tok({**base, "exp": now - 3600}),
    "wrong_aud": tok({**base, "aud": "billing"}),
    "other_key": tok(base, other),
    "hs256": tok(base, "a-shared-secret-that-is-long-enough!!", "HS256"),
}))
"#;
    let out = Command::new("python3")
        .args(["-c", SCRIPT, dir.to_str().unwrap()])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "PyJWT script (pip install pyjwt cryptography): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub(crate) fn bearer(token: &serde_json::Value) -> String {
    format!("Bearer {}", token.as_str().unwrap())
}

#[tokio::test]
async fn pyjwt_tokens_against_a_jwks_file_with_claims_forwarded() {
    let up = common::upstream::echo("up").await;
    let dir = tempfile::tempdir().unwrap();
    let tokens = pyjwt_tokens(dir.path());
    let jwks = dir.path().join("jwks.json");
    let route = format!(
        r#"
[routes.auth.jwt]
jwks_file = "{}"
algorithms = ["RS256"]
issuer = "https://issuer.test"
audience = "orders"
forward_claims = [{{ claim = "sub", header = "x-user" }}, {{ claim = "org.id", header = "x-org" }}]
"#,
        jwks.display()
    );
    let gw = Gateway::start(&config(up.addr, "", &route));
    let addr = gw.addr("public");

    let ok = get(
        addr,
        "/o",
        &[
            ("authorization", &bearer(&tokens["good"])),
            ("x-user", "mallory"),
        ],
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let seen = ok.json();
    assert_eq!(
        seen["headers"]["x-user"], "alice",
        "the claim, never the client's header"
    );
    assert_eq!(seen["headers"]["x-org"], "acme");

    for (name, reason) in [
        ("expired", "expired"),
        ("wrong_aud", "bad_audience"),
        ("other_key", "bad_signature"),
        ("hs256", "unsupported_alg"),
    ] {
        let r = get(addr, "/o", &[("authorization", &bearer(&tokens[name]))]).await;
        assert_eq!(r.status, 401, "{name}: {}", r.text());
        assert_eq!(r.json()["reason"], reason, "{name}");
        let challenge = challenges(&r).join(" | ");
        assert!(
            challenge.starts_with("Bearer realm=\"api\", error=\"invalid_token\""),
            "{name}: {challenge}"
        );
    }
    let none = get(addr, "/o", &[("x-user", "mallory")]).await;
    assert_eq!(
        (none.status.as_u16(), challenges(&none)),
        (401, vec!["Bearer realm=\"api\"".to_owned()])
    );
    assert_eq!(up.hits(), 1, "only the good token reached the upstream");
}

#[tokio::test]
async fn a_jwks_url_is_fetched_and_its_keys_verify() {
    let up = common::upstream::echo("up").await;
    let dir = tempfile::tempdir().unwrap();
    let tokens = pyjwt_tokens(dir.path());
    let jwks = std::fs::read(dir.path().join("jwks.json")).unwrap();
    let issuer = common::upstream::start(
        common::upstream::Proto::H1,
        std::sync::Arc::new(move |_req| {
            let jwks = jwks.clone();
            Box::pin(async move {
                http::Response::builder()
                    .header("content-type", "application/json")
                    .body(common::upstream::full(jwks))
                    .unwrap()
            })
        }),
    )
    .await;
    let route = format!(
        "auth = {{ jwt = {{ jwks_url = \"http://{}/.well-known/jwks.json\", algorithms = [\"RS256\"], audience = [\"orders\"] }} }}",
        issuer.addr
    );
    let gw = Gateway::start(&config(up.addr, "", &route));
    let addr = gw.addr("public");
    let good = bearer(&tokens["good"]);
    eventually("the JWKS was fetched", || async {
        get(addr, "/o", &[("authorization", &good)]).await.status == 200
    })
    .await;
    let expired = get(
        addr,
        "/o",
        &[("authorization", &bearer(&tokens["expired"]))],
    )
    .await;
    assert_eq!(expired.json()["reason"], "expired");
    assert!(
        sample_of(&gw, "meshgate_jwks_fetches_total", &[("result", "ok")])
            .await
            .unwrap_or(0.0)
            >= 1.0
    );
}

#[tokio::test]
async fn session_tokens_from_the_cli_verify_and_expire() {
    let up = common::upstream::echo("up").await;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("session.toml");
    let keys_path = keys.to_str().unwrap();
    run(&["token", "keygen", "--out", keys_path]);
    let token = run(&[
        "token",
        "issue",
        "--subject",
        "user123",
        "--ttl",
        "1h",
        "--key-file",
        keys_path,
    ]);
    let short = run(&[
        "token",
        "issue",
        "--subject",
        "user123",
        "--ttl",
        "1s",
        "--key-file",
        keys_path,
    ]);
    let revoked = dir.path().join("revoked.toml");
    std::fs::write(&revoked, "revoked = []\n").unwrap();
    let gw = Gateway::start(&config(
        up.addr,
        "",
        &format!(
            "auth = {{ session = {{ keys = \"{keys_path}\", leeway = \"0s\", revoked = \"{}\" }} }}",
            revoked.display()
        ),
    ));
    let addr = gw.addr("public");
    let ok = get(
        addr,
        "/me",
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    // One MAC character changed (not the last, whose low bits are padding).
    let mut forged = token.clone().into_bytes();
    let at = forged.len() - 10;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let bad = get(
        addr,
        "/me",
        &[("authorization", &format!("Bearer {forged}"))],
    )
    .await;
    assert_eq!(
        (bad.status.as_u16(), bad.json()["reason"].as_str()),
        (401, Some("bad_signature"))
    );
    let admitted = std::sync::atomic::AtomicUsize::new(1);
    eventually("the 1 s token expires", || async {
        let r = get(
            addr,
            "/me",
            &[("authorization", &format!("Bearer {short}"))],
        )
        .await;
        if r.status == 200 {
            admitted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        r.status == 401 && r.json()["reason"] == "expired"
    })
    .await;
    assert_eq!(
        up.hits(),
        admitted.into_inner(),
        "refused tokens never went upstream"
    );

    // Revocation by token id: list the long token's jti; it is refused
    // within seconds, with no reload.
    let keys_text = std::fs::read_to_string(&keys).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let jti = meshgate_auth::session::SessionKeys::parse(&keys_text)
        .unwrap()
        .verify(&token, now, 0)
        .unwrap()
        .jti;
    std::fs::write(&revoked, format!("revoked = [\"{jti}\"]\n")).unwrap();
    eventually("the revoked token is refused", || async {
        let r = get(
            addr,
            "/me",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
        r.status == 401 && r.json()["reason"] == "revoked"
    })
    .await;
}

#[test]
fn unusable_key_files_fail_validation_with_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.toml");
    std::fs::write(&keys, "[[keys]]\nservice = \"x\"\n").unwrap();
    let cfg = dir.path().join("meshgate.toml");
    std::fs::write(
        &cfg,
        config(
            "127.0.0.1:9".parse().unwrap(),
            "",
            "auth = { api_key = { file = \"keys.toml\" } }",
        ),
    )
    .unwrap();
    let out = common::run_binary(&["validate", cfg.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("meshgate.toml:")
            && err.contains("routes[0].auth.api_key.file")
            && err.contains("keys.toml"),
        "{err}"
    );
}
