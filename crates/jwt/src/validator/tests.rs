use serde_json::json;

use super::*;
use crate::key::Key;
use crate::test_support::{SECRET, hs256};

fn claims(value: Value) -> Claims {
    match value {
        Value::Object(map) => Claims::new(map),
        _ => panic!("not an object"),
    }
}

fn exact() -> Validator {
    let mut v = Validator::new([Algorithm::Hs256]);
    v.leeway_secs = 0;
    v
}

fn check(v: &Validator, value: Value, now: u64) -> Result<(), JwtError> {
    v.check_claims(&claims(value), now)
}

#[test]
fn defaults_are_the_documented_ones() {
    let v = Validator::new([Algorithm::Rs256]);
    assert_eq!(v.algorithms, [Algorithm::Rs256]);
    assert_eq!(
        (v.leeway_secs, v.require_exp, v.max_token_len),
        (60, true, 8192)
    );
    assert!(v.issuers.is_empty() && v.audiences.is_empty());
}

#[test]
fn exp_is_exclusive_and_leeway_extends_it() {
    let v = exact();
    assert_eq!(check(&v, json!({"exp": 1000}), 999), Ok(()));
    assert_eq!(
        check(&v, json!({"exp": 1000}), 1000),
        Err(JwtError::Expired)
    );
    let v = Validator {
        leeway_secs: 60,
        ..exact()
    };
    assert_eq!(check(&v, json!({"exp": 1000}), 1059), Ok(()));
    assert_eq!(
        check(&v, json!({"exp": 1000}), 1060),
        Err(JwtError::Expired)
    );
}

#[test]
fn nbf_is_inclusive_and_leeway_brings_it_forward() {
    let v = Validator {
        require_exp: false,
        ..exact()
    };
    assert_eq!(
        check(&v, json!({"nbf": 1000}), 999),
        Err(JwtError::NotYetValid)
    );
    assert_eq!(check(&v, json!({"nbf": 1000}), 1000), Ok(()));
    let v = Validator {
        leeway_secs: 60,
        ..v
    };
    assert_eq!(check(&v, json!({"nbf": 1000}), 940), Ok(()));
    assert_eq!(
        check(&v, json!({"nbf": 1000}), 939),
        Err(JwtError::NotYetValid)
    );
}

#[test]
fn exp_is_required_unless_the_validator_says_otherwise() {
    assert_eq!(
        check(&exact(), json!({}), 0),
        Err(JwtError::MissingClaim("exp"))
    );
    let v = Validator {
        require_exp: false,
        ..exact()
    };
    assert_eq!(check(&v, json!({}), u64::MAX), Ok(()));
}

#[test]
fn odd_dates_round_toward_refusal_and_never_overflow() {
    let v = Validator {
        leeway_secs: u64::MAX,
        ..exact()
    };
    assert_eq!(check(&v, json!({"exp": u64::MAX}), u64::MAX - 1), Ok(()));
    let v = exact();
    assert_eq!(
        check(&v, json!({"exp": 1000.9}), 1000),
        Err(JwtError::Expired)
    );
    assert_eq!(
        check(&v, json!({"exp": 2000, "nbf": 1000.1}), 1000),
        Err(JwtError::NotYetValid)
    );
    assert_eq!(check(&v, json!({"exp": -5}), 0), Err(JwtError::Expired));
    assert_eq!(check(&v, json!({"exp": -5.5}), 0), Err(JwtError::Expired));
    assert_eq!(check(&v, json!({"exp": 1e300}), u64::MAX - 1), Ok(()));
    assert_eq!(check(&v, json!({"exp": 2000, "nbf": -1}), 0), Ok(()));
    for bad in [
        json!({"exp": "2000"}),
        json!({"exp": null}),
        json!({"exp": 1, "nbf": [1]}),
    ] {
        assert_eq!(
            check(&v, bad.clone(), 0).map_err(|e| e.reason()),
            Err("malformed"),
            "{bad}"
        );
    }
}

#[test]
fn the_issuer_must_be_one_of_the_list() {
    let v = Validator {
        issuers: vec!["https://a.example".into(), "https://b.example".into()],
        ..exact()
    };
    let with = |iss: Value| json!({"exp": 10, "iss": iss});
    assert_eq!(check(&v, with(json!("https://b.example")), 0), Ok(()));
    assert_eq!(
        check(&v, with(json!("https://c.example")), 0),
        Err(JwtError::BadIssuer)
    );
    assert_eq!(
        check(&v, with(json!("https://A.example")), 0),
        Err(JwtError::BadIssuer)
    );
    assert_eq!(
        check(&v, with(json!(["https://a.example"])), 0),
        Err(JwtError::BadIssuer)
    );
    assert_eq!(
        check(&v, json!({"exp": 10}), 0),
        Err(JwtError::MissingClaim("iss"))
    );
    // Not checked when the list is empty.
    assert_eq!(check(&exact(), with(json!(42)), 0), Ok(()));
}

#[test]
fn the_audience_must_intersect() {
    let v = Validator {
        audiences: vec!["api".into(), "web".into()],
        ..exact()
    };
    let with = |aud: Value| json!({"exp": 10, "aud": aud});
    assert_eq!(check(&v, with(json!("web")), 0), Ok(()));
    assert_eq!(check(&v, with(json!(["other", "api"])), 0), Ok(()));
    assert_eq!(
        check(&v, with(json!("other")), 0),
        Err(JwtError::BadAudience)
    );
    assert_eq!(
        check(&v, with(json!(["x", "y"])), 0),
        Err(JwtError::BadAudience)
    );
    assert_eq!(check(&v, with(json!([])), 0), Err(JwtError::BadAudience));
    assert_eq!(
        check(&v, with(json!(["api", 7])), 0),
        Err(JwtError::BadAudience)
    );
    assert_eq!(
        check(&v, with(json!({"api": true})), 0),
        Err(JwtError::BadAudience)
    );
    assert_eq!(
        check(&v, json!({"exp": 10}), 0),
        Err(JwtError::MissingClaim("aud"))
    );
    assert_eq!(check(&exact(), with(json!("anything")), 0), Ok(()));
}

#[test]
fn validate_checks_the_signature_before_the_claims_and_returns_them() {
    let mut keys = KeySet::new();
    keys.push(Key::hmac_secret(&SECRET).unwrap()).unwrap();
    let v = Validator {
        audiences: vec!["api".into()],
        ..exact()
    };
    let good = hs256(
        r#"{"alg":"HS256"}"#,
        r#"{"sub":"alice","aud":"api","exp":100}"#,
        &SECRET,
    );
    let c = v.validate(&good, &keys, 50).unwrap();
    assert_eq!(c.subject(), Some("alice"));
    assert_eq!(v.validate(&good, &keys, 100), Err(JwtError::Expired));
    // A forged expired token reports its signature, not its expiry.
    let forged = hs256(r#"{"alg":"HS256"}"#, r#"{"exp":1}"#, &[0x11; 32]);
    assert_eq!(v.validate(&forged, &keys, 50), Err(JwtError::BadSignature));
}

#[test]
fn a_payload_that_is_not_a_claims_object_is_malformed() {
    let mut keys = KeySet::new();
    keys.push(Key::hmac_secret(&SECRET).unwrap()).unwrap();
    for payload in [
        "[]",
        "null",
        "",
        "{\"exp\":1,\"exp\":2}",
        "Example of signing",
    ] {
        let token = hs256(r#"{"alg":"HS256"}"#, payload, &SECRET);
        assert_eq!(
            exact().validate(&token, &keys, 0),
            Err(JwtError::Malformed("payload is not a JSON object")),
            "{payload}"
        );
    }
}
