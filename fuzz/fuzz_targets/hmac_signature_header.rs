//! Fuzzes what a signed request brings from outside: the `Signature` and
//! `Content-Digest` headers, the date and the request line, split from the
//! input at newlines. Beyond "no panic": each parser's accepted values
//! render back to text it parses to the same value; a full verification of
//! the fuzzed headers never succeeds (the fuzzer does not know the key, so
//! success would mean a forged MAC); and whatever the signer accepts to
//! sign, the verifier accepts once and then refuses as a replay.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshgate_auth::Header;
use meshgate_auth::hmac_sig::{
    self, SigError, SignedRequest, ToSign, Verifier, content_digest_value, format_date,
    parse_content_digest, parse_date, params,
};
use meshgate_auth::secret_keys::{KeyId, SecretKey, SecretKeys};

const NOW: u64 = 1_772_532_000;

fn key_set() -> Option<SecretKeys> {
    let key = |kid: &str, byte: u8| SecretKey::new(KeyId::new(kid)?, &[byte; 32]).ok();
    SecretKeys::new(vec![key("k1", 1)?, key("client1", 2)?]).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some(keys) = key_set() else { return };
    let mut parts = data.splitn(6, |&b| b == b'\n');
    let mut next = || parts.next().unwrap_or_default();
    let (signature, digest, date) = (next(), next(), next());
    let text = |b: &'static [u8], raw: &[u8]| -> String {
        std::str::from_utf8(raw).map(str::to_owned).unwrap_or_else(|_| String::from_utf8_lossy(b).into_owned())
    };
    let method = text(b"GET", next());
    let path = text(b"/", next());
    let query = text(b"", next());

    // The parsers alone, with round trips.
    if let Ok(p) = params::parse(signature) {
        let again = params::render(&p.key_id, p.nonce, &p.mac);
        assert_eq!(params::parse(again.as_bytes()).as_ref(), Ok(&p));
    }
    if let Ok(d) = parse_content_digest(digest) {
        assert_eq!(parse_content_digest(content_digest_value(&d).as_bytes()), Ok(d));
    }
    let now = match parse_date(date) {
        Ok(t) => {
            assert_eq!(format_date(t).as_deref().map(str::as_bytes), Some(date));
            t
        }
        Err(_) => NOW,
    };

    // The whole verification of the fuzzed request.
    let mut verifier = Verifier::new(keys, 300, 4);
    let request = SignedRequest {
        method: &method,
        path: &path,
        query: &query,
        signature: Header::One(signature),
        date: Header::One(date),
        x_date: Header::Absent,
        content_digest: Header::One(digest),
    };
    let result = verifier.verify(&request, now);
    assert!(result.is_err(), "verified without the key: {result:?}");

    // Sign what can be signed, then verify it.
    let Some(signer) = key_set() else { return };
    let body = hmac_sig::sha256(data);
    let nonce = params::parse(signature).map(|p| p.nonce.to_owned()).unwrap_or_else(|_| "fuzzfuzzfuzzfuzz".into());
    let to_sign = ToSign { method: &method, path: &path, query: &query, date: now, nonce: &nonce, body_digest: &body };
    if let Ok(h) = hmac_sig::sign(signer.signing(), &to_sign) {
        let signed = SignedRequest {
            signature: h.signature.as_str().into(),
            date: h.date.as_str().into(),
            content_digest: h.content_digest.as_str().into(),
            ..request
        };
        let v = verifier.verify(&signed, now).expect("what sign() made verifies");
        assert_eq!(v.content_digest(), &body);
        assert_eq!(verifier.verify(&signed, now), Err(SigError::Replay));
    }
});
