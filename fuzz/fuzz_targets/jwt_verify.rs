//! Fuzzes everything meshgate-jwt reads from outside: a JWKS document (from
//! an issuer's URL), a bearer token (from any client), PEM and DER public
//! keys (from config files). The input is split at its first 0xFF byte
//! (never valid UTF-8, so it cannot occur inside JSON): the part before is
//! a JWKS, the part after an `Authorization` value whose token is validated
//! against that set, or against a fixed set when the JWKS does not load.
//! The whole input is also read as PEM and as SPKI DER.
//!
//! Beyond "no panic": a loaded set is non-empty and within MAX_KEYS, a
//! validation is deterministic, a challenge is always a printable-ASCII
//! header value, and a forwarded claim never holds a control character.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshgate_jwt::{Algorithm, JwtError, Key, KeySet, MAX_KEYS, Validator, bearer_token};

/// The RFC 8037 Ed25519 key and an HS256 secret, so tokens that get the
/// shape right reach key selection and the signature check.
fn fixed_keys() -> KeySet {
    let mut keys = KeySet::new();
    if let Ok(key) = Key::from_jwk(
        br#"{"kty":"OKP","crv":"Ed25519","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
    ) {
        let _ = keys.push(key);
    }
    if let Ok(key) = Key::hmac_secret(&[0x42; 32]) {
        let _ = keys.push(key.with_kid("hs"));
    }
    keys
}

fn check_challenge(error: &JwtError) {
    let value = error.www_authenticate("fuzz \"realm\"");
    assert!(value.bytes().all(|b| (0x20..0x7f).contains(&b)), "{value:?}");
    assert!(!error.reason().is_empty());
}

fuzz_target!(|data: &[u8]| {
    if let Ok(keys) = Key::from_pem(data) {
        assert!(!keys.is_empty());
    }
    let _ = Key::from_spki_der(data);

    let (jwks, rest) = match data.iter().position(|&b| b == 0xff) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let keys = match KeySet::from_jwks(jwks) {
        Ok((keys, skipped)) => {
            assert!(!keys.is_empty() && keys.len() <= MAX_KEYS);
            assert!(skipped.iter().all(|s| s.index < 100_000));
            keys
        }
        Err(_) => fixed_keys(),
    };

    let token = match bearer_token(Some(rest)) {
        Ok(token) => token.to_owned(),
        Err(e) => {
            check_challenge(&e);
            String::from_utf8_lossy(rest).into_owned()
        }
    };
    let mut validator = Validator::new(Algorithm::ALL);
    validator.audiences = vec!["api".into()];
    let now = 1_700_000_000;
    let first = validator.validate(&token, &keys, now);
    assert_eq!(first, validator.validate(&token, &keys, now));
    match first {
        Ok(claims) => {
            for path in ["sub", "aud", "roles", "a.b", "realm_access.roles"] {
                if let Ok(Some(value)) = claims.header_value(path) {
                    assert!(!value.chars().any(char::is_control), "{value:?}");
                }
            }
        }
        Err(e) => check_challenge(&e),
    }
    let _ = validator.verify_signature(&token, &keys);
});
