//! Automatic mTLS between sidecars (`[mesh]`): this node's short-lived
//! SPIFFE identity, issued by itself from the mesh CA and renewed before it
//! expires, and the rustls configs both ends of sidecar traffic use.
//!
//! The certificate lives in one `ArcSwap` that the server's and the
//! client's certificate resolvers read at every handshake, so a renewal is
//! served by the very next handshake; connections already established keep
//! the session they have (the old certificate stays valid for the last
//! third of its life), so a rotation drops nothing. The renewal schedule is
//! [`renew_at`], a pure function of the certificate's validity; the loop
//! around it only sleeps, issues and swaps. A failed renewal keeps the
//! current certificate and is retried every few seconds, logged and
//! counted.

pub(crate) mod verify;

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use meshgate_ca::{Ca, ServiceName};
use meshgate_config::mesh::Mesh;
use meshgate_telemetry::{Counter, Gauge, Registry};
use rustls::client::ResolvesClientCert;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SignatureScheme};

/// How long a failed renewal waits before the next try.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// This node's mesh identity and the TLS configs built on it.
pub(crate) struct MeshIdentity {
    spec: Mesh,
    /// The CA files as they were when loaded (modified time, length).
    ca_stamps: [crate::stamp::Stamp; 2],
    ca: Ca,
    service: ServiceName,
    current: Arc<ArcSwap<CertifiedKey>>,
    /// When the current certificate should be replaced.
    renew_at: std::sync::Mutex<SystemTime>,
    server_h1_h2: Arc<ServerConfig>,
    server_raw: Arc<ServerConfig>,
    #[allow(
        dead_code,
        reason = "outbound clusters use it once upstream TLS origination is wired"
    )]
    client: Arc<ClientConfig>,
    renewals_ok: Arc<Counter>,
    renewals_failed: Arc<Counter>,
    not_after: Arc<Gauge>,
    renewed_ms: Arc<Gauge>,
}

impl MeshIdentity {
    /// Loads the CA, issues the first certificate and starts renewing it.
    pub(crate) fn start(spec: &Mesh, registry: &Registry) -> Result<Arc<Self>, String> {
        let ca_stamps = ca_stamps(&spec.ca_dir.path);
        let ca = Ca::load(&spec.ca_dir.path).map_err(|e| format!("{}: {e}", spec.ca_dir.origin))?;
        if ca.trust_domain().as_str() != spec.trust_domain {
            return Err(format!(
                "{}: the CA in {} is for trust domain {:?}, not {:?}",
                spec.ca_dir.origin,
                spec.ca_dir.path.display(),
                ca.trust_domain().as_str(),
                spec.trust_domain
            ));
        }
        let service = ServiceName::try_new(&spec.service)
            .map_err(|e| format!("mesh.service {:?}: {e}", spec.service))?;
        let (key, renew) = issue(&ca, &service, spec.cert_ttl, SystemTime::now())?;
        let current = Arc::new(ArcSwap::from_pointee(key));
        let mut roots = RootCertStore::empty();
        roots.add(ca.cert_der().clone()).map_err(|e| {
            format!(
                "{}: the mesh CA is not a usable root: {e}",
                spec.ca_dir.origin
            )
        })?;
        let roots = Arc::new(roots);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = |alpn: &[&[u8]]| -> Result<Arc<ServerConfig>, String> {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                    .build()
                    .map_err(|e| format!("mesh client verifier: {e}"))?;
            let verifier: Arc<dyn rustls::server::danger::ClientCertVerifier> = Arc::new(
                verify::SpiffeClientVerifier::new(verifier, &spec.trust_domain),
            );
            let mut config = ServerConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .map_err(|e| format!("mesh TLS settings: {e}"))?
                .with_client_cert_verifier(verifier)
                .with_cert_resolver(Arc::new(Current(current.clone())));
            config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            Ok(Arc::new(config))
        };
        let verifier = verify::SpiffeVerifier::new(&roots, &spec.trust_domain, provider.clone());
        let mut client = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| format!("mesh TLS settings: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_cert_resolver(Arc::new(Current(current.clone())));
        client.resumption = rustls::client::Resumption::default();
        let labels = [("identity", spec.identity())];
        let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let renewal = |result| {
            let mut l = labels.clone();
            l.push(("result", result));
            registry.counter(
                "meshgate_mesh_certificate_renewals_total",
                "Renewals of this node's mesh certificate, by result.",
                &l,
            )
        };
        let identity = Arc::new(Self {
            spec: spec.clone(),
            ca_stamps,
            server_h1_h2: server(&[b"h2", b"http/1.1"])?,
            server_raw: server(&[])?,
            client: Arc::new(client),
            ca,
            service,
            current,
            renew_at: std::sync::Mutex::new(renew),
            renewals_ok: renewal("ok"),
            renewals_failed: renewal("failed"),
            not_after: registry.gauge(
                "meshgate_mesh_certificate_not_after_seconds",
                "When this node's current mesh certificate expires (unix seconds).",
                &labels,
            ),
            renewed_ms: registry.gauge(
                "meshgate_mesh_certificate_issued_unix_ms",
                "When this node's current mesh certificate started being served (unix milliseconds).",
                &labels,
            ),
        });
        identity.publish_expiry();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(renew_loop(Arc::downgrade(&identity)));
        }
        Ok(identity)
    }

    /// Whether this identity was made from `spec` (a reload may keep it).
    /// The same settings and the same CA files on disk: a CA rotated in
    /// place is loaded anew by the reload; an edit elsewhere in the config
    /// file (which moves `ca_dir`'s line) keeps the identity and its pools.
    pub(crate) fn serves(&self, spec: &Mesh) -> bool {
        self.spec.trust_domain == spec.trust_domain
            && self.spec.ca_dir.path == spec.ca_dir.path
            && self.spec.service == spec.service
            && self.spec.cert_ttl == spec.cert_ttl
            && ca_stamps(&spec.ca_dir.path) == self.ca_stamps
    }

    /// An acceptor for an inbound listener; `http` listeners offer h2 and
    /// http/1.1 by ALPN.
    pub(crate) fn acceptor(&self, http: bool) -> tokio_rustls::TlsAcceptor {
        let config = if http {
            &self.server_h1_h2
        } else {
            &self.server_raw
        };
        tokio_rustls::TlsAcceptor::from(config.clone())
    }

    /// The client config for outbound clusters: this node's certificate,
    /// and the peer checked against the mesh CA and trust domain.
    #[allow(
        dead_code,
        reason = "outbound clusters use it once upstream TLS origination is wired"
    )]
    pub(crate) fn client_config(&self) -> Arc<ClientConfig> {
        self.client.clone()
    }

    /// Issues a new certificate now and serves it from the next handshake.
    fn renew(&self, now: SystemTime) -> Result<SystemTime, String> {
        let (key, next) = issue(&self.ca, &self.service, self.spec.cert_ttl, now)?;
        self.current.store(Arc::new(key));
        *self.renew_at.lock().unwrap_or_else(|e| e.into_inner()) = next;
        self.publish_expiry();
        Ok(next)
    }

    fn publish_expiry(&self) {
        let now_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        self.renewed_ms.set(now_ms);
        let cert = self.current.load();
        let not_after = cert
            .cert
            .first()
            .and_then(|der| x509_parser::parse_x509_certificate(der).ok())
            .map_or(0, |(_, c)| c.validity().not_after.timestamp());
        self.not_after.set(not_after);
    }
}

/// The CA files' modified times and lengths.
fn ca_stamps(dir: &std::path::Path) -> [crate::stamp::Stamp; 2] {
    [
        meshgate_ca::store::CA_CERT_FILE,
        meshgate_ca::store::CA_KEY_FILE,
    ]
    .map(|name| crate::stamp::of(&dir.join(name)))
}

/// When a certificate valid from `issued` to `not_after` should be
/// replaced: at two thirds of its life, so the last third covers failed
/// renewals and clock skew between nodes.
pub(crate) fn renew_at(issued: SystemTime, not_after: SystemTime) -> SystemTime {
    let life = not_after.duration_since(issued).unwrap_or_default();
    issued + life.mul_f64(2.0 / 3.0)
}

/// Issues a certificate for `service` at `now`; returns it as rustls's
/// signing key and when to renew it.
fn issue(
    ca: &Ca,
    service: &ServiceName,
    ttl: Duration,
    now: SystemTime,
) -> Result<(CertifiedKey, SystemTime), String> {
    let issued = ca
        .issue_spiffe(service, ttl, now)
        .map_err(|e| format!("issuing the mesh certificate: {e}"))?;
    let cert = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes())
        .map_err(|e| format!("the issued certificate: {e:?}"))?;
    let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes())
        .map_err(|e| format!("the issued key: {e:?}"))?;
    let provider = rustls::crypto::ring::default_provider();
    let certified = CertifiedKey::from_der(vec![cert], key, &provider)
        .map_err(|e| format!("the issued key pair: {e}"))?;
    Ok((certified, renew_at(now, issued.not_after)))
}

/// Renews on schedule until the identity is dropped (a reload removed
/// `[mesh]`).
async fn renew_loop(identity: Weak<MeshIdentity>) {
    loop {
        let wait = {
            let Some(id) = identity.upgrade() else { return };
            let at = *id.renew_at.lock().unwrap_or_else(|e| e.into_inner());
            at.duration_since(SystemTime::now()).unwrap_or_default()
        };
        // Wake at least every few seconds to notice a dropped identity.
        tokio::time::sleep(wait.min(RETRY_AFTER)).await;
        let Some(id) = identity.upgrade() else { return };
        let due = *id.renew_at.lock().unwrap_or_else(|e| e.into_inner());
        if SystemTime::now() < due {
            continue;
        }
        let id2 = id.clone();
        let renewed = tokio::task::spawn_blocking(move || id2.renew(SystemTime::now())).await;
        match renewed {
            Ok(Ok(_)) => {
                id.renewals_ok.inc();
                tracing::info!(identity = %id.spec.identity(), "mesh certificate renewed");
            }
            Ok(Err(e)) => {
                id.renewals_failed.inc();
                *id.renew_at.lock().unwrap_or_else(|e| e.into_inner()) =
                    SystemTime::now() + RETRY_AFTER;
                tracing::warn!(error = %e, "mesh certificate renewal failed; the current certificate stays");
            }
            Err(e) => {
                id.renewals_failed.inc();
                *id.renew_at.lock().unwrap_or_else(|e| e.into_inner()) =
                    SystemTime::now() + RETRY_AFTER;
                tracing::warn!(error = %e, "mesh certificate renewal task failed");
            }
        }
    }
}

/// The current certificate, for both ends of a handshake.
#[derive(Debug)]
struct Current(Arc<ArcSwap<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }
}

impl ResolvesClientCert for Current {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load_full())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::renew_at;
    use std::time::{Duration, SystemTime};

    #[test]
    fn renewal_at_two_thirds() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(
            renew_at(t0, t0 + Duration::from_secs(120)),
            t0 + Duration::from_secs(80)
        );
        assert_eq!(
            renew_at(t0, t0 + Duration::from_secs(86_400)),
            t0 + Duration::from_secs(57_600)
        );
        // A certificate already past its end is renewed at once.
        assert_eq!(renew_at(t0, t0 - Duration::from_secs(5)), t0);
    }
}
