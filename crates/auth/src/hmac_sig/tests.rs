use super::*;
use crate::secret_keys::{KeyId, SecretKey, SecretKeys};

const NOW: u64 = 1_772_532_000; // Tue, 03 Mar 2026 10:00:00 GMT
const NONCE: &str = "4kXw0cW0Yq8mB5pQ_1z2Zg";

fn key(kid: &str, byte: u8) -> SecretKey {
    SecretKey::new(KeyId::new(kid).unwrap(), &[byte; 32]).unwrap()
}

fn keys() -> SecretKeys {
    SecretKeys::new(vec![key("client1", 1), key("client0", 0)]).unwrap()
}

/// A request signed with `k` at `date`, as its three header values.
fn signed(
    k: &SecretKey,
    method: &str,
    path: &str,
    query: &str,
    date: u64,
    body: &[u8],
) -> SignedHeaders {
    let digest = sha256(body);
    sign(
        k,
        &ToSign {
            method,
            path,
            query,
            date,
            nonce: NONCE,
            body_digest: &digest,
        },
    )
    .unwrap()
}

fn request<'a>(
    h: &'a SignedHeaders,
    method: &'a str,
    path: &'a str,
    query: &'a str,
) -> SignedRequest<'a> {
    SignedRequest {
        method,
        path,
        query,
        signature: h.signature.as_str().into(),
        date: h.date.as_str().into(),
        x_date: Header::Absent,
        content_digest: h.content_digest.as_str().into(),
    }
}

#[test]
fn the_signed_string_is_six_lines_as_documented() {
    let s = signing_string(
        "POST",
        "/caf%C3%A9/items",
        "b=2&a=1",
        "Tue, 03 Mar 2026 10:00:00 GMT",
        NONCE,
        &sha256(b""),
    );
    assert_eq!(
        s,
        "POST\n/caf%C3%A9/items\nb=2&a=1\nTue, 03 Mar 2026 10:00:00 GMT\n4kXw0cW0Yq8mB5pQ_1z2Zg\n\
         sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
    );
    assert_eq!(format_date(NOW).unwrap(), "Tue, 03 Mar 2026 10:00:00 GMT");
    assert_eq!(parse_date(b"Tue, 03 Mar 2026 10:00:00 GMT"), Ok(NOW));
}

#[test]
fn a_signed_request_verifies_and_its_body_is_checked_at_the_end() {
    let body = b"{\"amount\": 10}";
    let h = signed(&key("client1", 1), "POST", "/pay", "", NOW, body);
    assert!(
        h.signature
            .starts_with("keyId=\"client1\", algorithm=\"hmac-sha256\", nonce=\"")
    );
    let v = verify_signature(&keys(), &request(&h, "POST", "/pay", ""), NOW, 300).unwrap();
    assert_eq!(v.key_id().as_str(), "client1");
    assert_eq!((v.date(), v.nonce()), (NOW, NONCE));
    // The body streams through in pieces.
    let mut d = BodyDigest::new();
    for chunk in body.chunks(3) {
        d.update(chunk);
    }
    assert_eq!(d.len(), body.len() as u64);
    assert_eq!(v.check_body(d), Ok(()));
    let mut other = BodyDigest::new();
    other.update(b"{\"amount\": 1000}");
    assert_eq!(v.check_body(other), Err(SigError::DigestMismatch));
    assert_eq!(
        v.check_body(BodyDigest::new()),
        Err(SigError::DigestMismatch)
    );
}

#[test]
fn dates_exactly_at_the_skew_edge_pass_and_one_second_more_fails() {
    let k = key("client1", 1);
    for (offset, ok) in [
        (-301i64, false),
        (-300, true),
        (0, true),
        (300, true),
        (301, false),
    ] {
        let date = NOW.checked_add_signed(offset).unwrap();
        let h = signed(&k, "GET", "/", "", date, b"");
        let got = verify_signature(&keys(), &request(&h, "GET", "/", ""), NOW, DEFAULT_MAX_SKEW);
        if ok {
            assert!(got.is_ok(), "offset {offset}: {got:?}");
        } else {
            assert_eq!(got, Err(SigError::ClockSkew), "offset {offset}");
        }
    }
    // The window is configurable.
    let h = signed(&k, "GET", "/", "", NOW - 31, b"");
    assert_eq!(
        verify_signature(&keys(), &request(&h, "GET", "/", ""), NOW, 30),
        Err(SigError::ClockSkew)
    );
}

#[test]
fn a_replayed_nonce_is_refused_until_it_expires() {
    let k = key("client1", 1);
    let mut verifier = Verifier::new(keys(), 300, 100);
    let h = signed(&k, "GET", "/a", "x=1", NOW, b"");
    let req = request(&h, "GET", "/a", "x=1");
    assert!(verifier.verify(&req, NOW).is_ok());
    assert_eq!(verifier.verify(&req, NOW), Err(SigError::Replay));
    assert_eq!(verifier.verify(&req, NOW + 300), Err(SigError::Replay));
    // Past the skew window the old request is stale whatever the cache
    // says; the same nonce on a new date is accepted once the 600 s kept
    // are over.
    assert_eq!(verifier.verify(&req, NOW + 301), Err(SigError::ClockSkew));
    let later = signed(&k, "GET", "/a", "x=1", NOW + 599, b"");
    assert_eq!(
        verifier.verify(&request(&later, "GET", "/a", "x=1"), NOW + 599),
        Err(SigError::Replay)
    );
    assert!(
        verifier
            .verify(&request(&later, "GET", "/a", "x=1"), NOW + 600)
            .is_ok()
    );
}

#[test]
fn a_refused_request_leaves_no_nonce_behind() {
    let k = key("client1", 1);
    let mut verifier = Verifier::new(keys(), 300, 100);
    let h = signed(&k, "GET", "/a", "", NOW, b"");
    assert_eq!(
        verifier.verify(&request(&h, "GET", "/b", ""), NOW),
        Err(SigError::BadSignature)
    );
    assert!(
        verifier.nonces().is_empty(),
        "a forged request must not burn the nonce"
    );
    assert!(verifier.verify(&request(&h, "GET", "/a", ""), NOW).is_ok());
}

#[test]
fn a_full_replay_cache_refuses_new_nonces_then_recovers() {
    let k = key("client1", 1);
    let mut verifier = Verifier::new(keys(), 300, 2);
    let with_nonce = |nonce: &str, date: u64| {
        let digest = sha256(b"");
        sign(
            &k,
            &ToSign {
                method: "GET",
                path: "/",
                query: "",
                date,
                nonce,
                body_digest: &digest,
            },
        )
        .unwrap()
    };
    let (a, b, c) = (
        with_nonce("aaaaaaaaaaaaaaaaaaaaaa", NOW),
        with_nonce("bbbbbbbbbbbbbbbbbbbbbb", NOW),
        with_nonce("cccccccccccccccccccccc", NOW),
    );
    assert!(verifier.verify(&request(&a, "GET", "/", ""), NOW).is_ok());
    assert!(verifier.verify(&request(&b, "GET", "/", ""), NOW).is_ok());
    assert_eq!(
        verifier.verify(&request(&c, "GET", "/", ""), NOW),
        Err(SigError::ReplayCacheFull)
    );
    assert_eq!(verifier.nonces().len(), 2);
    let c_later = with_nonce("cccccccccccccccccccccc", NOW + 600);
    assert!(
        verifier
            .verify(&request(&c_later, "GET", "/", ""), NOW + 600)
            .is_ok()
    );
}

#[test]
fn every_key_of_the_set_verifies_and_others_are_unknown() {
    for k in [key("client1", 1), key("client0", 0)] {
        let h = signed(&k, "GET", "/", "", NOW, b"");
        let v = verify_signature(&keys(), &request(&h, "GET", "/", ""), NOW, 300).unwrap();
        assert_eq!(v.key_id(), k.kid());
    }
    let stranger = signed(&key("client9", 1), "GET", "/", "", NOW, b"");
    assert_eq!(
        verify_signature(&keys(), &request(&stranger, "GET", "/", ""), NOW, 300),
        Err(SigError::UnknownKey)
    );
    // Right id, wrong secret.
    let forged = signed(&key("client1", 2), "GET", "/", "", NOW, b"");
    assert_eq!(
        verify_signature(&keys(), &request(&forged, "GET", "/", ""), NOW, 300),
        Err(SigError::BadSignature)
    );
    // A reload that drops a key keeps the nonces already seen.
    let mut verifier = Verifier::new(keys(), 300, 10);
    let h = signed(&key("client1", 1), "GET", "/", "", NOW, b"");
    assert!(verifier.verify(&request(&h, "GET", "/", ""), NOW).is_ok());
    verifier.set_keys(SecretKeys::new(vec![key("client1", 1)]).unwrap());
    assert_eq!(
        verifier.verify(&request(&h, "GET", "/", ""), NOW),
        Err(SigError::Replay)
    );
}

#[test]
fn changing_any_signed_part_breaks_the_signature() {
    let h = signed(&key("client1", 1), "POST", "/p/q", "a=1&b=2", NOW, b"body");
    let ks = keys();
    let check = |req: SignedRequest<'_>| verify_signature(&ks, &req, NOW, 300);
    assert!(check(request(&h, "POST", "/p/q", "a=1&b=2")).is_ok());
    assert_eq!(
        check(request(&h, "PUT", "/p/q", "a=1&b=2")),
        Err(SigError::BadSignature)
    );
    assert_eq!(
        check(request(&h, "POST", "/p/Q", "a=1&b=2")),
        Err(SigError::BadSignature)
    );
    assert_eq!(
        check(request(&h, "POST", "/p/q", "b=2&a=1")),
        Err(SigError::BadSignature),
        "order counts"
    );
    assert_eq!(
        check(request(&h, "POST", "/p/q", "")),
        Err(SigError::BadSignature)
    );
    let other_date = format_date(NOW + 1).unwrap();
    let mut r = request(&h, "POST", "/p/q", "a=1&b=2");
    r.date = other_date.as_str().into();
    assert_eq!(check(r), Err(SigError::BadSignature));
    let other_digest = content_digest_value(&sha256(b"other"));
    let mut r = request(&h, "POST", "/p/q", "a=1&b=2");
    r.content_digest = other_digest.as_str().into();
    assert_eq!(check(r), Err(SigError::BadSignature));
    let other_nonce = h.signature.replace(NONCE, "AAAAAAAAAAAAAAAAAAAAAA");
    let mut r = request(&h, "POST", "/p/q", "a=1&b=2");
    r.signature = other_nonce.as_str().into();
    assert_eq!(check(r), Err(SigError::BadSignature));
}

#[test]
fn x_date_is_the_signed_date_when_present() {
    let h = signed(&key("client1", 1), "GET", "/", "", NOW, b"");
    let ks = keys();
    let mut r = request(&h, "GET", "/", "");
    r.x_date = r.date;
    r.date = "Mon, 02 Mar 2026 10:00:00 GMT".into();
    assert!(
        verify_signature(&ks, &r, NOW, 300).is_ok(),
        "a Date rewritten on the way is ignored"
    );
    r.x_date = Header::Repeated;
    assert_eq!(
        verify_signature(&ks, &r, NOW, 300),
        Err(SigError::Malformed("date header repeated"))
    );
    r.x_date = Header::Absent;
    r.date = Header::Absent;
    assert_eq!(
        verify_signature(&ks, &r, NOW, 300).map_err(|e| e.code()),
        Err("malformed")
    );
}

#[test]
fn the_signature_header_grammar_is_strict() {
    let mac = crate::encoding::b64(&[9; 32]);
    let good =
        format!("keyId=\"c\", algorithm=\"hmac-sha256\", nonce=\"{NONCE}\", signature=\"{mac}\"");
    assert!(params::parse(good.as_bytes()).is_ok());
    let reordered = format!(
        "  signature=\"{mac}\",nonce=\"{NONCE}\" ,\talgorithm=\"hmac-sha256\",keyId=\"c\" "
    );
    assert_eq!(params::parse(reordered.as_bytes()).unwrap().mac, [9; 32]);
    let bad = [
        String::new(),
        format!("keyId=\"c\", algorithm=\"hmac-sha256\", nonce=\"{NONCE}\""),
        format!("{good}, keyId=\"c\""),
        format!("{good}, extra=\"x\""),
        format!("{good},"),
        format!("{good},, keyId=\"d\""),
        good.replace("hmac-sha256", "hmac-sha1"),
        good.replace("keyId=", "keyid="),
        good.replace("keyId=\"c\"", "keyId=c"),
        good.replace("keyId=\"c\"", "keyId=\"c d\""),
        good.replace("keyId=\"c\"", "keyId=\"c\\\"\""),
        good.replace("keyId=\"c\"", "keyId=\"\""),
        good.replace(NONCE, "short"),
        good.replace(NONCE, &"n".repeat(129)),
        good.replace(NONCE, "4kXw0cW0Yq8mB5pQ+1z2Zg"),
        good.replace(&mac, &mac[..43]),
        good.replace(&mac, &crate::encoding::b64(&[9; 31])),
        good.replace(", algorithm", " algorithm"),
        format!("keyId=\"c\", algorithm=\"hmac-sha256\", nonce=\"{NONCE}\", signature=\"{mac}"),
        format!("{good}{}", " ".repeat(params::MAX_HEADER_LEN)),
        good.replace('c', "\u{e9}"),
    ];
    for value in &bad {
        assert!(
            matches!(params::parse(value.as_bytes()), Err(SigError::Malformed(_))),
            "{value:?}"
        );
    }
}

#[test]
fn only_canonical_imf_fixdates_are_read() {
    for bad in [
        "Tuesday, 03-Mar-26 10:00:00 GMT",
        "Tue Mar  3 10:00:00 2026",
        "tue, 03 Mar 2026 10:00:00 GMT",
        "Wed, 03 Mar 2026 10:00:00 GMT",
        "Tue, 3 Mar 2026 10:00:00 GMT",
        "Tue, 03 Mar 2026 10:00:00 UTC",
        "Tue, 03 Mar 2026 25:00:00 GMT",
        "",
    ] {
        assert!(parse_date(bad.as_bytes()).is_err(), "{bad:?}");
    }
    assert_eq!(
        format_date(253_402_300_799).as_deref(),
        Some("Fri, 31 Dec 9999 23:59:59 GMT")
    );
    assert_eq!(format_date(253_402_300_800), None);
    assert_eq!(format_date(u64::MAX), None);
}

#[test]
fn content_digest_reads_sha_256_among_other_members() {
    let d = sha256(b"hello");
    let v = content_digest_value(&d);
    assert_eq!(parse_content_digest(v.as_bytes()), Ok(d));
    let sha512 = crate::encoding::b64(&[1; 64]);
    let both = format!("sha-512=:{sha512}:, {v}");
    assert_eq!(parse_content_digest(both.as_bytes()), Ok(d));
    for bad in [
        format!("sha-512=:{sha512}:"),
        format!("{v}, {v}"),
        format!("{v};p=1"),
        v.replace("sha-256", "SHA-256"),
        v.trim_end_matches(':').to_owned(),
        format!("sha-256={}", crate::encoding::b64(&d)),
        "sha-256=:AAAA:".to_owned(),
        format!("{v}{}", ", x=::".repeat(8)),
        String::new(),
    ] {
        assert!(parse_content_digest(bad.as_bytes()).is_err(), "{bad:?}");
    }
}

#[test]
fn unsignable_targets_are_refused_on_both_sides() {
    let k = key("client1", 1);
    let digest = sha256(b"");
    for (method, path, query) in [
        ("GET", "/a\nb", ""),
        ("GET", "/a", "x=1\nGET"),
        ("G T", "/a", ""),
        ("", "/a", ""),
        ("GET", "a", ""),
        ("GET", "/a?b", ""),
        ("GET", "/a#f", ""),
        ("GET", "/caf\u{e9}", ""),
    ] {
        let got = sign(
            &k,
            &ToSign {
                method,
                path,
                query,
                date: NOW,
                nonce: NONCE,
                body_digest: &digest,
            },
        );
        assert!(
            matches!(got, Err(SigError::Malformed(_))),
            "{method:?} {path:?} {query:?}"
        );
    }
    let h = signed(&k, "GET", "/a", "", NOW, b"");
    assert!(matches!(
        verify_signature(&keys(), &request(&h, "GET", "/a\n", ""), NOW, 300),
        Err(SigError::Malformed(_))
    ));
    assert_eq!(
        verify_signature(
            &keys(),
            &SignedRequest {
                method: "GET",
                path: "/",
                ..SignedRequest::default()
            },
            NOW,
            300
        ),
        Err(SigError::Missing)
    );
}

#[test]
fn error_codes_are_stable() {
    let codes: Vec<_> = [
        SigError::Missing,
        SigError::Malformed("x"),
        SigError::ClockSkew,
        SigError::UnknownKey,
        SigError::BadSignature,
        SigError::Replay,
        SigError::ReplayCacheFull,
        SigError::DigestMismatch,
    ]
    .iter()
    .map(SigError::code)
    .collect();
    assert_eq!(
        codes,
        [
            "missing",
            "malformed",
            "clock_skew",
            "unknown_key",
            "bad_signature",
            "replay",
            "replay_cache_full",
            "digest_mismatch"
        ]
    );
}

#[test]
fn the_example_in_docs_security_md_signs_as_shown() {
    // docs/security.md, "HMAC request signatures": secret = bytes 0..=31.
    let secret: Vec<u8> = (0..32).collect();
    let k = SecretKey::new(KeyId::new("client1").unwrap(), &secret).unwrap();
    let body = sha256(br#"{"qty":1}"#);
    let h = sign(
        &k,
        &ToSign {
            method: "POST",
            path: "/orders",
            query: "id=7&dry_run=1",
            date: NOW,
            nonce: NONCE,
            body_digest: &body,
        },
    )
    .unwrap();
    assert_eq!(h.date, "Tue, 03 Mar 2026 10:00:00 GMT");
    assert_eq!(
        h.content_digest,
        "sha-256=:kkON3UJmsycfzr/0kafbfwmVMyut6CTHBPg1lrfzb3Q=:"
    );
    assert_eq!(
        h.signature,
        "keyId=\"client1\", algorithm=\"hmac-sha256\", nonce=\"4kXw0cW0Yq8mB5pQ_1z2Zg\", \
         signature=\"rzruXfD+MhoCw9HXxqijM6TgqSgom2CDo+eCGKaKUeU=\""
    );
}
