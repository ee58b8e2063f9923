use super::*;
use crate::alg::KeyType;

/// 32 zero bytes and 32 one bytes, base64url.
const K0: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
const K1: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE";

fn jwks(keys: &[String]) -> Vec<u8> {
    format!(r#"{{"keys":[{}]}}"#, keys.join(",")).into_bytes()
}

#[test]
fn usable_keys_load_and_the_rest_are_skipped_with_a_reason() {
    let doc = jwks(&[
        format!(r#"{{"kty":"oct","kid":"hs","k":"{K0}","alg":"HS256","use":"sig"}}"#),
        format!(r#"{{"kty":"OKP","crv":"Ed25519","kid":"ed","x":"{K1}","key_ops":["verify"]}}"#),
        format!(r#"{{"kty":"EC","crv":"P-256","kid":"ec","x":"{K0}","y":"{K1}"}}"#),
        format!(r#"{{"kty":"EC","crv":"P-521","kid":"p521","x":"{K0}","y":"{K1}"}}"#),
        format!(r#"{{"kty":"OKP","crv":"X25519","kid":"x","x":"{K1}"}}"#),
        format!(r#"{{"kty":"oct","kid":"enc","k":"{K0}","use":"enc"}}"#),
        format!(r#"{{"kty":"oct","kid":"ops","k":"{K0}","key_ops":["sign"]}}"#),
        format!(r#"{{"kty":"oct","kid":"hs384","k":"{K0}","alg":"HS384"}}"#),
        format!(r#"{{"kty":"oct","kid":"confused","k":"{K0}","alg":"RS256"}}"#),
        r#"{"kty":"oct","kid":"short","k":"AAAA"}"#.into(),
        format!(r#"{{"kty":"oct","kid":"padded","k":"{K0}="}}"#),
        format!(r#"{{"kty":"oct","kid":7,"k":"{K0}"}}"#),
        r#"{"kty":"RSA","kid":"no-n","e":"AQAB"}"#.into(),
        r#"{"kty":"dh"}"#.into(),
        r#""not an object""#.into(),
        r#"{"k":"AAAA"}"#.into(),
    ]);
    let (set, skipped) = KeySet::from_jwks(&doc).unwrap();
    let loaded: Vec<_> = set
        .iter()
        .map(|k| (k.kid(), k.key_type(), k.alg()))
        .collect();
    assert_eq!(
        loaded,
        [
            (Some("hs"), KeyType::Hmac, Some(Algorithm::Hs256)),
            (Some("ed"), KeyType::Ed25519, None),
            (Some("ec"), KeyType::EcP256, None),
        ]
    );
    let skipped: Vec<(usize, Option<&str>)> = skipped
        .iter()
        .map(|s| (s.index, s.kid.as_deref()))
        .collect();
    assert_eq!(
        skipped,
        [
            (3, Some("p521")),
            (4, Some("x")),
            (5, Some("enc")),
            (6, Some("ops")),
            (7, Some("hs384")),
            (8, Some("confused")),
            (9, Some("short")),
            (10, Some("padded")),
            (11, None),
            (12, Some("no-n")),
            (13, None),
            (14, None),
            (15, None),
        ]
    );
}

#[test]
fn skip_reasons_say_what_was_wrong() {
    let doc = jwks(&[
        format!(r#"{{"kty":"oct","k":"{K0}"}}"#),
        format!(r#"{{"kty":"EC","crv":"P-384","kid":"a","x":"{K0}","y":"{K0}"}}"#),
        r#"{"kty":"RSA","kid":"b","e":"AQAB"}"#.into(),
        format!(r#"{{"kty":"oct","kid":"c","k":"{K0}","alg":"RS256"}}"#),
    ]);
    let (_, skipped) = KeySet::from_jwks(&doc).unwrap();
    let reasons: Vec<&str> = skipped.iter().map(|s| s.reason.as_str()).collect();
    assert!(reasons[0].contains("P-384"), "{reasons:?}");
    assert!(
        reasons[1].contains("\"n\"") && reasons[1].contains("missing"),
        "{reasons:?}"
    );
    assert!(reasons[2].contains("RS256"), "{reasons:?}");
}

#[test]
fn documents_that_are_not_a_jwks_fail_whole() {
    for doc in [
        &b""[..],
        b"[]",
        b"{}",
        br#"{"keys":{}}"#,
        br#"{"keys":[]}"#,
        br#"{"keys":[{"kty":"dh"}]}"#,
        br#"{"keys":[],"keys":[]}"#,
    ] {
        assert!(
            matches!(KeySet::from_jwks(doc), Err(KeyError::Jwks(_))),
            "{doc:?}"
        );
    }
    let mut huge = jwks(&[format!(r#"{{"kty":"oct","k":"{K0}"}}"#)]);
    huge.resize(MAX_JWKS_BYTES + 1, b' ');
    assert!(matches!(KeySet::from_jwks(&huge), Err(KeyError::Jwks(_))));
}

#[test]
fn keys_past_the_cap_are_skipped_not_fatal() {
    let keys: Vec<String> = (0..MAX_KEYS + 3)
        .map(|i| format!(r#"{{"kty":"oct","kid":"{i}","k":"{K0}"}}"#))
        .collect();
    let (set, skipped) = KeySet::from_jwks(&jwks(&keys)).unwrap();
    assert_eq!(set.len(), MAX_KEYS);
    assert_eq!(skipped.len(), 3);
    assert_eq!(skipped[0].index, MAX_KEYS);
}

#[test]
fn one_jwk_loads_on_its_own() {
    let key = Key::from_jwk(
        format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{K1}","kid":"z"}}"#).as_bytes(),
    )
    .unwrap();
    assert_eq!((key.kid(), key.key_type()), (Some("z"), KeyType::Ed25519));
    assert!(Key::from_jwk(b"[]").is_err());
    // Private members are ignored, public ones used.
    let key = Key::from_jwk(
        format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{K1}","d":"{K0}"}}"#).as_bytes(),
    )
    .unwrap();
    assert_eq!(key.key_type(), KeyType::Ed25519);
}
