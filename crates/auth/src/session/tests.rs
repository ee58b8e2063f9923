use super::*;
use crate::secret_keys::{KeyId, SecretKey};

const NOW: u64 = 1_772_532_000;
const JTI: [u8; 16] = [7; 16];

fn key(kid: &str, byte: u8) -> SecretKey {
    SecretKey::new(KeyId::new(kid).unwrap(), &[byte; 32]).unwrap()
}

fn keys(list: Vec<SecretKey>) -> SessionKeys {
    SessionKeys::new(SecretKeys::new(list).unwrap())
}

fn payload_of(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&encoding::b64url_decode(payload).unwrap()).unwrap()
}

/// A token over `claims` (any JSON) signed with `k`, built by hand the way
/// the module doc says, to reach states `issue` never makes.
fn forge(k: &SecretKey, claims: &str) -> String {
    let signed = format!("mgs1.{}", encoding::b64url(claims.as_bytes()));
    let mac = hmac::sign(k.hmac(), signed.as_bytes());
    format!("{signed}.{}", encoding::b64url(mac.as_ref()))
}

#[test]
fn an_issued_token_has_the_documented_shape_and_verifies() {
    let ks = keys(vec![key("k1", 1)]);
    let token = ks.issue("user123", 3600, NOW, &JTI).unwrap();
    assert!(
        token.starts_with("mgs1.") && token.matches('.').count() == 2,
        "{token}"
    );
    assert_eq!(
        payload_of(&token),
        serde_json::json!({"sub": "user123", "iat": NOW, "exp": NOW + 3600, "kid": "k1", "jti": "BwcHBwcHBwcHBwcHBwcHBw"})
    );
    let claims = ks.verify(&token, NOW, 0).unwrap();
    assert_eq!((claims.sub.as_str(), claims.exp), ("user123", NOW + 3600));
}

#[test]
fn expiry_is_exclusive_and_leeway_stretches_both_ends() {
    let ks = keys(vec![key("k1", 1)]);
    let token = ks.issue("u", 60, NOW, &JTI).unwrap();
    assert!(ks.verify(&token, NOW + 59, 0).is_ok());
    assert_eq!(ks.verify(&token, NOW + 60, 0), Err(SessionError::Expired));
    assert!(ks.verify(&token, NOW + 89, 30).is_ok());
    assert_eq!(ks.verify(&token, NOW + 90, 30), Err(SessionError::Expired));
    // A verifier whose clock is behind the issuer's.
    assert_eq!(
        ks.verify(&token, NOW - 1, 0),
        Err(SessionError::NotYetValid)
    );
    assert!(ks.verify(&token, NOW - 30, 30).is_ok());
    assert_eq!(
        ks.verify(&token, NOW - 31, 30),
        Err(SessionError::NotYetValid)
    );
}

#[test]
fn rotation_signs_with_the_first_key_and_verifies_with_all() {
    let old = keys(vec![key("k1", 1)]);
    let old_token = old.issue("u", 600, NOW, &JTI).unwrap();
    // Step 1: the new key is added second; tokens still come from k1.
    let step1 = keys(vec![key("k1", 1), key("k2", 2)]);
    assert_eq!(
        payload_of(&step1.issue("u", 600, NOW, &JTI).unwrap())["kid"],
        "k1"
    );
    // Step 2: k2 first; k1's tokens still verify.
    let step2 = keys(vec![key("k2", 2), key("k1", 1)]);
    let new_token = step2.issue("u", 600, NOW, &JTI).unwrap();
    assert_eq!(payload_of(&new_token)["kid"], "k2");
    assert!(step2.verify(&old_token, NOW, 0).is_ok());
    assert!(
        step1.verify(&new_token, NOW, 0).is_ok(),
        "nodes still at step 1 accept it"
    );
    // Step 3: k1 removed; its tokens are refused, k2's are not.
    let step3 = keys(vec![key("k2", 2)]);
    assert_eq!(
        step3.verify(&old_token, NOW, 0),
        Err(SessionError::UnknownKid)
    );
    assert!(step3.verify(&new_token, NOW, 0).is_ok());
    // Same kid, different secret: forged.
    let impostor = keys(vec![key("k2", 9)]);
    assert_eq!(
        impostor.verify(&new_token, NOW, 0),
        Err(SessionError::BadSignature)
    );
}

#[test]
fn any_altered_byte_is_refused() {
    let ks = keys(vec![key("k1", 1)]);
    let token = ks.issue("user123", 600, NOW, &JTI).unwrap();
    for i in 0..token.len() {
        let mut bytes = token.clone().into_bytes();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(bytes).unwrap();
        let got = ks.verify(&altered, NOW, 0);
        assert!(got.is_err(), "byte {i}: {altered}");
    }
    // Swapping in a payload with another subject, keeping the MAC.
    let other = ks.issue("admin", 600, NOW, &JTI).unwrap();
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[1] = other.split('.').nth(1).unwrap();
    assert_eq!(
        ks.verify(&parts.join("."), NOW, 0),
        Err(SessionError::BadSignature)
    );
}

#[test]
fn malformed_tokens_say_so_without_panicking() {
    let k = key("k1", 1);
    let ks = keys(vec![key("k1", 1)]);
    let good = ks.issue("u", 600, NOW, &JTI).unwrap();
    let long = format!("{good}{}", "A".repeat(MAX_TOKEN_LEN));
    let claims = |sub: &str, iat: u64, exp: u64, jti: &str| {
        format!(r#"{{"sub":"{sub}","iat":{iat},"exp":{exp},"kid":"k1","jti":"{jti}"}}"#)
    };
    let jti = "BwcHBwcHBwcHBwcHBwcHBw";
    let cases = [
        String::new(),
        "mgs1".to_owned(),
        "mgs1..".to_owned(),
        good.replacen("mgs1", "mgs2", 1),
        good.rsplit_once('.').unwrap().0.to_owned(),
        format!("{good}="),
        long,
        forge(&k, "not json"),
        forge(
            &k,
            &claims("u", NOW, NOW + 1, jti).replace('}', r#","admin":true}"#),
        ),
        forge(
            &k,
            &format!(
                r#"{{"sub":"u","sub":"v","iat":{NOW},"exp":{},"kid":"k1","jti":"{jti}"}}"#,
                NOW + 1
            ),
        ),
        forge(
            &k,
            &claims("u", NOW, NOW + 1, jti).replace(&format!("{NOW},"), "1.5,"),
        ),
        forge(&k, &claims("a b", NOW, NOW + 1, jti)),
        forge(&k, &claims("", NOW, NOW + 1, jti)),
        forge(&k, &claims(&"u".repeat(257), NOW, NOW + 1, jti)),
        forge(&k, &claims("u", NOW, NOW, jti)),
        forge(&k, &claims("u", NOW, NOW + 1, "short")),
    ];
    for token in &cases {
        assert!(
            matches!(ks.verify(token, NOW, 0), Err(SessionError::Malformed(_))),
            "{token}: {:?}",
            ks.verify(token, NOW, 0)
        );
    }
    // A hand-made token that follows the format is accepted: the MAC is
    // over the payload text, whatever its key order or spacing.
    let spaced = format!(
        r#"{{ "jti": "{jti}", "kid": "k1", "exp": {}, "iat": {NOW}, "sub": "u" }}"#,
        NOW + 5
    );
    assert_eq!(ks.verify(&forge(&k, &spaced), NOW, 0).unwrap().sub, "u");
}

#[test]
fn issue_refuses_bad_subjects_and_ttls() {
    let ks = keys(vec![key("k1", 1)]);
    for sub in ["", "a b", "tab\t", "\u{e9}", "line\n", &"u".repeat(257)] {
        assert_eq!(
            ks.issue(sub, 60, NOW, &JTI),
            Err(IssueError::BadSubject),
            "{sub:?}"
        );
    }
    assert!(ks.issue(&"u".repeat(256), 60, NOW, &JTI).is_ok());
    assert!(
        ks.issue("a@b.example|\"x\"\\", 60, NOW, &JTI).is_ok(),
        "quotes are escaped in JSON"
    );
    assert_eq!(ks.issue("u", 0, NOW, &JTI), Err(IssueError::BadTtl));
    assert_eq!(
        ks.issue("u", MAX_TTL + 1, NOW, &JTI),
        Err(IssueError::BadTtl)
    );
    assert_eq!(
        ks.issue("u", MAX_TTL, u64::MAX, &JTI),
        Err(IssueError::BadTtl)
    );
    let t = ks.issue("a@b.example|\"x\"\\", MAX_TTL, NOW, &JTI).unwrap();
    assert_eq!(ks.verify(&t, NOW, 0).unwrap().sub, "a@b.example|\"x\"\\");
}

#[test]
fn error_codes_are_stable() {
    let codes: Vec<_> = [
        SessionError::Malformed("x"),
        SessionError::BadSignature,
        SessionError::Expired,
        SessionError::NotYetValid,
        SessionError::UnknownKid,
    ]
    .iter()
    .map(SessionError::code)
    .collect();
    assert_eq!(
        codes,
        [
            "malformed",
            "bad_signature",
            "expired",
            "not_yet_valid",
            "unknown_kid"
        ]
    );
}

#[test]
fn the_example_in_docs_security_md_is_issued_as_shown() {
    // docs/security.md, "Session tokens": secret = bytes 0..=31, jti = 16 zero bytes.
    let secret: Vec<u8> = (0..32).collect();
    let ks = keys(vec![
        SecretKey::new(KeyId::new("k1").unwrap(), &secret).unwrap(),
    ]);
    let token = ks.issue("user123", 3600, NOW, &[0; 16]).unwrap();
    assert_eq!(
        token,
        "mgs1.eyJzdWIiOiJ1c2VyMTIzIiwiaWF0IjoxNzcyNTMyMDAwLCJleHAiOjE3NzI1MzU2MDAsImtpZCI6ImsxIiwianRpIjoiQUFBQUFBQUFBQUFBQUFBQUFBQUFBQSJ9.\
         tTdL3vy0VsbYb_CFD8YwbcctlyFg5UvT1e23ioBW4RM"
    );
}
