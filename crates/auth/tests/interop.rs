//! Interop with an independent implementation: `tests/interop.py`, written
//! from docs/security.md on Python's standard library (`hmac`, `hashlib`,
//! `base64`, `email.utils`). Python makes signed requests, a session token
//! and an API key; the crate must produce byte-identical header values and
//! accept Python's; and Python must accept a token the crate issues.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use base64::Engine as _;
use meshgate_auth::Header;
use meshgate_auth::apikey::{ApiKey, KeyEntry, KeyStore};
use meshgate_auth::hmac_sig::{self, BodyDigest, SigError, SignedRequest, ToSign, Verifier};
use meshgate_auth::secret_keys::{KeyId, SecretKey, SecretKeys};
use meshgate_auth::session::{SessionError, SessionKeys};
use serde_json::Value;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop.py");

fn python(args: &[&str]) -> (bool, String) {
    let out = Command::new("python3")
        .arg(SCRIPT)
        .args(args)
        .output()
        .expect("python3 is needed for the interop test");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "interop.py wrote to stderr:\n{stderr}");
    (out.status.success(), String::from_utf8(out.stdout).unwrap())
}

fn vectors() -> Value {
    let (ok, out) = python(&["vectors"]);
    assert!(ok, "{out}");
    serde_json::from_str(&out).unwrap()
}

fn b64(text: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text.as_str().unwrap())
        .unwrap()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

#[test]
fn hmac_signatures_match_python_byte_for_byte_both_ways() {
    let v = vectors();
    let key = SecretKey::new(
        KeyId::new(s(&v["key_id"])).unwrap(),
        &b64(&v["hmac_secret_b64"]),
    )
    .unwrap();
    let requests = v["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 5);
    for r in requests {
        let body = unhex(s(&r["body_hex"]));
        let (method, path, query) = (s(&r["method"]), s(&r["path"]), s(&r["query"]));
        let unix = r["unix"].as_u64().unwrap();
        let digest = hmac_sig::sha256(&body);

        // Rust signs the same request: identical values.
        assert_eq!(
            hmac_sig::signing_string(method, path, query, s(&r["date"]), s(&r["nonce"]), &digest),
            s(&r["signing_string"])
        );
        let ours = hmac_sig::sign(
            &key,
            &ToSign {
                method,
                path,
                query,
                date: unix,
                nonce: s(&r["nonce"]),
                body_digest: &digest,
            },
        )
        .unwrap();
        assert_eq!(ours.date, s(&r["date"]), "{path}");
        assert_eq!(ours.content_digest, s(&r["content_digest"]), "{path}");
        assert_eq!(ours.signature, s(&r["signature"]), "{path}");

        // Rust verifies Python's request, then its body in pieces.
        let keys = SecretKeys::new(vec![
            SecretKey::new(KeyId::new("other").unwrap(), &[0; 32]).unwrap(),
            SecretKey::new(
                KeyId::new(s(&v["key_id"])).unwrap(),
                &b64(&v["hmac_secret_b64"]),
            )
            .unwrap(),
        ])
        .unwrap();
        let mut verifier = Verifier::new(keys, hmac_sig::DEFAULT_MAX_SKEW, 16);
        let req = SignedRequest {
            method,
            path,
            query,
            signature: s(&r["signature"]).into(),
            date: s(&r["date"]).into(),
            x_date: Header::Absent,
            content_digest: s(&r["content_digest"]).into(),
        };
        let now = 1_772_532_000;
        let verified = verifier.verify(&req, now).unwrap();
        let mut streamed = BodyDigest::new();
        for chunk in body.chunks(100) {
            streamed.update(chunk);
        }
        assert_eq!(verified.check_body(streamed), Ok(()));
        let mut tampered = BodyDigest::new();
        tampered.update(&body);
        tampered.update(b"!");
        assert_eq!(verified.check_body(tampered), Err(SigError::DigestMismatch));
        assert_eq!(verifier.verify(&req, now), Err(SigError::Replay));
    }
}

#[test]
fn session_tokens_interoperate_with_python_both_ways() {
    let v = vectors();
    let sess = &v["session"];
    let secret = b64(&sess["secret_b64"]);
    let now = sess["now"].as_u64().unwrap();
    let keys = SessionKeys::new(
        SecretKeys::new(vec![
            SecretKey::new(KeyId::new(s(&sess["kid"])).unwrap(), &secret).unwrap(),
        ])
        .unwrap(),
    );

    // Python issued, Rust verifies.
    let claims = keys.verify(s(&sess["token"]), now, 0).unwrap();
    assert_eq!(serde_json::to_value(&claims).unwrap(), sess["claims"]);
    assert_eq!(
        keys.verify(s(&sess["token"]), now + 3600, 0),
        Err(SessionError::Expired)
    );

    // Rust issues, Python verifies (and tells a forgery apart, so its
    // answer means something).
    let token = keys.issue("svc:billing", 600, now, &[42; 16]).unwrap();
    let secret_b64 = s(&sess["secret_b64"]);
    let (ok, out) = python(&["verify-session", secret_b64, &token, &now.to_string()]);
    assert!(ok, "python refused our token: {out}");
    let theirs: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        theirs,
        serde_json::to_value(keys.verify(&token, now, 0).unwrap()).unwrap()
    );
    let forged = format!("{}A", &token[..token.len() - 1]);
    let (ok, out) = python(&["verify-session", secret_b64, &forged, &now.to_string()]);
    assert!(!ok && out.trim() == "bad_signature", "{out}");
    let (ok, out) = python(&[
        "verify-session",
        secret_b64,
        &token,
        &(now + 600).to_string(),
    ]);
    assert!(!ok && out.trim() == "expired", "{out}");
}

#[test]
fn api_keys_and_their_hashes_match_python() {
    let v = vectors();
    let a = &v["apikey"];
    let random: [u8; 32] = unhex(s(&a["random_hex"])).try_into().unwrap();
    let key = ApiKey::from_random(&random);
    assert_eq!(key.expose(), s(&a["key"]));
    assert_eq!(key.hash().to_string(), s(&a["hash"]));
    let file = KeyEntry::new("interop", "k-py", key.hash(), 1)
        .unwrap()
        .to_toml();
    assert!(file.contains(s(&a["hash"])));
    let store = KeyStore::parse(&file).unwrap();
    let parsed = ApiKey::parse(s(&a["key"])).unwrap();
    assert_eq!(store.authenticate(&parsed).unwrap().id(), "k-py");
}
