//! The published JWS examples: RFC 7515 Appendix A.1 (HS256), A.2 (RS256),
//! A.3 (ES256) and RFC 8037 Appendix A.4 (EdDSA), each with the RFC's own
//! key as a JWK. Their payloads carry `exp` 1300819380 (March 2011), so the
//! full validation runs at a `now` just before it; A.4's payload is plain
//! text, so it goes through the signature path only.
#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use meshgate_jwt::{Algorithm, JwtError, Key, KeySet, Validator};

/// `{"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}`
const PAYLOAD: &str = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
const EXP: u64 = 1_300_819_380;

const A1_KEY: &str = r#"{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#;
/// `{"typ":"JWT",\r\n "alg":"HS256"}`
const A1_HEADER: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9";
const A1_SIG: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

const A2_KEY: &str = concat!(
    r#"{"kty":"RSA","e":"AQAB","n":""#,
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddx",
    "HmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMs",
    "D1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSH",
    "SXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdV",
    "MTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8",
    r#"NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"}"#
);
/// `{"alg":"RS256"}`
const A2_HEADER: &str = "eyJhbGciOiJSUzI1NiJ9";
const A2_SIG: &str = concat!(
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7",
    "AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4",
    "BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K",
    "0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqv",
    "hJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrB",
    "p0igcN_IoypGlUPQGe77Rw"
);

const A3_KEY: &str = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
/// `{"alg":"ES256"}`
const A3_HEADER: &str = "eyJhbGciOiJFUzI1NiJ9";
const A3_SIG: &str =
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

const RFC8037_KEY: &str =
    r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
const RFC8037_TOKEN: &str = concat!(
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.",
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
);

fn keys(jwk: &str) -> KeySet {
    let mut keys = KeySet::new();
    keys.push(Key::from_jwk(jwk.as_bytes()).unwrap()).unwrap();
    keys
}

/// Validates `header.PAYLOAD.sig` under `jwk` before and at `exp`.
fn check_rfc7515(alg: Algorithm, jwk: &str, header: &str, sig: &str) {
    let token = format!("{header}.{PAYLOAD}.{sig}");
    let keys = keys(jwk);
    let mut v = Validator::new([alg]);
    v.leeway_secs = 0;
    v.issuers = vec!["joe".into()];
    let claims = v.validate(&token, &keys, EXP - 10).unwrap();
    assert_eq!(claims.get("iss").and_then(|v| v.as_str()), Some("joe"));
    assert_eq!(
        claims
            .header_value("http://example.com/is_root")
            .unwrap()
            .as_deref(),
        Some("true")
    );
    assert_eq!(v.validate(&token, &keys, EXP), Err(JwtError::Expired));
    // Any other algorithm on the list does not change the outcome; the
    // token's own alg missing from it does.
    v.algorithms = Algorithm::ALL.to_vec();
    assert!(v.validate(&token, &keys, EXP - 10).is_ok());
    v.algorithms.retain(|a| *a != alg);
    assert_eq!(
        v.validate(&token, &keys, EXP - 10).unwrap_err().reason(),
        "unsupported_alg"
    );
}

#[test]
fn rfc7515_a1_hs256() {
    check_rfc7515(Algorithm::Hs256, A1_KEY, A1_HEADER, A1_SIG);
}

#[test]
fn rfc7515_a2_rs256() {
    check_rfc7515(Algorithm::Rs256, A2_KEY, A2_HEADER, A2_SIG);
}

#[test]
fn rfc7515_a3_es256() {
    check_rfc7515(Algorithm::Es256, A3_KEY, A3_HEADER, A3_SIG);
}

#[test]
fn rfc8037_a4_eddsa_signature() {
    let v = Validator::new([Algorithm::EdDsa]);
    let verified = v
        .verify_signature(RFC8037_TOKEN, &keys(RFC8037_KEY))
        .unwrap();
    assert_eq!(verified.payload, b"Example of Ed25519 signing");
    assert_eq!(verified.header.alg, Algorithm::EdDsa);
    // Its payload is not a claims object, so full validation says so.
    assert_eq!(
        v.validate(RFC8037_TOKEN, &keys(RFC8037_KEY), 0),
        Err(JwtError::Malformed("payload is not a JSON object"))
    );
}

#[test]
fn each_rfc_signature_fails_under_the_others_keys_and_when_altered() {
    let tokens = [
        (
            Algorithm::Hs256,
            format!("{A1_HEADER}.{PAYLOAD}.{A1_SIG}"),
            A1_KEY,
        ),
        (
            Algorithm::Rs256,
            format!("{A2_HEADER}.{PAYLOAD}.{A2_SIG}"),
            A2_KEY,
        ),
        (
            Algorithm::Es256,
            format!("{A3_HEADER}.{PAYLOAD}.{A3_SIG}"),
            A3_KEY,
        ),
        (Algorithm::EdDsa, RFC8037_TOKEN.to_owned(), RFC8037_KEY),
    ];
    let v = Validator::new(Algorithm::ALL);
    for (alg, token, own) in &tokens {
        for (_, _, other) in tokens.iter().filter(|(_, _, k)| k != own) {
            let err = v.verify_signature(token, &keys(other)).unwrap_err();
            assert_eq!(err, JwtError::NoKeyForAlg(*alg), "{alg} under {other}");
        }
        // Change the signature's first character: a different signature,
        // still canonical base64url (the first character carries whole bits).
        let (input, sig) = token.rsplit_once('.').unwrap();
        let mut sig = sig.to_owned().into_bytes();
        sig[0] = if sig[0] == b'A' { b'B' } else { b'A' };
        let altered = format!("{input}.{}", String::from_utf8(sig).unwrap());
        assert_eq!(
            v.verify_signature(&altered, &keys(own)).unwrap_err(),
            JwtError::BadSignature,
            "{alg}"
        );
    }
}
