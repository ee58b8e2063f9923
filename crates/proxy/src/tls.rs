//! TLS termination: a listener's certificates, chosen by SNI, and its
//! client-certificate policy, built into a rustls `ServerConfig` (ring
//! provider) that is rebuilt when any of its files changes.
//!
//! Policy: TLS 1.2 and 1.3 only (rustls has nothing older), and only the
//! ring provider's suites, all ECDHE key exchange with AES-GCM or
//! ChaCha20-Poly1305. A rebuild swaps the config used for new handshakes;
//! connections already established keep their session, so a certificate
//! rotation drops nothing. Files are taken once they have stopped changing
//! for one poll (a key written just before its certificate is not a
//! failure). A rebuild that fails (a broken file, a key that does not
//! match) is logged and counted, and the last good config stays. A rebuild
//! starts a fresh session cache: rustls does not re-verify a resumed
//! session's client certificate, so sessions must not outlive a change of
//! `client_ca`. A config reload whose `tls` is unchanged keeps the same
//! [`ServerTls`] (and its watcher).

use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::stamp::Stamp;
use arc_swap::ArcSwap;
use meshgate_config::{ClientAuth, ListenerTls, SourceFile, TlsVersion};
use meshgate_telemetry::{Counter, Registry};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};

/// How often the files are checked for changes.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// A listener's TLS termination.
pub(crate) struct ServerTls {
    config: ArcSwap<ServerConfig>,
    spec: ListenerTls,
    alpn: Vec<Vec<u8>>,
    stamps: std::sync::Mutex<Stamps>,
    reloads_ok: Arc<Counter>,
    reloads_failed: Arc<Counter>,
}

/// The files as last loaded, and as seen at the last poll if different.
struct Stamps {
    loaded: Vec<Stamp>,
    changing: Option<Vec<Stamp>>,
}

impl ServerTls {
    /// Loads `spec`'s files (blocking: at start-up and reload, like the
    /// config file itself). `alpn` is what the listener offers, in order.
    pub(crate) fn load(
        spec: &ListenerTls,
        alpn: &[&[u8]],
        listener: &str,
        registry: &Registry,
    ) -> Result<Arc<Self>, String> {
        let alpn: Vec<Vec<u8>> = alpn.iter().map(|p| p.to_vec()).collect();
        let stamps = stamps(spec);
        let config = build(spec, &alpn)?;
        let counter = |result| {
            registry.counter(
                "meshgate_tls_certificate_reloads_total",
                "Rebuilds of a listener's TLS settings after its files changed, by result.",
                &[("listener", listener), ("result", result)],
            )
        };
        let tls = Arc::new(Self {
            config: ArcSwap::from_pointee(config),
            spec: spec.clone(),
            alpn,
            stamps: std::sync::Mutex::new(Stamps {
                loaded: stamps,
                changing: None,
            }),
            reloads_ok: counter("ok"),
            reloads_failed: counter("failed"),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(watch(Arc::downgrade(&tls), listener.to_owned()));
        }
        Ok(tls)
    }

    /// Whether this serves `spec` offering `alpn` (a reload may keep it).
    pub(crate) fn serves(&self, spec: &ListenerTls, alpn: &[&[u8]]) -> bool {
        self.spec == *spec && self.alpn.iter().map(Vec::as_slice).eq(alpn.iter().copied())
    }

    /// An acceptor with the current settings.
    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.load_full())
    }

    /// Rebuilds if the files changed since the last load and have not
    /// changed since the previous poll. Blocking.
    fn refresh(&self, listener: &str) {
        let now = stamps(&self.spec);
        let mut seen = self.stamps.lock().unwrap_or_else(|e| e.into_inner());
        if seen.loaded == now {
            seen.changing = None;
            return;
        }
        if seen.changing.as_ref() != Some(&now) {
            seen.changing = Some(now); // still being written, perhaps
            return;
        }
        seen.loaded = now;
        seen.changing = None;
        match build(&self.spec, &self.alpn) {
            Ok(config) => {
                self.config.store(Arc::new(config));
                self.reloads_ok.inc();
                tracing::info!(listener, "TLS certificates reloaded");
            }
            Err(e) => {
                self.reloads_failed.inc();
                tracing::warn!(listener, error = %e, "TLS files changed but cannot be used; the previous certificates stay");
            }
        }
    }
}

/// What a connection needs to terminate TLS: the acceptor with the
/// listener's current settings, and where failed handshakes are counted.
#[derive(Clone)]
pub(crate) struct Terminator {
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
    pub(crate) failures: Arc<Counter>,
}

/// Completes the server side of a handshake on `tcp` (after `early`, bytes
/// already read from it) by `until`; `None`, logged and counted, if it
/// fails or is late.
pub(crate) async fn handshake(
    tls: Terminator,
    tcp: tokio::net::TcpStream,
    early: Vec<u8>,
    until: tokio::time::Instant,
    client: std::net::SocketAddr,
) -> Option<crate::downstream::TlsConn> {
    let accept = tls
        .acceptor
        .accept(crate::downstream::Rewind::new(early, tcp));
    match tokio::time::timeout_at(until, accept).await {
        Ok(Ok(conn)) => Some(conn),
        Ok(Err(e)) => {
            tls.failures.inc();
            tracing::debug!(%client, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tls.failures.inc();
            tracing::debug!(%client, "TLS handshake not finished in time");
            None
        }
    }
}

/// Loads every TLS file `config` names (listeners' and clusters'), as a
/// start or a reload would: one message per `tls` table that cannot be
/// used (for `meshgate validate`).
pub(crate) fn check_files(config: &meshgate_config::Config) -> Vec<String> {
    let listeners = config
        .listeners
        .iter()
        .filter_map(|l| l.tls.as_ref())
        .filter_map(|spec| build(spec, &[]).err());
    let clusters = config
        .clusters
        .iter()
        .filter_map(|c| c.tls.as_ref())
        .filter_map(|spec| crate::upstream_tls::check(spec).err());
    listeners.chain(clusters).collect()
}

/// Polls the files of `tls` until it is dropped (its config generation
/// ended).
async fn watch(tls: Weak<ServerTls>, listener: String) {
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        let Some(tls) = tls.upgrade() else { return };
        let listener = listener.clone();
        // File reads and key parsing stay off the workers.
        let _ = tokio::task::spawn_blocking(move || tls.refresh(&listener)).await;
    }
}

fn stamps(spec: &ListenerTls) -> Vec<Stamp> {
    spec.files().map(|f| crate::stamp::of(&f.path)).collect()
}

/// The rustls config for `spec`.
fn build(spec: &ListenerTls, alpn: &[Vec<u8>]) -> Result<ServerConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = spec
        .certificates
        .iter()
        .map(|c| {
            let chain = read_certs(&c.cert)?;
            let key = PrivateKeyDer::from_pem_file(&c.key.path).map_err(|e| {
                format!(
                    "{}: {}: {}",
                    c.key.origin,
                    shown(&c.key.path),
                    pem_error(&e, "PRIVATE KEY")
                )
            })?;
            CertifiedKey::from_der(chain, key, &provider)
                .map(Arc::new)
                .map_err(|e| {
                    format!(
                        "{}: the key in {} does not fit the certificate in {}: {e}",
                        c.key.origin,
                        shown(&c.key.path),
                        shown(&c.cert.path)
                    )
                })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let versions: &[&rustls::SupportedProtocolVersion] = match spec.min_version {
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| format!("TLS settings: {e}"))?;
    let builder = match &spec.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
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
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match spec.client_auth {
                ClientAuth::Required => verifier,
                ClientAuth::Optional => verifier.allow_unauthenticated(),
            };
            let verifier = verifier
                .build()
                .map_err(|e| format!("{}: {}: {e}", ca.origin, shown(&ca.path)))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(Arc::new(BySni { certs }));
    config.alpn_protocols = alpn.to_vec();
    Ok(config)
}

pub(crate) fn read_certs(file: &SourceFile) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(&file.path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            format!(
                "{}: {}: {}",
                file.origin,
                shown(&file.path),
                pem_error(&e, "CERTIFICATE")
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "{}: {}: no CERTIFICATE block in the file",
            file.origin,
            shown(&file.path)
        ));
    }
    Ok(certs)
}

pub(crate) fn shown(path: &Path) -> String {
    path.display().to_string()
}

pub(crate) fn pem_error(e: &rustls::pki_types::pem::Error, what: &str) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => format!("cannot read it: {io}"),
        rustls::pki_types::pem::Error::NoItemsFound => format!("no {what} block in the file"),
        other => format!("not valid PEM: {other:?}"),
    }
}

/// Picks the first certificate valid for the client's SNI, else the first.
#[derive(Debug)]
struct BySni {
    certs: Vec<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello
            .server_name()
            .and_then(|n| ServerName::try_from(n).ok());
        if let Some(name) = name {
            let fits = |c: &&Arc<CertifiedKey>| {
                c.cert.first().is_some_and(|der| {
                    webpki::EndEntityCert::try_from(der)
                        .is_ok_and(|ee| ee.verify_is_valid_for_subject_name(&name).is_ok())
                })
            };
            if let Some(cert) = self.certs.iter().find(fits) {
                return Some(cert.clone());
            }
        }
        self.certs.first().cloned()
    }
}
