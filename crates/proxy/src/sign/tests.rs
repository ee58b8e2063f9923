use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use meshgate_auth::Header;
use meshgate_auth::hmac_sig::{BodyDigest, SignedRequest, verify_signature};
use meshgate_config::auth::SourceFile;

use super::*;

/// Two keys: `new` signs, `old` only verifies.
const KEYS: &str = r#"
[[keys]]
kid = "new"
secret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
[[keys]]
kid = "old"
secret = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
"#;

/// A signer over a key file written for the test (one per test: tests
/// run in parallel).
fn signer(name: &str, max_body: u64) -> Arc<UpstreamSigner> {
    let path =
        std::env::temp_dir().join(format!("meshgate-sign-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, KEYS).unwrap();
    let spec = UpstreamSigning {
        keys: SourceFile {
            path: path.clone(),
            origin: "test".into(),
        },
        max_body,
    };
    let signer = UpstreamSigner::load(&spec, "c", &Registry::new(), None).unwrap();
    std::fs::remove_file(path).unwrap();
    signer
}

fn head(uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut req = Request::post(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(()).unwrap().into_parts().0
}

/// Verifies `req`'s signature as an upstream would, at `now`, with the
/// body `body`.
fn verifies(req: &Request<()>, body: &[u8], now: u64) -> Result<String, String> {
    let h = |name: &str| {
        Header::from_values(
            req.headers()
                .get_all(name)
                .iter()
                .map(HeaderValue::as_bytes),
        )
    };
    let keys = SecretKeys::parse(KEYS).unwrap();
    let signed = SignedRequest {
        method: req.method().as_str(),
        path: req.uri().path(),
        query: req.uri().query().unwrap_or(""),
        signature: h("signature"),
        date: h("date"),
        x_date: h("x-date"),
        content_digest: h("content-digest"),
    };
    let verified = verify_signature(&keys, &signed, now, 300).map_err(|e| e.to_string())?;
    let mut digest = BodyDigest::new();
    digest.update(body);
    verified.check_body(digest).map_err(|e| e.to_string())?;
    Ok(verified.nonce().to_owned())
}

#[tokio::test]
async fn each_stamp_is_a_fresh_signature_the_core_verifies_and_client_headers_are_replaced() {
    let signer = signer("fresh", 1024);
    let mut parts = head(
        "/orders?id=7&dry_run=1",
        &[
            ("signature", "keyId=\"evil\", forged"),
            ("content-digest", "sha-256=:AAAA:"),
            ("x-date", "Thu, 01 Jan 1970 00:00:00 GMT"),
            ("transfer-encoding", "chunked"),
        ],
    );
    let body = ClientBody::Buffered(Full::new(Bytes::from_static(b"{\"qty\":1}")));
    let deadline = Instant::now() + Duration::from_secs(5);
    let (body, signing) = signer.prepare(&mut parts, body, deadline).await.unwrap();
    assert_eq!(parts.headers["content-length"], "9");
    let sent = body.collect().await.unwrap().to_bytes();
    assert_eq!(&sent[..], b"{\"qty\":1}");

    let mut nonces = Vec::new();
    for _ in 0..2 {
        let mut req = Request::post(parts.uri.clone()).body(()).unwrap();
        *req.headers_mut() = parts.headers.clone();
        signing.stamp(&mut req).unwrap();
        assert!(!req.headers().contains_key("x-date"));
        assert_eq!(req.headers().get_all("signature").iter().count(), 1);
        let signature = req.headers()["signature"].to_str().unwrap();
        assert!(signature.starts_with("keyId=\"new\""), "{signature}");
        nonces.push(verifies(&req, &sent, crate::auth::unix_now()).unwrap());
        // The body is bound: another body does not verify.
        assert_eq!(
            verifies(&req, b"{\"qty\":9}", crate::auth::unix_now()),
            Err("body does not match Content-Digest".to_owned())
        );
    }
    assert_ne!(nonces[0], nonces[1], "every attempt has its own nonce");
}

#[tokio::test]
async fn the_date_is_the_time_of_sending() {
    let signer = signer("date", 0);
    let mut parts = head("/p", &[]);
    let (_, signing) = signer
        .prepare(
            &mut parts,
            ClientBody::Empty,
            Instant::now() + Duration::from_secs(5),
        )
        .await
        .unwrap();
    let mut req = Request::from_parts(parts, ());
    signing.stamp(&mut req).unwrap();
    let now = crate::auth::unix_now();
    assert!(verifies(&req, b"", now).is_ok());
    assert_eq!(
        verifies(&req, b"", now + 302),
        Err("Date is outside the allowed clock skew".to_owned())
    );
}

#[tokio::test]
async fn a_body_over_max_body_is_413_before_anything_is_signed() {
    let signer = signer("max", 4);
    let mut parts = head("/p", &[]);
    let body = ClientBody::Buffered(Full::new(Bytes::from_static(b"12345")));
    let err = signer
        .prepare(&mut parts, body, Instant::now() + Duration::from_secs(5))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::RequestBodyTooLarge);
}
