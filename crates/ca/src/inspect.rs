//! Reading a certificate someone handed us: what it says (subject, SANs,
//! validity, fingerprint, SPIFFE ID) and, given a CA, whether a TLS peer
//! would accept it ([`crate::verify`]).
//!
//! The input is untrusted bytes, PEM or DER. Nothing here panics on any
//! input (the `cert_inspect` fuzz target holds it to that); every refusal
//! is an [`InspectError`] that says which input was wrong and how. Text
//! taken from the certificate has its control characters escaped, so
//! printing an [`Inspection`] cannot drive the reader's terminal.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{SystemTime, UNIX_EPOCH};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use serde::Serialize;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use crate::ca::from_unix;
use crate::names::SpiffeId;
use crate::verify::{self, Chain};

/// Why the bytes could not be inspected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    /// The certificate to inspect.
    #[error("the certificate: {0}")]
    Cert(ReadError),
    /// The CA given to verify it against.
    #[error("the CA certificate: {0}")]
    Ca(ReadError),
}

/// What is wrong with one input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// Neither a PEM `CERTIFICATE` block nor DER.
    #[error("no certificate found (expected PEM with a -----BEGIN CERTIFICATE----- block, or DER)")]
    NoCertificate,
    /// PEM that pki-types could not decode.
    #[error("malformed PEM: {0}")]
    Pem(String),
    /// DER that is not an X.509 certificate.
    #[error("not an X.509 certificate: {0}")]
    X509(String),
    /// Bytes after the certificate inside its DER.
    #[error("{0} unexpected bytes after the certificate")]
    TrailingData(usize),
    /// A CA certificate that webpki cannot use as a trust anchor.
    #[error("not usable as a trust anchor: {0}")]
    Anchor(String),
}

/// Everything `meshgate cert inspect` reports about a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inspection {
    /// Subject DN, e.g. `CN=api`.
    pub subject: String,
    /// Issuer DN, e.g. `O=meshgate, CN=meshgate CA example.org`.
    pub issuer: String,
    /// Serial number, lowercase colon hex (as `openssl x509 -text` prints it).
    pub serial: String,
    /// SANs as `kind:value`: `dns:`, `ip:`, `uri:` (what `--san` takes),
    /// and `email:`, `dirname:`, `rid:`, `othername:`, `x400:`, `edi:`,
    /// `invalid:` for kinds this CA does not issue.
    pub sans: Vec<String>,
    /// The SPIFFE ID, when the certificate has exactly one URI SAN and it
    /// is a valid `spiffe://` ID (the X509-SVID rule).
    pub spiffe_id: Option<SpiffeId>,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity.
    pub not_after: Timestamp,
    /// Where `now` falls in the validity period.
    pub validity: Validity,
    /// SHA-256 of the DER, uppercase colon hex (as
    /// `openssl x509 -noout -fingerprint -sha256` prints it).
    pub sha256_fingerprint: String,
    /// Basic constraints say `CA:TRUE`.
    pub is_ca: bool,
    /// Extended key usages: `server_auth`, `client_auth`, `any`, ... or an
    /// OID; empty when the extension is absent (any use is allowed).
    pub extended_key_usages: Vec<String>,
    /// Whether the chain verifies against the CA given.
    pub chain: Chain,
}

/// Where a moment falls relative to a certificate's validity period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Validity {
    /// `not_before <= now <= not_after`.
    Valid,
    /// `now < not_before`.
    NotYetValid,
    /// `now > not_after`.
    Expired,
}

/// A certificate time: unix seconds. Prints and serializes as RFC 3339
/// (`2026-05-01T12:00:00Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(i64);

// === impl Timestamp ===

impl Timestamp {
    /// Seconds since the Unix epoch (negative before it).
    pub fn unix_seconds(self) -> i64 {
        self.0
    }

    /// As a `SystemTime`.
    pub fn to_system_time(self) -> SystemTime {
        from_unix(self.0)
    }
}

impl From<SystemTime> for Timestamp {
    /// Whole seconds, rounded down; saturating far outside X.509's range.
    fn from(t: SystemTime) -> Timestamp {
        Timestamp(unix_seconds(t))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rfc3339 = time::OffsetDateTime::from_unix_timestamp(self.0)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            });
        match rfc3339 {
            Some(text) => f.write_str(&text),
            // Years RFC 3339 cannot write (outside 0000-9999).
            None => write!(f, "@{}", self.0),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Inspects the first certificate in `cert` (PEM or DER; any further PEM
/// certificates are intermediates for the chain) at time `now`, and with
/// `ca` (PEM or DER, one or more roots) also verifies its chain the way
/// rustls would ([`Chain`]).
pub fn inspect(
    cert: &[u8],
    ca: Option<&[u8]>,
    now: SystemTime,
) -> Result<Inspection, InspectError> {
    let certs = read_certs(cert).map_err(InspectError::Cert)?;
    let (leaf_der, intermediates) = certs
        .split_first()
        .ok_or(InspectError::Cert(ReadError::NoCertificate))?;
    let leaf = parse(leaf_der).map_err(InspectError::Cert)?;
    let now_secs = unix_seconds(now);
    let not_before = leaf.validity().not_before.timestamp();
    let not_after = leaf.validity().not_after.timestamp();
    let validity = if now_secs < not_before {
        Validity::NotYetValid
    } else if now_secs > not_after {
        Validity::Expired
    } else {
        Validity::Valid
    };
    let chain = match ca {
        None => Chain::NotChecked,
        Some(ca) => {
            let roots = read_certs(ca).map_err(InspectError::Ca)?;
            for root in &roots {
                parse(root).map_err(InspectError::Ca)?;
            }
            verify::chain(leaf_der, intermediates, &roots, now).map_err(InspectError::Ca)?
        }
    };
    let uris: Vec<&str> = uri_sans(&leaf).collect();
    let spiffe_id = match uris.as_slice() {
        [one] => SpiffeId::parse(one).ok(),
        _ => None,
    };
    Ok(Inspection {
        subject: printable(&leaf.subject().to_string()),
        issuer: printable(&leaf.issuer().to_string()),
        serial: leaf.raw_serial_as_string(),
        sans: general_names(&leaf).iter().map(san_text).collect(),
        spiffe_id,
        not_before: Timestamp(not_before),
        not_after: Timestamp(not_after),
        validity,
        sha256_fingerprint: fingerprint(leaf_der),
        is_ca: leaf.is_ca(),
        extended_key_usages: extended_key_usages(&leaf),
        chain,
    })
}

/// Seconds since the epoch, saturating; before it, rounded down.
fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(before) => {
            let d = before.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            // -0.5 s is in second -1, as for any floor.
            secs.saturating_neg() - i64::from(d.subsec_nanos() > 0)
        }
    }
}

/// Every certificate in `bytes`: the PEM `CERTIFICATE` blocks (other blocks,
/// like a key kept in the same file, are skipped), or one DER certificate.
fn read_certs(bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, ReadError> {
    let looks_like_pem = bytes.windows(11).any(|w| w == b"-----BEGIN ");
    let certs = if looks_like_pem {
        CertificateDer::pem_slice_iter(bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ReadError::Pem(printable(&e.to_string())))?
    } else if bytes.first() == Some(&0x30) {
        // A DER SEQUENCE; whether it is a certificate is parse()'s call.
        vec![CertificateDer::from(bytes.to_vec())]
    } else {
        Vec::new()
    };
    if certs.is_empty() {
        return Err(ReadError::NoCertificate);
    }
    Ok(certs)
}

/// Parses one certificate's DER, refusing trailing bytes (DER is exact: a
/// certificate with something after it is not the certificate it claims).
fn parse<'a>(der: &'a CertificateDer<'_>) -> Result<X509Certificate<'a>, ReadError> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| ReadError::X509(printable(&e.to_string())))?;
    if !rest.is_empty() {
        return Err(ReadError::TrailingData(rest.len()));
    }
    // Duplicate or malformed SAN/EKU extensions would otherwise read as
    // "none"; refuse them instead of reporting less than the certificate says.
    cert.subject_alternative_name()
        .map_err(|e| ReadError::X509(format!("subject alternative names: {e}")))?;
    cert.extended_key_usage()
        .map_err(|e| ReadError::X509(format!("extended key usage: {e}")))?;
    Ok(cert)
}

fn general_names<'a>(cert: &'a X509Certificate<'_>) -> &'a [GeneralName<'a>] {
    match cert.subject_alternative_name() {
        Ok(Some(ext)) => &ext.value.general_names,
        // parse() already refused a malformed extension.
        _ => &[],
    }
}

/// The URI SANs of a certificate, as written.
pub(crate) fn uri_sans<'a>(cert: &'a X509Certificate<'_>) -> impl Iterator<Item = &'a str> {
    general_names(cert).iter().filter_map(|name| match name {
        GeneralName::URI(uri) => Some(*uri),
        _ => None,
    })
}

fn san_text(name: &GeneralName<'_>) -> String {
    let text = match name {
        GeneralName::DNSName(s) => format!("dns:{s}"),
        GeneralName::URI(s) => format!("uri:{s}"),
        GeneralName::IPAddress(bytes) => match *bytes {
            [a, b, c, d] => format!("ip:{}", IpAddr::from(Ipv4Addr::new(*a, *b, *c, *d))),
            _ => match <[u8; 16]>::try_from(*bytes) {
                Ok(v6) => format!("ip:{}", Ipv6Addr::from(v6)),
                Err(_) => format!("invalid:ip address of {} bytes", bytes.len()),
            },
        },
        GeneralName::RFC822Name(s) => format!("email:{s}"),
        GeneralName::DirectoryName(dn) => format!("dirname:{dn}"),
        GeneralName::RegisteredID(oid) => format!("rid:{oid}"),
        GeneralName::OtherName(oid, _) => format!("othername:{oid}"),
        GeneralName::X400Address(_) => "x400:".to_owned(),
        GeneralName::EDIPartyName(_) => "edi:".to_owned(),
        GeneralName::Invalid(tag, _) => format!("invalid:tag {}", tag.0),
    };
    printable(&text)
}

fn extended_key_usages(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(ext)) = cert.extended_key_usage() else {
        return Vec::new();
    };
    let eku = ext.value;
    let known = [
        (eku.any, "any"),
        (eku.server_auth, "server_auth"),
        (eku.client_auth, "client_auth"),
        (eku.code_signing, "code_signing"),
        (eku.email_protection, "email_protection"),
        (eku.time_stamping, "time_stamping"),
        (eku.ocsp_signing, "ocsp_signing"),
    ];
    let mut out: Vec<String> = known
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, name)| (*name).to_owned())
        .collect();
    out.extend(eku.other.iter().map(|oid| oid.to_id_string()));
    out
}

/// SHA-256 over the DER (ring's digest), as `AB:CD:...`.
fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

/// Escapes control characters (`\u{1b}` for ESC): certificate text is
/// attacker-chosen and ends up on terminals.
pub(crate) fn printable(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
