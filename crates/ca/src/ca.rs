//! The CA itself: a self-signed root for one trust domain, and the leaves it
//! signs. All signing is rcgen's (on ring); this file only decides what goes
//! into each certificate.
//!
//! What a root looks like: ECDSA P-256, `CA:TRUE` with path length 0 (it
//! signs leaves only, never intermediates), key usage `keyCertSign` and
//! `cRLSign`, subject `O=meshgate, CN=meshgate CA <trust domain>`, and one
//! URI SAN `spiffe://<trust domain>` from which [`Ca::from_pem`] recovers the
//! trust domain. What a leaf looks like: a fresh ECDSA P-256 key, `CA:FALSE`,
//! key usage `digitalSignature` only (ECDHE key exchange signs; nothing is
//! encrypted to the key), the extended key usages asked for, the SANs asked
//! for, and an authority key identifier naming the root.
//!
//! Time is always passed in: [`Ca::issue_spiffe`] runs in item 4's rotation
//! loop, and its tests move the clock rather than wait for it.

use std::fmt;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData as _, SanType,
};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::names::{San, ServiceName, SpiffeId, TrustDomain};

mod dates;
pub(crate) use self::dates::from_unix;
use self::dates::to_datetime;

/// How far before `now` a new root's validity starts, so that peers whose
/// clocks run a little behind ours still accept it.
pub const CA_BACKDATE: Duration = Duration::from_secs(60 * 60);

/// How far before `now` a SPIFFE leaf's validity starts (see [`CA_BACKDATE`]);
/// the CLI backdates the leaves it issues by the same amount.
pub const LEAF_BACKDATE: Duration = Duration::from_secs(5 * 60);

/// Why a CA could not be created, loaded or used. None of these changes the
/// CA: a failed issue signs nothing.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The CA certificate file holds no readable PEM certificate.
    #[error("the CA certificate is not a PEM certificate: {0}")]
    CertPem(String),
    /// The CA certificate's DER could not be parsed.
    #[error("the CA certificate could not be parsed: {0}")]
    CertParse(String),
    /// The certificate does not say `CA:TRUE`.
    #[error("the CA certificate is not a CA certificate (no basic constraints CA:TRUE)")]
    NotCa,
    /// The root carries no `spiffe://<trust domain>` URI SAN.
    #[error(
        "the CA certificate names no trust domain (a URI SAN spiffe://TRUST-DOMAIN); was it made by `meshgate ca init`?"
    )]
    NoTrustDomain,
    /// The key file holds no PKCS#8 key rcgen can sign with.
    #[error("the CA key is not a PKCS#8 PEM private key (ECDSA P-256/P-384, Ed25519 or RSA): {0}")]
    Key(String),
    /// The key and the certificate do not belong together.
    #[error("the CA key does not belong to the CA certificate (their public keys differ)")]
    KeyMismatch,
    /// A validity period that X.509 cannot hold or that is empty.
    #[error("invalid validity: {0}")]
    Validity(&'static str),
    /// A leaf would stay valid after the root expires; peers would reject it then.
    #[error(
        "the certificate would outlive its CA: it would expire at unix time {leaf_not_after}, the CA at {ca_not_after}; issue it for less time or create a new CA"
    )]
    OutlivesCa {
        /// Leaf expiry, unix seconds.
        leaf_not_after: i64,
        /// Root expiry, unix seconds.
        ca_not_after: i64,
    },
    /// A leaf's common name that X.509 or a peer would refuse.
    #[error("invalid common name {given:?}: {why}")]
    CommonName {
        /// What was given.
        given: String,
        /// Which rule it broke.
        why: &'static str,
    },
    /// A leaf with no SAN: TLS clients match names against SANs only.
    #[error("a certificate needs at least one SAN (dns:, ip: or uri:)")]
    NoSans,
    /// rcgen refused to generate a key or sign (not expected for valid input).
    #[error("signing failed: {0}")]
    Sign(#[from] rcgen::Error),
}

/// What a leaf may be used for: its extended key usages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// `serverAuth`: presented by a TLS server.
    Server,
    /// `clientAuth`: presented by a TLS client (mTLS).
    Client,
    /// Both: a mesh identity, used for both ends of mTLS.
    Both,
}

/// What to issue. The CA checks it before signing; see [`Ca::issue`].
#[derive(Debug, Clone)]
pub struct LeafSpec {
    /// The subject's CN: 1 to 64 characters, no control characters. Peers
    /// match SANs, not this; it is for people reading the certificate.
    pub common_name: String,
    /// The names the leaf is valid for; at least one.
    pub sans: Vec<San>,
    /// Start of validity (second precision; sub-seconds are dropped).
    pub not_before: SystemTime,
    /// End of validity; after `not_before`, and not after the root's.
    pub not_after: SystemTime,
    /// Server, client, or both.
    pub usage: Usage,
}

/// A signed leaf and its new private key, both PEM.
#[derive(Clone)]
pub struct Issued {
    /// The leaf certificate (just the leaf: the root is the peer's trust anchor).
    pub cert_pem: String,
    /// The leaf's PKCS#8 private key. Secret: write it with mode 0600.
    pub key_pem: String,
    /// Start of validity, as written (whole seconds).
    pub not_before: SystemTime,
    /// End of validity, as written (whole seconds): when to have rotated.
    pub not_after: SystemTime,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"[secret]")
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish()
    }
}

/// A root CA for one trust domain, with its private key in memory.
///
/// `Send + Sync`; issuing takes `&self`, so one `Arc<Ca>` can serve a
/// rotation loop and the CLI alike.
pub struct Ca {
    trust_domain: TrustDomain,
    /// rcgen's signer: the root's subject, key identifier and key.
    issuer: Issuer<'static, KeyPair>,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
    /// The root's own validity, unix seconds; leaves must end by `not_after`.
    not_before: i64,
    not_after: i64,
}

// === impl Ca ===

impl Ca {
    /// Creates a new root for `trust_domain`, valid from `now - CA_BACKDATE`
    /// for `validity` after `now`, with a fresh key from the OS RNG (through
    /// ring; key material is never derived from an injectable RNG).
    pub fn generate(
        trust_domain: TrustDomain,
        validity: Duration,
        now: SystemTime,
    ) -> Result<Ca, CaError> {
        if validity.is_zero() {
            return Err(CaError::Validity(
                "a CA must be valid for more than 0 seconds",
            ));
        }
        let not_before = now
            .checked_sub(CA_BACKDATE)
            .ok_or(CaError::Validity("`now` is too early"))?;
        let not_after = now
            .checked_add(validity)
            .ok_or(CaError::Validity("the validity is too long"))?;
        let mut params = CertificateParams::default();
        params.not_before = to_datetime(not_before)?;
        params.not_after = to_datetime(not_after)?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "meshgate");
        params
            .distinguished_name
            .push(DnType::CommonName, ca_common_name(&trust_domain));
        // Path length 0: this root signs leaves only. An intermediate it
        // signed by mistake would be refused by every verifier.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.subject_alt_names = vec![SanType::URI(trust_domain.id_uri().try_into()?)];
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = params.self_signed(&key)?;
        Ok(Ca {
            trust_domain,
            not_before: params.not_before.unix_timestamp(),
            not_after: params.not_after.unix_timestamp(),
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a root from its certificate and PKCS#8 key (PEM), as written by
    /// [`Ca::generate`] and [`crate::store`]. Checks that the certificate is
    /// a CA, that the key is its key, and reads the trust domain back from
    /// the `spiffe://` URI SAN.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Ca, CaError> {
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| CaError::CertPem(e.to_string()))?;
        let key_der = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| CaError::Key(e.to_string()))?;
        let key = KeyPair::try_from(&key_der).map_err(|e| CaError::Key(e.to_string()))?;
        let (_, x509) = x509_parser::parse_x509_certificate(&cert_der)
            .map_err(|e| CaError::CertParse(e.to_string()))?;
        if !x509.is_ca() {
            return Err(CaError::NotCa);
        }
        if x509.public_key().raw != key.subject_public_key_info().as_slice() {
            return Err(CaError::KeyMismatch);
        }
        let trust_domain = crate::inspect::uri_sans(&x509)
            .filter_map(|uri| SpiffeId::parse(uri).ok())
            .find(|id| id.path().is_empty())
            .map(|id| id.trust_domain().clone())
            .ok_or(CaError::NoTrustDomain)?;
        let not_before = x509.validity().not_before.timestamp();
        let not_after = x509.validity().not_after.timestamp();
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)
            .map_err(|e| CaError::CertParse(e.to_string()))?;
        Ok(Ca {
            trust_domain,
            issuer,
            // Re-encoded from the DER so the stored PEM is canonical even if
            // the file had comments or other sections around the certificate.
            cert_pem: pem_certificate(&cert_der),
            cert_der,
            not_before,
            not_after,
        })
    }

    /// Signs a leaf for `spec` with a fresh ECDSA P-256 key.
    ///
    /// Refused (nothing signed): an empty or over-long common name, no SANs,
    /// `not_after` not after `not_before`, or `not_after` past the root's.
    pub fn issue(&self, spec: &LeafSpec) -> Result<Issued, CaError> {
        check_common_name(&spec.common_name)?;
        if spec.sans.is_empty() {
            return Err(CaError::NoSans);
        }
        let not_before = to_datetime(spec.not_before)?;
        let not_after = to_datetime(spec.not_after)?;
        if not_after <= not_before {
            return Err(CaError::Validity("not_after must be after not_before"));
        }
        if not_after.unix_timestamp() > self.not_after {
            return Err(CaError::OutlivesCa {
                leaf_not_after: not_after.unix_timestamp(),
                ca_not_after: self.not_after,
            });
        }
        let mut params = CertificateParams::default();
        params.not_before = not_before;
        params.not_after = not_after;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, spec.common_name.as_str());
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = match spec.usage {
            Usage::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Usage::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Usage::Both => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        };
        params.use_authority_key_identifier_extension = true;
        params.subject_alt_names = spec
            .sans
            .iter()
            .map(|san| {
                Ok(match san {
                    San::Dns(name) => SanType::DnsName(name.as_str().try_into()?),
                    San::Ip(ip) => SanType::IpAddress(*ip),
                    San::Uri(uri) => SanType::URI(uri.as_str().try_into()?),
                })
            })
            .collect::<Result<_, rcgen::Error>>()?;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            not_before: from_unix(not_before.unix_timestamp()),
            not_after: from_unix(not_after.unix_timestamp()),
        })
    }

    /// Signs a mesh identity for `service`: one URI SAN
    /// `spiffe://<trust domain>/svc/<service>` (an X509-SVID), CN = the
    /// service name, usable as TLS server and client, valid from
    /// `now - LEAF_BACKDATE` until `now + ttl` or the root's expiry,
    /// whichever is first (a rotation loop keeps working, with ever shorter
    /// leaves, until the root is replaced).
    ///
    /// Never reads the clock: item 4's rotation loop passes `now`.
    pub fn issue_spiffe(
        &self,
        service: &ServiceName,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Issued, CaError> {
        let not_after = now
            .checked_add(ttl)
            .ok_or(CaError::Validity("the ttl is too long"))?
            .min(from_unix(self.not_after));
        let not_before = now
            .checked_sub(LEAF_BACKDATE)
            .ok_or(CaError::Validity("`now` is too early"))?;
        let id = SpiffeId::for_service(&self.trust_domain, service);
        self.issue(&LeafSpec {
            common_name: service.as_str().to_owned(),
            sans: vec![San::Uri(id.to_string())],
            not_before,
            not_after,
            usage: Usage::Both,
        })
    }

    /// The trust domain this root speaks for.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The root certificate, PEM: what peers put in their trust store
    /// (`openssl verify -CAfile`, `curl --cacert`).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The root certificate, DER: a rustls `RootCertStore` entry.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// When the root starts being valid.
    pub fn not_before(&self) -> SystemTime {
        from_unix(self.not_before)
    }

    /// When the root expires; no leaf it signs outlives this.
    pub fn not_after(&self) -> SystemTime {
        from_unix(self.not_after)
    }

    /// The root's PKCS#8 private key, PEM. Only the store writes it out.
    pub(crate) fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("trust_domain", &self.trust_domain)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("key", &"[secret]")
            .finish_non_exhaustive()
    }
}

/// `meshgate CA <trust domain>`, or `meshgate CA` when that would pass the
/// 64-character bound on a CN (the trust domain is in the SAN regardless).
fn ca_common_name(trust_domain: &TrustDomain) -> String {
    let name = format!("meshgate CA {trust_domain}");
    if name.len() <= 64 {
        name
    } else {
        "meshgate CA".to_owned()
    }
}

fn check_common_name(cn: &str) -> Result<(), CaError> {
    let err = |why| CaError::CommonName {
        given: cn.to_owned(),
        why,
    };
    if cn.is_empty() {
        return Err(err("empty"));
    }
    if cn.chars().count() > 64 {
        return Err(err("longer than 64 characters (RFC 5280's bound)"));
    }
    if cn.chars().any(char::is_control) {
        return Err(err("contains a control character"));
    }
    Ok(())
}

/// The PEM encoder rcgen itself uses (LF line endings), so a loaded root
/// prints exactly as a generated one.
fn pem_certificate(der: &CertificateDer<'_>) -> String {
    let block = pem::Pem::new("CERTIFICATE", der.to_vec());
    pem::encode_config(
        &block,
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

#[cfg(test)]
mod tests;
