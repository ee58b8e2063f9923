//! TLS origination: a cluster's `tls` built into rustls `ClientConfig`s
//! (ring provider), and the client side of the handshake on a new upstream
//! connection.
//!
//! Policy: TLS 1.2 and 1.3 only, the ring provider's suites (ECDHE with
//! AES-GCM or ChaCha20-Poly1305). An endpoint's certificate is verified by
//! rustls-webpki against the cluster's `ca` bundle, or the system's trust
//! store without one, for the name the cluster sends as SNI, or, without
//! `sni`, for the endpoint's IP address (an IP SAN; no SNI is sent, as RFC
//! 6066 forbids IP literals there). The one way around verification is
//! `dangerous_skip_verify`, which still checks the handshake's signatures
//! (so the session is encrypted to *someone*) and warns whenever the
//! cluster's TLS is built.
//!
//! One [`UpstreamTls`] serves a cluster: its configs share one session
//! cache, so a new connection to an endpoint already met resumes instead of
//! doing a full handshake. Pooled connections are TLS connections: the
//! handshake happens once per connection, never per request. A reload that
//! leaves the cluster's `tls` and its files as they were keeps the same
//! `UpstreamTls` (its cache, and the cluster's pools); anything else builds
//! a new one, for new connections.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::stamp::Stamp;
use meshgate_config::{ClusterTls, SourceFile, TlsVersion, UpstreamVerify};
use meshgate_core::{Error, ErrorKind};
use meshgate_telemetry::{Counter, Registry};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::tls::{pem_error, read_certs, shown};

/// A TLS connection originated here.
pub(crate) type TlsConn = tokio_rustls::client::TlsStream<TcpStream>;

/// An upstream connection: plain TCP, or TLS to a cluster with `tls`.
pub(crate) type UpstreamStream = crate::stream::Stream<TlsConn>;

/// The read side of an [`UpstreamStream`].
pub(crate) type UpstreamRead = crate::stream::ReadHalf<TlsConn>;

/// The write side of an [`UpstreamStream`].
pub(crate) type UpstreamWrite = crate::stream::WriteHalf<TlsConn>;

/// Where the system's CA bundle is looked for when `SSL_CERT_FILE` is not
/// set: Debian/Ubuntu/Arch, Fedora/RHEL, openSUSE, Alpine/macOS.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The ALPN a connection offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alpn {
    /// `http/1.1`: an `http1` cluster's requests, HTTP health checks.
    Http1,
    /// `h2`: an `h2` cluster's requests, gRPC health checks.
    H2,
    /// None: a tcp listener's bytes, whatever protocol they are.
    None,
}

/// Where a cluster's TLS settings came from.
enum Origin {
    /// The cluster's `tls`, and its files as they were when loaded.
    Files {
        spec: Box<ClusterTls>,
        stamps: Vec<Stamp>,
    },
    /// The node's mesh identity (`[mesh]`): this client config.
    Mesh(Arc<ClientConfig>),
}

/// A cluster's TLS origination.
pub(crate) struct UpstreamTls {
    http1: TlsConnector,
    h2: TlsConnector,
    raw: TlsConnector,
    /// The configured `sni`; `None`: each endpoint's IP address.
    server_name: Option<ServerName<'static>>,
    /// Where the settings came from, to tell whether a reload may keep them.
    origin: Origin,
    /// Handshakes that failed (verification, no common parameters, our
    /// certificate refused) or did not finish in time.
    failures: Arc<Counter>,
}

// === impl UpstreamTls ===

impl UpstreamTls {
    /// Loads `spec`'s files (blocking: at start-up and reload, like the
    /// config file itself). Warns when verification is off.
    pub(crate) fn load(
        spec: &ClusterTls,
        cluster: &str,
        registry: &Registry,
    ) -> Result<Arc<Self>, String> {
        let stamps = stamps(spec);
        let config = build(spec)?;
        if spec.verify == UpstreamVerify::DangerousSkip {
            tracing::warn!(
                cluster,
                "dangerous_skip_verify: the certificates of this cluster's endpoints are not verified; anyone on the network path can pose as them"
            );
        }
        let server_name = match &spec.sni {
            None => None,
            Some(name) => Some(ServerName::try_from(name.clone()).map_err(|e| {
                format!(
                    "{}: sni {name:?} is not a usable server name: {e}",
                    spec.origin
                )
            })?),
        };
        let origin = Origin::Files {
            spec: Box::new(spec.clone()),
            stamps,
        };
        Ok(Self::with(&config, server_name, origin, cluster, registry))
    }

    /// Mesh mTLS for a sidecar's outbound cluster: the mesh identity's
    /// client config (its certificate, the peer checked against the mesh CA
    /// and trust domain), no SNI.
    pub(crate) fn mesh(config: Arc<ClientConfig>, cluster: &str, registry: &Registry) -> Arc<Self> {
        let base = (*config).clone();
        Self::with(&base, None, Origin::Mesh(config), cluster, registry)
    }

    fn with(
        config: &ClientConfig,
        server_name: Option<ServerName<'static>>,
        origin: Origin,
        cluster: &str,
        registry: &Registry,
    ) -> Arc<Self> {
        let with_alpn = |alpn: &[&[u8]]| {
            // A clone shares the session cache (`resumption` holds an Arc).
            let mut c = config.clone();
            c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            TlsConnector::from(Arc::new(c))
        };
        Arc::new(Self {
            http1: with_alpn(&[b"http/1.1"]),
            h2: with_alpn(&[b"h2"]),
            raw: with_alpn(&[]),
            server_name,
            origin,
            failures: registry.counter(
                "meshgate_upstream_tls_handshake_failures_total",
                "TLS handshakes with a cluster's endpoints that failed or did not finish in time.",
                &[("cluster", cluster)],
            ),
        })
    }

    /// Whether a reload to `spec` may keep this (and the cluster's pools):
    /// the same settings, and files unchanged since they were loaded.
    pub(crate) fn keeps(&self, spec: &ClusterTls) -> bool {
        match &self.origin {
            Origin::Files {
                spec: old,
                stamps: loaded,
            } => old.same_settings(spec) && stamps(spec) == *loaded,
            Origin::Mesh(_) => false,
        }
    }

    /// Whether a reload may keep this for a mesh cluster: made from the
    /// same mesh identity.
    pub(crate) fn keeps_mesh(&self, config: &Arc<ClientConfig>) -> bool {
        matches!(&self.origin, Origin::Mesh(c) if Arc::ptr_eq(c, config))
    }

    /// The TLS half of connecting to `addr`: `first` in the clear (a PROXY
    /// header), then the handshake offering `alpn`, both by `until` (what
    /// is left of the connect timeout). A failure is counted and is a
    /// connect failure: `upstream_tls_failed`, or `connect_timeout` late.
    pub(crate) async fn secure(
        &self,
        mut tcp: TcpStream,
        addr: SocketAddr,
        first: &[u8],
        alpn: Alpn,
        until: tokio::time::Instant,
    ) -> Result<TlsConn, Error> {
        let handshake = async {
            if !first.is_empty() {
                tcp.write_all(first).await.map_err(|e| {
                    Error::upstream(ErrorKind::ConnectRefused, format!("connect {addr}"))
                        .with_cause(e)
                })?;
            }
            self.handshake(tcp, addr, alpn).await
        };
        match tokio::time::timeout_at(until, handshake).await {
            Ok(done) => done,
            Err(_) => {
                self.failures.inc();
                Err(Error::upstream(
                    ErrorKind::ConnectTimeout,
                    format!("TLS handshake with {addr} not finished within the connect timeout"),
                ))
            }
        }
    }

    /// The client side of a handshake with the endpoint at `addr` on `tcp`,
    /// offering `alpn`; unbounded (the caller bounds it). Failures are
    /// counted.
    pub(crate) async fn handshake(
        &self,
        tcp: TcpStream,
        addr: SocketAddr,
        alpn: Alpn,
    ) -> Result<TlsConn, Error> {
        let name = self
            .server_name
            .clone()
            .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()));
        let connector = match alpn {
            Alpn::Http1 => &self.http1,
            Alpn::H2 => &self.h2,
            Alpn::None => &self.raw,
        };
        connector.connect(name, tcp).await.map_err(|e| {
            self.failures.inc();
            tracing::debug!(upstream = %addr, error = %e, "upstream TLS handshake failed");
            Error::upstream(ErrorKind::UpstreamTls, format!("TLS handshake with {addr}"))
                .with_cause(e)
        })
    }
}

/// Loads every file of a cluster's `tls` as a start or reload would; the
/// message says what is wrong, starting with the config file, line and field.
pub(crate) fn check(spec: &ClusterTls) -> Result<(), String> {
    build(spec).map(drop)
}

/// An h2 request to a TLS endpoint says `:scheme https` (the pipeline
/// writes `http`, right for every plaintext upstream).
pub(crate) fn to_https(uri: &mut http::Uri) {
    if uri.scheme() == Some(&http::uri::Scheme::HTTP) {
        let mut parts = uri.clone().into_parts();
        parts.scheme = Some(http::uri::Scheme::HTTPS);
        if let Ok(https) = http::Uri::from_parts(parts) {
            *uri = https;
        }
    }
}

fn stamps(spec: &ClusterTls) -> Vec<Stamp> {
    spec.files().map(|f| crate::stamp::of(&f.path)).collect()
}

/// The rustls config for `spec`, without ALPN.
fn build(spec: &ClusterTls) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match spec.min_version {
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| format!("{}: TLS settings: {e}", spec.origin))?;
    let builder = match &spec.verify {
        UpstreamVerify::Ca(ca) => builder.with_root_certificates(ca_roots(ca)?),
        UpstreamVerify::System => builder.with_root_certificates(system_roots(&spec.origin)?),
        UpstreamVerify::DangerousSkip => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SkipVerify(provider.clone()))),
    };
    let Some(client) = &spec.client_cert else {
        return Ok(builder.with_no_client_auth());
    };
    let chain = read_certs(&client.cert)?;
    let key = PrivateKeyDer::from_pem_file(&client.key.path).map_err(|e| {
        format!(
            "{}: {}: {}",
            client.key.origin,
            shown(&client.key.path),
            pem_error(&e, "PRIVATE KEY")
        )
    })?;
    // `with_client_auth_cert` checks that the key fits the certificate.
    builder.with_client_auth_cert(chain, key).map_err(|e| {
        format!(
            "{}: the key in {} does not fit the certificate in {}: {e}",
            client.key.origin,
            shown(&client.key.path),
            shown(&client.cert.path)
        )
    })
}

/// The `ca` bundle as trust anchors.
pub(crate) fn ca_roots(ca: &SourceFile) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(ca)? {
        roots.add(cert).map_err(|e| {
            format!(
                "{}: {}: not a usable CA certificate: {e}",
                ca.origin,
                shown(&ca.path)
            )
        })?;
    }
    Ok(roots)
}

/// The system's trust store: the PEM bundle `SSL_CERT_FILE` names (as
/// OpenSSL reads it), else the first of [`SYSTEM_BUNDLES`] that exists.
/// Certificates in it that webpki cannot use are skipped, as any TLS
/// client reading a distribution's bundle does.
pub(crate) fn system_roots(origin: &str) -> Result<RootCertStore, String> {
    let from_env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
    let path = match from_env {
        Some(path) => path,
        None => SYSTEM_BUNDLES
            .iter()
            .map(Path::new)
            .find(|p| p.is_file())
            .map(Path::to_path_buf)
            .ok_or_else(|| {
                format!(
                    "{origin}: no ca is given, and no system CA bundle was found (looked for {}; SSL_CERT_FILE is not set): set ca = \"...\" to the CA bundle the endpoints' certificates chain to",
                    SYSTEM_BUNDLES.join(", ")
                )
            })?,
    };
    let certs = CertificateDer::pem_file_iter(&path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            format!(
                "{origin}: the system CA bundle {}: {}",
                shown(&path),
                pem_error(&e, "CERTIFICATE")
            )
        })?;
    let mut roots = RootCertStore::empty();
    let (added, _skipped) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "{origin}: the system CA bundle {} holds no usable CA certificate",
            shown(&path)
        ));
    }
    Ok(roots)
}

/// `dangerous_skip_verify`: any certificate is accepted for any name, but
/// the handshake signatures are still checked against the certificate's
/// key, so the peer must at least hold the key of the certificate it sent.
#[derive(Debug)]
struct SkipVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(verify: UpstreamVerify) -> ClusterTls {
        ClusterTls {
            verify,
            sni: None,
            client_cert: None,
            min_version: TlsVersion::Tls12,
            origin: "gw.toml:9:7: clusters[0].tls".into(),
        }
    }

    #[test]
    fn an_h2_request_to_a_tls_endpoint_says_https() {
        let mut uri: http::Uri = "http://upstream/a?b=1".parse().unwrap();
        to_https(&mut uri);
        assert_eq!(uri, "https://upstream/a?b=1");
        let mut origin_form: http::Uri = "/a".parse().unwrap();
        to_https(&mut origin_form);
        assert_eq!(origin_form, "/a", "no scheme to change");
    }

    #[test]
    fn an_unreadable_ca_names_the_config_field() {
        let ca = SourceFile {
            path: "/nonexistent/meshgate-ca.pem".into(),
            origin: "gw.toml:9:14: clusters[0].tls.ca".into(),
        };
        let err = check(&spec(UpstreamVerify::Ca(ca))).unwrap_err();
        assert!(
            err.starts_with(
                "gw.toml:9:14: clusters[0].tls.ca: /nonexistent/meshgate-ca.pem: cannot read it"
            ),
            "{err}"
        );
    }

    #[test]
    fn skipping_verification_needs_no_files() {
        assert!(check(&spec(UpstreamVerify::DangerousSkip)).is_ok());
    }
}
