//! The admin API's route-credential endpoints through the real binary:
//! `POST /tokens` and `POST /tokens/revoke` (session tokens made by the
//! same keys as `meshgate token issue`), `POST /apikeys/{id}/revoke` (keys
//! made by `meshgate apikey create`), each needing the admin token and
//! taking effect at once and in the files; and a rate limit keyed by the API
//! key that authenticated the request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::route_auth::{config, run};

use common::Gateway;
use common::client::get;

/// The admin API's credential endpoints (each needs the admin token):
/// session tokens issued and revoked by id, an API key revoked, every change
/// at once and in the files; and a rate limit keyed by the API key that
/// authenticated the request.
#[tokio::test]
async fn admin_issues_and_revokes_credentials_and_limits_by_api_key() {
    use common::client::{h1, send};
    let up = common::upstream::echo("up").await;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.toml");
    let session = dir.path().join("session.toml");
    let revoked = dir.path().join("revoked.toml");
    let (keys_path, session_path) = (keys.to_str().unwrap(), session.to_str().unwrap());
    let first = run(&[
        "apikey",
        "create",
        "--service",
        "billing",
        "--file",
        keys_path,
    ]);
    let second = run(&[
        "apikey",
        "create",
        "--service",
        "search",
        "--file",
        keys_path,
    ]);
    run(&["token", "keygen", "--out", session_path]);
    std::fs::write(&revoked, "revoked = []\n").unwrap();
    let route = format!(
        r#"match = {{ path_prefix = "/me" }}
auth = {{ session = {{ keys = "{session_path}", revoked = "{}" }} }}

[[routes]]
name = "limited"
listener = "public"
cluster = "up"
match = {{ path_prefix = "/limited" }}
auth = {{ api_key = {{ file = "{keys_path}" }} }}
rate_limit = {{ requests = 2, per = "1h", key = "api_key" }}
"#,
        revoked.display()
    );
    let gw = Gateway::start(&config(up.addr, "", &route));
    let addr = gw.addr("public");
    let admin = |path: &str, body: &str| gw.admin_request(http::Method::POST, path, body);

    // A session token from the admin API works like one from the CLI.
    let issued = send(
        &h1(),
        admin("/tokens", r#"{"subject": "alice", "ttl": "1h"}"#),
    )
    .await;
    assert_eq!(issued.status, 201, "{}", issued.text());
    let token = issued.json()["token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {token}");
    assert_eq!(
        get(addr, "/me", &[("authorization", &bearer)]).await.status,
        200
    );
    let unauthorised = http::Request::post(gw.url("admin", "/tokens"))
        .body(http_body_util::Full::new(bytes::Bytes::from(
            r#"{"subject": "mallory", "ttl": 60}"#,
        )))
        .unwrap();
    assert_eq!(
        send(&h1(), unauthorised).await.status,
        401,
        "no admin token, no token"
    );

    // Revoked by id: refused at once, and the file says so.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let jti =
        meshgate_auth::session::SessionKeys::parse(&std::fs::read_to_string(&session).unwrap())
            .unwrap()
            .verify(&token, now, 0)
            .unwrap()
            .jti;
    let r = send(
        &h1(),
        admin("/tokens/revoke", &format!(r#"{{"jti": "{jti}"}}"#)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let refused = get(addr, "/me", &[("authorization", &bearer)]).await;
    assert_eq!(
        (refused.status.as_u16(), refused.json()["reason"].as_str()),
        (401, Some("revoked"))
    );
    assert!(std::fs::read_to_string(&revoked).unwrap().contains(&jti));

    // The rate limit counts per API key, not per client address.
    for _ in 0..2 {
        assert_eq!(
            get(addr, "/limited", &[("x-api-key", &first)]).await.status,
            200
        );
    }
    let limited = get(addr, "/limited", &[("x-api-key", &first)]).await;
    assert_eq!(limited.status, 429, "{}", limited.text());
    assert_eq!(
        get(addr, "/limited", &[("x-api-key", &second)])
            .await
            .status,
        200
    );

    // An API key revoked through the admin API: refused at once, kept in
    // the file; an unknown id is a 404.
    let store =
        meshgate_auth::apikey::KeyStore::parse(&std::fs::read_to_string(&keys).unwrap()).unwrap();
    let id = store
        .authenticate(&meshgate_auth::apikey::ApiKey::parse(&second).unwrap())
        .unwrap()
        .id()
        .to_owned();
    let r = send(&h1(), admin(&format!("/apikeys/{id}/revoke"), "")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let refused = get(addr, "/limited", &[("x-api-key", &second)]).await;
    assert_eq!(
        (refused.status.as_u16(), refused.json()["reason"].as_str()),
        (401, Some("revoked"))
    );
    let persisted =
        meshgate_auth::apikey::KeyStore::parse(&std::fs::read_to_string(&keys).unwrap()).unwrap();
    assert!(persisted.is_revoked(&id));
    assert_eq!(
        send(&h1(), admin("/apikeys/k-nope/revoke", ""))
            .await
            .status,
        404
    );
}
