use super::*;
use crate::key::Key;
use crate::test_support::{SECRET, ed_key, eddsa, hs256};

const ALL: &[Algorithm] = &Algorithm::ALL;
const PAYLOAD: &str = r#"{"sub":"alice"}"#;

fn hs_keys() -> KeySet {
    let mut keys = KeySet::new();
    keys.push(Key::hmac_secret(&SECRET).unwrap().with_kid("hs"))
        .unwrap();
    keys
}

fn check(token: &str, keys: &KeySet) -> Result<Verified, JwtError> {
    verify(token, keys, ALL, 8192)
}

fn reason(token: &str, keys: &KeySet) -> &'static str {
    check(token, keys).unwrap_err().reason()
}

#[test]
fn a_good_token_yields_its_header_key_and_payload() {
    let token = hs256(
        r#"{"alg":"HS256","typ":"JWT","kid":"hs"}"#,
        PAYLOAD,
        &SECRET,
    );
    let v = check(&token, &hs_keys()).unwrap();
    assert_eq!(
        v.header,
        Header {
            alg: Algorithm::Hs256,
            kid: Some("hs".into()),
            typ: Some("JWT".into())
        }
    );
    assert_eq!(v.key_id.as_deref(), Some("hs"));
    assert_eq!(v.payload, PAYLOAD.as_bytes());
}

#[test]
fn shapes_other_than_three_parts_are_malformed() {
    let keys = hs_keys();
    let good = hs256(r#"{"alg":"HS256"}"#, PAYLOAD, &SECRET);
    let (input, sig) = good.rsplit_once('.').unwrap();
    for token in [
        "",
        ".",
        "..",
        "a.b",
        input,
        &format!("{input}.{sig}.x"),
        &format!("{input}.x.y.{sig}"),
        &format!(".{}.{sig}", input.split_once('.').unwrap().1),
        &format!("{input}.{sig}="),
        &format!("{input}.{sig} "),
        &format!(" {good}"),
    ] {
        assert_eq!(reason(token, &keys), "malformed", "{token:?}");
    }
}

#[test]
fn an_over_long_token_is_refused_before_decoding() {
    let token = "x".repeat(8193);
    assert_eq!(
        check(&token, &hs_keys()),
        Err(JwtError::TooLong { max: 8192 })
    );
}

#[test]
fn bad_headers_are_malformed() {
    let keys = hs_keys();
    for header in [
        "[]",
        "{}",
        "not json",
        r#"{"alg":256}"#,
        r#"{"alg":"HS256","alg":"HS256"}"#,
        r#"{"alg":"HS256","kid":7}"#,
        r#"{"alg":"HS256","typ":{}}"#,
        r#"{"alg":"HS256","crit":["exp"],"exp":1}"#,
        r#"{"alg":"HS256","b64":false,"crit":["b64"]}"#,
    ] {
        assert_eq!(
            reason(&hs256(header, PAYLOAD, &SECRET), &keys),
            "malformed",
            "{header}"
        );
    }
}

#[test]
fn none_unknown_and_unlisted_algorithms_are_refused() {
    let keys = hs_keys();
    let b = |s: &str| crate::b64::encode(s.as_bytes());
    let none = format!("{}.{}.", b(r#"{"alg":"none"}"#), b(PAYLOAD));
    assert_eq!(
        check(&none, &keys),
        Err(JwtError::UnsupportedAlg("none".into()))
    );
    for alg in ["None", "NONE", "HS512", "hs256", "RS256 ", ""] {
        let header = format!(r#"{{"alg":"{alg}"}}"#);
        assert_eq!(
            reason(&hs256(&header, PAYLOAD, &SECRET), &keys),
            "unsupported_alg",
            "{alg}"
        );
    }
    // A listed-elsewhere algorithm: HS256 is fine, but not for this caller.
    let token = hs256(r#"{"alg":"HS256"}"#, PAYLOAD, &SECRET);
    assert_eq!(
        verify(&token, &keys, &[Algorithm::EdDsa], 8192),
        Err(JwtError::UnsupportedAlg("HS256".into()))
    );
}

#[test]
fn tampering_anywhere_breaks_the_signature() {
    let keys = hs_keys();
    let token = hs256(r#"{"alg":"HS256"}"#, PAYLOAD, &SECRET);
    let (h, rest) = token.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();
    let other_payload = crate::b64::encode(br#"{"sub":"admin"}"#);
    let other_sig = {
        let mut sig = crate::b64::decode(s.as_bytes()).unwrap();
        sig[0] ^= 1;
        crate::b64::encode(&sig)
    };
    assert_eq!(
        check(&format!("{h}.{other_payload}.{s}"), &keys),
        Err(JwtError::BadSignature)
    );
    assert_eq!(
        check(&format!("{h}.{p}.{other_sig}"), &keys),
        Err(JwtError::BadSignature)
    );
    assert_eq!(
        check(&format!("{h}.{p}."), &keys),
        Err(JwtError::BadSignature)
    );
    assert_eq!(
        check(&hs256(r#"{"alg":"HS256"}"#, PAYLOAD, &[0x5b; 32]), &keys),
        Err(JwtError::BadSignature)
    );
}

#[test]
fn a_signed_payload_that_is_not_base64url_is_malformed() {
    // The issuer signed the text "!!", which cannot be decoded.
    let header = crate::b64::encode(br#"{"alg":"HS256"}"#);
    let input = format!("{header}.!!");
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &SECRET),
        input.as_bytes(),
    );
    let token = format!("{input}.{}", crate::b64::encode(tag.as_ref()));
    assert_eq!(
        check(&token, &hs_keys()),
        Err(JwtError::Malformed("payload is not base64url"))
    );
}

#[test]
fn a_public_key_is_never_an_hmac_secret() {
    // The classic confusion: HS256 "signed" with the bytes of the public key.
    let ed = ed_key(1).with_kid("ed");
    let mut keys = KeySet::new();
    keys.push(ed).unwrap();
    let public = crate::test_support::ed_pair(1);
    let public = ring::signature::KeyPair::public_key(&public)
        .as_ref()
        .to_vec();
    let forged = hs256(
        r#"{"alg":"HS256","kid":"ed"}"#,
        PAYLOAD,
        &[public.clone(), public.clone()].concat(),
    );
    assert_eq!(
        check(&forged, &keys),
        Err(JwtError::KeyAlgMismatch {
            kid: "ed".into(),
            alg: Algorithm::Hs256
        })
    );
    let forged = hs256(
        r#"{"alg":"HS256"}"#,
        PAYLOAD,
        &[public.clone(), public].concat(),
    );
    assert_eq!(
        check(&forged, &keys),
        Err(JwtError::NoKeyForAlg(Algorithm::Hs256))
    );
    // And the real EdDSA token verifies.
    assert!(check(&eddsa(r#"{"alg":"EdDSA","kid":"ed"}"#, PAYLOAD, 1), &keys).is_ok());
}

#[test]
fn an_hmac_secret_never_verifies_a_signature_algorithm() {
    let keys = hs_keys();
    for header in [
        r#"{"alg":"EdDSA"}"#,
        r#"{"alg":"RS256"}"#,
        r#"{"alg":"ES256"}"#,
    ] {
        assert_eq!(
            reason(&eddsa(header, PAYLOAD, 1), &keys),
            "unsupported_alg",
            "{header}"
        );
    }
}

#[test]
fn embedded_keys_in_the_header_are_ignored() {
    // A token bringing its own key (jwk) is checked against ours only.
    let header = r#"{"alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},"jku":"https://evil.example/jwks"}"#;
    let mut keys = KeySet::new();
    keys.push(ed_key(1)).unwrap();
    assert_eq!(
        check(&eddsa(header, PAYLOAD, 2), &keys),
        Err(JwtError::BadSignature)
    );
    assert!(check(&eddsa(header, PAYLOAD, 1), &keys).is_ok());
}
