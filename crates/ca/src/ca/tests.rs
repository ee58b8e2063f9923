//! Issue, then read back what was issued: the inspection (x509-parser for
//! the fields, webpki for the chain) is the oracle for what `issue` wrote.
//! The e2e tests hold the same certificates to OpenSSL and curl.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::inspect::{Validity, inspect};
use crate::verify::Chain;

const DAY: Duration = Duration::from_secs(86_400);

/// 2026-01-01T00:00:00Z: tests never read the clock.
fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

fn td(s: &str) -> TrustDomain {
    TrustDomain::try_new(s).unwrap()
}

fn ca_at(now: SystemTime) -> Ca {
    Ca::generate(td("example.org"), 3650 * DAY, now).unwrap()
}

fn server_spec(now: SystemTime, days: u32) -> LeafSpec {
    LeafSpec {
        common_name: "api".into(),
        sans: vec![
            San::parse("dns:api.local").unwrap(),
            San::parse("ip:127.0.0.1").unwrap(),
        ],
        not_before: now - LEAF_BACKDATE,
        not_after: now + days * DAY,
        usage: Usage::Server,
    }
}

fn chain_of(issued: &Issued, ca: &Ca, now: SystemTime) -> Chain {
    inspect(
        issued.cert_pem.as_bytes(),
        Some(ca.cert_pem().as_bytes()),
        now,
    )
    .unwrap()
    .chain
}

#[test]
fn an_issued_server_leaf_reads_back_as_asked_and_verifies_against_its_ca() {
    let ca = ca_at(t0());
    let leaf = ca.issue(&server_spec(t0(), 30)).unwrap();
    let seen = inspect(
        leaf.cert_pem.as_bytes(),
        Some(ca.cert_pem().as_bytes()),
        t0(),
    )
    .unwrap();
    assert_eq!(seen.subject, "CN=api");
    assert_eq!(seen.issuer, "O=meshgate, CN=meshgate CA example.org");
    assert_eq!(seen.sans, ["dns:api.local", "ip:127.0.0.1"]);
    assert_eq!(seen.spiffe_id, None);
    assert!(!seen.is_ca);
    assert_eq!(seen.extended_key_usages, ["server_auth"]);
    assert_eq!(seen.validity, Validity::Valid);
    assert_eq!(seen.not_before.to_system_time(), t0() - LEAF_BACKDATE);
    assert_eq!(seen.not_after.to_system_time(), t0() + 30 * DAY);
    assert_eq!(
        (leaf.not_before, leaf.not_after),
        (t0() - LEAF_BACKDATE, t0() + 30 * DAY)
    );
    assert_eq!(
        seen.chain,
        Chain::Verified {
            usages: vec!["server_auth"]
        }
    );
    assert_eq!(seen.sha256_fingerprint.len(), 32 * 3 - 1);
    assert!(leaf.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    // A second leaf has its own key, serial and fingerprint.
    let again = ca.issue(&server_spec(t0(), 30)).unwrap();
    let seen2 = inspect(again.cert_pem.as_bytes(), None, t0()).unwrap();
    assert_ne!(seen2.serial, seen.serial);
    assert_ne!(seen2.sha256_fingerprint, seen.sha256_fingerprint);
    assert_ne!(again.key_pem, leaf.key_pem);
    assert_eq!(seen2.chain, Chain::NotChecked);
}

#[test]
fn the_root_carries_its_trust_domain_and_is_a_ca() {
    let ca = ca_at(t0());
    let seen = inspect(ca.cert_pem().as_bytes(), None, t0()).unwrap();
    assert!(seen.is_ca);
    assert_eq!(seen.subject, seen.issuer);
    assert_eq!(seen.sans, ["uri:spiffe://example.org"]);
    assert_eq!(seen.not_before.to_system_time(), t0() - CA_BACKDATE);
    assert_eq!(seen.not_after.to_system_time(), t0() + 3650 * DAY);
    assert_eq!(ca.not_after(), t0() + 3650 * DAY);
    // A TLS peer never takes a CA as the certificate it is shown.
    let chain = inspect(
        ca.cert_pem().as_bytes(),
        Some(ca.cert_pem().as_bytes()),
        t0(),
    )
    .unwrap()
    .chain;
    assert!(
        matches!(&chain, Chain::Failed { reason } if reason.contains("CaUsedAsEndEntity")),
        "{chain:?}"
    );
}

#[test]
fn a_leaf_does_not_verify_against_a_foreign_ca() {
    let ours = ca_at(t0());
    let leaf = ours.issue(&server_spec(t0(), 30)).unwrap();
    let elsewhere = Ca::generate(td("other.org"), 3650 * DAY, t0()).unwrap();
    let chain = chain_of(&leaf, &elsewhere, t0());
    assert!(
        matches!(&chain, Chain::Failed { reason } if reason.contains("UnknownIssuer")),
        "{chain:?}"
    );
    // A foreign CA with our very subject name is found as the issuer by
    // name, and then refused by signature: names are not keys.
    let lookalike = ca_at(t0());
    let chain = chain_of(&leaf, &lookalike, t0());
    assert!(
        matches!(&chain, Chain::Failed { reason } if reason.contains("InvalidSignatureForPublicKey")),
        "{chain:?}"
    );
}

#[test]
fn expiry_and_not_yet_valid_follow_the_injected_now() {
    let ca = ca_at(t0());
    let leaf = ca.issue(&server_spec(t0(), 30)).unwrap();
    let last_second = t0() + 30 * DAY;
    assert_eq!(
        chain_of(&leaf, &ca, last_second),
        Chain::Verified {
            usages: vec!["server_auth"]
        }
    );

    let later = last_second + Duration::from_secs(1);
    let seen = inspect(
        leaf.cert_pem.as_bytes(),
        Some(ca.cert_pem().as_bytes()),
        later,
    )
    .unwrap();
    assert_eq!(seen.validity, Validity::Expired);
    assert!(
        matches!(&seen.chain, Chain::Failed { reason } if reason.contains("CertExpired")),
        "{:?}",
        seen.chain
    );

    let early = t0() - LEAF_BACKDATE - Duration::from_secs(1);
    let seen = inspect(
        leaf.cert_pem.as_bytes(),
        Some(ca.cert_pem().as_bytes()),
        early,
    )
    .unwrap();
    assert_eq!(seen.validity, Validity::NotYetValid);
    assert!(
        matches!(&seen.chain, Chain::Failed { reason } if reason.contains("CertNotValidYet")),
        "{:?}",
        seen.chain
    );
}

#[test]
fn usage_decides_which_tls_side_accepts_the_leaf() {
    let ca = ca_at(t0());
    for (usage, want, ekus) in [
        (Usage::Server, vec!["server_auth"], vec!["server_auth"]),
        (Usage::Client, vec!["client_auth"], vec!["client_auth"]),
        (
            Usage::Both,
            vec!["server_auth", "client_auth"],
            vec!["server_auth", "client_auth"],
        ),
    ] {
        let leaf = ca
            .issue(&LeafSpec {
                usage,
                ..server_spec(t0(), 1)
            })
            .unwrap();
        let seen = inspect(
            leaf.cert_pem.as_bytes(),
            Some(ca.cert_pem().as_bytes()),
            t0(),
        )
        .unwrap();
        assert_eq!(seen.chain, Chain::Verified { usages: want }, "{usage:?}");
        assert_eq!(seen.extended_key_usages, ekus);
    }
}

#[test]
fn a_spiffe_leaf_names_its_service_and_serves_both_tls_sides() {
    let ca = ca_at(t0());
    let svc = ServiceName::try_new("api").unwrap();
    let leaf = ca
        .issue_spiffe(&svc, Duration::from_secs(3600), t0())
        .unwrap();
    let seen = inspect(
        leaf.cert_pem.as_bytes(),
        Some(ca.cert_pem().as_bytes()),
        t0(),
    )
    .unwrap();
    assert_eq!(seen.sans, ["uri:spiffe://example.org/svc/api"]);
    assert_eq!(
        seen.spiffe_id.as_ref().map(ToString::to_string).as_deref(),
        Some("spiffe://example.org/svc/api")
    );
    assert_eq!(seen.subject, "CN=api");
    assert_eq!(
        seen.chain,
        Chain::Verified {
            usages: vec!["server_auth", "client_auth"]
        }
    );
    assert_eq!(leaf.not_before, t0() - LEAF_BACKDATE);
    assert_eq!(leaf.not_after, t0() + Duration::from_secs(3600));
    // Past its TTL a peer refuses it: the rotation loop must renew before.
    let after = t0() + Duration::from_secs(3601);
    assert!(matches!(chain_of(&leaf, &ca, after), Chain::Failed { .. }));
}

#[test]
fn a_spiffe_leaf_never_outlives_its_root() {
    let ca = Ca::generate(td("example.org"), 2 * DAY, t0()).unwrap();
    let svc = ServiceName::try_new("api").unwrap();
    let now = t0() + DAY + Duration::from_secs(12 * 3600);
    let leaf = ca.issue_spiffe(&svc, DAY, now).unwrap();
    assert_eq!(leaf.not_after, ca.not_after());
}

#[test]
fn issue_refuses_what_no_peer_should_see() {
    let ca = Ca::generate(td("example.org"), 10 * DAY, t0()).unwrap();
    let err = ca.issue(&server_spec(t0(), 11)).unwrap_err();
    assert!(matches!(err, CaError::OutlivesCa { .. }), "{err}");
    assert!(err.to_string().contains("outlive"), "{err}");

    let err = ca
        .issue(&LeafSpec {
            sans: vec![],
            ..server_spec(t0(), 1)
        })
        .unwrap_err();
    assert!(matches!(err, CaError::NoSans), "{err}");

    for cn in ["", &"x".repeat(65), "a\nb"] {
        let err = ca
            .issue(&LeafSpec {
                common_name: cn.into(),
                ..server_spec(t0(), 1)
            })
            .unwrap_err();
        assert!(matches!(err, CaError::CommonName { .. }), "{cn:?}: {err}");
    }

    let spec = LeafSpec {
        not_after: t0() - LEAF_BACKDATE,
        ..server_spec(t0(), 1)
    };
    assert!(matches!(ca.issue(&spec).unwrap_err(), CaError::Validity(_)));

    assert!(matches!(
        Ca::generate(td("example.org"), Duration::ZERO, t0()).unwrap_err(),
        CaError::Validity(_)
    ));
    // Past year 9999 X.509 has no way to write the date.
    assert!(matches!(
        Ca::generate(td("example.org"), 9000 * 365 * DAY, t0()).unwrap_err(),
        CaError::Validity(_)
    ));
}

#[test]
fn a_ca_loaded_from_its_pem_is_the_same_ca() {
    let ca = ca_at(t0());
    let loaded = Ca::from_pem(ca.cert_pem(), &ca.key_pem()).unwrap();
    assert_eq!(loaded.trust_domain(), &td("example.org"));
    assert_eq!(loaded.cert_der(), ca.cert_der());
    assert_eq!(loaded.cert_pem(), ca.cert_pem());
    assert_eq!(
        (loaded.not_before(), loaded.not_after()),
        (ca.not_before(), ca.not_after())
    );
    // What the loaded CA signs verifies against the original root, and
    // names it as issuer exactly as the original would.
    let leaf = loaded.issue(&server_spec(t0(), 30)).unwrap();
    let seen = inspect(
        leaf.cert_pem.as_bytes(),
        Some(ca.cert_pem().as_bytes()),
        t0(),
    )
    .unwrap();
    assert_eq!(
        seen.chain,
        Chain::Verified {
            usages: vec!["server_auth"]
        }
    );
    assert_eq!(seen.issuer, "O=meshgate, CN=meshgate CA example.org");
}

#[test]
fn loading_refuses_a_wrong_key_a_leaf_or_garbage() {
    let ca = ca_at(t0());
    let other = ca_at(t0());
    let err = Ca::from_pem(ca.cert_pem(), &other.key_pem()).unwrap_err();
    assert!(matches!(err, CaError::KeyMismatch), "{err}");

    let leaf = ca.issue(&server_spec(t0(), 1)).unwrap();
    let err = Ca::from_pem(&leaf.cert_pem, &leaf.key_pem).unwrap_err();
    assert!(matches!(err, CaError::NotCa), "{err}");

    let err = Ca::from_pem("not pem", &ca.key_pem()).unwrap_err();
    assert!(matches!(err, CaError::CertPem(_)), "{err}");
    let err = Ca::from_pem(ca.cert_pem(), "not pem").unwrap_err();
    assert!(matches!(err, CaError::Key(_)), "{err}");
}

#[test]
fn loading_a_ca_that_names_no_trust_domain_says_so() {
    let mut params = rcgen::CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let err = Ca::from_pem(&cert.pem(), &key.serialize_pem()).unwrap_err();
    assert!(matches!(err, CaError::NoTrustDomain), "{err}");
    assert!(err.to_string().contains("meshgate ca init"), "{err}");
}
