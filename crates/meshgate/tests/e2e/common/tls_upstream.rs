//! An in-process TLS upstream on `127.0.0.1:0` (rustls + hyper, both h2
//! and HTTP/1.1 by ALPN or preface), recording what each connection's
//! handshake showed: the SNI it got, the ALPN it chose, whether a client
//! certificate was verified and whether the session was resumed. Every response is JSON with the same
//! facts about its own connection.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http::Response;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

use super::pki::Pair;
use super::upstream::full;

/// What one accepted TLS connection showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    pub sni: Option<String>,
    pub alpn: Option<String>,
    pub client_cert: bool,
    /// Whether the client resumed an earlier session.
    pub resumed: bool,
}

/// A running TLS upstream.
pub struct TlsUpstream {
    pub addr: SocketAddr,
    /// Requests served.
    pub hits: Arc<AtomicUsize>,
    /// TCP connections accepted (before any handshake).
    pub accepted: Arc<AtomicUsize>,
    /// Handshakes completed, in order.
    pub handshakes: Arc<Mutex<Vec<Handshake>>>,
}

impl TlsUpstream {
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
    pub fn handshakes(&self) -> Vec<Handshake> {
        self.handshakes.lock().unwrap().clone()
    }
}

fn certs(path: &std::path::Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Starts an upstream serving `server` (its certificate and key). With
/// `client_ca`, a client certificate chaining to it is required.
pub async fn start(server: &Pair, client_ca: Option<&Pair>) -> TlsUpstream {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certs(&ca.cert) {
                roots.add(c).unwrap();
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    let key = PrivateKeyDer::from_pem_file(&server.key).unwrap();
    let mut config = builder.with_single_cert(certs(&server.cert), key).unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let handshakes = Arc::new(Mutex::new(Vec::new()));
    let (h, a, hs) = (hits.clone(), accepted.clone(), handshakes.clone());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            a.fetch_add(1, Ordering::SeqCst);
            let (acceptor, hits, handshakes) = (acceptor.clone(), h.clone(), hs.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return; // a refused handshake: nothing is served
                };
                let (_, conn) = tls.get_ref();
                let shown = Handshake {
                    sni: conn.server_name().map(str::to_owned),
                    alpn: conn
                        .alpn_protocol()
                        .map(|p| String::from_utf8_lossy(p).into_owned()),
                    client_cert: conn.peer_certificates().is_some_and(|c| !c.is_empty()),
                    resumed: conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
                };
                handshakes.lock().unwrap().push(shown.clone());
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        hits.fetch_add(1, Ordering::SeqCst);
                        let body = serde_json::json!({
                            "path": req.uri().path(),
                            "scheme": req.uri().scheme_str(),
                            "version": format!("{:?}", req.version()),
                            "sni": shown.sni,
                            "alpn": shown.alpn,
                            "client_cert": shown.client_cert,
                        });
                        async move {
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .header("content-type", "application/json")
                                    .body(full(body.to_string()))
                                    .unwrap(),
                            )
                        }
                    });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    TlsUpstream {
        addr,
        hits,
        accepted,
        handshakes,
    }
}
