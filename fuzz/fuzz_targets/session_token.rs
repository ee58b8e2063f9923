//! Fuzzes session-token verification: arbitrary text as a token (which
//! must never verify, since the fuzzer has no key), arbitrary bytes as a
//! correctly MACed payload (to reach the claims parser and checks past the
//! MAC; anything accepted must satisfy the documented claim rules), and
//! arbitrary subjects through issue and back.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use meshgate_auth::secret_keys::{KeyId, SecretKey, SecretKeys};
use meshgate_auth::session::{self, SessionKeys};

const NOW: u64 = 1_772_532_000;
const SECRET: [u8; 32] = [7; 32];

fuzz_target!(|data: &[u8]| {
    let Some(kid) = KeyId::new("k1") else { return };
    let Ok(key) = SecretKey::new(kid, &SECRET) else { return };
    let Ok(set) = SecretKeys::new(vec![key]) else { return };
    let keys = SessionKeys::new(set);

    let text = String::from_utf8_lossy(data);
    assert!(keys.verify(&text, NOW, 60).is_err(), "a token verified without the key");

    // A payload of the fuzzer's bytes with a valid MAC.
    let signed = format!("mgs1.{}", URL_SAFE_NO_PAD.encode(data));
    let mac = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &SECRET), signed.as_bytes());
    let token = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()));
    if let Ok(claims) = keys.verify(&token, NOW, 60) {
        assert!(token.len() <= session::MAX_TOKEN_LEN);
        assert!(session::is_subject(&claims.sub));
        assert!(claims.iat < claims.exp);
        assert!(claims.iat <= NOW + 60 && NOW < claims.exp.saturating_add(60));
        assert_eq!(claims.kid, "k1");
    }

    // Any subject issue accepts comes back unchanged.
    if let Ok(token) = keys.issue(&text, 3600, NOW, &[1; 16]) {
        assert!(token.len() <= session::MAX_TOKEN_LEN);
        let claims = keys.verify(&token, NOW, 0).expect("an issued token verifies");
        assert_eq!(claims.sub, text);
    }
});
