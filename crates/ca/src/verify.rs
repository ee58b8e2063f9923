//! Would a TLS peer accept this certificate? Answered by rustls-webpki, the
//! verifier rustls itself runs, with the same inputs rustls gives it: the
//! leaf as an `EndEntityCert`, the other certificates the peer sent as
//! intermediates, the CA as trust anchor, the signature algorithms of
//! rustls's ring provider, and the server-auth or client-auth usage.
//!
//! Unlike a TLS handshake, no name is checked (inspect has no name to
//! connect to) and no revocation list is consulted (the built-in CA
//! publishes none).

use std::time::{SystemTime, UNIX_EPOCH};

use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, UnixTime};
use serde::Serialize;
use webpki::{EndEntityCert, KeyUsage, anchor_from_trusted_cert};

use crate::inspect::ReadError;

/// The outcome of verifying a certificate's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Chain {
    /// A TLS peer trusting the CA accepts the certificate now, for these
    /// usages (`server_auth`, `client_auth`; at least one).
    Verified {
        /// The usages it verified for.
        usages: Vec<&'static str>,
    },
    /// A TLS peer trusting the CA refuses it, for this reason.
    Failed {
        /// Why, in words, with webpki's error name.
        reason: String,
    },
    /// No CA was given.
    NotChecked,
}

/// Exactly the algorithms rustls's ring provider verifies with
/// (`rustls::crypto::ring`'s `SUPPORTED_SIG_ALGS`), so "verified" here means
/// what it means to a rustls peer.
static RUSTLS_RING_ALGS: &[&dyn SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::ED25519,
    webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
];

/// Verifies `leaf` (with `intermediates`) against `roots` at `now`, for
/// server auth and for client auth. An unusable root is an error (the CA
/// input is wrong); a chain that does not verify is a [`Chain::Failed`].
pub(crate) fn chain(
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    roots: &[CertificateDer<'_>],
    now: SystemTime,
) -> Result<Chain, ReadError> {
    let anchors = roots
        .iter()
        .map(|root| anchor_from_trusted_cert(root).map_err(|e| ReadError::Anchor(describe(&e))))
        .collect::<Result<Vec<_>, _>>()?;
    let ee = match EndEntityCert::try_from(leaf) {
        Ok(ee) => ee,
        Err(e) => {
            return Ok(Chain::Failed {
                reason: describe(&e),
            });
        }
    };
    // Before the epoch nothing is valid; webpki cannot express it, and 0
    // (1970) rejects every certificate meshgate issues just the same.
    let now = UnixTime::since_unix_epoch(now.duration_since(UNIX_EPOCH).unwrap_or_default());
    let check = |usage: KeyUsage| {
        ee.verify_for_usage(
            RUSTLS_RING_ALGS,
            &anchors,
            intermediates,
            now,
            usage,
            None,
            None,
        )
        .map(|_path| ())
    };
    let server = check(KeyUsage::server_auth());
    let client = check(KeyUsage::client_auth());
    let mut usages = Vec::new();
    if server.is_ok() {
        usages.push("server_auth");
    }
    if client.is_ok() {
        usages.push("client_auth");
    }
    Ok(match (server, client) {
        (Err(server), Err(client)) => {
            // Both failed: a usage mismatch on one side hides the real
            // problem on the other only if the other is not one too.
            let reason = if is_usage_error(&server) {
                client
            } else {
                server
            };
            Chain::Failed {
                reason: describe(&reason),
            }
        }
        _ => Chain::Verified { usages },
    })
}

fn is_usage_error(e: &webpki::Error) -> bool {
    // (webpki reports the context variants; the plain ones are deprecated.)
    matches!(e, webpki::Error::RequiredEkuNotFoundContext(_))
}

/// webpki's error in words, followed by its name (its `Display` is its
/// `Debug`, which is precise but not a sentence).
fn describe(e: &webpki::Error) -> String {
    use webpki::Error as E;
    let words = match e {
        E::UnknownIssuer => "not issued by the given CA",
        E::CertExpired { .. } => "the certificate has expired",
        E::CertNotValidYet { .. } => "the certificate is not valid yet",
        E::InvalidSignatureForPublicKey => "the signature does not match the issuer's key",
        E::CaUsedAsEndEntity => {
            "a CA certificate, which a TLS peer does not accept as its end-entity certificate"
        }
        E::EndEntityUsedAsCa => "a leaf certificate used as an issuer",
        E::RequiredEkuNotFoundContext(_) => {
            "its extended key usage allows neither TLS server nor TLS client authentication"
        }
        E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            "signed with an algorithm rustls does not accept"
        }
        E::PathLenConstraintViolated => "the chain is longer than the CA allows",
        E::NameConstraintViolation => "a name is outside the CA's name constraints",
        E::BadDer | E::BadDerTime | E::TrailingData(_) => "malformed DER",
        E::UnsupportedCertVersion => "not an X.509 v3 certificate",
        E::InvalidCertValidity => "its validity period ends before it starts",
        _ => "rejected",
    };
    let name = format!("{e:?}");
    // Context variants carry long debug payloads; the variant name is enough.
    let name = name.split([' ', '(', '{']).next().unwrap_or_default();
    format!("{words} ({name})")
}
