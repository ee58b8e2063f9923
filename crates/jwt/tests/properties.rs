//! Properties over generated input: nothing untrusted panics, a token
//! signed with the right key always validates, and no one-character change
//! to a valid token is ever accepted.
#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use meshgate_jwt::{Algorithm, Key, KeySet, Validator, bearer_token};
use proptest::prelude::*;
use serde_json::json;

const SECRET: [u8; 32] = [0x42; 32];
const NOW: u64 = 1_700_000_000;

fn hs256(header: &str, payload: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &SECRET);
    let tag = ring::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag))
}

fn keys() -> KeySet {
    let mut keys = KeySet::new();
    keys.push(Key::hmac_secret(&SECRET).unwrap().with_kid("k"))
        .unwrap();
    keys
}

proptest! {
    #[test]
    fn arbitrary_input_never_panics(text in ".{0,300}", bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let v = Validator::new(Algorithm::ALL);
        let _ = v.validate(&text, &keys(), NOW);
        let _ = bearer_token(Some(&bytes));
        let _ = Key::from_spki_der(&bytes);
        let _ = Key::from_pem(&bytes);
        let _ = Key::from_jwk(&bytes);
        let _ = KeySet::from_jwks(&bytes);
    }

    #[test]
    fn tokens_made_of_base64_parts_never_panic(
        parts in proptest::collection::vec("[A-Za-z0-9_-]{0,60}", 1..6)
    ) {
        let v = Validator::new(Algorithm::ALL);
        let _ = v.validate(&parts.join("."), &keys(), NOW);
    }

    #[test]
    fn a_correctly_signed_token_validates_and_keeps_its_claims(
        sub in "[^\u{0}-\u{1f}\u{7f}-\u{9f}]{0,40}",
        roles in proptest::collection::vec("[a-z]{1,8}", 0..5),
        ttl in 1u64..1_000_000,
        with_kid in any::<bool>(),
    ) {
        let claims = json!({"sub": sub, "roles": roles, "exp": NOW + ttl});
        let header = if with_kid { r#"{"alg":"HS256","kid":"k"}"# } else { r#"{"alg":"HS256"}"# };
        let token = hs256(header, &claims.to_string());
        let mut v = Validator::new([Algorithm::Hs256]);
        v.leeway_secs = 0;
        let got = v.validate(&token, &keys(), NOW).unwrap();
        prop_assert_eq!(got.subject(), Some(sub.as_str()));
        prop_assert_eq!(got.header_value("roles").unwrap(), Some(roles.join(",")));
    }

    #[test]
    fn no_one_character_change_is_accepted(
        at in any::<prop::sample::Index>(),
        with in "[A-Za-z0-9_.=+/ -]",
    ) {
        let token = hs256(r#"{"alg":"HS256","kid":"k"}"#, &json!({"sub": "a", "exp": NOW + 60}).to_string());
        let i = at.index(token.len());
        let mut altered = token.clone();
        altered.replace_range(i..=i, &with);
        prop_assume!(altered != token);
        let v = Validator::new(Algorithm::ALL);
        prop_assert!(v.validate(&altered, &keys(), NOW).is_err(), "accepted {}", altered);
    }
}
