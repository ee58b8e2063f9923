use super::*;

/// An EC P-256 SPKI made by Python's `cryptography`.
const EC_SPKI: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200042b7aa13e769e91c2072540cae7600177f74c45501b4f7326c57caa9ee925a684d1061bbb97a28d77adf7b3506cc7ab05892ac05e6bb875ed2586982e86de6375";
/// An Ed25519 SPKI made by Python's `cryptography`.
const ED_SPKI: &str =
    "302a300506032b657003210058c6ba0b55eabe0ae1a5ea098b5331e974c8e94e7dd76b3e72049e9f6ad1d42d";
/// The start of a P-384 SPKI: the same shape with another curve.
const P384_SPKI_HEAD: &str = "3076301006072a8648ce3d020106052b81040022036200";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// DER-encodes one element (test helper; lengths up to 65535).
fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match contents.len() {
        n @ 0..=0x7f => out.push(n as u8),
        n @ 0x80..=0xff => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(contents);
    out
}

fn rsa_spki(n: &[u8], e: &[u8], params: &[u8]) -> Vec<u8> {
    let mut key = tlv(INTEGER, n);
    key.extend(tlv(INTEGER, e));
    let mut bits = vec![0];
    bits.extend(tlv(SEQUENCE, &key));
    let mut alg = tlv(OID, OID_RSA);
    alg.extend_from_slice(params);
    let mut spki = tlv(SEQUENCE, &alg);
    spki.extend(tlv(BIT_STRING, &bits));
    tlv(SEQUENCE, &spki)
}

#[test]
fn reads_ec_ed25519_and_rsa_keys() {
    let ec = hex(EC_SPKI);
    match parse_spki(&ec).unwrap() {
        Spki::EcP256 { point } => assert_eq!((point.len(), point[0]), (65, 4)),
        other => panic!("{other:?}"),
    }
    let ed = hex(ED_SPKI);
    assert_eq!(parse_spki(&ed).unwrap(), Spki::Ed25519 { key: &ed[12..] });

    // A modulus with its top bit set carries a sign-padding zero in DER,
    // which the reader strips.
    let mut n = vec![0x00, 0xc1];
    n.extend([0x55; 255]);
    let der = rsa_spki(&n, &[1, 0, 1], &[NULL, 0]);
    assert_eq!(
        parse_spki(&der).unwrap(),
        Spki::Rsa {
            n: &n[1..],
            e: &[1, 0, 1]
        }
    );
    // Absent parameters are accepted too.
    assert!(parse_spki(&rsa_spki(&n, &[3], &[])).is_ok());
}

#[test]
fn other_curves_and_algorithms_are_unsupported_not_malformed() {
    // The P-384 SPKI's AlgorithmIdentifier with a short point.
    let head = hex(P384_SPKI_HEAD);
    let mut body = head[2..20].to_vec();
    body.extend(tlv(BIT_STRING, &[0, 4, 1, 2]));
    let der = tlv(SEQUENCE, &body);
    assert!(
        matches!(parse_spki(&der), Err(KeyError::Unsupported(_))),
        "{der:?}"
    );

    // RSASSA-PSS keys (1.2.840.113549.1.1.10).
    let mut alg = tlv(OID, &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a]);
    alg.extend([NULL, 0]);
    let mut spki = tlv(SEQUENCE, &alg);
    spki.extend(tlv(BIT_STRING, &[0, 1]));
    assert!(matches!(
        parse_spki(&tlv(SEQUENCE, &spki)),
        Err(KeyError::Unsupported(_))
    ));
}

#[test]
fn non_der_encodings_are_refused() {
    let ed = hex(ED_SPKI);
    // Trailing bytes, truncation, a wrong outer tag.
    let mut long = ed.clone();
    long.push(0);
    assert!(parse_spki(&long).is_err());
    assert!(parse_spki(&ed[..ed.len() - 1]).is_err());
    let mut tag = ed.clone();
    tag[0] = 0x31;
    assert!(parse_spki(&tag).is_err());
    // The same key with a long-form length that the short form could say.
    let mut long_form = vec![0x30, 0x81, 0x2a];
    long_form.extend_from_slice(&ed[2..]);
    assert!(parse_spki(&long_form).is_err());
    // Unused bits in the BIT STRING.
    let mut unused = ed.clone();
    unused[11] = 1;
    assert!(parse_spki(&unused).is_err());
    // Parameters on an Ed25519 key.
    let mut alg = tlv(OID, OID_ED25519);
    alg.extend([NULL, 0]);
    let mut spki = tlv(SEQUENCE, &alg);
    spki.extend(tlv(BIT_STRING, &[0; 33]));
    assert!(parse_spki(&tlv(SEQUENCE, &spki)).is_err());
}

#[test]
fn rsa_integers_must_be_positive_and_minimal() {
    let n = [0x41; 256];
    for bad_e in [&[][..], &[0], &[0, 1], &[0x80], &[0xff, 1]] {
        assert!(
            parse_spki(&rsa_spki(&n, bad_e, &[NULL, 0])).is_err(),
            "{bad_e:?}"
        );
    }
    // NULL parameters with content.
    assert!(parse_spki(&rsa_spki(&n, &[3], &[NULL, 1, 0])).is_err());
}

#[test]
fn the_reader_never_panics_on_short_or_huge_lengths() {
    for input in [
        &[][..],
        &[0x30],
        &[0x30, 0x80],
        &[0x30, 0x85, 1, 1, 1, 1, 1],
        &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
        &[0x30, 0x82, 0x00, 0x80],
        &[0x30, 0x01],
    ] {
        assert!(parse_spki(input).is_err(), "{input:?}");
    }
}
