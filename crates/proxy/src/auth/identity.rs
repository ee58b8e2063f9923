//! The identity of a downstream client certificate, for authorization
//! rules and rate-limit keys: its SPIFFE ID (a `spiffe://` URI SAN) when it
//! has one, else its first DNS name.
//!
//! Only certificates the listener's `client_ca` verifier accepted reach
//! here (rustls checked the chain and validity during the handshake), so
//! the names are believed; parsing is still defensive, since the bytes came
//! from the network: a certificate this parser cannot read has no
//! identity, which no identity rule matches.

use std::sync::Arc;

use x509_parser::extensions::GeneralName;

/// Longest identity kept; longer names are not identities we route on.
const MAX_IDENTITY_LEN: usize = 2048;

/// The identity of the leaf certificate `der`, if it names one.
pub(crate) fn of_certificate(der: &[u8]) -> Option<Arc<str>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let names = cert.subject_alternative_name().ok()??;
    let names = &names.value.general_names;
    let spiffe = names.iter().find_map(|n| match n {
        GeneralName::URI(uri) if uri.starts_with("spiffe://") => Some(*uri),
        _ => None,
    });
    let dns = || {
        names.iter().find_map(|n| match n {
            GeneralName::DNSName(name) => Some(*name),
            _ => None,
        })
    };
    spiffe
        .or_else(dns)
        .filter(|id| id.len() <= MAX_IDENTITY_LEN)
        .map(Arc::from)
}

#[cfg(test)]
mod tests {
    use super::of_certificate;

    #[test]
    fn garbage_has_no_identity() {
        assert_eq!(of_certificate(b""), None);
        assert_eq!(of_certificate(&[0x30, 0x82, 0xff, 0xff, 0x00]), None);
    }
}
