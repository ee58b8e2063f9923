//! Interop with PyJWT, an independent implementation: `pyjwt_vectors.py`
//! makes fresh keys (RSA-2048, P-256, Ed25519, an HS secret), publishes them
//! as a JWKS (PyJWT's own JWK writer) and as PEM, and signs tokens for every
//! outcome we claim to handle, each checked against PyJWT's own verdict where
//! PyJWT can judge it. Here every token must get the expected outcome and
//! reason code, at the `now` the script wrote.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is the failure report"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use meshgate_jwt::{Algorithm, Key, KeySet, Validator};
use serde_json::Value;

const INSTALL: &str = "pip install pyjwt cryptography";

/// A directory that removes itself, so failed runs leave nothing behind.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        // Best effort: a leftover directory in /tmp is not worth a panic
        // during unwinding.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn generate() -> (TempDir, Value) {
    let dir =
        TempDir(std::env::temp_dir().join(format!("meshgate-jwt-pyjwt-{}", std::process::id())));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pyjwt_vectors.py");
    let output = Command::new("python3")
        .arg(&script)
        .arg(&dir.0)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}); install Python 3, then {INSTALL}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => {}
        Some(3) => panic!("PyJWT or cryptography is missing: {INSTALL}\n{stderr}"),
        _ => panic!("pyjwt_vectors.py failed ({}):\n{stderr}", output.status),
    }
    let vectors = std::fs::read(dir.0.join("vectors.json")).unwrap();
    (dir, serde_json::from_slice(&vectors).unwrap())
}

fn validator(config: &Value) -> Validator {
    let strings = |name: &str| -> Vec<String> {
        config[name]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let algorithms = strings("algorithms")
        .iter()
        .map(|name| Algorithm::from_name(name).expect(name))
        .collect::<Vec<_>>();
    let mut v = Validator::new(algorithms);
    v.issuers = strings("issuers");
    v.audiences = strings("audiences");
    v.leeway_secs = config["leeway_secs"].as_u64().unwrap();
    v
}

fn key_set(dir: &Path, source: &str, hs_secret: &[u8]) -> KeySet {
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let mut set = KeySet::new();
    let keys = match source {
        "jwks" => {
            let (set, skipped) = KeySet::from_jwks(&read("jwks.json")).unwrap();
            assert!(
                skipped.is_empty(),
                "PyJWT's JWKs should all load: {skipped:?}"
            );
            assert_eq!(set.len(), 4);
            return set;
        }
        "hs" => vec![Key::hmac_secret(hs_secret).unwrap()],
        "pem_rsa" => Key::from_pem(&read("rsa.pem")).unwrap(),
        "pem_ec" => Key::from_pem(&read("ec.pem")).unwrap(),
        "pem_ed" => Key::from_pem(&read("ed.pem")).unwrap(),
        other => panic!("unknown key source {other}"),
    };
    for key in keys {
        set.push(key).unwrap();
    }
    set
}

#[test]
fn pyjwt_tokens_get_the_expected_outcome_and_reason() {
    let (dir, vectors) = generate();
    let now = vectors["now"].as_u64().unwrap();
    let validator = validator(&vectors["validator"]);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(vectors["hs_secret"].as_str().unwrap())
        .unwrap();
    let cases = vectors["cases"].as_array().unwrap();
    assert!(cases.len() >= 30, "only {} cases", cases.len());

    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let token = case["token"].as_str().unwrap();
        let expect = case["expect"].as_str().unwrap();
        let keys = key_set(&dir.0, case["keys"].as_str().unwrap(), &secret);
        let outcome = validator.validate(token, &keys, now);
        let got = match &outcome {
            Ok(_) => "ok",
            Err(e) => e.reason(),
        };
        if got != expect {
            failures.push(format!(
                "{name}: expected {expect}, got {got} ({outcome:?})"
            ));
            continue;
        }
        // Valid tokens: the claims a route would forward render as expected.
        if let (Ok(claims), Some(forward)) = (&outcome, case.get("forward")) {
            for (path, want) in forward.as_object().unwrap() {
                let value = claims.header_value(path).unwrap();
                if value.as_deref() != want.as_str() {
                    failures.push(format!("{name}: claim {path} forwarded as {value:?}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "PyJWT {} interop failures:\n{}",
        vectors["pyjwt_version"],
        failures.join("\n")
    );
}
