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
use rustls::DistinguishedName;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
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
        in_trust_domain(end_entity, &self.prefix)?;
        Ok(ServerCertVerified::assertion())
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

/// The check both ends share: the certificate names a SPIFFE ID under
/// `prefix` (`spiffe://<trust domain>/`) with a non-empty path.
fn in_trust_domain(end_entity: &CertificateDer<'_>, prefix: &str) -> Result<(), Error> {
    match crate::auth::identity::of_certificate(end_entity) {
        Some(id) if id.starts_with(prefix) && id.len() > prefix.len() => Ok(()),
        _ => Err(Error::InvalidCertificate(CertificateError::NotValidForName)),
    }
}

/// Verifies mesh clients on an inbound listener: rustls's webpki client
/// verifier for the chain (to the mesh CA, client usage, validity), then
/// the same trust-domain check as outbound, so a certificate the CA issued
/// for a DNS name or for another trust domain is refused at the handshake.
#[derive(Debug)]
pub(crate) struct SpiffeClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    prefix: String,
}

impl SpiffeClientVerifier {
    pub(crate) fn new(inner: Arc<dyn ClientCertVerifier>, trust_domain: &str) -> Self {
        Self {
            inner,
            prefix: format!("spiffe://{trust_domain}/"),
        }
    }
}

impl ClientCertVerifier for SpiffeClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        in_trust_domain(end_entity, &self.prefix)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
