//! How a sidecar checks the sidecar it connects to: the peer's certificate
//! must chain to the mesh CA (rustls's own webpki check, server usage, at
//! the handshake's time) and name a SPIFFE ID in the mesh's trust domain.
//!
//! A host name is not checked: mesh peers are reached by address, and
//! their certificates carry only their SPIFFE ID (an X509-SVID has no DNS
//! name to match). The trust domain check is what a name check would be
//! for: a certificate from the right CA for another trust domain (a CA
//! shared by mistake) is refused. Handshake signatures are checked by
//! rustls's functions with the ring provider's algorithms.

use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, Error, RootCertStore, SignatureScheme};

/// Verifies mesh peers (see the module doc).
#[derive(Debug)]
pub(crate) struct SpiffeVerifier {
    roots: Arc<RootCertStore>,
    /// `spiffe://<trust domain>/`: what every peer identity starts with.
    prefix: String,
    algorithms: WebPkiSupportedAlgorithms,
}

impl SpiffeVerifier {
    pub(crate) fn new(
        roots: &Arc<RootCertStore>,
        trust_domain: &str,
        provider: Arc<CryptoProvider>,
    ) -> Self {
        Self {
            roots: roots.clone(),
            prefix: format!("spiffe://{trust_domain}/"),
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for SpiffeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        match crate::auth::identity::of_certificate(end_entity) {
            Some(id) if id.starts_with(&self.prefix) && id.len() > self.prefix.len() => {
                Ok(ServerCertVerified::assertion())
            }
            _ => Err(Error::InvalidCertificate(CertificateError::NotValidForName)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
