//! The JWKS driver's HTTP client: one GET of a fixed URL, over TLS for
//! `https://`, bounded in size (`meshgate_jwt::MAX_JWKS_BYTES`); the caller
//! bounds it in time.
//!
//! An `https` server is verified like a cluster's upstream (the same
//! rustls ring provider, TLS 1.2+): against `jwks_ca` when given, else the
//! system's trust store (`SSL_CERT_FILE`, else the distribution's bundle),
//! for the URL's host name. The client config is built once, at load, so a
//! missing bundle is a config error, not a silent fetch failure later.

use std::sync::Arc;

use bytes::Buf as _;
use http_body_util::{BodyExt as _, Empty, Limited};
use meshgate_config::auth::SourceFile;
use meshgate_jwt::MAX_JWKS_BYTES;
use rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

/// A JWKS URL and how to reach it.
pub(crate) struct Fetcher {
    url: http::Uri,
    /// For `https://`: the connector and the name the server must prove.
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl Fetcher {
    /// Prepares fetching `url`; for `https`, loads `ca` (or the system
    /// trust store). Fails with the config position of what is unusable.
    pub(crate) fn new(url: &http::Uri, ca: Option<&SourceFile>) -> Result<Self, String> {
        let tls = match url.scheme_str() {
            Some("https") => {
                let host = url.host().ok_or("the JWKS URL has no host")?;
                // An IPv6 literal comes bracketed from the URI.
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let name = ServerName::try_from(host.to_owned())
                    .map_err(|e| format!("jwks_url host {host:?}: {e}"))?;
                let roots = match ca {
                    Some(ca) => crate::upstream_tls::ca_roots(ca)?,
                    None => crate::upstream_tls::system_roots("jwks_url")?,
                };
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let mut config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                    .map_err(|e| format!("JWKS TLS settings: {e}"))?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                Some((TlsConnector::from(Arc::new(config)), name))
            }
            _ => None,
        };
        Ok(Self {
            url: url.clone(),
            tls,
        })
    }

    /// The URL, for logs.
    pub(crate) fn url(&self) -> &http::Uri {
        &self.url
    }

    /// One HTTP/1.1 GET of the URL; the body, capped at `MAX_JWKS_BYTES`.
    pub(crate) async fn get(&self) -> Result<Vec<u8>, String> {
        let url = &self.url;
        let host = url.host().ok_or("the URL has no host")?;
        let default_port = if self.tls.is_some() { 443 } else { 80 };
        let port = url.port_u16().unwrap_or(default_port);
        let dial = host.trim_start_matches('[').trim_end_matches(']');
        let tcp = tokio::net::TcpStream::connect((dial, port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let path = url.path_and_query().map_or("/", |p| p.as_str());
        let authority = url.authority().map_or(host, |a| a.as_str());
        let req = http::Request::get(path)
            .header(http::header::HOST, authority)
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::<bytes::Bytes>::new())
            .map_err(|e| e.to_string())?;
        let resp = match &self.tls {
            None => send(tcp, req).await?,
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?;
                send(tls, req).await?
            }
        };
        if !resp.status().is_success() {
            return Err(format!("status {}", resp.status()));
        }
        let body = Limited::new(resp.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?;
        let mut bytes = body.aggregate();
        let mut out = vec![0; bytes.remaining()];
        bytes.copy_to_slice(&mut out);
        Ok(out)
    }
}

/// Sends `req` on a new HTTP/1.1 connection over `io`.
async fn send<IO>(
    io: IO,
    req: http::Request<Empty<bytes::Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    sender
        .send_request(req)
        .await
        .map_err(|e| format!("request: {e}"))
}
