//! Inspection of untrusted bytes: every malformed input is a typed error,
//! PEM and DER read the same, and the JSON shape the CLI prints.

use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::ca::{Ca, LEAF_BACKDATE, LeafSpec, Usage};
use crate::names::{San, TrustDomain};

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

fn ca_and_leaf() -> (Ca, String) {
    let td = TrustDomain::try_new("example.org").unwrap();
    let ca = Ca::generate(td, Duration::from_secs(365 * 86_400), t0()).unwrap();
    let leaf = ca
        .issue(&LeafSpec {
            common_name: "api".into(),
            sans: vec![
                San::parse("dns:api.local").unwrap(),
                San::parse("ip:::1").unwrap(),
            ],
            not_before: t0() - LEAF_BACKDATE,
            not_after: t0() + Duration::from_secs(86_400),
            usage: Usage::Server,
        })
        .unwrap();
    (ca, leaf.cert_pem)
}

fn der_of(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

#[test]
fn malformed_inputs_are_typed_errors() {
    let (ca, leaf) = ca_and_leaf();
    let der = der_of(&leaf);
    let mut trailing = der.clone();
    trailing.extend_from_slice(b"xx");
    let cases: Vec<(Vec<u8>, ReadError)> = vec![
        (b"".to_vec(), ReadError::NoCertificate),
        (b"hello".to_vec(), ReadError::NoCertificate),
        (
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_vec(),
            ReadError::NoCertificate,
        ),
        (
            der[..der.len() / 2].to_vec(),
            ReadError::X509(String::new()),
        ),
        (trailing, ReadError::TrailingData(2)),
        (vec![0x30, 0x00], ReadError::X509(String::new())),
    ];
    for (input, want) in cases {
        let err = inspect(&input, None, t0()).unwrap_err();
        let InspectError::Cert(got) = &err else {
            panic!("{err}")
        };
        assert_eq!(
            std::mem::discriminant(got),
            std::mem::discriminant(&want),
            "{err}"
        );
        if let ReadError::TrailingData(n) = want {
            assert_eq!(got, &ReadError::TrailingData(n));
        }
    }
    let bad_pem = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    assert!(matches!(
        inspect(bad_pem.as_bytes(), None, t0()),
        Err(InspectError::Cert(ReadError::Pem(_)))
    ));
    let unterminated = "-----BEGIN CERTIFICATE-----\nAAAA\n";
    assert!(matches!(
        inspect(unterminated.as_bytes(), None, t0()),
        Err(InspectError::Cert(ReadError::Pem(_)))
    ));

    // The same faults in the CA input are reported as the CA's.
    let err = inspect(leaf.as_bytes(), Some(b"nope"), t0()).unwrap_err();
    assert_eq!(err, InspectError::Ca(ReadError::NoCertificate));
    assert!(
        err.to_string()
            .starts_with("the CA certificate: no certificate found"),
        "{err}"
    );
    assert!(inspect(leaf.as_bytes(), Some(&der[..10]), t0()).is_err());
    assert!(inspect(leaf.as_bytes(), Some(ca.cert_pem().as_bytes()), t0()).is_ok());
}

#[test]
fn der_pem_and_pem_with_other_blocks_read_the_same() {
    let (ca, leaf) = ca_and_leaf();
    let from_pem = inspect(leaf.as_bytes(), Some(ca.cert_pem().as_bytes()), t0()).unwrap();
    let from_der = inspect(&der_of(&leaf), Some(&der_of(ca.cert_pem())), t0()).unwrap();
    assert_eq!(from_pem, from_der);
    let with_key = format!(
        "# a comment\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n{leaf}"
    );
    assert_eq!(
        inspect(with_key.as_bytes(), Some(ca.cert_pem().as_bytes()), t0()).unwrap(),
        from_pem
    );
    assert_eq!(from_pem.sans, ["dns:api.local", "ip:::1"]);
}

#[test]
fn several_roots_in_the_ca_file_are_all_trusted() {
    let (ca, leaf) = ca_and_leaf();
    let (other, _) = ca_and_leaf();
    let bundle = format!("{}{}", other.cert_pem(), ca.cert_pem());
    let seen = inspect(leaf.as_bytes(), Some(bundle.as_bytes()), t0()).unwrap();
    assert_eq!(
        seen.chain,
        Chain::Verified {
            usages: vec!["server_auth"]
        }
    );
}

#[test]
fn the_json_shape_is_stable() {
    let (ca, leaf) = ca_and_leaf();
    let seen = inspect(leaf.as_bytes(), Some(ca.cert_pem().as_bytes()), t0()).unwrap();
    let json = serde_json::to_value(&seen).unwrap();
    assert_eq!(json["subject"], "CN=api");
    assert_eq!(json["sans"], serde_json::json!(["dns:api.local", "ip:::1"]));
    assert_eq!(json["not_before"], "2025-12-31T23:55:00Z");
    assert_eq!(json["not_after"], "2026-01-02T00:00:00Z");
    assert_eq!(json["validity"], "valid");
    assert_eq!(json["spiffe_id"], serde_json::Value::Null);
    assert_eq!(json["is_ca"], false);
    assert_eq!(
        json["chain"],
        serde_json::json!({"status": "verified", "usages": ["server_auth"]})
    );
    let failed = serde_json::to_value(Chain::Failed { reason: "r".into() }).unwrap();
    assert_eq!(
        failed,
        serde_json::json!({"status": "failed", "reason": "r"})
    );
    let unchecked = serde_json::to_value(Chain::NotChecked).unwrap();
    assert_eq!(unchecked, serde_json::json!({"status": "not_checked"}));
}

#[test]
fn control_characters_from_a_certificate_are_escaped() {
    assert_eq!(printable("CN=ok"), "CN=ok");
    assert_eq!(printable("CN=\u{1b}[31mred"), "CN=\\u{1b}[31mred");
    assert_eq!(printable("a\nb"), "a\\u{a}b");
}

#[test]
fn timestamps_print_as_rfc3339_or_raw_seconds() {
    assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00Z");
    assert_eq!(Timestamp(1_767_225_600).to_string(), "2026-01-01T00:00:00Z");
    assert_eq!(Timestamp(i64::MAX).to_string(), format!("@{}", i64::MAX));
    assert_eq!(
        Timestamp(-1).to_system_time(),
        UNIX_EPOCH - Duration::from_secs(1)
    );
}
